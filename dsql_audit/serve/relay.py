"""The raw relay: a plain read's protocol bytes go to the session's PostgreSQL backend as the client sent them,
and PostgreSQL's answer comes back to the client as PostgreSQL sent it.

Why: for a statement the DSQL layer has nothing to say about — one SELECT the gate passes with no refusal and
no question for the live catalog, no locking clause, outside any transaction, libpq idle — the general path
(Session.execute → libpq → every row re-framed as a DataRow) spends most of serve's CPU on work that changes
nothing: PostgreSQL's answer already is the answer. Here the client's Query message (or its pipelined unnamed
Parse / Bind / [Describe] / Execute / Sync, already buffered whole) is written to the backend socket, and the
backend's messages are walked header by header and forwarded whole, in large chunks, up to and including
ReadyForQuery. libpq is bypassed only while it is idle and has nothing buffered, and the answer ends where
libpq left the backend (ReadyForQuery 'I'), so libpq stays usable by the general path. Anything else, and
anything in doubt, takes the general path, unchanged.

The engine's bookkeeping is kept as the general path keeps it for such a statement: the statement count, the
transaction number, the call site, ``busy`` for a CancelRequest, a client hang-up cancelling the statement,
and DSQL's answer where PostgreSQL's temp_file_limit stands for DSQL's query memory.

A write outside any transaction goes a similar way: serve/relay_writes.py, with this module's parts.
"""

from __future__ import annotations

import os
import re
import select
import struct

from dsql_audit.engine import SessionClosed, pgcall
from dsql_audit.engine.session import _statements
from dsql_audit.run.tag import MARK
from dsql_audit.serve import protocol as P

ENABLED = True  # the switch: off, every statement takes the general path (tests compare the two)
WRITES = True  # the autocommit writes' switch (off: only reads are relayed)
RELAYED = [0]  # statements relayed in this process (each ClientConnection counts its own: ``relayed``)

_INT32 = struct.Struct("!i")
_unpack = _INT32.unpack_from
_pack = _INT32.pack
_READ = 1 << 18  # bytes read from PostgreSQL at once (forwarded in chunks of whole messages)
_E, _S, _Z, _I = ord("E"), ord("S"), ord("Z"), ord("I")
_BIND, _DESCRIBE, _EXECUTE, _SYNC = ord("B"), ord("D"), ord("E"), ord("S")
_EXECUTE_ALL = b"\0\0\0\0\0"  # Execute's body: the unnamed portal, no row limit
_TEMP_SPACE = b"C53400\0"  # an ErrorResponse's SQLSTATE field: PostgreSQL's temp_file_limit (see _error)
_POLLIN, _POLLOUT = select.POLLIN, select.POLLOUT
# the eligibility cache's key (see _key): the gate's cheap shape key (lookups.shape), over the bytes
_READ_HEAD = re.compile(rb"\s*(?:SELECT|WITH|VALUES|TABLE|\()", re.I)  # how a SelectStmt can begin
_WRITE_HEAD = re.compile(rb"\s*(?:INSERT|UPDATE|DELETE)\b", re.I)
_KEYED = re.compile(rb'\s*(?:SELECT|WITH|INSERT|UPDATE|DELETE)\b[^"?$\\]*\Z', re.I)  # (without what shape() keeps)
_DIGITS = re.compile(rb"\b\d+\b")
_CACHED = 16_384  # statements up to this long have their answer cached (as Engine.decide caches the gate's)


class _Lost(Exception):
    """The backend connection failed under the relay (the general path's ``_connection_lost`` answers)."""

    def __init__(self, exc: Exception):
        self.exc = exc


class _Backend:
    """The session's backend socket as the relay uses it, with a poller over it and the client's socket
    (rebuilt when the session reconnects), and the engine's eligibility cache."""

    __slots__ = ("conn", "fd", "poller", "watch", "lifetime", "parsed")

    def __init__(self, session):
        self.conn = conn = session.conn
        self.fd = conn.pgconn.socket
        self.watch = watch = session.watch
        self.poller = select.poll()
        self.poller.register(self.fd, _POLLIN)
        if watch is not None:
            self.poller.register(watch, pgcall._RDHUP or _POLLIN)
        self.lifetime = session.engine.profile.limit("connection_seconds")
        self.parsed: dict = {}  # Parse body → (name, query, parameter types): a client repeats its statements


def _backend(client, session) -> _Backend | None:
    """The relay's view of the session (None: not idle and clean, or libpq not idle with nothing buffered)."""
    if session.in_txn or session.implicit or session.pg_open or session.stream is not None or session.closed \
            or session.wounded:
        return None
    conn = session.conn
    back = client.__dict__.get("_relay")
    if back is None or back.conn is not conn or back.watch != session.watch:
        if getattr(conn.pgconn, "ssl_in_use", False):  # the bytes on the socket are not the protocol's
            return None
        back = client._relay = _Backend(session)
        if "relayed" not in client.__dict__:
            client.relayed = 0
    if session.engine.clock() - session.opened > back.lifetime:  # the general path closes the connection
        return None
    pgconn = conn.pgconn
    # idle, no result pending, not in pipeline mode; is_busy() parses what libpq has buffered (an async
    # notice or notification read with the last answer), then nothing may be waiting on the socket either
    if pgconn.transaction_status != 0 or pgconn.status != 0 or pgconn.pipeline_status or pgconn.is_busy():
        return None
    if back.poller.poll(0):  # something from PostgreSQL (or the client hanging up): the general path's
        return None
    return back


def _key(statement: bytes):
    """The eligibility cache's key of a statement's bytes: the statement itself, or for a SELECT / WITH /
    INSERT / UPDATE / DELETE in ASCII without the characters the gate's cheap shape key leaves out, that key
    (its standalone digit runs as ?, as Engine.decide's cache keys it: eligibility is the gate's answer, the
    statement's cut and a write's target, none of which such digits change). None: not cached (too long)."""
    if len(statement) > _CACHED:
        return None
    if statement.isascii() and _KEYED.match(statement) is not None:
        return ("digits", _DIGITS.sub(b"?", statement))
    return statement


def _plain(sql: str) -> str | None:
    """The one statement of a query string as Session.execute cuts it, if it has no comment, no run tag and
    no ";" but a trailing one (None otherwise)."""
    if "--" in sql or "/*" in sql or MARK in sql:
        return None
    if ";" in sql:
        body = sql.rstrip()
        if ";" in body[:-1]:
            return None
        statements = _statements(sql)
        return statements[0] if len(statements) == 1 else None
    if sql.lstrip().startswith("\\"):
        return None
    return sql.strip() or None


def _read_only(engine, text: str) -> bool:
    """The gate's answer (cached by shape): a SELECT with nothing refused and nothing for the live catalog
    to decide (so audit mode would record nothing either), no locking clause, nothing DSQL-only rewritten, no
    set_config (its ParameterStatus would pass libpq by)."""
    facts, refused, pending = engine.decide(text, live=True)
    return (facts.node == "SelectStmt" and not refused and not pending and facts.klass not in ("dml", "ddl")
            and facts.parse_error is None and not facts.dsql and '"LockingClause"' not in facts.js
            and '"set_config"' not in facts.js)


def _text(statement: bytes) -> str | None:
    """The one statement of a message's query string as Session.execute cuts it, if _plain (None otherwise;
    bytes that are not UTF-8 too: the general path reads them with replacement characters)."""
    try:
        return _plain(statement.decode())
    except UnicodeDecodeError:
        return None


def _is_read(engine, statement: bytes) -> bool:
    text = _text(statement)
    return text is not None and _read_only(engine, text)


def _whole_query(body: bytes) -> bool:
    """A Query message's body is one string (nothing after its terminator)."""
    return body.find(b"\0") == len(body) - 1


def _reads(engine) -> dict:
    """The engine's eligibility cache: statement key (see _key) → relayed or not."""
    reads = engine.__dict__.get("_relay_reads")
    return reads if reads is not None else engine.__dict__.setdefault("_relay_reads", {})


def _eligible(engine, text: bytes, decide) -> bool:
    """Is the statement relayed? ``decide()``'s answer, cached by the statement's key (at most 4,096 kept)."""
    reads = _reads(engine)
    key = _key(text)
    ok = reads.get(key) if key is not None else None
    if ok is None:
        ok = decide()
        if key is not None:
            if len(reads) >= 4096:
                reads.clear()
            reads[key] = ok
    return ok


def simple(client, body: bytes) -> bool:
    """A Query message: relayed if it is one plain read or one write outside a transaction (True: answered,
    ReadyForQuery included)."""
    if _READ_HEAD.match(body) is None:
        if WRITES and _WRITE_HEAD.match(body) is not None:
            return relay_writes.simple(client, body)
        return False  # (a SET, a BEGIN, …: nothing more to look at)
    session = client.session
    engine = session.engine
    if not _eligible(engine, body, lambda: _whole_query(body) and _is_read(engine, body[:-1])):
        return False
    back = _backend(client, session)
    if back is None:
        return False
    _run(client, session, back, b"Q" + _pack(len(body) + 4) + body, body, False)
    return True


def extended(client, body: bytes) -> bool:
    """A Parse of the unnamed statement followed, already buffered, by Bind (unnamed portal and statement),
    an optional Describe, Execute (no row limit) and Sync: relayed if it is one plain read (True: the whole
    batch is answered, ReadyForQuery included, and the Inbox is past its Sync)."""
    if body[:1] != b"\0":
        return False
    end = body.find(b"\0", 1)
    if end < 0:
        return False
    statement = body[1:end]
    if _READ_HEAD.match(statement) is None:
        if WRITES and _WRITE_HEAD.match(statement) is not None:
            return relay_writes.extended(client, body, statement, end)
        return False
    session = client.session
    engine = session.engine

    if not _eligible(engine, statement, lambda: _is_read(engine, statement)):
        return False
    inbox, buf, start, at = _buffered_batch(client)
    if at < 0:
        return False
    back = _backend(client, session)
    if back is None:
        return False
    parsed = back.parsed.get(body)
    if parsed is None:
        try:
            parsed = P.parse_parse(body)
        except P.ProtocolError:  # the general path's answer
            return False
        if _key(statement) is not None:  # (a statement too long to cache the answer of: nor its Parse)
            if len(back.parsed) >= 256:
                back.parsed.clear()
            back.parsed[body] = parsed
    inbox.pos = at
    failed = _run(client, session, back, b"P" + _pack(len(body) + 4) + body + buf[start:at], statement, True)
    client.prepared[""] = parsed[1:]  # a later Bind without Parse (the general path) finds it
    client.portals.pop("", None)
    if failed is None:
        return True
    if failed and not engine.audit:
        session.aborted = True  # PostgreSQL's error in the implicit transaction (Session._pg_failed)
    session.end_implicit()  # Sync: as the general path ends the implicit transaction
    return True


def _buffered_batch(client) -> tuple:
    """(the client's Inbox, its buffer, where the Bind after the Parse being handled starts, where the batch
    ends: -1 if not all of it is buffered, see _batch)."""
    inbox = client.rfile()
    buf, start = inbox.buf, inbox.pos
    return inbox, buf, start, _batch(buf, start)


def _batch(buf: bytes, at: int) -> int:
    """Where the buffered Bind / [Describe] / Execute / Sync after a Parse ends (-1: not such a batch, or not
    all of it has arrived)."""
    n = len(buf)
    end = _whole(buf, at, n)
    if end < 0 or buf[at] != _BIND or buf[at + 5:at + 7] != b"\0\0":
        return -1
    at = end
    end = _whole(buf, at, n)
    if end >= 0 and buf[at] == _DESCRIBE:
        if buf[at + 5:end] not in (b"P\0", b"S\0"):
            return -1
        at = end
        end = _whole(buf, at, n)
    if end < 0 or buf[at] != _EXECUTE or buf[at + 5:end] != _EXECUTE_ALL:
        return -1
    at = end
    end = _whole(buf, at, n)
    if end < 0 or buf[at] != _SYNC or end != at + 5:
        return -1
    return end


def _whole(buf: bytes, at: int, n: int) -> int:
    """The end of the message at ``at`` if it is all in ``buf`` (else -1)."""
    if at + 5 > n:
        return -1
    end = at + 1 + _unpack(buf, at + 1)[0]
    return end if at + 5 <= end <= n else -1


def _run(client, session, back: _Backend, request: bytes, statement: bytes, extended: bool, write=None):
    """Send, relay the answer, keep ``busy`` up meanwhile. True/False: PostgreSQL answered (with an error or
    not); None: the backend was lost, and the general path's answer to that was sent instead. The engine's
    bookkeeping for the statement's start is done while PostgreSQL runs it (none of it reaches PostgreSQL).
    ``write``: how a write's answer is read (relay_writes.answer, whose outcome is returned); the write is
    counted once it succeeded (else the general path counts it)."""
    if client.out:
        client.flush()
    try:
        with back.conn.lock:
            try:
                _send(back, session, request)
            finally:  # (also when the send failed: the statement was counted on the general path too)
                client.busy = True  # a CancelRequest reaches the statement (Server.cancel)
                session.site = None
                if write is None:
                    client.relayed += 1  # (counted before the answer goes: its client may look at once)
                    RELAYED[0] += 1
                    session.engine.stats["statements"] += 1
                if extended:
                    session.begin_implicit()  # the statements up to Sync: one implicit transaction
                else:  # an autocommit statement's transaction number (nothing else of a transaction's
                    session.txn_number += 1  # state is set by a relayed read, nor read by a relayed write)
            if write is not None:
                return write(client, session, back)
            failed = _answer(client, session, back, statement, extended)
    except _Lost as lost:
        client.busy = False
        error = session._connection_lost(lost.exc)  # reconnected (the transaction reset), or closed
        client._send_error(error)
        if isinstance(error, SessionClosed):
            client.flush()
            raise ConnectionResetError("DSQL closed the connection") from None
        client.out += P.ready(session.status)
        client.flush()
        return None
    finally:
        client.busy = False
    return failed


def _send(back: _Backend, session, request: bytes) -> None:
    """``request`` to the backend (its socket is libpq's: non-blocking)."""
    try:
        sent = os.write(back.fd, request)
    except BlockingIOError:
        sent = 0
    except OSError as exc:
        raise _Lost(exc) from None
    if sent < len(request):
        _write_rest(back, session, memoryview(request)[sent:])


def _answer(client, session, back: _Backend, statement: bytes, extended: bool) -> bool:
    """Forward the backend's messages to the client up to and including ReadyForQuery (whole messages only: a
    failure between two leaves the client's framing intact). True if PostgreSQL answered with an error."""
    fd = back.fd
    read = os.read
    sendall = client.sock.sendall
    rest = b""  # an incomplete message held back
    ready = failed = False
    while True:
        _wait(back, session)
        while True:
            try:
                data = read(fd, _READ)
            except BlockingIOError:
                break
            except OSError as exc:
                raise _Lost(exc) from None
            if not data:
                raise _Lost(ConnectionResetError("PostgreSQL closed the connection"))
            if rest:
                data = rest + data
            n = len(data)
            pos = 0  # the next message's header
            while pos + 5 <= n:
                end = pos + 1 + _unpack(data, pos + 1)[0]
                if end > n:
                    break
                kind = data[pos]
                if kind == _Z or kind == _E or kind == _S:
                    if kind == _Z:
                        if data[pos + 5] != _I:
                            raise RuntimeError(f"relayed read left the backend in state {chr(data[pos + 5])!r}")
                        ready = True
                    elif kind == _E:
                        failed = True
                        swap = _error(session, statement, extended, data, pos, end)
                        if swap is not None:
                            data = data[:pos] + swap + data[end:]
                            end = pos + len(swap)
                            n = len(data)
                    else:
                        _parameter(client, session, data, pos, end)
                pos = end
            try:
                if pos == n:
                    sendall(data)
                    if ready:  # the answer is whole (anything after ReadyForQuery: async, forwarded too)
                        return failed
                    rest = b""
                elif pos:
                    sendall(memoryview(data)[:pos])
                    rest = data[pos:]
                else:
                    rest = data
            except OSError:
                session._cancel_pg()
                raise pgcall.ClientGone() from None


def _write_rest(back: _Backend, session, view: memoryview) -> None:
    """The rest of a long request, as the backend reads it (its socket is non-blocking, libpq's)."""
    back.poller.modify(back.fd, _POLLIN | _POLLOUT)
    try:
        while view:
            _wait(back, session)
            try:
                view = view[os.write(back.fd, view):]
            except BlockingIOError:
                continue
            except OSError as exc:
                raise _Lost(exc) from None
    finally:
        back.poller.modify(back.fd, _POLLIN)


def _wait(back: _Backend, session) -> None:
    """Until the backend's socket is ready (the GIL released meanwhile). A client that hangs up has its
    statement cancelled (pgcall._wait does the same on the general path)."""
    watch = back.watch
    while True:
        for fd, ev in back.poller.poll():
            if fd == watch and fd != back.fd:
                if ev & pgcall._GONE or (not pgcall._RDHUP and pgcall._eof(watch)):
                    session._cancel_pg()
                    raise pgcall.ClientGone()
                back.poller.unregister(watch)  # pipelined data, no way to see a hang-up past it
                back.watch = -1  # (the poller is rebuilt for the next statement)
            else:
                return


def _parameter(client, session, buf: bytes, pos: int, end: int) -> None:
    """A ParameterStatus passed through (a function the read called changed a reported setting). libpq did
    not see it: ``reported`` keeps libpq's value for the name, so ``_parameter_status`` — which compares
    libpq's view with it — announces the next change libpq sees, and does not resend the stale value."""
    name = bytes(buf[pos + 5:end]).split(b"\0", 1)[0].decode("utf-8", "replace")
    if name in client.reported:
        client.reported[name] = (session.conn.pgconn.parameter_status(name.encode()) or b"").decode()


def _error(session, statement: bytes, extended: bool, buf: bytes, pos: int, end: int) -> bytes | None:
    """DSQL's answer in place of PostgreSQL's ErrorResponse where the general path answers differently: over
    temp_file_limit, which stands for DSQL's 128 MiB of query memory (StatementHandling._one), recorded as a
    finding. None: PostgreSQL's error goes as it is."""
    body = buf[pos + 5:end]
    if _TEMP_SPACE not in body or b"temp_file_limit" not in body:
        return None
    from dsql_audit.catalog import load_catalog

    text = statement.decode() if extended else _plain(statement[:-1].decode())
    variant = load_catalog()["size-limit"].variant("temp_space")
    error = session._fail(text, variant.sqlstate, variant.dsql_message.replace(
        "131072", str(session.engine.profile.limit("query_temp_kb"))), "size-limit", "temp_space")
    return P.error(error.sqlstate, error.message, detail=error.detail, hint=error.hint)


from dsql_audit.serve import relay_writes  # noqa: E402 - it uses this module's parts (imported last: a cycle)
