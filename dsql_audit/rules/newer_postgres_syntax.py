"""newer-postgres-syntax: syntax PostgreSQL 16 (DSQL's base) does not have.

pglast parses PostgreSQL 18, so PostgreSQL 17/18 syntax parses here but
fails on DSQL. Constructs are found in the tree; new functions are data.
"""

from functools import lru_cache

from dsql_audit.catalog import rule_data
from dsql_audit.facts import constraints, names
from dsql_audit.model import Hit

_NODE_FEATURES = {
    "JsonTable": "JSON_TABLE (PostgreSQL 17)",
    "JsonFuncExpr": "JSON_QUERY / JSON_VALUE / JSON_EXISTS (PostgreSQL 17)",
    # JSON(…) is deliberately absent: PostgreSQL 16 reads json('…') as a cast, which works
    "JsonScalarExpr": "JSON_SCALAR() (PostgreSQL 17)",
    "JsonSerializeExpr": "JSON_SERIALIZE() (PostgreSQL 17)",
    "ReturningOption": "RETURNING OLD/NEW (PostgreSQL 18)",
}


@lru_cache(maxsize=1)
def _functions():
    return rule_data("newer-postgres-syntax").get("functions", {})


NODES = {"MergeStmt"}
PROBES = tuple(f'"{k}"' for k in _NODE_FEATURES) + (
    '"generated_kind":"v"', '"without_overlaps"', '"fk_with_period"', '"pk_with_period"', '"is_enforced":false', '"returningClause"',
    '"on_error"', '"log_verbosity"', '"reject_limit"')


def FUNCTIONS():  # noqa: N802 - read by the rule engine like NODES/PROBES
    return set(_functions())


def check(facts):
    node, s = facts.node, facts.stmt
    if s is None:
        return
    for kind, feature in _NODE_FEATURES.items():
        if facts.has(kind):
            for n in facts.nodes(kind):
                yield Hit("newer-postgres-syntax", "default", offset=facts.char_offset(n.get("location")),
                          detail=feature)
    if node == "MergeStmt" and (s.get("returningClause") or s.get("returningList")):
        yield Hit("newer-postgres-syntax", "default", detail="MERGE … RETURNING (PostgreSQL 17)")
    returning = (s.get("returningClause") or {}).get("exprs") or ()
    if returning and not facts.has("ReturningOption"):
        for target in returning:
            ref = ((target.get("ResTarget") or {}).get("val") or {}).get("ColumnRef") or {}
            fields = [f.get("String", {}).get("sval") for f in ref.get("fields", ())]
            if len(fields) > 1 and fields[0] in ("old", "new"):
                yield Hit("newer-postgres-syntax", "default", offset=facts.char_offset(ref.get("location")),
                          detail="RETURNING OLD/NEW (PostgreSQL 18)")
                break
    for con, rv, where, column in constraints(facts):
        ctype = con.get("contype")
        at = facts.char_offset(con.get("location"))
        if ctype == "CONSTR_GENERATED" and con.get("generated_kind") == "v":
            yield Hit("newer-postgres-syntax", "default", offset=at,
                      detail="virtual generated column (PostgreSQL 18; PostgreSQL 16 needs STORED)")
        if con.get("without_overlaps"):
            yield Hit("newer-postgres-syntax", "default", offset=at, detail="WITHOUT OVERLAPS (PostgreSQL 18)")
        if con.get("fk_with_period") or con.get("pk_with_period"):
            yield Hit("newer-postgres-syntax", "default", offset=at, detail="PERIOD in a foreign key (PostgreSQL 18)")
        if con.get("is_enforced") is False and ctype in ("CONSTR_CHECK", "CONSTR_FOREIGN"):
            yield Hit("newer-postgres-syntax", "default", offset=at, detail="NOT ENFORCED (PostgreSQL 18)")
    if node == "CopyStmt":
        for o in s.get("options", ()):
            name = o.get("DefElem", {}).get("defname")
            if name in ("on_error", "log_verbosity", "reject_limit"):
                yield Hit("newer-postgres-syntax", "default", detail=f"COPY option {name.upper()} (PostgreSQL 17+)")
    funcs = _functions()
    called = facts.func_names()
    if called and not called.isdisjoint(funcs):
        for call in facts.nodes("FuncCall"):
            parts = names(call.get("funcname"))
            name = parts[-1].lower() if parts else ""
            if name in funcs:
                yield Hit("newer-postgres-syntax", "default", offset=facts.char_offset(call.get("location")),
                          detail=f"{name}() ({funcs[name]})")
