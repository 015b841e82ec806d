"""foreign-key: REFERENCES / FOREIGN KEY, judged by the profile (supported since 2026-08-26)."""

import re

from dsql_audit.facts import constraints, names, rel_of, relname
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
PROBES = ('"CONSTR_FOREIGN"',)


_KEYWORD = re.compile(r"\b(FOREIGN\s+KEY|REFERENCES)\b", re.I)
_ACTIONS = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def _keyword_offset(facts, con) -> int | None:
    start = facts.char_offset(con.get("location"))
    if start is None:
        return None
    m = _KEYWORD.search(facts.text, start, start + 400)
    return m.start() if m else start


def fk_name(table: str, con: dict, column: str | None) -> str:
    if con.get("conname"):
        return con["conname"]
    cols = names(con.get("fk_attrs")) or ([column] if column else [])
    return f"{table.split('.')[-1]}_{'_'.join(cols)}_fkey"


def _unique_column_sets(facts) -> list:
    """The column sets CREATE TABLE makes unique (primary key, UNIQUE): a child keyed by its foreign key is
    1:1 with its parent, and a cascade reaches one row."""
    out = []
    for con, _rv, _where, column in constraints(facts):
        if con.get("contype") in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
            cols = names(con.get("keys")) or ([column] if column else [])
            if cols:
                out.append({c.lower() for c in cols})
    return out


def check(facts):
    unique = None
    for con, rv, where, column in constraints(facts):
        if con.get("contype") != "CONSTR_FOREIGN":
            continue
        table = relname(rv)
        obj = fk_name(table, con, column)
        target = relname(con.get("pktable"))
        at = _keyword_offset(facts, con)
        if where == "add_constraint":
            variant = "add_not_valid" if con.get("skip_validation") else "add_constraint"
        else:
            variant = "inline"
        cols = names(con.get("fk_attrs")) or ([column] if column else [])
        claim = f"fk:{table.split('.')[-1].lower()}.{','.join(c.lower() for c in cols)}"
        yield Hit("foreign-key", variant, offset=at, rel=rel_of(rv), object=obj, detail=f"{table} → {target}",
                  args={"claim": claim})
        if variant == "add_constraint":  # before foreign keys existed NOT VALID would not help: say that there
            yield Hit("foreign-key", "add_not_valid", offset=at, rel=rel_of(rv), object=obj,
                      detail=f"{table} → {target}", args={"claim": claim})
        if unique is None:
            unique = _unique_column_sets(facts)
        if {c.lower() for c in cols} in unique:
            continue  # one child row per parent: nothing fans out
        action = _ACTIONS.get(con.get("fk_del_action"))
        if action:
            yield Hit("foreign-key", "cascade", offset=at, rel=rel_of(rv), object=obj,
                      detail=f"ON DELETE {action} on {table} → {target}")
        # ON UPDATE acts only when the referenced key changes: a primary key (no column list) practically never
        # does (Prisma writes ON UPDATE CASCADE on every relation), a natural key named by its columns may
        action = _ACTIONS.get(con.get("fk_upd_action"))
        if action and con.get("pk_attrs"):  # is that column list the target's primary key? the schema says
            ref = con.get("pktable") or {}
            yield Hit("foreign-key", "cascade_update", offset=at, rel=rel_of(rv), object=obj,
                      detail=f"ON UPDATE {action} on {table} → {target} ({', '.join(names(con.get('pk_attrs')))})",
                      args={"resolve": True, "table": (ref.get("schemaname"), ref.get("relname")),
                            "columns": [c.lower() for c in names(con.get("pk_attrs"))]})


def resolve(hit, schema, profile):
    """ON UPDATE on a key that is the referenced table's primary key: not reported (it does not change)."""
    if hit.variant != "cascade_update":
        return hit
    table = schema.table(*hit.args["table"])
    if table is not None and table.pk and [c.lower() for c in table.pk] == hit.args["columns"]:
        return None
    return hit
