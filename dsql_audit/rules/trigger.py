"""trigger: CREATE [CONSTRAINT] TRIGGER; ALTER TABLE … ENABLE/DISABLE TRIGGER; DROP TRIGGER."""

from dsql_audit.facts import rel_of, alter_cmds
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"CreateTrigStmt", "DropStmt"}
PROBES = ('"AT_EnableTrig"', '"AT_EnableTrigAll"', '"AT_EnableTrigUser"', '"AT_DisableTrig"', '"AT_DisableTrigAll"',
          '"AT_DisableTrigUser"', '"AT_EnableAlwaysTrig"', '"AT_EnableReplicaTrig"')


_TOGGLE = {
    "AT_EnableTrigAll", "AT_DisableTrigAll", "AT_EnableTrigUser", "AT_DisableTrigUser",
}
_TOGGLE_NAMED = {"AT_EnableTrig": "ENABLE TRIGGER", "AT_DisableTrig": "DISABLE TRIGGER",
                 "AT_EnableAlwaysTrig": "ENABLE ALWAYS TRIGGER", "AT_EnableReplicaTrig": "ENABLE REPLICA TRIGGER"}


def check(facts):
    if facts.node == "CreateTrigStmt":
        s = facts.stmt
        yield Hit("trigger", "create", rel=rel_of(s.get("relation")), object=s.get("trigname"),
                  detail=s.get("trigname"))
    elif facts.node == "AlterTableStmt":
        for cmd, rv in alter_cmds(facts):
            sub = cmd.get("subtype")
            if sub in _TOGGLE:
                yield Hit("trigger", "toggle_all", rel=rel_of(rv))
            elif sub in _TOGGLE_NAMED:
                yield Hit("trigger", "toggle_named", rel=rel_of(rv), object=cmd.get("name"),
                          detail=f"{_TOGGLE_NAMED[sub]} {cmd.get('name')}")
    elif facts.node == "DropStmt" and facts.stmt.get("removeType") == "OBJECT_TRIGGER":
        if facts.stmt.get("missing_ok"):
            yield Hit("trigger", "drop_if_exists")
        else:  # refused outright before IF EXISTS was accepted, missing after: one of the two applies
            yield Hit("trigger", "drop")
            yield Hit("trigger", "drop_missing")
