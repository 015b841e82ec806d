"""primary-key-too-wide: a primary key of more than 8 columns or more than 1 KiB declared."""

from dsql_audit.model import Hit


def finish(schema, profile):
    max_cols = profile.limit("primary_key_columns")
    max_bytes = profile.limit("primary_key_bytes")
    for t in schema.tables.values():
        if not t.pk:
            continue
        obj = f"{t.schema}.{t.name}"
        if len(t.pk) > max_cols:
            yield t.unit, Hit("primary-key-too-wide", "columns", object=obj,
                              detail=f"{len(t.pk)} columns (limit {max_cols})", args={"limit": max_cols})
        sizes = [t.columns.get(c) for c in t.pk]
        if sizes and all(isinstance(x, int) for x in sizes) and sum(sizes) > max_bytes:
            yield t.unit, Hit("primary-key-too-wide", "bytes", object=obj,
                              detail=f"{sum(sizes)} declared bytes (limit {max_bytes})")
