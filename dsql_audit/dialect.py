"""DSQL-only syntax that PostgreSQL's parser does not know.

The DSQL keywords are blanked to spaces of the same length, so every offset
pglast reports still points into the text the user wrote. What was blanked
is returned as flags (flag → character offset) for the rules.
"""

from __future__ import annotations

import re

_INDEX_ASYNC = re.compile(
    r"\A(\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+)(ASYNC)\b"
    r"(?:(\s+(?:IF\s+NOT\s+EXISTS\s+)?)((?:\"[^\"]+\"|[A-Za-z_][\w$]*)\.)(?=\s*(?:\"|[A-Za-z_])))?",
    re.I,
)
_ALTER_ASYNC = re.compile(r"\A(\s*ALTER\s+TABLE\s+)(ASYNC)\b", re.I)
_AWS_IAM = re.compile(
    r"\A\s*AWS\s+IAM\s+(GRANT|REVOKE)\s+(\"[^\"]+\"|\S+)\s+(TO|FROM)\s+'([^']*)'\s*\Z", re.I | re.S
)


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def preprocess(text: str) -> tuple[str, dict, tuple | None]:
    """Return (text for pglast, {DSQL syntax flag: offset}, AWS IAM statement or None)."""
    head = text[:300]
    low = head.lower()
    if "async" in low:
        m = _INDEX_ASYNC.match(text)
        if m:
            flags = {"index_async": m.start(2)}
            out = _blank(text, *m.span(2))
            if m.group(4):  # CREATE INDEX ASYNC schema.name: DSQL's parser refuses the dot
                flags["qualified_index_name"] = m.end(4) - 1
                out = _blank(out, *m.span(4))
            return out, flags, None
        m = _ALTER_ASYNC.match(text)
        if m:
            return _blank(text, *m.span(2)), {"alter_async": m.start(2)}, None
    if low.lstrip()[:3] == "aws":
        m = _AWS_IAM.match(text)
        if m:
            return text, {"aws_iam": 0}, (m.group(1).upper(), m.group(2), m.group(4))
    return text, {}, None
