"""table-inheritance: INHERITS (…) and ALTER TABLE … [NO] INHERIT."""

from dsql_audit.facts import rel_of, alter_cmds, relname
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
PROBES = ('"inhRelations"', '"AT_AddInherit"', '"AT_DropInherit"')



def check(facts):
    if facts.node == "CreateStmt":
        s = facts.stmt
        if s.get("inhRelations") and not s.get("partbound"):
            parents = ", ".join(relname(r.get("RangeVar")) for r in s["inhRelations"])
            yield Hit("table-inheritance", "inherits", rel=rel_of(s.get("relation")), detail=parents)
    for cmd, rv in alter_cmds(facts):
        if cmd.get("subtype") in ("AT_AddInherit", "AT_DropInherit"):
            yield Hit("table-inheritance", "alter", rel=rel_of(rv))
