"""Generate the rule docs from the catalog: docs/rules/<slug>.md and the README's rule table.

    python -m dsql_audit.docs          # rewrite them
    python -m dsql_audit.docs --check  # exit 1 if they are stale (the test suite runs this)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from dsql_audit.catalog import load_catalog
from dsql_audit.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- rules:begin -->", "<!-- rules:end -->"


def rule_page(r) -> str:
    out = [f"# {r.code} `{r.slug}` — {r.title}", "",
           f"Category: {r.category}. Default severity: {r.severity.name}. Fix: {r.fix_safety}. "
           f"Effort: about {r.effort} minutes per affected object ({r.remedy}).", "",
           "## Why", "", r.why, "", "## How to fix", "", r.fix, "", "## Cases and profiles", "",
           "| case | severity | applies when | DSQL returns |", "|---|---|---|---|"]
    for v in r.variants.values():
        when = ", ".join(f"`{c}`" for c in v.when) or "all profiles"
        dsql = ""
        if v.sqlstate:
            dsql = v.sqlstate + (f" `{v.dsql_message}`" if v.dsql_message else "")
            if v.dsql_message and not v.confirmed:
                dsql += " (message not recorded on a cluster)"
        out.append(f"| {v.name} | {v.severity.name} | {when} | {dsql} |")
    # workload rules judge a capture: their examples are pg_stat_statements exports over a schema
    lang = "csv" if r.scope == "workload" else "sql"
    languages = {".py": "python", ".rb": "ruby", ".ts": "typescript", ".js": "javascript", ".java": "java",
                 ".prisma": "prisma", ".xml": "xml", ".yaml": "yaml", ".go": "go", ".kt": "kotlin"}
    for e in r.examples:
        if e.file:  # application source: the file it is written to names the language
            lang = languages.get(Path(e.file).suffix, "text")
        prof = f" (profile {e.profile})" if e.profile else ""
        rep = f" — repeated {e.repeat} times with {{n}} = 1…{e.repeat}" if e.repeat > 1 else ""
        if e.schema:
            out += ["", "## Schema", "", "```sql", e.schema.strip("\n"), "```"]
        what = " (pg_stat_statements export)" if lang == "csv" else (f" (`{e.file}`)" if e.file else "")
        if e.bad:
            out += ["", f"## Bad{what}{prof}{rep}", "", f"```{lang}", e.bad.strip("\n"), "```"]
        if e.good:
            out += ["", f"## Good{what}{prof}{rep}", "", f"```{lang}", e.good.strip("\n"), "```"]
    out += ["", f"Reference: {r.docs}", ""]
    return "\n".join(out)


def rule_table() -> str:
    newest = load_profile()
    rows = ["| code | rule | severity | what it catches |", "|---|---|---|---|"]
    for r in load_catalog():
        live = any(newest.holds(v.when) for v in r.variants.values())
        note = "" if live else " *(older profiles only)*"
        rows.append(f"| {r.code} | [`{r.slug}`](docs/rules/{r.slug}.md) | {r.severity.name} | {r.title}{note} |")
    return "\n".join(rows)


def render_all() -> dict[Path, str]:
    files = {ROOT / "docs" / "rules" / f"{r.slug}.md": rule_page(r) for r in load_catalog()}
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), f"{BEGIN}\n{rule_table()}\n{END}", text, flags=re.S)
    files[readme] = new
    return files


def main(argv=None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for path, content in render_all().items():
        current = path.read_text() if path.exists() else None
        if current != content:
            stale.append(path)
            if not check:
                from dsql_audit.output import write_text

                path.parent.mkdir(parents=True, exist_ok=True)
                write_text(path, content)
    if check and stale:
        print("stale generated docs:", *[str(p.relative_to(ROOT)) for p in stale], sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
