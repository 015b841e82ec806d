"""Reading captured workloads, streaming: PostgreSQL server logs (stderr with any common log_line_prefix,
csvlog of PostgreSQL 9.0–18, jsonlog and JSON-wrapped csvlog records as CloudNativePG writes them),
pg_stat_statements exports (CSV with a header, JSON) and plain SQL scripts.

Every statement becomes an ``Event`` that remembers the capture line it starts on; what cannot be read
becomes a ``CaptureError`` naming the line, and reading goes on. Files ending in .gz or .bz2 are read
through the decompressor. Nothing is held in memory beyond one record.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import heapq
import io
import itertools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

FORMATS = ("stderr", "csvlog", "jsonlog", "pgss-csv", "pgss-json", "pgss-psql", "sql")


@dataclass
class Event:
    """One statement the server ran (or, for pg_stat_statements, one normalized statement and its calls)."""

    line: int
    sql: str
    session: str | None = None
    time: str | None = None
    user: str | None = None
    database: str | None = None
    application: str | None = None
    vxid: str | None = None
    params: list | None = None  # text of $1, $2 … (None = SQL NULL) from a DETAIL: parameters line
    duration_ms: float | None = None
    error: str | None = None  # the error the server answered with, when the log says so
    calls: int = 1
    queryid: str | None = None
    total_ms: float | None = None  # pg_stat_statements: total_exec_time (total_time before PostgreSQL 13)
    rows: float | None = None  # pg_stat_statements: rows returned or affected, over all calls
    mean_ms: float | None = None
    max_ms: float | None = None
    protocol: str = "simple"  # simple | extended
    continues: bool = False  # the session's next logged statement has the same virtual transaction id


@dataclass
class TableSize:
    """A table's live row count as the capture recorded it (``tables`` in a JSON export: what
    pg_stat_user_tables knew), so replay can tell a hot row from a busy big table."""

    line: int
    table: str
    rows: int


@dataclass
class CaptureError:
    line: int
    message: str
    unread: bool = False  # the capture could not be read (to its end): an input error for the whole run


# "duration: 0.2 ms  statement: SELECT …", "execute <unnamed>: …", "execute S_1: …"
_MESSAGE = re.compile(r"(?:duration: (?P<ms>\d+(?:\.\d+)?) ms\s+)?(?P<kind>statement|execute (?P<name>[^:]*)|parse [^:]*|bind [^:]*):"
                      r" (?P<sql>.*)", re.S)
_PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')", re.S)
_SEVERITY = re.compile(r"(?P<sev>LOG|ERROR|STATEMENT|DETAIL|HINT|WARNING|FATAL|PANIC|NOTICE|CONTEXT|INFO|"
                       r"DEBUG\d?|QUERY|LOCATION): +(?P<msg>.*)")
# syslog / logplex split a record over lines numbered [record-part]; part 2+ continues the record
_SYSLOG_PART = re.compile(r"\[\d+-(\d+)\] (?P<rest>.*)$")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?: ?[A-Z]{2,5}|[+-]\d\d(?::?\d\d)?)?")
_SESSION_ID = re.compile(r"\b([0-9a-f]{6,}\.[0-9a-f]+)\b")  # %c
_PID = re.compile(r"\[(\d+)(?:-\d+)?\]")  # %p in brackets ([%p-%l] too)
_EPOCH = re.compile(r"\s*\d{9,11}\.\d{3}\b")  # %n: looks like a %c session id, is a time
_VXID = re.compile(r"(?<![\w/.:-])(\d+/\d+)(?![\w/.:-])")  # %v: backend/local transaction number
_USER_DB = re.compile(r"(?:user=(?P<user>[^,\s]*))|(?:db=(?P<db>[^,\s]*))|(?:app=(?P<app>[^,\s]*))")

# csvlog columns by count (PostgreSQL 9.0: 23; 13: +backend_type 24; 14: +leader_pid, query_id 26)
_CSV = {"log_time": 0, "user": 1, "database": 2, "pid": 3, "session": 5, "vxid": 9, "severity": 11,
        "sqlstate": 12, "message": 13, "detail": 14, "application": 22}


class CaptureReadError(OSError):
    """A capture that cannot be read to its end (a truncated or corrupt .gz/.bz2): the message names it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "cannot read the capture"


class _Decompressed(io.BufferedIOBase):
    """A .gz/.bz2 stream whose decompression errors (a file cut short: EOFError; corrupt data: zlib.error,
    OSError) become a CaptureReadError naming the file, so reading stops with a clear input error."""

    def __init__(self, raw, path: str, kind: str):
        super().__init__()
        self._raw, self._path, self._kind = raw, path, kind

    def readable(self) -> bool:
        return True

    def _call(self, fn, n):
        import zlib

        try:
            return fn(n)
        except CaptureReadError:
            raise
        except (EOFError, zlib.error, OSError) as exc:
            what = "cut short" if isinstance(exc, EOFError) else "corrupt"
            raise CaptureReadError(f"{self._path}: the {self._kind} file is {what} ({exc})") from None

    def read(self, n=-1):
        return self._call(self._raw.read, n)

    def read1(self, n=-1):
        return self._call(self._raw.read1, n)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def _encoding(p: str) -> str:
    """UTF-16/32 when the capture starts with a byte-order mark (a log saved by a Windows tool), else UTF-8."""
    from dsql_audit.sources import text_encoding

    import os

    if not os.path.isfile(p):
        return "utf-8"  # a pipe (<(zcat …)) cannot be peeked at without losing what was read
    try:
        with open(p, "rb") as fh:
            return text_encoding(fh.read(4)) or "utf-8"
    except OSError:
        return "utf-8"


def open_text(path: str | Path):
    """A text stream over the capture (bz2/gz transparently; UTF-16/32 with a byte-order mark), undecodable
    bytes replaced; a compressed file cut short raises CaptureReadError (an OSError) when reading reaches
    the cut."""
    p = str(path)
    if p == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline="")
    if p.endswith(".bz2"):
        return io.TextIOWrapper(_Decompressed(bz2.open(p, "rb"), p, "bz2"), encoding="utf-8", errors="replace",
                                newline="")
    if p.endswith(".gz"):
        return io.TextIOWrapper(_Decompressed(gzip.open(p, "rb"), p, "gzip"), encoding="utf-8", errors="replace",
                                newline="")
    return open(p, encoding=_encoding(p), errors="replace", newline="")


_SQL_START = re.compile(r"(BEGIN|START|SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|WITH|SET|COPY|TRUNCATE|"
                        r"GRANT|VALUES|CALL|DO|EXPLAIN|PREPARE|EXECUTE|COMMENT)\b", re.I)


def detect_format(path: str | Path) -> str:
    name = str(path).lower()
    for suffix in (".bz2", ".gz"):
        name = name.removesuffix(suffix)
    if name.endswith(".sql"):
        return "sql"
    with open_text(path) as fh:
        head = [line for line, _ in zip(fh, range(50)) if line.strip()]
    if not head:
        return "sql"
    first = head[0].lstrip()
    code = next((line.lstrip() for line in head if not line.lstrip().startswith("--")), "")
    from dsql_audit.sqltext import lead

    # a SQL, psql or pgbench (\set …) script, maybe with a comment first
    if code.startswith("\\") or _SQL_START.match(code) or _SQL_START.match(lead(code)):
        return "sql"
    if first.startswith("[") and not _SEVERITY.search(first):  # "[%m] [%p] LOG: …" is a log
        return "pgss-json"
    if first.startswith("{"):
        try:
            doc = json.loads(head[0])
        except ValueError:
            return "pgss-json"  # a JSON document across lines
        return "pgss-json" if "statements" in doc else "jsonlog"
    header = first.lower()
    if "query" in header and ("calls" in header or "queryid" in header) and "|" in header:
        return "pgss-psql"
    if "query" in header and ("calls" in header or "queryid" in header) and "," in header:
        return "pgss-csv"
    if re.match(r'"?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? [A-Z]+"?,', first):
        return "csvlog"
    return "stderr"


_PREFIX_ESCAPES = {
    "t": (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: ?[A-Za-z]{1,5}|[+-]\d\d(?::?\d\d)?)?", "time"),
    "m": (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+(?: ?[A-Za-z]{1,5}|[+-]\d\d(?::?\d\d)?)?", "time"),
    "n": (r"\d+\.\d+", "epoch"), "p": (r"\d+", "pid"), "c": (r"[0-9a-f]+\.[0-9a-f]+", "session"),
    "l": (r"\d+", None), "s": (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: ?[A-Za-z]{1,5})?", None),
    "u": (r"[^\s@,\]]*", "user"), "d": (r"[^\s@,\]]*", "database"), "a": (r".*?", "application"),
    "h": (r"[^\s,\]]*", None), "r": (r"[^\s,\]]*", None), "e": (r"[0-9A-Z]{5}", None),
    "x": (r"\d+", None), "v": (r"(?:\d+/\d+)?", "vxid"), "i": (r".*?", None), "b": (r"[\w ]+?", None),
    "Q": (r"-?\d+", None), "L": (r"[^\s,\]]*", None), "P": (r"\d*", None),
}


def compile_prefix(prefix: str) -> re.Pattern:
    """A regex for lines written with this log_line_prefix (PostgreSQL's %-escapes, padding like %-10u
    included); named groups for what replay uses. Text after %q is optional (absent for non-session
    processes)."""
    out, seen, optional = [], set(), False
    i = 0
    while i < len(prefix):
        ch = prefix[i]
        if ch == "%" and i + 1 < len(prefix):
            m = re.match(r"%(-?\d+)?(.)", prefix[i:])
            esc = m.group(2)
            i += m.end()
            if esc == "%":
                out.append("%")
            elif esc == "q":
                out.append("(?:")
                optional = True
            elif esc in _PREFIX_ESCAPES:
                pattern, name = _PREFIX_ESCAPES[esc]
                if m.group(1):  # padded: spaces around the value
                    pattern = rf" *{pattern} *"
                if name and name not in seen:
                    seen.add(name)
                    out.append(f"(?P<{name}>{pattern})")
                else:
                    out.append(f"(?:{pattern})")
            else:
                out.append(re.escape(m.group(0)))
            continue
        out.append(r"\s+" if ch == " " else re.escape(ch))
        i += 1
    if optional:
        out.append(")?")
    return re.compile("".join(out))


def read_capture(path: str | Path, fmt: str | None = None, *, prefix: str | None = None
                 ) -> Iterator[Event | CaptureError]:
    """The capture's events; ``prefix``: the server's log_line_prefix, for stderr logs whose prefix the
    detection cannot read."""
    fmt = fmt or detect_format(path)
    if prefix is not None and fmt == "stderr":
        pattern = compile_prefix(prefix)
        with open_text(path) as fh:
            yield from _stderr(fh, pattern)
        return
    reader = {"stderr": _stderr, "csvlog": _csvlog, "jsonlog": _jsonlog, "pgss-csv": _pgss_csv,
              "pgss-json": _pgss_json, "pgss-psql": _pgss_psql, "sql": _sql}.get(fmt)
    if reader is None:
        raise ValueError(f"unknown capture format {fmt!r} (one of {', '.join(FORMATS)})")
    with open_text(path) as fh:
        yield from reader(fh)


def parse_params(detail: str) -> list | None:
    """'parameters: $1 = '42', $2 = NULL' → ['42', None] (PostgreSQL quotes values, doubling quotes)."""
    if not detail or "parameters:" not in detail:
        return None
    out: dict = {}
    for m in _PARAM.finditer(detail):
        v = m.group(2)
        out[int(m.group(1))] = None if v == "NULL" else v[1:-1].replace("''", "'")
    if out and max(out) > 65535:  # PostgreSQL's own bound on $n: a mangled line, not parameters
        return None
    return [out.get(i) for i in range(1, max(out) + 1)] if out else []


class _Builder:
    """Turns (severity, message, detail) records into Events, in capture order: a statement waits for
    the DETAIL with its parameters and for an ERROR that names it (both follow within a few lines, other
    sessions' lines interleaving); after WINDOW lines it is complete anyway, so memory stays bounded."""

    WINDOW = 10_000

    def __init__(self):
        self.pending: dict = {}  # session → Event not yet complete
        self.done: list = []  # complete events, a heap by line

    def record(self, line, session, sev, msg, detail=None, **ctx):
        if sev == "LOG":
            m = _MESSAGE.match(msg)
            if m is not None and not m.group("kind").startswith(("parse", "bind")):  # execute is what ran
                self._complete(session)
                ev = Event(line=line, sql=m.group("sql").strip(), session=session,
                           duration_ms=float(m.group("ms")) if m.group("ms") else None,
                           protocol="extended" if m.group("kind").startswith("execute") else "simple", **ctx)
                if detail:
                    ev.params = parse_params(detail)
                self.pending[session] = ev
        elif sev == "DETAIL":
            ev = self.pending.get(session)
            if ev is not None and ev.params is None:
                ev.params = parse_params(msg)
        elif sev in ("ERROR", "FATAL"):
            ev = self.pending.get(session)
            if ev is not None:
                ev.error = msg.strip()
        for s in [s for s, ev in self.pending.items() if line - ev.line > self.WINDOW]:
            self._complete(s)
        return self._release()

    def _complete(self, session) -> None:
        ev = self.pending.pop(session, None)
        if ev is not None:
            heapq.heappush(self.done, (ev.line, id(ev), ev))

    def _release(self) -> list:
        first_pending = min((ev.line for ev in self.pending.values()), default=None)
        out = []
        while self.done and (first_pending is None or self.done[0][0] < first_pending):
            out.append(heapq.heappop(self.done)[2])
        return out

    def flush(self) -> list:
        for s in list(self.pending):
            self._complete(s)
        return self._release()


def _stderr(fh, prefix: re.Pattern | None = None) -> Iterator[Event | CaptureError]:
    b = _Builder()
    current = None  # [line, session, sev, msg, ctx]
    matched = records = 0  # lines the given prefix matched / log records seen

    def done(rec):
        if rec is None:
            return []
        return b.record(rec[0], rec[1], rec[2], rec[3], **rec[4])

    for n, raw in enumerate(fh, 1):
        line = raw.rstrip("\n").rstrip("\r")
        if current is not None and (line.startswith("\t") or line.startswith("    ")):
            # a continuation of the record above (PostgreSQL starts them with a tab)
            current[3] += "\n" + (line[1:] if line.startswith("\t") else line)
            continue
        part = _SYSLOG_PART.search(line)
        if part is not None and part.group(1) != "1" and current is not None \
                and not _SEVERITY.search(part.group("rest")):  # "[%p-%l] … LOG:" is a record of its own
            current[3] += "\n" + part.group("rest").replace("#011", "")
            continue
        m = _SEVERITY.search(line)
        if m is None:
            if line.strip():
                yield from done(current)
                current = None
                yield CaptureError(n, f"not a PostgreSQL log line: {line[:120]!r}")
            continue
        yield from done(current)
        if prefix is not None:
            pm = prefix.match(line)
            records += 1
            if pm is not None and _SEVERITY.match(line, pm.end()) is not None:
                matched += 1
                g = pm.groupdict()
                session = g.get("session") or g.get("pid") or None
                ctx = {k: g.get(k) or None for k in ("time", "user", "database", "application", "vxid")}
                if ctx["time"] is None and g.get("epoch"):
                    import datetime

                    try:
                        ctx["time"] = datetime.datetime.fromtimestamp(float(g["epoch"]), datetime.timezone.utc
                                                                      ).strftime("%Y-%m-%d %H:%M:%S.%f+00")
                    except (OverflowError, OSError, ValueError):  # a clock far outside any real one
                        ctx["time"] = None
                m = _SEVERITY.match(line, pm.end())
                current = [n, session, m.group("sev"), m.group("msg"), ctx]
                continue
        prefix_text = line[:m.start()]
        epoch = _EPOCH.match(prefix_text)
        sid = _SESSION_ID.search(prefix_text, epoch.end() if epoch else 0)
        pid = _PID.search(prefix_text)
        ts = _TIMESTAMP.match(prefix_text.lstrip())
        # no %c or [%p]: what is left of the prefix without its timestamp names the backend (%p:%u@%d …)
        rest = prefix_text.lstrip()[ts.end():] if ts else prefix_text[epoch.end():] if epoch else prefix_text
        session = sid.group(1) if sid else pid.group(1) if pid else rest.strip(" :[]") or None
        ctx = {"time": ts.group(0) if ts else None}
        vx = _VXID.search(prefix_text, ts.end() if ts else 0)
        if vx is not None:
            ctx["vxid"] = vx.group(1)
        for um in _USER_DB.finditer(prefix_text):
            if um.group("user"):
                ctx["user"] = um.group("user")
            if um.group("db"):
                ctx["database"] = um.group("db")
            if um.group("app"):
                ctx["application"] = um.group("app")
        current = [n, session, m.group("sev"), m.group("msg"), ctx]
    yield from done(current)
    yield from b.flush()
    if prefix is not None and records and not matched:
        yield CaptureError(1, f"no line of this log matches the given --log-line-prefix (pattern "
                              f"{prefix.pattern[:80]!r}); sessions and times were read from the detected prefix")


def _csvlog(fh) -> Iterator[Event | CaptureError]:
    csv.field_size_limit(1 << 30)
    b = _Builder()
    reader = csv.reader(fh)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield CaptureError(reader.line_num, f"unreadable csvlog row: {exc}")
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        if len(row) < 22:
            if row:
                yield CaptureError(line, f"csvlog row with {len(row)} columns (a csvlog row has 22–26)")
            continue
        c = _CSV
        app = row[c["application"]] if len(row) > c["application"] else None  # PostgreSQL 9.0 has none
        ctx = {"time": row[c["log_time"]], "user": row[c["user"]] or None, "database": row[c["database"]] or None,
               "application": app or None, "vxid": row[c["vxid"]] or None}
        yield from b.record(line, row[c["session"]] or row[c["pid"]], row[c["severity"]], row[c["message"]],
                            detail=row[c["detail"]], **ctx)
    yield from b.flush()


def _jsonlog(fh) -> Iterator[Event | CaptureError]:
    b = _Builder()
    for n, raw in enumerate(fh, 1):
        if not raw.strip():
            continue
        try:
            doc = json.loads(raw)
        except ValueError:
            yield CaptureError(n, "not a JSON log record")
            continue
        if isinstance(doc, dict) and isinstance(doc.get("textPayload"), str):
            # Google Cloud Logging (Cloud SQL): a stderr line without its time, the time beside it
            text = doc["textPayload"]
            m = _SEVERITY.search(text)
            if m is None:
                continue  # not a server record (a checkpoint line …)
            pid = _PID.search(text[:m.start()])
            user_db = {k: v for um in _USER_DB.finditer(text[:m.start()]) for k, v in um.groupdict().items() if v}
            yield from b.record(n, pid.group(1) if pid else text[:m.start()].strip() or None, m.group("sev"),
                                m.group("msg"), time=doc.get("timestamp"), user=user_db.get("user"),
                                database=user_db.get("db"), application=user_db.get("app"))
            continue
        rec = doc.get("record", doc) if isinstance(doc, dict) else None
        if not isinstance(rec, dict):
            yield CaptureError(n, "not a JSON log record")
            continue
        session = rec.get("session_id") or str(rec.get("pid") or rec.get("process_id") or "")
        sev = rec.get("error_severity") or ""
        msg = rec.get("message") or ""
        ctx = {"time": rec.get("timestamp") or rec.get("log_time"),
               "user": rec.get("user") or rec.get("user_name"),
               "database": rec.get("dbname") or rec.get("database_name"),
               "application": rec.get("application_name"), "vxid": rec.get("vxid") or rec.get("virtual_transaction_id")}
        yield from b.record(n, session, sev, msg, detail=rec.get("detail"), **ctx)
    yield from b.flush()


def _number(v):
    """A finite number, or None (absent, not a number, or inf/nan: 1e400 reads as inf)."""
    import math

    try:
        n = float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return n if math.isfinite(n) else None


_MAX_CALLS = 2**63 - 1  # pg_stat_statements counts calls in an int8


def _pgss_rows(rows, line_of) -> Iterator[Event | CaptureError]:
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            yield CaptureError(line_of(i), "not a pg_stat_statements row")
            continue
        query = row.get("query")
        if not query:
            yield CaptureError(line_of(i), "pg_stat_statements row without a query")
            continue
        if str(row.get("toplevel", "t")).lower() in ("f", "false", "0"):
            continue  # run inside a function or CREATE EXTENSION, not sent by the application (PostgreSQL 14+)
        calls = row.get("calls")
        n = _number(calls)
        if calls not in (None, "") and (n is None or not 0 <= n <= _MAX_CALLS):
            yield CaptureError(line_of(i), f"calls = {str(calls)[:40]!r} is not a count of calls (0 to 2^63-1): "
                                           "row left out")
            continue
        yield _pgss_event(line_of(i), query, row, user=row.get("userid") or row.get("rolname"),
                          database=row.get("dbid") or row.get("datname"))


def _figure(row: dict, *names):
    """The first of the columns present (PostgreSQL 13 renamed total_time to total_exec_time …)."""
    for name in names:
        if row.get(name) not in (None, ""):
            return _number(row[name])
    return None


def _pgss_event(line: int, query: str, row: dict, **ctx) -> Event:
    calls = _number(row.get("calls"))
    queryid = row.get("queryid")
    queryid = str(queryid).strip() if queryid not in (None, "") else None
    return Event(line=line, sql=query, calls=int(calls) if calls is not None else 1, queryid=queryid or None,
                 total_ms=_figure(row, "total_exec_time", "total_time"), rows=_figure(row, "rows"),
                 mean_ms=_figure(row, "mean_exec_time", "mean_time"), max_ms=_figure(row, "max_exec_time", "max_time"),
                 **ctx)


def _pgss_csv(fh) -> Iterator[Event | CaptureError]:
    csv.field_size_limit(1 << 30)
    reader = csv.DictReader(fh, strict=True)  # strict: a quote left open (a cut file) is an error, not a row
    lines: list = []

    def rows():
        try:
            reader.fieldnames  # noqa: B018 - reads the header, so line_num counts data lines from here
        except csv.Error:
            pass
        while True:
            start = reader.line_num + 1  # a quoted query can span lines: the row starts here
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                lines.append(start)
                yield {"_error": str(exc)}
                continue
            lines.append(start)
            yield row
    for i, row in enumerate(rows()):
        if "_error" in row:
            yield CaptureError(lines[i], f"unreadable CSV row: {row['_error']}")
            continue
        if None in row:  # more fields than the header names
            yield CaptureError(lines[i], "CSV row with more columns than the header")
            continue
        if None in row.values():  # fewer: DictReader fills the missing ones with None
            yield CaptureError(lines[i], f"CSV row with {sum(v is not None for v in row.values())} of "
                                         f"{len(row)} columns (a cut or truncated export?): left out")
            continue
        yield from _pgss_rows([row], lambda _, i=i: lines[i])


def _pgss_json(fh) -> Iterator[Event | CaptureError]:
    text = fh.read()
    try:
        doc = json.loads(text)
    except ValueError as exc:
        yield CaptureError(getattr(exc, "lineno", 1), f"not a pg_stat_statements JSON export: {exc}")
        return
    if isinstance(doc, dict):
        for t in doc.get("tables") or ():
            if isinstance(t, dict) and t.get("name") and _number(t.get("rows")) is not None:
                yield TableSize(1, str(t["name"]), int(_number(t["rows"])))
    rows = doc.get("statements", []) if isinstance(doc, dict) else doc
    rows = rows if isinstance(rows, list) else []
    lines = _element_lines(text, isinstance(doc, dict))
    yield from _pgss_rows(rows, lambda i: lines[i] if i < len(lines) else i + 1)


def _element_lines(text: str, in_object: bool) -> list:
    """The line each element of the statements array starts on (the file is small: it was json.loads'd)."""
    if in_object:
        m = re.search(r'"statements"\s*:\s*\[', text)
        if m is None:
            return []
        pos = m.end()
    else:
        pos = text.find("[") + 1
    decoder = json.JSONDecoder()
    out, line, counted = [], 1, 0
    while pos < len(text):
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            break
        line += text.count("\n", counted, pos)
        counted = pos
        out.append(line)
        try:
            _, pos = decoder.raw_decode(text, pos)
        except ValueError:
            break
    return out


_ROWS_FOOTER = re.compile(r"^\(\d+ rows?\)$")


def _pgss_psql(fh) -> Iterator[Event | CaptureError]:
    """psql's output of SELECT … FROM pg_stat_statements: aligned (the default: columns cut at the
    separator line's '+' positions, wrapped cells ending in '+') or unaligned (-A, '|' between fields)."""
    lines = iter(enumerate(fh, 1))
    header = None
    for n, raw in lines:
        if raw.strip():
            header = (n, raw.rstrip("\n"))
            break
    if header is None:
        return
    names = [c.strip().lower() for c in header[1].split("|")]
    if "query" not in names:
        yield CaptureError(header[0], "no query column in the header")
        return
    q = names.index("query")
    sep = None
    first = next(lines, None)
    if first is not None and re.fullmatch(r"[-+]+", first[1].strip()):
        line = first[1].rstrip("\n")
        sep = [i for i, ch in enumerate(line) if ch == "+"]
    pending = None if first is None or sep is not None else first

    def cells(text: str) -> list:
        if sep is None:  # unaligned: a '|' inside the query joins back into it
            parts = text.split("|")
            extra = len(parts) - len(names)
            if extra > 0:
                parts = parts[:q] + ["|".join(parts[q:q + extra + 1])] + parts[q + extra + 1:]
            return parts
        bounds = [-1, *sep, max(len(text), sep[-1] + 1) + 1]
        return [text[bounds[i] + 1:bounds[i + 1]] for i in range(len(bounds) - 1)]

    current = None
    def emit(entry):
        n, row = entry
        return _pgss_event(n, row.get("query", "").strip(), {k: v.strip() for k, v in row.items()})

    source = itertools.chain([pending] if pending else [], lines)  # streaming, not a list
    carry = None  # unaligned: a row whose query holds newlines spans several lines
    for n, raw in source:
        text = raw.rstrip("\n")
        if carry is not None:
            n, text = carry[0], carry[1] + "\n" + text
            carry = None
        elif not text.strip() or _ROWS_FOOTER.match(text.strip()):
            continue
        if sep is None and len(text.split("|")) < len(names):
            carry = (n, text)
            continue
        parts = cells(text)
        if len(parts) != len(names):
            yield CaptureError(n, f"row with {len(parts)} columns, the header names {len(names)}")
            continue
        if sep is not None and current is not None and current[2]:  # the row above wrapped a cell
            for i, part in enumerate(parts):
                p = part.rstrip()
                if p:  # psql pads a cell with one space; the rest of the indentation is the query's
                    p = (p[1:] if p.startswith(" ") else p).removesuffix("+").rstrip()
                    current[1][names[i]] = current[1].get(names[i], "") + "\n" + p
            current[2] = any(p.rstrip().endswith("+") for p in parts)
            continue
        if current is not None:
            yield emit((current[0], current[1]))
        row = {}
        for i, part in enumerate(parts):
            row[names[i]] = part.strip().rstrip("+").rstrip() if sep is not None else part
        current = [n, row, sep is not None and any(p.rstrip().endswith("+") for p in parts)]
    if carry is not None:
        yield CaptureError(carry[0], f"row cut short: {carry[1][:80]!r}")
    if current is not None:
        yield emit((current[0], current[1]))


_PGBENCH_VAR = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _pgbench_value(expr: str, variables: dict, rng) -> int | float:
    """A pgbench \\set expression: integers and floats, + - * / %, parentheses, :variables and the
    functions pgbench scripts use (random, random_uniform, abs, least, greatest, int, double, pi)."""
    import ast
    import math
    import operator

    text = _PGBENCH_VAR.sub(lambda m: repr(variables.get(m.group(1), 1)), expr)
    funcs = {"random": lambda a, b: rng.randint(int(a), int(b)), "random_uniform": lambda a, b: rng.randint(int(a), int(b)),
             "random_gaussian": lambda a, b, *_: rng.randint(int(a), int(b)),
             "random_exponential": lambda a, b, *_: rng.randint(int(a), int(b)),
             "random_zipfian": lambda a, b, *_: rng.randint(int(a), int(b)),
             "abs": abs, "least": min, "greatest": max, "int": int, "double": float, "pi": lambda: math.pi,
             "sqrt": math.sqrt}
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Mod: operator.mod,
           ast.Div: lambda a, b: a // b if isinstance(a, int) and isinstance(b, int) else a / b}

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in funcs:
            return funcs[node.func.id](*(ev(a) for a in node.args))
        raise ValueError(f"unsupported pgbench expression: {expr}")

    return ev(ast.parse(text.strip(), mode="eval"))


def _sql(fh) -> Iterator[Event | CaptureError]:
    """A SQL script, or a pgbench script: \\set variables are evaluated (random() seeded, so a replay is
    repeatable; :scale is 1 unless the script sets it) and :name references in statements replaced."""
    import random

    from dsql_audit.sqltext import split_text

    variables: dict = {"scale": 1, "client_id": 0}
    rng = random.Random(0)
    for st in split_text(fh.read()):
        if st.kind == "meta":
            m = re.match(r"\\set\s+(\w+)\s+(.*)", st.text.strip())
            if m:
                try:
                    variables[m.group(1)] = _pgbench_value(m.group(2), variables, rng)
                except (ValueError, SyntaxError, TypeError, ZeroDivisionError) as exc:
                    yield CaptureError(st.line, f"{exc}")
            continue
        if st.kind == "sql":
            text = st.text
            if ":" in text and variables:
                text = _PGBENCH_VAR.sub(lambda m: str(variables[m.group(1)]) if m.group(1) in variables
                                        else m.group(0), text)
            yield Event(line=st.line, sql=text, session="script")


VXID_WINDOW = 10_000  # events held back while a session's next statement is awaited (bounded memory)


def mark_transactions(items, window: int = VXID_WINDOW):
    """Log events with ``continues`` set from their virtual transaction ids (%v, csvlog, jsonlog): True when
    the same session's next logged statement ran in the same transaction. With log_statement = mod or ddl
    no BEGIN or COMMIT is logged, yet the writes of one transaction share a vxid — this is what lets replay
    rebuild those transactions. Order is kept; an event waits (at most ``window`` events) for its session's
    next statement, and one still waiting then, or at the end, is the last of its transaction."""
    from collections import deque

    pending: deque = deque()  # [item, resolved]
    waiting: dict = {}  # session → its entry awaiting the session's next statement
    for item in items:
        entry = [item, True]
        if isinstance(item, Event) and item.vxid and item.session and not item.vxid.endswith("/0"):
            prev = waiting.pop(item.session, None)
            if prev is not None:
                prev[0].continues = prev[0].vxid == item.vxid
                prev[1] = True
            entry[1] = False
            waiting[item.session] = entry
        pending.append(entry)
        while pending and (pending[0][1] or len(pending) > window):
            head = pending.popleft()
            if not head[1] and waiting.get(head[0].session) is head:
                del waiting[head[0].session]
            yield head[0]
    for entry in pending:
        yield entry[0]
