"""SARIF 2.1.0 for code-scanning UIs (GitHub, GitLab, Azure DevOps)."""

from __future__ import annotations

import json

from dsql_audit import __version__
from dsql_audit.catalog import load_catalog

_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render_sarif(result) -> str:
    catalog = load_catalog()
    used = sorted({f.rule for f in result.findings})
    index = {code: i for i, code in enumerate(used)}
    rules = []
    for code in used:
        r = catalog.get(code)
        rules.append({
            "id": r.code,
            "name": r.slug,
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": " ".join(r.why.split())},
            "help": {"text": f"{' '.join(r.why.split())}\n\nFix: {' '.join(r.fix.split())}",
                     "markdown": f"{r.why}\n\n**Fix:** {r.fix}"},
            "helpUri": r.docs,
            "defaultConfiguration": {"level": _LEVEL[r.severity.name]},
            "properties": {"category": r.category, "tags": ["aurora-dsql", r.category]},
        })
    results = []
    for f in result.findings:
        region = {"startLine": f.line, "startColumn": f.column, "endLine": f.end_line,
                  "endColumn": max(f.end_column, f.column + 1 if f.end_line == f.line else f.end_column)}
        if f.snippet:
            region["snippet"] = {"text": f.snippet}
        res = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": _LEVEL[f.severity.name],
            "message": {"text": f.message + (f" Fix: {' '.join(f.fix.split())}" if f.fix else "")},
            "locations": [_object_location(f.path, f.object) if f.by_object else
                          _location(f.path.replace("\\", "/"), region)],
            "partialFingerprints": {"dsqlAudit/v1": f.fingerprint},
            "properties": {"name": f.name, "category": f.category, "source": f.source},
        }
        if f.related:  # the model declaration a migration's statement restates; the object in the database
            res["relatedLocations"] = [
                {"id": n, **(_object_location(r["path"], r["object"]) if r.get("kind") == "database" else
                             _location(r["path"].replace("\\", "/"), {"startLine": int(r["line"])})),
                 "message": {"text": "in the database" if r.get("kind") == "database" else "declared here"}}
                for n, r in enumerate(f.related)]
        if f.object:
            res["properties"]["object"] = f.object
        if f.sqlstate:
            res["properties"]["dsqlSqlstate"] = f.sqlstate
            if f.dsql_message:
                res["properties"]["dsqlMessage"] = f.dsql_message
        results.append(res)
    notifications = [{"level": "warning", "message": {"text": e.message},
                      "locations": [_location(e.path)]}
                     for e in result.errors]
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "dsql-audit", "version": __version__,
                                "informationUri": "https://github.com/dsql-audit/dsql-audit", "rules": rules}},
            "results": results,
            "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
            "properties": {"profile": result.profile.date},
        }],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _object_location(database: str, obj: str) -> dict:
    """A database object a catalog read found (no file, no line): a logical location, named in full."""
    return {"logicalLocations": [{"name": obj.rsplit(".", 1)[-1], "fullyQualifiedName": obj, "kind": "resource",
                                  "properties": {"database": database}}]}


def _location(path: str, region: dict | None = None) -> dict:
    """A file's location; a place that is no file (`run`'s "(no call site)", "(command)") is a logical one:
    a URI may not hold its spaces and parentheses, and code scanning would look for the file."""
    if path.startswith("(") and path.endswith(")"):
        return {"logicalLocations": [{"name": path.strip("()"), "kind": "module"}]}
    loc = {"physicalLocation": {"artifactLocation": {"uri": path}}}
    if region is not None:
        loc["physicalLocation"]["region"] = region
    return loc
