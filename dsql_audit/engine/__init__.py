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

# where each public name lives: imported on first use (PEP 562), so that a light part (board.py, watchdog.py,
# bootstrap.py) or `run` before it starts the command does not pay for the whole engine
_HOME = {
    "CLIENT_ROLE": "bootstrap", "INTERNAL_ROLE": "bootstrap", "Engine": "cluster",
    **dict.fromkeys(("ABORTED", "AGE", "CLOSED", "OCC", "ROW_LIMIT", "SCHEMA", "SIZE", "DsqlError", "SessionClosed",
                     "UnknownRole"), "errors"),
    "new_job_id": "job_statements", "Notice": "results", "Result": "results", "LOCK_PROBE": "running",
    "Session": "session", "DSQL_SERVER_VERSION": "statement", "DSQL_SERVER_VERSION_NUM": "statement",
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
