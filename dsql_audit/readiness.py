"""The architect's summary of a result: a verdict (ready / ready with changes / blocked), a score, and an
effort estimate per category. Computed from the findings and the rule catalog's `effort` and `remedy` fields;
reporters only show it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dsql_audit.catalog import load_catalog
from dsql_audit.model import Severity

READY, CHANGES, BLOCKED = "ready", "ready with changes", "blocked"


@dataclass
class CategoryEffort:
    category: str
    findings: int = 0  # errors and warnings
    objects: int = 0  # distinct objects (or places) they affect
    minutes: int = 0
    redesign: bool = False  # some of it moves out of the database, not only rewritten
    rules: Counter = field(default_factory=Counter)

    @property
    def hours(self) -> float:
        return round(self.minutes / 60, 1)


@dataclass
class Readiness:
    verdict: str
    score: int  # 0-100
    basis: str  # what the score measures, in words
    reasons: list[str]
    categories: list[CategoryEffort]  # most effort first

    @property
    def hours(self) -> float:
        return round(sum(c.minutes for c in self.categories) / 60, 1)

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "score": self.score, "basis": self.basis, "reasons": self.reasons,
                "effort_hours": self.hours,
                "categories": [{"category": c.category, "findings": c.findings, "objects": c.objects,
                                "hours": c.hours, "redesign": c.redesign, "rules": dict(c.rules)}
                               for c in self.categories]}


def object_key(f) -> str:
    """What one finding affects: the named object, else its place."""
    return f"{f.name}\x1f{f.object}" if f.object else f"{f.name}\x1f{f.path}:{f.line}"


def assess(result) -> Readiness:
    catalog = load_catalog()
    serious = [f for f in result.findings if f.severity >= Severity.warning]
    by_category: dict[str, CategoryEffort] = {}
    seen: set = set()
    redesign: Counter = Counter()
    for f in serious:
        rule = catalog.get(f.rule) or catalog.get(f.name)
        c = by_category.setdefault(f.category, CategoryEffort(f.category))
        c.findings += 1
        c.rules[f.name] += 1
        key = object_key(f)
        if key not in seen:
            seen.add(key)
            c.objects += 1
            c.minutes += rule.effort if rule else 30
        if rule is not None and rule.remedy == "redesign":
            c.redesign = True
            if f.severity is Severity.error:
                redesign[f.name] += 1
    errors = sum(1 for f in serious if f.severity is Severity.error)
    warnings = len(serious) - errors
    reasons = []
    if redesign:
        verdict = BLOCKED
        reasons.append(f"{sum(redesign.values()):,} error(s) need the design to change, not only the SQL: "
                       + ", ".join(f"{k} ({v:,})" for k, v in redesign.most_common()))
    elif serious:
        verdict = CHANGES
    else:
        verdict = READY
    if errors - sum(redesign.values()):
        reasons.append(f"{errors - sum(redesign.values()):,} error(s) DSQL refuses that a rewrite fixes")
    if warnings:
        reasons.append(f"{warnings:,} warning(s): behaviour that differs on DSQL")
    info = len(result.findings) - len(serious)
    if info:
        reasons.append(f"{info:,} info finding(s), which need no change")
    summary = result.replay_summary() if hasattr(result, "replay_summary") else None
    if summary and summary.get("calls"):
        share = summary.get("share_of_calls_affected", 0.0)
        score = round(100 * (1 - share))
        basis = f"share of replayed calls that would run unchanged ({summary['calls']:,} calls)"
    else:
        places = {(f.path, f.line) for f in serious}
        units = max(int(getattr(result, "units", 0) or 0), len(places))
        score = round(100 * (1 - len(places) / units)) if units else 100
        basis = f"share of the {units:,} statements and constructs read that have no error or warning"
    if verdict == READY:
        reasons.insert(0, "nothing DSQL refuses or runs differently was found")
    return Readiness(verdict, score, basis, reasons,
                     sorted(by_category.values(), key=lambda c: (-c.minutes, c.category)))
