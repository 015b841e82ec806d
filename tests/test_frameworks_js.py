"""The JavaScript/TypeScript migration readers (TypeORM, Sequelize, Knex) on the tree-sitter tree: strings built
from parts, run-time choices, the file's own helpers and the wrappers it cannot read."""

from __future__ import annotations

import pytest

from dsql_audit.sources.frameworks import extract

TYPEORM_HEAD = """import { MigrationInterface, QueryRunner, Table, TableIndex } from "typeorm";
export class M1700000000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
"""
TYPEORM_TAIL = """  }
}
"""


def _typeorm(body: str, after: str = "") -> tuple[str, list]:
    text = TYPEORM_HEAD + body + TYPEORM_TAIL + after
    return text, extract("src/migrations/1700000000000-M.ts", text)


def _literals(recs) -> list:
    return [e for e in recs if e.sql and e.literal]


def _sqls(recs) -> list[str]:
    return [" ".join(e.sql.split()) for e in recs if e.sql and not e.literal]


def _wrappers(recs) -> list:
    return [(e.line, e.construct["name"], e.construct["module"]) for e in recs
            if e.construct and e.construct.get("kind") == "UnreadWrapper"]


def _file_position(e, needle: str) -> tuple[int, int]:
    """Where ``needle`` in a literal record's SQL lands in the file (how sources/app.py maps a literal)."""
    i = e.sql.lower().index(needle.lower())
    before = e.sql[:i]
    if "\n" not in before:
        return e.line, e.column + i
    return e.line + before.count("\n"), i - before.rfind("\n")


def _written_at(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


# -- strings assembled at run time ---------------------------------------------------------------------------------

def test_a_template_substitution_stands_as_its_expression_name_and_keeps_the_columns():
    text, recs = _typeorm("    await queryRunner.query(`CREATE INDEX idx ON ${tablePrefix}users (a) WHERE b`);\n")
    (e,) = _literals(recs)
    assert e.sql == "CREATE INDEX idx ON __tableprefix_users (a) WHERE b"
    assert e.dynamic
    assert e.placeholders == {"__tableprefix_": "${tablePrefix}"}  # a finding shows the code again
    # the stand-in is exactly as long as ${tablePrefix}: what follows it is still where the file has it
    assert _file_position(e, "WHERE") == _written_at(text, "WHERE")
    assert _file_position(e, "tablePrefix") == _written_at(text, "tablePrefix")


def test_a_stand_in_is_an_identifier_even_for_a_member_or_a_call():
    _, recs = _typeorm("    await queryRunner.query(`DROP TABLE ${t.name} CASCADE; SELECT ${f(1)}`);\n")
    (e,) = _literals(recs)
    assert e.sql == "DROP TABLE __t_name_ CASCADE; SELECT __f_1__"


def test_a_concatenation_across_lines_keeps_each_part_where_it_is_written():
    text, recs = _typeorm("    await queryRunner.query('CREATE TABLE t (' +\n"
                          "        'a int, ' +\n"
                          "        'b jsonb)');\n")
    (e,) = _literals(recs)
    assert " ".join(e.sql.split()) == "CREATE TABLE t ( a int, b jsonb)"  # the old reader kept 'CREATE TABLE t ('
    assert not e.dynamic
    assert _file_position(e, "a int") == _written_at(text, "a int")
    assert _file_position(e, "jsonb") == _written_at(text, "jsonb")


def test_code_in_a_concatenation_stands_as_its_name_and_makes_it_dynamic():
    text, recs = _typeorm("    await queryRunner.query('ALTER TABLE ' + tablePrefix + 'users ADD COLUMN x int');\n")
    (e,) = _literals(recs)
    assert " ".join(e.sql.split()) == "ALTER TABLE _tableprefixusers ADD COLUMN x int"
    assert e.dynamic and e.placeholders == {"_tableprefix": "{tablePrefix}"}
    assert _file_position(e, "tablePrefix") == _written_at(text, "tablePrefix")


def test_parts_joined_inside_a_quoted_name_are_glued_as_the_program_glues_them():
    _, recs = _typeorm("""    await queryRunner.query('CREATE INDEX "idx_' + name + '" ON t (a)');\n""")
    (e,) = _literals(recs)
    assert e.sql == 'CREATE INDEX "idx__name" ON t (a)'


def test_a_concatenation_that_starts_with_code_is_not_read_as_sql():
    _, recs = _typeorm("    await queryRunner.query(sql + ' WHERE id = 1');\n")
    assert _literals(recs) == []


@pytest.mark.parametrize("condition, sql", [
    ("isPostgres", "CREATE INDEX CONCURRENTLY i ON t (a)"),
    ("dbType === 'postgresdb'", "CREATE INDEX CONCURRENTLY i ON t (a)"),
    ("!isPostgres", "CREATE INDEX i ON t (a)"),
    ("dbType !== 'postgresdb'", "CREATE INDEX i ON t (a)"),
    ("isSqlite", "CREATE INDEX i ON t (a)"),
    ("knex.client.config.client === 'mysql'", "CREATE INDEX i ON t (a)"),
])
def test_a_ternary_whose_condition_names_the_database_gives_the_branch_postgres_runs(condition, sql):
    _, recs = _typeorm(f"    await queryRunner.query({condition} ? 'CREATE INDEX CONCURRENTLY i ON t (a)' "
                       f": 'CREATE INDEX i ON t (a)');\n")
    assert [(e.sql, e.dynamic) for e in _literals(recs)] == [(sql, True)]


def test_a_ternary_whose_condition_does_not_tell_gives_both_branches_each_where_written():
    text, recs = _typeorm("    await queryRunner.query(force ? 'DROP TABLE t CASCADE' : 'DROP TABLE t');\n")
    got = [(e.sql, e.dynamic, (e.line, e.column)) for e in _literals(recs)]
    assert got == [("DROP TABLE t CASCADE", True, _written_at(text, "DROP TABLE t CASCADE")),
                   ("DROP TABLE t", True, _written_at(text, "DROP TABLE t'"))]


def test_a_branch_showing_another_databases_sql_is_not_judged():
    _, recs = _typeorm("    await queryRunner.query(legacy ? 'ALTER TABLE `t` ADD x INT UNSIGNED' "
                       ": 'ALTER TABLE t ADD x bigint');\n")
    assert [e.sql for e in _literals(recs)] == ["ALTER TABLE t ADD x bigint"]


def test_a_ternary_choosing_a_column_type_gives_the_postgres_type_in_a_dynamic_statement():
    _, recs = _typeorm("    await queryRunner.createTable(new Table({ name: 'x', columns: [\n"
                       "      { name: 'data', type: isPostgres ? 'jsonb' : 'text' },\n"
                       "    ] }));\n")
    (e,) = [e for e in recs if e.sql]
    assert _sqls([e]) == ["CREATE TABLE x ( data jsonb NOT NULL)"] and e.dynamic
    sequelize = """module.exports = {
  up: async (queryInterface, Sequelize) => {
    await queryInterface.addColumn('t', 'meta', {
      type: queryInterface.sequelize.getDialect() === 'mysql' ? Sequelize.JSON : Sequelize.JSONB,
    });
    await queryInterface.addColumn('t', 'plain', { type: Sequelize.TEXT });
  },
};
"""
    recs = extract("migrations/1-meta.js", sequelize)
    assert [(" ".join(e.sql.split()), e.dynamic) for e in recs] == [
        ('ALTER TABLE t ADD COLUMN meta JSONB', True), ('ALTER TABLE t ADD COLUMN plain TEXT', False)]
    knex = """exports.up = (knex) => knex.schema.createTable('t', (t) => {
  t.specificType('at', legacy ? 'datetime' : 'timestamptz');
});
"""
    recs = extract("migrations/1_t.js", knex)
    assert [(" ".join(e.sql.split()), e.dynamic) for e in recs] == [("CREATE TABLE t ( at timestamptz)", True)]


def test_a_template_in_a_synthesized_name_makes_the_statement_dynamic():
    _, recs = _typeorm("    await queryRunner.dropTable(`${tablePrefix}t_tmp`);\n")
    assert [(e.sql, e.dynamic, e.placeholders) for e in recs] == [
        ("DROP TABLE __tableprefix_t_tmp", True, {"__tableprefix_": "${tablePrefix}"})]


def test_a_typescript_generic_call_is_read():
    # TypeScript reads ``await q.query<T>(…)`` with the await inside the callee; the old scanner missed it
    _, recs = _typeorm("    await queryRunner.query<{ id: number }[]>('SELECT 1');\n")
    assert [e.sql for e in _literals(recs)] == ["SELECT 1"]


# -- the file's own helpers ---------------------------------------------------------------------------------------

def test_a_helper_function_is_followed_once_per_call_with_the_values_it_is_given():
    helpers = """async function addIndex(qr, table, col) {
  await qr.query(`CREATE INDEX ON ${table} (${col})`);
}
const dropIt = async (runner, name) => runner.dropTable(name);
"""
    text, recs = _typeorm("    await addIndex(queryRunner, 'users', 'email');\n"
                          "    await addIndex(queryRunner, 'orders', 'id');\n"
                          "    await addIndex(queryRunner, dynamicName, 'id');\n"
                          "    await dropIt(queryRunner, 'old');\n"
                          "    await addIndex(somethingElse, 'never', 'read');\n", helpers)
    at = _written_at(text, "CREATE INDEX")
    assert [(e.sql, e.dynamic, (e.line, e.column), e.txn) for e in _literals(recs)] == [
        ("CREATE INDEX ON users (email)", False, at, 1),
        ("CREATE INDEX ON orders (id)", False, at, 1),
        ("CREATE INDEX ON __table_ (id)", True, at, 1),  # a value the call does not write: a stand-in
    ]
    assert _sqls(recs) == ["DROP TABLE old"]
    assert [e.line for e in recs if not e.literal] == [_written_at(text, "runner.dropTable")[0]]


def test_a_method_of_the_migration_class_is_followed_with_the_context_it_is_given():
    text = """class AddThings1700000000000 {
    async up(context) {
        await this.addIndex('users', context);
        await this.addIndex('teams', context);
    }
    async addIndex(table, { queryRunner, tablePrefix }) {
        await queryRunner.createIndex(table, new TableIndex({ columnNames: ['a'] }));
        await queryRunner.query(`ANALYZE ${tablePrefix}${table}`);
    }
}
"""
    recs = extract("migrations/1700000000000-AddThings.js", text)
    assert _sqls(recs) == ['CREATE INDEX "IDX_users_a" ON users (a)', 'CREATE INDEX "IDX_teams_a" ON teams (a)']
    assert [e.sql for e in _literals(recs)] == ["ANALYZE __tableprefix_users", "ANALYZE __tableprefix_teams"]
    assert {e.line for e in recs} == {7, 8}


def test_a_helper_outside_the_class_taking_the_context_apart_is_followed():
    # n8n: const pruneExecutionsData = async ({ queryRunner, tablePrefix }) => …, called as helper(context)
    text = """const prune = async ({ queryRunner, tablePrefix, logger }) => {
    logger.debug('pruning');
    const [{ rowCount }] = await queryRunner.query(`select count(id) as rowCount from "${tablePrefix}execution"`);
};
class MigrateKeys1690000000002 {
    async up(context) {
        await prune(context);
    }
}
"""
    recs = extract("migrations/1690000000002-MigrateKeys.js", text)
    assert [(e.line, e.sql) for e in recs] == [(3, 'select count(id) as rowCount from "__tableprefix_execution"')]


def test_a_helper_that_calls_itself_is_read_a_bounded_number_of_times():
    helpers = """async function again(qr) {
  await qr.query('SELECT 1');
  await again(qr);
}
"""
    _, recs = _typeorm("    await again(queryRunner);\n", helpers)
    assert [e.sql for e in _literals(recs)] == ["SELECT 1"]


def test_a_helper_written_inside_up_is_read_where_it_is_not_twice():
    _, recs = _typeorm("    const one = async (queryRunner) => { await queryRunner.query('SELECT 1'); };\n"
                       "    await one(queryRunner);\n")
    assert [e.sql for e in _literals(recs)] == ["SELECT 1"]


def test_a_sequelize_helper_called_inside_a_transaction_runs_in_it():
    text = """async function addCol(queryInterface, Sequelize) {
  await queryInterface.addColumn('t', 'a', { type: Sequelize.TEXT });
}
module.exports = {
  up: async (queryInterface, Sequelize) => {
    await queryInterface.sequelize.transaction(async () => {
      await addCol(queryInterface, Sequelize);
    });
    await addCol(queryInterface, Sequelize);
  },
};
"""
    recs = extract("migrations/2-add.js", text)
    assert [(e.line, e.txn) for e in recs] == [(2, 1), (2, None)]


# -- wrappers the file cannot read ---------------------------------------------------------------------------------

def test_a_call_passing_knex_to_another_project_file_is_an_unread_wrapper():
    text = """const models = require("../models");
const { seed } = require("./seeds");
const lodash = require("lodash");
async function up(knex) {
  await models.createUserTable(knex);
  await models.createUserTable(knex);
  await seed(knex, 'users');
  await lodash.noop(knex);
  await models.notPassed('x');
  await knex.raw('SELECT 1');
}
module.exports = { up };
"""
    recs = extract("server/migrations/20200101_init.js", text)
    assert _wrappers(recs) == [(5, "createUserTable", "../models"), (6, "createUserTable", "../models"),
                               (7, "seed", "./seeds")]
    (w,) = [e for e in recs if e.construct and e.line == 7]
    assert w.column == 9 and w.txn == 1 and w.framework == "knex"
    assert [e.sql for e in _literals(recs)] == ["SELECT 1"]


def test_es_imports_and_compiled_typescript_calls_are_unread_wrappers_too():
    esm = """import { addCol } from './helpers';
import * as util from '../util';
export async function up(queryInterface, Sequelize) {
  await addCol(queryInterface, 't');
  await util.addIndex(queryInterface);
}
"""
    assert _wrappers(extract("migrations/3-x.js", esm)) == [(4, "addCol", "./helpers"), (5, "addIndex", "../util")]
    compiled = """const helpers_1 = require("../helpers");
class X1700000000000 {
    async up(queryRunner) {
        await (0, helpers_1.addIndex)(queryRunner, 'users');
        await queryRunner.query('SELECT 1');
    }
}
exports.X1700000000000 = X1700000000000;
"""
    assert _wrappers(extract("migrations/1700000000000-X.js", compiled)) == [(4, "addIndex", "../helpers")]


def test_functions_taken_from_the_migration_context_are_unread_wrappers():
    # n8n's migrations receive their own DSL (dsl/) in the context: up({ schemaBuilder: { createTable } })
    text = """class CreateThings1700000000000 {
    async up({ queryRunner, runQuery, logger, schemaBuilder: { createTable, column } }) {
        await createTable('things').withColumns(column('id').int.primary, column('name').text);
        await runQuery(`UPDATE things SET name = 'x'`);
        logger.info('done');
        await queryRunner.query('SELECT 1');
    }
}
"""
    recs = extract("migrations/1700000000000-CreateThings.js", text)
    assert _wrappers(recs) == [(3, "createTable", None), (4, "runQuery", None)]
    assert [e.sql for e in _literals(recs)] == ["SELECT 1"]


def test_a_finding_on_a_stand_in_names_the_code(tmp_path):
    from dsql_audit.config import Config
    from dsql_audit.scan import scan
    from dsql_audit.sources import discover

    folder = tmp_path / "src" / "migrations"
    folder.mkdir(parents=True)
    (folder / "1700000000000-Idx.ts").write_text(
        TYPEORM_HEAD + "    await queryRunner.query(`CREATE INDEX idx_email ON ${tablePrefix}users (email)`);\n"
        + TYPEORM_TAIL)
    result = scan([str(tmp_path)], config=Config(profile="2026-06-30"), jobs=1, aggregate=False,
                  discovery=discover([str(tmp_path)]))
    (f,) = [f for f in result.findings if f.name == "sync-index"]
    assert (f.line, f.column) == (4, 30)
    assert "${tablePrefix}users" in f.object and "__tableprefix_" not in f.object


# -- what the old scanner read wrong -----------------------------------------------------------------------------

def test_down_is_not_read_when_up_is_an_async_arrow():
    # the old scanner did not see ``up: async (…) =>`` as up() and read the whole file, down() included
    sequelize = """module.exports = {
  up: async (queryInterface, Sequelize) => {
    await queryInterface.addColumn('documents', 'parentId', { type: Sequelize.UUID });
  },
  down: async (queryInterface) => {
    await queryInterface.removeColumn('documents', 'parentId');
  },
};
"""
    assert _sqls(extract("migrations/1-parent.js", sequelize)) == ['ALTER TABLE documents ADD COLUMN "parentId" UUID']
    knex = """exports.up = async (knex) => {
  await knex.raw('TRUNCATE TABLE cache');
};
exports.down = async (knex) => {
  await knex.schema.alterTable('projects', (table) => { table.dropColumn('team_id'); });
};
"""
    recs = extract("migrations/2_team.js", knex)
    assert [(e.line, e.sql) for e in recs] == [(2, "TRUNCATE TABLE cache")]


def test_a_file_without_up_is_read_whole():
    text = """module.exports.run = async (queryInterface) => {
  await queryInterface.dropTable('t');
};
// up
"""
    assert _sqls(extract("migrations/9-run.js", text)) == ["DROP TABLE t"]
