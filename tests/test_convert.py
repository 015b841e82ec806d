"""`dsql-audit convert`: the converted schema loads into the engine with nothing rejected, the plan holds what
moved, output is byte-identical run to run, the same INSERTs give the same rows in the original (a real
PostgreSQL) and the converted schema (the engine), and apply.py / apply.sh apply it over the wire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import FIXTURES, SHARED

SHOP = FIXTURES / "convert" / "shop_dump.sql"
EXT = FIXTURES / "convert" / "extensions.sql"
SCHEMAS = sorted((SHARED / "corpus" / "schemas").glob("*.sql"))


def _convert(tmp_path, *args, name="out"):
    out = tmp_path / name
    r = subprocess.run([sys.executable, "-m", "dsql_audit.cli", "convert", *map(str, args), "-o", str(out), "-q"],
                       capture_output=True, text=True, timeout=600)
    return r, out


def _plan(out):
    return json.loads((out / "plan.json").read_text())


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    r, out = _convert(tmp_path_factory.mktemp("shop"), SHOP)
    assert r.returncode == 0, r.stderr + r.stdout
    return out


def test_shop_dump_converts_to_dsql_ddl_that_loads(shop):
    doc = _plan(shop)
    assert doc["check"]["rejected"] == 0 and doc["check"]["loaded"] == doc["summary"]["steps"] > 10
    sql = (shop / "schema.sql").read_text()
    assert "CONCURRENTLY" not in sql and "USING hash" not in sql and "USING gin" not in sql
    indexes = [line for line in sql.splitlines() if line.startswith(("CREATE INDEX ASYNC", "CREATE UNIQUE INDEX ASYNC"))]
    assert len(indexes) == 5  # six in the dump; the gin one dropped into the plan
    assert "CREATE SEQUENCE public.customers_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 65536;" \
        in sql  # pg_dump's AS integer and CACHE 1 made legal
    assert "CREATE DOMAIN public.order_status AS text CHECK (VALUE IN ('new', 'paid', 'shipped'))" in sql
    # pg_dump's ALTER TABLE … ADD PRIMARY KEY / FOREIGN KEY folded into the CREATE TABLE, in dependency order
    assert "CONSTRAINT customers_pkey PRIMARY KEY (id)" in sql
    assert not [line for line in sql.splitlines() if line.startswith("ALTER TABLE")]
    assert sql.index("CREATE TABLE public.customers") < sql.index("REFERENCES public.customers")
    assert "PARTITION" not in sql and "UNLOGGED" not in sql and "fillfactor" not in sql
    assert "CREATE TABLE public.customer_totals (customer_id integer, orders bigint, last_order timestamp with " \
           "time zone)" in sql  # the materialized view, typed by the engine
    kinds = {p["kind"]: p for p in doc["plan"]}
    assert {"trigger", "policy", "materialized-view", "index", "partitioning"} <= set(kinds)
    assert kinds["partitioning"]["details"]["partitions"] == ["public.events_2026"]
    does = {p["object"]: p["details"]["does"] for p in doc["plan"] if p["kind"] == "trigger"}
    assert does == {"public.customers.customers_updated_at": "stamps NEW.updated_at with the current time on every "
                    "write (an updated_at/created_at column)",
                    "public.orders.orders_count": "keeps a counter in public.customers.order_count up to date"}


def test_output_is_byte_identical_run_to_run(shop, tmp_path):
    r, again = _convert(tmp_path, SHOP)
    assert r.returncode == 0
    for name in ("schema.sql", "apply.sh", "apply.py", "PLAN.md", "plan.json"):
        assert (again / name).read_bytes() == (shop / name).read_bytes(), name


ROWS = """INSERT INTO public.customers (email, name, created_at, updated_at) VALUES
  ('ana@example.com', 'Ana', '2026-01-02 03:04:05+00', '2026-01-02 03:04:05+00'),
  ('bo@example.com', 'Bo', '2026-02-03 04:05:06+00', '2026-02-03 04:05:06+00');
INSERT INTO public.orders (customer_id, status, placed_at, note) VALUES
  (1, 'paid', '2026-03-01 10:00:00+00', 'gift'), (2, 'new', '2026-03-02 11:30:00.25+00', NULL);
INSERT INTO public.order_lines VALUES (1, 1, 'SKU-1', 2, 9.99), (1, 2, 'SKU-2', 1, 120.50), (2, 1, 'SKU-1', 5, 9.99);
INSERT INTO billing.invoices (id, order_id, amount, issued_on, paid, details) VALUES
  ('7b1f3a52-6a1e-4ac0-9d39-0c7a3a2c1e01', 1, 140.48, '2026-03-01', true, '{"vat": 0.2, "lines": [1, 2]}');
INSERT INTO public.events (id, happened_at, kind) VALUES (1, '2026-05-05 05:05:05+00', 'signup');
INSERT INTO public.sessions VALUES ('tok-1', 1, '2026-12-31 23:59:59+00');
UPDATE public.orders SET status = 'shipped' WHERE id = 1;
"""
TABLES = ["public.customers", "public.orders", "public.order_lines", "billing.invoices", "public.events",
          "public.sessions"]


def test_same_inserts_give_the_same_rows(shop, tmp_path):
    """The original dump in a real PostgreSQL (triggers left out: they are behaviour the plan moves into the
    application) and the converted schema in the engine get the same statements: every table reads back the
    same values, with the same types (enums become text domains: both read as text)."""
    from dsql_audit.engine import Engine
    from dsql_audit.engine.script import load_sql_file
    from dsql_audit.sqltext import split_text

    original = "".join(st.text + ";\n" for st in split_text(SHOP.read_text())
                       if st.kind == "sql" and not st.text.startswith("CREATE TRIGGER"))
    statements = [st.text for st in split_text(ROWS) if st.kind == "sql"]

    def read(conn):
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}

    with Engine(data_dir=str(tmp_path / "pg")) as pg:  # plain PostgreSQL 16 through a plain connection
        with psycopg.connect(pg.uri, autocommit=True) as c:
            c.execute(original)
            for st in statements:
                c.execute(st)
            before = read(c)
    with Engine(job_latency=0.0) as engine:
        ok, refused = load_sql_file(engine, str(shop / "schema.sql"), lambda line: None)
        assert not refused and ok > 10
        s = engine.session()
        for st in statements:
            s.execute(st)
        with psycopg.connect(engine.uri, autocommit=True) as c:
            after = read(c)
    assert after == before
    assert before["public.customers"][0][0] == 1 and len(before["public.order_lines"]) == 3


def test_migration_folder_converts_to_its_final_state(tmp_path):
    r, out = _convert(tmp_path, FIXTURES / "migrations" / "flyway")
    assert r.returncode == 0, r.stderr
    sql = (out / "schema.sql").read_text()
    assert "serial" not in sql and "GENERATED BY DEFAULT AS IDENTITY(CACHE 65536)" in sql
    assert sum(line.startswith("CREATE INDEX ASYNC") for line in sql.splitlines()) == 3
    assert _plan(out)["check"]["rejected"] == 0
    assert _plan(out)["summary"]["skipped"] == {"data (INSERT)": 1}  # the seed rows are data, not schema


def test_extension_types_are_mapped_or_moved_with_their_casts(tmp_path):
    r, out = _convert(tmp_path, EXT)
    assert r.returncode == 0, r.stderr
    doc = _plan(out)
    casts = {p["object"]: p["details"].get("cast") for p in doc["plan"] if p["kind"] == "column"}
    assert casts["public.accounts.ip"] == "ip::text" and casts["public.accounts.balance"] == "balance::numeric(19,4)"
    assert casts["public.accounts.tags"] == "to_jsonb(tags)" and casts["public.accounts.search"] is None  # dropped
    sql = (out / "schema.sql").read_text()
    assert "gen_random_uuid()" in sql and "uuid_generate_v4" not in sql and "citext" not in sql
    assert "to_jsonb(CAST('{}' AS text[]))" in sql  # the array default follows its column to jsonb
    moved = {(p["kind"], p["object"]) for p in doc["plan"]}
    assert {("extension", "citext"), ("extension", "uuid-ossp"), ("index", "public.accounts.accounts_search_idx"),
            ("type", "public.address")} <= moved


def test_an_older_profile_moves_foreign_keys_into_the_plan(tmp_path):
    r, out = _convert(tmp_path, SHOP, "--profile", "2026-05-01")
    assert r.returncode == 0, r.stderr
    doc = _plan(out)
    sql = (out / "schema.sql").read_text()
    assert "REFERENCES" not in sql and doc["check"]["rejected"] == 0
    fks = {p["object"]: p["details"] for p in doc["plan"] if p["kind"] == "foreign-key"}
    cascade = fks["public.order_lines.order_lines_order_id_fkey"]
    assert cascade["check"] == "SELECT 1 FROM public.orders WHERE id = $1 FOR UPDATE"  # no FOR KEY SHARE then
    assert cascade["on_delete"].startswith("DELETE FROM public.order_lines WHERE order_id = $1")
    assert "CREATE INDEX ASYNC sessions_customer_id_idx ON public.sessions (customer_id)" in sql  # FK columns indexed, named as PostgreSQL would


def test_keys_uuid_and_cache_1(tmp_path):
    src = tmp_path / "in.sql"
    src.write_text("CREATE TABLE a (id serial PRIMARY KEY, v text);\n"
                   "CREATE TABLE b (id bigserial PRIMARY KEY, a_id integer REFERENCES a (id));\n"
                   "CREATE SEQUENCE counter_seq;\n")
    r, out = _convert(tmp_path, src, "--keys", "uuid", "--cache", "1")
    assert r.returncode == 0, r.stderr
    sql = (out / "schema.sql").read_text()
    assert "id uuid PRIMARY KEY DEFAULT gen_random_uuid()" in sql and "a_id uuid" in sql
    assert "CREATE SEQUENCE public.counter_seq CACHE 1" in sql
    bad, _ = _convert(tmp_path, src, "--cache", "100", name="bad")
    assert bad.returncode == 2 and "65536" in bad.stderr


def test_apply_scripts_apply_the_schema_over_the_wire(shop, tmp_path):
    """apply.py (psycopg) and apply.sh (psql) against `dsql-audit serve`: every step, waiting for each index
    job; a second apply.py run resumes (everything is already there)."""
    from dsql_audit.engine import Engine
    from dsql_audit.resources import pg_tool
    from dsql_audit.serve import Server

    steps = _plan(shop)["summary"]["steps"]
    with Engine(job_latency=0.05) as engine:
        srv = Server(engine, port=0).start()
        try:
            r = subprocess.run([sys.executable, str(shop / "apply.py"), srv.dsn], capture_output=True, text=True,
                               timeout=300)
            with psycopg.connect(srv.dsn, autocommit=True) as c:
                seen = c.execute("SELECT * FROM sys.jobs").fetchall()
            assert r.returncode == 0, (r.stdout + r.stderr, seen)
            assert f"applied {steps} steps" in r.stdout
            with psycopg.connect(srv.dsn, autocommit=True) as c:
                jobs = c.execute("SELECT status, count(*) FROM sys.jobs GROUP BY 1").fetchall()
                assert jobs == [("completed", 5)]
                assert c.execute("SELECT count(*) FROM billing.invoices").fetchone() == (0,)
            again = subprocess.run([sys.executable, str(shop / "apply.py"), srv.dsn], capture_output=True,
                                   text=True, timeout=300)
            assert again.returncode == 0 and "already there" in again.stdout
        finally:
            srv.stop()
    psql = pg_tool("psql")
    if psql is None:
        pytest.skip("no psql for apply.sh")
    with Engine(job_latency=0.05) as engine:
        srv = Server(engine, port=0).start()
        try:
            env = dict(os.environ, PATH=f"{Path(psql).parent}:{os.environ.get('PATH', '')}")
            r = subprocess.run(["bash", str(shop / "apply.sh"), srv.dsn], capture_output=True, text=True,
                               timeout=300, env=env)
            assert r.returncode == 0, r.stdout + r.stderr
            assert f"applied {steps} steps" in r.stdout
            with psycopg.connect(srv.dsn, autocommit=True) as c:
                assert c.execute("SELECT count(*) FROM sys.jobs WHERE status = 'completed'").fetchone() == (5,)
            again = subprocess.run(["bash", str(shop / "apply.sh"), srv.dsn], capture_output=True, text=True,
                                   timeout=300, env=env)  # resumable: what is there already is skipped
            assert again.returncode == 0 and f"applied {steps} steps" in again.stdout, again.stdout + again.stderr
        finally:
            srv.stop()


def test_usage_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dsql_audit.cli", "convert", "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "INPUT" in r.stderr
    r, _ = _convert(tmp_path, tmp_path / "missing.sql")
    assert r.returncode == 2 and "no such input" in r.stderr


@pytest.mark.skipif(not SCHEMAS, reason="../shared/corpus/schemas is not present (it is beside the repository in CI)")
@pytest.mark.parametrize("schema", SCHEMAS, ids=[p.stem for p in SCHEMAS])
def test_every_corpus_schema_converts_and_loads_with_nothing_rejected(schema, tmp_path):
    from dsql_audit.convert import convert, files

    conv = convert([str(schema)])
    files.write(conv, str(tmp_path))
    check = files.verify(conv, str(tmp_path))
    assert check["rejected"] == 0, check["rejections"][:5]
    assert check["loaded"] == len(conv.steps) > 0


def test_from_dsn_reads_a_live_database(tmp_path):
    """--from-dsn: pg_dump --schema-only of a running PostgreSQL (reads only), converted like a dump."""
    from dsql_audit.engine import Engine

    with Engine(data_dir=str(tmp_path / "source")) as source:
        with psycopg.connect(source.uri, autocommit=True) as c:
            c.execute("CREATE TABLE items (id serial PRIMARY KEY, tags text[], price money)")
            c.execute("CREATE INDEX items_tags ON items USING gin (tags)")
        dsn = source.uri.replace("admin@", "admin:hunter2@")
        r, out = _convert(tmp_path, "--from-dsn", dsn)
        assert r.returncode == 0, r.stderr
        with psycopg.connect(source.uri, autocommit=True) as c:
            assert c.execute("SELECT count(*) FROM pg_class WHERE relname = 'items'").fetchone() == (1,)
    sql = (out / "schema.sql").read_text()
    assert "CREATE TABLE public.items (id integer NOT NULL DEFAULT nextval(" in sql and "tags jsonb" in sql
    assert "price numeric(19, 4)" in sql and "USING gin" not in sql
    doc = _plan(out)
    assert doc["check"]["rejected"] == 0 and "hunter2" not in json.dumps(doc) + sql + r.stderr + r.stdout


APP = '''"""Orders service."""
from __future__ import annotations


def place_order(conn, customer):
    with conn.transaction():
        conn.execute("INSERT INTO orders (customer) VALUES (%s)", (customer,))


def rename(session, user, name):
    user.name = name
    session.commit()


def read_only(conn):
    return conn.execute("SELECT 1").fetchone()


class Repo:
    async def save(self, conn, row):
        async with conn.transaction():
            await conn.execute("INSERT INTO t VALUES ($1)", row)
'''


def test_python_retry_codemod_shows_a_diff_then_writes(tmp_path):
    src = tmp_path / "app.py"
    src.write_text(APP)
    cmd = [sys.executable, "-m", "dsql_audit.cli", "convert", "--python-retry", str(src)]
    diff = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert diff.returncode == 0 and src.read_text() == APP  # a diff only
    assert diff.stdout.count("+@retry_on_conflict") == 2 and diff.stdout.count("+    @retry_on_conflict") == 1
    assert "3 function(s)" in diff.stderr and "unsafe" in diff.stderr
    assert "+++ b/" + str(tmp_path / "dsql_retry.py") in diff.stdout  # the helper is shown as a new file
    assert not (tmp_path / "dsql_retry.py").exists()
    subprocess.run(cmd + ["--write"], check=True, capture_output=True, timeout=60)
    text = src.read_text()
    assert text.index("from __future__") < text.index("from dsql_retry import retry_on_conflict")
    assert "dsql_audit" not in text and (tmp_path / "dsql_retry.py").is_file()
    assert "@retry_on_conflict\ndef place_order" in text and "def read_only" in text
    assert "@retry_on_conflict\ndef read_only" not in text
    compile(text, str(src), "exec")
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert again.stdout == "" and "0 function(s)" in again.stderr  # idempotent


def test_converted_code_runs_without_dsql_audit_installed(tmp_path):
    """The codemod's output imports nothing of dsql-audit: run in an interpreter that cannot import it
    (-I -S: no site-packages), a converted package's function that loses a conflict (40001) once is run
    again and returns."""
    pkg = tmp_path / "shop"
    (pkg / "orders").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "orders" / "__init__.py").write_text("")
    (pkg / "orders" / "place.py").write_text(
        "class Conflict(Exception):\n    sqlstate = '40001'\n\n\n"
        "class Conn:\n    def __init__(self):\n        self.commits = 0\n\n"
        "    def commit(self):\n        self.commits += 1\n        if self.commits == 1:\n"
        "            raise Conflict('could not serialize access')\n\n\n"
        "def place_order(conn):\n    conn.commit()\n    return conn.commits\n")
    r = subprocess.run([sys.executable, "-m", "dsql_audit", "convert", "--python-retry", str(pkg), "--write"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "from shop.dsql_retry import retry_on_conflict" in (pkg / "orders" / "place.py").read_text()
    assert (pkg / "dsql_retry.py").is_file() and not (pkg / "orders" / "dsql_retry.py").exists()
    probe = ("import importlib.util, sys\n"
             "assert importlib.util.find_spec('dsql_audit') is None, 'dsql_audit importable'\n"
             "from shop.orders.place import Conn, place_order\n"
             "print(place_order(Conn()))\n")
    ran = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
                          + probe], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "2"  # lost once, run again, committed
    # a file of the helper's name that dsql-audit did not write is never replaced
    (pkg / "dsql_retry.py").write_text("# mine\n")
    (pkg / "orders" / "more.py").write_text("def f(conn):\n    conn.commit()\n")
    r = subprocess.run([sys.executable, "-m", "dsql_audit", "convert", "--python-retry", str(pkg), "--write"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "did not write" in r.stderr
    assert (pkg / "dsql_retry.py").read_text() == "# mine\n" and "retry" not in (pkg / "orders" / "more.py").read_text()


def test_retry_on_conflict_reruns_a_transaction_that_lost_at_commit():
    """A real OCC loss through `dsql-audit serve`: the decorated transaction updates a row, another
    connection updates the same row and commits first; our COMMIT gets 40001 and the decorator runs the
    transaction again, which commits."""
    from dsql_audit.engine import Engine
    from dsql_audit.runtime import is_conflict, retry_on_conflict
    from dsql_audit.serve import Server

    with Engine() as engine:
        srv = Server(engine, port=0).start()
        try:
            with psycopg.connect(srv.dsn, autocommit=True) as setup:
                setup.execute("CREATE TABLE acct (id int PRIMARY KEY, n int)")
                setup.execute("INSERT INTO acct VALUES (1, 0)")
            attempts, errors = [], []
            with psycopg.connect(srv.dsn, autocommit=True) as other, psycopg.connect(srv.dsn) as conn:

                @retry_on_conflict(base_delay=0.01)
                def bump():
                    attempts.append(1)
                    try:
                        with conn.transaction():
                            conn.execute("UPDATE acct SET n = n + 1 WHERE id = 1")
                            if len(attempts) == 1:  # a competitor commits the same row first
                                other.execute("UPDATE acct SET n = n + 10 WHERE id = 1")
                    except psycopg.Error as exc:
                        errors.append(exc)
                        raise

                bump()
                conn.commit()
                assert other.execute("SELECT n FROM acct WHERE id = 1").fetchone() == (11,)
            assert len(attempts) == 2 and len(errors) == 1 and is_conflict(errors[0])
            assert isinstance(errors[0], psycopg.errors.SerializationFailure)
        finally:
            srv.stop()


def test_truncate_becomes_a_batched_delete_in_the_plan(tmp_path):
    from dsql_audit.convert import convert

    src = tmp_path / "m.sql"
    src.write_text("CREATE TABLE public.jobs (id bigint PRIMARY KEY, state text);\nTRUNCATE public.jobs;\n")
    conv = convert([str(src)])
    (item,) = [p for p in conv.plan if p.kind == "truncate"]
    batch = item.details["statement"].split("  --")[0]
    assert batch == "DELETE FROM public.jobs WHERE (id) IN (SELECT id FROM public.jobs LIMIT 3000)"
    from dsql_audit.engine import Engine

    with Engine() as engine:  # the suggested batch runs on DSQL and stays within its row limit
        s = engine.session()
        s.execute("CREATE TABLE public.jobs (id bigint PRIMARY KEY, state text)")
        for start in range(0, 7000, 1000):
            s.execute(f"INSERT INTO public.jobs SELECT g, 'x' FROM generate_series({start + 1}, {start + 1000}) g")
        deleted = [s.execute(batch).command_tag for _ in range(4)]
    assert deleted == ["DELETE 3000", "DELETE 3000", "DELETE 1000", "DELETE 0"]


ROUTINES = FIXTURES / "convert" / "routines_dump.sql"


def test_the_routines_fixture_is_valid_postgresql():
    """The fixture is what a real PostgreSQL accepts (so what convert fixes is a DSQL difference, not a typo)."""
    from dsql_audit.engine import Engine

    with Engine() as engine, psycopg.connect(engine.uri, autocommit=True) as c:
        c.execute(ROUTINES.read_text())
        assert c.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'app'::regnamespace").fetchone()[0] == 6


def test_functions_and_views_resolve_their_names_and_load_in_dependency_order(tmp_path):
    r, out = _convert(tmp_path, ROUTINES)
    assert r.returncode == 0, r.stderr + r.stdout
    plan = _plan(out)
    assert plan["check"]["rejected"] == 0 and plan["refused_after_conversion"] == []
    sql = (out / "schema.sql").read_text()
    # pg_dump's order was current_user_name before current_user_id: DSQL needs the callee first
    assert sql.index("FUNCTION app.current_user_id()") < sql.index("FUNCTION app.current_user_name()")
    assert sql.index("CREATE TABLE app.users") < sql.index("FUNCTION app.current_user_name()")
    assert "FROM app.users WHERE id = app.current_user_id()" in sql  # the body, qualified
    assert "RETURNS SETOF app.users" in sql
    assert 'COLLATE "C"' in sql and "caseless" not in sql  # DSQL has only C
    assert "kind char DEFAULT" in sql and '"char"' not in sql  # DSQL: "datatype char not supported"
    assert sql.index("VIEW app.json") < sql.index("VIEW app.whoami")
    assert "app.current_user_name() AS who" in sql
    assert "AS pg_catalog.json) AS doc" in sql  # the built-in type, not the view named json
    moved = {(p["kind"], p["object"]): p["why"] for p in plan["plan"] if p["action"] == "moved"}
    assert "app.pair, a composite type" in moved[("function", "app.point_of")]
    assert "user-defined aggregate" in moved[("function", "app.all_names")]
    # what loads in the converted schema behaves: the engine runs the view and the functions
    from dsql_audit.engine import Engine
    from dsql_audit.engine.script import load_sql_file

    with Engine() as engine:
        ok, refused = load_sql_file(engine, str(out / "schema.sql"), lambda line: None)
        assert ok > 0 and refused == []
        s = engine.session()
        s.execute("INSERT INTO app.users VALUES (1, 'ada', 'u')")
        assert s.execute("SELECT who FROM app.whoami").rows == [("ada",)]
        assert s.execute("SELECT id FROM app.users_named('ada')").rows == [(1,)]
        s.close()


def test_keys_dsql_cannot_hold_and_unnamed_indexes(tmp_path):
    """jsonb cannot be a key or an index column (DSQL-FACTS); numeric only from 2026-08-25 — a numeric(p,0)
    key becomes bigint on older profiles. Unnamed indexes get PostgreSQL's name, so apply can find them."""
    src = tmp_path / "keys.sql"
    src.write_text("CREATE TABLE public.t (id numeric(10,0) PRIMARY KEY, tags text[] UNIQUE, meta jsonb, "
                   "price numeric, n int);\nCREATE INDEX t_meta ON public.t (meta);\n"
                   "CREATE INDEX ON public.t (n);\nCREATE INDEX t_price ON public.t (price);\n")
    r, out = _convert(tmp_path, src)
    assert r.returncode == 0, r.stderr
    sql = (out / "schema.sql").read_text()
    dropped = {p["object"]: p["why"] for p in _plan(out)["plan"] if p["action"] == "dropped"}
    assert "tags jsonb," in sql and "UNIQUE" not in sql and "t_meta" not in sql
    assert "jsonb column (meta)" in dropped["public.t.t_meta"] and "jsonb column (tags)" in dropped["public.t.tags"]
    assert "CREATE INDEX ASYNC t_n_idx ON public.t (n)" in sql and "t_price ON public.t (price)" in sql
    r, old = _convert(tmp_path, src, "--profile", "2026-05-01", name="old")
    sql = (old / "schema.sql").read_text()
    assert "id bigint PRIMARY KEY" in sql and "t_price" not in sql  # numeric: not a key/index before 2026-08-25
    assert "tags text UNIQUE" in sql  # no jsonb columns yet: the JSON is text, and text can be a key


def test_an_older_profile_checks_references_by_primary_key_and_says_on_update(tmp_path):
    src = tmp_path / "fk.sql"
    src.write_text("CREATE TABLE public.a (id bigint PRIMARY KEY, code text UNIQUE);\n"
                   "CREATE TABLE public.b (id bigint PRIMARY KEY, a_code text REFERENCES public.a(code) "
                   "ON UPDATE CASCADE ON DELETE CASCADE, a_id bigint REFERENCES public.a(id));\n"
                   "CREATE INDEX b_a_id ON public.b (a_id);\n"
                   "CREATE FUNCTION public.unused() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; "
                   "END $$;\n")
    r, out = _convert(tmp_path, src, "--profile", "2026-05-01")
    assert r.returncode == 0, r.stderr
    plan = _plan(out)["plan"]
    fks = {p["object"]: p["details"] for p in plan if p["kind"] == "foreign-key"}
    by_code = fks["public.b.b_a_code_fkey"]
    # row locks need the full primary key on this profile (DSQL601): find the key, then lock it
    assert by_code["check"].startswith("SELECT id FROM public.a WHERE code = $1; then SELECT 1 FROM public.a "
                                       "WHERE id = $1 FOR UPDATE")
    assert by_code["on_update"].startswith("UPDATE public.b SET a_code = $1 WHERE a_code = $2")
    sql = (out / "schema.sql").read_text()
    assert "b_a_code_idx ON public.b (a_code)" in sql and sql.count("(a_id)") == 1  # no duplicate index
    assert any(p["object"] == "public.unused" and "no trigger" in p["why"] for p in plan)


def test_python_retry_reads_any_encoding_and_names_what_it_cannot(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "lat.py").write_bytes("# -*- coding: latin-1 -*-\ndef pay(conn):\n    s = 'caf\xe9'\n"
                                 "    conn.commit()\n".encode("latin-1"))
    (src / "blob.py").write_bytes(bytes(range(256)))
    r = subprocess.run([sys.executable, "-m", "dsql_audit.cli", "convert", "--python-retry", str(src), "--write"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "blob.py: binary file" in r.stderr and "Traceback" not in r.stderr
    data = (src / "lat.py").read_bytes()
    assert b"@retry_on_conflict" in data and "caf\xe9".encode("latin-1") in data  # kept in its own encoding


def test_convert_usage_errors_exit_2(tmp_path):
    for args in (["x.sql", "-o", str(tmp_path / "o"), "--profile", "garbage"],
                 ["x.sql", "-o", str(tmp_path / "o"), "--write"]):
        r = subprocess.run([sys.executable, "-m", "dsql_audit.cli", "convert", *args], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE TABLE public.a (id int PRIMARY KEY);\nCREAT TABLE oops;\n")
    r, out = _convert(tmp_path, bad, name="bad")
    assert r.returncode == 2  # written, but part of the input could not be read: said, and not exit 0
    assert "Not read" in (out / "PLAN.md").read_text() and "CREATE TABLE public.a" in (out / "schema.sql").read_text()


def test_truncate_cascade_and_pg_dump_serials_with_keys_uuid(tmp_path):
    src = tmp_path / "d.sql"
    src.write_text("CREATE TABLE public.p (id integer NOT NULL);\n"
                   "CREATE SEQUENCE public.p_id_seq AS integer START WITH 1 INCREMENT BY 1 CACHE 1;\n"
                   "ALTER SEQUENCE public.p_id_seq OWNED BY public.p.id;\n"
                   "ALTER TABLE ONLY public.p ALTER COLUMN id SET DEFAULT nextval('public.p_id_seq'::regclass);\n"
                   "ALTER TABLE ONLY public.p ADD CONSTRAINT p_pkey PRIMARY KEY (id);\n"
                   "CREATE TABLE public.c (id bigint PRIMARY KEY, p_id integer REFERENCES public.p(id));\n"
                   "TRUNCATE public.p CASCADE;\n")
    r, out = _convert(tmp_path, src, "--keys", "uuid")
    assert r.returncode == 0, r.stderr
    sql = (out / "schema.sql").read_text()
    assert "id uuid NOT NULL DEFAULT gen_random_uuid()" in sql and "p_id uuid" in sql and "SEQUENCE" not in sql
    truncs = [p for p in _plan(out)["plan"] if p["kind"] == "truncate"]
    assert [p["object"] for p in truncs] == ["public.c", "public.p"]  # the referencing table first
    assert "CASCADE reaches it" in truncs[0]["why"]


def test_enum_steps_name_their_source_and_short_cycles_are_planned(tmp_path):
    src = tmp_path / "e.sql"
    src.write_text("CREATE TYPE public.mood AS ENUM ('a', 'b');\nALTER TYPE public.mood ADD VALUE 'c';\n"
                   "CREATE SEQUENCE public.s MINVALUE 1 MAXVALUE 1000 CYCLE CACHE 5;\n")
    r, out = _convert(tmp_path, src, "--no-check")
    assert r.returncode == 0, r.stderr
    sql = (out / "schema.sql").read_text()
    assert f"-- step 1 domain: public.mood ({src}:1)" in sql and "('a', 'b', 'c')" in sql
    (item,) = [p for p in _plan(out)["plan"] if p["kind"] == "sequence"]
    assert "1,000 values with CACHE 65536" in item["why"] and "--cache 1" in item["todo"]


def test_keys_follow_the_profile_and_a_partial_conversion_is_not_clean(tmp_path):
    """Issue 21: before 2026-02-13 (no sequences) serial and identity keys become uuid (the referencing column
    follows) instead of identity columns the check then drops; an object left out of schema.sql is named and
    the exit status says so unless --allow-partial."""
    src = tmp_path / "s.sql"
    src.write_text("CREATE TABLE users (id serial PRIMARY KEY, email text);\n"
                   "CREATE TABLE orders (id bigserial PRIMARY KEY, user_id int REFERENCES users(id));\n"
                   "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n int);\n")
    r, out = _convert(tmp_path, src, "--profile", "2026-01-01")
    assert r.returncode == 0, r.stderr
    schema = (out / "schema.sql").read_text()
    for table in ("users", "orders", "events"):
        assert f"CREATE TABLE public.{table} (id uuid" in schema, schema
    assert "user_id uuid" in schema and "IDENTITY" not in schema
    partial = tmp_path / "p.sql"
    partial.write_text("CREATE TABLE a (id uuid PRIMARY KEY, v text);\n"
                       "CREATE VIEW v1 AS SELECT id, v FROM a TABLESAMPLE SYSTEM (10);\n")
    r, _ = _convert(tmp_path, partial, name="p")
    assert r.returncode == 1 and "left out of schema.sql" in r.stderr and "view public.v1" in r.stderr
    r, _ = _convert(tmp_path, partial, "--allow-partial", name="q")
    assert r.returncode == 0


def test_what_django_renders_converts_to_a_schema_that_loads(tmp_path):
    """Seen on pretix (a real Django app, 431 migrations): an inline REFERENCES … DEFERRABLE INITIALLY DEFERRED
    left `INITIALLY DEFERRED` on the column, a NULL column made NOT NULL became `NULL NOT NULL`, a unique_together
    rendered twice was added twice, and a squashed migration ran beside the migrations it replaces — 358 objects
    left out of schema.sql. Each is a statement PostgreSQL and DSQL refuse; the conversion must not make them."""
    from dsql_audit.convert import convert
    from dsql_audit.convert import files

    def converted(path):
        conv = convert([str(path)])
        out = tmp_path / f"out_{path.name}"
        files.write(conv, str(out))
        files.verify(conv, str(out))  # schema.sql loaded into a fresh engine, as convert --check does
        assert conv.check["rejected"] == 0 and not conv.refused, (conv.check, conv.refused)
        return conv, (out / "schema.sql").read_text()

    sql = tmp_path / "django.sql"
    sql.write_text(
        "CREATE TABLE org (id bigint PRIMARY KEY);\n"
        "CREATE TABLE event (id bigint PRIMARY KEY, slug varchar(50) NOT NULL, plugins text NULL, "
        "org_id bigint NOT NULL REFERENCES org (id) DEFERRABLE INITIALLY DEFERRED);\n"
        "ALTER TABLE event ALTER COLUMN plugins SET NOT NULL;\n"
        "ALTER TABLE event ADD CONSTRAINT event_org_slug_uniq UNIQUE (org_id, slug);\n"
        "ALTER TABLE event ADD CONSTRAINT event_org_slug_uniq UNIQUE (org_id, slug);\n")
    conv, schema = converted(sql)
    assert "NULL NOT NULL" not in schema and "bigint NOT NULL INITIALLY" not in schema
    assert schema.count("event_org_slug_uniq") == 1
    assert "REFERENCES org (id) DEFERRABLE INITIALLY DEFERRED" in schema  # the key keeps what it said

    app = tmp_path / "shop"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "migrations" / "__init__.py").write_text("")
    head = "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n"
    create = ("        migrations.CreateModel(name='Item', fields=[('id', models.BigAutoField(primary_key=True)), "
              "('name', models.CharField(max_length=20))]),\n")
    (app / "migrations" / "0001_initial.py").write_text(
        head + "    initial = True\n    dependencies = []\n    operations = [\n" + create + "    ]\n")
    (app / "migrations" / "0002_item_note.py").write_text(
        head + "    dependencies = [('shop', '0001_initial')]\n    operations = [\n"
        "        migrations.AddField(model_name='item', name='note', field=models.TextField(null=True)),\n    ]\n")
    (app / "migrations" / "0001_squashed_0002.py").write_text(
        head + "    initial = True\n    replaces = [('shop', '0001_initial'), ('shop', '0002_item_note')]\n"
        "    dependencies = []\n    operations = [\n" + create +
        "        migrations.AddField(model_name='item', name='note', field=models.TextField(null=True)),\n    ]\n")
    conv, schema = converted(app)
    assert schema.count("CREATE TABLE") == 1 and "note text" in schema  # once, by the squash, with its column


def test_an_alembic_history_converts_to_its_head(tmp_path):
    """Seen on Airflow 3.3 (126 revisions): downgrade() bodies were read as part of the deploy (a dropped
    table came back), and a key moved to another column kept the old one too — schema.sql held 2 statements of
    1,049 read. The head's schema is what upgrade() builds: downgrades left out, a dropped column's key gone,
    a key added later replacing the one before."""
    from dsql_audit.convert import convert
    from dsql_audit.convert import files

    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    head = "import sqlalchemy as sa\nfrom alembic import op\n\n"
    (versions / "0001_team.py").write_text(
        head + "revision = '0001'\ndown_revision = None\n\n\ndef upgrade():\n"
        "    op.create_table('team', sa.Column('id', sa.Integer(), primary_key=True),\n"
        "                    sa.Column('name', sa.String(50), nullable=False))\n"
        "    op.create_table('task_fail', sa.Column('id', sa.Integer(), primary_key=True))\n\n\n"
        "def downgrade():\n    op.drop_table('task_fail')\n    op.drop_table('team')\n")
    (versions / "0002_drop_task_fail.py").write_text(
        head + "revision = '0002'\ndown_revision = '0001'\n\n\ndef upgrade():\n    op.drop_table('task_fail')\n\n\n"
        "def downgrade():\n    op.create_table('task_fail', sa.Column('id', sa.Integer(), primary_key=True))\n")
    (versions / "0003_team_key.py").write_text(
        head + "revision = '0003'\ndown_revision = '0002'\n\n\ndef upgrade():\n"
        "    op.drop_column('team', 'id')\n    op.create_primary_key('team_pkey', 'team', ['name'])\n\n\n"
        "def downgrade():\n    op.add_column('team', sa.Column('id', sa.Integer()))\n")
    conv = convert([str(tmp_path / "migrations")])
    out = tmp_path / "out"
    files.write(conv, str(out))
    files.verify(conv, str(out))
    assert conv.check["rejected"] == 0 and not conv.refused, (conv.check, conv.refused)
    schema = (out / "schema.sql").read_text()
    assert "task_fail" not in schema  # dropped by 0002's upgrade; only its downgrade creates it again
    team = next(line for line in schema.splitlines() if line.startswith("CREATE TABLE public.team"))
    assert "PRIMARY KEY (name)" in team and "id" not in team.replace("GENERATED", "")
