"""`catalog` on every other PostgreSQL major version this machine has (Debian's /usr/lib/postgresql/N, or the
bin folders listed in DSQL_AUDIT_PG_BINS, separated by ':'): the fixture shop schema gives the same object
findings there as on the embedded PostgreSQL 16. The queries with a per-version form (PostgreSQL 12 has no
tgparentid, …) are exercised where such a server exists; without one the test skips and says so."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.conftest import FIXTURES


def _bin_dirs() -> list:
    listed = [Path(p) for p in os.environ.get("DSQL_AUDIT_PG_BINS", "").split(":") if p]
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin")) if Path("/usr/lib/postgresql").exists() else []
    return [d for d in listed + debian if (d / "initdb").exists() and (d / "pg_ctl").exists()]


BINS = _bin_dirs()
OBJECT_RULES = {"trigger", "procedural-function", "custom-type", "materialized-view", "partitioned-table",
                "foreign-key", "index-method", "row-level-security", "unlogged-table", "sequence", "index-definition",
                "collation", "unsupported-type", "missing-primary-key"}


def _as_user():
    """initdb and postgres refuse to run as root: run them as an unprivileged user then."""
    if os.geteuid() != 0:
        return None, None
    for name in ("embedded_postgres", "postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return (lambda: (os.setgid(entry.pw_gid), os.setuid(entry.pw_uid))), entry
    pytest.skip("running as root with no unprivileged user to run PostgreSQL as")


def _findings(uri: str) -> set:
    from dsql_audit.live import read

    result = read(uri)
    assert not result.errors, result.errors
    return {(f.name, f.object) for f in result.findings if f.name in OBJECT_RULES}


@pytest.fixture(scope="module")
def on_16(tmp_path_factory):
    from dsql_audit.resources import pgserver

    srv = pgserver().get_server(str(tmp_path_factory.mktemp("pg16")), postgres_version=16)
    host = srv.get_uri().split("host=", 1)[1]
    uri = f"postgresql://postgres@/postgres?host={host}"
    with psycopg.connect(uri, autocommit=True) as c:
        c.execute((FIXTURES / "convert" / "shop_dump.sql").read_text())
    yield _findings(uri)
    srv.cleanup()


@pytest.mark.skipif(not BINS, reason="no other PostgreSQL server binaries here (/usr/lib/postgresql/N/bin or "
                                     "DSQL_AUDIT_PG_BINS)")
@pytest.mark.parametrize("bin_dir", BINS, ids=lambda d: f"pg{d.parent.name}")
def test_same_findings_on_another_major_version(on_16, bin_dir, tmp_path):
    demote, entry = _as_user()
    root = tmp_path / "srv"
    root.mkdir()
    if entry is not None:
        for path in (tmp_path, root):
            path.chmod(0o755)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, sock = root / "data", root
    run = dict(preexec_fn=demote, capture_output=True, text=True, timeout=120)
    r = subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], **run)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                        f"-k {sock} -c listen_addresses=''", "start"], **run)
    assert r.returncode == 0, r.stderr + (root / "log").read_text()
    try:
        uri = f"postgresql://postgres@/postgres?host={sock}"
        with psycopg.connect(uri, autocommit=True) as c:
            version = c.info.server_version
            c.execute((FIXTURES / "convert" / "shop_dump.sql").read_text())
        found = _findings(uri)
        assert found == on_16, (version, sorted(found ^ on_16)[:10])
    finally:
        subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], **run)
