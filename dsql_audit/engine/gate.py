"""The gate: what DSQL refuses before PostgreSQL sees a statement.

It asks the same rule catalog `scan` uses (statement facts → hits → the active profile's variants),
so "what DSQL rejects" has one source of truth. A hit refuses the statement when its variant applies
in the profile, is an error, and carries the SQLSTATE DSQL answers with; the message is DSQL's text
where one was recorded, else ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsql_audit.catalog import Variant, load_catalog
from dsql_audit.facts import Facts, analyse
from dsql_audit.model import Severity, Unit
from dsql_audit.profile import Profile
from dsql_audit.rules import statement_hits

# Left to PostgreSQL 16 itself, which refuses these the way DSQL's PostgreSQL 16 front end does
# (syntax errors, unknown functions), or decided by the engine at run time.
NOT_GATED = {"parse-error", "newer-postgres-syntax", "unbounded-write", "internal-error"}


@dataclass(frozen=True)
class Refusal:
    slug: str
    code: str
    variant: str
    sqlstate: str
    message: str
    detail: str | None


def _message(variant: Variant, hit) -> str:
    text = variant.dsql_message or variant.message or ""
    obj = hit.object or (".".join(p for p in hit.rel if p) if hit.rel else "")
    try:
        return text.format(detail=hit.detail or "", object=obj)
    except (KeyError, IndexError):
        return text


def refusals(facts: Facts, profile: Profile) -> list[Refusal]:
    return judge(facts, profile)[0]


def judge(facts: Facts, profile: Profile) -> tuple[list[Refusal], list]:
    """(what DSQL refuses by the statement alone, the hits that need the live catalog to decide — a table's
    key, a column's type), from one run of the rules over the statement."""
    catalog = load_catalog()
    out, live = [], []
    for hit in statement_hits(facts):
        if hit.args.get("resolve"):
            live.append(hit)
            continue
        if hit.slug in NOT_GATED:
            continue
        rule = catalog.get(hit.slug)
        variant = rule.variant(hit.variant)
        if variant.severity < Severity.error or not variant.sqlstate or not profile.holds(variant.when):
            continue
        out.append(Refusal(rule.slug, rule.code, hit.variant, variant.sqlstate, _message(variant, hit),
                           hit.detail))
    return out, live


def analyse_text(text: str) -> Facts:
    return analyse(Unit(path="<engine>", text=text, line=1))


def transaction_message(slug: str) -> str:
    """DSQL's text for the one-DDL / no-DDL+DML refusals, from the catalog."""
    return load_catalog()[slug].variant("explicit").dsql_message
