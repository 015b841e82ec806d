"""row-level-security: CREATE/ALTER POLICY and ENABLE/FORCE ROW LEVEL SECURITY."""

from dsql_audit.facts import alter_cmds, relname
from dsql_audit.model import Hit


def check(facts):
    if facts.node in ("CreatePolicyStmt", "AlterPolicyStmt"):
        s = facts.stmt
        yield Hit("row-level-security", "policy", object=f"{relname(s.get('table'))}.{s.get('policy_name')}")
    for cmd, rv in alter_cmds(facts):
        if cmd.get("subtype") in ("AT_EnableRowSecurity", "AT_ForceRowSecurity"):
            yield Hit("row-level-security", "enable", object=relname(rv))
