"""Statements sent to the embedded PostgreSQL at the libpq level, so results can be handed on exactly as
PostgreSQL produced them: the wire server forwards the raw text/binary values and column descriptions, the
Python API decodes them with psycopg's own loaders.

User statements are sent asynchronously and waited for with ``poll`` (the GIL is released while PostgreSQL
works), which lets the wait watch the client's socket too: a client that hangs up has its statement
cancelled at once (``ClientGone``). Reads can come back as a ``RowStream`` — rows in chunks as PostgreSQL
sends them (libpq's chunked rows mode) — so a result of any size passes through in bounded memory."""

from __future__ import annotations

import select
from typing import NamedTuple

CHUNK_ROWS = 256  # rows per libpq chunk when streaming (memory: this many rows of the result at a time)
_RDHUP = getattr(select, "POLLRDHUP", 0)  # Linux: the peer closed its side, even with unread data pending
_GONE = _RDHUP | select.POLLHUP | select.POLLERR


class ClientGone(BaseException):
    """The client hung up while its statement ran (the statement was cancelled), or while its rows were being
    sent. A BaseException, like KeyboardInterrupt, so the engine's translation of errors into DSQL answers
    (``except Exception``) lets it through to the wire front, which ends the connection."""


class Field(NamedTuple):
    """One result column as RowDescription describes it (a tuple: built once per column of every result)."""

    name: str
    table_oid: int
    column: int
    type_oid: int
    typlen: int
    typmod: int
    format: int


def _fields(r) -> list[Field]:
    return [Field(r.fname(i).decode(), r.ftable(i), r.ftablecol(i), r.ftype(i), r.fsize(i), r.fmod(i),
                  r.fformat(i)) for i in range(r.nfields)]


def _raw(r) -> list[list]:
    nf = r.nfields
    get = r.get_value
    if nf == 1:
        return [[get(i, 0)] for i in range(r.ntuples)]
    columns = range(nf)
    return [[get(i, j) for j in columns] for i in range(r.ntuples)]


# libpq's result statuses as plain ints (psycopg's ExecStatus values), set on first use (psycopg is imported
# lazily): compared once or more per result, on every statement's path
FATAL = CHUNK = OK = COPY = SYNC = None


def _statuses() -> None:
    global FATAL, CHUNK, OK, COPY, SYNC
    from psycopg import pq

    s = pq.ExecStatus
    FATAL, CHUNK, OK = int(s.FATAL_ERROR), int(s.TUPLES_CHUNK), int(s.TUPLES_OK)
    COPY = (int(s.COPY_IN), int(s.COPY_OUT), int(s.COPY_BOTH))
    SYNC = int(s.PIPELINE_SYNC)


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
        return _fields(self.res)

    def raw_rows(self) -> list[list]:
        return _raw(self.res)

    def rows(self, conn) -> list[tuple]:
        from psycopg.adapt import Transformer

        tx = Transformer(conn)
        tx.set_pgresult(self.res)
        return tx.load_rows(0, self.res.ntuples, tuple)


class WholeResult:
    """A streamed read whose rows all arrived in its first chunk: handed on like a PgResult (raw rows only)."""

    __slots__ = ("_fields", "_rows", "statusmessage")

    def __init__(self, fields: list, rows: list, tag: str):
        self._fields, self._rows, self.statusmessage = fields, rows, tag

    @property
    def rowcount(self) -> int:
        return len(self._rows)

    @property
    def ntuples(self) -> int:
        return len(self._rows)

    def fields(self) -> list[Field]:
        return self._fields

    def raw_rows(self) -> list[list]:
        return self._rows


def _wait(conn, watch, cancel, write: bool = False) -> None:
    """Until libpq can hand over the next result without blocking (``write``: until the query is sent). The GIL
    is released while waiting. ``watch`` (a client socket's fd): if the client hangs up meanwhile, ``cancel()``
    the statement and raise ClientGone. What libpq has read already is looked at first (``is_busy`` parses its
    buffer): a socket read is made only when PostgreSQL's answer is not complete there — after ``poll`` says
    there is something to read (no read that can only find nothing)."""
    pgconn = conn.pgconn
    if not write and not pgconn.is_busy():
        return
    poller = select.poll()
    fd = pgconn.socket
    poller.register(fd, select.POLLIN | (select.POLLOUT if write else 0))
    if watch is not None:
        poller.register(watch, _RDHUP or select.POLLIN)
    while True:
        for f, ev in poller.poll():
            if f == watch and f != fd:
                if ev & _GONE or (not _RDHUP and _eof(watch)):
                    _cancel(conn, cancel)
                    raise ClientGone()
                poller.unregister(watch)  # data (pipelined messages) and no way to see a hangup past it
        if write:
            pgconn.consume_input()
            if pgconn.flush() == 0:
                return
        else:
            pgconn.consume_input()
            if not pgconn.is_busy():
                return


def _eof(fd: int) -> bool:
    import socket

    s = socket.socket(fileno=__import__("os").dup(fd))
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.close()


def _cancel(conn, cancel) -> None:
    try:
        if cancel is not None:
            cancel()
        else:
            conn.pgconn.get_cancel().cancel()
    except Exception:  # noqa: BLE001 - PostgreSQL is gone: nothing runs
        pass


def _send(conn, text: str, bind, watch, cancel, stream: bool) -> None:
    pgconn = conn.pgconn
    if bind is None:
        pgconn.send_query(text.encode())
    else:
        params, types, formats, result_format = bind
        pgconn.send_query_params(text.encode(), list(params or ()), list(types) if types else None,
                                 list(formats) if formats else None, result_format)
    if stream:  # libpq wants this before anything else happens on the connection
        pgconn.set_chunked_rows_mode(CHUNK_ROWS)
    if pgconn.flush():  # nonblocking connection: the rest of a long statement goes out as PostgreSQL reads
        _wait(conn, watch, cancel, write=True)


def _raise(res):
    import psycopg

    raise psycopg.errors.error_from_result(res, encoding="utf-8")


def _results(conn, watch, cancel):
    """The results of the statement libpq is reading, as they come, up to its end (libpq's None)."""
    pgconn = conn.pgconn
    while True:
        _wait(conn, watch, cancel)
        res = pgconn.get_result()
        if res is None:
            return
        yield res


def run(conn, text: str, bind=None, watch: int | None = None, cancel=None, stream: bool = False):
    """Run ``text`` (several statements allowed without ``bind``: the last one's result comes back, or the
    first error, as PQexec answers). ``bind`` = (params, types, formats, result_format) for one statement with
    $n parameters. ``watch``: the client's socket (see ``_wait``); ``cancel``: how to cancel the statement
    (default libpq's cancel request). ``stream``: a read whose rows do not all come in the first chunk
    comes back as a RowStream still running on ``conn``, which must be read to its end or closed before
    anything else runs on ``conn``."""
    if FATAL is None:
        _statuses()
    pgconn = conn.pgconn
    if watch is None and not stream:
        with conn.lock:
            if bind is None:
                res = pgconn.exec_(text.encode())
            else:
                params, types, formats, result_format = bind
                res = pgconn.exec_params(text.encode(), list(params or ()), list(types) if types else None,
                                         list(formats) if formats else None, result_format)
        if res.status == FATAL:
            _raise(res)
        return PgResult(res)
    with conn.lock:
        _send(conn, text, bind, watch, cancel, stream)
        last = error = None
        for res in _results(conn, watch, cancel):
            status = res.status
            if status == FATAL:
                error = error or res
            elif error is not None:
                continue
            elif status == CHUNK:
                # rows begin: when they all came in this chunk, the result is handed on whole
                rows, tag, more = _raw(res), (res.command_status or b"").decode(), None
                if pgconn.is_busy():  # the rest is not in libpq's buffer: read what has arrived since
                    pgconn.consume_input()
                if not pgconn.is_busy():
                    more = pgconn.get_result()
                    if more is not None and more.status == OK:
                        last = WholeResult(_fields(res), rows, tag or (more.command_status or b"").decode())
                        continue
                return RowStream(conn, _fields(res), rows, tag, more, watch, cancel)
            elif status in COPY:
                last = res
                break
            else:
                last = res
    if error is not None:
        _raise(error)
    return last if isinstance(last, WholeResult) else PgResult(last)


def run_after(conn, prefix: list, text: str, bind, watch: int | None = None, cancel=None):
    """The engine's ``prefix`` statements (no parameters: BEGIN, SET LOCAL, SAVEPOINT) then ``text`` with its
    ``bind``, in one round trip (libpq's pipeline mode) — as ``run(conn, "; ".join(prefix))`` followed by
    ``run(conn, text, bind, …)`` would run them, one wait instead of two. The first error is raised, as
    ``run`` raises it (PostgreSQL skips what follows it in the pipeline, as a multi-statement string stops
    at its first error); the prefix's results are dropped. Not for a read to stream (chunked rows)."""
    if FATAL is None:
        _statuses()
    pgconn = conn.pgconn
    params, types, formats, result_format = bind
    with conn.lock:
        pgconn.enter_pipeline_mode()
        done = False
        try:
            for sql in prefix:
                pgconn.send_query_params(sql.encode(), None)
            pgconn.send_query_params(text.encode(), list(params or ()), list(types) if types else None,
                                     list(formats) if formats else None, result_format)
            pgconn.pipeline_sync()
            if pgconn.flush():
                _wait(conn, watch, cancel, write=True)
            last = error = None
            for _ in range(len(prefix) + 1):  # each statement's results, then None
                for res in _results(conn, watch, cancel):
                    if res.status == FATAL:
                        error = error or res
                    elif error is None:
                        last = res  # (the prefix's results are overwritten by the statement's)
            while True:  # the pipeline's Sync
                _wait(conn, watch, cancel)
                res = pgconn.get_result()
                if res is not None and res.status == SYNC:
                    break
            done = True
        finally:
            if done:
                pgconn.exit_pipeline_mode()
            else:  # the client went away or the connection failed: the session is closed or reconnected
                try:
                    pgconn.exit_pipeline_mode()
                except Exception:  # noqa: BLE001 - results still pending: nothing more is sent on it
                    pass
    if error is not None:
        _raise(error)
    return PgResult(last)


class RowStream:
    """The rows of a read still running on its connection, chunk by chunk as PostgreSQL sends them. Iterate
    ``rows(limit)``; ``done`` once the last row was taken, then ``tag`` is the command tag. ``on_error``
    (set by the session) turns PostgreSQL's error mid-result into the exception to raise. ``close()`` cancels
    what is left; ``keep()`` reads it into memory, freeing the connection."""

    def __init__(self, conn, fields, rows, tag, pending, watch, cancel):
        self.conn = conn
        self.fields = fields
        self.tag = tag
        self._rows = rows
        self._pos = 0
        self._pending = pending  # a result already taken from libpq, not yet looked at
        self._running = True  # libpq still has results of the statement to hand over
        self.watch, self.cancel = watch, cancel
        self.on_error = None

    @property
    def done(self) -> bool:
        if self._pos < len(self._rows):
            return False
        if self._running:
            self._next()
        return self._pos >= len(self._rows) and not self._running

    def _next(self) -> None:
        """The next chunk into the buffer, or the end of the statement."""
        pgconn = self.conn.pgconn
        error = None
        try:
            while self._running:
                res, self._pending = self._pending, None
                if res is None:
                    with self.conn.lock:
                        _wait(self.conn, self.watch, self.cancel)
                        res = pgconn.get_result()
                if res is None:
                    self._running = False
                    break
                status = res.status
                if status == FATAL:
                    error = error or res
                elif error is None and (status == CHUNK or status == OK):
                    self._rows, self._pos = _raw(res), 0
                    self.tag = (res.command_status or b"").decode() or self.tag
                    if self._rows:
                        return
            if error is not None:
                _raise(error)
        except Exception as exc:  # noqa: BLE001 - PostgreSQL's error mid-result, or the connection failed
            self._running = False
            self._rows, self._pos = [], 0
            raise (self.on_error(exc) if self.on_error else exc) from None
        self._rows, self._pos = [], 0

    def rows(self, limit: int = 0):
        """Up to ``limit`` rows (0: all that are left), as lists of raw values."""
        left = limit or -1
        while left:
            if self._pos >= len(self._rows):
                if not self._running:
                    return
                self._next()
                continue
            end = len(self._rows) if left < 0 else min(len(self._rows), self._pos + left)
            chunk = self._rows[self._pos:end]
            self._pos = end
            left -= len(chunk)
            yield from chunk

    def keep(self) -> None:
        """Read the rest into memory (the connection is needed for something else)."""
        rest = list(self.rows())
        self._rows, self._pos = rest, 0

    def close(self, cancel: bool = True) -> None:
        """Drop what is left: ``cancel`` the statement (the caller reads a statement inside an open
        transaction to its end instead, as a cancel would abort the transaction), discarding its results."""
        self._rows, self._pos, self._pending = [], 0, None
        if not self._running:
            return
        self._running = False
        if cancel:
            _cancel(self.conn, self.cancel)
        pgconn = self.conn.pgconn
        try:
            with self.conn.lock:
                while True:
                    _wait(self.conn, None, None)
                    if pgconn.get_result() is None:
                        break
        except Exception:  # noqa: BLE001 - the connection failed: nothing is left to read
            pass
