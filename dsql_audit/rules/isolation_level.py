"""isolation-level: isolation levels other than REPEATABLE READ, any SET TRANSACTION,
SET SESSION CHARACTERISTICS and SET default_transaction_isolation."""

from dsql_audit.facts import const_value, defelem_map
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"TransactionStmt", "VariableSetStmt"}


_BEGIN = {"TRANS_STMT_BEGIN", "TRANS_STMT_START"}


def check(facts):
    node, s = facts.node, facts.stmt
    if node == "TransactionStmt" and s.get("kind") in _BEGIN:
        iso = defelem_map(s.get("options")).get("transaction_isolation")
        if iso is not None:
            level = str(const_value(iso.get("arg")) or "").lower()
            if level != "repeatable read":
                yield Hit("isolation-level", "begin", offset=facts.char_offset(iso.get("location")),
                          detail=level.upper())
    elif node == "VariableSetStmt":
        name = (s.get("name") or "").lower()
        if name == "transaction":
            # DSQL answers a level it lacks as BEGIN's does (`Unsupported isolation level: SERIALIZABLE`); any
            # other SET TRANSACTION, REPEATABLE READ included, with `… "TRANSACTION" not supported`
            iso = defelem_map(s.get("args")).get("transaction_isolation")
            level = str(const_value(iso.get("arg")) or "").lower() if iso is not None else ""
            if level and level != "repeatable read":
                yield Hit("isolation-level", "begin", offset=facts.char_offset(iso.get("location")),
                          detail=level.upper())
            else:
                yield Hit("isolation-level", "set_transaction")
        elif name == "session characteristics":
            yield Hit("isolation-level", "session_characteristics")
        elif name == "default_transaction_isolation":
            yield Hit("isolation-level", "default_isolation")
