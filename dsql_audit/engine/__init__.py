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

The parts, one module each: cluster.py (Engine, the state sessions share), lifecycle.py (starting and
stopping the embedded PostgreSQL), bootstrap.py (the SQL run at start), lookups.py (cached gate answers and
catalog facts), session.py (Session, ``execute``), statement.py (one statement as DSQL handles it),
running.py (running it on PostgreSQL), occ.py (COMMIT and conflicts), job_statements.py (async jobs'
statements; jobs.py runs the jobs), pg_transaction.py (the PostgreSQL transaction under ours),
errors.py and results.py (what a statement answers).
"""

from __future__ import annotations

from dsql_audit.engine.bootstrap import CLIENT_ROLE, INTERNAL_ROLE
from dsql_audit.engine.cluster import Engine
from dsql_audit.engine.errors import (ABORTED, AGE, CLOSED, OCC, ROW_LIMIT, SCHEMA, SIZE, DsqlError, SessionClosed,
                                      UnknownRole)
from dsql_audit.engine.job_statements import new_job_id
from dsql_audit.engine.results import Notice, Result
from dsql_audit.engine.running import LOCK_PROBE
from dsql_audit.engine.session import Session
from dsql_audit.engine.statement import DSQL_SERVER_VERSION, DSQL_SERVER_VERSION_NUM

__all__ = ["ABORTED", "AGE", "CLIENT_ROLE", "CLOSED", "DSQL_SERVER_VERSION", "DSQL_SERVER_VERSION_NUM", "INTERNAL_ROLE",
           "LOCK_PROBE", "OCC", "ROW_LIMIT", "SCHEMA", "SIZE", "DsqlError", "Engine", "Notice", "Result", "Session",
           "SessionClosed", "UnknownRole", "new_job_id"]
