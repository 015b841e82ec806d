"""index-method: index access methods other than btree."""

from dsql_audit.facts import rel_of
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"IndexStmt"}



def check(facts):
    if facts.node == "IndexStmt":
        method = (facts.stmt.get("accessMethod") or "btree").lower()
        if method != "btree":
            yield Hit("index-method", "default", rel=rel_of(facts.stmt.get("relation")), detail=method)
