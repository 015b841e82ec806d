"""serve's relay for a write outside any transaction: one INSERT / UPDATE / DELETE the gate passes, in a Query
message or in the unnamed Parse / Bind / [Describe portal] / Execute / Sync batch, goes to PostgreSQL as one round
trip that engine/autocommit_write.py words so that PostgreSQL decides its commit. The client gets the command
tag. Anything but success has rolled it back, and the general path runs the statement (its message still
unread) and answers as DSQL does. The relay's parts (eligibility cache, backend socket, sending and waiting)
are serve/relay.py's; see it for what makes a statement eligible at all."""

from __future__ import annotations

import os
import struct

from dsql_audit.engine import autocommit_write
from dsql_audit.serve import protocol as P
from dsql_audit.serve import relay as R

_unpack16 = struct.Struct("!h").unpack_from
_D, _N, _C = ord("D"), ord("N"), ord("C")
_READY_IDLE = b"Z\0\0\0\5I"


def _plan(engine, statement: bytes):
    """A write's plan (engine/autocommit_write.py) if the statement is one the gate passes (else False)."""
    text = R._text(statement)
    return text is not None and autocommit_write.plan(*engine.decide(text, live=True)) or False


def simple(client, body: bytes) -> bool:
    """A Query message holding one write: outside a transaction, sent as one round trip whose commit
    PostgreSQL decides (True: answered). False: the general path runs it (not such a write, or PostgreSQL
    answered anything but success, which rolled it back)."""
    session = client.session
    engine = session.engine
    plan = R._eligible(engine, body, lambda: R._whole_query(body) and _plan(engine, body[:-1]))
    if not plan or session.doomed or session.schema_doomed:
        return False
    back = R._backend(client, session)
    if back is None:
        return False
    text = R._text(body[:-1])
    # (catalog lookups of the target table, once per catalog version, run here on the idle connection)
    how = autocommit_write.form(session, plan)
    request = autocommit_write.query(session, plan, how, text).encode() + b"\0"
    outcome = R._run(client, session, back, b"Q" + R._pack(len(request) + 4) + request, body, False, answer)
    return _written(client, session, plan, how, outcome, b"")


def _written(client, session, plan, how: str, outcome, head: bytes) -> bool:
    """A relayed write's outcome: answered (True), or rolled back for the general path (False). ``head``: the
    messages the client's batch is answered with before the write's own (ParseComplete …)."""
    if outcome is None:  # the backend was lost (a winner's rollback answers 40001): answered
        return True
    count, complete, passthrough = outcome
    if complete is None:  # rolled back: the general path runs it and answers as DSQL does
        session._reset_txn()
        return False
    engine = session.engine
    engine.stats["statements"] += 1
    client.relayed += 1
    R.RELAYED[0] += 1
    engine.board.mark_committed(session.id, session.txn_number)  # (for a write that met ours meanwhile)
    if session.doomed:  # a writer that met our row took us for open and doomed us: we committed first
        session._reset_txn()  # (nothing else of the session's transaction state was set)
    if how == autocommit_write.TOTAL:  # PostgreSQL's tag is the SELECT's: the write's is made from its count
        complete = P.command_complete(plan.tag + count)
    client.out += head + passthrough + complete + _READY_IDLE
    client.flush()
    return True


def _unnamed(statement: bytes) -> bytes:
    """Parse, Bind and Execute of a statement without parameters or rows (the unnamed statement and portal)."""
    return b"P" + R._pack(len(statement) + 8) + b"\0" + statement + b"\0\0\0" + _BIND_EXECUTE


_BIND_EXECUTE = b"B\0\0\0\x0c\0\0\0\0\0\0\0\0" + b"E\0\0\0\x09\0\0\0\0\0"
_EXECUTE_SYNC = b"E\0\0\0\x09\0\0\0\0\0" + b"S\0\0\0\x04"
_PARSED_BOUND = b"1\0\0\0\x042\0\0\0\x04"  # ParseComplete, BindComplete
_NO_DATA = b"n\0\0\0\x04"


def _bind_in_text(body: bytes) -> bytes | None:
    """A Bind's body (the unnamed portal and statement) asking for no result format — all text: the count a
    total form reads — or None (not such a Bind, or not well formed: the general path answers)."""
    if body[:2] != b"\0\0" or len(body) < 6:
        return None
    n = _unpack16(body, 2)[0]
    pos = 4 + 2 * n
    if n < 0 or pos + 2 > len(body):
        return None
    n = _unpack16(body, pos)[0]
    pos += 2
    for _ in range(max(n, 0)):
        if pos + 4 > len(body):
            return None
        size = R._unpack(body, pos)[0]
        pos += 4 + max(size, 0)
    if pos + 2 > len(body) or pos + 2 + 2 * _unpack16(body, pos)[0] != len(body):
        return None
    return body[:pos] + b"\0\0"


def extended(client, body: bytes, statement: bytes, end: int) -> bool:
    """A Parse of the unnamed statement holding one write, followed (buffered) by Bind, an optional Describe
    of the portal, Execute and Sync: outside a transaction, the batch goes as one round trip that runs the
    settings and the write (engine/autocommit_write.py) with the client's parameters. False: the general
    path runs the batch (nothing of it consumed)."""
    session = client.session
    engine = session.engine

    plan = R._eligible(engine, statement, lambda: _plan(engine, statement))
    if not plan or session.doomed or session.schema_doomed:
        return False
    inbox, buf, start, at = R._buffered_batch(client)
    if at < 0:
        return False
    bind_end = start + 1 + R._unpack(buf, start + 1)[0]
    describe = buf[bind_end] == R._DESCRIBE
    if describe and buf[bind_end + 5:bind_end + 7] != b"P\0":  # a statement's Describe: the general path's
        return False
    bind = _bind_in_text(buf[start + 5:bind_end])
    if bind is None:
        return False
    back = R._backend(client, session)
    if back is None:
        return False
    parsed = back.parsed.get(body)  # (a client repeats its statements: their cut is kept with the Parse)
    if parsed is None:
        try:
            parsed = (*P.parse_parse(body), R._text(statement))
        except P.ProtocolError:
            return False
        if len(statement) <= R._CACHED:
            if len(back.parsed) >= 256:
                back.parsed.clear()
            back.parsed[body] = parsed
    how = autocommit_write.form(session, plan)
    write = autocommit_write.statement(session, plan, how, parsed[3]).encode()
    request = _unnamed(autocommit_write.settings(session, how).encode()) + b"P" + \
        R._pack(len(body) - len(statement) + len(write) + 4) + b"\0" + write + body[end:] + \
        b"B" + R._pack(len(bind) + 4) + bind + _EXECUTE_SYNC
    outcome = R._run(client, session, back, request, statement, False, answer)
    if outcome is not None and outcome[1] is None:
        session._reset_txn()
        return False  # rolled back: the general path runs the client's batch, still in the Inbox
    inbox.pos = at
    client.prepared[""] = parsed[1:3]  # a later Bind without Parse (the general path) finds it
    client.portals.pop("", None)
    return _written(client, session, plan, how, outcome, _PARSED_BOUND + (_NO_DATA if describe else b""))


def answer(client, session, back) -> tuple:
    """The answer to a write sent by simple() or extended(), read up to ReadyForQuery: (the first column of
    the first DataRow, the last CommandComplete message — None when PostgreSQL answered with an error —, the
    notices and ParameterStatus messages to pass on). What answers the settings' statement, sent first, is not
    the client's (its DataRow, its CommandComplete)."""
    fd = back.fd
    data = b""
    first, complete, passthrough, failed, pos, done = None, None, [], False, 0, 0
    while True:
        R._wait(back, session)
        try:
            chunk = os.read(fd, R._READ)
        except BlockingIOError:
            continue
        except OSError as exc:
            raise R._Lost(exc) from None
        if not chunk:
            raise R._Lost(ConnectionResetError("PostgreSQL closed the connection"))
        data += chunk  # (the answer is small: one read holds it, unless it came in pieces)
        n = len(data)
        while pos + 5 <= n:
            end = pos + 1 + R._unpack(data, pos + 1)[0]
            if end > n:
                break
            kind = data[pos]
            if kind == _C:
                complete = data[pos:end]
                done += 1
            elif kind == _D and first is None and done:  # (the total form's count; a row form's NULL)
                size = R._unpack(data, pos + 7)[0]
                first = data[pos + 11:pos + 11 + size].decode() if size >= 0 else ""
            elif kind == R._E:
                failed = True
            elif kind == _N:
                passthrough.append(data[pos:end])
            elif kind == R._S:
                R._parameter(client, session, data, pos, end)
                passthrough.append(data[pos:end])
            elif kind == R._Z:
                if data[pos + 5] != R._I:
                    raise RuntimeError(f"relayed write left the backend in state {chr(data[pos + 5])!r}")
                return first, (None if failed else complete), b"".join(passthrough)
            pos = end
