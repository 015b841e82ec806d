"""The console report: findings grouped by file with a code frame, then a summary table."""

from __future__ import annotations

import io
from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dsql_audit.findings import count_by_severity

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


INDENT = 9  # where a finding's message, DSQL's answer and the fix start, and where their wrapped lines go on


def _wrapped(con, label: str, text: str, style: str = "", label_style: str = "", indent: int = INDENT) -> None:
    """``label`` + ``text`` wrapped to the console's width, every line after the first indented under it."""
    import textwrap

    width = max(40, con.width)
    lines = textwrap.wrap(" ".join(str(text).split()), width=width, initial_indent=" " * indent + label,
                          subsequent_indent=" " * (indent if indent else len(label)), break_on_hyphens=False,
                          break_long_words=True) or [""]
    first = Text(lines[0][:indent]) + Text(label, style=label_style) + Text(lines[0][indent + len(label):], style=style)
    con.print(first, no_wrap=True, crop=False)
    for line in lines[1:]:
        con.print(Text(line, style=style), no_wrap=True, crop=False)


def render_console(result, *, color: bool = False, width: int | None = None) -> str:
    """``width``: the terminal's columns (the command passes them when stdout is one); 110 otherwise."""
    buf = io.StringIO()
    con = Console(file=buf, force_terminal=color, no_color=not color, width=max(60, width or 110),
                  highlight=False, soft_wrap=False)
    shown_fix: set = set()  # a rule's fix is printed at its first finding only
    for note in getattr(result, "notes", None) or ():  # what to know before reading the findings
        _wrapped(con, "note: ", note, label_style="bold yellow", indent=0)
        con.print()
    by_file: dict = {}
    for f in result.findings:
        by_file.setdefault(f.path, []).append(f)
    for path, items in by_file.items():
        fw = result.frameworks.get(path)
        head = Text(path, style="bold underline")
        if fw:
            head.append(f"  ({fw})", style="dim")
        con.print(head, no_wrap=True, crop=False)
        for f in items:
            sev = f.severity.name
            # a catalog finding is located by its object (schema.table.column), not a 0:0
            line = Text(f"  {f.object if f.by_object else f'{f.line}:{f.column}'} ", style="dim")
            line.append(f"{sev:<7}", style=_STYLE[sev])
            line.append(f" {f.rule} {f.name}", style="bold")
            con.print(line, no_wrap=True, crop=False)
            _wrapped(con, "", f.message)
            if f.snippet and not f.by_object:
                gutter = f"{f.line:>6} │ "
                # a code frame is not wrapped: cut at the width with an ellipsis, as an editor shows it
                con.print(Text(gutter, style="dim") + Text(f.snippet.expandtabs(4)), no_wrap=True,
                          overflow="ellipsis")
                offset = min(max(0, f.column - f.snippet_column), len(f.snippet))  # a long line: a window
                span = max(1, (f.end_column - f.column) if f.end_line == f.line else len(f.snippet) - offset)
                caret = " " * len(gutter) + " " * offset + "^" * min(span, 60)
                con.print(Text(caret[:con.width], style=_STYLE[sev]), no_wrap=True, crop=True)
            for label, places in f.related_places().items():
                _wrapped(con, f"{label}: ", ", ".join(places), style="dim", label_style="dim")
            if f.dsql_message:
                _wrapped(con, "DSQL says: ", f"{f.sqlstate + ' ' if f.sqlstate else ''}{f.dsql_message}",
                         style="dim", label_style="dim")
            if f.fix and f.rule not in shown_fix:
                shown_fix.add(f.rule)
                _wrapped(con, "fix: ", f.fix, style="dim", label_style="green")
        con.print()
    # input errors are the command's to print, on stderr (cli._input_errors): the report is findings
    counts = count_by_severity(result.findings)
    table = Table(title=f"dsql-audit — profile {result.profile.date}", show_lines=False)
    table.add_column("rule")
    table.add_column("name")
    table.add_column("severity")
    table.add_column("findings", justify="right")
    per_rule = Counter((f.rule, f.name, f.severity.name) for f in result.findings)
    for (code, name, sev), n in sorted(per_rule.items(), key=lambda kv: (-["info", "warning", "error"].index(kv[0][2]), kv[0][0])):
        table.add_row(code, name, Text(sev, style=_STYLE[sev]), str(n))
    if per_rule:
        con.print(table)
    summary = (f"{result.inputs} input(s), {result.units} statement(s): "
               f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info")
    if result.frameworks:
        fws = Counter(result.frameworks.values())
        summary += " — frameworks: " + ", ".join(f"{k} ({v})" for k, v in sorted(fws.items()))
    if getattr(result, "adapters", None):
        summary += " — DSQL adapters: " + ", ".join(sorted(result.adapters))
    if getattr(result, "superseded", None):
        summary += (f" — {getattr(result, 'superseded_findings', 0)} finding(s) in {len(result.superseded)} "
                    "superseded migration(s) not reported (a squashed migration replaces them; a fresh database "
                    "never runs them)")
    con.print(Text(summary, style="bold"))
    if hasattr(result, "replay_summary"):
        _replay_lines(con, result.replay_summary())
    if hasattr(result, "run_summary"):
        _run_lines(con, result.run_summary())
    return buf.getvalue()


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _run_lines(con, s: dict) -> None:
    """What `run` observed (the JSON's `run` section), under the counts."""
    con.print(Text(f"run: {s['statements']:,} statements sent in {_count(s['sessions'], 'session')}, "
                   f"{s['refused_by_dsql']:,} of them refused by DSQL; {s['distinct_violations']:,} distinct "
                   f"violations, {s['with_call_site']:,} at a call site in the code; the command exited "
                   f"{s['exit_status']}", style="bold"))
    if "observed_only" in s:
        recall = f"{s['scan_recall']:.0%}" if s.get("scan_recall") is not None else "n/a"
        con.print(f"  the static scan found {recall} of them; seen only at run time ({s['observed_only']:,}):",
                  no_wrap=True, crop=False)
        for miss in s["misses"][:50]:
            con.print(f"    {miss}", no_wrap=True, crop=False)
        if len(s["misses"]) > 50:
            con.print(f"    … and {len(s['misses']) - 50:,} more (JSON report: run.misses)")


def _replay_lines(con, s: dict) -> None:
    """The replay's figures (the JSON's `replay` section), under the counts."""
    ended = s["transactions_committed"] + s["transactions_lost"]
    con.print(Text(f"replay: {s['statements']:,} statements in {_count(s['sessions'], 'session')}; "
                   f"{s['share_of_calls_affected']:.1%} of calls / {s['share_of_time_affected']:.1%} of database "
                   f"time would fail or need changes", style="bold"))
    con.print(f"  transactions: {ended:,} ended, {s['transactions_lost']:,} lost "
              f"({s['share_of_transactions_lost']:.1%} would fail without retries); {s['occ_conflicts']:,} OCC "
              f"conflicts ({s['occ_conflict_rate']:.1%})"
              + (f"; {s['transactions_rebuilt']:,} rebuilt from virtual transaction ids"
                 if s.get("transactions_rebuilt") else "")
              + (f"; {s['autocommit_statements']:,} autocommit statements, {s['autocommit_failed']:,} of them "
                 f"failing on DSQL" if s.get("autocommit_statements") else ""))
    for label, key in (("contended tables", "top_contended_tables"), ("contended rows", "top_contended_rows")):
        if s.get(key):
            con.print(f"  {label}: " + ", ".join(f"{k} ({v:,})" for k, v in s[key][:5]), no_wrap=True, crop=False)
    for label, key, unit in (("largest transaction", "largest_transactions", "rows"),
                             ("longest transaction", "longest_transactions", "seconds")):
        if s.get(key):
            t = s[key][0]
            con.print(f"  {label}: {t[unit]:,} {unit} at {t['capture']}:{t['line']} (session {t['session']}, "
                      f"{t['outcome']})", no_wrap=True, crop=False)
    failed = s.get("failed_in_engine") or {}
    if failed:
        con.print("  refused by the engine for other reasons: " + ", ".join(f"{k} ×{v:,}" for k, v in failed.items()))
