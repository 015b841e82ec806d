"""multiple-ddl: a second DDL statement in one transaction (reported once per transaction)."""

from dsql_audit.model import Hit


def check_transaction(statements, implicit):
    ddl = [unit for unit, klass in statements if klass == "ddl"]
    if len(ddl) > 1:
        first = ddl[0]
        yield ddl[1], Hit("multiple-ddl", "implicit" if implicit else "explicit",
                          detail=f"{len(ddl)} DDL statements in one transaction (first at line {first.line})")
