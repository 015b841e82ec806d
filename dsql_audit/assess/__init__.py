"""`dsql-audit assess`: the six-step compatibility audit as one run and one decision document.

1 schema scan · 2 code scan · 3 extension inventory · 4 transaction profiling · 5 contention review ·
6 prototype — each run as far as the inputs allow (paths, a live database, captures, a command), each with
its status (passed / findings / not run, and which input would run it) and its evidence; then the decision,
with the thresholds stated: a clean audit with a passed prototype is a green light, findings within the
thresholds are a project plan, a load-bearing extension or findings beyond them say stay on PostgreSQL.
The pieces are the commands' own (scan, catalog, replay, run, convert and the engine): this module only
runs them and reads their results.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from dsql_audit.model import Severity

PASSED, FINDINGS, NOT_RUN = "passed", "findings", "not run"
GO, PLAN, STOP = "green light", "project plan", "stay on PostgreSQL"
# a long list says stay on PostgreSQL: more errors than this, or more hours of changes by the rules' estimates
DEFAULTS = {"max-errors": 500, "max-effort-hours": 160, "top-statements": 20}
_SCHEMA_SOURCES = {"sql", "pg_dump", "migration", "archive", "stdin", "catalog"}


@dataclass
class Step:
    number: int
    key: str
    title: str
    status: str = NOT_RUN
    summary: str = ""
    evidence: dict = field(default_factory=dict)
    not_run: str | None = None  # what input would run it
    findings: list = field(default_factory=list)

    def to_json(self) -> dict:
        out = {"step": self.number, "name": self.key, "title": self.title, "status": self.status,
               "summary": self.summary, "evidence": self.evidence}
        if self.not_run:
            out["not_run"] = self.not_run
        if self.findings:
            out["findings"] = [f.to_json() for f in self.findings]
        return out


@dataclass
class Assessment:
    profile: object
    inputs: dict
    steps: list
    extensions: list
    workload: dict | None
    decision: dict
    errors: list = field(default_factory=list)

    def to_json(self) -> dict:
        from dsql_audit import __version__

        return {"tool": {"name": "dsql-audit", "version": __version__}, "profile": self.profile.date,
                "inputs": self.inputs, "decision": self.decision, "steps": [s.to_json() for s in self.steps],
                "extensions": [e.to_json() for e in self.extensions], "workload": self.workload,
                "errors": [e.to_json() for e in self.errors]}


_SCHEMA_CATEGORIES = {"schema-objects", "types-and-columns", "indexes", "quotas"}
_MIGRATION_DIRS = ("/migrations/", "/versions/", "/migrate/", "/changelog", "/db/")


def _is_schema(f) -> bool:
    """A finding about the schema — SQL, dumps, the live catalog, a migration in any framework's language, a
    model's table definition — rather than about what the application's code does at run time."""
    if f.source in _SCHEMA_SOURCES:
        return True
    if f.category == "application":
        return False
    path = "/" + f.path.replace("\\", "/")
    return f.category in _SCHEMA_CATEGORIES or any(d in path for d in _MIGRATION_DIRS)


def _counts(findings) -> dict:
    out = {"error": 0, "warning": 0, "info": 0}
    for f in findings:
        out[f.severity.name] += 1
    return out


def _status(findings) -> str:
    return FINDINGS if any(f.severity >= Severity.warning for f in findings) else PASSED


def _rules(findings) -> dict:
    out: dict = {}
    for f in findings:
        out[f"{f.rule} {f.name}"] = out.get(f"{f.rule} {f.name}", 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def run_assessment(paths=(), *, dsn: str | None = None, captures=(), command=None, target: str | None = None,
                   allow_writes: bool = False, profile=None, config=None, log=None) -> Assessment:
    from dsql_audit.assess import extensions as ext_mod
    from dsql_audit.assess import prototype as proto_mod
    from dsql_audit.assess import workload as work_mod
    from dsql_audit.config import Config
    from dsql_audit.findings import merge_catalog_reads
    from dsql_audit.profile import load_profile

    log = log or (lambda line: None)
    config = config or Config()
    prof = profile if profile is not None and not isinstance(profile, str) else load_profile(profile)
    settings = {**DEFAULTS, **(getattr(config, "assess", None) or {})}
    paths, captures = [p for p in paths], [c for c in captures]
    errors: list = []
    steps = [Step(1, "schema", "Schema scan"), Step(2, "code", "Code scan"),
             Step(3, "extensions", "Extension inventory"), Step(4, "transactions", "Transaction profiling"),
             Step(5, "contention", "Contention review"), Step(6, "prototype", "Prototype")]
    schema, code, exts, txns, contention, proto = steps
    tmp = tempfile.TemporaryDirectory(prefix="dsql-audit-assess-")
    scan_result = None
    live_result = None
    events: list = []  # pg_stat_statements entries
    introspection = 0  # entries over the system catalogs only (a dump's, a driver's, dsql-audit's own reads)
    period = None
    replays: list = []
    installed = catalog_uses = None
    try:
        # --- 1 and 2: the scan of the paths, the live catalog, the command's observed statements ---------
        if paths:
            from dsql_audit.scan import scan as run_scan

            log(f"assess: scanning {', '.join(paths)}")
            scan_result = run_scan(paths, config=config, profile=prof)
            errors += scan_result.errors
        if dsn:
            from dsql_audit import live

            pgss = Path(tmp.name) / "pgss.json"
            try:  # first: the catalog reads below are no part of the application's workload
                n = live.capture(dsn, pgss)
                log(f"assess: {n} pg_stat_statements entries read from the database")
                captures.append(str(pgss))
            except Exception as exc:  # noqa: BLE001 - not installed there: the workload steps say so
                log(f"assess: no pg_stat_statements in the database ({exc})")
            log("assess: reading the live catalog (read-only)")
            live_result = live.read(dsn, profile=prof, config=config)
            errors += live_result.errors
            installed, catalog_uses = _catalog_extensions(dsn, errors)
        found = []
        if scan_result is not None:
            found += scan_result.findings
        if live_result is not None:
            found += live_result.findings
        found = merge_catalog_reads(found)
        observed = None
        if command:
            from dsql_audit.run.observe import observe

            log(f"assess: running {' '.join(command)} against the engine")
            observed = observe(list(command), profile=prof.date, config=config, scan_paths=None,
                               log=lambda line: None)
            found += observed.findings
        schema_findings = [f for f in found if _is_schema(f)]
        code_findings = [f for f in found if not _is_schema(f)]
        if paths or dsn:
            schema.status = _status(schema_findings)
            schema.findings = schema_findings
            c = _counts(schema_findings)
            schema.summary = (f"{c['error']:,} error(s), {c['warning']:,} warning(s), {c['info']:,} info in the "
                              "schema" + (" (files and live catalog)" if paths and dsn else
                                          " (live catalog)" if dsn else ""))
            schema.evidence = {"counts": c, "rules": _rules(schema_findings)}
        else:
            schema.not_run = "give the schema: PATHS (SQL, dumps, migrations) or --dsn (a live database)"
        app_files = bool(paths) and _has_application_code(paths)
        if app_files or command:
            code.status = _status(code_findings)
            code.findings = code_findings
            c = _counts(code_findings)
            code.summary = (f"{c['error']:,} error(s), {c['warning']:,} warning(s), {c['info']:,} info in the "
                            "application code" + (f"; {observed.run_summary()['statements']:,} statements observed "
                                                  "while the command ran" if observed is not None else ""))
            code.evidence = {"counts": c, "rules": _rules(code_findings)}
        else:
            code.not_run = ("give PATHS holding application source (Python, Ruby, Java, TypeScript …), or "
                            "--run -- COMMAND to observe what the application sends")
        # --- captures: pg_stat_statements for the workload, logs and scripts replayed ----------------------
        from dsql_audit.replay.captures import CaptureError, Event, detect_format, read_capture

        for capture in captures:
            fmt = detect_format(capture)
            if fmt.startswith("pgss"):
                for item in read_capture(capture, fmt):
                    if isinstance(item, CaptureError):
                        errors.append(_error_text(capture, item.message, item.line))
                    elif isinstance(item, Event):  # (TableSize rows are the tables' sizes, not statements)
                        if _own_query(item.sql) or _system_only(item.sql):
                            introspection += 1
                        else:
                            events.append(item)
                period = period or _period(capture)
            else:
                from dsql_audit.replay import replay as run_replay

                log(f"assess: replaying {capture}")
                replays.append(run_replay([capture], profile=prof.date, schema=paths[0] if paths else None,
                                          fmt=fmt))
        # --- 3: extensions ------------------------------------------------------------------------------
        scan_uses = ext_mod.from_scan(found)
        if paths or dsn:
            exts_found = ext_mod.inventory(installed, catalog_uses, scan_uses)
            worst = {e.klass for e in exts_found}
            exts.status = FINDINGS if worst & {ext_mod.LOAD_BEARING, ext_mod.REPLACEABLE} else PASSED
            by = {k: [e.name for e in exts_found if e.klass == k]
                  for k in (ext_mod.LOAD_BEARING, ext_mod.REPLACEABLE, ext_mod.REMOVABLE)}
            exts.summary = (f"{len(exts_found)} extension(s): " + ", ".join(f"{len(v)} {k}" for k, v in by.items())
                            if exts_found else "no extension installed or used")
            exts.evidence = {"classes": by, "source": ("pg_depend and the scan" if dsn and paths else
                                                      "pg_depend" if dsn else "the scan (installed ones need --dsn)")}
        else:
            exts_found = []
            exts.not_run = "give PATHS (the scan finds extensions used) or --dsn (installed ones, and what uses them)"
        # --- 4: transactions ----------------------------------------------------------------------------
        rows_limit, seconds_limit = prof.limit("rows_per_transaction"), prof.limit("transaction_seconds")
        bytes_limit = prof.limit("bytes_per_transaction")
        if events or replays:
            over = work_mod.over_bounds(events, rows_limit, seconds_limit)
            largest, longest, bounded = [], [], []
            for r in replays:
                s = r.replay_summary()
                largest += s["largest_transactions"][:5]
                longest += s["longest_transactions"][:5]
                bounded += [f for f in r.findings if f.name in ("transaction-row-limit", "transaction-size-limit",
                                                               "transaction-timeout", "size-limit")]
            txns.findings = bounded
            txns.status = FINDINGS if over or bounded else PASSED
            txns.summary = (f"{len(over) + len(bounded)} statement(s) or transaction(s) over DSQL's bounds "
                            f"({rows_limit:,} rows, {bytes_limit // 1048576} MiB, {seconds_limit} s per transaction)")
            txns.evidence = {"bounds": {"rows": rows_limit, "bytes": bytes_limit, "seconds": seconds_limit},
                             "over_bounds_in_pg_stat_statements": over, "largest_transactions": largest[:10],
                             "longest_transactions": longest[:10]}
        else:
            txns.not_run = ("give --capture (a pg_stat_statements export or a server log) or --dsn with "
                            "pg_stat_statements installed")
        # --- 5: contention ------------------------------------------------------------------------------
        contended = [f for f in found if f.name in ("hot-row",) or
                     (f.name == "select-for-update" and ("SKIP LOCKED" in f.message or "NOWAIT" in f.message))]
        conflicts = sum(r.stats.occ_conflicts for r in replays)
        tables: dict = {}
        for r in replays:
            for k, v in r.replay_summary()["top_contended_tables"]:
                tables[k] = tables.get(k, 0) + v
        queues = work_mod.queue_like(events)
        if paths or dsn or replays or queues:
            contention.findings = contended
            contention.status = FINDINGS if contended or conflicts or queues else PASSED
            contention.summary = (f"{conflicts:,} OCC conflict(s) in the replayed workload, {len(contended)} "
                                  "queue-like or hot-row pattern(s) in the schema and code"
                                  + (f", {len(queues)} table(s) polled by status like a queue ("
                                     + ", ".join(q["table"] for q in queues[:5]) + ")" if queues else ""))
            contention.evidence = {"occ_conflicts": conflicts, "contended_tables": tables,
                                   "patterns": _rules(contended), "queue_like_tables": queues,
                                   "replayed": bool(replays)}
            if not replays:
                contention.summary += " (no log replayed: give --capture with a server log for conflicts)"
        else:
            contention.not_run = "give PATHS, --dsn, or --capture with a server log"
        # --- 6: prototype -------------------------------------------------------------------------------
        # the schema the database has now (its dump) when there is one: what a migration would carry over;
        # else what the paths' SQL and migrations build
        schema_inputs = [] if dsn else list(paths)
        if dsn:
            from dsql_audit.replay.endpoints import dump_schema

            dumped = Path(tmp.name) / "schema.sql"
            try:
                dump_schema(dsn, dumped)
                schema_inputs = [str(dumped)]
            except Exception as exc:  # noqa: BLE001
                errors.append(_error_text(dsn, f"schema not dumped for the prototype: {exc}"))
        if schema_inputs:
            from dsql_audit.convert import convert as run_convert
            from dsql_audit.convert import files as convert_files

            log("assess: converting the schema and loading it into the engine")
            conv = run_convert(schema_inputs, profile=prof.date, check=False)
            out = Path(tmp.name) / "converted"
            convert_files.write(conv, str(out))
            chosen = proto_mod.top_statements(events, int(settings["top-statements"]))
            target_conn = None
            if target and chosen:
                target_conn = _target(target, allow_writes, chosen, errors)
            ran = proto_mod.run(str(out / "schema.sql"), chosen, profile=prof.date, target=target_conn)
            if target_conn is not None:
                target_conn.close()
            s = ran["summary"]
            refused_schema = len(ran["schema"]["refused"])
            proto.status = PASSED if not refused_schema and not (s["refused"] + s["failed"] + s["conflict"]) \
                else FINDINGS
            proto.summary = (f"converted schema: {ran['schema']['loaded']:,} statements loaded, {refused_schema} "
                             f"refused; {len(chosen)} top statement(s): {s['passed']} passed, {s['refused']} refused, "
                             f"{s['failed']} failed, {s['conflict']} lost a conflict after {proto_mod.RETRIES} retries"
                             + ("" if chosen else " (no workload: give --capture or --dsn with pg_stat_statements)"))
            proto.evidence = {"conversion": conv.summary(), "schema": ran["schema"], "statements": ran["statements"],
                              "target": bool(target_conn)}
        else:
            proto.not_run = "give the schema (PATHS or --dsn) to convert and load; --capture adds the top statements"
    finally:
        tmp.cleanup()
    workload = work_mod.profile(events, period) if events else None
    if workload is not None:
        workload["catalog_statements_left_out"] = introspection
    decision = decide(steps, exts_found, settings, scan_result)
    inputs = {"paths": list(paths), "dsn": _redact(dsn), "captures": [c for c in captures if "dsql-audit-assess-"
                                                                        not in c],
              "command": list(command) if command else None, "target": _redact(target)}
    return Assessment(prof, inputs, steps, exts_found, workload, decision, errors)


def decide(steps: list, extensions: list, settings: dict, scan_result=None) -> dict:
    """The decision, with the thresholds that made it."""
    from dsql_audit.assess.extensions import LOAD_BEARING, REPLACEABLE
    from dsql_audit.readiness import assess as readiness

    findings = [f for s in steps for f in s.findings]
    errors = sum(1 for f in findings if f.severity is Severity.error)
    warnings = sum(1 for f in findings if f.severity is Severity.warning)

    from types import SimpleNamespace

    hours = readiness(SimpleNamespace(findings=findings)).hours  # the rules' effort estimates, per object
    load_bearing = [e.name for e in extensions if e.klass == LOAD_BEARING]
    replaceable = [e.name for e in extensions if e.klass == REPLACEABLE]
    not_run = [s.title for s in steps if s.status == NOT_RUN]
    proto = next(s for s in steps if s.key == "prototype")
    reasons = []
    if load_bearing:
        verdict = STOP
        reasons.append(f"load-bearing extension(s): {', '.join(load_bearing)} — DSQL has no replacement")
    elif errors > settings["max-errors"] or hours > settings["max-effort-hours"]:
        verdict = STOP
        reasons.append(f"{errors:,} error(s) and ~{hours:,.0f} h of changes, beyond the thresholds "
                       f"({settings['max-errors']} errors, {settings['max-effort-hours']} h)")
    elif not errors and not warnings and not replaceable and proto.status == PASSED and not not_run:
        verdict = GO
        reasons.append("a clean audit and a passed prototype")
    else:
        verdict = PLAN
        reasons.append(f"{errors:,} error(s), {warnings:,} warning(s)"
                       + (f", {len(replaceable)} extension(s) to replace ({', '.join(replaceable)})" if replaceable
                          else "") + f": ~{hours:,.0f} h of changes, within the thresholds")
        if proto.status == FINDINGS:
            reasons.append("the prototype found statements to change")
    if not_run:
        reasons.append(f"provisional: {len(not_run)} step(s) not run ({', '.join(not_run)})")
    return {"verdict": verdict, "reasons": reasons, "errors": errors, "warnings": warnings,
            "effort_hours": round(hours, 1), "load_bearing_extensions": load_bearing,
            "thresholds": {k: settings[k] for k in ("max-errors", "max-effort-hours")},
            "steps_not_run": not_run}


_RELATIONS = re.compile(r"\b(?:from|join)\s+((?:\"[^\"]+\"|[\w$]+)(?:\.(?:\"[^\"]+\"|[\w$]+))?)", re.I)


def _system_only(sql: str) -> bool:
    """A statement over the system catalogs alone (pg_dump's, a driver's or an ORM's introspection): no part of
    the workload DSQL would carry, and DSQL answers catalog reads itself."""
    names = [n.replace('"', "").lower() for n in _RELATIONS.findall(sql)]
    return bool(names) and all(n.split(".")[-1].startswith("pg_") or n.startswith(("information_schema.",
                                                                                     "pg_catalog."))
                               for n in names)


def _own_query(sql: str) -> bool:
    """A catalog read dsql-audit itself sent (an earlier catalog or assess run), not the application's."""
    heads = _own_heads()
    text = " ".join(sql.split())[:60]
    return any(text.startswith(h) for h in heads)


@lru_cache(maxsize=1)
def _own_heads() -> tuple:
    from dsql_audit import live
    from dsql_audit.assess.extensions import DEPENDENTS, INSTALLED

    texts = [INSTALLED, DEPENDENTS]
    for _, sql, _ in live.QUERIES:
        texts += list(sql.values()) if isinstance(sql, dict) else [sql]
    return tuple({" ".join(t.split())[:40] for t in texts})


def _has_application_code(paths) -> bool:
    from dsql_audit.sources import discover

    return any(f.kind in ("python", "app") for f in discover(paths).files)


def _catalog_extensions(dsn: str, errors: list):
    import psycopg

    from dsql_audit.assess.extensions import from_catalog

    try:
        with psycopg.connect(dsn, autocommit=False, connect_timeout=15) as conn:
            conn.read_only = True
            conn.execute("SET LOCAL statement_timeout = 30000")
            found = from_catalog(conn)
            conn.rollback()
            return found
    except psycopg.Error as exc:
        errors.append(_error_text(dsn, f"extensions not read: {str(exc).strip().splitlines()[0]}"))
        return None, None


def _period(capture: str) -> float | None:
    import json

    try:
        with open(capture, encoding="utf-8") as fh:
            value = json.load(fh).get("period_seconds")
        return float(value) if value else None
    except (OSError, ValueError, AttributeError):
        return None


def _target(dsn: str, allow_writes: bool, chosen: list, errors: list):
    from dsql_audit.assess.workload import kind
    from dsql_audit.replay.endpoints import EndpointError, connect

    if not allow_writes and any(kind(ev.sql) != "read" for ev in chosen):
        errors.append(_error_text(dsn, "--target: some top statements write; pass --allow-writes to run them "
                                       "there (each is rolled back) — the prototype ran on the engine only"))
        return None
    try:
        return connect(dsn)
    except EndpointError as exc:
        errors.append(_error_text(dsn, str(exc)))
        return None


def _redact(dsn):
    if not dsn:
        return None
    from dsql_audit.replay.endpoints import redact_dsn

    return redact_dsn(dsn)


def _error_text(where, message, line=None):
    from dsql_audit.model import InputError

    shown = where if where and "://" not in str(where) else (_redact(where) or str(where))
    return InputError(str(shown), message, line)
