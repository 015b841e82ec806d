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


# what only another database's SQL has: a statement in application code showing one is that database's (a
# MySQL or SQLite branch, a SQL Server query), not something the application sends to PostgreSQL
_OTHER_DIALECT = re.compile(
    r"`\w[^`\n]*`"  # MySQL/SQLite back-quoted names
    r"|\bAUTO_?INCREMENT\b|\bENGINE\s*=|\bUNSIGNED\b|\b(?:TINY|MEDIUM|LONG)(?:INT|TEXT|BLOB)\b"
    r"|\bON\s+DUPLICATE\s+KEY\b|\bINSERT\s+(?:OR\s+(?:REPLACE|IGNORE)|IGNORE)\b|\bREPLACE\s+INTO\b"
    r"|\bPRAGMA\b|\bWITHOUT\s+ROWID\b"  # SQLite
    r"|\[\w+\]\s*\.\s*\[|\bTOP\s*\(?\s*\d|\bIDENTITY\s*\(\s*\d|\bN?VARCHAR\s*\(\s*MAX\b|\bGETDATE\s*\("
    r"|\bWITH\s*\(\s*NOLOCK\b|\bOUTPUT\s+INSERTED\b|\bSET\s+NOCOUNT\b|\bOBJECT_ID\s*\("  # SQL Server
    r"|\bFROM\s+DUAL\b|\bVARCHAR2\b|\bROWNUM\b",  # Oracle
    re.I)


def other_dialect(sql: str) -> bool:
    """Whether a statement that PostgreSQL cannot parse shows another database's syntax."""
    return bool(_OTHER_DIALECT.search(sql))


def _parses_with_binds(sql: str) -> bool:
    """Whether it parses once bind parameters of any driver (:name, ?, @name) are $n: a statement that failed
    only on a placeholder style its reader did not know."""
    from dsql_audit.sources.app import normalize_params

    try:
        import pglast

        pglast.parser.parse_sql_json(normalize_params(sql, ("named", "qmark", "at")))
        return True
    except Exception:  # noqa: BLE001 - any parser complaint: it does not parse
        return False


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
    if unit.source not in _SQL_SOURCES and (other_dialect(unit.text) or _parses_with_binds(unit.text)):
        return  # not PostgreSQL (another database's branch), or PostgreSQL with a bind style: not a finding
    # SQL in application code may be built at run time: it is reported, but as information, not as a DSQL error
    variant = "default" if unit.source in _SQL_SOURCES else "in_code"
    yield Hit("parse-error", variant, offset=offset, detail=message)
