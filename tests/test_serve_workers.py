"""`serve --workers N`: sessions in several processes over one embedded PostgreSQL decide OCC as one cluster.

The engine's own two-session OCC scenarios (tests/test_engine.py) and the OCC property test
(tests/test_engine_property.py) run here unchanged, through real psycopg clients, with the two sessions of
each scenario on different worker processes (checked on the board: the worker that holds each backend)."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

import test_engine
import test_engine_conformance
import test_engine_probes
import test_engine_property
from test_engine_probes import replay_cases
from dsql_audit.engine import DsqlError, Engine
from dsql_audit.engine.results import Result
from dsql_audit.serve import Server


class RemoteSession:
    """A psycopg client of serve, answering like an engine Session (rows, command tag, DsqlError)."""

    def __init__(self, engine: Engine, dsn: str):
        self.conn = psycopg.connect(dsn, autocommit=True)
        pid = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        index = engine.board.by_pid(pid)
        assert index is not None, "the session's backend is on the board"
        self.worker = engine.board.slots[index].worker

    def execute(self, sql: str) -> Result:
        """One query string (the simple protocol: several statements answer with a result each)."""
        try:
            cur = self.conn.execute(sql)
            results = []
            while True:
                rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
                results.append(Result(cur.statusmessage or "", [d.name for d in cur.description or ()], rows))
                if not cur.nextset():
                    break
        except psycopg.Error as exc:
            diag = exc.diag
            raise DsqlError(diag.sqlstate or "XX000", diag.message_primary or str(exc)) from None
        last = results[-1]
        return last if len(results) == 1 else Result(last.command_tag, last.columns, last.rows, results)

    def close(self) -> None:
        self.conn.close()


class RemoteEngine:
    """What the engine tests call ``engine``: sessions are clients of a two-worker serve."""

    def __init__(self, engine: Engine, server: Server):
        self.engine, self.server = engine, server
        self.opened: list = []

    def session(self) -> RemoteSession:
        s = RemoteSession(self.engine, self.server.dsn)
        self.opened.append(s)
        return s


@pytest.fixture(scope="module")
def served():
    with Engine(max_connections=120) as engine:
        server = Server(engine, port=0, workers=2).start()
        try:
            yield engine, server
        finally:
            server.stop()


@pytest.fixture
def remote(served):
    r = RemoteEngine(*served)
    yield r
    for s in r.opened:
        s.close()
    _settle(served[0])


def _settle(engine: Engine, still_open: int = 0) -> None:
    """Wait until the workers have counted the closed connections (the next scenario's pair is then split)."""
    deadline = time.monotonic() + 10
    while sum(engine.board.header.connections[i] for i in range(2)) > still_open:
        assert time.monotonic() < deadline, f"connections still counted: {list(engine.board.header.connections[:2])}"
        time.sleep(0.01)


def _on_both_workers(remote: RemoteEngine, count: int) -> list:
    """``count`` sessions spread over both workers (dispatch balances the workers' counts, which a closed
    connection leaves a moment after the client sees it closed: open again until they are spread)."""
    for attempt in range(20):
        sessions = [remote.session() for _ in range(count)]
        if len({s.worker for s in sessions}) == 2:
            return sessions
        for s in sessions:
            s.close()
            remote.opened.remove(s)
        _settle(remote.engine, len(remote.opened))
    raise AssertionError("the sessions never ran on both workers")


def _pairs_on_two_workers(remote: RemoteEngine) -> None:
    workers = [s.worker for s in remote.opened]
    assert len(set(workers)) == 2, f"sessions ran on workers {workers}"
    for a, b in zip(remote.opened[::2], remote.opened[1::2]):
        assert a.worker != b.worker, "each scenario's two sessions are on different workers"


def test_workers_are_processes_of_their_own(served):
    engine, server = served
    pids = {w.process.pid for w in server.pool.workers}
    assert len(pids) == 2 and os.getpid() not in pids
    for pid in pids:
        os.kill(pid, 0)


@pytest.mark.parametrize("scenario", ["test_occ_same_row_first_committer_wins_both_orders",
                                      "test_occ_disjoint_rows_read_only_and_write_skew",
                                      "test_occ_for_update_and_same_key_inserts"])
def test_engine_occ_scenarios_across_workers(remote, scenario):
    getattr(test_engine, scenario)(remote)
    _pairs_on_two_workers(remote)


def test_ddl_in_one_worker_dooms_a_transaction_in_the_other(remote):
    a, b = remote.session(), remote.session()
    assert a.worker != b.worker
    a.execute("CREATE TABLE w_ddl (id int PRIMARY KEY, v int)")
    a.execute("INSERT INTO w_ddl VALUES (1, 0)")
    b.execute("BEGIN")
    b.execute("UPDATE w_ddl SET v = 1 WHERE id = 1")
    a.execute("ALTER TABLE w_ddl ADD COLUMN note text")  # commits a DDL while b's transaction is open
    with pytest.raises(DsqlError) as info:
        b.execute("COMMIT")
    assert info.value.sqlstate == "40001" and "OC001" in info.value.message
    assert a.execute("SELECT v FROM w_ddl").rows == [(0,)]


def test_async_index_built_in_one_worker_waited_for_in_the_other(remote):
    a, b = remote.session(), remote.session()
    assert a.worker != b.worker
    a.execute("CREATE TABLE w_job (id int PRIMARY KEY, v int)")
    job = a.execute("CREATE INDEX ASYNC w_job_v ON w_job (v)").rows[0][0]
    assert b.execute(f"CALL sys.wait_for_job('{job}')").rows == [(True,)]
    assert b.execute(f"SELECT status FROM sys.jobs WHERE job_id = '{job}'").rows == [("completed",)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(workload=test_engine_property.workloads())
def test_property_no_lost_updates_no_waits_across_workers(served, workload):
    engine, server = served
    remote = RemoteEngine(engine, server)
    txns, schedule = workload
    reset = remote.session()
    if not getattr(test_property_no_lost_updates_no_waits_across_workers, "made", False):
        reset.execute("CREATE TABLE IF NOT EXISTS prop (id int PRIMARY KEY, v int NOT NULL)")
        reset.execute("INSERT INTO prop VALUES (1, 0), (2, 0), (3, 0) ON CONFLICT DO NOTHING")
        test_property_no_lost_updates_no_waits_across_workers.made = True
    sessions = _on_both_workers(remote, len(txns))
    try:
        test_engine_property._run(reset, sessions, txns, schedule)
    finally:
        for s in remote.opened:
            s.close()
        _settle(engine)


def test_cancel_request_reaches_a_statement_on_another_worker(served):
    engine, server = served
    _settle(engine)
    # the client runs in its own process (libpq's cancel call holds its process's GIL). It holds the only
    # connection, so its CancelRequest's connection goes to the other worker (the one with fewer connections)
    script = (
        "import psycopg, sys, threading, time\n"
        "c = psycopg.connect(sys.argv[1], autocommit=True)\n"
        "print('connected', flush=True)\n"
        "sys.stdin.readline()\n"
        "threading.Timer(0.3, c.cancel).start()\n"
        "t = time.monotonic()\n"
        "try:\n"
        "    c.execute('SELECT pg_sleep(20)')\n"
        "except psycopg.errors.QueryCanceled as e:\n"
        "    print('canceled', round(time.monotonic() - t, 1), c.execute('SELECT 1').fetchone()[0])\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, server.dsn], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "connected"
    counts = sorted(engine.board.header.connections[i] for i in range(2))
    assert counts == [0, 1], counts
    out, errors = child.communicate("go\n", timeout=60)
    words = out.split()
    assert words and words[0] == "canceled", out + errors
    assert float(words[1]) < 5 and words[2] == "1"


def test_max_connections_counts_every_worker():
    with Engine(max_connections=60) as engine:
        server = Server(engine, port=0, workers=2, max_connections=3).start()
        try:
            held = [psycopg.connect(server.dsn, autocommit=True) for _ in range(3)]
            with pytest.raises(psycopg.OperationalError) as info:
                psycopg.connect(server.dsn, autocommit=True)
            assert "too many clients" in str(info.value)
            held.pop().close()
            deadline = time.monotonic() + 5
            while True:  # the slot is given back once the worker has seen the client go
                try:
                    psycopg.connect(server.dsn, autocommit=True).close()
                    break
                except psycopg.OperationalError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            for c in held:
                c.close()
        finally:
            server.stop()


def test_findings_clients_and_counters_reach_the_serving_process():
    lines: list = []
    with Engine(max_connections=60) as engine:
        server = Server(engine, port=0, workers=2, log=lines.append).start()
        try:
            conns = [psycopg.connect(server.dsn + "&application_name=w_app", autocommit=True) for _ in range(2)]
            for i, c in enumerate(conns):
                with pytest.raises(psycopg.errors.FeatureNotSupported):
                    c.execute(f"CREATE TEMPORARY TABLE w_tmp_{i} (id int)")
                c.execute("SELECT 1")
            for c in conns:
                c.close()
        finally:
            server.stop()
        found = server.findings()
        assert len(found) == 2 and {f["application_name"] for f in found} == {"w_app"}
        assert len({f["session"] for f in found}) == 2  # session ids are unique over the workers
        assert sum("w_app" in line for line in lines) == 2  # the live log, once per finding
        assert engine.stats["statements"] >= 4 and engine.stats["sessions"] >= 2 and engine.stats["refused"] == 2


def test_a_worker_that_dies_is_started_again():
    with Engine(max_connections=60) as engine:
        server = Server(engine, port=0, workers=2).start()
        try:
            victim = server.pool.workers[0]
            os.kill(victim.process.pid, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while server.pool.workers[0] is victim or not server.pool.workers[0].started:
                assert time.monotonic() < deadline, "the worker was not started again"
                time.sleep(0.05)
            for _ in range(4):  # both workers serve again
                with psycopg.connect(server.dsn, autocommit=True) as c:
                    assert c.execute("SELECT 41 + 1").fetchone() == (42,)
        finally:
            server.stop()


def test_stop_ends_every_worker_and_backend():
    with Engine(max_connections=60) as engine:
        server = Server(engine, port=0, workers=2).start()
        clients = [psycopg.connect(server.dsn, autocommit=True) for _ in range(4)]
        for c in clients:
            c.execute("BEGIN")
            c.execute("SELECT 1")
        processes = [w.process for w in server.pool.workers]
        server.stop()
        assert all(p.poll() is not None for p in processes)
        with psycopg.connect(engine.internal_uri, autocommit=True) as admin:
            left = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'admin'").fetchone()[0]
        assert left == 0
        left = [(s.session_id, s.worker, s.pid) for s in engine.board.slots if s.used]
        assert not left, f"board slots still taken (session, worker, backend): {left}"


def test_a_workers_server_waits_for_its_client_threads_at_stop():
    """A worker's Server (``upstream`` set) keeps each client's thread, so stop() waits for them and every
    session has given its board slot back before the worker's engine stops. It dropped each new thread from its
    list before starting it (not alive yet): stop() waited for none, the engine closed the board under a client
    thread still closing its session, and a slot stayed taken (seen once in CI, in the test above)."""
    with Engine(max_connections=60) as engine:
        server = Server(engine, port=0, worker=0, upstream=lambda kind, payload: None).start()
        conns = [psycopg.connect(server.dsn, autocommit=True) for _ in range(3)]
        for c in conns:
            c.execute("BEGIN")
            c.execute("SELECT 1")
        live = [t for t in server._threads if t.is_alive()]
        assert len(live) == 3
        server.stop()
        assert not any(t.is_alive() for t in live)
        assert not [s.session_id for s in engine.board.slots if s.used]
        for c in conns:
            c.close()


def _cancel_packet(key: int, secret: int) -> bytes:
    return struct.pack("!iiii", 16, 80877102, key, secret)


def test_a_wrong_cancel_secret_cancels_nothing(remote):
    a = remote.session()
    key = a.conn.pgconn.backend_pid  # psycopg reports serve's BackendKeyData as the backend pid
    done: list = []
    t = threading.Thread(target=lambda: done.append(a.conn.execute("SELECT pg_sleep(1)").fetchone()))
    t.start()
    time.sleep(0.3)
    with socket.create_connection(("127.0.0.1", remote.server.port)) as s:
        s.sendall(_cancel_packet(key, 12345))
    t.join(10)
    assert len(done) == 1, "a CancelRequest with the wrong secret cancelled the statement"


# -- the real-cluster recordings, replayed through two workers ------------------------------------------------------
@pytest.fixture(scope="module")
def probe_replay():
    """tests/test_engine_probes.py's replay with every session a client of a two-worker serve; each
    multi-session case's sessions on both workers."""
    import json

    data = json.loads(test_engine_probes.PROBES.read_text())
    spread: list = []
    with Engine(max_connections=120) as engine:
        server = Server(engine, port=0, workers=2).start()
        remote = RemoteEngine(engine, server)
        try:
            def open_spread(n: int) -> list:
                _settle_to(engine, 1)  # (the case before it has closed its sessions)
                sessions = _on_both_workers(remote, n)
                spread.append(len({x.worker for x in sessions}))
                return sessions

            outcomes = replay_cases(data, remote.session(), open_spread)
        finally:
            for x in remote.opened:
                x.close()
            server.stop()
    return data, outcomes, spread


def _settle_to(engine: Engine, held: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(engine.board.header.connections[i] for i in range(2)) > held:
        time.sleep(0.01)


@pytest.mark.parametrize("name", test_engine_probes._cases())
def test_probe_case_across_workers(probe_replay, name):
    data, outcomes, spread = probe_replay
    assert spread and all(n == 2 for n in spread), "every multi-session case ran on both workers"
    test_engine_probes.test_probe_case((data, outcomes), name)


# -- the engine's conformance scenarios, their sessions clients of a two-worker serve --------------------------------
class RemoteScripted(RemoteEngine):
    """What the conformance scenarios call ``engine``: sessions on the workers, findings as the serving process
    gathers them (sent up before the client's answer, read by the serving process a moment later)."""

    job_latency = 0.2
    sessions: dict = {}  # (the serving process runs none)

    @property
    def findings(self) -> list:
        deadline, seen = time.monotonic() + 2, -1
        while time.monotonic() < deadline and len(self.engine.findings) != seen:
            seen = len(self.engine.findings)
            time.sleep(0.1)
        return self.engine.findings


@pytest.fixture(scope="module")
def scripted_remote():
    with Engine(max_connections=120, job_latency=0.2) as engine:
        server = Server(engine, port=0, workers=2).start()
        remote = RemoteScripted(engine, server)

        def fresh():
            for x in remote.opened:
                x.close()
            remote.opened.clear()
            _settle(engine)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the workers' async builds (a DROP would deadlock with them)
                with engine._lock:
                    if not engine._admin.execute("SELECT count(*) FROM sys.jobs WHERE status IN ('submitted', "
                                                 "'processing')").fetchone()[0]:
                        break
                time.sleep(0.05)
            with engine._lock:
                for sql in ("DROP SCHEMA public CASCADE", "CREATE SCHEMA public", "GRANT ALL ON SCHEMA public TO admin",
                            "DELETE FROM sys.jobs"):
                    engine._admin.execute(sql)
                for row in engine._admin.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('public', "
                                                 "'sys', 'information_schema') AND nspname NOT LIKE 'pg\\_%'"
                                                 ).fetchall():
                    engine._admin.execute(f'DROP SCHEMA "{row[0]}" CASCADE')
            remote.findings  # noqa: B018 - what the last scenario's workers sent has arrived
            engine.findings.clear()
            return remote

        try:
            yield fresh
        finally:
            for x in remote.opened:
                x.close()
            server.stop()


# the scenarios that need no hand-moved clock (connection lifetime) and no session internals (its byte count)
@pytest.mark.parametrize("scenario", [
    "test_columns_255_accepted_256_refused", "test_24_indexes_counting_the_primary_key",
    "test_schemas_and_primary_key_width", "test_ddl_makes_open_transactions_stale_oc001",
    "test_ddl_racing_ddl_and_a_read_only_reader", "test_async_jobs_build_in_the_background",
    "test_validate_constraint_job", "test_every_violation_is_a_finding_with_context",
    "test_repeated_conflicts_keep_no_state"])
def test_conformance_across_workers(scripted_remote, scenario):
    getattr(test_engine_conformance, scenario)(scripted_remote)


def _hold_the_board_lock_while_waiting_for_the_adjudicator(spec, attached, parent_holds, child_holds, done):
    """(A worker process:) one thread holds the board lock for 0.8 s, another waits for the adjudicator."""
    from dsql_audit.engine.board import Board

    board = Board.attach(spec)
    attached.set()

    def hold():
        with board.lock:
            child_holds.set()
            time.sleep(0.8)

    def wait():
        child_holds.wait(10)
        parent_holds.wait(10)
        with board.adjudicator:
            done.set()

    threads = [threading.Thread(target=hold), threading.Thread(target=wait)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)


def test_the_board_locks_outlast_the_kernel_s_false_deadlock_report():
    """Record locks belong to processes, not threads. The engine takes the adjudicator, then the board lock, never
    the other way round; but when one thread of a worker holds the board lock while another waits for the
    adjudicator, and the process holding the adjudicator asks for the board lock, the kernel sees two processes
    waiting for each other and answers EDEADLK (seen in the 100-client load test as sessions that could not close).
    The request is made again until the holder lets go: here it waits the 0.8 s, and both threads get their lock."""
    import multiprocessing

    from dsql_audit.engine.board import Board

    board = Board.create(slots=8)
    ctx = multiprocessing.get_context("fork")
    attached, parent_holds, child_holds, done = (ctx.Event() for _ in range(4))
    child = ctx.Process(target=_hold_the_board_lock_while_waiting_for_the_adjudicator,
                        args=(board.spec(1), attached, parent_holds, child_holds, done))
    child.start()
    try:
        assert attached.wait(10)
        with board.adjudicator:
            parent_holds.set()
            assert child_holds.wait(10)
            time.sleep(0.2)  # (the child's other thread is waiting for the adjudicator by now)
            start = time.monotonic()
            with board.lock:  # EDEADLK here before
                waited = time.monotonic() - start
        assert done.wait(10), "the worker's thread never got the adjudicator"
        assert waited > 0.3  # it waited for the holder, as a lock does
    finally:
        child.join(20)
        board.close()  # (the owner's close removes the file)
    assert child.exitcode == 0
