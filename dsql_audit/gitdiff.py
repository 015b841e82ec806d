"""`--diff-base REF`: the files a change touches, for fast pull-request gates. Read-only git plumbing."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(args: list, cwd: Path) -> str:
    try:
        run = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise ValueError("--diff-base needs git on PATH") from None
    except subprocess.TimeoutExpired:
        raise ValueError(f"git {' '.join(args)} took more than 60 s") from None
    if run.returncode != 0:
        raise ValueError(f"git {' '.join(args)}: {run.stderr.strip() or 'failed'}")
    return run.stdout


def changed_files(ref: str, where: Path) -> set[Path]:
    """Absolute paths of files added, copied, modified or renamed since the merge base of ``ref`` and HEAD,
    plus uncommitted and untracked (not ignored) changes — what a pull request or a pre-commit run changes."""
    where = where if where.is_dir() else where.parent
    top = Path(_git(["rev-parse", "--show-toplevel"], where).strip())
    if ref.startswith("-"):
        raise ValueError(f"--diff-base wants a git ref, not {ref!r}")
    _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top)
    names = _git(["diff", "--name-only", "-z", "--diff-filter=ACMR", f"{ref}...HEAD"], top).split("\0")
    names += _git(["diff", "--name-only", "-z", "--diff-filter=ACMR", "HEAD"], top).split("\0")
    names += _git(["ls-files", "-z", "--others", "--exclude-standard"], top).split("\0")
    return {(top / n).resolve() for n in names if n}
