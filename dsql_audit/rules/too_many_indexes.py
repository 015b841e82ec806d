"""too-many-indexes: more indexes on a table than DSQL's quota (24, PK and unique ones included)."""

from dsql_audit.model import Hit


def finish(schema, profile):
    limit = profile.limit("indexes_per_table")
    for t in schema.tables.values():
        if t.indexes > limit:
            from_create = t.indexes - len(t.index_units)
            at = limit - from_create  # the index that went one past the quota
            unit = t.index_units[at][0] if 0 <= at < len(t.index_units) else t.unit
            yield unit, Hit("too-many-indexes", object=f"{t.schema}.{t.name}",
                            detail=f"{t.indexes} indexes (limit {limit})", args={"limit": limit})
