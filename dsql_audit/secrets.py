"""Secrets never reach a report: passwords in connection strings, driver keyword arguments, settings
dictionaries and SQL (`PASSWORD '…'`) are masked wherever the tool prints text it read — code snippets,
captured statements, DSNs. Masks keep the secret's length, so columns and carets stay exact."""

from __future__ import annotations

import re

_PATTERNS = [
    # postgresql://user:PASSWORD@host (any scheme with credentials)
    re.compile(r"://[^:/@?\s'\"]*:(?P<s>[^@/?\s'\"]+)@"),
    # key=value conninfo and URL query parameters: password=…, sslpassword=…, PGPASSWORD=…
    re.compile(r"(?i)\b(?:pg)?(?:ssl)?password\s*=\s*'(?P<s>(?:[^'\\]|\\.)+)'"),
    re.compile(r"(?i)\b(?:pg)?(?:ssl)?password=(?P<s>[^\s&;,'\")\[(]+)"),  # unquoted: no spaces (code has them)
    # password="…" as a keyword argument or 'PASSWORD': '…' in a settings dict / JSON / YAML
    re.compile(r"(?i)['\"]?\b(?:db_?|ssl)?pass(?:word|wd)?['\"]?\s*[:=]\s*(?P<q>['\"])(?P<s>[^'\"\n]+)(?P=q)"),
    # SQL: CREATE/ALTER ROLE … PASSWORD 'secret'
    re.compile(r"(?i)\bpassword\s+'(?P<s>(?:[^']|'')*)'"),
    # AWS keys and DSQL auth tokens in text
    re.compile(r"(?P<s>\bAKIA[0-9A-Z]{16}\b)"),
    re.compile(r"(?i)X-Amz-Signature=(?P<s>[0-9a-f]{16,})"),
]


def mask(text: str) -> str:
    """``text`` with every secret replaced by as many ``*``."""
    if not text or not _MAYBE.search(text):
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(_star, text)
    return text


_MAYBE = re.compile(r"(?i)pass|://[^@\s]*@|AKIA|X-Amz-Signature")


def _star(m: re.Match) -> str:
    whole, start, end = m.group(0), m.start("s") - m.start(0), m.end("s") - m.start(0)
    return whole[:start] + "*" * (end - start) + whole[end:]
