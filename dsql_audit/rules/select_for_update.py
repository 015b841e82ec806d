"""select-for-update: locking clauses DSQL refuses, and (before ~2026-09-09) FOR UPDATE shapes
other than a full-primary-key equality on one table.

Whether a FOR UPDATE names the whole primary key needs the table's key,
which may come from another file, so that part is resolved at the end.
"""

import re

from dsql_audit.facts import names
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
PROBES = ('"LockingClause"',)


_STRENGTH = {"LCS_FORSHARE": "FOR SHARE", "LCS_FORNOKEYUPDATE": "FOR NO KEY UPDATE",
             "LCS_FORKEYSHARE": "FOR KEY SHARE", "LCS_FORUPDATE": "FOR UPDATE"}
_CLAUSE = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|KEY\s+SHARE|UPDATE|SHARE)\b", re.I)


def _from_shape(from_clause):
    """(plain tables [(schema, name, alias)], nullable-side aliases, complex?)"""
    tables, nullable, complex_ = [], set(), False

    def visit(item, nullable_side):
        nonlocal complex_
        if "RangeVar" in item:
            rv = item["RangeVar"]
            alias = (rv.get("alias") or {}).get("aliasname") or rv.get("relname")
            tables.append((rv.get("schemaname"), rv.get("relname"), alias))
            if nullable_side:
                nullable.add(alias)
        elif "JoinExpr" in item:
            j = item["JoinExpr"]
            jt = j.get("jointype")
            visit(j.get("larg") or {}, nullable_side or jt in ("JOIN_RIGHT", "JOIN_FULL"))
            visit(j.get("rarg") or {}, nullable_side or jt in ("JOIN_LEFT", "JOIN_FULL"))
        else:
            complex_ = True

    for item in from_clause or ():
        visit(item, False)
    return tables, nullable, complex_


def _equality_columns(where) -> set:
    """Columns compared with = to a constant or parameter in a top-level AND of the WHERE."""
    out = set()
    if not where:
        return out
    if "BoolExpr" in where and where["BoolExpr"].get("boolop") == "AND_EXPR":
        for arg in where["BoolExpr"].get("args", ()):
            out |= _equality_columns(arg)
        return out
    expr = where.get("A_Expr")
    if expr and expr.get("kind") == "AEXPR_OP" and names(expr.get("name")) == ["="]:
        for side, other in (("lexpr", "rexpr"), ("rexpr", "lexpr")):
            col = (expr.get(side) or {}).get("ColumnRef")
            val = expr.get(other) or {}
            if col and any(k in val for k in ("A_Const", "ParamRef", "TypeCast")):
                fields = [f.get("String", {}).get("sval") for f in col.get("fields", ())]
                if fields and fields[-1]:
                    out.add(fields[-1])
    return out


def check(facts):
    if not facts.has("LockingClause"):
        return
    clause_positions = [m.start() for m in _CLAUSE.finditer(facts.text)]
    selects = [facts.stmt] if facts.node == "SelectStmt" else []
    selects += [n for n in facts.nodes("SelectStmt") if n is not facts.stmt]
    k = 0
    for sel in selects:
        for lc_wrap in sel.get("lockingClause") or ():
            lc = lc_wrap.get("LockingClause") or {}
            at = clause_positions[k] if k < len(clause_positions) else None
            k += 1
            strength = lc.get("strength")
            label = _STRENGTH.get(strength, strength)
            if strength in ("LCS_FORSHARE", "LCS_FORNOKEYUPDATE"):
                yield Hit("select-for-update", "share", offset=at, detail=label)
                continue
            if strength == "LCS_FORKEYSHARE":
                yield Hit("select-for-update", "key_share", offset=at, detail=label)
            wait = lc.get("waitPolicy")
            if wait == "LockWaitSkip":
                yield Hit("select-for-update", "skip_locked", offset=at, detail=label)
            elif wait == "LockWaitError":
                yield Hit("select-for-update", "nowait", offset=at, detail=label)
            tables, nullable, complex_ = _from_shape(sel.get("fromClause"))
            locked = {r.get("RangeVar", {}).get("relname") for r in lc.get("lockedRels") or ()}
            targets = locked or {t[2] for t in tables}
            if nullable & targets:
                yield Hit("select-for-update", "outer_join", offset=at,
                          detail=", ".join(sorted(nullable & targets)))
                continue
            if len(tables) != 1 or complex_:
                yield Hit("select-for-update", "join", offset=at, detail=label)
                continue
            schema, name, _ = tables[0]
            yield Hit("select-for-update", "needs_pk", offset=at, rel=(schema, name), detail=label,
                      args={"table": (schema, name), "columns": sorted(_equality_columns(sel.get("whereClause"))),
                            "resolve": True})


def resolve(hit, schema, profile):
    """FOR UPDATE on one table: clean when the WHERE pins every primary-key column."""
    if hit.variant != "needs_pk":
        return hit
    table = schema.table(*hit.args["table"])
    if table is not None and table.pk and set(table.pk) <= set(hit.args["columns"]):
        return None
    hit.variant = "not_pk_equality" if table is not None and table.pk else "pk_unknown"
    return hit
