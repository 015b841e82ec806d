"""Step 6, the prototype: the converted schema loaded into the DSQL engine, then the workload's top
statements (by calls and by total time) run against it with a retry layer — each one passes, is refused (what
DSQL answers), fails for another reason, or loses a conflict after the retries. With a target, the same
statements run on a real cluster too, side by side."""

from __future__ import annotations

import re
from dataclasses import dataclass

RETRIES = 3  # a 40001 (OCC) answer is retried this many times, as the retry layer an application adds does
_PARAM = re.compile(r"\$(\d+)")


@dataclass
class Outcome:
    query: str
    calls: int
    total_ms: float
    status: str  # passed | refused | failed | conflict
    sqlstate: str | None = None
    message: str | None = None
    attempts: int = 1
    target: dict | None = None  # {"status", "sqlstate", "message"} on --target

    def to_json(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if v is not None}
        return out


_CONTROL = re.compile(r"\s*(BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|SET|SHOW|RESET|DISCARD|"
                      r"DEALLOCATE)\b", re.I)


def top_statements(events: list, n: int) -> list:
    """The n statements with most calls and the n with most total time (each once), most calls first;
    transaction control and session settings are not statements of the workload."""
    from dsql_audit.sqltext import lead

    work = [e for e in events if not _CONTROL.match(lead(e.sql))]
    chosen, seen = [], set()
    for ev in sorted(work, key=lambda e: -(e.calls or 0))[:n] + sorted(work, key=lambda e: -(e.total_ms or 0))[:n]:
        key = " ".join(ev.sql.split())
        if key not in seen:
            seen.add(key)
            chosen.append(ev)
    return chosen


def _params(sql: str) -> list | None:
    numbers = [int(m) for m in _PARAM.findall(sql)]
    return [None] * max(numbers) if numbers else None  # NULLs: what DSQL accepts or refuses is the shape


def run(schema_sql: str | None, events: list, *, profile: str | None = None, target=None) -> dict:
    """{"schema": {...}, "statements": [Outcome …], "summary": {...}} — the schema loaded into a fresh engine
    (what it refuses listed), then each statement, in its own transaction, retried on 40001. ``target``: a
    connection to a real cluster the statements also run on (each rolled back)."""
    from dsql_audit.engine import DsqlError, Engine
    from dsql_audit.engine.script import load_sql_file

    schema = {"loaded": 0, "refused": []}
    outcomes = []
    with Engine(profile=profile or "latest") as engine:
        if schema_sql:
            ok, refused = load_sql_file(engine, schema_sql, lambda line: None)
            schema = {"loaded": ok, "refused": [{"line": line, "statement": " ".join(stmt.split())[:200],
                                                 "sqlstate": e.sqlstate, "message": e.message}
                                                for line, stmt, e in refused]}
        session = engine.session()
        for ev in events:
            query = " ".join(ev.sql.split())
            outcome = Outcome(query[:300], int(ev.calls or 1), round(float(ev.total_ms or 0), 3), "passed")
            params = _params(ev.sql)
            for attempt in range(1, RETRIES + 2):
                outcome.attempts = attempt
                try:
                    session.execute("BEGIN")
                    if params is not None:
                        session.execute(ev.sql, [None] * len(params))
                    else:
                        session.execute(ev.sql)
                    session.execute("ROLLBACK")  # a prototype reads and writes nothing it keeps
                    outcome.status, outcome.sqlstate, outcome.message = "passed", None, None
                    break
                except DsqlError as exc:
                    try:
                        session.execute("ROLLBACK")
                    except DsqlError:
                        pass
                    outcome.sqlstate, outcome.message = exc.sqlstate, exc.message
                    if exc.sqlstate == "40001" and attempt <= RETRIES:
                        continue
                    if exc.sqlstate[:2] in ("22", "23") and not getattr(exc, "finding", None):
                        # the shape ran; its NULL stand-ins for parameters broke a constraint or a cast
                        outcome.status = "passed"
                        outcome.message = f"shape accepted (the NULL parameters failed: {exc.sqlstate} {exc.message})"
                        outcome.sqlstate = None
                        break
                    outcome.status = ("conflict" if exc.sqlstate == "40001" else
                                      "refused" if getattr(exc, "finding", None) else "failed")
                    break
            if target is not None:
                outcome.target = _on_target(target, ev.sql, params)
            outcomes.append(outcome)
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("passed", "refused", "failed", "conflict")}
    return {"schema": schema, "statements": [o.to_json() for o in outcomes], "summary": counts}


def _on_target(conn, sql: str, params) -> dict:
    """The statement on the real cluster, in a transaction rolled back: its answer, nothing kept. Sent with
    libpq's own $n parameters (NULLs), as the application's driver sends it."""
    import psycopg
    from psycopg import pq

    try:
        conn.execute("BEGIN")
        with conn.lock:
            res = conn.pgconn.exec_params(sql.encode(), [None] * len(params or ()), None, None, 0)
        state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
        message = (res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode()[:300]
    except psycopg.Error as exc:
        diag = getattr(exc, "diag", None)
        state = getattr(diag, "sqlstate", None) or ""
        message = (getattr(diag, "message_primary", None) or str(exc))[:300]
    finally:
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            pass
    if not state:
        return {"status": "passed"}
    if state[:2] in ("22", "23"):  # as in the engine: the shape ran, the NULL parameters did not fit
        return {"status": "passed", "message": f"shape accepted (the NULL parameters failed: {state} {message})"}
    return {"status": "conflict" if state == "40001" else "refused" if state in ("0A000", "54000") else "failed",
            "sqlstate": state, "message": message}
