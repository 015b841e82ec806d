"""Every rule's bad/good examples in rules/ run as tests: the bad one fires exactly that rule at the
line the catalog names; the good one fires nothing at all."""

from __future__ import annotations

import pytest

from dsql_audit.catalog import load_catalog
from tests.conftest import findings_for

CATALOG = load_catalog()
CASES = [(r.slug, i, e) for r in CATALOG for i, e in enumerate(r.examples)]


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
