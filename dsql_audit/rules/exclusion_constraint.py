"""exclusion-constraint: EXCLUDE constraints."""

from dsql_audit.facts import constraints, rel_of, relname
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
PROBES = ('"CONSTR_EXCLUSION"',)



def check(facts):
    for con, rv, where, _ in constraints(facts):
        if con.get("contype") == "CONSTR_EXCLUSION":
            table = relname(rv)
            name = con.get("conname") or f"{table.split('.')[-1]}_excl"
            yield Hit("exclusion-constraint", "add" if where == "add_constraint" else "create",
                      offset=facts.char_offset(con.get("location")), rel=rel_of(rv), object=name)
