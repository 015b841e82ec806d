"""serve's per-statement hot path (bench/serve_pgbench.py): the shortcuts taken on every statement answer exactly
as the general code they stand in for — the statement split, the gate's cache key by shape, message framing in
and out, the PostgreSQL round trips saved — and DSQL's answers through them are unchanged."""

from __future__ import annotations

import random
import re
import socket
import struct
import threading

import psycopg
import pytest

from dsql_audit.engine import Engine
from dsql_audit.engine.lookups import shape
from dsql_audit.engine.pgcall import Field
from dsql_audit.engine.session import _statements
from dsql_audit.serve import Server
from dsql_audit.serve import protocol as P
from dsql_audit.sqltext import blank_literals, split_text

# -- the statement split --------------------------------------------------------------------------

_PIECES = ["SELECT", " ", "1", ";", "'", '"', "$$", "--", "/*", "*/", "\n", "\t", "\\", "x", "CREATE", "FUNCTION",
           "BEGIN", "ATOMIC", "END", "COPY t FROM STDIN", "\r\n", "\u2028", "\x1c", "?", "(", "e'", "$a$"]


def _split(sql: str) -> list:
    return [r.text for r in split_text(sql) if r.kind == "sql"]


def test_the_one_statement_shortcut_cuts_as_the_splitter_does():
    rng = random.Random(7)
    texts = ["SELECT 1;", "  SELECT 1 ;  ", "SELECT 1;\n", ";", " ; ", "SELECT a\nFROM t;", "SELECT ';';",
             "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1;", "COPY t FROM STDIN;",
             "\x1c SELECT 1;", "UPDATE t SET a = a + 1 WHERE id = 3;", "SELECT 1;;", "SELECT 1; SELECT 2;"]
    texts += ["".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12))) for _ in range(20_000)]
    for sql in texts:
        if ";" in sql:
            assert _statements(sql) == _split(sql), repr(sql)


# -- the gate's cache key ---------------------------------------------------------------------------

_DIGITS = re.compile(r"\b\d+\b")


def test_the_cheap_shape_key_is_never_coarser_than_blank_literals():
    """Two statements with the same key must have the same shape (the gate's answer is cached by it): any
    statement whose digit runs are changed gets the same key and the same blank_literals shape."""
    rng = random.Random(11)
    alphabet = ["SELECT ", "a", "t1", " = ", "1", "23", "-", "+ ", ".", "5", "'x 9'", "(", ",", " ", "e", "_",
                "4a", "WHERE ", "''", "'", "٣", "FROM "]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14)))
        twin = _DIGITS.sub(lambda m: str(rng.randint(0, 10 ** rng.randint(1, 4))), text)
        assert shape(text) == shape(twin)
        assert blank_literals(text) == blank_literals(twin), (text, twin)
    # a key never equals the shape of another statement taken the slow way ("?" or '"' in it)
    assert shape("SELECT 1.5") != shape("SELECT ?.?")
    assert shape('SELECT "t 1"') == blank_literals('SELECT "t 1"') != shape('SELECT "t 2"')


def test_the_gate_answers_each_statement_of_a_shape_with_its_own_text():
    engine = Engine.__new__(Engine)
    from dsql_audit.profile import load_profile

    engine.profile, engine._decided = load_profile(None), {}
    first = engine.decide("SELECT abalance FROM pgbench_accounts WHERE aid = 1", live=True)[0]
    second = engine.decide("SELECT abalance FROM pgbench_accounts WHERE aid = 22", live=True)[0]
    assert len(engine._decided) == 1
    assert second.text == second.unit.text == "SELECT abalance FROM pgbench_accounts WHERE aid = 22"
    assert (second.node, second.klass, second.js) == (first.node, first.klass, first.js)
    twin = first.with_text(second.text)
    for name in type(first).__slots__:
        if name != "unit":
            assert getattr(second, name) == getattr(twin, name), name
    assert second.unit == twin.unit


# -- messages in and out ----------------------------------------------------------------------------

class _Chunks:
    """A socket that hands its bytes over in the given sizes (recv returns at most one piece)."""

    def __init__(self, data: bytes, sizes):
        self.data, self.sizes = data, sizes

    def recv(self, n, flags=0):
        size = min(n, next(self.sizes, len(self.data)) or 1, len(self.data))
        out, self.data = self.data[:size], self.data[size:]
        return out


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def test_the_inbox_cuts_messages_as_reading_them_one_by_one_does():
    rng = random.Random(3)
    bodies = [b"", b"x", b"SELECT 1\0", bytes(70_000), bytes(200_000), b"y" * 65_531]
    messages = [(rng.choice([b"Q", b"P", b"B", b"S"]), rng.choice(bodies)) for _ in range(60)]
    data = b"".join(_msg(k, b) for k, b in messages)
    for sizes in (iter(lambda: rng.randint(1, 9), None), iter(lambda: rng.randint(1, 100_000), None),
                  iter(lambda: len(data), None)):
        inbox = P.Inbox(_Chunks(data, sizes))
        assert [P.read_message(inbox) for _ in messages] == messages
        with pytest.raises(ConnectionResetError):
            P.read_message(inbox)
    bad = P.Inbox(_Chunks(b"Q" + struct.pack("!i", P.MAX_MESSAGE + 1) + b"x" * 10, iter(lambda: 3, None)))
    with pytest.raises(P.ProtocolError, match="invalid message length"):
        bad.message()


def _data_row_reference(values) -> bytes:
    out = [struct.pack("!h", len(values))]
    for v in values:
        out.append(b"\xff\xff\xff\xff" if v is None else struct.pack("!i", len(v)) + v)
    return P.msg(b"D", b"".join(out))


def test_outgoing_messages_are_byte_for_byte_the_protocol_s():
    rows = [[b"1", None, b""], [b"\x00\x01" * 500], [], [None]]
    for row in rows:
        assert P.data_row(row) == _data_row_reference(row)
    assert P.data_rows(rows) == b"".join(map(_data_row_reference, rows))
    fields = [Field("a", 16384, 1, 23, 4, -1, 0), Field("é", 0, 0, 25, -1, -1, 1)]
    expected = P.msg(b"T", struct.pack("!h", 2) + b"".join(
        P.cstr(f.name) + struct.pack("!ihihih", f.table_oid, f.column, f.type_oid, f.typlen, f.typmod, f.format)
        for f in fields))
    assert P.row_description(fields) == P.row_description(list(fields)) == expected
    for tag in ("SELECT 1", "UPDATE 3", "COMMIT"):
        assert P.command_complete(tag) == P.msg(b"C", P.cstr(tag))
    for status in "ITE":
        assert P.ready(status) == P.msg(b"Z", status.encode())


def test_bind_parse_execute_and_describe_are_read_as_before():
    def reference_bind(body):
        r = P.Reader(body)
        portal, stmt = r.cstring(), r.cstring()
        formats = r.int16_list()
        n = r.int16()
        if n < 0:
            raise P.ProtocolError("negative parameter count")
        values = []
        for _ in range(n):
            size = r.int32()
            values.append(None if size == -1 else r.bytes_(size))
        return portal, stmt, formats, values, r.int16_list()

    good = (b"p\0s\0" + struct.pack("!hhh", 2, 0, 1) + struct.pack("!h", 3) + struct.pack("!i", 2) + b"ab"
            + struct.pack("!i", -1) + struct.pack("!i", 0) + struct.pack("!hh", 1, 1))
    assert P.parse_bind(good) == reference_bind(good)
    rng = random.Random(5)
    for _ in range(3000):  # truncated and corrupted: the same answer or the same error
        body = bytearray(good[:rng.randint(0, len(good))])
        if body and rng.random() < 0.5:
            body[rng.randrange(len(body))] = rng.randrange(256)
        body = bytes(body)
        try:
            expected = reference_bind(body)
        except P.ProtocolError as exc:
            with pytest.raises(P.ProtocolError, match=re.escape(str(exc))):
                P.parse_bind(body)
        else:
            assert P.parse_bind(body) == expected
    parse = b"s\0SELECT $1\0" + struct.pack("!hii", 2, 23, 0)
    assert P.parse_parse(parse) == ("s", "SELECT $1", [23, 0])
    with pytest.raises(P.ProtocolError, match="message too short"):
        P.parse_parse(parse[:-1])
    assert P.parse_execute(b"p\0" + struct.pack("!i", 5)) == ("p", 5)
    assert P.parse_target(b"Sname\0") == (b"S", "name")
    with pytest.raises(P.ProtocolError):
        P.parse_target(b"")


# -- through serve ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    with Engine(max_connections=60) as engine:
        srv = Server(engine, port=0).start()
        yield srv
        srv.stop()


def test_extended_writes_one_round_trip_fewer_answer_as_dsql(server):
    """A write with parameters goes with its BEGIN / SET LOCAL / SAVEPOINT in one round trip (pipeline mode):
    conflicts, the lock probe's snapshot answer, errors and a failing BEGIN answer as before."""
    with psycopg.connect(server.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE hp_acct (id int PRIMARY KEY, balance int)")
        c.execute("INSERT INTO hp_acct VALUES (1, 100), (2, 100)")
        assert c.execute("UPDATE hp_acct SET balance = balance + %s WHERE id = %s", (1, 1)).rowcount == 1
    a, b = psycopg.connect(server.dsn), psycopg.connect(server.dsn)
    assert a.execute("UPDATE hp_acct SET balance = balance - %s WHERE id = %s", (10, 1)).rowcount == 1
    # b meets a's open write: it does not wait, its UPDATE answers from its snapshot, its COMMIT loses
    assert b.execute("UPDATE hp_acct SET balance = balance + %s WHERE id = %s", (10, 1)).rowcount == 1
    a.commit()
    with pytest.raises(psycopg.errors.SerializationFailure, match="OC000"):
        b.commit()
    # PostgreSQL's error for the write itself, inside a transaction: the transaction is aborted (25P02 next)
    with pytest.raises(psycopg.errors.UniqueViolation):
        a.execute("INSERT INTO hp_acct VALUES (%s, %s)", (2, 0))
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        a.execute("UPDATE hp_acct SET balance = %s WHERE id = %s", (0, 2))
    a.rollback()
    assert a.execute("SELECT balance FROM hp_acct WHERE id = %s", (1,)).fetchone() == (91,)
    a.rollback()
    # the client's own BEGIN goes to PostgreSQL with the first statement, in the same round trip
    with psycopg.connect(server.dsn, autocommit=True) as c:
        c.execute("BEGIN READ ONLY")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.execute("UPDATE hp_acct SET balance = %s WHERE id = %s", (5, 2))
        c.execute("ROLLBACK")
        assert c.execute("SELECT balance FROM hp_acct WHERE id = %s", (2,)).fetchone() == (100,)
    a.close()
    b.close()


def test_pipelined_and_big_messages_arrive_whole(server):
    """Several messages in one packet, and one message over many packets (a 300 KB statement)."""
    big = "SELECT length('" + "x" * 300_000 + "')"
    with psycopg.connect(server.dsn, autocommit=True) as c:
        assert c.execute(big).fetchone() == (300_000,)
        with c.pipeline():
            curs = [c.execute("SELECT %s::int * 2", (i,)) for i in range(50)]
        assert [cur.fetchone()[0] for cur in curs] == [i * 2 for i in range(50)]
        assert c.execute("SELECT 1; SELECT 2").fetchone() == (1,)


def test_a_client_that_vanishes_mid_message_is_dropped(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    params = b"user\0admin\0database\0postgres\0\0"
    s.sendall(struct.pack("!ii", 8 + len(params), P.PROTOCOL_3) + params)
    buf = b""
    while b"Z\x00\x00\x00\x05I" not in buf:
        chunk = s.recv(4096)
        assert chunk, buf
        buf += chunk
    s.sendall(b"Q" + struct.pack("!i", 100_000) + b"SELECT")  # declares 100 kB, sends 6 bytes
    s.close()
    done = threading.Event()

    def still_serving():
        with psycopg.connect(server.dsn, autocommit=True) as c:
            assert c.execute("SELECT 7").fetchone() == (7,)
        done.set()

    t = threading.Thread(target=still_serving)
    t.start()
    t.join(30)
    assert done.is_set()


def test_a_big_message_over_tls_arrives_whole(tmp_path):
    """Over TLS the socket takes no MSG_WAITALL: the big message is read in pieces."""
    from dsql_audit.serve import self_signed_context

    with Engine(max_connections=20) as engine:
        srv = Server(engine, port=0, tls=self_signed_context(str(tmp_path))).start()
        try:
            with psycopg.connect(srv.dsn, autocommit=True) as c:
                assert c.execute("SELECT length('" + "y" * 250_000 + "')").fetchone() == (250_000,)
                assert c.execute("SELECT %s::text", ("z" * 100_000,)).fetchone() == ("z" * 100_000,)
        finally:
            srv.stop()
