"""Accuracy on 15 real schemas: counts from a scan under --profile 2026-06-30 (foreign keys are
findings there) match ground_truth.json, computed from a real PostgreSQL catalog after loading each file.
"""

from __future__ import annotations

import re

import json

import pytest

from tests.conftest import SHARED, absent_param, shared_path
from tests.corpus_counts import scan_counts, truth_counts


def _schemas():
    p = SHARED / "corpus" / "schemas" / "ground_truth.json"
    if not p.exists():
        return []
    return json.loads(p.read_text())


SCHEMAS = _schemas()
CASES = SCHEMAS or [absent_param("corpus/schemas/ground_truth.json")]
IDS = [g["name"] for g in SCHEMAS] or ["no-corpus"]


@pytest.mark.parametrize("gt", CASES, ids=IDS)
def test_counts_match_catalog(gt):
    path = shared_path("corpus", "schemas", gt["file"])
    got = scan_counts(path)
    want = truth_counts(gt)
    assert got == want


def test_corpus_present_or_skipped():
    shared_path("corpus", "schemas", "ground_truth.json")
    assert len(SCHEMAS) == 15


@pytest.mark.parametrize("gt", CASES, ids=IDS)
def test_explicit_transaction_blocks_match_server_log(gt):
    """multiple-ddl / ddl-dml-mix on BEGIN … COMMIT blocks agree with the server's own statement log
    (statements grouped by virtual transaction id while psql loaded the file)."""
    from dsql_audit.config import Config
    from dsql_audit.scan import scan

    path = shared_path("corpus", "schemas", gt["file"])
    log = gt["server_statement_log"]
    fs = scan([str(path)], config=Config(profile="2026-06-30", select=["multiple-ddl", "ddl-dml-mix"]),
              jobs=1).findings
    # each refused statement is a finding; the blocks are told apart by their first line
    explicit_multi = {re.search(r"first at line (\d+)", f.message).group(1) for f in fs
                      if f.name == "multiple-ddl" and "(BEGIN" in f.message}
    assert len(explicit_multi) == log["explicit_blocks_with_multiple_ddl"]
    mixing = {re.search(r"transaction from line (\d+)", f.message).group(1) for f in fs if f.name == "ddl-dml-mix"}
    assert len(mixing) == log["explicit_blocks_mixing_ddl_and_dml"]
    assert not [f for f in fs if "(BEGIN" not in f.message]  # psql autocommits outside BEGIN
