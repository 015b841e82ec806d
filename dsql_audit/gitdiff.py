"""`--diff-base REF`: the files a change touches, for fast pull-request gates. Read-only git plumbing.

The scanned repository is untrusted: its own config can name programs that git runs (``core.fsmonitor``,
clean/smudge filters, external diff drivers and textconv, hooks). Every git call here turns those off from
the command line, which wins over the repository's config, and uses only commands that never read a work-tree
file's content (tree-to-tree diffs, ``diff-index`` without refreshing the index, ``ls-files``), so no filter
has a reason to run. Nothing is written: no index refresh, no optional locks.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# program-running settings neutralised on every call (command-line config wins over the repository's)
_SAFE = ["-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "diff.external=",
         "-c", "core.untrackedCache=false", "-c", "core.pager=cat", "-c", "core.askPass=",
         "-c", "core.sshCommand=", "-c", "credential.helper=", "-c", "protocol.allow=never"]
_ENV_DROP = ("GIT_EXTERNAL_DIFF", "GIT_DIFF_OPTS", "GIT_PAGER", "GIT_ASKPASS", "GIT_SSH", "GIT_SSH_COMMAND",
             "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")


def _top_candidate(where: Path) -> Path | None:
    """The nearest folder holding a ``.git`` entry: the one safe.directory is set to, explicitly."""
    for folder in (where, *where.parents):
        if (folder / ".git").exists():
            return folder
    return None


def _git(args: list, cwd: Path, safe_dir: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", GIT_NO_REPLACE_OBJECTS="1")
    safe = ["-c", f"safe.directory={safe_dir}"] if safe_dir else []
    try:
        run = subprocess.run(["git", *_SAFE, *safe, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                             env=env, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ValueError("--diff-base needs git on PATH") from None
    except subprocess.TimeoutExpired:
        raise ValueError(f"git {' '.join(args)} took more than 60 s") from None
    if run.returncode != 0:
        raise ValueError(f"git {' '.join(args)}: {run.stderr.strip() or 'failed'}")
    return run.stdout


def changed_files(ref: str, where: Path) -> set[Path]:
    """Absolute paths of files added, copied, modified or renamed since the merge base of ``ref`` and HEAD,
    plus uncommitted and untracked (not ignored) changes — what a pull request or a pre-commit run changes.
    A file whose stat data changed without its content may be included too (the index is not refreshed:
    that would hash work-tree files through the repository's filters)."""
    where = (where if where.is_dir() else where.parent).resolve()
    safe_dir = _top_candidate(where)
    top = Path(_git(["rev-parse", "--show-toplevel"], where, safe_dir).strip())
    if ref.startswith("-"):
        raise ValueError(f"--diff-base wants a git ref, not {ref!r}")
    _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top, safe_dir)
    diff = ["--name-only", "-z", "--no-ext-diff", "--no-textconv", "--diff-filter=ACMR"]
    names = _git(["diff", *diff, f"{ref}...HEAD"], top, safe_dir).split("\0")
    names += _git(["diff-index", *diff, "HEAD"], top, safe_dir).split("\0")
    names += _git(["ls-files", "-z", "--others", "--exclude-standard"], top, safe_dir).split("\0")
    return {(top / n).resolve() for n in names if n}
