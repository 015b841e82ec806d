"""dsql_audit.sources.frameworks: ORM schemas and migration DSLs of non-Python ecosystems.

The fixtures under fixtures/apps/{prisma,prisma-clean,rails,rails-clean,liquibase,typeorm,sequelize,knex,jpa} are
small realistic projects. For each file the test lists every record ``extract`` must return: its place, origin,
transaction and either the construct, the SQL the framework sends for it (whitespace folded) or, for SQL written
in the DSL, the start of that text. Then it checks what the SQL rules make of the synthesized SQL, and where.
"""

from __future__ import annotations

import json
import re

import pytest
from pathlib import Path

from dsql_audit.sources.frameworks import extract, prisma, synth
from tests.conftest import FIXTURES

APPS = FIXTURES / "apps"
PROFILE = "2026-09-18"


def _records(rel: str):
    path = APPS / rel
    return extract(str(path), path.read_text())


def _summary(e):
    if e.construct is not None:
        x = e.construct
    elif e.literal:
        x = ("literal", e.sql.strip().split("\n")[0])
    else:
        x = " ".join(e.sql.split())
    return (e.line, e.column, e.origin, e.txn, x)


FK = "OrmForeignKey"


def _fk(orm, obj, target, on_delete, later):
    return {"kind": FK, "orm": orm, "object": obj, "target": target, "on_delete": on_delete, "added_later": later}


EXPECTED = {
    "prisma/prisma/schema.prisma": ("prisma", [
        (11, 1, "Prisma enum", None, "CREATE TYPE \"Role\" AS ENUM ('USER', 'ADMIN')"),
        (16, 1, "Prisma model", None, 'CREATE TABLE "User" ( "id" SERIAL NOT NULL PRIMARY KEY, "email" TEXT NOT NULL, '
                                      '"name" TEXT, "role" "Role" NOT NULL DEFAULT \'USER\', "lastIp" INET, '
                                      '"createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP)'),
        (18, 22, "Prisma @unique", None, 'CREATE UNIQUE INDEX "User_email_key" ON "User" ("email")'),
        (26, 1, "Prisma model", None, 'CREATE TABLE "posts" ( "id" BIGSERIAL NOT NULL PRIMARY KEY, "title" '
                                      'VARCHAR(200) NOT NULL, "tags" TEXT[], "authorId" INTEGER NOT NULL, '
                                      '"published" BOOLEAN NOT NULL DEFAULT false)'),
        (30, 22, "Prisma @relation", None, _fk("Prisma", "posts.authorId", "User.id", "CASCADE", True)),
        (34, 3, "Prisma @@index", None,
         'CREATE INDEX "posts_authorId_published_idx" ON "posts" ("authorId", "published")'),
        (38, 1, "Prisma model", None, 'CREATE TABLE "Comment" ( "id" UUID NOT NULL PRIMARY KEY, "body" TEXT NOT NULL, '
                                      '"postId" BIGINT NOT NULL)'),
        (41, 17, "Prisma @relation", None, _fk("Prisma", "Comment.postId", "posts.id", "RESTRICT", True)),
        (44, 3, "Prisma @@unique", None,
         'CREATE UNIQUE INDEX "Comment_postId_body_key" ON "Comment" ("postId", "body")'),
    ]),
    "prisma-clean/prisma/schema.prisma": ("prisma", [
        (12, 1, "Prisma model", None, 'CREATE TABLE "User" ( "id" UUID NOT NULL PRIMARY KEY, "email" TEXT NOT NULL, '
                                      '"name" TEXT, "role" TEXT NOT NULL DEFAULT \'USER\', "createdAt" TIMESTAMP(3) '
                                      'NOT NULL DEFAULT CURRENT_TIMESTAMP)'),
        (21, 1, "Prisma model", None, 'CREATE TABLE "Post" ( "id" UUID NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY, '
                                      '"title" VARCHAR(200) NOT NULL, "authorId" UUID NOT NULL, "published" BOOLEAN '
                                      'NOT NULL DEFAULT false)'),
    ]),
    "rails/db/migrate/20240110120000_create_users.rb": ("rails", [
        (3, 5, "Rails enable_extension", 1, 'CREATE EXTENSION IF NOT EXISTS "citext"'),
        (5, 5, "Rails create_table", 1, "CREATE TABLE users (id bigserial PRIMARY KEY, email character varying NOT "
                                        "NULL, name character varying, last_sign_in_ip inet, roles character varying[] "
                                        "DEFAULT '{}', created_at timestamp(6) NOT NULL, updated_at timestamp(6) NOT "
                                        "NULL)"),
        (12, 5, "Rails add_index", 1, "CREATE UNIQUE INDEX index_users_on_email ON users (email)"),
    ]),
    "rails/db/migrate/20240125101500_create_posts.rb": ("rails", [
        (3, 5, "Rails create_enum", 1, "CREATE TYPE post_status AS ENUM ('draft', 'published', 'archived')"),
        (5, 5, "Rails create_table", 1, "CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint NOT NULL, title "
                                        "character varying NOT NULL, status post_status NOT NULL DEFAULT 'draft', "
                                        "search_vector tsvector, created_at timestamp(6) NOT NULL, updated_at "
                                        "timestamp(6) NOT NULL)"),
        (6, 7, "Rails t.references", 1, "CREATE INDEX index_posts_on_user_id ON posts (user_id)"),
        (6, 7, "Rails t.references", 1, _fk("Rails", "posts.user_id", "users.id", "CASCADE", False)),
        (12, 5, "Rails add_index", 1, "CREATE INDEX index_posts_on_search_vector ON posts USING gin (search_vector)"),
    ]),
    "rails/db/migrate/20240214093000_add_organization_to_users.rb": ("rails", [
        (3, 5, "Rails create_table", 1, "CREATE TABLE organizations (id bigserial PRIMARY KEY, name character varying "
                                        "NOT NULL)"),
        (6, 5, "Rails add_reference", 1, "ALTER TABLE users ADD COLUMN organization_id bigint"),
        (6, 5, "Rails add_reference", 1, "CREATE INDEX index_users_on_organization_id ON users (organization_id)"),
        (7, 5, "Rails add_foreign_key", 1, _fk("Rails", "users.organization_id", "organizations.id", None, True)),
        (9, 1, "Rails execute", 1, ("literal", "CREATE FUNCTION touch_updated_at() RETURNS trigger AS $$")),
        (16, 5, "Rails User.update_all", 1, "UPDATE users SET organization_id = $1 WHERE $2"),
    ]),
    "rails/db/migrate/20240301080000_index_posts_on_title.rb": ("rails", [
        (5, 5, "Rails add_index", None, "CREATE INDEX CONCURRENTLY index_posts_on_title ON posts (title)"),
        (6, 14, "Rails execute", None, ("literal", "TRUNCATE TABLE sessions")),
    ]),
    "rails/db/schema.rb": ("rails", [
        (5, 3, "Rails enable_extension", None, 'CREATE EXTENSION IF NOT EXISTS "citext"'),
        (6, 3, "Rails enable_extension", None, 'CREATE EXTENSION IF NOT EXISTS "plpgsql"'),
        (10, 3, "Rails create_enum", None, "CREATE TYPE post_status AS ENUM ('draft', 'published', 'archived')"),
        (12, 3, "Rails create_table", None, "CREATE TABLE organizations (id bigserial PRIMARY KEY, name character "
                                            "varying NOT NULL)"),
        (16, 3, "Rails create_table", None, "CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint NOT NULL, "
                                            "title character varying NOT NULL, status post_status NOT NULL DEFAULT "
                                            "'draft', search_vector tsvector, created_at timestamp(6) NOT NULL, "
                                            "updated_at timestamp(6) NOT NULL)"),
        (23, 5, "Rails t.index", None, "CREATE INDEX index_posts_on_search_vector ON posts USING gin (search_vector)"),
        (24, 5, "Rails t.index", None, "CREATE INDEX index_posts_on_title ON posts (title)"),
        (25, 5, "Rails t.index", None, "CREATE INDEX index_posts_on_user_id ON posts (user_id)"),
        (28, 3, "Rails create_table", None, "CREATE TABLE users (id bigserial PRIMARY KEY, email character varying "
                                            "NOT NULL, name character varying, last_sign_in_ip inet, roles character "
                                            "varying[] DEFAULT '{}', created_at timestamp(6) NOT NULL, updated_at "
                                            "timestamp(6) NOT NULL, organization_id bigint)"),
        (36, 5, "Rails t.index", None, "CREATE UNIQUE INDEX index_users_on_email ON users (email)"),
        (37, 5, "Rails t.index", None, "CREATE INDEX index_users_on_organization_id ON users (organization_id)"),
        (40, 3, "Rails add_foreign_key", None, _fk("Rails", "posts.user_id", "users.id", "CASCADE", True)),
        (41, 3, "Rails add_foreign_key", None, _fk("Rails", "users.organization_id", "organizations.id", None, True)),
    ]),
    "rails-clean/db/migrate/20240110120000_create_users.rb": ("rails", [
        (6, 5, "Rails create_table", None, "CREATE TABLE users (id uuid DEFAULT gen_random_uuid() PRIMARY KEY, email "
                                           "character varying NOT NULL, name character varying, created_at "
                                           "timestamp(6) NOT NULL, updated_at timestamp(6) NOT NULL)"),
    ]),
    "rails-clean/db/migrate/20240125101500_create_posts.rb": ("rails", [
        (5, 5, "Rails create_table", None, "CREATE TABLE posts (id uuid DEFAULT gen_random_uuid() PRIMARY KEY, user_id "
                                           "uuid NOT NULL, title character varying NOT NULL, status character varying "
                                           "NOT NULL DEFAULT 'draft', created_at timestamp(6) NOT NULL, updated_at "
                                           "timestamp(6) NOT NULL)"),
    ]),
    "liquibase/db/changelog/db.changelog-master.xml": ("liquibase", [
        (9, 9, "Liquibase createTable", 1, "CREATE TABLE customer ( id BIGINT GENERATED BY DEFAULT AS IDENTITY NOT "
                                           "NULL PRIMARY KEY, email VARCHAR(255) NOT NULL UNIQUE, last_ip inet)"),
        (18, 9, "Liquibase createIndex", 1, "CREATE INDEX idx_customer_email ON customer (email)"),
        (24, 9, "Liquibase createTable", 2, "CREATE TABLE orders ( id UUID DEFAULT gen_random_uuid() PRIMARY KEY, "
                                            "customer_id BIGINT NOT NULL, placed_at TIMESTAMP)"),
        (29, 17, "Liquibase createTable", 2, _fk("Liquibase", "orders.customer_id", "customer.id", "CASCADE", False)),
        (37, 9, "Liquibase createSequence", None, "CREATE SEQUENCE invoice_number_seq START WITH 1000"),
        (38, 14, "Liquibase sql", None, ("literal", "CREATE INDEX ASYNC idx_orders_placed_at ON orders (placed_at);")),
        (49, 13, "Liquibase addColumn", 3, "ALTER TABLE orders ADD COLUMN coupon_id BIGINT"),
        (51, 9, "Liquibase addForeignKeyConstraint", 3, _fk("Liquibase", "orders.coupon_id", "coupon.id", "SET NULL",
                                                            True)),
        (58, 26, "Liquibase createProcedure", 4, ("literal", "CREATE OR REPLACE FUNCTION orders_touch() RETURNS "
                                                             "trigger AS $$")),
    ]),
    "liquibase/db/changelog/db.changelog-payments.yaml": ("liquibase", [
        (6, 11, "Liquibase createTable", 1, "CREATE TABLE payment ( id UUID DEFAULT gen_random_uuid() PRIMARY KEY, "
                                            "order_id UUID NOT NULL, tags TEXT[])"),
        (18, 19, "Liquibase createTable", 1, _fk("Liquibase", "payment.order_id", "orders.id", None, False)),
        (25, 11, "Liquibase createIndex", 1, "CREATE INDEX idx_payment_order ON payment (order_id)"),
        (37, 18, "Liquibase sql", None, ("literal", "TRUNCATE TABLE payment_staging")),
        (38, 11, "Liquibase createSequence", None, "CREATE SEQUENCE payment_seq CACHE 65536"),
        (48, 1, "Liquibase sql", 2, ("literal", "LOCK TABLE payment IN EXCLUSIVE MODE;")),
        (50, 11, "Liquibase addForeignKeyConstraint", 2, _fk("Liquibase", "payment.order_id", "orders.id", "CASCADE",
                                                             True)),
    ]),
    "typeorm/src/migrations/1700000000000-CreateAccounts.ts": ("typeorm", [
        (7, 34, "TypeORM queryRunner.query", 1, ("literal", "CREATE TYPE \"account_status_enum\" AS ENUM('active', "
                                                            "'closed')")),
        (8, 15, "TypeORM createTable", 1, "CREATE TABLE account ( id SERIAL NOT NULL PRIMARY KEY, email character "
                                          "varying(255) NOT NULL UNIQUE, owner_id integer NOT NULL, ip inet)"),
        (18, 21, "TypeORM createTable foreignKeys", 1, _fk("TypeORM", "account.owner_id", "user.id", "CASCADE",
                                                           False)),
        (25, 13, "TypeORM createIndex", 1, 'CREATE INDEX "IDX_account_owner" ON account (owner_id)'),
        (29, 13, "TypeORM createForeignKey", 1, _fk("TypeORM", "account.plan_id", "plan.id", "SET NULL", True)),
        (37, 14, "TypeORM queryRunner.query", 1, ("literal", 'SELECT * FROM "account" WHERE "id" = $1 FOR NO KEY '
                                                             'UPDATE')),
    ]),
    "typeorm/src/migrations/1700000100000-BackfillPlans.ts": ("typeorm", [
        (8, 34, "TypeORM queryRunner.query", None, ("literal", 'CREATE INDEX ASYNC "IDX_account_email" ON "account" '
                                                               '("email")')),
        (9, 34, "TypeORM queryRunner.query", None, ("literal", 'UPDATE "account" SET "plan_id" = NULL WHERE "plan_id" '
                                                               '= 0')),
    ]),
    "sequelize/migrations/20240101000000-create-user.js": ("sequelize", [
        (18, 15, "Sequelize ENUM", None, "CREATE TYPE \"enum_Users_role\" AS ENUM ('member', 'admin')"),
        (6, 11, "Sequelize createTable", None, 'CREATE TABLE "Users" ( id SERIAL NOT NULL PRIMARY KEY, email '
                                               'VARCHAR(255) NOT NULL, role "enum_Users_role" DEFAULT \'member\', '
                                               '"orgId" INTEGER, tags VARCHAR(255)[], "createdAt" TIMESTAMP WITH TIME '
                                               'ZONE NOT NULL)'),
        (23, 21, "Sequelize createTable references", None, _fk("Sequelize", "Users.orgId", "Orgs.id", "CASCADE",
                                                               False)),
        (29, 11, "Sequelize addIndex", None, 'CREATE UNIQUE INDEX users_email ON "Users" (email)'),
    ]),
    "sequelize/migrations/20240201000000-add-team.js": ("sequelize", [
        (6, 13, "Sequelize addColumn", 1, 'ALTER TABLE "Users" ADD COLUMN "teamId" UUID'),
        (9, 13, "Sequelize addConstraint", 1, _fk("Sequelize", "Users.teamId", "Teams.id", "SET NULL", True)),
        (18, 10, "Sequelize sequelize.query", 1, ("literal", "SELECT pg_advisory_xact_lock(7)")),
    ]),
    "knex/migrations/20240101000000_create_projects.js": ("knex", [
        (9, 13, "Knex table.enu useNative", 1, "CREATE TYPE \"project_state\" AS ENUM ('open', 'closed')"),
        (6, 6, "Knex schema.createTable", 1, 'CREATE TABLE projects ( id serial PRIMARY KEY, name character '
                                             'varying(120) NOT NULL, state "project_state", owner_id integer, '
                                             'cidr_block cidr, created_at timestamptz NOT NULL DEFAULT '
                                             'CURRENT_TIMESTAMP, updated_at timestamptz NOT NULL DEFAULT '
                                             'CURRENT_TIMESTAMP)'),
        (12, 7, "Knex table.index", 1, "CREATE INDEX projects_owner_state_idx ON projects (owner_id, state)"),
        (10, 7, "Knex references", 1, _fk("Knex", "projects.owner_id", "users.id", "CASCADE", True)),
        (15, 27, "Knex knex.raw", 1, ("literal", "LOCK TABLE projects IN ACCESS EXCLUSIVE MODE")),
    ]),
    "knex/migrations/20240201000000_add_project_team.js": ("knex", [
        (5, 5, "Knex table.uuid", None, "ALTER TABLE projects ADD COLUMN team_id uuid DEFAULT gen_random_uuid()"),
        (6, 5, "Knex alterTable references", None, _fk("Knex", "projects.team_id", "teams.id", None, True)),
        (8, 19, "Knex knex.raw", None, ("literal", "TRUNCATE TABLE project_cache")),
    ]),
    "jpa/src/main/java/com/example/shop/Customer.java": ("jpa", [
        (9, 8, "JPA @Entity", None, "CREATE TABLE customers ( id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                                    "last_ip inet)"),
        (8, 20, "JPA @Index", None, "CREATE UNIQUE INDEX idx_customers_email ON customers (email)"),
    ]),
    "jpa/src/main/java/com/example/shop/CustomerRepository.java": ("jpa", [
        (10, 5, "JPA @Lock.PESSIMISTIC_WRITE", None, "SELECT * FROM customer WHERE id = $1 FOR UPDATE"),
        (13, 5, "JPA @Lock.PESSIMISTIC_READ", None, "SELECT * FROM customer WHERE id = $1 FOR SHARE"),
    ]),
    "jpa/src/main/java/com/example/shop/PurchaseOrder.java": ("jpa", [
        (13, 5, "JPA @GeneratedValue SEQUENCE", None,
         "CREATE SEQUENCE purchase_order_seq START WITH 1 INCREMENT BY 50"),
        (16, 5, "JPA @ManyToOne", None, _fk("JPA", "purchase_orders.customer_id", "customer.id", "CASCADE", True)),
    ]),
    "jpa/src/main/kotlin/com/example/shop/Invoice.kt": ("jpa", [
        (7, 1, "JPA @Entity", None, "CREATE TABLE invoices ( id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                                    "notes text[])"),
        (12, 5, "JPA @ManyToOne", None, _fk("JPA", "invoices.order_id", "purchase_order.id", None, True)),
    ]),
    "jpa/src/main/resources/application.properties": ("jpa", [
        (3, 1, "spring.jpa.hibernate.ddl-auto", None,
         {"kind": "SchemaAutoUpdate", "orm": "Hibernate", "value": "update",
          "setting": "spring.jpa.hibernate.ddl-auto"}),
    ]),
    "jpa/src/main/resources/META-INF/persistence.xml": ("jpa", [
        (6, 13, "hibernate.hbm2ddl.auto", None,
         {"kind": "SchemaAutoUpdate", "orm": "Hibernate", "value": "create-drop", "setting": "hibernate.hbm2ddl.auto"}),
    ]),
}


def _matches(got, want) -> bool:
    *gpos, gx = got
    *wpos, wx = want
    if gpos != wpos:
        return False
    if isinstance(wx, tuple):  # literal SQL: its first line
        return isinstance(gx, tuple) and gx[0] == "literal" and gx[1].startswith(wx[1])
    return gx == wx


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_records(rel):
    framework, want = EXPECTED[rel]
    recs = _records(rel)
    assert recs is not None
    got = [_summary(e) for e in recs]
    assert len(got) == len(want), "\n".join(map(repr, got))
    for g, w in zip(got, want):
        assert _matches(g, w), f"\n got {g!r}\nwant {w!r}"
    assert {e.framework for e in recs} == {framework}


def test_every_fixture_file_is_covered():
    """Every file of these fixture apps is listed above, so none is silently dropped or added."""
    roots = ["prisma", "prisma-clean", "rails", "rails-clean", "liquibase", "typeorm", "sequelize", "knex", "jpa"]
    files = {p.relative_to(APPS).as_posix() for r in roots for p in (APPS / r).rglob("*") if p.is_file()}
    assert files == set(EXPECTED)


# -- transactions ------------------------------------------------------------------------------------------------

def test_transaction_grouping():
    # a Rails migration runs in one transaction; disable_ddl_transaction! → autocommit
    assert {e.txn for e in _records("rails/db/migrate/20240214093000_add_organization_to_users.rb")} == {1}
    assert {e.txn for e in _records("rails/db/migrate/20240301080000_index_posts_on_title.rb")} == {None}
    assert {e.txn for e in _records("rails/db/schema.rb")} == {None}
    # Liquibase: one per changeSet, runInTransaction="false" → None; distinct numbers, in changeSet order
    xml = _records("liquibase/db/changelog/db.changelog-master.xml")
    assert [e.txn for e in xml] == [1, 1, 2, 2, None, None, 3, 3, 4]
    yml = _records("liquibase/db/changelog/db.changelog-payments.yaml")
    assert [e.txn for e in yml] == [1, 1, 1, None, None, 2, 2]
    # TypeORM: one per migration class unless `transaction = false`
    assert {e.txn for e in _records("typeorm/src/migrations/1700000000000-CreateAccounts.ts")} == {1}
    assert {e.txn for e in _records("typeorm/src/migrations/1700000100000-BackfillPlans.ts")} == {None}
    # Sequelize: autocommit unless the migration wraps its calls in sequelize.transaction
    assert {e.txn for e in _records("sequelize/migrations/20240101000000-create-user.js")} == {None}
    assert {e.txn for e in _records("sequelize/migrations/20240201000000-add-team.js")} == {1}
    # Knex: one per file unless exports.config = { transaction: false }
    assert {e.txn for e in _records("knex/migrations/20240101000000_create_projects.js")} == {1}
    assert {e.txn for e in _records("knex/migrations/20240201000000_add_project_team.js")} == {None}


def test_sequelize_only_calls_inside_the_transaction_share_it():
    text = """module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.addIndex('a', ['x']);
    const t = await queryInterface.sequelize.transaction();
    await queryInterface.addIndex('b', ['y'], { transaction: t });
  },
};
"""
    recs = extract("migrations/3-x.js", text)
    assert [(e.line, e.txn) for e in recs] == [(3, None), (5, 1)]


# -- not a DSL file ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path,text", [
    ("README.md", "create_table :users do |t|\nend\n"),
    ("app/models/user.rb", "class User < ApplicationRecord\n  has_many :posts\nend\n"),
    ("db/schema.rb", "puts 'not a schema'\n"),
    ("pom.xml", "<project><modelVersion>4.0.0</modelVersion></project>"),
    ("config/settings.yml", "databaseChange: nope\n"),
    ("src/app.ts", "export function up(db) { return db.select('x') }"),
    ("src/server.js", "const knex = require('knex')(config); app.get('/', () => knex('users').select())"),
    ("src/migrations/1-x.ts", "export function up() { return 1 }"),
    ("src/migrations/types.d.ts", "export interface MigrationInterface { up(): void }"),
    ("src/main/java/com/x/Service.java", "public class Service { void run() {} }"),
    ("src/main/resources/application.properties", "server.port=8080\n"),
    ("src/main/resources/application.yml", "server:\n  port: 8080\n"),
    ("notes.txt", "\x00\x01\x02 model User { id Int @id }"),
    ("schema.sql", "CREATE TABLE t (id int);"),
    ("main.py", "op.create_table('t')"),
])
def test_not_a_dsl_file(path, text):
    assert extract(path, text) is None


# -- clean variants ----------------------------------------------------------------------------------------------

CLEAN = [rel for rel in EXPECTED if rel.startswith(("prisma-clean/", "rails-clean/"))]


@pytest.mark.parametrize("rel", CLEAN)
def test_clean_variant_has_nothing_to_report(rel):
    from dsql_audit.scan import scan_sql

    recs = _records(rel)
    assert recs, "the clean variant still creates its tables"
    assert not [e for e in recs if e.construct and e.construct.get("kind") == FK]
    synthesized = [e.sql for e in recs if e.sql and not e.literal]
    assert not [s for s in synthesized if re.search(r"CREATE (UNIQUE )?INDEX|CREATE TYPE|SERIAL", s, re.I)]
    for sql in synthesized:
        assert scan_sql(sql, profile=PROFILE).findings == []


def test_clean_and_unclean_prisma_differ_only_in_what_dsql_refuses():
    """relationMode = "prisma": the same @relation(…) makes no key."""
    text = (APPS / "prisma-clean/prisma/schema.prisma").read_text()
    with_keys = text.replace('relationMode = "prisma"', 'relationMode = "foreignKeys"')
    fks = [e.construct for e in extract("schema.prisma", with_keys) if e.construct]
    assert fks == [_fk("Prisma", "Post.authorId", "User.id", "CASCADE", True)]


# -- synthesized SQL ---------------------------------------------------------------------------------------------

def _all_records():
    for rel in EXPECTED:
        for e in _records(rel):
            yield rel, e


def test_synthesized_sql_parses_with_pglast():
    from pglast.parser import parse_sql_json

    n = 0
    for rel, e in _all_records():
        if e.sql and not e.literal:
            stmts = json.loads(parse_sql_json(e.sql))["stmts"]
            assert len(stmts) == 1, (rel, e.sql)
            n += 1
    assert n >= 50


def test_literal_sql_keeps_its_file_positions():
    """Literal SQL is the raw text: each of its characters is at line + k, column (col on the first line)."""
    n = 0
    for rel, e in _all_records():
        if not (e.sql and e.literal):
            continue
        lines = (APPS / rel).read_text().splitlines()
        for k, row in enumerate(e.sql.split("\n")):
            base = e.column - 1 if k == 0 else 0
            file_row = lines[e.line - 1 + k]
            for j, ch in enumerate(row):
                if not ch.isspace():
                    assert file_row[base + j] == ch, (rel, e.line + k, base + j + 1)
                    n += 1
    assert n > 500


FINDINGS = {  # (rule, line, column, the DSL text written there) for the synthesized SQL of each file
    "prisma/prisma/schema.prisma": {
        ("custom-type", 11, 1, "enum Role"),
        ("sequence", 17, 26, "@default(autoincrement())"),
        ("sync-index", 18, 22, "@unique"),
        ("unsupported-type", 21, 22, "@db.Inet"),
        ("sequence", 27, 26, "@default(autoincrement())"),
        ("unsupported-type", 29, 13, "String[]"),
        ("sync-index", 34, 3, "@@index"),
        ("sync-index", 44, 3, "@@unique"),
    },
    "rails/db/migrate/20240110120000_create_users.rb": {
        ("extension", 3, 5, "enable_extension"),
        ("sequence", 5, 28, "|t|"),  # the implicit bigserial id: on the create_table line
        ("unsupported-type", 8, 9, "inet :last_sign_in_ip"),
        ("unsupported-type", 9, 9, "string :roles, array: true"),
        ("sync-index", 12, 5, "add_index"),
    },
    "rails/db/migrate/20240125101500_create_posts.rb": {
        ("custom-type", 3, 5, "create_enum"),
        ("sequence", 5, 28, "|t|"),
        ("sync-index", 6, 7, "t.references"),
        ("unsupported-type", 9, 9, "tsvector :search_vector"),
        ("sync-index", 12, 5, "add_index"),
        ("index-method", 12, 5, "add_index"),
    },
    "rails/db/migrate/20240301080000_index_posts_on_title.rb": {
        ("sync-index", 5, 5, "add_index :posts, :title, algorithm: :concurrently"),
    },
    "liquibase/db/changelog/db.changelog-master.xml": {
        ("sequence", 10, 45, 'autoIncrement="true"'),
        ("unsupported-type", 16, 42, 'inet"'),
        ("sync-index", 18, 9, "<createIndex"),
        ("sequence", 37, 9, "<createSequence"),
    },
    "liquibase/db/changelog/db.changelog-payments.yaml": {
        ("unsupported-type", 24, 25, "text[]"),
        ("sync-index", 25, 11, "createIndex:"),
    },
    "typeorm/src/migrations/1700000000000-CreateAccounts.ts": {
        ("sequence", 12, 42, 'int", isPrimary: true, isGenerated: true'),
        ("unsupported-type", 15, 42, 'inet"'),
        ("sync-index", 25, 13, "new TableIndex"),
    },
    "sequelize/migrations/20240101000000-create-user.js": {
        ("custom-type", 18, 15, "Sequelize.ENUM('member', 'admin')"),
        ("sequence", 11, 15, "Sequelize.INTEGER"),
        ("unsupported-type", 26, 13, "Sequelize.ARRAY(Sequelize.STRING)"),
        ("sync-index", 29, 11, "queryInterface.addIndex"),
    },
    "knex/migrations/20240101000000_create_projects.js": {
        ("custom-type", 9, 13, "enu('state'"),
        ("sequence", 7, 13, "increments()"),
        ("unsupported-type", 11, 41, "cidr'"),
        ("sync-index", 12, 7, "table.index"),
    },
    "knex/migrations/20240201000000_add_project_team.js": {
        ("alter-table", 5, 5, "table.uuid('team_id').defaultTo"),
    },
    "jpa/src/main/java/com/example/shop/Customer.java": {
        ("sequence", 12, 5, "@GeneratedValue(strategy = GenerationType.IDENTITY)"),
        ("unsupported-type", 18, 51, 'inet"'),
        ("sync-index", 8, 20, "@Index"),
    },
    "jpa/src/main/java/com/example/shop/CustomerRepository.java": {
        ("select-for-update", 13, None, "@Lock(LockModeType.PESSIMISTIC_READ)"),
    },
    "jpa/src/main/java/com/example/shop/PurchaseOrder.java": {
        ("sequence", 13, 5, "@SequenceGenerator"),
    },
    "jpa/src/main/kotlin/com/example/shop/Invoice.kt": {
        ("sequence", 8, None, "@Id"),  # integer identity: the type is written on the line above the clause
        ("sequence", 9, 5, "@GeneratedValue(strategy = GenerationType.IDENTITY)"),
        ("unsupported-type", 16, 33, 'text[]"'),
    },
}
SLUGS = {"custom-type", "sequence", "sync-index", "unsupported-type", "select-for-update", "extension",
         "index-method", "alter-table", "missing-primary-key", "foreign-key", "truncate"}


def _file_findings(rel):
    """Findings on the synthesized statements of a file, at file positions (the statement's text mirrors the
    DSL's lines and columns; a finding on a later line of it is at that file line)."""
    from dsql_audit.scan import scan_sql

    out = set()
    for e in _records(rel):
        if not e.sql or e.literal:
            continue
        for f in scan_sql(e.sql, profile=PROFILE).findings:
            if f.name not in SLUGS:
                continue
            line = e.line + f.line - 1
            col = e.column + f.column - 1 if f.line == 1 else f.column
            out.add((f.name, line, col))
    return out


@pytest.mark.parametrize("rel", sorted(FINDINGS))
def test_rules_on_synthesized_sql(rel):
    want = FINDINGS[rel]
    got = _file_findings(rel)
    assert {(r, ln) for r, ln, _ in got} == {(r, ln) for r, ln, _, _ in want}
    lines = (APPS / rel).read_text().splitlines()
    for rule, line, col, text in want:
        if col is None:  # on the line, the column is the statement's own
            assert text in lines[line - 1]
            continue
        assert (rule, line, col) in got
        assert lines[line - 1][col - 1:].startswith(text), (rule, line, col, lines[line - 1])


@pytest.mark.parametrize("sql,rule", [
    ('CREATE INDEX "User_email_idx" ON "User" ("email")', "sync-index"),
    ("CREATE INDEX CONCURRENTLY index_posts_on_title ON posts (title)", "sync-index"),
    ("CREATE TYPE \"Role\" AS ENUM ('USER', 'ADMIN')", "custom-type"),
    ('CREATE TABLE "User" ("id" SERIAL NOT NULL PRIMARY KEY)', "sequence"),
    ("CREATE TABLE customers (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)", "sequence"),
    ("CREATE SEQUENCE purchase_order_seq START WITH 1 INCREMENT BY 50", "sequence"),
    ("CREATE TABLE t (id uuid PRIMARY KEY, last_ip inet)", "unsupported-type"),
    ("CREATE TABLE t (id uuid PRIMARY KEY, tags text[])", "unsupported-type"),
    ("SELECT * FROM customer WHERE id = $1 FOR SHARE", "select-for-update"),
])
def test_rule_names_for_the_sql_a_construct_makes(sql, rule):
    """The shapes the framework modules synthesize reach the rule the lead expects (and a cached CACHE keeps sequences quiet)."""
    from dsql_audit.scan import scan_sql

    assert rule in {f.name for f in scan_sql(sql, profile=PROFILE).findings}
    assert not scan_sql("CREATE SEQUENCE s CACHE 65536", profile=PROFILE).findings


# -- framework details -------------------------------------------------------------------------------------------

def _constructs(recs):
    return [e.construct for e in recs if e.construct]


def _sqls(recs):
    return [" ".join(e.sql.split()) for e in recs if e.sql and not e.literal]


def test_prisma_provider_relation_mode_and_implicit_many_to_many():
    base = """datasource db {{
  provider = "{provider}"
  url      = env("DATABASE_URL")
}}

enum Color {{
  RED
  GREEN
}}

model Post {{
  id   Int   @id @default(autoincrement())
  tags Tag[]
  c    Color
}}

model Tag {{
  id    Int    @id @default(autoincrement())
  posts Post[]
}}
"""
    pg = extract("prisma/schema.prisma", base.format(provider="postgresql"))
    sqls = _sqls(pg)
    assert "CREATE TYPE \"Color\" AS ENUM ('RED', 'GREEN')" in sqls
    assert 'CREATE INDEX "_PostToTag_B_index" ON "_PostToTag" ("B")' in sqls
    assert _constructs(pg) == [_fk("Prisma", "_PostToTag.A", "Post.id", "CASCADE", True),
                               _fk("Prisma", "_PostToTag.B", "Tag.id", "CASCADE", True)]
    mysql = extract("prisma/schema.prisma", base.format(provider="mysql"))
    assert not [s for s in _sqls(mysql) if s.startswith("CREATE TYPE")]
    assert extract("prisma/schema.prisma", base.format(provider="mongodb")) == []


def test_prisma_one_line_enum_and_unsupported_types():
    text = 'enum Size { S M L }\nmodel Shape {\n  id   String @id\n  area Unsupported("circle")?\n}\n'
    recs = extract("schema.prisma", text)
    assert _sqls(recs) == ["CREATE TYPE \"Size\" AS ENUM ('S', 'M', 'L')",
                           'CREATE TABLE "Shape" ( "id" TEXT NOT NULL PRIMARY KEY, "area" circle)']
    from dsql_audit.scan import scan_sql

    assert [f.name for f in scan_sql(recs[1].sql, profile=PROFILE).findings] == ["unsupported-type"]


def test_prisma_maps_and_composite_keys():
    text = """model Membership {
  userId Int    @map("user_id")
  orgId  Int    @map("org_id")
  ip     String @db.Inet
  @@id([userId, orgId])
  @@index([orgId(sort: Desc)], map: "membership_org")
  @@map("memberships")
}
"""
    sqls = _sqls(extract("schema.prisma", text))
    assert sqls == ['CREATE TABLE "memberships" ("user_id" INTEGER NOT NULL, "org_id" INTEGER NOT NULL, "ip" INET NOT '
                    'NULL, PRIMARY KEY ("user_id", "org_id"))',
                    'CREATE INDEX "membership_org" ON "memberships" ("org_id" DESC)']


def test_rails_down_and_reversible_down_are_not_deployed():
    text = """class Swap < ActiveRecord::Migration[7.1]
  def up
    reversible do |dir|
      dir.up { execute "UPDATE users SET a = 1" }
      dir.down { execute "UPDATE users SET a = 0" }
    end
  end

  def down
    drop_table :users
  end
end
"""
    recs = extract("db/migrate/1_swap.rb", text)
    assert [(e.line, e.sql) for e in recs] == [(4, "UPDATE users SET a = 1")]


def test_rails_statement_forms():
    text = """class More < ActiveRecord::Migration[7.1]
  def change
    change_table :users do |t|
      t.references :team, foreign_key: { to_table: :groups, on_delete: :nullify }, index: false
    end
    add_column :users, :tags, :string, array: true, default: [], null: false
    change_column :users, :age, :bigint
    create_join_table :users, :roles
    create_table :events, id: :uuid do |t|
      t.serial :seq
      t.cidr :net
    end
    execute <<~SQL.squish
      UPDATE users SET name = '#{default_name}'
    SQL
    Post.delete_all
  end
end
"""
    recs = extract("db/migrate/2_more.rb", text)
    assert _constructs(recs) == [_fk("Rails", "users.team_id", "groups.id", "SET NULL", True)]
    assert _sqls(recs) == [
        "ALTER TABLE users ADD COLUMN team_id bigint",
        "ALTER TABLE users ADD COLUMN tags character varying[] NOT NULL DEFAULT '{}'",
        "ALTER TABLE users ALTER COLUMN age TYPE bigint",
        "CREATE TABLE roles_users (user_id bigint NOT NULL, role_id bigint NOT NULL)",
        "CREATE TABLE events (id uuid DEFAULT gen_random_uuid() PRIMARY KEY, seq serial, net cidr)",
        "DELETE FROM posts",
    ]
    heredoc = next(e for e in recs if e.literal and e.sql)
    assert (heredoc.line, heredoc.column, heredoc.dynamic) == (14, 1, True)
    assert heredoc.sql.strip() == "UPDATE users SET name = '_______________'"
    from dsql_audit.scan import scan_sql

    names = {f.name for s in _sqls(recs) for f in scan_sql(s, profile=PROFILE).findings}
    assert {"alter-table", "sequence", "unsupported-type", "unbounded-write"} <= names


def test_knex_raw_inside_a_column_default_is_not_a_statement():
    text = """exports.up = (knex) => knex.schema.createTable('t', (table) => {
  table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
});
"""
    recs = extract("migrations/1_t.js", text)
    assert _sqls(recs) == ["CREATE TABLE t ( id uuid DEFAULT gen_random_uuid() PRIMARY KEY)"]
    assert not [e for e in recs if e.literal]


def test_knex_unique_is_an_added_constraint_and_alter_is_a_type_change():
    text = """exports.up = async function (knex) {
  await knex.schema.alterTable('users', function (t) {
    t.string('email').unique();
    t.bigInteger('age').alter();
  });
};
"""
    assert _sqls(extract("migrations/2_u.js", text)) == [
        "ALTER TABLE users ADD COLUMN email character varying(255)",
        "ALTER TABLE users ADD CONSTRAINT users_email_unique UNIQUE (email)",
        "ALTER TABLE users ALTER COLUMN age TYPE bigint",
    ]


def test_knex_raw_bindings():
    text = """exports.up = async (knex) => {
  await knex.raw('UPDATE ?? SET a = ? WHERE id = ?', ['t', 1, 2]);
  await knex.raw('UPDATE t SET a = :a', { a: 1 });
  await knex.schema.createTable('t', (t) => { t.timestamp('at').defaultTo(knex.fn.now()); });
};
"""
    recs = extract("migrations/3_b.js", text)
    lits = [e for e in recs if e.literal and e.sql]
    assert [(e.sql, e.params, e.dynamic) for e in lits] == [
        ("UPDATE __ SET a = ? WHERE id = ?", ("qmark",), True), ("UPDATE t SET a = :a", ("named",), False)]
    assert _sqls(recs) == ["CREATE TABLE t ( at timestamptz DEFAULT CURRENT_TIMESTAMP)"]


def test_sequelize_query_parameter_styles():
    text = """module.exports = {
  up: async (queryInterface) => {
    await queryInterface.sequelize.query('UPDATE t SET a = ? WHERE id = ?', { replacements: [1, 2] });
    await queryInterface.sequelize.query('UPDATE t SET a = :a', { replacements: { a: 1 } });
    await queryInterface.sequelize.query(`SELECT * FROM ${table}`);
  },
};
"""
    recs = extract("migrations/4-q.js", text)
    assert [(e.params, e.dynamic) for e in recs] == [(("qmark",), False), (("named",), False), ((), True)]
    # the template's run-time part: a same-length name made from the expression, shown as ${table} in findings
    assert recs[2].sql == "SELECT * FROM __table_" and recs[2].placeholders == {"__table_": "${table}"}


def test_jpa_relations_without_a_database_key():
    text = """@Entity
public class Line {
    @Id @GeneratedValue(strategy = GenerationType.UUID) private UUID id;
    @ManyToOne @JoinColumn(name = "order_id", foreignKey = @ForeignKey(ConstraintMode.NO_CONSTRAINT))
    private Order order;
    @OneToOne(mappedBy = "line") private Shipment shipment;
    @ManyToMany
    @JoinTable(name = "line_tags", joinColumns = @JoinColumn(name = "line_id"),
               inverseJoinColumns = @JoinColumn(name = "tag_id"))
    private Set<Tag> tags;
}
"""
    recs = extract("Line.java", text)
    assert _constructs(recs) == [_fk("JPA", "line_tags.line_id", "line.id", None, True),
                                 _fk("JPA", "line_tags.tag_id", "tag.id", None, True)]
    assert _sqls(recs) == []  # a uuid id and no column definitions: nothing DSQL refuses


def test_jpa_lock_modes_outside_repositories():
    text = """class Svc {
    Account load(EntityManager em, long id) {
        return em.find(Account.class, id, LockModeType.PESSIMISTIC_READ);
    }
}
"""
    recs = extract("Svc.java", text)
    assert [(e.line, e.column, _sqls([e])[0]) for e in recs] == [
        (3, 43, "SELECT * FROM account WHERE id = $1 FOR SHARE")]


def test_schema_auto_update_settings():
    yml = """spring:
  jpa:
    hibernate:
      ddl-auto: update
---
spring:
  jpa.hibernate.ddl-auto: validate
"""
    recs = extract("src/main/resources/application-dev.yml", yml)
    assert [(e.line, e.column, e.construct["value"]) for e in recs
            if e.construct["kind"] == "SchemaAutoUpdate"] == [(4, 7, "update")]
    # validate: Hibernate writes nothing, and says so for the project-level view (entities informational)
    assert [(e.line, e.construct["value"]) for e in recs if e.construct["kind"] == "SchemaOwner"] == [(7, "validate")]
    props = ("hibernate.hbm2ddl.auto = none\njakarta.persistence.schema-generation.database.action=drop-and-create\n"
             "spring.jpa.hibernate.ddl-auto=${DDL_AUTO:update}\n")
    assert [c["value"] for c in _constructs(extract("app.properties", props))
            if c["kind"] == "SchemaAutoUpdate"] == ["drop-and-create", "update"]


def test_jpa_auto_generation_uses_a_sequence_named_after_the_entity():
    text = """@Entity
@Table(name = "customers")
public class Customer {
    @Id @GeneratedValue private Long id;
}
"""
    recs = extract("Customer.java", text)
    assert [(e.line, e.column, " ".join(e.sql.split())) for e in recs] == [
        (4, 9, "CREATE SEQUENCE customer_seq START WITH 1 INCREMENT BY 50")]


def test_liquibase_json_dbms_and_rollback():
    text = """{ "databaseChangeLog": [
  { "changeSet": { "id": "1", "author": "a", "changes": [
      { "createIndex": { "tableName": "t", "indexName": "i", "columns": [ { "column": { "name": "c" } } ] } },
      { "sql": { "dbms": "h2", "sql": "SET MODE PostgreSQL" } },
      { "sql": { "sql": "TRUNCATE t" } } ],
    "rollback": [ { "dropIndex": { "indexName": "i" } } ] } } ] }
"""
    recs = extract("changelog.json", text)
    assert [_summary(e) for e in recs] == [
        (3, 9, "Liquibase createIndex", 1, "CREATE INDEX i ON t (c)"),
        (5, 26, "Liquibase sql", 1, ("literal", "TRUNCATE t")),
    ]


# -- malformed input ---------------------------------------------------------------------------------------------

def test_broken_xml_keeps_what_came_before_the_error():
    text = ('<databaseChangeLog><changeSet id="1" author="a"><createIndex tableName="t" indexName="i">'
            '<column name="c"/></createIndex></changeSet><changeSet id="2"><createTable tableName="x">'
            '<column name="id" type="int')
    recs = extract("changelog.xml", text)
    assert [_summary(e) for e in recs] == [(1, 49, "Liquibase createIndex", 1, "CREATE INDEX i ON t (c)")]


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_truncated_and_mangled_inputs_never_raise(rel):
    text = (APPS / rel).read_text()
    path = str(APPS / rel)
    seen = 0
    for cut in range(0, len(text), max(1, len(text) // 60)):
        recs = extract(path, text[:cut])  # None once the cut loses what marks the file (its header)
        assert recs is None or isinstance(recs, list)
        for e in recs or ():
            seen += 1
            if e.sql and not e.literal:
                assert synth.parses(e.sql)
    assert seen, "some prefix of the file still gives records"
    for junk in ("\x00\xff\xfe" * 50, text.replace('"', ""), text.replace("(", ""), text.replace("}", ""),
                 "(" * 5000, "{" * 5000 + text, text + "<<~SQL\n" + "`${" * 300):
        recs = extract(path, junk)
        assert recs is None or isinstance(recs, list)


def test_a_handler_error_keeps_the_records_found_before_it(monkeypatch):
    def failing(path, text, out):
        out.sql("CREATE INDEX i ON t (c)", 1, 1, "test")
        raise RuntimeError("boom")

    monkeypatch.setattr(prisma, "emit", failing)
    recs = extract("schema.prisma", "model X { id Int @id }")
    assert [e.sql for e in recs] == ["CREATE INDEX i ON t (c)"]
    assert extract("schema.prisma", b"bytes") is None  # not text: not read


@pytest.mark.parametrize("app,rules", [
    ("prisma", {"custom-type", "sequence", "sync-index", "unsupported-type", "orm-foreign-key"}),
    ("rails", {"sequence", "sync-index", "unsupported-type", "multiple-ddl", "orm-foreign-key"}),
    ("liquibase", {"sequence", "sync-index", "unsupported-type", "orm-foreign-key"}),
    ("typeorm", {"custom-type", "sequence", "sync-index", "orm-foreign-key"}),
    ("sequelize", {"custom-type", "sequence", "sync-index", "orm-foreign-key"}),
    ("knex", {"custom-type", "sequence", "orm-foreign-key", "unsupported-type"}),
    ("jpa", {"sync-index", "sequence", "select-for-update", "orm-foreign-key", "orm-schema-generation"}),
])
def test_a_scan_of_the_app_reports_through_the_pipeline(app, rules):
    """discovery → the DSL extractor → units → rules: the framework is named, the expected rules fire, each
    finding lands on a line of the file that holds the construct, and nothing is an input error."""
    from dsql_audit.scan import scan

    root = Path(__file__).resolve().parents[1] / "fixtures" / "apps" / app
    result = scan([str(root)])
    assert not result.errors, result.errors
    assert rules <= {f.name for f in result.findings}, sorted({f.name for f in result.findings})
    assert result.frameworks
    for f in result.findings:
        assert Path(f.path).read_text().splitlines()[f.line - 1].strip(), (f.path, f.line, f.name)


@pytest.mark.parametrize("app", ["prisma-clean", "rails-clean"])
def test_the_clean_apps_scan_clean(app):
    from dsql_audit.scan import scan

    result = scan([str(Path(__file__).resolve().parents[1] / "fixtures" / "apps" / app)])
    assert not result.errors and not result.findings, [(f.path, f.line, f.name) for f in result.findings]
