"""`serve --workers N`: the wire front and the DSQL layer on every core, not one interpreter.

The serving process owns the embedded PostgreSQL and the listening socket; it accepts each connection and hands
the socket (SCM_RIGHTS over a SOCK_SEQPACKET pair) to the worker with the fewest connections. A worker is a
process of its own (a fresh interpreter, ``python -I``, with this process's import path: no inherited
threads or connections, and nothing of the caller's main module re-run) running a Server over an
Engine attached to the same PostgreSQL and the same OCC board (engine/board.py): commit adjudication, the
catalog version, cancel keys and --max-connections are decided there, for every worker at once. A worker
sends up what the serving process reports — each finding, the clients behind the sessions, its counters at
the end — as length-prefixed pickles on a stream pair (our own processes, the same user).

The serving process also watches PostgreSQL: when it dies it is started again (Engine.recover) and the
workers reconnect to it. A worker that dies is started again; its clients lost their connections.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading

_READY_SECONDS = 120  # a worker imports, attaches and says it is ready within this (a loaded machine is slow)
_WATCH_SECONDS = 0.5  # how often the serving process looks for its PostgreSQL
# the worker's first lines: the serving process's import path (argv), the imports (while the serving process
# may still be starting PostgreSQL), then its configuration from stdin and worker_main
_BOOT = ("import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
         "from dsql_audit.serve.workers import boot; boot()")


def boot() -> None:
    """A worker process's start: import what it needs, then wait for its configuration (none: not needed)."""
    import dsql_audit.engine  # noqa: F401
    import dsql_audit.serve.server  # noqa: F401
    import pglast  # noqa: F401

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the serving process's to handle
    try:
        config = pickle.load(sys.stdin.buffer)
    except (EOFError, pickle.UnpicklingError):
        return
    worker_main(config)


class Launched:
    """A worker process started ahead (its imports under way) and its two channels; the Server that takes it
    sends the configuration. ``Server(launched=[Launched() …])`` lets a command start its workers before the
    engine, whose start takes longer than a worker's imports."""

    def __init__(self):
        self.fds_parent, self.fds_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.up_parent, self.up_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        import json

        self.process = subprocess.Popen([sys.executable, "-I", "-c", _BOOT, json.dumps([p for p in sys.path if p])],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd="/", close_fds=True,
                                        pass_fds=(self.fds_child.fileno(), self.up_child.fileno()))

    def parts(self):
        return self.process, self.fds_parent, self.fds_child, self.up_parent, self.up_child

    def discard(self) -> None:
        """Not used after all: it ends when its stdin closes."""
        for sock in (self.fds_parent, self.fds_child, self.up_parent, self.up_child):
            sock.close()
        try:
            self.process.stdin.close()
            self.process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()


def launch(count: int) -> list:
    """``count`` workers started ahead (none for one: the serving process serves alone)."""
    return [Launched() for _ in range(count)] if count > 1 else []


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class WorkerPool:
    """The serving process's side: start the workers, hand them connections, gather what they send up."""

    def __init__(self, server, count: int):
        self.server, self.count = server, count
        self.engine = server.engine
        self.workers: list = [None] * count  # index → _Worker
        self._stopping = False
        self._stopped = threading.Event()  # wakes the PostgreSQL watch at stop
        self._last = -1  # the worker handed the last connection: a tie goes to the next one after it
        self._texts: dict = {}  # statement texts of the findings kept (see _shared_strings)
        self._watch: threading.Thread | None = None

    def start(self) -> "WorkerPool":
        for index in range(self.count):
            self.workers[index] = self._spawn(index)
        for worker in self.workers:
            worker.wait_ready()
        self._watch = threading.Thread(target=self._watch_postgres, name="dsql-pg-watch", daemon=True)
        self._watch.start()
        return self

    def _spawn(self, index: int) -> "_Worker":
        server, engine = self.server, self.engine
        launched = server.launched.pop() if server.launched else Launched()
        process, fds_parent, fds_child, up_parent, up_child = launched.parts()
        tls = getattr(server.tls, "dsql_files", None) if server.tls is not None else None
        config = {"index": index, "uri": engine.uri, "internal_uri": engine.internal_uri,
                  "data_dir": engine.data_dir, "profile": engine.profile.date, "audit": engine.audit,
                  "job_latency": engine.job_latency, "engine_max_connections": engine.max_connections,
                  "board": engine.board.spec(index), "password": server.password, "tls": tls,
                  "max_connections": server.max_connections, "fds": fds_child.fileno(), "up": up_child.fileno()}
        try:
            process.stdin.write(pickle.dumps(config))
            process.stdin.close()
        except OSError:
            pass  # it died at once: its reader says so
        fds_child.close()
        up_child.close()
        worker = _Worker(index, process, fds_parent, up_parent)
        worker.reader = threading.Thread(target=self._read, args=(worker,), name=f"dsql-worker-{index}", daemon=True)
        worker.reader.start()
        return worker

    def dispatch(self, conn: socket.socket, address: str) -> bool:
        """Hand an accepted connection to the worker with the fewest; False when no worker took it."""
        board = self.engine.board
        order = sorted(range(self.count),
                       key=lambda i: (board.header.connections[i], (i - self._last - 1) % self.count))
        for index in order:
            worker = self.workers[index]
            if worker is None or not worker.alive:
                continue
            try:
                board.connections(index, 1)
                socket.send_fds(worker.fds, [address.encode()], [conn.fileno()])
                self._last = index
                return True
            except OSError:
                board.connections(index, -1)
                continue
        return False

    def connections(self) -> int:
        board = self.engine.board
        return sum(board.header.connections[i] for i in range(self.count))

    def _read(self, worker: "_Worker") -> None:
        """What a worker sends up, until it ends (then, unless stopping, it is started again)."""
        server, engine = self.server, self.engine
        stream = worker.up.makefile("rb")
        try:
            while True:
                head = stream.read(4)
                if len(head) < 4:
                    break
                body = stream.read(struct.unpack("!I", head)[0])
                kind, payload = pickle.loads(body)
                if kind == "finding":
                    engine.add_finding(self._shared_strings(payload))
                elif kind == "client":
                    server.client_info[payload[0]] = payload[1]
                elif kind == "log":
                    server.log(payload)
                elif kind == "stats":
                    for name, value in payload.items():
                        engine.stats[name] = engine.stats.get(name, 0) + value
                    worker.finished = True
                elif kind == "ready":
                    worker.started = True
                    worker.ready.set()
                elif kind == "failed":
                    worker.failure = payload
                    worker.ready.set()
        except (OSError, ValueError, EOFError, pickle.UnpicklingError):
            pass
        finally:
            worker.alive = False
            worker.ready.set()
            try:
                stream.close()
            except OSError:
                pass
        if not worker.finished and not self._stopping and worker.started and engine.board is not None:
            engine.board.release_worker(worker.index)
            worker.process.wait()
            server.log(f"dsql-audit serve: worker {worker.index} exited (status {worker.process.returncode}); its "
                       "clients were disconnected. Starting it again.")
            if not self._stopping:
                replacement = self._spawn(worker.index)
                self.workers[worker.index] = replacement

    def _shared_strings(self, finding: dict) -> dict:
        """A finding as it arrived, its texts shared with the findings before it (unpickled, each would be a
        copy of its own: every finding is kept for the report, so a long run of OCC losses would grow by the
        same message and statement thousands of times)."""
        for name in ("rule", "code", "variant", "sqlstate", "message"):
            value = finding.get(name)
            if isinstance(value, str):
                finding[name] = sys.intern(value)
        texts = self._texts
        if len(texts) > 4096:
            texts.clear()
        statement = finding.get("statement")
        if isinstance(statement, str):
            finding["statement"] = texts.setdefault(statement, statement)
        if isinstance(finding.get("colliding"), list):
            finding["colliding"] = [texts.setdefault(t, t) if isinstance(t, str) else t for t in finding["colliding"]]
        return finding

    def _watch_postgres(self) -> None:
        while not self._stopped.wait(_WATCH_SECONDS):
            try:
                if not self.engine.postgres_alive():
                    self.server.log("the embedded PostgreSQL is not running: restarting it")
                    self.engine.recover()
            except Exception as exc:  # noqa: BLE001 - tried again next time; the clients see 08006 meanwhile
                self.server.log(f"the embedded PostgreSQL could not be restarted: {exc}")

    def stop(self) -> None:
        """Every worker closes its clients, sends its counters and ends."""
        self._stopping = True
        self._stopped.set()
        for worker in self.workers:
            if worker is None:
                continue
            try:
                worker.fds.shutdown(socket.SHUT_RDWR)  # the worker's next receive sees the end
            except OSError:
                pass
        for worker in self.workers:
            if worker is None:
                continue
            worker.reader.join(30)
            try:
                worker.process.wait(10)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(5)
            if not worker.finished and self.engine.board is not None:
                self.engine.board.release_worker(worker.index)  # it did not close its sessions itself
            for sock in (worker.fds, worker.up):
                try:
                    sock.close()
                except OSError:
                    pass
        if self._watch is not None:
            self._watch.join(5)


class _Worker:
    def __init__(self, index: int, process, fds: socket.socket, up: socket.socket):
        self.index, self.process, self.fds, self.up = index, process, fds, up
        self.alive = True
        self.finished = False
        self.started = False  # said it was ready (a worker that never started is not started again)
        self.failure = None
        self.ready = threading.Event()
        self.reader: threading.Thread | None = None

    def wait_ready(self) -> None:
        if not self.ready.wait(_READY_SECONDS):
            raise RuntimeError(f"serve worker {self.index} did not start within {_READY_SECONDS} s")
        if self.failure or not self.alive:
            raise RuntimeError(f"serve worker {self.index} could not start: {self.failure or 'it exited'}")


# -- the worker process --------------------------------------------------------------------------------------------
class _Upstream:
    """Messages to the serving process (any thread of the worker)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lock = threading.Lock()

    def __call__(self, kind: str, payload) -> None:
        body = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
        with self.lock:
            try:
                self.sock.sendall(struct.pack("!I", len(body)) + body)
            except OSError:
                pass  # the serving process is gone: this worker ends with its channel


def worker_main(config: dict) -> None:
    """A worker: a Server on an attached Engine, serving the connections the serving process hands over."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the serving process's to handle
    fds = socket.socket(fileno=config["fds"])
    up = socket.socket(fileno=config["up"])
    upstream = _Upstream(up)
    try:
        from dsql_audit.engine import Engine
        from dsql_audit.serve.server import Server

        engine = Engine(data_dir=config["data_dir"], profile=config["profile"], audit=config["audit"],
                        job_latency=config["job_latency"], max_connections=config["engine_max_connections"])
        engine.attach(config["uri"], config["internal_uri"], config["board"])
        tls = None
        if config["tls"]:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(*config["tls"])
        server = Server(engine, password=config["password"], tls=tls, max_connections=config["max_connections"],
                        log=lambda line: upstream("log", line), worker=config["index"], upstream=upstream)
    except Exception as exc:  # noqa: BLE001 - said to the serving process, which refuses to start
        upstream("failed", f"{type(exc).__name__}: {exc}")
        return
    upstream("ready", None)
    try:
        while True:
            try:
                data, received, _, _ = socket.recv_fds(fds, 1024, 4)
            except OSError:
                break
            if not data and not received:
                break  # the serving process is stopping (or gone)
            for fd in received:
                conn = socket.socket(fileno=fd)
                server.take(conn, data.decode("utf-8", "replace"))
    finally:
        server.stop()
        upstream("stats", dict(engine.stats))
        engine.stop()
        for sock in (fds, up):
            try:
                sock.close()
            except OSError:
                pass


__all__ = ["WorkerPool", "default_workers", "worker_main"]
