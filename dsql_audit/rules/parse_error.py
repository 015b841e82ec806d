"""parse-error: a statement PostgreSQL's parser (and so DSQL's) cannot read.

SQL that application code builds at run time may not parse once its run-time parts are placeholders
(``LOCK TABLE {t} IN {mode} MODE``); when its fixed text alone shows a construct DSQL refuses, that is the
finding, not a parse error."""

import re

from dsql_audit.model import Hit

# sources whose SQL is written by hand as .sql (a statement that does not parse fails the deploy)
_SQL_SOURCES = {"sql", "pg_dump", "migration", "stdin"}

# what the fixed text of a partly dynamic statement shows: (pattern, rule, variant, detail)
_FIXED_TEXT = (
    (re.compile(r"\A\s*LOCK\s+(?:TABLE\b|\w)", re.I), "lock-table", "default", None),
    (re.compile(r"\A\s*TRUNCATE\b", re.I), "truncate", "default", None),
    (re.compile(r"\b(pg_(?:try_)?advisory_(?:xact_)?lock(?:_shared)?)\s*\(", re.I), "advisory-lock", "default", 1),
    (re.compile(r"\bFOR\s+(NO\s+KEY\s+UPDATE|SHARE)\b", re.I), "select-for-update", "share", 1),
)


def wants(facts) -> bool:
    return facts.parse_error is not None


def check(facts):
    message, offset = facts.parse_error
    unit = facts.unit
    if unit.dynamic and unit.source not in _SQL_SOURCES:
        found = False
        for pattern, slug, variant, group in _FIXED_TEXT:
            m = pattern.search(unit.text)
            if m:
                found = True
                detail = " ".join(m.group(group).split()).upper() if group else None
                if slug == "advisory-lock":
                    detail = m.group(group).lower()
                yield Hit(slug, variant, offset=m.start(), detail=detail)
        if found:
            return
    # SQL in application code may be another database's (a MySQL branch) or built at run time: it is
    # reported, but as information, not as a DSQL error
    variant = "default" if unit.source in _SQL_SOURCES else "in_code"
    yield Hit("parse-error", variant, offset=offset, detail=message)
