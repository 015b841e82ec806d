"""temporary-table: CREATE TEMP TABLE, SELECT … INTO TEMP, CREATE TEMP VIEW, ON COMMIT."""

from dsql_audit.facts import rel_of
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
PROBES = ('"relpersistence":"t"', '"oncommit"')



_ON_COMMIT = {"ONCOMMIT_PRESERVE_ROWS": "ON COMMIT PRESERVE ROWS", "ONCOMMIT_DELETE_ROWS": "ON COMMIT DELETE ROWS",
              "ONCOMMIT_DROP": "ON COMMIT DROP"}


def check(facts):
    node, s = facts.node, facts.stmt
    if node == "CreateStmt":
        rv = s.get("relation") or {}
        if rv.get("relpersistence") == "t":
            yield Hit("temporary-table", "create", rel=rel_of(rv))
        elif s.get("oncommit") not in (None, "ONCOMMIT_NOOP"):
            yield Hit("temporary-table", "on_commit", rel=rel_of(rv), detail=_ON_COMMIT.get(s["oncommit"], "ON COMMIT"))
    elif node == "SelectStmt" and s.get("intoClause"):
        rv = s["intoClause"].get("rel") or {}
        if rv.get("relpersistence") == "t":
            yield Hit("temporary-table", "select_into", rel=rel_of(rv))
    elif node == "CreateTableAsStmt":
        rv = (s.get("into") or {}).get("rel") or {}
        if rv.get("relpersistence") == "t":
            yield Hit("temporary-table", "create", rel=rel_of(rv))
    elif node == "ViewStmt":
        rv = s.get("view") or {}
        if rv.get("relpersistence") == "t":
            yield Hit("temporary-table", "view", rel=rel_of(rv))
