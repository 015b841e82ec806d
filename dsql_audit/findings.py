"""From located hits to findings: the catalog and the profile decide what counts and how much,
the config selects and re-weighs, inline comments suppress, pg_dump idioms fold into one."""

from __future__ import annotations

from dataclasses import dataclass

from dsql_audit.catalog import Catalog
from dsql_audit.config import Config
from dsql_audit.model import Finding, Hit, Severity
from dsql_audit.profile import Profile
from dsql_audit.secrets import mask


@dataclass(slots=True)
class Located:
    hit: Hit
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    snippet: str
    source: str
    framework: str | None
    stmt_line: int
    origin: str | None = None  # application source: what in the code sends the statement
    snippet_column: int = 1  # file column of the snippet's first character (a long line is shown as a window)
    restates: bool = False  # from Unit.restates
    superseded: bool = False  # from Unit.superseded
    placeholders: dict | None = None  # from Unit.placeholders


class _Fmt(dict):
    def __missing__(self, key):  # a message naming a field the hit lacks keeps the braces
        return "{" + key + "}"


def _fill(template: str | None, hit: Hit) -> str | None:
    if template is None:
        return None
    values = _Fmt(detail=hit.detail or "", object=hit.object or "", **{k: v for k, v in hit.args.items()
                                                                         if isinstance(v, (str, int))})
    return template.format_map(values)


def _suppressed(loc: Located, rule_slug: str, rule_code: str, sups, used: set | None = None) -> bool:
    for s in sups:
        if s.rules is not None and rule_slug not in s.rules and rule_code.lower() not in s.rules:
            continue
        if s.line == loc.line or s.own_line and (s.line + 1 == loc.line or s.line + 1 == loc.stmt_line):
            if used is not None:
                used.add((loc.path, s.line))
            return True
    return False


def ignore_problems(suppressions: dict, used: set, catalog: Catalog) -> tuple[list, list]:
    """(unknown, unused): inline ignores naming a rule that does not exist — (path, line, names, suggestions) —
    and ignores that suppressed nothing — (path, line) — as ruff's RUF100 reports them."""
    import difflib

    known = {r.slug for r in catalog} | {r.code.lower() for r in catalog}
    unknown, unused = [], []
    for path, sups in suppressions.items():
        for s in sups or ():
            if s.rules is not None:
                bad = sorted(r for r in s.rules if r not in known)
                if bad:
                    hints = [m for r in bad for m in difflib.get_close_matches(r, sorted(known), n=1)]
                    unknown.append((path, s.line, bad, hints))
            if (path, s.line) not in used:
                unused.append((path, s.line))
    return unknown, unused


def make_finding(loc: Located, catalog: Catalog, profile: Profile, config: Config) -> Finding | None:
    hit = loc.hit
    rule = catalog.get(hit.slug)
    if rule is None:
        raise KeyError(f"a check reported unknown rule {hit.slug!r}")
    variant = rule.variant(hit.variant)
    if not profile.holds(variant.when):
        return None
    if variant.limit is not None and int(hit.args.get("value", 0)) <= profile.limit(variant.limit):
        return None
    if not config.enabled(rule, loc.path):
        return None
    severity = config.severity_for(rule, variant.severity)
    message = _fill(variant.message, hit) or (
        f"{rule.title}: {hit.detail}" if hit.detail else rule.title)
    obj = hit.object
    if loc.placeholders:  # the code's own ${tablePrefix}, not the placeholder that stood for it while parsing
        for mark, source in loc.placeholders.items():
            message = message.replace(mark, source)
            obj = obj.replace(mark, source) if obj else obj
    if loc.origin:
        message += f" — {loc.origin}"
    message = mask(message)  # a finding quotes the code or statement it is about: never its secrets
    f = Finding(
        rule=rule.code, name=rule.slug, severity=severity, category=rule.category, message=message,
        path=loc.path, line=loc.line, column=loc.column, end_line=loc.end_line, end_column=loc.end_column,
        source=loc.source, object=obj, snippet=mask(loc.snippet), fix=variant.fix or rule.fix,
        docs=rule.docs,
        sqlstate=variant.sqlstate, dsql_message=_fill(variant.dsql_message, hit), framework=loc.framework,
        snippet_column=loc.snippet_column, claim=hit.args.get("claim"), restates=loc.restates,
        superseded=loc.superseded,
    )
    f.compute_fingerprint()
    return f


def build_findings(located, catalog: Catalog, profile: Profile, config: Config, suppressions: dict,
                   *, aggregate: bool = True, used: set | None = None) -> list[Finding]:
    out: list[Finding] = []
    idioms: dict = {}
    idiom_details: dict = {}
    for loc in located:
        f = make_finding(loc, catalog, profile, config)
        if f is None:
            continue
        if _suppressed(loc, f.name, f.rule, suppressions.get(loc.path, ()), used):
            continue
        rule = catalog[f.name]
        if aggregate and loc.source == "pg_dump" and rule.variant(loc.hit.variant).dump_idiom:
            key = (f.path, f.name, loc.hit.variant)
            idiom_details.setdefault(key, {}).setdefault(loc.hit.detail or loc.hit.object or "", None)
            first = idioms.get(key)
            if first is not None:
                first.occurrences += 1
                continue
            idioms[key] = f
        out.append(f)
    for key, f in idioms.items():
        if f.occurrences > 1:
            details = [d for d in idiom_details[key] if d]
            shown = ", ".join(details[:6]) + (", …" if len(details) > 6 else "")
            f.message += f" — and {f.occurrences - 1} more like it in this dump" + (
                f" ({shown})" if len(details) > 1 else "") + "; reported once"
    # one construct can be reached twice (e.g. nested SELECTs); report it once
    seen = set()
    unique = []
    for f in out:
        key = (f.path, f.line, f.column, f.rule, f.message, f.object)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    unique.sort(key=lambda f: (f.path, f.line, f.column, f.rule))
    return unique


def count_by_severity(findings) -> dict:
    out = {s.name: 0 for s in sorted(Severity, reverse=True)}
    for f in findings:
        out[f.severity.name] += 1
    return out


# the rules a model-level declaration and the statement a migration sends for it are judged by: a model's
# foreign key is sent as ADD CONSTRAINT (foreign-key) or inline in ADD COLUMN (alter-table)
_FAMILY = {"orm-foreign-key": ("foreign-key", "alter-table")}


def merge_restatements(findings: list) -> list:
    """A model-level finding (models.py, a declarative class) that restates one on the statement a migration
    or create_all() sends — same rule family, same schema object — becomes a related location of that one.
    A model declaration nothing sends yet (no migration for it) stays a finding of its own."""
    sent: dict = {}
    for f in findings:
        if f.claim and not f.restates:
            sent.setdefault((f.name, f.claim), []).append(f)
    out = []
    for f in findings:
        if f.restates and f.claim:
            targets = [t for family in _FAMILY.get(f.name, (f.name,)) for t in sent.get((family, f.claim), ())]
            if targets:
                for t in targets:
                    place = {"path": f.path, "line": f.line}
                    if place not in t.related:
                        t.related.append(place)
                continue
        out.append(f)
    return out


def merge_catalog_reads(findings: list) -> list:
    """Results merged from a scan and a live catalog read of one estate name most objects twice: the
    migration that creates a trigger and the trigger the database holds. A finding located by its object
    (the catalog's) whose rule and object a file-located finding also has becomes that finding's related
    place "in the database", so each object counts once; one only the database has stays a finding."""
    in_files: dict = {}
    for f in findings:
        if not f.by_object and f.object:
            in_files.setdefault((f.name, f.object), []).append(f)
    out = []
    for f in findings:
        targets = in_files.get((f.name, f.object)) if f.by_object else None
        if targets:
            place = {"kind": "database", "path": f.path, "line": 0, "object": f.object}
            if place not in targets[0].related:
                targets[0].related.append(place)
            continue
        out.append(f)
    return out
