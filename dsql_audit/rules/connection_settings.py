"""connection-settings: pool lifetimes, static passwords and sslmode that DSQL breaks (from application
source: sources/python.py reports the construct, this rule judges it)."""

from dsql_audit.model import Hit

NODES = {"ConnectionSettings"}


def check(facts):
    c = facts.stmt or {}
    setting = c.get("setting")
    if setting in ("pool_recycle", "CONN_MAX_AGE", "password", "sslmode", "max_lifetime", "asyncpg_pool",
                   "ATOMIC_REQUESTS"):
        value = c.get("value")
        variant = "CONN_MAX_AGE_checked" if setting == "CONN_MAX_AGE" and c.get("health_checks") else setting
        yield Hit("connection-settings", variant,
                  args={"value": "not set" if value is None and setting == "pool_recycle" else
                        ("None (forever)" if value is None else str(value))})
