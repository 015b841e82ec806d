"""Functions, procedures, triggers and materialized views: what DSQL can keep (LANGUAGE sql functions),
and for the rest a plan item with the body, what it does in plain words where the pattern is a common one,
and the application-side replacement."""

from __future__ import annotations

import re

from pglast import ast

from dsql_audit.convert.model import PlanItem, names_of, qname

# (pattern over the body, what it does, what to do instead, effort hours, for triggers only); first match wins
_NOW = r"(?:now\(\)|current_timestamp|clock_timestamp\(\)|localtimestamp|statement_timestamp\(\)|" \
       r"transaction_timestamp\(\))"
PATTERNS = [
    (re.compile(r"\bNEW\.(\w+)\s*:?=\s*[^;]*?" + _NOW, re.I),
     "stamps NEW.{0} with the current time on every write (an updated_at/created_at column)",
     "set {0} = now() in the application's INSERT/UPDATE statements (ORM: SQLAlchemy onupdate=func.now(), Django "
     "auto_now=True, Rails timestamps)", 1, True),
    (re.compile(r"\b(to_tsvector|setweight)\b", re.I),
     "maintains a full-text search column",
     "index the text in an external search service (OpenSearch) from the application", 4, False),
    (re.compile(r"\b(add_job|pgmq\.send|pg_background|dblink)\b", re.I),
     "queues background work ({0}) for each change",
     "enqueue the job from the application after COMMIT (SQS, or a jobs table written in the same transaction)",
     2, False),
    (re.compile(r"\b(pg_notify|NOTIFY)\b", re.I),
     "notifies listeners of the change",
     "publish an event from the application after COMMIT (SNS/SQS/EventBridge)", 2, False),
    (re.compile(r"\bINSERT\s+INTO\s+([\w.\"]*(?:audit|history|log|journal|version)[\w\"]*)\b|"
                r"\bINSERT\s+INTO\s+([\w.\"]+)[^;]*\b(?:TG_OP|OLD\.)", re.I | re.S),
     "writes an audit/history row into {0} for each change",
     "write the history row in the same transaction as the change, in the application's data layer", 2, True),
    (re.compile(r"\bINSERT\s+INTO\s+([\w.\"]+)[^;]*\bNEW\.", re.I | re.S),
     "creates a companion row in {0} for each new row",
     "insert the companion row in the same transaction as the new row, in the application's data layer", 1, True),
    (re.compile(r"\bUPDATE\s+([\w.\"]+)\s+SET\s+(\w+)\s*=\s*\w*\.?\2\s*([+-])\s*1\b", re.I),
     "keeps a counter in {0}.{1} up to date",
     "update the counter in the same transaction in the application — under DSQL's optimistic concurrency a "
     "single counter row becomes a conflict hot spot: prefer count(*) on read, or sharded counters", 2, True),
    (re.compile(r"\bUPDATE\s+([\w.\"]+)\s+SET\b", re.I),
     "keeps denormalised values in {0} in step with this table",
     "update {0} in the same transaction in the application, or compute the value on read", 2, True),
    (re.compile(r"\bRAISE\s+EXCEPTION\b", re.I),
     "validates rows and refuses invalid ones",
     "validate in the application before writing, or as a CHECK constraint where the rule is row-local", 1, True),
]


def _language(s) -> str:
    for o in s.options or ():
        if o.defname == "language" and isinstance(o.arg, ast.String):
            return o.arg.sval.lower()
    return "sql" if s.sql_body is not None else "sql"


def body_of(s) -> str:
    for o in s.options or ():
        if o.defname == "as":
            parts = o.arg if isinstance(o.arg, tuple) else (o.arg,)
            return "\n".join(p.sval for p in parts if isinstance(p, ast.String))
    if s.sql_body is not None:
        from pglast.stream import RawStream

        return RawStream()(s.sql_body)
    return ""


def describe(body: str, trigger: bool = True):
    """(what it does, replacement, effort) for a recognisable body, else (None, None, None). Row-level
    patterns (NEW./OLD. stamps, audit rows, validation) describe triggers only."""
    for pattern, what, todo, hours, trigger_only in PATTERNS:
        if trigger_only and not trigger:
            continue
        m = pattern.search(body)
        if m:
            groups = [g.strip('"') for g in m.groups() if g is not None]
            return what.format(*groups), todo.format(*groups), hours
    return None, None, None


def function(b, s, origin) -> None:
    sch = b.schema
    name = ".".join(names_of(s.funcname))
    if "." not in name:
        name = f"public.{name}"
    lang = _language(s)
    sch.routines[name] = (s, origin, lang)
    if s.is_procedure:
        sch.plan.append(PlanItem("procedure", name, "moved", "DSQL has no stored procedures",
                                 "run the procedure's statements from the application, one transaction each "
                                 "within DSQL's bounds", origin, 3, {"language": lang, "body": body_of(s)}))
        return
    if lang == "sql":
        s.replace = False
        sch.functions.append((s, origin))
        sch.paths[id(s)] = tuple(b.search_path)
        return
    returns = ".".join(names_of(s.returnType.names)) if s.returnType is not None else ""
    if returns.endswith("trigger"):
        return  # the trigger's plan item carries this body
    what, todo, hours = describe(body_of(s), trigger=False)
    sch.plan.append(PlanItem("function", name, "moved", f"DSQL runs only LANGUAGE sql functions, not {lang}",
                             todo or "rewrite as a LANGUAGE sql function (one query or BEGIN ATOMIC) where it is "
                             "a computation; move procedural logic (loops, exceptions, dynamic SQL) into the "
                             "application", origin, hours or 2,
                             {"language": lang, "does": what or "custom logic", "body": body_of(s)}))


_EVENTS = [(4, "INSERT"), (16, "UPDATE"), (8, "DELETE"), (32, "TRUNCATE")]


def trigger(b, s, origin) -> None:
    sch = b.schema
    fname = ".".join(names_of(s.funcname))
    fn = sch.routines.get(fname if "." in fname else f"public.{fname}")
    body = body_of(fn[0]) if fn else ""
    when = "INSTEAD OF" if s.timing & 64 else "BEFORE" if s.timing & 2 else "AFTER"
    events = " OR ".join(name for bit, name in _EVENTS if s.events & bit)
    table = qname(s.relation)
    what, todo, hours = describe(body)
    sch.plan.append(PlanItem(
        "trigger", f"{table}.{s.trigname}", "moved", "DSQL has no triggers",
        todo or f"do what {fname}() does in the application, in the same transaction as each {events}",
        origin, hours or 3,
        {"table": table, "fires": f"{when} {events} {'FOR EACH ROW' if s.row else 'FOR EACH STATEMENT'}",
         "function": fname, "does": what or "custom logic (read the body)", "body": body}))


def table_as(b, s, origin) -> None:
    """CREATE MATERIALIZED VIEW / CREATE TABLE AS: a table with the query's columns (their types are
    resolved in the engine once the rest of the schema is loaded) plus a refresh plan item."""
    from pglast.stream import RawStream

    into = s.into
    name = qname(into.rel)
    query = RawStream()(s.query)
    from pglast import enums

    mat = s.objtype == enums.ObjectType.OBJECT_MATVIEW
    b.schema.matviews.append((name, query, origin, mat))
    b.schema.plan.append(PlanItem(
        "materialized-view" if mat else "table-as", name, "replaced",
        "DSQL has no materialized views" if mat else "DSQL does not run CREATE TABLE AS",
        f"refresh {name} from the application: DELETE its rows and INSERT … SELECT the query again, in batches of "
        f"at most 3,000 rows per transaction" if mat else f"load {name} with INSERT … SELECT in batches",
        origin, 2, {"query": query}))
