"""The SQL a framework construct makes the database run: identifiers, literals, statements laid out on
the DSL lines that declare them, and the records a framework module returns."""

from __future__ import annotations

import bisect
import json
import os
import re
from functools import lru_cache

from dsql_audit.sources.app import Emitted

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
def statement_count(sql: str) -> int:
    """How many statements pglast reads in ``sql`` (-1: it does not parse)."""
    try:
        from pglast.parser import parse_sql_json

        return len(json.loads(parse_sql_json(sql)).get("stmts") or [])
    except Exception:  # noqa: BLE001
        return -1


def parses(sql: str) -> bool:
    return statement_count(sql) == 1


def valid_type(t: str | None) -> bool:
    return bool(t) and ";" not in t and "--" not in t and parses(f"CREATE TABLE _t (_c {t})")


def valid_expr(e: str | None) -> bool:
    return bool(e) and ";" not in e and "--" not in e and parses(f"SELECT {e}")


def valid_where(e: str | None) -> bool:
    return bool(e) and ";" not in e and "--" not in e and parses(f"SELECT 1 WHERE {e}")


# --------------------------------------------------------------------------------------------------------------
# Positions and output
# --------------------------------------------------------------------------------------------------------------

class Pos:
    """Offsets → 1-based (line, column), in characters."""

    def __init__(self, text: str):
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def lc(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, max(offset, 0)) - 1
        return i + 1, offset - self.starts[i] + 1

    def offset(self, line: int, column: int = 1) -> int:
        return self.starts[min(max(line, 1), len(self.starts)) - 1] + column - 1


class Layout:
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


class Out:
    def __init__(self, text: str, framework: str):
        self.pos = Pos(text)
        self.framework = framework
        self.records: list[Emitted] = []
        self._txn = 0

    def new_txn(self) -> int:
        self._txn += 1
        return self._txn

    def sql(self, sql: str, line: int, col: int, origin: str, txn=None, dynamic=False, framework=None):
        """A synthesized statement (dropped when it does not parse as exactly one PostgreSQL statement)."""
        if sql and parses(sql):
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
                     "on_delete": action(on_delete), "added_later": bool(added_later)}
        self.records.append(Emitted(line=line, column=col, construct=construct, origin=origin,
                                    framework=framework or self.framework, txn=txn))

    def construct(self, construct: dict, line: int, col: int, origin: str, txn=None, framework=None):
        self.records.append(Emitted(line=line, column=col, construct=construct, origin=origin,
                                    framework=framework or self.framework, txn=txn))


ACTIONS = {"cascade": "CASCADE", "setnull": "SET NULL", "set null": "SET NULL", "set_null": "SET NULL",
            "nullify": "SET NULL", "restrict": "RESTRICT", "noaction": "NO ACTION", "no action": "NO ACTION",
            "no_action": "NO ACTION", "setdefault": "SET DEFAULT", "set default": "SET DEFAULT",
            "set_default": "SET DEFAULT"}


def action(value) -> str | None:
    if value is None or value is False:
        return None
    if value is True:
        return "CASCADE"
    v = re.sub(r"\s+", " ", str(value).strip().strip(":'\"")).lower()
    return ACTIONS.get(v) or ACTIONS.get(v.replace(" ", "")) or (v.upper() if v else None)


def index_sql(name: str | None, table: str, cols: list[str], unique=False, concurrently=False, using=None,
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
    if where and valid_where(where):
        sql += f" WHERE {where}"
    return sql


def enum_sql(name: str, values, quote=qi) -> str:
    return f"CREATE TYPE {quote(name) if '.' not in name else name} AS ENUM (" + \
        ", ".join(lit(v) for v in values) + ")"



class Value:
    """A parsed Ruby/JS value: kind (sym, str, heredoc, arr, hash, num, bool, nil, lambda, raw), value, span."""

    __slots__ = ("kind", "value", "start", "end", "extra")

    def __init__(self, kind, value, start, end, extra=None):
        self.kind, self.value, self.start, self.end, self.extra = kind, value, start, end, extra

    @property
    def name(self):
        """A symbol's or string's text (what Rails takes as a name)."""
        return str(self.value) if self.kind in ("sym", "str") else None

    def __repr__(self):
        return f"Value({self.kind}, {self.value!r})"




def file_parts(path: str) -> tuple[str, str, list[str]]:
    """(lower-case file name, its extension, lower-case folder names) of a path, / or \\ separated."""
    norm = path.replace("\\", "/")
    name = os.path.basename(norm).lower()
    return name, os.path.splitext(name)[1], [p.lower() for p in norm.split("/")[:-1]]


def scalar_sql(v) -> str | None:
    """A default written as a plain value (string, symbol, number, boolean) as SQL; None for anything else."""
    if v.kind in ("str", "sym"):
        return lit(v.value)
    if v.kind == "num":
        return v.value
    if v.kind == "bool":
        return "true" if v.value else "false"
    return None
