"""The scan pipeline: sources → units → facts → rules → findings.

Statement analysis (parse, facts, statement rules, schema effects) is pure
and runs in worker processes when the input is large; everything that
depends on order (transactions, the schema model, search_path) runs here,
in input order, on the workers' small results.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from dsql_audit.catalog import load_catalog
from dsql_audit.config import Config
from dsql_audit.facts import analyse, schema_elements
from dsql_audit.facts.plpgsql import embedded_statements
from dsql_audit.facts.schema import SchemaModel, effects
from dsql_audit.findings import Located, build_findings, ignore_problems, merge_restatements
from dsql_audit.model import Finding, Hit, InputError, Severity, Unit
from dsql_audit.profile import Profile, load_profile
from dsql_audit.rules import rule_module, statement_hits
from dsql_audit.sources import Discovery, InputFile, discover, read_units
from dsql_audit.sqltext import frame, offset_to_linecol

PARALLEL_MIN_BYTES = 1_500_000
BATCH_UNITS = 200
BATCH_CHARS = 400_000

_TXN_OPS = {
    "TRANS_STMT_BEGIN": "begin", "TRANS_STMT_START": "begin",
    "TRANS_STMT_COMMIT": "end", "TRANS_STMT_ROLLBACK": "end",
    "TRANS_STMT_COMMIT_PREPARED": "end", "TRANS_STMT_ROLLBACK_PREPARED": "end",
    "TRANS_STMT_PREPARE": "end",
}


@dataclass(slots=True)
class UnitResult:
    klass: str
    txn_op: str | None
    effects: list
    hits: list
    nested: list = field(default_factory=list)  # (Unit, UnitResult): a DO block's or CREATE SCHEMA's statements


def analyse_unit(unit: Unit) -> UnitResult:
    facts = analyse(unit)
    txn_op = _TXN_OPS.get(facts.stmt.get("kind")) if facts.node == "TransactionStmt" else None
    result = UnitResult(facts.klass, txn_op, effects(facts), statement_hits(facts))
    for element in schema_elements(facts):  # CREATE SCHEMA s CREATE TABLE …: each element is a statement
        result.nested.append((unit, UnitResult(element.klass, None, effects(element), statement_hits(element))))
    for text, offset in embedded_statements(facts):
        line, column = offset_to_linecol(unit.text, offset, unit.line, unit.column)
        inner = Unit(unit.path, text, line, column, unit.source, unit.txn, unit.framework, index=unit.index)
        result.nested.append((inner, analyse_unit(inner)))
    return result


_MARKER = UnitResult("marker", None, [], [])


def analyse_batch(units: list[Unit]) -> list[UnitResult]:
    return [_MARKER if u.index == -1 else analyse_unit(u) for u in units]


@dataclass
class ScanResult:
    findings: list[Finding]
    errors: list[InputError]
    profile: Profile
    inputs: int = 0
    units: int = 0
    frameworks: dict = field(default_factory=dict)  # path → framework name
    bytes: int = 0
    schema: SchemaModel | None = None  # the schema the whole input builds
    adapters: set = field(default_factory=set)  # AWS DSQL adapters the application uses
    transactions: list | None = None  # with record_transactions: (path, first line, [statement classes])
    superseded: list = field(default_factory=list)  # migrations a squashed one replaces (never run: not reported)
    superseded_findings: int = 0  # … and how many findings they would have had
    unknown_ignores: list = field(default_factory=list)  # (path, line, [names], [suggestions]) of inline ignores
    unused_ignores: list = field(default_factory=list)  # (path, line) of inline ignores that suppressed nothing
    notes: list = field(default_factory=list)  # what the reader must know first (shown at the report's top)


_TOKEN = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|[\w$.]+|\S")


def _rstripped_len(s: str) -> int:
    """len(s.rstrip()), without copying a long line."""
    n = len(s)
    while n and s[n - 1].isspace():
        n -= 1
    return n


def locate(unit: Unit, hit: Hit) -> Located:
    """Where a hit is in its file (line, column, end) and its code frame: a bounded window of the line
    (sqltext.frame), never the whole of a long line, so what a finding keeps does not grow with the line."""
    if unit.snippet is not None:  # synthesized SQL or a construct: reported where the code says it
        line, column, snippet = unit.line, unit.column, unit.snippet
        if unit.spans and hit.offset is not None:  # the part of the statement the hit is about
            for offset, span_line, span_column, span_snippet, exact in unit.spans:
                if offset > hit.offset:
                    break
                line, snippet = span_line, span_snippet
                column = span_column + (hit.offset - offset if exact else 0)
        end_column = column + max(1, _rstripped_len(snippet) - column + 1)
        snippet, snippet_column = frame(snippet, 0, len(snippet), 1, column)
        return Located(hit=hit, path=unit.path, line=line, column=column, end_line=line,
                       end_column=end_column, snippet=snippet, source=unit.source, framework=unit.framework,
                       stmt_line=unit.line, origin=unit.origin, snippet_column=snippet_column,
                       restates=unit.restates, superseded=unit.superseded, placeholders=unit.placeholders)
    text = unit.text
    offset = hit.offset if hit.offset is not None and 0 <= hit.offset <= len(text) else 0
    line = unit.line + text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    first_column = unit.column if line == unit.line else 1  # the statement may begin mid-line
    column = first_column + (offset - line_start)
    line_end = text.find("\n", offset)
    if line_end < 0:
        line_end = len(text)
    if hit.end_offset is not None and hit.end_offset > offset:
        end = hit.end_offset
    elif hit.offset is None:
        end = line_end
    else:
        m = _TOKEN.match(text, offset)
        end = m.end() if m else offset + 1
    end = max(min(end, len(text)), offset + 1)
    end_line = line + text.count("\n", offset, end)
    end_line_start = text.rfind("\n", 0, end) + 1
    end_column = ((unit.column if end_line == unit.line else 1) + (end - end_line_start)) if end_line_start <= end else column
    # the line's part in this statement, laid out on the file's columns (spaces before a mid-line start)
    snippet, snippet_column = frame(text, line_start, line_end, first_column, column)
    return Located(hit=hit, path=unit.path, line=line, column=column, end_line=end_line,
                   end_column=end_column, snippet=snippet, source=unit.source, framework=unit.framework,
                   stmt_line=unit.line, origin=unit.origin, snippet_column=snippet_column,
                       restates=unit.restates, superseded=unit.superseded, placeholders=unit.placeholders)


def _light(unit: Unit) -> Unit:
    """A unit kept for later reporting: its location and first line only."""
    nl = unit.text.find("\n")
    return Unit(unit.path, unit.text if nl < 0 else unit.text[:nl], unit.line, unit.column, unit.source,
                unit.txn, unit.framework, unit.meta, unit.copy_rows, unit.index, origin=unit.origin,
                snippet=unit.snippet, construct=unit.construct, context=unit.context, superseded=unit.superseded,
                placeholders=unit.placeholders)


class _Transactions:
    """Groups units into the transactions they run in, and runs transaction rules on each."""

    def __init__(self, emit: Callable, record: list | None = None):
        self.emit = emit
        self.record = record  # when a list: every transaction as (path, first line, [klass, …])
        self.rules = [rule_module(r.slug) for r in load_catalog() if r.scope == "transaction"]
        self.cur: list | None = None
        self.explicit = False
        self.key = None

    def feed(self, unit: Unit, klass: str, txn_op: str | None):
        if txn_op == "begin":
            if self.explicit:  # BEGIN inside a transaction block: a no-op (PostgreSQL's WARNING 25001), not a new one
                return
            self.flush()
            self.explicit, self.cur = True, []
            return
        if txn_op == "end":
            self.flush()
            self.explicit = False
            return
        if unit.context:  # earlier statements of the transaction this file's statements join
            if unit.txn is not None and (self.cur is None or self.key != unit.txn):
                self.flush()
                self.cur, self.key = [], unit.txn
            if self.cur is not None:
                self.cur.extend((unit, k) for k in unit.construct.get("classes", ()))
            return
        if klass in ("meta", "app"):
            return
        if self.explicit:
            if self.cur is None:
                self.cur = []
            self.cur.append((_light(unit), klass))
        elif unit.txn is not None:
            if self.cur is None or self.key != unit.txn:
                self.flush()
                self.cur, self.key = [], unit.txn
            self.cur.append((_light(unit), klass))
        else:
            self.flush()
            if self.record is not None:
                self.record.append((unit.path, unit.line, [klass]))

    def end_of_input(self):
        """A BEGIN that a file never closed does not reach into the next file."""
        self.flush()
        self.explicit = False

    def flush(self):
        if self.cur and self.record is not None:
            own = [(u, k) for u, k in self.cur if not u.context]
            if own:
                self.record.append((own[0][0].path, own[0][0].line, [k for _, k in own]))
        if self.cur:
            implicit = not self.explicit
            for mod in self.rules:
                for unit, hit in mod.check_transaction(self.cur, implicit):
                    if not unit.context:
                        self.emit(unit, hit)
        self.cur, self.key = None, None


APP_PARALLEL_MIN_FILES = 16
PARENT_POLL_SECONDS = 0.5  # how often a worker checks that its parent is alive where prctl is not available


def _worker_pool(jobs: int):
    """A process pool whose workers die with the scan: killed (kill -9, the OOM killer) or not, a parent that
    is gone never leaves workers behind holding memory and a core."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor  # imported here: a small scan never needs it

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    return ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                               initargs=(os.getpid(),))


def _worker_init(parent: int) -> None:
    """In each worker, first thing: ask Linux to SIGKILL it when its parent dies (prctl PR_SET_PDEATHSIG);
    and, on any system, watch the parent from a daemon thread and exit once it is gone (os.getppid()
    changes when the parent dies and the worker is re-parented). A parent that died before this ran is
    caught by the first check."""
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watcher alone
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch():
        import time

        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="dsql-audit-parent-watch", daemon=True).start()


def _extract_app_files(files: list, jobs: int) -> dict:
    """Application source files read by worker processes when there are many (libcst and tree-sitter
    parsing is the costly part of a code scan); {file number: (units, errors, suppressions)}."""
    from dsql_audit.sources import app_file_units

    numbers = [i for i, f in enumerate(files) if f.kind in ("python", "app")]
    if jobs <= 1 or len(numbers) < APP_PARALLEL_MIN_FILES:
        return {}
    with _worker_pool(jobs) as pool:
        results = pool.map(app_file_units, [files[i] for i in numbers], chunksize=8)
        return dict(zip(numbers, results))


def _batches(units: Iterable[Unit]) -> Iterator[list[Unit]]:
    batch, size = [], 0
    for u in units:
        batch.append(u)
        size += len(u.text)
        if len(batch) >= BATCH_UNITS or size >= BATCH_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _results(batches: Iterator[list[Unit]], jobs: int) -> Iterator[tuple[list[Unit], list[UnitResult]]]:
    if jobs <= 1:
        for b in batches:
            yield b, analyse_batch(b)
        return
    with _worker_pool(jobs) as pool:
        pending = []
        for b in batches:
            pending.append((b, pool.submit(analyse_batch, b)))
            while len(pending) > jobs * 3:
                b0, fut = pending.pop(0)
                yield b0, fut.result()
        for b0, fut in pending:
            yield b0, fut.result()


def scan(paths, *, config: Config | None = None, profile: Profile | None = None, jobs: int | None = None,
         progress: Callable | None = None, discovery: Discovery | None = None,
         aggregate: bool = True, record_transactions: bool = False,
         on_unit: Callable | None = None) -> ScanResult:
    config = config or Config()
    profile = profile or load_profile(config.profile)
    disc = discovery or discover(paths, framework=config.framework, exclude=config.exclude)
    errors: list[InputError] = list(disc.errors)
    total_bytes = sum(f.size for f in disc.files)
    if jobs is None:
        jobs = min(2, os.cpu_count() or 1) if total_bytes >= PARALLEL_MIN_BYTES else 1
    located: list[Located] = []
    schema = SchemaModel()
    suppressions: dict = {}
    frameworks: dict = {}
    n_units = 0

    def emit(unit: Unit, hit: Hit):
        located.append(locate(unit, hit))

    deferred: list = []

    def unit_stream():
        """Every file's units, between start/end markers (index -1) that travel through the workers,
        so that per-file state resets in input order."""
        extracted = _extract_app_files(disc.files, jobs)
        for number, f in enumerate(disc.files):
            if f.framework is not None:
                frameworks[f.path] = f.framework.name
            yield Unit(path=f.path, text="", line=0, meta="start", index=-1, copy_rows=number)
            if number in extracted:  # application source, read by a worker
                units, file_errors, f.suppressions = extracted.pop(number)
                errors.extend(file_errors)
                yield from units
            else:
                yield from read_units(f, errors, single_transaction=config.single_transaction)
            yield Unit(path=f.path, text="", line=0, meta="end", index=-1, copy_rows=number)

    adapters: set = set()
    superseded: list = []
    unread_wrappers: list = []  # (helper name, path): migration calls through a project helper not followed
    schema_owners: list = []  # what says Hibernate does not write the schema: a setting, a changelog tool

    def absorb(unit: Unit, res: UnitResult):
        """Order-dependent work on one statement: the schema model, then its hits."""
        if unit.construct is not None and unit.construct.get("kind") == "Adapter":
            adapters.add(unit.construct.get("name"))
        if unit.construct is not None and unit.construct.get("kind") == "SupersededMigration":
            superseded.append(unit.path)
        if unit.construct is not None and unit.construct.get("kind") == "UnreadWrapper":
            unread_wrappers.append((str(unit.construct.get("name")), unit.path))
        if unit.construct is not None and unit.construct.get("kind") == "SchemaOwner":
            schema_owners.append(f"{unit.construct.get('setting')} = {unit.construct.get('value')} ({unit.path})")
        if unit.framework and unit.source not in ("sql", "pg_dump", "migration"):
            frameworks.setdefault(unit.path, unit.framework)  # application source: the ORM it uses
        if res.effects:
            schema.apply(_light(unit), res.effects)
        for hit in res.hits:
            if hit.rel is not None:
                qualified = schema.qualify(*hit.rel)
                hit.object = f"{qualified}.{hit.object}" if hit.object else qualified
            if hit.args.get("resolve"):
                deferred.append((locate(unit, hit), hit))
            else:
                located.append(locate(unit, hit))

    recorded: list | None = [] if record_transactions else None
    txns = _Transactions(emit, recorded)
    for batch, results in _results(_batches(unit_stream()), jobs):
        for unit, res in zip(batch, results):
            if unit.index == -1:  # file boundary
                if unit.meta == "start":
                    schema.new_session()
                else:
                    txns.end_of_input()
                    f = disc.files[unit.copy_rows]
                    suppressions[f.path] = f.suppressions
                    if progress:
                        progress(f)
                continue
            n_units += 1
            if on_unit is not None:  # `run --scan`: which file and line hold a statement's text
                on_unit(unit)
            txns.feed(unit, res.klass, res.txn_op)
            for u, r in [(unit, res), *res.nested]:
                absorb(u, r)
    txns.flush()
    catalog = load_catalog()
    # hits that needed the whole input (a table's primary key from another file)
    for loc, hit in deferred:
        mod = rule_module(hit.slug)
        resolved = mod.resolve(hit, schema, profile) if mod is not None else hit
        if resolved is not None:
            loc.hit = resolved
            located.append(loc)
    for rule in catalog:
        if rule.scope == "schema":
            mod = rule_module(rule.slug)
            for unit, hit in mod.finish(schema, profile):
                located.append(locate(unit, hit))
    owners = schema_owners + sorted({f"{name} changelogs" for name in frameworks.values()
                                     if name in ("liquibase", "flyway")})
    if owners:
        _entities_restate(located)
    used: set = set()
    findings = merge_restatements(build_findings(located, catalog, profile, config, suppressions,
                                                 aggregate=aggregate, used=used))
    unknown_ignores, unused_ignores = ignore_problems(suppressions, used, catalog)
    superseded_findings = sum(1 for f in findings if f.superseded)
    findings = [f for f in findings if not f.superseded]
    if adapters:  # an AWS DSQL adapter rewrites some of what the ORM emits: those findings become info
        from dsql_audit.sources.adapters import downgrade

        downgrade(findings, adapters)
    if owners:
        _entities_informational(findings, owners)
    inputs = sum(1 for f in disc.files if f.kind != "unreadable")
    notes = _notes(disc, unread_wrappers)
    return ScanResult(findings, errors, profile, inputs=inputs, units=n_units, frameworks=frameworks,
                      bytes=total_bytes, schema=schema, transactions=recorded, adapters=adapters,
                      superseded=sorted(superseded), superseded_findings=superseded_findings,
                      unknown_ignores=unknown_ignores, unused_ignores=unused_ignores, notes=notes)


def _is_entity_schema(loc) -> bool:
    """A JPA entity's declaration of a table, column, index, key or sequence (not its locking)."""
    return loc.framework == "jpa" and loc.source == "orm" and (loc.origin or "").startswith("JPA @") and \
        not (loc.origin or "").startswith("JPA @Lock")


def _entities_restate(located: list) -> None:
    """Where something else writes the schema (Liquibase, Flyway, ddl-auto none/validate), an entity restates
    what a changelog sends: its finding joins that statement's finding (merge_restatements) when both name
    the same object."""
    for loc in located:
        if _is_entity_schema(loc):
            loc.restates = True


def _entities_informational(findings: list, owners: list) -> None:
    """An entity finding no changelog statement took in describes DDL Hibernate does not send: info, saying
    what owns the schema."""
    owner = owners[0] + (f" and {len(owners) - 1} more" if len(owners) > 1 else "")
    for f in findings:
        if f.framework == "jpa" and f.restates and f.path.endswith((".java", ".kt")):
            f.severity = Severity.info
            f.message += f" — informational: Hibernate does not write this schema here ({owner})"


def _notes(disc, unread_wrappers: list) -> list[str]:
    """What a reader must know about what was not read: folders for other databases, migration calls that went
    through a project helper the scan could not follow."""
    notes = []
    if disc.other_dialects:
        shown = ", ".join(f"{folder} ({database})" for folder, database in disc.other_dialects[:5])
        more = f" and {len(disc.other_dialects) - 5} more" if len(disc.other_dialects) > 5 else ""
        notes.append(f"Not read: {len(disc.other_dialects)} folder(s) named for another database — {shown}{more}. "
                     "Name a folder on the command line to read it anyway.")
    if unread_wrappers:
        names = sorted({w for w, _ in unread_wrappers})
        files = len({p for _, p in unread_wrappers})
        notes.append(f"{len(unread_wrappers)} migration call(s) in {files} file(s) went through a project helper "
                     f"the scan does not follow ({', '.join(names[:5])}{', …' if len(names) > 5 else ''}): what "
                     "they send is not judged here; `dsql-audit run -- <the migrate command>` sees it.")
    return notes


def scan_sql(text: str, *, path: str = "<sql>", profile: Profile | str | None = None,
             config: Config | None = None, framework: str | None = None, jobs: int = 1) -> ScanResult:
    """Scan SQL text directly (the library entry point; tests and the engine use it)."""
    from dsql_audit.sources import _classify_text

    config = config or Config()
    if isinstance(profile, str) or profile is None:
        profile = load_profile(profile if isinstance(profile, str) else config.profile)
    f = InputFile(path, None, None, kind="sql", data=text.encode("utf-8"), size=len(text))
    _classify_text(f, framework or config.framework)
    return scan([], config=config, profile=profile, jobs=jobs, discovery=Discovery(files=[f]))
