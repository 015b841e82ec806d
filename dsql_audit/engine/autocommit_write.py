"""One autocommit INSERT / UPDATE / DELETE in one PostgreSQL round trip, its commit decided inside PostgreSQL.

Why: the general path runs such a write as BEGIN; SET LOCAL lock_timeout; SAVEPOINT; the write with a RETURNING
size column; then, after the engine has added up the sizes, COMMIT — two round trips, a subtransaction and every
written row's size brought back to Python. For a write outside any transaction none of that is needed: the
statement goes in one round trip, which PostgreSQL runs as one transaction after the same lock probe as
the general path's (lock_timeout, set for the transaction only), and which fails — so that PostgreSQL rolls it back
— wherever DSQL would refuse the commit. Three forms, the cheapest that can see every bound:

- *bare*: the statement alone, when it writes at most 4 rows (an INSERT of up to 4 VALUES rows, an UPDATE or
  DELETE whose WHERE fixes every primary-key column to a value) of a table none of whose rows can be over DSQL's
  row or value bound (fixed-size and length-limited columns only, engine/lookups.py): such a write cannot be
  over 3,000 rows or 10 MiB either;
- *row*: such a write to any other table (not a DELETE), with ``RETURNING`` an expression that fails for a row
  or value over its bound, or past 300 s;
- *total*: any other write, ``WITH dsql_audit_w AS (<write> RETURNING <size column>) SELECT count(*), …``, which
  fails when the rows, their size (writes.size_expression, index entries included) or the time is over a bound.

The 300 s bound of a bare write is PostgreSQL's statement_timeout for it (set, as the lock probe, by
set_config in the same transaction). Whatever the query answers other than success — a bound's error,
PostgreSQL's own error for the statement, a lock met — has rolled everything back, and the caller runs the
statement again on the general path, which answers as DSQL does and records what it finds (so this path never
needs to). On success the statement's command tag is the answer.

One difference from the general path: a DDL on another table that commits while the write runs does not fail
the write with OC001 (the general path compares catalog versions between the write and its COMMIT; here
PostgreSQL commits as soon as the write is done). A DDL on the written table meets the write's lock and ends its
backend, and the write answers OC001 (40001) as on the general path.

Which writes: INSERT, UPDATE and DELETE with a table target, no RETURNING and no WITH of their own (RETURNING
would need the rows forwarded; a WITH could hold a write PostgreSQL refuses inside another WITH), that the gate
passes without a finding or a question for the live catalog.
"""

from __future__ import annotations

from typing import NamedTuple

from dsql_audit.engine import writes
from dsql_audit.engine.running import LOCK_PROBE

TAGS = {"InsertStmt": "INSERT 0 ", "UpdateStmt": "UPDATE ", "DeleteStmt": "DELETE "}
# rows a bare or row-form write may write at most: 4 rows under DSQL's 2 MiB row bound stay under 10 MiB with
# their index entries (PostgreSQL caps a B-tree entry at about 2.7 kB)
FEW = 4
BARE, ROW, TOTAL = "bare", "row", "total"


class Plan(NamedTuple):
    """What a write's shape needs to be sent this way (the same for every statement of the shape)."""
    tag: str  # the command tag before the row count
    ref: str  # how RETURNING names the target row
    regclass: str  # the target table as a regclass literal
    schema: str | None
    table: str
    delete: bool  # a deleted row is over no row or value bound
    rows: int | None  # an INSERT's VALUES rows (None: not an INSERT … VALUES)
    fixed: frozenset  # the columns an UPDATE's or DELETE's WHERE sets equal to a value (ANDed)


def plan(facts, refused, pending) -> Plan | None:
    """The plan of a statement the gate has judged, if it can be sent as one decided round trip."""
    tag = TAGS.get(facts.node)
    if tag is None or refused or pending or facts.klass != "dml" or facts.parse_error is not None or facts.dsql:
        return None
    stmt = facts.stmt or {}
    if stmt.get("returningClause") or stmt.get("returningList") or stmt.get("withClause") or \
            '"set_config"' in facts.js:
        return None
    target = writes.target(stmt)
    if target is None:
        return None
    rel = stmt["relation"]
    rows = None
    if facts.node == "InsertStmt":
        select = (stmt.get("selectStmt") or {}).get("SelectStmt") or {}
        if set(select) <= {"valuesLists", "limitOption", "op"}:
            rows = len(select.get("valuesLists") or ()) or None
    fixed = frozenset()
    if facts.node != "InsertStmt" and not stmt.get("fromClause") and not stmt.get("usingClause"):
        fixed = frozenset(_fixed(stmt.get("whereClause")))
    return Plan(tag, target[0], target[1], rel.get("schemaname"), rel["relname"], facts.node == "DeleteStmt",
                rows, fixed)


def _fixed(where) -> list:
    """The columns a WHERE clause sets equal to a constant or a parameter in its top-level AND."""
    if not where:
        return []
    if "BoolExpr" in where:
        expr = where["BoolExpr"]
        return [c for arg in expr.get("args", ()) for c in _fixed(arg)] if expr.get("boolop") == "AND_EXPR" else []
    expr = where.get("A_Expr")
    if not expr or expr.get("kind") != "AEXPR_OP" or [n.get("String", {}).get("sval") for n in expr.get("name", ())] \
            != ["="]:
        return []
    for column, value in ((expr.get("lexpr"), expr.get("rexpr")), (expr.get("rexpr"), expr.get("lexpr"))):
        if column and "ColumnRef" in column and value and _value(value):
            name = (column["ColumnRef"].get("fields") or [{}])[-1].get("String", {}).get("sval")
            return [name] if name else []
    return []


def _value(node: dict) -> bool:
    if "TypeCast" in node:
        node = node["TypeCast"].get("arg") or {}
    return "A_Const" in node or "ParamRef" in node


def form(session, plan: Plan) -> str:
    """Which form (BARE, ROW, TOTAL) the write goes in, by the table as the catalog has it now (cached per
    catalog version)."""
    engine = session.engine
    forms = engine.__dict__.setdefault("_write_forms", {})
    key = (plan, engine.catalog_version)
    how = forms.get(key)
    if how is None:
        if len(forms) >= 4096:
            forms.clear()
        how = forms[key] = _form(session, plan)
    return how


def _form(session, plan: Plan) -> str:
    engine, conn = session.engine, session.conn
    few = plan.rows is not None and plan.rows <= FEW
    if not few and plan.fixed:
        key = engine.primary_key(conn, plan.schema, plan.table)
        few = bool(key) and set(key) <= plan.fixed
    if not few:
        return TOTAL
    profile = engine.profile
    if engine.within_bounds(conn, plan.regclass, profile.limit("row_bytes"), profile.limit("value_bytes")):
        return BARE
    return TOTAL if plan.delete else ROW


def settings(session, how: str) -> str:
    """The statement that goes first, in the same transaction: the lock probe, and for a bare write the 300 s
    bound as its statement_timeout (a row or total form sees the time itself). set_config, not SET LOCAL:
    the extended protocol has no implicit block, where SET LOCAL warns (and PostgreSQL flushes a warning
    at once: one more wake-up)."""
    probe = f"SELECT set_config('lock_timeout', '{LOCK_PROBE}', true)"
    if how == BARE:
        seconds = int(session.engine.profile.limit("transaction_seconds"))
        probe += f", set_config('statement_timeout', '{seconds}s', true)"
    return probe


def statement(session, plan: Plan, how: str, text: str) -> str:
    """The write ``text`` (without its ";") as form ``how`` sends it (see form())."""
    if how == BARE:
        return text
    engine, conn = session.engine, session.conn
    profile = engine.profile
    late = f"clock_timestamp() - statement_timestamp() > interval '{int(profile.limit('transaction_seconds'))} s'"
    if how == ROW:
        over = writes.over_condition(plan.ref, engine.value_columns(conn, plan.regclass),
                                     profile.limit("row_bytes"), profile.limit("value_bytes"))
        # the error is computed from the row (a constant one would be raised by the planner whatever the rows)
        return (f"{text}\nRETURNING CASE WHEN {over} OR {late} THEN ('dsql-audit: over a bound at ' || "
                f"pg_column_size({plan.ref}.*))::int END")
    bounded = not plan.delete
    expression = writes.size_expression(
        plan.ref, engine.index_keys(conn, plan.regclass),
        engine.value_columns(conn, plan.regclass) if bounded else (),
        row_bytes=profile.limit("row_bytes") if bounded else 0,
        value_bytes=profile.limit("value_bytes") if bounded else 0)
    # the flags writes.size_expression adds for a row or value over its bound are far above 10 MiB
    over = (f"count(*) > {int(profile.limit('rows_per_transaction'))} OR coalesce(sum(dsql_audit_size), 0) > "
            f"{int(profile.limit('bytes_per_transaction'))} OR {late}")
    return (f"WITH dsql_audit_w AS ({text}\nRETURNING {expression} AS dsql_audit_size\n) SELECT count(*), "
            f"CASE WHEN {over} THEN ('dsql-audit: over a bound after ' || count(*) || ' rows')::int END "
            "FROM dsql_audit_w")


def query(session, plan: Plan, how: str, text: str) -> str:
    """One query string (the simple protocol's) with the settings and the write."""
    return f"{settings(session, how)}; {statement(session, plan, how, text)}"
