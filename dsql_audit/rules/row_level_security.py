"""row-level-security: CREATE/ALTER POLICY and ENABLE/FORCE ROW LEVEL SECURITY."""

from dsql_audit.facts import rel_of, alter_cmds
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"CreatePolicyStmt", "AlterPolicyStmt"}
PROBES = ('"AT_EnableRowSecurity"', '"AT_ForceRowSecurity"')



def check(facts):
    if facts.node in ("CreatePolicyStmt", "AlterPolicyStmt"):
        s = facts.stmt
        yield Hit("row-level-security", "policy", rel=rel_of(s.get("table")), object=s.get("policy_name"))
    for cmd, rv in alter_cmds(facts):
        if cmd.get("subtype") in ("AT_EnableRowSecurity", "AT_ForceRowSecurity"):
            yield Hit("row-level-security", "enable", rel=rel_of(rv))
