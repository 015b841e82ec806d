"""rule: CREATE RULE and ALTER TABLE … ENABLE/DISABLE RULE."""

from dsql_audit.facts import rel_of, alter_cmds
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"RuleStmt"}
PROBES = ('"AT_EnableRule"', '"AT_DisableRule"', '"AT_EnableAlwaysRule"', '"AT_EnableReplicaRule"')



def check(facts):
    if facts.node == "RuleStmt":
        s = facts.stmt
        yield Hit("rule", "create", rel=rel_of(s.get("relation")), object=s.get("rulename"))
    for cmd, rv in alter_cmds(facts):
        if cmd.get("subtype") in ("AT_EnableRule", "AT_DisableRule", "AT_EnableAlwaysRule", "AT_EnableReplicaRule"):
            yield Hit("rule", "alter", rel=rel_of(rv))
