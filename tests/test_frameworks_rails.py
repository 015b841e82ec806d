"""dsql_audit.sources.frameworks.rails on tree-sitter's Ruby tree: generated columns, Rails' inflector, heredoc and
string positions, interpolation, nested blocks, and what the tree reads that the old hand-written lexer did not."""

from __future__ import annotations

import inflection
import pytest

from dsql_audit.scan import scan_sql
from dsql_audit.sources.frameworks import extract, rails
from dsql_audit.sources.frameworks.ruby import pluralize, singularize, tableize

PROFILE = "2026-09-18"


def _migration(body: str) -> str:
    return f"class M < ActiveRecord::Migration[7.1]\n  def change\n{body}  end\nend\n"


def _recs(text: str, path: str = "db/migrate/1_m.rb"):
    assert rails.detect(path, text)
    return extract(path, text)


def _sqls(recs):
    return [" ".join(e.sql.split()) for e in recs if e.sql and not e.literal]


def _literals(recs):
    return [e for e in recs if e.literal]


def _at(text: str, line: int, col: int, length: int) -> str:
    """The file text at 1-based (line, col)."""
    return text.split("\n")[line - 1][col - 1:col - 1 + length]


# ---------------------------------------------------------------------------------------------------------------
# generated columns
# ---------------------------------------------------------------------------------------------------------------

def test_virtual_stored_column_is_a_generated_column_on_its_own_line():
    text = _migration("""    create_table :documents do |t|
      t.string :title
      t.virtual :search, type: :tsvector, as: "to_tsvector('simple', title)", stored: true
      t.virtual :shout, type: :string, as: "upper(title)"
    end
""")
    recs = _recs(text)
    assert _sqls(recs) == ["CREATE TABLE documents (id bigserial PRIMARY KEY, title character varying, search "
                           "tsvector GENERATED ALWAYS AS (to_tsvector('simple', title)) STORED)"]
    table = recs[0]
    # the column sits on the file line of its t.virtual, its type at the column of "virtual"
    row = table.sql.split("\n")[5 - table.line]
    assert "search tsvector GENERATED ALWAYS AS" in row
    assert row.index("tsvector") + 1 == text.split("\n")[4].index("virtual") + 1
    # the type reaches the type rules, at that line
    findings = scan_sql(table.sql, profile=PROFILE).findings
    assert any(f.name == "unsupported-type" and f.line + table.line - 1 == 5 for f in findings)


def test_virtual_column_not_stored_is_not_sent():
    # Rails' PostgreSQL adapter raises for a generated column without stored: true: nothing reaches the database
    recs = _recs(_migration('    add_column :t, :shout, :virtual, type: :string, as: "upper(name)"\n'))
    assert _sqls(recs) == []


def test_add_column_virtual_with_heredoc_expression_and_t_column_virtual():
    text = _migration("""    add_column :securities, :search, :virtual, type: :tsvector, stored: true, as: <<~SQL.squish
      setweight(to_tsvector('simple', coalesce(ticker, '')), 'B')
        || to_tsvector('simple', coalesce(name, ''))
    SQL
    change_table :balances do |t|
      t.virtual(
        :total,
        type: :decimal, precision: 19, scale: 4,
        stored: true,
        as: "cash + other"
      )
      t.column :twice, :virtual, type: :integer, as: "n * 2", stored: true, null: false
      t.virtual :plain, type: :text
    end
""")
    assert _sqls(_recs(text)) == [
        "ALTER TABLE securities ADD COLUMN search tsvector GENERATED ALWAYS AS (setweight(to_tsvector("
        "'simple', coalesce(ticker, '')), 'B') || to_tsvector('simple', coalesce(name, ''))) STORED",
        "ALTER TABLE balances ADD COLUMN total decimal(19, 4) GENERATED ALWAYS AS (cash + other) STORED",
        "ALTER TABLE balances ADD COLUMN twice integer GENERATED ALWAYS AS (n * 2) STORED NOT NULL",
        "ALTER TABLE balances ADD COLUMN plain text",
    ]


def test_virtual_column_with_an_unreadable_expression_keeps_its_type():
    recs = _recs(_migration('    add_column :t, :v, :virtual, type: :tsvector, as: "to_tsvector(", stored: true\n'))
    assert _sqls(recs) == ["ALTER TABLE t ADD COLUMN v tsvector"]


# ---------------------------------------------------------------------------------------------------------------
# Rails' inflector
# ---------------------------------------------------------------------------------------------------------------

# Rails 7.x answers (activesupport/lib/active_support/inflections.rb)
RAILS_PLURALS = {
    "person": "people", "status": "statuses", "index": "indices", "datum": "data", "child": "children",
    "man": "men", "mouse": "mice", "octopus": "octopi", "virus": "viri", "quiz": "quizzes", "axis": "axes",
    "matrix": "matrices", "vertex": "vertices", "analysis": "analyses", "knife": "knives", "wolf": "wolves",
    "ox": "oxen", "bus": "buses", "alias": "aliases", "tomato": "tomatoes", "category": "categories",
    "sheep": "sheep", "equipment": "equipment", "news": "news", "user_status": "user_statuses",
    "account_entry": "account_entries", "zombie": "zombies", "move": "moves",
    # where the inflection package has its own rules, Rails' win
    "cow": "cows", "police": "police", "slice": "slices", "potato": "potatos", "dormouse": "dormouses",
}


@pytest.mark.parametrize("word, plural", sorted(RAILS_PLURALS.items()))
def test_pluralize_and_singularize_as_rails(word, plural):
    assert pluralize(word) == plural
    assert singularize(plural) == ("datum" if word == "datum" else word)


def test_inflection_package_agrees_except_where_rails_differs():
    differ = {w for w, p in RAILS_PLURALS.items()
              if inflection.pluralize(w) != p or inflection.singularize(p) != singularize(p)}
    assert differ == {"cow", "police", "slice", "potato", "dormouse"}


def test_tableize_model_names():
    assert tableize("Person") == "people"
    assert tableize("Billing::LineItem") == "line_items"
    assert tableize("HTTPRequest") == "http_requests"
    assert tableize("Status") == "statuses"


def test_inflected_table_and_column_names_in_migrations():
    text = _migration("""    add_reference :posts, :person, foreign_key: true
    add_foreign_key :tickets, :statuses
    add_foreign_key :slots, :indices
    create_join_table :people, :statuses
    Person.update_all(active: true)
    Billing::Index.where(stale: true).delete_all
""")
    recs = _recs(text)
    fks = [(e.construct["object"], e.construct["target"]) for e in recs if e.construct]
    assert fks == [("posts.person_id", "people.id"), ("tickets.status_id", "statuses.id"),
                   ("slots.index_id", "indices.id")]
    sqls = _sqls(recs)
    assert "CREATE TABLE people_statuses (person_id bigint NOT NULL, status_id bigint NOT NULL)" in sqls
    assert "UPDATE people SET active = $1" in sqls
    assert "DELETE FROM indices WHERE $1" in sqls


# ---------------------------------------------------------------------------------------------------------------
# literal SQL: positions and interpolation
# ---------------------------------------------------------------------------------------------------------------

def test_heredoc_position_is_its_first_content_character():
    text = _migration("""    # déjà: characters, not bytes, count
    execute <<~SQL # the opener line may carry a comment
      UPDATE users SET name = 'é' WHERE id = 1;
      DELETE FROM sessions
    SQL
    execute(<<-ONE, <<-'TWO')
      SELECT 1
      ONE
      SELECT #{2}
      TWO
    execute <<~SQL.squish
      SELECT 3
    SQL
""")
    lits = _literals(_recs(text))
    assert [(e.line, e.column, e.dynamic) for e in lits] == [(5, 1, False), (9, 1, False), (14, 1, False)]
    lines = text.split("\n")
    assert lits[0].sql == "\n".join(lines[4:6]) + "\n"
    assert lits[1].sql == lines[8] + "\n"
    assert lits[2].sql == lines[13] + "\n"


def test_string_position_and_escapes():
    text = _migration("""    execute "UPDATE t SET a = 'é'"; execute 'UPDATE t SET b = \\'x\\''
    execute %q(UPDATE t SET c = 'q')
""")
    lits = _literals(_recs(text))
    assert [(e.line, e.column) for e in lits] == [(3, 14), (3, 46), (4, 16)]
    assert _at(text, 3, 14, 5) == "UPDAT" and _at(text, 4, 16, 5) == "UPDAT"
    assert [e.sql for e in lits] == ["UPDATE t SET a = 'é'", "UPDATE t SET b = 'x'", "UPDATE t SET c = 'q'"]


def test_interpolation_becomes_same_length_placeholders():
    text = _migration("""    execute <<~SQL
      UPDATE users SET n = '#{h = { a: { b: "}" } }; h[:a]}'
      WHERE id IN (#{ids.map { |i|
        i.to_i }.join(",")})
    SQL
    execute "UPDATE t SET a = #{value}"
    execute <<~'SQL'
      SELECT '#{kept}'
    SQL
""")
    lits = _literals(_recs(text))
    assert [(e.line, e.column, e.dynamic) for e in lits] == [(4, 1, True), (8, 14, True), (10, 1, False)]
    lines = text.split("\n")
    first = lits[0].sql.split("\n")
    # every line keeps its length, so every column maps back to the file
    assert [len(x) for x in first[:3]] == [len(x) for x in lines[3:6]]
    assert first[0] == "      UPDATE users SET n = '" + "_" * len('#{h = { a: { b: "}" } }; h[:a]}') + "'"
    assert first[2] == "_" * (len(lines[5]) - 1) + ")"
    assert lits[1].sql == "UPDATE t SET a = ________"
    assert lits[2].sql == "      SELECT '#{kept}'\n"


# ---------------------------------------------------------------------------------------------------------------
# nested blocks and code a deploy does not run
# ---------------------------------------------------------------------------------------------------------------

def test_nested_blocks_and_skipped_code():
    text = """class M < ActiveRecord::Migration[7.1]
  def change
    reversible do |dir|
      dir.down do
        execute <<~SQL
          UPDATE a SET b = 0
        SQL
      end
      dir.up do
        execute <<~SQL
          UPDATE a SET b = 1
        SQL
      end
    end
    revert do
      drop_table :old
    end
    create_table :widgets do |t|
      %i[x y].each do |c|
        t.integer c
      end
      [:a].each { |c| t.string :name, null: false }
      t.references :owner, polymorphic: true, index: false
    end
  end

  def self.down
    drop_table :widgets
  end
end
"""
    recs = _recs(text)
    lits = _literals(recs)
    # the heredoc in dir.down is skipped, and the one in dir.up still gets its own body
    assert [(e.line, e.sql.strip()) for e in lits] == [(11, "UPDATE a SET b = 1")]
    assert _sqls(recs) == ["CREATE TABLE widgets (id bigserial PRIMARY KEY, name character varying NOT NULL, "
                           "owner_type character varying, owner_id bigint)"]


def test_schema_rb_define_block_and_virtual_column():
    text = """ActiveRecord::Schema[7.2].define(version: 2025_01_01_000000) do
  enable_extension "plpgsql"

  create_table "accounts", id: :uuid, default: -> { "gen_random_uuid()" }, force: :cascade do |t|
    t.string "subtype"
    t.virtual "classification", type: :string, as: "CASE WHEN (kind = 'loan'::text) THEN 'liability'::text END", \
      stored: true
    t.index ["subtype"], name: "index_accounts_on_subtype"
  end
end
"""
    recs = _recs(text, "db/schema.rb")
    assert {e.txn for e in recs} == {None}
    assert _sqls(recs) == [
        'CREATE EXTENSION IF NOT EXISTS "plpgsql"',
        "CREATE TABLE accounts (id uuid DEFAULT gen_random_uuid() PRIMARY KEY, subtype character varying, "
        "classification character varying GENERATED ALWAYS AS (CASE WHEN (kind = 'loan'::text) THEN "
        "'liability'::text END) STORED)",
        "CREATE INDEX index_accounts_on_subtype ON accounts (subtype)",
    ]


def test_disable_ddl_transaction_means_autocommit():
    text = """class M < ActiveRecord::Migration[7.1]
  disable_ddl_transaction!
  def change
    add_index :users, :email, algorithm: :concurrently
  end
end
"""
    recs = _recs(text)
    assert [(e.txn, " ".join(e.sql.split())) for e in recs] == [
        (None, "CREATE INDEX CONCURRENTLY index_users_on_email ON users (email)")]


# ---------------------------------------------------------------------------------------------------------------
# what the tree reads that the old lexer missed or misread
# ---------------------------------------------------------------------------------------------------------------

def test_calls_that_are_not_at_a_statement_start_are_read():
    # the old scan only took a method name at a line start or after ; { | ( do then else .
    text = _migration("""    rows = select_all("SELECT id FROM users")
    count = select_value "SELECT count(*) FROM posts"
    change_table :widgets do |t|
      t.remove :name
      execute "UPDATE widgets SET x = 1"
    end
""")
    recs = _recs(text)
    assert [(e.line, e.column, e.origin, e.sql) for e in _literals(recs)] == [
        (3, 24, "Rails select_all", "SELECT id FROM users"),
        (4, 27, "Rails select_value", "SELECT count(*) FROM posts"),
        (7, 16, "Rails execute", "UPDATE widgets SET x = 1"),  # the old scan skipped the change_table block
    ]
    assert _sqls(recs) == ["ALTER TABLE widgets DROP COLUMN name"]


def test_chained_string_is_one_statement():
    # the old reader took "UPDATE t " alone
    text = _migration("""    execute "UPDATE t " \\
      "SET b = 1"
""")
    lits = _literals(_recs(text))
    assert [(e.line, e.column, e.sql) for e in lits] == [(3, 14, "UPDATE t SET b = 1")]


def test_join_table_name_and_column_options_as_rails():
    text = _migration("""    create_join_table :music_artists, :music_records
    create_join_table :users, :roles, column_options: { type: :uuid }
""")
    assert _sqls(_recs(text)) == [
        "CREATE TABLE music_artists_records (music_artist_id bigint NOT NULL, music_record_id bigint NOT NULL)",
        "CREATE TABLE roles_users (user_id uuid NOT NULL, role_id uuid NOT NULL)",
    ]


def test_model_dml_origin_keeps_the_bang_and_reads_nested_arguments():
    text = _migration("""    Setting.create!(key: "x")
    User.where("a = ?", f(1)).update_all(b: 2)
""")
    recs = _recs(text)
    assert [(e.line, e.column, e.origin, e.sql, e.dynamic) for e in recs] == [
        (3, 5, "Rails Setting.create!", "INSERT INTO settings DEFAULT VALUES", True),
        (4, 5, "Rails User.update_all", "UPDATE users SET b = $1 WHERE $2", True),
    ]


def test_non_ascii_symbol_is_a_name():
    recs = _recs(_migration("    add_column :t, :ñ, :string\n"))
    assert _sqls(recs) == ['ALTER TABLE t ADD COLUMN "ñ" character varying']


def test_migration_call_inside_a_create_table_block_is_read():
    # Rails yields the block before it sends CREATE TABLE, so an add_index there is sent too (the old scan skipped
    # everything inside the block but the t. calls)
    text = _migration("""    create_table :widgets do |t|
      t.string :name
      add_index :widgets, :name
    end
""")
    recs = _recs(text)
    assert [(e.line, e.origin, " ".join(e.sql.split())) for e in recs] == [
        (3, "Rails create_table", "CREATE TABLE widgets (id bigserial PRIMARY KEY, name character varying)"),
        (5, "Rails add_index", "CREATE INDEX index_widgets_on_name ON widgets (name)"),
    ]
