"""`dsql-audit catalog` on a database with many tables: the catalog read is a fixed number of queries, so its
time grows with the rows those queries return, not with one round trip per table — in one run.

    python bench/catalog_tables.py [--tables 5000]

Each table has a primary key, a text column with a non-C collation, a foreign key to the previous table and
a secondary index (so every query has rows to return). Results: bench/results/catalog_tables.json and .md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import RESULTS  # noqa: E402


def main() -> None:
    import psycopg

    from dsql_audit.live import QUERIES, read
    from dsql_audit.resources import pgserver

    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", type=int, default=5000)
    n = ap.parse_args().tables
    tmp = tempfile.mkdtemp()
    srv = pgserver().get_server(tmp, postgres_version=16)
    try:
        uri = f"postgresql://postgres@/postgres?host={srv.get_uri().split('host=', 1)[1]}"
        with psycopg.connect(uri, autocommit=True) as c:
            c.execute("SET client_min_messages = warning")
            for i in range(n):
                fk = f", parent bigint REFERENCES t{i - 1} (id)" if i else ""
                c.execute(f'CREATE TABLE t{i} (id bigint PRIMARY KEY, name text COLLATE "POSIX"{fk})')
                c.execute(f"CREATE INDEX t{i}_name ON t{i} (name)")
            c.execute("ANALYZE")
        t0 = time.perf_counter()
        result = read(uri)
        seconds = time.perf_counter() - t0
    finally:
        srv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    doc = {"tables": n, "catalog_queries": len(QUERIES), "seconds": round(seconds, 2),
           "findings": len(result.findings), "errors": len(result.errors)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "catalog_tables.json").write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / "catalog_tables.md").write_text(
        f"# catalog read of {n:,} tables\n\n{len(QUERIES)} catalog queries in one read-only transaction: "
        f"{seconds:.2f} s, {len(result.findings):,} findings.\n")
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
