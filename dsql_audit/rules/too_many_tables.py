"""too-many-tables: more tables than DSQL's quota (1,000 per database)."""

from dsql_audit.model import Hit


def finish(schema, profile):
    limit = profile.limit("tables")
    tables = [t for t in schema.tables.values() if not t.partition]
    if len(tables) > limit:
        t = tables[limit]
        yield t.unit, Hit("too-many-tables", object=f"{t.schema}.{t.name}",
                          detail=f"{len(tables)} tables (limit {limit})", args={"limit": limit})
