"""Sources: find the inputs under the paths a user gave, and turn each into units.

A source never judges: it reads SQL files, pg_dump output (plain, custom and
directory archives via the embedded pg_restore) and migration folders, and
emits units carrying the statement text, its exact location and its
transaction under the framework's model. Bad input becomes an input error
naming the file (and line), and the scan goes on.
"""

from __future__ import annotations

import io
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from dsql_audit.model import InputError, Unit
from dsql_audit.sources import manifests, migrations
from dsql_audit.sqltext import Splitter

SQL_SUFFIXES = {".sql", ".psql", ".pgsql", ".ddl", ".pgdump", ".dump", ".backup"}
# application source: Python in depth, SQL strings in other languages, ORM and migration DSLs
APP_SUFFIXES = {".py", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".java", ".kt", ".kts", ".go", ".rb", ".cs",
                ".php", ".prisma", ".xml", ".yaml", ".yml", ".json", ".properties"}
APP_MAX_BYTES = 5_000_000  # bigger source files are generated or vendored: skipped and named
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache",
             ".pytest_cache", ".ruff_cache", "site-packages"}
_PGDUMP_HEAD = re.compile(r"^-- (?:PostgreSQL database dump|Dumped (?:from database version|by pg_dump))", re.M)
HEAD_BYTES = 8192


@dataclass
class InputFile:
    path: str  # as shown in reports (relative to the cwd when possible)
    abspath: Path | None  # None for stdin
    root: Path | None = None  # the folder the user named, for framework detection
    kind: str = "sql"  # sql | pg_dump | migration | archive | stdin | python | app
    framework: migrations.Framework | None = None
    no_transaction: bool = False
    size: int = 0
    data: bytes | None = None  # stdin content
    suppressions: list = field(default_factory=list)  # inline `-- dsql-audit: ignore` comments, once read


@dataclass
class Discovery:
    files: list[InputFile] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)


def _display(p: Path) -> str:
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def discover(paths, *, framework: str | None = None, exclude=(), app: bool = True) -> Discovery:
    """The inputs under ``paths``: SQL files, dumps and archives, and (``app``) application source files,
    skipping vendored and ignored folders (.gitignore patterns are honoured)."""
    out = Discovery()
    seen_dirs: set = set()
    seen_files: set = set()

    def add_file(p: Path, root: Path | None, explicit: bool):
        try:
            real = p.resolve(strict=True)
        except (OSError, RuntimeError) as exc:  # dangling link, symlink loop
            out.errors.append(InputError(_display(p), f"cannot resolve path: {exc.__class__.__name__}: {exc}"))
            return
        if real in seen_files:
            return
        seen_files.add(real)
        disp = _display(p)
        if any(Path(disp).match(pat) for pat in exclude):
            return
        try:
            size = real.stat().st_size
        except OSError as exc:
            out.errors.append(InputError(disp, f"cannot read: {exc.strerror or exc}"))
            return
        suffix = p.suffix.lower()
        kind = "app" if app and manifests.is_manifest(p.name) else \
            "sql" if suffix in SQL_SUFFIXES or not app or suffix not in APP_SUFFIXES else (
                "python" if suffix == ".py" else "app")
        out.files.append(InputFile(disp, p, root or p.parent, kind=kind, size=size))

    for raw in paths:
        if raw == "-":
            out.files.append(InputFile("<stdin>", None, None, kind="stdin"))
            continue
        p = Path(raw)
        if not p.exists() and not p.is_symlink():
            out.errors.append(InputError(raw, "no such file or directory"))
            continue
        if p.is_file():
            add_file(p, p.parent, True)
            continue
        if not p.is_dir():
            out.errors.append(InputError(raw, "not a regular file or directory"))
            continue
        if (p / "toc.dat").is_file():  # pg_dump directory archive
            out.files.append(InputFile(_display(p), p, p, kind="archive"))
            continue
        root = p.resolve()
        ignored = _Ignore(p)
        stack = [p]
        while stack:
            d = stack.pop()
            ignored.enter(d)
            try:
                real = d.resolve(strict=True)
            except (OSError, RuntimeError) as exc:
                out.errors.append(InputError(_display(d), f"cannot resolve directory: {exc}"))
                continue
            if real in seen_dirs:
                continue  # a symlink loop or a second way to the same folder
            seen_dirs.add(real)
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError as exc:
                out.errors.append(InputError(_display(d), f"cannot list directory: {exc.strerror or exc}"))
                continue
            subdirs = []
            for e in entries:
                ep = Path(e.path)
                try:
                    if ignored.match(ep, e.is_dir()):
                        continue
                    if e.is_dir():
                        if e.name in SKIP_DIRS or (e.name.startswith(".") and e.name != "."):
                            continue
                        if (ep / "toc.dat").is_file():
                            out.files.append(InputFile(_display(ep), ep, root, kind="archive"))
                        else:
                            subdirs.append(ep)
                    elif e.is_file() and ep.suffix.lower() in SQL_SUFFIXES:
                        add_file(ep, root, False)
                    elif app and e.is_file() and (ep.suffix.lower() in APP_SUFFIXES or manifests.is_manifest(e.name)):
                        add_file(ep, root, False)
                    elif e.is_symlink() and not ep.exists():
                        out.errors.append(InputError(_display(ep), "dangling symbolic link"))
                except OSError as exc:
                    out.errors.append(InputError(_display(ep), f"cannot stat: {exc.strerror or exc}"))
            stack.extend(reversed(subdirs))
    for f in out.files:
        _classify(f, framework, out.errors)
    return out


class _Ignore:
    """.gitignore patterns of the folders walked so far (the common forms: globs, dir/, /anchored; no
    negation), matched against paths relative to the folder that holds the .gitignore."""

    def __init__(self, root: Path):
        self.rules: list = []  # (base folder, pattern, directories only, anchored)
        self.root = root

    def enter(self, folder: Path) -> None:
        try:
            text = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", "!")):
                continue
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = line.startswith("/") or "/" in line
            self.rules.append((folder, line.lstrip("/"), dir_only, anchored))

    def match(self, path: Path, is_dir: bool) -> bool:
        import fnmatch

        for base, pattern, dir_only, anchored in self.rules:
            if dir_only and not is_dir:
                continue
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            if anchored:
                if fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(rel, pattern + "/**"):
                    return True
            elif fnmatch.fnmatchcase(path.name, pattern):
                return True
        return False


def _classify(f: InputFile, forced: str | None, errors: list) -> None:
    if f.kind in ("archive", "python", "app"):
        return
    head = b""
    if f.abspath is not None:
        try:
            with open(f.abspath, "rb") as fh:
                head = fh.read(HEAD_BYTES)
        except OSError as exc:
            errors.append(InputError(f.path, f"cannot read: {exc.strerror or exc}"))
            f.kind = "unreadable"
            return
    else:
        if f.data is None:
            f.data = sys.stdin.buffer.read()
            f.size = len(f.data)
        head = f.data[:HEAD_BYTES]
    if head.startswith(b"PGDMP"):
        f.kind = "archive"
        return
    _classify_head(f, forced, head.decode("utf-8", "replace"))


def _classify_text(f: InputFile, forced: str | None) -> None:
    _classify_head(f, forced, (f.data or b"")[:HEAD_BYTES].decode("utf-8", "replace"))


def _classify_head(f: InputFile, forced: str | None, text: str) -> None:
    rel = f.path
    if f.abspath is not None and f.root is not None:
        try:
            rel = f.abspath.resolve().relative_to(f.root.resolve()).as_posix()
        except ValueError:
            rel = f.abspath.as_posix()
    fw = None
    if forced:
        fw = migrations.BY_NAME[forced]
    elif f.abspath is not None:
        fw = migrations.detect(f.abspath, rel, text, f.root or f.abspath.parent)
    if _PGDUMP_HEAD.search(text):
        f.kind = "pg_dump"
        fw = fw or migrations.BY_NAME["pg_dump"]
    elif fw is not None and fw.name not in ("psql", "pg_dump"):
        f.kind = "migration"
    f.framework = fw
    if fw is not None and f.abspath is not None:
        f.no_transaction = migrations.file_runs_without_transaction(fw, f.abspath, text)


# --- reading -----------------------------------------------------------------------


class _LineReader:
    """Decode lines as UTF-8; a line that is not is decoded with replacement and reported once."""

    def __init__(self, stream, path: str, errors: list):
        self.stream = stream
        self.path = path
        self.errors = errors
        self.bad_line = None

    def __iter__(self):
        n = 0
        for raw in self.stream:
            n += 1
            if n == 1 and raw[:3] == b"\xef\xbb\xbf":
                raw = raw[3:]  # a UTF-8 byte-order mark (Windows editors): not part of the first statement
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                if self.bad_line is None:
                    self.bad_line = n
                    self.errors.append(InputError(
                        self.path, f"not valid UTF-8 from line {n} on; undecodable bytes replaced", n))
                yield raw.decode("utf-8", "replace")


def looks_binary(head: bytes) -> bool:
    if not head:
        return False
    if b"\x00" in head:
        return True
    # UTF-16 without NULs is impossible; lots of control bytes means not text
    ctrl = sum(1 for b in head if b < 9 or 13 < b < 32)
    return ctrl > len(head) // 10


def read_units(f: InputFile, errors: list, *, single_transaction: bool = False,
               pg_restore=None) -> Iterator[Unit]:
    """Stream the units of one input, applying its framework's transaction model."""
    from dsql_audit.sources import archive

    if f.kind == "unreadable":
        return
    if f.kind in ("python", "app"):
        yield from _app_units(f, errors)
        return
    if f.kind == "archive":
        stream = archive.restore_stream(f, errors, pg_restore)
        if stream is None:
            return
        source = "pg_dump"
        fw = migrations.BY_NAME["pg_dump"]
    else:
        if f.data is not None:
            stream = io.BytesIO(f.data)
        else:
            try:
                stream = open(f.abspath, "rb")
            except OSError as exc:
                errors.append(InputError(f.path, f"cannot read: {exc.strerror or exc}"))
                return
        head = stream.read(HEAD_BYTES)
        if looks_binary(head):
            errors.append(InputError(f.path, "binary file (not SQL text); skipped", 1))
            stream.close()
            return
        stream.seek(0)
        source = {"pg_dump": "pg_dump", "migration": "migration"}.get(f.kind, "sql")
        fw = f.framework
    try:
        yield from _units(f, stream, errors, source, fw, single_transaction)
    finally:
        stream.close()


def _units(f: InputFile, stream, errors, source, fw, single_transaction) -> Iterator[Unit]:
    lines = _LineReader(stream, f.path, errors)
    model = fw.model if fw is not None else "psql"
    fw_name = fw.name if fw is not None and fw.name != "psql" else None
    splitter = Splitter(comments=(model == "sections"))
    txn: int | None = None
    if single_transaction or (model == "file" and not f.no_transaction):
        txn = 0
    section = 0
    in_skipped = False
    file_no_txn = f.no_transaction
    index = 0
    for raw in splitter.split(lines):
        if raw.kind == "comment":
            if fw is not None and fw.section is not None and fw.section.search(raw.text):
                section += 1
                in_skipped = bool(fw.skip_section and fw.skip_section.search(raw.text))
                no_txn = file_no_txn or bool(fw.no_txn and fw.no_txn.search(raw.text))
                txn = None if no_txn else section
            elif fw is not None and fw.no_txn is not None and fw.no_txn.search(raw.text) and model == "sections":
                if fw.name == "goose":
                    file_no_txn = True
                    txn = None
            continue
        text = raw.text
        if raw.unterminated:
            errors.append(InputError(f.path, f"unterminated {raw.unterminated} at end of input "
                                             f"(statement starting at line {raw.line})", raw.line))
        unit = Unit(
            path=f.path, text=text, line=raw.line, column=raw.column, source=source,
            txn=txn, framework=fw_name, meta=text if raw.kind == "meta" else None,
            copy_rows=raw.copy_rows, index=index,
        )
        if in_skipped:
            # down migrations are not run on deploy: their statements form their own transaction
            unit.txn = None if txn is None else -section
            unit.down = True
        index += 1
        yield unit
    f.suppressions = splitter.suppressions


_APP_SUPPRESS = re.compile(r"(#|//|--)\s*dsql-audit\s*:\s*(?:ignore|disable)(?:\[([^\]]*)\])?", re.I)


def _app_units(f: InputFile, errors: list) -> Iterator[Unit]:
    """Units of one application source file: its extractor's records, through sources.app."""
    from dsql_audit.sources import app
    from dsql_audit.sqltext import Suppression

    if f.abspath is not None and _generated_schema(f.abspath):
        return  # a schema file generated from migrations that are read too: their findings, once
    if f.size > APP_MAX_BYTES:
        errors.append(InputError(f.path, f"source file of {f.size // 1_000_000} MB skipped (generated or "
                                         "vendored code; name it explicitly or split it)"))
        return
    try:
        data = f.data if f.data is not None else f.abspath.read_bytes()
    except OSError as exc:
        errors.append(InputError(f.path, f"cannot read: {exc.strerror or exc}"))
        return
    if looks_binary(data[:HEAD_BYTES]):
        return  # a binary file with a source suffix (compiled, encrypted): nothing to read
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]  # a byte-order mark
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        errors.append(InputError(f.path, f"not valid UTF-8 from line {line} on; undecodable bytes replaced", line))
        text = data.decode("utf-8", "replace")
    try:
        emitted, source = app_records(f.path, text)
    except app.SourceError as exc:
        errors.append(InputError(f.path, str(exc), exc.line))
        return
    except Exception as exc:  # noqa: BLE001 - an extractor bug must not stop the scan; it is named
        errors.append(InputError(f.path, f"could not read application source: {type(exc).__name__}: {exc}"))
        return
    if not emitted:
        return
    lines = text.splitlines()
    f.suppressions = [Suppression(n, frozenset(r.strip().lower() for r in m.group(2).split(",") if r.strip())
                                  if m.group(2) else None, own_line=not lines[n - 1][:m.start()].strip())
                      for n, m in ((i + 1, _APP_SUPPRESS.search(line)) for i, line in enumerate(lines)
                                   if "dsql-audit" in line) if m]
    yield from app.to_units(f.path, emitted, errors, source, lines)


def _generated_schema(path: Path) -> bool:
    """Prisma's schema.prisma beside its migrations/ and Rails' db/schema.rb beside db/migrate/ describe what
    those migrations build: scanning both would report every construct twice."""
    if path.name == "schema.prisma":
        return any((path.parent / "migrations").glob("*/migration.sql"))
    if path.name == "schema.rb" and path.parent.name == "db":
        return any((path.parent / "migrate").glob("*.rb"))
    return False


def app_file_units(f: InputFile) -> tuple[list, list, list]:
    """(units, input errors, suppressions) of one application file: the unit of work a worker process does."""
    errors: list = []
    units = list(_app_units(f, errors))
    return units, errors, f.suppressions


def app_records(path: str, text: str) -> tuple[list, str]:
    """(records, source name) for one application file, by its kind."""
    suffix = Path(path).suffix.lower()
    if manifests.is_manifest(Path(path).name):
        return manifests.extract(path, text), "manifest"
    if suffix == ".py":
        from dsql_audit.sources import python

        return python.extract(path, text), "python"
    try:
        from dsql_audit.sources import dsl
    except ImportError:  # pragma: no cover - built alongside
        dsl = None
    if dsl is not None:
        records = dsl.extract(path, text)
        if records is not None:
            return records, "orm"
    if suffix in (".xml", ".yaml", ".yml", ".json", ".properties", ".prisma"):
        return [], "app"
    try:
        from dsql_audit.sources import other_languages
    except ImportError:  # tree-sitter is not installed: other languages are not read
        return [], "app"
    return other_languages.extract(path, text), suffix.lstrip(".")


_NUMBERS = re.compile(r"(\d+)")


def run_order(files: list) -> list:
    """Files in the order their migrations run (what a schema built from them needs): within a folder,
    numbers compared as numbers (V2 before V10, 000010 after 000009), and Flyway's repeatable R__ scripts
    after every versioned one. Scans keep discovery's order; convert and replay build a schema."""

    def key(f):
        p = Path(f.path)
        name = p.name
        repeatable = 1 if f.framework is not None and f.framework.name == "flyway" and name.startswith("R__") else 0
        natural = tuple(int(part) if part.isdigit() else part.lower() for part in _NUMBERS.split(name))
        return (str(p.parent), repeatable, natural)

    return sorted(files, key=key)


def deploy_units(paths: list[str], errors: list) -> Iterator[Unit]:
    """The statements a deploy runs, in order: files in run order, without down migrations (golang-migrate's
    *.down.sql files, goose/dbmate down sections) — the schema a folder builds."""
    disc = discover(paths)
    errors.extend(disc.errors)
    for f in run_order(disc.files):
        if re.search(r"\.down\.sql$", f.path):
            continue
        for unit in read_units(f, errors):
            if not unit.down and unit.meta is None and unit.text.strip():
                yield unit
