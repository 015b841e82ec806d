"""The call-site tag: a sqlcommenter-format comment that ``dsql-audit run``'s Python hook appends to every
statement the child program sends, and that the server takes off again before the statement is judged.

    SELECT 1;   ->   SELECT 1
                     /*dsql_site='eyJmIjoiL2FwcC9tYWluLnB5IiwibCI6NDIsImZuIjoibWFpbiJ9'*/;

The value is base64url (no padding) of compact JSON, e.g.
``{"f": "/app/models.py", "l": 42, "fn": "save", "m": "/app/migrations/0002_x.py", "ml": 17}``
(``f``/``l``/``fn``: the call site; ``m``/``ml``: the migration file and the line of the operation being
applied, while a migration runs). base64url because the value must never contain ``%`` (psycopg 2/3 and
Django format ``%s`` client side, so a ``%`` in the query text would break them), quotes, ``*/``, ``?`` or
``$``.

The tag goes on a new line of its own (so a trailing ``--`` comment cannot swallow it) after the statement
and before any trailing ``;`` and whitespace; ``strip_tag`` removes exactly those bytes again.

This module has no dependencies outside the standard library and stays importable by Python 3.8: the hook
loads it, by file path, into whatever interpreter the user's command runs.
"""
from __future__ import annotations

import base64
import binascii
import json

__all__ = ["MARK", "make_tag", "add_tag", "strip_tag", "is_tagged", "decode_site"]

MARK = "dsql_site="  # cheap test: no statement without this substring carries a tag
_PREFIX = "\n/*dsql_site='"  # what add_tag inserts starts with a newline of its own
_SUFFIX = "'*/"
_TRAIL = " \t\n\r\f\v;"  # a trailing run of these stays after the tag
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

_BYTES = (_PREFIX.encode("ascii"), _SUFFIX.encode("ascii"), _TRAIL.encode("ascii"), MARK.encode("ascii"))
_B64URL_BYTES = frozenset(c.encode("ascii")[0] for c in _B64URL)


def make_tag(site: dict) -> str:
    """``/*dsql_site='…'*/`` for ``site`` (a JSON-able dict such as {"f": path, "l": line, "fn": name})."""
    raw = json.dumps(site, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return "/*dsql_site='" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") + _SUFFIX


def decode_site(value) -> dict | None:
    """The site dict of a tag value (the base64url text between the quotes), or None if it is not one."""
    try:
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("ascii")
        if not value or not _B64URL.issuperset(value):
            return None
        site = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("utf-8"))
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        return None
    return site if isinstance(site, dict) else None


def _locate(sql):
    """(start, end, value) of the tag add_tag would have put in ``sql`` (the tag is sql[start:end], the
    newline before it included), or None. Syntactic only: the value is not decoded."""
    if isinstance(sql, str):
        prefix, suffix, trail, alphabet = _PREFIX, _SUFFIX, _TRAIL, _B64URL
    else:
        prefix, suffix, trail, _, alphabet = *_BYTES, _B64URL_BYTES
    end = len(sql.rstrip(trail))
    if not sql.endswith(suffix, 0, end):
        return None
    start = sql.rfind(prefix, 0, end)
    if start < 0:
        return None
    value = sql[start + len(prefix):end - len(suffix)]
    if not value or not alphabet.issuperset(value):
        return None
    return start, end, value


def is_tagged(sql) -> bool:
    """Whether ``sql`` (str or bytes) already ends with a tag as add_tag puts it."""
    if isinstance(sql, str):
        return MARK in sql and _locate(sql) is not None
    if isinstance(sql, (bytes, bytearray)):
        return _BYTES[3] in sql and _locate(sql) is not None
    return False


def add_tag(sql, tag: str):
    """``sql`` with ``tag`` on a line of its own after the statement, before a trailing ``;`` and whitespace
    (str or bytes in, the same type out). An already tagged statement, an empty one (only whitespace and
    semicolons) and anything that is not str/bytes are returned unchanged."""
    if isinstance(sql, str):
        trail, newline, text = _TRAIL, "\n", tag
    elif isinstance(sql, (bytes, bytearray)):
        trail, newline, text = _BYTES[2], b"\n", tag.encode("ascii")
    else:
        return sql
    end = len(sql.rstrip(trail))
    if end == 0 or is_tagged(sql):
        return sql
    return sql[:end] + newline + text + sql[end:]


def strip_tag(sql):
    """(``sql`` without the tag add_tag put there, the decoded site) — byte for byte the text before
    add_tag, str or bytes as given. Without a tag, or with a malformed or foreign comment (left in place):
    (``sql``, None). Never raises."""
    try:
        if isinstance(sql, str):
            if MARK not in sql:
                return sql, None
        elif isinstance(sql, (bytes, bytearray)):
            if _BYTES[3] not in sql:
                return sql, None
        else:
            return sql, None
        found = _locate(sql)
        if found is None:
            return sql, None
        start, end, value = found
        site = decode_site(value)
        if site is None:
            return sql, None
        return sql[:start] + sql[end:], site
    except Exception:  # noqa: BLE001 - a statement that cannot be read as tagged is simply not tagged
        return sql, None
