"""Issue 19: what DSQL refuses, refused alike by the Python engine API, `serve` (a real client) and `replay`;
comments, case and spacing read as DSQL's lexer reads them; every rule a refused statement breaks reported."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from dsql_audit.engine import DsqlError, Engine
from dsql_audit.serve import Server


@pytest.fixture(scope="module")
def engine():
    with Engine() as e:
        yield e


@pytest.fixture(scope="module")
def server(engine):
    srv = Server(engine, port=0).start()
    yield srv
    srv.stop()


def _cli_json(*args) -> dict:
    r = subprocess.run([sys.executable, "-m", "dsql_audit", *args, "-f", "json"], capture_output=True, text=True,
                       timeout=120)
    return json.loads(r.stdout)


def _error(session, sql):
    with pytest.raises(DsqlError) as raised:
        session.execute(sql)
    return raised.value.sqlstate, raised.value.message


def test_drop_column_of_a_key_and_set_transaction_serializable(engine):
    s = engine.session()
    s.execute("CREATE TABLE fi_dc (id uuid PRIMARY KEY, a int, b int)")
    s.execute("ALTER TABLE fi_dc DROP COLUMN a")
    assert _error(s, "ALTER TABLE fi_dc DROP COLUMN id") == ("0A000", "cannot drop primary key column id")
    s.execute("BEGIN")
    assert _error(s, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE") == (
        "0A000", "Unsupported isolation level: SERIALIZABLE")
    s.execute("ROLLBACK")
    s.execute("BEGIN")
    assert _error(s, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ") == (
        "0A000", 'setting configuration parameter "TRANSACTION" not supported')
    s.execute("ROLLBACK")
    with Engine(profile="2026-07-20") as old:  # before 2026-08-03 any DROP COLUMN was refused
        o = old.session()
        o.execute("CREATE TABLE fi_old (id uuid PRIMARY KEY, a int)")
        assert _error(o, "ALTER TABLE fi_old DROP COLUMN a")[0] == "0A000"


@pytest.mark.parametrize("sql", [
    "CREATE /* tag */ UNIQUE INDEX ASYNC fi_c1 ON fi_t (c)",
    "CREATE INDEX /* app:billing */ ASYNC fi_c2 ON fi_t (c)",
    "-- a line comment first\nCREATE INDEX ASYNC fi_c3 ON fi_t (c)",
    "create index async if not exists fi_c4 on fi_t (c) /*controller='x',framework='django'*/",
    "CREATE\n\tINDEX\n  ASYNC   fi_c5 ON fi_t (c)",
    'CREATE INDEX ASYNC "Fi_C6" ON fi_t ("c")',
])
def test_dsql_syntax_behind_comments_case_and_spacing_is_accepted(engine, sql):
    s = engine.session()
    s.execute("CREATE TABLE IF NOT EXISTS fi_t (id uuid PRIMARY KEY, c text)")
    assert s.execute(sql).command_tag == "CREATE INDEX"


def test_comments_around_transaction_control_and_async_alter(engine):
    s = engine.session()
    s.execute("CREATE TABLE fi_v (id uuid PRIMARY KEY, n int)")
    s.execute("ALTER TABLE fi_v ADD CONSTRAINT fi_v_n CHECK (n > 0) NOT VALID")
    assert s.execute("ALTER TABLE /* tag */ ASYNC fi_v VALIDATE CONSTRAINT fi_v_n").command_tag == "ALTER TABLE"
    assert s.execute("/* app */ BEGIN").command_tag == "BEGIN"
    s.execute("INSERT INTO fi_v VALUES (gen_random_uuid(), 1)")
    assert s.execute("COMMIT /*controller='x'*/").command_tag == "COMMIT"


def test_a_refused_statement_reports_every_rule_it_breaks(engine):
    s = engine.session()
    s.execute("CREATE TABLE fi_all (id uuid PRIMARY KEY, c text)")
    before = len(engine.findings)
    s.execute("BEGIN")
    s.execute("CREATE TABLE fi_all2 (id uuid PRIMARY KEY)")
    sqlstate, message = _error(s, "CREATE INDEX fi_all_c ON fi_all (c)")
    s.execute("ROLLBACK")
    assert (sqlstate, message) == ("0A000", "unsupported mode. please use CREATE INDEX ASYNC.")  # DSQL's first
    assert {f["rule"] for f in engine.findings[before:]} == {"sync-index", "multiple-ddl"}


def test_json_columns_are_no_keys_in_scan_engine_and_convert(engine, tmp_path):
    s = engine.session()
    s.execute("CREATE TABLE fi_docs (id uuid PRIMARY KEY, body jsonb, meta json)")
    for sql, kind in (("CREATE INDEX ASYNC fi_docs_body ON fi_docs (body)", "jsonb"),
                      ("CREATE INDEX ASYNC fi_docs_meta ON fi_docs (meta)", "json"),
                      ("CREATE TABLE fi_docs2 (body jsonb PRIMARY KEY)", "jsonb"),
                      ("CREATE TABLE fi_docs3 (id uuid PRIMARY KEY, body jsonb UNIQUE)", "jsonb")):
        assert _error(s, sql) == ("0A000", f"datatype {kind} is not supported in a key")
    assert s.execute("CREATE INDEX ASYNC fi_docs_k ON fi_docs ((body->>'k'))").command_tag == "CREATE INDEX"
    schema = tmp_path / "docs.sql"
    schema.write_text("CREATE TABLE docs (id uuid PRIMARY KEY, body jsonb);\n"
                      "CREATE INDEX ASYNC docs_body ON docs (body);\n"
                      "CREATE TABLE docs2 (body jsonb PRIMARY KEY);\n")
    scanned = _cli_json("scan", str(schema))
    assert [(f["name"], f["line"]) for f in scanned["findings"] if f["name"] == "index-definition"] == [
        ("index-definition", 2), ("index-definition", 3)]
    out = tmp_path / "conv"
    r = subprocess.run([sys.executable, "-m", "dsql_audit", "convert", str(schema), "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert "0 rejected" in r.stdout, r.stdout + r.stderr  # what convert writes, the engine loads
    converted = (out / "schema.sql").read_text()
    assert "docs_body" not in converted and "jsonb PRIMARY KEY" not in converted


def test_size_bounds_of_a_value_a_row_a_view_and_a_query(engine):
    s = engine.session()
    s.execute("CREATE TABLE fi_blobs (id int PRIMARY KEY, a text, b text, c text)")
    chunk = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, {n}) i)"
    s.execute(f"INSERT INTO fi_blobs VALUES (1, {chunk.format(n=30000)}, NULL, NULL)")  # 0.96 MB: fits
    assert _error(s, f"INSERT INTO fi_blobs VALUES (2, {chunk.format(n=34000)}, NULL, NULL)") == (
        "54000", "maximum column size exceeded")
    assert _error(s, "UPDATE fi_blobs SET a = a || a WHERE id = 1") == ("54000", "maximum column size exceeded")
    x = chunk.format(n=25000)  # 0.8 MB each: three are a 2.4 MB row
    assert _error(s, f"INSERT INTO fi_blobs VALUES (3, {x}, {x}, {x})") == ("54000", "maximum row size exceeded")
    s.execute(f"INSERT INTO fi_blobs VALUES (4, {x}, {x}, NULL)")
    assert s.execute("DELETE FROM fi_blobs").command_tag == "DELETE 2"  # a deleted row is over no bound
    wide = ", ".join(f"'{'x' * 90}' AS c{i}" for i in range(1400))  # a 140 KB definition
    assert _error(s, f"CREATE VIEW fi_wide AS SELECT {wide}") == ("54000", "view definition too large")
    assert _error(s, "SELECT count(*) FROM (SELECT g, md5(g::text) FROM generate_series(1, 4000000) g "
                     "ORDER BY 2) s") == (
        "54000", "query requires more than allowed temp space of 131072 KB to execute")
    rules = [(f["rule"], f["variant"]) for f in engine.findings if f["rule"] == "size-limit"]
    assert {v for _, v in rules} >= {"value", "row", "view", "temp_space"}


def test_the_same_through_serve_with_a_real_client(server):
    with psycopg.connect(server.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE fi_sv (id uuid PRIMARY KEY, c text, body jsonb)")
        c.execute("CREATE /* sqlcommenter */ UNIQUE INDEX ASYNC fi_sv_c ON fi_sv (c)")
        cases = [("ALTER TABLE fi_sv DROP COLUMN id", "cannot drop primary key column id"),
                 ("CREATE INDEX ASYNC fi_sv_body ON fi_sv (body)", "datatype jsonb is not supported in a key"),
                 ('CREATE TABLE fi_sv2 (id uuid PRIMARY KEY, n text COLLATE "C")', "per-column COLLATE"),
                 ("CREATE INDEX ASYNC fi_sv_u ON fi_sv USING btree (c)", "no USING clause"),
                 ("CREATE SEQUENCE fi_sv_seq AS integer CACHE 1", "must be bigint"),
                 ("ALTER TABLE fi_sv ENABLE ALWAYS TRIGGER t", "only ENABLE/DISABLE TRIGGER ALL and USER"),
                 ("DROP POLICY p ON fi_sv", "DROP POLICY"),
                 ("ALTER TABLE fi_sv NO FORCE ROW LEVEL SECURITY", "NO FORCE ROW LEVEL SECURITY"),
                 ("ALTER FUNCTION gen_random_uuid() IMMUTABLE", "ALTER FUNCTION"),
                 ("ALTER ROLE admin WITH PASSWORD 'x'", "PASSWORD is refused")]
        for sql, phrase in cases:
            with pytest.raises(psycopg.errors.FeatureNotSupported) as raised:
                c.execute(sql)
            assert phrase in str(raised.value), (sql, str(raised.value))
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="ALTER AGGREGATE"):
            c.execute("ALTER AGGREGATE a(int) RENAME TO b")
        with pytest.raises(psycopg.errors.InvalidTableDefinition, match="ON COMMIT"):  # PostgreSQL's 42P16
            c.execute("CREATE TABLE fi_sv_oc (id uuid PRIMARY KEY) ON COMMIT DELETE ROWS")
        with pytest.raises(psycopg.errors.UndefinedObject):  # no trigger can exist: 42704
            c.execute("DROP TRIGGER t ON fi_sv")
        c.execute("DROP TRIGGER IF EXISTS t ON fi_sv")
        c.execute("BEGIN")
        c.execute("CREATE TABLE fi_sv_n1 (id uuid PRIMARY KEY)")
        c.execute("BEGIN")  # inside a transaction: a no-op, not a second transaction
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="multiple ddl"):
            c.execute("CREATE TABLE fi_sv_n2 (id uuid PRIMARY KEY)")
        c.execute("ROLLBACK")
        c.execute("BEGIN")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="Unsupported isolation level: SERIALIZABLE"):
            c.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        c.execute("ROLLBACK")
        c.execute("CREATE TABLE fi_sv_blob (id uuid PRIMARY KEY, body text)")
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="maximum column size exceeded"):
            c.execute("INSERT INTO fi_sv_blob SELECT gen_random_uuid(), string_agg(md5(i::text), '') "
                      "FROM generate_series(1, 34000) i")


def test_replay_reports_every_rule_and_reads_tagged_commits(tmp_path):
    capture = tmp_path / "cap.sql"
    capture.write_text("CREATE TABLE r_t (id uuid PRIMARY KEY, c text);\n"
                       "BEGIN;\nCREATE TABLE r_u (id uuid PRIMARY KEY);\nCREATE INDEX r_t_c ON r_t (c);\nROLLBACK;\n"
                       "BEGIN;\nINSERT INTO r_t VALUES (gen_random_uuid(), 'a');\n/* app:web */ COMMIT;\n")
    doc = _cli_json("replay", str(capture))
    at_index = sorted(f["name"] for f in doc["findings"] if f["line"] == 4)
    assert at_index == ["multiple-ddl", "sync-index"]
    assert doc["replay"]["transactions_committed"] >= 1  # the tagged COMMIT ended a transaction


def test_dsql_syntax_after_a_long_leading_comment(engine):
    s = engine.session()
    s.execute("CREATE TABLE IF NOT EXISTS fi_t (id uuid PRIMARY KEY, c text)")
    tag = "/* " + "x" * 5000 + " */\n"  # longer than the head the pre-processing reads
    assert s.execute(tag + "CREATE INDEX ASYNC fi_c7 ON fi_t (c)").command_tag == "CREATE INDEX"
