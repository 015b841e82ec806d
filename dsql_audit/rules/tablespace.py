"""tablespace: CREATE TABLESPACE and TABLESPACE clauses."""

from dsql_audit.facts import rel_of, alter_cmds
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"CreateTableSpaceStmt", "DropTableSpaceStmt", "AlterTableSpaceOptionsStmt"}
PROBES = ('"tableSpace"', '"tablespacename"', '"tableSpaceName"', '"AT_SetTableSpace"')



def check(facts):
    node, s = facts.node, facts.stmt
    if node in ("CreateTableSpaceStmt", "DropTableSpaceStmt", "AlterTableSpaceOptionsStmt"):
        yield Hit("tablespace", "create", object=s.get("tablespacename"))
    elif node in ("CreateStmt", "IndexStmt") and (s.get("tableSpace") or s.get("tablespacename")):
        yield Hit("tablespace", "clause", rel=rel_of(s.get("relation")),
                  detail=s.get("tableSpace") or s.get("tablespacename"))
    elif node == "CreateTableAsStmt" and (s.get("into") or {}).get("tableSpaceName"):
        yield Hit("tablespace", "clause", detail=s["into"]["tableSpaceName"])
    for cmd, rv in alter_cmds(facts):
        if cmd.get("subtype") == "AT_SetTableSpace":
            yield Hit("tablespace", "clause", rel=rel_of(rv), detail=cmd.get("name"))
