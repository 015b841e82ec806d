"""Sources: find the inputs under the paths a user gave, and turn each into units.

A source never judges: it reads SQL files, pg_dump output (plain, custom and
directory archives via the embedded pg_restore) and migration folders, and
emits units carrying the statement text, its exact location and its
transaction under the framework's model. Bad input becomes an input error
naming the file (and line), and the scan goes on.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from dsql_audit.model import InputError, Unit
from dsql_audit.output import printable
from dsql_audit.sources import manifests, migrations
from dsql_audit.sqltext import Splitter

SQL_SUFFIXES = {".sql", ".psql", ".pgsql", ".ddl", ".pgdump", ".dump", ".backup"}
# application source: Python in depth, SQL strings in other languages, ORM and migration DSLs
APP_SUFFIXES = {".py", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".java", ".kt", ".kts", ".go", ".rb", ".cs",
                ".php", ".prisma", ".xml", ".yaml", ".yml", ".json", ".properties"}
APP_MAX_BYTES = 5_000_000  # default --max-file-size: bigger source files under a folder are generated or vendored
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
    explicit: bool = False  # named on the command line (or stdin), not found under a folder
    ident: tuple | None = None  # (device, inode): an output must never be one of the inputs
    max_bytes: int | None = None  # application source bigger than this is skipped (--max-file-size)


@dataclass
class Discovery:
    files: list[InputFile] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    other_dialects: list = field(default_factory=list)  # (folder as shown, database) of folders not read


# a folder named for another database holds that database's migrations or code (migrations/sqlite,
# migrations-mysql, databases/mssql): not PostgreSQL, so not what DSQL will be sent
OTHER_DATABASES = {"sqlite": "SQLite", "sqlite3": "SQLite", "mysql": "MySQL", "mysqldb": "MySQL",
                   "mariadb": "MariaDB", "mssql": "SQL Server", "sqlserver": "SQL Server", "tsql": "SQL Server",
                   "oracle": "Oracle", "h2": "H2", "hsqldb": "HSQLDB", "derby": "Derby", "db2": "Db2",
                   "sybase": "Sybase", "clickhouse": "ClickHouse", "duckdb": "DuckDB", "snowflake": "Snowflake",
                   "bigquery": "BigQuery", "spanner": "Spanner"}
_POSTGRES_WORDS = {"postgres", "postgresql", "postgresdb", "pg", "pgsql", "psql"}


def other_database(folder_name: str) -> str | None:
    """The database a folder's name says its files are for, when it is not PostgreSQL: ``sqlite``,
    ``migrations-sqlite``, ``mysql_migrations`` → a name; ``postgres``, ``sqlite_to_postgres`` → None."""
    words = set(re.split(r"[-_. ]+", folder_name.lower()))
    if words & _POSTGRES_WORDS:
        return None
    return next((OTHER_DATABASES[w] for w in sorted(words) if w in OTHER_DATABASES), None)


def _display_raw(p: Path) -> str:
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _display(p: Path) -> str:
    """The path as reports show it: relative to the cwd when possible; bytes of a file name that are not
    UTF-8 shown as \\xNN, so every report format and the fingerprint can encode it."""
    return printable(_display_raw(p))


def human_size(n: int) -> str:
    for unit, size in (("GB", 1_000_000_000), ("MB", 1_000_000), ("kB", 1000)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def excluded(path: str, patterns) -> bool:
    """Whether a shown path matches an exclude pattern: a glob on the whole path (``*`` crosses folders, as
    in fnmatch), on its tail (``legacy/*.sql`` anywhere), or a folder name or path whose files all go
    (``legacy``, ``db/old``)."""
    import fnmatch

    p = path.replace("\\", "/")
    for pat in patterns:
        pat = pat.replace("\\", "/").rstrip("/")
        if pat.startswith("./"):
            pat = pat[2:]
        if (fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, f"*/{pat}") or fnmatch.fnmatch(p, f"{pat}/*")
                or fnmatch.fnmatch(p, f"*/{pat}/*") or Path(p).match(pat)):
            return True
    return False


def discover(paths, *, framework: str | None = None, exclude=(), app: bool = True,
             max_file_size: int | None = APP_MAX_BYTES, stdin_filename: str | None = None) -> Discovery:
    """The inputs under ``paths``: SQL files, dumps and archives, and (``app``) application source files,
    skipping vendored and ignored folders (.gitignore patterns are honoured). Application source files found
    under a folder that are bigger than ``max_file_size`` bytes (None or 0: no limit) are skipped, each named
    in the errors; files named directly are always read. ``stdin_filename`` names what ``-`` reads: its
    suffix says how (``.py`` as Python, ``.ts`` as TypeScript, else SQL) and findings carry that path."""
    out = Discovery()
    limit = max_file_size or None
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
        shown = _display_raw(p)
        disp = printable(shown)
        if excluded(disp, exclude):
            return
        try:
            st = real.stat()
        except OSError as exc:
            out.errors.append(InputError(disp, f"cannot read: {exc.strerror or exc}", skipped=True))
            return
        suffix = p.suffix.lower()
        kind = "app" if app and manifests.is_manifest(p.name) else \
            "sql" if suffix in SQL_SUFFIXES or not app or suffix not in APP_SUFFIXES else (
                "python" if suffix == ".py" else "app")
        out.files.append(InputFile(disp, p, root or p.parent, kind=kind, size=st.st_size, explicit=explicit,
                                   ident=(st.st_dev, st.st_ino), max_bytes=None if explicit else limit))
        if disp != shown:
            out.errors.append(InputError(disp, "the file name is not valid UTF-8: shown with \\xNN for the bytes that "
                                               "are not; the file is read"))

    for raw in paths:
        if raw == "-":
            out.files.append(_stdin_file(stdin_filename, app))
            continue
        p = Path(raw)
        if not p.exists() and not p.is_symlink():
            out.errors.append(InputError(printable(raw), "no such file or directory", skipped=True))
            continue
        if p.is_file():
            add_file(p, p.parent, True)
            continue
        if not p.is_dir():
            out.errors.append(InputError(printable(raw), "not a regular file or directory", skipped=True))
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
                        database = other_database(e.name)
                        if database is not None:  # named on the command line, it would be read
                            out.other_dialects.append((_display(ep), database))
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


def _stdin_file(name: str | None, app: bool) -> InputFile:
    """``-`` as an input: SQL, unless --stdin-filename names application source (read now, as a file is)."""
    if not name:
        return InputFile("<stdin>", None, None, kind="stdin", explicit=True)
    suffix = Path(name).suffix.lower()
    if app and (suffix in APP_SUFFIXES or manifests.is_manifest(Path(name).name)) and suffix not in SQL_SUFFIXES:
        data = sys.stdin.buffer.read()
        return InputFile(printable(name), None, None, kind="python" if suffix == ".py" else "app",
                         size=len(data), explicit=True, data=data)
    return InputFile(printable(name), None, None, kind="stdin", explicit=True)


def _classify(f: InputFile, forced: str | None, errors: list) -> None:
    if f.kind in ("archive", "python", "app"):
        return
    head = b""
    if f.abspath is not None:
        try:
            with open(f.abspath, "rb") as fh:
                head = fh.read(HEAD_BYTES)
        except OSError as exc:
            errors.append(InputError(f.path, f"cannot read: {exc.strerror or exc}", skipped=True))
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
    _classify_head(f, forced, _decode_head(head))


def _classify_text(f: InputFile, forced: str | None) -> None:
    _classify_head(f, forced, _decode_head((f.data or b"")[:HEAD_BYTES]))


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


# byte-order marks, longest first (UTF-32 LE starts like UTF-16 LE): the codec that reads the file
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xef\xbb\xbf", "utf-8-sig"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def text_encoding(head: bytes) -> str | None:
    """The encoding a byte-order mark at the start of ``head`` announces (UTF-16 and UTF-32 as Windows
    tools write them, LE or BE; UTF-8 with a BOM), or None when there is none (the file is read as UTF-8)."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    return None


def _decode_head(head: bytes) -> str:
    """The start of a file as text, for classification: decoded as its byte-order mark says, else UTF-8."""
    enc = text_encoding(head)
    if enc in ("utf-16", "utf-32"):
        width = 2 if enc == "utf-16" else 4
        return head[:len(head) - len(head) % width].decode(enc, "replace")
    return head.decode("utf-8", "replace").lstrip("\ufeff")


_NOTED = {"hit": False}


def _note_and_replace(exc: UnicodeDecodeError):
    """A decoding error handler that replaces like "replace" and notes that it did (see _LineReader)."""
    _NOTED["hit"] = True
    return "\ufffd", exc.end


codecs.register_error("dsql-audit-note", _note_and_replace)


def _nul_message(line: int) -> str:
    return (f"NUL byte on line {line}: not a text file (binary data, or UTF-16 without a byte-order mark?); "
            "NUL bytes dropped")


class _LineReader:
    """Decode lines as UTF-8 (or as the file's byte-order mark says: UTF-16 and UTF-32 LE/BE); a line that
    does not decode is decoded with replacement and reported once; NUL bytes are reported (once, at their
    line) and dropped — no SQL holds one, and the parser would stop at it."""

    def __init__(self, stream, path: str, errors: list, encoding: str | None = None):
        self.stream = stream
        self.path = path
        self.errors = errors
        self.encoding = encoding
        self.bad_line = None
        self.nul_line = None

    def _nul(self, n: int) -> None:
        if self.nul_line is None:
            self.nul_line = n
            self.errors.append(InputError(self.path, _nul_message(n), n))

    def __iter__(self):
        if self.encoding in ("utf-16", "utf-32"):
            yield from self._wide()
            return
        n = 0
        for raw in self.stream:
            n += 1
            if n == 1 and raw[:3] == b"\xef\xbb\xbf":
                raw = raw[3:]  # a UTF-8 byte-order mark (Windows editors): not part of the first statement
            if b"\x00" in raw:
                self._nul(n)
                raw = raw.replace(b"\x00", b"")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                if self.bad_line is None:
                    self.bad_line = n
                    self.errors.append(InputError(
                        self.path, f"not valid UTF-8 from line {n} on; undecodable bytes replaced", n))
                text = raw.decode("utf-8", "replace")
            raw = None  # a long line is held once, decoded, while its statements are read; not twice
            yield text

    def _wide(self):
        """UTF-16 / UTF-32 text (the codec reads the byte-order mark), streamed line by line."""
        text = io.TextIOWrapper(self.stream, encoding=self.encoding, errors="dsql-audit-note", newline="\n")
        n = 0
        _NOTED["hit"] = False
        for line in text:
            n += 1
            if "\x00" in line:
                self._nul(n)
                line = line.replace("\x00", "")
            if _NOTED["hit"] and self.bad_line is None and "\ufffd" in line:
                self.bad_line = n
                self.errors.append(InputError(self.path, f"not valid {self.encoding.upper()} from line {n} on; "
                                              "undecodable bytes replaced", n))
            yield line
        text.detach()


def looks_binary(head: bytes) -> bool:
    if not head:
        return False
    if text_encoding(head) in ("utf-16", "utf-32"):
        return False  # text with a byte-order mark: NUL bytes are half of it
    if b"\x00" in head:
        return True
    # UTF-16 without NULs is impossible; lots of control bytes means not text
    ctrl = sum(1 for b in head if b < 9 or 13 < b < 32)
    return ctrl > len(head) // 10


def _binary_message(head: bytes) -> str:
    if b"\x00" in head:
        return ("binary file (NUL bytes; if it is UTF-16 text, save it with a byte-order mark or as UTF-8); "
                "skipped")
    return "binary file (not text); skipped"


def read_units(f: InputFile, errors: list, *, single_transaction: bool = False,
               pg_restore=None) -> Iterator[Unit]:
    """Stream the units of one input, applying its framework's transaction model."""
    from dsql_audit.sources import archive

    if f.kind == "unreadable":
        return
    if f.kind in ("python", "app"):
        yield from _app_units(f, errors)
        return
    encoding = None  # UTF-8, unless a byte-order mark says otherwise
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
                errors.append(InputError(f.path, f"cannot read: {exc.strerror or exc}", skipped=True))
                return
        head = stream.read(HEAD_BYTES)
        if looks_binary(head):
            errors.append(InputError(f.path, _binary_message(head), 1, skipped=True))
            stream.close()
            return
        stream.seek(0)
        encoding = text_encoding(head)
        source = {"pg_dump": "pg_dump", "migration": "migration"}.get(f.kind, "sql")
        fw = f.framework
    try:
        yield from _units(f, stream, errors, source, fw, single_transaction, encoding)
    finally:
        stream.close()


def _units(f: InputFile, stream, errors, source, fw, single_transaction, encoding=None) -> Iterator[Unit]:
    lines = _LineReader(stream, f.path, errors, encoding)
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
    if f.max_bytes and f.size > f.max_bytes:
        errors.append(InputError(f.path, f"skipped: {human_size(f.size)}, over the {human_size(f.max_bytes)} limit for "
                                         "application source found under a folder (generated or vendored code?); "
                                         f"--max-file-size {-(-f.size // 1_000_000)}MB, or naming the file, reads it",
                                 skipped=True))
        return
    try:
        data = f.data if f.data is not None else f.abspath.read_bytes()
    except OSError as exc:
        errors.append(InputError(f.path, f"cannot read: {exc.strerror or exc}", skipped=True))
        return
    encoding = text_encoding(data[:4])
    if looks_binary(data[:HEAD_BYTES]):  # compiled, encrypted, an image with a source suffix
        errors.append(InputError(f.path, _binary_message(data[:HEAD_BYTES]), 1, skipped=True))
        return
    if encoding is None and b"\x00" in data:  # a NUL past the first block: not source code either
        line = data[:data.index(b"\x00")].count(b"\n") + 1
        errors.append(InputError(f.path, f"NUL byte on line {line}: not a text file; skipped", line, skipped=True))
        return
    if encoding in ("utf-16", "utf-32"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            text = data.decode(encoding, "replace")
            line = data[:exc.start].decode(encoding, "replace").count("\n") + 1
            errors.append(InputError(f.path, f"not valid {encoding.upper()} from line {line} on; undecodable "
                                             "bytes replaced", line))
        if "\x00" in text:
            line = text[:text.index("\x00")].count("\n") + 1
            errors.append(InputError(f.path, f"NUL character on line {line}: not a text file; skipped", line,
                                     skipped=True))
            return
    else:
        if data[:3] == b"\xef\xbb\xbf":
            data = data[3:]  # a byte-order mark
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            errors.append(InputError(f.path, f"not valid UTF-8 from line {line} on; undecodable bytes replaced",
                                     line))
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
    from dsql_audit.sources import frameworks

    records = frameworks.extract(path, text)
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
            # what a deploy runs once: not a migration a squash replaced, not a model's restatement of what a
            # migration creates, not another file's statements shown as this one's transaction context
            if (unit.down or unit.meta is not None or not unit.text.strip() or getattr(unit, "superseded", False)
                    or getattr(unit, "restates", False) or getattr(unit, "context", None)):
                continue
            yield unit
