"""Targeted behaviours of the SQL rules that the catalog examples do not pin down."""

from __future__ import annotations

import pytest

from tests.conftest import findings_for


def names(fs):
    return sorted({f.name for f in fs})


def test_foreign_key_points_at_the_references_clause():
    sql = "CREATE TABLE orders (\n  id uuid PRIMARY KEY,\n  note text,  customer_id uuid REFERENCES customers (id)\n);\n"
    (f,) = findings_for(sql, profile="2026-06-30")
    col = sql.splitlines()[2].index("REFERENCES") + 1
    assert (f.name, f.line, f.column) == ("foreign-key", 3, col)
    assert f.end_column == col + len("REFERENCES") and f.object == "public.orders.orders_customer_id_fkey"
    sql = "ALTER TABLE ONLY app.orders\n    ADD CONSTRAINT fk_c FOREIGN KEY (c) REFERENCES app.c(id);\n"
    (f,) = findings_for(sql, profile="2026-06-30")
    assert (f.line, f.column, f.object) == (2, 25, "app.orders.fk_c")


def test_foreign_keys_by_profile():
    inline = "CREATE TABLE o (id uuid PRIMARY KEY, c uuid REFERENCES c (id));"
    assert names(findings_for(inline, profile="2026-08-25")) == ["foreign-key"]
    assert findings_for(inline, profile="2026-08-26") == []
    later = "ALTER TABLE o ADD CONSTRAINT o_c FOREIGN KEY (c) REFERENCES c (id) NOT VALID;"
    assert names(findings_for(later, profile="2026-06-30")) == ["foreign-key"]
    assert findings_for(later) == []
    cascade = "CREATE TABLE o (id uuid PRIMARY KEY, c uuid REFERENCES c (id) ON DELETE CASCADE);"
    (f,) = findings_for(cascade)
    # nothing in the schema says how many rows one delete reaches: information, not a warning (issue 18)
    assert f.severity.name == "info" and "ON DELETE CASCADE" in f.message
    # a child keyed by its foreign key (1:1 with its parent) or a unique key: a cascade reaches one row
    assert findings_for("CREATE TABLE o (id uuid PRIMARY KEY REFERENCES c (id) ON DELETE CASCADE);") == []
    assert findings_for("CREATE TABLE o (id uuid PRIMARY KEY, c uuid UNIQUE REFERENCES c (id) ON DELETE CASCADE);") == []


def test_function_languages():
    assert findings_for("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;") == []
    assert findings_for("CREATE FUNCTION f() RETURNS int RETURN 1;") == []
    (f,) = findings_for("CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;")
    assert f.dsql_message == "CREATE FUNCTION with language plpgsql not supported"
    (f,) = findings_for("CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS $$ return 1 $$;")
    assert f.dsql_message == "CREATE FUNCTION with language plpython3u not supported"


def test_dsql_only_syntax_parses():
    assert findings_for("CREATE INDEX ASYNC idx ON t (c);") == []
    assert findings_for("CREATE UNIQUE INDEX ASYNC IF NOT EXISTS idx ON t (c) INCLUDE (d);") == []
    assert findings_for("CREATE INDEX ASYNC ON t (c);") == []
    assert findings_for("ALTER TABLE ASYNC t VALIDATE CONSTRAINT c;") == []
    assert findings_for("AWS IAM GRANT app_role TO 'arn:aws:iam::123456789012:role/app';") == []
    assert findings_for("AWS IAM REVOKE app_role FROM 'arn:aws:iam::123456789012:role/app';") == []
    (f,) = findings_for("ALTER TABLE t VALIDATE CONSTRAINT c;")
    assert f.dsql_message == "unsupported ALTER TABLE VALIDATE CONSTRAINT statement"
    (f,) = findings_for("CREATE INDEX ASYNC app.idx ON app.t (c);")
    assert (f.name, f.column, f.sqlstate) == ("sync-index", 23, "42601")


def test_for_update_by_profile_and_schema():
    schema = "CREATE TABLE acct (id bigint, region text, owner text, PRIMARY KEY (id, region));\n"
    full_pk = "SELECT * FROM acct WHERE id = 1 AND region = 'eu' FOR UPDATE;\n"
    part_pk = "SELECT * FROM acct WHERE id = $1 FOR UPDATE;\n"
    join = "SELECT * FROM acct a JOIN other o ON o.id = a.id WHERE a.id = 1 FOR UPDATE;\n"
    old = "2026-06-30"
    assert findings_for(schema + full_pk, profile=old) == []
    (f,) = findings_for(schema + part_pk, profile=old)
    assert f.name == "select-for-update" and "full primary key" in f.message and f.line == 2
    (f,) = findings_for(full_pk, profile=old)  # the table's key is not in the scanned input
    assert "not in the scanned schema" in f.message
    assert names(findings_for(schema + join, profile=old)) == ["select-for-update"]
    # newest profile: any predicate and inner joins are fine
    for sql in (full_pk, part_pk, join):
        assert findings_for(schema + sql) == []
    for clause in ("FOR SHARE", "FOR NO KEY UPDATE"):
        (f,) = findings_for(f"SELECT * FROM acct WHERE id = 1 {clause};")
        assert f.dsql_message == "locking clauses other than FOR UPDATE/FOR KEY SHARE are not supported"
    outer = "SELECT * FROM acct a LEFT JOIN other o ON o.id = a.id FOR UPDATE OF o;"
    assert names(findings_for(outer)) == ["select-for-update"]
    assert findings_for("SELECT * FROM acct a LEFT JOIN other o ON o.id = a.id FOR UPDATE OF a;") == []
    (f,) = findings_for("SELECT * FROM jobs WHERE id = 1 FOR UPDATE SKIP LOCKED;")
    assert f.severity.name == "warning"
    assert names(findings_for("SELECT * FROM t WHERE id = 1 FOR KEY SHARE;", profile="2026-08-24")) == \
        ["select-for-update"]


def test_pk_from_another_file_counts():
    from dsql_audit.config import Config
    from dsql_audit.scan import scan
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        Path(d, "a_schema.sql").write_text("CREATE TABLE acct (id bigint PRIMARY KEY);\n")
        Path(d, "b_query.sql").write_text("SELECT * FROM acct WHERE id = 7 FOR UPDATE;\n")
        assert scan([d], config=Config(profile="2026-06-30"), jobs=1).findings == []


def test_extension_functions_are_attributed():
    sql = "CREATE TABLE u (id uuid PRIMARY KEY DEFAULT uuid_generate_v4());"
    (f,) = findings_for(sql)
    assert f.name == "extension" and "uuid-ossp" in f.message and f.column == sql.index("uuid_generate") + 1
    (f,) = findings_for("CREATE TABLE u (id uuid PRIMARY KEY, email citext);")
    assert "citext" in f.message
    (f,) = findings_for("CREATE INDEX ASYNC i ON u (name gin_trgm_ops);")
    assert "pg_trgm" in f.message
    assert findings_for("SELECT gen_random_uuid();") == []


def test_newer_postgres_syntax():
    cases = {
        "SELECT * FROM JSON_TABLE('[]'::jsonb, '$[*]' COLUMNS (a int PATH '$.a')) j;": "JSON_TABLE",
        "CREATE TABLE g (id int PRIMARY KEY, a int GENERATED ALWAYS AS (id * 2));": "virtual generated",
        "SELECT uuidv7();": "uuidv7",
        "SELECT JSON_VALUE('{}'::jsonb, '$.a');": "JSON_VALUE",
        "UPDATE t SET a = 1 WHERE id = 1 RETURNING old.a;": "OLD/NEW",
    }
    for sql, word in cases.items():
        fs = [f for f in findings_for(sql) if f.name == "newer-postgres-syntax"]
        assert fs and word in fs[0].message, (sql, [f.message for f in findings_for(sql)])
    merge = findings_for("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING t.id;")
    assert names(merge) == ["merge", "newer-postgres-syntax"]
    # PostgreSQL 16 has these
    for sql in ("CREATE TABLE g (id int PRIMARY KEY, a int GENERATED ALWAYS AS (id * 2) STORED);",
                "SELECT json('1'), json_object('a': 1), '1' IS JSON;"):
        assert findings_for(sql) == [], sql


def test_parse_errors_keep_the_scan_going():
    fs = findings_for("SELEC 1;\nTRUNCATE t;\nCREATE TABLE (;\n")
    assert [(f.name, f.line) for f in fs] == [("parse-error", 1), ("truncate", 2), ("parse-error", 3)]
    assert fs[0].column == 1 and "syntax error" in fs[0].message


def test_do_block_statements_are_analysed():
    sql = ("DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood') THEN\n"
           "    CREATE TYPE mood AS ENUM ('a', 'b');\n  END IF;\n  PERFORM pg_notify('c', 'x');\nEND $$;\n")
    fs = findings_for(sql)
    assert [(f.name, f.line) for f in fs] == [("do-block", 1), ("custom-type", 4), ("listen-notify", 6)]
    assert fs[1].column == 5


def test_row_limit_known_from_the_text():
    assert names(findings_for("INSERT INTO t SELECT generate_series(1, 3001);")) == ["unbounded-write"]
    assert findings_for("INSERT INTO t SELECT generate_series(1, 3000);") == []
    values = "INSERT INTO t VALUES " + ", ".join(f"({i})" for i in range(3001)) + ";"
    (f,) = findings_for(values)
    assert f.severity.name == "error" and f.dsql_message == "transaction row limit exceeded"
    copy = "COPY t (a) FROM stdin;\n" + "".join(f"{i}\n" for i in range(3001)) + "\\.\n"
    (f,) = findings_for(copy)
    assert "COPY of 3001 rows" in f.message


def test_pg_dump_idioms_reported_once():
    dump = "-- Dumped by pg_dump version 16.4\n" + "".join(
        f"SET statement_timeout = 0;\nCREATE TABLE t{i} (id integer NOT NULL);\n"
        f"ALTER TABLE ONLY public.t{i}\n    ADD CONSTRAINT t{i}_pkey PRIMARY KEY (id);\n" for i in range(5))
    fs = findings_for(dump)
    pk = [f for f in fs if f.name == "alter-table"]
    assert len(pk) == 1 and "4 more like it" in pk[0].message and pk[0].occurrences == 5
    assert len([f for f in fs if f.name == "session-setting"]) == 1


def test_index_key_collation_and_explicit_btree():
    (f,) = findings_for('CREATE INDEX ASYNC r_name ON release (name COLLATE "de-DE-x-icu");')
    assert (f.name, f.severity.name) == ("collation", "error")
    assert findings_for('CREATE INDEX ASYNC r_name ON release (name COLLATE "C");') == []
    (f,) = findings_for("CREATE INDEX ASYNC r_name ON release USING btree (name);")
    # DSQL's CREATE INDEX ASYNC has no USING clause at all (DSQL-FACTS §4): refused, not a style point
    assert (f.name, f.severity.name, f.column) == ("index-method", "error", 38)
    assert findings_for("CREATE INDEX ASYNC /* USING btree */ r_name ON release (name);") == []


def test_unconfirmed_settings_are_warnings():
    (f,) = findings_for("SET lock_timeout = 0;")
    assert f.severity.name == "error"
    (f,) = findings_for("SET client_min_messages = warning;")
    assert f.severity.name == "warning" and "not recorded" in f.message
    assert findings_for("SET TimeZone = 'UTC';") == []


def test_domain_over_unsupported_type():
    (f,) = findings_for("CREATE DOMAIN doc AS xml;")
    assert f.message.startswith("Domain public.doc is over type xml")


def test_adding_a_foreign_key_names_not_valid_only_where_it_would_help():
    sql = "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (customer_id) REFERENCES customers (id);\n"
    [before] = [f for f in findings_for(sql, profile="2026-06-30") if f.name == "foreign-key"]
    assert "NOT VALID" not in before.message and "before 2026-08-26" in before.message
    [after] = [f for f in findings_for(sql, profile="2026-09-18") if f.name == "foreign-key"]
    assert "without NOT VALID" in after.message
    assert not [f for f in findings_for(sql.replace(";", " NOT VALID;"), profile="2026-09-18")
                if f.name == "foreign-key"]


# --- issue 19: every refusal DSQL-FACTS documents is an error ---------------------------------------------

REFUSED = [
    # (statement, rule, a phrase of the message)
    ('CREATE TABLE t (id uuid PRIMARY KEY, code text COLLATE "C");', "collation", 'per-column COLLATE, "C" included'),
    ('CREATE TABLE t (id uuid PRIMARY KEY, name text COLLATE "en_US");', "collation", "per-column COLLATE"),
    ("ALTER FUNCTION f(int) IMMUTABLE;", "unsupported-statement", "ALTER FUNCTION … IMMUTABLE"),
    ("ALTER FUNCTION f(int) STRICT COST 5;", "unsupported-statement", "ALTER FUNCTION … STRICT COST"),
    ("ALTER PROCEDURE p() SET search_path = app;", "unsupported-statement", "ALTER PROCEDURE … SET"),
    ("ALTER AGGREGATE a(int) RENAME TO b;", "unsupported-statement", "ALTER AGGREGATE"),
    ("ALTER AGGREGATE a(int) OWNER TO app;", "unsupported-statement", "ALTER AGGREGATE"),
    ("DROP POLICY p ON t;", "row-level-security", "DROP POLICY"),
    ("ALTER TABLE t DISABLE ROW LEVEL SECURITY;", "row-level-security", "DISABLE ROW LEVEL SECURITY"),
    ("ALTER TABLE t NO FORCE ROW LEVEL SECURITY;", "row-level-security", "NO FORCE ROW LEVEL SECURITY"),
    ("CREATE TABLE t (id uuid PRIMARY KEY) ON COMMIT DELETE ROWS;", "temporary-table", "ON COMMIT DELETE ROWS"),
    ("CREATE INDEX ASYNC i ON t USING btree (c);", "index-method", "no USING clause"),
    ("CREATE SEQUENCE s AS integer CACHE 1;", "sequence", "must be bigint"),
    ("CREATE SEQUENCE s AS smallint CACHE 65536;", "sequence", "must be bigint"),
    ("DROP TRIGGER trg ON t;", "trigger", "without IF EXISTS"),
    ("ALTER TABLE t ENABLE ALWAYS TRIGGER trg;", "trigger", "ENABLE ALWAYS TRIGGER trg"),
    ("ALTER TABLE t ENABLE REPLICA TRIGGER trg;", "trigger", "ENABLE REPLICA TRIGGER trg"),
    ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;", "isolation-level", "SERIALIZABLE"),
    ("CREATE TABLE d (body jsonb PRIMARY KEY);", "index-definition", "jsonb"),
    ("ALTER ROLE app WITH PASSWORD 'x';", "unsupported-statement", "PASSWORD is refused"),
    ("ALTER ROLE app VALID UNTIL 'infinity';", "unsupported-statement", "VALID UNTIL is refused"),
    ("ALTER ROLE app SUPERUSER CREATEROLE;", "unsupported-statement", "SUPERUSER CREATEROLE is refused"),
    ("ALTER USER app WITH PASSWORD 'x';", "unsupported-statement", "PASSWORD is refused"),
    ("ALTER ROLE app SET work_mem = '64MB';", "unsupported-statement", "SET is not supported"),
    ("ALTER POLICY p ON t RENAME TO q;", "row-level-security", "Policy"),
    ("CREATE TABLE d (id uuid PRIMARY KEY, body jsonb UNIQUE);", "index-definition", "jsonb"),
    ("CREATE TABLE d (id uuid PRIMARY KEY, body jsonb);\nCREATE INDEX ASYNC d_body ON d (body);",
     "index-definition", "public.d.body is jsonb"),
]
ACCEPTED = [
    "ALTER FUNCTION f(int) RENAME TO g;", "ALTER FUNCTION f(int) OWNER TO app;", "ALTER FUNCTION f(int) SET SCHEMA s;",
    "DROP TRIGGER IF EXISTS trg ON t;", "ALTER TABLE t ENABLE TRIGGER ALL;", "CREATE SEQUENCE s AS bigint CACHE 1;",
    "CREATE TABLE d (id uuid PRIMARY KEY, body jsonb);\nCREATE INDEX ASYNC d_k ON d ((body->>'k'));",
    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;",  # refused, but as SET TRANSACTION (next test)
    "ALTER ROLE app INHERIT;", "ALTER ROLE app USER a, b;", "ALTER ROLE app RESET ALL;", "ALTER ROLE app RESET work_mem;",
]


@pytest.mark.parametrize("sql, phrase", [
    ("ALTER INDEX i RENAME TO j;", "unconfirmed"),
    ("ALTER TABLE t ALTER COLUMN c SET COMPRESSION lz4;", "unconfirmed"),
    ("ALTER TABLE t ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME s CACHE 1);", "not confirmed"),
])
def test_what_the_facts_leave_unconfirmed_is_a_warning_that_says_so(sql, phrase):
    found = [f for f in findings_for(sql) if f.name == "alter-table"]
    assert [f.severity.name for f in found] == ["warning"] and phrase in found[0].message, found


@pytest.mark.parametrize("sql, rule, phrase", REFUSED)
def test_what_dsql_refuses_is_an_error(sql, rule, phrase):
    found = [f for f in findings_for(sql) if f.name == rule]
    assert found and all(f.severity.name == "error" for f in found), [(f.name, f.severity, f.message) for f in found]
    assert any(phrase in f.message for f in found), [f.message for f in found]


@pytest.mark.parametrize("sql", ACCEPTED)
def test_what_dsql_accepts_is_not_an_error_of_these_rules(sql):
    rules = {r for _, r, _ in REFUSED} - {"isolation-level"}
    assert not [f for f in findings_for(sql) if f.name in rules], sql


def test_set_transaction_keeps_its_own_message_unless_it_names_a_level_dsql_lacks():
    (f,) = findings_for("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;")
    assert f.dsql_message == 'setting configuration parameter "TRANSACTION" not supported'
    (f,) = findings_for("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;")
    assert f.dsql_message == "Unsupported isolation level: SERIALIZABLE"


def test_a_sequence_as_integer_in_pg_dumps_serial_idiom_is_an_error():
    dump = ("--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.users (id integer NOT NULL);\n"
            "CREATE SEQUENCE public.users_id_seq\n    AS integer\n    START WITH 1\n    CACHE 1;\n")
    found = [f for f in findings_for(dump) if f.name == "sequence"]
    assert [(f.severity.name, f.line) for f in found] == [("error", 6)]


def test_a_begin_inside_a_transaction_does_not_start_another():
    found = findings_for("BEGIN;\nCREATE TABLE a (id uuid PRIMARY KEY);\nBEGIN;\nCREATE TABLE b (id uuid PRIMARY KEY);\n"
                         "COMMIT;\n")
    assert [(f.name, f.line) for f in found] == [("multiple-ddl", 4)]


def test_lastval_is_refused_with_its_own_fix_and_currval_is_not(tmp_path):
    """DSQL-FACTS §1.1: nextval/currval/setval work on DSQL, lastval() does not. The finding's fix is the
    variant's (RETURNING), not the rule's advice about serial columns."""
    found = findings_for("INSERT INTO orders (total) VALUES (1);\nSELECT lastval();\nSELECT currval('s');\n"
                         "SELECT setval('s', 10);\n")
    hits = [f for f in found if f.name == "sequence"]
    assert [(f.line, f.message.split(" ")[0]) for f in hits] == [(2, "lastval()")]
    assert "RETURNING" in hits[0].fix and "serial" not in hits[0].fix


def test_on_update_cascade_is_reported_only_where_the_referenced_key_can_change():
    """Prisma writes ON UPDATE CASCADE on every relation, naming the primary key: a primary key does not
    change, so nothing fans out. A natural key (a UNIQUE column) may change: that one is reported."""
    sql = ('CREATE TABLE "User" (id text PRIMARY KEY, code text UNIQUE);\n'
           "CREATE TABLE b (id uuid PRIMARY KEY, a_id text, a_code text, c_id text REFERENCES \"User\" "
           "ON UPDATE CASCADE);\n"
           'ALTER TABLE b ADD CONSTRAINT f1 FOREIGN KEY (a_id) REFERENCES "User"("id") ON UPDATE CASCADE NOT VALID;\n'
           'ALTER TABLE b ADD CONSTRAINT f2 FOREIGN KEY (a_code) REFERENCES "User"(code) ON UPDATE CASCADE NOT VALID;\n')
    found = [(f.line, f.message.split(":")[0]) for f in findings_for(sql) if f.name == "foreign-key"]
    assert found == [(4, "ON UPDATE CASCADE on b → User (code)")]


def test_each_alter_table_sub_clause_is_reported_at_its_own_line():
    """pg_dump and Prisma write one ALTER TABLE with a clause per line: each finding on its clause."""
    sql = ("ALTER TABLE ONLY public.orders\n    ADD COLUMN note text NOT NULL,\n"
           "    ALTER COLUMN total SET DEFAULT 0,\n    ALTER COLUMN total TYPE numeric(12, 2),\n"
           "    ADD CONSTRAINT c CHECK (total > 0);\n"
           'ALTER TABLE "s"."t" ALTER COLUMN a TYPE int, ALTER COLUMN b TYPE int;\n')
    found = [(f.line, f.column) for f in findings_for(sql) if f.name == "alter-table"]
    assert found == [(2, 5), (4, 5), (5, 9), (6, 21), (6, 46)]
