"""Bad input never crashes the scan or loses data: every problem is reported with its file (and line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dsql_audit.config import Config
from dsql_audit.scan import scan


def _scan(*paths, **kw):
    return scan([str(p) for p in paths], config=Config(), jobs=1, **kw)


def test_binary_non_utf8_empty_files_and_the_scan_goes_on(tmp_path):
    (tmp_path / "a_binary.sql").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "b_latin1.sql").write_bytes("-- caf\xe9\nCREATE TABLE caf\xe9 (id serial PRIMARY KEY);\n".encode("latin-1"))
    (tmp_path / "c_empty.sql").write_bytes(b"")
    (tmp_path / "d_only_comments.sql").write_text("-- nothing here\n/* nor here */\n")
    (tmp_path / "e_good.sql").write_text("TRUNCATE t;\n")
    (tmp_path / "f_unterminated.sql").write_text("SELECT 'oops;\n")
    r = _scan(tmp_path)
    errors = {(Path(e.path).name, e.line): e.message for e in r.errors}
    assert ("a_binary.sql", 1) in errors and "binary" in errors[("a_binary.sql", 1)]
    assert ("b_latin1.sql", 1) in errors and "UTF-8" in errors[("b_latin1.sql", 1)]
    assert any(name == "f_unterminated.sql" for name, _ in errors)
    found = {(Path(f.path).name, f.line, f.name) for f in r.findings}
    assert ("b_latin1.sql", 2, "sequence") in found  # the undecodable file is still scanned
    assert ("e_good.sql", 1, "truncate") in found
    assert ("f_unterminated.sql", 1, "parse-error") in found
    assert r.inputs == 6


def test_symlink_loops_and_dangling_links(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "x.sql").write_text("TRUNCATE t;\n")
    os.symlink(d, d / "loop")
    os.symlink(tmp_path, d / "up")
    os.symlink(tmp_path / "nowhere.sql", d / "dangling.sql")
    r = _scan(tmp_path)
    assert [(Path(f.path).name, f.name) for f in r.findings] == [("x.sql", "truncate")]
    assert any("dangling" in e.message for e in r.errors)


def test_cli_reports_input_problems_and_exit_codes(tmp_path):
    (tmp_path / "bin.sql").write_bytes(b"\x00\x00\x00PK\x03\x04")
    res = subprocess.run([sys.executable, "-m", "dsql_audit", "scan", str(tmp_path), "-f", "json"],
                         capture_output=True, text=True)
    data = json.loads(res.stdout)
    assert res.returncode == 0 and data["errors"][0]["path"].endswith("bin.sql")
    # a binary file named on the command line is unreadable input
    res = subprocess.run([sys.executable, "-m", "dsql_audit", "scan", str(tmp_path / "bin.sql")],
                         capture_output=True, text=True)
    assert res.returncode in (0, 2)


def test_huge_dump_streams_in_flat_memory(tmp_path):
    """A 100 MB+ pg_dump with big COPY blocks: scanned fast, memory does not grow with the file."""
    path = tmp_path / "huge.sql"
    row = "1\tsome text value that is long enough to matter\t2024-01-01 00:00:00+00\t{\"k\": 1}\n"
    block = row * 200_000  # ~15 MB of data per table
    with open(path, "w") as fh:
        fh.write("-- Dumped by pg_dump version 16.4\nSET statement_timeout = 0;\n")
        for i in range(7):
            fh.write(f"CREATE TABLE public.t{i} (id integer NOT NULL, v text, at timestamptz, j jsonb);\n")
            fh.write(f"COPY public.t{i} (id, v, at, j) FROM stdin;\n")
            fh.write(block)
            fh.write("\\.\n\n")
    assert path.stat().st_size > 100_000_000
    code = (
        "import resource, sys, json\n"
        "from dsql_audit.scan import scan\n"
        "r = scan([sys.argv[1]], jobs=1)\n"
        # VmHWM, not ru_maxrss: the latter keeps the forking pytest process's high-water mark across exec
        "hwm = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
        "print(json.dumps({'rss_kb': hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " 'units': r.units, 'names': sorted({f.name for f in r.findings})}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=600)
    info = json.loads(out.stdout)
    assert info["units"] == 15  # SET + 7 CREATE TABLE + 7 COPY; the 1.4M data lines are skipped
    assert "unbounded-write" in info["names"]  # 200,000-row COPY blocks exceed the row limit
    assert info["rss_kb"] < 250_000, info  # ~100 MB of input, never held


def test_statement_too_big_to_parse_is_reported_not_parsed(monkeypatch):
    import dsql_audit.facts as facts_mod
    from dsql_audit.scan import scan_sql

    monkeypatch.setattr(facts_mod, "MAX_PARSE_CHARS", 1000)
    fs = scan_sql("INSERT INTO t VALUES " + ",".join(["(1)"] * 500) + ";\nTRUNCATE t;\n").findings
    assert [(f.name, f.line) for f in fs] == [("parse-error", 1), ("truncate", 2)]
    assert "too large" in fs[0].message


def test_a_byte_order_mark_is_not_part_of_the_first_statement(tmp_path):
    """Windows editors start UTF-8 files with EF BB BF; the first statement is judged like any other."""
    (tmp_path / "bom.sql").write_bytes(b"\xef\xbb\xbfTRUNCATE t;\nCREATE TABLE a (id int PRIMARY KEY);\n")
    (tmp_path / "bom_app.py").write_bytes(b"\xef\xbb\xbfimport psycopg\nconn = psycopg.connect('')\n"
                                          b"conn.execute('TRUNCATE t')\n")
    r = _scan(tmp_path)
    found = {(Path(f.path).name, f.line, f.column, f.name) for f in r.findings}
    assert ("bom.sql", 1, 1, "truncate") in found and not r.errors
    assert not [f for f in r.findings if f.name == "parse-error"]
    assert any(name == "bom_app.py" and rule == "truncate" for name, _, _, rule in found)


def test_begin_atomic_bodies_are_one_statement(tmp_path):
    """SQL-standard function bodies (PostgreSQL 14+) hold semicolons; psql reads BEGIN ATOMIC … END whole."""
    from dsql_audit.sqltext import split_text

    text = ("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 "
            "END; END;\nCREATE OR REPLACE PROCEDURE p() LANGUAGE sql\nbegin atomic\n  insert into t values (1);\n"
            "end;\nTRUNCATE t;\n")
    parts = [(s.line, s.text.split()[0]) for s in split_text(text)]
    assert parts == [(1, "CREATE"), (2, "CREATE"), (6, "TRUNCATE")]
    (tmp_path / "atomic.sql").write_text(text)
    r = _scan(tmp_path)
    assert not [f for f in r.findings if f.name == "parse-error"]
    assert [f.line for f in r.findings if f.name == "truncate"] == [6]
