"""savepoint: SAVEPOINT, ROLLBACK TO SAVEPOINT, RELEASE SAVEPOINT."""

from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"TransactionStmt"}


_KINDS = {"TRANS_STMT_SAVEPOINT": "savepoint", "TRANS_STMT_ROLLBACK_TO": "rollback_to",
          "TRANS_STMT_RELEASE": "release"}


def check(facts):
    if facts.node == "TransactionStmt" and facts.stmt.get("kind") in _KINDS:
        yield Hit("savepoint", _KINDS[facts.stmt["kind"]], detail=facts.stmt.get("savepoint_name"))
