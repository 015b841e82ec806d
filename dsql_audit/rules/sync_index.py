"""sync-index: CREATE INDEX without ASYNC (and CONCURRENTLY); schema-qualified ASYNC index names."""

from dsql_audit.facts import rel_of
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"IndexStmt"}



def check(facts):
    if facts.node != "IndexStmt":
        return
    s = facts.stmt
    rel = rel_of(s.get("relation"))
    obj = s.get("idxname")
    if "index_async" not in facts.dsql:
        columns = [(p.get("IndexElem") or {}).get("name") or "expr" for p in s.get("indexParams") or ()]
        claim = f"index:{(rel[1] if rel else '?').lower()}({','.join(c.lower() for c in columns)})"
        yield Hit("sync-index", "concurrently" if s.get("concurrent") else "sync", rel=rel, object=obj,
                  detail=s.get("idxname") or "", args={"claim": claim})
    elif "qualified_index_name" in facts.dsql:
        yield Hit("sync-index", "qualified_name", offset=facts.dsql["qualified_index_name"], rel=rel, object=obj)
