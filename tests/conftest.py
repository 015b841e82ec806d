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
                for sql in ("DROP SCHEMA public CASCADE", "CREATE SCHEMA public", "DELETE FROM sys.jobs"):
                    engine._admin.execute(sql)
                for row in engine._admin.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT IN "
                                                 "('public', 'sys', 'information_schema') AND nspname NOT LIKE "
                                                 "'pg\\_%'").fetchall():
                    engine._admin.execute(f'DROP SCHEMA "{row[0]}" CASCADE')
            engine.findings.clear()
            return engine
        yield fresh


class StatementLog:
    """The embedded PostgreSQL with log_statement=all: ``text()`` is what its stderr log got since the start
    (a real capture, written by PostgreSQL itself)."""

    def __init__(self, data_dir):
        import time

        import psycopg

        from dsql_audit.engine import Engine

        self.engine = Engine(data_dir=str(data_dir)).start()
        self.log = self.engine._server.log
        with psycopg.connect(self.engine.uri, autocommit=True) as c:
            c.execute("ALTER SYSTEM SET log_statement = 'all'")
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
