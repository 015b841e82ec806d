"""Fuzz targets, one per input path, shared by tests/test_fuzz.py (hypothesis, bounded examples) and
bench/fuzz.py (time-bounded random mutation with figures). A target takes bytes and runs the real code a
user's input reaches; it returns normally, or raises Rejected for an error that names the input (the
expected outcome for garbage). Anything else — an exception, an internal-error finding — is a crash."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SHARED = ROOT.parent / "shared"


class Rejected(Exception):
    """The input was refused with a clear error naming it (not a crash)."""


class Crash(Exception):
    """The tool failed internally on this input."""


# --- mutation ------------------------------------------------------------------------------------------

_TOKENS = [b"'", b'"', b"$$", b"$x$", b"--", b"/*", b"*/", b";", b"(", b")", b"\\", b"\x00", b"\xff\xfe",
           b"\n", b"\r\n", b"E'", b"U&'", b"\t", b"CREATE ", b"BEGIN;", b"COMMIT;", b"DO $$", b"{", b"}",
           b'"""', b"f'", b"`", b"${", b"<", b"/>", b",", b"\xe2\x80", b"#", b"0" * 30]


def mutate(data: bytes, rnd: random.Random, rounds: int | None = None) -> bytes:
    """A few random edits: flip, delete, insert syntax tokens or random bytes, duplicate, truncate."""
    out = bytearray(data)
    for _ in range(rounds or rnd.randint(1, 6)):
        n = len(out)
        op = rnd.randrange(6)
        i = rnd.randrange(n + 1) if n else 0
        if op == 0 and n:
            out[min(i, n - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1 and n:
            del out[i:i + rnd.randint(1, 64)]
        elif op == 2:
            out[i:i] = rnd.choice(_TOKENS)
        elif op == 3:
            out[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
        elif op == 4 and n:
            j = rnd.randrange(n)
            out[i:i] = out[j:j + rnd.randint(1, 200)]
        elif op == 5 and n:
            del out[rnd.randrange(n):]
    return bytes(out)


# --- seeds -----------------------------------------------------------------------------------------------

_STDERR = (b"2026-01-05 10:00:00.123 UTC [4242] app@shop LOG:  duration: 0.512 ms  statement: SELECT * FROM t "
           b"WHERE id = 1\n2026-01-05 10:00:00.200 UTC [4242] app@shop LOG:  execute <unnamed>: UPDATE t SET v = $1 "
           b"WHERE id = $2\n2026-01-05 10:00:00.200 UTC [4242] app@shop DETAIL:  Parameters: $1 = 'x', $2 = '7'\n"
           b"2026-01-05 10:00:01.000 UTC [4243] app@shop LOG:  statement: BEGIN;\n\tINSERT INTO t VALUES (2,\n"
           b"\t'multi-line');\n")
_CSVLOG = (b'2026-01-05 10:00:00.123 UTC,"app","shop",4242,"[local]",65a1.1092,1,"SELECT",2026-01-05 09:59:00 UTC,'
           b'3/12,0,LOG,00000,"duration: 0.2 ms  statement: SELECT 1",,,,,,,,,"psql","client backend",,0\n'
           b'2026-01-05 10:00:00.500 UTC,"app","shop",4242,"[local]",65a1.1092,2,"TRUNCATE TABLE",2026-01-05 '
           b'09:59:00 UTC,3/13,0,LOG,00000,"statement: TRUNCATE t",,,,,,,,,"psql","client backend",,0\n')
_JSONLOG = (b'{"timestamp":"2026-01-05 10:00:00.123 UTC","user":"app","dbname":"shop","pid":4242,"session_id":'
            b'"65a1.1092","line_num":1,"vxid":"3/12","txid":0,"error_severity":"LOG","message":"duration: 0.2 ms  '
            b'statement: UPDATE t SET v = 1 WHERE id = 2","backend_type":"client backend"}\n')
_PGSS_CSV = (b"userid,dbid,toplevel,queryid,query,plans,total_plan_time,calls,total_exec_time,rows\n"
             b'10,5,t,-123,"SELECT * FROM t WHERE id = $1",0,0,1200,35.5,1200\n'
             b'10,5,t,456,"UPDATE t SET v = $1 WHERE id = $2",0,0,300,12.25,300\n'
             b'10,5,t,789,"TRUNCATE t",0,0,2,1.5,0\n')
_PGSS_JSON = (b'{"pg_stat_statements": [{"queryid": "1", "query": "SELECT * FROM t WHERE id = $1", "calls": 10, '
              b'"total_exec_time": 2.5, "rows": 10}, {"queryid": "2", "query": "LOCK TABLE t", "calls": 1, '
              b'"total_exec_time": 0.1, "rows": 0}]}')
_CONFIG = (b'[tool.dsql-audit]\nprofile = "2026-09-18"\nselect = ["DSQL1", "sequence"]\nignore = ["missing-primary-key"]'
           b'\nfail-on = "warning"\nexclude = ["legacy/**"]\n\n[tool.dsql-audit.severity]\nunbounded-write = "error"\n\n'
           b'[tool.dsql-audit.per-file-ignores]\n"db/seeds/*.sql" = ["unbounded-write", "DSQL404"]\n')


def _files(folder: Path, suffixes: tuple) -> list[bytes]:
    if not folder.is_dir():
        return []
    return [p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in suffixes
            and p.stat().st_size < 200_000]


def seeds(path_kind: str) -> list[bytes]:
    """Starting inputs for one path: the project's fixtures, plus ../shared's corpus when it is there."""
    if path_kind == "sql":
        out = _files(FIXTURES / "migrations", (".sql",))
        corpus = SHARED / "corpus" / "schemas"
        if corpus.is_dir():  # cut the corpus schemas into 4 KB windows so mutations reach every construct
            for p in sorted(corpus.glob("*.sql")):
                data = p.read_bytes()
                out += [data[i:i + 4096] for i in range(0, min(len(data), 120_000), 4096)]
        return out
    if path_kind == "python":
        return _files(FIXTURES / "apps" / "python", (".py",)) + _files(FIXTURES / "migrations" / "django", (".py",))
    if path_kind == "other":
        return [p for p in _files(FIXTURES / "apps", (".js", ".ts", ".java", ".kt", ".go", ".rb", ".cs", ".php"))]
    if path_kind == "dsl":
        return _files(FIXTURES / "apps", (".prisma", ".xml", ".yaml", ".yml"))
    if path_kind == "capture":
        out = [_STDERR, _CSVLOG, _JSONLOG, _PGSS_CSV, _PGSS_JSON]
        captures = SHARED / "corpus" / "captures"
        if captures.is_dir():
            out += [p.read_bytes()[:20_000] for p in sorted(captures.rglob("*")) if p.is_file()
                    and p.suffix in (".log", ".csv", ".jsonl", ".json")]
        return out
    if path_kind == "config":
        return [_CONFIG]
    if path_kind == "filename":  # bytes for file and folder names: not UTF-8, control bytes, long, dots
        return [b"V1__init", b"caf\xe9", b"\xff\xfe\x80name", b"a b\tc\nd", b"..x", b"\xe2\x80\xae-rtl", b"x" * 200,
                "\u00e9t\u00e9".encode("utf-8"), b"\x1b[31mred"]
    if path_kind in ("encoding", "oneline"):
        return seeds("sql")
    if path_kind == "rule":
        return [p.read_bytes() for p in sorted((ROOT / "rules").glob("*.toml"))]
    raise ValueError(path_kind)


# --- targets -----------------------------------------------------------------------------------------------

_SUFFIX = {"sql": ".sql", "python": ".py", "other": None, "dsl": None}


def _scan_file(data: bytes, name: str) -> None:
    from dsql_audit.scan import scan

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        try:
            result = scan([str(path)], jobs=1)
        except Exception as exc:  # noqa: BLE001 - any exception out of scan() is a crash
            raise Crash(f"{type(exc).__name__}: {exc}") from exc
        internal = [f for f in result.findings if f.name == "internal-error"]
        if internal:
            raise Crash(internal[0].message)
        for e in result.errors:
            if not e.path or not e.message:
                raise Crash(f"an input error without a path or message: {e}")


def target_sql(data: bytes) -> None:
    _scan_file(data, "db/migrations/V1__fuzz.sql")


def target_python(data: bytes) -> None:
    _scan_file(data, "app/migrations/0001_fuzz.py" if b"migrations" in data[:2000] else "app/models.py")


_OTHER_NAMES = {b"package ": "src/Main.java", b"func ": "main.go", b"def ": "app/models/x.rb",
                b"<?php": "src/x.php", b"namespace ": "src/X.cs", b"fun ": "src/X.kt"}


def target_other(data: bytes) -> None:
    name = next((n for k, n in _OTHER_NAMES.items() if k in data[:4000]), "src/db.ts")
    _scan_file(data, name)


def target_dsl(data: bytes) -> None:
    head = data[:3000]
    name = ("prisma/schema.prisma" if b"datasource" in head or b"model " in head else
            "db/changelog.xml" if head.lstrip().startswith(b"<") else "db/changelog.yaml")
    _scan_file(data, name)


def target_capture(data: bytes) -> None:
    from dsql_audit.replay.captures import CaptureError, read_capture

    head = data[:200]
    suffix = (".json" if head.lstrip().startswith(b"{") and b"pg_stat_statements" in data[:400] else
              ".jsonl" if head.lstrip().startswith(b"{") else ".csv" if b"," in head.split(b"\n")[0] else ".log")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"capture{suffix}"
        path.write_bytes(data)
        try:
            for item in read_capture(path):
                if isinstance(item, CaptureError) and not item.message:
                    raise Crash("a capture error without a message")
        except Crash:
            raise
        except Exception as exc:  # noqa: BLE001
            raise Crash(f"{type(exc).__name__}: {exc}") from exc


def target_config(data: bytes) -> None:
    from dsql_audit.catalog import load_catalog
    from dsql_audit.config import ConfigError, load_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pyproject.toml"
        path.write_bytes(data)
        try:
            config = load_config(str(path))
            config.validate(load_catalog())
        except ConfigError as exc:
            if str(path) not in str(exc) and "pyproject" not in str(exc) and not str(exc):
                raise Crash(f"a config error that does not name the file: {exc}") from exc
            raise Rejected(str(exc)) from exc
        except ValueError as exc:  # validate(): an unknown rule or profile, named
            raise Rejected(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001
            raise Crash(f"{type(exc).__name__}: {exc}") from exc


def target_rule(data: bytes) -> None:
    import tomllib

    from dsql_audit.catalog import _load_rule

    import re

    slug = re.search(rb'^slug\s*=\s*"([\w-]{1,60})"', data, re.M)  # a rule file is named after its slug
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{slug.group(1).decode() if slug else 'fuzz'}.toml"
        path.write_bytes(data)
        try:
            _load_rule(path)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise Rejected(f"{path.name}: {exc}") from exc
        except ValueError as exc:
            if str(path) not in str(exc):
                raise Crash(f"a rule error that does not name the file: {exc}") from exc
            raise Rejected(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001
            raise Crash(f"{type(exc).__name__}: {exc}") from exc


def _check_result(result) -> None:
    internal = [f for f in result.findings if f.name == "internal-error"]
    if internal:
        raise Crash(internal[0].message)
    for e in result.errors:
        if not e.path or not e.message:
            raise Crash(f"an input error without a path or message: {e}")


def _render_all(result) -> None:
    """Every report format renders the result, and what it renders can be encoded as UTF-8 (a file name with
    bytes that are not UTF-8 must not reach a report as a lone surrogate)."""
    import json

    from dsql_audit.report import render

    for fmt in ("console", "json", "sarif", "junit", "markdown"):
        try:
            text = render(fmt, result, fail_on="error")
            text.encode("utf-8")
            if fmt in ("json", "sarif"):
                json.loads(text)
        except Exception as exc:  # noqa: BLE001
            raise Crash(f"{fmt} report: {type(exc).__name__}: {exc}") from exc


def _name(raw: bytes) -> bytes:
    """A file or folder name from fuzz bytes: no '/', no NUL, not '.' or '..', at most 200 bytes."""
    name = raw.replace(b"/", b"_").replace(b"\x00", b"_")[:200]
    return name if name.strip(b".") else b"_" + name


def target_filename(data: bytes) -> None:
    """Files (SQL and Python) and a folder named with the fuzz bytes, scanned as a folder: the scan goes
    on, the findings are reported under a printable name, and every report format renders."""
    import os

    from dsql_audit.scan import scan

    with tempfile.TemporaryDirectory() as tmp:
        root = os.fsencode(tmp)
        sub = os.path.join(root, _name(data[::-1] or b"d"))
        os.makedirs(sub, exist_ok=True)
        made = []
        for folder, suffix, body in ((root, b".sql", b"TRUNCATE t;\n"),
                                     (sub, b".sql", b"CREATE TABLE a (id serial);\n"),
                                     (root, b".py", b"import psycopg\ncur.execute('TRUNCATE t')\n")):
            path = os.path.join(folder, _name(data) + suffix)
            try:
                with open(path, "wb") as fh:
                    fh.write(body)
                made.append(path)
            except OSError:  # a name too long for this file system: not the tool's input
                pass
        if not made:
            raise Rejected("no file could be created with this name")
        try:
            result = scan([tmp], jobs=1)
        except Exception as exc:  # noqa: BLE001
            raise Crash(f"{type(exc).__name__}: {exc}") from exc
        _check_result(result)
        for f in result.findings:
            f.path.encode("utf-8")  # printable: raises on a lone surrogate
        if not any(f.name == "truncate" for f in result.findings):
            raise Crash("a file with this name was not scanned")
        _render_all(result)


_ENCODINGS = ("utf-16", "utf-16-be-bom", "utf-32", "latin-1", "nul", "utf-8-sig")


def target_encoding(data: bytes) -> None:
    """SQL text re-encoded (UTF-16 LE/BE and UTF-32 with a byte-order mark, latin-1, UTF-8 with a BOM) or
    with a NUL byte inserted, as a .sql file and inside a Python source: decoded, or an input error that names
    the file — never a crash, never a silent skip of a file with NUL bytes."""
    from dsql_audit.scan import scan

    text = data.decode("utf-8", "replace")
    how = _ENCODINGS[len(data) % len(_ENCODINGS)]
    py = "import psycopg\ncur.execute(" + repr(text[:2000]) + ")\n"
    for name, body in (("db/V1__enc.sql", text), ("app/models.py", py)):
        if how == "utf-16-be-bom":
            raw = b"\xfe\xff" + body.encode("utf-16-be", "replace")
        elif how == "latin-1":
            raw = body.encode("latin-1", "replace")
        elif how == "nul":
            raw = body.encode("utf-8", "replace")
            at = len(data) % (len(raw) + 1)
            raw = raw[:at] + b"\x00" + raw[at:]
        else:
            raw = body.encode(how, "replace")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.parent.mkdir(parents=True)
            path.write_bytes(raw)
            try:
                result = scan([str(path)], jobs=1)
            except Exception as exc:  # noqa: BLE001
                raise Crash(f"{type(exc).__name__}: {exc}") from exc
            _check_result(result)
            if how == "nul" and not any("NUL" in e.message for e in result.errors):
                raise Crash(f"a {name} with a NUL byte was read without an input error")
            if how in ("utf-16", "utf-16-be-bom", "utf-32") and any("binary file" in e.message for e in result.errors):
                raise Crash(f"a {how} {name} with a byte-order mark was taken for a binary file")


def target_oneline(data: bytes) -> None:
    """The input's statements on one line (newlines become spaces), and a long run of short statements on
    one line: located and reported, in bounded time."""
    import time

    line = data.replace(b"\r", b" ").replace(b"\n", b" ")
    started = time.monotonic()
    _scan_file(line + b" " + b"TRUNCATE t; SELECT 1; " * 300 + b"\n", "db/V1__oneline.sql")
    if time.monotonic() - started > 30:
        raise Crash(f"a one-line input of {len(line):,} bytes took {time.monotonic() - started:.0f} s")


TARGETS = {"sql": target_sql, "python": target_python, "other": target_other, "dsl": target_dsl,
           "capture": target_capture, "config": target_config, "rule": target_rule,
           "filename": target_filename, "encoding": target_encoding, "oneline": target_oneline}


def run_one(kind: str, data: bytes) -> str:
    """'ok', 'rejected' — or raises Crash."""
    try:
        TARGETS[kind](data)
        return "ok"
    except Rejected:
        return "rejected"
