"""`dsql-audit scan` on a large Python code base: lines of application source per second, in one run.

    python bench/app_scan.py [--source DIR ...] [--lines 1000000] [--jobs N] [--no-cli] [--profile-lines N]
                             [--name STEM]

Builds, in a temporary folder, a repository of at least --lines lines of Python by copying the .py files of
the --source folders (default: the installed sqlalchemy, psycopg and asyncpg packages, which the test extra
installs, so the bench needs no network) again and again into numbered subfolders copy000/, copy001/, …
Then, in this one run:
  prefilter  the share of .py files (and of their lines) that dsql_audit.sources.python.PREFILTER matches,
             and, where the extractor has its ast gate (_worth_parsing), the share that passes both: only
             those reach libcst; the others are read and dropped
  library    dsql_audit.scan.scan([repo]) in this process (jobs: the scan's own default unless --jobs);
             wall and CPU seconds (this process + its worker processes), peak RSS from getrusage
             (this process; the largest worker)
  cli        `python -m dsql_audit scan REPO -f json -q -o FILE --fail-on never` once, as a subprocess
             (wall, CPU, GNU time's peak RSS when /usr/bin/time exists)
--profile-lines N: cProfile of scan(jobs=1) on N lines' worth of the source files taken in a seeded random
order (no workers, so the profile sees every call); the top functions go to bench/results/app_scan_profile.txt.
Results: bench/results/app_scan.json and app_scan.md (--name picks another stem, e.g. for a run on other sources).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import RESULTS, fmt, run_process  # noqa: E402

DEFAULT_PACKAGES = ("sqlalchemy", "psycopg", "asyncpg")
SKIP = {"__pycache__", ".git", ".venv", "venv", "node_modules", "site-packages"}


def default_sources() -> list[Path]:
    """The installed database packages' folders (found by import machinery, so any venv layout works)."""
    out = []
    for name in DEFAULT_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            out.append(Path(list(spec.submodule_search_locations)[0]))
    return out


def source_files(sources: list[Path]) -> list[tuple[Path, str, int]]:
    """(path relative to its source's parent, text, lines) of every .py file, in a stable order."""
    files = []
    for src in sources:
        for root, dirs, names in os.walk(src):
            dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("."))
            for n in sorted(names):
                if n.endswith(".py"):
                    p = Path(root, n)
                    text = p.read_text(encoding="utf-8", errors="replace")
                    files.append((p.relative_to(src.parent), text, text.count("\n") + (not text.endswith("\n"))))
    return files


def build(repo: Path, files: list, target_lines: int) -> dict:
    """Copy the files round after round into repo/copyNNN/ until target_lines is reached."""
    lines = n_files = n_bytes = 0
    rounds = 0
    while lines < target_lines:
        base = repo / f"copy{rounds:03d}"
        for rel, text, n in files:
            dest = base / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text, encoding="utf-8")
            lines += n
            n_files += 1
            n_bytes += len(text.encode("utf-8"))
            if lines >= target_lines:
                break
        rounds += 1
    return {"files": n_files, "lines": lines, "bytes": n_bytes, "rounds": rounds}


def prefilter_share(repo: Path) -> dict:
    """PREFILTER's share of files and lines; and, where the extractor has a second gate after it
    (sources.python._worth_parsing, CPython's ast), the share that passes both and so reaches libcst."""
    from dsql_audit.sources import python as py

    gate = getattr(py, "_worth_parsing", None)
    files = hit = lines = hit_lines = gated = gated_lines = 0
    for p in repo.rglob("*.py"):
        text = p.read_text(encoding="utf-8", errors="replace")
        n = text.count("\n")
        files += 1
        lines += n
        if py.PREFILTER.search(text):
            hit += 1
            hit_lines += n
            if gate is not None:
                try:
                    passed = gate(str(p), text)
                except Exception:  # noqa: BLE001 - a syntax error is reported by the scan, not here
                    passed = False
                gated += passed
                gated_lines += n if passed else 0
    out = {"files": files, "files_prefilter": hit, "file_share": round(hit / files, 4) if files else 0,
           "line_share": round(hit_lines / lines, 4) if lines else 0}
    if gate is not None:
        out.update({"files_to_libcst": gated, "gate_file_share": round(gated / files, 4) if files else 0,
                    "gate_line_share": round(gated_lines / lines, 4) if lines else 0})
    else:
        out["files_to_libcst"] = hit
    return out


def library_scan(repo: Path, jobs: int | None) -> dict:
    from dsql_audit.scan import scan

    self0, kids0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = scan([str(repo)], jobs=jobs)
    wall = time.perf_counter() - t0
    self1, kids1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime
           + kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime)
    by_rule: dict = {}
    for f in result.findings:
        by_rule[f.name] = by_rule.get(f.name, 0) + 1
    return {"seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "findings": len(result.findings),
            "errors": len(result.errors), "inputs": result.inputs, "units": result.units,
            "peak_rss_mb": round(self1.ru_maxrss / 1024, 1),  # Linux: KiB
            "worker_peak_rss_mb": round(kids1.ru_maxrss / 1024, 1) if kids1.ru_maxrss else None,
            "findings_by_rule": dict(sorted(by_rule.items(), key=lambda kv: -kv[1]))}


def cli_scan(repo: Path, jobs: int | None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out, tempfile.TemporaryFile("w+") as err:
        argv = [sys.executable, "-m", "dsql_audit", "scan", str(repo), "-f", "json", "-q", "-o", out.name,
                "--fail-on", "never"] + (["-j", str(jobs)] if jobs else [])
        run = run_process(argv, stderr=err)
        try:
            findings = len(json.loads(Path(out.name).read_bytes() or b"{}").get("findings", []))
        except ValueError:
            findings = None
        err.seek(0)
        tail = err.read().strip().splitlines()[-1:] if run.rc not in (0, 1) else []
    doc = {"seconds": round(run.wall, 2), "cpu_seconds": round(run.cpu, 2), "rc": run.rc, "findings": findings,
           "peak_rss_mb": round(run.max_rss_kb / 1024, 1) if run.max_rss_kb else None}
    if tail:  # the CLI failed: keep its last stderr line, and report no findings count
        doc["error"], doc["findings"] = tail[0][:300], None
    return doc


def profile_subset(files: list, lines: int, top: int = 40) -> str:
    """cProfile of scan(jobs=1) on about `lines` lines: source files in a seeded random order (the first files
    of one package are not typical of the rest)."""
    import cProfile
    import io
    import pstats
    import random

    from dsql_audit.scan import scan

    files = list(files)
    random.Random(7).shuffle(files)
    tmp = Path(tempfile.mkdtemp(prefix="app_scan_prof_"))
    try:
        info = build(tmp, files, lines)
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        scan([str(tmp)], jobs=1)
        prof.disable()
        wall = time.perf_counter() - t0
        buf = io.StringIO()
        buf.write(f"# cProfile of scan(jobs=1): {info['files']:,} files, {info['lines']:,} lines, "
                  f"{wall:.1f} s under the profiler\n\n")
        stats = pstats.Stats(prof, stream=buf)
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
        return buf.getvalue()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", action="append", type=Path,
                    help="folder whose .py files are copied (repeatable; default: installed "
                         + ", ".join(DEFAULT_PACKAGES) + ")")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--jobs", type=int, default=None, help="worker processes (default: the scan's own)")
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI run")
    ap.add_argument("--profile-lines", type=int, default=0, help="also profile scan(jobs=1) on this many lines")
    ap.add_argument("--name", default="app_scan", help="results file stem (default: app_scan)")
    ap.add_argument("--note", default="", help="a line for the .md saying where the sources came from")
    args = ap.parse_args()
    sources = [s.resolve() for s in (args.source or default_sources())]
    if not sources or not all(s.is_dir() for s in sources):
        sys.exit(f"source folder(s) missing: {sources}")
    files = source_files(sources)
    if not files:
        sys.exit(f"no .py files under {sources}")
    src_lines = sum(n for _, _, n in files)

    tmp = Path(tempfile.mkdtemp(prefix="app_scan_"))
    repo = tmp / "repo"
    try:
        t0 = time.perf_counter()
        info = build(repo, files, args.lines)
        build_s = time.perf_counter() - t0
        share = prefilter_share(repo)
        lib = library_scan(repo, args.jobs)
        cli = None if args.no_cli else cli_scan(repo, args.jobs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    doc = {
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
        "sources": [str(s) for s in sources], "source_files": len(files), "source_lines": src_lines,
        "files": info["files"], "lines": info["lines"], "mb": round(info["bytes"] / 1e6, 1),
        "rounds": info["rounds"], "build_seconds": round(build_s, 1),
        "prefilter": share,
        "library": {**lib, "lines_per_s": round(info["lines"] / lib["seconds"]) if lib["seconds"] else None},
    }
    if cli is not None:
        doc["cli"] = {**cli, "lines_per_s": round(info["lines"] / cli["seconds"]) if cli["seconds"] else None}
    if args.profile_lines:
        text = profile_subset(files, args.profile_lines)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{args.name}_profile.txt").write_text(text)
        doc["profile"] = f"bench/results/{args.name}_profile.txt"

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    names = ", ".join(s.name for s in sources)
    md = [f"# dsql-audit on {info['lines']:,} lines of Python application source", "",
          f"{doc['date']} · {doc['cpus']} CPUs · {info['files']:,} .py files ({doc['mb']} MB): {info['rounds']} "
          f"cop{'y' if info['rounds'] == 1 else 'ies'} of {len(files):,} files / {src_lines:,} lines from {names}",
          *([args.note] if args.note else []),
          "",
          f"Files that PREFILTER passes: {share['files_prefilter']:,} of {share['files']:,} "
          f"({share['file_share']:.0%} of files, {share['line_share']:.0%} of lines)"
          + (f"; that also pass the ast gate and so reach libcst: {share['files_to_libcst']:,} "
             f"({share['gate_file_share']:.0%} of files, {share['gate_line_share']:.0%} of lines)."
             if "gate_file_share" in share else ", and so reach libcst."), "",
          "| run | seconds | lines/s | CPU s | peak RSS MB | findings |", "|---|---|---|---|---|---|",
          f"| library `scan([repo])` | {fmt(lib['seconds'])} | {doc['library']['lines_per_s']:,} | "
          f"{fmt(lib['cpu_seconds'])} | {fmt(lib['peak_rss_mb'], 0)} (largest worker "
          f"{fmt(lib['worker_peak_rss_mb'], 0)}) | {lib['findings']:,} |"]
    if cli is not None:
        md.append(f"| CLI `scan REPO -f json` | {fmt(cli['seconds'])} | {doc['cli']['lines_per_s']:,} | "
                  f"{fmt(cli['cpu_seconds'])} | {fmt(cli['peak_rss_mb'], 0)} | "
                  f"{format(cli['findings'], ',') if cli['findings'] is not None else '–'} |")
        if cli.get("error"):
            md += ["", f"The CLI run failed (exit {cli['rc']}): `{cli['error']}`"]
    md += ["", f"Input errors: {lib['errors']}. Statements and constructs analysed: {lib['units']:,}. "
           f"Target: 1,000,000 lines in under 60 s on 2 cores "
           f"({'met' if lib['seconds'] < 60 and info['lines'] >= 1_000_000 else 'not met'} by the library run).",
           "", "CPU s is user + system time of the process and its worker processes. Peak RSS: getrusage "
           "(library: this process, and separately the largest worker); GNU time %M for the CLI."]
    if args.profile_lines:
        md += ["", f"Profile of scan(jobs=1) on ~{args.profile_lines:,} lines: {doc['profile']}."]
    (RESULTS / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
