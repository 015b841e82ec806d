"""One self-contained HTML file (no network needed to open it): the readiness verdict and score, charts as
inline SVG, blockers per category with the objects affected, an effort estimate, replay figures when
present, and every finding with its code frame — filterable by severity, rule, category, file and text.

Filters also read the URL fragment (`report.html#severity=error&rule=sync-index&q=orders`), so a link can
point at a filtered view (and the browser test drives them that way)."""

from __future__ import annotations

import html
from collections import Counter

from dsql_audit import __version__
from dsql_audit.catalog import load_catalog
from dsql_audit.findings import count_by_severity
from dsql_audit.readiness import BLOCKED, CHANGES, assess

_SEV_COLOUR = {"error": "#c62828", "warning": "#ef8f00", "info": "#1e88e5"}
_VERDICT_COLOUR = {BLOCKED: "#c62828", CHANGES: "#ef8f00"}
MAX_FINDINGS = 20_000  # beyond this the list is summarised per rule (the file stays small enough to open)


def _e(text) -> str:
    return html.escape(str(text if text is not None else ""), quote=True)


def render_html(result) -> str:
    catalog = load_catalog()
    ready = assess(result)
    counts = count_by_severity(result.findings)
    findings = result.findings
    out = [_HEAD.replace("{TITLE}", _e(f"dsql-audit — {ready.verdict}"))]
    out.append(f'<header><h1>Aurora DSQL readiness</h1><p class="meta">dsql-audit {_e(__version__)} · DSQL '
               f'profile {_e(result.profile.date)} · {result.inputs:,} input(s) · {result.units:,} statement(s) '
               f'and constructs · {counts["error"]:,} error(s), {counts["warning"]:,} warning(s), '
               f'{counts["info"]:,} info</p></header>')
    colour = _VERDICT_COLOUR.get(ready.verdict, "#2e7d32")
    out.append(f'<section id="verdict" data-verdict="{_e(ready.verdict)}" style="border-color:{colour}">'
               f'<div class="badge" style="background:{colour}">{_e(ready.verdict.capitalize())}</div>'
               f'<div class="score"><b id="score">{ready.score}</b><span>/100</span>'
               f'<small>{_e(ready.basis)}</small></div><ul>'
               + "".join(f"<li>{_e(r)}</li>" for r in ready.reasons)
               + f'<li>estimated work: <b>{ready.hours:,} hours</b> (per affected object, from each rule\'s '
                 f'effort figure; see below)</li></ul></section>')
    out.append(_charts(findings))
    if hasattr(result, "replay_summary"):
        out.append(_replay(result.replay_summary()))
    if hasattr(result, "run_summary"):
        out.append(_run(result.run_summary()))
    out.append(_effort(ready))
    out.append(_blockers(findings, catalog))
    out.append(_finding_list(findings, result))
    out.append(_glossary(findings, catalog))
    if result.errors:
        out.append('<section id="errors"><h2>Inputs that could not be read in full</h2><ul>' + "".join(
            f"<li><code>{_e(e.path)}{':' + str(e.line) if e.line else ''}</code> {_e(e.message)}</li>"
            for e in result.errors) + "</ul></section>")
    out.append(_SCRIPT + "</body></html>\n")
    return "".join(out)


# --- charts ------------------------------------------------------------------------------------------

def _bars(title: str, rows: list, ident: str) -> str:
    """A horizontal stacked bar chart: rows of (label, {severity: n})."""
    if not rows:
        return ""
    width, label_w, bar_h, gap = 560, 190, 18, 6
    peak = max(sum(v.values()) for _, v in rows) or 1
    height = len(rows) * (bar_h + gap) + 26
    parts = [f'<figure id="{ident}"><figcaption>{_e(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{_e(title)}">']
    for i, (label, by_sev) in enumerate(rows):
        y = i * (bar_h + gap)
        short = label if len(label) <= 28 else "…" + label[-27:]
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end"><title>{_e(label)}</title>'
                     f'{_e(short)}</text>')
        x = label_w
        for sev in ("error", "warning", "info"):
            n = by_sev.get(sev, 0)
            if not n:
                continue
            w = max(1.0, (width - label_w - 50) * n / peak)
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                         f'fill="{_SEV_COLOUR[sev]}"><title>{_e(label)}: {n:,} {sev}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 13}">{sum(by_sev.values()):,}</text>')
    y = len(rows) * (bar_h + gap) + 14
    x = label_w
    for sev in ("error", "warning", "info"):
        parts.append(f'<rect x="{x}" y="{y - 10}" width="10" height="10" fill="{_SEV_COLOUR[sev]}"/>'
                     f'<text x="{x + 14}" y="{y}">{sev}</text>')
        x += 80
    parts.append("</svg></figure>")
    return "".join(parts)


def _charts(findings) -> str:
    def grouped(key, limit):
        table: dict = {}
        for f in findings:
            table.setdefault(key(f), Counter())[f.severity.name] += 1
        return sorted(table.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:limit]

    if not findings:
        return '<section id="charts"><p>No findings.</p></section>'
    by_sev = [(s, Counter({s: n})) for s, n in count_by_severity(findings).items() if n]
    files = grouped(lambda f: f.path, 15)
    return ('<section id="charts"><h2>Findings at a glance</h2><div class="charts">'
            + _bars("By category", grouped(lambda f: f.category, 12), "chart-category")
            + _bars("By severity", by_sev, "chart-severity")
            + _bars(f"By file (top {len(files)})", files, "chart-files")
            + _bars("By rule (top 15)", grouped(lambda f: f.name, 15), "chart-rules")
            + "</div></section>")


# --- sections ----------------------------------------------------------------------------------------

def _run(s: dict) -> str:
    rows = [("command", " ".join(s["command"])), ("exit status", str(s["exit_status"])),
            ("statements sent", f"{s['statements']:,}"), ("refused by DSQL", f"{s['refused_by_dsql']:,}"),
            ("distinct violations", f"{s['distinct_violations']:,} ({s['with_call_site']:,} at a call site)")]
    if "observed_only" in s:
        rows.append(("seen only at run time (the scan's misses)", f"{s['observed_only']:,}"))
    misses = "".join(f"<li><code>{_e(m)}</code></li>" for m in s.get("misses", [])[:100])
    return ('<section id="run"><h2>Observed run</h2><table class="kv">'
            + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"
            + (f"<h3>Seen only at run time</h3><ul>{misses}</ul>" if misses else "") + "</section>")


def _replay(s: dict) -> str:
    rows = [("calls replayed", f"{s['calls']:,}"),
            ("calls that would fail or need changes", f"{s['share_of_calls_affected']:.1%}"),
            ("database time that would fail or need changes", f"{s['share_of_time_affected']:.1%}"),
            ("transactions committed / lost", f"{s['transactions_committed']:,} / {s['transactions_lost']:,}"),
            ("OCC conflicts", f"{s['occ_conflicts']:,} ({s['occ_conflict_rate']:.1%} of transactions)")]
    top = "".join(f"<tr><td><code>{_e(k)}</code></td><td>{v:,}</td></tr>" for k, v in s["top_contended_tables"])
    return ('<section id="replay"><h2>Replayed workload</h2><table class="kv">'
            + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"
            + (f'<h3>Most contended tables</h3><table><tr><th>table</th><th>conflicts</th></tr>{top}</table>'
               if top else "") + "</section>")


def _effort(ready) -> str:
    if not ready.categories:
        return ""
    rows = "".join(
        f'<tr><td>{_e(c.category)}</td><td class="n">{c.findings:,}</td><td class="n">{c.objects:,}</td>'
        f'<td>{"redesign" if c.redesign else "rewrite"}</td><td class="n">{c.hours:,}</td>'
        f'<td>{_e(", ".join(f"{k} ({v:,})" for k, v in c.rules.most_common(6)))}</td></tr>'
        for c in ready.categories)
    return ('<section id="effort"><h2>Effort estimate</h2><p>Errors and warnings, counted once per affected '
            'object, times each rule\'s effort figure (rules/*.toml <code>effort</code>, in minutes). '
            '<i>redesign</i>: some of this work moves out of the database into the application.</p>'
            '<table><tr><th>category</th><th>findings</th><th>objects</th><th>kind</th><th>hours</th>'
            f'<th>rules</th></tr>{rows}<tr class="total"><td>total</td><td></td><td></td><td></td>'
            f'<td class="n">{ready.hours:,}</td><td></td></tr></table></section>')


def _blockers(findings, catalog) -> str:
    """Per category, the error findings grouped by rule, with the objects they affect."""
    errors = [f for f in findings if f.severity.name == "error"]
    if not errors:
        return ""
    by_cat: dict = {}
    for f in errors:
        by_cat.setdefault(f.category, {}).setdefault(f.name, []).append(f)
    parts = ['<section id="blockers"><h2>Blockers by category</h2>']
    for cat in sorted(by_cat, key=lambda c: -sum(len(v) for v in by_cat[c].values())):
        parts.append(f'<h3>{_e(cat)}</h3><table><tr><th>rule</th><th>objects affected</th>'
                     '<th>findings</th><th>first at</th></tr>')
        for name, items in sorted(by_cat[cat].items(), key=lambda kv: -len(kv[1])):
            rule = catalog.get(name)
            objects = sorted({f.object for f in items if f.object})
            shown = ", ".join(f"<code>{_e(o)}</code>" for o in objects[:12])
            if len(objects) > 12:
                shown += f" and {len(objects) - 12:,} more"
            first = items[0]
            parts.append(f'<tr><td><a href="#rule-{_e(name)}">{_e(rule.code if rule else name)} {_e(name)}</a>'
                         f'</td><td>{shown or "—"}</td><td class="n">{len(items):,}</td>'
                         f'<td><code>{_e(first.where(column=False))}</code></td></tr>')
        parts.append("</table>")
    parts.append("</section>")
    return "".join(parts)


def _frame(f) -> str:
    if not f.snippet:
        return ""
    snippet = f.snippet.expandtabs(4)
    offset = min(max(0, f.column - f.snippet_column), len(snippet))  # a long line: a window
    span = max(1, (f.end_column - f.column) if f.end_line == f.line else len(snippet) - offset)
    return (f'<pre class="frame"><span class="ln">{f.line}</span>{_e(snippet)}\n'
            f'<span class="ln"></span><span class="caret">{" " * offset}{"^" * min(span, 80)}</span></pre>')


def _finding_list(findings, result) -> str:
    parts = ['<section id="findings"><h2>Findings</h2><form class="filters" onsubmit="return false">'
             '<label>severity <select id="f-severity"><option value="">all</option>'
             + "".join(f'<option value="{s}">{s}</option>' for s in ("error", "warning", "info"))
             + '</select></label><label>category <select id="f-category"><option value="">all</option>'
             + "".join(f'<option value="{_e(c)}">{_e(c)}</option>' for c in sorted({f.category for f in findings}))
             + '</select></label><label>rule <select id="f-rule"><option value="">all</option>'
             + "".join(f'<option value="{_e(n)}">{_e(n)}</option>' for n in sorted({f.name for f in findings}))
             + '</select></label><label>file <select id="f-file"><option value="">all</option>'
             + "".join(f'<option value="{_e(p)}">{_e(p)}</option>' for p in sorted({f.path for f in findings}))
             + '</select></label><label>text <input id="f-q" type="search" placeholder="message, object, path">'
             f'</label></form><p id="shown">{len(findings):,} of {len(findings):,} findings shown</p>'
             '<div id="list">']
    fix_seen: set = set()
    for f in findings[:MAX_FINDINGS]:
        sev = f.severity.name
        framework = result.frameworks.get(f.path) if hasattr(result, "frameworks") else None
        dsql = (f'<p class="dsql">DSQL says: {_e((f.sqlstate + " ") if f.sqlstate else "")}{_e(f.dsql_message)}</p>'
                if f.dsql_message else "")
        # the fix is written out at a rule's first finding; later ones link to the rule's entry
        fix = ""
        if f.fix:
            fix = (f'<p class="fix">fix: {_e(" ".join(f.fix.split()))}</p>' if f.name not in fix_seen else
                   f'<p class="fix"><a href="#rule-{_e(f.name)}">how to fix</a></p>')
            fix_seen.add(f.name)
        parts.append(
            f'<article class="finding sev-{sev}" data-severity="{sev}" data-rule="{_e(f.name)}" '
            f'data-category="{_e(f.category)}" data-file="{_e(f.path)}"'
            + (f' data-object="{_e(f.object)}"' if f.object else "") + ">"
            f'<h4><span class="sev">{sev}</span> <a href="#rule-{_e(f.name)}">{_e(f.rule)} {_e(f.name)}</a> '
            f'<code>{_e(f.where())}</code>'
            + (f' <small>{_e(framework)}</small>' if framework else "")
            + (f' <small>× {f.occurrences:,}</small>' if f.occurrences > 1 else "")
            + f'</h4><p>{_e(f.message)}</p>{_frame(f)}{dsql}{fix}</article>')
    parts.append("</div>")
    if len(findings) > MAX_FINDINGS:
        rest = Counter(f.name for f in findings[MAX_FINDINGS:])
        parts.append(f'<p id="tail">… and {len(findings) - MAX_FINDINGS:,} more findings not listed: '
                     + ", ".join(f"{_e(k)} {v:,}" for k, v in rest.most_common()) + "</p>")
    parts.append("</section>")
    return "".join(parts)


def _glossary(findings, catalog) -> str:
    used = sorted({f.name for f in findings})
    if not used:
        return ""
    parts = ['<section id="rules"><h2>Rules in this report</h2>']
    for name in used:
        rule = catalog.get(name)
        if rule is None:
            continue
        parts.append(f'<div class="rule" id="rule-{_e(name)}"><h4>{_e(rule.code)} {_e(rule.slug)} — '
                     f'{_e(rule.title)}</h4><p>{_e(" ".join(rule.why.split()))}</p>'
                     f'<p class="fix">fix: {_e(" ".join(rule.fix.split()))}</p>'
                     + (f'<p><a href="{_e(rule.docs)}">{_e(rule.docs)}</a></p>' if rule.docs else "")
                     + "</div>")
    parts.append("</section>")
    return "".join(parts)


_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{TITLE}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:0 20px 40px;
color:#1d2329}
h1{margin:18px 0 2px}h2{margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#5b6670;margin:0}
#verdict{display:flex;gap:24px;align-items:center;border:2px solid;border-radius:8px;padding:14px 18px;margin-top:16px}
.badge{color:#fff;font-weight:700;font-size:20px;padding:10px 16px;border-radius:6px;white-space:nowrap}
.score b{font-size:40px}.score span{color:#5b6670}.score small{display:block;color:#5b6670;max-width:220px}
#verdict ul{margin:0;padding-left:18px}
.charts{display:flex;flex-wrap:wrap;gap:12px 28px}figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}
svg text{font-size:12px;fill:#1d2329}
table{border-collapse:collapse;margin:6px 0 12px}td,th{border:1px solid #e0e0e0;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f5f6f7}td.n{text-align:right}tr.total td{font-weight:700}
.filters{display:flex;flex-wrap:wrap;gap:10px;position:sticky;top:0;background:#fff;padding:8px 0;z-index:1}
.filters select{max-width:260px}
.finding{border-left:4px solid;padding:2px 12px;margin:8px 0;background:#fafbfc;content-visibility:auto;
contain-intrinsic-size:auto 150px}
.finding h4{margin:6px 0 2px;font-weight:600}.finding p{margin:3px 0}
.sev-error{border-color:#c62828}.sev-warning{border-color:#ef8f00}.sev-info{border-color:#1e88e5}
.sev{text-transform:uppercase;font-size:11px;letter-spacing:.04em}
.sev-error .sev{color:#c62828}.sev-warning .sev{color:#ef8f00}.sev-info .sev{color:#1e88e5}
pre.frame{background:#272b30;color:#e8eaed;padding:6px 10px;overflow-x:auto;margin:4px 0}
.ln{display:inline-block;min-width:48px;color:#8a939b;user-select:none}.caret{color:#ff6b6b}
.fix{color:#1b5e20}.dsql{color:#5b6670}.rule{margin-bottom:14px}[hidden]{display:none!important}
@media print{.filters{display:none}}
</style></head><body>
"""

_SCRIPT = """<script>
(function () {
  var keys = ["severity", "category", "rule", "file", "q"];
  var items = Array.prototype.slice.call(document.querySelectorAll("article.finding"));
  var shown = document.getElementById("shown");
  function text(a) {  // message, place, object and code, read once from the page itself
    if (a._text === undefined) { a._text = (a.textContent + " " + (a.dataset.object || "")).toLowerCase(); }
    return a._text;
  }
  function value(k) { var el = document.getElementById("f-" + k); return el ? el.value : ""; }
  function apply() {
    var want = {}, n = 0;
    keys.forEach(function (k) { want[k] = value(k); });
    var q = want.q.toLowerCase();
    items.forEach(function (a) {
      var ok = (!want.severity || a.dataset.severity === want.severity) &&
               (!want.category || a.dataset.category === want.category) &&
               (!want.rule || a.dataset.rule === want.rule) &&
               (!want.file || a.dataset.file === want.file) &&
               (!q || text(a).indexOf(q) >= 0);
      a.hidden = !ok; if (ok) { n++; }
    });
    if (shown) { shown.textContent = n.toLocaleString("en") + " of " + items.length.toLocaleString("en") +
                 " findings shown"; }
    document.body.dataset.shown = String(n);
  }
  function fromHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    keys.forEach(function (k) {
      var el = document.getElementById("f-" + k);
      if (el && params.has(k)) { el.value = params.get(k); }
    });
  }
  keys.forEach(function (k) {
    var el = document.getElementById("f-" + k);
    if (el) { el.addEventListener(k === "q" ? "input" : "change", apply); }
  });
  window.addEventListener("hashchange", function () { fromHash(); apply(); });
  fromHash(); apply();
  document.body.dataset.ready = "1";
  document.body.dataset.renderMs = String(Math.round(performance.now()));
})();
</script>
"""
