from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURES = ROOT / "fixtures"


def shared_path(*parts) -> Path:
    """A path under ../shared, or skip: a user's fresh clone has no ../shared (CI does)."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"../shared/{'/'.join(parts)} is not present (it is beside the repository in CI only)")
    return p


def absent_param(what: str):
    """One skipped parameter that says why, for suites built from ../shared when it is missing."""
    return pytest.param(None, marks=pytest.mark.skip(
        reason=f"../shared/{what} is not present (it is beside the repository in CI only)"))


def findings_for(sql: str, profile: str | None = None, **kw):
    from dsql_audit.scan import scan_sql

    return scan_sql(sql, profile=profile, **kw).findings


@pytest.fixture(scope="session")
def scripted_engine():
    """One engine with a hand-moved clock, its public schema emptied before each use (``fresh()``)."""
    from dsql_audit.engine import Engine
    from dsql_audit.engine.script import ManualClock

    with Engine(clock=ManualClock(), job_latency=0.2) as engine:
        def fresh():
            engine.jobs.drain()
            for s in list(engine.sessions.values()):
                s.close()
            with engine._lock:
                for sql in ("DROP SCHEMA public CASCADE", "CREATE SCHEMA public",
                            "GRANT ALL ON SCHEMA public TO admin", "DELETE FROM sys.jobs"):
                    engine._admin.execute(sql)
                for row in engine._admin.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT IN "
                                                 "('public', 'sys', 'information_schema') AND nspname NOT LIKE "
                                                 "'pg\\_%'").fetchall():
                    engine._admin.execute(f'DROP SCHEMA "{row[0]}" CASCADE')
            engine.findings.clear()
            return engine
        yield fresh


class StatementLog:
    """The embedded PostgreSQL with log_statement=all (or ``statements``; ``prefix`` sets log_line_prefix):
    ``text()`` is what its stderr log got since the start (a real capture, written by PostgreSQL itself)."""

    def __init__(self, data_dir, statements: str = "all", prefix: str | None = None):
        import time

        import psycopg

        from dsql_audit.engine import Engine

        self.engine = Engine(data_dir=str(data_dir)).start()
        self.log = self.engine._server.log
        with psycopg.connect(self.engine.internal_uri, autocommit=True) as c:  # a superuser setting
            c.execute(f"ALTER SYSTEM SET log_statement = '{statements}'")
            if prefix is not None:
                c.execute(f"ALTER SYSTEM SET log_line_prefix = '{prefix}'")
            c.execute("SELECT pg_reload_conf()")
        time.sleep(0.3)
        self.start = self.log.stat().st_size

    def text(self) -> str:
        import time

        time.sleep(0.3)  # the server writes its log asynchronously
        return self.log.read_text(errors="replace")[self.start:]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.engine.stop()


class DroppingProxy:
    """A TCP relay to a real endpoint that drops the client's connection right after forwarding a statement
    that contains one of ``markers`` (so the statement runs but its answer never arrives): a network that
    drops connections, for real, between replay and its --target."""

    def __init__(self, upstream, markers: list[bytes]):
        """``upstream``: (host, port), or the path of a Unix socket."""
        import socket
        import threading

        self.upstream, self.markers, self.dropped = upstream, list(markers), 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if isinstance(self.upstream, str):
                upstream = socket.socket(socket.AF_UNIX)
                upstream.connect(self.upstream)
            else:
                upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src, dst, from_client: bool):
        import socket
        import time

        try:
            while data := src.recv(65536):
                hit = from_client and next((m for m in self.markers if m in data), None)
                if not hit:
                    dst.sendall(data)
                    continue
                self.markers.remove(hit)
                self.dropped += 1
                # the client loses its connection first (so no answer can reach it, however the threads are
                # scheduled), then the statement goes on to the endpoint, whose side closes once it has run
                for s, wait in ((src, 0.0), (dst, 0.5)):
                    if s is dst:
                        dst.sendall(data)
                    time.sleep(wait)
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()
                return
        except OSError:
            pass

    def close(self):
        self.listener.close()
