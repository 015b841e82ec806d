"""index-definition: index keys DSQL refuses (sort order, operator classes, expressions before
2026-08-13, WHERE before 2026-09-15, expressions in INCLUDE) and keys of a type DSQL cannot key (json,
jsonb: `datatype jsonb is not supported in a key`) — in an index (the column's type from the schema, resolved
at the end), a PRIMARY KEY or a UNIQUE constraint of CREATE TABLE (the type right there)."""

from functools import lru_cache

from dsql_audit.catalog import rule_data
from dsql_audit.facts import names, rel_of
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"IndexStmt", "CreateStmt"}

UNKEYABLE = frozenset({"json", "jsonb"})  # DSQL-FACTS §2.5: `datatype <type> is not supported in a key`



@lru_cache(maxsize=1)
def _extension_opclasses():
    return frozenset(k.lower() for k in rule_data("extension").get("opclasses", {}))


def _table_keys(facts):
    """CREATE TABLE: a PRIMARY KEY or UNIQUE (column or table constraint) over a json/jsonb column."""
    s = facts.stmt
    rv = s.get("relation")
    types, keys = {}, []
    for elt in s.get("tableElts", ()):
        if "ColumnDef" in elt:
            cd = elt["ColumnDef"]
            tn = cd.get("typeName") or {}
            parts = names(tn.get("names"))
            types[cd.get("colname")] = parts[-1].lower() if parts and not tn.get("arrayBounds") else None
            for c in cd.get("constraints", ()):
                con = c.get("Constraint", {})
                if con.get("contype") in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
                    keys.append((con, [cd.get("colname")]))
        elif "Constraint" in elt:
            con = elt["Constraint"]
            if con.get("contype") in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
                keys.append((con, names(con.get("keys"))))
    for con, cols in keys:
        for col in cols:
            if types.get(col) in UNKEYABLE:
                kind = "PRIMARY KEY" if con.get("contype") == "CONSTR_PRIMARY" else "UNIQUE"
                yield Hit("index-definition", "key_type", offset=facts.char_offset(con.get("location")),
                          rel=rel_of(rv), object=col, detail=types[col], args={"key": kind})


def check(facts):
    if facts.node == "CreateStmt":
        yield from _table_keys(facts)
        return
    if facts.node != "IndexStmt":
        return
    s = facts.stmt
    rv = s.get("relation")
    # the index as a schema object: a model's declaration of it restates the statement that is sent
    columns = [(p.get("IndexElem") or {}).get("name") or "expr" for p in s.get("indexParams") or ()]
    claim = {"claim": f"index:{((rv or {}).get('relname') or '?').lower()}({','.join(c.lower() for c in columns)})"}
    for p in s.get("indexParams", ()):
        elem = p.get("IndexElem") or {}
        if elem.get("ordering") in ("SORTBY_ASC", "SORTBY_DESC") or \
                elem.get("nulls_ordering") in ("SORTBY_NULLS_FIRST", "SORTBY_NULLS_LAST"):
            yield Hit("index-definition", "sort_order", rel=rel_of(rv), detail=elem.get("name") or "expression",
                      args=claim)
        op = names(elem.get("opclass"))
        if op and op[-1].lower() not in _extension_opclasses():
            yield Hit("index-definition", "opclass", rel=rel_of(rv), detail=op[-1], args=claim)
        if elem.get("expr") is not None:
            yield Hit("index-definition", "expression", rel=rel_of(rv), args=claim)
    for p in s.get("indexIncludingParams", ()):
        if (p.get("IndexElem") or {}).get("expr") is not None:
            yield Hit("index-definition", "include_expression", rel=rel_of(rv), args=claim)
    if s.get("whereClause") is not None:
        yield Hit("index-definition", "partial", rel=rel_of(rv), args=claim)
    columns = [(p.get("IndexElem") or {}).get("name") for p in s.get("indexParams", ())]
    if any(columns):  # their types are the schema's: decided when the whole input is read (resolve)
        yield Hit("index-definition", "key_type_unresolved", rel=rel_of(rv),
                  args={**claim, "table": ((rv or {}).get("schemaname"), (rv or {}).get("relname")),
                        "columns": [c for c in columns if c], "resolve": True})


def resolve(hit, schema, profile):
    """An index over columns whose type DSQL cannot key (json, jsonb), by the scanned schema's types."""
    if hit.variant != "key_type_unresolved":
        return hit
    table = schema.table(*hit.args["table"])
    if table is None:
        return None
    bad = [c for c in hit.args["columns"] if table.types.get(c) in UNKEYABLE]
    if not bad:
        return None
    hit.variant, hit.object, hit.detail = "key_type", f"{table.schema}.{table.name}.{bad[0]}", table.types[bad[0]]
    hit.args = {**hit.args, "key": "index"}
    return hit
