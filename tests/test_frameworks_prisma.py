"""dsql_audit.sources.frameworks.prisma on tree-sitter's prisma grammar: what the grammar misreads (strings with
``//`` or escaped quotes, ``Unsupported("…")``, view and type blocks, enum attributes, named arguments inside a
function), what the tree reads that the old line-by-line reading did not (attributes over several lines), and
Prisma's default ``onUpdate: Cascade``, which is no row-bound warning."""

from __future__ import annotations

from dsql_audit.sources.frameworks import extract, prisma

PROFILE = "2026-09-18"


def _recs(text: str):
    assert prisma.detect("prisma/schema.prisma", text)
    return extract("prisma/schema.prisma", text)


def _sqls(recs):
    return [" ".join(e.sql.split()) for e in recs if e.sql and not e.literal]


def _constructs(recs):
    return [e.construct for e in recs if e.construct]


def _row(e, line: int) -> str:
    """The row of a synthesized statement that stands for file line ``line``."""
    return e.sql.split("\n")[line - e.line]


# ---------------------------------------------------------------------------------------------------------------
# what the grammar misreads
# ---------------------------------------------------------------------------------------------------------------

def test_a_string_with_slashes_or_escaped_quotes_does_not_swallow_the_next_fields():
    # the grammar reads "//" inside a string as a comment and \" as the string's end: "url" and "n" were lost
    text = """model Link {
  id    Int    @id
  href  String @default("https://example.com")
  title String @default("say \\"hi\\"")
  url   String
  n     Int
}
"""
    (table,) = _recs(text)
    assert _sqls([table]) == ['CREATE TABLE "Link" ( "id" INTEGER NOT NULL PRIMARY KEY, "href" TEXT NOT NULL DEFAULT '
                              '\'https://example.com\', "title" TEXT NOT NULL DEFAULT \'say \\"hi\\"\', "url" TEXT '
                              'NOT NULL, "n" INTEGER NOT NULL)']
    assert '"url" TEXT' in _row(table, 5) and '"n" INTEGER' in _row(table, 6)


def test_unsupported_types_keep_their_text_and_the_fields_after_them():
    text = """model Place {
  id   Int                                   @id
  geo  Unsupported("geometry(Point, 4326)")?
  name String
}
"""
    (table,) = _recs(text)
    assert _sqls([table]) == ['CREATE TABLE "Place" ( "id" INTEGER NOT NULL PRIMARY KEY, "geo" geometry(Point, 4326), '
                              '"name" TEXT NOT NULL)']
    row = _row(table, 3)
    assert row.index("geometry") == text.split("\n")[2].index("Unsupported")  # at the column of the type


def test_view_and_type_blocks_are_no_tables_and_do_not_hide_the_models_after_them():
    text = """view Stats {
  id Int    @unique
  n  Int    @map("n_x")
  @@map("stats")
}
type Address {
  street String
}
model Account {
  id Int @id
}
"""
    recs = _recs(text)
    assert _sqls(recs) == ['CREATE TABLE "Account" ( "id" INTEGER NOT NULL PRIMARY KEY)']
    assert recs[0].line == 9


def test_enum_attributes_name_the_type_and_its_values_in_the_database():
    # the grammar keeps no attribute inside an enum; Prisma creates the @map names
    text = """enum Color {
  RED   @map("red") // a comment
  GREEN
  @@map("colors")
}
model Car {
  id    Int   @id
  color Color @default(RED)
}
"""
    recs = _recs(text)
    assert _sqls(recs) == ["CREATE TYPE \"colors\" AS ENUM ('red', 'GREEN')",
                           'CREATE TABLE "Car" ( "id" INTEGER NOT NULL PRIMARY KEY, "color" "colors" NOT NULL DEFAULT '
                           "'red')"]


def test_named_arguments_inside_functions_are_read():
    text = """datasource db {
  provider   = "postgresql"
  extensions = [pgcrypto, postgis(map: "pg_gis", schema: "ext")]
}
model Doc {
  id    Int    @id
  email String
  name  String
  score Float  @default(-1.5)

  @@index([email(ops: raw("gin_trgm_ops"))], map: "doc_email_trgm", type: Gin)
  @@index([name(sort: Desc), email(length: 10)])
}
"""
    recs = _recs(text)
    assert _sqls(recs) == [
        'CREATE EXTENSION IF NOT EXISTS "pgcrypto"',
        'CREATE EXTENSION IF NOT EXISTS "pg_gis"',
        'CREATE TABLE "Doc" ( "id" INTEGER NOT NULL PRIMARY KEY, "email" TEXT NOT NULL, "name" TEXT NOT NULL, '
        '"score" DOUBLE PRECISION NOT NULL DEFAULT -1.5)',
        'CREATE INDEX "doc_email_trgm" ON "Doc" USING gin ("email")',
        'CREATE INDEX "Doc_name_email_idx" ON "Doc" ("name" DESC, "email")',
    ]
    assert [(e.line, e.column) for e in recs[:2]] == [(3, 17), (3, 27)]


def test_columns_count_characters_when_comments_hold_other_alphabets():
    text = '// schéma: "ünïcode\nmodel Café {\n  id    Int    @id\n  label String @default("é")\n}\n'
    (table,) = _recs(text)
    assert (table.line, table.column) == (2, 1)
    assert table.sql.startswith('CREATE TABLE "Café" (')
    assert _row(table, 4).index("TEXT") == text.split("\n")[3].index("String")  # character columns


# ---------------------------------------------------------------------------------------------------------------
# what the tree reads that the old line-by-line reading did not
# ---------------------------------------------------------------------------------------------------------------

def test_a_relation_written_over_several_lines_is_a_foreign_key():
    # the old reading cut an attribute's arguments at the end of its line: no fields, no key
    text = """model User {
  id    Int    @id
  posts Post[]
}
model Post {
  id       Int   @id
  authorId Int?
  author   User? @relation(
    fields: [authorId],
    references: [id]
  )
}
"""
    recs = _recs(text)
    fks = [(e.line, e.column, e.construct) for e in recs if e.construct]
    assert fks == [(8, 18, {"kind": "OrmForeignKey", "orm": "Prisma", "object": "Post.authorId", "target": "User.id",
                            "on_delete": "SET NULL", "added_later": True})]


# ---------------------------------------------------------------------------------------------------------------
# onUpdate: Cascade (Prisma's default on every relation) is no row-bound warning
# ---------------------------------------------------------------------------------------------------------------

_RELATION = """datasource db {{
  provider = "postgresql"
}}
model User {{
  id    Int    @id
  posts Post[]
}}
model Post {{
  id       Int  @id
  authorId Int
  author   User @relation(fields: [authorId], references: [id]{extra})
}}
"""


def test_on_update_is_not_carried_by_the_foreign_key_construct():
    plain = _constructs(_recs(_RELATION.format(extra="")))
    cascading = _constructs(_recs(_RELATION.format(extra=", onUpdate: Cascade")))
    assert plain == cascading == [{"kind": "OrmForeignKey", "orm": "Prisma", "object": "Post.authorId",
                                   "target": "User.id", "on_delete": "RESTRICT", "added_later": True}]


def test_a_scan_reports_no_cascade_for_on_update(tmp_path):
    from dsql_audit.config import Config
    from dsql_audit.scan import scan

    (tmp_path / "prisma").mkdir()
    (tmp_path / "prisma" / "schema.prisma").write_text(_RELATION.format(extra=", onUpdate: Cascade"))
    result = scan([str(tmp_path)], config=Config(profile=PROFILE))
    keys = [f for f in result.findings if f.name == "orm-foreign-key"]
    assert keys, [f.name for f in result.findings]
    assert not [f.message for f in keys if "3,000-row" in f.message or "ON UPDATE" in f.message]
    # the same relation with onDelete: Cascade is the one a delete fans out from
    (tmp_path / "prisma" / "schema.prisma").write_text(_RELATION.format(extra=", onDelete: Cascade"))
    result = scan([str(tmp_path)], config=Config(profile=PROFILE))
    assert [f for f in result.findings if f.name == "orm-foreign-key" and "3,000-row" in f.message]
