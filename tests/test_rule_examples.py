"""Every rule's bad/good examples in rules/ run as tests: the bad one fires exactly that rule at the
line the catalog names; the good one fires nothing at all."""

from __future__ import annotations

import pytest

from dsql_audit.catalog import load_catalog
from tests.conftest import findings_for


def _findings(example, text: str, tmp_path_factory):
    """SQL examples are scanned as SQL text; application-source examples (``file``) as that file in a repo."""
    if not example.file:
        return findings_for(text, profile=example.profile)
    from dsql_audit.profile import load_profile
    from dsql_audit.scan import scan

    root = tmp_path_factory.mktemp("example")
    path = root / example.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    result = scan([str(root)], profile=load_profile(example.profile))
    assert not result.errors, result.errors
    return result.findings

CATALOG = load_catalog()
CASES = [(r.slug, i, e) for r in CATALOG if r.scope not in ("runtime", "workload", "live") for i, e in enumerate(r.examples)]
# runtime rules (what only executing finds: OCC, transaction bounds) run their examples through the engine
RUNTIME = [(r.slug, i, e) for r in CATALOG if r.scope == "runtime" for i, e in enumerate(r.examples)]


def test_every_rule_has_docs_and_examples():
    for r in CATALOG:
        assert r.why and r.fix and r.docs.startswith("http"), r.slug
        if r.slug != "internal-error":
            assert r.examples, f"{r.slug} has no bad/good example"
            assert any(e.bad for e in r.examples) and any(e.good for e in r.examples), r.slug


@pytest.mark.parametrize("slug,i,example", CASES, ids=[f"{s}[{i}]" for s, i, _ in CASES])
def test_bad_example_fires_exactly_this_rule(slug, i, example, tmp_path_factory):
    if not example.bad:
        pytest.skip("no bad example")
    found = _findings(example, example.expand(example.bad).lstrip("\n"), tmp_path_factory)
    assert found, f"{slug}: bad example produced no finding"
    assert {f.name for f in found} == {slug, *example.also}, [(f.name, f.line, f.message) for f in found]
    if example.bad_line:
        assert example.bad_line in {f.line for f in found}, [(f.line, f.message) for f in found]


@pytest.mark.parametrize("slug,i,example", CASES, ids=[f"{s}[{i}]" for s, i, _ in CASES])
def test_good_example_is_clean(slug, i, example, tmp_path_factory):
    if not example.good:
        pytest.skip("no good example")
    found = _findings(example, example.expand(example.good).lstrip("\n"), tmp_path_factory)
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


# workload rules (judged from a capture's figures) run their examples as pg_stat_statements exports replayed
# against the example's schema
WORKLOAD = [(r.slug, i, e) for r in CATALOG if r.scope == "workload" for i, e in enumerate(r.examples)]


def _replay_example(tmp_path, example, capture: str):
    from dsql_audit.replay import replay

    csv_path = tmp_path / "pg_stat_statements.csv"
    csv_path.write_text(capture.lstrip("\n"))
    schema = None
    if example.schema:
        schema = tmp_path / "schema.sql"
        schema.write_text(example.schema)
    result = replay([str(csv_path)], schema=str(schema) if schema else None, profile=example.profile)
    assert not result.errors, result.errors
    return [f for f in result.findings if f.path == str(csv_path)]  # the capture's, not the schema's


@pytest.mark.parametrize("slug,i,example", WORKLOAD, ids=[f"{s}[{i}]" for s, i, _ in WORKLOAD])
def test_workload_bad_example_fires_this_rule(tmp_path, slug, i, example):
    found = _replay_example(tmp_path, example, example.bad)
    assert {f.name for f in found} == {slug, *example.also}, [(f.name, f.message) for f in found]
    assert all(f.queryid and f.occurrences > 1 for f in found)  # weighted by the entry's calls


@pytest.mark.parametrize("slug,i,example", WORKLOAD, ids=[f"{s}[{i}]" for s, i, _ in WORKLOAD])
def test_workload_good_example_is_clean(tmp_path, slug, i, example):
    found = _replay_example(tmp_path, example, example.good)
    assert not found, [(f.name, f.message) for f in found]


# live rules (what only a running database shows) run their examples in a real PostgreSQL: the SQL sets up a
# database, `dsql-audit catalog` reads it
LIVE = [(r.slug, i, e) for r in CATALOG if r.scope == "live" for i, e in enumerate(r.examples)]


@pytest.fixture(scope="module")
def plain_postgres(tmp_path_factory):
    from dsql_audit.resources import pgserver

    srv = pgserver().get_server(str(tmp_path_factory.mktemp("live")), postgres_version=16)
    yield srv.get_uri().split("host=", 1)[1]
    srv.cleanup()


def _live_names(host, name, sql):
    import psycopg

    from dsql_audit.live import read

    with psycopg.connect(f"postgresql://postgres@/postgres?host={host}", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"postgresql://postgres@/{name}?host={host}", autocommit=True) as c:
        c.execute(sql)
    return {f.name for f in read(f"postgresql://postgres@/{name}?host={host}").findings}


@pytest.mark.parametrize("slug,i,example", LIVE, ids=[f"{s}[{i}]" for s, i, _ in LIVE])
def test_live_examples(plain_postgres, slug, i, example):
    assert slug in _live_names(plain_postgres, f"bad_{i}_{slug.replace('-', '_')}", example.bad)
    assert slug not in _live_names(plain_postgres, f"good_{i}_{slug.replace('-', '_')}", example.good)
