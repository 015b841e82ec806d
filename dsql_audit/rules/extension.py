"""extension: CREATE EXTENSION, and use of what extensions provide (functions, types, opclasses).

Which function, type or operator class comes from which extension is data
(``[data.*]`` in rules/extension.toml), so ``uuid_generate_v4()`` is reported
as a use of uuid-ossp.
"""

import re
from functools import lru_cache

from dsql_audit.catalog import rule_data
from dsql_audit.facts import names
from dsql_audit.model import Hit


@lru_cache(maxsize=1)
def _type_probe():
    """A regex over pglast's JSON: is any extension type named at all? (skips the walk)."""
    types = _maps()[1]
    alts = "|".join(re.escape(t) for t in sorted(types))
    return re.compile(f'"sval":"(?:{alts})"', re.I) if alts else None


@lru_cache(maxsize=1)
def _maps():
    data = rule_data("extension")
    lower = lambda m: {k.lower(): v for k, v in m.items()}  # noqa: E731
    return lower(data.get("functions", {})), lower(data.get("types", {})), lower(data.get("opclasses", {}))


NODES = {"CreateExtensionStmt", "AlterExtensionStmt", "AlterExtensionContentsStmt", "DropStmt", "LoadStmt"}
PROBES = ('"opclass"',)


def FUNCTIONS():  # noqa: N802 - read by the rule engine like NODES/PROBES
    return set(_maps()[0])


def wants(facts) -> bool:
    probe = _type_probe()
    return probe is not None and probe.search(facts.js) is not None


def check(facts):
    node = facts.node
    if node == "CreateExtensionStmt":
        yield Hit("extension", "create", object=facts.stmt.get("extname"), detail=facts.stmt.get("extname"))
        return
    if node in ("AlterExtensionStmt", "AlterExtensionContentsStmt"):
        yield Hit("extension", "create", object=facts.stmt.get("extname"), detail=facts.stmt.get("extname"))
        return
    if node == "DropStmt" and facts.stmt.get("removeType") == "OBJECT_EXTENSION":
        for obj in facts.stmt.get("objects", ()):
            name = obj.get("String", {}).get("sval")
            yield Hit("extension", "drop", object=name, detail=name)
        return
    if node == "LoadStmt":
        yield Hit("extension", "load", detail=facts.stmt.get("filename"))
        return
    funcs, types, opclasses = _maps()
    called = facts.func_names()
    if called and not called.isdisjoint(funcs):
        for call in facts.nodes("FuncCall"):
            parts = names(call.get("funcname"))
            name = parts[-1].lower() if parts else ""
            if name in funcs and not (len(parts) > 1 and parts[0] == "pg_catalog"):
                yield Hit("extension", "function", offset=facts.char_offset(call.get("location")),
                          detail=f"{name}() is provided by the {funcs[name]} extension",
                          args={"extension": funcs[name], "name": name})
    probe = _type_probe()
    if probe is not None and probe.search(facts.js):
        for tn in facts.nodes("TypeName"):
            parts = names(tn.get("names"))
            name = parts[-1].lower() if parts else ""
            if name in types:
                yield Hit("extension", "type", offset=facts.char_offset(tn.get("location")),
                          detail=f"type {name} is provided by the {types[name]} extension",
                          args={"extension": types[name], "name": name})
    if node == "IndexStmt":
        for p in facts.stmt.get("indexParams", ()):
            op = names(p.get("IndexElem", {}).get("opclass"))
            if op and op[-1].lower() in opclasses:
                yield Hit("extension", "opclass",
                          detail=f"operator class {op[-1]} is provided by the {opclasses[op[-1].lower()]} extension",
                          args={"extension": opclasses[op[-1].lower()], "name": op[-1]})
