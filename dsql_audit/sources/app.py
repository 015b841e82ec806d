"""Application source: what a program sends to the database, found where it is written.

Each language or framework module (``python``, ``other_languages``, ``dsl``) reads one file and returns
``Emitted`` records; this module turns them into units, so SQL found in code goes through the same SQL rules
as a .sql file, and ORM constructs that are not SQL reach the app rules as facts of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dsql_audit.model import InputError, Unit


PYTHON_PARAMS = ("format", "pyformat")


class SourceError(Exception):
    """A Python file that does not parse: reported with its line, the scan goes on."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


@dataclass(slots=True)
class Emitted:
    """What application code sends, or makes a framework send, found at one place in the source."""

    line: int
    column: int = 1
    # SQL text: the code's own string (``literal``: its lines and columns map into the file) or the SQL an ORM
    # construct makes the framework emit (synthesized: reported at the construct's place)
    sql: str | None = None
    # an ORM or driver construct the app rules judge, {"kind": "OrmForeignKey", …}: what is not SQL
    construct: dict | None = None
    origin: str | None = None  # what produced it, shown with each finding: "cursor.execute()", "SQLAlchemy Enum"
    literal: bool = True
    params: tuple = PYTHON_PARAMS  # the driver's parameter styles in ``sql`` (see normalize_params)
    dynamic: bool = False  # parts computed at run time were replaced by placeholders
    txn: int | None = None  # emitted records sharing a number run in one transaction (a migration's operations)
    framework: str | None = None  # sqlalchemy, django, alembic, prisma, rails, liquibase, typeorm, jpa, …
    # synthesized SQL: [(offset in sql, line, column)] — where each part of it is written in the source
    spans: list | None = None
    context: bool = False  # see Unit.context: earlier statements of the same transaction, never reported
    restates: bool = False  # see Unit.restates: a model declaration that migrations or create_all() send
    superseded: bool = False  # see Unit.superseded: in a migration a squashed one replaces
    down: bool = False  # see Unit.down: a down migration's statement (Alembic's downgrade())
    placeholders: dict | None = None  # see Unit.placeholders


# a string that is SQL starts with one of these (after comments and whitespace)
SQL_START = re.compile(
    r"\A(?:\s|--[^\n]*\n|/\*.*?\*/)*(?:SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|TRUNCATE|COPY|MERGE|"
    r"BEGIN|START\s+TRANSACTION|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET|RESET|SHOW|LOCK|LISTEN|NOTIFY|UNLISTEN|DO|"
    r"GRANT|REVOKE|VACUUM|ANALYZE|EXPLAIN|CALL|PREPARE|EXECUTE|DEALLOCATE|DECLARE|FETCH|CLOSE|COMMENT|REFRESH|"
    r"REINDEX|CLUSTER|DISCARD)\b", re.I | re.S)

# driver parameter styles → PostgreSQL's $n, so pglast parses the statement. "format": %s, "pyformat":
# %(name)s (psycopg, with %% for a percent sign), "named": :name (SQLAlchemy text(), JPA), "qmark": ? (JDBC,
# sqlite), "at": @name (C#). $1 (asyncpg, node-postgres, pgx) needs nothing. Quoted text is left alone, and ?
# only counts where the language's drivers use it (it is also a jsonb operator).
_QUOTED = r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\""
_STYLE = {"format": r"%s", "pyformat": r"%\((?P<py>\w+)\)s|%%", "named": r"(?<![:\w]):(?P<named>[A-Za-z_]\w*)",
          "qmark": r"\?", "at": r"(?<![@\w])@(?P<at>[A-Za-z_]\w*)"}


def looks_like_sql(text: str) -> bool:
    return bool(SQL_START.match(text))


def normalize_params(sql: str, styles=PYTHON_PARAMS) -> str:
    """Driver placeholders → $n, padded to the placeholder's length where it is longer (columns stay exact)."""
    styles = tuple(s for s in styles if s in _STYLE)
    if not styles:
        return sql
    if "named" in styles:  # SQLAlchemy's expanding bind: IN :ids stands for a parenthesised list
        sql = re.sub(r"(?i)\bIN\s+:([A-Za-z_]\w*)", lambda m: "IN (:" + m.group(1) + ")", sql)
    pattern = re.compile("|".join([_QUOTED] + [_STYLE[s] for s in styles]))
    numbers: dict = {}

    def repl(m: re.Match) -> str:
        token = m.group(0)
        if token[0] in "'\"":
            return token
        if token == "%%":
            return "% "  # psycopg's escaped percent sign (two characters kept)
        name = m.groupdict().get("py") or m.groupdict().get("named") or m.groupdict().get("at")
        key = name if name else len(numbers)
        if key not in numbers:
            numbers[key] = len(numbers) + 1
        ref = f"${numbers[key]}"
        return ref + " " * max(0, len(token) - len(ref))

    return pattern.sub(repl, sql)


def to_units(path: str, emitted: list, errors: list, source: str, source_lines: list | None = None):
    """Units from one file's emitted records, in order. ``source_lines``: the file's lines, for the snippet
    shown with a finding on a synthesized statement or a construct."""
    from dsql_audit.sqltext import Splitter

    index = 0
    for e in emitted:
        snippet = None
        if source_lines is not None and 1 <= e.line <= len(source_lines):
            snippet = source_lines[e.line - 1].rstrip("\n")
        if e.construct is not None:
            yield Unit(path=path, text="", line=e.line, column=e.column, source=source, txn=e.txn,
                       framework=e.framework, index=index, construct=e.construct, origin=e.origin,
                       snippet=snippet, context=e.context, restates=e.restates, superseded=e.superseded, down=e.down)
            index += 1
            continue
        if not e.sql or not e.sql.strip():
            continue
        if not e.literal:
            spans = None

            def at(line):
                return source_lines[line - 1].rstrip("\n") if source_lines is not None and \
                    1 <= line <= len(source_lines) else snippet

            if e.spans:  # each part of the statement comes from a construct somewhere in the source
                spans = tuple((offset, line, column, at(line), False) for offset, line, column in sorted(e.spans))
            elif "\n" in e.sql and source == "orm":
                # the DSL extractors lay a statement out on the file's own lines (a column on the line that
                # declares it, at its column): every offset maps back exactly
                spans, offset = [], 0
                for k, row in enumerate(e.sql.split("\n")):
                    spans.append((offset, e.line + k, e.column if k == 0 else 1, at(e.line + k), True))
                    offset += len(row) + 1
                spans = tuple(spans)
            yield Unit(path=path, text=e.sql, line=e.line, column=e.column, source=source, txn=e.txn,
                       framework=e.framework, index=index, origin=e.origin, snippet=snippet, dynamic=e.dynamic,
                       spans=spans, restates=e.restates, superseded=e.superseded, down=e.down,
                       placeholders=e.placeholders)
            index += 1
            continue
        text = normalize_params(e.sql, e.params)
        try:
            pieces = list(Splitter().split(iter(text.splitlines(keepends=True))))
        except Exception as exc:  # noqa: BLE001 - a string the splitter cannot read is reported, not fatal
            errors.append(InputError(path, f"SQL string could not be split: {exc}", e.line))
            continue
        for raw in pieces:
            if raw.kind != "sql" or not raw.text.strip():
                continue
            line = e.line + raw.line - 1
            column = e.column + raw.column - 1 if raw.line == 1 else raw.column
            yield Unit(path=path, text=raw.text, line=line, column=column, source=source, txn=e.txn,
                       framework=e.framework, index=index, origin=e.origin, dynamic=e.dynamic,
                       superseded=e.superseded, down=e.down, placeholders=e.placeholders)
            index += 1
