"""Async jobs: `CREATE [UNIQUE] INDEX ASYNC` and `ALTER TABLE ASYNC … VALIDATE CONSTRAINT` (DSQL-REFERENCE §6,
DSQL-FACTS §4).

The statement returns a job id at once; when its transaction commits the job is queued in ``sys.jobs``
(`submitted`) and one background builder runs it (`processing`) on its own connection: an index is built
with ``CREATE INDEX CONCURRENTLY``, so it is in the catalog (counting toward the 24-index quota, invalid,
unused by the planner) while it builds and writers never wait for it; it ends `completed`, or `failed` with
DSQL's details (`Found duplicate key while validating index for UCVs` for a unique index over duplicates; the
invalid index stays until dropped, as on DSQL). ``CALL sys.wait_for_job(id)`` waits for the job and returns
true on success, false on failure — it never raises for a failed job.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

DUPLICATE = "Found duplicate key while validating index for UCVs"  # DSQL-FACTS §4
_CREATE_INDEX = re.compile(r"\bCREATE(\s+UNIQUE)?\s+INDEX\b", re.I)
WAIT_SECONDS = 300.0  # how long CALL sys.wait_for_job waits before answering false (a timed-out wait)
# DSQL's builds are not instant: a real cluster answered 55000 `index … is not valid` to the statement right
# after CREATE UNIQUE INDEX ASYNC (probe alter_unique_using_index). The reference gives no duration, so each
# job is held in `processing` at least this long (Engine(job_latency=…)): code that skips sys.wait_for_job
# then fails here as it does on DSQL.
JOB_LATENCY = 0.5
# in flight in another worker (a row a killed engine left in `processing` in a kept data directory is not)
_IN_FLIGHT = ("SELECT 1 FROM sys.jobs WHERE status IN ('submitted', 'processing') "
              "AND update_time > now() - interval '10 minutes'")


def concurrent_build(text: str) -> str:
    """CREATE [UNIQUE] INDEX <ASYNC blanked> … → CREATE [UNIQUE] INDEX CONCURRENTLY …, by PostgreSQL's scanner:
    comments between the words (a query tagger's) are where they were, not a reason to build without it."""
    from pglast.parser import ParseError, scan

    try:
        for tok in scan(text):
            if tok.name == "INDEX":
                return text[:tok.end + 1] + " CONCURRENTLY" + text[tok.end + 1:]
    except ParseError:
        pass
    return _CREATE_INDEX.sub(lambda m: m.group(0) + " CONCURRENTLY", text, count=1)


def index_probe(text: str) -> str:
    """A read that fails as the CREATE INDEX would on names, columns and expressions, without building or
    locking anything beyond ACCESS SHARE: SELECT <keys>, <included> FROM <table> WHERE false AND <predicate>."""
    from pglast import parse_sql
    from pglast.stream import RawStream

    stmt = parse_sql(text)[0].stmt
    cols = []
    for p in list(stmt.indexParams or ()) + list(stmt.indexIncludingParams or ()):
        # a fresh stream per expression: one RawStream called twice prints the first again
        cols.append(f"({RawStream()(p.expr)})" if p.expr is not None else _ident(p.name))
    where = f" AND ({RawStream()(stmt.whereClause)})" if stmt.whereClause is not None else ""
    return f"SELECT {', '.join(cols) or 'NULL'} FROM {RawStream()(stmt.relation)} WHERE false{where}"


def default_index_name(stmt: dict) -> str:
    """PostgreSQL's (and DSQL's) name for an unnamed index: <table>_<columns>_idx ("expr" for expressions)."""
    parts = [p.get("IndexElem", {}).get("name") or "expr" for p in stmt.get("indexParams") or ()]
    return f"{(stmt.get('relation') or {}).get('relname')}_{'_'.join(parts)}_idx"[:63]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Job:
    job_id: str
    job_type: str  # INDEX_BUILD | VALIDATE
    sql: str
    object_name: str | None
    table: str | None = None  # regclass literal of the table an index is built on
    done: threading.Event = field(default_factory=threading.Event)
    status: str = "submitted"
    database: str | None = None  # audit mode: a database the application created (default: the cluster's)


class JobRunner:
    """Runs each job on its own thread and connections, as DSQL runs a cluster's jobs in the background.
    ``shared``: other processes' runners work on the same cluster (serve's workers): what is in flight there
    is read from sys.jobs."""

    shared = False

    def __init__(self, uri: str, latency: float = JOB_LATENCY):
        self.uri = uri
        self.latency = latency
        self.jobs: dict[str, Job] = {}
        self._threads: list[threading.Thread] = []
        self._builds: set = set()  # connections running a build (cancelled on stop)
        self._control = None  # sys.jobs bookkeeping, under _lock
        self._lock = threading.Lock()
        self._stopping = False
        self._tables: dict = {}  # table → lock: builds on one table run one after another (two concurrent
        # CREATE INDEX CONCURRENTLY on one table can deadlock in PostgreSQL)

    def _sql(self, sql: str, params=()):
        import psycopg

        with self._lock:
            if self._control is None:
                self._control = psycopg.connect(self.uri, autocommit=True)
            cur = self._control.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def submit(self, job: Job) -> None:
        """Queue the job; return once an index build has put its (invalid) index in the catalog, as DSQL's
        catalog holds it from the COMMIT of CREATE INDEX ASYNC on."""
        self.jobs[job.job_id] = job
        self._sql("INSERT INTO sys.jobs VALUES (%s, 'submitted', NULL, %s, 1259, NULL, %s, now(), now())",
                  (job.job_id, job.job_type, job.object_name))
        thread = threading.Thread(target=self._run, args=(job,), name=f"dsql-job-{job.job_id[:8]}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        if job.job_type == "INDEX_BUILD" and job.object_name:
            # a build queued behind another on the same table enters the catalog later; quotas count it
            # through queued_indexes() meanwhile
            deadline = time.monotonic() + 0.05
            while not job.done.is_set() and time.monotonic() < deadline:
                if self._sql("SELECT to_regclass(%s)", (job.object_name,))[0][0] is not None:
                    break
                time.sleep(0.002)

    def _set(self, job: Job, status: str, details: str | None = None) -> None:
        job.status = status
        oid = None
        if status == "completed" and job.object_name and job.job_type == "INDEX_BUILD":
            oid = self._sql("SELECT to_regclass(%s)::oid", (job.object_name,))[0][0]
        self._sql("UPDATE sys.jobs SET status = %s, details = %s, object_id = coalesce(%s, object_id), "
                  "update_time = now() WHERE job_id = %s", (status, details, oid, job.job_id))

    def _run(self, job: Job) -> None:
        import psycopg

        try:
            self._set(job, "processing")
            try:
                self._execute(job)
                status, details = "completed", None
            except psycopg.errors.UniqueViolation:
                status, details = "failed", DUPLICATE
            except psycopg.Error as exc:
                status, details = "failed", (exc.diag.message_primary or str(exc))
            self._set(job, status, details)
        except Exception:  # noqa: BLE001 - the engine is stopping under us
            job.status = "failed"
        finally:
            job.done.set()

    def _execute(self, job: Job) -> None:
        """Run the job, keeping it in progress for ``latency`` seconds. For an index the wait happens after
        the build has put the index in the catalog (invalid): a transaction holding ROW EXCLUSIVE on the
        table makes CREATE INDEX CONCURRENTLY wait there until it ends."""
        import psycopg

        with self._lock:
            table_lock = self._tables.setdefault(job.table, threading.Lock())
        where = {"dbname": job.database} if job.database else {}
        with table_lock, psycopg.connect(self.uri, autocommit=True, **where) as build, \
                psycopg.connect(self.uri, autocommit=True, **where) as hold:
            self._builds.add(build)
            try:
                if self._stopping:
                    raise psycopg.errors.QueryCanceled("engine stopping")
                held = False
                if job.table is not None and self.latency > 0:
                    try:
                        hold.execute("BEGIN")
                        hold.execute(f"LOCK TABLE {job.table} IN ROW EXCLUSIVE MODE")
                        held = True
                    except psycopg.Error:  # the table is gone: the build reports it
                        hold.execute("ROLLBACK")
                if not held:
                    time.sleep(max(self.latency, 0))
                    build.execute(job.sql)
                    return
                box: list = []
                worker = threading.Thread(target=lambda: box.append(_attempt(build, job.sql)))
                worker.start()
                time.sleep(self.latency)
                hold.execute("COMMIT")
                worker.join()
                if box and box[0] is not None:
                    raise box[0]
            finally:
                self._builds.discard(build)

    def queued_indexes(self, table: str) -> int:
        """Index builds on ``table`` submitted but not yet in the catalog (they count toward the quota)."""
        queued = [j for j in list(self.jobs.values()) if j.table == table and not j.done.is_set()]
        return sum(1 for j in queued if self._sql("SELECT to_regclass(%s)", (j.object_name,))[0][0] is None)

    def queued_name(self, name: str) -> bool:
        """An index build of that name (schema.index) is submitted and not finished."""
        if any(j.object_name == name and not j.done.is_set() for j in list(self.jobs.values())):
            return True
        return self.shared and bool(self._sql(_IN_FLIGHT + " AND object_name = %s", (name,)))

    def drain(self, timeout: float = WAIT_SECONDS) -> None:
        """Wait for every job in flight (a DDL must not race a build: PostgreSQL would deadlock them)."""
        for job in list(self.jobs.values()):
            job.done.wait(timeout)
        deadline = time.monotonic() + timeout
        while self.shared and self._sql(_IN_FLIGHT) and time.monotonic() < deadline:
            time.sleep(0.01)  # another worker's build

    def wait(self, job_id: str, timeout: float = WAIT_SECONDS) -> bool | None:
        """True when the job completed, False when it failed or the wait timed out; None for a job this
        engine did not run (the caller looks in sys.jobs)."""
        job = self.jobs.get(job_id)
        if job is None:
            if not self.shared:
                return None
            deadline = time.monotonic() + timeout  # another worker's job: its row in sys.jobs tells
            while True:
                row = self._sql("SELECT status FROM sys.jobs WHERE job_id = %s", (job_id,))
                if not row or row[0][0] not in ("submitted", "processing") or time.monotonic() > deadline:
                    return bool(row and row[0][0] == "completed")
                time.sleep(0.01)
        return job.done.wait(timeout) and job.status == "completed"

    def stop(self) -> None:
        self._stopping = True
        for conn in list(self._builds):
            try:  # a build in progress would otherwise hold the shutdown
                conn.cancel()
            except Exception:  # noqa: BLE001
                pass
        for thread in self._threads:
            thread.join(10)
        if self._control is not None:
            try:
                self._control.close()
            except Exception:  # noqa: BLE001
                pass
            self._control = None


def _attempt(conn, sql: str):
    try:
        conn.execute(sql)
    except Exception as exc:  # noqa: BLE001 - handed back to the runner thread
        return exc
    return None
