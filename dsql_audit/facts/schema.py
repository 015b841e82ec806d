"""What a statement does to the schema, and the schema the whole input builds.

``effects(facts)`` turns one statement into plain tuples (picklable, so
workers can compute them); ``SchemaModel.apply`` folds them in input order,
resolving unqualified names through the session's search_path. Quota rules
and checks that need another file's table (a FOR UPDATE's primary key) read
the model at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsql_audit.facts import Facts, alter_cmds, const_value, names
from dsql_audit.facts.routines import language, routine_rel
from dsql_audit.model import Unit


def _rv(rv: dict | None) -> tuple:
    rv = rv or {}
    return (rv.get("schemaname"), rv.get("relname"))


def _type_name(tn: dict) -> str | None:
    """A column's base type name, lower case, as written (json, jsonb, int4 …); None for an array."""
    if tn.get("arrayBounds"):
        return None
    parts = names(tn.get("names"))
    return parts[-1].lower() if parts else None


def _type_bytes(tn: dict) -> int | None:
    """Declared key bytes of a column type, when the type says (for the PK size quota)."""
    parts = names(tn.get("names"))
    base = parts[-1].lower() if parts else ""
    fixed = {"int2": 2, "int4": 4, "int8": 8, "float4": 4, "float8": 8, "bool": 1, "uuid": 16,
             "date": 4, "timestamp": 8, "timestamptz": 8, "time": 8, "timetz": 12, "interval": 16}
    if base in fixed:
        return fixed[base]
    if base in ("varchar", "bpchar"):
        mods = [const_value(m) for m in tn.get("typmods", ())]
        if mods and isinstance(mods[0], int):
            return mods[0]
    return None


_EFFECT_NODES = {"CreateStmt", "CreateTableAsStmt", "AlterTableStmt", "IndexStmt", "CreateSchemaStmt", "DropStmt",
                 "RenameStmt", "ViewStmt", "VariableSetStmt", "SelectStmt", "CreateFunctionStmt"}
_NEEDS = {  # JSON probes: without any of these the statement changes nothing the model tracks
    "AlterTableStmt": ('"AT_AddColumn"', '"AT_DropColumn"', '"AT_AddConstraint"', '"AT_AttachPartition"'),
    "DropStmt": ('"OBJECT_TABLE"', '"OBJECT_INDEX"', '"OBJECT_SCHEMA"', '"OBJECT_VIEW"', '"OBJECT_FUNCTION"',
                 '"OBJECT_PROCEDURE"', '"OBJECT_ROUTINE"'),
    "RenameStmt": ('"renameType":"OBJECT_TABLE"',),
    "VariableSetStmt": ('"search_path"',),
    "SelectStmt": ('"set_config"',),
}


def effects(facts: Facts) -> list[tuple]:
    node = facts.node
    if node not in _EFFECT_NODES:
        return []
    needs = _NEEDS.get(node)
    if needs is not None and not any(p in facts.js for p in needs):
        return []
    if node == "ViewStmt":
        return [("view", None)]
    s = facts.stmt
    if s is None:
        return []
    out: list[tuple] = []
    if node == "CreateStmt":
        cols, pk, uniques = [], None, 0
        for elt in s.get("tableElts", ()):
            if "ColumnDef" in elt:
                cd = elt["ColumnDef"]
                cols.append((cd.get("colname"), _type_bytes(cd.get("typeName") or {}),
                             _type_name(cd.get("typeName") or {})))
                for c in cd.get("constraints", ()):
                    ctype = c.get("Constraint", {}).get("contype")
                    if ctype == "CONSTR_PRIMARY":
                        pk = (cd.get("colname"),)
                    elif ctype == "CONSTR_UNIQUE":
                        uniques += 1
            elif "Constraint" in elt:
                con = elt["Constraint"]
                ctype = con.get("contype")
                if ctype == "CONSTR_PRIMARY":
                    pk = tuple(names(con.get("keys")))
                elif ctype in ("CONSTR_UNIQUE", "CONSTR_EXCLUSION"):
                    uniques += 1
        rel = s.get("relation") or {}
        out.append(("table", _rv(rel), tuple(cols), pk, uniques, bool(s.get("partbound")),
                    bool(s.get("partspec")), rel.get("relpersistence") == "t", bool(s.get("if_not_exists"))))
    elif node == "CreateTableAsStmt" and s.get("objtype") == "OBJECT_TABLE":
        rel = (s.get("into") or {}).get("rel") or {}
        if rel.get("relpersistence") != "t":
            out.append(("table", _rv(rel), (), None, 0, False, False, False, bool(s.get("if_not_exists"))))
    elif node == "AlterTableStmt" and s.get("objtype") in ("OBJECT_TABLE", None):
        changes = []
        for cmd, _ in alter_cmds(facts):
            sub = cmd.get("subtype")
            d = cmd.get("def") or {}
            if sub == "AT_AddColumn" and "ColumnDef" in d:
                cd = d["ColumnDef"]
                changes.append(("add_column", cd.get("colname"), _type_bytes(cd.get("typeName") or {}),
                                _type_name(cd.get("typeName") or {})))
                for c in cd.get("constraints", ()):
                    ctype = c.get("Constraint", {}).get("contype")
                    if ctype == "CONSTR_PRIMARY":
                        changes.append(("pk", (cd.get("colname"),)))
                    elif ctype == "CONSTR_UNIQUE":
                        changes.append(("index", None))
            elif sub == "AT_DropColumn":
                changes.append(("drop_column", cmd.get("name")))
            elif sub == "AT_AttachPartition":
                part = (d.get("PartitionCmd") or {}).get("name")
                if part:
                    out.append(("partition", _rv(part)))
            elif sub == "AT_AddConstraint" and "Constraint" in d:
                con = d["Constraint"]
                ctype = con.get("contype")
                if ctype == "CONSTR_PRIMARY":
                    changes.append(("pk", tuple(names(con.get("keys"))) or None, con.get("indexname")))
                elif ctype in ("CONSTR_UNIQUE", "CONSTR_EXCLUSION") and not con.get("indexname"):
                    changes.append(("index", con.get("conname")))
        if changes:
            out.append(("alter", _rv(s.get("relation")), tuple(changes)))
    elif node == "IndexStmt":
        out.append(("index", _rv(s.get("relation")), s.get("idxname")))
    elif node == "CreateSchemaStmt":
        out.append(("schema", s.get("schemaname") or (s.get("authrole") or {}).get("rolename")))
    elif node == "DropStmt" and s.get("removeType") in ("OBJECT_TABLE", "OBJECT_INDEX", "OBJECT_SCHEMA",
                                                        "OBJECT_VIEW"):
        kind = s.get("removeType")
        if kind in ("OBJECT_TABLE", "OBJECT_INDEX", "OBJECT_SCHEMA", "OBJECT_VIEW"):
            objs = []
            for o in s.get("objects", ()):
                if "List" in o:
                    objs.append(tuple(x.get("String", {}).get("sval") for x in o["List"]["items"]))
                elif "String" in o:
                    objs.append((o["String"].get("sval"),))
            out.append(("drop", kind, tuple(objs)))
    elif node == "CreateFunctionStmt":
        out.append(("routine", routine_rel(s), language(s)))
    elif node == "DropStmt" and s.get("removeType") in ("OBJECT_FUNCTION", "OBJECT_PROCEDURE", "OBJECT_ROUTINE"):
        for o in s.get("objects", ()):
            owa = o.get("ObjectWithArgs") or {}
            parts = names(owa.get("objname"))
            if not parts:
                continue
            schema = parts[0] if len(parts) > 1 else None
            if owa.get("args_unspecified"):
                out.append(("drop_routine", (schema, parts[-1] + "("), True))
            else:
                args = []
                for a in owa.get("objargs", ()):
                    tn = a.get("TypeName") or {}
                    tparts = names(tn.get("names"))
                    args.append((tparts[-1] if tparts else "?") + ("[]" if tn.get("arrayBounds") else ""))
                out.append(("drop_routine", (schema, f"{parts[-1]}({', '.join(args)})"), False))
    elif node == "RenameStmt" and s.get("renameType") == "OBJECT_TABLE":
        out.append(("rename", _rv(s.get("relation")), s.get("newname")))
    elif node == "VariableSetStmt" and (s.get("name") or "").lower() == "search_path":
        path = [str(const_value(a)) for a in s.get("args", ())]
        out.append(("search_path", tuple(p.strip() for item in path for p in item.split(","))))
    elif node == "SelectStmt" and "set_config" in facts.func_names():
        for call in facts.nodes("FuncCall"):
            args = call.get("args") or ()
            if names(call.get("funcname"))[-1:] == ["set_config"] and len(args) >= 2:
                if const_value(args[0]) == "search_path" and isinstance(const_value(args[1]), str):
                    val = const_value(args[1])
                    out.append(("search_path", tuple(p.strip().strip('"') for p in val.split(",") if p.strip())))
    return out


@dataclass
class Table:
    schema: str
    name: str
    columns: dict = field(default_factory=dict)  # name → declared key bytes or None
    pk: tuple | None = None
    indexes: int = 0
    partition: bool = False
    partitioned: bool = False
    unit: Unit | None = None  # the CREATE TABLE
    index_units: list = field(default_factory=list)  # (unit, index name) in order
    extra_columns_unit: Unit | None = None  # the ALTER that pushed it past the column quota
    types: dict = field(default_factory=dict)  # name → base type name (json, jsonb, int4 …)


class SchemaModel:
    """The final schema of everything scanned, built in input order."""

    def __init__(self):
        self.tables: dict[tuple, Table] = {}
        self.schemas: dict[str, Unit] = {}
        self.index_owner: dict[tuple, tuple] = {}
        self.views = 0
        self.routines: dict[tuple, str] = {}  # (schema, "name(args)") → language
        self.search_path: tuple = ("public",)

    def new_session(self):
        """psql runs each file in a new session: search_path starts over."""
        self.search_path = ("public",)

    def _creation_schema(self, schema):
        if schema:
            return schema
        for s in self.search_path:
            if s and s not in ("$user", "pg_catalog", "pg_temp"):
                return s
        return "public"

    def table(self, schema: str | None, name: str | None) -> Table | None:
        if name is None:
            return None
        if schema:
            return self.tables.get((schema, name))
        for s in self.search_path + ("public",):
            t = self.tables.get((s, name))
            if t is not None:
                return t
        return None

    def qualify(self, schema: str | None, name: str | None) -> str:
        t = self.table(schema, name)
        if t is not None:
            return f"{t.schema}.{t.name}"
        return f"{self._creation_schema(schema)}.{name}"

    def apply(self, unit: Unit, effs: list) -> None:
        for eff in effs:
            kind = eff[0]
            if kind == "search_path":
                self.search_path = eff[1] or ("public",)
            elif kind == "schema" and eff[1]:
                self.schemas.setdefault(eff[1], unit)
            elif kind == "table":
                _, (schema, name), cols, pk, uniques, partition, partitioned, temp, if_not_exists = eff
                if temp:
                    continue
                schema = self._creation_schema(schema)
                if if_not_exists and (schema, name) in self.tables:
                    continue
                t = Table(schema, name, {c[0]: c[1] for c in cols}, pk, (1 if pk else 0) + uniques, partition,
                          partitioned, unit, types={c[0]: c[2] for c in cols})
                self.tables[(schema, name)] = t
            elif kind == "alter":
                t = self.table(*eff[1])
                if t is None:
                    continue
                for change in eff[2]:
                    if change[0] == "add_column":
                        t.columns[change[1]] = change[2]
                        t.types[change[1]] = change[3]
                        t.extra_columns_unit = unit
                    elif change[0] == "drop_column":
                        t.columns.pop(change[1], None)
                        t.types.pop(change[1], None)
                    elif change[0] == "pk":
                        t.pk = change[1] or t.pk
                        if len(change) < 3 or not change[2]:
                            t.indexes += 1
                            t.index_units.append((unit, None))
                    elif change[0] == "index":
                        t.indexes += 1
                        t.index_units.append((unit, change[1]))
            elif kind == "index":
                t = self.table(*eff[1])
                if t is not None:
                    t.indexes += 1
                    t.index_units.append((unit, eff[2]))
                    if eff[2]:
                        self.index_owner[(t.schema, eff[2])] = (t.schema, t.name)
            elif kind == "drop":
                _, what, objs = eff
                for obj in objs:
                    schema, name = (obj[-2] if len(obj) > 1 else None), obj[-1]
                    if what == "OBJECT_TABLE":
                        t = self.table(schema, name)
                        if t is not None:
                            self.tables.pop((t.schema, t.name), None)
                    elif what == "OBJECT_INDEX":
                        key = (self._creation_schema(schema), name)
                        owner = self.index_owner.pop(key, None)
                        if owner and owner in self.tables:
                            self.tables[owner].indexes -= 1
                    elif what == "OBJECT_SCHEMA":
                        self.schemas.pop(name, None)
            elif kind == "rename":
                t = self.table(*eff[1])
                if t is not None:
                    self.tables.pop((t.schema, t.name))
                    t.name = eff[2]
                    self.tables[(t.schema, t.name)] = t
            elif kind == "routine":
                schema, sig = eff[1]
                self.routines[(self._creation_schema(schema), sig)] = eff[2]
            elif kind == "drop_routine":
                schema, sig = eff[1]
                targets = [schema] if schema else list(self.search_path) + ["public"]
                for key in list(self.routines):
                    if key[0] in targets and (key[1] == sig or (eff[2] and key[1].startswith(sig))):
                        del self.routines[key]
                        break
            elif kind == "partition":
                t = self.table(*eff[1])
                if t is not None:
                    t.partition = True
            elif kind == "view":
                self.views += 1
