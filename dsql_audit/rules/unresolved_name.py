"""unresolved-name: a captured statement that PostgreSQL cannot resolve against the schema as DSQL holds it."""

from __future__ import annotations

# PostgreSQL's answers when a name is missing: function/operator, type/object, table, column, ambiguous
# function, and a function whose argument types no longer match (a refused type fell back to text …)
MISSING = {"42883": "function or operator", "42704": "type or object", "42P01": "table", "42703": "column",
           "42725": "function"}


def judge(sqlstate: str | None, message: str) -> str | None:
    """The finding's message for PostgreSQL's error when preparing the statement, or None when the error
    says nothing about DSQL (a parameter whose type cannot be inferred, a truncated query text …)."""
    what = MISSING.get(sqlstate or "")
    if what is None:
        return None
    return f"{message} (missing {what} when the statement is prepared against the schema as DSQL holds it)"
