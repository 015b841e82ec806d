"""Audit mode (`run`, `serve --audit`): where DSQL would refuse, the engine records the violation with DSQL's
SQLSTATE and message and the statement runs with PostgreSQL's semantics — the same statements refused when
enforcing."""

from __future__ import annotations

import threading
import time

import pytest

from dsql_audit.engine import DsqlError, Engine


@pytest.fixture(scope="module")
def audit():
    with Engine(audit=True, job_latency=0.05) as engine:
        yield engine


def rules(engine, since: int = 0) -> list:
    return [f["rule"] for f in engine.findings[since:]]


def test_refused_statements_are_recorded_and_run(audit):
    s = audit.session()
    before, stats = len(audit.findings), dict(audit.stats)
    s.execute("CREATE TABLE au_t (id int PRIMARY KEY, v text)")
    s.execute("INSERT INTO au_t VALUES (1, 'a'), (2, 'b')")
    s.execute("TRUNCATE au_t")  # refused by DSQL (0A000), run by PostgreSQL
    assert s.execute("SELECT count(*) FROM au_t").rows == [(0,)]
    s.execute("CREATE INDEX au_t_v ON au_t (v)")  # a synchronous index: recorded, built
    assert s.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'au_t_v'").rows == [(1,)]
    found = [(f["rule"], f["sqlstate"]) for f in audit.findings[before:]]
    assert ("truncate", "0A000") in found and ("sync-index", "0A000") in found
    assert audit.stats["statements"] - stats["statements"] == 6
    assert audit.stats["refused"] - stats["refused"] == 2
    with Engine() as enforcing:  # the same statement is refused when enforcing
        e = enforcing.session()
        e.execute("CREATE TABLE au_t (id int PRIMARY KEY)")
        with pytest.raises(DsqlError) as err:
            e.execute("TRUNCATE au_t")
        assert err.value.sqlstate == "0A000"


def test_transaction_shape_is_recorded_and_committed(audit):
    s = audit.session()
    before = len(audit.findings)
    s.execute("BEGIN")
    s.execute("CREATE TABLE au_a (id int PRIMARY KEY)")
    s.execute("CREATE TABLE au_b (id int PRIMARY KEY)")  # a second DDL
    s.execute("INSERT INTO au_a VALUES (1)")  # DML after DDL
    assert s.execute("COMMIT").command_tag == "COMMIT"
    assert rules(audit, before) == ["multiple-ddl", "ddl-dml-mix"]
    assert s.execute("SELECT count(*) FROM au_a, au_b").rows == [(0,)]
    assert s.execute("SELECT count(*) FROM au_a").rows == [(1,)]


def test_savepoints_recover_a_failed_transaction_as_on_postgresql(audit):
    """get_or_create's shape: an INSERT fails inside a savepoint, ROLLBACK TO recovers, the rest commits."""
    s = audit.session()
    s.execute("CREATE TABLE au_s (id int PRIMARY KEY)")
    before = len(audit.findings)
    s.execute("BEGIN")
    s.execute("INSERT INTO au_s VALUES (1)")
    s.execute("SAVEPOINT sp1")
    with pytest.raises(DsqlError) as err:
        s.execute("INSERT INTO au_s VALUES (1)")
    assert err.value.sqlstate == "23505"
    s.execute("ROLLBACK TO SAVEPOINT sp1")
    s.execute("INSERT INTO au_s VALUES (2)")
    s.execute("RELEASE SAVEPOINT sp1")
    assert s.execute("COMMIT").command_tag == "COMMIT"
    assert s.execute("SELECT array_agg(id ORDER BY id) FROM au_s").rows == [([1, 2],)]
    assert rules(audit, before).count("savepoint") == 3  # SAVEPOINT, ROLLBACK TO, RELEASE
    # a transaction PostgreSQL's error left failed, never recovered: its COMMIT answers ROLLBACK
    s.execute("BEGIN")
    with pytest.raises(DsqlError):
        s.execute("INSERT INTO au_s VALUES (1)")
    assert s.execute("COMMIT").command_tag == "ROLLBACK"


def test_the_row_bound_is_recorded_once_and_the_transaction_commits(audit):
    s = audit.session()
    s.execute("CREATE TABLE au_rows (id int PRIMARY KEY)")
    before = len(audit.findings)
    s.execute("BEGIN")
    for start in range(0, 3500, 500):
        s.execute(f"INSERT INTO au_rows SELECT g FROM generate_series({start}, {start + 499}) g")
    s.execute("COMMIT")
    assert rules(audit, before) == ["transaction-row-limit"]
    assert s.execute("SELECT count(*) FROM au_rows").rows == [(3500,)]


def test_a_write_meeting_an_open_transactions_row_is_recorded_and_waits(audit):
    """Two sessions write one row while both are open: DSQL fails the second COMMIT (OC000); audit mode
    records it at the write, which then waits for the first as PostgreSQL makes it (nothing is rolled back
    for it) and gets PostgreSQL's own answer when the first commits (REPEATABLE READ: 40001)."""
    a, b = audit.session(), audit.session()
    a.execute("CREATE TABLE au_occ (id int PRIMARY KEY, n int)")
    a.execute("INSERT INTO au_occ VALUES (1, 0), (2, 0)")
    before = len(audit.findings)
    a.execute("BEGIN")
    a.execute("UPDATE au_occ SET n = n + 1 WHERE id = 1")
    answer: list = []

    def second():
        b.execute("BEGIN")
        try:
            b.execute("UPDATE au_occ SET n = n + 10 WHERE id = 1")
            answer.append("updated")
        except DsqlError as exc:
            answer.append(exc.sqlstate)

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.5)
    assert answer == []  # waiting for the first, as on PostgreSQL
    assert a.execute("COMMIT").command_tag == "COMMIT"
    t.join(10)
    assert answer == ["40001"]
    assert b.execute("ROLLBACK").command_tag == "ROLLBACK"
    occ = [f for f in audit.findings[before:] if f["rule"] == "occ-conflict"]
    assert occ and occ[0]["sqlstate"] == "40001" and "OC000" in occ[0]["message"]
    assert a.execute("SELECT n FROM au_occ WHERE id = 1").rows == [(1,)]
    # a write to another row meets nothing: no finding, no wait
    before = len(audit.findings)
    a.execute("BEGIN")
    a.execute("UPDATE au_occ SET n = 5 WHERE id = 1")
    b.execute("BEGIN")
    b.execute("UPDATE au_occ SET n = 6 WHERE id = 2")
    a.execute("COMMIT")
    b.execute("COMMIT")
    assert not [f for f in audit.findings[before:] if f["rule"] == "occ-conflict"]


def test_concurrently_alone_in_an_extended_protocol_exchange_runs(audit):
    """asyncpg fetch() / psycopg send CREATE INDEX CONCURRENTLY as Parse/Bind/Execute/Sync: an implicit
    transaction holding only that statement, which PostgreSQL runs (prefect's autocommit_block migrations
    failed under `run` before: the engine wrapped it in BEGIN)."""
    s = audit.session()
    s.execute("CREATE TABLE au_cc (id int PRIMARY KEY, v text)")
    before = len(audit.findings)
    s.begin_implicit()
    s.execute("CREATE INDEX CONCURRENTLY au_cc_v ON au_cc (v)")
    s.end_implicit()
    assert s.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'au_cc_v'").rows == [(1,)]
    assert "sync-index" in rules(audit, before)
    # with another statement before it in the same exchange it is inside a block, as on PostgreSQL
    s.begin_implicit()
    s.execute("INSERT INTO au_cc VALUES (1, 'a')")
    with pytest.raises(DsqlError):
        s.execute("CREATE INDEX CONCURRENTLY au_cc_v2 ON au_cc (v)")
    s.end_implicit()


@pytest.mark.parametrize("mode", ["audit", "enforcing"])
def test_a_deferred_constraint_refused_at_commit_is_postgresqls_error_and_the_session_goes_on(audit, engine, mode):
    """PostgreSQL refuses the COMMIT itself (a DEFERRABLE INITIALLY DEFERRED foreign key, as Django makes them):
    the answer is PostgreSQL's 23503, the transaction is rolled back, and the session is not lost (it was
    answered as a lost connection, 08006: Django's get_or_create test saw OperationalError, not IntegrityError)."""
    e = audit if mode == "audit" else engine
    s = e.session()
    s.execute(f"CREATE TABLE dfk_p_{mode} (id int PRIMARY KEY)")
    s.execute(f"CREATE TABLE dfk_c_{mode} (id int PRIMARY KEY, p int REFERENCES dfk_p_{mode} "
              "DEFERRABLE INITIALLY DEFERRED)")
    pid = s.pid
    s.execute("BEGIN")
    s.execute(f"INSERT INTO dfk_c_{mode} VALUES (1, 42)")  # accepted: the check waits for COMMIT
    with pytest.raises(DsqlError) as info:
        s.execute("COMMIT")
    assert info.value.sqlstate == "23503" and "violates foreign key constraint" in info.value.message
    assert not s.in_txn and s.pid == pid  # the same backend: nothing was lost
    assert s.execute(f"SELECT count(*) FROM dfk_c_{mode}").rows == [(0,)]  # rolled back
    s.execute("BEGIN")
    s.execute(f"INSERT INTO dfk_p_{mode} VALUES (1)")
    s.execute(f"INSERT INTO dfk_c_{mode} VALUES (2, 1)")
    assert s.execute("COMMIT").command_tag == "COMMIT"
    assert s.execute(f"SELECT id FROM dfk_c_{mode}").rows == [(2,)]


@pytest.fixture(scope="module")
def engine():
    with Engine() as e:
        yield e
