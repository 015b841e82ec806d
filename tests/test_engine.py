"""The engine's DSQL behaviour on a real embedded PostgreSQL 16 (no mocks)."""

from __future__ import annotations

import re
import time

import pytest

from dsql_audit.engine import DsqlError, Engine


@pytest.fixture(scope="module")
def engine():
    with Engine() as e:
        yield e


def err(session, sql):
    with pytest.raises(DsqlError) as info:
        session.execute(sql)
    return info.value.sqlstate, info.value.message


def test_shape_of_one_dsql_cluster(engine):
    s = engine.session()
    assert s.execute("SELECT current_database(), current_user").rows == [("postgres", "admin")]
    assert s.execute("SHOW server_version").rows == [("16.15",)]
    assert s.execute("SHOW transaction_isolation").rows == [("repeatable read",)]
    assert s.execute("SELECT datcollate FROM pg_database WHERE datname = 'postgres'").rows == [("C",)]
    assert s.execute("SHOW timezone").rows == [("UTC",)]
    assert err(s, "SHOW lc_collate") == ("42704", 'unrecognized configuration parameter "lc_collate"')


def test_gate_uses_dsql_messages(engine):
    s = engine.session()
    s.execute("CREATE TABLE gate_t (id uuid PRIMARY KEY, v text)")
    cases = {
        "TRUNCATE gate_t": ("0A000", "unsupported statement: Truncate"),
        "CREATE EXTENSION pgcrypto": ("0A000", "unsupported statement: CreateExtension"),
        "CREATE TEMP TABLE x (id int)": ("0A000", "TEMPORARY or TEMP table not supported for CREATE TABLE"),
        "CREATE INDEX gate_v ON gate_t (v)": ("0A000", "unsupported mode. please use CREATE INDEX ASYNC."),
        "CREATE TABLE s (id serial PRIMARY KEY)": ("42704", 'type "serial" does not exist'),
        "BEGIN ISOLATION LEVEL SERIALIZABLE": ("0A000", "Unsupported isolation level: SERIALIZABLE"),
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$":
            ("0A000", "CREATE FUNCTION with language plpgsql not supported"),
        "SELECT * FROM gate_t FOR SHARE":
            ("0A000", "locking clauses other than FOR UPDATE/FOR KEY SHARE are not supported"),
        "SELECT to_tsvector('english', 'x')": ("42704", 'text search configuration "english" does not exist'),
    }
    for sql, want in cases.items():
        assert err(s, sql) == want, sql
    # what DSQL accepts runs on PostgreSQL
    assert s.execute("CREATE FUNCTION f_sql() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$").command_tag == \
        "CREATE FUNCTION"
    assert {f["rule"] for f in engine.findings} >= {"truncate", "extension", "sync-index", "sequence"}


def test_profile_decides(engine):
    with Engine(profile="2026-06-30") as old:
        s = old.session()
        s.execute("CREATE TABLE p (id uuid PRIMARY KEY)")
        state, _ = err(s, "CREATE TABLE c (id uuid PRIMARY KEY, p uuid REFERENCES p (id))")
        assert state == "0A000"
    s = engine.session()
    s.execute("CREATE TABLE fk_p (id uuid PRIMARY KEY)")
    assert s.execute("CREATE TABLE fk_c (id uuid PRIMARY KEY, p uuid REFERENCES fk_p (id))").command_tag == \
        "CREATE TABLE"


def test_errors_inside_a_transaction(engine):
    s = engine.session()
    s.execute("CREATE TABLE tx_t (id int PRIMARY KEY)")
    s.execute("BEGIN")
    s.execute("INSERT INTO tx_t VALUES (1)")
    assert err(s, "TRUNCATE tx_t")[0] == "0A000"
    assert err(s, "SELECT 1")[0] == "25P02"
    assert err(s, "TRUNCATE tx_t")[0] == "25P02"  # 25P02 is reported before the gate
    assert s.execute("COMMIT").command_tag == "ROLLBACK"
    assert s.execute("SELECT count(*) FROM tx_t").rows == [(0,)]
    # outside a transaction a refusal leaves no trace
    assert err(s, "TRUNCATE tx_t")[0] == "0A000"
    assert s.execute("SELECT 1").rows == [(1,)]


def test_transaction_shape(engine):
    s = engine.session()
    s.execute("BEGIN")
    s.execute("CREATE TABLE shape_a (id int PRIMARY KEY)")
    assert err(s, "CREATE TABLE shape_b (id int PRIMARY KEY)") == \
        ("0A000", "multiple ddl statements not supported in a transaction")
    assert s.execute("COMMIT").command_tag == "ROLLBACK"
    assert err(s, "CREATE TABLE shape_c (id int PRIMARY KEY); INSERT INTO shape_c VALUES (1)") == \
        ("0A000", "ddl and dml are not supported in the same transaction")
    assert err(s, "SELECT 1 FROM shape_c")[0] == "42P01"  # the implicit transaction rolled back
    r = s.execute("CREATE TABLE shape_d (id int PRIMARY KEY)")
    assert r.command_tag == "CREATE TABLE"
    r = s.execute("BEGIN; INSERT INTO shape_d VALUES (1); COMMIT")
    assert [x.command_tag for x in r.results] == ["BEGIN", "INSERT 0 1", "COMMIT"]


def test_row_limit_at_the_statement(engine):
    s = engine.session()
    s.execute("CREATE TABLE rows_t (id int PRIMARY KEY)")
    assert s.execute("INSERT INTO rows_t SELECT generate_series(1, 3000)").command_tag == "INSERT 0 3000"
    assert err(s, "INSERT INTO rows_t SELECT generate_series(3001, 6001)") == \
        ("54000", "transaction row limit exceeded")
    assert s.execute("SELECT count(*) FROM rows_t").rows == [(3000,)]  # the failed statement left nothing
    s.execute("BEGIN")
    assert s.execute("UPDATE rows_t SET id = id + 10000 WHERE id <= 2000").command_tag == "UPDATE 2000"
    # 2,000 updated + 1,001 deleted = 3,001 rows in one transaction
    assert err(s, "DELETE FROM rows_t WHERE id <= 3000 OR id = 10001")[0] == "54000"
    assert err(s, "SELECT 1")[0] == "25P02"
    assert s.execute("COMMIT").command_tag == "ROLLBACK"
    assert s.execute("SELECT max(id) FROM rows_t").rows == [(3000,)]


def test_async_index_returns_a_job(engine):
    s = engine.session()
    s.execute("CREATE TABLE idx_t (id int PRIMARY KEY, v text)")
    r = s.execute("CREATE INDEX ASYNC idx_t_v ON idx_t (v)")
    assert r.command_tag == "CREATE INDEX" and r.columns == ["job_id"]
    (job,), = r.rows
    assert re.fullmatch(r"[a-z2-7]{26}", job)
    assert s.execute(f"CALL sys.wait_for_job('{job}')").rows == [(True,)]
    assert s.execute(f"SELECT status, job_type FROM sys.jobs WHERE job_id = '{job}'").rows == \
        [("completed", "INDEX_BUILD")]
    assert err(s, "CALL sys.wait_for_job('nope')") == ("22P02", "Unable to convert text to UUID")
    assert err(s, "CREATE INDEX ASYNC public.idx_q ON idx_t (v)") == ("42601", 'syntax error at or near "."')


def test_start_up_is_quick_and_cleans_up():
    t = time.perf_counter()
    e = Engine().start()
    ready = time.perf_counter() - t
    d = e.data_dir
    assert e.session().execute("SELECT 1").rows == [(1,)]
    e.stop()
    import os

    assert ready < 5 and not os.path.exists(d)


def _two(engine, table):
    a, b = engine.session(), engine.session()
    a.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    a.execute(f"INSERT INTO {table} VALUES (1, 0), (2, 0)")
    return a, b


def test_occ_same_row_first_committer_wins_both_orders(engine):
    for first in (0, 1):
        a, b = _two(engine, f"occ_same_{first}")
        t = f"occ_same_{first}"
        a.execute("BEGIN")
        b.execute("BEGIN")
        started = time.perf_counter()
        assert a.execute(f"UPDATE {t} SET v = 1 WHERE id = 1").command_tag == "UPDATE 1"
        assert b.execute(f"UPDATE {t} SET v = 2 WHERE id = 1").command_tag == "UPDATE 1"  # never waits
        assert time.perf_counter() - started < 2
        winner, loser = (a, b) if first == 0 else (b, a)
        assert winner.execute("COMMIT").command_tag == "COMMIT"
        assert err(loser, "COMMIT") == ("40001", "change conflicts with another transaction (OC000)")
        assert a.execute(f"SELECT v FROM {t} WHERE id = 1").rows == [(1 if first == 0 else 2,)]


def test_occ_disjoint_rows_read_only_and_write_skew(engine):
    a, b = _two(engine, "occ_disjoint")
    a.execute("BEGIN")
    b.execute("BEGIN")
    a.execute("UPDATE occ_disjoint SET v = 1 WHERE id = 1")
    b.execute("UPDATE occ_disjoint SET v = 1 WHERE id = 2")
    assert a.execute("COMMIT").command_tag == b.execute("COMMIT").command_tag == "COMMIT"
    # a reader never fails validation, and keeps its snapshot
    r, w = engine.session(), engine.session()
    r.execute("BEGIN")
    assert r.execute("SELECT v FROM occ_disjoint WHERE id = 1").rows == [(1,)]
    w.execute("UPDATE occ_disjoint SET v = 5 WHERE id = 1")
    assert r.execute("SELECT v FROM occ_disjoint WHERE id = 1").rows == [(1,)]
    assert r.execute("COMMIT").command_tag == "COMMIT"
    # write skew: each reads the other's row and writes its own — snapshot isolation lets both commit
    a.execute("BEGIN")
    b.execute("BEGIN")
    a.execute("SELECT sum(v) FROM occ_disjoint")
    b.execute("SELECT sum(v) FROM occ_disjoint")
    a.execute("UPDATE occ_disjoint SET v = 0 WHERE id = 1")
    b.execute("UPDATE occ_disjoint SET v = 0 WHERE id = 2")
    assert a.execute("COMMIT").command_tag == b.execute("COMMIT").command_tag == "COMMIT"


def test_occ_for_update_and_same_key_inserts(engine):
    a, b = _two(engine, "occ_lock")
    a.execute("BEGIN")
    b.execute("BEGIN")
    assert a.execute("SELECT v FROM occ_lock WHERE id = 2 FOR UPDATE").rows == [(0,)]
    assert b.execute("UPDATE occ_lock SET v = 9 WHERE id = 2").command_tag == "UPDATE 1"
    assert a.execute("COMMIT").command_tag == "COMMIT"
    assert err(b, "COMMIT")[0] == "40001"
    # the same new key from two transactions: the second committer gets 40001, not 23505
    a.execute("BEGIN")
    b.execute("BEGIN")
    assert a.execute("INSERT INTO occ_lock VALUES (7, 1)").command_tag == "INSERT 0 1"
    assert b.execute("INSERT INTO occ_lock VALUES (7, 2)").command_tag == "INSERT 0 1"
    assert b.execute("COMMIT").command_tag == "COMMIT"
    assert err(a, "COMMIT")[0] == "40001"
    assert a.execute("SELECT v FROM occ_lock WHERE id = 7").rows == [(2,)]


def test_transaction_age_checked_at_commit():
    now = [1000.0]
    with Engine(clock=lambda: now[0]) as e:
        s = e.session()
        s.execute("CREATE TABLE age_t (id int PRIMARY KEY)")
        s.execute("BEGIN")
        s.execute("INSERT INTO age_t VALUES (1)")
        now[0] += 299
        assert s.execute("COMMIT").command_tag == "COMMIT"
        s.execute("BEGIN")
        s.execute("INSERT INTO age_t VALUES (2)")
        now[0] += 301
        assert s.execute("SELECT count(*) FROM age_t").rows == [(2,)]  # statements still run
        assert err(s, "COMMIT") == ("54000", "transaction age limit of 300s exceeded")
        assert s.execute("SELECT count(*) FROM age_t").rows == [(1,)]
        assert e.findings[-1]["rule"] == "transaction-timeout"


def test_for_update_needs_the_full_primary_key_before_september_2026():
    """DSQL before ~2026-09-09 locked rows only by equality on the whole primary key (DSQL601's recorded
    message); the engine reads the key from its own catalog, as the scan reads it from files."""
    with Engine(profile="2026-06-30") as old:
        s = old.session()
        s.execute("CREATE TABLE acct (a int, b int, v int, PRIMARY KEY (a, b))")
        s.execute("BEGIN")
        s.execute("SELECT v FROM acct WHERE a = 1 AND b = 2 FOR UPDATE")
        s.execute("COMMIT")
        s.execute("BEGIN")
        with pytest.raises(DsqlError) as info:
            s.execute("SELECT v FROM acct WHERE a = 1 FOR UPDATE")
        e = info.value
        assert e.sqlstate == "0A000" and "equality predicates on the key" in e.message
        assert e.finding["rule"] == "select-for-update"
        s.execute("ROLLBACK")
        s.close()
    with Engine() as new:  # the newest profile: any predicate
        s = new.session()
        s.execute("CREATE TABLE acct (a int, b int, v int, PRIMARY KEY (a, b))")
        s.execute("BEGIN")
        s.execute("SELECT v FROM acct WHERE a BETWEEN 1 AND 3 FOR UPDATE")
        s.execute("COMMIT")
        s.close()
