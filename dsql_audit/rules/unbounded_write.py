"""unbounded-write: writes that can exceed DSQL's 3,000-row / 10 MiB transaction bounds.

Writes whose row count is known from the text alone (a VALUES list, a
COPY data block, generate_series with constant bounds) carry the count,
and the profile's row limit decides whether DSQL refuses them.
"""

from dsql_audit.facts import rel_of, const_value, names
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"UpdateStmt", "DeleteStmt", "InsertStmt", "CopyStmt", "UnboundedWrite"}



def _series_rows(select: dict):
    for target in select.get("targetList", ()):
        val = (target.get("ResTarget") or {}).get("val") or {}
        call = val.get("FuncCall")
        if call and names(call.get("funcname"))[-1:] == ["generate_series"]:
            args = [const_value(a) for a in call.get("args", ())]
            if len(args) >= 2 and all(isinstance(a, int) for a in args[:2]):
                step = args[2] if len(args) > 2 and isinstance(args[2], int) and args[2] else 1
                return max(0, (args[1] - args[0]) // step + 1)
    return None


def check(facts):
    node, s = facts.node, facts.stmt
    if node == "UnboundedWrite":  # an ORM bulk write found in application source
        yield Hit("unbounded-write", "orm", args={"orm": s.get("orm") or "ORM", "op": s.get("op") or "write",
                                                  "query": s.get("query") or ""})
        return
    if node in ("UpdateStmt", "DeleteStmt"):
        if not s.get("whereClause"):
            yield Hit("unbounded-write", "no_where", rel=rel_of(s.get("relation")),
                      detail="UPDATE" if node == "UpdateStmt" else "DELETE")
    elif node == "InsertStmt":
        sel = (s.get("selectStmt") or {}).get("SelectStmt")
        table = rel_of(s.get("relation"))
        if sel is None:
            return
        if sel.get("valuesLists"):
            rows = len(sel["valuesLists"])
            yield Hit("unbounded-write", "rows", rel=table, detail=f"INSERT of {rows} rows",
                      args={"value": rows})
        elif sel.get("fromClause") or sel.get("op", "SETOP_NONE") != "SETOP_NONE":
            yield Hit("unbounded-write", "insert_select", rel=table)
        else:
            rows = _series_rows(sel)
            if rows is not None:
                yield Hit("unbounded-write", "rows", rel=table,
                          detail=f"INSERT … SELECT generate_series of {rows} rows", args={"value": rows})
    elif node == "CopyStmt" and s.get("is_from") and not s.get("filename") and not s.get("is_program"):
        table = rel_of(s.get("relation"))
        rows = facts.unit.copy_rows
        if rows:
            yield Hit("unbounded-write", "rows", rel=table, detail=f"COPY of {rows} rows",
                      args={"value": rows})
        else:
            yield Hit("unbounded-write", "copy", rel=table)
