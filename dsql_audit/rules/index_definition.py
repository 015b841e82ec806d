"""index-definition: index keys DSQL refuses (sort order, operator classes, expressions before
2026-08-13, WHERE before 2026-09-15, expressions in INCLUDE, json/jsonb keys unknown here)."""

from functools import lru_cache

from dsql_audit.catalog import rule_data
from dsql_audit.facts import names, rel_of
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"IndexStmt"}



@lru_cache(maxsize=1)
def _extension_opclasses():
    return frozenset(k.lower() for k in rule_data("extension").get("opclasses", {}))


def check(facts):
    if facts.node != "IndexStmt":
        return
    s = facts.stmt
    rv = s.get("relation")
    # the index as a schema object: a model's declaration of it restates the statement that is sent
    columns = [(p.get("IndexElem") or {}).get("name") or "expr" for p in s.get("indexParams") or ()]
    claim = {"claim": f"index:{((rv or {}).get('relname') or '?').lower()}({','.join(c.lower() for c in columns)})"}
    for p in s.get("indexParams", ()):
        elem = p.get("IndexElem") or {}
        if elem.get("ordering") in ("SORTBY_ASC", "SORTBY_DESC") or \
                elem.get("nulls_ordering") in ("SORTBY_NULLS_FIRST", "SORTBY_NULLS_LAST"):
            yield Hit("index-definition", "sort_order", rel=rel_of(rv), detail=elem.get("name") or "expression",
                      args=claim)
        op = names(elem.get("opclass"))
        if op and op[-1].lower() not in _extension_opclasses():
            yield Hit("index-definition", "opclass", rel=rel_of(rv), detail=op[-1], args=claim)
        if elem.get("expr") is not None:
            yield Hit("index-definition", "expression", rel=rel_of(rv), args=claim)
    for p in s.get("indexIncludingParams", ()):
        if (p.get("IndexElem") or {}).get("expr") is not None:
            yield Hit("index-definition", "include_expression", rel=rel_of(rv), args=claim)
    if s.get("whereClause") is not None:
        yield Hit("index-definition", "partial", rel=rel_of(rv), args=claim)
