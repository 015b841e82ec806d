"""`serve` under load: 100 concurrent pgbench clients of mixed traffic for --minutes (default 10), watching for
leaks (client connections, PostgreSQL backends, file descriptors, threads, memory) and checking that every
lost optimistic-concurrency race reached the client as 40001 and nothing else.

    python bench/serve_load.py [--minutes 10] [--clients 100]

Traffic, at once: half the clients run a TPC-B-like transaction (three UPDATEs by key and an INSERT, hot
branch rows: OCC conflicts, retried by pgbench --max-tries), half run select-only. Every 10 s the serve
process's open fds, threads and RSS, its open client connections and the embedded PostgreSQL's backends are
sampled. Results: bench/results/serve_load.json and serve_load.md."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench._util import RESULTS  # noqa: E402
from dsql_audit.engine import Engine  # noqa: E402
from dsql_audit.resources import pgserver  # noqa: E402
from dsql_audit.serve import Server  # noqa: E402

PGBIN = Path(pgserver().__file__).parent / "pginstall" / "bin"
SCHEMA = ["CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88))",
          "CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84))",
          "CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))",
          "CREATE TABLE pgbench_history (hid uuid PRIMARY KEY DEFAULT gen_random_uuid(), tid int, bid int, "
          "aid int, delta int, mtime timestamp, filler char(22))",
          "INSERT INTO pgbench_branches SELECT g, 0 FROM generate_series(1, 100) g",
          "INSERT INTO pgbench_tellers SELECT g, 1 + g % 100, 0 FROM generate_series(1, 1000) g",
          "INSERT INTO pgbench_accounts SELECT g, 1 + g % 100, 0, '' FROM generate_series(1, 2000) g"]
TPCB = ("\\set aid random(1, 100000)\n\\set tid random(1, 1000)\n\\set bid random(1, 100)\n"
        "\\set delta random(-5000, 5000)\nBEGIN;\n"
        "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n"
        "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
        "UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;\n"
        "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;\n"
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);\n"
        "END;\n")
SELECT = "\\set aid random(1, 100000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
WRITE = "\\set aid random(1, 100000)\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n"
GROUPS = (("tpcb", 0.2), ("write", 0.3), ("select", 0.5))  # share of the clients


def process_figures(pids=("self",)) -> dict:
    """Open fds, threads and RSS summed over serve's processes (this one, and its workers)."""
    fds = threads = rss = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:  # a worker being started again
            continue
        rss += int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) // 1024
        threads += int(re.search(r"Threads:\s+(\d+)", status).group(1))
    return {"fds": fds, "threads": threads, "rss_mb": rss}


def pgbench(dsn: str, script: Path, clients: int, seconds: int, out: dict, key: str) -> None:
    r = subprocess.run([str(PGBIN / "pgbench"), "-n", "-c", str(clients), "-j", "2", "-T", str(seconds),
                        "-M", "extended", "--max-tries=1000", "--failures-detailed", "-f", str(script), dsn],
                       capture_output=True, text=True)
    out[key] = {"rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr[-4000:]}


def figure(text: str, pattern: str) -> float:
    m = re.search(pattern, text)
    return float(m.group(1)) if m else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2, help="serve's worker processes")
    args = ap.parse_args()
    seconds = int(args.minutes * 60)
    work = Path(tempfile.mkdtemp(prefix="serve_load_"))
    (work / "tpcb.sql").write_text(TPCB)
    (work / "select.sql").write_text(SELECT)
    (work / "write.sql").write_text(WRITE)
    with Engine(max_connections=args.clients + 60) as engine:
        server = Server(engine, port=0, workers=args.workers).start()

        def serve_pids() -> list:
            return ["self"] + ([w.process.pid for w in server.pool.workers] if server.pool else [])

        with psycopg.connect(server.dsn, autocommit=True) as c:
            for sql in SCHEMA:
                c.execute(sql)
        # DSQL caps a transaction at 3,000 rows: the rest of the accounts go in 3,000-row batches
        with psycopg.connect(server.dsn, autocommit=True) as c:
            for lo in range(2001, 100001, 3000):
                c.execute(f"INSERT INTO pgbench_accounts SELECT g, 1 + g % 10, 0, '' FROM "
                          f"generate_series({lo}, {min(lo + 2999, 100000)}) g")
        time.sleep(1)
        before = {**process_figures(serve_pids()), "clients": server.admitted,
                  "backends": engine._admin.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                                                    "'client backend'").fetchone()[0]}
        results: dict = {}
        sizes = [round(args.clients * share) for _, share in GROUPS]
        sizes[-1] = args.clients - sum(sizes[:-1])
        runs = [threading.Thread(target=pgbench, args=(server.dsn, work / f"{name}.sql", n, seconds, results, name))
                for (name, _), n in zip(GROUPS, sizes)]
        started = time.time()
        for t in runs:
            t.start()
        samples = []
        while any(t.is_alive() for t in runs):
            time.sleep(10)
            with engine._lock:
                backends = engine._admin.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                                                 "'client backend'").fetchone()[0]
            samples.append({"t": round(time.time() - started), **process_figures(serve_pids()), "backends": backends,
                            "clients": server.admitted})
        for t in runs:
            t.join()
        time.sleep(2)  # let the last disconnects land
        with engine._lock:
            backends_after = engine._admin.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                                                   "'client backend'").fetchone()[0]
        after = {**process_figures(serve_pids()), "backends": backends_after, "clients": server.admitted}
        occ = [f for f in engine.findings if f.get("sqlstate") == "40001"]
        other = {}
        for f in engine.findings:
            if f.get("sqlstate") != "40001":
                other[f"{f.get('sqlstate')} {f.get('rule')}"] = other.get(f"{f.get('sqlstate')} {f.get('rule')}", 0) + 1
        server.stop()
    out = {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "clients": args.clients,
           "workers": args.workers,
           "seconds": seconds, "before": before, "after": after, "samples": samples,
           "engine_40001": len(occ), "engine_other_findings": other}
    for key, _ in GROUPS:
        text = results[key]["stdout"]
        out[key] = {"rc": results[key]["rc"], "tps": figure(text, r"tps = ([\d.]+)"),
                    "latency_ms": figure(text, r"latency average = ([\d.]+) ms"),
                    "processed": int(figure(text, r"number of transactions actually processed: (\d+)")),
                    "failed": int(figure(text, r"number of failed transactions: (\d+)")),
                    "serialization_failures": int(figure(text, r"number of serialization failures: (\d+)")),
                    "other_failures": int(figure(text, r"number of other failures: (\d+)")),
                    "retried": int(figure(text, r"number of transactions retried: (\d+)")),
                    "retries": int(figure(text, r"total number of retries: (\d+)")),
                    "aborted_clients": results[key]["stderr"].count("aborted in command")}
        if results[key]["rc"] != 0:
            out[key]["stderr"] = results[key]["stderr"][-1500:]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve_load.json").write_text(json.dumps(out, indent=2) + "\n")
    peak = max(samples, key=lambda s: s["rss_mb"]) if samples else after
    md = [f"# serve under load: {args.clients} clients, {seconds // 60} min of mixed pgbench traffic", "",
          f"{out['date']} · {out['cpus']} CPUs · serve on {args.workers} worker process(es) (figures below: summed "
          "over serve's processes) · 20% of the clients TPC-B-like (100 branch rows: OCC conflicts, "
          "retried by --max-tries), 30% single-row UPDATEs, 50% select-only; extended protocol", "",
          "| traffic | tps | latency ms | transactions | failed | serialization failures (retried) | other failures |",
          "|---|---|---|---|---|---|---|"]
    for key, _ in GROUPS:
        v = out[key]
        md.append(f"| {key} | {v['tps']:.0f} | {v['latency_ms']} | {v['processed']:,} | {v['failed']} | "
                  f"{v['serialization_failures']:,} ({v['retries']:,} retries) | {v['other_failures']} |")
    md += ["", "| | before | peak | after |", "|---|---|---|---|",
           f"| serve process fds | {before['fds']} | {max(s['fds'] for s in samples) if samples else '-'} | {after['fds']} |",
           f"| serve threads | {before['threads']} | {max(s['threads'] for s in samples) if samples else '-'} | "
           f"{after['threads']} |",
           f"| serve RSS MB | {before['rss_mb']} | {peak['rss_mb']} | {after['rss_mb']} |",
           f"| serve RSS MB at the first and last sample | {samples[0]['rss_mb'] if samples else '-'} | | "
           f"{samples[-1]['rss_mb'] if samples else '-'} |",
           f"| PostgreSQL client backends | {before['backends']} | "
           f"{max(s['backends'] for s in samples) if samples else '-'} | {after['backends']} |",
           f"| serve's admitted clients | {before['clients']} | "
           f"{max(s['clients'] for s in samples) if samples else '-'} | {after['clients']} |", "",
           f"The engine recorded {len(occ):,} OCC losses, each sent as SQLSTATE 40001; other findings: "
           f"{other or 'none'}."]
    (RESULTS / "serve_load.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
