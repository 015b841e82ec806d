"""DSQL-only syntax that PostgreSQL's parser does not know, found by PostgreSQL's own scanner (comments,
case and whitespace as DSQL's lexer treats them, not as a regular expression would).

The DSQL keywords are blanked to spaces of the same length, so every offset
pglast reports still points into the text the user wrote. What was blanked
is returned as flags (flag → character offset) for the rules.
"""

from __future__ import annotations

import re

_AWS_IAM = re.compile(
    r"\A\s*AWS\s+IAM\s+(GRANT|REVOKE)\s+(\"[^\"]+\"|\S+)\s+(TO|FROM)\s+'([^']*)'\s*\Z", re.I | re.S
)


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


_HEAD = 4096  # DSQL's keywords come in a statement's first few tokens; comments before them can be long


def _tokens(text: str, start: int = 0) -> list:
    """The statement's first tokens by PostgreSQL's own scanner, comments left out: DSQL's lexer ignores
    comments anywhere (a query tagger writes `CREATE /* app:x */ INDEX ASYNC …`), and case and whitespace
    never matter. A head cut inside a comment or string is scanned whole."""
    from pglast.parser import ParseError, scan

    head = text[:start + _HEAD]
    try:
        found = scan(head)
    except ParseError:
        try:
            found = scan(text)
        except ParseError:
            return []
    return [t for t in found if t.name not in ("C_COMMENT", "SQL_COMMENT")][:12]


def _word(text: str, tok, word: str) -> bool:
    return tok.name == "IDENT" and text[tok.start:tok.end + 1].lower() == word


def preprocess(text: str) -> tuple[str, dict, tuple | None]:
    """Return (text for pglast, {DSQL syntax flag: offset}, AWS IAM statement or None)."""
    from dsql_audit.sqltext import lead

    start = len(text) - len(lead(text))  # past leading comments, however long
    low = text[start:start + _HEAD].lower()
    if "async" in low:
        toks = _tokens(text, start)
        names = [t.name for t in toks]
        i = 1 + (names[1:2] == ["UNIQUE"]) if names[:1] == ["CREATE"] else None
        if i is not None and names[i:i + 1] == ["INDEX"] and len(toks) > i + 1 and _word(text, toks[i + 1], "async"):
            at = toks[i + 1]
            flags = {"index_async": at.start}
            out = _blank(text, at.start, at.end + 1)
            j = i + 2
            if names[j:j + 3] == ["IF_P", "NOT", "EXISTS"]:
                j += 3
            # CREATE INDEX ASYNC schema.name: DSQL's parser refuses the dot
            if names[j + 1:j + 2] == ["ASCII_46"] and len(toks) > j + 2 and toks[j + 2].name != "ON":
                flags["qualified_index_name"] = toks[j + 1].start
                out = _blank(out, toks[j].start, toks[j + 1].end + 1)
            return out, flags, None
        if names[:2] == ["ALTER", "TABLE"] and len(toks) > 2 and _word(text, toks[2], "async"):
            return _blank(text, toks[2].start, toks[2].end + 1), {"alter_async": toks[2].start}, None
    if "aws" in low[:200]:
        toks = _tokens(text, start)
        if len(toks) > 1 and _word(text, toks[0], "aws") and _word(text, toks[1], "iam"):
            m = _AWS_IAM.match(text[toks[0].start:])
            if m:
                return text, {"aws_iam": 0}, (m.group(1).upper(), m.group(2), m.group(4))
    return text, {}, None
