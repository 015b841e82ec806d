"""What the engine looks up once and keeps: the gate's answer for a statement (by its shape), and catalog facts
(primary keys, column types, secondary-index keys) per catalog version."""

from __future__ import annotations

import contextlib
import re
import threading

from dsql_audit.engine import writes
from dsql_audit.engine.gate import analyse_text, judge
from dsql_audit.facts import Facts
from dsql_audit.model import Unit
from dsql_audit.sqltext import blank_literals

_SHAPED = re.compile(r"\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I)
_TRAILING_TAG = re.compile(r"\s*/\*[^*]*(?:\*(?!/)[^*]*)*\*/\s*;?\s*\Z")
_CACHED_CHARS = 16_384  # statements up to this long have the gate's answer cached by shape (Engine.decide)
_BIG_STATEMENT = threading.Lock()


_NUMBER = re.compile(r"\b\d+\b")


def shape(body: str) -> str | tuple:
    """The cache key of a statement's shape: ``blank_literals`` (its string and number literals as ?), or, for
    a statement without double quotes (identifiers it keeps as written) or question marks, the cheaper key
    that replaces each run of digits standing on its own (between non-word characters) by ?. Two
    statements with the same cheap key differ only in the digits of such runs, and blank_literals cannot tell
    them apart either (inside a string it blanks the whole string; outside, such a run is a number it blanks,
    where the characters around it decide how much) — so the cheap key is never coarser than the shape; it
    only skips the slow pattern (four alternatives tried at every character). The cheap key is a tuple, so it
    never equals a shape blank_literals made ("x = 1.5" → "x = ?.?", the shape of "x = ?.?" itself)."""
    if '"' in body or "?" in body:
        return blank_literals(body)
    return ("digits", _NUMBER.sub("?", body))


_TWIN_SLOTS = ("unit", "text", "node", "js", "_tree", "_index", "_funcs", "dsql", "klass", "parse_error", "iam")
_new_facts = Facts.__new__


def _with_text(facts: Facts, text: str) -> Facts:
    """``facts.with_text(text)``, without its loop over the slots (Facts as this module knows it)."""
    if Facts.__slots__ != _TWIN_SLOTS:
        return facts.with_text(text)
    twin = _new_facts(Facts)
    twin.unit = Unit(path=facts.unit.path, text=text, line=facts.unit.line)
    twin.text = text
    twin.node, twin.js, twin._tree, twin._index, twin._funcs = facts.node, facts.js, facts._tree, facts._index, \
        facts._funcs
    twin.dsql, twin.klass, twin.parse_error, twin.iam = facts.dsql, facts.klass, facts.parse_error, facts.iam
    return twin


def _widest(length: int, typmod: int, name: str) -> int | None:
    """The most bytes a column's value can take (None: no limit short of PostgreSQL's own)."""
    if length > 0:
        return length
    if name in ("varchar", "bpchar") and typmod > 4:
        return 4 + 4 * (typmod - 4)  # a varlena header and at most 4 bytes a character (UTF-8)
    return None


class CachedLookups:
    """The Engine's cached answers (a part of Engine, engine/cluster.py); the caches are Engine attributes."""

    def decide(self, text: str, live: bool = False):
        """The statement's facts and the gate's refusals (with ``live``, also the hits the live catalog decides,
        see gate.judge). Cached by the text with its literals blanked, for plain DML and queries: what DSQL
        refuses there does not depend on a literal's value (a workload repeats one statement shape with
        different values; parsing each costs more than running it)."""
        if len(text) > _CACHED_CHARS:
            # a long statement (a client may send up to DSQL's 10 MiB message) is not kept: 4,096 of them would
            # hold gigabytes. Over 1 MiB they are analysed one at a time, as the parse tree of one can take
            # a hundred times its text (a 10 MiB statement of tiny terms: ~1.5 GB for a moment)
            with _BIG_STATEMENT if len(text) > 1 << 20 else contextlib.nullcontext():
                facts = analyse_text(text)
                refused, pending = judge(facts, self.profile)
                return (facts, refused, pending) if live else (facts, refused)
        key, body = text, text
        # sqlcommenter and friends append /*key='value',…*/ to every statement
        tag = _TRAILING_TAG.search(text) if "*/" in text else None
        if tag is not None and "/*" not in text[:tag.start()]:
            body = text[:tag.start()]
        if "$" not in body and "--" not in body and "/*" not in body and "\\" not in body and _SHAPED.match(body):
            key = shape(body)
        hit = self._decided.get(key)
        if hit is None:
            facts = analyse_text(text)
            hit = (facts, *judge(facts, self.profile), text)
            if len(self._decided) > 4096:
                self._decided.clear()
            self._decided[key] = hit
        facts, refused, pending, seen = hit
        if seen != text:  # the same shape: this statement's own text over the shared analysis
            facts = _with_text(facts, text)
        return (facts, refused, pending) if live else (facts, refused)

    def primary_key(self, conn, schema: str | None, table: str) -> list | None:
        """The table's primary-key columns (None: no such table), cached per catalog version."""
        key = (self.catalog_version, schema, table)
        if key not in self._primary_keys:
            name = f'"{schema}"."{table}"' if schema else f'"{table}"'
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
            cols = None
            if row[0]:
                cols = [r[0] for r in conn.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
                    "a.attnum = ANY (i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
                    (name,)).fetchall()]
            if len(self._primary_keys) > 4096:
                self._primary_keys.clear()
            self._primary_keys[key] = cols
        return self._primary_keys[key]

    def column_types(self, conn, schema: str | None, table: str) -> dict:
        """{column: base type name} of a table ({}: no such table)."""
        return self._types(conn, f'"{schema}"."{table}"' if schema else f'"{table}"')

    def _types(self, conn, regclass: str) -> dict:
        """{column: base type name} of the table a regclass literal names, cached per catalog version."""
        key = ("types", self.catalog_version, regclass)
        types = self._index_keys.get(key)
        if types is None:
            types = dict(conn.execute(
                "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped", (regclass,)).fetchall())
            if len(self._index_keys) > 4096:
                self._index_keys.clear()
            self._index_keys[key] = types
        return types

    def within_bounds(self, conn, regclass: str, row_bytes: int, value_bytes: int) -> bool:
        """No row of the table can be over DSQL's row bound nor hold a value over its value bound: every column
        is of a fixed size or a length-limited varchar/char (at most 4 bytes a character), and they add up to
        less than the row bound. Cached per catalog version."""
        key = ("bounded", self.catalog_version, regclass, row_bytes, value_bytes)
        bounded = self._index_keys.get(key)
        if bounded is None:
            widest = [_widest(length, typmod, name) for length, typmod, name in conn.execute(
                "SELECT t.typlen, a.atttypmod, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped", (regclass,)).fetchall()]
            bounded = bool(widest) and None not in widest and max(widest) <= value_bytes and \
                sum(widest) + 64 <= row_bytes  # (64: the row's header and null bitmap, generously)
            if len(self._index_keys) > 4096:
                self._index_keys.clear()
            self._index_keys[key] = bounded
        return bounded

    def index_keys(self, conn, regclass: str) -> list:
        key = (self.catalog_version, regclass)
        cols = self._index_keys.get(key)
        if cols is None:
            cols = [r[0] for r in conn.execute(writes.INDEX_KEYS, (regclass,)).fetchall()]
            if len(self._index_keys) > 4096:
                self._index_keys.clear()
            self._index_keys[key] = cols
        return cols

    def value_columns(self, conn, regclass: str) -> list:
        """The table's columns DSQL's 1 MiB value bound is about (text, bytea, json …)."""
        return [c for c, t in self._types(conn, regclass).items() if t in writes.VARLENA]
