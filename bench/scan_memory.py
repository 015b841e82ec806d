"""Peak memory of `dsql-audit scan` against the line structure of its input: it must grow with the input's
size, not with the length of its lines.

    python bench/scan_memory.py [--statements 10000] [--mb 5] [--big] [--big-mb 50] [--before DIR]
                                [--limit-gb 6] [--timeout 600] [--keep DIR]

Builds, in a temporary folder, the same statements laid out two ways — `per-line` (one statement per line)
and `one-line` (every statement on a single line, as minified or generated SQL has them):
  findings   --statements statements `CREATE TABLE tN (id int);` (~29 bytes each): every one is a finding
             (missing-primary-key), the worst case for what a scan keeps per finding;
  mixed      --mb MB (default 5; with --big, also --big-mb, default 50: the issue's 50 MB line) of a dump-like
             mix: tables with primary keys, ASYNC indexes, INSERTs, UPDATEs, and a table without a primary key
             every 100 statements.
Then runs `python -m dsql_audit scan FILE -f json -o OUT -q --fail-on never` on each as a subprocess, under an
address-space limit (prlimit --as, --limit-gb) and a time limit (--timeout), so a regression fails instead of
taking the machine down. Reported: exit code, wall seconds, peak RSS (GNU time %M: the largest single process,
the scan or one of its workers), findings in the JSON report, and the one-line / per-line ratio of peak RSS.
--before DIR runs each file a second time with PYTHONPATH=DIR: the code to compare against, e.g. the last
commit's (`git archive HEAD dsql_audit rules pyproject.toml | tar -x -C DIR`).
Results: bench/results/scan_memory.json and scan_memory.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import RESULTS, TIME, fmt, have_time  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def findings_statements(n: int):
    for i in range(n):
        yield f"CREATE TABLE t{i} (id int);"


def mixed_statements():
    """An endless dump-like mix; about one finding per 100 statements."""
    i = 0
    while True:
        g, r = divmod(i, 10)
        if r == 0:
            yield f"CREATE TABLE g{g} (id bigint PRIMARY KEY, name text NOT NULL, note text);"
        elif r == 1:
            yield f"CREATE INDEX ASYNC g{g}_name ON g{g} (name);"
        elif r < 8:
            yield f"INSERT INTO g{g} (id, name) VALUES ({r}, 'row {r} of group {g}');"
        elif r == 8:
            yield f"UPDATE g{g} SET note = 'seen' WHERE id = {r};"
        elif g % 10 == 0:
            yield f"CREATE TABLE h{g} (a int, b text);"
        else:
            yield f"SELECT count(*) FROM g{g} WHERE name LIKE 'row%';"
        i += 1


def write_pair(folder: Path, stem: str, statements, limit_bytes: int | None = None) -> tuple[Path, Path, int]:
    """The same statements one per line and all on one line; (per-line file, one-line file, statements)."""
    per_line, one_line = folder / f"{stem}-per-line.sql", folder / f"{stem}-one-line.sql"
    n = size = 0
    with open(per_line, "w", encoding="utf-8") as a, open(one_line, "w", encoding="utf-8") as b:
        for stmt in statements:
            a.write(stmt + "\n")
            b.write(stmt + " ")
            n += 1
            size += len(stmt) + 1
            if limit_bytes is not None and size >= limit_bytes:
                break
        b.write("\n")
    return per_line, one_line, n


def run_scan(path: Path, out: Path, *, pythonpath: str | None, limit_gb: float, timeout: float) -> dict:
    """One `python -m dsql_audit scan` under GNU time, prlimit and timeout."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [sys.executable, "-m", "dsql_audit", "scan", str(path), "-f", "json", "-o", str(out), "-q",
           "--fail-on", "never"]
    limit = ["prlimit", f"--as={int(limit_gb * 2**30)}", "--"]
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        argv = [TIME, "-f", "%M", "-o", rss.name, *limit, *cmd] if os.access(TIME, os.X_OK) else [*limit, *cmd]
        if out.exists():
            out.unlink()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                                cwd=path.parent, start_new_session=True)
        try:
            _, err = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the scan and its workers: their own session
            _, err = proc.communicate()
            timed_out = True
        wall = time.perf_counter() - t0
        last = (rss.read().strip().splitlines() or [""])[-1]
    rss_kb = int(last) if last.isdigit() else None
    findings = None
    if out.exists() and proc.returncode == 0:
        try:
            findings = len(json.loads(out.read_bytes())["findings"])
        except (ValueError, KeyError):
            pass
    tail = err.decode("utf-8", "replace").strip().splitlines()
    note = "timeout" if timed_out else ("MemoryError" if "MemoryError" in "".join(tail[-3:]) else
                                         (tail[-1][:120] if tail and proc.returncode not in (0, 1) else ""))
    return {"rc": None if timed_out else proc.returncode, "wall": wall, "rss_mb": rss_kb / 1024 if rss_kb else None,
            "findings": findings, "note": note}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--statements", type=int, default=10_000)
    ap.add_argument("--mb", type=float, default=5.0, help="size of the mixed files (with --big: the smaller one)")
    ap.add_argument("--big", action="store_true", help="also mixed files of --big-mb MB (the issue's 50 MB line)")
    ap.add_argument("--big-mb", type=float, default=50.0)
    ap.add_argument("--before", help="folder holding the code to compare against (run with PYTHONPATH=DIR)")
    ap.add_argument("--limit-gb", type=float, default=6.0, help="address-space limit of each scan")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds before a scan is killed")
    ap.add_argument("--keep", help="write the inputs here instead of a temporary folder")
    args = ap.parse_args()
    have_time()
    sizes = [args.mb, args.big_mb] if args.big else [args.mb]  # two sizes: the growth itself is seen
    versions = [("after", str(REPO))] + ([("before", str(Path(args.before).resolve()))] if args.before else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="scan-memory-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        cases = [("findings", *write_pair(folder, "findings", findings_statements(args.statements)))]
        for mb in sizes:
            cases.append(("mixed", *write_pair(folder, f"mixed-{mb:g}mb", mixed_statements(), int(mb * 1e6))))
        for shape, per_line, one_line, n in cases:
            for label, pythonpath in versions:
                cell = {"shape": shape, "statements": n, "mb": per_line.stat().st_size / 1e6, "code": label}
                for layout, path in (("per_line", per_line), ("one_line", one_line)):
                    r = run_scan(path, folder / "out.json", pythonpath=pythonpath, limit_gb=args.limit_gb,
                                 timeout=args.timeout)
                    cell[layout] = r
                    print(f"{shape:9} {label:6} {layout:9} {n:>9,} stmts {cell['mb']:7.1f} MB  rc={r['rc']} "
                          f"{r['wall']:7.2f} s  {fmt(r['rss_mb'])} MB  findings={r['findings']} {r['note']}",
                          flush=True)
                a, b = cell["per_line"]["rss_mb"], cell["one_line"]["rss_mb"]
                cell["ratio"] = b / a if a and b and cell["one_line"]["rc"] == 0 else None
                rows.append(cell)
            if not args.keep:
                per_line.unlink()
                one_line.unlink()
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    (RESULTS / "scan_memory.json").write_text(json.dumps(
        {"date": stamp, "limit_gb": args.limit_gb, "timeout": args.timeout, "rows": rows}, indent=2) + "\n")
    write_md(rows, stamp, args)


def _cell(r: dict) -> str:
    status = "timeout" if r["rc"] is None else f"rc {r['rc']}"
    if r["note"]:
        status += f" ({r['note']})"
    return f"{status} · {fmt(r['wall'])} s · {fmt(r['rss_mb'])} MB"


def write_md(rows: list, stamp: str, args) -> None:
    lines = [
        "# dsql-audit scan: peak memory against line structure", "",
        f"{stamp} · `python bench/scan_memory.py{' --big' if args.big else ''}"
        f"{' --before DIR' if args.before else ''}` · each scan under "
        f"`prlimit --as={args.limit_gb:g}GB` and a {args.timeout:g} s timeout · peak RSS = GNU time %M "
        "(the largest single process) · `scan FILE -f json -o OUT -q --fail-on never`", "",
        "*findings*: `CREATE TABLE tN (id int);` × N, each a finding; *mixed*: a dump-like mix (PK tables, ASYNC "
        "indexes, INSERT/UPDATE/SELECT; a finding per ~100 statements). *per-line*: one statement per line; "
        "*one-line*: the same statements on one line.", "",
        "| input | statements | MB | code | per-line: exit · time · peak RSS | one-line: exit · time · peak RSS "
        "| one-line / per-line RSS | findings |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        ratio = f"{c['ratio']:.2f}x" if c["ratio"] else "–"
        found = c["one_line"]["findings"] if c["one_line"]["findings"] is not None else c["per_line"]["findings"]
        lines.append(f"| {c['shape']} | {c['statements']:,} | {fmt(c['mb'])} | {c['code']} | {_cell(c['per_line'])} "
                     f"| {_cell(c['one_line'])} | {ratio} | {found if found is not None else '–'} |")
    lines += ["", "Reading: memory is linear in the input when the one-line column stays within ~2x of the per-line "
              "one, and both grow in proportion to the size. *before* (with `--before DIR`) is the code before the "
              "fix: each finding's code frame was the statement's line padded with one space per column before it, "
              "so on one long line every finding held up to the whole line (quadratic); it stops at the "
              "address-space limit with MemoryError (without a limit the kernel's OOM killer ends it). Times are "
              "on a machine whose 2 cores are shared with other work: compare them within a row, loosely."]
    (RESULTS / "scan_memory.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
