"""index-method: index access methods other than btree."""

import re

from dsql_audit.facts import rel_of
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"IndexStmt"}



_USING = re.compile(r"\bUSING\s+btree\b", re.I)


def check(facts):
    if facts.node == "IndexStmt":
        method = (facts.stmt.get("accessMethod") or "btree").lower()
        if method != "btree":
            yield Hit("index-method", "default", rel=rel_of(facts.stmt.get("relation")), detail=method)
        else:
            head = facts.text[:facts.text.find("(")] if "(" in facts.text else facts.text
            m = _USING.search(head)
            if m:
                yield Hit("index-method", "using_btree", offset=m.start(), end_offset=m.end(),
                          rel=rel_of(facts.stmt.get("relation")))
