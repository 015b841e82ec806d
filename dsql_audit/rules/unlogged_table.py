"""unlogged-table: CREATE UNLOGGED TABLE, ALTER TABLE … SET UNLOGGED."""

from dsql_audit.facts import rel_of, alter_cmds
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
PROBES = ('"relpersistence":"u"', '"AT_SetUnLogged"')



def check(facts):
    if facts.node in ("CreateStmt", "CreateTableAsStmt"):
        rv = facts.stmt.get("relation") or (facts.stmt.get("into") or {}).get("rel") or {}
        if rv.get("relpersistence") == "u":
            yield Hit("unlogged-table", "create", rel=rel_of(rv))
    for cmd, rv in alter_cmds(facts):
        if cmd.get("subtype") == "AT_SetUnLogged":
            yield Hit("unlogged-table", "alter", rel=rel_of(rv))
