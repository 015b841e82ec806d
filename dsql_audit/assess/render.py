"""The decision document: JSON (a stable section per step), Markdown and one self-contained HTML page."""

from __future__ import annotations

import html
import json

_ICON = {"passed": "✅", "findings": "⚠️", "not run": "⏸"}
_VERDICT_COLOR = {"green light": "#1a7f37", "project plan": "#9a6700", "stay on PostgreSQL": "#cf222e"}


def render(fmt: str, a) -> str:
    if fmt == "json":
        return json.dumps(a.to_json(), indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "markdown":
        return markdown(a)
    return page(a)


def _inputs(a) -> str:
    i = a.inputs
    parts = []
    if i["paths"]:
        parts.append("paths " + ", ".join(i["paths"]))
    if i["dsn"]:
        parts.append(f"database {i['dsn']}")
    if i["captures"]:
        parts.append("captures " + ", ".join(i["captures"]))
    if i["command"]:
        parts.append("command `" + " ".join(i["command"]) + "`")
    if i["target"]:
        parts.append(f"target {i['target']}")
    return "; ".join(parts) or "nothing"


def markdown(a) -> str:
    from dsql_audit.report.markdown import _cell

    d = a.decision
    out = [f"# Aurora DSQL assessment: **{d['verdict']}**", "",
           f"Profile {a.profile.date}; inputs: {_cell(_inputs(a), 2000)}.", ""]
    out += [f"- {_cell(r, 1000)}" for r in d["reasons"]]
    out += ["", f"Thresholds: more than {d['thresholds']['max-errors']} errors or "
            f"{d['thresholds']['max-effort-hours']} h of changes, or any load-bearing extension, say stay on "
            "PostgreSQL; a clean audit with a passed prototype is a green light.", "",
            "| step | status | summary |", "|---|---|---|"]
    for s in a.steps:
        summary = s.summary if s.status != "not run" else f"not run — {s.not_run}"
        out.append(f"| {s.number}. {s.title} | {_ICON[s.status]} {s.status} | {_cell(summary, 600)} |")
    if a.extensions:
        out += ["", "## Extensions", "", "| extension | installed | class | why | uses |", "|---|---|---|---|---|"]
        for e in a.extensions:
            uses = "; ".join(f"{u.name} ({u.where})" for u in e.uses[:4]) + (" …" if len(e.uses) > 4 else "")
            out.append(f"| `{e.name}` | {'yes' if e.installed else 'no'} | **{e.klass}** | {_cell(e.why, 400)} | "
                       f"{_cell(uses or '—', 400)} |")
    for s in a.steps:
        if s.status == "findings" and s.evidence.get("rules"):
            out += ["", f"## {s.number}. {s.title}: findings by rule", ""]
            out += [f"- {rule}: {n:,}" for rule, n in list(s.evidence["rules"].items())[:15]]
    proto = a.steps[5]
    if proto.status != "not run" and proto.evidence.get("statements"):
        out += ["", "## Prototype: top statements", "", "| status | calls | statement | answer |", "|---|---|---|---|"]
        for o in proto.evidence["statements"][:30]:
            answer = f"{o.get('sqlstate', '')} {o.get('message', '')}".strip() or "—"
            out.append(f"| {o['status']} | {o['calls']:,} | `{_cell(o['query'], 150).replace('`', '')}` | "
                       f"{_cell(answer, 200)} |")
    if a.workload:
        w = a.workload
        out += ["", "## Workload profile (pg_stat_statements)", "",
                f"- {w['statements']:,} statements, {w['calls']:,} calls; reads {w['reads']['calls']:,} calls, "
                f"writes {w['writes']['calls']:,} calls"
                + (f" ({w['reads_per_second']:,} reads/s, {w['writes_per_second']:,} writes/s)"
                   if w.get("period_seconds") else " (the period is unknown: no per-second rates)"),
                f"- rows per call: reads {w['rows_per_read_call']}, writes {w['rows_per_write_call']}; "
                f"single-row key lookups: {w['key_lookup_share_of_reads']:.0%} of read calls",
                "- bytes per call: not measured (pg_stat_statements does not count bytes)"]
    if a.errors:
        out += ["", "## Not read", ""] + [f"- {_cell(f'{e.path}: {e.message}', 500)}" for e in a.errors[:20]]
    return "\n".join(out) + "\n"


def page(a) -> str:
    e = html.escape
    d = a.decision
    color = _VERDICT_COLOR.get(d["verdict"], "#333")
    parts = ["<!doctype html><html lang=en><meta charset=utf-8><title>Aurora DSQL assessment</title>",
             "<style>body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 20px 40px;"
             "color:#1d2329}h1{margin:18px 0 4px}.verdict{display:inline-block;padding:6px 14px;border-radius:6px;"
             f"color:#fff;background:{color};font-weight:700}}"
             "table{border-collapse:collapse;width:100%;margin:10px 0}"
             "td,th{border:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top}"
             "th{background:#f6f8fa}.passed{color:#1a7f37}.findings{color:#9a6700}.not-run{color:#57606a}"
             ".load-bearing{color:#cf222e;font-weight:700}.replaceable{color:#9a6700}.removable{color:#1a7f37}"
             "code{background:#f6f8fa;padding:1px 4px;border-radius:3px}</style>",
             "<h1>Aurora DSQL assessment</h1>",
             f"<p id=decision>Decision: <span class=verdict>{e(d['verdict'])}</span></p>",
             "<ul id=reasons>" + "".join(f"<li>{e(r)}</li>" for r in d["reasons"]) + "</ul>",
             f"<p>Profile {e(a.profile.date)}; inputs: {e(_inputs(a))}. Thresholds: more than "
             f"{d['thresholds']['max-errors']} errors or {d['thresholds']['max-effort-hours']} h of changes, or any "
             "load-bearing extension, say stay on PostgreSQL; a clean audit with a passed prototype is a green "
             "light; anything between is a project plan.</p>",
             "<h2>The six steps</h2><table id=steps><tr><th>step</th><th>status</th><th>summary</th></tr>"]
    for s in a.steps:
        summary = s.summary if s.status != "not run" else f"not run — {s.not_run}"
        parts.append(f"<tr id=step-{s.key}><td>{s.number}. {e(s.title)}</td><td class={s.status.replace(' ', '-')}>"
                     f"{e(s.status)}</td><td>{e(summary)}</td></tr>")
    parts.append("</table>")
    if a.extensions:
        parts.append("<h2>Extensions</h2><table id=extensions><tr><th>extension</th><th>installed</th>"
                     "<th>class</th><th>why</th><th>uses</th></tr>")
        for x in a.extensions:
            uses = "<br>".join(f"<code>{e(u.name)}</code> {e(u.where)} <small>({u.source})</small>"
                               for u in x.uses[:8])
            parts.append(f"<tr><td><code>{e(x.name)}</code></td><td>{'yes' if x.installed else 'no'}</td>"
                         f"<td class={x.klass}>{e(x.klass)}</td><td>{e(x.why)}</td><td>{uses or '—'}</td></tr>")
        parts.append("</table>")
    for s in a.steps:
        if s.status == "findings" and s.evidence.get("rules"):
            parts.append(f"<h2>{s.number}. {e(s.title)}: findings by rule</h2><ul>"
                         + "".join(f"<li>{e(k)}: {v:,}</li>" for k, v in list(s.evidence["rules"].items())[:20])
                         + "</ul>")
    txn = a.steps[3]
    if txn.status != "not run":
        over = txn.evidence.get("over_bounds_in_pg_stat_statements") or []
        if over:
            parts.append("<h2>Statements over a transaction bound</h2><ul>" + "".join(
                f"<li>{e(o['bound'])}: {o['value']:,} (limit {o['limit']:,}) — "
                f"<code>{e(o['query'][:200])}</code></li>"
                for o in over[:20]) + "</ul>")
    proto = a.steps[5]
    if proto.status != "not run" and proto.evidence.get("statements"):
        parts.append("<h2>Prototype: top statements</h2><table id=prototype><tr><th>status</th><th>calls</th>"
                     "<th>statement</th><th>answer</th></tr>")
        for o in proto.evidence["statements"][:50]:
            answer = f"{o.get('sqlstate', '')} {o.get('message', '')}".strip() or "—"
            parts.append(f"<tr><td>{e(o['status'])}</td><td>{o['calls']:,}</td><td><code>{e(o['query'][:200])}</code>"
                         f"</td><td>{e(answer)}</td></tr>")
        parts.append("</table>")
    if a.workload:
        w = a.workload
        rate = (f"{w['reads_per_second']:,} reads/s, {w['writes_per_second']:,} writes/s" if w.get("period_seconds")
                else "no per-second rates: the period pg_stat_statements covers is unknown")
        parts.append(f"<h2>Workload profile</h2><p id=workload>{w['statements']:,} statements, {w['calls']:,} calls; "
                     f"reads {w['reads']['calls']:,}, writes {w['writes']['calls']:,} ({e(rate)}); rows per call: "
                     f"reads {w['rows_per_read_call']}, writes {w['rows_per_write_call']}; single-row key lookups "
                     f"{w['key_lookup_share_of_reads']:.0%} of read calls; bytes per call not measured "
                     "(pg_stat_statements does not count bytes).</p>")
    if a.errors:
        parts.append("<h2>Not read</h2><ul>" + "".join(f"<li>{e(x.path)}: {e(x.message)}</li>" for x in a.errors[:30])
                     + "</ul>")
    parts.append("</html>\n")
    return "".join(parts)
