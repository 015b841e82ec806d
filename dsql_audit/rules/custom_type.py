"""custom-type: CREATE TYPE (enum, composite, range, base), ALTER TYPE, DROP TYPE."""

from dsql_audit.facts import names
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"CreateEnumStmt", "CompositeTypeStmt", "CreateRangeStmt", "DefineStmt", "AlterEnumStmt",
         "AlterTypeStmt", "RenameStmt", "DropStmt"}



def _qual(parts) -> tuple:
    return (parts[0] if len(parts) > 1 else None, parts[-1] if parts else "?")


def check(facts):
    node, s = facts.node, facts.stmt
    if node == "CreateEnumStmt":
        rel = _qual(names(s.get("typeName")))
        yield Hit("custom-type", "enum", rel=rel, args={"claim": f"type:{rel[1].lower()}"})
    elif node == "CompositeTypeStmt":
        rv = s.get("typevar") or {}
        yield Hit("custom-type", "composite", rel=(rv.get("schemaname"), rv.get("relname")))
    elif node == "CreateRangeStmt":
        yield Hit("custom-type", "range", rel=_qual(names(s.get("typeName"))))
    elif node == "DefineStmt" and s.get("kind") == "OBJECT_TYPE":
        yield Hit("custom-type", "base", rel=_qual(names(s.get("defnames"))))
    elif node == "AlterEnumStmt":
        yield Hit("custom-type", "alter", rel=_qual(names(s.get("typeName"))))
    elif node == "AlterTypeStmt":
        yield Hit("custom-type", "alter", rel=_qual(names(s.get("typeName"))))
    elif node == "RenameStmt" and s.get("renameType") in ("OBJECT_TYPE", "OBJECT_ATTRIBUTE"):
        yield Hit("custom-type", "rename")
    elif node == "DropStmt" and s.get("removeType") == "OBJECT_TYPE":
        yield Hit("custom-type", "drop")
