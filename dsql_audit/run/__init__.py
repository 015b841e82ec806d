"""``dsql-audit run -- COMMAND``: the command's statements judged by the DSQL-semantics engine.

``tag`` is the call-site comment that the Python hook (``pyhook/``) appends to every statement a Python
child sends, and that the server strips (``tag.strip_tag``) before judging the statement.
"""
from __future__ import annotations

import os
from pathlib import Path

PYHOOK_DIR = Path(__file__).resolve().parent / "pyhook"


def hook_env(env: dict[str, str], app_paths: list[str] | None = None) -> dict[str, str]:
    """A copy of ``env`` that turns the call-site hook on in Python children: PYHOOK_DIR first on PYTHONPATH
    (its ``sitecustomize`` runs the user's own after it) and DSQL_AUDIT_RUN=1. ``app_paths``: directories
    that count as the application's code even under site-packages (DSQL_AUDIT_RUN_APP_PATHS)."""
    out = dict(env)
    rest = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(PYHOOK_DIR)]
    out["PYTHONPATH"] = os.pathsep.join([str(PYHOOK_DIR), *rest])
    out["DSQL_AUDIT_RUN"] = "1"
    if app_paths:
        out["DSQL_AUDIT_RUN_APP_PATHS"] = os.pathsep.join(str(p) for p in app_paths)
    return out
