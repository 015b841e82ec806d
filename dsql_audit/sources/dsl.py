"""ORM schemas and migration DSLs of other ecosystems: what they make the database run.

One ``extract(path, text)`` reads a Prisma schema, a Rails migration or ``db/schema.rb``, a Liquibase XML/YAML/JSON
changelog, a TypeORM / Sequelize / Knex migration, or a JPA/Hibernate entity (and its ``hbm2ddl.auto`` setting),
and returns ``Emitted`` records (see ``app.py``):

- SQL the framework emits for a construct, synthesized (``literal=False``), e.g. ``CREATE INDEX`` for Rails
  ``add_index`` or ``CREATE TYPE … AS ENUM`` for a Prisma enum. A table's ``CREATE TABLE`` is one statement, as the
  framework sends it, and its column definitions are laid out on the file lines (and at the file columns) of the
  DSL lines that declare them, so a finding inside it (``serial``, ``inet``) is located at that DSL line.
- SQL written literally inside the DSL (``execute <<~SQL``, ``knex.raw('…')``, ``<sql>…</sql>``), with the position
  of its first character and the raw text, so its lines and columns map into the file.
- Constructs that are not SQL: ``{"kind": "OrmForeignKey", …}`` and ``{"kind": "SchemaAutoUpdate", …}``.

Foreign keys are never written into synthesized SQL (the ``OrmForeignKey`` construct carries them), so a key is
reported once. Parsing is lexical (no tree-sitter): a small scanner per language that knows its strings and
comments. Nothing here raises: a file that cannot be read gives the records found before the problem.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import re
from functools import lru_cache

from dsql_audit.sources.app import Emitted

# patterns the scanners below match at every position: compiled once
_RB_BLOCK_WORD = re.compile(r"\s(do|if|unless)\b")
_RB_ARG_END = re.compile(r"(do|if|unless|end)\b")
_RB_SYMBOL_KEY = re.compile(r"([A-Za-z_]\w*[?!]?)\s*:(?!:)")
_RB_STRING_KEY = re.compile(r"(\"[^\"]*\"|'[^']*')\s*:(?!:)")
_TS_CAST = re.compile(r"(as|satisfies)\b")
_RB_PERCENT = re.compile(r"%([qQwWiI]?)([(\[{<|!/])")
_RB_CALL_CHAIN = re.compile(r"(?:\.\w+[?!]?)*")
_RB_NUMBER = re.compile(r"-?\d[\d_]*(\.\d+)?")
_BLANKS = re.compile(r"[ \t]*")
_XML_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#\d+|\w+);")

__all__ = ["extract"]


# --------------------------------------------------------------------------------------------------------------
# SQL text helpers
# --------------------------------------------------------------------------------------------------------------

try:  # pglast is a dependency; its keyword lists decide which identifiers need quotes
    from pglast.keywords import RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

    _RESERVED = frozenset(k.lower() for k in set(RESERVED_KEYWORDS) | set(TYPE_FUNC_NAME_KEYWORDS))
except Exception:  # noqa: BLE001
    _RESERVED = frozenset({"all", "and", "any", "array", "as", "asc", "case", "check", "column", "constraint",
                           "create", "default", "desc", "distinct", "do", "else", "end", "for", "foreign", "from",
                           "grant", "group", "having", "in", "into", "is", "join", "left", "limit", "not", "null",
                           "offset", "on", "only", "or", "order", "primary", "references", "right", "select",
                           "table", "then", "to", "union", "unique", "user", "using", "when", "where", "with"})


def qi(name: str) -> str:
    """An identifier as PostgreSQL needs it: bare when it folds to itself and is not reserved, else quoted."""
    name = str(name)
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def qq(name: str) -> str:
    """Always quoted (Prisma quotes every identifier)."""
    return '"' + str(name).replace('"', '""') + '"'


def qn(name: str, schema: str | None = None, quote=qi) -> str:
    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


def lit(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


@lru_cache(maxsize=8192)
def _statements(sql: str) -> int:
    """How many statements pglast reads in ``sql`` (-1: it does not parse)."""
    try:
        from pglast.parser import parse_sql_json

        return len(json.loads(parse_sql_json(sql)).get("stmts") or [])
    except Exception:  # noqa: BLE001
        return -1


def _parses(sql: str) -> bool:
    return _statements(sql) == 1


def _valid_type(t: str | None) -> bool:
    return bool(t) and ";" not in t and "--" not in t and _parses(f"CREATE TABLE _t (_c {t})")


def _valid_expr(e: str | None) -> bool:
    return bool(e) and ";" not in e and "--" not in e and _parses(f"SELECT {e}")


def _valid_where(e: str | None) -> bool:
    return bool(e) and ";" not in e and "--" not in e and _parses(f"SELECT 1 WHERE {e}")


def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return s.replace("-", "_").lower()


_IRREGULAR = {"person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
              "datum": "data", "medium": "media", "status": "statuses", "index": "indices"}


def _plural(word: str) -> str:
    head, _, last = word.rpartition("_")
    low = last.lower()
    if low in _IRREGULAR.values() or low.endswith(("news", "series", "species", "data")):
        out = last
    elif low in _IRREGULAR:
        out = _IRREGULAR[low]
    elif re.search(r"[^aeiou]y$", low):
        out = last[:-1] + "ies"
    elif re.search(r"(s|x|z|ch|sh)$", low):
        out = last + "es"
    else:
        out = last + "s"
    return f"{head}_{out}" if head else out


def _singular(word: str) -> str:
    head, _, last = word.rpartition("_")
    low = last.lower()
    rev = {v: k for k, v in _IRREGULAR.items()}
    if low in rev:
        out = rev[low]
    elif low.endswith("ies") and len(low) > 3:
        out = last[:-3] + "y"
    elif re.search(r"(ss|x|z|ch|sh)es$", low) or low.endswith("statuses"):
        out = last[:-2]
    elif low.endswith("s") and not low.endswith("ss"):
        out = last[:-1]
    else:
        out = last
    return f"{head}_{out}" if head else out


# --------------------------------------------------------------------------------------------------------------
# Positions and output
# --------------------------------------------------------------------------------------------------------------

class _Pos:
    """Offsets → 1-based (line, column), in characters."""

    def __init__(self, text: str):
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def lc(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, max(offset, 0)) - 1
        return i + 1, offset - self.starts[i] + 1

    def offset(self, line: int, column: int = 1) -> int:
        return self.starts[min(max(line, 1), len(self.starts)) - 1] + column - 1


class _Layout:
    """One synthesized statement whose pieces sit on the file lines (and columns) of the constructs they come
    from: the statement starts at (line, col); a piece put at a later line goes on that line of the text, padded
    to its column, so a finding at that piece is reported where the construct is written."""

    def __init__(self, line: int, col: int):
        self.line, self.col = line, col
        self.rows = [""]

    def put(self, text: str, line: int | None = None, col: int | None = None):
        if line is not None:
            while len(self.rows) - 1 < line - self.line:
                self.rows.append("")
        row = self.rows[-1]
        gap = 1 if row and not row.endswith((" ", "(")) and not text.startswith((")", ",")) else 0
        on_row = line is not None and line - self.line == len(self.rows) - 1
        if col is not None and on_row:
            target = col - (self.col if len(self.rows) == 1 else 1)
            if target >= len(row) + gap:
                row += " " * (target - len(row))
                gap = 0
        self.rows[-1] = row + " " * gap + text

    def column(self, name: str, type_sql: str, line: int | None, name_col: int | None, type_col: int | None,
               extra: list | None = None):
        """A column definition with its type (what most findings point at) at ``type_col``: the name goes just
        before it, or, when it does not fit there, at the end of the line above (SQL does not mind the break).
        ``extra``: more (text, column) pieces of the definition, each put at its column when it still fits."""
        if line is None or type_col is None:
            self.put(name, line, name_col)
            self.put(type_sql, line, type_col)
            for text, col in extra or ():
                self.put(text, line, col)
            return
        delta = line - self.line
        base = self.col if delta == 0 else 1
        if type_col - len(name) - 1 >= base:
            self.put(name, line, type_col - len(name) - 1)
        elif delta >= 1 and len(self.rows) - 1 < delta:
            while len(self.rows) - 1 < delta - 1:
                self.rows.append("")
            self.put(name)
        else:
            self.put(name, line, name_col)
        self.put(type_sql, line, type_col)
        for text, col in extra or ():
            self.put(text, line, col)

    def comma(self):
        for i in range(len(self.rows) - 1, -1, -1):
            if self.rows[i].strip():
                self.rows[i] += ","
                return

    def text(self) -> str:
        return "\n".join(r.rstrip() for r in self.rows)


class _Out:
    def __init__(self, text: str, framework: str):
        self.pos = _Pos(text)
        self.framework = framework
        self.records: list[Emitted] = []
        self._txn = 0

    def new_txn(self) -> int:
        self._txn += 1
        return self._txn

    def sql(self, sql: str, line: int, col: int, origin: str, txn=None, dynamic=False, framework=None):
        """A synthesized statement (dropped when it does not parse as exactly one PostgreSQL statement)."""
        if sql and _parses(sql):
            self.records.append(Emitted(line=line, column=col, sql=sql, literal=False, origin=origin,
                                        framework=framework or self.framework, txn=txn, dynamic=dynamic))

    def literal(self, sql: str, line: int, col: int, origin: str, txn=None, params=(), dynamic=False,
                framework=None):
        if sql and sql.strip():
            self.records.append(Emitted(line=line, column=col, sql=sql, literal=True, origin=origin,
                                        framework=framework or self.framework, txn=txn, params=tuple(params),
                                        dynamic=dynamic))

    def fk(self, line: int, col: int, origin: str, orm: str, obj: str, target: str | None, on_delete,
           added_later: bool, txn=None, framework=None):
        construct = {"kind": "OrmForeignKey", "orm": orm, "object": obj, "target": target,
                     "on_delete": _action(on_delete), "added_later": bool(added_later)}
        self.records.append(Emitted(line=line, column=col, construct=construct, origin=origin,
                                    framework=framework or self.framework, txn=txn))

    def construct(self, construct: dict, line: int, col: int, origin: str, txn=None, framework=None):
        self.records.append(Emitted(line=line, column=col, construct=construct, origin=origin,
                                    framework=framework or self.framework, txn=txn))


_ACTIONS = {"cascade": "CASCADE", "setnull": "SET NULL", "set null": "SET NULL", "set_null": "SET NULL",
            "nullify": "SET NULL", "restrict": "RESTRICT", "noaction": "NO ACTION", "no action": "NO ACTION",
            "no_action": "NO ACTION", "setdefault": "SET DEFAULT", "set default": "SET DEFAULT",
            "set_default": "SET DEFAULT"}


def _action(value) -> str | None:
    if value is None or value is False:
        return None
    if value is True:
        return "CASCADE"
    v = re.sub(r"\s+", " ", str(value).strip().strip(":'\"")).lower()
    return _ACTIONS.get(v) or _ACTIONS.get(v.replace(" ", "")) or (v.upper() if v else None)


def _index_sql(name: str | None, table: str, cols: list[str], unique=False, concurrently=False, using=None,
               where=None, if_not_exists=False, quote=qi) -> str:
    parts = ["CREATE"]
    if unique:
        parts.append("UNIQUE")
    parts.append("INDEX")
    if concurrently:
        parts.append("CONCURRENTLY")
    if if_not_exists and name:
        parts.append("IF NOT EXISTS")
    if name:
        parts.append(quote(name))
    parts.append(f"ON {table}")
    if using and re.fullmatch(r"\w+", str(using)):
        parts.append(f"USING {str(using).lower()}")
    parts.append("(" + ", ".join(cols) + ")")
    sql = " ".join(parts)
    if where and _valid_where(where):
        sql += f" WHERE {where}"
    return sql


def _enum_sql(name: str, values, quote=qi) -> str:
    return f"CREATE TYPE {quote(name) if '.' not in name else name} AS ENUM (" + \
        ", ".join(lit(v) for v in values) + ")"


# --------------------------------------------------------------------------------------------------------------
# C-like scanning (JavaScript/TypeScript, Java/Kotlin, Prisma): strings, comments, brackets
# --------------------------------------------------------------------------------------------------------------

def _str_end(s: str, i: int) -> int:
    """Index just after the string literal that starts at ``s[i]`` (', ", ` with ${…}, or a Java \"\"\" block)."""
    n = len(s)
    q = s[i]
    if s.startswith('"""', i):
        j = s.find('"""', i + 3)
        return n if j < 0 else j + 3
    j = i + 1
    while j < n:
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == q:
            return j + 1
        if q == "`" and c == "$" and j + 1 < n and s[j + 1] == "{":
            j = _code_end(s, j + 2, "}")
            continue
        if c == "\n" and q != "`":
            return j  # an unterminated string ends at its line
        j += 1
    return n


def _code_end(s: str, i: int, close: str) -> int:
    """Index just after the ``close`` that balances code starting at ``i`` (strings and nesting skipped)."""
    n = len(s)
    depth = 0
    while i < n:
        c = s[i]
        if c in "'\"`":
            i = _str_end(s, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return i + 1 if c == close else i + 1
            depth -= 1
        i += 1
    return n


def _mask_comments(text: str, *, quotes: str = "'\"`") -> str:
    """``//`` and ``/* */`` comments → spaces (newlines kept), outside string literals."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in quotes:
            i = _str_end(text, i)
            continue
        if c == "/" and i + 1 < n and text[i + 1] in "/*":
            if text[i + 1] == "/":
                j = text.find("\n", i)
                j = n if j < 0 else j
            else:
                j = text.find("*/", i + 2)
                j = n if j < 0 else j + 2
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
            continue
        i += 1
    return "".join(out)


def _match(s: str, i: int) -> int:
    """Index of the bracket closing the one at ``s[i]`` (len(s) when unbalanced)."""
    end = _code_end(s, i + 1, {"(": ")", "[": "]", "{": "}"}.get(s[i], ")"))
    return end - 1


def _split_top(s: str, sep: str = ",") -> list[tuple[int, str]]:
    """Top-level pieces of ``s`` split at ``sep`` (outside brackets and strings), with their offsets."""
    out, depth, start, i, n = [], 0, 0, 0, len(s)
    while i < n:
        c = s[i]
        if c in "'\"`":
            i = _str_end(s, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == sep and depth == 0:
            out.append((start, s[start:i]))
            start = i + 1
        i += 1
    if s[start:].strip():
        out.append((start, s[start:]))
    return out


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"`":
        return v[1:-1]
    return v


# --------------------------------------------------------------------------------------------------------------
# Prisma
# --------------------------------------------------------------------------------------------------------------

_PRISMA_BLOCK = re.compile(r"^[ \t]*(model|enum|datasource|generator|view|type)[ \t]+(\w+)[ \t]*\{", re.M)
_PRISMA_FIELD = re.compile(r"[ \t]*(?P<name>\w+)[ \t]+(?P<type>Unsupported\(\s*\"[^\"]*\"\s*\)|\w+(?:\.\w+)?)"
                           r"(?P<mod>\[\]|\?)?")
_PRISMA_ATTR = re.compile(r"@(?P<name>@?[\w.]+)")
_PRISMA_SCALAR = {"String": "TEXT", "Boolean": "BOOLEAN", "Int": "INTEGER", "BigInt": "BIGINT",
                  "Float": "DOUBLE PRECISION", "Decimal": "DECIMAL(65,30)", "DateTime": "TIMESTAMP(3)",
                  "Json": "JSONB", "Bytes": "BYTEA"}
_PRISMA_NATIVE = {"text": "TEXT", "varchar": "VARCHAR", "char": "CHAR", "uuid": "UUID", "inet": "INET",
                  "citext": "CITEXT", "xml": "XML", "money": "MONEY", "smallint": "SMALLINT", "integer": "INTEGER",
                  "bigint": "BIGINT", "oid": "OID", "real": "REAL", "doubleprecision": "DOUBLE PRECISION",
                  "decimal": "DECIMAL", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ", "date": "DATE",
                  "time": "TIME", "timetz": "TIMETZ", "bit": "BIT", "varbit": "VARBIT", "boolean": "BOOLEAN",
                  "json": "JSON", "jsonb": "JSONB", "bytea": "BYTEA"}
_PRISMA_ACTIONS = {"Cascade": "CASCADE", "SetNull": "SET NULL", "Restrict": "RESTRICT", "NoAction": "NO ACTION",
                   "SetDefault": "SET DEFAULT"}


def _prisma_attrs(s: str, start: int, end: int) -> list[tuple[str, str | None, int]]:
    """Attributes (``@id``, ``@default(…)``, ``@@index(…)``) in s[start:end]: (name, args or None, offset)."""
    out = []
    i = start
    while i < end:
        c = s[i]
        if c == '"':
            i = _str_end(s, i)
            continue
        if c == "@":
            m = _PRISMA_ATTR.match(s, i)
            if not m:
                i += 1
                continue
            name, j = m.group("name"), m.end()
            args = None
            k = j
            while k < end and s[k] in " \t":
                k += 1
            if k < end and s[k] == "(":
                close = min(_match(s, k), end)
                args = s[k + 1:close]
                j = close + 1
            out.append((name, args, i))
            i = j
            continue
        i += 1
    return out


def _prisma_args(args: str | None) -> tuple[list[str], dict[str, str]]:
    positional, named = [], {}
    for _, piece in _split_top(args or ""):
        m = re.match(r"\s*(\w+)\s*:(?!:)(.*)", piece, re.S)
        if m:
            named[m.group(1)] = m.group(2).strip()
        elif piece.strip():
            positional.append(piece.strip())
    return positional, named


def _prisma_list(v: str | None) -> list[tuple[str, str]]:
    """``[a, b(sort: Desc)]`` → [(name, options)]."""
    if not v:
        return []
    v = v.strip()
    if v.startswith("[") and v.endswith("]"):
        v = v[1:-1]
    out = []
    for _, piece in _split_top(v):
        m = re.match(r"\s*(\w+)\s*(?:\((.*)\))?\s*$", piece, re.S)
        if m:
            out.append((m.group(1), m.group(2) or ""))
    return out


def _prisma(path: str, text: str, out: _Out):
    s = _mask_comments(text, quotes='"')
    pos = out.pos
    blocks = []
    for m in _PRISMA_BLOCK.finditer(s):
        open_ = s.index("{", m.start(2))
        close = _match(s, open_)
        blocks.append((m.group(1), m.group(2), m.start(1), open_ + 1, min(close, len(s))))

    provider, relation_mode, has_datasource = None, "foreignKeys", False
    for kind, name, start, body, end in blocks:
        if kind != "datasource":
            continue
        has_datasource = True
        block = s[body:end]
        p = re.search(r"^\s*provider\s*=\s*\"([^\"]*)\"", block, re.M)
        provider = p.group(1).lower() if p else provider
        r = re.search(r"^\s*(?:relationMode|referentialIntegrity)\s*=\s*\"([^\"]*)\"", block, re.M)
        if r:
            relation_mode = r.group(1)
        ext = re.search(r"^\s*extensions\s*=\s*\[", block, re.M)
        if ext:  # previewFeatures = ["postgresqlExtensions"]: Prisma migrate creates these
            lb = body + ext.end() - 1
            for off, piece in _split_top(s[lb + 1:_match(s, lb)]):
                em = re.match(r"\s*([\w-]+)", piece)
                if em:
                    line, col = pos.lc(lb + 1 + off + em.start(1))
                    ename = em.group(1)
                    mm = re.search(r"map\s*:\s*\"([^\"]+)\"", piece)
                    out.sql(f'CREATE EXTENSION IF NOT EXISTS {qq(mm.group(1) if mm else ename)}', line, col,
                            "Prisma datasource extensions")
    if provider in ("mongodb",):
        return
    postgres = provider in (None, "postgresql", "postgres", "cockroachdb") if has_datasource else True
    postgres = postgres and provider not in ("mysql", "sqlite", "sqlserver")
    foreign_keys = relation_mode != "prisma"

    enums = {name for kind, name, *_ in blocks if kind == "enum"}
    models: dict[str, dict] = {}
    for kind, name, start, body, end in blocks:
        if kind != "model":
            continue
        info = {"table": name, "schema": None, "fields": {}, "start": start, "body": body, "end": end}
        for aname, args, off in _prisma_attrs(s, body, end):
            if aname in ("@map", "@schema") and s[off:off + 2] == "@@":
                pos_args, named = _prisma_args(args)
                value = _unquote(named.get("name") or (pos_args[0] if pos_args else ""))
                info["table" if aname == "@map" else "schema"] = value or info["table"]
        models[name] = info
    for name, info in models.items():  # fields: name → (column, type, modifier, line offsets)
        body, end = info["body"], info["end"]
        for lm in re.finditer(r"[^\n]*", s[body:end]):
            line_start = body + lm.start()
            row = lm.group(0)
            if not row.strip() or row.strip().startswith("@"):
                continue
            fm = _PRISMA_FIELD.match(row)
            if not fm:
                continue
            rest_start = line_start + fm.end()
            attrs = _prisma_attrs(s, rest_start, line_start + len(row))
            column = fm.group("name")
            for aname, args, _ in attrs:
                if aname == "map":
                    pa, na = _prisma_args(args)
                    column = _unquote(na.get("name") or (pa[0] if pa else column)) or column
            info["fields"][fm.group("name")] = {
                "column": column, "type": fm.group("type"), "mod": fm.group("mod"), "attrs": attrs,
                "name_off": line_start + fm.start("name"), "type_off": line_start + fm.start("type")}

    def table_of(model: str) -> str:
        info = models[model]
        return qn(info["table"], info["schema"], qq)

    def cols_of(model: str, names: list[str]) -> list[str]:
        fields = models[model]["fields"]
        return [fields[n]["column"] if n in fields else n for n in names]

    m2m: dict[tuple, list] = {}
    for kind, name, start, body, end in blocks:
        sline, scol = pos.lc(start)
        if kind == "enum" and postgres:
            block = list(s[body:end])
            attrs = _prisma_attrs(s, body, end)
            for aname, args, off in attrs:  # values are the words left once attributes are blanked
                stop = off + len(aname) + 1 + (len(args) + 2 if args is not None else 0)
                stop = s.find(")", off) + 1 if args is not None else stop
                for k in range(off - body, min(stop, end) - body):
                    block[k] = " "
            values = re.findall(r"[A-Za-z_]\w*", "".join(block))
            mapped = name
            for aname, args, off in attrs:
                if aname == "@map":
                    pa, na = _prisma_args(args)
                    mapped = _unquote(na.get("name") or (pa[0] if pa else name)) or name
            if values:
                out.sql(_enum_sql(mapped, values, qq), sline, scol, "Prisma enum")
            continue
        if kind != "model":
            continue
        info = models[name]
        table = table_of(name)
        layout = _Layout(sline, scol)
        layout.put(f"CREATE TABLE {table} (")
        n_cols = 0
        later: list[tuple[int, callable]] = []
        for fname, f in info["fields"].items():
            ftype, mod, attrs = f["type"], f["mod"], f["attrs"]
            fline, fcol = pos.lc(f["name_off"])
            type_col = pos.lc(f["type_off"])[1]
            amap = {a: (args, off) for a, args, off in attrs}
            if ftype in models:  # a relation field
                if "relation" in amap:
                    args, off = amap["relation"]
                    _, named = _prisma_args(args)
                    fields = [n for n, _ in _prisma_list(named.get("fields"))]
                    refs = [n for n, _ in _prisma_list(named.get("references"))]
                    if fields and foreign_keys:
                        action = named.get("onDelete")
                        optional = mod == "?" or any(
                            info["fields"].get(x, {}).get("mod") == "?" for x in fields)
                        on_delete = _PRISMA_ACTIONS.get(action or "", action) if action else (
                            "SET NULL" if optional else "RESTRICT")
                        rline, rcol = pos.lc(off)
                        obj = f"{info['table']}.{','.join(cols_of(name, fields))}"
                        target = f"{models[ftype]['table']}.{','.join(cols_of(ftype, refs))}" if refs else \
                            models[ftype]["table"]
                        later.append((off, lambda rline=rline, rcol=rcol, obj=obj, target=target, od=on_delete:
                                      out.fk(rline, rcol, "Prisma @relation", "Prisma", obj, target, od, True)))
                elif mod == "[]":
                    key = tuple(sorted((name, ftype)))
                    m2m.setdefault(key, []).append((name, fname, f["name_off"]))
                continue
            if ftype.startswith("Unsupported"):
                sql_type = _unquote(ftype[ftype.index("(") + 1:ftype.rindex(")")])
                type_at = f["type_off"]
            elif ftype in _PRISMA_SCALAR:
                sql_type, type_at = _PRISMA_SCALAR[ftype], f["type_off"]
            elif ftype in enums:
                if not postgres:
                    continue
                sql_type, type_at = qq(ftype), f["type_off"]
            else:
                continue
            for aname, args, off in attrs:
                if aname.startswith("db."):
                    native = _PRISMA_NATIVE.get(aname[3:].lower())
                    if native:
                        sql_type = native + (f"({args.strip()})" if args and args.strip() else "")
                        type_at = off
            if mod == "[]":
                sql_type += "[]"
            default = None
            if "default" in amap:
                dargs, doff = amap["default"]
                pa, _ = _prisma_args(dargs)
                d = pa[0] if pa else ""
                if d.startswith("autoincrement"):
                    serial = {"INTEGER": "SERIAL", "BIGINT": "BIGSERIAL", "SMALLINT": "SMALLSERIAL"}.get(sql_type)
                    if serial:
                        sql_type, type_at = serial, doff
                elif d.startswith("dbgenerated"):
                    inner = re.match(r"dbgenerated\(\s*\"((?:[^\"\\]|\\.)*)\"\s*\)", d)
                    if inner and _valid_expr(inner.group(1)):
                        default = inner.group(1)
                elif d.startswith("now"):
                    default = "CURRENT_TIMESTAMP"
                elif re.fullmatch(r"-?\d+(\.\d+)?|true|false", d):
                    default = d
                elif d.startswith('"'):
                    default = lit(_unquote(d))
                elif ftype in enums and re.fullmatch(r"\w+", d):
                    default = lit(d)
            if not _valid_type(sql_type):
                continue
            defn = sql_type
            if mod not in ("?", "[]"):
                defn += " NOT NULL"
            if default is not None:
                defn += f" DEFAULT {default}"
            if "id" in amap:
                defn += " PRIMARY KEY"
            if n_cols:
                layout.comma()
            tline, tcol = pos.lc(type_at)
            if tline != fline:
                tcol = None
            layout.column(qq(f["column"]), defn, fline, fcol, tcol or type_col)
            n_cols += 1
            if "unique" in amap:
                uargs, uoff = amap["unique"]
                _, named = _prisma_args(uargs)
                iname = _unquote(named.get("map", "")) or f"{info['table']}_{f['column']}_key"
                uline, ucol = pos.lc(uoff)
                later.append((uoff, lambda uline=uline, ucol=ucol, iname=iname, col=f["column"]:
                              out.sql(_index_sql(iname, table, [qq(col)], unique=True, quote=qq), uline, ucol,
                                      "Prisma @unique")))
        for aname, args, off in _prisma_attrs(s, info["body"], info["end"]):
            if not aname.startswith("@"):
                continue
            aname = aname[1:]
            if aname not in ("index", "unique", "id"):
                continue
            pa, named = _prisma_args(args)
            cols = _prisma_list(named.get("fields") or (pa[0] if pa else ""))
            if not cols:
                continue
            names = cols_of(name, [c for c, _ in cols])
            aline, acol = pos.lc(off)
            if aname == "id":
                if n_cols:
                    layout.comma()
                layout.put("PRIMARY KEY (" + ", ".join(qq(c) for c in names) + ")", aline, acol)
                n_cols += 1
                continue
            keys = []
            for (c, opts), dbname in zip(cols, names):
                k = qq(dbname)
                if re.search(r"sort\s*:\s*Desc", opts):
                    k += " DESC"
                keys.append(k)
            suffix = "key" if aname == "unique" else "idx"
            iname = _unquote(named.get("map", "")) or f"{info['table']}_{'_'.join(names)}_{suffix}"
            using = named.get("type")
            later.append((off, lambda aline=aline, acol=acol, iname=iname, keys=keys, u=aname == "unique",
                          using=using: out.sql(_index_sql(iname, table, keys, unique=u, using=using, quote=qq),
                                               aline, acol, f"Prisma @@{'unique' if u else 'index'}")))
        layout.put(")")
        if n_cols:
            out.sql(layout.text(), sline, scol, "Prisma model")
        for _, emit in sorted(later, key=lambda x: x[0]):
            emit()
    # implicit many-to-many relations: Prisma creates a join table "_AToB" ("A", "B") with keys to both sides
    for (a, b), sides in sorted(m2m.items()):
        if len(sides) < 2 or a not in models or b not in models:
            continue
        _, _, off = min(sides, key=lambda x: x[2])
        line, col = pos.lc(off)
        jt = f"_{a}To{b}"
        ida = next((f for f in models[a]["fields"].values() if any(x[0] == "id" for x in f["attrs"])), None)
        idb = next((f for f in models[b]["fields"].values() if any(x[0] == "id" for x in f["attrs"])), None)
        ta = _PRISMA_SCALAR.get(ida["type"], "TEXT") if ida else "TEXT"
        tb = _PRISMA_SCALAR.get(idb["type"], "TEXT") if idb else "TEXT"
        out.sql(f'CREATE TABLE {qq(jt)} ("A" {ta} NOT NULL, "B" {tb} NOT NULL, '
                f'CONSTRAINT {qq(jt + "_AB_pkey")} PRIMARY KEY ("A", "B"))', line, col, "Prisma implicit m2m")
        out.sql(_index_sql(f"{jt}_B_index", qq(jt), ['"B"'], quote=qq), line, col, "Prisma implicit m2m")
        if foreign_keys:
            out.fk(line, col, "Prisma implicit m2m", "Prisma", f"{jt}.A",
                   f"{models[a]['table']}.{ida['column'] if ida else 'id'}", "CASCADE", True)
            out.fk(line, col, "Prisma implicit m2m", "Prisma", f"{jt}.B",
                   f"{models[b]['table']}.{idb['column'] if idb else 'id'}", "CASCADE", True)


# --------------------------------------------------------------------------------------------------------------
# Ruby (Rails migrations and db/schema.rb)
# --------------------------------------------------------------------------------------------------------------

_HEREDOC = re.compile(r"<<([~-]?)(['\"`]?)([A-Za-z_]\w*)\2")
_PCT_DELIM = {"(": ")", "[": "]", "{": "}", "<": ">"}


def _ruby_scan(text: str) -> tuple[str, dict]:
    """Ruby source → (text with comments and heredoc bodies blanked, {opener offset: heredoc}). A heredoc is
    {"body": (start, end) of its body, "interp": bool, "squiggly": bool}. Strings are kept."""
    out = list(text)
    heredocs: dict[int, dict] = {}
    pending: list = []
    n = len(text)
    i = 0

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start and text.startswith("=begin", i):
            j = re.compile(r"^=end\b[^\n]*", re.M).search(text, i)
            j = n if j is None else j.end()
            blank(i, j)
            i = j
            continue
        at_line_start = False
        if c == "\n":
            at_line_start = True
            if pending:  # heredoc bodies start on the next line, one after another
                j = i + 1
                for h in pending:
                    term = re.compile(r"^[ \t]*" + re.escape(h["id"]) + r"[ \t]*$" if h["indent"] else
                                      r"^" + re.escape(h["id"]) + r"[ \t]*$", re.M)
                    m = term.search(text, j)
                    end = n if m is None else m.start()
                    h["body"] = (j, end)
                    stop = n if m is None else m.end()
                    blank(j, stop)
                    j = stop
                pending = []
                i = j
                continue
            i += 1
            continue
        if c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
            continue
        if c in "'\"`":
            i = _rb_str_end(text, i)
            continue
        if c == "<" and text.startswith("<<", i):
            m = _HEREDOC.match(text, i)
            if m and (m.group(1) or m.group(2) or m.group(3).isupper()):
                h = {"id": m.group(3), "indent": bool(m.group(1)), "squiggly": m.group(1) == "~",
                     "interp": m.group(2) != "'", "body": (n, n)}
                heredocs[i] = h
                pending.append(h)
                i = m.end()
                continue
        if c == "%" and i + 1 < n:
            m = _RB_PERCENT.match(text, i)
            if m and (i == 0 or text[i - 1] in " \t(,=[\n"):
                close = _PCT_DELIM.get(m.group(2), m.group(2))
                j = text.find(close, m.end())
                i = n if j < 0 else j + 1
                continue
        i += 1
    return "".join(out), heredocs


def _rb_str_end(s: str, i: int) -> int:
    q, n, j = s[i], len(s), i + 1
    while j < n:
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == q:
            return j + 1
        if q != "'" and c == "#" and j + 1 < n and s[j + 1] == "{":
            depth, j = 1, j + 2
            while j < n and depth:
                depth += {"{": 1, "}": -1}.get(s[j], 0)
                j += 1
            continue
        j += 1
    return n


class _V:
    """A parsed Ruby/JS value: kind (sym, str, heredoc, arr, hash, num, bool, nil, lambda, raw), value, span."""

    __slots__ = ("kind", "value", "start", "end", "extra")

    def __init__(self, kind, value, start, end, extra=None):
        self.kind, self.value, self.start, self.end, self.extra = kind, value, start, end, extra

    @property
    def name(self):
        """A symbol's or string's text (what Rails takes as a name)."""
        return str(self.value) if self.kind in ("sym", "str") else None

    def __repr__(self):
        return f"_V({self.kind}, {self.value!r})"


_RB_ID = re.compile(r"[A-Za-z_]\w*[?!]?")


class _Rb:
    """Ruby call arguments and blocks, read from the masked source."""

    def __init__(self, text: str):
        self.text = text
        self.s, self.heredocs = _ruby_scan(text)
        self.n = len(self.s)

    def ws(self, i, nl=False):
        s, n = self.s, self.n
        while i < n:
            c = s[i]
            if c in " \t\r" or (nl and c == "\n"):
                i += 1
            elif c == "\\" and i + 1 < n and s[i + 1] == "\n":
                i += 2
            else:
                break
        return i

    def string(self, i) -> _V:
        s = self.text
        end = _rb_str_end(s, i)
        raw = s[i + 1:end - 1]
        q = s[i]
        dynamic = False
        if q != "'" and "#{" in raw:
            raw, dynamic = _rb_interp(raw), True
        value = re.sub(r"\\(.)", r"\1", raw) if q == "'" else _rb_unescape(raw)
        return _V("str", value, i, end, (i + 1, raw, dynamic))

    def value(self, i) -> _V:
        s, n = self.s, self.n
        i = self.ws(i)
        if i >= n:
            return _V("raw", "", i, i)
        c = s[i]
        if c == ":" and i + 1 < n:
            if s[i + 1] in "'\"":
                v = self.string(i + 1)
                return _V("sym", v.value, i, v.end)
            m = _RB_ID.match(s, i + 1)
            if m:
                return _V("sym", m.group(), i, m.end())
        if c in "'\"":
            return self.string(i)
        if c == "%":
            m = _RB_PERCENT.match(s, i)
            if m:
                close = _PCT_DELIM.get(m.group(2), m.group(2))
                j = s.find(close, m.end())
                j = n if j < 0 else j
                body = s[m.end():j]
                if m.group(1) in "wWiI" and m.group(1):
                    return _V("arr", [_V("str", w, i, j) for w in body.split()], i, j + 1)
                return _V("str", body, i, j + 1, (m.end(), body, False))
        if c == "[":
            items, j = [], i + 1
            while True:
                j = self.ws(j, nl=True)
                if j >= n or s[j] == "]":
                    return _V("arr", items, i, min(j + 1, n))
                v = self.value(j)
                if v.end <= j:
                    close = _match(s, i)
                    return _V("arr", items, i, close + 1)
                items.append(v)
                j = self.ws(v.end, nl=True)
                if j < n and s[j] == ",":
                    j += 1
        if c == "{":
            pos, kw, end = self.args(i, close="}")
            return _V("hash", kw, i, end, pos)
        if c == "<" and i in self.heredocs:
            m = _HEREDOC.match(s, i)
            h = self.heredocs[i]
            end = m.end() if m else i + 2
            # a method on the opener (<<~SQL.squish) belongs to it
            mm = _RB_CALL_CHAIN.match(s, end)
            return _V("heredoc", h, i, mm.end(), h)
        if s.startswith("->", i):
            j = self.ws(i + 2)
            if j < n and s[j] == "(":
                j = self.ws(_match(s, j) + 1)
            if j < n and s[j] == "{":
                close = _match(s, j)
                inner = s[j + 1:close]
                sm = re.search(r"(['\"])((?:\\.|(?!\1).)*)\1", inner)
                return _V("lambda", sm.group(2) if sm else inner.strip(), i, close + 1)
        m = _RB_NUMBER.match(s, i)
        if m:
            return _V("num", m.group().replace("_", ""), i, m.end())
        m = _RB_ID.match(s, i)
        if m and m.group() in ("true", "false", "nil"):
            return _V("bool" if m.group() != "nil" else "nil", m.group() == "true" if m.group() != "nil" else None,
                      i, m.end())
        # anything else: an expression up to the next top-level comma, closing bracket or line end
        j, depth = i, 0
        while j < n:
            ch = s[j]
            if ch in "'\"":
                j = _rb_str_end(s, j)
                continue
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and (ch == "," or ch == "\n"):
                break
            elif depth == 0 and _RB_BLOCK_WORD.match(s, j):
                break
            j += 1
        return _V("raw", s[i:j].strip(), i, max(j, i + 1) if j == i else j)

    def args(self, i, close=None) -> tuple[list, dict, int]:
        """Arguments from ``i``: (positional, {keyword: value}, end). ``close``: ")" or "}" when s[i] opens."""
        s, n = self.s, self.n
        pos, kw = [], {}
        paren = close is not None
        if paren:
            i += 1
        after_comma = paren
        while True:
            i = self.ws(i, nl=after_comma or paren)
            if i >= n:
                break
            if paren and s[i] == close:
                i += 1
                break
            if not paren and (s[i] in "\n;{}" or _RB_ARG_END.match(s, i)):
                break
            m = _RB_SYMBOL_KEY.match(s, i) or \
                _RB_STRING_KEY.match(s, i)
            if m and not (s[i] in "'\"" and m.group(1) is None):
                key = _unquote(m.group(1))
                v = self.value(m.end())
                kw[key] = v
                kw.setdefault("__pos__", {})[key] = i
            else:
                v = self.value(i)
                j = self.ws(v.end)
                if s.startswith("=>", j):
                    key = v.name if v.name is not None else str(v.value)
                    v2 = self.value(j + 2)
                    kw[key] = v2
                    kw.setdefault("__pos__", {})[key] = i
                    v = v2
                else:
                    pos.append(v)
            if v.end <= i:  # no progress: stop here
                if paren:
                    i = self._skip_to(i, close)
                break
            j = self.ws(v.end)
            if j < n and s[j] == ",":
                i, after_comma = j + 1, True
                continue
            i, after_comma = j, False
            if paren:
                if j < n and s[j] == close:
                    i = j + 1
                else:
                    i = self._skip_to(j, close)
                break
            break
        return pos, kw, i

    def _skip_to(self, i, close):
        s, n, depth = self.s, self.n, 0
        while i < n:
            c = s[i]
            if c in "'\"":
                i = _rb_str_end(s, i)
                continue
            if c in "([{":
                depth += 1
            elif c in ")]}":
                if depth == 0:
                    return i + 1
                depth -= 1
            i += 1
        return n

    def call(self, i) -> tuple[list, dict, int]:
        """The arguments of a call whose name ends at ``i`` (with or without parentheses)."""
        j = self.ws(i)
        if j < self.n and self.s[j] == "(" and j == i:
            return self.args(j, close=")")
        return self.args(i)

    def block(self, i, indent: int) -> tuple[str | None, int, int] | None:
        """A ``do |t| … end`` or ``{ |t| … }`` block starting at ``i``: (param, body start, body end)."""
        s, n = self.s, self.n
        j = self.ws(i)
        if s.startswith("do", j) and (j + 2 >= n or not (s[j + 2].isalnum() or s[j + 2] == "_")):
            k = self.ws(j + 2)
            param = None
            if k < n and s[k] == "|":
                e = s.find("|", k + 1)
                param = s[k + 1:e].split(",")[0].strip() if e > 0 else None
                k = e + 1 if e > 0 else k
            return param, k, self.block_end(j, indent)
        if j < n and s[j] == "{":
            close = _match(s, j)
            k = self.ws(j + 1)
            param = None
            if k < n and s[k] == "|":
                e = s.find("|", k + 1)
                param = s[k + 1:e].split(",")[0].strip() if e > 0 else None
                k = e + 1 if e > 0 else k
            return param, k, close
        return None

    def block_end(self, i, indent: int) -> int:
        """Offset of the ``end`` closing a block opened on the line of ``i`` whose statement is at ``indent``."""
        s = self.s
        line_end = s.find("\n", i)
        if line_end < 0:
            return self.n
        for m in re.compile(r"^([ \t]*)end\b", re.M).finditer(s, line_end + 1):
            if len(m.group(1).expandtabs(2)) <= indent:
                return m.start()
        return self.n

    def indent_at(self, i) -> int:
        start = self.s.rfind("\n", 0, i) + 1
        m = _BLANKS.match(self.s, start)
        return len(m.group().expandtabs(2))


def _rb_interp(raw: str) -> str:
    """``#{…}`` → underscores of the same length (an identifier where the SQL needs a name)."""
    out, i, n = [], 0, len(raw)
    while i < n:
        if raw.startswith("#{", i):
            depth, j = 1, i + 2
            while j < n and depth:
                depth += {"{": 1, "}": -1}.get(raw[j], 0)
                j += 1
            out.append("".join("\n" if ch == "\n" else "_" for ch in raw[i:j]))
            i = j
            continue
        out.append(raw[i])
        i += 1
    return "".join(out)


def _rb_unescape(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), raw)


_RAILS_TYPES = {
    "string": "character varying", "text": "text", "integer": "integer", "bigint": "bigint", "float": "float",
    "decimal": "decimal", "numeric": "numeric", "datetime": "timestamp(6)", "timestamp": "timestamp",
    "timestamptz": "timestamptz", "time": "time", "date": "date", "binary": "bytea", "boolean": "boolean",
    "json": "json", "jsonb": "jsonb", "uuid": "uuid", "inet": "inet", "cidr": "cidr", "macaddr": "macaddr",
    "tsvector": "tsvector", "hstore": "hstore", "citext": "citext", "ltree": "ltree", "xml": "xml",
    "money": "money", "interval": "interval", "point": "point", "line": "line", "lseg": "lseg", "box": "box",
    "path": "path", "polygon": "polygon", "circle": "circle", "bit": "bit", "bit_varying": "bit varying",
    "oid": "oid", "daterange": "daterange", "numrange": "numrange", "tsrange": "tsrange", "tstzrange": "tstzrange",
    "int4range": "int4range", "int8range": "int8range", "serial": "serial", "bigserial": "bigserial",
    "smallint": "smallint", "primary_key": "bigserial", "enum": None, "virtual": None,
}
_RAILS_LITERAL_SQL = ("execute", "exec_query", "select_all", "select_one", "select_value", "select_values",
                      "select_rows", "exec_update", "exec_delete", "exec_insert")
_RAILS_METHODS = ("create_table", "create_join_table", "change_table", "add_column", "add_reference",
                  "add_belongs_to", "add_index", "add_foreign_key", "add_timestamps", "create_enum", "add_enum_value",
                  "enable_extension", "change_column", "change_column_null", "change_column_default",
                  "remove_column", "rename_column", "rename_table", "drop_table", "remove_index",
                  "add_check_constraint") + _RAILS_LITERAL_SQL
_RAILS_STMT = re.compile(r"(?:(?<=^)|(?<=[;{|(])|(?<=\bdo)|(?<=\bthen)|(?<=\belse)|(?<=\.))[ \t]*"
                         r"(?P<m>" + "|".join(_RAILS_METHODS) + r")(?=[ \t(]|$)", re.M)
_RAILS_MODEL_DML = re.compile(r"(?<![\w:.])(?P<model>(?:[A-Z]\w*::)*[A-Z]\w*)\s*"
                              r"(?P<chain>(?:\.\s*(?:where|unscoped|all|in_batches|joins|order|limit)\b"
                              r"(?:\s*\([^()\n]*\))?)*)\s*\.\s*(?P<op>update_all|delete_all|insert_all!?|upsert_all|"
                              r"create!?|find_or_create_by!?|insert!?)\b")


class _Rails:
    def __init__(self, path: str, text: str, out: _Out):
        self.rb = _Rb(text)
        self.out = out
        self.pos = out.pos
        norm = path.replace("\\", "/")
        self.schema = os.path.basename(norm) == "schema.rb"
        s = self.rb.s
        if self.schema or re.search(r"^\s*disable_ddl_transaction!", s, re.M):
            self.txn = None
        else:
            self.txn = out.new_txn()

    # -- helpers
    def lc(self, off):
        return self.pos.lc(off)

    @staticmethod
    def name(v: _V | None) -> str | None:
        if v is None:
            return None
        if v.kind in ("sym", "str"):
            return str(v.value)
        return None

    @staticmethod
    def names(v: _V | None) -> list[str]:
        if v is None:
            return []
        if v.kind == "arr":
            return [str(x.value) for x in v.value if x.kind in ("sym", "str")]
        n = _Rails.name(v)
        if n is None:
            return []
        # a string of columns with SQL around them (add_index :t, "lower(email)") is one expression key
        return [n]

    @staticmethod
    def truthy(v: _V | None) -> bool:
        return v is not None and not (v.kind == "bool" and v.value is False) and v.kind != "nil"

    def default_sql(self, v: _V | None) -> str | None:
        if v is None or v.kind == "nil":
            return None
        if v.kind == "str":
            return lit(v.value)
        if v.kind == "sym":
            return lit(v.value)
        if v.kind == "num":
            return v.value
        if v.kind == "bool":
            return "true" if v.value else "false"
        if v.kind == "lambda" and _valid_expr(v.value):
            return v.value
        if v.kind in ("arr", "hash"):
            return "'{}'"
        return None

    def col_type(self, method: str, opts: dict, extra: list) -> str | None:
        if method == "column":
            t = self.name(extra[0]) if extra else None
            if t is None:
                return None
            if t in _RAILS_TYPES:
                method = t
            else:
                return t if _valid_type(t) else None
        if method in ("references", "belongs_to"):
            t = self.name(opts.get("type")) or "bigint"
            return _RAILS_TYPES.get(t, t)
        if method == "enum":
            t = self.name(opts.get("enum_type"))
            return qi(t) if t else None
        base = _RAILS_TYPES.get(method)
        if base is None:
            return None
        limit, precision, scale = opts.get("limit"), opts.get("precision"), opts.get("scale")
        if method == "string" and limit is not None and limit.kind == "num":
            base = f"character varying({limit.value})"
        elif method == "integer" and limit is not None and limit.kind == "num":
            base = {"1": "smallint", "2": "smallint", "8": "bigint"}.get(limit.value, "integer")
        elif method in ("decimal", "numeric") and precision is not None and precision.kind == "num":
            base = f"{method}({precision.value}" + (f", {scale.value})" if scale is not None and scale.kind == "num"
                                                    else ")")
        elif method in ("datetime", "timestamp") and precision is not None and precision.kind == "num":
            base = f"timestamp({precision.value})"
        if self.truthy(opts.get("array")):
            base += "[]"
        return base

    def col_def(self, base: str, opts: dict) -> str:
        defn = base
        if opts.get("null") is not None and opts["null"].kind == "bool" and opts["null"].value is False:
            defn += " NOT NULL"
        d = self.default_sql(opts.get("default"))
        if d is not None:
            defn += f" DEFAULT {d}"
        if self.truthy(opts.get("primary_key")):
            defn += " PRIMARY KEY"
        return defn

    def index_name(self, table: str, cols: list[str]) -> str:
        keys = "_and_".join(re.sub(r"\W+", "_", c).strip("_") for c in cols)
        return f"index_{table}_on_{keys}"

    def index(self, table: str, cols: list[str], opts: dict, line: int, col: int, origin: str):
        if not cols:
            return
        name = self.name(opts.get("name")) or self.index_name(table, cols)
        keys = []
        order = opts.get("order")
        for c in cols:
            if re.fullmatch(r"\w+", c):
                k = qi(c)
                if order is not None and order.kind == "hash" and c in order.value:
                    direction = self.name(order.value[c]) or ""
                    k += " DESC" if direction.lower() == "desc" else ""
                keys.append(k)
            elif _valid_expr(c):
                keys.append(f"({c})" if not c.startswith("(") else c)
        if not keys:
            return
        concurrently = self.name(opts.get("algorithm")) == "concurrently"
        sql = _index_sql(name, qi(table), keys, unique=self.truthy(opts.get("unique")), concurrently=concurrently,
                         using=self.name(opts.get("using")), where=self.name(opts.get("where")),
                         if_not_exists=self.truthy(opts.get("if_not_exists")))
        inc = opts.get("include")
        if inc is not None and self.names(inc):
            head, _, tail = sql.partition(" WHERE ")
            sql = head + " INCLUDE (" + ", ".join(qi(c) for c in self.names(inc)) + ")" + \
                (" WHERE " + tail if tail else "")
        self.out.sql(sql, line, col, origin, self.txn)

    def reference_columns(self, table: str, ref: str, opts: dict) -> list[tuple[str, str]]:
        base = self.col_type("references", opts, [])
        cols = [(f"{ref}_id", self.col_def(base, opts))]
        if self.truthy(opts.get("polymorphic")):
            cols.insert(0, (f"{ref}_type", self.col_def("character varying", opts)))
        return cols

    def reference_fk(self, table: str, ref: str, opts: dict, line: int, col: int, origin: str, later: bool):
        fk = opts.get("foreign_key")
        if not self.truthy(fk) or self.truthy(opts.get("polymorphic")):
            return
        target, on_delete, pk = _plural(ref), None, "id"
        if fk.kind == "hash":
            target = self.name(fk.value.get("to_table")) or target
            on_delete = self.name(fk.value.get("on_delete"))
            pk = self.name(fk.value.get("primary_key")) or pk
        self.out.fk(line, col, origin, "Rails", f"{table}.{ref}_id", f"{target}.{pk}", on_delete, later, self.txn)

    # -- statements
    def run(self):
        rb = self.rb
        s = rb.s
        skipped = self.skipped_regions()
        consumed = 0
        for m in _RAILS_STMT.finditer(s):
            start = m.start("m")
            if start < consumed or any(a <= start < b for a, b in skipped):
                continue
            method = m.group("m")
            if s[m.start("m") - 1:m.start("m")] == "." and method not in _RAILS_LITERAL_SQL:
                continue
            try:
                end = getattr(self, "do_" + method, self.do_literal if method in _RAILS_LITERAL_SQL else None)(
                    method, start, m.end("m"))
            except Exception:  # noqa: BLE001 - one unreadable statement does not stop the file
                end = None
            if end:
                consumed = end
        for m in _RAILS_MODEL_DML.finditer(s):
            if any(a <= m.start() < b for a, b in skipped) or m.group("model") in ("ActiveRecord", "Base"):
                continue
            self.model_dml(m)
        self.out.records.sort(key=lambda e: (e.line, e.column))

    def skipped_regions(self) -> list[tuple[int, int]]:
        """Code a deploy does not run: ``def down`` / ``def self.down``, ``dir.down`` and ``revert`` blocks."""
        rb, s = self.rb, self.rb.s
        out = []
        for m in re.finditer(r"^([ \t]*)def\s+(?:self\.)?down\b", s, re.M):
            out.append((m.start(), rb.block_end(m.start(), len(m.group(1).expandtabs(2)))))
        for m in re.finditer(r"^([ \t]*)(?:\w+\.down|revert)\b", s, re.M):
            blk = rb.block(m.end(), len(m.group(1).expandtabs(2)))
            if blk:
                out.append((m.start(), blk[2]))
        return out

    def model_dml(self, m: re.Match):
        """Data changed through a model in a migration (DML in the migration's transaction)."""
        table = qi(_plural(_snake(m.group("model").split("::")[-1])))
        op = m.group("op").rstrip("!")
        where = ".where" in (m.group("chain") or "")
        line, col = self.lc(m.start())
        if op in ("update_all",):
            pos, kw, _ = self.rb.call(m.end())
            keys = [k for k in kw if k != "__pos__"]
            if keys:
                sets = ", ".join(f"{qi(k)} = ${i + 1}" for i, k in enumerate(keys))
            elif pos and pos[0].kind == "str" and _parses(f"UPDATE t SET {pos[0].value}"):
                sets = pos[0].value
            else:
                sets = "updated_at = $1"
            n = sets.count("$") + 1
            sql = f"UPDATE {table} SET {sets}" + (f" WHERE ${n}" if where else "")
        elif op == "delete_all":
            sql = f"DELETE FROM {table}" + (" WHERE $1" if where else "")
        else:
            sql = f"INSERT INTO {table} DEFAULT VALUES"
        self.out.sql(sql, line, col, f"Rails {m.group('model')}.{m.group('op')}", self.txn, dynamic=True)

    def do_literal(self, method, start, after):
        rb = self.rb
        pos, kw, end = rb.call(after)
        if not pos:
            return end
        v = pos[0]
        origin = f"Rails {method}"
        if v.kind == "heredoc":
            a, b = v.value["body"]
            raw = rb.text[a:b]
            dynamic = False
            if v.value["interp"] and "#{" in raw:
                raw, dynamic = _rb_interp(raw), True
            line, col = self.lc(a)
            self.out.literal(raw, line, col, origin, self.txn, params=(), dynamic=dynamic)
        elif v.kind == "str" and v.extra:
            cstart, raw, dynamic = v.extra
            text = raw if "\\" not in raw else v.value
            line, col = self.lc(cstart)
            self.out.literal(text, line, col, origin, self.txn, params=(), dynamic=dynamic)
        return end

    def do_enable_extension(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        name = self.name(pos[0]) if pos else None
        if name:
            line, col = self.lc(start)
            self.out.sql(f"CREATE EXTENSION IF NOT EXISTS {qq(name)}", line, col, "Rails enable_extension", self.txn)
        return end

    def do_create_enum(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2:
            values = self.names(pos[1])
            name = self.name(pos[0])
            if name and values:
                line, col = self.lc(start)
                self.out.sql(_enum_sql(name, values), line, col, "Rails create_enum", self.txn)
        return end

    def do_add_enum_value(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and self.name(pos[0]) and self.name(pos[1]):
            line, col = self.lc(start)
            self.out.sql(f"ALTER TYPE {qi(self.name(pos[0]))} ADD VALUE {lit(self.name(pos[1]))}", line, col,
                         "Rails add_enum_value", self.txn)
        return end

    def do_create_table(self, method, start, after):
        rb = self.rb
        pos, kw, end = rb.call(after)
        table = self.name(pos[0]) if pos else None
        line, col = self.lc(start)
        blk = rb.block(end, rb.indent_at(start))
        if table is None:
            return blk[2] if blk else end
        layout = _Layout(line, col)
        head = "CREATE TABLE "
        if self.truthy(kw.get("if_not_exists")):
            head += "IF NOT EXISTS "
        layout.put(f"{head}{qi(table)} (")
        ncols = 0
        id_opt = kw.get("id")
        pk = kw.get("primary_key")
        pk_names = self.names(pk) if pk is not None else []
        composite = len(pk_names) > 1
        if not (id_opt is not None and id_opt.kind == "bool" and id_opt.value is False) and not composite:
            id_type = self.name(id_opt) if id_opt is not None else None
            id_name = pk_names[0] if pk_names else "id"
            if id_type in (None, "primary_key", "bigint", "bigserial"):
                id_def = "bigserial PRIMARY KEY"
            elif id_type in ("integer", "serial"):
                id_def = "serial PRIMARY KEY"
            elif id_type == "uuid":
                d = self.default_sql(kw.get("default")) or "gen_random_uuid()"
                id_def = f"uuid DEFAULT {d} PRIMARY KEY"
            else:
                t = _RAILS_TYPES.get(id_type, id_type)
                id_def = f"{t} PRIMARY KEY" if t and _valid_type(t) else "bigserial PRIMARY KEY"
            layout.column(qi(id_name), id_def, None, None, None)
            ncols += 1
        after_table: list = []
        if blk:
            param, body_start, body_end = blk
            ncols = self.table_body(table, param, body_start, body_end, layout, ncols, after_table, create=True)
        if composite:
            if ncols:
                layout.comma()
            layout.put("PRIMARY KEY (" + ", ".join(qi(c) for c in pk_names) + ")")
            ncols += 1
        layout.put(")")
        if ncols:
            self.out.sql(layout.text(), line, col, f"Rails {method}", self.txn)
        for emit in after_table:
            emit()
        return blk[2] if blk else end

    def do_create_join_table(self, method, start, after):
        rb = self.rb
        pos, kw, end = rb.call(after)
        names = [self.name(p) for p in pos[:2] if self.name(p)]
        line, col = self.lc(start)
        blk = rb.block(end, rb.indent_at(start))
        if len(names) == 2:
            table = self.name(kw.get("table_name")) or "_".join(sorted(names))
            layout = _Layout(line, col)
            layout.put(f"CREATE TABLE {qi(table)} (")
            cols = [f"{qi(_singular(n) + '_id')} bigint NOT NULL" for n in names]
            layout.put(", ".join(cols))
            ncols = 2
            after_table: list = []
            if blk:
                ncols = self.table_body(table, blk[0], blk[1], blk[2], layout, ncols, after_table, create=True)
            layout.put(")")
            self.out.sql(layout.text(), line, col, "Rails create_join_table", self.txn)
            for emit in after_table:
                emit()
        return blk[2] if blk else end

    def do_change_table(self, method, start, after):
        rb = self.rb
        pos, kw, end = rb.call(after)
        table = self.name(pos[0]) if pos else None
        blk = rb.block(end, rb.indent_at(start))
        if table and blk:
            after_table: list = []
            self.table_body(table, blk[0], blk[1], blk[2], None, 0, after_table, create=False)
            for emit in after_table:
                emit()
        return blk[2] if blk else end

    def table_body(self, table, param, body_start, body_end, layout, ncols, after_table, create: bool) -> int:
        """``t.<type> :name, …`` lines of a create_table / change_table block."""
        rb, s = self.rb, self.rb.s
        if not param:
            return ncols
        stmt = re.compile(r"(?<![\w.])" + re.escape(param) + r"\s*\.\s*(\w+[!?]?)")
        for m in stmt.finditer(s, body_start, body_end):
            method = m.group(1)
            pos, kw, end = rb.call(m.end())
            line, col = self.lc(m.start())
            tline, tcol = self.lc(m.start(1))
            origin = f"Rails t.{method}"
            if method in ("index",):
                cols = self.names(pos[0]) if pos else []
                after_table.append(lambda cols=cols, kw=kw, line=line, col=col, origin=origin:
                                   self.index(table, cols, kw, line, col, origin))
                continue
            if method == "timestamps":
                cols = [("created_at", "timestamp(6) NOT NULL"), ("updated_at", "timestamp(6) NOT NULL")]
                if "null" in kw:
                    cols = [(c, self.col_def("timestamp(6)", kw)) for c, _ in cols]
            elif method in ("references", "belongs_to"):
                cols = []
                for p in pos:
                    ref = self.name(p)
                    if not ref:
                        continue
                    cols += self.reference_columns(table, ref, kw)
                    idx = kw.get("index")
                    if not (idx is not None and idx.kind == "bool" and idx.value is False):
                        icols = [f"{ref}_type", f"{ref}_id"] if self.truthy(kw.get("polymorphic")) else [f"{ref}_id"]
                        iopts = idx.value if idx is not None and idx.kind == "hash" else {}
                        after_table.append(lambda icols=icols, iopts=iopts, line=line, col=col:
                                           self.index(table, icols, iopts, line, col, "Rails t.references"))
                    after_table.append(lambda ref=ref, kw=kw, line=line, col=col:
                                       self.reference_fk(table, ref, kw, line, col, "Rails t.references",
                                                         later=not create))
            elif method in ("remove", "remove_references", "remove_belongs_to", "remove_timestamps", "rename",
                            "change", "change_default", "change_null", "remove_index", "check_constraint"):
                self.change_table_op(table, method, pos, kw, line, col)
                continue
            else:
                base = self.col_type(method, kw, pos[1:] if method == "column" else [])
                if base is None:
                    continue
                names = [self.name(p) for p in (pos[:1] if method == "column" else pos) if self.name(p)]
                cols = [(n, self.col_def(base, kw)) for n in names]
                idx = kw.get("index")
                if self.truthy(idx):
                    for n in names:
                        iopts = idx.value if idx.kind == "hash" else {}
                        after_table.append(lambda n=n, iopts=iopts, line=line, col=col:
                                           self.index(table, [n], iopts, line, col, "Rails t.index"))
            for cname, cdef in cols:
                if create:
                    if ncols:
                        layout.comma()
                    layout.column(qi(cname), cdef, tline, None, tcol)
                    ncols += 1
                else:
                    self.out.sql(f"ALTER TABLE {qi(table)} ADD COLUMN {qi(cname)} {cdef}", line, col,
                                 f"Rails change_table t.{method}", self.txn)
        return ncols

    def change_table_op(self, table, method, pos, kw, line, col):
        names = [self.name(p) for p in pos if self.name(p)]
        t = qi(table)
        sqls = []
        if method == "remove":
            sqls = [f"ALTER TABLE {t} DROP COLUMN {qi(n)}" for n in names]
        elif method == "rename" and len(names) >= 2:
            sqls = [f"ALTER TABLE {t} RENAME COLUMN {qi(names[0])} TO {qi(names[1])}"]
        elif method == "change" and len(pos) >= 2:
            base = self.col_type("column", kw, [pos[1]])
            if base:
                sqls = [f"ALTER TABLE {t} ALTER COLUMN {qi(names[0])} TYPE {base}"]
        for sql in sqls:
            self.out.sql(sql, line, col, f"Rails t.{method}", self.txn)

    def do_add_column(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 3:
            table, cname = self.name(pos[0]), self.name(pos[1])
            tname = self.name(pos[2])
            base = self.col_type(tname, kw, []) if tname in _RAILS_TYPES else self.col_type("column", kw, [pos[2]])
            if table and cname and base:
                line, col = self.lc(start)
                tline, tcol = self.lc(pos[2].start)
                layout = _Layout(line, col)
                layout.put(f"ALTER TABLE {qi(table)} ADD COLUMN")
                layout.column(qi(cname), self.col_def(base, kw), tline, None, tcol)
                self.out.sql(layout.text(), line, col, "Rails add_column", self.txn)
        return end

    def do_add_timestamps(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        table = self.name(pos[0]) if pos else None
        if table:
            line, col = self.lc(start)
            for c in ("created_at", "updated_at"):
                self.out.sql(f"ALTER TABLE {qi(table)} ADD COLUMN {c} {self.col_def('timestamp(6)', kw)}",
                             line, col, "Rails add_timestamps", self.txn)
        return end

    def do_add_reference(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and self.name(pos[0]) and self.name(pos[1]):
            table, ref = self.name(pos[0]), self.name(pos[1])
            line, col = self.lc(start)
            for cname, cdef in self.reference_columns(table, ref, kw):
                self.out.sql(f"ALTER TABLE {qi(table)} ADD COLUMN {qi(cname)} {cdef}", line, col,
                             f"Rails {method}", self.txn)
            idx = kw.get("index")
            if not (idx is not None and idx.kind == "bool" and idx.value is False):
                icols = [f"{ref}_type", f"{ref}_id"] if self.truthy(kw.get("polymorphic")) else [f"{ref}_id"]
                self.index(table, icols, idx.value if idx is not None and idx.kind == "hash" else {}, line, col,
                           f"Rails {method}")
            self.reference_fk(table, ref, kw, line, col, f"Rails {method}", later=True)
        return end

    do_add_belongs_to = do_add_reference

    def do_add_index(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and self.name(pos[0]):
            line, col = self.lc(start)
            self.index(self.name(pos[0]), self.names(pos[1]), kw, line, col, "Rails add_index")
        return end

    def do_add_foreign_key(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and self.name(pos[0]) and self.name(pos[1]):
            table, target = self.name(pos[0]), self.name(pos[1])
            column = self.name(kw.get("column")) or f"{_singular(target)}_id"
            pk = self.name(kw.get("primary_key")) or "id"
            line, col = self.lc(start)
            self.out.fk(line, col, "Rails add_foreign_key", "Rails", f"{table}.{column}", f"{target}.{pk}",
                        self.name(kw.get("on_delete")), True, self.txn)
        return end

    def do_change_column(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 3 and all(self.name(p) for p in pos[:2]):
            base = self.col_type("column", kw, [pos[2]])
            if base:
                line, col = self.lc(start)
                self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} ALTER COLUMN {qi(self.name(pos[1]))} TYPE {base}",
                             line, col, "Rails change_column", self.txn)
        return end

    def do_change_column_null(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 3 and all(self.name(p) for p in pos[:2]) and pos[2].kind == "bool":
            line, col = self.lc(start)
            action = "DROP NOT NULL" if pos[2].value else "SET NOT NULL"
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} ALTER COLUMN {qi(self.name(pos[1]))} {action}",
                         line, col, "Rails change_column_null", self.txn)
        return end

    def do_change_column_default(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and all(self.name(p) for p in pos[:2]):
            value = kw.get("to") if "to" in kw else (pos[2] if len(pos) > 2 else None)
            d = self.default_sql(value)
            action = f"SET DEFAULT {d}" if d is not None else "DROP DEFAULT"
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} ALTER COLUMN {qi(self.name(pos[1]))} {action}",
                         line, col, "Rails change_column_default", self.txn)
        return end

    def do_remove_column(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and all(self.name(p) for p in pos[:2]):
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} DROP COLUMN {qi(self.name(pos[1]))}", line, col,
                         "Rails remove_column", self.txn)
        return end

    def do_rename_column(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 3 and all(self.name(p) for p in pos[:3]):
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} RENAME COLUMN {qi(self.name(pos[1]))} TO "
                         f"{qi(self.name(pos[2]))}", line, col, "Rails rename_column", self.txn)
        return end

    def do_rename_table(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and all(self.name(p) for p in pos[:2]):
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} RENAME TO {qi(self.name(pos[1]))}", line, col,
                         "Rails rename_table", self.txn)
        return end

    def do_drop_table(self, method, start, after):
        rb = self.rb
        pos, kw, end = rb.call(after)
        blk = rb.block(end, rb.indent_at(start))
        if pos and self.name(pos[0]):
            line, col = self.lc(start)
            sql = "DROP TABLE " + ("IF EXISTS " if self.truthy(kw.get("if_exists")) else "") + qi(self.name(pos[0]))
            if self.name(kw.get("force")) == "cascade":
                sql += " CASCADE"
            self.out.sql(sql, line, col, "Rails drop_table", self.txn)
        return blk[2] if blk else end

    def do_remove_index(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if pos and self.name(pos[0]):
            table = self.name(pos[0])
            name = self.name(kw.get("name"))
            cols = self.names(kw.get("column")) or (self.names(pos[1]) if len(pos) > 1 else [])
            name = name or (self.index_name(table, cols) if cols else None)
            if name:
                line, col = self.lc(start)
                conc = " CONCURRENTLY" if self.name(kw.get("algorithm")) == "concurrently" else ""
                self.out.sql(f"DROP INDEX{conc} {qi(name)}", line, col, "Rails remove_index", self.txn)
        return end

    def do_add_check_constraint(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and self.name(pos[0]) and pos[1].kind == "str" and _valid_where(pos[1].value):
            table = self.name(pos[0])
            name = self.name(kw.get("name")) or f"chk_rails_{abs(hash(pos[1].value)) % 10**10:010d}"
            not_valid = " NOT VALID" if (kw.get("validate") is not None and kw["validate"].kind == "bool"
                                         and kw["validate"].value is False) else ""
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(table)} ADD CONSTRAINT {qi(name)} CHECK ({pos[1].value}){not_valid}",
                         line, col, "Rails add_check_constraint", self.txn)
        return end


def _rails(path: str, text: str, out: _Out):
    _Rails(path, text, out).run()


# --------------------------------------------------------------------------------------------------------------
# Liquibase (XML, YAML and JSON changelogs)
# --------------------------------------------------------------------------------------------------------------

class _LNode:
    """A changelog element: XML element or YAML/JSON mapping. ``attrs``: name → (value, offset of the value);
    ``text``: (file-aligned raw text, offset of its first character) for SQL bodies."""

    __slots__ = ("name", "attrs", "children", "offset", "text")

    def __init__(self, name: str, offset: int):
        self.name, self.offset = name, offset
        self.attrs: dict[str, tuple[str, int]] = {}
        self.children: list[_LNode] = []
        self.text: tuple[str, int] | None = None

    def get(self, key: str, default=None):
        v = self.attrs.get(key)
        return v[0] if v is not None else default

    def flag(self, key: str) -> bool:
        return str(self.get(key, "")).strip().lower() == "true"

    def kids(self, name: str) -> list["_LNode"]:
        return [c for c in self.children if c.name == name]


def _xml_clean(raw: str) -> str:
    """Raw element content → the SQL it holds, same length and lines: markup and comments blanked, CDATA markers
    blanked, entities decoded (padded before the character, so columns after them stay right)."""
    out, i, n = [], 0, len(raw)
    ent = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}

    def blank(t):
        return "".join("\n" if ch == "\n" else " " for ch in t)

    skip_depth = 0
    while i < n:
        if raw.startswith("<![CDATA[", i):
            j = raw.find("]]>", i + 9)
            j = n if j < 0 else j
            out.append(" " * 9)
            body = raw[i + 9:j]
            out.append(blank(body) if skip_depth else body)
            out.append(" " * min(3, n - j))
            i = j + 3
            continue
        if raw.startswith("<!--", i):
            j = raw.find("-->", i + 4)
            j = n if j < 0 else j + 3
            out.append(blank(raw[i:j]))
            i = j
            continue
        c = raw[i]
        if c == "<":
            j = raw.find(">", i)
            j = n if j < 0 else j + 1
            tag = raw[i:j]
            m = re.match(r"<\s*(/?)\s*(?:\w+:)?(\w+)", tag)
            if m and m.group(2) == "comment" and not tag.endswith("/>"):
                skip_depth += -1 if m.group(1) else 1
            out.append(blank(tag))
            i = j
            continue
        if c == "&":
            m = _XML_ENTITY.match(raw, i)
            if m:
                name = m.group(1)
                ch = chr(int(name[2:], 16)) if name.startswith("#x") else chr(int(name[1:])) if \
                    name.startswith("#") else ent.get(name, " ")
                out.append(" " * (len(m.group(0)) - 1) + (" " if skip_depth else ch))
                i = m.end()
                continue
        out.append(blank(c) if skip_depth else c)
        i += 1
    return "".join(out)


def _liquibase_xml(text: str) -> _LNode:
    from xml.parsers import expat

    data = text.encode("utf-8")
    if len(data) == len(text):
        def b2c(b):
            return b
    else:
        ends = list(itertools.accumulate(len(ch.encode("utf-8", errors="surrogatepass")) for ch in text))

        def b2c(b):  # the character that starts at byte b
            return bisect.bisect_right(ends, b)
    root = _LNode("#document", 0)
    stack = [root]
    parser = expat.ParserCreate(encoding="utf-8")

    def start(name, attrs):
        off = b2c(parser.CurrentByteIndex)
        node = _LNode(name.rsplit(":", 1)[-1], off)
        # the start tag's end (content starts after it), quote-aware
        i, q = off, None
        while i < len(text):
            ch = text[i]
            if q:
                q = None if ch == q else q
            elif ch in "'\"":
                q = ch
            elif ch == ">":
                break
            i += 1
        tag = text[off:i + 1]
        for k, v in attrs.items():
            key = k.rsplit(":", 1)[-1]
            m = re.search(r"(?<![\w:-])" + re.escape(k) + r"\s*=\s*(['\"])", tag)
            node.attrs[key] = (v, off + m.end() if m else off)
        node.text = ("", i + 1) if not tag.endswith("/>") else None
        stack[-1].children.append(node)
        stack.append(node)

    def end(name):
        node = stack.pop()
        if node.text is not None:
            content_start = node.text[1]
            content_end = b2c(parser.CurrentByteIndex)
            raw = text[content_start:content_end] if content_end > content_start else ""
            node.text = (_xml_clean(raw), content_start)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except Exception:  # noqa: BLE001 - broken XML: the elements read before the error are kept
        pass
    return root


def _yaml_raw(text: str, node) -> tuple[str, int]:
    """A YAML scalar's SQL as written in the file (so its lines and columns map back), with its offset."""
    a, b = node.start_mark.index, node.end_mark.index
    style = node.style
    if style in ("|", ">"):
        nl = text.find("\n", a)
        if 0 <= nl < b:
            return text[nl + 1:b], nl + 1
        return node.value, a
    if style in ('"', "'"):
        inner = text[a + 1:b - 1]
        return (inner if inner == node.value else node.value), a + 1
    raw = text[a:b]
    return (raw if " ".join(raw.split()) == " ".join(node.value.split()) else node.value), a


def _liquibase_yaml(text: str, is_json: bool) -> _LNode:
    import yaml

    src = text.replace("\t", " ") if is_json else text
    root = _LNode("#document", 0)
    try:
        doc = yaml.compose(src, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except Exception:  # noqa: BLE001 - unreadable YAML/JSON: nothing to report
        return root

    def scalar(n):
        return n if isinstance(n, yaml.ScalarNode) else None

    def build(name, value, offset) -> _LNode:
        node = _LNode(name, offset)
        if isinstance(value, yaml.SequenceNode):
            for item in value.value:
                if isinstance(item, yaml.MappingNode):
                    for ik, iv in item.value:
                        if isinstance(ik, yaml.ScalarNode):
                            node.children.append(build(ik.value, iv, ik.start_mark.index))
            return node
        if isinstance(value, yaml.ScalarNode):
            node.text = _yaml_raw(src, value)
            node.attrs["#value"] = (value.value, value.start_mark.index)
            return node
        if isinstance(value, yaml.MappingNode):
            for k, v in value.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else None
                if key is None:
                    continue
                if scalar(v) is not None:
                    node.attrs[key] = (v.value, v.start_mark.index)
                    if key in ("sql", "procedureText", "procedureBody", "where", "selectQuery"):
                        node.attrs[key + "#raw"] = _yaml_raw(src, v)
                elif isinstance(v, yaml.SequenceNode):
                    holder = node if key != "rollback" else _LNode("rollback", k.start_mark.index)
                    for item in v.value:
                        if isinstance(item, yaml.MappingNode):
                            for ik, iv in item.value:
                                if isinstance(ik, yaml.ScalarNode):
                                    holder.children.append(build(ik.value, iv, ik.start_mark.index))
                    if holder is not node:
                        node.children.append(holder)
                elif isinstance(v, yaml.MappingNode):
                    node.children.append(build(key, v, k.start_mark.index))
        return node

    if isinstance(doc, yaml.MappingNode):
        for k, v in doc.value:
            if isinstance(k, yaml.ScalarNode):
                root.children.append(build(k.value, v, k.start_mark.index))
    return root


_LB_TYPES = {
    "int": "INTEGER", "integer": "INTEGER", "int4": "INTEGER", "mediumint": "INTEGER", "bigint": "BIGINT",
    "int8": "BIGINT", "long": "BIGINT", "smallint": "SMALLINT", "int2": "SMALLINT", "tinyint": "SMALLINT",
    "boolean": "BOOLEAN", "bool": "BOOLEAN", "bit": "BOOLEAN", "varchar": "VARCHAR", "nvarchar": "VARCHAR",
    "varchar2": "VARCHAR", "nvarchar2": "VARCHAR", "character varying": "VARCHAR", "char": "CHAR", "nchar": "CHAR",
    "character": "CHAR", "text": "TEXT", "clob": "TEXT", "nclob": "TEXT", "longtext": "TEXT", "mediumtext": "TEXT",
    "tinytext": "TEXT", "longvarchar": "TEXT", "blob": "BYTEA", "longblob": "BYTEA", "mediumblob": "BYTEA",
    "binary": "BYTEA", "varbinary": "BYTEA", "longvarbinary": "BYTEA", "image": "BYTEA", "bytea": "BYTEA",
    "datetime": "TIMESTAMP", "timestamp": "TIMESTAMP", "smalldatetime": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ",
    "date": "DATE", "time": "TIME", "decimal": "DECIMAL", "numeric": "DECIMAL", "number": "DECIMAL",
    "currency": "DECIMAL", "double": "DOUBLE PRECISION", "float": "FLOAT", "real": "REAL", "uuid": "UUID",
    "uniqueidentifier": "UUID", "json": "JSON", "jsonb": "JSONB", "xml": "XML",
}


def _lb_type(t: str | None) -> str | None:
    if not t:
        return None
    t = re.sub(r"^java\.sql\.Types\.", "", t.strip(), flags=re.I)
    m = re.fullmatch(r"([A-Za-z_][\w ]*?)\s*(\([^()]*\))?\s*((?:\[\])*)", t)
    if m:
        base = m.group(1).lower()
        mapped = _LB_TYPES.get(base)
        if mapped:
            for cand in (mapped + (m.group(2) or "") + m.group(3), mapped + m.group(3)):
                if _valid_type(cand):
                    return cand
    return t if _valid_type(t) else None


def _lb_dbms_ok(dbms: str | None) -> bool:
    if not dbms:
        return True
    items = [d.strip().lower() for d in dbms.split(",") if d.strip()]
    if "!postgresql" in items or items == ["none"]:
        return False
    positive = [d for d in items if not d.startswith("!")]
    return not positive or "postgresql" in positive or "all" in positive


class _Liquibase:
    def __init__(self, text: str, out: _Out):
        self.text, self.out, self.pos = text, out, out.pos

    def lc(self, off):
        return self.pos.lc(off)

    def table(self, n: _LNode, key="tableName") -> str | None:
        name = n.get(key)
        return qn(name, n.get("schemaName")) if name else None

    def run(self, root: _LNode):
        logs = [c for c in root.children if c.name == "databaseChangeLog"]
        for log in logs:
            for cs in log.children:
                if cs.name != "changeSet" or not _lb_dbms_ok(cs.get("dbms")):
                    continue
                txn = None if str(cs.get("runInTransaction", "true")).lower() == "false" else self.out.new_txn()
                for change in cs.children:
                    handler = getattr(self, "c_" + change.name, None)
                    if handler is None or not _lb_dbms_ok(change.get("dbms")):
                        continue
                    try:
                        handler(change, txn)
                    except Exception:  # noqa: BLE001 - one unreadable change does not stop the changelog
                        continue

    def emit(self, sql, n: _LNode, txn, origin):
        line, col = self.lc(n.offset)
        self.out.sql(sql, line, col, f"Liquibase {origin or n.name}", txn)

    def column_def(self, c: _LNode) -> tuple[str | None, list]:
        """(type and inline options, the column's constraints nodes)."""
        t = _lb_type(c.get("type"))
        if t is None:
            return None, []
        cons = c.kids("constraints")
        defn = t
        if c.flag("autoIncrement"):
            opts = []
            if c.get("startWith"):
                opts.append(f"START WITH {c.get('startWith')}")
            if c.get("incrementBy"):
                opts.append(f"INCREMENT BY {c.get('incrementBy')}")
            gen = "ALWAYS" if str(c.get("generationType", "")).upper() == "ALWAYS" else "BY DEFAULT"
            # Liquibase 4 on PostgreSQL 10+: an identity column (older releases wrote serial/bigserial)
            defn += "@AT@" + f" GENERATED {gen} AS IDENTITY" + (f" ({' '.join(opts)})" if opts else "")
        default = None
        for key in ("defaultValue", "defaultValueNumeric", "defaultValueBoolean", "defaultValueDate",
                    "defaultValueComputed", "defaultValueSequenceNext"):
            v = c.get(key)
            if v is None:
                continue
            if key == "defaultValue" or key == "defaultValueDate":
                default = lit(v)
            elif key == "defaultValueSequenceNext":
                default = f"nextval({lit(v)})"
            elif key == "defaultValueComputed":
                default = v if _valid_expr(v) else None
            elif key == "defaultValueBoolean":
                default = "true" if str(v).lower() == "true" else "false"
            else:
                default = v if re.fullmatch(r"-?\d+(\.\d+)?", str(v)) else None
        if default is not None:
            defn += f" DEFAULT {default}"
        for k in cons:
            if str(k.get("nullable", "")).lower() == "false":
                defn += " NOT NULL"
            if k.flag("unique"):
                defn += " UNIQUE"
        return defn, cons

    def split_identity(self, c: _LNode, defn: str, line: int) -> tuple[str, list]:
        """The identity clause goes at the ``autoIncrement`` attribute (where a finding on it belongs)."""
        if "@AT@" not in defn:
            return defn, []
        head, tail = defn.split("@AT@", 1)
        at = c.attrs.get("autoIncrement")
        aline = acol = None
        if at:
            k = self.text.rfind("autoIncrement", max(0, at[1] - 40), at[1])  # the attribute, not its value
            aline, acol = self.lc(k if k >= 0 else at[1])
        return head, [(tail.strip(), acol if aline == line else None)]

    def fk_of(self, table_name: str, c: _LNode, k: _LNode, txn, later: bool, origin: str):
        ref_table = k.get("referencedTableName")
        ref_cols = k.get("referencedColumnNames")
        refs = k.get("references")
        if refs and not ref_table:
            m = re.match(r"\s*([\w.\"$]+)\s*(?:\(([^)]*)\))?", refs)
            if m:
                ref_table, ref_cols = m.group(1), m.group(2)
        if not (k.get("foreignKeyName") or ref_table):
            return
        target = ref_table + (f".{ref_cols.replace(' ', '')}" if ref_cols else "") if ref_table else None
        on_delete = "CASCADE" if k.flag("deleteCascade") else k.get("onDelete")
        line, col = self.lc(k.offset)
        self.out.fk(line, col, f"Liquibase {origin}", "Liquibase", f"{table_name}.{c.get('name')}", target,
                    on_delete, later, txn)

    def c_createTable(self, n: _LNode, txn):
        table = self.table(n)
        if not table:
            return
        line, col = self.lc(n.offset)
        layout = _Layout(line, col)
        layout.put(f"CREATE TABLE {table} (")
        pk_cols, ncols, fks = [], 0, []
        for c in n.kids("column"):
            name = c.get("name")
            defn, cons = self.column_def(c)
            if not name or defn is None:
                continue
            for k in cons:
                if k.flag("primaryKey"):
                    pk_cols.append(name)
                if k.get("foreignKeyName") or k.get("references") or k.get("referencedTableName"):
                    fks.append((c, k))
            if ncols:
                layout.comma()
            cline, ccol = self.lc(c.offset)
            tv = c.attrs.get("type")
            tline, tcol = self.lc(tv[1]) if tv else (cline, None)
            type_sql, extra = self.split_identity(c, defn + ("@PK@" if name in pk_cols else ""), tline)
            layout.column(qi(name), type_sql, tline, ccol, tcol, extra)
            ncols += 1
        if not ncols:
            return
        text = layout.text()
        if len(pk_cols) == 1:
            text = text.replace("@PK@", " PRIMARY KEY")
        else:
            text = text.replace("@PK@", "")
            if pk_cols:
                text += ", PRIMARY KEY (" + ", ".join(qi(c) for c in pk_cols) + ")"
        self.out.sql(text + ")", line, col, "Liquibase createTable", txn)
        for c, k in fks:
            self.fk_of(n.get("tableName"), c, k, txn, False, "createTable")

    def c_addColumn(self, n: _LNode, txn):
        table = self.table(n)
        if not table:
            return
        for c in n.kids("column"):
            name = c.get("name")
            defn, cons = self.column_def(c)
            if not name or defn is None:
                continue
            line, col = self.lc(c.offset)
            tv = c.attrs.get("type")
            layout = _Layout(line, col)
            layout.put(f"ALTER TABLE {table} ADD COLUMN")
            tline, tcol = self.lc(tv[1]) if tv else (line, None)
            type_sql, extra = self.split_identity(c, defn, tline)
            layout.column(qi(name), type_sql, tline, None, tcol, extra)
            self.out.sql(layout.text(), line, col, "Liquibase addColumn", txn)
            for k in cons:
                if k.flag("primaryKey"):
                    self.out.sql(f"ALTER TABLE {table} ADD PRIMARY KEY ({qi(name)})", line, col,
                                 "Liquibase addColumn", txn)
                if k.get("foreignKeyName") or k.get("references") or k.get("referencedTableName"):
                    self.fk_of(n.get("tableName"), c, k, txn, True, "addColumn")

    def c_addForeignKeyConstraint(self, n: _LNode, txn):
        base, cols = n.get("baseTableName"), n.get("baseColumnNames")
        if not base or not cols:
            return
        ref, ref_cols = n.get("referencedTableName"), n.get("referencedColumnNames")
        target = (ref + (f".{ref_cols.replace(' ', '')}" if ref_cols else "")) if ref else None
        on_delete = "CASCADE" if n.flag("deleteCascade") else n.get("onDelete")
        line, col = self.lc(n.offset)
        self.out.fk(line, col, "Liquibase addForeignKeyConstraint", "Liquibase", f"{base}.{cols.replace(' ', '')}",
                    target, on_delete, True, txn)

    def c_createIndex(self, n: _LNode, txn):
        table = self.table(n)
        keys = []
        for c in n.kids("column"):
            name = c.get("name")
            if not name:
                continue
            if c.flag("computed"):
                if _valid_expr(name):
                    keys.append(f"({name})")
                continue
            keys.append(qi(name) + (" DESC" if c.flag("descending") else ""))
        if table and keys:
            self.emit(_index_sql(n.get("indexName"), table, keys, unique=n.flag("unique")), n, txn, None)

    def c_createSequence(self, n: _LNode, txn):
        name = n.get("sequenceName")
        if not name:
            return
        sql = f"CREATE SEQUENCE {qn(name, n.get('schemaName'))}"
        if n.get("dataType") and _valid_type(n.get("dataType")):
            sql += f" AS {n.get('dataType')}"
        for key, kw in (("incrementBy", "INCREMENT BY"), ("minValue", "MINVALUE"), ("maxValue", "MAXVALUE"),
                        ("startValue", "START WITH"), ("cacheSize", "CACHE")):
            v = n.get(key)
            if v is not None and re.fullmatch(r"-?\d+", str(v).strip()):
                sql += f" {kw} {str(v).strip()}"
        if n.flag("cycle"):
            sql += " CYCLE"
        self.emit(sql, n, txn, None)

    def body(self, n: _LNode, *keys) -> tuple[str, int] | None:
        for key in keys:
            if key + "#raw" in n.attrs:
                return n.attrs[key + "#raw"]
            for k in n.kids(key):
                if k.text and k.text[0].strip():
                    return k.text
        if n.text and n.text[0].strip():
            return n.text
        return None

    def c_sql(self, n: _LNode, txn):
        body = self.body(n, "sql")
        if body:
            line, col = self.lc(body[1])
            self.out.literal(body[0], line, col, "Liquibase sql", txn, params=())

    def c_createProcedure(self, n: _LNode, txn):
        from dsql_audit.sources.app import looks_like_sql

        body = self.body(n, "procedureText", "procedureBody")
        if body and looks_like_sql(body[0]):
            line, col = self.lc(body[1])
            self.out.literal(body[0], line, col, f"Liquibase {n.name}", txn, params=())

    c_createFunction = c_createTrigger = c_createProcedure

    def c_createView(self, n: _LNode, txn):
        body = self.body(n, "selectQuery")
        name = n.get("viewName")
        if body and name:
            head = "CREATE OR REPLACE VIEW" if n.flag("replaceIfExists") else "CREATE VIEW"
            q = " ".join(body[0].split())
            if n.flag("fullDefinition"):
                self.emit(q, n, txn, None)
            else:
                self.emit(f"{head} {qn(name, n.get('schemaName'))} AS {q}", n, txn, None)

    def c_dropTable(self, n: _LNode, txn):
        table = self.table(n)
        if table:
            self.emit(f"DROP TABLE {table}" + (" CASCADE" if n.flag("cascadeConstraints") else ""), n, txn, None)

    def c_dropColumn(self, n: _LNode, txn):
        table = self.table(n)
        names = [n.get("columnName")] if n.get("columnName") else [c.get("name") for c in n.kids("column")]
        for name in names:
            if table and name:
                self.emit(f"ALTER TABLE {table} DROP COLUMN {qi(name)}", n, txn, None)

    def c_renameColumn(self, n: _LNode, txn):
        table = self.table(n)
        if table and n.get("oldColumnName") and n.get("newColumnName"):
            self.emit(f"ALTER TABLE {table} RENAME COLUMN {qi(n.get('oldColumnName'))} TO "
                      f"{qi(n.get('newColumnName'))}", n, txn, None)

    def c_renameTable(self, n: _LNode, txn):
        old = self.table(n, "oldTableName")
        if old and n.get("newTableName"):
            self.emit(f"ALTER TABLE {old} RENAME TO {qi(n.get('newTableName'))}", n, txn, None)

    def _cols(self, value: str | None) -> str:
        return ", ".join(qi(c.strip()) for c in (value or "").split(",") if c.strip())

    def c_addUniqueConstraint(self, n: _LNode, txn):
        table, cols = self.table(n), self._cols(n.get("columnNames"))
        if table and cols:
            name = n.get("constraintName")
            self.emit(f"ALTER TABLE {table} ADD " + (f"CONSTRAINT {qi(name)} " if name else "") + f"UNIQUE ({cols})",
                      n, txn, None)

    def c_addPrimaryKey(self, n: _LNode, txn):
        table, cols = self.table(n), self._cols(n.get("columnNames"))
        if table and cols:
            name = n.get("constraintName")
            self.emit(f"ALTER TABLE {table} ADD " + (f"CONSTRAINT {qi(name)} " if name else "") +
                      f"PRIMARY KEY ({cols})", n, txn, None)

    def c_modifyDataType(self, n: _LNode, txn):
        table, t = self.table(n), _lb_type(n.get("newDataType"))
        if table and t and n.get("columnName"):
            self.emit(f"ALTER TABLE {table} ALTER COLUMN {qi(n.get('columnName'))} TYPE {t}", n, txn, None)

    def c_addNotNullConstraint(self, n: _LNode, txn):
        table = self.table(n)
        if table and n.get("columnName"):
            self.emit(f"ALTER TABLE {table} ALTER COLUMN {qi(n.get('columnName'))} SET NOT NULL", n, txn, None)

    def c_dropNotNullConstraint(self, n: _LNode, txn):
        table = self.table(n)
        if table and n.get("columnName"):
            self.emit(f"ALTER TABLE {table} ALTER COLUMN {qi(n.get('columnName'))} DROP NOT NULL", n, txn, None)

    def c_addDefaultValue(self, n: _LNode, txn):
        table = self.table(n)
        fake = _LNode("column", n.offset)
        fake.attrs = dict(n.attrs)
        fake.attrs["type"] = ("text", n.offset)
        defn, _ = self.column_def(fake)
        if table and n.get("columnName") and defn and " DEFAULT " in defn:
            self.emit(f"ALTER TABLE {table} ALTER COLUMN {qi(n.get('columnName'))} SET DEFAULT "
                      f"{defn.split(' DEFAULT ', 1)[1]}", n, txn, None)

    def c_dropIndex(self, n: _LNode, txn):
        if n.get("indexName"):
            self.emit(f"DROP INDEX {qn(n.get('indexName'), n.get('schemaName'))}", n, txn, None)

    def c_dropSequence(self, n: _LNode, txn):
        if n.get("sequenceName"):
            self.emit(f"DROP SEQUENCE {qn(n.get('sequenceName'), n.get('schemaName'))}", n, txn, None)

    def c_dropForeignKeyConstraint(self, n: _LNode, txn):
        table = self.table(n, "baseTableName")
        if table and n.get("constraintName"):
            self.emit(f"ALTER TABLE {table} DROP CONSTRAINT {qi(n.get('constraintName'))}", n, txn, None)

    def where(self, n: _LNode) -> str | None:
        body = self.body(n, "where") if ("where#raw" in n.attrs or n.kids("where")) else None
        w = " ".join(body[0].split()) if body else n.get("where")
        return w if w and _valid_where(w) else None

    def c_insert(self, n: _LNode, txn):
        table = self.table(n)
        cols = [c.get("name") for c in n.kids("column") if c.get("name")]
        if table:
            if cols:
                sql = f"INSERT INTO {table} ({', '.join(qi(c) for c in cols)}) VALUES (" + \
                    ", ".join(f"${i + 1}" for i in range(len(cols))) + ")"
            else:
                sql = f"INSERT INTO {table} DEFAULT VALUES"
            self.emit(sql, n, txn, None)

    def c_update(self, n: _LNode, txn):
        table = self.table(n)
        cols = [c.get("name") for c in n.kids("column") if c.get("name")]
        if table and cols:
            sql = f"UPDATE {table} SET " + ", ".join(f"{qi(c)} = ${i + 1}" for i, c in enumerate(cols))
            w = self.where(n)
            self.emit(sql + (f" WHERE {w}" if w else ""), n, txn, None)

    def c_delete(self, n: _LNode, txn):
        table = self.table(n)
        if table:
            w = self.where(n)
            self.emit(f"DELETE FROM {table}" + (f" WHERE {w}" if w else ""), n, txn, None)

    def c_loadData(self, n: _LNode, txn):
        table = self.table(n)
        if table:
            line, col = self.lc(n.offset)
            self.out.sql(f"INSERT INTO {table} DEFAULT VALUES", line, col, f"Liquibase {n.name}", txn, dynamic=True)

    c_loadUpdateData = c_loadData


def _liquibase(path: str, text: str, out: _Out):
    lower = path.lower()
    if lower.endswith((".yaml", ".yml", ".json")):
        root = _liquibase_yaml(text, lower.endswith(".json"))
    else:
        root = _liquibase_xml(text)
    _Liquibase(text, out).run(root)


# --------------------------------------------------------------------------------------------------------------
# JavaScript / TypeScript migrations (TypeORM, Sequelize, Knex)
# --------------------------------------------------------------------------------------------------------------

_JS_ID = re.compile(r"[A-Za-z_$][\w$]*")
_JS_NUM = re.compile(r"-?(?:0[xX][0-9a-fA-F]+|\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)")


class _Js:
    """Values and call chains read from JS/TS source with its comments blanked."""

    def __init__(self, text: str):
        self.text = text
        self.s = _mask_comments(text)
        self.n = len(self.s)
        self._pairs = None

    def ws(self, i):
        s, n = self.s, self.n
        while i < n and s[i].isspace():
            i += 1
        return i

    def string(self, i) -> _V:
        s = self.s
        end = _str_end(s, i)
        q = s[i]
        raw = s[i + 1:end - 1] if end - 1 > i else ""
        dynamic = False
        if q == "`" and "${" in raw:
            out, k, n = [], 0, len(raw)
            while k < n:
                if raw.startswith("${", k):
                    j = _code_end(raw, k + 2, "}")
                    out.append("".join("\n" if ch == "\n" else "_" for ch in raw[k:j]))
                    k = j
                    continue
                out.append(raw[k])
                k += 1
            raw, dynamic = "".join(out), True
        value = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": ""}.get(m.group(1), m.group(1)), raw) \
            if "\\" in raw else raw
        return _V("str", value, i, end, (i + 1, raw, dynamic))

    def value(self, i) -> _V:
        s, n = self.s, self.n
        i = self.ws(i)
        if i >= n:
            return _V("raw", "", i, i)
        c = s[i]
        if c in "'\"`":
            v = self.string(i)
        elif c == "{":
            v = self.obj(i)
        elif c == "[":
            items, j = [], i + 1
            while True:
                j = self.ws(j)
                if j >= n or s[j] == "]":
                    v = _V("arr", items, i, min(j + 1, n))
                    break
                item = self.value(j)
                if item.end <= j:
                    v = _V("arr", items, i, _match(s, i) + 1)
                    break
                items.append(item)
                j = self.ws(item.end)
                if j < n and s[j] == ",":
                    j += 1
        elif c == "(":
            close = _match(s, i)
            j = self.ws(close + 1)
            if s.startswith("=>", j):
                v = self.arrow(i, s[i + 1:close], j + 2)
            else:
                inner = self.value(i + 1)
                v = inner if self.ws(inner.end) == close else _V("raw", s[i:close + 1], i, close + 1)
                v = _V(v.kind, v.value, i, close + 1, v.extra)
        else:
            m = _JS_NUM.match(s, i)
            w = _JS_ID.match(s, i)
            if m and not w:
                v = _V("num", m.group(), i, m.end())
            elif w:
                word = w.group()
                j = self.ws(w.end())
                if word in ("true", "false"):
                    v = _V("bool", word == "true", i, w.end())
                elif word in ("null", "undefined"):
                    v = _V("nil", None, i, w.end())
                elif word in ("async", "await", "return", "void") and j < n and s[j] not in ".(,)=:;}":
                    inner = self.value(j)
                    v = _V(inner.kind, inner.value, i, inner.end, inner.extra)
                elif word == "function":
                    k = j
                    nm = _JS_ID.match(s, k)
                    if nm:
                        k = self.ws(nm.end())
                    if k < n and s[k] == "(":
                        close = _match(s, k)
                        b = s.find("{", close)
                        if b < 0:
                            return _V("raw", "", i, n)
                        v = _V("func", s[k + 1:close], i, _match(s, b) + 1, (b + 1, _match(s, b), None))
                    else:
                        v = self.raw(i)
                elif s.startswith("=>", j):
                    v = self.arrow(i, word, j + 2)
                else:
                    v = self.chain(i)
            else:
                v = self.raw(i)
        # trailing operators (a + b, x as T, a || b): the whole expression is raw, its head kept
        j = self.ws(v.end)
        if j < n and s[j] not in ",;)]}:" and v.end > i and not s.startswith("=>", j) and s[j] not in "\n":
            if _TS_CAST.match(s, j) or s[j] in "+-*/|&?<>=!%":
                r = self.raw(j)
                return _V(v.kind, v.value, v.start, r.end, v.extra)
        return v

    def raw(self, i) -> _V:
        s, n = self.s, self.n
        j, depth = i, 0
        while j < n:
            ch = s[j]
            if ch in "'\"`":
                j = _str_end(s, j)
                continue
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and ch in ",;":
                break
            j += 1
        if j == i:
            j = i + 1
        return _V("raw", s[i:j].strip(), i, j)

    def arrow(self, start, params, after) -> _V:
        j = self.ws(after)
        if j < self.n and self.s[j] == "{":
            close = _match(self.s, j)
            return _V("func", params, start, close + 1, (j + 1, close, None))
        body = self.value(j)
        return _V("func", params, start, body.end, (j, body.end, body))

    def obj(self, i) -> _V:
        s, n = self.s, self.n
        items: dict[str, _V] = {}
        keys: dict[str, int] = {}
        j = i + 1
        while True:
            j = self.ws(j)
            if j >= n:
                return _V("obj", items, i, n, keys)
            if s[j] == "}":
                return _V("obj", items, i, j + 1, keys)
            if s.startswith("...", j):
                v = self.value(j + 3)
                key = None
                end = v.end
            else:
                key, kstart = None, j
                if s[j] in "'\"`":
                    kv = self.string(j)
                    key, k = kv.value, kv.end
                elif s[j] == "[":
                    k = _match(s, j) + 1
                else:
                    w = _JS_ID.match(s, j) or _JS_NUM.match(s, j)
                    if not w:
                        return _V("obj", items, i, _match(s, i) + 1, keys)
                    key, k = w.group(), w.end()
                    if key in ("async", "get", "set", "static") and _JS_ID.match(s, self.ws(k)):
                        w = _JS_ID.match(s, self.ws(k))
                        key, k = w.group(), w.end()
                k = self.ws(k)
                if k < n and s[k] == "?":
                    k = self.ws(k + 1)
                if k < n and s[k] == ":":
                    v = self.value(k + 1)
                elif k < n and s[k] == "(":  # method shorthand
                    close = _match(s, k)
                    b = s.find("{", close)
                    if b < 0:
                        return _V("obj", items, i, n, keys)
                    v = _V("func", s[k + 1:close], kstart, _match(s, b) + 1, (b + 1, _match(s, b), None))
                else:
                    v = _V("raw", key, kstart, k)
                end = v.end
                if key is not None:
                    items[key] = v
                    keys[key] = kstart
            j = self.ws(end)
            if j < n and s[j] == ",":
                j += 1
            elif j < n and s[j] == "}":
                continue
            else:
                return _V("obj", items, i, _match(s, i) + 1, keys)

    def chain(self, i) -> _V:
        """``a.b(x).c`` → kind "chain": [(name, args or None, offset)]."""
        s, n = self.s, self.n
        segs = []
        j = i
        w = _JS_ID.match(s, j)
        if w and w.group() == "new":
            j = self.ws(w.end())
        end = j
        while True:
            w = _JS_ID.match(s, j)
            if not w:
                break
            name, off = w.group(), j
            j = w.end()
            end = j
            k = self.ws(j)
            if k < n and s[k] == "<":  # TypeScript type arguments: foo<T>(…)
                close = s.find(">", k)
                if 0 < close and self.ws(close + 1) < n and s[self.ws(close + 1)] == "(":
                    k = self.ws(close + 1)
            args = None
            while k < n and s[k] in "([":
                close = _match(s, k)
                if s[k] == "(" and args is None:
                    args = self.args(k, close)
                j = end = close + 1
                k = self.ws(j)
                if k < n and s[k] == "!":
                    k = self.ws(k + 1)
            segs.append((name, args, off))
            if s.startswith("?.", k):
                j = self.ws(k + 2)
                continue
            if k < n and s[k] == "." and not s.startswith("...", k):
                j = self.ws(k + 1)
                continue
            break
        if not segs:
            return self.raw(i)
        return _V("chain", segs, i, end)

    def args(self, open_, close) -> list[_V]:
        out, j = [], open_ + 1
        while True:
            j = self.ws(j)
            if j >= close:
                return out
            v = self.value(j)
            if v.end <= j:
                return out
            out.append(v)
            j = self.ws(v.end)
            if j < close and self.s[j] == ",":
                j += 1
            elif j >= close:
                return out
            else:
                return out

    def pairs(self):
        if self._pairs is None:
            pairs, stack, s, i, n = [], [], self.s, 0, self.n
            while i < n:
                c = s[i]
                if c in "'\"`":
                    i = _str_end(s, i)
                    continue
                if c in "([{":
                    stack.append(i)
                elif c in ")]}" and stack:
                    pairs.append((stack.pop(), i))
                i += 1
            pairs.sort()
            self._pairs = pairs
        return self._pairs

    def enclosing(self, off) -> tuple[int, int] | None:
        """The innermost bracket pair around ``off``."""
        pairs = self.pairs()
        i = bisect.bisect_left(pairs, (off, -1)) - 1
        while i >= 0:
            if pairs[i][1] > off:
                return pairs[i]
            i -= 1
        return None

    def functions(self, name: str) -> list[tuple[str, int, int]]:
        """Bodies of the migration functions called ``name`` (up): [(params, body start, body end)]."""
        s, n, out = self.s, self.n, []
        for m in re.finditer(r"(?<![\w$])" + name + r"\b", s):
            before = s[max(0, m.start() - 40):m.start()]
            if before.endswith(".") and not re.search(r"exports\s*\.\s*$", before):  # exports.up, not x.up
                continue
            j = self.ws(m.end())
            if j >= n:
                continue
            if s[j] == "(":  # method / function declaration
                close = _match(s, j)
                k = self.ws(close + 1)
                if k < n and s[k] == ":":  # TypeScript return type
                    k = s.find("{", k)
                    if k < 0:
                        continue
                if k < n and s[k] == "{":
                    out.append((s[j + 1:close], k + 1, _match(s, k)))
            elif s[j] in ":=" and not s.startswith("==", j):
                v = self.value(j + 1)
                if v.kind == "func":
                    a, b, expr = v.extra
                    out.append((v.value, a, b))
        return out


def _js_names(params: str) -> list[str]:
    """Parameter names (TypeScript types dropped): ``queryRunner: QueryRunner`` → [queryRunner]."""
    params = re.sub(r":\s*[\w.$<>\[\]| ]+", "", params or "")
    return _JS_ID.findall(params)


def _js_str(v: _V | None) -> str | None:
    return str(v.value) if v is not None and v.kind == "str" else None


def _js_strs(v: _V | None) -> list[str]:
    if v is None:
        return []
    if v.kind == "arr":
        return [str(x.value) for x in v.value if x.kind == "str"]
    return [str(v.value)] if v.kind == "str" else []


def _js_bool(v: _V | None) -> bool:
    return v is not None and v.kind == "bool" and v.value is True


def _js_get(v: _V | None, key: str) -> _V | None:
    if v is None:
        return None
    if v.kind == "obj":
        return v.value.get(key)
    if v.kind == "chain" and v.value and v.value[-1][1]:  # new Table({...})
        args = v.value[-1][1]
        if args and args[0].kind == "obj":
            return args[0].value.get(key)
    return None


def _js_default(v: _V | None) -> str | None:
    if v is None or v.kind == "nil":
        return None
    if v.kind == "str":
        return lit(v.value)
    if v.kind == "num":
        return v.value
    if v.kind == "bool":
        return "true" if v.value else "false"
    if v.kind == "func" and v.extra and v.extra[2] is not None and v.extra[2].kind == "str":
        e = v.extra[2].value  # TypeORM: default: () => "now()"
        return e if _valid_expr(e) else None
    if v.kind == "chain":
        segs = v.value
        names = [x[0] for x in segs]
        if names[-1] in ("raw", "literal") and segs[-1][1] and segs[-1][1][0].kind == "str":
            e = segs[-1][1][0].value
            return e if _valid_expr(e) else None
        if names[-1] == "now" and "fn" in names:  # knex.fn.now()
            return "CURRENT_TIMESTAMP"
        if names[-1] == "fn" and segs[-1][1] and segs[-1][1][0].kind == "str":  # Sequelize.fn('now')
            e = f"{segs[-1][1][0].value}()"
            return e if _valid_expr(e) else None
        if names[-1] in ("NOW",):
            return "now()"
    return None


class _JsMigration:
    """Shared by the three JS frameworks: output, positions, transaction, the up bodies."""

    orm = ""

    def __init__(self, js: _Js, out: _Out, txn):
        self.js, self.out, self.pos, self.txn = js, out, out.pos, txn

    def lc(self, off):
        return self.pos.lc(off)

    def literal(self, v: _V, origin, params=(), knex=False):
        if v is None or v.kind != "str" or not v.extra:
            return
        cstart, raw, dynamic = v.extra
        text = raw if "\\" not in raw else v.value
        if knex and ("??" in text or re.search(r":\w+:", text)):
            # knex identifier bindings (?? and :name:) stand for names: an identifier of the same length
            text = re.sub(r"\?\?|:\w+:(?!:)", lambda m: "_" * len(m.group()), text)
            dynamic = True
        line, col = self.lc(cstart)
        self.out.literal(text, line, col, origin, self.txn, params=params, dynamic=dynamic)

    def sql(self, sql, off, origin, dynamic=False):
        line, col = self.lc(off)
        self.out.sql(sql, line, col, origin, self.txn, dynamic=dynamic)

    def fk(self, off, origin, obj, target, on_delete, later):
        line, col = self.lc(off)
        self.out.fk(line, col, origin, self.orm, obj, target, on_delete, later, self.txn)


# ---- TypeORM

_TYPEORM_TYPES = {"int": "integer", "int4": "integer", "integer": "integer", "int2": "smallint",
                  "smallint": "smallint", "int8": "bigint", "bigint": "bigint", "varchar": "character varying",
                  "character varying": "character varying", "string": "character varying", "text": "text",
                  "uuid": "uuid", "boolean": "boolean", "bool": "boolean", "timestamp": "timestamp",
                  "timestamptz": "timestamptz", "timestamp with time zone": "timestamptz", "date": "date",
                  "time": "time", "numeric": "numeric", "decimal": "numeric", "float": "double precision",
                  "double precision": "double precision", "real": "real", "json": "json", "jsonb": "jsonb",
                  "bytea": "bytea", "simple-array": "text", "simple-json": "text", "inet": "inet", "cidr": "cidr",
                  "macaddr": "macaddr", "tsvector": "tsvector", "hstore": "hstore", "citext": "citext",
                  "ltree": "ltree", "point": "point", "money": "money", "xml": "xml", "interval": "interval",
                  "geometry": "geometry", "geography": "geography", "int4range": "int4range"}


class _TypeOrm(_JsMigration):
    orm = "TypeORM"

    def run(self, body_start, body_end, names):
        js, s = self.js, self.js.s
        pat = re.compile(r"(?<![\w$.])(?:" + "|".join(re.escape(n) for n in names) + r")\s*\.\s*(?:manager\s*\.\s*)?"
                         r"(query|createTable|createForeignKeys?|createIndex|createIndices|addColumns?|dropTable|"
                         r"dropColumns?|createUniqueConstraints?|changeColumn|renameColumn|renameTable)\s*\(")
        for m in pat.finditer(s, body_start, body_end):
            method = m.group(1)
            open_ = m.end() - 1
            args = js.args(open_, _match(s, open_))
            origin = f"TypeORM queryRunner.{method}"
            try:
                getattr(self, "m_" + method.rstrip("s") if method not in ("addColumns", "dropColumns")
                        else "m_" + method[:-1])(args, m.start(), origin)
            except Exception:  # noqa: BLE001
                continue

    def table_name(self, v: _V | None) -> str | None:
        if v is None:
            return None
        if v.kind == "str":
            return str(v.value)
        return _js_str(_js_get(v, "name"))

    def m_query(self, args, off, origin):
        if args:
            self.literal(args[0], origin, params=())

    def coldef(self, table: str, c: _V) -> tuple[str | None, list]:
        """(column definition, statements that go before the table: CREATE TYPE for enums)."""
        t = (_js_str(_js_get(c, "type")) or "").lower()
        name = _js_str(_js_get(c, "name"))
        if not name:
            return None, []
        pre = []
        gen = _js_bool(_js_get(c, "isGenerated"))
        strategy = _js_str(_js_get(c, "generationStrategy")) or ("increment" if gen else None)
        length = _js_get(c, "length")
        if t == "enum":
            values = _js_strs(_js_get(c, "enum"))
            ename = _js_str(_js_get(c, "enumName")) or f"{table}_{name}_enum"
            if values:
                pre.append(_enum_sql(ename, values, qq))
            base = qq(ename)
        else:
            base = _TYPEORM_TYPES.get(t, t if t and _valid_type(t) else None)
        if base is None:
            return None, pre
        if length is not None and length.kind in ("str", "num") and base == "character varying":
            base += f"({length.value})"
        if _js_bool(_js_get(c, "isArray")):
            base += "[]"
        if gen and strategy == "increment":
            base = {"integer": "SERIAL", "bigint": "BIGSERIAL", "smallint": "SMALLSERIAL"}.get(base, base)
        elif gen and strategy == "identity":
            base += " GENERATED BY DEFAULT AS IDENTITY"
        defn = base
        if not _js_bool(_js_get(c, "isNullable")):
            defn += " NOT NULL"
        default = _js_get(c, "default")
        if gen and strategy == "uuid":
            defn += " DEFAULT uuid_generate_v4()"
        elif default is not None:
            d = _js_default(default)
            if d is None and default.kind == "str" and _valid_expr(str(default.value)):
                d = str(default.value)  # TypeORM writes a string default as SQL: default: "now()"
            if d is not None:
                defn += f" DEFAULT {d}"
        if _js_bool(_js_get(c, "isPrimary")):
            defn += " PRIMARY KEY"
        if _js_bool(_js_get(c, "isUnique")):
            defn += " UNIQUE"
        return defn, pre

    def m_createTable(self, args, off, origin):
        if not args:
            return
        t = args[0]
        table = self.table_name(t)
        if not table:
            return
        line, col = self.lc(off)
        layout = _Layout(line, col)
        layout.put(f"CREATE TABLE {qi(table)} (")
        ncols, pre = 0, []
        cols = _js_get(t, "columns")
        for c in (cols.value if cols is not None and cols.kind == "arr" else []):
            name = _js_str(_js_get(c, "name"))
            defn, before = self.coldef(table, c)
            pre += before
            if defn is None:
                continue
            if ncols:
                layout.comma()
            tv = _js_get(c, "type")
            nline, ncol = self.lc(c.start)
            tline, tcol = self.lc(tv.start + 1) if tv is not None else (nline, None)
            layout.column(qi(name), defn, tline, None, tcol)
            ncols += 1
        layout.put(")")
        for sql in pre:
            self.sql(sql, off, "TypeORM enum column")
        if ncols:
            self.out.sql(layout.text(), line, col, "TypeORM createTable", self.txn)
        fks = _js_get(t, "foreignKeys")
        for fk in (fks.value if fks is not None and fks.kind == "arr" else []):
            self.foreign_key(table, fk, fk.start, "TypeORM createTable foreignKeys", later=False)
        idx = _js_get(t, "indices")
        for ix in (idx.value if idx is not None and idx.kind == "arr" else []):
            self.index(table, ix, ix.start, "TypeORM createTable indices")

    def foreign_key(self, table, fk: _V, off, origin, later):
        cols = _js_strs(_js_get(fk, "columnNames"))
        ref = _js_str(_js_get(fk, "referencedTableName"))
        ref_cols = _js_strs(_js_get(fk, "referencedColumnNames"))
        if cols:
            target = (ref + (f".{','.join(ref_cols)}" if ref_cols else "")) if ref else None
            self.fk(off, origin, f"{table}.{','.join(cols)}", target, _js_str(_js_get(fk, "onDelete")), later)

    def index(self, table, ix: _V, off, origin):
        cols = _js_strs(_js_get(ix, "columnNames"))
        if cols:
            name = _js_str(_js_get(ix, "name")) or f"IDX_{table}_{'_'.join(cols)}"
            sql = _index_sql(name, qi(table), [qi(c) for c in cols], unique=_js_bool(_js_get(ix, "isUnique")),
                             concurrently=_js_bool(_js_get(ix, "isConcurrent")), where=_js_str(_js_get(ix, "where")),
                             quote=qq)
            self.sql(sql, off, origin)

    def m_createForeignKey(self, args, off, origin):
        table = self.table_name(args[0]) if args else None
        for v in args[1:2]:
            for fk in (v.value if v.kind == "arr" else [v]):
                self.foreign_key(table, fk, fk.start, "TypeORM createForeignKey", later=True)

    def m_createIndex(self, args, off, origin):
        table = self.table_name(args[0]) if args else None
        for v in args[1:2]:
            for ix in (v.value if v.kind == "arr" else [v]):
                self.index(table, ix, ix.start, "TypeORM createIndex")

    m_createIndice = m_createIndex

    def m_addColumn(self, args, off, origin):
        table = self.table_name(args[0]) if args else None
        for v in args[1:2]:
            for c in (v.value if v.kind == "arr" else [v]):
                defn, pre = self.coldef(table, c)
                for sql in pre:
                    self.sql(sql, c.start, "TypeORM enum column")
                name = _js_str(_js_get(c, "name"))
                if table and defn and name:
                    self.sql(f"ALTER TABLE {qi(table)} ADD COLUMN {qi(name)} {defn}", c.start, "TypeORM addColumn")

    def m_createUniqueConstraint(self, args, off, origin):
        table = self.table_name(args[0]) if args else None
        for v in args[1:2]:
            for u in (v.value if v.kind == "arr" else [v]):
                cols = _js_strs(_js_get(u, "columnNames"))
                if table and cols:
                    name = _js_str(_js_get(u, "name")) or f"UQ_{table}_{'_'.join(cols)}"
                    self.sql(f"ALTER TABLE {qi(table)} ADD CONSTRAINT {qq(name)} UNIQUE ("
                             + ", ".join(qi(c) for c in cols) + ")", u.start, "TypeORM createUniqueConstraint")

    def m_dropTable(self, args, off, origin):
        table = self.table_name(args[0]) if args else None
        if table:
            self.sql(f"DROP TABLE {qi(table)}", off, "TypeORM dropTable")

    def m_dropColumn(self, args, off, origin):
        table = self.table_name(args[0]) if args else None
        for v in args[1:2]:
            for c in (v.value if v.kind == "arr" else [v]):
                name = _js_str(c) or _js_str(_js_get(c, "name"))
                if table and name:
                    self.sql(f"ALTER TABLE {qi(table)} DROP COLUMN {qi(name)}", off, "TypeORM dropColumn")

    def m_changeColumn(self, args, off, origin):
        table = self.table_name(args[0]) if args else None
        if table and len(args) >= 3:
            old = _js_str(args[1]) or _js_str(_js_get(args[1], "name"))
            t = (_js_str(_js_get(args[2], "type")) or "").lower()
            base = _TYPEORM_TYPES.get(t)
            if old and base:
                self.sql(f"ALTER TABLE {qi(table)} ALTER COLUMN {qi(old)} TYPE {base}", off, "TypeORM changeColumn")

    def m_renameColumn(self, args, off, origin):
        table = self.table_name(args[0]) if args else None
        if table and len(args) >= 3 and _js_str(args[1]) and _js_str(args[2]):
            self.sql(f"ALTER TABLE {qi(table)} RENAME COLUMN {qi(_js_str(args[1]))} TO {qi(_js_str(args[2]))}", off,
                     "TypeORM renameColumn")

    def m_renameTable(self, args, off, origin):
        table = self.table_name(args[0]) if args else None
        if table and len(args) >= 2 and _js_str(args[1]):
            self.sql(f"ALTER TABLE {qi(table)} RENAME TO {qi(_js_str(args[1]))}", off, "TypeORM renameTable")


# ---- Sequelize

_SEQUELIZE_TYPES = {"STRING": "VARCHAR(255)", "CHAR": "CHAR(255)", "TEXT": "TEXT", "CITEXT": "CITEXT",
                    "INTEGER": "INTEGER", "BIGINT": "BIGINT", "SMALLINT": "SMALLINT", "TINYINT": "SMALLINT",
                    "MEDIUMINT": "INTEGER", "FLOAT": "FLOAT", "REAL": "REAL", "DOUBLE": "DOUBLE PRECISION",
                    "DECIMAL": "DECIMAL", "NUMERIC": "DECIMAL", "BOOLEAN": "BOOLEAN",
                    "DATE": "TIMESTAMP WITH TIME ZONE", "DATEONLY": "DATE", "TIME": "TIME", "UUID": "UUID",
                    "JSON": "JSON", "JSONB": "JSONB", "BLOB": "BYTEA", "INET": "INET", "CIDR": "CIDR",
                    "MACADDR": "MACADDR", "TSVECTOR": "TSVECTOR", "HSTORE": "HSTORE", "GEOMETRY": "GEOMETRY",
                    "GEOGRAPHY": "GEOGRAPHY", "RANGE": "INT4RANGE"}


class _Sequelize(_JsMigration):
    orm = "Sequelize"

    def run(self, body_start, body_end, names):
        js, s = self.js, self.js.s
        wrapped = [(a, b) for a, b in self._transactions(body_start, body_end)]
        pat = re.compile(r"(?<![\w$.])(?:" + "|".join(re.escape(n) for n in names) + r")\s*\.\s*"
                         r"(createTable|addColumn|changeColumn|addIndex|addConstraint|removeColumn|renameColumn|"
                         r"dropTable|renameTable|bulkInsert|bulkDelete|bulkUpdate|sequelize\s*\.\s*query)\s*\(")
        base_txn = self.txn
        for m in pat.finditer(s, body_start, body_end):
            method = re.sub(r"\s+", "", m.group(1)).replace("sequelize.", "")
            open_ = m.end() - 1
            close = _match(s, open_)
            args = js.args(open_, close)
            inside = any(a <= m.start() < b for a, b in wrapped)
            passes = re.search(r"\btransaction\s*[:,}]", s[open_:close + 1]) is not None
            self.txn = base_txn if (inside or passes) else None
            try:
                getattr(self, "m_" + method)(args, m.start(), f"Sequelize queryInterface.{method}")
            except Exception:  # noqa: BLE001
                continue
        self.txn = base_txn

    def _transactions(self, a, b):
        s = self.js.s
        for m in re.finditer(r"\.\s*transaction\s*\(", s[a:b]):
            open_ = a + m.end() - 1
            yield open_, _match(s, open_)

    def coltype(self, table: str, col: str, v: _V) -> tuple[str | None, list]:
        if v is None:
            return None, []
        if v.kind == "str":
            return (v.value if _valid_type(v.value) else None), []
        if v.kind != "chain":
            return None, []
        segs = v.value
        names = [x[0] for x in segs]
        tname = names[-1] if names[-1] != "UNSIGNED" else names[-2]
        args = next((x[1] for x in reversed(segs) if x[1] is not None and x[0] == tname), None) or []
        if tname == "ENUM":
            values = [str(a.value) for a in args if a.kind == "str"]
            if not values and args and args[0].kind == "obj":
                values = _js_strs(args[0].value.get("values"))
            ename = f"enum_{table}_{col}"
            return qq(ename), ([(_enum_sql(ename, values, qq), v.start)] if values else [])
        if tname == "ARRAY":
            inner, pre = self.coltype(table, col, args[0]) if args else (None, [])
            return (f"{inner}[]" if inner else None), pre
        base = _SEQUELIZE_TYPES.get(tname)
        if base is None:
            return None, []
        nums = [a.value for a in args if a.kind == "num"]
        if tname in ("STRING", "CHAR") and nums:
            base = f"{base.split('(')[0]}({nums[0]})"
        elif tname in ("DECIMAL", "NUMERIC") and nums:
            base = f"DECIMAL({', '.join(nums[:2])})"
        return base, []

    def attribute(self, table, col, v: _V) -> tuple[str | None, list, _V | None]:
        """(definition, statements before, the attribute's type value) of one attribute."""
        if v.kind == "obj":
            tv = v.value.get("type")
            base, pre = self.coltype(table, col, tv)
            if base is None:
                return None, pre, tv
            if _js_bool(v.value.get("autoIncrement")):
                base = {"INTEGER": "SERIAL", "BIGINT": "BIGSERIAL", "SMALLINT": "SMALLSERIAL"}.get(base, base)
            defn = base
            an = v.value.get("allowNull")
            if an is not None and an.kind == "bool" and an.value is False:
                defn += " NOT NULL"
            d = _js_default(v.value.get("defaultValue"))
            if d is not None:
                defn += f" DEFAULT {d}"
            if _js_bool(v.value.get("unique")):
                defn += " UNIQUE"
            if _js_bool(v.value.get("primaryKey")):
                defn += " PRIMARY KEY"
            return defn, pre, tv
        base, pre = self.coltype(table, col, v)
        return base, pre, v

    def reference(self, table, col, v: _V, later, origin):
        ref = v.value.get("references") if v.kind == "obj" else None
        if ref is None or ref.kind != "obj":
            return
        model = ref.value.get("model")
        target = _js_str(model) or _js_str(_js_get(model, "tableName"))
        key = _js_str(ref.value.get("key")) or "id"
        self.fk(ref.start, origin, f"{table}.{col}", f"{target}.{key}" if target else None,
                _js_str(v.value.get("onDelete")), later)

    def table_name(self, v):
        return _js_str(v) or _js_str(_js_get(v, "tableName"))

    def m_createTable(self, args, off, origin):
        if len(args) < 2 or args[1].kind != "obj":
            return
        table = self.table_name(args[0])
        if not table:
            return
        line, col = self.lc(off)
        layout = _Layout(line, col)
        layout.put(f"CREATE TABLE {qi(table)} (")
        ncols, pre, refs = 0, [], []
        for cname, v in args[1].value.items():
            defn, before, tv = self.attribute(table, cname, v)
            pre += before
            if defn is None:
                continue
            if ncols:
                layout.comma()
            tline, tcol = self.lc(tv.start) if tv is not None else (None, None)
            layout.column(qi(cname), defn, tline, None, tcol)
            ncols += 1
            refs.append((cname, v))
        layout.put(")")
        for sql, o in pre:
            self.sql(sql, o, "Sequelize ENUM")
        if ncols:
            self.out.sql(layout.text(), line, col, "Sequelize createTable", self.txn)
        for cname, v in refs:
            self.reference(table, cname, v, False, "Sequelize createTable references")

    def m_addColumn(self, args, off, origin):
        if len(args) < 3:
            return
        table, cname = self.table_name(args[0]), _js_str(args[1])
        if not (table and cname):
            return
        defn, pre, tv = self.attribute(table, cname, args[2])
        for sql, o in pre:
            self.sql(sql, o, "Sequelize ENUM")
        if defn:
            line, col = self.lc(off)
            layout = _Layout(line, col)
            layout.put(f"ALTER TABLE {qi(table)} ADD COLUMN")
            tline, tcol = self.lc(tv.start) if tv is not None else (None, None)
            layout.column(qi(cname), defn, tline, None, tcol)
            self.out.sql(layout.text(), line, col, "Sequelize addColumn", self.txn)
        self.reference(table, cname, args[2], True, "Sequelize addColumn references")

    def m_changeColumn(self, args, off, origin):
        if len(args) < 3:
            return
        table, cname = self.table_name(args[0]), _js_str(args[1])
        v = args[2]
        base, pre, _ = self.attribute(table or "", cname or "", v.value.get("type") if v.kind == "obj" else v)
        if table and cname and base:
            for sql, o in pre:
                self.sql(sql, o, "Sequelize ENUM")
            self.sql(f"ALTER TABLE {qi(table)} ALTER COLUMN {qi(cname)} TYPE {base}", off, "Sequelize changeColumn")
            an = v.value.get("allowNull") if v.kind == "obj" else None
            if an is not None and an.kind == "bool" and an.value is False:
                self.sql(f"ALTER TABLE {qi(table)} ALTER COLUMN {qi(cname)} SET NOT NULL", off,
                         "Sequelize changeColumn")
            self.reference(table, cname, v, True, "Sequelize changeColumn references")

    def m_addIndex(self, args, off, origin):
        if not args:
            return
        table = self.table_name(args[0])
        opts = next((a for a in args[1:] if a.kind == "obj"), None)
        fields = _js_strs(args[1]) if len(args) > 1 and args[1].kind == "arr" else []
        if opts is not None and not fields:
            fv = opts.value.get("fields")
            if fv is not None and fv.kind == "arr":
                fields = [str(x.value) if x.kind == "str" else _js_str(_js_get(x, "name")) or ""
                          for x in fv.value]
                fields = [f for f in fields if f]
        if not (table and fields):
            return
        o = opts.value if opts is not None else {}
        name = _js_str(o.get("name")) or re.sub(r"\W", "_", f"{table}_{'_'.join(fields)}").lower()
        unique = _js_bool(o.get("unique")) or _js_str(o.get("type")) == "UNIQUE"
        using = _js_str(o.get("using")) or _js_str(o.get("method"))
        self.sql(_index_sql(name, qi(table), [qi(f) for f in fields], unique=unique,
                            concurrently=_js_bool(o.get("concurrently")), using=using), off, "Sequelize addIndex")

    def m_addConstraint(self, args, off, origin):
        if len(args) < 2:
            return
        table = self.table_name(args[0])
        opts = args[1] if args[1].kind == "obj" else (args[2] if len(args) > 2 and args[2].kind == "obj" else None)
        if opts is None or not table:
            return
        o = opts.value
        kind = (_js_str(o.get("type")) or "").lower()
        fields = _js_strs(o.get("fields")) or (_js_strs(args[1]) if args[1].kind == "arr" else [])
        name = _js_str(o.get("name"))
        if kind in ("foreign key", "foreign_key", "foreignkey"):
            ref = o.get("references")
            target = _js_str(_js_get(ref, "table")) or _js_str(_js_get(_js_get(ref, "table"), "tableName"))
            field = _js_str(_js_get(ref, "field")) or "id"
            self.fk(off, "Sequelize addConstraint", f"{table}.{','.join(fields)}",
                    f"{target}.{field}" if target else None, _js_str(o.get("onDelete")), True)
        elif kind in ("unique", "primary key") and fields:
            cons = "UNIQUE" if kind == "unique" else "PRIMARY KEY"
            self.sql(f"ALTER TABLE {qi(table)} ADD " + (f"CONSTRAINT {qi(name)} " if name else "") +
                     f"{cons} (" + ", ".join(qi(f) for f in fields) + ")", off, "Sequelize addConstraint")

    def m_removeColumn(self, args, off, origin):
        if len(args) >= 2 and self.table_name(args[0]) and _js_str(args[1]):
            self.sql(f"ALTER TABLE {qi(self.table_name(args[0]))} DROP COLUMN {qi(_js_str(args[1]))}", off,
                     "Sequelize removeColumn")

    def m_renameColumn(self, args, off, origin):
        if len(args) >= 3 and self.table_name(args[0]) and _js_str(args[1]) and _js_str(args[2]):
            self.sql(f"ALTER TABLE {qi(self.table_name(args[0]))} RENAME COLUMN {qi(_js_str(args[1]))} TO "
                     f"{qi(_js_str(args[2]))}", off, "Sequelize renameColumn")

    def m_renameTable(self, args, off, origin):
        if len(args) >= 2 and self.table_name(args[0]) and _js_str(args[1]):
            self.sql(f"ALTER TABLE {qi(self.table_name(args[0]))} RENAME TO {qi(_js_str(args[1]))}", off,
                     "Sequelize renameTable")

    def m_dropTable(self, args, off, origin):
        if args and self.table_name(args[0]):
            self.sql(f"DROP TABLE {qi(self.table_name(args[0]))}", off, "Sequelize dropTable")

    def m_bulkInsert(self, args, off, origin):
        if args and self.table_name(args[0]):
            cols = []
            if len(args) > 1 and args[1].kind == "arr" and args[1].value and args[1].value[0].kind == "obj":
                cols = list(args[1].value[0].value)
            t = qi(self.table_name(args[0]))
            sql = (f"INSERT INTO {t} ({', '.join(qi(c) for c in cols)}) VALUES ("
                   + ", ".join(f"${i + 1}" for i in range(len(cols))) + ")") if cols else \
                f"INSERT INTO {t} DEFAULT VALUES"
            self.sql(sql, off, "Sequelize bulkInsert", dynamic=True)

    def m_bulkDelete(self, args, off, origin):
        if args and self.table_name(args[0]):
            where = len(args) > 1 and args[1].kind == "obj" and bool(args[1].value)
            self.sql(f"DELETE FROM {qi(self.table_name(args[0]))}" + (" WHERE $1" if where else ""), off,
                     "Sequelize bulkDelete", dynamic=True)

    def m_bulkUpdate(self, args, off, origin):
        if len(args) >= 2 and self.table_name(args[0]) and args[1].kind == "obj" and args[1].value:
            cols = list(args[1].value)
            sets = ", ".join(f"{qi(c)} = ${i + 1}" for i, c in enumerate(cols))
            where = len(args) > 2 and args[2].kind == "obj" and bool(args[2].value)
            self.sql(f"UPDATE {qi(self.table_name(args[0]))} SET {sets}" + (f" WHERE ${len(cols) + 1}" if where
                                                                                  else ""),
                     off, "Sequelize bulkUpdate", dynamic=True)

    def m_query(self, args, off, origin):
        if not args:
            return
        opts = args[1] if len(args) > 1 and args[1].kind == "obj" else None
        params = ()
        if opts is not None:
            rep = opts.value.get("replacements")
            if rep is not None:
                params = ("qmark",) if rep.kind == "arr" else ("named",)
        self.literal(args[0], "Sequelize sequelize.query", params=params)


# ---- Knex

_KNEX_TYPES = {"integer": "integer", "int": "integer", "bigInteger": "bigint", "bigint": "bigint",
               "smallint": "smallint", "tinyint": "smallint", "mediumint": "integer", "text": "text",
               "string": "character varying", "boolean": "boolean", "date": "date", "datetime": "timestamptz",
               "timestamp": "timestamptz", "time": "time", "float": "real", "double": "double precision",
               "decimal": "decimal", "uuid": "uuid", "json": "json", "jsonb": "jsonb", "binary": "bytea",
               "geometry": "geometry", "geography": "geography", "point": "point"}


class _Knex(_JsMigration):
    orm = "Knex"

    def run(self, body_start, body_end, names):
        js, s = self.js, self.js.s
        knex = [n for n in names if n not in ("Promise",)] or ["knex"]
        head = r"(?<![\w$.])(?:" + "|".join(re.escape(n) for n in knex) + r")\b"
        consumed = body_start
        for m in re.finditer(head, s[body_start:body_end]):
            start = body_start + m.start()
            if start < consumed:
                continue
            v = js.chain(start)
            if v.kind != "chain" or len(v.value) < 1:
                continue
            consumed = start + 1  # calls nested in this chain's arguments (.then(() => knex.raw(…))) come next
            try:
                self.statement(v, start)
            except Exception:  # noqa: BLE001
                continue

    def statement(self, v: _V, start):
        segs = v.value
        names = [x[0] for x in segs]
        knex_args = segs[0][1]
        if len(segs) >= 2 and names[1] == "schema":
            i = 2
            while i < len(segs):
                name, args, off = segs[i]
                if name in ("createTable", "createTableIfNotExists", "alterTable", "table", "createTableLike"):
                    self.table(name, args or [], off)
                elif name == "raw" and args:
                    self.literal(args[0], "Knex schema.raw", params=self.binding_style(args), knex=True)
                elif name in ("dropTable", "dropTableIfExists") and args and _js_str(args[0]):
                    self.sql(("DROP TABLE IF EXISTS " if name.endswith("IfExists") else "DROP TABLE ")
                             + qi(_js_str(args[0])), off, f"Knex schema.{name}")
                elif name == "renameTable" and args and len(args) >= 2 and _js_str(args[0]) and _js_str(args[1]):
                    self.sql(f"ALTER TABLE {qi(_js_str(args[0]))} RENAME TO {qi(_js_str(args[1]))}", off,
                             "Knex schema.renameTable")
                i += 1
            return
        if len(segs) >= 2 and names[1] == "raw" and segs[1][1] and self.statement_level(start):
            args = segs[1][1]
            self.literal(args[0], "Knex knex.raw", params=self.binding_style(args), knex=True)
            return
        if knex_args and _js_str(knex_args[0]):  # knex('table').insert(…)
            table = qi(_js_str(knex_args[0]))
            ops = names[1:]
            where = any(o.startswith("where") for o in ops)
            for name, args, off in segs[1:]:
                if name == "insert":
                    self.sql(f"INSERT INTO {table} DEFAULT VALUES", start, "Knex insert", dynamic=True)
                elif name == "update" and args and args[0].kind == "obj" and args[0].value:
                    cols = list(args[0].value)
                    sets = ", ".join(f"{qi(c)} = ${i + 1}" for i, c in enumerate(cols))
                    self.sql(f"UPDATE {table} SET {sets}" + (f" WHERE ${len(cols) + 1}" if where else ""), start,
                             "Knex update", dynamic=True)
                elif name in ("del", "delete"):
                    self.sql(f"DELETE FROM {table}" + (" WHERE $1" if where else ""), start, "Knex del",
                             dynamic=True)
                elif name == "truncate":
                    self.sql(f"TRUNCATE {table}", start, "Knex truncate")

    @staticmethod
    def binding_style(args) -> tuple:
        """knex.raw(sql, [a, b]) binds ? placeholders; knex.raw(sql, {a}) binds :a."""
        if len(args) < 2:
            return ()
        return ("named",) if args[1].kind == "obj" else ("qmark",)

    def statement_level(self, off) -> bool:
        """``knex.raw(…)`` as a statement, not as a value inside another call (``defaultTo(knex.raw(…))``)."""
        enc = self.js.enclosing(off)
        if enc is None or self.js.s[enc[0]] in "{[":
            return True
        before = self.js.s[:enc[0]].rstrip()
        m = re.search(r"([\w$]+)\s*$", before)
        return m is None or m.group(1) in ("then", "all", "allSettled", "each", "map", "mapSeries", "transaction",
                                           "await", "return")

    def table(self, method, args, off):
        if len(args) < 2 or not _js_str(args[0]) or args[-1].kind != "func":
            return
        table = _js_str(args[0])
        fn = args[-1]
        params = _js_names(fn.value)
        if not params:
            return
        t = params[0]
        create = method.startswith("createTable")
        body_start, body_end, expr = fn.extra
        js, s = self.js, self.js.s
        line, col = self.lc(off)
        layout = _Layout(line, col)
        head = "CREATE TABLE IF NOT EXISTS " if method == "createTableIfNotExists" else "CREATE TABLE "
        layout.put(f"{head}{qi(table)} (")
        ncols, pre, post, pks, fks = 0, [], [], [], []
        tq = qi(table)
        for m in re.finditer(r"(?<![\w$.])" + re.escape(t) + r"\s*\.", s[body_start:body_end]):
            cstart = body_start + m.start()
            v = js.chain(cstart)
            if v.kind != "chain" or len(v.value) < 2:
                continue
            segs = v.value[1:]
            name, args, moff = segs[0]
            args = args or []
            mods = {x[0]: (x[1] or []) for x in segs[1:]}
            origin = f"Knex table.{name}"
            cols: list[tuple[str, str, int]] = []  # (column, definition, offset of the type)
            if name in ("increments", "bigIncrements"):
                cname = _js_str(args[0]) if args and args[0].kind == "str" else "id"
                opts = next((a for a in args if a.kind == "obj"), None)
                pk = not (opts is not None and opts.value.get("primaryKey") is not None
                          and opts.value["primaryKey"].kind == "bool" and not opts.value["primaryKey"].value)
                cols.append((cname, ("serial" if name == "increments" else "bigserial") +
                             (" PRIMARY KEY" if pk else ""), moff))
            elif name == "timestamps":
                nn = len(args) > 1 and _js_bool(args[1])
                for c in ("created_at", "updated_at"):
                    cols.append((c, "timestamptz" + (" NOT NULL DEFAULT CURRENT_TIMESTAMP" if nn else ""), moff))
            elif name in ("enu", "enum") and args and _js_str(args[0]):
                values = _js_strs(args[1]) if len(args) > 1 else []
                opts = args[2] if len(args) > 2 and args[2].kind == "obj" else None
                cname = _js_str(args[0])
                if opts is not None and _js_bool(opts.value.get("useNative")):
                    ename = _js_str(opts.value.get("enumName")) or f"{table}_{cname}"
                    if not _js_bool(opts.value.get("existingType")) and values:
                        pre.append((_enum_sql(ename, values, qq), moff))
                    cols.append((cname, self.modifiers(qq(ename), mods), moff))
                else:
                    check = f" CHECK ({qi(cname)} IN ({', '.join(lit(x) for x in values)}))" if values else ""
                    cols.append((cname, self.modifiers("text", mods) + check, moff))
            elif name == "specificType" and len(args) >= 2 and _js_str(args[0]) and _valid_type(_js_str(args[1])):
                cols.append((_js_str(args[0]), self.modifiers(_js_str(args[1]), mods), args[1].start + 1))
            elif name in _KNEX_TYPES and args and _js_str(args[0]):
                base = _KNEX_TYPES[name]
                nums = [a.value for a in args[1:] if a.kind == "num"]
                if name == "string":
                    base = f"character varying({nums[0] if nums else 255})"
                elif name == "decimal":
                    base = f"decimal({', '.join((nums + ['8', '2'])[:2])})"
                cols.append((_js_str(args[0]), self.modifiers(base, mods), moff))
            elif name == "index" and args:
                icols = _js_strs(args[0])
                iname = _js_str(args[1]) if len(args) > 1 else None
                opts = next((a for a in args[1:] if a.kind == "obj"), None)
                using = _js_str(args[2]) if len(args) > 2 and args[2].kind == "str" else \
                    (_js_str(opts.value.get("indexType")) if opts is not None else None)
                if icols:
                    post.append((_index_sql(iname or f"{table}_{'_'.join(icols)}_index".lower(), tq,
                                            [qi(c) for c in icols], using=using), cstart, origin))
                continue
            elif name == "unique" and args:
                ucols = _js_strs(args[0])
                opts = next((a for a in args[1:] if a.kind == "obj"), None)
                uname = _js_str(args[1]) if len(args) > 1 and args[1].kind == "str" else \
                    (_js_str(opts.value.get("indexName")) if opts is not None else None)
                uname = uname or f"{table}_{'_'.join(ucols)}_unique".lower()
                if ucols:
                    if opts is not None and opts.value.get("useConstraint") is not None and \
                            opts.value["useConstraint"].kind == "bool" and not opts.value["useConstraint"].value:
                        post.append((_index_sql(uname, tq, [qi(c) for c in ucols], unique=True), cstart, origin))
                    else:
                        post.append((f"ALTER TABLE {tq} ADD CONSTRAINT {qi(uname)} UNIQUE ("
                                     + ", ".join(qi(c) for c in ucols) + ")", cstart, origin))
                continue
            elif name == "primary" and args:
                pks = _js_strs(args[0])
                if not create and pks:
                    post.append((f"ALTER TABLE {tq} ADD PRIMARY KEY ({', '.join(qi(c) for c in pks)})", cstart,
                                 origin))
                continue
            elif name == "foreign" and args:
                fks.append((table, _js_strs(args[0]), mods, cstart, create))
                continue
            elif name in ("dropColumn", "dropColumns"):
                for a in args:
                    for c in _js_strs(a):
                        post.append((f"ALTER TABLE {tq} DROP COLUMN {qi(c)}", cstart, origin))
                continue
            elif name == "renameColumn" and len(args) >= 2 and _js_str(args[0]) and _js_str(args[1]):
                post.append((f"ALTER TABLE {tq} RENAME COLUMN {qi(_js_str(args[0]))} TO {qi(_js_str(args[1]))}",
                             cstart, origin))
                continue
            else:
                continue
            for cname, defn, toff in cols:
                if "alter" in mods and not create:
                    base = defn.split(" ")[0]
                    post.append((f"ALTER TABLE {tq} ALTER COLUMN {qi(cname)} TYPE {base}", cstart, origin))
                    continue
                if create:
                    if ncols:
                        layout.comma()
                    tline, tcol = self.lc(toff)
                    layout.column(qi(cname), defn, tline, None, tcol)
                    ncols += 1
                else:
                    post.insert(0, (f"ALTER TABLE {tq} ADD COLUMN {qi(cname)} {defn}", cstart, origin))
                if "unique" in mods:
                    post.append((f"ALTER TABLE {tq} ADD CONSTRAINT {qi(f'{table}_{cname}_unique'.lower())} "
                                 f"UNIQUE ({qi(cname)})", cstart, origin))
                if "index" in mods:
                    iname = _js_str(mods["index"][0]) if mods["index"] else None
                    post.append((_index_sql(iname or f"{table}_{cname}_index".lower(), tq, [qi(cname)]), cstart,
                                 origin))
                if "references" in mods:
                    fks.append((table, [cname], mods, cstart, create))
        if create and pks:
            if ncols:
                layout.comma()
            layout.put("PRIMARY KEY (" + ", ".join(qi(c) for c in pks) + ")")
            ncols += 1
        layout.put(")")
        for sql, o in pre:
            self.sql(sql, o, "Knex table.enu useNative")
        if create and ncols:
            self.out.sql(layout.text(), line, col, f"Knex schema.{method}", self.txn)
        for sql, o, origin in post:
            self.sql(sql, o, origin)
        for fk in fks:
            self.knex_fk(*fk)

    @staticmethod
    def modifiers(base: str, mods: dict) -> str:
        defn = base
        if "notNullable" in mods:
            defn += " NOT NULL"
        if "defaultTo" in mods and mods["defaultTo"]:
            d = _js_default(mods["defaultTo"][0])
            if d is not None:
                defn += f" DEFAULT {d}"
        if "primary" in mods:
            defn += " PRIMARY KEY"
        return defn

    def knex_fk(self, table, cols, mods, off, create):
        ref = mods.get("references")
        if not ref or not cols:
            return
        target = _js_str(ref[0]) or ""
        in_table = mods.get("inTable") or mods.get("on")
        if in_table and _js_str(in_table[0]):
            target = f"{_js_str(in_table[0])}.{target}" if target else _js_str(in_table[0])
        on_delete = _js_str(mods["onDelete"][0]) if mods.get("onDelete") else None
        # Knex sends a foreign key as ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY after CREATE TABLE, even for
        # one declared in createTable: added to an existing table
        self.fk(off, "Knex references" if create else "Knex alterTable references", f"{table}.{','.join(cols)}",
                target or None, on_delete, True)


def _js_kind(text: str) -> str | None:
    if "MigrationInterface" in text or re.search(r"\bqueryRunner\s*\.", text):
        return "typeorm"
    if "queryInterface" in text or re.search(r"\b(?:Sequelize|DataTypes)\s*\.\s*[A-Z]", text):
        return "sequelize"
    if re.search(r"\.\s*schema\s*\.|\bKnex\b|\bknex\s*\.\s*raw\b", text):
        return "knex"
    return None


def _js_migration(path: str, text: str, out: _Out):
    js = _Js(text)
    s = js.s
    kind = _js_kind(s)
    if kind is None:
        return
    out.framework = kind
    ups = js.functions("up")
    if kind == "typeorm":
        for cm in re.finditer(r"\bclass\s+\w+[^{]*\{", s):
            body_end = _match(s, cm.end() - 1)
            no_txn = re.search(r"\btransaction\s*=\s*false\b", s[cm.end():body_end])
            txn = None if no_txn else out.new_txn()
            for params, a, b in ups:
                if cm.end() <= a < body_end:
                    _TypeOrm(js, out, txn).run(a, b, _js_names(params) + ["queryRunner"])
        return
    if kind == "sequelize":
        txn = out.new_txn()
        for params, a, b in ups or [("queryInterface, Sequelize", 0, len(s))]:
            _Sequelize(js, out, txn).run(a, b, (_js_names(params)[:1] or []) + ["queryInterface"])
        return
    no_txn = re.search(r"\bconfig\s*=\s*\{[^}]*\btransaction\s*:\s*false", s)
    txn = None if no_txn else out.new_txn()
    for params, a, b in ups or [("knex", 0, len(s))]:
        _Knex(js, out, txn).run(a, b, (_js_names(params)[:1] or []) + ["knex"])


# --------------------------------------------------------------------------------------------------------------
# JPA / Hibernate (Java and Kotlin)
# --------------------------------------------------------------------------------------------------------------

_ANN = re.compile(r"@(?:(?:field|get|set|param|property|setparam):)?(?P<name>[A-Za-z_][\w.]*)")
_JPA_ID_TYPES = {"long": "bigint", "Long": "bigint", "BigInteger": "bigint", "int": "integer", "Integer": "integer",
                 "Int": "integer", "short": "smallint", "Short": "smallint", "UUID": "uuid",
                 "String": "character varying(255)"}
_JPA_MODIFIERS = r"(?:(?:public|protected|private|internal|static|final|abstract|open|data|sealed|transient|" \
                 r"volatile|override|lateinit|const)\s+)*"


class _Ann:
    __slots__ = ("name", "args", "start", "end", "pos", "named")

    def __init__(self, name, args, start, end):
        self.name, self.args, self.start, self.end = name.rsplit(".", 1)[-1], args, start, end
        self.pos, self.named = [], {}
        for _, piece in _split_top(args or ""):
            m = re.match(r"\s*(\w+)\s*=(?!=)\s*(.*)$", piece, re.S)
            if m:
                self.named[m.group(1)] = m.group(2).strip()
            elif piece.strip():
                self.pos.append(piece.strip())

    def get(self, key, positional=False) -> str | None:
        v = self.named.get(key)
        if v is None and positional and self.pos:
            v = self.pos[0]
        return v

    def string(self, key, positional=False) -> str | None:
        v = self.get(key, positional)
        if v is None:
            return None
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', v)
        return "".join(parts) if parts else None


def _anns(js: _Js) -> list[_Ann]:
    s, out = js.s, []
    i = 0
    while True:
        m = _ANN.search(s, i)
        if not m:
            return out
        if m.start() > 0 and (s[m.start() - 1].isalnum() or s[m.start() - 1] in "\"'"):
            i = m.end()
            continue
        j = js.ws(m.end())
        args, end = None, m.end()
        if j < js.n and s[j] == "(":
            close = _match(s, j)
            args, end = s[j + 1:close], close + 1
        out.append(_Ann(m.group("name"), args, m.start(), end))
        i = end


def _nested_anns(text: str, base: int, name: str) -> list[_Ann]:
    """``@Index(…)`` (Java) or ``Index(…)`` (Kotlin) inside an annotation argument, with file offsets."""
    out = []
    for m in re.finditer(r"@?\b" + name + r"\s*\(", text):
        open_ = m.end() - 1
        close = _match(text, open_)
        out.append(_Ann(name, text[open_ + 1:close], base + m.start(), base + close + 1))
    return out


class _Jpa:
    def __init__(self, text: str, out: _Out):
        self.js = _Js(text)
        self.out, self.pos = out, out.pos
        self.anns = _anns(self.js)

    def lc(self, off):
        return self.pos.lc(off)

    def run_before(self, p: int) -> list[_Ann]:
        """The annotations written just before offset ``p`` (only whitespace and modifiers between)."""
        s = self.js.s
        run, cur = [], p
        for a in sorted((a for a in self.anns if a.end <= p), key=lambda a: a.end, reverse=True):
            gap = s[a.end:cur]
            if re.fullmatch(r"\s*" + _JPA_MODIFIERS + r"\s*", gap):
                run.append(a)
                cur = a.start
            else:
                break
        return list(reversed(run))

    def run(self):
        s = self.js.s
        entities = {}
        for m in re.finditer(r"\bclass\s+([A-Za-z_]\w*)", s):
            run = self.run_before(m.start())
            names = {a.name for a in run}
            if "Entity" not in names:
                continue
            cls = m.group(1)
            ent = next(a for a in run if a.name == "Entity")
            table_ann = next((a for a in run if a.name == "Table"), None)
            table = (table_ann.string("name") if table_ann else None) or ent.string("name") or cls
            entities[cls] = {"table": _snake(table) if not (table_ann and table_ann.string("name")) else table,
                             "entity": ent.string("name") or cls, "class_off": m.start(), "run": run,
                             "name_end": m.end()}
        for cls, e in entities.items():
            try:
                self.entity(cls, e, entities)
            except Exception:  # noqa: BLE001
                continue
        self.locks(entities)

    def class_span(self, name_end: int) -> tuple[int, int]:
        """From the class name to the end of its body (a Kotlin primary constructor included)."""
        s, js = self.js.s, self.js
        j = js.ws(name_end)
        end = j
        if j < js.n and s[j] == "(":
            end = _match(s, j) + 1
            j = js.ws(end)
        b = s.find("{", j)
        nxt = re.compile(r"\bclass\s+\w").search(s, j)
        if b >= 0 and (nxt is None or b < nxt.start()):
            end = _match(s, b) + 1
        return name_end, end

    def fields(self, start: int, end: int):
        """(annotations, field name, type name, declaration offset) in a class span."""
        s = self.js.s
        java = re.compile(r"\s*" + _JPA_MODIFIERS + r"([\w.]+(?:<[^;=(){}]*>)?(?:\[\])?)\s+([A-Za-z_]\w*)\s*[;=]")
        kotlin = re.compile(r"\s*" + _JPA_MODIFIERS + r"(?:val|var)\s+([A-Za-z_]\w*)\s*:\s*([\w.]+(?:<[^=,()]*>)?)")
        done = set()
        anns = self.anns  # in source order
        for idx, a in enumerate(anns):
            if not (start <= a.start < end) or a.start in done:
                continue
            run = [a]
            cur = a.end
            for b in anns[idx + 1:]:
                if b.start < cur:
                    continue
                if b.start >= end or s[cur:b.start].strip():
                    break
                run.append(b)
                cur = b.end
            for b in run:
                done.add(b.start)
            mj = java.match(s, cur)
            mk = kotlin.match(s, cur)
            if mk:
                yield run, mk.group(1), mk.group(2).rstrip("?"), cur
            elif mj:
                yield run, mj.group(2), mj.group(1), cur

    def entity(self, cls: str, e: dict, entities: dict):
        s = self.js.s
        table = e["table"]
        start, end = self.class_span(e["name_end"])
        line, col = self.lc(e["class_off"])
        layout = _Layout(line, col)
        layout.put(f"CREATE TABLE {qi(table)} (")
        ncols, interesting, after = 0, False, []
        generators = {}
        for a in [*e["run"], *self.anns]:
            if a.name == "SequenceGenerator" and (a in e["run"] or start <= a.start < end):
                generators[a.string("name") or ""] = a
        for run, field, ftype, decl in self.fields(start, end):
            names = {a.name: a for a in run}
            column_ann = names.get("Column")
            column = (column_ann.string("name") if column_ann else None) or _snake(field)
            base_type = ftype.split("<")[0].rsplit(".", 1)[-1]
            if "Id" in names:
                sql_type = _JPA_ID_TYPES.get(base_type, "bigint")
                gen = names.get("GeneratedValue")
                strategy = (gen.get("strategy") or "AUTO").rsplit(".", 1)[-1] if gen else None
                if column_ann and column_ann.string("columnDefinition"):
                    sql_type = column_ann.string("columnDefinition")
                if ncols:
                    layout.comma()
                fline, fcol = self.lc(decl)
                if gen and strategy == "IDENTITY" and sql_type in ("bigint", "integer", "smallint"):
                    gline, gcol = self.lc(gen.start)
                    layout.column(f"{qi(column)} {sql_type}", "GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                                  gline, None, gcol)
                    interesting = True
                else:
                    layout.column(qi(column), f"{sql_type} PRIMARY KEY", fline, None, None)
                ncols += 1
                if gen and strategy in ("SEQUENCE", "AUTO") and sql_type in ("bigint", "integer", "smallint"):
                    g = generators.get(gen.string("generator") or "") or generators.get("") if generators else None
                    # Hibernate 6 without a generator: "<EntityName>_SEQ", lower-cased by Spring's naming
                    seq = (g.string("sequenceName") if g else None) or \
                        (g.string("name") if g and g.string("name") else f"{_snake(e['entity'])}_seq")
                    alloc = (g.get("allocationSize") if g else None) or "50"
                    initial = (g.get("initialValue") if g else None) or "1"
                    where = g if g is not None else gen
                    sline, scol = self.lc(where.start)
                    if re.fullmatch(r"-?\d+", alloc.strip()) and re.fullmatch(r"-?\d+", initial.strip()):
                        after.append(lambda seq=seq, alloc=alloc, initial=initial, sline=sline, scol=scol:
                                     self.out.sql(f"CREATE SEQUENCE {qi(seq)} START WITH {initial.strip()} "
                                                  f"INCREMENT BY {alloc.strip()}", sline, scol,
                                                  "JPA @GeneratedValue SEQUENCE"))
                continue
            rel = names.get("ManyToOne") or names.get("OneToOne")
            if rel is not None and not rel.get("mappedBy"):
                jc = names.get("JoinColumn")
                if jc and re.search(r"NO_CONSTRAINT", jc.args or ""):
                    continue
                target_cls = base_type
                target = entities.get(target_cls, {}).get("table") or _snake(target_cls)
                jcol = (jc.string("name") if jc else None) or f"{_snake(field)}_id"
                ref = (jc.string("referencedColumnName") if jc else None) or "id"
                od = names.get("OnDelete")
                on_delete = od.get("action", True).rsplit(".", 1)[-1] if od and od.get("action", True) else None
                rline, rcol = self.lc(rel.start)
                after.append(lambda rline=rline, rcol=rcol, obj=f"{table}.{jcol}", t=f"{target}.{ref}",
                             od=on_delete, origin=f"JPA @{rel.name}":
                             self.out.fk(rline, rcol, origin, "JPA", obj, t, od, True))
                continue
            mtm = names.get("ManyToMany")
            if mtm is not None and not mtm.get("mappedBy"):
                jt = names.get("JoinTable")
                target_cls = re.sub(r".*<\s*([\w.]+)\s*>.*", r"\1", ftype).rsplit(".", 1)[-1]
                target = entities.get(target_cls, {}).get("table") or _snake(target_cls)
                jt_name = (jt.string("name") if jt else None) or f"{table}_{_snake(field)}"
                join = inverse = None
                if jt:
                    for key in ("joinColumns", "inverseJoinColumns"):
                        v = jt.get(key)
                        if v:
                            inner = _nested_anns(v, 0, "JoinColumn")
                            name = inner[0].string("name") if inner else None
                            if key == "joinColumns":
                                join = name
                            else:
                                inverse = name
                join = join or f"{_snake(cls)}_id"
                inverse = inverse or f"{_snake(field)}_id"
                mline, mcol = self.lc(mtm.start)
                for obj, tgt in ((f"{jt_name}.{join}", f"{table}.id"), (f"{jt_name}.{inverse}", f"{target}.id")):
                    after.append(lambda obj=obj, tgt=tgt, mline=mline, mcol=mcol:
                                 self.out.fk(mline, mcol, "JPA @ManyToMany", "JPA", obj, tgt, None, True))
                continue
            if column_ann:
                definition = column_ann.string("columnDefinition")
                if definition and _valid_type(definition):
                    if ncols:
                        layout.comma()
                    cd = column_ann.named.get("columnDefinition", "")
                    q = (column_ann.args or "").find(cd)
                    args_start = s.find("(", column_ann.start) + 1
                    d_off = args_start + q + cd.find('"') + 1 if q >= 0 and '"' in cd else column_ann.start
                    dline, dcol = self.lc(d_off)
                    layout.column(qi(column), definition, dline, None, dcol)
                    ncols += 1
                    interesting = True
                if re.search(r"\bunique\s*=\s*true\b", column_ann.args or ""):
                    uline, ucol = self.lc(column_ann.start)
                    after.append(lambda uline=uline, ucol=ucol, c=column:
                                 self.out.sql(f"ALTER TABLE {qi(table)} ADD CONSTRAINT {qi(f'uk_{table}_{c}')} "
                                              f"UNIQUE ({qi(c)})", uline, ucol, "JPA @Column(unique = true)"))
        layout.put(")")
        if interesting and ncols:
            self.out.sql(layout.text(), line, col, "JPA @Entity", None)
        table_ann = next((a for a in e["run"] if a.name == "Table"), None)
        if table_ann is not None and table_ann.args:
            base = s.find("(", table_ann.start) + 1
            for ix in _nested_anns(table_ann.args, base, "Index"):
                cols = [c.strip() for c in (ix.string("columnList") or "").split(",") if c.strip()]
                keys = []
                for c in cols:
                    m = re.fullmatch(r"(\w+)(?:\s+(asc|desc))?", c, re.I)
                    if m:
                        keys.append(qi(m.group(1)) + (f" {m.group(2).upper()}" if m.group(2) else ""))
                if keys:
                    bare = "_".join(c.split()[0] for c in cols)
                    name = ix.string("name") or f"idx_{table}_{bare}"
                    iline, icol = self.lc(ix.start)
                    unique = re.search(r"\bunique\s*=\s*true\b", ix.args or "") is not None
                    self.out.sql(_index_sql(name, qi(table), keys, unique=unique), iline, icol, "JPA @Index")
            for uc in _nested_anns(table_ann.args, base, "UniqueConstraint"):
                cols = re.findall(r'"(\w+)"', uc.get("columnNames") or "")
                if cols:
                    name = uc.string("name") or f"uk_{table}_{'_'.join(cols)}"
                    uline, ucol = self.lc(uc.start)
                    self.out.sql(f"ALTER TABLE {qi(table)} ADD CONSTRAINT {qi(name)} UNIQUE ("
                                 + ", ".join(qi(c) for c in cols) + ")", uline, ucol, "JPA @UniqueConstraint")
        for emit in after:
            emit()

    def locks(self, entities: dict):
        """``@Lock(LockModeType.PESSIMISTIC_*)``, ``em.find(…, LockModeType…)``, ``setLockMode(…)``."""
        s = self.js.s
        repo = re.search(r"\b(?:Jpa|Crud|PagingAndSorting|ListCrud|Reactive)?Repository\s*<\s*([\w.]+)", s)
        default = repo.group(1).rsplit(".", 1)[-1] if repo else (next(iter(entities)) if len(entities) == 1 else None)
        for m in re.finditer(r"\bLockMode(?:Type)?\s*\.\s*(PESSIMISTIC_READ|PESSIMISTIC_WRITE|"
                             r"PESSIMISTIC_FORCE_INCREMENT|UPGRADE_NOWAIT|UPGRADE_SKIPLOCKED)\b", s):
            line_start = s.rfind("\n", 0, m.start()) + 1
            if re.match(r"\s*import\b", s[line_start:m.start()]):
                continue
            lock = next((a for a in self.anns if a.name == "Lock" and a.start <= m.start() < a.end), None)
            stmt_start = max(s.rfind(";", 0, m.start()), s.rfind("{", 0, m.start()), s.rfind("}", 0, m.start()))
            stmt_end = s.find(";", m.end())
            stmt = s[stmt_start + 1:stmt_end if stmt_end >= 0 else len(s)]
            cls = None
            if lock is None:
                cm = re.search(r"\b([A-Z]\w*)(?:\.class|::class)", stmt)
                cls = cm.group(1) if cm else None
            cls = cls or default
            if cls is None:
                continue
            table = entities.get(cls, {}).get("table") or _snake(cls)
            mode = m.group(1)
            clause = "FOR SHARE" if mode == "PESSIMISTIC_READ" else "FOR UPDATE"
            if mode == "UPGRADE_NOWAIT":
                clause += " NOWAIT"
            elif mode == "UPGRADE_SKIPLOCKED":
                clause += " SKIP LOCKED"
            elif lock is not None:
                hints = " ".join(a.args or "" for a in self.run_around(lock) if a.name == "QueryHints")
                hm = re.search(r"lock\.timeout\"\s*,\s*value\s*=\s*\"(-?\d+)\"", hints)
                if hm and hm.group(1) == "0":
                    clause += " NOWAIT"
                elif hm and hm.group(1) == "-2":
                    clause += " SKIP LOCKED"
            where = lock if lock is not None else None
            line, col = self.lc(where.start if where is not None else m.start())
            self.out.sql(f"SELECT * FROM {qi(table)} WHERE id = $1 {clause}", line, col,
                         f"JPA {'@Lock' if lock is not None else 'LockModeType'}.{mode}", None, dynamic=True)

    def run_around(self, a: _Ann) -> list[_Ann]:
        """The annotations of the declaration ``a`` belongs to."""
        s = self.js.s
        run = self.run_before(a.end)
        cur = a.end
        for b in self.anns:
            if b.start < cur:
                continue
            if s[cur:b.start].strip():
                break
            run.append(b)
            cur = b.end
        return run


def _jpa(path: str, text: str, out: _Out):
    _Jpa(text, out).run()


_SCHEMA_KEYS = re.compile(r"(?:^|\.)(?:hbm2ddl\.auto|ddl-auto|ddl_auto|ddlAuto|"
                          r"schema-generation\.database\.action)$", re.I)
_SCHEMA_VALUES = {"update", "create", "create-drop", "create-only", "drop-and-create", "drop", "create_drop",
                  "create_only", "drop_and_create"}


def _jpa_config(path: str, text: str, out: _Out):
    """``hibernate.hbm2ddl.auto`` / ``spring.jpa.hibernate.ddl-auto`` that makes Hibernate write the schema."""
    lower = path.lower()

    def note(key, value, off):
        v = str(value).strip().strip("\"'").lower()
        m = re.fullmatch(r"\$\{[^:}]+:([^}]*)\}", v)  # ${DDL_AUTO:update}: the default applies when unset
        v = m.group(1).strip() if m else v
        if v in _SCHEMA_VALUES:
            line, col = out.pos.lc(off)
            out.construct({"kind": "SchemaAutoUpdate", "orm": "Hibernate", "value": v, "setting": key}, line, col,
                          key)

    if lower.endswith(".properties"):
        for m in re.finditer(r"^[ \t]*([\w.\-\[\]]+)[ \t]*[=:][ \t]*([^\n#]*)", text, re.M):
            if _SCHEMA_KEYS.search(m.group(1)):
                note(m.group(1), m.group(2), m.start(1))
    elif lower.endswith((".yml", ".yaml")):
        import yaml

        try:
            docs = list(yaml.compose_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        except Exception:  # noqa: BLE001
            docs = []

        def walk(node, prefix):
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if not isinstance(k, yaml.ScalarNode):
                        continue
                    key = f"{prefix}.{k.value}" if prefix else str(k.value)
                    if isinstance(v, yaml.ScalarNode):
                        if _SCHEMA_KEYS.search(key):
                            note(key, v.value, k.start_mark.index)
                    else:
                        walk(v, key)

        for d in docs:
            walk(d, "")
    else:  # persistence.xml, hibernate.cfg.xml
        for m in re.finditer(r"<property\b[^>]*\bname\s*=\s*[\"']([^\"']+)[\"'][^>]*?(?:\bvalue\s*=\s*[\"']"
                             r"([^\"']*)[\"'][^>]*)?/?>(?:([^<]*)</property>)?", text):
            if _SCHEMA_KEYS.search(m.group(1)):
                note(m.group(1), m.group(2) if m.group(2) is not None else (m.group(3) or ""), m.start())


# --------------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------------

_JS_EXT = (".js", ".ts", ".mjs", ".cjs", ".mts", ".cts")


def _detect(path: str, text: str):
    """(handler, framework) for a DSL file, else None. Cheap checks on the name first, then on the content."""
    norm = path.replace("\\", "/")
    name = os.path.basename(norm).lower()
    _, ext = os.path.splitext(name)
    parts = [p.lower() for p in norm.split("/")[:-1]]
    if ext == ".prisma":
        return _prisma, "prisma"
    if ext == ".rb":
        if name == "schema.rb" and "ActiveRecord::Schema" in text:
            return _rails, "rails"
        if ("migrate" in parts and "db" in parts) or "ActiveRecord::Migration" in text:
            return _rails, "rails"
        return None
    if ext in (".xml", ".yaml", ".yml", ".json") and "databaseChangeLog" in text:
        return _liquibase, "liquibase"
    if ext in (".java", ".kt"):
        if "@Entity" in text or "LockModeType" in text or "LockMode." in text:
            return _jpa, "jpa"
        return None
    if ext == ".properties" or (ext in (".yml", ".yaml") and name.startswith(("application", "bootstrap"))) or \
            name in ("persistence.xml", "hibernate.cfg.xml"):
        if re.search(r"hbm2ddl\.auto|ddl-auto|ddl_auto|schema-generation\.database\.action", text):
            return _jpa_config, "jpa"
        return None
    if ext in _JS_EXT and not name.endswith((".d.ts", ".d.mts", ".d.cts")):
        in_folder = any(p in ("migrations", "migration") for p in parts)
        if in_folder or "MigrationInterface" in text or "queryInterface" in text or "knex.schema" in text:
            kind = _js_kind(text) if re.search(r"\bup\b", text) else None
            if kind:
                return _js_migration, kind
        return None
    return None


def extract(path: str, text: str) -> list[Emitted] | None:
    """The records a DSL file makes the database run, or None when the file is not one of these DSL files."""
    try:
        if not isinstance(text, str):
            return None
        found = _detect(path, text)
    except Exception:  # noqa: BLE001 - never raises: an unreadable file is simply not a DSL file
        return None
    if found is None:
        return None
    handler, framework = found
    out = _Out(text, framework)
    try:
        handler(path, text, out)
    except Exception:  # noqa: BLE001 - keep what was found before the problem
        pass
    return out.records
