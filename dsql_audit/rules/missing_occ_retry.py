"""missing-occ-retry: functions that commit with no 40001 handling up their call chain (sources/python.py
finds them; this rule reports them)."""

from dsql_audit.model import Hit

NODES = {"MissingOccRetry"}


def check(facts):
    c = facts.stmt or {}
    yield Hit("missing-occ-retry", object=c.get("function"),
              args={"function": c.get("function") or "a function", "commits": c.get("commits") or "commit"})
