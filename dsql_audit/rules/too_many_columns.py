"""too-many-columns: more columns in a table than DSQL's quota (255)."""

from dsql_audit.model import Hit


def finish(schema, profile):
    limit = profile.limit("columns_per_table")
    for t in schema.tables.values():
        if len(t.columns) > limit:
            yield t.extra_columns_unit or t.unit, Hit(
                "too-many-columns", object=f"{t.schema}.{t.name}",
                detail=f"{len(t.columns)} columns (limit {limit})", args={"limit": limit})
