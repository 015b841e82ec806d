"""create-table-as: CREATE TABLE … AS and SELECT … INTO (temporary ones are temporary-table's)."""

from dsql_audit.facts import rel_of
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"CreateTableAsStmt"}
PROBES = ('"intoClause"',)



def check(facts):
    node, s = facts.node, facts.stmt
    if node == "CreateTableAsStmt" and s.get("objtype") == "OBJECT_TABLE":
        rv = (s.get("into") or {}).get("rel") or {}
        if rv.get("relpersistence") != "t":
            yield Hit("create-table-as", "create", rel=rel_of(rv))
    elif node == "SelectStmt" and s.get("intoClause"):
        rv = s["intoClause"].get("rel") or {}
        if rv.get("relpersistence") != "t":
            yield Hit("create-table-as", "select_into", rel=rel_of(rv))
