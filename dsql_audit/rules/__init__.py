"""The rule engine.

Three scopes, one flow:
- statement rules look at one statement's facts and return hits;
- transaction rules see the statements of one transaction in order;
- schema rules run once at the end over the schema the whole input builds
  (quotas, and checks that need a table's primary key from another file).

Simple rules are pure data: a variant in ``rules/<slug>.toml`` may list the
parse-tree ``nodes`` or the ``functions`` that trigger it. Rules with logic
have a module here named after the slug (``foreign-key`` → ``foreign_key``)
exposing ``check(facts)``; schema-scope modules expose ``finish(schema)``
and may ``resolve(hit, schema, profile)`` hits that needed the whole input.
"""

from __future__ import annotations

import importlib
import re
from functools import lru_cache

from dsql_audit.catalog import load_catalog
from dsql_audit.facts import Facts
from dsql_audit.model import Hit


_WORD = re.compile(r'"\w+"')
_QUOTED = re.compile(r'"(\w+)"')


def module_name(slug: str) -> str:
    return slug.replace("-", "_")


@lru_cache(maxsize=None)
def rule_module(slug: str):
    try:
        return importlib.import_module(f"dsql_audit.rules.{module_name(slug)}")
    except ModuleNotFoundError as exc:
        if exc.name != f"dsql_audit.rules.{module_name(slug)}":
            raise
        return None


@lru_cache(maxsize=1)
def _plan():
    """Dispatch tables built once from the catalog and the rule modules.

    A module says when its check can fire: NODES (top-level statement types), PROBES (strings
    in pglast's JSON), FUNCTIONS (names of functions called) and/or ``wants(facts)``; a module
    with none of them sees every statement. One regex pass over the JSON finds every probe."""
    catalog = load_catalog()
    always, custom = [], []
    by_node: dict = {}
    by_probe: dict = {}
    by_func: dict = {}
    data_node: dict = {}
    data_func: dict = {}
    for rule in catalog:
        mod = rule_module(rule.slug)
        if mod is not None and hasattr(mod, "check"):
            entry = (rule.slug, mod.check)
            nodes = getattr(mod, "NODES", ())
            probes = getattr(mod, "PROBES", ())
            funcs = getattr(mod, "FUNCTIONS", ())
            funcs = funcs() if callable(funcs) else funcs
            for n in nodes:
                by_node.setdefault(n, []).append(entry)
            for p in probes:
                by_probe.setdefault(p, []).append(entry)
            for f in funcs:
                by_func.setdefault(f, []).append(entry)
            if hasattr(mod, "wants"):
                custom.append((entry, mod.wants))
            elif not (nodes or probes or funcs):
                always.append(entry)
        for variant, spec in rule.data.get("match", {}).items():
            for node in spec.get("nodes", ()):
                data_node.setdefault(node, []).append((rule.slug, variant))
            for fn in spec.get("functions", ()):
                data_func.setdefault(fn.lower(), []).append((rule.slug, variant))
    # '"word"' probes are looked up in the set of the JSON's quoted words (one regex pass);
    # anything else ('"relpersistence":"t"') is a substring test
    tokens = {p[1:-1]: by_probe[p] for p in by_probe if _WORD.fullmatch(p)}
    substrings = tuple((p, by_probe[p]) for p in by_probe if not _WORD.fullmatch(p))
    return always, custom, by_node, (tokens, substrings), by_func, None, data_node, data_func


def statement_hits(facts: Facts) -> list[Hit]:
    """Every hit the statement rules find in one statement (profile-independent)."""
    always, custom, by_node, (tokens, substrings), by_func, _, data_node, data_func = _plan()
    hits: list[Hit] = []
    called = facts.func_names()
    if facts.node is not None:
        matched = data_node.get(facts.node, ())
        if matched:
            # the statement's own relation names the finding (CREATE FOREIGN TABLE t, MERGE INTO t)
            stmt = facts.stmt or {}
            rv = stmt.get("relation") or (stmt.get("base") or {}).get("relation")
            rel = (rv.get("schemaname"), rv.get("relname")) if isinstance(rv, dict) and rv.get("relname") else None
            for slug, variant in matched:
                hits.append(Hit(slug, variant, rel=rel))
        if called and not called.isdisjoint(data_func):
            for call in facts.nodes("FuncCall"):
                parts = [p.get("String", {}).get("sval", "") for p in call.get("funcname", ())]
                name = parts[-1].lower() if parts else ""
                for slug, variant in data_func.get(name, ()):
                    hits.append(Hit(slug, variant, offset=facts.char_offset(call.get("location")),
                                    detail=name))
    run: dict = {}
    for entry in by_node.get(facts.node, ()):
        run[entry] = None
    js = facts.js
    if js:
        for word in tokens.keys() & set(_QUOTED.findall(js)):
            for entry in tokens[word]:
                run[entry] = None
        for p, entries in substrings:
            if p in js:
                for entry in entries:
                    run[entry] = None
    for f in called:
        for entry in by_func.get(f, ()):
            run[entry] = None
    for entry in always:
        run[entry] = None
    for entry, wants in custom:
        if entry not in run and wants(facts):
            run[entry] = None
    for slug, check in run:
        try:
            hits.extend(check(facts))
        except Exception as exc:  # a rule bug must not stop the scan; it is reported
            hits.append(Hit("internal-error", detail=f"rule {slug}: {type(exc).__name__}: {exc}"))
    return hits
