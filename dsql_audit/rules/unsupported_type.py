"""unsupported-type: column types DSQL cannot store; numeric precision; char/varchar sizes.

The type lists are data (rules/unsupported-type.toml); json/jsonb are
judged by the profile (column types since May/June 2026).
"""

import re
from functools import lru_cache

from dsql_audit.catalog import rule_data
from dsql_audit.facts import column_defs, names, rel_of
from dsql_audit.model import Hit
from dsql_audit.rules._types import display, typmods


@lru_cache(maxsize=1)
def _data():
    d = rule_data("unsupported-type")
    return frozenset(d["types"]), frozenset(d.get("geometric_functions", ()))


@lru_cache(maxsize=1)
def _probe():
    """Any type this rule judges, named anywhere in pglast's JSON (else the tree is not needed)."""
    unsupported, _ = _data()
    alts = "|".join(sorted(unsupported | {"json", "jsonb", "numeric", "bpchar", "varchar"}))
    return re.compile(f'"sval":"(?:{alts})"|"arrayBounds"')


def FUNCTIONS():  # noqa: N802 - read by the rule engine like NODES/PROBES
    return set(_data()[1])


def wants(facts) -> bool:
    return facts.node in ("CreateStmt", "AlterTableStmt", "CreateDomainStmt", "CreateForeignTableStmt") \
        and _probe().search(facts.js) is not None


def _column_types(facts):
    for cd, rv, _ in column_defs(facts):
        yield cd.get("typeName") or {}, rel_of(rv), cd.get("colname")
    node, s = facts.node, facts.stmt
    if node == "CreateDomainStmt":
        parts = [p["String"]["sval"] for p in s.get("domainname", ())]
        yield s.get("typeName") or {}, (parts[0] if len(parts) > 1 else None, parts[-1]), "__domain__"
    elif node == "AlterTableStmt":
        for c in s.get("cmds", ()):
            cmd = c.get("AlterTableCmd", {})
            if cmd.get("subtype") == "AT_AlterColumnType":
                cd = (cmd.get("def") or {}).get("ColumnDef") or {}
                yield cd.get("typeName") or {}, rel_of(s.get("relation")), cmd.get("name")


def check(facts):
    unsupported, geometric = _data()
    for tn, rel, obj in _column_types(facts):
        if not tn:
            continue
        if obj == "__domain__":  # a domain over the type: same refusal, worded for a domain
            base = (names(tn.get("names")) or ["?"])[-1]
            if tn.get("arrayBounds") or base in unsupported:
                yield Hit("unsupported-type", "domain", offset=facts.char_offset(tn.get("location")), rel=rel,
                          detail=display(tn))
            continue
        # the parser folds unquoted names to lower case; a quoted "Name" is a user's type, not name
        base = (names(tn.get("names")) or ["?"])[-1]
        at = facts.char_offset(tn.get("location"))
        if tn.get("arrayBounds"):
            yield Hit("unsupported-type", "array", offset=at, rel=rel, object=obj, detail=display(tn))
        elif base in unsupported:
            yield Hit("unsupported-type", "column", offset=at, rel=rel, object=obj, detail=display(tn))
        elif base == "json":
            yield Hit("unsupported-type", "json", offset=at, rel=rel, object=obj, detail="json")
        elif base == "jsonb":
            yield Hit("unsupported-type", "jsonb", offset=at, rel=rel, object=obj, detail="jsonb")
        elif base == "numeric":
            mods = typmods(tn)
            if mods and mods[0] > 38:
                variant = "numeric_precision_1000" if mods[0] > 1000 else "numeric_precision_38"
                yield Hit("unsupported-type", variant, offset=at, rel=rel, object=obj, detail=str(mods[0]))
        elif base in ("bpchar", "varchar"):
            mods = typmods(tn)
            limit = 4096 if base == "bpchar" else 65535
            if mods and mods[0] > limit:
                yield Hit("unsupported-type", "char_length", offset=at, rel=rel, object=obj,
                          detail=f"{display(tn)}({mods[0]}) exceeds {limit} bytes")
    called = facts.func_names()
    if called and not called.isdisjoint(geometric):
        for call in facts.nodes("FuncCall"):
            parts = call.get("funcname", ())
            name = parts[-1].get("String", {}).get("sval", "").lower() if parts else ""
            if name in geometric:
                yield Hit("unsupported-type", "geometric_function",
                          offset=facts.char_offset(call.get("location")), detail=name)
