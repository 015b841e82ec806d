"""parse-error: a statement PostgreSQL's parser (and so DSQL's) cannot read."""

from dsql_audit.model import Hit


def wants(facts) -> bool:
    return facts.parse_error is not None


# sources whose SQL is written by hand as .sql (a statement that does not parse fails the deploy)
_SQL_SOURCES = {"sql", "pg_dump", "migration", "stdin"}


def check(facts):
    message, offset = facts.parse_error
    # SQL in application code may be another database's (a MySQL branch) or built at run time: it is
    # reported, but as information, not as a DSQL error
    variant = "default" if facts.unit.source in _SQL_SOURCES else "in_code"
    yield Hit("parse-error", variant, offset=offset, detail=message)
