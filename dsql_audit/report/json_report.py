"""The JSON report: the contract in ARCHITECTURE.md ("JSON report")."""

from __future__ import annotations

import json

from dsql_audit import __version__
from dsql_audit.findings import count_by_severity
from dsql_audit.readiness import assess


def report_dict(result) -> dict:
    return {
        "tool": {"name": "dsql-audit", "version": __version__},
        "profile": result.profile.date,
        **({"notes": list(result.notes)} if getattr(result, "notes", None) else {}),
        "summary": {
            "inputs": result.inputs,
            "units": result.units,
            "findings": count_by_severity(result.findings),
            "frameworks": result.frameworks,
            **({"adapters": sorted(result.adapters)} if getattr(result, "adapters", None) else {}),
            **({"superseded_migrations": list(result.superseded),
                "superseded_findings": getattr(result, "superseded_findings", 0)}
               if getattr(result, "superseded", None) else {}),
            "readiness": assess(result).to_json(),
            # `run --scan`: distinct violations only the run saw (the static scan's misses)
            **({"observed_only": result.run_summary()["observed_only"]}
               if hasattr(result, "run_summary") and "observed_only" in result.run_summary() else {}),
        },
        **({"replay": result.replay_summary()} if hasattr(result, "replay_summary") else {}),
        **({"run": result.run_summary()} if hasattr(result, "run_summary") else {}),
        "findings": [f.to_json() for f in result.findings],
        "errors": [e.to_json() for e in result.errors],
    }


def render_json(result) -> str:
    try:  # orjson writes a large report several times faster
        import orjson

        return orjson.dumps(report_dict(result), option=orjson.OPT_INDENT_2).decode() + "\n"
    except ImportError:  # pragma: no cover
        return json.dumps(report_dict(result), indent=2, ensure_ascii=False) + "\n"
