"""Run a scripted multi-session scenario through the engine — the format of the runtime rules' examples
and of the conformance tests:

    CREATE TABLE acct (id int PRIMARY KEY, balance int);   -- runs on session "main"
    -- session a                                           -- switch to (or open) session a
    BEGIN;
    UPDATE acct SET balance = 0 WHERE id = 1;
    -- advance 301                                         -- move the engine's clock (a ManualClock)
    COMMIT;

Each statement runs on its own; an error is an outcome, not an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dsql_audit.sqltext import split_text

_DIRECTIVE = re.compile(r"^\s*--\s*(session|advance)\s+(\S+)\s*$", re.I)


class ManualClock:
    """A clock tests move by hand (transaction age, connection lifetime)."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Outcome:
    session: str
    sql: str
    command_tag: str | None = None
    sqlstate: str | None = None
    message: str | None = None
    rows: list | None = None

    @property
    def ok(self) -> bool:
        return self.sqlstate is None


def steps(script: str):
    """(kind, value) pairs: ("session", name), ("advance", seconds), ("sql", statement)."""
    chunk: list[str] = []

    def flush():
        text = "".join(chunk)
        chunk.clear()
        return [("sql", r.text) for r in split_text(text) if r.kind == "sql"]

    for line in script.splitlines(keepends=True):
        m = _DIRECTIVE.match(line)
        if m:
            yield from flush()
            yield m.group(1).lower(), m.group(2)
        else:
            chunk.append(line)
    yield from flush()


def run_script(engine, script: str) -> list[Outcome]:
    from dsql_audit.engine import DsqlError

    sessions: dict = {}
    current = "main"
    out = []
    try:
        for kind, value in steps(script):
            if kind == "session":
                current = value
                continue
            if kind == "advance":
                engine.clock.advance(float(value))
                continue
            s = sessions.get(current)
            if s is None:
                s = sessions[current] = engine.session()
            try:
                r = s.execute(value)
                out.append(Outcome(current, value, command_tag=r.command_tag, rows=r.rows))
            except DsqlError as e:
                out.append(Outcome(current, value, sqlstate=e.sqlstate, message=e.message))
    finally:
        for s in sessions.values():
            s.close()
    return out


def run_statements(engine, statements, log) -> tuple[int, list]:
    """Run (path, line, text) statements through one engine session, each as its own statement (DSQL's rules
    apply: what DSQL refuses is reported and skipped). (statements run, [(path, line, text, DsqlError)])."""
    from dsql_audit.engine import DsqlError

    session = engine.session()
    ok, refused = 0, []
    try:
        for path, line, text in statements:
            try:
                session.execute(text)
                ok += 1
            except DsqlError as e:
                refused.append((path, line, text, e))
                log(f"{path}:{line}: {e.sqlstate} {e.message}")
                if session.in_txn and session.aborted:
                    session.execute("ROLLBACK")
    finally:
        session.close()
    return ok, refused


def load_sql_file(engine, path: str, log) -> tuple[int, list]:
    """A schema file through run_statements. (statements run, [(line, statement, DsqlError)] refused)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    ok, refused = run_statements(engine, ((path, st.line, st.text) for st in split_text(text) if st.kind == "sql"),
                                 log)
    return ok, [(line, stmt, e) for _, line, stmt, e in refused]
