"""Fuzz every input path for a bounded time and record the figures for the README's Reliability section.

    python bench/fuzz.py [--seconds 60] [--only sql,wire]

Paths: sql, python, other (JS/TS/Java/Go/Ruby/C#/PHP/Kotlin), dsl (Prisma, Liquibase), capture (stderr,
csvlog, jsonlog, pg_stat_statements CSV/JSON), config, rule, filename (files and a folder named with random
bytes, scanned as a folder, every report format rendered), encoding (SQL as UTF-16 LE/BE and UTF-32 with a
byte-order mark, latin-1, UTF-8 with a BOM, or with a NUL byte; as .sql and inside Python), oneline (the
statements on one line, plus 600 short statements) — each mutated from the project's fixtures (and
../shared's corpus when present) through tests/fuzz_targets.py — and wire: a valid frontend message stream
(startup, simple and extended query) mutated and sent to a running `serve`, with cancel requests carrying
random keys interleaved; after every input the server must still answer a real client.
Per path: inputs tried, outcomes (ok / refused with a named error), crashes (deduplicated by message), the
slowest input, and the process's peak RSS. Results: bench/results/fuzz.json and fuzz.md."""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import struct
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import RESULTS  # noqa: E402
from tests.fuzz_targets import TARGETS, Crash, mutate, run_one, seeds  # noqa: E402


def fuzz_path(kind: str, seconds: float, rnd: random.Random) -> dict:
    pool = seeds(kind)
    out = {"inputs": 0, "ok": 0, "rejected": 0, "crashes": {}, "slowest_s": 0.0, "seeds": len(pool)}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data = mutate(rnd.choice(pool), rnd)
        started = time.monotonic()
        try:
            out[run_one(kind, data)] += 1
        except Crash as crash:
            out["crashes"].setdefault(str(crash)[:200], len(data))
        out["slowest_s"] = max(out["slowest_s"], time.monotonic() - started)
        out["inputs"] += 1
    out["slowest_s"] = round(out["slowest_s"], 3)
    return out


def _startup() -> bytes:
    body = struct.pack("!i", 196608) + b"user\0admin\0database\0postgres\0\0"
    return struct.pack("!i", len(body) + 4) + body


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


_VALID = (_msg(b"Q", b"CREATE TABLE IF NOT EXISTS fz (id int PRIMARY KEY, v text)\0")
          + _msg(b"Q", b"SELECT 1; SELECT 'x'::text\0")
          + _msg(b"P", b"s1\0SELECT v FROM fz WHERE id = $1\0\0\x01\0\0\0\x17")
          + _msg(b"B", b"p1\0s1\0\0\x01\0\0\0\x01\0\0\0\x017\0\0")
          + _msg(b"D", b"Pp1\0") + _msg(b"E", b"p1\0\0\0\0\0") + _msg(b"S", b"")
          + _msg(b"Q", b"BEGIN; INSERT INTO fz VALUES (1, 'a') ON CONFLICT DO NOTHING; COMMIT\0")
          + _msg(b"X", b""))


def fuzz_wire(seconds: float, rnd: random.Random) -> dict:
    import psycopg

    from dsql_audit.engine import Engine
    from dsql_audit.serve import Server

    out = {"inputs": 0, "ok": 0, "rejected": 0, "crashes": {}, "slowest_s": 0.0, "seeds": 1, "cancels": 0}
    with Engine(max_connections=80) as engine:
        server = Server(engine, port=0).start()
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                data = _startup() + mutate(_VALID, rnd) if rnd.random() < 0.9 else mutate(_startup() + _VALID, rnd)
                started = time.monotonic()
                s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                try:
                    s.sendall(data)
                    if rnd.random() < 0.3:  # a cancel request with a random key, from a second connection
                        c = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                        c.sendall(struct.pack("!iiii", 16, 80877102, rnd.randrange(2**31), rnd.randrange(2**31)))
                        c.close()
                        out["cancels"] += 1
                    s.shutdown(socket.SHUT_WR)
                    got = b""
                    while chunk := s.recv(65536):
                        got += chunk
                    out["rejected" if b"08P01" in got else "ok"] += 1
                except socket.timeout:
                    out["crashes"].setdefault("the server did not answer or close within 10 s", len(data))
                except OSError:
                    out["ok"] += 1  # reset by the server: it dropped the client
                finally:
                    s.close()
                out["slowest_s"] = max(out["slowest_s"], time.monotonic() - started)
                out["inputs"] += 1
                if out["inputs"] % 50 == 0:  # everyone else is still served
                    with psycopg.connect(server.dsn, autocommit=True, connect_timeout=10) as conn:
                        if conn.execute("SELECT 41 + 1").fetchone() != (42,):
                            out["crashes"].setdefault("a real client got a wrong answer", 0)
        finally:
            server.stop()
        internal = [f for f in engine.findings if f.get("rule") == "internal-error"]
        if internal:
            out["crashes"].setdefault("internal-error findings in the engine", len(internal))
    out["slowest_s"] = round(out["slowest_s"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60, help="per path")
    ap.add_argument("--only", default="", help="comma-separated paths")
    ap.add_argument("--seed", type=int, default=20261123)
    args = ap.parse_args()
    kinds = [k for k in [*TARGETS, "wire"] if not args.only or k in args.only.split(",")]
    rnd = random.Random(args.seed)
    results = {}
    for kind in kinds:
        results[kind] = fuzz_wire(args.seconds, rnd) if kind == "wire" else fuzz_path(kind, args.seconds, rnd)
        print(kind, {k: v for k, v in results[kind].items() if k != "crashes"}, "crashes:",
              len(results[kind]["crashes"]), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    out = {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "seconds_per_path":
           args.seconds, "seed": args.seed, "peak_rss_mb": peak, "paths": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fuzz.json").write_text(json.dumps(out, indent=2) + "\n")
    md = [f"# Fuzzing every input path: {args.seconds:.0f} s each", "",
          f"{out['date']} · {out['cpus']} CPUs · seed {args.seed} · peak RSS of the fuzzing process {peak} MB", "",
          "| path | seeds | inputs tried | handled | refused with a named error | crashes | slowest input s |",
          "|---|---|---|---|---|---|---|"]
    for kind, r in results.items():
        md.append(f"| {kind} | {r['seeds']} | {r['inputs']:,} | {r['ok']:,} | {r['rejected']:,} | "
                  f"{len(r['crashes'])} | {r['slowest_s']} |")
    crashes = [(k, c) for k, r in results.items() for c in r["crashes"]]
    md += ["", "Crashes: " + ("none." if not crashes else "; ".join(f"{k}: {c}" for k, c in crashes))]
    (RESULTS / "fuzz.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
