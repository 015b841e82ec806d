"""ddl-dml-mix: every statement that mixes DDL and DML in one transaction — a DML after any DDL, a DDL after
any DML (DSQL refuses each; the engine reports each in audit mode). Statements sent from one place are one
finding there."""

from dsql_audit.model import Hit


def check_transaction(statements, implicit):
    seen_ddl = seen_dml = False
    first = next((u for u, _ in statements if not u.context), None)
    where = f" (transaction from line {first.line})" if first is not None and first.line else ""
    if statements and statements[0][0].context:  # the transaction began before this file's statements
        where = f" (after {statements[0][0].origin})"
    reported = set()
    for unit, klass in statements:
        if klass == "ddl":
            if seen_dml and not unit.context and _site(unit) not in reported:
                reported.add(_site(unit))
                yield unit, Hit("ddl-dml-mix", "implicit" if implicit else "explicit",
                                detail=f"DDL after DML in one transaction{where}")
            seen_ddl = True
        elif klass == "dml":
            if seen_ddl and not unit.context and _site(unit) not in reported:
                reported.add(_site(unit))
                yield unit, Hit("ddl-dml-mix", "implicit" if implicit else "explicit",
                                detail=f"DML after DDL in one transaction{where}")
            seen_dml = True


def _site(unit):
    return unit.path, unit.line, unit.column
