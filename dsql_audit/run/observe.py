"""``dsql-audit run -- COMMAND``: run the user's own command against the engine in audit mode and turn what
the engine saw into findings at the line of code that sent each statement.

The flow is one-way: the engine (audit mode) records every violation with the call site the statement's tag
named (``tag.py``; the Python hook in ``pyhook/`` adds it) → ``observed_findings`` groups them into one
finding per rule and call site → ``merge`` joins them with a static scan's findings (``--scan``) → the
reporters. Nothing here decides severity: the rule catalog and the user's config do.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dsql_audit.catalog import load_catalog
from dsql_audit.model import Finding, InputError, Severity
from dsql_audit.secrets import mask

# variables that would send a libpq client somewhere else than the engine (they win over PGHOST & co.)
_REDIRECTS = ("PGHOSTADDR", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGREQUIRESSL", "PGTARGETSESSIONATTRS",
              "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGCHANNELBINDING", "PGGSSENCMODE")
TEMPLATE_KEYS = ("url", "host", "port", "user", "password", "dbname")
_NO_SITE = "(no call site)"  # findings whose statement carried no call site and matched no scanned statement


class UsageError(ValueError):
    """A bad --env template or command: exit 2."""


@dataclass
class Endpoint:
    host: str
    port: int
    user: str
    password: str
    dbname: str = "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}?sslmode=disable"

    def values(self) -> dict:
        return {"url": self.url, "host": self.host, "port": str(self.port), "user": self.user,
                "password": self.password, "dbname": self.dbname}


def parse_env_templates(items) -> list[tuple[str, str]]:
    """``NAME=TEMPLATE`` pairs, checked before anything starts (exit 2 on a bad one)."""
    out = []
    for item in items or ():
        name, sep, template = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise UsageError(f"--env {item!r}: expected NAME=TEMPLATE, e.g. --env 'MYAPP_DB={{url}}'")
        for key in re.findall(r"\{([^{}]*)\}", template.replace("{{", "").replace("}}", "")):
            if key not in TEMPLATE_KEYS:
                raise UsageError(f"--env {name}: unknown placeholder {{{key}}} (use "
                                 + ", ".join("{" + k + "}" for k in TEMPLATE_KEYS) + ")")
        out.append((name, template))
    return out


def child_env(base: dict, endpoint: Endpoint, templates: list[tuple[str, str]], app_paths=None) -> dict:
    """The command's environment: the standard libpq variables and DATABASE_URL pointing at the engine, the
    user's templates expanded, and the Python call-site hook switched on."""
    from dsql_audit.run import hook_env

    env = {k: v for k, v in base.items() if k not in _REDIRECTS}
    env.update(PGHOST=endpoint.host, PGPORT=str(endpoint.port), PGUSER=endpoint.user,
               PGPASSWORD=endpoint.password, PGDATABASE=endpoint.dbname, PGSSLMODE="disable",
               DATABASE_URL=endpoint.url)
    values = endpoint.values()
    for name, template in templates:
        env[name] = template.format_map(values)
    return hook_env(env, app_paths)


def new_password() -> str:
    return secrets.token_urlsafe(18)


# -- the command ---------------------------------------------------------------------------------------
@dataclass
class CommandOutcome:
    status: int | None  # exit status; negative: killed by that signal; None: never started
    seconds: float
    interrupted: bool = False
    leftovers: int = 0  # processes the command left running that were ended


def run_command(argv: list[str], env: dict, cwd: str | None = None, keep=(), abort=None) -> CommandOutcome:
    """Run ``argv`` with its output streaming through; Ctrl-C and SIGTERM go to the command (and interrupt
    the run). Processes the command leaves behind are ended when it exits; ``keep``: pids never touched (the
    engine's own), or a function that says them when the command has ended. ``abort``: an Event that, once
    set, ends the command (the engine could not start)."""
    import psutil

    started = time.monotonic()
    interrupted = [False]
    running: list = []  # the command, once started
    early: list = []  # signals that came before it was (sent to it as soon as it is)

    def forward(signum, _frame):
        interrupted[0] = True
        if not running:
            early.append(signum)
            return
        try:
            running[0].send_signal(signum)
        except ProcessLookupError:
            pass

    # installed before the command starts: a Ctrl-C the moment it starts still reaches it (else the run would
    # stop and leave the command running)
    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        proc = subprocess.Popen(argv, env=env, cwd=cwd)
    except (FileNotFoundError, PermissionError, NotADirectoryError, OSError) as exc:
        for s, handler in old.items():
            signal.signal(s, handler)
        raise UsageError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
    running.append(proc)
    for signum in early:
        forward(signum, None)
    seen: dict = {}  # pid → psutil.Process of every descendant seen (grandchildren outlive their parent)
    aborted = False
    try:
        root = psutil.Process(proc.pid)
        while True:
            try:
                status = proc.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                pass
            if abort is not None and abort.is_set() and not aborted:
                aborted = True
                proc.terminate()
            try:
                for p in root.children(recursive=True):
                    seen.setdefault(p.pid, p)
            except psutil.Error:
                pass
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    leftovers = _end(seen.values(), set(keep() if callable(keep) else keep))
    return CommandOutcome(status, time.monotonic() - started, interrupted[0], leftovers)


def _end(processes, keep: set) -> int:
    import psutil

    alive = []
    for p in processes:
        try:
            if p.pid not in keep and p.is_running():  # is_running() also checks the pid was not reused
                p.terminate()
                alive.append(p)
        except psutil.Error:
            pass
    _, still = psutil.wait_procs(alive, timeout=3)
    for p in still:
        try:
            p.kill()
        except psutil.Error:
            pass
    return len(alive)


# -- findings -------------------------------------------------------------------------------------------
@dataclass
class Observation:
    """One distinct violation: a rule (and variant) at one call site, with how often it was seen."""

    rule: str
    variant: str | None
    sqlstate: str
    message: str
    statement: str
    site: dict | None
    count: int = 1
    sessions: set = field(default_factory=set)
    applications: set = field(default_factory=set)


def group(findings: list[dict], client_info: dict | None = None) -> list[Observation]:
    """The engine's findings, one Observation per rule × call site (× statement when there is no site)."""
    out: dict = {}
    for f in findings:
        site = f.get("site") or None
        where = (site.get("f"), site.get("l")) if site else (None, " ".join(f["statement"].split()))
        key = (f["rule"], *where)  # one finding per rule and call site (SAVEPOINT and RELEASE alike)
        obs = out.get(key)
        if obs is None:
            obs = out[key] = Observation(f["rule"], f.get("variant"), f["sqlstate"], f["message"], f["statement"],
                                         site, 0)
        obs.count += 1
        obs.sessions.add(f.get("session"))
        info = (client_info or {}).get(f.get("session"))
        if info is not None and getattr(info, "application_name", ""):
            obs.applications.add(info.application_name)
    return list(out.values())


def _display_path(path: str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root))
    except (ValueError, OSError):
        return path


def _source_line(path: str, line: int, cache: dict) -> str:
    """The code at the call site (the report's code frame); '' when the file cannot be read."""
    lines = cache.get(path)
    if lines is None:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                lines = fh.read(4_000_000).splitlines()
        except OSError:
            lines = []
        cache[path] = lines
    return lines[line - 1] if 0 < line <= len(lines) else ""


def observed_findings(observations: list[Observation], config, root: Path, statement_index: dict | None = None) \
        -> list[Finding]:
    """Findings for the observations, at the call site (or, without one, where a scanned file holds the same
    statement text; else at the statement itself)."""
    catalog = load_catalog()
    files: dict = {}
    out = []
    for obs in observations:
        rule = catalog.get(obs.rule)
        variant = rule.variant(obs.variant) if rule and obs.variant in rule.variants else None
        site = obs.site or {}
        path, line, snippet = None, 1, ""
        migration = None
        if site.get("f") and site.get("l"):
            path, line = site["f"], int(site["l"])
            snippet = _source_line(path, line, files)
            if site.get("m") and (site.get("m") != site.get("f") or site.get("ml") != site.get("l")):
                migration = f"{_display_path(site['m'], root)}:{site.get('ml')}"
        elif statement_index:
            hit = statement_index.get(normalize(obs.statement))
            if hit:
                path, line = hit
                snippet = _source_line(str(root / path) if not os.path.isabs(path) else path, line, files)
        statement = mask(" ".join(obs.statement.split()))
        if path is None:
            path, snippet = _NO_SITE, statement[:300]
        shown = _display_path(path, root) if path != _NO_SITE else path
        if rule is not None and not config.enabled(rule, shown):
            continue
        severity = config.severity_for(rule, variant.severity if variant else rule.severity) if rule \
            else Severity.error
        message = f"{obs.message} (sent {obs.count:,}×" + (f", by {', '.join(sorted(obs.applications))}"
                                                          if obs.applications else "") + ")"
        if migration:
            message += f" — while applying the migration operation at {migration}"
        if path == _NO_SITE or statement[:120] not in snippet:
            message += f" — statement: {statement[:200]}" + ("…" if len(statement) > 200 else "")
        snippet = mask(snippet[:300])
        f = Finding(rule=rule.code if rule else obs.rule, name=obs.rule, severity=severity,
                    category=rule.category if rule else "workload", message=mask(message), path=shown, line=line,
                    # the line's code, not its indentation: where an editor or a caret should point
                    column=len(snippet) - len(snippet.lstrip()) + 1 if snippet.strip() else 1, end_line=line,
                    end_column=max(2, len(snippet.rstrip()) + 1), source="run",
                    snippet=snippet, fix=(variant and variant.fix) or (rule.fix if rule else ""),
                    docs=rule.docs if rule else "",
                    sqlstate=obs.sqlstate, dsql_message=obs.message,
                    framework="migration" if site.get("m") else None, occurrences=obs.count)
        f.observed = obs.count
        f.compute_fingerprint()
        out.append(f)
    out.sort(key=lambda f: (f.path, f.line, f.rule))
    return out


def normalize(sql: str) -> str:
    return " ".join(sql.strip().rstrip(";").split()).lower()


def _call_span(path: str, line: int, root: Path, cache: dict) -> tuple[int, int]:
    """The lines of the Python call that starts at ``line`` (a migration operation, `op.create_table(…)`, a
    `create_all()`): the scan reports a construct inside it at its own line (a field, an index)."""
    import ast

    full = path if os.path.isabs(path) else str(root / path)
    if not full.endswith(".py"):
        return line, line
    spans = cache.get(full)
    if spans is None:
        spans = {}
        try:
            with open(full, encoding="utf-8", errors="replace") as fh:
                tree = ast.parse(fh.read(4_000_000))
            for node in ast.walk(tree):
                # the outermost call starting there; a `with` block (Alembic's batch_alter_table sends its
                # operations when the block ends, at the `with` line) spans its body
                if isinstance(node, (ast.Call, ast.With, ast.AsyncWith)) and node.end_lineno:
                    end = spans.get(node.lineno, node.lineno)
                    spans[node.lineno] = max(end, node.end_lineno)
        except (OSError, SyntaxError, ValueError):
            pass
        cache[full] = spans
    return line, spans.get(line, line)


def _under(path: str, roots: list[Path], root: Path) -> bool:
    full = Path(path) if os.path.isabs(path) else root / path
    try:
        full = full.resolve()
    except OSError:
        return False
    return any(full == r or r in full.parents for r in roots)


def merge(static: list[Finding], observed: list[Finding], scan_roots: list[str] | None = None,
          root: Path | None = None, slack: int = 3) -> tuple[list[Finding], list[Finding], list[Finding]]:
    """Join observed findings with a static scan's: a violation found both ways is the static finding, marked
    observed (with the count) — found at the same rule and file, within the call that sent it (a migration
    operation spans its fields) or ``slack`` lines of it. Returns (all findings, the scan's misses: observed
    in the scanned paths and not found, and the observed outside the scanned paths)."""
    root = root or Path.cwd()
    roots = [Path(r).resolve() if os.path.isabs(r) else (root / r).resolve() for r in (scan_roots or ["."])]
    by_place: dict = {}
    for f in static:
        by_place.setdefault((f.name, f.path), []).append(f)
    spans: dict = {}
    misses, outside = [], []
    for o in observed:
        first, last = _call_span(o.path, o.line, root, spans)
        best, distance = None, slack + 1
        for s in by_place.get((o.name, o.path), ()):
            if first <= s.line <= last:
                d = 0
            else:
                d = min(abs(s.line - first), abs(s.line - last), abs(s.end_line - first))
            if d < distance:
                best, distance = s, d
        if best is not None:
            best.observed = (best.observed or 0) + o.observed
        elif _under(o.path, roots, root):
            misses.append(o)
        else:
            outside.append(o)
    merged = static + misses + outside
    merged.sort(key=lambda f: (f.path, f.line, f.column, f.rule))
    return merged, misses, outside


@dataclass
class RunResult:
    """What ScanResult is for scan: the reporters read findings, errors, profile and counts; run_summary()
    adds what the command did."""

    findings: list
    errors: list
    profile: object
    command: list
    outcome: CommandOutcome
    statements: int = 0
    refused: int = 0
    sessions: int = 0
    observed: int = 0  # distinct violations seen at run time
    with_site: int = 0  # … of which at a call site in the application
    misses: list = field(default_factory=list)  # observed in the scanned paths, not found by --scan
    outside: list = field(default_factory=list)  # observed outside the scanned paths (no verdict on the scan)
    scanned: bool = False
    inputs: int = 0
    units: int = 0
    frameworks: dict = field(default_factory=dict)
    bytes: int = 0
    adapters: set = field(default_factory=set)
    superseded: list = field(default_factory=list)
    superseded_findings: int = 0
    schema: object = None

    def run_summary(self) -> dict:
        out = {"command": [mask(a) for a in self.command], "exit_status": self.outcome.status,
               "seconds": round(self.outcome.seconds, 3), "interrupted": self.outcome.interrupted,
               "statements": self.statements, "refused_by_dsql": self.refused, "sessions": self.sessions,
               "distinct_violations": self.observed, "with_call_site": self.with_site,
               "left_running_and_ended": self.outcome.leftovers}
        if self.scanned:
            in_scope = self.observed - len(self.outside)
            out["observed_only"] = len(self.misses)
            out["observed_outside_scan"] = len(self.outside)
            out["scan_recall"] = round((in_scope - len(self.misses)) / in_scope, 4) if in_scope else None
            out["misses"] = [f"{f.name} {f.path}:{f.line}" for f in self.misses]
        return out


def observe(argv: list[str], *, profile: str | None = None, config=None, schema: str | None = None,
            scan_paths: list[str] | None = None, env_templates=(), data_dir: str | None = None,
            app_paths=None, log=None, cwd: str | None = None, workers: int = 1) -> RunResult:
    """Run the command against the engine in audit mode and return the findings (the CLI reports them)."""
    from dsql_audit.config import Config
    from dsql_audit.engine.bootstrap import CLIENT_ROLE

    log = log or (lambda line: None)
    config = config or Config()
    templates = parse_env_templates(env_templates)
    root = Path(cwd or os.getcwd()).resolve()
    scanned = None
    index: dict = {}
    if scan_paths:
        from dsql_audit.scan import scan as run_scan

        def remember(unit):
            if unit.text and not unit.construct:
                index.setdefault(normalize(unit.text), (unit.path, unit.line))

        scanned = run_scan(scan_paths, config=config, profile=None if profile is None else _profile(profile),
                           on_unit=remember)
    from dsql_audit.serve.listen import listen
    from dsql_audit.serve.workers import launch

    # the command starts before the engine is even imported: the engine's start hides behind the command's own
    engine = None
    if data_dir is not None:  # (a temporary directory is new: only a named one can be in use)
        from dsql_audit.engine import Engine

        engine = Engine(data_dir=data_dir, profile=profile or "latest", audit=True)
        try:
            engine.reserve()  # a data directory in use is said before anything starts
        except RuntimeError as exc:
            raise UsageError(str(exc)) from None
    errors: list = list(scanned.errors) if scanned else []
    starting = None
    try:
        launched = launch(workers)  # their imports run while the engine starts
        listener = listen("127.0.0.1", 0)  # the command's clients wait in its backlog until the engine serves
        password = new_password()
        endpoint = Endpoint("127.0.0.1", listener.getsockname()[1], CLIENT_ROLE, password)
        env = child_env(dict(os.environ), endpoint, templates, app_paths)
        starting = _EngineStart(engine, profile, schema, log, dict(password=password, log=log, workers=workers,
                                                                   launched=launched, listener=listener))
        starting.start()
        try:
            outcome = run_command(argv, env, cwd=cwd, keep=lambda: starting.engine.own_pids() if starting.engine
                                  else set(), abort=starting.failed)
        finally:
            starting.join()
            if starting.server is not None:
                starting.server.stop()
            else:
                listener.close()
                for worker in launched:
                    worker.discard()
        if starting.error is not None:
            raise starting.error
        engine = starting.engine
        stats = dict(engine.stats)
        observations = group(engine.findings, starting.server.client_info)
        sessions = len({f.get("session") for f in engine.findings}) if engine.findings else 0
        sessions = max(sessions, stats.get("sessions", 0))
    finally:
        made = starting.engine if starting is not None else engine
        if made is not None:
            made.stop()
    observed = observed_findings(observations, config, root, index)
    with_site = sum(1 for o in observations if o.site and o.site.get("f"))
    result = RunResult(findings=observed, errors=errors, profile=engine.profile, command=list(argv),
                       outcome=outcome, statements=stats.get("statements", 0), refused=stats.get("refused", 0),
                       sessions=sessions, observed=len(observed), with_site=with_site, inputs=1,
                       units=stats.get("statements", 0))
    if scanned is not None:
        merged, misses, outside = merge(scanned.findings, observed, scan_paths, root)
        result.findings, result.misses, result.outside, result.scanned = merged, misses, outside, True
        result.inputs, result.units, result.frameworks = scanned.inputs + 1, scanned.units, scanned.frameworks
        result.bytes, result.adapters, result.schema = scanned.bytes, scanned.adapters, scanned.schema
        result.superseded, result.superseded_findings = scanned.superseded, scanned.superseded_findings
    return result


class _EngineStart(threading.Thread):
    """The engine's import and start, the schema's load and the server's start, while the command starts."""

    def __init__(self, engine, profile: str | None, schema: str | None, log, server_options: dict):
        super().__init__(name="dsql-engine-start", daemon=True)
        self.engine, self.profile, self.schema, self.log = engine, profile, schema, log
        self.server_options = server_options
        self.server = None
        self.error: BaseException | None = None
        self.failed = threading.Event()

    def run(self) -> None:
        try:
            from dsql_audit.engine import Engine
            from dsql_audit.serve import Server

            if self.engine is None:
                self.engine = Engine(profile=self.profile or "latest", audit=True)
            self.engine.start()
            if self.schema:
                from dsql_audit.engine.script import load_sql_file

                ok, _ = load_sql_file(self.engine, self.schema, self.log)
                self.log(f"schema {self.schema}: {ok} statements loaded")
            self.server = Server(self.engine, "127.0.0.1", 0, **self.server_options).start()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self.error = exc
            self.failed.set()


def _profile(date: str):
    from dsql_audit.profile import load_profile

    return load_profile(date)


def command_error(outcome: CommandOutcome) -> InputError | None:
    if outcome.status in (0, None):
        return None
    how = f"was killed by signal {-outcome.status}" if outcome.status < 0 else f"exited with status {outcome.status}"
    return InputError("(command)", f"the command {how}")
