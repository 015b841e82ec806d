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


def size_expression(ref: str, index_columns: list[str]) -> str:
    parts = [f"pg_column_size({ref}.*)"]
    parts += [f"coalesce(pg_column_size({ref}.\"{c.replace(chr(34), chr(34) * 2)}\"), 0)" for c in index_columns]
    return " + ".join(parts)


def sized_text(text: str, stmt: dict, expression: str) -> str:
    """The statement with the size column appended to its RETURNING list (a new line first, so a trailing
    ``--`` comment cannot swallow it)."""
    body = text.rstrip().rstrip(";")
    # pglast parses with PostgreSQL 18's grammar: RETURNING is "returningClause" (PG 16: "returningList")
    has = stmt.get("returningClause") or stmt.get("returningList")
    joiner = "\n, " if has else "\nRETURNING "
    return f"{body}{joiner}{expression} AS dsql_audit_size"
