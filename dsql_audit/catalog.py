"""The declarative rule catalog: one TOML file per rule in the top-level ``rules/``.

A rule has a stable code and slug, a category, why/fix text, docs, examples,
and *variants*: each distinct construct the rule catches, with the profile
features under which DSQL refuses it, its severity, and the SQLSTATE and
message DSQL returns. Checks (``dsql_audit.rules.<slug>``) only name the
variant they saw; whether it matters under the active profile, and how much,
is decided here, from data. The engine's gate reads the same data.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from dsql_audit.model import Severity
from dsql_audit.profile import Profile
from dsql_audit.resources import catalog_dir
from dsql_audit.toml_cache import read_toml_files

CATEGORIES = {
    "1": "schema-objects",
    "2": "types-and-columns",
    "3": "indexes",
    "4": "statements-and-transactions",
    "5": "quotas",
    "6": "concurrency-and-locking",
    "7": "application",
    "8": "workload",
    "9": "input",
}


@dataclass(frozen=True)
class Variant:
    name: str
    severity: Severity
    when: tuple = ()  # profile feature conditions; all must hold
    sqlstate: str | None = None
    dsql_message: str | None = None  # DSQL's text; {detail} filled from the hit
    confirmed: bool = False  # message recorded from a real cluster
    message: str | None = None  # our finding text; {detail}/{object} filled
    limit: str | None = None  # profile limit the hit's args["value"] must exceed to count
    dump_idiom: bool = False  # pg_dump writes this everywhere: reported once per dump
    fix: str | None = None  # this variant's own fix, where the rule's would mislead


@dataclass(frozen=True)
class Example:
    bad: str | None
    good: str | None
    profile: str | None = None
    bad_line: int | None = None
    variant: str | None = None
    also: tuple = ()  # other rules the bad example fires by nature (named, so the test stays exact)
    repeat: int = 1  # quota examples: bad/good are templates repeated with {n} = 1..repeat
    schema: str | None = None  # workload examples: the schema the capture runs against
    file: str | None = None  # application-source examples: the file name (app/models.py) bad/good are written to

    def expand(self, text: str | None) -> str | None:
        if text is None or self.repeat <= 1:
            return text
        return "".join(text.replace("{n}", str(n)) for n in range(1, self.repeat + 1))


@dataclass(frozen=True)
class Rule:
    code: str
    slug: str
    title: str
    category: str
    severity: Severity
    why: str
    fix: str
    docs: str
    fix_safety: str
    variants: dict = field(hash=False)
    examples: tuple = ()
    scope: str = "statement"  # statement | transaction | schema | input | runtime | workload
    aggregate_in_dump: bool = False  # pg_dump idioms reported once per file
    data: dict = field(default_factory=dict, hash=False)  # rule-specific tables
    path: str = ""
    effort: int = 30  # minutes of work per affected object (the reports' effort estimate)
    remedy: str = "rewrite"  # rewrite: the SQL or code changes; redesign: the work moves out of the database

    def variant(self, name: str) -> Variant:
        try:
            return self.variants[name]
        except KeyError:
            raise KeyError(f"rule {self.slug} has no variant {name!r}") from None

    def applies(self, variant: str, profile: Profile) -> bool:
        return profile.holds(self.variant(variant).when)

    def profile_summary(self) -> str:
        parts = []
        for v in self.variants.values():
            cond = ", ".join(v.when) if v.when else "all profiles"
            parts.append(f"{v.name}: {v.severity.name} ({cond})")
        return "; ".join(parts)


def _load_rule(path: Path, raw: dict | None = None) -> Rule:
    """One rule file; anything malformed in it is a ValueError naming the file."""
    if raw is None:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    try:
        return _build_rule(path, raw)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        if str(path) in str(exc):
            raise
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(f"{path}: {what}") from None


def _build_rule(path: Path, raw: dict) -> Rule:
    base = Severity.parse(raw.get("severity", "error"))
    variants = {}
    raw_variants = raw.get("variants") or {"default": {}}
    for name, v in raw_variants.items():
        variants[name] = Variant(
            name=name,
            severity=Severity.parse(v["severity"]) if "severity" in v else base,
            when=tuple(v.get("when", raw.get("when", ()))),
            sqlstate=v.get("sqlstate"),
            dsql_message=v.get("dsql_message"),
            confirmed=bool(v.get("confirmed", False)),
            message=v.get("message"),
            limit=v.get("limit"),
            dump_idiom=bool(v.get("dump_idiom", False)),
            fix=(v.get("fix") or "").strip() or None,
        )
    examples = tuple(
        Example(
            bad=e.get("bad"),
            good=e.get("good"),
            profile=e.get("profile"),
            bad_line=e.get("bad_line"),
            variant=e.get("variant"),
            repeat=int(e.get("repeat", 1)),
            also=tuple(e.get("also", ())),
            schema=e.get("schema"),
            file=e.get("file"),
        )
        for e in raw.get("examples", ())
    )
    code = raw["code"]
    slug = raw["slug"]
    if path.stem != slug:
        raise ValueError(f"{path}: file name must be the slug {slug!r}")
    return Rule(
        code=code,
        slug=slug,
        title=raw["title"],
        category=raw.get("category") or CATEGORIES[code[4]],
        severity=base,
        why=raw.get("why", "").strip(),
        fix=raw.get("fix", "").strip(),
        docs=raw.get("docs", ""),
        fix_safety=raw.get("fix_safety", "none"),
        variants=variants,
        examples=examples,
        scope=raw.get("scope", "statement"),
        aggregate_in_dump=bool(raw.get("aggregate_in_dump", False)),
        data=raw.get("data", {}),
        path=str(path),
        effort=int(raw.get("effort", 30)),
        remedy=_remedy(raw.get("remedy", "rewrite"), path),
    )


def _remedy(value: str, path: Path) -> str:
    if value not in ("rewrite", "redesign"):
        raise ValueError(f"{path}: remedy must be rewrite or redesign, not {value!r}")
    return value


class Catalog:
    def __init__(self, rules: list[Rule]):
        self.rules = sorted(rules, key=lambda r: r.code)
        self.by_slug = {r.slug: r for r in self.rules}
        self.by_code = {r.code: r for r in self.rules}
        if len(self.by_slug) != len(self.rules) or len(self.by_code) != len(self.rules):
            raise ValueError("duplicate rule code or slug in the catalog")

    def get(self, key: str) -> Rule | None:
        key = key.strip()
        return self.by_slug.get(key.lower()) or self.by_code.get(key.upper())

    def __getitem__(self, slug: str) -> Rule:
        return self.by_slug[slug]

    def __iter__(self):
        return iter(self.rules)


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    paths = sorted(catalog_dir().glob("*.toml"))
    return Catalog([_load_rule(p, raw) for p, raw in zip(paths, read_toml_files(paths))])


def rule_data(slug: str) -> dict:
    """A rule's own data tables (e.g. the extension rule's function → extension map)."""
    return load_catalog()[slug].data
