"""Memory and denial of service (issue 20): a scan's memory grows with its input, not with the length of its
lines; a finding on a long line keeps an exact location and a bounded code frame; an unterminated quote is
reported without echoing the rest of the file; the worker processes die with their parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from dsql_audit.model import Finding
from dsql_audit.report import FORMATS, render
from dsql_audit.scan import PARALLEL_MIN_BYTES, scan, scan_sql
from dsql_audit.sqltext import ELLIPSIS, FRAME_WIDTH, frame, split_text

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS and prctl: Linux")

# a fresh interpreter runs the scan and reports the scan's peak RSS: getrusage(RUSAGE_CHILDREN) of a small
# parent is the largest of its waited-for children (a child of this big pytest process would inherit its
# high-water mark across exec); an address-space limit keeps a regression from taking the machine down
_MEASURE = textwrap.dedent("""
    import resource, subprocess, sys
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    rc = subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
""")


def _peak_rss_kb(path, out, timeout=60) -> tuple[int, int]:
    cmd = [sys.executable, "-c", _MEASURE, str(3 * 2**30), sys.executable, "-m", "dsql_audit", "scan", str(path),
           "-f", "json", "-o", str(out), "-q", "--fail-on", "never"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    rc, kb = done.stdout.split()
    return int(rc), int(kb)


@linux_only
def test_one_long_line_costs_no_more_memory_than_many_lines(tmp_path):
    # the case: 10,000 statements, each a finding, on one ~290 KB line used 2.8 GB (every finding's code
    # frame padded with a space per column before its statement: quadratic); one per line they use ~60 MB
    stmts = [f"CREATE TABLE t{i} (id int);" for i in range(10_000)]
    per_line, one_line = tmp_path / "per-line.sql", tmp_path / "one-line.sql"
    per_line.write_text("\n".join(stmts) + "\n")
    one_line.write_text(" ".join(stmts) + "\n")
    rc_a, per_line_kb = _peak_rss_kb(per_line, tmp_path / "a.json")
    rc_b, one_line_kb = _peak_rss_kb(one_line, tmp_path / "b.json")
    assert rc_a == rc_b == 0
    assert one_line_kb <= 2 * per_line_kb + 20_000, (per_line_kb, one_line_kb)
    a = json.loads((tmp_path / "a.json").read_bytes())["findings"]
    b = json.loads((tmp_path / "b.json").read_bytes())["findings"]
    assert len(a) == len(b) == 10_001
    assert max(len(f["snippet"]) for f in b) <= FRAME_WIDTH
    # the same statement (in the same file) keeps its fingerprint whether it starts a line or follows others on it

    def prints(findings):
        return sorted(Finding.from_json({**f, "path": "x.sql", "fingerprint": ""}).fingerprint for f in findings)

    assert prints(a) == prints(b)


def _one_line(n: int = 10_000, at: int = 5_000) -> tuple[str, int]:
    """n statements on one line; statement ``at`` has a money column; the column of "money" (1-based)."""
    stmts = [f"CREATE TABLE t{i} (id int PRIMARY KEY);" for i in range(n)]
    stmts[at] = "CREATE TABLE odd (id int PRIMARY KEY, price money);"
    text = " ".join(stmts)
    return text + "\n", text.index("money") + 1


def test_finding_on_a_long_line_is_exact_and_its_frame_bounded():
    text, column = _one_line()
    result = scan_sql(text)
    (f,) = [f for f in result.findings if f.name == "unsupported-type"]
    assert (f.line, f.column, f.end_line, f.end_column) == (1, column, 1, column + len("money"))
    assert len(f.snippet) <= FRAME_WIDTH and f.snippet.startswith(ELLIPSIS)
    assert 1 < f.snippet_column <= column
    assert f.snippet[f.column - f.snippet_column:].startswith("money")
    # a saved report keeps where the window starts
    again = Finding.from_json(json.loads(json.dumps(f.to_json())))
    assert (again.snippet, again.snippet_column, again.fingerprint) == (f.snippet, f.snippet_column, f.fingerprint)


@pytest.mark.parametrize("fmt", ["console", "html"])
def test_code_frame_caret_under_the_construct_on_a_long_line(fmt):
    text, column = _one_line(2_000, 1_500)
    out = render(fmt, scan_sql(text), width=400)
    lines = out.splitlines()
    if fmt == "html":
        import html
        import re

        (block,) = [m.group(1) for m in re.finditer(r'<pre class="frame">(.*?)</pre>', out, re.S)
                    if "money" in m.group(1)]
        lines = [html.unescape(re.sub(r"<[^>]+>", "", line)) for line in block.splitlines()]
        snippet, caret = lines[0][1:], lines[1]  # the line number "1" leads the snippet line
    else:
        i = next(i for i, line in enumerate(lines) if "price money" in line and "│" in line)
        snippet, caret = lines[i], lines[i + 1]
    assert len(snippet) < FRAME_WIDTH + 20
    assert caret.index("^") == snippet.index("money") and caret.count("^") == len("money")


def test_frame_window_columns():
    line = "x" * 1000 + " money " + "y" * 1000
    col = 1002  # "money"
    snippet, start = frame(line, 0, len(line), 1, col)
    assert len(snippet) == FRAME_WIDTH and snippet[0] == snippet[-1] == ELLIPSIS
    assert snippet[col - start:col - start + 5] == "money"
    # a short line is whole, from column 1; a statement that began mid-line keeps its file columns
    assert frame("SELECT 1", 0, 8, 5, 5) == ("    SELECT 1", 1)
    # a statement far into a long line: "… " stands for what precedes it, not thousands of blanks
    snippet, start = frame("CREATE TABLE t (a int)", 0, 22, 100_000, 100_000)
    assert (snippet, start) == (ELLIPSIS + " CREATE TABLE t (a int)", 99_998)


UNTERMINATED = {
    "dollar quote": "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1;",
    "string": "SELECT 'abc",
    "quoted identifier": 'SELECT "abc',
    "block comment": "SELECT 1 /* abc",
}


@pytest.mark.parametrize("layout", ["lines", "one line"])
@pytest.mark.parametrize("kind", list(UNTERMINATED))
def test_unterminated_construct_is_reported_with_a_bounded_snippet(tmp_path, kind, layout):
    rest = ("x" * 99 + "\n") * 10_000 if layout == "lines" else "x" * 1_000_000  # ~1 MB more, never closed
    path = tmp_path / "bad.sql"
    path.write_text("CREATE TABLE a (id int PRIMARY KEY);\n" + UNTERMINATED[kind] + " " + rest)
    result = scan([str(path)], jobs=1)
    (f,) = [f for f in result.findings if f.name == "parse-error"]
    assert (f.line, f.column) == (2, UNTERMINATED[kind].index({"dollar quote": "$body$", "string": "'",
                                                               "quoted identifier": '"',
                                                               "block comment": "/*"}[kind]) + 1)
    assert "unterminated" in f.message
    assert len(f.message) <= 400 and len(f.snippet) <= FRAME_WIDTH
    (err,) = result.errors
    assert "unterminated" in err.message and len(err.message) <= 400
    for fmt in FORMATS:  # no report repeats the rest of the file
        out = render(fmt, result, width=120)
        assert len(out) < 40_000, (fmt, len(out))
        assert "x" * 400 not in out, fmt


def test_an_unclosed_begin_atomic_body_is_split_in_linear_time():
    # each ';' of a never-closed BEGIN ATOMIC body used to re-read the whole statement so far
    # (10,000 took 19 s; now 100,000 take 0.2 s)
    text = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; " + "SELECT 1; " * 10_000
    t0 = time.perf_counter()
    stmts = split_text(text)
    assert time.perf_counter() - t0 < 2
    assert len(stmts) == 1 and stmts[0].text.startswith("CREATE FUNCTION")
    # a closed body still ends where psql ends it
    closed = "CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n SELECT 1;\n SELECT 2;\nEND;\nSELECT 3;\n"
    assert [s.text.split()[0] for s in split_text(closed)] == ["CREATE", "SELECT"]


def _gone(procs) -> bool:
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


@linux_only
def test_workers_die_with_their_parent(tmp_path):
    path = tmp_path / "big.sql"
    with open(path, "w") as fh:  # big enough for worker processes, and to keep them busy for a few seconds
        i = 0
        while fh.tell() < 2 * PARALLEL_MIN_BYTES:
            fh.write(f"CREATE TABLE w{i} (id int, v text); INSERT INTO w{i} VALUES (1, 'x');\n")
            i += 1
    proc = subprocess.Popen([sys.executable, "-m", "dsql_audit", "scan", str(path), "-q", "-f", "json",
                             "-o", str(tmp_path / "out.json")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    workers: list = []
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            workers = parent.children(recursive=True)
            if len(workers) >= 2:
                break
            time.sleep(0.02)
        assert len(workers) >= 2, "the scan finished or stalled before starting its workers"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _gone(workers):
            time.sleep(0.05)
        assert _gone(workers), [w.pid for w in workers if w.is_running()]
    finally:
        for w in workers:
            try:
                w.kill()
            except psutil.Error:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@linux_only
def test_worker_watches_its_parent_without_prctl(tmp_path):
    # where prctl is missing (or fails), the watcher thread ends a worker whose parent is gone
    script = textwrap.dedent("""
        import ctypes, os, sys, time
        def no_prctl(*a, **k):
            raise OSError("no prctl here")
        ctypes.CDLL = no_prctl
        from dsql_audit import scan
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)  # the test reads the parent's output to its end: not the worker's
            os.dup2(null, 2)
            scan._worker_init(parent)
            time.sleep(30)
            os._exit(0)
        print(pid, flush=True)
        time.sleep(0.3)  # the worker is watching by now
        os._exit(0)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True)
    try:
        child = psutil.Process(int(done.stdout.split()[0]))
    except psutil.NoSuchProcess:
        return  # gone already
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _gone([child]):
        time.sleep(0.05)
    try:
        assert _gone([child])
    finally:
        try:
            child.kill()
        except psutil.Error:
            pass
