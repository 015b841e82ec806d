"""Helpers shared by the bench scripts: where things are, and how to time a process."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "schemas"


def corpus_files() -> list[Path]:
    """The corpus schemas, or exit with a clear message when the corpus is not beside the repo."""
    files = sorted(CORPUS.glob("*.sql"))
    if not files:
        sys.exit(f"corpus not found: no *.sql in {CORPUS} (expected <repo>/../shared/corpus/schemas); skipping")
    return files


def find_exe(name: str) -> str | None:
    """A command installed next to this interpreter (the venv), else on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def version(argv: list[str]) -> str:
    """The version a `tool --version` prints: its last word ("dsql-lint 0.2.22" → "0.2.22")."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0].split()[-1]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


TIME = "/usr/bin/time"  # GNU time: reports the child's own peak RSS (apt-get install time)


@dataclass
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process and the children it waited for
    max_rss_kb: int | None  # peak resident set of the largest single process (the tool or its workers)
    rc: int


def run_process(argv: list[str], *, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) -> Run:
    """Run argv to completion; time it and read its peak RSS.

    The rusage that wait4 returns for a child forked from this (large) Python process is useless for
    memory: Linux carries the pre-exec high-water mark across exec. GNU time, a small C program, forks
    the tool from itself, so the %M it writes is the tool's own. Without it RSS is left out.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        wrapped = [TIME, "-f", "%M", "-o", rss.name, *argv] if os.access(TIME, os.X_OK) else argv
        t0 = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=stdout, stderr=stderr)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        last = (rss.read().strip().splitlines() or [""])[-1]  # GNU time prefixes "Command exited with …"
    return Run(wall, ru.ru_utime + ru.ru_stime, int(last) if last.isdigit() else None, proc.returncode)


def have_time() -> bool:
    if not os.access(TIME, os.X_OK):
        print(f"{TIME} not found: peak RSS is not reported (apt-get install time)", file=sys.stderr)
        return False
    return True


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def mb(n_bytes: float) -> float:
    return n_bytes / 1e6


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None or x != x:  # None or NaN
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"
