"""session-setting: SET of parameters DSQL refuses, and set_config().

DSQL accepts an allow-list of parameters (rules/session-setting.toml);
pg_dump's session SETs fall outside it, so in a dump they are reported once.
Transaction isolation settings are the isolation-level rule's.
"""

from functools import lru_cache

from dsql_audit.catalog import rule_data
from dsql_audit.facts import const_value, names
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"VariableSetStmt"}
PROBES = ('"set_config"',)


_OWNED_ELSEWHERE = {"transaction", "session characteristics", "default_transaction_isolation"}


@lru_cache(maxsize=1)
def _allowed():
    d = rule_data("session-setting")
    return frozenset(d["allowed"]), tuple(d.get("allowed_prefixes", ()))


@lru_cache(maxsize=1)
def _refused():
    return frozenset(rule_data("session-setting").get("refused", ()))


def allowed(name: str) -> bool:
    names_ok, prefixes = _allowed()
    return name in names_ok or name.startswith(prefixes)


def check(facts):
    node, s = facts.node, facts.stmt
    if node == "VariableSetStmt":
        name = (s.get("name") or "").lower()
        if s.get("kind") == "VAR_RESET_ALL" or not name or name in _OWNED_ELSEWHERE:
            return
        if name == "role" or name == "session_authorization":
            yield Hit("session-setting", "role", detail=name)
        elif not allowed(name):
            variant = "set" if name in _refused() else "set_unlisted"
            yield Hit("session-setting", variant, detail=name, object=name)
    elif node == "SelectStmt" and "set_config" in facts.func_names():
        for call in facts.nodes("FuncCall"):
            parts = names(call.get("funcname"))
            if parts and parts[-1].lower() == "set_config":
                args = call.get("args") or ()
                param = const_value(args[0]) if args else None
                yield Hit("session-setting", "set_config", offset=facts.char_offset(call.get("location")),
                          detail=str(param), object=str(param))
