"""The text → binary encoders `serve` uses for mixed result formats, checked value by value against
PostgreSQL's own send functions on a real server (the embedded one)."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsql_audit.serve.binary import encoder

CASES = {  # type: values as SQL literals
    "numeric": ["0", "1", "-1", "57.50", "0.0001", "10000", "12345678.9", "-0.000000123", "1e20", "99999999.99990",
                "'NaN'", "'Infinity'", "'-Infinity'", "3.14159265358979323846264338327950288"],
    "date": ["'2000-01-01'", "'1999-12-31'", "'2026-11-23'", "'0044-03-15'", "'infinity'", "'-infinity'"],
    "timestamp": ["'2000-01-01 00:00:00'", "'2026-01-04 10:00:00'", "'1970-01-01 00:00:00.5'",
                  "'1999-12-31 23:59:59.999999'", "'infinity'"],
    "timestamptz": ["'2026-01-04 10:00:00+00'", "'2026-06-30 23:59:59.123456+05:30'", "'1960-01-01 00:00:00-08'"],
    "time": ["'00:00:00'", "'10:00:00.5'", "'23:59:59.999999'"],
    "jsonb": ["'{\"a\": [1, 2, {\"b\": null}]}'", "'\"x\"'", "'[]'"],
    "uuid": ["'00000000-0000-0000-0000-00000000000a'", "gen_random_uuid()"],
    "bytea": ["'\\x0001ff'::bytea", "''::bytea"],
    "boolean": ["true", "false"],
    "\"char\"": ["'a'"],
    "int2": ["-32768", "7"], "int4": ["2147483647"], "int8": ["-9223372036854775808"], "oid": ["4294967295"],
    "float8": ["3.5", "-0.25"], "text": ["'héllo'"],
}


@pytest.fixture(scope="module")
def pg():
    from dsql_audit.engine import Engine

    with Engine() as engine:
        host = engine.uri.split("host=", 1)[1]
        with psycopg.connect(f"host={host} user=admin dbname=postgres", autocommit=True) as conn:
            conn.execute("SET TimeZone = 'Asia/Kolkata'")  # an offset with minutes, as a client may set
            yield conn


def _check(pg, type_name: str, literal: str):
    """The value's text output exactly as serve receives it (libpq, text format) against its send function,
    both from one evaluation of the literal."""
    fn = "numeric_send" if type_name == "numeric" else _send(type_name)
    res = pg.pgconn.exec_(f"SELECT v, {fn}(v), '{type_name}'::regtype::oid::int FROM (SELECT ({literal})::{type_name} AS v) s"
                          .encode())
    text, send_hex, oid = res.get_value(0, 0), res.get_value(0, 1), int(res.get_value(0, 2))
    send = bytes.fromhex(send_hex.decode()[2:])
    assert encoder(oid)(text) == send, (type_name, literal, text)


def _send(type_name: str) -> str:
    return {"timestamp": "timestamp_send", "timestamptz": "timestamptz_send", "time": "time_send",
            "jsonb": "jsonb_send", "uuid": "uuid_send", "bytea": "byteasend", "boolean": "boolsend",
            "\"char\"": "charsend", "int2": "int2send", "int4": "int4send", "int8": "int8send", "oid": "oidsend",
            "float8": "float8send", "text": "textsend", "date": "date_send"}[type_name]


@pytest.mark.parametrize("type_name, literal", [(t, v) for t, vs in CASES.items() for v in vs])
def test_encoder_matches_postgresqls_send_function(pg, type_name, literal):
    _check(pg, type_name, literal)


@settings(max_examples=300, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(lambda d: abs(d) < Decimal("1e30")))
def test_numeric_encoding_matches_postgresql_for_any_decimal(pg, value):
    _check(pg, "numeric", f"'{value}'")


def test_a_type_without_an_encoder_is_refused_clearly():
    with pytest.raises(ValueError, match="type oid 1186"):
        encoder(1186)(b"1 day")
