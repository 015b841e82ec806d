"""What a statement answers: its Result, the notices PostgreSQL sent while it ran, and the engine's own Ran
(a Result with the rows the statement wrote, for the row bound)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Notice:
    """A NOTICE or WARNING PostgreSQL sent while running a statement."""

    severity: str
    sqlstate: str
    message: str
    detail: str | None = None
    hint: str | None = None


@dataclass
class Result:
    command_tag: str
    columns: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    results: list = field(default_factory=list)  # every statement's result, for a multi-statement query
    fields: list = field(default_factory=list)  # pgcall.Field per column (RowDescription), with raw=True
    raw: list | None = None  # rows as PostgreSQL sent them (bytes per value, None for NULL), with raw=True
    # with execute(emit=…): a read's rows still coming from PostgreSQL (pgcall.RowStream) instead of ``raw``
    stream: object = None


@dataclass
class Ran:
    result: Result
    rowcount: int
