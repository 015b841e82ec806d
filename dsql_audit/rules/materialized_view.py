"""materialized-view: CREATE / REFRESH / DROP MATERIALIZED VIEW."""

from dsql_audit.facts import relname
from dsql_audit.model import Hit


def check(facts):
    node, s = facts.node, facts.stmt
    if node == "CreateTableAsStmt" and s.get("objtype") == "OBJECT_MATVIEW":
        yield Hit("materialized-view", "create", object=relname((s.get("into") or {}).get("rel")))
    elif node == "RefreshMatViewStmt":
        yield Hit("materialized-view", "refresh", object=relname(s.get("relation")))
    elif node == "DropStmt" and s.get("removeType") == "OBJECT_MATVIEW":
        yield Hit("materialized-view", "drop")
