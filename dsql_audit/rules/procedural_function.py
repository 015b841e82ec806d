"""procedural-function: CREATE FUNCTION in any language but SQL."""

from dsql_audit.facts.routines import language, routine_rel
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"CreateFunctionStmt"}



def check(facts):
    if facts.node != "CreateFunctionStmt" or facts.stmt.get("is_procedure"):
        return
    lang = language(facts.stmt)
    if lang != "sql":
        yield Hit("procedural-function", "default", rel=routine_rel(facts.stmt), detail=lang)
