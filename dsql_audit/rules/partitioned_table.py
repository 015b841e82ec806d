"""partitioned-table: PARTITION BY, PARTITION OF, ATTACH/DETACH PARTITION."""

from dsql_audit.facts import rel_of, alter_cmds
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
PROBES = ('"partspec"', '"partbound"', '"AT_AttachPartition"', '"AT_DetachPartition"', '"AT_DetachPartitionFinalize"')



def check(facts):
    if facts.node == "CreateStmt":
        s = facts.stmt
        if s.get("partspec"):
            yield Hit("partitioned-table", "partition_by", rel=rel_of(s.get("relation")),
                      offset=facts.char_offset(s["partspec"].get("location")))
        if s.get("partbound"):
            yield Hit("partitioned-table", "partition_of", rel=rel_of(s.get("relation")))
    for cmd, rv in alter_cmds(facts):
        if cmd.get("subtype") in ("AT_AttachPartition", "AT_DetachPartition", "AT_DetachPartitionFinalize"):
            yield Hit("partitioned-table", "attach", rel=rel_of(rv))
