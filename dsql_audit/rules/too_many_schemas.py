"""too-many-schemas: more user schemas than DSQL's quota (10; public and sys not counted)."""

from dsql_audit.model import Hit


def finish(schema, profile):
    limit = profile.limit("schemas")
    user = [(name, unit) for name, unit in schema.schemas.items() if name not in ("public", "sys")]
    if len(user) > limit:
        name, unit = user[limit]
        yield unit, Hit("too-many-schemas", object=name,
                        detail=f"{len(user)} schemas besides public (limit {limit})", args={"limit": limit})
