"""vacuum: VACUUM, CLUSTER, REINDEX (DSQL maintains storage itself); bare ANALYZE."""

from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"VacuumStmt", "ClusterStmt", "ReindexStmt"}



def check(facts):
    node, s = facts.node, facts.stmt
    if node == "VacuumStmt":
        if s.get("is_vacuumcmd"):
            yield Hit("vacuum", "vacuum")
        elif not s.get("rels"):
            yield Hit("vacuum", "analyze_all")
    elif node == "ClusterStmt":
        yield Hit("vacuum", "cluster")
    elif node == "ReindexStmt":
        yield Hit("vacuum", "reindex")
