"""How an engine starts: a new data directory copied from the cached output of initdb
(engine/initdb_cache.py), and `run` starting the user's command while the engine starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dsql_audit.engine import Engine, initdb_cache
from dsql_audit.engine.lifecycle import EngineLifecycle


def _system_id(engine: Engine) -> int:
    """initdb gives every cluster its own system identifier: a copy keeps its template's."""
    import psycopg

    with psycopg.connect(engine.internal_uri) as c:  # (the engine's own role: a client may not read it)
        return int(c.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0])


def _template(cache: Path) -> Path:
    [made] = [p for p in cache.iterdir() if p.name.startswith("initdb-pg16-")]
    return made


def test_a_new_data_directory_is_a_copy_of_the_cached_initdb(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("DSQL_AUDIT_CACHE_DIR", str(cache))
    with Engine() as first:  # initdb runs, and its output is kept before PostgreSQL starts on it
        made = _system_id(first)
        first.session().execute("CREATE TABLE only_in_first (id int)")
    template = _template(cache)
    assert (template / "PG_VERSION").read_text().strip() == "16"
    assert oct(template.stat().st_mode & 0o777) == "0o700"
    assert not (template / "postmaster.pid").exists()  # never run on
    with Engine() as second, Engine() as third:
        assert _system_id(second) == _system_id(third) == made  # copies
        # a copy is a new, bootstrapped cluster: the roles, sys, and nothing of another engine's data
        s = second.session()
        assert s.execute("SELECT to_regclass('only_in_first')").rows == [(None,)]
        assert s.execute("SELECT count(*) FROM sys.jobs").rows == [(0,)]
        assert s.execute("SELECT current_user").rows == [("admin",)]
    monkeypatch.setenv("DSQL_AUDIT_CACHE_DIR", "off")
    with Engine() as fresh:
        assert _system_id(fresh) != made  # initdb, not the copy


def test_a_copy_not_private_to_this_user_is_not_used(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("DSQL_AUDIT_CACHE_DIR", str(cache))
    with Engine() as first:
        made = _system_id(first)
    template = _template(cache)
    template.chmod(0o777)  # anyone could have changed what is in it
    with Engine() as second:
        assert _system_id(second) != made


def test_a_damaged_copy_is_dropped_and_initdb_runs(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("DSQL_AUDIT_CACHE_DIR", str(cache))
    with Engine() as first:
        made = _system_id(first)
    control = _template(cache) / "global" / "pg_control"
    control.write_bytes(b"\0" * 100)  # PostgreSQL refuses to start on it
    with Engine() as second:
        remade = _system_id(second)
        assert remade != made
        assert second.session().execute("SELECT 1").rows == [(1,)]
    with Engine() as third:  # the damaged copy was replaced by the new initdb's
        assert _system_id(third) == remade


# -- `run`: the command starts while the engine starts ---------------------------------------------------------


def _cli(args, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dsql_audit", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_run_starts_the_command_before_the_engine_is_ready_and_serves_its_first_connection(tmp_path):
    """The command connects at once; its connection waits in the listening socket's backlog until the engine
    serves, and its statements are judged as ever."""
    script = tmp_path / "early.py"
    script.write_text(
        "import os, time, psycopg\n"
        "t = time.monotonic()\n"
        "with psycopg.connect(autocommit=True) as c:\n"
        "    waited = time.monotonic() - t\n"
        "    c.execute('CREATE TABLE early (id int PRIMARY KEY)')\n"
        "    try:\n"
        "        c.execute('TRUNCATE early')\n"
        "    except psycopg.errors.FeatureNotSupported:\n"
        "        pass\n"
        "print('waited', round(waited, 3))\n")  # (how long the engine's start kept it waiting)
    out = tmp_path / "r.json"
    r = _cli(["run", "--fail-on", "never", "-f", "json", "-o", str(out), "--", sys.executable, str(script)],
             tmp_path)
    assert r.returncode == 0, r.stderr
    import json

    doc = json.loads(out.read_text())
    assert doc["run"]["exit_status"] == 0 and doc["run"]["statements"] >= 2
    assert any(f["name"] == "truncate" for f in doc["findings"])


def test_run_with_a_data_directory_in_use_stops_before_the_command_runs(tmp_path):
    data = tmp_path / "data"
    marker = tmp_path / "ran"
    with Engine(data_dir=str(data)):
        r = _cli(["run", "--data-dir", str(data), "--", sys.executable, "-c",
                  f"open({str(marker)!r}, 'w').close()"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert "in use by another dsql-audit engine" in r.stderr and "Traceback" not in r.stderr
    assert not marker.exists()  # the command never started


def test_run_ends_the_command_when_the_engine_cannot_start(tmp_path, monkeypatch):
    """The engine's start fails while the command runs: the command is ended (not left waiting on a server
    that will never answer) and the start's error is raised."""
    from dsql_audit.run.observe import observe

    real = EngineLifecycle.start

    def failing(self):
        real(self)
        time.sleep(0.5)  # the command is running by now
        raise RuntimeError("the embedded PostgreSQL could not start (test)")

    monkeypatch.setattr(EngineLifecycle, "start", failing)
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="could not start"):
        observe([sys.executable, "-c", f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
                 "time.sleep(120)"], workers=1, cwd=str(tmp_path))
    assert time.monotonic() - started < 60
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_cache_key_names_the_postgresql_build(tmp_path):
    """Another PostgreSQL build (another postgres program) is another cached copy."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d, body in ((a, b"one"), (b, b"two")):
        d.mkdir()
        (d / "postgres").write_bytes(body)
    assert initdb_cache._key(a) != initdb_cache._key(b)
    assert initdb_cache._key(a) == initdb_cache._key(a)



def test_a_temporary_engine_stops_postgresql_and_leaves_nothing(tmp_path):
    """A temporary data directory is removed at stop, so PostgreSQL stops without its shutdown checkpoint
    (immediate mode): the postmaster and its children are gone, and so is the directory."""
    import psutil

    engine = Engine(audit=True).start()  # (audit mode: 20,000 rows in one statement run, recorded)
    s = engine.session()
    s.execute("CREATE TABLE churn (id int PRIMARY KEY, v text)")
    s.execute("INSERT INTO churn SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g")
    data = Path(engine.data_dir)
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    children = [p.pid for p in psutil.Process(postmaster).children()]
    assert children
    engine.stop()
    assert not data.exists()
    for pid in [postmaster, *children]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_named_data_directory_keeps_what_was_committed(tmp_path):
    """A data directory the user named is stopped the ordinary way (its data written out) and serves again."""
    data = tmp_path / "kept"
    with Engine(data_dir=str(data)) as first:
        first.session().execute("CREATE TABLE kept (id int PRIMARY KEY)")
        first.session().execute("INSERT INTO kept VALUES (1), (2)")
    assert (data / "PG_VERSION").exists()
    with Engine(data_dir=str(data)) as again:
        assert again.session().execute("SELECT count(*) FROM kept").rows == [(2,)]
