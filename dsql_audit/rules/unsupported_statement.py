"""unsupported-statement: statements DSQL refuses that no other rule owns.

Plain node matches live in rules/unsupported-statement.toml; this module
holds the ones that need a look inside the statement.
"""

from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"CopyStmt", "DeallocateStmt", "GrantStmt", "CreateStatsStmt", "AlterFunctionStmt", "RenameStmt",
         "AlterOwnerStmt", "AlterObjectSchemaStmt", "AlterRoleStmt", "AlterRoleSetStmt"}

# ALTER ROLE|USER options DSQL's grammar has (INHERIT / NOINHERIT, USER role_list); PASSWORD, VALID UNTIL,
# SUPERUSER, CREATEROLE, LOGIN … it has not: IAM authenticates (DSQL-FACTS §1.1 Roles)
_ROLE_OPTIONS_ACCEPTED = {"inherit", "rolemembers"}
_ROLE_OPTION_WORDS = {"password": "PASSWORD", "validUntil": "VALID UNTIL", "superuser": "SUPERUSER",
                      "createrole": "CREATEROLE", "createdb": "CREATEDB", "canlogin": "LOGIN",
                      "isreplication": "REPLICATION", "bypassrls": "BYPASSRLS", "connectionlimit": "CONNECTION LIMIT",
                      "addroleto": "IN ROLE", "adminmembers": "ADMIN", "sysid": "SYSID"}

# ALTER FUNCTION's property clauses (DefElem names) as written
_FUNCTION_PROPERTY = {"volatility": None, "strict": "STRICT", "security": "SECURITY", "leakproof": "LEAKPROOF",
                      "cost": "COST", "rows": "ROWS", "support": "SUPPORT", "set": "SET", "parallel": "PARALLEL"}
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
    elif node == "AlterRoleStmt":
        refused = [_ROLE_OPTION_WORDS.get(d.get("defname"), (d.get("defname") or "").upper())
                   for d in ((o.get("DefElem") or {}) for o in s.get("options", ()))
                   if d.get("defname") not in _ROLE_OPTIONS_ACCEPTED]
        if refused:
            yield Hit("unsupported-statement", "role_option", detail=" ".join(dict.fromkeys(refused)))
    elif node == "AlterRoleSetStmt":
        # SET is refused (DSQL-FACTS §1.1); RESET is in DSQL's grammar and dsql-lint's accepted cases
        if (s.get("setstmt") or {}).get("kind") not in ("VAR_RESET", "VAR_RESET_ALL"):
            yield Hit("unsupported-statement", "role_setting")
    elif node == "AlterFunctionStmt":  # property changes; RENAME / OWNER TO / SET SCHEMA are other nodes
        props = []
        for a in s.get("actions", ()):
            d = a.get("DefElem") or {}
            name = d.get("defname", "")
            value = (d.get("arg") or {}).get("String", {}).get("sval")
            props.append((value or name).upper() if _FUNCTION_PROPERTY.get(name, name.upper()) is None
                         else _FUNCTION_PROPERTY.get(name, name.upper()))
        kind = {"OBJECT_PROCEDURE": "PROCEDURE", "OBJECT_ROUTINE": "ROUTINE"}.get(s.get("objtype"), "FUNCTION")
        yield Hit("unsupported-statement", "alter_function", detail=f"ALTER {kind} … {' '.join(props)}".rstrip())
    elif node in ("RenameStmt", "AlterOwnerStmt", "AlterObjectSchemaStmt") and "OBJECT_AGGREGATE" in (
            s.get("renameType"), s.get("objectType")):
        yield Hit("unsupported-statement", "alter_aggregate")
