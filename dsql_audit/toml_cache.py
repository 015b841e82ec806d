"""TOML files read through a per-user cache: the rule catalog (catalog.py) and the dated profiles (profile.py)
are both folders of TOML files read at start-up."""

from __future__ import annotations

import tomllib
from pathlib import Path


def read_toml_files(paths: list[Path]) -> list[dict]:
    """The TOML files' contents, from a per-user cache when none changed (parsing 50+ files
    is a fifth of a small scan's start-up)."""
    import os
    import pickle

    stamp = [(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths]
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    import zlib

    key = zlib.crc32(repr(stamp).encode())  # stable across runs (str hashes are salted per process)
    cache = cache_home / "dsql-audit" / f"catalog-{key:08x}.pickle"
    try:
        with open(cache, "rb") as fh:
            saved_stamp, datas = pickle.load(fh)
        if saved_stamp == stamp:
            return datas
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, TypeError):
        pass
    datas = []
    for p in paths:
        with open(p, "rb") as fh:
            datas.append(tomllib.load(fh))
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            pickle.dump((stamp, datas), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cache)
    except OSError:  # a read-only home is fine: no cache
        pass
    return datas
