"""The statements of DSQL's async jobs (DSQL-REFERENCE §6): CREATE INDEX ASYNC and ALTER TABLE … VALIDATE
CONSTRAINT checked now and queued as a job for COMMIT (jobs.py runs it), and CALL sys.wait_for_job."""

from __future__ import annotations

import base64
import re
import uuid

from dsql_audit.engine import quotas
from dsql_audit.engine.jobs import Job, concurrent_build, default_index_name, index_probe
from dsql_audit.engine.results import Ran, Result
from dsql_audit.engine.running import quote_ident

_JOB_ID = re.compile(r"^[a-z2-7]{26}$")


def new_job_id() -> str:
    """26 characters of lowercase unpadded base32 over 128 bits, as DSQL's job ids (DSQL-REFERENCE §6)."""
    return base64.b32encode(uuid.uuid4().bytes).decode().rstrip("=").lower()


class JobStatements:
    """A part of Session (engine/session.py)."""

    def _async_job(self, job_type: str, facts) -> "Ran":
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
                    "SELECT 1 FROM pg_class WHERE oid = to_regclass(%s)", (quote_ident(schema) + "." + quote_ident(
                        facts.stmt["idxname"]),)).fetchone()
                if taken or facts.stmt.get("idxname") and self.engine.jobs.queued_name(name):
                    if facts.stmt.get("if_not_exists"):  # PostgreSQL: a notice, nothing built
                        return Ran(Result("CREATE INDEX"), 0)
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
        return Ran(Result(tag, ["job_id"], [(job,)]), 0)

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
