"""ddl-dml-mix: DDL and DML in one transaction (reported at the first statement that mixes)."""

from dsql_audit.model import Hit


def check_transaction(statements, implicit):
    seen = None
    for unit, klass in statements:
        if klass not in ("ddl", "dml"):
            continue
        if seen is None:
            seen = klass
        elif klass != seen:
            yield unit, Hit("ddl-dml-mix", "implicit" if implicit else "explicit",
                            detail=f"{klass.upper()} after {seen.upper()} in one transaction")
            return
