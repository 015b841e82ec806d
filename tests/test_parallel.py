"""Both cores give the same answer as one: order-dependent state (transactions, search_path, the schema
model) is kept in input order whatever the workers do."""

from __future__ import annotations

from dsql_audit.config import Config
from dsql_audit.scan import scan
from tests.conftest import FIXTURES, SHARED


def _key(r):
    return [(f.path, f.line, f.column, f.rule, f.message, f.object) for f in r.findings]


def test_two_workers_match_one(tmp_path):
    # a multi-file input large enough to be split into many batches
    for i in range(40):
        (tmp_path / f"m{i:02}.sql").write_text(
            f"SET search_path = s{i % 3}, public;\nBEGIN;\nCREATE TABLE t{i} (id serial PRIMARY KEY, r int "
            f"REFERENCES t{max(i - 1, 0)} (id));\nCREATE INDEX t{i}_r ON t{i} (r);\nINSERT INTO t{i} VALUES (1);\n"
            f"COMMIT;\nSELECT * FROM t{i} WHERE id = 1 FOR UPDATE;\n" * 30)
    paths = [str(tmp_path), str(FIXTURES / "migrations")]
    if (SHARED / "corpus" / "schemas").is_dir():
        paths.append(str(SHARED / "corpus" / "schemas"))
    cfg = Config(profile="2026-06-30")
    one = scan(paths, config=cfg, jobs=1)
    two = scan(paths, config=cfg, jobs=2)
    assert one.units == two.units > 3000
    assert _key(one) == _key(two)
    assert len(one.findings) > 1000
