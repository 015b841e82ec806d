"""index-method: index access methods other than btree, and a USING clause at all (DSQL's CREATE INDEX ASYNC
grammar has none: DSQL-FACTS §4)."""

from dsql_audit.facts import rel_of
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"IndexStmt"}


def _using_clause(text: str) -> tuple[int, int] | None:
    """Where ``USING <method>`` is written before the column list, by pglast's scanner (so a comment or a
    quoted name saying USING is not one); None when the statement has no USING clause."""
    from pglast.parser import scan

    try:
        tokens = list(scan(text))
    except Exception:  # noqa: BLE001 - the statement parsed; a scanner failure only hides this hint
        return None
    for i, tok in enumerate(tokens):
        if tok.name == "ASCII_40":
            return None
        if tok.name == "USING" and i + 1 < len(tokens):
            return tok.start, tokens[i + 1].end + 1
    return None


def check(facts):
    if facts.node == "IndexStmt":
        method = (facts.stmt.get("accessMethod") or "btree").lower()
        if method != "btree":
            yield Hit("index-method", "default", rel=rel_of(facts.stmt.get("relation")), detail=method)
        else:
            span = _using_clause(facts.text)
            if span:
                yield Hit("index-method", "using_btree", offset=span[0], end_offset=span[1],
                          rel=rel_of(facts.stmt.get("relation")))
