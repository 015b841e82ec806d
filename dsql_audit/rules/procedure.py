"""procedure: CREATE PROCEDURE and CALL of user procedures (sys.wait_for_job is DSQL's own)."""

from dsql_audit.facts import names
from dsql_audit.model import Hit
from dsql_audit.facts.routines import routine_rel

# which statements this check can fire on (the rest never reach it)
NODES = {"CreateFunctionStmt", "CallStmt"}



def check(facts):
    if facts.node == "CreateFunctionStmt" and facts.stmt.get("is_procedure"):
        yield Hit("procedure", "create", rel=routine_rel(facts.stmt))
    elif facts.node == "CallStmt":
        fn = [n.lower() for n in names((facts.stmt.get("funccall") or {}).get("funcname"))]
        if fn[-2:] != ["sys", "wait_for_job"]:
            yield Hit("procedure", "call", detail=".".join(fn))
