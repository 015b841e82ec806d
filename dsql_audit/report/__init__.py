"""Reporters only format: what is a finding and how severe it is was decided before them."""

from __future__ import annotations

FORMATS = ("console", "concise", "json", "sarif", "markdown", "html", "junit", "github", "gitlab")


def render(fmt: str, result, *, color: bool = False, width: int | None = None, fail_on: str = "warning") -> str:
    if fmt == "html":
        from dsql_audit.report.html import render_html
        return render_html(result)
    if fmt == "junit":
        from dsql_audit.report.junit import render_junit
        return render_junit(result, fail_on=fail_on)
    if fmt == "json":
        from dsql_audit.report.json_report import render_json
        return render_json(result)
    if fmt == "markdown":
        from dsql_audit.report.markdown import render_markdown
        return render_markdown(result)
    if fmt == "concise":
        from dsql_audit.report.concise import render_concise
        return render_concise(result)
    if fmt == "github":
        from dsql_audit.report.github import render_github
        return render_github(result)
    if fmt == "gitlab":
        from dsql_audit.report.gitlab import render_gitlab
        return render_gitlab(result)
    if fmt == "sarif":
        from dsql_audit.report.sarif import render_sarif
        return render_sarif(result)
    from dsql_audit.report.console import render_console
    return render_console(result, color=color, width=width)
