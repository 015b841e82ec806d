"""Speed and memory of dsql-audit on the schema corpus, against the parse-tree ceiling, dsql-lint and squawk.

    python bench/run.py [--quick] [--reps N]

Every measurement of one repetition runs back to back (A B C … A B C …), so machine drift is shared.
One warm-up repetition is discarded; the reported figure is the median of the rest.

What is measured, on each corpus file, on the whole corpus and on an empty file (fixed start-up cost):
  ceiling      in-process: read + dsql_audit.sqltext.split_text + json.loads(pglast.parser.parse_sql_json(stmt))
               for every statement: the least any pglast-based linter must do
  split        in-process: split_text alone; pglast.parser.split alone (n/a where the file has psql meta-commands)
  library      in-process: dsql_audit.scan.scan([path], jobs=1) (work without interpreter start-up)
  ours -j1     subprocess: dsql-audit scan PATH -f json -q -j 1 (whole process, one core)
  ours -j2     subprocess, whole corpus only: … -j 2 (both cores)
  dsql-lint    subprocess: dsql-lint --format json FILE…
  squawk       subprocess: squawk --reporter json FILE…
Peak RSS is GNU time's %M for each process (for -j 2: the largest single process, not the sum); CPU is
user + system time from wait4.
Results: bench/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pglast
from pglast import parser

from _util import RESULTS, corpus_files, find_exe, fmt, have_time, mb, median, run_process, version
from dsql_audit.scan import scan
from dsql_audit.sqltext import split_text


# ---------------------------------------------------------------- in-process measurements

def read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def ceiling(paths: list[Path]) -> None:
    for p in paths:
        for stmt in split_text(read(p)):
            if stmt.kind == "sql":
                json.loads(parser.parse_sql_json(stmt.text))


def split_ours(paths: list[Path]) -> None:
    for p in paths:
        split_text(read(p))


def split_pglast(paths: list[Path]) -> None:
    for p in paths:
        parser.split(read(p))


def library(paths: list[Path]) -> None:
    scan([str(p) for p in paths], jobs=1)


def timed(fn, paths) -> float | None:
    gc.collect()
    t0 = time.perf_counter()
    try:
        fn(paths)
    except parser.ParseError:  # pglast.parser.split refuses psql meta-commands
        return None
    return time.perf_counter() - t0


IN_PROCESS = {"ceiling": ceiling, "split": split_ours, "pglast.split": split_pglast, "library": library}


# ---------------------------------------------------------------- targets and tools

class Target:
    def __init__(self, name: str, files: list[Path], folder: Path | None = None):
        self.name, self.files, self.folder = name, files, folder
        self.bytes = sum(p.stat().st_size for p in files)
        stmts = [s for p in files for s in split_text(read(p))]
        self.statements = sum(1 for s in stmts if s.kind == "sql")
        self.parse_errors = 0
        for s in stmts:
            if s.kind == "sql":
                try:
                    parser.parse_sql_json(s.text)
                except parser.ParseError:
                    self.parse_errors += 1


def process_tools(ours: str, lint: str | None, squawk: str | None, whole: bool) -> dict:
    """name → function(target) → argv."""
    tools = {"ours -j1": lambda t: [ours, "scan", *(map(str, [t.folder] if t.folder else t.files)),
                                    "-f", "json", "-q", "-j", "1"]}
    if whole:
        tools["ours -j2"] = lambda t: [ours, "scan", str(t.folder), "-f", "json", "-q", "-j", "2"]
    if lint:
        tools["dsql-lint"] = lambda t: [lint, "--format", "json", *map(str, t.files)]
    if squawk:
        tools["squawk"] = lambda t: [squawk, "--reporter", "json", *map(str, t.files)]
    return tools


def check_output(name: str, argv: list[str]) -> None:
    """Warm-up sanity check: the tool ran and printed JSON."""
    out = subprocess.run(argv, capture_output=True, text=True)
    try:
        json.loads(out.stdout)
    except json.JSONDecodeError:
        print(f"  ! {name}: exit {out.returncode}, no JSON on stdout: {out.stderr.strip()[:200]}", file=sys.stderr)


# ---------------------------------------------------------------- the run

def bench(targets: list[Target], exes: dict, reps: int, failed: dict, warmup: int = 1) -> dict:
    samples: dict = {t.name: {} for t in targets}
    for rep in range(warmup + reps):
        keep = rep >= warmup
        print(f"repetition {rep + 1}/{warmup + reps}{'' if keep else ' (warm-up)'}", file=sys.stderr)
        for t in targets:
            row = samples[t.name]
            for name, fn in IN_PROCESS.items():
                s = timed(fn, t.files)
                if keep:
                    row.setdefault(name, []).append(s)
            for name, argv_of in process_tools(exes["ours"], exes["lint"], exes["squawk"], t.folder is not None).items():
                argv = argv_of(t)
                if not keep and t.name != "(empty file)":
                    check_output(f"{name} on {t.name}", argv)
                r = run_process(argv)
                if r.rc not in (0, 1):  # a crash (or the package mid-edit): keep it out of the medians
                    print(f"  ! {name} on {t.name}: exit {r.rc}, run discarded", file=sys.stderr)
                    failed[(t.name, name)] = failed.get((t.name, name), 0) + 1
                elif keep:
                    row.setdefault(name, []).append(r)
    return samples


def summarise(t: Target, row: dict) -> dict:
    out = {"bytes": t.bytes, "statements": t.statements, "parse_errors": t.parse_errors, "tools": {}}
    for name, runs in row.items():
        if not runs or any(r is None for r in runs):
            out["tools"][name] = None
            continue
        procs = not isinstance(runs[0], float)
        wall = median([r.wall if procs else r for r in runs])
        entry = {"median_s": wall, "runs_s": [r.wall if procs else r for r in runs],
                 "mb_per_s": mb(t.bytes) / wall if wall and t.bytes else None,
                 "statements_per_s": t.statements / wall if wall and t.statements else None}
        if procs:
            entry["cpu_s"] = median([r.cpu for r in runs])
            rss = [r.max_rss_kb for r in runs if r.max_rss_kb]
            entry["max_rss_mb"] = max(rss) / 1024 if rss else None
        out["tools"][name] = entry
    out["ratios"] = ratios(out["tools"])
    return out


RATIOS = {"library ÷ ceiling": ("library", "ceiling"), "ours ÷ ceiling": ("ours -j1", "ceiling"),
          "ours ÷ dsql-lint": ("ours -j1", "dsql-lint"), "ours ÷ squawk": ("ours -j1", "squawk"),
          "-j2 ÷ -j1": ("ours -j2", "ours -j1")}


def ratios(tools: dict) -> dict:
    """Time ratios: > 1 means the first is slower."""
    out = {}
    for label, (a, b) in RATIOS.items():
        ta, tb = tools.get(a), tools.get(b)
        out[label] = ta["median_s"] / tb["median_s"] if ta and tb and tb["median_s"] else None
    return out


# ---------------------------------------------------------------- reporting

COLS = ["ceiling", "library", "ours -j1", "ours -j2", "dsql-lint", "squawk"]


def headline(row: dict, cols: list[str]) -> list[str]:
    out = []
    for c in cols:
        t = row["tools"].get(c)
        if t:
            out.append(f"| {c} | {fmt(t['median_s'], 3)} | {fmt(t['mb_per_s'])} | {fmt(t['statements_per_s'])} | "
                       f"{fmt(t.get('max_rss_mb'), 1)} |")
    return out


def markdown(res: dict) -> str:
    rows = res["targets"]
    cols = [c for c in COLS if any(r["tools"].get(c) for r in rows.values())]
    m = res["meta"]
    lines = [
        "# dsql-audit benchmark",
        "",
        f"{m['date']} · {m['machine']} · median of {m['reps']} after {m['warmup']} warm-up, interleaved · "
        + " · ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        "Times are wall-clock seconds. *ceiling* and *library* run in-process (no interpreter start-up); the rest are "
        "whole processes. Ratios are time ÷ time: **> 1 means dsql-audit is slower** by that factor, < 1 faster.",
        "",
        "## Headline: the whole corpus in one invocation",
        "",
        "| | s | MB/s | statements/s | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
        *headline(rows["corpus"], cols),
        "",
        "Ratios: " + " · ".join(f"{k} = {fmt(v)}" for k, v in rows["corpus"]["ratios"].items()) + ".",
        "",
        "## Wall time (s)",
        "",
        "| input | KB | stmts | " + " | ".join(cols) + " | split | pglast.split |",
        "|---" * (3 + len(cols) + 2) + "|",
    ]
    for name, r in rows.items():
        cells = [fmt((r["tools"].get(c) or {}).get("median_s"), 3) for c in cols + ["split", "pglast.split"]]
        lines.append(f"| {name} | {r['bytes'] / 1024:,.0f} | {r['statements']:,} | " + " | ".join(cells) + " |")
    lines += ["", "## Throughput: MB/s · statements/s", "", "| input | " + " | ".join(cols) + " |",
              "|---" * (1 + len(cols)) + "|"]
    for name, r in rows.items():
        cells = []
        for c in cols:
            t = r["tools"].get(c)
            cells.append(f"{fmt(t['mb_per_s'])} · {fmt(t['statements_per_s'])}" if t else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Ratios (time ÷ time; > 1 = dsql-audit slower)", "", "| input | " + " | ".join(RATIOS) + " |",
              "|---" * (1 + len(RATIOS)) + "|"]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(fmt(v) for v in r["ratios"].values()) + " |")
    procs = [c for c in ("ours -j1", "ours -j2", "dsql-lint", "squawk") if c in cols]
    lines += ["", "## Processes: peak RSS (MB) · CPU (s)", "", "| input | " + " | ".join(procs) + " |",
              "|---" * (1 + len(procs)) + "|"]
    for name, r in rows.items():
        cells = []
        for c in procs:
            t = r["tools"].get(c)
            cells.append(f"{fmt(t.get('max_rss_mb'), 1)} · {fmt(t.get('cpu_s'), 3)}" if t else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Notes:",
              "- *ours ÷ ceiling* compares a whole process with in-process parsing, so on small files it is mostly "
              "interpreter start-up: see the *(empty file)* row and *library ÷ ceiling* for the work alone.",
              "- *corpus* is one invocation over all files (dsql-audit gets the folder; the others the file list); "
              "*Σ files* adds the per-file medians, so it pays start-up once per file.",
              "- pglast.split is n/a on files with psql meta-commands (`\\connect`, `\\set`), which it cannot split.",
              "- squawk lints migration safety, not DSQL compatibility: it is here as a speed reference only.",
              f"- Statements are those of dsql-audit's splitter; pglast parse errors in the corpus: "
              f"{sum(r['parse_errors'] for n, r in rows.items() if n not in ('corpus', 'Σ files'))}."]
    if m["discarded_runs"]:
        lines.append("- Runs that crashed and were left out of the medians: "
                     + ", ".join(f"{k} ×{n}" for k, n in m["discarded_runs"].items()) + ".")
    lines.append("")
    return "\n".join(lines)


def add_sum_row(res: dict, names: list[str]) -> None:
    rows = [res["targets"][n] for n in names]
    total = {"bytes": sum(r["bytes"] for r in rows), "statements": sum(r["statements"] for r in rows),
             "parse_errors": sum(r["parse_errors"] for r in rows), "tools": {}}
    for c in COLS + ["split", "pglast.split"]:
        if all(r["tools"].get(c) for r in rows):
            s = sum(r["tools"][c]["median_s"] for r in rows)
            total["tools"][c] = {"median_s": s, "mb_per_s": mb(total["bytes"]) / s,
                                 "statements_per_s": total["statements"] / s}
            rss = [r["tools"][c].get("max_rss_mb") for r in rows]
            if all(rss):
                total["tools"][c]["max_rss_mb"] = max(rss)
    total["ratios"] = ratios(total["tools"])
    res["targets"]["Σ files"] = total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repetition (after the warm-up)")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    reps = 1 if args.quick else args.reps

    files = corpus_files()
    have_time()
    exes = {"ours": find_exe("dsql-audit"), "lint": find_exe("dsql-lint"), "squawk": find_exe("squawk")}
    if not exes["ours"]:
        sys.exit("dsql-audit is not installed (pip install -e .)")
    for key, pkg in (("lint", "dsql-lint"), ("squawk", "squawk-cli")):
        if not exes[key]:
            print(f"{pkg} not installed: skipping it (pip install {pkg})", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.sql"
        empty.write_text("")
        targets = [Target(p.stem, [p]) for p in files]
        targets += [Target("corpus", files, folder=files[0].parent), Target("(empty file)", [empty])]
        failed: dict = {}
        samples = bench(targets, exes, reps, failed)

    versions = {"dsql-audit": version([exes["ours"], "--version"]), "pglast": pglast.__version__}
    if exes["lint"]:
        versions["dsql-lint"] = version([exes["lint"], "--version"])
    if exes["squawk"]:
        versions["squawk"] = version([exes["squawk"], "--version"])
    res = {
        "meta": {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                 "reps": reps, "warmup": 1, "versions": versions,
                 "discarded_runs": {f"{tool} on {target}": n for (target, tool), n in failed.items()}},
        "targets": {t.name: summarise(t, samples[t.name]) for t in targets},
    }
    add_sum_row(res, [p.stem for p in files])
    # keep 'corpus' and 'Σ files' next to each other, the empty file last
    order = [p.stem for p in files] + ["Σ files", "corpus", "(empty file)"]
    res["targets"] = {k: res["targets"][k] for k in order}

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(res, indent=1) + "\n")
    md = markdown(res)
    (RESULTS / "latest.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
