"""Every rule's bad/good examples in rules/ run as tests: the bad one fires exactly that rule at the
line the catalog names; the good one fires nothing at all."""

from __future__ import annotations

import pytest

from dsql_audit.catalog import load_catalog
from tests.conftest import findings_for

CATALOG = load_catalog()
CASES = [(r.slug, i, e) for r in CATALOG if r.scope != "runtime" for i, e in enumerate(r.examples)]
# runtime rules (what only executing finds: OCC, transaction bounds) run their examples through the engine
RUNTIME = [(r.slug, i, e) for r in CATALOG if r.scope == "runtime" for i, e in enumerate(r.examples)]


def test_every_rule_has_docs_and_examples():
    for r in CATALOG:
        assert r.why and r.fix and r.docs.startswith("http"), r.slug
        if r.slug != "internal-error":
            assert r.examples, f"{r.slug} has no bad/good example"
            assert any(e.bad for e in r.examples) and any(e.good for e in r.examples), r.slug


@pytest.mark.parametrize("slug,i,example", CASES, ids=[f"{s}[{i}]" for s, i, _ in CASES])
def test_bad_example_fires_exactly_this_rule(slug, i, example):
    if not example.bad:
        pytest.skip("no bad example")
    found = findings_for(example.expand(example.bad).lstrip("\n"), profile=example.profile)
    assert found, f"{slug}: bad example produced no finding"
    assert {f.name for f in found} == {slug, *example.also}, [(f.name, f.line, f.message) for f in found]
    if example.bad_line:
        assert example.bad_line in {f.line for f in found}, [(f.line, f.message) for f in found]


@pytest.mark.parametrize("slug,i,example", CASES, ids=[f"{s}[{i}]" for s, i, _ in CASES])
def test_good_example_is_clean(slug, i, example):
    if not example.good:
        pytest.skip("no good example")
    found = findings_for(example.expand(example.good).lstrip("\n"), profile=example.profile)
    assert not found, [(f.name, f.line, f.message) for f in found]


@pytest.mark.parametrize("slug,i,example", RUNTIME, ids=[f"{s}[{i}]" for s, i, _ in RUNTIME])
def test_runtime_bad_example_fails_with_this_rule(scripted_engine, slug, i, example):
    from dsql_audit.engine.script import run_script

    engine = scripted_engine()
    outcomes = run_script(engine, example.bad)
    rule = CATALOG[slug]
    variant = rule.variant(example.variant or next(iter(rule.variants)))
    assert {f["rule"] for f in engine.findings} == {slug}, engine.findings
    failed = [o for o in outcomes if not o.ok]
    assert failed and failed[-1].sqlstate == variant.sqlstate, [(o.sql, o.sqlstate, o.message) for o in outcomes]
    if variant.dsql_message and "{" not in variant.dsql_message:
        assert failed[-1].message == variant.dsql_message


@pytest.mark.parametrize("slug,i,example", RUNTIME, ids=[f"{s}[{i}]" for s, i, _ in RUNTIME])
def test_runtime_good_example_runs_clean(scripted_engine, slug, i, example):
    from dsql_audit.engine.script import run_script

    engine = scripted_engine()
    outcomes = run_script(engine, example.good)
    assert all(o.ok for o in outcomes), [(o.sql, o.sqlstate, o.message) for o in outcomes if not o.ok]
    assert not engine.findings
