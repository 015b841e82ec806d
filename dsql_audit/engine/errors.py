"""How a statement fails the way DSQL fails it: the exceptions the engine raises, and DSQL's own answers
(SQLSTATE, message) for its transaction rules and bounds."""

from __future__ import annotations

ABORTED = ("25P02", "current transaction is aborted, commands ignored until end of transaction block")
ROW_LIMIT = ("54000", "transaction row limit exceeded")  # DSQL-REFERENCE §4, at the statement
# the text a real cluster returns at COMMIT of the loser (DSQL-REFERENCE §5 and §9; the docs' wording differs)
OCC = ("40001", "change conflicts with another transaction (OC000)")
AGE = ("54000", "transaction age limit of {limit}s exceeded")  # at COMMIT (DSQL-REFERENCE §4)
SIZE = ("54000", "transaction size limit 10mb exceeded")  # at COMMIT (DSQL-REFERENCE §4)
SCHEMA = ("40001", "schema has been updated by another transaction (OC001)")  # DSQL-REFERENCE §5
CLOSED = ("08006", "connection closed: DSQL ends connections after {limit} seconds")  # §8, no code on DSQL


class DsqlError(Exception):
    """A statement failed the way DSQL fails it."""

    def __init__(self, sqlstate: str, message: str, finding: dict | None = None, detail: str | None = None,
                 hint: str | None = None, position: int | None = None):
        super().__init__(f"{sqlstate}: {message}")
        self.sqlstate = sqlstate
        self.message = message
        self.finding = finding
        self.detail = detail
        self.hint = hint
        self.position = position  # 1-based character position in the statement, as PostgreSQL reports it
        self.results: list = []  # results of the statements before it in a multi-statement query


class UnknownRole(Exception):
    """No role of that name a client may log in as (PostgreSQL's 28000)."""

    def __init__(self, user: str, message: str | None = None):
        self.message = message or f'role "{user}" does not exist'
        super().__init__(self.message)
        self.user = user


class SessionClosed(DsqlError):
    """DSQL closed the connection (its 60-minute lifetime); DSQL sends no error code, the socket just ends."""
