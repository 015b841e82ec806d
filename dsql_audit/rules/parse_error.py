"""parse-error: a statement PostgreSQL's parser (and so DSQL's) cannot read."""

from dsql_audit.model import Hit


def wants(facts) -> bool:
    return facts.parse_error is not None


def check(facts):
    message, offset = facts.parse_error
    yield Hit("parse-error", "default", offset=offset, detail=message)
