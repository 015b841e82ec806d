"""multiple-ddl: every DDL statement after the first in one transaction (DSQL refuses each of them, as the
engine does in audit mode: the fix is to move each one into a transaction of its own). Statements sent from
one place (a create_all() call, one migration operation) are one finding there."""

from dsql_audit.model import Hit


def check_transaction(statements, implicit):
    ddl = [unit for unit, klass in statements if klass == "ddl"]
    if len(ddl) < 2:
        return
    first = ddl[0]
    where = f"after {first.origin}" if first.context else f"first at line {first.line}"
    n = 1
    while n < len(ddl):
        unit, end = ddl[n], n
        while end + 1 < len(ddl) and _site(ddl[end + 1]) == _site(unit):
            end += 1
        which = f"DDL statement {n + 1}" if end == n else f"DDL statements {n + 1}–{end + 1}"
        yield unit, Hit("multiple-ddl", "implicit" if implicit else "explicit",
                        detail=f"{which} of {len(ddl)} in one transaction ({where})")
        n = end + 1


def _site(unit):
    return unit.path, unit.line, unit.column
