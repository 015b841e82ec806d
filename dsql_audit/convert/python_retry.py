"""`convert --python-retry PATH`: a libcst codemod that wraps transaction-running Python functions in
``@retry_on_conflict`` (dsql_audit.runtime), so DSQL's optimistic-concurrency conflicts (40001 at COMMIT) are
retried. A function runs a transaction when it commits (``x.commit()``) or opens one in a ``with`` block
(``conn.transaction()``, ``session.begin()``, Django's ``transaction.atomic()``). Functions already decorated
with something named *retry* are left alone. The fix is unsafe in ruff's sense: a function with side effects
outside the database would repeat them, so the diff is shown first and written only when asked.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

_TXN_CALLS = {"transaction", "begin", "atomic", "begin_nested"}


@dataclass
class Change:
    path: str
    functions: list
    diff: str
    new_text: bytes  # in the file's own encoding


def _is_txn_call(node) -> bool:
    if not isinstance(node, cst.Call):
        return False
    f = node.func
    name = f.attr.value if isinstance(f, cst.Attribute) else f.value if isinstance(f, cst.Name) else None
    return name in _TXN_CALLS


class _Finder(cst.CSTVisitor):
    """Does this function body (not nested functions) run a transaction?"""

    def __init__(self):
        self.found = False
        self.depth = 0

    def visit_FunctionDef(self, node):
        self.depth += 1
        return self.depth == 1

    def leave_FunctionDef(self, node):
        self.depth -= 1

    def visit_Call(self, node):
        f = node.func
        if isinstance(f, cst.Attribute) and f.attr.value == "commit":
            self.found = True

    def visit_WithItem(self, node):
        if _is_txn_call(node.item):
            self.found = True


class _Wrap(cst.CSTTransformer):
    def __init__(self):
        self.wrapped: list = []
        self.stack: list = []

    def visit_FunctionDef(self, node):
        self.stack.append(node.name.value)

    def leave_FunctionDef(self, original, updated):
        qual = ".".join(self.stack)
        self.stack.pop()
        decorators = [cst.Module([]).code_for_node(d.decorator) for d in updated.decorators]
        if any("retry" in d for d in decorators):
            return updated
        finder = _Finder()
        original.visit(finder)
        if not finder.found:
            return updated
        self.wrapped.append(qual)
        deco = cst.Decorator(decorator=cst.Name("retry_on_conflict"))
        return updated.with_changes(decorators=[deco, *updated.decorators])


def _add_import(module: cst.Module) -> cst.Module:
    line = cst.parse_statement("from dsql_audit.runtime import retry_on_conflict\n")
    body = list(module.body)
    at = 0
    for i, stmt in enumerate(body):  # after a docstring and __future__ imports
        code = module.code_for_node(stmt)
        if i == 0 and code.lstrip().startswith(('"""', "'''", '"', "'")):
            at = 1
        elif code.startswith("from __future__"):
            at = i + 1
    if any("import retry_on_conflict" in module.code_for_node(s) for s in body):
        return module
    return module.with_changes(body=body[:at] + [line] + body[at:])


def rewrite(path: Path) -> Change | None:
    """The change for one file, or None; ValueError when the file cannot be read as Python source."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        raise ValueError("binary file, not Python source: left as is")
    try:
        module = cst.parse_module(data)  # bytes: libcst honours the coding cookie and keeps it
        text = data.decode(module.encoding)
    except (cst.ParserSyntaxError, UnicodeDecodeError, LookupError, SyntaxError) as exc:
        raise ValueError(f"not parsed as Python ({type(exc).__name__}): left as is") from None
    wrap = _Wrap()
    new = module.visit(wrap)
    if not wrap.wrapped:
        return None
    new = _add_import(new)
    diff = "".join(difflib.unified_diff(text.splitlines(keepends=True), new.code.splitlines(keepends=True),
                                        fromfile=f"a/{path}", tofile=f"b/{path}"))
    return Change(str(path), wrap.wrapped, diff, new.bytes)


def run(paths: list[str], write: bool = False, errors: list | None = None) -> list[Change]:
    """Changes for every .py file under ``paths``; files that cannot be read go to ``errors`` as (path, why)
    and the rest go on."""
    changes = []
    for p in paths:
        root = Path(p)
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for f in files:
            if any(part in (".venv", "venv", "node_modules", ".git", "__pycache__") for part in f.parts):
                continue
            try:
                change = rewrite(f)
            except (ValueError, OSError) as exc:
                if errors is not None:
                    errors.append((str(f), str(exc)))
                continue
            if change is not None:
                changes.append(change)
                if write:
                    from dsql_audit.output import OutputError, write_bytes

                    try:  # atomic, keeping the file's permissions: an interrupted run leaves it as it was
                        write_bytes(f, change.new_text)
                    except OutputError as exc:
                        if errors is not None:
                            errors.append((str(f), str(exc)))
    return changes
