"""Text → binary wire values for a client that asks for different formats per result column (pgjdbc does,
once a statement is server-prepared). libpq returns one format for a whole result, so the server fetches text
and encodes the binary columns here, in PostgreSQL's send formats (src/backend/utils/adt/*.c `*_send`)."""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from decimal import Decimal, InvalidOperation

_EPOCH = dt.datetime(2000, 1, 1)
_EPOCH_TZ = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_DATE = dt.date(2000, 1, 1)
_INTS = {21: "!h", 23: "!i", 20: "!q", 26: "!I", 28: "!I", 29: "!I", 24: "!I", 2205: "!I", 2206: "!I"}
_TEXTUAL = {25, 1043, 1042, 19, 114, 705, 142, 3614, 1033}  # text, varchar, bpchar, name, json, unknown, xml …


def encoder(oid: int):
    """A function bytes → bytes for one type, or a function that raises ValueError naming the type."""
    if oid in _INTS:
        fmt = _INTS[oid]
        return lambda v: struct.pack(fmt, int(v))
    if oid in (700, 701):
        fmt = "!f" if oid == 700 else "!d"
        return lambda v: struct.pack(fmt, float(v))
    if oid in _TEXTUAL:
        return lambda v: v
    return _ENCODERS.get(oid) or _refuse(oid)


def _refuse(oid: int):
    def refuse(v):
        raise ValueError(f"binary result format for type oid {oid} together with text columns is not supported")
    return refuse


def _bool(v: bytes) -> bytes:
    return b"\x01" if v == b"t" else b"\x00"


def _uuid(v: bytes) -> bytes:
    return uuid.UUID(v.decode()).bytes


def _bytea(v: bytes) -> bytes:
    text = v.decode()
    if not text.startswith("\\x"):
        raise ValueError("binary result format for bytea needs bytea_output = hex")
    return bytes.fromhex(text[2:])


def _jsonb(v: bytes) -> bytes:
    return b"\x01" + v  # jsonb_send: a version byte, then the text


def _char(v: bytes) -> bytes:
    return v[:1]


def _date(v: bytes) -> bytes:
    text = v.decode()
    if text == "infinity":
        return struct.pack("!i", 0x7FFFFFFF)
    if text == "-infinity":
        return struct.pack("!i", -0x80000000)
    return struct.pack("!i", (dt.date.fromisoformat(text) - _EPOCH_DATE).days)


def _micros(delta: dt.timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _timestamp(v: bytes) -> bytes:
    text = v.decode()
    if text in ("infinity", "-infinity"):
        return struct.pack("!q", 0x7FFFFFFFFFFFFFFF if text == "infinity" else -0x8000000000000000)
    return struct.pack("!q", _micros(dt.datetime.fromisoformat(text) - _EPOCH))


def _timestamptz(v: bytes) -> bytes:
    text = v.decode()
    if text in ("infinity", "-infinity"):
        return struct.pack("!q", 0x7FFFFFFFFFFFFFFF if text == "infinity" else -0x8000000000000000)
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("timestamptz text without an offset")
    return struct.pack("!q", _micros(value - _EPOCH_TZ))


def _time(v: bytes) -> bytes:
    t = dt.time.fromisoformat(v.decode())
    return struct.pack("!q", ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond)


def _numeric(v: bytes) -> bytes:
    """numeric_send: ndigits, weight, sign, dscale, then base-10000 digits."""
    text = v.decode()
    # PostgreSQL 16 sends the infinities with dscale 32 (what its special header's bits read as)
    special = {"NaN": (0xC000, 0), "Infinity": (0xD000, 32), "-Infinity": (0xF000, 32)}
    if text in special:
        return struct.pack("!hhHh", 0, 0, *special[text])
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a numeric: {text!r}") from None
    sign, digits, exponent = d.as_tuple()
    dscale = max(0, -exponent)
    # the digit string aligned so the decimal point falls on a base-10000 group boundary
    integer = "".join(map(str, digits))
    point = len(integer) + exponent  # digits before the decimal point
    front = (-point) % 4
    padded = "0" * front + integer
    back = (-len(padded)) % 4
    padded += "0" * back
    groups = [int(padded[i:i + 4]) for i in range(0, len(padded), 4)]
    weight = (point + front) // 4 - 1
    while groups and groups[0] == 0:  # strip leading and trailing zero groups (PostgreSQL does)
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    return struct.pack(f"!hhHh{len(groups)}H", len(groups), weight, 0x4000 if sign else 0, dscale, *groups)


_ENCODERS = {16: _bool, 2950: _uuid, 17: _bytea, 3802: _jsonb, 18: _char, 1082: _date, 1114: _timestamp,
             1184: _timestamptz, 1083: _time, 1700: _numeric}
