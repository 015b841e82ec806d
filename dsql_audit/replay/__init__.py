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
from dsql_audit.replay.captures import CaptureError, Event, TableSize, detect_format, mark_transactions, read_capture
from dsql_audit.secrets import mask
from dsql_audit.sqltext import blank_literals, lead, where_clause

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
    time_ms: float = 0.0  # pg_stat_statements total_exec_time behind the statements (logs: durations)
    time_affected_ms: float = 0.0
    transactions_lost: int = 0  # ended by a DSQL error at COMMIT (OCC, bounds)
    contended: dict = field(default_factory=dict)  # table → OCC conflicts on it
    contended_keys: dict = field(default_factory=dict)  # colliding write (literals blanked) → conflicts
    contended_rows: dict = field(default_factory=dict)  # "table WHERE key = value" of colliding writes → conflicts
    transactions: list = field(default_factory=list)  # the largest and the longest: see _keep_transaction
    by_format: dict = field(default_factory=dict)
    schema_statements: int = 0
    schema_refused: int = 0
    seeded_rows: int = 0
    transactions_rebuilt: int = 0  # opened by replay from shared virtual transaction ids (no BEGIN logged)
    autocommit: int = 0  # statements run outside any transaction block (each its own transaction)
    autocommit_failed: int = 0  # … of which DSQL refused or ended with an error
    failed_in_capture: int = 0  # statements the captured server refused too
    failed_in_engine: dict = field(default_factory=dict)  # SQLSTATE → statements the engine refused otherwise


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
    target: dict | None = None  # --target: the endpoint's real outcomes beside the engine's
    notes: list = field(default_factory=list)  # what the reader must know first (shown at the report's top)

    def replay_summary(self) -> dict:
        s = self.stats
        ended = s.transactions_committed + s.transactions_lost
        out = {"statements": s.statements, "sessions": s.sessions, "calls": s.calls,
               "calls_affected": s.calls_affected,
               "share_of_calls_affected": round(s.calls_affected / s.calls, 4) if s.calls else 0.0,
               "time_ms": round(s.time_ms, 3), "time_affected_ms": round(s.time_affected_ms, 3),
               "share_of_time_affected": round(s.time_affected_ms / s.time_ms, 4) if s.time_ms else 0.0,
               "transactions_committed": s.transactions_committed, "transactions_lost": s.transactions_lost,
               "share_of_transactions_lost": round(s.transactions_lost / ended, 4) if ended else 0.0,
               "occ_conflicts": s.occ_conflicts,
               "occ_conflict_rate": round(s.occ_conflicts / ended, 4) if ended else 0.0,
               "top_contended_tables": sorted(s.contended.items(), key=lambda kv: -kv[1])[:10],
               "top_contended_writes": sorted(s.contended_keys.items(), key=lambda kv: -kv[1])[:10],
               "top_contended_rows": sorted(s.contended_rows.items(), key=lambda kv: -kv[1])[:10],
               "largest_transactions": sorted(s.transactions, key=lambda x: -x["rows"])[:10],
               "longest_transactions": sorted(s.transactions, key=lambda x: -x["seconds"])[:10],
               "schema": {"statements": s.schema_statements, "refused": s.schema_refused},
               "seeded_rows": s.seeded_rows, "transactions_rebuilt": s.transactions_rebuilt,
               "autocommit_statements": s.autocommit, "autocommit_failed": s.autocommit_failed,
               "failed_in_capture": s.failed_in_capture, "failed_in_engine": dict(sorted(s.failed_in_engine.items())),
               "formats": s.by_format}
        if self.target is not None:
            out["target"] = self.target
        return out


def _finding(f: dict, ev: Event, path: str, redacted: bool, source: str = "replay") -> Finding:
    rule = load_catalog().get(f["rule"])
    sql = redact(ev.sql) if redacted else mask(ev.sql)
    first = sql.strip().splitlines()[0] if sql.strip() else ""
    where = f" (session {ev.session})" if ev.session and ev.session != "script" else ""
    calls = f", {ev.calls:,} calls" if ev.calls > 1 else ""
    if f.get("colliding"):  # where an OCC conflict happened: the write that met the other transaction
        write = " ".join(f["colliding"][0].split())
        calls += f"; colliding write: {redact(write) if redacted else write}"
    variant = rule.variant(f["variant"]) if rule and f.get("variant") in rule.variants else None
    return Finding(
        rule=rule.code if rule else f["rule"], name=f["rule"],
        severity=variant.severity if variant else rule.severity if rule else Severity.error,
        category=rule.category if rule else "workload", message=f"{f['message']}{where}{calls}",
        path=path, line=ev.line, column=1, end_line=ev.line, end_column=max(2, len(first) + 1),
        source=source, snippet=first[:300], fix=(variant and variant.fix) or (rule.fix if rule else ""),
        docs=rule.docs if rule else "", sqlstate=f["sqlstate"], dsql_message=f.get("dsql_message", f["message"]),
        occurrences=ev.calls, queryid=ev.queryid,
        transaction=f"{ev.session}/{f['transaction']}" if f.get("transaction") else None)


def replay(paths: list[str], *, profile: str | None = None, schema: str | None = None, fmt: str | None = None,
           redacted: bool = False, log=None, progress=None, engine=None, data: list[str] | None = None,
           speed: float | None = None, target: str | None = None, sleep=None,
           log_line_prefix: str | None = None, aggregate: bool = True) -> ReplayResult:
    """Replay the captures. ``engine``: a started Engine to use (its data stays), else a fresh one;
    ``data``: files to seed tables from; ``speed``: pace the replay at captured time divided by this (None:
    as fast as possible); ``target``: a DSN to replay against beside the engine (the caller has checked
    that writes there are allowed); ``aggregate``: one finding per rule and statement shape in a capture,
    with its occurrences (memory stays flat however long the log), else one per occurrence."""
    from contextlib import nullcontext

    from dsql_audit.engine import DsqlError, Engine
    from dsql_audit.replay.workload import WorkloadJudge, finding as workload_finding

    log = log or (lambda line: None)
    stats = ReplayStats()
    findings = _Findings(aggregate)
    errors: list[InputError] = []
    clock = CaptureClock()
    pace = _Pacer(speed, sleep)
    if engine is not None:
        engine.clock = clock
    remote = None
    if target:
        from dsql_audit.replay.target import Target

        remote = Target(target)
    owned = engine is None
    with (nullcontext(engine) if engine is not None else Engine(profile=profile or "latest", clock=clock)) as engine:
        if engine._server is None:
            engine.start()
        if schema:
            ok, refused = _load_schema(engine, schema, errors, log)
            stats.schema_statements, stats.schema_refused = ok + len(refused), len(refused)
            log(f"schema {schema}: {ok} statements loaded, {len(refused)} refused as DSQL refuses them")
            for where, line, text, exc in refused:
                if exc.finding is not None:
                    findings.append(_finding(exc.finding, Event(line=line, sql=text), where, False, "schema"))
                elif exc.sqlstate != "25P02":
                    errors.append(InputError(where, f"{exc.sqlstate} {exc.message}", line=line))
        table_rows: dict = {}
        if data:
            from dsql_audit.replay.data import seed

            table_rows, data_errors = seed(engine, data, log)
            errors.extend(data_errors)
            stats.seeded_rows = sum(table_rows.values())
        judge = WorkloadJudge(engine, resolve=bool(schema), table_rows=table_rows)
        sessions: dict = {}  # (capture, captured session) → engine session, least recently used first
        rebuilt: set = set()  # sessions in a transaction replay opened from virtual transaction ids
        seen_sessions: set = set()
        pgss_affected: set = set()  # (capture, line) of pg_stat_statements entries with a finding
        pgss_time: dict = {}  # (capture, line) → total time, for findings made at the end
        for path, kind, item in _merged(paths, fmt, stats, errors, log_line_prefix):
            if isinstance(item, CaptureError):
                errors.append(InputError(path, item.message, line=item.line, skipped=item.unread))
                continue
            if isinstance(item, TableSize):
                judge.table_rows[item.table if "." in item.table else f"public.{item.table}"] = item.rows
                continue
            stats.statements += 1
            stats.calls += item.calls
            spent = item.total_ms if item.total_ms is not None else item.duration_ms or 0.0
            stats.time_ms += spent
            at = capture_seconds(item.time)
            if at is not None and at >= clock.now:  # the clock never runs backwards
                clock.now = at
                pace.wait(at)
            if kind.startswith("pgss"):
                facts, refusals = engine.decide(_named_placeholders(item.sql))
                if facts.parse_error is not None:
                    errors.append(InputError(path, f"statement does not parse ({facts.parse_error[0]}); "
                                             f"pg_stat_statements cuts long queries at track_activity_query_size: "
                                             f"{' '.join(item.sql.split())[:80]}", line=item.line))
                new = [dict(workload_finding(r.slug, r.variant, r.message, item.sql), dsql_message=r.message)
                       for r in refusals]
                new += judge.judge(item, facts, bool(refusals), path)
                if remote is not None:
                    remote.compare(path, item.line, item.sql, _predicted(new), remote.parse(item.sql))
                if _affected(new, item, spent)[0]:
                    pgss_affected.add((path, item.line))
                pgss_time[(path, item.line)] = spent
            else:
                before = len(engine.findings)
                key = (path, item.session)
                s = sessions.pop(key, None)  # re-inserted last: the dict's order is least recently used first
                if s is None:
                    _close_idle(sessions, stats)
                    s = engine.session()
                    if key not in seen_sessions:
                        seen_sessions.add(key)
                        stats.sessions += 1
                sessions[key] = s
                params = None if item.params is None else [None if p is None else p.encode() for p in item.params]
                if item.continues and not s.in_txn and not _TXN_CONTROL.match(lead(item.sql)):
                    # the log shows no BEGIN (log_statement = mod), but the next statement shares this vxid
                    s.execute("BEGIN")
                    rebuilt.add(key)
                    stats.transactions_rebuilt += 1
                    if remote is not None:
                        remote.execute(key, "BEGIN", None)
                shape = (s.rows, s.bytes, s.started, s.in_txn and not s.aborted)
                was_open = s.in_txn
                outcome = None
                try:
                    r = s.execute(item.sql, params) if params is not None else s.execute(item.sql)
                    if r.command_tag == "COMMIT":
                        stats.transactions_committed += 1
                        _keep_transaction(stats, path, item, shape, clock.now, "committed")
                except DsqlError as e:
                    outcome = e
                    if _is_commit(item.sql):
                        _keep_transaction(stats, path, item, shape, clock.now, f"failed {e.sqlstate}")
                if key in rebuilt and not item.continues:  # its last logged statement: the rebuilt COMMIT
                    rebuilt.discard(key)
                    if s.in_txn:
                        end = _rebuilt_commit(s, stats, path, item, clock.now)
                        if remote is not None:
                            from dsql_audit.replay.target import Outcome

                            remote.compare(path, item.line, "COMMIT -- rebuilt from the virtual transaction id",
                                           Outcome(end.sqlstate, end.message) if end else Outcome(),
                                           remote.execute(key, "COMMIT", None))
                new = engine.findings[before:]
                if owned:
                    del engine.findings[before:]  # consumed here: a long log must not grow the engine's list
                new = list(new)
                if not was_open and not s.in_txn and not _TXN_CONTROL.match(lead(item.sql)):
                    stats.autocommit += 1  # a transaction of its own
                    stats.autocommit_failed += bool(new)
                if outcome is not None and not new:
                    new = _unexplained(engine, item, outcome, path, errors, stats, bool(schema))
                if item.duration_ms is not None and not s.in_txn:
                    new += judge.judge_duration(item)
                if remote is not None:
                    from dsql_audit.replay.target import Outcome

                    predicted = Outcome(outcome.sqlstate, outcome.message) if outcome is not None else Outcome()
                    remote.compare(path, item.line, redact(item.sql) if redacted else item.sql, predicted,
                                   remote.execute(key, item.sql, item.params))
            for f in new:
                findings.append(_finding(f, item, path, redacted), f, item)
                if f["statement"] == "COMMIT":
                    stats.transactions_lost += 1
                if f["rule"] == "occ-conflict":
                    stats.occ_conflicts += 1
                    for text in f.get("colliding") or ():
                        rel = (engine.decide(text)[0].stmt or {}).get("relation") or {}
                        if rel.get("relname"):
                            stats.contended[rel["relname"]] = stats.contended.get(rel["relname"], 0) + 1
                            where = where_clause(text)
                            row = f"{rel['relname']} {redact(where) if redacted else where}".strip()
                            if row in stats.contended_rows or len(stats.contended_rows) < 10_000:
                                stats.contended_rows[row] = stats.contended_rows.get(row, 0) + 1
                        shape_of = " ".join(blank_literals(text).split())[:200]
                        if shape_of in stats.contended_keys or len(stats.contended_keys) < 1000:
                            stats.contended_keys[shape_of] = stats.contended_keys.get(shape_of, 0) + 1
            calls, spent_affected = _affected(new, item, spent)
            if calls:
                stats.calls_affected += calls
                stats.time_affected_ms += spent_affected
            if progress is not None:
                progress(stats.statements)
        for path, ev, f in judge.finish():
            findings.append(_finding(f, ev, path, redacted))
            if (path, ev.line) not in pgss_affected and _affected([f], ev, 0.0)[0]:
                pgss_affected.add((path, ev.line))
                stats.calls_affected += ev.calls
                stats.time_affected_ms += pgss_time.get((path, ev.line), 0.0)
        judge.close()
        for s in sessions.values():
            s.close()
        profile_obj = engine.profile
    if redacted:  # error messages quote capture lines and statements: customer data too
        for e in errors:
            e.message = _redact_message(e.message)
    if remote is not None:
        remote.close()
    found = findings.list()
    notes = []
    if not schema:
        unresolved = sum(1 for f in found if f.name == "unresolved-name")
        notes.append(f"Replayed without a schema: only what the capture itself creates exists in the engine, so "
                     f"most table and column names do not resolve ({unresolved:,} unresolved-name finding(s)) and "
                     f"what depends on them (primary keys, row counts, FOR UPDATE shapes) is not judged. Give "
                     f"the schema with --schema FILE|FOLDER (a dump, a migration folder or the repository), "
                     f"--schema-from DSN (pg_dump of the source, read-only), and --convert to load it as "
                     f"converted for DSQL.")
    return ReplayResult(findings=found, errors=errors, profile=profile_obj, stats=stats, inputs=len(paths),
                        units=stats.statements, target=remote.stats.summary() if remote is not None else None,
                        notes=notes)


def _load_schema(engine, schema: str, errors: list, log) -> tuple[int, list]:
    """A schema — a SQL file or dump, or a repository / migration folder (the statements a deploy runs, in
    run order) — through the engine; a dump's COPY data is left to --data. (statements run,
    [(path, line, text, DsqlError)] refused)."""
    from dsql_audit.engine.script import run_statements
    from dsql_audit.sources import deploy_units

    copy = re.compile(r"\s*COPY\b.*\bFROM\s+STDIN", re.I | re.S)
    return run_statements(engine, ((u.path, u.line, u.text) for u in deploy_units([schema], errors)
                                   if not copy.match(u.text)), log)


MAX_OPEN_SESSIONS = 64  # engine connections kept for captured sessions; idle ones beyond are closed


def _close_idle(sessions: dict, stats: ReplayStats) -> None:
    """Before opening another engine session: close the least recently used idle ones beyond the cap (a
    log of connection-per-request traffic holds many thousands of sessions; PostgreSQL has ~100 slots).
    A session seen again later simply reconnects, as its application would have."""
    if len(sessions) < MAX_OPEN_SESSIONS:
        return
    for key in list(sessions):
        s = sessions[key]
        if not s.in_txn:
            del sessions[key]
            s.close()
            if len(sessions) < MAX_OPEN_SESSIONS:
                return


class _Findings:
    """Findings in first-seen order; aggregated: one per (capture, rule, case, statement shape, colliding
    write shape), counting occurrences (weighted by calls) — a 1 GB log has millions of OCC losses of a
    handful of statement shapes."""

    def __init__(self, aggregate: bool):
        self.aggregate = aggregate
        self.items: dict = {}
        self.counts: dict = {}

    def append(self, finding: Finding, raw: dict | None = None, ev: Event | None = None) -> None:
        if not self.aggregate or ev is None or finding.source != "replay" or finding.queryid is not None:
            self.items[len(self.items)] = finding
            return
        colliding = " ".join(blank_literals(((raw or {}).get("colliding") or [""])[0] or "").split())[:200]
        key = (finding.path, finding.name, (raw or {}).get("variant"), " ".join(blank_literals(ev.sql).split())[:500],
               colliding)
        if key in self.items:
            self.counts[key] += ev.calls
        else:
            self.items[key] = finding
            self.counts[key] = ev.calls

    def list(self) -> list:
        out = []
        for key, f in self.items.items():
            n = self.counts.get(key, 1)
            if n > 1:
                f.occurrences = n
                f.message += f" — {n:,} times in this capture (the first at this line)"
            out.append(f)
        return out


_PLACEHOLDER = re.compile(r"\$(\d+)")


def _named_placeholders(sql: str) -> str:
    """pg_stat_statements normalises names too (SAVEPOINT $1, PREPARE $1 …): where $n cannot parse as a
    parameter, read it as a name so the statement is still judged."""
    from dsql_audit.engine.gate import analyse_text

    if "$" not in sql or analyse_text(sql).parse_error is None:
        return sql
    named = _PLACEHOLDER.sub(lambda m: f"dsql_audit_p{m.group(1)}", sql)
    return named if analyse_text(named).parse_error is None else sql


def _predicted(new: list):
    """The engine's prediction for a pg_stat_statements entry: the first error-severity refusal's SQLSTATE
    (what parsing it on DSQL should answer), else success."""
    from dsql_audit.replay.target import Outcome

    for f in new:
        if f.get("sqlstate") and f["rule"] not in ("transaction-row-limit", "transaction-timeout", "hot-row"):
            return Outcome(f["sqlstate"], f["message"])
    return Outcome()


class _Pacer:
    """--speed: wait so captured time passes ``speed`` times faster than the capture's (the engine's clock
    is the captured time either way; pacing matters for a --target, which has its own clock)."""

    def __init__(self, speed: float | None, sleep=None):
        import time

        self.speed = speed if speed and speed > 0 else None
        self.sleep = sleep or time.sleep
        self.monotonic = time.monotonic
        self.origin = None  # (captured seconds, wall seconds) of the first timed statement

    def wait(self, at: float) -> None:
        if self.speed is None:
            return
        if self.origin is None:
            self.origin = (at, self.monotonic())
            return
        due = self.origin[1] + (at - self.origin[0]) / self.speed
        delay = due - self.monotonic()
        if delay > 0:
            self.sleep(delay)


_QUOTED_OR_NUMBER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\"|\b\d[\d.,-]{2,}\b")


def _redact_message(message: str) -> str:
    """An input error's text with quoted parts (a garbled capture line, a statement) and numbers of three
    digits or more blanked: it may quote anything the capture held."""
    return _QUOTED_OR_NUMBER.sub("?", message)


def _affected(new: list, ev: Event, spent: float) -> tuple[int, float]:
    """(calls, time) a statement's findings put in "would fail or need changes": findings at warning or
    error only (an info-level candidate is not a change yet); a finding made from the slowest call alone
    (``"slowest_only"``) counts that one call and its time, not every call."""
    if not new:  # most statements: nothing to weigh
        return 0, 0.0
    rules = load_catalog()
    heavy = []
    for f in new:
        rule = rules.get(f["rule"])
        variant = rule.variants.get(f.get("variant")) if rule else None
        severity = variant.severity if variant else rule.severity if rule else Severity.error
        if severity >= Severity.warning:
            heavy.append(f)
    if not heavy:
        return 0, 0.0
    if all(f.get("slowest_only") for f in heavy):
        return 1, min(spent, ev.max_ms or spent)
    return ev.calls, spent


_NAME_ERRORS = {"42P01", "42883", "42704", "42703", "3F000", "42P02"}  # undefined table/function/type/column …


def _unexplained(engine, ev: Event, e, path: str, errors: list, stats: ReplayStats, has_schema: bool) -> list:
    """A captured statement the engine refused without a DSQL rule saying why: findings or input errors, so
    nothing fails unseen. After an earlier error in its transaction (25P02), the statement is judged by the
    rules alone; a name that does not resolve is `unresolved-name`; a syntax error is an input error; any
    other engine error is counted in the summary's ``failed_in_engine``."""
    from dsql_audit.replay.workload import finding as workload_finding

    if e.sqlstate == "25P02":
        _, refusals = engine.decide(ev.sql)
        return [dict(workload_finding(r.slug, r.variant, r.message + " (judged by the rules alone: an earlier "
                                      "statement of its transaction had already failed)", ev.sql),
                     dsql_message=r.message) for r in refusals]
    if ev.error:  # the captured server refused it too: the application saw that error already
        stats.failed_in_capture += 1
        return []
    if e.sqlstate in _NAME_ERRORS:
        hint = "" if has_schema else " — replayed without --schema, so only what the capture created exists"
        return [workload_finding("unresolved-name", None, f"{e.sqlstate} {e.message}{hint}", ev.sql)]
    if e.sqlstate in ("42601", "22P02") and "syntax" in e.message:
        errors.append(InputError(path, f"statement does not parse: {e.message}", line=ev.line))
        return []
    stats.failed_in_engine[e.sqlstate] = stats.failed_in_engine.get(e.sqlstate, 0) + 1
    return []


def _is_commit(sql: str) -> bool:
    """COMMIT / END [WORK | TRANSACTION], whatever the case, spacing or comments around it."""
    words = lead(sql).rstrip().rstrip(";").split()
    return bool(words) and words[0].upper() in ("COMMIT", "END") and all(
        w.upper() in ("WORK", "TRANSACTION") or w.startswith(("--", "/*")) for w in words[1:2])


_TXN_CONTROL = re.compile(r"\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|PREPARE\s+TRANSACTION|SAVEPOINT|"
                          r"RELEASE)\b", re.I)


def _rebuilt_commit(s, stats: ReplayStats, path: str, ev: Event, now: float):
    """COMMIT a transaction replay opened from virtual transaction ids, after its last logged statement;
    the DsqlError it ends with (an OCC loss, a bound), or None."""
    from dsql_audit.engine import DsqlError

    shape = (s.rows, s.bytes, s.started, not s.aborted)
    try:
        r = s.execute("COMMIT")
    except DsqlError as e:
        _keep_transaction(stats, path, ev, shape, now, f"failed {e.sqlstate}")
        return e
    if r.command_tag == "COMMIT":
        stats.transactions_committed += 1
        _keep_transaction(stats, path, ev, shape, now, "committed")
    return None


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


def _merged(paths, fmt, stats, errors, prefix=None):
    """(capture, format, event or error) from every capture: logs merged by captured time (stable, so one
    capture keeps its own order), then pg_stat_statements exports and scripts, each in its own order."""
    import heapq

    logs, others = [], []
    for path in paths:
        try:
            kind = fmt or detect_format(path)
        except OSError as exc:
            errors.append(InputError(path, f"cannot read the capture: {exc}", skipped=True))
            continue
        stats.by_format[path] = kind
        (logs if kind in ("stderr", "csvlog", "jsonlog") else others).append((path, kind))

    def stream(n, path, kind):
        last = float("-inf")
        try:
            for item in mark_transactions(read_capture(path, kind, prefix=prefix)):
                at = capture_seconds(getattr(item, "time", None))
                last = at if at is not None and at > last else last
                yield (last, n), (path, kind, item)
        except OSError as exc:
            yield (last, n), (path, kind, CaptureError(0, f"cannot read the capture: {exc}", unread=True))

    for _, entry in heapq.merge(*(stream(n, p, k) for n, (p, k) in enumerate(logs)), key=lambda x: x[0]):
        yield entry
    for path, kind in others:
        try:
            for item in read_capture(path, kind):
                yield path, kind, item
        except OSError as exc:
            yield path, kind, CaptureError(0, f"cannot read the capture: {exc}", unread=True)
