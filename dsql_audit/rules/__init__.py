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
from functools import lru_cache

from dsql_audit.catalog import load_catalog
from dsql_audit.facts import Facts
from dsql_audit.model import Hit


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
    """(statement checks, node → hits, function → hits) built once from the catalog."""
    catalog = load_catalog()
    checks = []
    by_node: dict = {}
    by_func: dict = {}
    for rule in catalog:
        mod = rule_module(rule.slug)
        if mod is not None and hasattr(mod, "check"):
            checks.append((rule.slug, mod.check))
        raw = rule.data.get("match", {})
        for variant, spec in raw.items():
            for node in spec.get("nodes", ()):
                by_node.setdefault(node, []).append((rule.slug, variant))
            for fn in spec.get("functions", ()):
                by_func.setdefault(fn.lower(), []).append((rule.slug, variant))
    return checks, by_node, by_func


def statement_hits(facts: Facts) -> list[Hit]:
    """Every hit the statement rules find in one statement (profile-independent)."""
    checks, by_node, by_func = _plan()
    hits: list[Hit] = []
    if facts.node is not None:
        for slug, variant in by_node.get(facts.node, ()):
            hits.append(Hit(slug, variant))
        if by_func:
            called = facts.func_names()
            if called and not called.isdisjoint(by_func):
                for call in facts.nodes("FuncCall"):
                    parts = [p.get("String", {}).get("sval", "") for p in call.get("funcname", ())]
                    name = parts[-1].lower() if parts else ""
                    for slug, variant in by_func.get(name, ()):
                        hits.append(Hit(slug, variant, offset=facts.char_offset(call.get("location")),
                                        detail=name))
    for slug, check in checks:
        try:
            hits.extend(check(facts))
        except Exception as exc:  # a rule bug must not stop the scan; it is reported
            hits.append(Hit("internal-error", detail=f"rule {slug}: {type(exc).__name__}: {exc}"))
    return hits
