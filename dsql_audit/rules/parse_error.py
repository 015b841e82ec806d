"""parse-error: a statement PostgreSQL's parser (and so DSQL's) cannot read."""

from dsql_audit.model import Hit


def check(facts):
    if facts.parse_error is not None:
        message, offset = facts.parse_error
        if "qualified_index_name" in facts.dsql:
            return  # reported by sync-index with DSQL's exact error
        yield Hit("parse-error", "default", offset=offset, detail=message)
    elif facts.unit.meta is None and facts.klass == "empty":
        return


def wants(facts) -> bool:
    return facts.parse_error is not None
