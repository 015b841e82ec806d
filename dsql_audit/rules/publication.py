"""publication: publications, subscriptions and REPLICA IDENTITY."""

from dsql_audit.facts import rel_of, alter_cmds
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"CreatePublicationStmt", "AlterPublicationStmt", "CreateSubscriptionStmt", "AlterSubscriptionStmt",
         "DropSubscriptionStmt"}
PROBES = ('"AT_ReplicaIdentity"',)


_NODES = {"CreatePublicationStmt", "AlterPublicationStmt", "CreateSubscriptionStmt",
          "AlterSubscriptionStmt", "DropSubscriptionStmt"}


def check(facts):
    if facts.node in _NODES:
        s = facts.stmt
        yield Hit("publication", "create", object=s.get("pubname") or s.get("subname"))
    for cmd, rv in alter_cmds(facts):
        if cmd.get("subtype") == "AT_ReplicaIdentity":
            yield Hit("publication", "replica_identity", rel=rel_of(rv))
