"""The PostgreSQL v3 wire protocol: reading frontend messages and building backend ones.
(https://www.postgresql.org/docs/16/protocol-message-formats.html). Pure functions over bytes; the
connection handler in ``server.py`` decides what to send."""

from __future__ import annotations

import socket
import struct

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
# DSQL's bound on one protocol message, 10 MiB; over it DSQL's docs give `08P01 FATAL: invalid message length`
# (DSQL-FACTS §2.2 "Protocol message > 10 MiB" and §3 "Protocol message", from the quotas page; a real cluster
# was seen just closing the connection). Decided from the length header, before the body is read.
MAX_MESSAGE = 10 * 1024 * 1024
MAX_STARTUP = 10_000  # PostgreSQL refuses startup packets longer than this


class ProtocolError(Exception):
    """The client broke the protocol: answer with 08P01 and drop it."""


def read_exact(stream, n: int) -> bytes:
    """n bytes from a socket or a buffered reader over one (``sock.makefile("rb")``)."""
    if hasattr(stream, "read"):
        data = stream.read(n)
        if len(data) < n:
            raise ConnectionResetError("client closed the connection")
        return data
    chunks = []
    while n:
        chunk = stream.recv(min(n, 1 << 20))
        if not chunk:
            raise ConnectionResetError("client closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_startup(sock) -> tuple[int, bytes]:
    """(code, body) of an untyped startup-phase packet."""
    (length,) = struct.unpack("!i", read_exact(sock, 4))
    if length < 8 or length > MAX_STARTUP:
        raise ProtocolError(f"invalid length of startup packet: {length}")
    body = read_exact(sock, length - 4)
    return struct.unpack("!i", body[:4])[0], body[4:]


def read_message(sock) -> tuple[bytes, bytes]:
    """(type byte, body) of a typed frontend message."""
    if isinstance(sock, Inbox):
        return sock.message()
    head = read_exact(sock, 5)
    kind = head[:1]
    (length,) = struct.unpack("!i", head[1:])
    if length < 4 or length > MAX_MESSAGE:
        raise ProtocolError("invalid message length")
    return kind, read_exact(sock, length - 4)


_INT32 = struct.Struct("!i")
_INBOX_READ = 1 << 16


class Inbox:
    """A client's incoming bytes: one ``recv`` takes whatever has arrived (several pipelined messages, as
    the extended protocol sends Parse/Bind/Describe/Execute/Sync together) and messages are cut from it, with
    no copy through a buffered file and no Python-level ``readinto`` per message. ``read(n)`` serves the
    startup phase's and COPY's readers (``read_exact``) from the same buffer."""

    __slots__ = ("sock", "buf", "pos")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.pos = 0

    def _fill(self, need: int) -> None:
        """Until ``need`` (at most a read's size) bytes are buffered past ``pos``: short reads are normal."""
        have = len(self.buf) - self.pos
        parts = [self.buf[self.pos:]] if have else []
        recv = self.sock.recv
        while have < need:
            chunk = recv(_INBOX_READ)
            if not chunk:
                raise ConnectionResetError("client closed the connection")
            parts.append(chunk)
            have += len(chunk)
        self.buf = parts[0] if len(parts) == 1 else b"".join(parts)
        self.pos = 0

    def _exact(self, n: int) -> bytes:
        """``n`` bytes, more than a read's size: what is buffered, then exactly the rest from the socket (one
        buffer of the rest's size; nothing past it is read)."""
        parts = [self.buf[self.pos:]] if self.pos < len(self.buf) else []
        got = len(parts[0]) if parts else 0
        self.buf, self.pos = b"", 0
        while got < n:
            try:
                chunk = self.sock.recv(n - got, socket.MSG_WAITALL)
            except ValueError:  # a TLS socket takes no flags
                chunk = self.sock.recv(min(n - got, 1 << 20))
            if not chunk:
                raise ConnectionResetError("client closed the connection")
            parts.append(chunk)
            got += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read(self, n: int) -> bytes:
        if len(self.buf) - self.pos < n:
            if n > _INBOX_READ:
                return self._exact(n)
            self._fill(n)
        pos = self.pos
        self.pos = pos + n
        return self.buf[pos:pos + n]

    def message(self) -> tuple[bytes, bytes]:
        """(type byte, body) of the next typed message; the length is checked before its body is read."""
        buf, pos = self.buf, self.pos
        if len(buf) - pos < 5:
            self._fill(5)
            buf, pos = self.buf, 0
        length = _INT32.unpack_from(buf, pos + 1)[0]
        if length < 4 or length > MAX_MESSAGE:
            raise ProtocolError("invalid message length")
        end = pos + 1 + length
        if end <= len(buf):
            self.pos = end
            return buf[pos:pos + 1], buf[pos + 5:end]
        kind = buf[pos:pos + 1]
        self.pos = pos + 5
        return kind, self.read(length - 4)

    def pending(self) -> bool:
        """Bytes already received and not yet read (pipelined messages)."""
        return self.pos < len(self.buf)


def startup_params(body: bytes) -> dict:
    parts = body.split(b"\0")
    out = {}
    for i in range(0, len(parts) - 1, 2):
        if not parts[i]:
            break
        out[parts[i].decode("utf-8", "replace")] = parts[i + 1].decode("utf-8", "replace")
    return out


class Reader:
    """Walks one message body."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0

    def cstring(self) -> str:
        end = self.buf.find(b"\0", self.pos)
        if end < 0:
            raise ProtocolError("unterminated string in message")
        s = self.buf[self.pos:end].decode("utf-8", "replace")
        self.pos = end + 1
        return s

    def int16(self) -> int:
        if self.pos + 2 > len(self.buf):
            raise ProtocolError("message too short")
        (v,) = struct.unpack_from("!h", self.buf, self.pos)
        self.pos += 2
        return v

    def int32(self) -> int:
        if self.pos + 4 > len(self.buf):
            raise ProtocolError("message too short")
        (v,) = struct.unpack_from("!i", self.buf, self.pos)
        self.pos += 4
        return v

    def byte(self) -> bytes:
        if self.pos >= len(self.buf):
            raise ProtocolError("message too short")
        b = self.buf[self.pos:self.pos + 1]
        self.pos += 1
        return b

    def bytes_(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise ProtocolError("message too short")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def int16_list(self) -> list[int]:
        n = self.int16()
        if n < 0:
            raise ProtocolError("negative count in message")
        return [self.int16() for _ in range(n)]

    def int32_list(self) -> list[int]:
        n = self.int16()
        if n < 0:
            raise ProtocolError("negative count in message")
        return [self.int32() for _ in range(n)]


def parse_parse(body: bytes) -> tuple[str, str, list[int]]:
    """(statement name, query, parameter type oids) of a Parse."""
    name, pos = _cstring_at(body, 0)
    query, pos = _cstring_at(body, pos)
    return name, query, _counted_list_at(body, pos, "i", 4)[0]


def parse_target(body: bytes) -> tuple[bytes, str]:
    """(b"S" or b"P", name) of a Describe or Close."""
    if not body:
        raise ProtocolError("message too short")
    return body[:1], _cstring_at(body, 1)[0]


def parse_execute(body: bytes) -> tuple[str, int]:
    """(portal, row limit) of an Execute."""
    name, pos = _cstring_at(body, 0)
    if pos + 4 > len(body):
        raise ProtocolError("message too short")
    return name, _unpack_int32(body, pos)[0]


_unpack_int16 = struct.Struct("!h").unpack_from
_unpack_int32 = _INT32.unpack_from


def _cstring_at(body: bytes, pos: int) -> tuple[str, int]:
    end = body.find(b"\0", pos)
    if end < 0:
        raise ProtocolError("unterminated string in message")
    return body[pos:end].decode("utf-8", "replace"), end + 1


def _counted_list_at(body: bytes, pos: int, code: str, size: int) -> tuple[list, int]:
    """An int16 count, then that many values of struct ``code`` (``size`` bytes each): (values, end)."""
    if pos + 2 > len(body):
        raise ProtocolError("message too short")
    n = _unpack_int16(body, pos)[0]
    if n < 0:
        raise ProtocolError("negative count in message")
    pos += 2
    if pos + size * n > len(body):
        raise ProtocolError("message too short")
    return list(struct.unpack_from(f"!{n}{code}", body, pos)) if n else [], pos + size * n


def _int16_list_at(body: bytes, pos: int) -> tuple[list, int]:
    return _counted_list_at(body, pos, "h", 2)


def parse_bind(body: bytes) -> tuple[str, str, list[int], list, list[int]]:
    """(portal, statement, parameter formats, parameter values — bytes or None —, result formats); one pass
    over the body (Bind comes with every statement of the extended protocol)."""
    portal, pos = _cstring_at(body, 0)
    stmt, pos = _cstring_at(body, pos)
    formats, pos = _int16_list_at(body, pos)
    size_all = len(body)
    if pos + 2 > size_all:
        raise ProtocolError("message too short")
    n = _unpack_int16(body, pos)[0]
    pos += 2
    if n < 0:
        raise ProtocolError("negative parameter count")
    values = []
    for _ in range(n):
        if pos + 4 > size_all:
            raise ProtocolError("message too short")
        size = _unpack_int32(body, pos)[0]
        pos += 4
        if size == -1:
            values.append(None)
            continue
        if size < 0 or pos + size > size_all:
            raise ProtocolError("message too short")
        values.append(body[pos:pos + size])
        pos += size
    result_formats, _ = _int16_list_at(body, pos)
    return portal, stmt, formats, values, result_formats


# -- backend messages -------------------------------------------------------------------------------

def msg(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def cstr(s: str) -> bytes:
    return s.encode("utf-8").replace(b"\0", b"") + b"\0"


def auth_ok() -> bytes:
    return msg(b"R", struct.pack("!i", 0))


def auth_cleartext() -> bytes:
    return msg(b"R", struct.pack("!i", 3))


def parameter_status(name: str, value: str) -> bytes:
    return msg(b"S", cstr(name) + cstr(value))


def backend_key(pid: int, secret: int) -> bytes:
    return msg(b"K", struct.pack("!ii", pid, secret))


_READY = {status: b"Z" + struct.pack("!i", 5) + status.encode() for status in ("I", "T", "E")}


def ready(status: str) -> bytes:
    return _READY.get(status) or msg(b"Z", status.encode())


_TAGS: dict = {}  # command tags seen ("SELECT 1", "UPDATE 1", "COMMIT" …) → their CommandComplete
_DESCRIPTIONS: dict = {}  # column descriptions seen → their RowDescription
_CACHED = 1024  # entries per cache (cleared when full: a workload has a few shapes, an odd one costs nothing)


def command_complete(tag: str) -> bytes:
    out = _TAGS.get(tag)
    if out is None:
        out = msg(b"C", cstr(tag))
        if len(_TAGS) >= _CACHED:
            _TAGS.clear()
        _TAGS[tag] = out
    return out


_FIELD = struct.Struct("!ihihih")


def row_description(fields) -> bytes:
    key = tuple(fields)
    out = _DESCRIPTIONS.get(key)
    if out is None:
        parts = [struct.pack("!h", len(fields))]
        for f in fields:
            parts.append(cstr(f.name) + _FIELD.pack(f.table_oid, f.column, f.type_oid, f.typlen, f.typmod, f.format))
        out = msg(b"T", b"".join(parts))
        if len(key) <= 64:  # (a wide result's description is not worth keeping)
            if len(_DESCRIPTIONS) >= _CACHED:
                _DESCRIPTIONS.clear()
            _DESCRIPTIONS[key] = out
    return out


_NULL = b"\xff\xff\xff\xff"
_pack_int32 = _INT32.pack


def data_row(values) -> bytes:
    """DataRow of raw values (bytes as PostgreSQL sent them, None for NULL)."""
    out = [b""]
    size = 6
    for v in values:
        if v is None:
            out.append(_NULL)
            size += 4
        else:
            n = len(v)
            out.append(_pack_int32(n))
            out.append(v)
            size += 4 + n
    out[0] = b"D" + _pack_int32(size) + struct.pack("!h", len(values))
    return b"".join(out)


def data_rows(rows) -> bytes:
    """The DataRows of several rows, in one bytes object."""
    return b"".join(map(data_row, rows))


def parameter_description(oids) -> bytes:
    return msg(b"t", struct.pack("!h", len(oids)) + b"".join(struct.pack("!I", o & 0xFFFFFFFF) for o in oids))


def error(sqlstate: str, message: str, severity: str = "ERROR", detail: str | None = None,
          hint: str | None = None, position: int | None = None, kind: bytes = b"E") -> bytes:
    body = [b"S" + cstr(severity), b"V" + cstr(severity), b"C" + cstr(sqlstate), b"M" + cstr(message)]
    if detail:
        body.append(b"D" + cstr(detail))
    if hint:
        body.append(b"H" + cstr(hint))
    if position:
        body.append(b"P" + cstr(str(position)))
    return msg(kind, b"".join(body) + b"\0")


def notice(n) -> bytes:
    """A NoticeResponse from an engine Notice (PostgreSQL's own notice, forwarded)."""
    return error(n.sqlstate, n.message, severity=n.severity, detail=n.detail, hint=n.hint, kind=b"N")


PARSE_COMPLETE = msg(b"1")
BIND_COMPLETE = msg(b"2")
CLOSE_COMPLETE = msg(b"3")
NO_DATA = msg(b"n")
EMPTY_QUERY = msg(b"I")
PORTAL_SUSPENDED = msg(b"s")
