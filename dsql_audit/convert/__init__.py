"""`dsql-audit convert`: a PostgreSQL schema (a dump, a migration folder) turned into DDL Aurora DSQL accepts,
plus a plan for what must move into the application — proven by loading the result into the engine.

Flow: sources → statements (pglast nodes) → model (convert.build) → steps (convert.emit) → engine check →
files (convert.files). Nothing here decides what DSQL accepts by itself: the engine's verdict on every step is
the check, and a step it refuses moves into the plan with DSQL's own error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsql_audit.convert.build import Builder
from dsql_audit.convert.emit import Emitter, Step
from dsql_audit.convert.model import Origin, PlanItem
from dsql_audit.model import InputError


@dataclass
class Conversion:
    profile: object
    inputs: list
    steps: list  # Step, in the order schema.sql holds them
    plan: list  # PlanItem
    notes: list  # (Origin | None, text)
    skipped: dict
    errors: list  # InputError
    statements_read: int = 0
    refused: list = field(default_factory=list)  # (Step, sqlstate, message): refused by the engine, now in the plan
    check: dict = field(default_factory=dict)  # the final verification of schema.sql in a fresh engine

    def summary(self) -> dict:
        kinds: dict = {}
        for s in self.steps:
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
        plan: dict = {}
        for p in self.plan:
            k = plan.setdefault(p.kind, {"items": 0, "effort_hours": 0.0})
            k["items"] += 1
            k["effort_hours"] = round(k["effort_hours"] + p.effort_hours, 2)
        return {"statements_read": self.statements_read, "steps": len(self.steps), "steps_by_kind": kinds,
                "plan_items": len(self.plan), "plan_by_kind": plan,
                "effort_hours": round(sum(p.effort_hours for p in self.plan), 1),
                "changes": len(self.notes), "refused_after_conversion": len(self.refused),
                "skipped": self.skipped}


def read_statements(paths: list[str], errors: list):
    """(pglast statement node, Origin) for every statement of the inputs, in order (a migration folder in its
    framework's order)."""
    from pglast import parse_sql
    from pglast.parser import ParseError

    from dsql_audit.dialect import preprocess
    from dsql_audit.sources import deploy_units

    for unit in deploy_units(paths, errors):
        origin = Origin(unit.path, unit.line, unit.text)
        text, flags, iam = preprocess(unit.text)  # DSQL's own syntax (CREATE INDEX ASYNC …) in the input
        if iam is not None:
            continue  # AWS IAM GRANT: DSQL's own, nothing to convert
        try:
            stmts = parse_sql(text)
        except ParseError as exc:
            errors.append(InputError(unit.path, f"not parsed, left out: {exc}", line=unit.line))
            continue
        for raw in stmts:
            yield raw.stmt, origin


def convert(paths: list[str], *, profile: str | None = None, cache: int = 65536, keys: str = "identity",
            check: bool = True, log=None) -> Conversion:
    from dsql_audit.profile import load_profile

    log = log or (lambda line: None)
    prof = load_profile(None if profile in (None, "latest") else profile)
    errors: list = []
    b = Builder(prof, cache=cache, keys=keys)
    n = 0
    for stmt, origin in read_statements(paths, errors):
        n += 1
        b.feed(stmt, origin)
    emitter = Emitter(b)
    steps = emitter.run()
    conv = Conversion(profile=prof, inputs=list(paths), steps=[], plan=b.schema.plan, notes=b.schema.notes,
                      skipped=b.schema.skipped, errors=errors, statements_read=n)
    if check:
        _load_and_prove(conv, b, steps, emitter.late, log)
    else:
        conv.steps = steps + _matview_steps_unresolved(b) + emitter.late
    return conv


def _matview_steps_unresolved(b) -> list:
    for name, _, origin, _ in b.schema.matviews:
        b.schema.note(origin, f"{name}: columns not resolved (--no-check): left out of schema.sql")
    return []


def _load_and_prove(conv: Conversion, b, steps: list, late: list, log) -> None:
    """Run every step in a fresh engine (one per transaction, as apply does); steps it refuses move into the
    plan with DSQL's error. Materialized views become tables once the engine can say their columns' types."""
    from dsql_audit.engine import DsqlError, Engine

    kept: list = []
    with Engine(profile=conv.profile.date, job_latency=0.0) as engine:
        session = engine.session()

        def attempt(sql: str):
            try:
                session.execute(sql)
                return None
            except DsqlError as e:
                if session.in_txn:
                    session.execute("ROLLBACK")
                return e

        # functions and views already in the plan: what reads or calls them cannot load either
        lost = {p.object.lower() for p in conv.plan if p.kind in ("function", "view", "procedure")}

        def run(step: Step) -> None:
            e = attempt(step.sql)
            if e is None:
                kept.append(step)
                return
            if step.kind == "table" and step.node is not None and _degraded(conv, step, e, attempt):
                kept.append(step)
                return
            conv.refused.append((step, e.sqlstate, e.message))
            lost.add(step.object.lower())
            gone = sorted(step.deps & lost)
            why = f"the converted statement is still refused: {e.sqlstate} {e.message}"
            if gone:
                why = f"it needs {gone[0]}, which is in the plan too ({e.sqlstate} {e.message})"
            conv.plan.append(PlanItem(step.kind, step.object, "moved", why,
                                      f"port {gone[0]} first, then create this" if gone else "port it by hand",
                                      step.origin, 1, {"statement": step.sql}))
            log(f"refused after conversion: {step.kind} {step.object}: {e.sqlstate} {e.message}")

        for step in steps:
            run(step)
        for step in _matview_tables(b, engine):
            run(step)
        for step in late:
            run(step)
        session.close()
    conv.steps = kept


def _degraded(conv: Conversion, step: Step, error, attempt) -> bool:
    """A refused CREATE TABLE tried again without its CHECKs, then defaults, then inline foreign keys (an
    expression over a type or function that did not carry over is the usual cause); what it shed goes into
    the plan with the error that forced it. True when a variant loaded (``step`` now holds it)."""
    from dsql_audit.convert.emit import DEGRADE, _sql, table_sql

    t, inline = step.node
    for n in range(1, len(DEGRADE) + 1):
        sql, removed = table_sql(t, inline, DEGRADE[:n])
        if not removed:
            continue
        if attempt(sql) is None:
            step.sql = sql
            for kind, column, node in removed:
                what = f"{t.name}.{column}" if column else f"{t.name}.{getattr(node, 'conname', None) or kind}"
                conv.plan.append(PlanItem(kind, what, "dropped", f"{t.name} loads only without it: "
                                          f"{error.sqlstate} {error.message}",
                                          {"constraint": "check the rule in the application before writing",
                                           "default": "set the value in the application when inserting",
                                           "foreign-key": "enforce the reference in the application"}[kind],
                                          step.origin, 1, {"statement": _sql(node)}))
            return True
    return False


def _matview_tables(b, engine) -> list:
    """CREATE TABLE for each materialized view / CREATE TABLE AS, with the column types PostgreSQL resolves
    for its query against the schema loaded so far (a plain connection to the engine; nothing of this stays)."""
    import psycopg

    out = []
    if not b.schema.matviews:
        return out
    with psycopg.connect(engine.uri, autocommit=True) as conn:
        for name, query, origin, _ in b.schema.matviews:
            try:
                conn.execute(f"CREATE TEMP VIEW dsql_audit_shape AS {query}")
                cols = conn.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                                    "attrelid = 'dsql_audit_shape'::regclass AND attnum > 0 ORDER BY attnum").fetchall()
                conn.execute("DROP VIEW dsql_audit_shape")
            except psycopg.Error as exc:
                b.schema.plan.append(PlanItem("materialized-view", name, "moved",
                                              f"its query does not run on the converted schema: "
                                              f"{str(exc).strip().splitlines()[0]}", "port the query first", origin, 2))
                continue
            from dsql_audit.convert.emit import _ident, _qualified

            body = ", ".join(f"{_ident(c)} {_dsql_type(t)}" for c, t in cols)
            out.append(Step("table-as", name, f"CREATE TABLE {_qualified(name)} ({body})", origin))
    return out


def _dsql_type(shown: str) -> str:
    """format_type's answer as a DSQL column type (arrays and other unsupported results become jsonb/text)."""
    if shown.endswith("[]"):
        return "jsonb"
    base = shown.split("(")[0]
    ok = {"smallint", "integer", "bigint", "real", "double precision", "numeric", "character", "character varying",
          "text", "date", "time without time zone", "time with time zone", "timestamp without time zone",
          "timestamp with time zone", "interval", "boolean", "bytea", "uuid", "json", "jsonb"}
    return shown if base in ok else "text"
