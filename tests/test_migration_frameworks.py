"""Migration folders: each framework is detected and its transaction model applied.

fixtures/migrations/<framework>/expected.toml lists every transaction the framework runs and every
finding expected under --profile 2026-06-30 for the slugs the fixtures exercise.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dsql_audit.config import Config
from dsql_audit.scan import scan
from dsql_audit.sources import discover
from tests.conftest import FIXTURES

ROOT = FIXTURES / "migrations"
FRAMEWORKS = sorted(p.name for p in ROOT.iterdir() if (p / "expected.toml").is_file())
SLUGS = {"foreign-key", "trigger", "procedural-function", "extension", "custom-type", "sequence", "sync-index",
         "truncate", "multiple-ddl", "ddl-dml-mix", "alter-table", "unsupported-type"}


def _run(name):
    folder = ROOT / name
    expected = tomllib.loads((folder / "expected.toml").read_text())
    # the SQL these frameworks run (their Python/Ruby sources are tests/test_python_source.py's subject)
    result = scan([str(folder)], config=Config(profile="2026-06-30"), jobs=1, record_transactions=True,
                  aggregate=False, discovery=discover([str(folder)], app=False))
    return folder, expected, result


def _rel(folder: Path, path: str) -> str:
    return Path(path).resolve().relative_to(folder.resolve()).as_posix()


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_framework_detected(name):
    folder, expected, result = _run(name)
    detected = {_rel(folder, p): fw for p, fw in result.frameworks.items()}
    files = {t["file"] for t in expected.get("transactions", [])}
    assert files, "fixture lists no transactions"
    for f in files:
        assert detected.get(f) == expected["framework"], (f, detected.get(f))


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_transaction_model(name):
    folder, expected, result = _run(name)
    # Liquibase --rollback lines are comments on deploy; they are not scanned as statements
    want = sorted((t["file"], t["line"], t["statements"], t["ddl"], t["dml"])
                  for t in expected.get("transactions", []) + expected.get("other_transactions", [])
                  if t.get("phase") != "rollback")
    got = sorted((_rel(folder, p), line, len(kinds), kinds.count("ddl"), kinds.count("dml"))
                 for p, line, kinds in result.transactions)
    assert got == want


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_findings(name):
    folder, expected, result = _run(name)
    want = sorted((f["file"], f["line"], f["slug"]) for f in expected.get("findings", []))
    got = sorted({(_rel(folder, f.path), f.line, f.name) for f in result.findings if f.name in SLUGS})
    assert got == want
