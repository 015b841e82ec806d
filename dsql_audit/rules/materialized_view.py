"""materialized-view: CREATE / REFRESH / DROP MATERIALIZED VIEW."""

from dsql_audit.facts import rel_of
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"CreateTableAsStmt", "RefreshMatViewStmt", "DropStmt"}



def check(facts):
    node, s = facts.node, facts.stmt
    if node == "CreateTableAsStmt" and s.get("objtype") == "OBJECT_MATVIEW":
        yield Hit("materialized-view", "create", rel=rel_of((s.get("into") or {}).get("rel")))
    elif node == "RefreshMatViewStmt":
        yield Hit("materialized-view", "refresh", rel=rel_of(s.get("relation")))
    elif node == "DropStmt" and s.get("removeType") == "OBJECT_MATVIEW":
        yield Hit("materialized-view", "drop")
