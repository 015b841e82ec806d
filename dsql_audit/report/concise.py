"""One line per finding, ``path:line:col: CODE name message`` — what editors' problem matchers, grep and
``sort`` expect (ruff's and flake8's concise output); a catalog finding is ``database: object: CODE …``.
Nothing else: no header, no summary."""

from __future__ import annotations


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def render_concise(result) -> str:
    return "".join(f"{f.where()}: {f.rule} {f.name} {one_line(f.message)}\n" for f in result.findings)
