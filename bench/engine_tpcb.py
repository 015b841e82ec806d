"""Cost of the DSQL layer: a TPC-B-like workload (pgbench's transaction) on 4 sessions, through the engine
and straight into the same embedded PostgreSQL 16, alternating in one run.

    python bench/engine_tpcb.py [--seconds 10] [--rounds 2] [--sessions 4]

Each transaction: BEGIN; UPDATE accounts; SELECT accounts; UPDATE tellers; UPDATE branches; INSERT history;
COMMIT — over 100,000 accounts, 400 tellers, 40 branches. Two workloads:

  disjoint   each session works on its own branches, tellers and accounts: no two transactions collide, so
             the ratio is the cost of the DSQL layer itself (the headline figure);
  contended  any session may pick any branch (TPC-B's hot rows). Here the sides do different work by design:
             PostgreSQL makes a colliding write wait and aborts it at once, while on DSQL (and the engine) the
             loser runs to its COMMIT before it learns it lost — so this ratio also prices DSQL's semantics.

Both sides run at REPEATABLE READ and retry a transaction that fails with 40001 (the raw side also on 40P01).
Reported: committed transactions per second for each side, the throughput ratio (engine / raw), retries, and
the cold start-up time of the engine. Results: bench/results/engine_tpcb.json and .md.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsql_audit.engine import DsqlError, Engine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ACCOUNTS, TELLERS, BRANCHES = 100_000, 400, 40
SCHEMA = [
    "CREATE TABLE branches (bid int PRIMARY KEY, bbalance int)",
    "CREATE TABLE tellers (tid int PRIMARY KEY, bid int, tbalance int)",
    "CREATE TABLE accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))",
    "CREATE TABLE history (hid uuid PRIMARY KEY DEFAULT gen_random_uuid(), tid int, bid int, aid int, "
    "delta int, mtime timestamp)",
]


def transaction(rng: random.Random, lane: int | None = None, lanes: int = 1) -> list[str]:
    """pgbench's TPC-B transaction; with ``lane`` the keys come from that session's share only."""
    if lane is None:
        aid, tid, bid = rng.randint(1, ACCOUNTS), rng.randint(1, TELLERS), rng.randint(1, BRANCHES)
    else:
        pick = lambda n: lane + 1 + lanes * rng.randrange(n // lanes)  # noqa: E731 - keys ≡ lane (mod lanes)
        aid, tid, bid = pick(ACCOUNTS), pick(TELLERS), pick(BRANCHES)
    delta = rng.randint(-5000, 5000)
    return ["BEGIN",
            f"UPDATE accounts SET abalance = abalance + {delta} WHERE aid = {aid}",
            f"SELECT abalance FROM accounts WHERE aid = {aid}",
            f"UPDATE tellers SET tbalance = tbalance + {delta} WHERE tid = {tid}",
            f"UPDATE branches SET bbalance = bbalance + {delta} WHERE bid = {bid}",
            f"INSERT INTO history (tid, bid, aid, delta, mtime) VALUES ({tid}, {bid}, {aid}, {delta}, "
            "CURRENT_TIMESTAMP)",
            "COMMIT"]


def load(engine: Engine) -> None:
    import psycopg

    with psycopg.connect(engine.uri, autocommit=True) as c:  # bulk setup straight into PostgreSQL
        for sql in SCHEMA:
            c.execute(sql)
        c.execute(f"INSERT INTO branches SELECT g, 0 FROM generate_series(1, {BRANCHES}) g")
        c.execute(f"INSERT INTO tellers SELECT g, 1 + (g - 1) % {BRANCHES}, 0 FROM generate_series(1, {TELLERS}) g")
        c.execute(f"INSERT INTO accounts SELECT g, 1 + (g - 1) % {BRANCHES}, 0, '' "
                  f"FROM generate_series(1, {ACCOUNTS}) g")
        c.execute("VACUUM ANALYZE")


def drive(make_runner, sessions: int, seconds: float, disjoint: bool) -> dict:
    counts = [0] * sessions
    retries = [0] * sessions
    stop = time.monotonic() + seconds

    def worker(i):
        run, close = make_runner()
        rng = random.Random(i)
        try:
            while time.monotonic() < stop:
                txn = transaction(rng, i if disjoint else None, sessions)
                while True:
                    if run(txn):
                        counts[i] += 1
                        break
                    retries[i] += 1
        finally:
            close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(sessions)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    return {"transactions": sum(counts), "retries": sum(retries), "seconds": round(elapsed, 2),
            "tps": round(sum(counts) / elapsed, 1)}


def engine_runner(engine: Engine):
    def make():
        s = engine.session()

        def run(txn):
            try:
                for sql in txn:
                    s.execute(sql)
                return True
            except DsqlError as e:
                if e.sqlstate != "40001":
                    raise
                if s.in_txn:
                    s.execute("ROLLBACK")
                return False
        return run, s.close
    return make


def raw_runner(engine: Engine):
    import psycopg

    def make():
        c = psycopg.connect(engine.uri, autocommit=True)

        def run(txn):
            try:
                for sql in txn:
                    c.execute(sql)
                return True
            except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
                c.execute("ROLLBACK")
                return False
        return run, c.close
    return make


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sessions", type=int, default=4)
    args = ap.parse_args()

    t0 = time.monotonic()
    engine = Engine().start()
    startup = time.monotonic() - t0
    out = {"sessions": args.sessions, "seconds_per_round": args.seconds, "engine_cold_start_seconds": round(startup, 2)}
    md = [f"# Engine overhead: TPC-B-like, {args.sessions} sessions, {args.rounds} × {args.seconds:g} s per side", "",
          "| workload | side | tps (mean of rounds) | transactions | retries (40001) |", "|---|---|---|---|---|"]
    try:
        load(engine)
        for workload in ("disjoint", "contended"):
            rows = {"raw": [], "engine": []}
            for _ in range(args.rounds):  # alternate, so drift on the machine is shared
                rows["raw"].append(drive(raw_runner(engine), args.sessions, args.seconds, workload == "disjoint"))
                rows["engine"].append(drive(engine_runner(engine), args.sessions, args.seconds,
                                            workload == "disjoint"))
            raw_tps = sum(r["tps"] for r in rows["raw"]) / args.rounds
            eng_tps = sum(r["tps"] for r in rows["engine"]) / args.rounds
            out[workload] = {"rounds": rows, "raw_tps": round(raw_tps, 1), "engine_tps": round(eng_tps, 1),
                             "ratio": round(eng_tps / raw_tps, 3),
                             "layer_cost_percent": round(100 * (1 - eng_tps / raw_tps), 1)}
            for side, key, tps in (("PostgreSQL 16 direct", "raw", raw_tps), ("DSQL engine", "engine", eng_tps)):
                md.append(f"| {workload} | {side} | {tps:.0f} | {sum(r['transactions'] for r in rows[key])} | "
                          f"{sum(r['retries'] for r in rows[key])} |")
        out["findings"] = sorted({f["rule"] for f in engine.findings})
    finally:
        engine.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine_tpcb.json").write_text(json.dumps(out, indent=2) + "\n")
    md += [""]
    for workload in ("disjoint", "contended"):
        w = out[workload]
        md.append(f"- {workload}: throughput ratio engine/direct **{w['ratio']}** "
                  f"(the DSQL layer costs {w['layer_cost_percent']}%)")
    md += [f"- engine cold start: {out['engine_cold_start_seconds']} s", ""]
    (RESULTS / "engine_tpcb.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
