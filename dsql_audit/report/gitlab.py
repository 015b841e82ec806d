"""GitLab Code Quality (a subset of Code Climate's issue format): a JSON array, one object per finding, which
GitLab shows in the merge request widget and diff when a job declares it as ``artifacts:reports:codequality``.
https://docs.gitlab.com/ci/testing/code_quality/#code-quality-report-format"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from dsql_audit.report.concise import one_line

# GitLab's scale is info, minor, major, critical, blocker: a statement DSQL refuses is critical (the
# migration stops there), a change it needs is minor
_SEVERITY = {"error": "critical", "warning": "minor", "info": "info"}


def render_gitlab(result) -> str:
    seen: Counter = Counter()
    issues = []
    for f in result.findings:
        # GitLab compares fingerprints between the merge request and its target: the finding's own
        # (line-independent, so moved code is not "new"), made unique by its rank among equal ones
        seen[f.fingerprint] += 1
        fingerprint = hashlib.md5(f"{f.fingerprint}:{seen[f.fingerprint]}".encode(), usedforsecurity=False)
        issue = {
            "type": "issue",
            "check_name": f"{f.rule} {f.name}",
            "description": one_line(f.message),
            "categories": ["Compatibility"],
            "severity": _SEVERITY[f.severity.name],
            "fingerprint": fingerprint.hexdigest(),
            "location": {"path": f.path, "lines": {"begin": max(1, f.line), "end": max(1, f.end_line, f.line)}},
        }
        if f.fix:
            issue["content"] = {"body": f.fix}
        issues.append(issue)
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"
