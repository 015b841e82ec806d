"""PostgreSQL's display names for types, as DSQL quotes them in messages."""

from dsql_audit.facts import names

DISPLAY = {
    "int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real",
    "float8": "double precision", "bool": "boolean", "varbit": "bit varying",
    "bpchar": "character", "varchar": "character varying", "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone", "timetz": "time with time zone",
    "time": "time without time zone", "decimal": "numeric", "serial4": "serial", "serial8": "bigserial",
    "serial2": "smallserial",
}


def base_name(tn: dict) -> str:
    parts = names(tn.get("names"))
    return parts[-1].lower() if parts else "?"


def display(tn: dict) -> str:
    base = base_name(tn)
    shown = DISPLAY.get(base, base)
    if tn.get("arrayBounds"):
        shown += "[]"
    return shown


def typmods(tn: dict) -> list:
    out = []
    for m in tn.get("typmods", ()):
        c = m.get("A_Const") or {}
        if "ival" in c:
            out.append(c["ival"].get("ival", 0))
    return out
