"""GitHub Actions workflow commands: one ``::error``/``::warning``/``::notice`` line per finding, which the
runner turns into an annotation on the file and line of the pull request (no SARIF upload needed).
https://docs.github.com/actions/reference/workflow-commands-for-github-actions"""

from __future__ import annotations

from dsql_audit.report.concise import one_line

_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _data(text: str) -> str:
    # the runner's own escaping (actions/toolkit's escapeData / escapeProperty)
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(result) -> str:
    out = []
    for f in result.findings:
        props = [] if f.by_object else [f"file={_prop(f.path)}"]  # a database object is no file of the PR
        if f.line > 0:
            props += [f"line={f.line}", f"col={f.column}"]
            if f.end_line and f.end_line >= f.line:
                props.append(f"endLine={f.end_line}")
                if f.end_line == f.line and f.end_column > f.column:
                    props.append(f"endColumn={f.end_column}")
        props.append(f"title={_prop(f'{f.rule} {f.name}')}")
        message = (f"{f.object}: " if f.by_object else "") + one_line(f.message) + (
            f" — fix: {one_line(f.fix)}" if f.fix else "")
        out.append(f"::{_LEVEL[f.severity.name]} {','.join(props)}::{_data(message)}\n")
    for e in result.errors:  # input the scan could not read: an annotation too, or a CI run hides it
        where = f"file={_prop(e.path)}" + (f",line={e.line}" if e.line else "")
        out.append(f"::{'error' if e.skipped else 'warning'} {where},title=dsql-audit input::{_data(e.message)}\n")
    return "".join(out)
