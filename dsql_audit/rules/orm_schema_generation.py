"""orm-schema-generation: an ORM configured to run its own DDL at start-up (Hibernate hbm2ddl)."""

from dsql_audit.model import Hit

NODES = {"SchemaAutoUpdate"}


def check(facts):
    c = facts.stmt or {}
    yield Hit("orm-schema-generation", args={"orm": c.get("orm") or "ORM", "setting": c.get("setting") or "setting",
                                             "value": str(c.get("value") or "")})
