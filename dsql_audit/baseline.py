"""Baselines: accept today's findings, report only new ones. Fingerprints ignore line numbers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

VERSION = 1


def write_baseline(path: str, findings) -> int:
    counts = Counter(f.fingerprint for f in findings)
    data = {"tool": "dsql-audit", "version": VERSION,
            "fingerprints": dict(sorted(counts.items())),
            "findings": [{"fingerprint": f.fingerprint, "rule": f.rule, "name": f.name, "path": f.path,
                          "line": f.line, "message": f.message} for f in findings]}
    from dsql_audit.output import write_text

    write_text(path, json.dumps(data, indent=2) + "\n")  # atomic: an interrupted run keeps the old baseline
    return len(findings)


def load_baseline(path: str) -> Counter:
    try:
        data = json.loads(Path(path).read_text())
        return Counter({str(k): int(v) for k, v in data["fingerprints"].items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"cannot read baseline {path}: {exc}") from None


def filter_new(findings, baseline: Counter) -> tuple[list, int]:
    """Findings not covered by the baseline (each baseline entry covers as many findings as it counted)."""
    left = Counter(baseline)
    out, known = [], 0
    for f in findings:
        if left[f.fingerprint] > 0:
            left[f.fingerprint] -= 1
            known += 1
        else:
            out.append(f)
    return out, known
