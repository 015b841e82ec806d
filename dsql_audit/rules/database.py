"""database: CREATE/DROP/ALTER DATABASE and psql \\connect to another database."""

import re

from dsql_audit.model import Hit

_CONNECT = re.compile(r"\\(c|connect)(\s+|$)")


def check(facts):
    node = facts.node
    if node in ("CreatedbStmt", "DropdbStmt", "AlterDatabaseStmt", "AlterDatabaseSetStmt",
                "AlterDatabaseRefreshCollStmt"):
        yield Hit("database", "create" if node == "CreatedbStmt" else "other",
                  object=facts.stmt.get("dbname"), detail=facts.stmt.get("dbname"))
    elif facts.klass == "meta" and _CONNECT.match(facts.unit.text):
        target = facts.unit.text.split(None, 1)[1].split()[0] if len(facts.unit.text.split()) > 1 else ""
        if target not in ("", "-", "postgres"):
            yield Hit("database", "connect", detail=target.strip("'\""))


def wants(facts) -> bool:
    return facts.klass == "meta" or (facts.node or "").endswith(("dbStmt", "DatabaseStmt", "DatabaseSetStmt",
                                                                "DatabaseRefreshCollStmt"))
