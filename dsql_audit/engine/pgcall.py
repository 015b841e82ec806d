"""Statements sent to the embedded PostgreSQL at the libpq level, so results can be handed on exactly as
PostgreSQL produced them: the wire server forwards the raw text/binary values and column descriptions, the
Python API decodes them with psycopg's own loaders. libpq releases the GIL while it waits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """One result column as RowDescription describes it."""

    name: str
    table_oid: int
    column: int
    type_oid: int
    typlen: int
    typmod: int
    format: int


class PgResult:
    __slots__ = ("res",)

    def __init__(self, res):
        self.res = res

    @property
    def statusmessage(self) -> str:
        return (self.res.command_status or b"").decode()

    @property
    def rowcount(self) -> int:
        n = self.res.command_tuples
        return n if n is not None else -1

    @property
    def ntuples(self) -> int:
        return self.res.ntuples

    def fields(self) -> list[Field]:
        r = self.res
        return [Field(r.fname(i).decode(), r.ftable(i), r.ftablecol(i), r.ftype(i), r.fsize(i), r.fmod(i),
                      r.fformat(i)) for i in range(r.nfields)]

    def raw_rows(self) -> list[list]:
        r = self.res
        nf = r.nfields
        return [[r.get_value(i, j) for j in range(nf)] for i in range(r.ntuples)]

    def rows(self, conn) -> list[tuple]:
        from psycopg.adapt import Transformer

        tx = Transformer(conn)
        tx.set_pgresult(self.res)
        return tx.load_rows(0, self.res.ntuples, tuple)


def run(conn, text: str, bind=None) -> PgResult:
    """Run ``text`` (several statements allowed without ``bind``: the last one's result comes back).
    ``bind`` = (params, types, formats, result_format) for one statement with $n parameters."""
    import psycopg
    from psycopg import pq

    pgconn = conn.pgconn
    with conn.lock:
        if bind is None:
            res = pgconn.exec_(text.encode())
        else:
            params, types, formats, result_format = bind
            res = pgconn.exec_params(text.encode(), list(params or ()), list(types) if types else None,
                                     list(formats) if formats else None, result_format)
    if res.status == pq.ExecStatus.FATAL_ERROR:
        raise psycopg.errors.error_from_result(res, encoding="utf-8")
    return PgResult(res)
