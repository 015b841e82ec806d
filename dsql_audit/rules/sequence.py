"""sequence: SERIAL types, and sequences / identity columns without a legal CACHE or not bigint."""

from dsql_audit.facts import rel_of, column_defs, option_value
from dsql_audit.model import Hit
from dsql_audit.rules._types import base_name, display

# which statements this check can fire on (the rest never reach it)
NODES = {"CreateSeqStmt", "AlterSeqStmt"}
PROBES = ('"serial"', '"serial4"', '"serial8"', '"bigserial"', '"smallserial"', '"serial2"', '"CONSTR_IDENTITY"')


SERIALS = {"serial": "serial", "serial4": "serial", "bigserial": "bigserial", "serial8": "bigserial",
           "smallserial": "smallserial", "serial2": "smallserial"}


def implied_sequence(table: str, column: str) -> str:
    """The sequence PostgreSQL creates for a serial column: ``table_column_seq``, the longer of the two
    names cut until it fits 63 bytes (makeObjectName); a name already taken gets a number, not modelled."""
    t, c = table.encode(), column.encode()
    while len(t) + len(c) + 5 > 63:
        if len(t) > len(c):
            t = t[:-1]
        else:
            c = c[:-1]
    return f"{t.decode(errors='ignore')}_{c.decode(errors='ignore')}_seq"


def legal_cache(value) -> bool:
    return isinstance(value, int) and (value == 1 or value >= 65536)


def check(facts):
    node, s = facts.node, facts.stmt
    if node in ("CreateSeqStmt", "AlterSeqStmt"):
        rv = s.get("sequence") or {}
        opts = s.get("options")
        cache = option_value(opts, "cache")
        if node == "CreateSeqStmt":
            yield Hit("sequence", "create_sequence", rel=rel_of(rv))
            if not legal_cache(cache):
                yield Hit("sequence", "sequence_cache", rel=rel_of(rv), detail="not set" if cache is None else str(cache))
        elif cache is not None and not legal_cache(cache):
            yield Hit("sequence", "sequence_cache", rel=rel_of(rv), detail="not set" if cache is None else str(cache))
        as_tn = next((o["DefElem"]["arg"]["TypeName"] for o in opts or ()
                      if o.get("DefElem", {}).get("defname") == "as"), None)
        if as_tn is not None and base_name(as_tn) not in ("int8", "bigint"):
            yield Hit("sequence", "sequence_type", rel=rel_of(rv), detail=display(as_tn))
        return
    for cd, rv, where in column_defs(facts):
        tn = cd.get("typeName") or {}
        base = base_name(tn)
        obj = cd.get("colname")
        if base in SERIALS and not tn.get("arrayBounds"):
            # the object is the sequence it creates: a live catalog (or a pg_dump of it) shows only that
            schema, table = rel_of(rv)
            yield Hit("sequence", "serial", offset=facts.char_offset(tn.get("location")),
                      rel=(schema, implied_sequence(table, obj or "")), detail=SERIALS[base],
                      args={"column": f"{table}.{obj}"})
            continue
        for c in cd.get("constraints", ()):
            con = c.get("Constraint") or {}
            if con.get("contype") != "CONSTR_IDENTITY":
                continue
            at = facts.char_offset(con.get("location"))
            yield Hit("sequence", "identity", offset=at, rel=rel_of(rv), object=obj)
            if not legal_cache(option_value(con.get("options"), "cache")):
                yield Hit("sequence", "identity_cache", offset=at, rel=rel_of(rv), object=obj)
            if base not in ("int8",):
                yield Hit("sequence", "identity_type", offset=facts.char_offset(tn.get("location")),
                          rel=rel_of(rv), object=obj, detail=display(tn))
