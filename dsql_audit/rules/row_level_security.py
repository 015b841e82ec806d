"""row-level-security: CREATE/ALTER/DROP POLICY and ALTER TABLE … ENABLE/DISABLE/FORCE/NO FORCE ROW LEVEL
SECURITY — DSQL has none of it (DSQL-FACTS §1.1), so switching it off is refused as switching it on is."""

from dsql_audit.facts import rel_of, alter_cmds
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"CreatePolicyStmt", "AlterPolicyStmt", "DropStmt", "RenameStmt"}
PROBES = ('"AT_EnableRowSecurity"', '"AT_ForceRowSecurity"', '"AT_DisableRowSecurity"', '"AT_NoForceRowSecurity"')

_SWITCHES = {"AT_EnableRowSecurity": "ENABLE", "AT_ForceRowSecurity": "FORCE",
             "AT_DisableRowSecurity": "DISABLE", "AT_NoForceRowSecurity": "NO FORCE"}



def check(facts):
    if facts.node in ("CreatePolicyStmt", "AlterPolicyStmt"):
        s = facts.stmt
        yield Hit("row-level-security", "policy", rel=rel_of(s.get("table")), object=s.get("policy_name"))
        return
    if facts.node == "RenameStmt":
        if facts.stmt.get("renameType") == "OBJECT_POLICY":
            yield Hit("row-level-security", "policy", rel=rel_of(facts.stmt.get("relation")),
                      object=facts.stmt.get("subname"))
        return
    if facts.node == "DropStmt":
        if facts.stmt.get("removeType") == "OBJECT_POLICY":
            yield Hit("row-level-security", "drop_policy", detail="DROP POLICY")
        return
    for cmd, rv in alter_cmds(facts):
        switch = _SWITCHES.get(cmd.get("subtype"))
        if switch:
            yield Hit("row-level-security", "enable" if switch in ("ENABLE", "FORCE") else "disable", rel=rel_of(rv),
                      detail=f"{switch} ROW LEVEL SECURITY")
