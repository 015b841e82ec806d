"""multiple-ddl: every DDL statement after the first in one transaction (DSQL refuses each of them, as the
engine does in audit mode: the fix is to move each one into a transaction of its own)."""

from dsql_audit.model import Hit


def check_transaction(statements, implicit):
    ddl = [unit for unit, klass in statements if klass == "ddl"]
    first = ddl[0] if ddl else None
    for n, unit in enumerate(ddl[1:], start=2):
        where = f"after {first.origin}" if first.context else f"first at line {first.line}"
        yield unit, Hit("multiple-ddl", "implicit" if implicit else "explicit",
                        detail=f"DDL statement {n} of {len(ddl)} in one transaction ({where})")
