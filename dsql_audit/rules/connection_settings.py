"""connection-settings: pool lifetimes, static passwords and sslmode that DSQL breaks (from application
source: sources/python.py reports the construct, this rule judges it)."""

from dsql_audit.model import Hit

NODES = {"ConnectionSettings"}


def check(facts):
    c = facts.stmt or {}
    setting = c.get("setting")
    if setting in ("pool_recycle", "CONN_MAX_AGE", "password", "sslmode", "max_lifetime", "asyncpg_pool"):
        value = c.get("value")
        yield Hit("connection-settings", setting,
                  args={"value": "not set" if value is None and setting == "pool_recycle" else
                        ("None (forever)" if value is None else str(value))})
