"""JUnit XML for CI systems that show test results (GitLab, Jenkins, Azure DevOps, CircleCI): one test case
per rule of the catalog that ran, with one <failure> per finding at or above the failing severity; rules with
no finding pass. Valid against the Jenkins junit-10.xsd (tests/schemas/junit.xsd)."""

from __future__ import annotations

from collections import defaultdict
from xml.sax.saxutils import quoteattr, escape

from dsql_audit.catalog import load_catalog
from dsql_audit.model import Severity


def _clean(text: str) -> str:
    """XML 1.0 cannot hold most control characters, even escaped."""
    return "".join(ch for ch in str(text) if ch in "\t\n\r" or ord(ch) >= 0x20 and ch not in "\ufffe\uffff")


def render_junit(result, *, fail_on: str = "warning") -> str:
    catalog = load_catalog()
    # a finding at or above --fail-on is a failed test; with --fail-on never, errors still are
    threshold = Severity.parse(fail_on if fail_on != "never" else "error")
    by_rule: dict = defaultdict(list)
    for f in result.findings:
        by_rule[f.name].append(f)
    cases, failures, skipped = [], 0, 0
    for rule in sorted(catalog, key=lambda r: r.code):
        items = by_rule.pop(rule.slug, [])
        cases.append(_case(rule.code, rule.slug, rule.title, rule.category, items, threshold))
        failures += any(f.severity >= threshold for f in items)
    for name, items in sorted(by_rule.items()):  # findings of rules outside the catalog (none expected)
        cases.append(_case(items[0].rule, name, name, items[0].category, items, threshold))
        failures += any(f.severity >= threshold for f in items)
    errors = "".join(f"<error type=\"input\" message={quoteattr(_clean(e.path))}>{escape(_clean(e.message))}"
                     f"</error>" for e in result.errors)
    if errors:
        cases.append(f'<testcase classname="dsql-audit.input" name="inputs read" time="0">{errors}</testcase>')
    suite = (f'<testsuite name={quoteattr("dsql-audit (profile " + result.profile.date + ")")} '
             f'tests="{len(cases)}" failures="{failures}" errors="{1 if errors else 0}" skipped="{skipped}" '
             f'time="0">')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuites name="dsql-audit" tests="{len(cases)}" failures="{failures}" '
            f'errors="{1 if errors else 0}" time="0">\n{suite}\n' + "\n".join(cases)
            + "\n</testsuite>\n</testsuites>\n")


def _case(code: str, slug: str, title: str, category: str, items: list, threshold) -> str:
    head = (f'<testcase classname={quoteattr("dsql-audit." + category)} name={quoteattr(f"{code} {slug}: {title}")} '
            f'time="0">')
    body = []
    for f in items:
        where = f.where()
        text = _clean(f"{where}\n{f.message}" + (f"\n    {f.snippet}" if f.snippet else "")
                      + (f"\nfix: {' '.join(f.fix.split())}" if f.fix else ""))
        if f.severity >= threshold:
            body.append(f'<failure type={quoteattr(f.severity.name)} message={quoteattr(_clean(where + " " + f.message))}>'
                        f"{escape(text)}</failure>")
        else:  # below the failing severity: shown, not failing
            body.append(f"<system-out>{escape(_clean(f.severity.name + ' ' + text))}</system-out>")
    return head + "".join(body) + "</testcase>"
