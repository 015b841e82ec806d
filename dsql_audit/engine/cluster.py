"""The Engine: one embedded PostgreSQL behaving like one DSQL cluster, and the state its sessions share —
the OCC bookkeeping (which backends a winner ended, which transactions committed), the catalog version,
the findings."""

from __future__ import annotations

import tempfile
import threading
import time

from dsql_audit.catalog import load_catalog
from dsql_audit.engine.board import Board
from dsql_audit.engine.bootstrap import CLIENT_ROLE
from dsql_audit.engine.errors import UnknownRole
from dsql_audit.engine.jobs import JOB_LATENCY, JobRunner
from dsql_audit.engine.lifecycle import EngineLifecycle
from dsql_audit.engine.lookups import CachedLookups
from dsql_audit.engine.session import Session
from dsql_audit.profile import Profile, load_profile
from dsql_audit.secrets import mask


class Engine(EngineLifecycle, CachedLookups):
    """One embedded PostgreSQL 16 behaving like one DSQL cluster (database ``postgres``, user ``admin``)."""

    def __init__(self, data_dir: str | None = None, profile: str | None = "latest", clock=time.monotonic,
                 audit: bool = False,
                 job_latency: float = JOB_LATENCY, max_connections: int | None = None):
        self.profile: Profile = load_profile(None if profile in (None, "latest") else profile)
        self._owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="dsql-audit-engine-")
        self.findings: list[dict] = []
        self.listeners: list = []  # called with each finding as it is recorded (serve's live log)
        self.clock = clock  # transaction age and connection lifetime are measured on it (tests pass a fake)
        self._lock = threading.Lock()
        self._server = None
        self.uri = None
        self.sessions: dict = {}  # backend pid → Session, this process's (the board knows every worker's)
        # the OCC state shared with the sessions of every worker process (board.py): which backends a winner
        # ended and why, which transactions committed, the catalog version, the adjudicator lock. Made at
        # start (or handed over by `attach` in a worker)
        self.board: Board | None = None
        self.attached = False  # a worker's engine: the PostgreSQL belongs to the serving process
        self.keep_findings = True  # a worker sends its findings to the serving process instead
        self.jobs: JobRunner | None = None
        self.job_latency = job_latency
        self.max_connections = max_connections  # PostgreSQL backends (serve: clients + jobs + headroom)
        # audit mode (`run`, `serve --audit`): where DSQL would refuse, the violation is recorded and the
        # statement runs with PostgreSQL's semantics, so the application's own command runs to its end
        self.audit = audit
        self.stats = {"statements": 0, "refused": 0, "sessions": 0}
        self._primary_keys: dict = {}  # (catalog version, schema, table) → primary-key columns
        self._decided: dict = {}  # statement text → (facts, refusals): the gate's answer is the text's
        # (catalog version, table) → secondary-index key columns; ("types", version, table) → column types
        self._index_keys: dict = {}
        self._recover_lock = threading.Lock()

    @property
    def adjudicator(self):
        """COMMIT decisions happen one at a time, over every worker process."""
        return self.board.adjudicator

    @property
    def catalog_version(self) -> int:
        """Bumped by every committed DDL; a transaction that saw an older one gets OC001."""
        return self.board.header.catalog_version

    @catalog_version.setter
    def catalog_version(self, value: int) -> None:
        self.board.header.catalog_version = value

    def session(self, user: str | None = None, settings: dict | None = None,
                database: str | None = None) -> "Session":
        """A new DSQL connection (as ``user``, a role that exists, default admin; ``settings`` applied
        to it like startup parameters). ``database``: audit mode only, a database the application created
        (DSQL has one; a test runner's CREATE DATABASE was recorded and then ran)."""
        if self._server is None and not self.attached:
            self.start()
        if user not in (None, CLIENT_ROLE):
            with self._lock:
                row = self._admin.execute("SELECT rolsuper OR rolreplication, rolcanlogin FROM pg_roles "
                                          "WHERE rolname = %s", (user,)).fetchone()
            if row is None or row[0]:  # none, or the engine's own: as if it did not exist
                raise UnknownRole(user)
            if not row[1]:
                raise UnknownRole(user, f'role "{user}" is not permitted to log in')
        self.stats["sessions"] += 1
        return Session(self, user, settings, database)

    def database_exists(self, name: str) -> bool:
        with self._lock:
            return self._admin.execute("SELECT 1 FROM pg_database WHERE datname = %s AND datallowconn",
                                       (name,)).fetchone() is not None

    def blocking(self, pid: int) -> list:
        with self._lock:
            return self._admin.execute("SELECT pg_blocking_pids(%s)", (pid,)).fetchone()[0]

    def cancel(self, pid: int) -> None:
        with self._lock:
            self._admin.execute("SELECT pg_cancel_backend(%s)", (pid,))

    def cancel_waiting(self, pid: int) -> bool:
        """Cancel backend ``pid``'s statement if it is waiting for a lock now (True), in the one statement
        that looks: a cancel sent after the wait ended could reach the backend's next statement."""
        with self._lock:
            row = self._admin.execute("SELECT pg_cancel_backend(%s) WHERE cardinality(pg_blocking_pids(%s)) > 0",
                                      (pid, pid)).fetchone()
        return bool(row and row[0])

    def terminate(self, pid: int) -> None:
        with self._lock:
            self._admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def wound(self, pid: int, kind: str) -> None:
        """Roll back the transaction on backend ``pid`` by ending the backend, remembering why: the session
        whose statement then fails on that backend knows it lost (its own flags can be reset or consumed in
        between)."""
        self.board.wound(pid, kind)
        self.terminate(pid)

    def record(self, session: "Session", statement: str, sqlstate: str, message: str, slug: str,
               variant: str | None = None) -> dict:
        rule = load_catalog().get(slug)
        finding = {"rule": slug, "code": rule.code if rule else None, "variant": variant,
                   "sqlstate": sqlstate, "message": message, "statement": mask(statement),
                   "session": session.id, "transaction": session.txn_number, "time": time.time()}
        if getattr(session, "site", None):
            finding["site"] = session.site
        self.add_finding(finding)
        return finding

    def add_finding(self, finding: dict) -> None:
        """Keep a finding (this engine's, or one a worker process sent up) and tell the listeners."""
        if self.keep_findings:
            with self._lock:
                self.findings.append(finding)
        for listener in list(self.listeners):
            listener(finding)
