"""`dsql-audit replay`: captured workloads driven through the DSQL-semantics engine.

Logs are replayed session by session in capture order on one thread: on the engine (as on DSQL) no
statement waits for another transaction, so one driver can interleave every captured session exactly as
the log orders them, and a conflict shows up at the COMMIT that loses. pg_stat_statements exports carry no
data or sessions: their statements go through the gate only, and each finding is weighted by the
statement's calls. Findings use the scan's Finding model (path = the capture, line = where the statement
is), so every reporter works on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dsql_audit.catalog import load_catalog
from dsql_audit.model import Finding, InputError, Severity
from dsql_audit.replay.captures import CaptureError, Event, detect_format, read_capture
from dsql_audit.sqltext import blank_literals

_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(\.\d+)?\s*(?:([+-])(\d\d):?(\d\d)?)?")


def capture_seconds(stamp: str | None) -> float | None:
    """Seconds since the epoch of a log timestamp ("2026-11-23 08:20:00.513 UTC", "…+02:00"); a zone
    abbreviation counts as UTC (only differences within one capture matter)."""
    if not stamp:
        return None
    m = _TIME.search(stamp)
    if m is None:
        return None
    import calendar

    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + float(m.group(7) or 0)
    if m.group(8):
        offset = int(m.group(9)) * 3600 + int(m.group(10) or 0) * 60
        secs -= offset if m.group(8) == "+" else -offset
    return secs


class CaptureClock:
    """The engine's clock during a replay: the captured time of the statement being replayed, so the
    300-second transaction age and the 60-minute connection lifetime are judged on real timings."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def redact(sql: str) -> str:
    """Literals replaced by ? (captures hold customer data)."""
    return blank_literals(sql)


@dataclass
class ReplayStats:
    statements: int = 0
    sessions: int = 0
    transactions_committed: int = 0
    occ_conflicts: int = 0
    calls: int = 0  # pg_stat_statements calls behind the statements (1 per logged statement)
    calls_affected: int = 0
    transactions_lost: int = 0  # ended by a DSQL error at COMMIT (OCC, bounds)
    contended: dict = field(default_factory=dict)  # table → OCC conflicts on it
    transactions: list = field(default_factory=list)  # the largest and the longest: see _keep_transaction
    by_format: dict = field(default_factory=dict)


@dataclass
class ReplayResult:
    """What ScanResult is for scan: the reporters read findings, errors, profile and counts."""

    findings: list
    errors: list
    profile: object
    stats: ReplayStats
    inputs: int = 0
    units: int = 0
    frameworks: dict = field(default_factory=dict)
    bytes: int = 0

    def replay_summary(self) -> dict:
        s = self.stats
        ended = s.transactions_committed + s.transactions_lost
        return {"statements": s.statements, "sessions": s.sessions, "calls": s.calls,
                "calls_affected": s.calls_affected,
                "share_of_calls_affected": round(s.calls_affected / s.calls, 4) if s.calls else 0.0,
                "transactions_committed": s.transactions_committed, "transactions_lost": s.transactions_lost,
                "occ_conflicts": s.occ_conflicts,
                "occ_conflict_rate": round(s.occ_conflicts / ended, 4) if ended else 0.0,
                "top_contended_tables": sorted(s.contended.items(), key=lambda kv: -kv[1])[:10],
                "largest_transactions": sorted(s.transactions, key=lambda x: -x["rows"])[:10],
                "longest_transactions": sorted(s.transactions, key=lambda x: -x["seconds"])[:10],
                "formats": s.by_format}


def _finding(f: dict, ev: Event, path: str, redacted: bool) -> Finding:
    rule = load_catalog().get(f["rule"])
    sql = redact(ev.sql) if redacted else ev.sql
    first = sql.strip().splitlines()[0] if sql.strip() else ""
    where = f" (session {ev.session})" if ev.session and ev.session != "script" else ""
    calls = f", {ev.calls} calls" if ev.calls > 1 else ""
    if f.get("colliding"):  # where an OCC conflict happened: the write that met the other transaction
        write = " ".join(f["colliding"][0].split())
        calls += f"; colliding write: {redact(write) if redacted else write}"
    return Finding(
        rule=rule.code if rule else f["rule"], name=f["rule"], severity=rule.severity if rule else Severity.error,
        category=rule.category if rule else "workload", message=f"{f['message']}{where}{calls}",
        path=path, line=ev.line, column=1, end_line=ev.line, end_column=max(2, len(first) + 1),
        source="replay", snippet=first[:300], fix=rule.fix if rule else "", docs=rule.docs if rule else "",
        sqlstate=f["sqlstate"], dsql_message=f["message"], occurrences=ev.calls, queryid=ev.queryid,
        transaction=f"{ev.session}/{f['transaction']}" if f.get("transaction") else None)


def replay(paths: list[str], *, profile: str | None = None, schema: str | None = None, fmt: str | None = None,
           redacted: bool = False, log=None, progress=None, engine=None) -> ReplayResult:
    """Replay the captures; ``engine``: a started Engine to use (its data stays), else a fresh one."""
    from dsql_audit.engine import DsqlError, Engine
    from dsql_audit.engine.script import load_sql_file

    log = log or (lambda line: None)
    stats = ReplayStats()
    findings: list[Finding] = []
    errors: list[InputError] = []
    clock = CaptureClock()
    from contextlib import nullcontext

    if engine is not None:
        engine.clock = clock
    with (nullcontext(engine) if engine is not None else Engine(profile=profile or "latest", clock=clock)) as engine:
        if schema:
            ok, refused = load_sql_file(engine, schema, log)
            log(f"schema {schema}: {ok} statements loaded, {refused} refused as DSQL refuses them")
        sessions: dict = {}  # (capture, captured session) → engine session
        for path, kind, item in _merged(paths, fmt, stats, errors):
            if isinstance(item, CaptureError):
                errors.append(InputError(path, item.message, line=item.line))
                continue
            stats.statements += 1
            stats.calls += item.calls
            at = capture_seconds(item.time)
            if at is not None and at >= clock.now:  # the clock never runs backwards
                clock.now = at
            before = len(engine.findings)
            if kind.startswith("pgss"):
                _gate_only(engine, item)
            else:
                key = (path, item.session)
                s = sessions.get(key)
                if s is None:
                    s = sessions[key] = engine.session()
                params = None if item.params is None else [None if p is None else p.encode() for p in item.params]
                shape = (s.rows, s.bytes, s.started, s.in_txn and not s.aborted)
                try:
                    r = s.execute(item.sql, params) if params is not None else s.execute(item.sql)
                    if r.command_tag == "COMMIT":
                        stats.transactions_committed += 1
                        _keep_transaction(stats, path, item, shape, clock.now, "committed")
                except DsqlError as e:
                    if item.sql.strip().rstrip(";").upper() in ("COMMIT", "END", "COMMIT WORK", "END WORK"):
                        _keep_transaction(stats, path, item, shape, clock.now, f"failed {e.sqlstate}")
            new = engine.findings[before:]
            for f in new:
                findings.append(_finding(f, item, path, redacted))
                if f["statement"] == "COMMIT":
                    stats.transactions_lost += 1
                if f["rule"] == "occ-conflict":
                    stats.occ_conflicts += 1
                    for text in f.get("colliding") or ():
                        rel = (engine.decide(text)[0].stmt or {}).get("relation") or {}
                        if rel.get("relname"):
                            stats.contended[rel["relname"]] = stats.contended.get(rel["relname"], 0) + 1
            if new:
                stats.calls_affected += item.calls
            if progress is not None:
                progress(stats.statements)
        stats.sessions = len(sessions)
        for s in sessions.values():
            s.close()
        profile_obj = engine.profile
    return ReplayResult(findings=findings, errors=errors, profile=profile_obj, stats=stats, inputs=len(paths),
                        units=stats.statements)


def _keep_transaction(stats: ReplayStats, path: str, ev: Event, shape, now: float, outcome: str) -> None:
    """Remember an ended explicit transaction if it is among the largest or longest so far (bounded)."""
    rows, size, started, open_ = shape
    if not open_:
        return
    stats.transactions.append({"capture": path, "line": ev.line, "session": ev.session, "rows": rows,
                               "bytes": size, "seconds": round(now - started, 3) if started is not None else 0.0,
                               "outcome": outcome})
    if len(stats.transactions) > 200:  # keep the 10 largest and 10 longest
        keep = sorted(stats.transactions, key=lambda x: -x["rows"])[:10]
        keep += [x for x in sorted(stats.transactions, key=lambda x: -x["seconds"])[:10] if x not in keep]
        stats.transactions[:] = keep


def _merged(paths, fmt, stats, errors):
    """(capture, format, event or error) from every capture: logs merged by captured time (stable, so one
    capture keeps its own order), then pg_stat_statements exports and scripts, each in its own order."""
    import heapq

    logs, others = [], []
    for path in paths:
        try:
            kind = fmt or detect_format(path)
        except OSError as exc:
            errors.append(InputError(path, f"cannot read the capture: {exc}"))
            continue
        stats.by_format[path] = kind
        (logs if kind in ("stderr", "csvlog", "jsonlog") else others).append((path, kind))

    def stream(n, path, kind):
        last = float("-inf")
        try:
            for item in read_capture(path, kind):
                at = capture_seconds(getattr(item, "time", None))
                last = at if at is not None and at > last else last
                yield (last, n), (path, kind, item)
        except OSError as exc:
            yield (last, n), (path, kind, CaptureError(0, f"cannot read the capture: {exc}"))

    for _, entry in heapq.merge(*(stream(n, p, k) for n, (p, k) in enumerate(logs)), key=lambda x: x[0]):
        yield entry
    for path, kind in others:
        try:
            for item in read_capture(path, kind):
                yield path, kind, item
        except OSError as exc:
            yield path, kind, CaptureError(0, f"cannot read the capture: {exc}")


def _gate_only(engine, ev: Event) -> None:
    """A normalized statement without data or session: what the gate refuses, recorded as the engine
    records a refusal."""
    facts, refused = engine.decide(ev.sql)
    for r in refused:
        engine.findings.append({"rule": r.slug, "code": r.code, "variant": r.variant, "sqlstate": r.sqlstate,
                                "message": r.message, "statement": ev.sql, "session": None,
                                "transaction": None, "time": None})
