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
