"""`dsql-audit replay` on captures real PostgreSQL wrote: a log made during the test (two sessions
colliding on one row) and the shared workload captures."""

from __future__ import annotations

import collections
import json
import subprocess
import sys

import psycopg
import pytest

from dsql_audit.replay import redact, replay
from tests.conftest import SHARED, StatementLog

CAPTURES = SHARED / "corpus" / "captures"
needs_shared = pytest.mark.skipif(not CAPTURES.exists(), reason="../shared/corpus/captures is not present "
                                  "(it is beside the repository in CI only)")


def _logged(tmp_path_factory, name: str, sessions, **log):
    """Run ``sessions(a, b)`` on two connections to a PostgreSQL that logs statements (``log``: StatementLog's
    settings); the log PostgreSQL wrote, as a capture file."""
    tmp = tmp_path_factory.mktemp(name)
    with StatementLog(tmp / "pg", **log) as capture:
        with psycopg.connect(capture.engine.uri) as a, psycopg.connect(capture.engine.uri) as b:
            sessions(a, b)
        text = capture.text()
    path = tmp / f"{name}.log"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def overlapping_log(tmp_path_factory):
    """Two sessions updating the same row in overlapping transactions, logged by PostgreSQL itself
    (log_statement=all). On PostgreSQL the second UPDATE fails at the statement; the log keeps every
    statement as sent, including the losing session's COMMIT."""
    import time

    def sessions(a, b):
        # a few milliseconds between the steps: the log's %m stamps are milliseconds, and two captures are
        # merged by them (test_two_captures_of_one_workload_merge_by_time) — equal stamps leave the order open
        a.execute("CREATE TABLE acct (id int PRIMARY KEY, balance int)")
        a.commit()
        a.execute("INSERT INTO acct VALUES (1, 100), (2, 100)")
        a.commit()
        time.sleep(0.005)
        a.execute("UPDATE acct SET balance = balance - 10 WHERE id = 1")
        time.sleep(0.005)
        b.execute("SELECT balance FROM acct WHERE id = 2")
        time.sleep(0.005)
        a.commit()
        time.sleep(0.005)
        with pytest.raises(psycopg.errors.SerializationFailure):
            b.execute("UPDATE acct SET balance = balance + 10 WHERE id = 1")
        time.sleep(0.005)
        b.commit()

    return _logged(tmp_path_factory, "overlap", sessions)


def test_replay_reports_the_occ_conflict_and_the_key(overlapping_log):
    result = replay([str(overlapping_log)])
    occ = [f for f in result.findings if f.name == "occ-conflict"]
    assert len(occ) == 1 and result.stats.occ_conflicts == 1
    assert occ[0].sqlstate == "40001" and occ[0].snippet == "COMMIT"
    assert "colliding write: UPDATE acct SET balance = balance + 10 WHERE id = 1" in occ[0].message
    lines = overlapping_log.read_text().splitlines()
    assert "COMMIT" in lines[occ[0].line - 1]  # the line of the losing COMMIT in the capture
    assert result.stats.sessions == 2 and not result.errors


def test_cli_replay_json_and_redaction(overlapping_log, tmp_path):
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "dsql_audit.cli", "replay", str(overlapping_log), "-f", "json",
                        "-o", str(out), "--redact"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr  # an error-severity violation
    doc = json.loads(out.read_text())
    (f,) = [f for f in doc["findings"] if f["name"] == "occ-conflict"]
    assert "balance + ? WHERE id = ?" in f["message"] and "+ 10" not in f["message"]
    summary = doc["replay"]
    assert summary["occ_conflicts"] == 1 and summary["top_contended_tables"] == [["acct", 1]]
    largest = summary["largest_transactions"]
    assert {x["outcome"] for x in largest} == {"committed", "failed 40001"}
    assert max(x["rows"] for x in largest) == 2  # the two-row INSERT
    assert all(x["seconds"] >= 0 and x["line"] >= 1 for x in largest)
    assert summary["transactions_lost"] == 1 and 0 < summary["occ_conflict_rate"] <= 1
    assert redact("UPDATE t SET v = 'secret' WHERE id = 42") == "UPDATE t SET v = ? WHERE id = ?"


@needs_shared
def test_replay_generated_workload_finds_what_it_was_built_with():
    """workload_dsql_features.sql was built to contain one of each (SOURCES.md); replaying the server's
    csvlog of it finds them, at the capture lines where the statements are."""
    result = replay([str(CAPTURES / "generated" / "workload_pg15.csv")])
    found = collections.Counter(f.name for f in result.findings)
    for rule in ("truncate", "temporary-table", "ddl-dml-mix", "isolation-level", "advisory-lock",
                 "listen-notify", "lock-table", "extension", "custom-type", "materialized-view", "sync-index",
                 "procedural-function", "trigger", "partitioned-table", "collation", "do-block"):
        assert found[rule] >= 1, (rule, found)
    assert not result.errors and result.stats.statements == 934


@needs_shared
def test_replay_pg_stat_statements_weights_by_calls():
    result = replay([str(CAPTURES / "generated" / "workload_pg_stat_statements.csv")])
    # 133 rows, 61 of them toplevel = f (run inside functions or CREATE EXTENSION): left out
    assert result.stats.statements == 72 and result.stats.calls > result.stats.statements
    vacuum = [f for f in result.findings if f.name == "vacuum"]
    assert vacuum and all(f.occurrences >= 1 and f.queryid for f in vacuum)
    assert vacuum[0].to_json()["calls"] == vacuum[0].occurrences
    assert result.stats.calls_affected >= sum(1 for _ in vacuum)


def test_captured_timings_drive_the_age_and_lifetime_bounds(overlapping_log, tmp_path):
    """The same real log with its clock moved: the COMMIT of session b 400 s after its BEGIN exceeds DSQL's
    300-second transaction age; statements of a session 61 minutes after it connected find it closed."""
    from dsql_audit.replay import capture_seconds

    assert abs(capture_seconds("2026-11-23 08:20:00.513 UTC") - capture_seconds("2026-11-23 08:19:00 UTC") - 60.513) < 1e-6
    assert capture_seconds("2026-11-23 10:20:00+02:00") == capture_seconds("2026-11-23 08:20:00 UTC")
    lines = overlapping_log.read_text().splitlines(keepends=True)
    last_commit = max(i for i, line in enumerate(lines) if "statement: COMMIT" in line)

    def shifted(seconds):
        out = []
        for i, line in enumerate(lines):
            if i >= last_commit and (m := __import__("re").match(r"(\S+ \S+)( \w+ .*)", line, __import__("re").S)):
                import datetime

                stamp = datetime.datetime.fromisoformat(m.group(1)) + datetime.timedelta(seconds=seconds)
                line = stamp.isoformat(sep=" ", timespec="milliseconds") + m.group(2)
            out.append(line)
        path = tmp_path / f"shift{seconds}.log"
        path.write_text("".join(out))
        return path

    late = replay([str(shifted(400))])
    assert [f.name for f in late.findings if f.name != "occ-conflict"] == ["transaction-timeout"]
    older = replay([str(shifted(3700))])
    assert "connection-lifetime" in {f.name for f in older.findings}


def test_two_captures_of_one_workload_merge_by_time(overlapping_log, tmp_path):
    """The same real log split by session into two files (as two servers' or two rotations' logs would be):
    merged by captured time, the interleaving — and so the conflict — is the same."""
    import re

    lines = overlapping_log.read_text().splitlines(keepends=True)
    pids = sorted({m.group(1) for line in lines if (m := re.search(r"\[(\d+)\]", line))})
    parts = []
    for pid in pids:
        path = tmp_path / f"{pid}.log"
        path.write_text("".join(line for line in lines if f"[{pid}]" in line))
        parts.append(str(path))
    merged = replay(parts[::-1])
    assert [f.name for f in merged.findings] == [f.name for f in replay([str(overlapping_log)]).findings]
    assert merged.stats.occ_conflicts == 1


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_pg_stat_statements_figures_weighted_by_calls_and_time(tmp_path):
    """Findings from the captured figures (rows per call, mean time), the gate and the resolution against
    the schema; the shares of calls and of database time are the affected entries' over the capture's."""
    rows = [  # queryid, query, calls, total ms, rows, mean ms, max ms
        (1, "SELECT name FROM items WHERE id = $1", 90000, 900.0, 90000, 0.01, 1.0),
        (2, "DELETE FROM items WHERE id > $1", 4, 800.0, 20000, 200.0, 250.0),  # 5,000 rows per call
        (3, "SELECT count(*) FROM items WHERE similarity(name, $1) > $2", 6000, 300.0, 6000, 0.05, 2.0),
        (4, "UPDATE items SET name = $1 WHERE id = $2", 500, 100.0, 500, 0.1, 400000.0),  # one slow call
    ]
    csv = "queryid,query,calls,total_exec_time,rows,mean_exec_time,max_exec_time\n" + "".join(
        f'{q},"{sql}",{c},{t},{r},{m},{x}\n' for q, sql, c, t, r, m, x in rows)
    schema = _write(tmp_path / "schema.sql", "CREATE TABLE items (id int PRIMARY KEY, name text);\n")
    result = replay([_write(tmp_path / "pgss.csv", csv)], schema=schema)
    by_line = collections.defaultdict(set)
    for f in result.findings:
        by_line[f.line].add(f.name)
    assert by_line == {3: {"transaction-row-limit"}, 4: {"extension"}, 5: {"transaction-timeout"}}, by_line
    s = result.replay_summary()
    affected = [r for r in rows if r[0] in (2, 3)]  # and, of entry 4, only its one slow call
    assert s["calls"] == sum(r[2] for r in rows) and s["calls_affected"] == sum(r[2] for r in affected) + 1
    assert s["share_of_time_affected"] == round((sum(r[3] for r in affected) + min(rows[3][3], rows[3][6]))
                                                / sum(r[3] for r in rows), 4)
    (limit,) = [f for f in result.findings if f.name == "transaction-row-limit"]
    assert "5,000 rows per call" in limit.message and limit.queryid == "2" and limit.occurrences == 4


DATA_SCHEMA = """CREATE TABLE items (id int PRIMARY KEY, name text);
CREATE TABLE tags (id int PRIMARY KEY, label text);
"""


def _data_dump(n: int, bad_tag: bool = False) -> str:
    """pg_dump --data-only's shape: settings, a COPY block per table, setval lines."""
    out = ["SET statement_timeout = 0;", "SET client_encoding = 'UTF8';", "",
           "COPY public.items (id, name) FROM stdin;"]
    out += [f"{i}\titem {i}" for i in range(1, n + 1)]
    out += ["\\.", "", "COPY public.tags (id, label) FROM stdin;", "1\tred"]
    out += ["two\tblue"] if bad_tag else ["2\tblue"]
    out += ["\\.", "", "INSERT INTO public.tags VALUES (3, 'green');", ""]
    return "\n".join(out)


def test_data_seeding_makes_row_counts_real(tmp_path):
    """A DELETE that touches every seeded row passes DSQL's 3,000-row bound only once the table holds
    production's rows: without --data the same capture is clean."""
    schema = _write(tmp_path / "schema.sql", DATA_SCHEMA)
    capture = _write(tmp_path / "cleanup.sql", "DELETE FROM items WHERE id > 10;\nSELECT count(*) FROM tags;\n")
    dump = _write(tmp_path / "data.sql", _data_dump(5000))
    seeded = replay([capture], schema=schema, data=[dump])
    assert [f.name for f in seeded.findings] == ["transaction-row-limit"]
    assert seeded.findings[0].line == 1 and not seeded.errors
    assert seeded.stats.seeded_rows == 5003
    assert replay([capture], schema=schema).findings == []


def test_data_seeding_reports_bad_rows_with_their_line_and_goes_on(tmp_path):
    schema = _write(tmp_path / "schema.sql", DATA_SCHEMA)
    dump_text = _data_dump(10, bad_tag=True)
    dump = _write(tmp_path / "data.sql", dump_text)
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "public.items.csv").write_text("id,name\n" + "".join(f"{i},csv {i}\n" for i in range(11, 4011)))
    capture = _write(tmp_path / "w.sql", "DELETE FROM items;\n")
    result = replay([capture], schema=schema, data=[dump, str(csv_dir)])
    (err,) = result.errors
    assert err.path == dump and "invalid input syntax for type integer" in err.message
    assert dump_text.splitlines()[err.line - 1] == "two\tblue"  # the bad row's own line in the dump
    assert result.stats.seeded_rows == 10 + 1 + 4000  # items from both files, tags' INSERT; not the bad block
    assert [f.name for f in result.findings] == ["transaction-row-limit"]


def test_speed_paces_the_replay_by_captured_time(overlapping_log, tmp_path):
    """The real log with its records moved 10 captured seconds apart, replayed at 100x: the replay waits
    until each record's captured time / 100 has passed — 0.1 s per record less the time spent replaying."""
    import datetime
    import re
    import time

    out, n = [], 0
    base = datetime.datetime(2026, 11, 23, 8, 0, 0)
    for line in overlapping_log.read_text().splitlines(keepends=True):
        m = re.match(r"\d{4}-\S+ \S+( .*)", line, re.S)
        if m:
            n += 1
            line = (base + datetime.timedelta(seconds=10 * n)).isoformat(sep=" ", timespec="milliseconds") + m.group(1)
        out.append(line)
    spread = _write(tmp_path / "spread.log", "".join(out))
    waits = []
    t0 = time.monotonic()
    paced = replay([spread], speed=100, sleep=lambda d: (waits.append(d), time.sleep(d)))
    spent = time.monotonic() - t0
    due = 10 * (n - 1) / 100  # the last record's captured time after the first, at 100x
    assert len(waits) >= 3 and 0 < sum(waits) <= due and spent >= due, (waits, due, spent)
    assert paced.stats.occ_conflicts == 1
    waits.clear()
    replay([spread], sleep=waits.append)  # no --speed: as fast as possible
    assert waits == []


@pytest.fixture
def dsql_endpoint():
    """A fresh `dsql-audit serve` on a free port: a real PostgreSQL-wire endpoint with DSQL's behaviour, standing
    in for a cluster as --target."""
    from dsql_audit.engine import Engine
    from dsql_audit.serve import Server

    with Engine(job_latency=0.1) as engine:
        srv = Server(engine, port=0).start()
        yield srv
        srv.stop()


def test_target_replay_reports_real_outcomes_beside_the_engines(overlapping_log, dsql_endpoint):
    result = replay([str(overlapping_log)], target=dsql_endpoint.dsn)
    t = result.target
    assert t["statements"] == result.stats.statements and t["reconnects"] == 0
    assert t["errors"] >= 1  # the losing COMMIT, answered 40001 by the endpoint itself
    assert t["disagreed_with_engine"] == 0, t["disagreements"]
    assert "***" not in t["endpoint"] and "admin@" in t["endpoint"]


def test_cli_target_needs_allow_writes_and_hides_passwords(overlapping_log, dsql_endpoint, tmp_path):
    replay([str(overlapping_log)], target=dsql_endpoint.dsn)  # the endpoint now holds the workload's table
    dsn = dsql_endpoint.dsn.replace("admin@", "admin:s3cret-token@")
    cmd = [sys.executable, "-m", "dsql_audit.cli", "replay", str(overlapping_log), "--target", dsn]
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--allow-writes" in refused.stderr and "s3cret" not in refused.stderr
    out = tmp_path / "r.json"
    ran = subprocess.run(cmd + ["--allow-writes", "-f", "json", "-o", str(out)], capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 1, ran.stderr
    assert "s3cret" not in ran.stderr + out.read_text()
    target = json.loads(out.read_text())["replay"]["target"]
    assert target["endpoint"].startswith("postgresql://admin:***@")
    # the endpoint already holds the first replay's table and rows: its real answers differ from the fresh engine's
    # exactly where that state matters, and the report shows both sides
    got = sorted((d["statement"].split()[0], d["engine"], d["target"][:5]) for d in target["disagreements"])
    assert got == [("CREATE", "ok", "42P07"), ("INSERT", "ok", "23505")], target["disagreements"]
    down = subprocess.run(cmd[:-1] + ["postgresql://admin:pw@127.0.0.1:1/postgres", "--allow-writes"],
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 2 and "cannot connect" in down.stderr and ":pw@" not in down.stderr


def test_schema_from_a_live_database(tmp_path):
    """--schema-from reads the source database's schema with pg_dump (read-only) and loads it as DSQL
    would: the PL/pgSQL function is refused, so the captured statement calling it does not resolve."""
    from dsql_audit.engine import Engine

    with Engine(data_dir=str(tmp_path / "source")) as source:  # a plain PostgreSQL as the source database
        with psycopg.connect(source.uri, autocommit=True) as c:
            c.execute("CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric)")
            c.execute("CREATE FUNCTION total(o orders) RETURNS numeric LANGUAGE plpgsql AS "
                      "$$ BEGIN RETURN o.amount; END $$")
            before = c.execute("SELECT count(*) FROM pg_stat_activity").fetchone()
        csv = _write(tmp_path / "pgss.csv", 'queryid,query,calls,total_exec_time,rows\n'
                     '5,"SELECT total(o) FROM orders o WHERE id = $1",300,3.0,300\n'
                     '6,"SELECT amount FROM orders WHERE id = $1",900,3.0,900\n')
        r = subprocess.run([sys.executable, "-m", "dsql_audit.cli", "replay", csv, "--schema-from", source.uri,
                            "-f", "json"], capture_output=True, text=True, timeout=180)
        assert r.returncode == 1, r.stderr
        doc = json.loads(r.stdout)
        names = {(f["name"], f["line"]) for f in doc["findings"] if f["path"] == csv}
        assert names == {("unresolved-name", 2)}, doc["findings"]
        assert any(f["name"] == "procedural-function" for f in doc["findings"])
        with psycopg.connect(source.uri, autocommit=True) as c:  # nothing was written to the source
            assert c.execute("SELECT count(*) FROM orders").fetchone() == (0,)
            assert before is not None


def test_endpoints_never_show_passwords_and_need_iam_for_dsql():
    from dsql_audit.replay.endpoints import EndpointError, connect, is_dsql, redact_dsn

    assert redact_dsn("postgresql://admin:tok%2Fen@h:5432/postgres?sslmode=require") == \
        "postgresql://admin:***@h:5432/postgres?sslmode=require"
    assert redact_dsn("host=h user=admin password='se cret' dbname=postgres") == \
        "host=h user=admin password=*** dbname=postgres"
    assert redact_dsn("postgresql://h/postgres?user=admin&password=abc&sslmode=require") == \
        "postgresql://h/postgres?user=admin&password=***&sslmode=require"
    dsn = "postgresql://admin@abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws/postgres?sslmode=require"
    assert is_dsql(dsn) and not is_dsql("postgresql://admin@localhost/postgres")
    try:
        import aurora_dsql_psycopg  # noqa: F401
    except ImportError:
        with pytest.raises(EndpointError, match=r"dsql-audit\[dsql\]"):
            connect(dsn)


def test_replay_with_a_converted_schema(tmp_path):
    """--convert: the pg_dump-style schema (serial key, PK added later, an enum) is converted first, so the
    workload meets a schema DSQL holds — only the workload's own violations are reported."""
    schema = _write(tmp_path / "dump.sql", "CREATE TYPE mood AS ENUM ('ok', 'sad');\n"
                    "CREATE TABLE notes (id serial, body text, m mood);\n"
                    "ALTER TABLE ONLY notes ADD CONSTRAINT notes_pkey PRIMARY KEY (id);\n")
    capture = _write(tmp_path / "w.sql", "INSERT INTO notes (body, m) VALUES ('hi', 'ok');\n"
                     "SELECT count(*) FROM notes WHERE m = 'ok';\nTRUNCATE notes;\n")
    cmd = [sys.executable, "-m", "dsql_audit.cli", "replay", capture, "--schema", schema, "-f", "json"]
    plain = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout)
    converted = json.loads(subprocess.run(cmd + ["--convert"], capture_output=True, text=True, timeout=180).stdout)
    assert {f["name"] for f in converted["findings"]} == {"truncate"}
    assert converted["replay"]["schema"] == {"statements": 2, "refused": 0}
    assert plain["replay"]["schema"]["refused"] == 3  # CREATE TYPE, serial, ADD PRIMARY KEY
    assert {f["name"] for f in plain["findings"]} > {"truncate"}


def test_schema_from_a_migration_folder_and_markdown(tmp_path):
    """--schema DIR: the DDL a migration folder holds, in its framework's order; -f markdown."""
    from tests.conftest import FIXTURES

    capture = _write(tmp_path / "w.sql", "INSERT INTO tags (name) VALUES ('a');\nTRUNCATE tags;\n")
    r = subprocess.run([sys.executable, "-m", "dsql_audit.cli", "replay", capture, "--schema",
                        str(FIXTURES / "migrations" / "flyway"), "-f", "markdown"], capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 1, r.stderr
    # the schema's own refusals at their files and lines, in run order (V1 … then the repeatable R__ script)
    sections = r.stdout.replace(str(FIXTURES.parent) + "/", "").split("<details>")
    sequence = next(s for s in sections if "<b>DSQL201 sequence</b>" in s)
    assert "| error | `fixtures/migrations/flyway/sql/V1__init.sql:2` |" in sequence
    assert r.stderr.index("V3__post_indexes.sql") < r.stderr.index("R__views.sql")
    truncate = next(s for s in sections if "<b>DSQL401 truncate</b>" in s)
    assert "| error | `" in truncate and "w.sql:2`" in truncate
    assert "of calls" in r.stdout  # the replay headline


def test_target_that_drops_connections_is_reconnected_and_nothing_is_written_twice(dsql_endpoint, tmp_path):
    capture = tmp_path / "w.sql"
    capture.write_text("CREATE TABLE marks (id int PRIMARY KEY);\n"
                       + "".join(f"INSERT INTO marks VALUES ({i});\n" for i in range(1, 11))
                       + "BEGIN;\nINSERT INTO marks VALUES (11);\nINSERT INTO marks VALUES (12);\nCOMMIT;\n"
                       + "".join(f"INSERT INTO marks VALUES ({i});\n" for i in range(13, 16)))
    from tests.conftest import DroppingProxy

    proxy = DroppingProxy(("127.0.0.1", dsql_endpoint.port), [b"VALUES (5)", b"VALUES (11)"])
    try:
        dsn = f"postgresql://admin@127.0.0.1:{proxy.port}/postgres?sslmode=disable"
        result = replay([str(capture)], target=dsn, sleep=lambda s: None)
    finally:
        proxy.close()
    t = result.target
    assert proxy.dropped == 2
    assert t["reconnects"] == 2 and t["lost_in_flight"] == 2
    assert t["skipped_after_loss"] == 2  # INSERT (12) and the COMMIT of the transaction that died
    with psycopg.connect(dsql_endpoint.dsn, autocommit=True) as c:
        rows = [r[0] for r in c.execute("SELECT id FROM marks ORDER BY id")]
    # 5 ran once though its answer was lost (never re-sent); 11 died with its transaction; 12 was never sent
    assert rows == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15]


def test_clock_jumps_in_a_log_keep_each_sessions_order(tmp_path):
    """Timestamps that jump back an hour, forward a day and back to 1970: statements of one session still run
    in log order (the INSERT finds the table created 'after' it); the day-long gap is judged as what it
    says — a connection open past DSQL's 60 minutes — and nothing else is reported."""
    log = tmp_path / "clock.log"
    log.write_text(
        "2026-01-05 10:00:00.000 UTC [100] app@postgres LOG:  statement: CREATE TABLE jumps (id int PRIMARY KEY, v int)\n"
        "2026-01-05 09:00:00.000 UTC [100] app@postgres LOG:  statement: INSERT INTO jumps VALUES (1, 1)\n"
        "2026-01-05 09:00:00.500 UTC [200] app@postgres LOG:  statement: SELECT 1\n"
        "2026-01-06 23:00:00.000 UTC [100] app@postgres LOG:  statement: UPDATE jumps SET v = 2 WHERE id = 1\n"
        "1970-01-01 00:00:00.000 UTC [100] app@postgres LOG:  statement: DELETE FROM jumps WHERE id = 1\n")
    result = replay([str(log)])
    assert not result.errors
    assert [(f.line, f.name) for f in result.findings] == [(4, "connection-lifetime")]


def test_a_log_with_mixed_encodings_is_replayed_whole(tmp_path):
    """A Latin-1 byte in a UTF-8 log (clients with different client_encoding): every statement is still
    replayed, at its own line, and nothing is lost after the odd byte."""
    log = tmp_path / "enc.log"
    log.write_bytes(b"2026-01-05 10:00:00.000 UTC [100] app@postgres LOG:  statement: CREATE TABLE enc (id int PRIMARY KEY, v text)\n"
                    b"2026-01-05 10:00:01.000 UTC [100] app@postgres LOG:  statement: INSERT INTO enc VALUES (1, 'caf\xe9')\n"
                    b"2026-01-05 10:00:02.000 UTC [100] app@postgres LOG:  statement: INSERT INTO enc VALUES (2, 'caf\xc3\xa9')\n"
                    b"2026-01-05 10:00:03.000 UTC [100] app@postgres LOG:  statement: TRUNCATE enc\n")
    result = replay([str(log)])
    assert result.stats.statements == 4 and not result.errors
    assert [(f.line, f.name) for f in result.findings] == [(4, "truncate")]


@pytest.fixture(scope="module")
def mod_only_log(tmp_path_factory):
    """log_statement = mod with %v in the prefix, as many production servers log: no BEGIN, COMMIT or SELECT
    in the capture, only writes with their virtual transaction ids. Session a writes rows 1 and 3 in one
    transaction; b, in a transaction opened while a's was open, writes row 2, then row 1 after a committed
    (PostgreSQL's REPEATABLE READ refuses it at the statement; the log keeps it)."""
    def sessions(a, b):
        a.execute("CREATE TABLE acct (id int PRIMARY KEY, balance int)")
        a.commit()
        a.execute("INSERT INTO acct VALUES (1, 100), (2, 100), (3, 100)")
        a.commit()
        a.execute("UPDATE acct SET balance = balance - 10 WHERE id = 1")
        b.execute("UPDATE acct SET balance = balance - 5 WHERE id = 2")
        a.execute("UPDATE acct SET balance = balance + 10 WHERE id = 3")
        a.commit()
        with pytest.raises(psycopg.errors.SerializationFailure):
            b.execute("UPDATE acct SET balance = balance + 5 WHERE id = 1")
        b.rollback()
        for _ in range(3):  # three autocommit-sized transactions of one write each
            a.execute("UPDATE acct SET balance = balance + 1 WHERE id = 2")
            a.commit()

    return _logged(tmp_path_factory, "mod", sessions, statements="mod", prefix="%m [%p] %v ")


def test_transactions_are_rebuilt_from_virtual_transaction_ids(mod_only_log):
    text = mod_only_log.read_text()
    assert "BEGIN" not in text and "COMMIT" not in text and "statement: UPDATE" in text
    result = replay([str(mod_only_log)])
    occ = [f for f in result.findings if f.name == "occ-conflict"]
    assert len(occ) == 1, [(f.name, f.message) for f in result.findings]
    assert "colliding write: UPDATE acct SET balance = balance + 5 WHERE id = 1" in occ[0].message
    assert "id = 1" in text.splitlines()[occ[0].line - 1]  # the losing transaction's last statement
    # a's two writes and b's two: rebuilt; the single writes stay autocommit
    assert result.stats.transactions_rebuilt == 2
    assert result.stats.transactions_lost == 1 and result.stats.occ_conflicts == 1
    assert result.replay_summary()["transactions_rebuilt"] == 2


def test_without_vxids_the_same_writes_are_autocommit(mod_only_log, tmp_path):
    """The control: the same log with the %v field blanked has nothing to group by — no conflict."""
    import re

    plain = tmp_path / "plain.log"
    plain.write_text(re.sub(r"(\] )\d+/\d+ ", r"\1", mod_only_log.read_text()))
    result = replay([str(plain)], log_line_prefix="%m [%p] ")
    assert result.stats.transactions_rebuilt == 0
    assert not [f for f in result.findings if f.name == "occ-conflict"]


def test_vxid_marking_waits_only_a_bounded_window():
    from dsql_audit.replay.captures import Event, mark_transactions

    evs = [Event(line=1, sql="UPDATE t SET a = 1", session="a", vxid="3/7")]
    evs += [Event(line=i + 2, sql="SELECT 1", session=f"s{i}", vxid=f"4/{i + 1}") for i in range(50)]
    evs.append(Event(line=99, sql="UPDATE t SET a = 2", session="a", vxid="3/7"))
    out = list(mark_transactions(iter(evs), window=10))
    assert [e.line for e in out] == [e.line for e in evs]  # order kept
    assert out[0].continues is False  # its successor came after the window: treated as the last
    out = list(mark_transactions(iter(evs), window=1000))
    assert out[0].continues is True and out[-1].continues is False


def test_nothing_the_engine_refuses_goes_unseen(tmp_path):
    """Names that do not resolve, statements that do not parse, and the rest of a transaction after its
    first refused statement (judged by the rules alone) all surface."""
    script = tmp_path / "w.sql"
    script.write_text("UPDATE nosuch SET x = 1 WHERE id = 1;\nSELECT nosuchfunc(1);\nBEGIN;\nLISTEN a;\n"
                      "CREATE EXTENSION hstore;\nTRUNCATE t;\nCOMMIT;\nSELEC 1;\n")
    result = replay([str(script)])
    found = {(f.line, f.name) for f in result.findings}
    assert {(1, "unresolved-name"), (2, "unresolved-name"), (4, "listen-notify"), (5, "extension"),
            (6, "truncate")} <= found
    assert [(e.line, "does not parse" in e.message) for e in result.errors] == [(8, True)]


def test_weighting_counts_only_what_must_change(tmp_path):
    """An info-level hot-row candidate is not a failure; a slowest call over 300 s counts that one call."""
    cap = tmp_path / "pgss.csv"
    cap.write_text("queryid,query,calls,total_exec_time,rows,mean_exec_time,max_exec_time\n"
                   "1,UPDATE accounts SET n = n + 1 WHERE id = $1,2000,100.0,2000,0.05,1.0\n"
                   "2,SELECT * FROM big WHERE x = $1,5000,401000.0,5000,0.2,400000.0\n"
                   "3,SELECT 1,5\n")
    result = replay([str(cap)])
    assert {f.name for f in result.findings} >= {"hot-row", "transaction-timeout"}
    assert result.stats.calls_affected == 1 and result.stats.calls == 7000
    assert [e.line for e in result.errors] == [4]  # the cut row: named, left out


def test_replay_usage_and_unreadable_input_exit_2(tmp_path, overlapping_log):
    cli = [sys.executable, "-m", "dsql_audit.cli", "replay"]
    for args in ([str(overlapping_log), "--profile", "2020-13-45"],
                 [str(overlapping_log), "-o", str(tmp_path / "no" / "such" / "r.json")]):
        r = subprocess.run(cli + args, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
    blob = tmp_path / "blob.log"
    blob.write_bytes(b"\x00\x01\x02 card 4111111111111111 'secret@example.com'\n" * 3)
    r = subprocess.run(cli + [str(blob), "--redact", "-f", "json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "4111111111111111" not in r.stdout and "secret@example.com" not in r.stdout


def test_prefixes_with_line_numbers_and_bracketed_times(tmp_path, overlapping_log):
    """[%p-%l] is not a syslog record part, and a log whose lines start with [%m] is not JSON."""
    import re

    from dsql_audit.replay.captures import Event, detect_format, read_capture

    lines = [ln for ln in overlapping_log.read_text().splitlines() if ln.strip()]
    base = [e for e in read_capture(overlapping_log, "stderr") if isinstance(e, Event)]
    numbered, bracketed = tmp_path / "numbered.log", tmp_path / "bracketed.log"
    numbered.write_text("".join(re.sub(r"\[(\d+)\]", lambda m, i=i: f"[{m.group(1)}-{i + 1}]", ln, count=1) + "\n"
                                for i, ln in enumerate(lines)))
    bracketed.write_text("".join(re.sub(r"^(\S+ \S+ \S+)", r"[\1]", ln) + "\n" for ln in lines))
    for path in (numbered, bracketed):
        assert detect_format(path) == "stderr"
        events = [e for e in read_capture(path, "stderr") if isinstance(e, Event)]
        assert [(e.sql, e.session) for e in events] == [(e.sql, e.session) for e in base], path.name
    assert replay([str(numbered)]).stats.occ_conflicts == 1


def test_a_bad_data_row_is_named_and_the_others_load(tmp_path):
    schema = tmp_path / "s.sql"
    schema.write_text("CREATE TABLE acct (id int PRIMARY KEY, bal int, note text);\n")
    data = tmp_path / "acct.csv"
    data.write_text("id,bal,note\n1,0,x\n2,0\n3,0,\n")
    script = tmp_path / "w.sql"
    script.write_text("SELECT count(*) FROM acct;\n")
    result = replay([str(script)], schema=str(schema), data=[str(data)])
    assert result.stats.seeded_rows == 2
    assert [(e.line, "note" in e.message) for e in result.errors] == [(3, True)]


def test_replay_without_a_schema_says_so_first_and_how_to_give_one(tmp_path):
    capture = tmp_path / "cap.sql"
    capture.write_text("SELECT * FROM orders WHERE id = 1;\nUPDATE orders SET total = 1 WHERE id = 2;\n")
    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE orders (id bigint PRIMARY KEY, total int);\n")

    def replay(*args):
        return subprocess.run([sys.executable, "-m", "dsql_audit", "replay", str(capture), *args], capture_output=True,
                              text=True, timeout=120)

    console = replay("--no-color").stdout
    assert console.startswith("note: Replayed without a schema") and "--schema FILE|FOLDER" in console
    assert "(2 unresolved-name finding(s))" in console
    doc = json.loads(replay("-f", "json").stdout)
    assert len(doc["notes"]) == 1 and "--schema-from DSN" in doc["notes"][0]
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps(doc))
    again = subprocess.run([sys.executable, "-m", "dsql_audit", "report", str(saved), "--no-color"],
                           capture_output=True, text=True, timeout=120).stdout
    assert again.startswith("note: Replayed without a schema")  # the saved result keeps it
    markdown = replay("-f", "markdown").stdout
    assert "> **Note:** Replayed without a schema" in markdown
    with_schema = json.loads(replay("--schema", str(schema), "-f", "json").stdout)
    assert "notes" not in with_schema and not any(f["name"] == "unresolved-name" for f in with_schema["findings"])
