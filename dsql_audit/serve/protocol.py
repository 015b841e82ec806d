"""The PostgreSQL v3 wire protocol: reading frontend messages and building backend ones.
(https://www.postgresql.org/docs/16/protocol-message-formats.html). Pure functions over bytes; the
connection handler in ``server.py`` decides what to send."""

from __future__ import annotations

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
    head = read_exact(sock, 5)
    kind = head[:1]
    (length,) = struct.unpack("!i", head[1:])
    if length < 4 or length > MAX_MESSAGE:
        raise ProtocolError("invalid message length")
    return kind, read_exact(sock, length - 4)


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
    r = Reader(body)
    return r.cstring(), r.cstring(), r.int32_list()


def parse_bind(body: bytes) -> tuple[str, str, list[int], list, list[int]]:
    r = Reader(body)
    portal, stmt = r.cstring(), r.cstring()
    formats = r.int16_list()
    n = r.int16()
    if n < 0:
        raise ProtocolError("negative parameter count")
    values = []
    for _ in range(n):
        size = r.int32()
        values.append(None if size == -1 else r.bytes_(size))
    return portal, stmt, formats, values, r.int16_list()


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


def ready(status: str) -> bytes:
    return msg(b"Z", status.encode())


def command_complete(tag: str) -> bytes:
    return msg(b"C", cstr(tag))


def row_description(fields) -> bytes:
    out = [struct.pack("!h", len(fields))]
    for f in fields:
        out.append(cstr(f.name) + struct.pack("!ihihih", f.table_oid, f.column, f.type_oid, f.typlen, f.typmod,
                                               f.format))
    return msg(b"T", b"".join(out))


def data_row(values) -> bytes:
    out = [struct.pack("!h", len(values))]
    for v in values:
        if v is None:
            out.append(b"\xff\xff\xff\xff")
        else:
            out.append(struct.pack("!i", len(v)))
            out.append(v)
    return msg(b"D", b"".join(out))


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
