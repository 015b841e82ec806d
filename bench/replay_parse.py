"""Capture parsing throughput: dsql-audit's streaming log reader against pgbadger parsing the same log, in
one run. The log is ../shared/corpus/captures/pgbadger/rds.log.bz2 (a real RDS-style stderr log, ~114,600
statements) unpacked and repeated to --mb megabytes.

    python bench/replay_parse.py [--mb 200]

Reported: seconds, MB/s and peak RSS of each (each in its own process, measured by GNU time), and the
statements found. pgbadger (Debian package `pgbadger`) runs with one job and a JSON report to /dev/null.
Results: bench/results/replay_parse.json and .md.
"""

from __future__ import annotations

import argparse
import bz2
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import run_process  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "corpus" / "captures" / "pgbadger" / "rds.log.bz2"
RESULTS = ROOT / "bench" / "results"
PREFIX = "%t:%r:%u@%d:[%p]:"
OURS = ("import sys; from dsql_audit.replay.captures import read_capture, Event\n"
        "n = sum(1 for e in read_capture(sys.argv[1], 'stderr') if isinstance(e, Event)); print(n)")


def timed(cmd: list[str]) -> tuple[float, int | None, str]:
    """Seconds, peak RSS (MB, GNU time's view of the tool itself) and stdout of one run."""
    with tempfile.TemporaryFile("w+") as out:
        run = run_process(cmd, stdout=out)
        out.seek(0)
        return run.wall, (run.max_rss_kb // 1024 if run.max_rss_kb else None), out.read().strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    args = ap.parse_args()
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} is not present")
    tmp = Path(tempfile.mkdtemp())
    log = tmp / "rds.log"
    one = bz2.decompress(SOURCE.read_bytes())
    with open(log, "wb") as fh:
        while fh.tell() < args.mb * 1024 * 1024:
            fh.write(one)
    size = log.stat().st_size / (1024 * 1024)
    out = {"log_mb": round(size, 1)}
    secs, rss, found = timed([sys.executable, "-c", OURS, str(log)])
    out["dsql-audit"] = {"seconds": round(secs, 2), "mb_per_s": round(size / secs, 1), "peak_rss_mb": rss,
                         "statements": int(found or 0)}
    if shutil.which("pgbadger"):
        secs, rss, _ = timed(["pgbadger", "-j", "1", "-f", "stderr", "--prefix", PREFIX, "-x", "json",
                              "-o", str(tmp / "out.json"), "-q", str(log)])
        out["pgbadger"] = {"seconds": round(secs, 2), "mb_per_s": round(size / secs, 1), "peak_rss_mb": rss}
        out["speed_ratio"] = round(out["pgbadger"]["seconds"] / out["dsql-audit"]["seconds"], 2)
    shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay_parse.json").write_text(json.dumps(out, indent=2) + "\n")
    md = [f"# Capture parsing: {out['log_mb']} MB stderr log (rds.log repeated)", "",
          "| parser | seconds | MB/s | peak RSS MB |", "|---|---|---|---|"]
    for name in ("dsql-audit", "pgbadger"):
        if name in out:
            r = out[name]
            md.append(f"| {name} | {r['seconds']} | {r['mb_per_s']} | {r['peak_rss_mb']} |")
    if "speed_ratio" in out:
        md += ["", f"dsql-audit parses {out['speed_ratio']}× as fast as pgbadger "
               f"({out['dsql-audit']['statements']} statements)."]
    (RESULTS / "replay_parse.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
