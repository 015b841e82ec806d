"""text-search: full-text search functions (DSQL has no text search configurations)."""

from functools import lru_cache

from dsql_audit.catalog import rule_data
from dsql_audit.facts import const_value, names
from dsql_audit.model import Hit

_TS_OBJECTS = {"OBJECT_TSCONFIGURATION", "OBJECT_TSDICTIONARY", "OBJECT_TSPARSER", "OBJECT_TSTEMPLATE"}


@lru_cache(maxsize=1)
def _functions():
    return frozenset(rule_data("text-search")["functions"])


NODES = {"DefineStmt", "AlterTSConfigurationStmt", "AlterTSDictionaryStmt"}


def FUNCTIONS():  # noqa: N802 - read by the rule engine like NODES/PROBES
    return set(_functions())


def check(facts):
    node, s = facts.node, facts.stmt
    if node == "DefineStmt" and s.get("kind") in _TS_OBJECTS or node in (
            "AlterTSConfigurationStmt", "AlterTSDictionaryStmt"):
        yield Hit("text-search", "configuration")
        return
    funcs = _functions()
    called = facts.func_names()
    if not called or called.isdisjoint(funcs):
        return
    for call in facts.nodes("FuncCall"):
        parts = names(call.get("funcname"))
        name = parts[-1].lower() if parts else ""
        if name not in funcs:
            continue
        args = call.get("args") or ()
        config = const_value(args[0]) if len(args) >= 2 else None
        if isinstance(config, str) and config:
            yield Hit("text-search", "function", offset=facts.char_offset(call.get("location")),
                      detail=config.split(".")[-1])
        else:
            yield Hit("text-search", "function_default_config",
                      offset=facts.char_offset(call.get("location")), detail=name)
