"""The PostgreSQL connection and transaction under a DSQL session: opening it with the user's BEGIN, sending
the engine's statements and the user's, rolling back and reconnecting, and PostgreSQL's answer as a Result."""

from __future__ import annotations

from dsql_audit.engine import pgcall
from dsql_audit.engine.results import Result


class PgTransaction:
    """A part of Session (engine/session.py)."""

    def _rollback_pg(self) -> None:
        if self.wounded:
            self.wounded = False
            self._reconnect()
            self.pg_open = False
        if self.pg_open:
            try:
                self._pg("ROLLBACK")
            except Exception:  # a wounded transaction's backend was terminated
                self._reconnect()
            finally:
                self.pg_open = False
        self.savepoint = self.probe = False
        self.schema_doomed = False

    def _reconnect(self) -> None:
        self.engine.sessions.pop(self.pid, None)
        self._slot.wound_pid = self._slot.wound_kind = 0  # a wound of the backend we leave
        try:
            self.conn.close()
        finally:
            self._connect()

    def _open_pg(self) -> None:
        """Start the PostgreSQL transaction under ours (with the user's BEGIN options) if not yet open."""
        if not self.pg_open:
            self._pg(self.begin)
            self.pg_open = True

    def _pg(self, sql: str) -> pgcall.PgResult:
        """An engine statement (BEGIN, SAVEPOINT, COMMIT …)."""
        return pgcall.run(self.conn, sql)

    def _user(self, text: str, bind=None, stream: bool = False) -> pgcall.PgResult:
        """The user's statement, with its parameters (``stream``: a read may come back as a RowStream). While
        it runs, the client's socket is watched: a client that hangs up has the statement cancelled."""
        watch = self.watch
        return pgcall.run(self.conn, text, bind, watch=watch, cancel=self._cancel_pg if watch is not None else None,
                          stream=stream)

    def _send(self, prefix: list, text: str, bind=None, stream: bool = False) -> pgcall.PgResult:
        """Run ``text`` after the ``prefix`` statements (one round trip without parameters; libpq answers
        with the last result)."""
        if not self.pg_open:
            prefix = [self.begin, *prefix]
            self.pg_open = True
        if not prefix:
            return self._user(text, bind, stream)
        if bind is not None:  # the statement goes by the extended protocol
            if not stream:  # its prefix in the same round trip
                watch = self.watch
                return pgcall.run_after(self.conn, prefix, text, bind, watch=watch,
                                        cancel=self._cancel_pg if watch is not None else None)
            self._pg("; ".join(prefix))  # (a read to stream: its prefix first)
            return self._user(text, bind, stream)
        try:
            return self._user("; ".join(prefix) + ";\n" + text, None, stream)
        except Exception:
            # a syntax error fails the whole string before any of it runs (no BEGIN, no SAVEPOINT)
            if self.conn.info.transaction_status == 0:  # IDLE
                self.pg_open = False
            raise

    def _result(self, res: pgcall.PgResult, split_last: bool = False, keep: bool = True):
        """A Result from PostgreSQL's; ``split_last``: the last column is the engine's size column (returned
        apart as ints; ``keep`` False drops the columns the user did not ask for)."""
        fields = res.fields()
        tag = res.statusmessage
        if not fields:
            return (Result(tag), []) if split_last else Result(tag)
        raw = res.raw_rows()
        sizes = []
        if split_last:
            binary = fields[-1].format == 1
            sizes = [int.from_bytes(r[-1], "big", signed=True) if binary else int(r[-1])
                     for r in raw if r[-1] is not None]
            if not keep:
                return Result(tag), sizes
            fields = fields[:-1]
            raw = [r[:-1] for r in raw]
        columns = [f.name for f in fields]
        if self._raw:
            result = Result(tag, columns, [], fields=fields, raw=raw)
        else:
            rows = res.rows(self.conn)
            result = Result(tag, columns, [r[:-1] for r in rows] if split_last else rows)
        return (result, sizes) if split_last else result
