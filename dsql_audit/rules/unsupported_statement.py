"""unsupported-statement: statements DSQL refuses that no other rule owns.

Plain node matches live in rules/unsupported-statement.toml; this module
holds the ones that need a look inside the statement.
"""

from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"CopyStmt", "DeallocateStmt", "GrantStmt", "CreateStatsStmt"}
PROBES = ('"RangeTableSample"',)



def check(facts):
    node, s = facts.node, facts.stmt
    if s is None:
        return
    if facts.has("RangeTableSample"):
        for n in facts.nodes("RangeTableSample"):
            yield Hit("unsupported-statement", "tablesample", offset=facts.char_offset(n.get("location")))
    if node == "CopyStmt" and (s.get("filename") or s.get("is_program")):
        yield Hit("unsupported-statement", "copy_file", detail=s.get("filename") or "PROGRAM")
    elif node == "DeallocateStmt" and s.get("name"):
        yield Hit("unsupported-statement", "sql_prepare", detail="DEALLOCATE")
    elif node == "GrantStmt" and s.get("objtype") == "OBJECT_SCHEMA":
        for o in s.get("objects", ()):
            name = o.get("String", {}).get("sval")
            if name in ("public", "sys", "pg_catalog", "information_schema"):
                yield Hit("unsupported-statement", "system_schema_grant", detail=name)
    elif node == "CreateStatsStmt":
        yield Hit("unsupported-statement", "statistics")
