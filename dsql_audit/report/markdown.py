"""A compact Markdown report for a pull-request comment or a ticket: the verdict, counts, replay figures when
present, then one collapsed section per rule with a row per finding. With a baseline only new findings are
listed (and the comment says how many were already known). Always under GitHub's 65,536-character comment
limit: once the budget is spent, the rest is summarised per rule."""

from __future__ import annotations

from collections import Counter

from dsql_audit.findings import count_by_severity
from dsql_audit.readiness import assess

LIMIT = 60_000  # characters, leaving room under GitHub's 65,536
MARKER = "<!-- dsql-audit -->"  # lets a CI step find and update its own earlier comment
_ICON = {"error": "🔴", "warning": "🟠", "info": "🔵"}


def _cell(text, limit: int = 300) -> str:
    """Text for a table cell or a line: one line, pipes escaped (GFM needs it inside code spans too), `<`
    escaped outside code spans only (inside one, `&lt;` would show as written), and when cut at ``limit``
    cut before a code span it would leave open."""
    text = " ".join(str(text or "").split())
    cut = len(text) > limit
    if cut:
        text = text[:limit]
        if text.count("`") % 2:  # a code span left open: end before it
            text = text[:text.rfind("`")].rstrip()
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[i] = parts[i].replace("<", "&lt;")
    return "`".join(parts).replace("|", "\\|") + ("…" if cut else "")


def _code(text) -> str:
    """An inline code span holding ``text`` as written (a backtick inside gets a longer fence)."""
    text = " ".join(str(text or "").split()).replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def render_markdown(result) -> str:
    counts = count_by_severity(result.findings)
    ready = assess(result)
    known = getattr(result, "baseline_known", None)
    new = "new " if known is not None else ""
    out = [MARKER, f"## dsql-audit: {ready.verdict} ({result.profile.date} profile)", "",
           f"{result.inputs:,} input(s), {result.units:,} statement(s): " +
           ", ".join(f"**{n:,}** {new}{sev}" for sev, n in counts.items())
           + (f" — {known:,} finding(s) already in the baseline are not listed" if known else ""), "",
           f"Score **{ready.score}/100** ({ready.basis}); estimated work {ready.hours:,} h.", ""]
    out += [f"> **Note:** {_cell(note, 2000)}\n" for note in getattr(result, "notes", None) or ()]
    if hasattr(result, "replay_summary"):
        s = result.replay_summary()
        out += [f"Replay: {s['share_of_calls_affected']:.1%} of calls / {s['share_of_time_affected']:.1%} of "
                f"database time would fail or need changes; {s['occ_conflicts']:,} OCC conflicts "
                f"({s['occ_conflict_rate']:.1%} of transactions)"
                + (f"; top contended: {', '.join(f'`{k}` ({v})' for k, v in s['top_contended_tables'][:5])}"
                   if s["top_contended_tables"] else ""), ""]
    if hasattr(result, "run_summary"):
        s = result.run_summary()
        out += [f"Run: {s['statements']:,} statements sent, {s['refused_by_dsql']:,} refused by DSQL; "
                f"{s['distinct_violations']:,} distinct violations ({s['with_call_site']:,} at a call site); "
                f"the command exited {s['exit_status']}", ""]
        if "observed_only" in s:
            out += [f"Seen only at run time, not by the static scan: **{s['observed_only']:,}**"
                    + "".join(f"\n- {_code(m)}" for m in s["misses"][:30]), ""]
    if not result.findings:
        out += [f"No {new}findings." if not result.errors else ""]
    groups: dict = {}
    for f in result.findings:
        groups.setdefault((f.rule, f.name), []).append(f)
    order = sorted(groups.items(), key=lambda kv: (-max(f.severity for f in kv[1]), kv[0][0]))
    size = sum(len(line) + 1 for line in out)
    left_out: Counter = Counter()
    for (code, name), items in order:
        worst = max(f.severity for f in items).name
        head = [f"<details><summary>{_ICON[worst]} <b>{code} {name}</b> — {len(items):,} finding(s)</summary>", "",
                f"Fix: {_cell(items[0].fix, 280)}" if items[0].fix else "", "",
                "| severity | where | message |", "|---|---|---|"]
        block_size = sum(len(line) + 1 for line in head) + 20
        if size + block_size > LIMIT:
            left_out[name] += len(items)
            continue
        out += head
        size += block_size
        for i, f in enumerate(items):
            also = "".join(f"; {label} {', '.join(places)}" for label, places in f.related_places().items())
            row = f"| {f.severity.name} | {_code(f.where(column=False))} | {_cell(f.message + also)} |"
            if size + len(row) + 1 > LIMIT:
                left_out[name] += len(items) - i
                break
            out.append(row)
            size += len(row) + 1
        out += ["", "</details>", ""]
    if left_out:
        out += [f"… and {sum(left_out.values()):,} more finding(s) not listed (comment size limit): "
                + ", ".join(f"`{k}` {v:,}" for k, v in left_out.most_common(40)), ""]
    if result.errors:
        out += [f"{len(result.errors):,} input error(s), first: {_code(result.errors[0].path)} "
                f"{_cell(result.errors[0].message)}", ""]
    return "\n".join(out).rstrip("\n") + "\n"
