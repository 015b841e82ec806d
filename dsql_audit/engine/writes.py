"""Measuring what a write statement modifies, for DSQL's 10 MiB per-transaction bound.

The write is sent with one extra RETURNING column: the stored size of each written row
(``pg_column_size(row)``, compressed as PostgreSQL stores it) plus the size of its key in every secondary
index. DSQL counts "modified data including index entries" (DSQL-REFERENCE §4); its exact accounting is not
published, so this is the engine's model of it, stated in docs/engine.md. Deleted rows count their old
image the same way (the reference is silent on deletes).
"""

from __future__ import annotations

SIZED_NODES = ("InsertStmt", "UpdateStmt", "DeleteStmt")  # MERGE has no RETURNING in PostgreSQL 16

INDEX_KEYS = """
SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = to_regclass(%s) AND NOT i.indisprimary
"""


def target(stmt: dict) -> tuple[str, str] | None:
    """(how RETURNING names the target row, regclass literal of the target table)."""
    rel = stmt.get("relation") or {}
    name = rel.get("relname")
    if not name:
        return None
    alias = (rel.get("alias") or {}).get("aliasname") or name
    regclass = ".".join('"' + p.replace('"', '""') + '"' for p in (rel.get("schemaname"), name) if p)
    return '"' + alias.replace('"', '""') + '"', regclass


# a written row over DSQL's row or value bound is flagged in the same size column, above any real size
ROW_OVER, VALUE_OVER = 1 << 52, 1 << 51
VARLENA = frozenset({"text", "varchar", "bpchar", "bytea", "json", "jsonb"})  # what the value bound is about


def _col(ref: str, name: str) -> str:
    return f"{ref}.\"{name.replace(chr(34), chr(34) * 2)}\""


def _row_over(ref: str, row_bytes: int) -> str:
    return f"pg_column_size({ref}.*) > {int(row_bytes)}"


def _value_over(ref: str, value_columns: list[str], value_bytes: int) -> str:
    widest = f"greatest({', '.join(f'coalesce(pg_column_size({_col(ref, c)}), 0)' for c in value_columns)})"
    return f"{widest} > {int(value_bytes)}"


def size_expression(ref: str, index_columns: list[str], value_columns: list[str] = (), row_bytes: int = 0,
                    value_bytes: int = 0) -> str:
    """Each written row's stored size plus its secondary-index keys; with ``row_bytes`` / ``value_bytes``,
    plus ROW_OVER / VALUE_OVER when the row, or one of ``value_columns``, is over that bound."""
    parts = [f"pg_column_size({ref}.*)"]
    parts += [f"coalesce(pg_column_size({_col(ref, c)}), 0)" for c in index_columns]
    if row_bytes:
        parts.append(f"(CASE WHEN {_row_over(ref, row_bytes)} THEN {ROW_OVER} ELSE 0 END)")
    if value_bytes and value_columns:
        parts.append(f"(CASE WHEN {_value_over(ref, value_columns, value_bytes)} THEN {VALUE_OVER} ELSE 0 END)")
    return "(" + " + ".join(f"{p}::bigint" for p in parts) + ")"


def over_condition(ref: str, value_columns: list[str], row_bytes: int, value_bytes: int) -> str:
    """True for a written row over DSQL's row bound, or with one of ``value_columns`` over its value bound
    (the same tests as size_expression's flags)."""
    parts = [_row_over(ref, row_bytes)]
    if value_columns:
        parts.append(_value_over(ref, value_columns, value_bytes))
    return "(" + " OR ".join(parts) + ")"


def unpack(size: int) -> tuple[int, bool, bool]:
    """(bytes, row over its bound, a value over its bound) from the size column."""
    row = size >= ROW_OVER
    size -= ROW_OVER if row else 0
    value = size >= VALUE_OVER
    return size - (VALUE_OVER if value else 0), row, value


def sized_text(text: str, stmt: dict, expression: str) -> str:
    """The statement with the size column appended to its RETURNING list (a new line first, so a trailing
    ``--`` comment cannot swallow it)."""
    body = text.rstrip().rstrip(";")
    # pglast parses with PostgreSQL 18's grammar: RETURNING is "returningClause" (PG 16: "returningList")
    has = stmt.get("returningClause") or stmt.get("returningList")
    joiner = "\n, " if has else "\nRETURNING "
    return f"{body}{joiner}{expression} AS dsql_audit_size"
