"""The dsql-audit command line.

Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it,
2 usage error or unreadable input, 3 internal error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import click

from dsql_audit import __version__
from dsql_audit.catalog import load_catalog
from dsql_audit.model import Severity
from dsql_audit.report import FORMATS as REPORT_FORMATS

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a program whose reader went away

# what the command is doing, for the message a Ctrl-C prints: a string, or a function that says it
_DOING: dict = {"now": None}


def _doing(what) -> None:
    _DOING["now"] = what


def _interrupted() -> str:
    now = _DOING["now"]
    try:
        now = now() if callable(now) else now
    except Exception:  # noqa: BLE001 - the message must never fail
        now = None
    return "dsql-audit: interrupted" + (f" while {now}" if now else "")


def _split(values) -> list[str]:
    out = []
    for v in values or ():
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _use_color(flag, output, fmt: str = "console") -> bool:
    """--color/--no-color win; then FORCE_COLOR (set, not "0") and NO_COLOR (set, not empty) as
    https://force-color.org and https://no-color.org say; then colour only on a terminal."""
    if fmt != "console":
        return False
    if flag is not None:
        return bool(flag)
    force = os.environ.get("FORCE_COLOR")
    if force is not None and force != "0":
        return True
    if os.environ.get("NO_COLOR"):
        return False
    return output is None and sys.stdout.isatty()


def _width(output) -> int | None:
    """The terminal's columns when the report goes to one (COLUMNS wins, as everywhere); None: the reporter's
    fixed width, so a report in a file or a pipe does not depend on the window it was made in."""
    import shutil

    if output is None and sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _input_errors(errors, limit: int = 20) -> None:
    for e in errors[:limit]:
        where = f"{e.path}:{e.line}" if e.line else e.path
        click.echo(f"dsql-audit: {where}: {e.message}", err=True)
    if len(errors) > limit:
        click.echo(f"dsql-audit: … and {len(errors) - limit} more input errors (all of them in -f json)", err=True)


def _stdout_closed() -> None:
    """stdout went away (`dsql-audit rules | head -3`): stop quietly, as a program killed by SIGPIPE does."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not raise again
    except (OSError, ValueError):
        pass
    os._exit(EXIT_BROKEN_PIPE)


FAIL_ON = ("error", "warning", "info", "never")


def _workers_option(f):
    from dsql_audit.serve.workers import default_workers

    return click.option("--workers", default=default_workers(), show_default="one per core",
                        type=click.IntRange(1, 64), help="Processes serving the clients (every core by default; "
                        "OCC is decided across them as on one cluster).")(f)


def _selection_options(config_help: str = "dsql-audit.toml or pyproject.toml to read (default: the nearest one "
                       "above the inputs, as ruff finds its config)."):
    """The options every command that reports findings takes, with one meaning and one default each: the
    rules (--select/--extend-select/--ignore), the exit threshold (--fail-on), the config file and colour."""
    def decorate(f):
        for opt in reversed((
            click.option("--select", multiple=True, metavar="RULES",
                         help="Only these rules: codes, code prefixes like DSQL1, or slugs (comma-separated or "
                         "repeated; replaces the config's select)."),
            click.option("--extend-select", multiple=True, metavar="RULES",
                         help="Add these rules to the selection (the config's or --select's)."),
            click.option("--ignore", multiple=True, metavar="RULES",
                         help="Skip these rules (codes, prefixes or slugs; added to the config's ignore)."),
            click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
                         help="Exit 1 when a finding is at or above this severity (default: the config's "
                         "fail-on, else error)."),
            click.option("--config", "config_path", type=click.Path(dir_okay=False), help=config_help),
            click.option("--color/--no-color", default=None, help="Colour the console report (default: on a "
                         "terminal; FORCE_COLOR forces it, NO_COLOR turns it off)."),
        )):
            f = opt(f)
        return f
    return decorate


def _load_config(config_path, start_paths, *, select=(), extend_select=(), ignore=(), fail_on=None,
                 profile_date=None, then_cwd: bool = False):
    """The config for a command: the file given, else the nearest one above ``start_paths`` (the cwd when
    there are none; after them with ``then_cwd``), with the command line's choices laid over it and checked
    (ConfigError)."""
    from dsql_audit.config import config_start, load_config

    config = load_config(config_path, start=config_start(start_paths), then_cwd=then_cwd)
    if profile_date:
        config.profile = profile_date
    if select:
        config.select = _split(select)
    if extend_select:
        config.extend_select(_split(extend_select))
    if ignore:
        config.ignore = config.ignore + _split(ignore)
    if fail_on:
        config.fail_on = fail_on
    config.validate(load_catalog())
    return config


class _Group(click.Group):
    def invoke(self, ctx):
        from dsql_audit.output import OutputError

        _doing(None)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # Ctrl-C: 130 as shells expect (1 would say "findings"), and where it stopped
            click.echo(_interrupted(), err=True)
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            _stdout_closed()
        except OutputError as exc:  # an output that cannot or must not be written: a usage error
            click.echo(f"dsql-audit: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception:  # pragma: no cover - reached only on bugs
            from dsql_audit.secrets import mask

            click.echo("dsql-audit: internal error (please report):", err=True)
            click.echo(mask(traceback.format_exc()), err=True)  # a DSN in an exception keeps its password
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="dsql-audit")
def main():
    """What in your PostgreSQL estate will break on Amazon Aurora DSQL.

    Every command that reports findings takes the same rule, threshold, config and colour options
    (--select, --extend-select, --ignore, --fail-on, --config, --color) and reads [tool.dsql-audit] from
    the nearest pyproject.toml or dsql-audit.toml. `dsql-audit COMMAND -h` says more.

    \b
    Shell completion (bash; zsh_source and fish_source likewise):
      eval "$(_DSQL_AUDIT_COMPLETE=bash_source dsql-audit)"
    """


@main.command(short_help="Find what will break on DSQL in SQL, dumps, migrations and code.")
@click.argument("paths", nargs=-1, required=True)
@click.option("--profile", "profile_date", metavar="YYYY-MM-DD",
              help="Judge against DSQL as of this date (default: newest profile).")
@click.option("-f", "--format", "fmt", type=click.Choice(list(REPORT_FORMATS)), default=None,
              help="Report format (default: console).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report here.")
@click.option("--framework", type=click.Choice(sorted(
    ["flyway", "goose", "golang-migrate", "dbmate", "sqitch", "rails", "prisma", "liquibase", "django",
     "alembic", "psql", "pg_dump"])), default=None, help="Force the migration framework (default: detect).")
@click.option("-1", "--single-transaction", is_flag=True, default=None,
              help="Run each plain SQL file as one transaction (psql -1).")
@_selection_options()
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching these patterns (replaces the "
              "config's exclude; a folder name skips what is under it).")
@click.option("--extend-exclude", multiple=True, metavar="GLOB", help="Skip these too (added to the excludes).")
@click.option("--stdin-filename", metavar="PATH", help="The name of what - reads: findings carry it, per-file "
              "ignores and excludes match it, and its suffix says how to read it (.py as Python; default SQL).")
@click.option("--baseline", type=click.Path(dir_okay=False), help="Report only findings not in this baseline.")
@click.option("--write-baseline", type=click.Path(dir_okay=False), help="Write every finding to this baseline "
              "file (later scans with --baseline report only new ones), say how many, and exit 0.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=None, help="Worker processes (default: "
              "both cores for large inputs).")
@click.option("--no-aggregate", is_flag=True, help="Report every pg_dump idiom instead of once per dump.")
@click.option("--sql-only", is_flag=True, help="Read only SQL files, dumps and archives, not application source.")
@click.option("--diff-base", "diff_base", metavar="REF", help="Report only files changed since the merge base of "
              "REF and HEAD (plus uncommitted ones); unchanged SQL files are still read for the schema they build.")
@click.option("--max-file-size", "max_file_size", metavar="SIZE", default=None,
              help="Skip application source files found under a folder that are bigger than this (default 5MB, "
              "or max-file-size in the config; 0: no limit). Each skipped file is listed in the report's errors; "
              "files named directly and SQL files (streamed) are always read.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; only the report.")
@click.option("--report-unused-ignores", is_flag=True,
              help="List inline ignores that suppressed nothing (and exit 1 when there are any), as ruff's RUF100.")
def scan(paths, profile_date, fmt, output, fail_on, select, extend_select, ignore, framework, single_transaction,
         config_path, exclude, extend_exclude, stdin_filename, baseline, write_baseline, jobs, no_aggregate, sql_only,
         diff_base, max_file_size, quiet, color, report_unused_ignores):
    """Audit SQL files, pg_dump output, migration folders and application source (Python in depth; SQL
    strings in other languages; ORM and migration DSLs). PATHS are files or folders; - reads stdin."""
    from dsql_audit import output as out
    from dsql_audit.baseline import filter_new, load_baseline
    from dsql_audit.baseline import write_baseline as do_write_baseline
    from dsql_audit.config import ConfigError, parse_size
    from dsql_audit.profile import load_profile
    from dsql_audit.report import render
    from dsql_audit.scan import scan as run_scan
    from dsql_audit.sources import discover

    try:
        config = _load_config(config_path, paths, select=select, extend_select=extend_select, ignore=ignore,
                              fail_on=fail_on, profile_date=profile_date)
        if framework:
            config.framework = framework
        if single_transaction:
            config.single_transaction = True
        if exclude:
            config.exclude = _split(exclude)
        config.exclude = config.exclude + config.extend_exclude + _split(extend_exclude)
        if max_file_size is not None:
            try:
                config.max_file_size = parse_size(max_file_size)
            except ValueError as exc:
                raise ConfigError(f"--max-file-size: {exc}") from None
        config.validate(load_catalog())
        profile = load_profile(config.profile)
        if stdin_filename and "-" not in paths:
            raise ConfigError("--stdin-filename names what - reads; give - among the paths")
        for label, target in (("-o", output), ("--write-baseline", write_baseline)):
            if target:
                out.check(target, label=label)
    except (ConfigError, ValueError, out.OutputError) as exc:
        click.echo(f"dsql-audit: {exc}", err=True)
        sys.exit(EXIT_USAGE)

    _doing(lambda: f"finding the inputs under {', '.join(out.printable(p) for p in paths)}")
    disc = discover(paths, framework=config.framework, exclude=config.exclude, app=not sql_only,
                    max_file_size=config.max_file_size, stdin_filename=stdin_filename)
    try:
        for label, target in (("-o", output), ("--write-baseline", write_baseline)):
            if target:
                disc.files = _not_an_input(target, label, paths, disc.files)
    except out.OutputError as exc:
        click.echo(f"dsql-audit: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    named = {out.printable(p) for p in paths}
    named_missing = [e for e in disc.errors if e.path in named]
    changed = None
    if diff_base:
        from dsql_audit.gitdiff import changed_files

        try:
            changed = changed_files(diff_base, Path(paths[0] if paths[0] != "-" else "."))
        except ValueError as exc:
            click.echo(f"dsql-audit: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        # unchanged application files cannot change the verdict on changed ones: not read at all; unchanged
        # SQL is read for the schema and migration order it gives the changed files, its findings dropped
        disc.files = [f for f in disc.files if f.abspath is None or f.kind not in ("python", "app")
                      or f.abspath.resolve() in changed]
    bar = None
    done = [0]
    total = len(disc.files)

    def where() -> str:
        if done[0] >= total:
            return f"finishing the scan ({total} of {total} files read)"
        return f"scanning {disc.files[done[0]].path} ({done[0] + 1} of {total} files)"

    if not quiet and sys.stderr.isatty() and (len(disc.files) > 5 or sum(f.size for f in disc.files) > 2_000_000):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                       TextColumn("{task.description}"), transient=True)
        task = bar.add_task("", total=len(disc.files))
        bar.start()

    def progress(f):
        done[0] += 1
        if bar is not None:
            bar.update(task, advance=1, description=f.path[-50:])

    _doing(where)
    try:
        with _quiet_workers():
            result = run_scan(paths, config=config, profile=profile, jobs=jobs, progress=progress, discovery=disc,
                              aggregate=not no_aggregate)
    finally:
        if bar is not None:
            bar.stop()

    _doing("reporting")
    if changed is not None:
        def touched(path: str) -> bool:
            try:
                return Path(path).resolve() in changed
            except OSError:
                return False
        result.findings = [f for f in result.findings if touched(f.path)]
        result.errors = [e for e in result.errors if touched(e.path)]
        result.frameworks = {k: v for k, v in result.frameworks.items() if touched(k)}
        result.inputs = sum(1 for f in disc.files if f.abspath is not None and f.abspath.resolve() in changed)
        if not quiet:
            click.echo(f"dsql-audit: {result.inputs} changed input(s) since {diff_base}", err=True)
    if write_baseline:  # as ruff --add-noqa: the baseline, one line saying what it holds, exit 0
        if not disc.files and disc.errors:
            _input_errors(result.errors)
            sys.exit(EXIT_USAGE)  # nothing read: an empty baseline would accept nothing and hide the mistake
        _doing(f"writing the baseline {out.printable(write_baseline)}")
        n = do_write_baseline(write_baseline, result.findings)
        if output:  # a report asked for by name is written too (stdout keeps the one line)
            _emit(render(fmt or config.format or "console", result, fail_on=config.fail_on), output)
        _input_errors(result.errors)
        files = len({f.path for f in result.findings})
        by_sev = ", ".join(f"{c} {s}" for s, c in (
            (sev.name, sum(1 for f in result.findings if f.severity is sev)) for sev in
            sorted({f.severity for f in result.findings}, reverse=True)) if c)
        click.echo(f"dsql-audit: baseline {out.printable(write_baseline)} written: {n} finding(s) in {files} file(s)"
                   + (f" ({by_sev})" if by_sev else "") + "; scans with --baseline "
                   f"{out.printable(write_baseline)} now report only new ones")
        explicit = {f.path for f in disc.files if f.explicit}
        sys.exit(EXIT_USAGE if named_missing or any(e.skipped and e.path in explicit for e in result.errors)
                 else EXIT_CLEAN)
    baseline = baseline or config.baseline
    if baseline and not write_baseline:
        try:
            known = load_baseline(baseline)
        except ValueError as exc:
            click.echo(f"dsql-audit: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        result.findings, n_known = filter_new(result.findings, known)
        result.baseline_known = n_known
        if not quiet and n_known:
            click.echo(f"dsql-audit: {n_known} finding(s) already in the baseline", err=True)

    fmt = fmt or config.format or "console"
    if not disc.files and disc.errors:  # nothing was read: no report, only the errors (on stderr) and exit 2
        _input_errors(result.errors)
        sys.exit(EXIT_USAGE)
    use_color = _use_color(color, output, fmt)
    text = render(fmt, result, color=use_color, fail_on=config.fail_on, width=_width(output))
    _emit(text, output, color=use_color)

    # input errors go to stderr whatever the format and wherever the report goes (a CI log shows them; a
    # JSON report also carries them as data)
    _input_errors(result.errors)
    for path, line, names, hints in result.unknown_ignores:  # a typo must not silently ignore nothing
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        click.echo(f"dsql-audit: warning: {path}:{line}: ignore names no rule: {', '.join(names)}{hint}", err=True)
    if report_unused_ignores:
        for path, line in result.unused_ignores:
            click.echo(f"dsql-audit: {path}:{line}: unused ignore (it suppresses no finding)", err=True)
    # a file named directly that could not be read at all (binary, NUL bytes, unreadable): an input error
    explicit = {f.path for f in disc.files if f.explicit}
    unread = [e for e in result.errors if e.skipped and e.path in explicit]
    if named_missing or unread or (not disc.files and disc.errors):
        sys.exit(EXIT_USAGE)
    if report_unused_ignores and result.unused_ignores:
        sys.exit(EXIT_FINDINGS)
    if config.fail_on == "never":
        sys.exit(EXIT_CLEAN)
    threshold = Severity.parse(config.fail_on)
    if any(f.severity >= threshold for f in result.findings):
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_CLEAN)


def _not_an_input(target, label: str, paths, files: list) -> list:
    """The scan's inputs, checked against an output it is about to write: an output that is a path given, or
    a file found under a folder (by path, symbolic or hard link), is refused (OutputError) — unless it is a
    report or baseline an earlier run wrote into the scanned folder, which is then not read as input."""
    from dsql_audit import output as out

    out.refuse_inputs(target, [p for p in paths if p != "-"], label=label)
    ident = out.identity(target)
    if ident is None:
        return files
    clash = [f for f in files if f.ident == ident]
    if not clash:
        return files
    if any(f.explicit for f in clash) or not out.is_own_report(target):
        raise out.OutputError(f"{label} {out.printable(target)} is one of the inputs ({clash[0].path}): writing it "
                              "would destroy that input; write the output somewhere else")
    return [f for f in files if f.ident != ident]  # last run's report: replaced, not read


class _quiet_workers:
    """While a scan runs, worker processes forked for it ignore SIGINT: a Ctrl-C reaches the whole process
    group, and the workers must not each print a KeyboardInterrupt traceback. The main process alone stops;
    the pool then finishes the few batches already handed out (queued ones are cancelled) and the workers
    exit with it. (Ending the workers at once would risk a result half-written into the pool's pipe, on
    which the pool's shutdown then waits forever.)"""

    _registered = False
    active = False

    def __enter__(self):
        import os

        if not _quiet_workers._registered and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_quiet_workers._child)
            _quiet_workers._registered = True
        _quiet_workers.active = True
        return self

    def __exit__(self, *exc):
        _quiet_workers.active = False
        return False

    @staticmethod
    def _child():
        import signal

        if _quiet_workers.active:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _emit(text: str, output, color: bool = False) -> None:
    """The report to ``output`` (atomically: a failed or interrupted write leaves the previous file intact)
    or to stdout; an output that cannot be written is a usage error (exit 2)."""
    from dsql_audit import output as out

    if output:
        _doing(f"writing {out.printable(output)}")
        try:
            out.write_text(output, text)
        except out.OutputError as exc:
            click.echo(f"dsql-audit: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        return
    try:
        click.echo(text, nl=False, color=color or None)  # click strips colour on a pipe unless told
    except UnicodeEncodeError:  # a stdout that cannot encode some character (a lone surrogate, a C locale)
        enc = getattr(sys.stdout, "encoding", None) or "utf-8"
        click.echo(text.encode(enc, "replace").decode(enc, "replace"), nl=False, color=color or None)


@main.command(short_help="List the rules, or explain one (by slug or code).")
@click.argument("rule", required=False)
@click.option("--profile", "profile_date", metavar="YYYY-MM-DD", help="Show whether each rule applies then.")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="text for reading, json for tools, markdown for docs.")
def rules(rule, profile_date, fmt):
    """List the rules, or explain one (by slug or code)."""
    from dsql_audit.profile import load_profile

    catalog = load_catalog()
    try:
        profile = load_profile(profile_date)
    except ValueError as exc:
        click.echo(f"dsql-audit: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if rule:
        r = catalog.get(rule)
        if r is None:
            click.echo(f"dsql-audit: no rule {rule!r} (try `dsql-audit rules`)", err=True)
            sys.exit(EXIT_USAGE)
        if fmt == "json":
            click.echo(json.dumps(_rule_json(r, profile), indent=2))
        else:
            click.echo(explain(r, profile, markdown=(fmt == "markdown")))
        return
    if fmt == "json":
        click.echo(json.dumps([_rule_json(r, profile) for r in catalog], indent=2))
        return
    if fmt == "markdown":
        click.echo(rules_markdown(catalog))
        return
    for r in catalog:
        live = [v for v in r.variants.values() if profile.holds(v.when)]
        state = "" if live else "  (not applicable in this profile)"
        click.echo(f"{r.code}  {r.slug:<24} {r.severity.name:<8} {r.title}{state}")


def _rule_json(r, profile) -> dict:
    return {
        "code": r.code, "slug": r.slug, "title": r.title, "category": r.category, "severity": r.severity.name,
        "why": r.why, "fix": r.fix, "docs": r.docs, "fix_safety": r.fix_safety, "scope": r.scope,
        "variants": {name: {"severity": v.severity.name, "when": list(v.when), "applies": profile.holds(v.when),
                            "sqlstate": v.sqlstate, "dsql_message": v.dsql_message, "confirmed": v.confirmed}
                     for name, v in r.variants.items()},
        "examples": [{"bad": e.bad, "good": e.good, "profile": e.profile} for e in r.examples],
    }


def explain(r, profile, markdown: bool = False) -> str:
    lines = []
    h = "## " if markdown else ""
    lines.append(f"{h}{r.code} {r.slug} — {r.title}")
    lines.append(f"category: {r.category}; default severity: {r.severity.name}; fix: {r.fix_safety}")
    lines.append("")
    lines.append("Why:" if not markdown else "**Why.**")
    lines.append(r.why)
    lines.append("")
    lines.append("Fix:" if not markdown else "**Fix.**")
    lines.append(r.fix)
    lines.append("")
    lines.append(f"Cases (profile {profile.date}):")
    for v in r.variants.values():
        applies = "applies" if profile.holds(v.when) else "does not apply"
        cond = f" when {', '.join(v.when)}" if v.when else ""
        dsql = ""
        if v.sqlstate:
            dsql = f" — DSQL: {v.sqlstate}"
            if v.dsql_message:
                dsql += f" `{v.dsql_message}`" + ("" if v.confirmed else " (message unconfirmed)")
        lines.append(f"  - {v.name}: {v.severity.name}{cond}, {applies}{dsql}")
    for i, e in enumerate(r.examples, 1):
        prof = f" (profile {e.profile})" if e.profile else ""
        if e.bad:
            lines.append("")
            lines.append(f"Bad{prof}:")
            lines.append(_block(e.bad, markdown))
        if e.good:
            lines.append(f"Good{prof}:")
            lines.append(_block(e.good, markdown))
    lines.append("")
    lines.append(f"Docs: {r.docs}")
    return "\n".join(lines)


def _block(sql: str, markdown: bool) -> str:
    body = sql.strip("\n")
    if markdown:
        return f"```sql\n{body}\n```"
    return "\n".join("    " + ln for ln in body.splitlines())


def rules_markdown(catalog) -> str:
    rows = ["| code | slug | severity | title |", "|---|---|---|---|"]
    for r in catalog:
        rows.append(f"| {r.code} | `{r.slug}` | {r.severity.name} | {r.title} |")
    return "\n".join(rows)


@main.command(short_help="List the dated DSQL profiles (what changed when).")
def profiles():
    """List the dated DSQL profiles (what changed when)."""
    from dsql_audit.profile import _changes

    for c in _changes():
        click.echo(f"{c['date']}  {c.get('title', '')}")


@main.command(short_help="Replay captured logs and pg_stat_statements through the engine.")
@click.argument("captures", nargs=-1, required=True)
@click.option("--schema", "schema_path", type=click.Path(exists=True),
              help="Load this schema into the engine first (a SQL file or dump, or a repository / migration folder "
              "whose DDL the scan would read); what DSQL refuses is reported and skipped.")
@click.option("--schema-from", "schema_dsn", metavar="DSN",
              help="Read the schema from this PostgreSQL database (pg_dump --schema-only; reads only).")
@click.option("--convert", "convert_schema", is_flag=True, help="Convert the schema for DSQL first (as `dsql-audit "
              "convert` does) and load the converted one; its plan items are not repeated as findings.")
@click.option("--data", "data_paths", multiple=True, type=click.Path(exists=True),
              help="Seed tables first: pg_dump data (COPY or INSERTs), TABLE.csv files or a directory of them.")
@click.option("--capture-format", "capture_format", type=click.Choice(["stderr", "csvlog", "jsonlog", "pgss-csv",
              "pgss-json", "pgss-psql", "sql"]), help="The captures' format (default: detected per file).")
@click.option("--log-line-prefix", metavar="PREFIX", help="The server's log_line_prefix, for stderr logs whose "
              "prefix is not detected (e.g. '%m [%p] %q%u@%d ').")
@click.option("--speed", type=click.FloatRange(min=0), default=None, metavar="X",
              help="Pace the replay at X times the captured speed (default: as fast as possible; timings are "
              "judged on captured time either way).")
@click.option("--target", "target_dsn", metavar="DSN", help="Also replay against this endpoint (a real Aurora "
              "DSQL cluster: IAM token via the [dsql] extra) and report its outcomes beside the engine's.")
@click.option("--allow-writes", is_flag=True, help="Required with --target for logs and scripts: they write to "
              "the target.")
@click.option("--profile", "profile_date", metavar="YYYY-MM-DD", help="Behave as DSQL did on this date.")
@click.option("-f", "--format", "fmt", type=click.Choice(list(REPORT_FORMATS)),
              default=None, help="Report format (default: the config's format, else console).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report here.")
@_selection_options("dsql-audit.toml or pyproject.toml to read (default: the nearest one above --schema, "
                    "else above the current directory).")
@click.option("--redact", is_flag=True, help="Replace literals in reported statements with ?.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary lines on stderr; only the report.")
def replay(captures, schema_path, schema_dsn, convert_schema, data_paths, capture_format, log_line_prefix, speed,
           target_dsn, allow_writes, profile_date, fmt, output, select, extend_select, ignore, fail_on, config_path,
           color, redact, quiet):
    """Replay captured workloads (server logs, pg_stat_statements exports, SQL scripts) through the engine."""
    import tempfile

    from dsql_audit.replay import replay as run_replay
    from dsql_audit.replay.captures import detect_format
    from dsql_audit.replay.endpoints import EndpointError, dump_schema, redact_dsn

    from dsql_audit.config import ConfigError

    usage = _usage("replay")
    missing = [c for c in captures if c != "-" and not Path(c).exists()]
    if missing:
        usage(f"no such capture: {', '.join(missing)}")
    _check_profile(profile_date, usage)
    try:
        config = _load_config(config_path, [schema_path] if schema_path else [], select=select,
                              extend_select=extend_select, ignore=ignore, fail_on=fail_on, then_cwd=True)
    except (ConfigError, ValueError) as exc:
        usage(str(exc))
    profile_date = profile_date or config.profile
    _check_output(output, usage, inputs=[*captures, schema_path, *data_paths], folders=[schema_path, *data_paths])
    if schema_path and schema_dsn:
        usage("give --schema or --schema-from, not both")
    if target_dsn:
        kinds = {capture_format or (detect_format(c) if c != "-" else "stderr") for c in captures}
        if kinds - {"pgss-csv", "pgss-json", "pgss-psql"} and not allow_writes:
            usage(f"--target {redact_dsn(target_dsn)}: replaying logs or scripts writes to that database; "
                  "pass --allow-writes to confirm (pg_stat_statements exports are only parsed there)")
    err = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    tmp = None
    if schema_dsn:
        tmp = tempfile.TemporaryDirectory(prefix="dsql-audit-schema-")
        schema_path = str(Path(tmp.name) / "schema.sql")
        try:
            dump_schema(schema_dsn, Path(schema_path))
        except EndpointError as exc:
            usage(str(exc))
        err(f"schema read from {redact_dsn(schema_dsn)}")
    if convert_schema:
        if not schema_path:
            usage("--convert needs --schema or --schema-from")
        from dsql_audit.convert import convert as run_convert
        from dsql_audit.convert import files as convert_files

        tmp = tmp or tempfile.TemporaryDirectory(prefix="dsql-audit-schema-")
        conv = run_convert([schema_path], profile=profile_date, log=err)
        convert_files.write(conv, str(Path(tmp.name) / "converted"))
        schema_path = str(Path(tmp.name) / "converted" / "schema.sql")
        err(f"schema converted for DSQL: {len(conv.steps)} statements; {len(conv.plan)} plan items "
            f"(run dsql-audit convert for PLAN.md)")
    bar = None
    if not quiet and sys.stderr.isatty():
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        bar = Progress(SpinnerColumn(), TextColumn("replaying: {task.completed} statements"), TimeElapsedColumn(),
                       transient=True)
        task = bar.add_task("replay", total=None)
        bar.start()
    replayed = [0]

    def progress(n):
        replayed[0] = n
        if bar is not None:
            bar.update(task, completed=n)

    _doing(lambda: f"replaying {', '.join(captures)} ({replayed[0]:,} statements replayed)")
    try:
        result = run_replay(list(captures), profile=profile_date, schema=schema_path, fmt=capture_format,
                            redacted=redact, log=err, data=list(data_paths) or None, speed=speed,
                            target=target_dsn, log_line_prefix=log_line_prefix, progress=progress)
    except EndpointError as exc:
        usage(str(exc))
    finally:
        if bar is not None:
            bar.stop()
        if tmp is not None:
            tmp.cleanup()
    result.findings = config.apply(result.findings, load_catalog())
    s = result.stats
    summary = result.replay_summary()
    err(f"replayed {s.statements:,} statements from {len(captures)} capture(s), {s.sessions} sessions; "
        f"{len(result.findings)} DSQL violations; {summary['share_of_calls_affected']:.1%} of calls / "
        f"{summary['share_of_time_affected']:.1%} of database time would fail or need changes; "
        f"{s.occ_conflicts} OCC conflicts"
        + (f" (top tables: {', '.join(f'{k} {v}' for k, v in summary['top_contended_tables'])})" if s.contended
           else ""))
    if result.target is not None:
        t = result.target
        err(f"target {t['endpoint']}: {t['statements']:,} statements, {t['errors']:,} errors; "
            f"{t['agreed_with_engine']:,} outcomes as the engine predicted, {t['disagreed_with_engine']:,} not")
    # nothing could be read from the captures, or a capture not to its end (a .gz cut short): an input error,
    # whatever else was reported
    cut = [e for e in result.errors if e.skipped]
    nothing = not s.statements and bool(result.errors)
    _report_and_exit(result, fmt or config.format or "console", output, config.fail_on, unread=bool(cut) or nothing,
                     color=color)  # prints input errors


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
              short_help="Run your own command against the engine; violations at the code.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--profile", "profile_date", metavar="YYYY-MM-DD", help="Behave as DSQL did on this date.")
@click.option("-f", "--format", "fmt", type=click.Choice(list(REPORT_FORMATS)), default=None,
              help="Report format (default: the config's format, else console).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report here.")
@_selection_options("dsql-audit.toml or pyproject.toml to read (default: the nearest one above --scan's paths, "
                    "else above the current directory, where the command runs).")
@click.option("--fail-on-command", is_flag=True, help="Exit 1 when the command itself fails, too.")
@click.option("--schema", "schema_path", type=click.Path(exists=True, dir_okay=False),
              help="Load this schema (SQL) before the command runs.")
@click.option("--scan", "scan_paths", multiple=True, type=click.Path(exists=True),
              help="Also scan this source tree (repeatable) and merge: what only the run saw is listed as the "
              "scan's misses.")
@click.option("--env", "env_templates", multiple=True, metavar="NAME=TEMPLATE",
              help="Set NAME for the command, with {url} {host} {port} {user} {password} {dbname} expanded "
              "(for frameworks that read a variable of their own).")
@click.option("--app-path", "app_paths", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Code under this folder is the application's even inside site-packages (call sites are "
              "reported there).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Keep the engine's data here (default: a "
              "temporary directory removed at the end).")
@_workers_option
@click.option("-q", "--quiet", is_flag=True, help="No line per violation while the command runs.")
def run(command, profile_date, fmt, output, select, extend_select, ignore, fail_on, config_path, color,
        fail_on_command, schema_path, scan_paths, env_templates, app_paths, data_dir, workers, quiet):
    """Run COMMAND (after --) against the DSQL engine in audit mode and report every statement DSQL would
    refuse, at the line of code that sent it: `dsql-audit run -- python manage.py migrate`."""
    from dsql_audit.config import ConfigError
    from dsql_audit.run.observe import UsageError, command_error, observe, parse_env_templates

    usage = _usage("run")
    _check_profile(profile_date, usage)
    _check_output(output, usage, inputs=[schema_path], folders=list(scan_paths))
    try:
        parse_env_templates(env_templates)
        config = _load_config(config_path, list(scan_paths), select=select, extend_select=extend_select,
                              ignore=ignore, fail_on=fail_on, profile_date=profile_date, then_cwd=True)
    except (UsageError, ConfigError, ValueError) as exc:
        usage(str(exc))
    fail_on = config.fail_on
    fmt = fmt or config.format or "console"
    err = lambda line: click.echo(line, err=True)  # noqa: E731
    _doing(lambda: f"running {' '.join(command)}")
    try:
        result = observe(list(command), profile=config.profile if profile_date or config.profile else None,
                         config=config, schema=schema_path, scan_paths=list(scan_paths) or None,
                         env_templates=env_templates, data_dir=data_dir, app_paths=list(app_paths) or None,
                         log=(lambda line: None) if quiet else err, workers=workers)
    except UsageError as exc:
        usage(str(exc))
    summary = result.run_summary()
    outcome = result.outcome
    status = ("interrupted" if outcome.interrupted else
              f"exited {outcome.status}" if outcome.status is not None and outcome.status >= 0 else
              f"killed by signal {-(outcome.status or 0)}")
    err(f"dsql-audit run: the command {status} after {outcome.seconds:.1f} s; {summary['statements']:,} statements "
        f"sent, {summary['refused_by_dsql']:,} would be refused by DSQL; {summary['distinct_violations']} distinct "
        f"violations ({summary['with_call_site']} at a call site in the code)"
        + (f"; {summary['observed_only']} not found by the static scan (recall "
           f"{summary['scan_recall']:.0%}); {len(result.findings):,} findings in the report, the scan's included"
           if "observed_only" in summary and summary.get("scan_recall") is not None else ""))
    if outcome.leftovers:
        err(f"dsql-audit run: ended {outcome.leftovers} process(es) the command left running")
    failed = command_error(outcome)
    if failed is not None:
        result.errors.append(failed)
    from dsql_audit.report import render

    use_color = _use_color(color, output, fmt)
    text = render(fmt, result, color=use_color, fail_on=fail_on, width=_width(output))
    _emit(text, output, color=use_color)
    _input_errors([e for e in result.errors if e is not failed])  # the command's own failure is said above
    if outcome.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    if fail_on != "never" and any(f.severity >= Severity.parse(fail_on) for f in result.findings):
        sys.exit(EXIT_FINDINGS)
    if fail_on_command and failed is not None:
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_CLEAN)


def _usage(command: str):
    """A usage error for ``command``: said on stderr, exit 2."""
    def usage(message):
        click.echo(f"dsql-audit {command}: {message}", err=True)
        sys.exit(EXIT_USAGE)
    return usage


def _check_profile(profile_date, usage) -> None:
    if profile_date in (None, "latest"):
        return
    from dsql_audit.profile import load_profile

    try:
        load_profile(profile_date)
    except ValueError as exc:
        usage(str(exc))


def _check_output(output, usage, inputs=(), folders=(), label: str = "-o") -> None:
    """Before any work is done: ``output`` can be written (its directory exists and takes files) and is not
    one of the ``inputs`` (by path, symbolic or hard link) nor a file inside one of the input ``folders``."""
    from dsql_audit import output as out

    if not output:
        return
    try:
        out.check(output, label=label)
        out.refuse_inputs(output, [i for i in inputs if i and i != "-"], label=label,
                          folders=[f for f in folders if f and f != "-"])
    except out.OutputError as exc:
        usage(str(exc))


def _report_and_exit(result, fmt, output, fail_on, unread: bool = False, color=None) -> None:
    """Render the result (to a file or stdout) and exit 1 when a finding is at or above --fail-on (2 when
    ``unread``: the input could not be read at all)."""
    from dsql_audit.report import render

    _doing("rendering the report")
    use_color = _use_color(color, output, fmt)
    text = render(fmt, result, color=use_color, fail_on=fail_on, width=_width(output))
    _emit(text, output, color=use_color)
    _input_errors(result.errors)
    if unread:
        sys.exit(EXIT_USAGE)
    if fail_on != "never" and any(f.severity >= Severity.parse(fail_on) for f in result.findings):
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_CLEAN)


@main.command("report", short_help="Re-render or merge saved JSON results in any format.")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-f", "--format", "fmt", type=click.Choice(list(REPORT_FORMATS)), default=None,
              help="Report format (default: the config's format, else console).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report here.")
@click.option("--baseline", type=click.Path(dir_okay=False), help="List only findings not in this baseline.")
@_selection_options("dsql-audit.toml or pyproject.toml to read (default: the nearest one above the current "
                    "directory).")
def report_cmd(results, fmt, output, baseline, select, extend_select, ignore, fail_on, config_path, color):
    """Re-render saved JSON results (`scan`/`catalog`/`replay -f json`) in any format without re-running;
    several RESULTS are merged into one report (a scan, a catalog read and a replay of one estate)."""
    from dsql_audit.baseline import filter_new, load_baseline
    from dsql_audit.config import ConfigError
    from dsql_audit.report.loaded import load_results

    usage = _usage("report")
    _check_output(output, usage, inputs=[*results, baseline])
    try:
        config = _load_config(config_path, [], select=select, extend_select=extend_select, ignore=ignore,
                              fail_on=fail_on)
    except (ConfigError, ValueError) as exc:
        usage(str(exc))
    _doing(f"reading {', '.join(results)}")
    try:
        result = load_results(list(results))
        result.findings = config.apply(result.findings, load_catalog())
        if baseline:
            result.findings, result.baseline_known = filter_new(result.findings, load_baseline(baseline))
    except ValueError as exc:
        click.echo(f"dsql-audit: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    _report_and_exit(result, fmt or config.format or "console", output, config.fail_on, color=color)


@main.command("catalog", short_help="Audit a live PostgreSQL database's catalog (read-only).")
@click.argument("dsn", required=False, default="")
@click.option("--profile", "profile_date", metavar="YYYY-MM-DD", help="Judge as DSQL was on this date.")
@click.option("-f", "--format", "fmt", type=click.Choice(list(REPORT_FORMATS)), default=None,
              help="Report format (default: the config's format, else console).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report here.")
@click.option("--capture", "capture_path", type=click.Path(dir_okay=False, writable=True),
              help="Also export pg_stat_statements (and table sizes) as JSON for `dsql-audit replay`.")
@click.option("--schema-out", "schema_out", type=click.Path(dir_okay=False, writable=True),
              help="Also write the schema as DDL (pg_dump --schema-only) for scan, replay or convert.")
@_selection_options("dsql-audit.toml or pyproject.toml to read (default: the nearest one above the current "
                    "directory).")
def catalog_cmd(dsn, profile_date, fmt, output, capture_path, schema_out, select, extend_select, ignore, fail_on,
                config_path, color):
    """Audit a live PostgreSQL database (DSN, or PG* environment variables / a service name): read-only."""
    from dsql_audit import live
    from dsql_audit import output as out
    from dsql_audit.replay.endpoints import EndpointError, dump_schema, redact_dsn

    from dsql_audit.config import ConfigError

    usage = _usage("catalog")
    _check_profile(profile_date, usage)
    try:
        config = _load_config(config_path, [], select=select, extend_select=extend_select, ignore=ignore,
                              fail_on=fail_on, profile_date=profile_date)
    except (ConfigError, ValueError) as exc:
        usage(str(exc))
    written = [(label, p) for label, p in (("-o", output), ("--capture", capture_path), ("--schema-out", schema_out))
               if p]
    for i, (label, p) in enumerate(written):
        _check_output(p, usage, label=label)
        for other_label, other in written[:i]:
            if out.same_file(p, other) or Path(p).absolute() == Path(other).absolute():
                usage(f"{label} {p} and {other_label} {other} name the same file: each output needs its own")
    _doing(f"reading the catalog of {redact_dsn(dsn) or '(PG* environment)'}")
    try:
        result = live.read(dsn, profile=config.profile, config=config)
        if capture_path:
            _doing(f"exporting pg_stat_statements into {capture_path}")
            n = live.capture(dsn, capture_path)
            click.echo(f"captured {n} pg_stat_statements entries into {capture_path}", err=True)
        if schema_out:
            _doing(f"writing the schema into {schema_out}")
            with out.atomic_path(schema_out) as tmp:  # pg_dump writes beside it; renamed once complete
                dump_schema(dsn, tmp)
            click.echo(f"schema written to {schema_out}", err=True)
    except EndpointError as exc:
        click.echo(f"dsql-audit catalog: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"{redact_dsn(dsn) or '(PG* environment)'}: PostgreSQL {result.server_version}, "
               f"{result.units} catalog queries, {len(result.findings)} findings", err=True)
    # a catalog read only in part (or not at all) is no clean bill of health: exit 2, naming what was not read
    # (_report_and_exit prints each error)
    _report_and_exit(result, fmt or config.format or "console", output, config.fail_on, unread=bool(result.errors),
                     color=color)


@main.command(short_help="Turn a PostgreSQL schema into DSQL DDL plus a migration plan.")
@click.argument("inputs", nargs=-1)
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False),
              help="Directory for schema.sql, apply.sh, apply.py, PLAN.md and plan.json.")
@click.option("--python-retry", "python_retry", multiple=True, type=click.Path(exists=True), metavar="PATH",
              help="Codemod: wrap Python functions that run a transaction in @retry_on_conflict, imported from a small "
              "dsql_retry.py written into the project (a diff; see --write).")
@click.option("--write", is_flag=True, help="With --python-retry: write the changes (unsafe fix: review the diff).")
@click.option("--from-dsn", "from_dsn", metavar="DSN", help="Convert a live database's schema (pg_dump "
              "--schema-only; reads only).")
@click.option("--profile", "profile_date", metavar="YYYY-MM-DD", help="Target DSQL as it was on this date.")
@click.option("--cache", type=click.IntRange(min=1), default=65536, show_default=True,
              help="CACHE for sequences and identity columns: 1 (strict order) or >= 65536.")
@click.option("--keys", type=click.Choice(["identity", "uuid"]), default="identity", show_default=True,
              help="serial keys become bigint identity columns, or uuid with gen_random_uuid() (always uuid on a "
              "profile before 2026-02-13, which has no sequences).")
@click.option("--allow-partial", is_flag=True, help="Exit 0 even when objects had to be left out of schema.sql "
              "(they are in PLAN.md either way).")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Prove schema.sql by loading it into a fresh DSQL engine (exit 1 if anything is rejected).")
@click.option("--force", is_flag=True, help="Write into an -o directory that holds files convert did not write "
              "(they are left alone; convert's own five files are replaced). Never overwrites an input.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary lines; only problems.")
def convert(inputs, outdir, python_retry, write, from_dsn, profile_date, cache, keys, check, force, quiet,
            allow_partial):
    """Turn a PostgreSQL schema (dump, migration folder, live database) into DSQL DDL plus a migration plan."""
    import tempfile

    if python_retry:
        from dsql_audit.convert import python_retry as codemod

        problems: list = []
        changes = codemod.run(list(python_retry), write=write, errors=problems)
        for c in changes:
            click.echo(c.diff, nl=False)
        for path, why in problems:
            click.echo(f"{path}: {why}", err=True)
        n = sum(len(c.functions) for c in changes)
        helpers = [c.path for c in changes if not c.functions]
        if not quiet:
            click.echo(f"{n} function(s) in {len(changes) - len(helpers)} file(s) wrapped in @retry_on_conflict"
                       + (f", imported from {', '.join(helpers)} (a new module of your project, standard library "
                          "only: the application does not depend on dsql-audit)" if helpers else "")
                       + (" (written)" if write else " (diff only: --write applies it; unsafe fix — a function "
                          "with side effects outside the database would repeat them)"), err=True)
        sys.exit(EXIT_USAGE if problems else EXIT_CLEAN)
    if write:
        click.echo("dsql-audit convert: --write applies --python-retry changes; give --python-retry PATH", err=True)
        sys.exit(EXIT_USAGE)
    _check_profile(profile_date, _usage("convert"))
    if not outdir:
        click.echo("dsql-audit convert: -o OUTDIR is required", err=True)
        sys.exit(EXIT_USAGE)
    from dsql_audit.convert import convert as run_convert
    from dsql_audit.convert import files
    from dsql_audit.replay.endpoints import EndpointError, dump_schema, redact_dsn

    err = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    if cache != 1 and cache < 65536:
        click.echo("dsql-audit convert: --cache must be 1 or at least 65536 (DSQL refuses other sizes)", err=True)
        sys.exit(EXIT_USAGE)
    if bool(inputs) == bool(from_dsn):
        click.echo("dsql-audit convert: give INPUT files/folders or --from-dsn, not both and not neither", err=True)
        sys.exit(EXIT_USAGE)
    missing = [i for i in inputs if not Path(i).exists()]
    if missing:
        click.echo(f"dsql-audit convert: no such input: {', '.join(missing)}", err=True)
        sys.exit(EXIT_USAGE)
    from dsql_audit.output import OutputError

    try:  # before the conversion: an output directory that is an input's, or holds someone else's files
        files.check_outdir(outdir, list(inputs), force=force)
    except OutputError as exc:
        click.echo(f"dsql-audit convert: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    _doing(f"converting {', '.join(inputs) or 'the schema'}")
    tmp = None
    paths = list(inputs)
    if from_dsn:
        tmp = tempfile.TemporaryDirectory(prefix="dsql-audit-convert-")
        paths = [str(Path(tmp.name) / "schema.sql")]
        try:
            dump_schema(from_dsn, Path(paths[0]))
        except EndpointError as exc:
            click.echo(f"dsql-audit convert: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        err(f"schema read from {redact_dsn(from_dsn)}")
    try:
        conv = run_convert(paths, profile=profile_date, cache=cache, keys=keys, check=check, log=err)
        if from_dsn:
            conv.inputs = [redact_dsn(from_dsn)]
        _doing(f"writing {outdir}")
        files.write(conv, outdir)
        if check:
            _doing(f"checking {outdir}/schema.sql in the DSQL engine")
            files.verify(conv, outdir, log=err)
            _doing(f"writing {outdir}")
            files.write(conv, outdir)  # PLAN.md and plan.json now carry the check's result
    finally:
        if tmp is not None:
            tmp.cleanup()
    s = conv.summary()
    for e in conv.errors:
        err(f"{e.path}:{e.line or 0}: {e.message}")
    checked = (f"; check: {conv.check['loaded']:,} statements loaded into the engine, {conv.check['rejected']} "
               f"rejected" if check else "")
    if not quiet:
        click.echo(f"{outdir}: {s['steps']:,} DSQL statements from {s['statements_read']:,} read; "
                   f"{s['plan_items']:,} plan items (~{s['effort_hours']:g} h); {s['changes']:,} automatic "
                   f"changes{checked}")
    if check and conv.check.get("rejected"):
        sys.exit(EXIT_FINDINGS)
    left_out = [step for step, _state, _message in getattr(conv, "refused", ())]
    if left_out:  # objects the converted schema could not hold: in PLAN.md, and not a clean conversion
        click.echo(f"dsql-audit convert: {len(left_out)} object(s) left out of schema.sql (see PLAN.md): "
                   + ", ".join(f"{s.kind} {s.object}" for s in left_out[:10]) + (" …" if len(left_out) > 10 else ""),
                   err=True)  # even with -q: the conversion is not complete
        if not allow_partial:
            sys.exit(EXIT_FINDINGS)
    # input that could not be read is not in schema.sql: an input error, though the rest was written
    sys.exit(EXIT_USAGE if conv.errors else EXIT_CLEAN)


@main.command(short_help="DSQL on localhost: a PostgreSQL server with DSQL's rules.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=5433, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--schema", "schema_path", type=click.Path(exists=True, dir_okay=False),
              help="Load this schema (SQL) before serving; what DSQL refuses is reported and skipped.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Keep the engine's data here (default: a temp "
              "dir removed on exit).")
@click.option("--profile", "profile_date", metavar="YYYY-MM-DD", help="Behave as DSQL did on this date.")
@click.option("--password", help="Require this password (default on loopback: any password is accepted; "
              "required to listen on any other address).")
@click.option("--tls", is_flag=True, help="Require TLS (sslmode=require) with a generated self-signed certificate, "
              "as DSQL's endpoint does.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write every violation seen "
              "here on exit, through the same reporters as scan and run (.json, .sarif, .md, .html, .xml for "
              "JUnit, .txt); `dsql-audit report` re-renders or merges it.")
@click.option("--max-connections", default=200, show_default=True, type=click.IntRange(1, 5000),
              help="Clients connected at once; one more gets 53300 (the embedded PostgreSQL has 40 slots more).")
@click.option("--audit", is_flag=True, help="Audit mode: record what DSQL would refuse and run it with "
              "PostgreSQL's semantics, so an application runs to its end (what `dsql-audit run` uses).")
@_workers_option
@click.option("-q", "--quiet", is_flag=True, help="No live line per violation.")
def serve(host, port, schema_path, data_dir, profile_date, password, tls, report_path, max_connections, audit,
          workers, quiet):
    """DSQL on localhost: a PostgreSQL server (wire protocol v3) with DSQL's rules, for any client."""
    import shutil
    import signal
    import time

    from dsql_audit.engine import Engine
    from dsql_audit.engine.script import load_sql_file
    from dsql_audit.serve import Server, self_signed_context, temp_dir, write_report

    started = time.time()
    err = lambda line: click.echo(line, err=True)  # noqa: E731
    if not _loopback(host) and not password:
        # refused before anything starts: a warning scrolls past, and the engine's admin would be anyone's
        err(f"dsql-audit serve: refusing to listen on {host} without --password: anyone who can reach that "
            "address could connect. Pass --password (with --tls to keep it off the wire in clear), or bind "
            "127.0.0.1.")
        sys.exit(2)
    from dsql_audit.serve.workers import launch

    launched = launch(workers)  # their imports run while the engine starts
    try:
        engine = Engine(data_dir=data_dir, profile=profile_date or "latest", audit=audit,
                        max_connections=max_connections + 40).start()
    except Exception as exc:  # noqa: BLE001
        for worker in launched:
            worker.discard()
        err(f"dsql-audit serve: cannot start the engine: {exc}")
        sys.exit(2)
    cert_dir = temp_dir() if tls else None
    try:
        if schema_path:
            ok, refused = load_sql_file(engine, schema_path, err)
            err(f"schema {schema_path}: {ok} statements loaded, {len(refused)} refused as DSQL refuses them")
        server = Server(engine, host, port, password=password, tls=self_signed_context(cert_dir) if tls else None,
                        log=None if quiet else err, max_connections=max_connections, workers=workers,
                        launched=launched)
        try:
            server.bind()
        except OSError as exc:
            err(f"dsql-audit serve: cannot listen on {host}:{port}: {exc.strerror or exc}")
            sys.exit(2)
        click.echo(f"dsql-audit serve: DSQL ({engine.profile.date} profile) on {server.dsn}")
        click.echo("  psql \"" + server.dsn + "\"    (Ctrl-C stops; any password"
                   + (" — no, the one given with --password" if password else "") + ")")
        if cert_dir:
            click.echo(f"  TLS: sslmode=require, or sslmode=verify-full sslrootcert={cert_dir}/server.crt")

        signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        # a second Ctrl-C (or a wrapper forwarding the signal again) must not lose the report
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.stop()
        if report_path:
            write_report(server, report_path, started)
            err(f"report: {len(engine.findings)} violations written to {report_path}")
    finally:
        engine.stop()
        if cert_dir:
            shutil.rmtree(cert_dir, ignore_errors=True)


class _CommandAfterDashes(click.Command):
    """``… --run -- COMMAND ARGS``: what follows ``--`` is the command to run, whatever it looks like."""

    def parse_args(self, ctx, args):
        if "--" in args:
            at = args.index("--")
            ctx.meta["command"] = args[at + 1:]
            args = args[:at]
        return super().parse_args(ctx, args)


@main.command(cls=_CommandAfterDashes,
              short_help="The whole audit, six steps, as one decision document.")
@click.argument("paths", nargs=-1)
@click.option("--dsn", metavar="DSN", help="A live PostgreSQL database: its catalog, installed extensions and "
              "pg_stat_statements are read (read-only), its schema dumped for the prototype.")
@click.option("--capture", "captures", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A pg_stat_statements export or a server log (repeatable).")
@click.option("--run", "run_command", is_flag=True, help="Run the command after -- against the engine and "
              "count what it sends (as `dsql-audit run`).")
@click.option("--target", "target_dsn", metavar="DSN", help="Also run the prototype's statements on a real "
              "Aurora DSQL cluster, each rolled back (IAM token via the [dsql] extra).")
@click.option("--allow-writes", is_flag=True, help="With --target: also run the top statements that write "
              "(each in a transaction rolled back).")
@click.option("--profile", "profile_date", metavar="YYYY-MM-DD", help="Judge as DSQL was on this date.")
@click.option("-f", "--format", "fmt", type=click.Choice(["html", "json", "markdown"]), default=None,
              help="The decision document's format (default: html with -o, else markdown).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the document here.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="dsql-audit.toml or pyproject.toml to read ([tool.dsql-audit.assess] holds the thresholds; "
              "default: the nearest one above PATHS, else the current directory).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
def assess(paths, dsn, captures, run_command, target_dsn, allow_writes, profile_date, fmt, output, config_path,
           quiet):
    """Walk the six-step compatibility audit — schema scan, code scan, extension inventory, transaction
    profiling, contention review, prototype — as far as the inputs allow, and write one decision document:
    each step's status and evidence, every extension classified, and the decision with its thresholds.
    Exit 0 for a green light, 1 for a project plan or stay on PostgreSQL, 2 when an input could not be read."""
    from dsql_audit.assess import GO, run_assessment
    from dsql_audit.assess.render import render
    from dsql_audit.config import ConfigError
    from dsql_audit.replay.endpoints import EndpointError

    usage = _usage("assess")
    command = click.get_current_context().meta.get("command") or []
    if run_command and not command:
        usage("--run needs the command after --: dsql-audit assess . --run -- python manage.py migrate")
    if command and not run_command:
        usage("a command after -- runs only with --run")
    if not (paths or dsn or captures or command):
        usage("nothing to assess: give PATHS, --dsn, --capture or --run -- COMMAND")
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        usage(f"no such path: {', '.join(missing)}")
    _check_profile(profile_date, usage)
    _check_output(output, usage, inputs=[*paths, *captures], folders=list(paths))
    try:
        config = _load_config(config_path, list(paths), profile_date=profile_date, then_cwd=True)
    except (ConfigError, ValueError) as exc:
        usage(str(exc))
    err = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    _doing("assessing")
    try:
        result = run_assessment(list(paths), dsn=dsn or None, captures=list(captures), command=command or None,
                                target=target_dsn, allow_writes=allow_writes, profile=config.profile,
                                config=config, log=err)
    except EndpointError as exc:
        usage(str(exc))
    fmt = fmt or ("html" if output else "markdown")
    _emit(render(fmt, result), output)
    _input_errors(result.errors)
    d = result.decision
    err(f"dsql-audit assess: {d['verdict']} — " + "; ".join(d["reasons"]))
    sys.exit(EXIT_CLEAN if d["verdict"] == GO else EXIT_FINDINGS)


def _loopback(host: str) -> bool:
    import ipaddress

    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":  # pragma: no cover
    main()
