"""`dsql-audit catalog DSN`: the findings a scan of the database's schema dump would give, read from a live
PostgreSQL 12–18 catalog — a fixed set of catalog queries (not one per table), each turned into the same
rule hits the scan's rules produce (same slugs, variants and messages; objects schema-qualified).

Safety: one transaction opened with BEGIN READ ONLY, with a statement_timeout and a lock_timeout (on DSQL,
which refuses setting them, the client cancels a query that runs past the timeout); nothing is written. A query the role may not run (a catalog view it cannot read) is skipped and reported as an input
error; the rest goes on. The DSN shown anywhere has its password removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsql_audit.model import Hit, InputError

SYSTEM = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'"
# objects an extension owns are the extension's finding, not their own
# an index of its own, not a partition's copy of its parent's index (reported once, on the parent)
OWN_INDEX = "NOT EXISTS (SELECT 1 FROM pg_inherits ih WHERE ih.inhrelid = {oid})"
NOT_EXT = "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.deptype = 'e')"
FINE_COLLATIONS = ("C", "POSIX", "default", "ucs_basic")  # as the scan's collation rule
SUPPORTED_TYPES = {"int2", "int4", "int8", "float4", "float8", "numeric", "bpchar", "varchar", "text", "date",
                   "time", "timetz", "timestamp", "timestamptz", "interval", "bool", "bytea", "uuid", "json", "jsonb"}

# (name, SQL, how each row becomes hits). Rows are tuples in the SELECT's order.
QUERIES: list = []


def query(name: str, sql: str):
    def register(fn):
        QUERIES.append((name, sql, fn))
        return fn
    return register


def _obj(schema: str, name: str, sub: str | None = None) -> str:
    return f"{schema}.{name}" + (f".{sub}" if sub else "")


@query("extensions", "SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1")
def _extensions(rows, ctx):
    for name, _ in rows:
        yield Hit("extension", "create", object=name)


@query("triggers", {
    # PostgreSQL 13+: triggers cloned onto partitions have a parent; 12 has no tgparentid
    120000: f"""SELECT n.nspname, c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND {SYSTEM} AND NOT c.relispartition
        ORDER BY 1, 2, 3""",
    130000: f"""SELECT n.nspname, c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND {SYSTEM}
        AND t.tgparentid = 0 ORDER BY 1, 2, 3"""})
def _triggers(rows, ctx):
    for schema, table, name in rows:
        yield Hit("trigger", "create", object=_obj(schema, table, name), detail=name)


@query("event triggers", "SELECT evtname FROM pg_event_trigger ORDER BY 1")
def _event_triggers(rows, ctx):
    for (name,) in rows:
        yield Hit("event-trigger", "default", object=name)


@query("routines", f"""SELECT n.nspname, p.proname, p.prokind, l.lanname,
      (SELECT string_agg(CASE WHEN t.typcategory = 'A' AND t.typelem <> 0
                              THEN (SELECT e.typname FROM pg_type e WHERE e.oid = t.typelem) || '[]' ELSE t.typname END,
                         ', ' ORDER BY u.ord)
       FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(oid, ord) JOIN pg_type t ON t.oid = u.oid) FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
    WHERE {SYSTEM} AND {NOT_EXT.format(oid='p.oid')} AND p.prokind IN ('f', 'p') ORDER BY 1, 2""")
def _routines(rows, ctx):
    for schema, name, kind, lang, args in rows:
        signature = f"{name}({args or ''})"  # as the scan names a routine: argument types by internal name
        if kind == "p":
            yield Hit("procedure", "create", object=_obj(schema, signature))
        elif lang != "sql":
            yield Hit("procedural-function", "default", object=_obj(schema, signature), detail=lang)


@query("foreign keys", f"""SELECT n.nspname, c.relname, k.conname, fn.nspname, f.relname, k.confdeltype,
      k.confupdtype, k.convalidated
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
    WHERE k.contype = 'f' AND k.conparentid = 0 AND {SYSTEM} ORDER BY 1, 2, 3""")
def _foreign_keys(rows, ctx):
    actions = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
    for schema, table, name, fschema, ftable, on_delete, on_update, validated in rows:
        detail = f"{schema}.{table} → {fschema}.{ftable}"
        obj = _obj(schema, table, name)
        # pg_dump adds every foreign key with ALTER TABLE … ADD CONSTRAINT (NOT VALID when it was not
        # validated): said of the live key (a warning: declared inline it is fine), and before DSQL had
        # foreign keys, refused either way
        yield Hit("foreign-key", "live" if validated else "add_not_valid", object=obj, detail=detail)
        if validated:
            yield Hit("foreign-key", "add_not_valid", object=obj, detail=detail)
        for event, action in (("DELETE", on_delete), ("UPDATE", on_update)):
            if action in actions:
                yield Hit("foreign-key", "cascade", object=obj, detail=f"ON {event} {actions[action]} on {detail}")


@query("types", f"""SELECT n.nspname, t.typname, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE {SYSTEM} AND {NOT_EXT.format(oid='t.oid')} AND (t.typtype IN ('e', 'r', 'b')
      OR t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c'))
    AND t.typname NOT LIKE '\\_%' ORDER BY 1, 2""")
def _types(rows, ctx):
    for schema, name, kind in rows:
        variant = {"e": "enum", "c": "composite", "r": "range", "b": "base"}[kind]
        yield Hit("custom-type", variant, object=_obj(schema, name))


@query("domains", f"""SELECT n.nspname, t.typname, b.typname, format_type(t.typbasetype, NULL)
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_type b ON b.oid = t.typbasetype
    WHERE t.typtype = 'd' AND {SYSTEM} AND {NOT_EXT.format(oid='t.oid')}
      AND b.typnamespace = 'pg_catalog'::regnamespace ORDER BY 1, 2""")
def _domains(rows, ctx):
    for schema, name, base, shown in rows:  # a domain over a type DSQL cannot store is refused like a column
        if base.startswith("_") or base not in SUPPORTED_TYPES:
            yield Hit("unsupported-type", "domain", object=_obj(schema, name), detail=shown)


@query("relations", f"""SELECT n.nspname, c.relname, c.relkind, c.relpersistence, c.relispartition,
      coalesce(ts.spcname, ''), c.relrowsecurity
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace
    WHERE {SYSTEM} AND {NOT_EXT.format(oid='c.oid')} AND c.relkind IN ('r', 'p', 'm', 'f') ORDER BY 1, 2""")
def _relations(rows, ctx):
    for schema, name, kind, persistence, is_partition, tablespace, rls in rows:
        obj = _obj(schema, name)
        if kind == "m":
            yield Hit("materialized-view", "create", object=obj)
        elif kind == "p":
            yield Hit("partitioned-table", "partition_by", object=obj)
        elif kind == "f":
            yield Hit("foreign-table", "table", object=obj)
        if is_partition:
            yield Hit("partitioned-table", "partition_of", object=obj)
        if persistence == "u":
            yield Hit("unlogged-table", "create", object=obj)
        if tablespace:
            yield Hit("tablespace", "clause", object=obj, detail=tablespace)
        if rls:
            yield Hit("row-level-security", "enable", object=obj)


@query("inheritance", f"""SELECT n.nspname, c.relname, pn.nspname, p.relname FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
    WHERE p.relkind = 'r' AND {SYSTEM} ORDER BY 1, 2""")
def _inheritance(rows, ctx):
    for schema, name, pschema, parent in rows:
        yield Hit("table-inheritance", "inherits", object=_obj(schema, name), detail=f"{pschema}.{parent}")


@query("tablespaces", "SELECT spcname FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY 1")
def _tablespaces(rows, ctx):
    for (name,) in rows:
        yield Hit("tablespace", "create", object=name)


@query("columns", f"""SELECT n.nspname, c.relname, a.attname, t.typname, t.typtype, a.attndims,
      format_type(a.atttypid, a.atttypmod), coalesce(co.collname, ''), a.attidentity,
      CASE WHEN a.atttypid = 'numeric'::regtype AND a.atttypmod > 0 THEN ((a.atttypmod - 4) >> 16) END,
      (SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
       WHERE d.objid = coalesce(nullif(t.typelem, 0), t.oid) AND d.classid = 'pg_type'::regclass AND d.deptype = 'e'),
      t.typnamespace = 'pg_catalog'::regnamespace
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_collation co ON co.oid = a.attcollation AND
      a.attcollation <> t.typcollation
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND {SYSTEM}
    AND {NOT_EXT.format(oid='c.oid')} ORDER BY 1, 2, a.attnum""")
def _columns(rows, ctx):
    for schema, table, col, typname, typtype, dims, shown, collation, identity, precision, extension, builtin in rows:
        obj = _obj(schema, table, col)
        if extension:  # as the scan reports a use of an extension's type (no object of its own)
            yield Hit("extension", "type", detail=f"type {typname.lstrip('_')} is provided by the {extension} extension")
        elif typname.startswith("_") or dims:
            yield Hit("unsupported-type", "array", object=obj, detail=shown)
        elif typname in ("json", "jsonb"):
            yield Hit("unsupported-type", typname, object=obj, detail=typname)
        elif typtype in ("b", "r", "m") and builtin and typname not in SUPPORTED_TYPES:
            yield Hit("unsupported-type", "column", object=obj, detail=shown)
        if precision is not None and precision > 38:
            variant = "numeric_precision_1000" if precision > 1000 else "numeric_precision_38"
            yield Hit("unsupported-type", variant, object=obj, detail=str(precision))
        if collation and collation not in FINE_COLLATIONS:
            yield Hit("collation", "column", object=obj, detail=collation)
        if identity in ("a", "d") and typname != "int8":
            yield Hit("sequence", "identity_type", object=obj, detail=shown)


@query("sequences", f"""SELECT n.nspname, c.relname, s.seqcache, format_type(s.seqtypid, NULL),
      EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'i')
    FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {SYSTEM} ORDER BY 1, 2""")
def _sequences(rows, ctx):
    for schema, name, cache, shown, identity in rows:
        obj = _obj(schema, name)
        if identity:  # an identity column's sequence: judged as the column
            if cache != 1 and cache < 65536:
                yield Hit("sequence", "identity_cache", object=obj, detail=str(cache))
            continue
        yield Hit("sequence", "create_sequence", object=obj)
        if cache != 1 and cache < 65536:
            yield Hit("sequence", "sequence_cache", object=obj, detail=str(cache))
        if shown != "bigint":
            yield Hit("sequence", "sequence_type", object=obj, detail=shown)


@query("constraints", f"""SELECT n.nspname, c.relname, k.conname, k.contype, array_length(k.conkey, 1)
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE k.contype IN ('x', 'p') AND k.conparentid = 0 AND {SYSTEM} ORDER BY 1, 2, 3""")
def _constraints(rows, ctx):
    for schema, table, name, kind, ncols in rows:
        if kind == "x":
            yield Hit("exclusion-constraint", "create", object=_obj(schema, table, name))
        elif ncols and ncols > 8:
            yield Hit("primary-key-too-wide", "columns", object=_obj(schema, table),
                      detail=f"{ncols} columns (DSQL allows 8)", args={"value": ncols})


@query("indexes", f"""SELECT n.nspname, c.relname, i.relname, am.amname FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am am ON am.oid = i.relam
    WHERE am.amname <> 'btree' AND {OWN_INDEX.format(oid='x.indexrelid')} AND {SYSTEM} ORDER BY 1, 2, 3""")
def _indexes(rows, ctx):
    for schema, table, index, method in rows:
        yield Hit("index-method", "default", object=_obj(schema, table), detail=f"{method} (index {index})")


@query("json keys", f"""SELECT DISTINCT n.nspname, c.relname, a.attname, t.typname
    FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    -- key columns only (indkey lists INCLUDE columns after the indnkeyatts keys)
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY ((x.indkey::int2[])[0:x.indnkeyatts - 1])
    JOIN pg_type t ON t.oid = a.atttypid
    WHERE {OWN_INDEX.format(oid='x.indexrelid')} AND {SYSTEM} AND t.typname IN ('json', 'jsonb') ORDER BY 1, 2, 3""")
def _json_keys(rows, ctx):
    # a key, unique constraint or index over a json/jsonb column: `datatype jsonb is not supported in a key`
    for schema, table, column, type_name in rows:
        yield Hit("index-definition", "key_type", object=_obj(schema, table, column), detail=type_name)


@query("index keys", f"""SELECT n.nspname, c.relname, coalesce(a.attname, 'expression'), k.opt, opc.opcname,
      opc.opcdefault, am.amname,
      (SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
       WHERE d.objid = opc.oid AND d.classid = 'pg_opclass'::regclass AND d.deptype = 'e')
    FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL unnest(x.indkey::int2[], x.indclass::oid[], x.indoption::int2[]) AS k(attnum, opclass, opt)
    JOIN pg_opclass opc ON opc.oid = k.opclass
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
    JOIN pg_class ic ON ic.oid = x.indexrelid JOIN pg_am am ON am.oid = ic.relam
    WHERE {OWN_INDEX.format(oid='x.indexrelid')} AND {SYSTEM} AND NOT x.indisprimary
      AND NOT EXISTS (SELECT 1 FROM pg_constraint co WHERE co.conindid = x.indexrelid)
      AND (k.opt <> 0 OR NOT opc.opcdefault) ORDER BY 1, 2, 3""")
def _index_keys(rows, ctx):
    for schema, table, column, option, opclass, default, method, extension in rows:
        # DESC, NULLS FIRST (indoption bits; they mean a sort order on btree only)
        if method == "btree" and (option & 1 or option & 2):
            yield Hit("index-definition", "sort_order", object=_obj(schema, table), detail=column)
        if default:
            continue
        if extension:  # as the scan reports an extension's operator class: a use of the extension
            yield Hit("extension", "opclass", detail=f"operator class {opclass} is provided by the {extension} "
                      "extension")
        else:
            yield Hit("index-definition", "opclass", object=_obj(schema, table), detail=opclass)


@query("collations", f"""SELECT 'create', n.nspname, co.collname, NULL FROM pg_collation co
      JOIN pg_namespace n ON n.oid = co.collnamespace WHERE {SYSTEM} AND {NOT_EXT.format(oid='co.oid')}
    UNION ALL SELECT 'index', n.nspname, c.relname, co.collname
    FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL unnest(x.indkey::int2[], x.indcollation::oid[]) AS k(attnum, coll)
    JOIN pg_collation co ON co.oid = k.coll
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
    WHERE {OWN_INDEX.format(oid='x.indexrelid')} AND {SYSTEM} AND k.coll <> coalesce(nullif(a.attcollation, 0), 100)
    ORDER BY 1, 2, 3""")
def _collations(rows, ctx):
    # an index key's collation counts when the index chose it (COLLATE in the index), not the column
    for kind, schema, name, collation in rows:
        if kind == "create":
            yield Hit("collation", "create", object=_obj(schema, name))
        elif collation not in FINE_COLLATIONS:
            yield Hit("collation", "index", object=_obj(schema, name), detail=collation)


@query("foreign servers", "SELECT srvname FROM pg_foreign_server ORDER BY 1")
def _foreign_servers(rows, ctx):
    for (name,) in rows:  # the scan reports CREATE SERVER with no object: so here too
        yield Hit("foreign-table", "server", detail=name)


@query("text search", f"""SELECT 'configuration', n.nspname, t.cfgname FROM pg_ts_config t
      JOIN pg_namespace n ON n.oid = t.cfgnamespace WHERE {SYSTEM} AND {NOT_EXT.format(oid='t.oid')}
    UNION ALL SELECT 'dictionary', n.nspname, t.dictname FROM pg_ts_dict t
      JOIN pg_namespace n ON n.oid = t.dictnamespace WHERE {SYSTEM} AND {NOT_EXT.format(oid='t.oid')}
    ORDER BY 1, 2, 3""")
def _text_search(rows, ctx):
    for kind, schema, name in rows:  # the scan reports CREATE TEXT SEARCH … with no object: so here too
        yield Hit("text-search", "configuration", detail=f"{kind} {_obj(schema, name)}")


@query("extension functions in defaults", """SELECT DISTINCT p.proname, e.extname FROM pg_depend d
    JOIN pg_attrdef ad ON ad.oid = d.objid AND d.classid = 'pg_attrdef'::regclass
    JOIN pg_proc p ON p.oid = d.refobjid AND d.refclassid = 'pg_proc'::regclass
    JOIN pg_depend de ON de.objid = p.oid AND de.classid = 'pg_proc'::regclass AND de.deptype = 'e'
    JOIN pg_extension e ON e.oid = de.refobjid ORDER BY 1""")
def _extension_functions(rows, ctx):
    for name, extension in rows:
        yield Hit("extension", "function", detail=f"{name}() is provided by the {extension} extension")


@query("rules", """SELECT schemaname, tablename, rulename FROM pg_rules
    WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3""")
def _rules(rows, ctx):
    for schema, table, name in rows:
        yield Hit("rule", "create", object=_obj(schema, table, name))


@query("policies", "SELECT schemaname, tablename, policyname FROM pg_policies ORDER BY 1, 2, 3")
def _policies(rows, ctx):
    for schema, table, name in rows:
        yield Hit("row-level-security", "policy", object=_obj(schema, table, name))


@query("publications", "SELECT pubname FROM pg_publication ORDER BY 1")
def _publications(rows, ctx):
    for (name,) in rows:
        yield Hit("publication", "create", object=name)


@query("databases", "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn AND "
                    "datname NOT IN (current_database(), 'postgres') ORDER BY 1")
def _databases(rows, ctx):
    for (name,) in rows:
        yield Hit("database", "other", object=name, detail=f"{name} (a DSQL cluster has one database, postgres)")


@query("tables without a primary key", f"""SELECT n.nspname, c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
    AND {SYSTEM} AND {NOT_EXT.format(oid='c.oid')}
    AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') ORDER BY 1, 2""")
def _missing_pk(rows, ctx):
    for schema, name in rows:
        yield Hit("missing-primary-key", "default", object=_obj(schema, name))


# -- quotas, from the catalog (the scan counts them over the schema a dump builds) ------------------------
@query("schemas", f"""SELECT array_agg(n.nspname::text ORDER BY n.oid) FROM pg_namespace n
    WHERE {SYSTEM} AND n.nspname NOT IN ('public', 'sys')""")
def _schemas(rows, ctx):
    # DSQL's quota counts user schemas, public and sys excluded, empty or not (DSQL-FACTS quota table);
    # the one reported is the first over the quota in creation order, as the scan reports it
    names = (rows[0][0] if rows else None) or []
    limit = ctx["profile"].limit("schemas")
    if len(names) > limit:
        yield Hit("too-many-schemas", "default", object=names[limit],
                  detail=f"{len(names)} schemas besides public (limit {limit})", args={"limit": limit})


@query("quotas", f"""SELECT 'tables', count(*)::int, NULL FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {SYSTEM}
    UNION ALL SELECT 'columns', count(*)::int, n.nspname || '.' || c.relname FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND {SYSTEM}
      GROUP BY n.nspname, c.relname HAVING count(*) > 200
    UNION ALL SELECT 'indexes', count(*)::int, n.nspname || '.' || c.relname FROM pg_index x
      JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND {SYSTEM} GROUP BY n.nspname, c.relname HAVING count(*) > 20""")
def _quotas(rows, ctx):
    profile = ctx["profile"]
    for kind, n, obj in rows:
        if kind == "tables" and n > profile.limit("tables"):
            yield Hit("too-many-tables", "default", object="database",
                      detail=f"{n} tables (limit {profile.limit('tables')})")
        elif kind == "columns" and n > profile.limit("columns_per_table"):
            yield Hit("too-many-columns", "default", object=obj,
                      detail=f"{n} columns (limit {profile.limit('columns_per_table')})")
        elif kind == "indexes" and n > profile.limit("indexes_per_table"):
            yield Hit("too-many-indexes", "default", object=obj,
                      detail=f"{n} indexes (limit {profile.limit('indexes_per_table')})")


# -- what only a live database knows ----------------------------------------------------------------------
@query("table sizes", f"""SELECT n.nspname, c.relname, greatest(c.reltuples, coalesce(s.n_live_tup, 0))::bigint,
      pg_total_relation_size(c.oid), coalesce(s.n_tup_upd, 0) + coalesce(s.n_tup_del, 0)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE c.relkind IN ('r', 'p', 'm') AND {SYSTEM} ORDER BY 1, 2""")
def _table_sizes(rows, ctx):
    from dsql_audit.rules import hot_row

    profile = ctx["profile"]
    max_rows, max_bytes = profile.limit("rows_per_transaction"), profile.limit("bytes_per_transaction")
    for schema, table, live_rows, size, writes in rows:
        obj = _obj(schema, table)
        if live_rows > max_rows or size > max_bytes:
            yield Hit("large-table", "default", object=obj,
                      detail=f"{obj} holds ~{live_rows:,} rows and {size / 1048576:,.1f} MiB: a DELETE or UPDATE over all of "
                             f"it passes DSQL's {max_rows:,}-row / {max_bytes // 1048576} MiB transaction limits")
        if 0 < live_rows <= hot_row.SMALL_TABLE and writes >= hot_row.CANDIDATE_CALLS:
            verdict = hot_row.judge(writes, int(live_rows), writes, obj, "updates and deletes (pg_stat_user_tables)")
            if verdict is not None and verdict[0] == "small-table":
                yield Hit("hot-row", "small-table", object=obj, detail=verdict[1])


@query("sessions", """SELECT pid, usename, application_name, state, extract(epoch FROM backend_start),
      extract(epoch FROM xact_start) FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY pid""")
def _sessions(rows, ctx):
    profile, now = ctx["profile"], ctx["now"]
    age_limit, life_limit = profile.limit("transaction_seconds"), profile.limit("connection_seconds")
    for pid, user, app, state, started, xact in rows:
        who = f"session {pid} ({user}{', ' + app if app else ''})"
        if xact is not None and now - float(xact) > age_limit:
            yield Hit("transaction-timeout", "observed", object=who,
                      detail=f"{who} has had a transaction open for {now - float(xact):,.0f} s ({state}); DSQL ends "
                             f"transactions older than {age_limit} s at COMMIT")
        if started is not None and now - float(started) > life_limit:
            yield Hit("connection-lifetime", "observed", object=who,
                      detail=f"{who} has been connected for {(now - float(started)) / 60:,.0f} minutes; DSQL closes "
                             f"connections after {life_limit // 60}")


@query("settings", """SELECT 'database ' || coalesce(d.datname, '*') || ', role ' || coalesce(r.rolname, '*'),
      unnest(s.setconfig) FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase
      LEFT JOIN pg_roles r ON r.oid = s.setrole
    UNION ALL SELECT 'server', 'default_transaction_isolation=' || setting FROM pg_settings
      WHERE name = 'default_transaction_isolation' AND source NOT IN ('default', 'override')""")
def _settings(rows, ctx):
    for scope, setting in rows:
        name = setting.split("=", 1)[0]
        if name == "default_transaction_isolation":
            yield Hit("isolation-level", "default_isolation", object=scope, detail=setting)
        else:
            yield Hit("session-setting", "set_unlisted", object=scope, detail=f"{setting} ({scope})")


@dataclass
class LiveResult:
    """What ScanResult is for scan: the reporters read these."""

    findings: list
    errors: list
    profile: object
    inputs: int = 1
    units: int = 0  # catalog queries run
    frameworks: dict = field(default_factory=dict)
    bytes: int = 0
    server_version: str = ""


def read(dsn: str, *, profile=None, config=None, timeout_ms: int = 30_000, clock=None) -> LiveResult:
    """Run every catalog query in one read-only transaction; hits → findings as the scan makes them."""
    import psycopg

    from dsql_audit.catalog import load_catalog
    from dsql_audit.config import Config
    from dsql_audit.findings import build_findings
    from dsql_audit.profile import load_profile
    from dsql_audit.replay.endpoints import EndpointError, driver_error, redact_dsn

    profile = profile if profile is not None and not isinstance(profile, str) else load_profile(profile)
    where = redact_dsn(dsn) or "(PG* environment)"
    errors: list = []
    located: list = []
    try:
        conn = psycopg.connect(dsn, autocommit=False, connect_timeout=15)
        conn.read_only = True  # psycopg opens the transaction with BEGIN READ ONLY (DSQL refuses SET TRANSACTION)
    except psycopg.Error as exc:
        raise EndpointError(f"cannot connect to {where}: {driver_error(exc, dsn or '')}") from None
    ran = 0
    try:
        ran, version = _read(conn, located, errors, where, profile, timeout_ms, clock)
    except psycopg.Error as exc:  # the server went away before the reads began
        errors.append(InputError(where, f"connection lost: {driver_error(exc, dsn or '')}"))
        version = "?"
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
    findings = build_findings(located, load_catalog(), profile, config or Config(), {}, aggregate=False)
    return LiveResult(findings=findings, errors=errors, profile=profile, units=ran, server_version=version)


def _read(conn, located: list, errors: list, where: str, profile, timeout_ms: int, clock) -> tuple[int, str]:
    """Every catalog query in one read-only transaction; what could not be read is named in ``errors`` (a
    query refused or timed out is skipped; a lost connection skips everything after it)."""
    import time

    import psycopg

    from dsql_audit.findings import Located
    from dsql_audit.model import InputError

    import threading

    ran = 0
    # PostgreSQL: server-side timeouts and a savepoint around each query, in one snapshot. DSQL refuses SET of
    # statement_timeout/lock_timeout and SAVEPOINT (0A000): there the timeout is the client's (a cancel request
    # when it passes) and a query that fails ends its read-only transaction, the next one opens another
    server_side = True
    try:
        conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        conn.execute("SET LOCAL lock_timeout = 5000")
        conn.execute("SAVEPOINT q")
        conn.execute("RELEASE SAVEPOINT q")
    except psycopg.errors.FeatureNotSupported:
        conn.rollback()
        server_side = False
    version = conn.execute("SHOW server_version").fetchone()[0]
    version_num = int(conn.execute("SHOW server_version_num").fetchone()[0])
    dsql = _is_dsql(conn, server_side)
    ctx = {"profile": profile, "now": (clock or time.time)()}
    for number, (name, sql, fn) in enumerate(QUERIES):
        if isinstance(sql, dict):  # per server version: the newest form this server has
            sql = sql[max(v for v in sql if v <= version_num)] if any(v <= version_num for v in sql) else \
                sql[min(sql)]
        timer = None
        try:
            if server_side:
                conn.execute("SAVEPOINT q")
            else:
                timer = threading.Timer(timeout_ms / 1000, conn.cancel)
                timer.daemon = True
                timer.start()
            rows = conn.execute(sql).fetchall()
            if server_side:
                conn.execute("RELEASE SAVEPOINT q")
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if conn.broken or conn.closed:  # the server went away: a partial report of what was read
                unread = [q[0] for q in QUERIES[number:]]
                errors.append(InputError(where, f"connection lost ({reason}); not read: {', '.join(unread)}"))
                return ran, version
            if server_side:
                conn.execute("ROLLBACK TO SAVEPOINT q")
            else:
                conn.rollback()
            errors.append(InputError(where, f"could not read {name} (skipped): {reason}"))
            continue
        finally:
            if timer is not None:
                timer.cancel()
        ran += 1
        for hit in fn(rows, ctx):
            if dsql and _dsql_own(name, hit):
                continue
            # located by its object (schema.table.column …): no file, no line, no code frame
            located.append(Located(hit, where, 0, 0, 0, 0, "", "catalog", None, 0))
    conn.rollback()  # read only: nothing to keep
    return ran, version


def _is_dsql(conn, server_side: bool) -> bool:
    """Is this Aurora DSQL (or dsql-audit's engine)? Its ``sys`` schema holds the async job table and
    ``sys.wait_for_job``; a PostgreSQL database with both is not met in practice. Never raises, and a
    failed probe leaves the reads' transaction usable."""
    import psycopg

    try:
        if server_side:
            conn.execute("SAVEPOINT probe")
        row = conn.execute("SELECT to_regclass('sys.jobs') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_proc p "
                           "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'sys' "
                           "AND p.proname = 'wait_for_job')").fetchone()
        if server_side:
            conn.execute("RELEASE SAVEPOINT probe")
        return bool(row and row[0])
    except psycopg.Error:
        if server_side:
            conn.execute("ROLLBACK TO SAVEPOINT probe")
        else:
            conn.rollback()
        return False


def _dsql_own(query: str, hit) -> bool:
    """On DSQL, what the service itself holds is not the estate's to migrate: its ``sys`` schema, and the
    database and server settings it runs with."""
    return (hit.object or "").lower().startswith("sys.") or query == "settings"


def capture(dsn: str, out) -> int:
    """pg_stat_statements (and each table's live row count, for replay's hot-row judgement) as the JSON
    replay reads; the number of statements. Raises EndpointError when the extension is not installed."""
    import json

    import psycopg

    from dsql_audit.replay.endpoints import EndpointError, redact_dsn

    with psycopg.connect(dsn, autocommit=False, connect_timeout=15) as conn:
        conn.read_only = True  # BEGIN READ ONLY, which PostgreSQL and DSQL both accept
        conn.execute("SET LOCAL statement_timeout = 60000")
        found = conn.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                             "WHERE e.extname = 'pg_stat_statements'").fetchone()
        if found is None:
            raise EndpointError(f"pg_stat_statements is not installed in {redact_dsn(dsn)} (CREATE EXTENSION "
                                "pg_stat_statements, with shared_preload_libraries = 'pg_stat_statements')")
        cur = conn.execute(f'SELECT * FROM "{found[0]}".pg_stat_statements')
        names = [d.name for d in cur.description]
        statements = [{k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
                       for k, v in zip(names, row)} for row in cur.fetchall()]
        tables = [{"name": f"{s}.{t}", "rows": int(n)} for s, t, n in conn.execute(
            "SELECT schemaname, relname, n_live_tup FROM pg_stat_user_tables ORDER BY 1, 2").fetchall()]
        period = None
        try:  # over how long the figures were gathered (PostgreSQL 14+): calls per second for cost planning
            row = conn.execute(f'SELECT extract(epoch FROM now() - stats_reset) FROM "{found[0]}".'
                               "pg_stat_statements_info").fetchone()
            period = float(row[0]) if row and row[0] is not None else None
        except psycopg.Error:
            pass
        conn.rollback()
    from dsql_audit.output import atomic_open

    with atomic_open(out) as fh:  # a failed or interrupted export leaves the previous file as it was
        json.dump({"statements": statements, "tables": tables, "period_seconds": period}, fh, indent=1,
                  default=str)
        fh.write("\n")
    return len(statements)
