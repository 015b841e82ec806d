"""A compact Markdown report (a PR comment, a ticket): counts by severity, replay figures when present, one
table row per finding; always under GitHub's 65,536-character comment limit (the tail is summarised)."""

from __future__ import annotations

from dsql_audit.findings import count_by_severity

LIMIT = 60_000  # characters, leaving room under GitHub's 65,536


def _cell(text) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")[:300]


def render_markdown(result) -> str:
    counts = count_by_severity(result.findings)
    out = [f"## dsql-audit ({result.profile.date} profile)", "",
           f"{result.inputs} input(s), {result.units:,} statement(s): " +
           ", ".join(f"**{n}** {sev}" for sev, n in counts.items()), ""]
    if hasattr(result, "replay_summary"):
        s = result.replay_summary()
        out += [f"Replay: {s['share_of_calls_affected']:.1%} of calls / {s['share_of_time_affected']:.1%} of "
                f"database time would fail or need changes; {s['occ_conflicts']:,} OCC conflicts "
                f"({s['occ_conflict_rate']:.1%} of transactions)"
                + (f"; top contended: {', '.join(f'`{k}` ({v})' for k, v in s['top_contended_tables'][:5])}"
                   if s["top_contended_tables"] else ""), ""]
    out += ["| severity | rule | where | message |", "|---|---|---|---|"]
    size = sum(len(line) + 1 for line in out)
    shown = 0
    for f in result.findings:
        row = (f"| {f.severity.name} | {f.rule} `{f.name}` | `{_cell(f.path)}:{f.line}` | {_cell(f.message)}"
               + (f" — fix: {_cell(f.fix)[:160]}" if f.fix else "") + " |")
        if size + len(row) > LIMIT:
            break
        out.append(row)
        size += len(row) + 1
        shown += 1
    if shown < len(result.findings):
        rest: dict = {}
        for f in result.findings[shown:]:
            rest[f.name] = rest.get(f.name, 0) + 1
        out += ["", f"… and {len(result.findings) - shown:,} more: " +
                ", ".join(f"`{k}` {v}" for k, v in sorted(rest.items(), key=lambda kv: -kv[1]))]
    if result.errors:
        out += ["", f"{len(result.errors)} input error(s), first: `{_cell(result.errors[0].path)}` "
                    f"{_cell(result.errors[0].message)}"]
    return "\n".join(out) + "\n"
