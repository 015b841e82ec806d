"""custom-type: CREATE TYPE (enum, composite, range, base), ALTER TYPE, DROP TYPE."""

from dsql_audit.facts import names
from dsql_audit.model import Hit


def _qual(parts):
    return ".".join(parts)


def check(facts):
    node, s = facts.node, facts.stmt
    if node == "CreateEnumStmt":
        yield Hit("custom-type", "enum", object=_qual(names(s.get("typeName"))))
    elif node == "CompositeTypeStmt":
        rv = s.get("typevar") or {}
        obj = f"{rv['schemaname']}.{rv['relname']}" if rv.get("schemaname") else rv.get("relname")
        yield Hit("custom-type", "composite", object=obj)
    elif node == "CreateRangeStmt":
        yield Hit("custom-type", "range", object=_qual(names(s.get("typeName"))))
    elif node == "DefineStmt" and s.get("kind") == "OBJECT_TYPE":
        yield Hit("custom-type", "base", object=_qual(names(s.get("defnames"))))
    elif node == "AlterEnumStmt":
        yield Hit("custom-type", "alter", object=_qual(names(s.get("typeName"))))
    elif node == "AlterTypeStmt":
        yield Hit("custom-type", "alter", object=_qual(names(s.get("typeName"))))
    elif node == "RenameStmt" and s.get("renameType") in ("OBJECT_TYPE", "OBJECT_ATTRIBUTE"):
        yield Hit("custom-type", "rename")
    elif node == "DropStmt" and s.get("removeType") == "OBJECT_TYPE":
        yield Hit("custom-type", "drop")
