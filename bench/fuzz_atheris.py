"""Coverage-guided fuzzing with atheris (libFuzzer) on the same targets as bench/fuzz.py: inputs that reach new
code are kept and mutated further, which random mutation alone does not do.

    pip install atheris
    python bench/fuzz_atheris.py capture -max_total_time=60      # one target (sql, python, other, dsl, config, rule)
    python bench/fuzz_atheris.py --all 40                        # every target, 40 s each, figures to the .md

A target raising Crash (tests/fuzz_targets.py) is a finding: libFuzzer stops and writes the input to
crash-<hash> in the current folder. The seeds are the project's fixtures (and ../shared's corpus when present).
--all writes the runs, coverage and corpus size per target to bench/results/fuzz_atheris.md."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["dsql_audit"]):
    import dsql_audit.catalog  # noqa: F401,E402
    import dsql_audit.config  # noqa: F401,E402
    import dsql_audit.replay.captures  # noqa: F401,E402
    import dsql_audit.scan  # noqa: F401,E402
    import dsql_audit.sources  # noqa: F401,E402
    import dsql_audit.sources.python  # noqa: F401,E402
    import dsql_audit.sqltext  # noqa: F401,E402

from bench._util import RESULTS  # noqa: E402
from tests.fuzz_targets import Rejected, TARGETS, seeds  # noqa: E402


def fuzz(kind: str) -> None:
    """One target under libFuzzer (runs in its own process: libFuzzer ends it with exit())."""
    target = TARGETS[kind]
    corpus = Path(tempfile.mkdtemp(prefix=f"atheris_{kind}_"))
    for i, seed in enumerate(seeds(kind)):
        (corpus / f"seed{i}").write_bytes(seed)

    def one(data: bytes) -> None:
        try:
            target(data)
        except Rejected:
            pass  # a clear refusal is the right answer to garbage; Crash propagates and stops libFuzzer

    atheris.Setup([sys.argv[0], *sys.argv[2:], str(corpus)], one)
    atheris.Fuzz()


def run_all(seconds: int) -> None:
    """Every target for ``seconds`` each, one process each; the figures go to bench/results/fuzz_atheris.md."""
    rows = []
    for kind in TARGETS:
        started = time.time()
        r = subprocess.run([sys.executable, __file__, kind, f"-max_total_time={seconds}"], capture_output=True,
                           text=True)
        out = r.stdout + r.stderr
        done = re.search(r"Done (\d+) runs in (\d+) second", out)
        cov = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)/", out)
        crashed = "Uncaught Python exception" in out or r.returncode not in (0,)
        rows.append(f"| {kind} | {int(done.group(1)):,} | {done.group(2) if done else round(time.time() - started)} s | "
                    f"{cov[-1][0] if cov else '?'} / {cov[-1][1] if cov else '?'} | {cov[-1][2] if cov else '?'} | "
                    f"{'**crash**' if crashed else 'none'} |" if done else f"| {kind} | ? | ? | ? | ? | "
                    f"{'**crash**' if crashed else '?'} |")
        print(rows[-1], flush=True)
    (RESULTS / "fuzz_atheris.md").write_text(
        f"# Coverage-guided fuzzing (atheris / libFuzzer), {seconds} s a target — {datetime.now():%Y-%m-%d %H:%M}\n\n"
        "| target | inputs run | time | coverage (edges / features) | corpus kept | crashes |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--all":
        run_all(int(sys.argv[2]))
    else:
        fuzz(sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] in TARGETS else "capture")
