"""Dated DSQL profiles: which features and limits a DSQL release had.

Each file in the catalog's ``profiles/`` folder is one DSQL change, named by
its date. The profile for a date is every change up to that date folded
together, so adding a DSQL release is adding one data file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from dsql_audit.resources import catalog_dir
from dsql_audit.toml_cache import read_toml_files


@dataclass(frozen=True)
class Profile:
    date: str  # the newest change folded in (YYYY-MM-DD)
    features: dict = field(hash=False)
    limits: dict = field(hash=False)
    changes: tuple = ()  # (date, title) of every change folded in

    def has(self, feature: str) -> bool:
        if feature not in self.features:
            raise KeyError(f"unknown DSQL feature {feature!r}")
        return bool(self.features[feature])

    def holds(self, conditions) -> bool:
        """``["foreign_keys", "!sequences"]``: every listed feature present / absent."""
        for cond in conditions or ():
            want = not cond.startswith("!")
            if self.has(cond.lstrip("!")) != want:
                return False
        return True

    def limit(self, name: str) -> int:
        return int(self.limits[name])


@lru_cache(maxsize=1)
def _changes() -> tuple:
    out = read_toml_files(sorted(Path(catalog_dir(), "profiles").glob("*.toml")))
    out.sort(key=lambda d: d["date"])
    return tuple(out)


def profile_dates() -> list[str]:
    return [c["date"] for c in _changes()]


def newest_date() -> str:
    return _changes()[-1]["date"]


@lru_cache(maxsize=64)
def load_profile(date: str | None = None) -> Profile:
    """The newest profile at or before ``date`` (YYYY-MM-DD); default newest."""
    changes = _changes()
    if date is None:
        date = changes[-1]["date"]
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        raise ValueError(f"--profile wants a date YYYY-MM-DD, got {date!r}") from None
    if date < changes[0]["date"]:
        raise ValueError(f"no DSQL profile before {changes[0]['date']} (asked for {date})")
    features: dict = {}
    limits: dict = {}
    folded = []
    for change in changes:
        if change["date"] > date:
            break
        features.update(change.get("features", {}))
        limits.update(change.get("limits", {}))
        folded.append((change["date"], change.get("title", "")))
    return Profile(date=folded[-1][0], features=features, limits=limits, changes=tuple(folded))
