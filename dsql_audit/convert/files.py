"""What convert writes: schema.sql, apply.sh, apply.py, PLAN.md and plan.json. Byte-identical for the same
input: no timestamps, objects in the model's order, JSON with sorted keys."""

from __future__ import annotations

import json
import os
from pathlib import Path

HEADER = """-- DSQL-ready schema written by dsql-audit convert ({profile} profile) from: {inputs}
-- One statement per transaction, in dependency order. Apply it with ./apply.sh or ./apply.py, which wait for
-- each CREATE INDEX ASYNC / ALTER TABLE ASYNC job and retry 40001. What could not be carried over is in PLAN.md.
"""


def schema_sql(conv) -> str:
    out = [HEADER.format(profile=conv.profile.date, inputs=", ".join(conv.inputs))]
    for n, step in enumerate(conv.steps, 1):
        where = f" ({step.origin.path}:{step.origin.line})" if step.origin else ""
        out.append(f"\n-- step {n} {step.kind}: {step.object}{where}\n{step.sql};\n")
    return "".join(out)


def apply_sh(conv) -> str:
    lines = ["#!/usr/bin/env bash",
             "# Apply schema.sql one statement per transaction with psql, waiting for async jobs and retrying",
             "# 40001. Usage: ./apply.sh \"postgresql://admin@HOST/postgres?sslmode=require\" (or PG* variables;",
             "# for Aurora DSQL set PGPASSWORD to an IAM token: aws dsql generate-db-connect-admin-auth-token).",
             "set -euo pipefail", 'DSN="${1:-}"', "",
             "run() {  # run one statement (stdin); retry optimistic-concurrency conflicts",
             '  local sql; sql="$(cat)"',
             "  for attempt in 1 2 3 4 5 6; do",
             '    if out="$(printf \'%s\\n\' "$sql" | psql "$DSN" -X -q -At -v ON_ERROR_STOP=1 2>&1)"; then',
             '      printf \'%s\' "$out"; return 0; fi',
             '    case "$out" in *"already exists"*) return 0 ;; *"(OC00"*) sleep "0.$attempt"; continue ;; esac',
             '    echo "$out" >&2; return 1',
             "  done; return 1",
             "}",
             "wait_job() {  # CALL sys.wait_for_job on the job id a CREATE INDEX ASYNC / VALIDATE returned",
             '  if [ -n "$1" ]; then  # empty: the index was already there (a re-run)',
             '    psql "$DSN" -X -q -At -v ON_ERROR_STOP=1 -c "CALL sys.wait_for_job(\'$1\')" >/dev/null',
             '  fi',
             "}", ""]
    for n, step in enumerate(conv.steps, 1):
        lines.append(f"echo 'step {n}/{len(conv.steps)} {step.kind}: {step.object.replace(chr(39), '')}'")
        tag = f"DSQL_STEP_{n}"
        if step.kind in ("index", "validate"):
            lines.append(f"job=$(run <<'{tag}'\n{step.sql};\n{tag}\n)")
            lines.append('wait_job "$(printf \'%s\' "$job" | tail -n 1)"')
        else:
            lines.append(f"run >/dev/null <<'{tag}'\n{step.sql};\n{tag}")
    lines.append(f"echo 'applied {len(conv.steps)} steps'")
    return "\n".join(lines) + "\n"


def apply_py() -> str:
    return (Path(__file__).with_name("apply_template.py")).read_text(encoding="utf-8")


def plan_json(conv) -> str:
    doc = {"profile": conv.profile.date, "inputs": conv.inputs, "summary": conv.summary(),
           "steps": [{"n": n, "kind": s.kind, "object": s.object,
                      "origin": f"{s.origin.path}:{s.origin.line}" if s.origin else None}
                     for n, s in enumerate(conv.steps, 1)],
           "plan": [p.to_json() for p in conv.plan],
           "changes": [{"origin": f"{o.path}:{o.line}" if o else None, "change": t} for o, t in conv.notes],
           "refused_after_conversion": [{"kind": s.kind, "object": s.object, "sqlstate": st, "message": m}
                                        for s, st, m in conv.refused],
           "check": conv.check,
           "errors": [{"path": e.path, "line": e.line, "message": e.message} for e in conv.errors]}
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def plan_md(conv) -> str:
    s = conv.summary()
    out = [f"# Migration plan for Aurora DSQL ({conv.profile.date} profile)", "",
           f"Inputs: {', '.join(conv.inputs)}. {s['statements_read']:,} statements read; `schema.sql` holds "
           f"{s['steps']:,} DSQL statements; {s['plan_items']:,} items below need the application or a person; "
           f"{s['changes']:,} smaller changes were made automatically (listed at the end).", ""]
    if conv.errors:
        out += [f"**Not read — {len(conv.errors)} input error(s); what they hold is neither in `schema.sql` nor "
                f"below:**", ""]
        out += [f"- `{e.path}:{e.line or 0}`: {e.message}" for e in conv.errors[:200]]
        if len(conv.errors) > 200:
            out.append(f"- … and {len(conv.errors) - 200:,} more (plan.json lists all)")
        out.append("")
    if conv.check:
        c = conv.check
        out += [f"**Check:** `schema.sql` loaded into the embedded DSQL engine: {c.get('loaded', 0):,} statements "
                f"ran, {c.get('rejected', 0)} rejected.", ""]
    out += ["| kind | items | effort (hours) |", "|---|---:|---:|"]
    for kind, v in sorted(s["plan_by_kind"].items(), key=lambda kv: (-kv[1]["effort_hours"], kv[0])):
        out.append(f"| {kind} | {v['items']} | {v['effort_hours']:g} |")
    out += [f"| **total** | **{s['plan_items']}** | **{s['effort_hours']:g}** |", ""]
    by_kind: dict = {}
    for p in conv.plan:
        by_kind.setdefault(p.kind, []).append(p)
    for kind in sorted(by_kind):
        out += [f"## {kind}", ""]
        for p in by_kind[kind]:
            where = f" — `{p.origin.path}:{p.origin.line}`" if p.origin else ""
            out += [f"### {p.object} ({p.action}){where}", "", f"- **Why:** {p.why}", f"- **Do:** {p.todo}"]
            d = p.details
            if d.get("fires"):
                out.append(f"- **Fires:** {d['fires']}, calling `{d.get('function')}()`")
            if d.get("does"):
                out.append(f"- **What it does:** {d['does']}")
            for key in ("check", "on_delete", "on_update", "cast"):
                if d.get(key):
                    out.append(f"- **{key.replace('_', ' ').capitalize()}:** `{d[key]}`")
            code = d.get("body") or d.get("query") or d.get("index") or d.get("constraint") or d.get("statement")
            if code:
                out += ["", "<details><summary>code</summary>", "", "```sql", code.strip(), "```", "", "</details>"]
            elif p.origin is not None:
                out += ["", "<details><summary>original statement</summary>", "", "```sql",
                        p.origin.text.strip()[:4000], "```", "", "</details>"]
            out.append("")
    if conv.notes:
        out += ["## Changes made automatically", ""]
        for o, text in conv.notes:
            out.append(f"- {text}" + (f" (`{o.path}:{o.line}`)" if o else ""))
        out.append("")
    if conv.skipped:
        out += ["## Not carried over (no schema in them)", ""]
        out += [f"- {k}: {v}" for k, v in sorted(conv.skipped.items())]
        out.append("")
    return "\n".join(out)


OUTPUTS = ("schema.sql", "apply.sh", "apply.py", "PLAN.md", "plan.json")
# in the output directory: the files convert wrote there, so that a later run knows what it may replace
MANIFEST = ".dsql-audit-convert.json"


def _manifest(d: Path) -> set:
    """The names the manifest in ``d`` says convert wrote (empty when there is none or it is unreadable)."""
    try:
        data = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
        if data.get("tool") == "dsql-audit convert" and isinstance(data.get("files"), list):
            return {str(n) for n in data["files"] if isinstance(n, str) and "/" not in n and n not in ("", ".", "..")}
    except (OSError, ValueError, AttributeError):
        pass
    return set()


def check_outdir(outdir: str, inputs: list, *, force: bool = False) -> None:
    """Raise OutputError (naming what) unless convert may write into ``outdir``:
    - never where an input is: ``outdir`` is not an input folder nor inside one, holds no input file, and
      none of the files it would replace is an input (a hard link); --force does not change this;
    - without ``force``, ``outdir`` holds nothing but what convert wrote there before (its manifest says
      which files those are);
    - it can be created or written."""
    from dsql_audit.output import OutputError, check, printable, refuse_inputs

    d = Path(outdir)
    if d.exists() and not d.is_dir():
        raise OutputError(f"-o {printable(outdir)}: not a directory")
    real = os.path.realpath(d)
    folders = []
    for i in inputs:
        ri = os.path.realpath(i)
        if os.path.isdir(ri):
            folders.append(i)
            if real == ri or real.startswith(ri.rstrip(os.sep) + os.sep):
                where = "the input folder" if real == ri else "inside the input folder"
                raise OutputError(f"-o {printable(outdir)} is {where} {printable(i)}: convert's files would be "
                                  "written among (and later read as) its input; choose a directory outside it")
        if ri.startswith(real.rstrip(os.sep) + os.sep):
            raise OutputError(f"-o {printable(outdir)} holds the input {printable(i)}: convert never writes where its "
                              "input is; choose another directory")
    if not d.is_dir():  # created when written: can it be?
        import tempfile

        parent = d.absolute().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise OutputError(f"-o {printable(outdir)}: {printable(parent)} is not a directory")
        try:
            tempfile.TemporaryDirectory(dir=parent, prefix=".dsql-audit-probe-").cleanup()
        except OSError as exc:
            raise OutputError(f"-o {printable(outdir)}: cannot create it in {printable(parent)}: "
                              f"{exc.strerror or exc}") from None
        return
    for name in (*OUTPUTS, MANIFEST):
        refuse_inputs(d / name, inputs, label="-o", folders=folders)
    ours = _manifest(d)
    foreign = sorted(n for n in os.listdir(d) if n not in ours and n != MANIFEST)
    if foreign and not force:
        shown = ", ".join(printable(n) for n in foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                                                else "")
        raise OutputError(f"-o {printable(outdir)} holds files convert did not write ({shown}): choose a new or empty "
                          "directory, or pass --force to write beside them (convert's own files are replaced, the "
                          "others left alone)")
    check(d / "schema.sql", label="-o")


def write(conv, outdir: str) -> list[Path]:
    """Write convert's files into ``outdir`` (created if needed), each atomically, after a manifest naming
    them (so a later run knows they are its own, even when this one is cut short)."""
    from dsql_audit.output import OutputError, write_text

    d = Path(outdir)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {outdir}: {exc.strerror or exc}") from None
    files = {"schema.sql": schema_sql(conv), "apply.sh": apply_sh(conv), "apply.py": apply_py(),
             "PLAN.md": plan_md(conv), "plan.json": plan_json(conv)}
    listed = sorted(_manifest(d) | set(files))
    write_text(d / MANIFEST, json.dumps({"tool": "dsql-audit convert", "files": listed}, indent=1) + "\n")
    written = []
    for name, text in files.items():
        p = d / name
        write_text(p, text, executable=name.startswith("apply"))
        written.append(p)
    return written


def verify(conv, outdir: str, log=None) -> dict:
    """Load the written schema.sql into a fresh engine, statement by statement (what --check proves)."""
    from dsql_audit.engine import Engine
    from dsql_audit.engine.script import load_sql_file

    with Engine(profile=conv.profile.date, job_latency=0.0) as engine:
        ok, refused = load_sql_file(engine, str(Path(outdir) / "schema.sql"), log or (lambda line: None))
    conv.check = {"loaded": ok, "rejected": len(refused),
                  "rejections": [{"line": line, "sqlstate": e.sqlstate, "message": e.message}
                                 for line, _, e in refused]}
    return conv.check
