"""Secrets never reach a report: passwords in connection strings, driver keyword arguments, settings
dictionaries and SQL (`PASSWORD '…'`), AWS keys and DSQL auth tokens are masked wherever the tool prints text
it read — code snippets, captured statements, DSNs. Masks keep the secret's length, so columns and carets
stay exact; a DSN shown in a message (``redact_dsn``) tells not even that: each secret there is ``***``."""

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
    # AWS keys (long-term AKIA, temporary ASIA) and the secret parts of a DSQL auth token (a presigned URL:
    # its credential, session token and signature), wherever the token stands
    re.compile(r"(?P<s>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)"),
    re.compile(r"(?i)X-Amz-(?:Signature|Security-Token|Credential)=(?P<s>[^\s&'\"]+)"),
]
# Only in a DSN (or a driver's message quoting one), where whatever stands in a password's place is one: a URL's
# password even empty or with spaces; a key=value password, passfile or sslpassword up to the next space (a
# conninfo value holds `&`: a DSQL token does); a URL query parameter up to the next `&`.
_DSN_PATTERNS = [
    re.compile(r"://[^:/@?]*:(?P<s>[^@/?]*)@"),
    re.compile(r"(?i)(?<![?&\w])(?:password|passfile|sslpassword)\s*=\s*(?P<s>'(?:[^'\\]|\\.)*'|\S+)"),
    re.compile(r"(?i)[?&](?:password|passfile|sslpassword)=(?P<s>[^&]*)"),
]
_MAYBE = re.compile(r"(?i)pass|://[^@\s]*@|AKIA|ASIA|X-Amz-")


def mask(text: str, dsn: bool = False) -> str:
    """``text`` with every secret replaced by as many ``*``. ``dsn``: the text is a DSN, or a driver's message
    quoting one — DSN-only patterns apply too, and each secret (quotes and all) becomes ``***``."""
    if not text:
        return text
    if dsn:
        for pattern in _DSN_PATTERNS + _PATTERNS:
            text = pattern.sub(_hidden, text)
        return text
    if not _MAYBE.search(text):
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(_star, text)
    return text


def redact_dsn(dsn: str) -> str:
    """The DSN (URL or key=value form), or a message quoting one, fit to show: ``mask(dsn, dsn=True)``."""
    return mask(dsn, dsn=True)


def _star(m: re.Match) -> str:
    whole, start, end = m.group(0), m.start("s") - m.start(0), m.end("s") - m.start(0)
    return whole[:start] + "*" * (end - start) + whole[end:]


def _hidden(m: re.Match) -> str:
    whole, start, end = m.group(0), m.start("s") - m.start(0), m.end("s") - m.start(0)
    return whole[:start] + "***" + whole[end:]
