"""Bad input, and never destroying the user's files (issue 20).

Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or input error, 3 internal error, 130
interrupted. A problem with one file under a scanned folder is an entry in the report's errors and the scan
goes on; a path given directly that cannot be read is exit 2. Every output is written atomically and is never
one of the inputs. Each test here runs the real command line (a subprocess, or click's CliRunner)."""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=None, stdin=None, timeout=300, prefix=()):
    return subprocess.run([*prefix, sys.executable, "-m", "dsql_audit", *map(str, args)], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def no_traceback(r):
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr[-3000:]
    assert r.returncode != 3, r.stderr[-3000:]


# --- 1. no traceback on hostile names, captures, config and outputs -------------------------------------------


def test_a_file_name_that_is_not_utf8_is_scanned_and_reported_in_every_format(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    with open(os.fsencode(d) + b"/bad\xff\xfename.sql", "wb") as fh:
        fh.write(b"TRUNCATE t;\n")
    os.mkdir(os.fsencode(d) + b"/sub\xe9")
    with open(os.fsencode(d) + b"/sub\xe9/ok.sql", "wb") as fh:
        fh.write(b"SELECT 1;\n")
    for fmt in ("console", "json", "sarif", "junit", "markdown", "html"):
        r = run("scan", d, "-f", fmt, "--no-color")
        no_traceback(r)
        assert r.returncode == 1, (fmt, r.stderr)  # the TRUNCATE was found: the scan went on
        assert "bad\\xff\\xfename.sql" in r.stdout.replace("\\\\", "\\"), fmt  # JSON doubles the backslash
    data = json.loads(run("scan", d, "-f", "json").stdout)
    assert [Path(f["path"]).name for f in data["findings"]] == ["bad\\xff\\xfename.sql"]
    named = {Path(e["path"]).name: e["message"] for e in data["errors"]}
    assert "not valid UTF-8" in named["bad\\xff\\xfename.sql"] and "ok.sql" in named  # both named, both read
    sarif = json.loads(run("scan", d, "-f", "sarif").stdout)
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in sarif["runs"][0]["results"]]
    assert any("bad" in u for u in uris)
    # written to a file too (the report's bytes are UTF-8)
    r = run("scan", d, "-f", "json", "-o", tmp_path / "r.json")
    assert r.returncode == 1 and json.loads((tmp_path / "r.json").read_bytes().decode("utf-8"))["findings"]


def _truncated_gz(path: Path) -> None:
    rnd = random.Random(5)
    text = "".join(f"2026-01-05 10:00:{i % 60:02d}.000 UTC [42] LOG:  statement: SELECT {rnd.random()};\n"
                   for i in range(4000))
    data = gzip.compress(text.encode())
    path.write_bytes(data[:len(data) // 2])


def test_a_truncated_gz_capture_is_an_input_error_naming_the_file(tmp_path):
    from dsql_audit.replay.captures import CaptureReadError, read_capture

    cut = tmp_path / "postgresql.log.gz"
    _truncated_gz(cut)
    with pytest.raises(CaptureReadError, match="postgresql.log.gz: the gzip file is cut short"):
        list(read_capture(cut))
    r = run("replay", cut, "-f", "json", "-q")
    no_traceback(r)
    assert r.returncode == 2 and "postgresql.log.gz" in r.stderr and "cut short" in r.stderr
    data = json.loads(r.stdout)
    assert any(e["path"].endswith("postgresql.log.gz") and "cut short" in e["message"] for e in data["errors"])


def test_pg_stat_statements_calls_1e400_is_a_named_row_error(tmp_path):
    from dsql_audit.replay.captures import CaptureError, Event, read_capture

    csv = tmp_path / "pgss.csv"
    csv.write_text("query,calls,total_exec_time\nSELECT 1,1e400,5\nTRUNCATE t,3,1e999\nSELECT 2,-1,1\n")
    items = list(read_capture(csv))
    errors = [(i.line, i.message) for i in items if isinstance(i, CaptureError)]
    assert [line for line, _ in errors] == [2, 4] and "1e400" in errors[0][1]
    (ev,) = [i for i in items if isinstance(i, Event)]
    assert ev.calls == 3 and ev.total_ms is None  # an infinite figure is no figure
    r = run("replay", csv, "-f", "json", "-q")
    no_traceback(r)
    data = json.loads(r.stdout)
    assert {(e["line"], e["path"].endswith("pgss.csv")) for e in data["errors"]} == {(2, True), (4, True)}
    only = tmp_path / "only.csv"
    only.write_text("query,calls\nSELECT 1,1e400\n")
    r = run("replay", only, "-q")
    no_traceback(r)
    assert r.returncode == 2 and "only.csv:2" in r.stderr and "1e400" in r.stderr


@pytest.mark.parametrize("setting, says", [
    ('framework = "nope"', "framework 'nope' is not one of"),
    ('fail-on = "sometimes"', "fail-on must be"),
    ('format = "pdf"', "format must be one of"),
    ('max-file-size = "lots"', "max-file-size: not a size"),
])
def test_a_bad_config_value_is_a_usage_error_naming_the_file(tmp_path, setting, says):
    (tmp_path / "pyproject.toml").write_text(f"[tool.dsql-audit]\n{setting}\n")
    (tmp_path / "a.sql").write_text("SELECT 1;\n")
    r = run("scan", "a.sql", cwd=tmp_path)
    no_traceback(r)
    assert r.returncode == 2 and "pyproject.toml" in r.stderr and says in r.stderr, r.stderr


def _cannot_write_dir(tmp_path) -> tuple[Path, tuple]:
    """A directory this test's subprocess cannot write in, and the command prefix that makes it so: a mode
    0555 directory, and for root (who ignores modes) the same run without CAP_DAC_OVERRIDE."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() != 0:
        return ro, ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only directory cannot be made")
    return ro, (setpriv, "--bounding-set=-dac_override,-dac_read_search", "--")


@pytest.mark.parametrize("command", ["scan", "replay", "report", "convert", "catalog"])
def test_output_that_cannot_be_written_is_exit_2_naming_it(tmp_path, command):
    src = tmp_path / "in.sql"
    src.write_text("TRUNCATE t;\n")
    saved = tmp_path / "saved.json"
    saved.write_text(run("scan", src, "-f", "json").stdout)
    ro, prefix = _cannot_write_dir(tmp_path)
    targets = [tmp_path / "missing" / "r.json", ro / "r.json", Path("/proc/dsql-audit-test.json"),
               Path("/proc/version"), Path("/dev/full")]
    for target in targets:
        if command == "convert":
            if target.suffix != ".json" or target.parent.name == "missing":
                continue  # convert writes a directory (creating missing parents)
            target = target.with_suffix("")
            args = ["convert", src, "-o", target, "--no-check", "-q"]
        elif command == "catalog":  # refused before any connection is tried
            if target == Path("/dev/full"):
                continue  # a full device is found full when written, after the (here impossible) read
            args = ["catalog", "postgresql://127.0.0.1:1/nowhere", "-o", target]
        else:
            args = [command, saved if command == "report" else src, "-o", target]
        r = run(*args, prefix=prefix if target.parent == ro else ())
        no_traceback(r)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert str(target) in r.stderr or (target.parent == ro and target.name in r.stderr), (args, r.stderr)
        assert not list(ro.iterdir())


# --- 2. encodings, NUL bytes, size limit ----------------------------------------------------------------------


@pytest.mark.parametrize("codec, bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
                                        ("utf-32-le", b"\xff\xfe\x00\x00")])
def test_utf16_and_utf32_files_with_a_bom_are_decoded(tmp_path, codec, bom):
    (tmp_path / "m.sql").write_bytes(bom + "-- caf\u00e9\nTRUNCATE t;\n".encode(codec))
    (tmp_path / "app.py").write_bytes(bom + "import psycopg\ncur.execute('TRUNCATE t')\n".encode(codec))
    dump = "-- PostgreSQL database dump\nSET statement_timeout = 0;\nCREATE TABLE a (id serial PRIMARY KEY);\n"
    (tmp_path / "dump.sql").write_bytes(bom + dump.encode(codec))  # PowerShell `pg_dump > dump.sql`
    r = run("scan", tmp_path, "-f", "json")
    no_traceback(r)
    data = json.loads(r.stdout)
    assert data["errors"] == []
    found = {(Path(f["path"]).name, f["line"], f["name"]) for f in data["findings"]}
    assert {("m.sql", 2, "truncate"), ("app.py", 2, "truncate"), ("dump.sql", 3, "sequence")} <= found, found
    assert {Path(k).name: v for k, v in data["summary"]["frameworks"].items()}.get("dump.sql") == "pg_dump"


def test_files_with_nul_bytes_are_input_errors_naming_them(tmp_path):
    d = tmp_path / "repo"
    d.mkdir()
    (d / "nul.sql").write_bytes(b"TRUNCATE a;\x00\n")
    (d / "nul.py").write_bytes(b"import psycopg\x00\ncur.execute('TRUNCATE b')\n")
    late = b"SELECT 1;\n" * 2000 + b"TRUNCATE c;\x00\n"  # past the first 8 KB
    (d / "late.sql").write_bytes(late)
    (d / "late.py").write_bytes(b"import psycopg\n" + b"x = 1\n" * 3000 + b"\x00\n")
    (d / "good.sql").write_text("TRUNCATE d;\n")
    r = run("scan", d, "-f", "json")
    no_traceback(r)
    assert r.returncode == 1  # a folder: the scan goes on, the good file's finding decides
    data = json.loads(r.stdout)
    errors = {Path(e["path"]).name: e for e in data["errors"]}
    assert set(errors) == {"nul.sql", "nul.py", "late.sql", "late.py"}, errors
    assert all("NUL" in e["message"] for e in errors.values())
    assert errors["late.sql"]["line"] == 2001 and errors["late.py"]["line"] == 3002
    truncated = {Path(f["path"]).name for f in data["findings"] if f["name"] == "truncate"}
    assert truncated == {"good.sql", "late.sql"}  # late.sql was read past its NUL, the others were not read
    console = run("scan", d, "--no-color").stderr  # input errors go to stderr (issue 21)
    assert "nul.py" in console and "NUL" in console
    # named directly, a file that could not be read at all is an input error
    for name in ("nul.sql", "nul.py"):
        r = run("scan", d / name)
        no_traceback(r)
        assert r.returncode == 2 and name in r.stderr and "NUL" in r.stderr, (name, r.stderr)
    r = run("scan", "-", stdin="SELECT 1;\x00\x01\x02")
    assert r.returncode == 2 and "<stdin>" in r.stderr


def test_a_file_skipped_for_size_is_listed_with_the_option_that_reads_it(tmp_path):
    d = tmp_path / "repo"
    d.mkdir()
    big = d / "generated.py"
    big.write_text("import psycopg\ncur.execute('TRUNCATE t')\n" + "x = 1\n" * 400)
    r = run("scan", d, "-f", "json", "--max-file-size", "1kB")
    no_traceback(r)
    (e,) = json.loads(r.stdout)["errors"]
    assert e["path"].endswith("generated.py") and "--max-file-size 1MB" in e["message"] and "1 kB limit" in e["message"]
    assert r.returncode == 0  # under a folder: listed, the scan goes on
    console = run("scan", d, "--max-file-size", "1kB", "--no-color").stderr  # input errors: stderr (issue 21)
    assert "generated.py" in console and "--max-file-size" in console
    for args in (["--max-file-size", "0"], ["--max-file-size", "1MB"]):
        data = json.loads(run("scan", d, "-f", "json", *args).stdout)
        assert not data["errors"] and [f["name"] for f in data["findings"]] == ["truncate"], args
    data = json.loads(run("scan", big, "-f", "json", "--max-file-size", "1kB").stdout)  # named: always read
    assert not data["errors"] and [f["name"] for f in data["findings"]] == ["truncate"]
    (tmp_path / "dsql-audit.toml").write_text('max-file-size = "1kB"\n')
    data = json.loads(run("scan", d, "-f", "json", cwd=tmp_path).stdout)
    assert data["errors"] and "skipped" in data["errors"][0]["message"]
    r = run("scan", d, "--max-file-size", "huge")
    assert r.returncode == 2 and "--max-file-size" in r.stderr


# --- 3. an output is never an input; outputs are written atomically ------------------------------------------


def test_output_naming_an_input_is_refused_for_every_command(tmp_path):
    src = tmp_path / "in.sql"
    src.write_text("TRUNCATE t;\n")
    saved = tmp_path / "saved.json"
    saved.write_text(run("scan", src, "-f", "json").stdout)
    os.symlink(src, tmp_path / "link.sql")
    os.link(src, tmp_path / "hard.sql")
    os.link(saved, tmp_path / "hard.json")
    before = (src.read_bytes(), saved.read_bytes())
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "V1__a.sql").write_text("TRUNCATE t;\n")
    cases = [
        ["scan", src, "-o", src], ["scan", src, "-o", tmp_path / "link.sql"],
        ["scan", src, "-o", tmp_path / "hard.sql"],
        ["scan", tmp_path / "link.sql", "-o", src], ["scan", folder, "-o", folder / "V1__a.sql"],
        ["scan", src, "--write-baseline", src],
        ["replay", src, "-o", src], ["replay", src, "-o", tmp_path / "hard.sql"],
        ["replay", tmp_path / "other.log", "--schema", folder, "-o", folder / "V1__a.sql"],
        ["report", saved, "-o", saved], ["report", saved, "-o", tmp_path / "hard.json"],
        ["report", saved, "--baseline", src, "-o", tmp_path / "link.sql"],
    ]
    (tmp_path / "other.log").write_text("2026-01-05 10:00:00 UTC [1] LOG:  statement: SELECT 1\n")
    for args in cases:
        r = run(*args)
        no_traceback(r)
        assert r.returncode == 2 and ("is one of the inputs" in r.stderr or "inside the input folder" in r.stderr), \
            (args, r.returncode, r.stderr)
    assert (src.read_bytes(), saved.read_bytes()) == before
    assert (folder / "V1__a.sql").read_text() == "TRUNCATE t;\n"
    assert (tmp_path / "link.sql").is_symlink()


def test_a_report_written_into_the_scanned_folder_is_replaced_on_the_next_run(tmp_path):
    """`scan . -f json -o report.json` twice: the first run's report is not an input the second destroys."""
    (tmp_path / "V1__a.sql").write_text("TRUNCATE t;\n")
    for _ in range(2):
        r = run("scan", ".", "--write-baseline", "base.json", "-q", "-o", "r.txt", cwd=tmp_path)
        assert r.returncode == 0 and (tmp_path / "r.txt").is_file(), r.stderr
    for fmt, name in (("sarif", "r.sarif.json"), ("junit", "r.xml"), ("json", "r.json")):
        for _ in range(2):
            r = run("scan", ".", "-f", fmt, "-o", name, cwd=tmp_path)
            no_traceback(r)
            assert r.returncode == 1, (fmt, r.stderr)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["summary"]["inputs"] == 4  # V1__a.sql, base.json, r.sarif.json, r.xml: not r.json itself
    # a .json in the folder that dsql-audit did not write is an input, and is refused as an output
    (tmp_path / "package.json").write_text('{"name": "app"}\n')
    r = run("scan", ".", "-f", "json", "-o", "package.json", cwd=tmp_path)
    assert r.returncode == 2 and "one of the inputs" in r.stderr
    assert (tmp_path / "package.json").read_text() == '{"name": "app"}\n'


def test_outputs_are_written_atomically_keeping_permissions(tmp_path, monkeypatch):
    from dsql_audit import output

    src = tmp_path / "in.sql"
    src.write_text("TRUNCATE t;\n")
    target = tmp_path / "r.json"
    target.write_text("previous\n")
    target.chmod(0o640)
    os.symlink(target, tmp_path / "via-link.json")
    r = run("scan", src, "-f", "json", "-o", tmp_path / "via-link.json")
    assert r.returncode == 1
    assert (tmp_path / "via-link.json").is_symlink()  # written through the link, which stays
    assert json.loads(target.read_text())["findings"] and stat.S_IMODE(target.stat().st_mode) == 0o640

    # a write that fails half way leaves the previous file, and no temporary file behind
    target.write_text("previous\n")
    with pytest.raises(KeyboardInterrupt):
        with output.atomic_open(target) as fh:
            fh.write("half a rep")
            raise KeyboardInterrupt
    assert target.read_text() == "previous\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "in.sql", "r.json", "via-link.json"]

    # fsync'ed before the rename, and the rename is the last step
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    output.write_text(target, "new\n")
    assert calls[:2] == ["fsync", "replace"] and target.read_text() == "new\n"

    # a device is written in place (never replaced by a file), a full one is a clear error
    output.write_text("/dev/null", "x")
    assert Path("/dev/null").is_char_device()
    with pytest.raises(output.OutputError, match="/dev/full: No space left"):
        output.write_text("/dev/full", "x" * 100_000)


def test_every_output_file_goes_through_the_atomic_writer():
    """No module writes a file directly: everything dsql-audit writes for the user goes through
    dsql_audit.output (serve's --report and the engine's own files are the serve/engine owners'; the rule
    catalog's cache, toml_cache.py, writes its own temporary file and renames it)."""
    allowed = {"output.py", "toml_cache.py"}
    pattern = re.compile(r"(?<!\bout)\.write_text\(|(?<!\bout)\.write_bytes\(|open\([^)]*['\"](?:w|wb|a|ab|x)['\"]")
    offenders = []
    for path in (ROOT / "dsql_audit").rglob("*.py"):
        rel = path.relative_to(ROOT / "dsql_audit")
        if rel.name in allowed or rel.parts[0] in ("serve", "engine"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line.split("#")[0]):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, offenders


# --- 4. convert's output directory ------------------------------------------------------------------------


def test_convert_refuses_a_directory_with_foreign_files_unless_forced(tmp_path):
    src = tmp_path / "schema_in.sql"
    src.write_text("CREATE TABLE a (id serial PRIMARY KEY);\n")
    out = tmp_path / "out"
    out.mkdir()
    for i in range(7):
        (out / f"notes{i}.txt").write_text("precious\n")
    r = run("convert", src, "-o", out, "--no-check", "-q")
    no_traceback(r)
    assert r.returncode == 2 and "notes0.txt" in r.stderr and "and 2 more" in r.stderr and "--force" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"notes{i}.txt" for i in range(7)]
    r = run("convert", src, "-o", out, "--no-check", "-q", "--force")
    assert r.returncode == 0, r.stderr
    assert (out / "schema.sql").is_file() and (out / "notes0.txt").read_text() == "precious\n"
    manifest = json.loads((out / ".dsql-audit-convert.json").read_text())
    assert manifest["files"] == sorted(["PLAN.md", "apply.py", "apply.sh", "plan.json", "schema.sql"])
    assert os.access(out / "apply.sh", os.X_OK)
    # its own files, named in the manifest, are replaced without --force
    clean = tmp_path / "clean"
    assert run("convert", src, "-o", clean, "--no-check", "-q").returncode == 0
    assert run("convert", src, "-o", clean, "--no-check", "-q").returncode == 0
    (clean / "mine.txt").write_text("x")
    assert run("convert", src, "-o", clean, "--no-check", "-q").returncode == 2


def test_convert_never_writes_over_its_input_even_with_force(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    (db / "schema.sql").write_text("CREATE TABLE a (id int PRIMARY KEY);\n")
    original = (db / "schema.sql").read_bytes()
    elsewhere = tmp_path / "out"
    elsewhere.mkdir()
    os.link(db / "schema.sql", elsewhere / "schema.sql")  # an output name that is the input, hard-linked
    cases = [[db / "schema.sql", "-o", db], [db, "-o", db], [db, "-o", db / "converted"],
             [db / "schema.sql", "-o", tmp_path], [db / "schema.sql", "-o", elsewhere], [db, "-o", elsewhere]]
    for args in cases:
        for force in ([], ["--force"]):
            r = run("convert", *args, *force, "--no-check", "-q")
            no_traceback(r)
            assert r.returncode == 2 and "input" in r.stderr, (args, force, r.stderr)
    assert (db / "schema.sql").read_bytes() == original and sorted(p.name for p in db.iterdir()) == ["schema.sql"]


# --- 5. Ctrl-C ---------------------------------------------------------------------------------------------


def _big_tree(root: Path, files: int = 3000) -> None:
    for d in range(files // 100):
        folder = root / f"d{d:02d}"
        folder.mkdir(parents=True)
        for i in range(100):
            (folder / f"V{i:03d}__m.sql").write_text(
                "".join(f"CREATE TABLE t{d}_{i}_{k} (id serial PRIMARY KEY, v text REFERENCES x (id));\n"
                        f"INSERT INTO t{d}_{i}_{k} VALUES (1, 'a');\n" for k in range(40)))


@pytest.mark.parametrize("whole_group", [False, True], ids=["kill-main", "terminal-ctrl-c"])
def test_ctrl_c_exits_130_saying_where_it_stopped(tmp_path, whole_group):
    tree = tmp_path / "tree"
    _big_tree(tree)
    out = tmp_path / "r.json"
    out.write_text("previous report\n")
    p = subprocess.Popen([sys.executable, "-m", "dsql_audit", "scan", str(tree), "-f", "json", "-o", str(out),
                          "-j", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    time.sleep(4)
    assert p.poll() is None, "the scan ended before it could be interrupted: make the tree bigger"
    if whole_group:  # as a terminal's Ctrl-C does: the scan and its worker processes
        os.killpg(p.pid, signal.SIGINT)
    else:
        p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err[-3000:]
    assert re.search(r"dsql-audit: interrupted while scanning \S+\.sql \(\d+ of 3000 files\)", err), err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert out.read_text() == "previous report\n"  # the previous report is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "tree"]  # no temporary file left


def test_ctrl_c_in_any_command_exits_130(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from dsql_audit import cli
    from dsql_audit.report import loaded

    def interrupted(paths):
        raise KeyboardInterrupt

    saved = tmp_path / "s.json"
    saved.write_text("{}")
    monkeypatch.setattr(loaded, "load_results", interrupted)
    res = CliRunner().invoke(cli.main, ["report", str(saved)])
    assert res.exit_code == 130
    assert f"interrupted while reading {saved}" in (res.stderr if hasattr(res, "stderr") else res.output)


# --- 6. fuzz targets for names, encodings and one-line input ------------------------------------------------


def test_fuzz_targets_cover_names_encodings_and_one_line_input():
    from tests.fuzz_targets import _ENCODINGS, TARGETS, run_one, seeds

    assert {"filename", "encoding", "oneline"} <= set(TARGETS)
    for name in seeds("filename") + [bytes(range(1, 256)), b"\xff" * 300, b"."]:
        run_one("filename", name)
    sql = b"CREATE TABLE a (id serial PRIMARY KEY);\nTRUNCATE a;\n"
    for n in range(len(_ENCODINGS)):  # the data's length picks the encoding: every one once
        data = sql + b" " * ((n - len(sql)) % len(_ENCODINGS))
        assert _ENCODINGS[len(data) % len(_ENCODINGS)] == _ENCODINGS[n]
        run_one("encoding", data)
    run_one("oneline", b"SELECT 1; " * 20_000)
    run_one("oneline", b"CREATE TABLE t (id int); INSERT INTO t VALUES ('a;b'); -- x\n" * 500)
