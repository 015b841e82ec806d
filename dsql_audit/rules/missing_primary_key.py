"""missing-primary-key: a table with no primary key (DSQL adds a hidden one you cannot use)."""

from dsql_audit.model import Hit


def finish(schema, profile):
    for t in schema.tables.values():
        if not t.pk and not t.partition and t.unit is not None:
            yield t.unit, Hit("missing-primary-key", object=f"{t.schema}.{t.name}", detail=f"{t.schema}.{t.name}")
