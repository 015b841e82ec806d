"""A 1 GB log replayed end to end through the CLI, in flat memory: `dsql-audit replay BIG.log --schema
--data` on a stderr log of at least 1 GiB, with the replay process's resident memory sampled every few
seconds (the curve must stay flat, not grow with the log) and its peak from GNU time.

    python bench/replay_1gb.py [--gib 1.0] [--keep DIR]

The log is ../shared/corpus/captures/pgbadger/rds.log.bz2 (a real RDS-style stderr log of pgbench TPC-B
traffic, 106 MB decompressed) written end to end until the file holds --gib GiB; the pgbench tables are
seeded through --data (CSV, scale 10: 1,000,000 accounts) so the writes touch real rows and conflict where
DSQL would. Results: bench/results/replay_1gb.json and .md.
"""

from __future__ import annotations

import argparse
import bz2
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._util import RESULTS, TIME  # noqa: E402

SOURCE = ROOT.parent / "shared" / "corpus" / "captures" / "pgbadger" / "rds.log.bz2"
SCHEMA = """CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84));
CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88));
CREATE TABLE pgbench_history (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tid int, bid int, aid int,
  delta int, mtime timestamp, filler char(22));
"""


def build(tmp: Path, gib: float) -> tuple[Path, Path, Path]:
    text = bz2.decompress(SOURCE.read_bytes())
    log = tmp / "big.log"
    want = int(gib * (1 << 30))
    with open(log, "wb") as fh:
        while fh.tell() < want:
            part = text[: want - fh.tell()]
            fh.write(part[: part.rfind(b"\n") + 1] if len(part) < len(text) else part)
            if len(part) < len(text):
                break
    schema = tmp / "schema.sql"
    schema.write_text(SCHEMA)
    data = tmp / "data"
    data.mkdir()
    scale = 10
    with open(data / "pgbench_accounts.csv", "w") as fh:
        fh.write("aid,bid,abalance,filler\n")
        for aid in range(1, 100_000 * scale + 1):
            fh.write(f"{aid},{(aid - 1) // 100_000 + 1},0,\n")
    (data / "pgbench_tellers.csv").write_text("tid,bid,tbalance,filler\n" + "".join(
        f"{t},{(t - 1) // 10 + 1},0,\n" for t in range(1, 10 * scale + 1)))
    (data / "pgbench_branches.csv").write_text("bid,bbalance,filler\n" + "".join(
        f"{b},0,\n" for b in range(1, scale + 1)))
    return log, schema, data


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--keep", help="build the inputs here and keep them")
    args = ap.parse_args()
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} is not present")
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="replay-1gb-"))
    tmp.mkdir(parents=True, exist_ok=True)
    log, schema, data = build(tmp, args.gib)
    size = log.stat().st_size
    out = tmp / "report.json"
    cmd = [TIME, "-f", "%e %M", sys.executable, "-m", "dsql_audit.cli", "replay", str(log), "--schema", str(schema),
           "--data", str(data), "-f", "json", "-o", str(out), "--fail-on", "never"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    samples = []

    def sample():
        child = None
        while proc.poll() is None:
            if child is None:  # GNU time's child: the replay process itself
                try:
                    child = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
                except (OSError, IndexError, ValueError):
                    pass
            if child:
                samples.append((round(time.monotonic() - start, 1), rss_kb(child)))
                if len(samples) % 12 == 0:  # a long run leaves its curve behind even if stopped early
                    (tmp / "rss_samples.json").write_text(json.dumps(samples))
            time.sleep(5)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    wall = time.monotonic() - start
    t.join(timeout=10)
    last = err.strip().splitlines()[-1].split()
    peak_kb = int(last[1])
    summary = json.loads(out.read_text())["replay"]
    curve = [kb for _, kb in samples if kb]
    tenth = curve[len(curve) // 10] if curve else 0
    doc = {"log_bytes": size, "statements": summary["statements"], "sessions": summary["sessions"],
           "wall_s": round(wall, 1), "statements_per_s": round(summary["statements"] / wall),
           "mb_per_s": round(size / wall / 1e6, 2), "peak_rss_mb": round(peak_kb / 1024, 1),
           "rss_mb_at_10pct": round(tenth / 1024, 1), "rss_mb_at_end": round((curve[-1] if curve else 0) / 1024, 1),
           "rss_samples": samples[:: max(1, len(samples) // 40)],
           "occ_conflicts": summary["occ_conflicts"], "transactions_committed": summary["transactions_committed"],
           "seeded_rows": summary["seeded_rows"], "stderr_tail": err.strip().splitlines()[-3:-1]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay_1gb.json").write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / "replay_1gb.md").write_text(
        f"# 1 GB log replay\n\n{size / (1 << 30):.2f} GiB stderr log ({doc['statements']:,} statements, "
        f"{doc['sessions']:,} sessions), {doc['seeded_rows']:,} seeded rows: {doc['wall_s']:,} s "
        f"({doc['statements_per_s']:,} statements/s, {doc['mb_per_s']} MB/s). Replay process RSS: "
        f"{doc['rss_mb_at_10pct']} MB at 10% of the run, {doc['rss_mb_at_end']} MB at the end, peak "
        f"{doc['peak_rss_mb']} MB. {doc['occ_conflicts']:,} OCC conflicts, "
        f"{doc['transactions_committed']:,} transactions committed.\n")
    print(json.dumps({k: v for k, v in doc.items() if k != "rss_samples"}, indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
