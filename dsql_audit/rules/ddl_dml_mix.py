"""ddl-dml-mix: every statement that mixes DDL and DML in one transaction — a DML after any DDL, a DDL after
any DML (DSQL refuses each; the engine reports each in audit mode). Statements sent from one place are one
finding there."""

from dsql_audit.model import Hit

_OTHER = {"ddl": "dml", "dml": "ddl"}


def check_transaction(statements, implicit):
    seen = set()
    first = next((u for u, _ in statements if not u.context), None)
    where = f" (transaction from line {first.line})" if first is not None and first.line else ""
    if statements and statements[0][0].context:  # the transaction began before this file's statements
        where = f" (after {statements[0][0].origin})"
    reported = set()
    for unit, klass in statements:
        if klass not in _OTHER:
            continue
        site = (unit.path, unit.line, unit.column)
        if _OTHER[klass] in seen and not unit.context and site not in reported:
            reported.add(site)
            yield unit, Hit("ddl-dml-mix", "implicit" if implicit else "explicit",
                            detail=f"{klass.upper()} after {_OTHER[klass].upper()} in one transaction{where}")
        seen.add(klass)
