"""Reporters only format: what is a finding and how severe it is was decided before them."""

from __future__ import annotations

FORMATS = ("console", "json", "sarif")


def render(fmt: str, result, *, color: bool = False, width: int | None = None) -> str:
    if fmt == "json":
        from dsql_audit.report.json_report import render_json
        return render_json(result)
    if fmt == "markdown":
        from dsql_audit.report.markdown import render_markdown
        return render_markdown(result)
    if fmt == "sarif":
        from dsql_audit.report.sarif import render_sarif
        return render_sarif(result)
    from dsql_audit.report.console import render_console
    return render_console(result, color=color, width=width)
