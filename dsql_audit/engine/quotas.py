"""DDL-time quotas: after a DDL statement ran (still inside its transaction), count what the catalog now
holds and refuse the statement the way DSQL does when a quota is exceeded (DSQL-REFERENCE §7; SQLSTATEs and
messages from the quota rules in the catalog, limits from the active profile).

Checked: columns per table, indexes per table (counting the primary key, unique constraints and builds in
progress), primary-key columns, tables per database, schemas besides public and sys. Not checked (the
reference gives limits but no case worth a catalog query on every DDL): views, sequences, key bytes.
"""

from __future__ import annotations

from dsql_audit.catalog import load_catalog

_USER_SCHEMA = ("n.nspname NOT IN ('pg_catalog', 'information_schema', 'sys', 'pg_toast') "
                "AND n.nspname NOT LIKE 'pg\\_%%'")


def qualified(rel: dict) -> str:
    """A RangeVar as a regclass literal ("schema"."name")."""
    parts = [rel.get("schemaname"), rel.get("relname")]
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts if p)


def _refusal(slug: str, variant: str, limit: int) -> tuple[str, str, str]:
    v = load_catalog()[slug].variant(variant)
    return slug, v.sqlstate, v.dsql_message.format(limit=limit)


def check(conn, facts, profile, new_indexes: int = 0) -> tuple[str, str, str] | None:
    """(slug, sqlstate, message) of the first quota the statement exceeded, or None. ``new_indexes``: indexes
    the statement adds that are not in the catalog yet (an async build still to start)."""
    node, stmt = facts.node, facts.stmt or {}
    if node == "CreateSchemaStmt":
        n = conn.execute(f"SELECT count(*) FROM pg_namespace n WHERE {_USER_SCHEMA} AND n.nspname <> 'public'"
                         ).fetchone()[0]
        limit = profile.limit("schemas")
        return _refusal("too-many-schemas", "default", limit) if n > limit else None
    if node not in ("CreateStmt", "AlterTableStmt", "IndexStmt"):
        return None
    rel = stmt.get("relation") or {}
    if not rel.get("relname"):
        return None
    row = conn.execute(
        """SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = r.oid AND attnum > 0 AND NOT attisdropped),
                  (SELECT count(*) FROM pg_index WHERE indrelid = r.oid),
                  (SELECT max(indnkeyatts) FROM pg_index WHERE indrelid = r.oid AND indisprimary),
                  (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relkind IN ('r', 'p') AND """ + _USER_SCHEMA + """)
           FROM (SELECT to_regclass(%s) AS oid) r""", (qualified(rel),)).fetchone()
    if row is None:
        return None
    columns, indexes, pk_columns, tables = row
    checks = [("too-many-columns", "default", columns, "columns_per_table"),
              ("too-many-indexes", "default", indexes + new_indexes, "indexes_per_table"),
              ("primary-key-too-wide", "columns", pk_columns or 0, "primary_key_columns")]
    if node == "CreateStmt":
        checks.append(("too-many-tables", "default", tables, "tables"))
    for slug, variant, value, key in checks:
        limit = profile.limit(key)
        if value > limit:
            return _refusal(slug, variant, limit)
    return None
