"""sync-index: CREATE INDEX without ASYNC (and CONCURRENTLY); schema-qualified ASYNC index names."""

from dsql_audit.facts import relname
from dsql_audit.model import Hit


def check(facts):
    if facts.node != "IndexStmt":
        return
    s = facts.stmt
    table = relname(s.get("relation"))
    obj = f"{table}.{s['idxname']}" if s.get("idxname") else table
    if "index_async" not in facts.dsql:
        yield Hit("sync-index", "concurrently" if s.get("concurrent") else "sync", object=obj,
                  detail=s.get("idxname") or "")
    elif "qualified_index_name" in facts.dsql:
        yield Hit("sync-index", "qualified_name", offset=facts.dsql["qualified_index_name"], object=obj)
