"""collation: a per-column COLLATE of any collation ("C" included: DSQL-FACTS §1.1 says a per-column COLLATE
is refused), COLLATE other than C/POSIX in an index or expression, and CREATE COLLATION."""

from dsql_audit.facts import column_defs, names, rel_of
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"DefineStmt", "IndexStmt"}
PROBES = ('"collClause"', '"CollateClause"')


_FINE = {"c", "posix", "default", "ucs_basic"}


def check(facts):
    if facts.node == "DefineStmt" and facts.stmt.get("kind") == "OBJECT_COLLATION":
        yield Hit("collation", "create", rel=(None, ".".join(names(facts.stmt.get("defnames")))) if len(names(facts.stmt.get("defnames"))) < 2 else tuple(names(facts.stmt.get("defnames"))[-2:]))
        return
    seen = set()
    for cd, rv, _ in column_defs(facts):
        cc = cd.get("collClause")
        if cc:
            coll = names(cc.get("collname"))
            if coll:
                seen.add(cc.get("location"))
                yield Hit("collation", "column", offset=facts.char_offset(cc.get("location")),
                          rel=rel_of(rv), object=cd.get("colname"), detail=coll[-1])
    if facts.node == "IndexStmt":
        for p in facts.stmt.get("indexParams", ()):
            coll = names((p.get("IndexElem") or {}).get("collation"))
            if coll and coll[-1].lower() not in _FINE:
                yield Hit("collation", "index", rel=rel_of(facts.stmt.get("relation")), detail=coll[-1])
    if facts.has("CollateClause"):
        for cc in facts.nodes("CollateClause"):
            coll = names(cc.get("collname"))
            if coll and coll[-1].lower() not in _FINE and cc.get("location") not in seen:
                yield Hit("collation", "expression", offset=facts.char_offset(cc.get("location")),
                          detail=coll[-1])
