"""`convert --python-retry PATH`: a libcst codemod that wraps transaction-running Python functions in
``@retry_on_conflict``, so DSQL's optimistic-concurrency conflicts (40001 at COMMIT) are retried. The decorator
comes from a small module written into the user's project (``dsql_retry.py``, standard library only: the
source of dsql_audit.runtime), never from dsql-audit itself — an audit tool with an embedded PostgreSQL
among its dependencies is no production dependency of the application. A function runs a transaction when
it commits (``x.commit()``) or opens one in a ``with`` block
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


HELPER = "dsql_retry.py"
_HELPER_MARK = "# Written by `dsql-audit convert --python-retry`"


@dataclass
class Change:
    path: str
    functions: list
    diff: str
    new_text: bytes  # in the file's own encoding


def helper_text() -> str:
    """The module written beside the converted code: dsql_audit.runtime's own source, with a header."""
    from dsql_audit import runtime

    source = Path(runtime.__file__).read_text(encoding="utf-8")
    return (f"{_HELPER_MARK}: retry a transaction that lost an optimistic-concurrency\n"
            "# conflict on Aurora DSQL (SQLSTATE 40001). Standard library only; yours to keep and edit.\n"
            + source)


def helper_place(path: Path) -> tuple[Path, str]:
    """(where the helper goes, the module name a file imports it by) for a converted file: at the top of
    the package the file belongs to (``pkg/sub/x.py`` → ``pkg/dsql_retry.py``, ``pkg.dsql_retry``), or beside
    a file that is in no package (a script: ``dsql_retry``)."""
    folder = path.resolve().parent
    top = None
    while (folder / "__init__.py").is_file():
        top = folder
        folder = folder.parent
    if top is None:
        return path.resolve().parent / HELPER, HELPER[:-3]
    dotted = [top.name]
    return top / HELPER, ".".join(dotted + [HELPER[:-3]])


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


def _add_import(module: cst.Module, helper_module: str) -> cst.Module:
    line = cst.parse_statement(f"from {helper_module} import retry_on_conflict\n")
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
    new = _add_import(new, helper_place(path)[1])
    diff = "".join(difflib.unified_diff(text.splitlines(keepends=True), new.code.splitlines(keepends=True),
                                        fromfile=f"a/{path}", tofile=f"b/{path}"))
    return Change(str(path), wrap.wrapped, diff, new.bytes)


def run(paths: list[str], write: bool = False, errors: list | None = None) -> list[Change]:
    """Changes for every .py file under ``paths``, and the helper module each needs (a Change of its own,
    a new file); files that cannot be read go to ``errors`` as (path, why) and the rest go on. A file named
    like the helper that dsql-audit did not write is never replaced (an error)."""
    changes = []
    helpers: dict = {}
    for p in paths:
        root = Path(p)
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for f in files:
            if any(part in (".venv", "venv", "node_modules", ".git", "__pycache__") for part in f.parts):
                continue
            if f.name == HELPER:
                continue
            try:
                change = rewrite(f)
            except (ValueError, OSError) as exc:
                if errors is not None:
                    errors.append((str(f), str(exc)))
                continue
            if change is not None:
                place = helper_place(f)[0]
                if place not in helpers:
                    helpers[place] = _helper_change(place, errors)
                if helpers[place] is False:
                    continue  # its helper cannot be written: the file is left as it is
                changes.append(change)
                if write:
                    _write(f, change.new_text, errors)
    for place, change in helpers.items():
        if change:
            changes.append(change)
            if write:
                _write(place, change.new_text, errors)
    return changes


def _helper_change(place: Path, errors: list | None):
    """The helper as a new file (a Change), None when an up-to-date one is there, False when a file of that
    name that dsql-audit did not write is in the way."""
    text = helper_text()
    if place.exists():
        try:
            current = place.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = ""
        if not current.startswith(_HELPER_MARK):
            if errors is not None:
                errors.append((str(place), f"a {HELPER} that dsql-audit did not write is in the way of the retry "
                                           "helper: rename it, then run again"))
            return False
        if current == text:
            return None
    diff = "".join(difflib.unified_diff([], text.splitlines(keepends=True), fromfile="/dev/null",
                                        tofile=f"b/{place}"))
    return Change(str(place), [], diff, text.encode("utf-8"))


def _write(path: Path, data: bytes, errors: list | None) -> None:
    from dsql_audit.output import OutputError, write_bytes

    try:  # atomic, keeping the file's permissions: an interrupted run leaves it as it was
        write_bytes(path, data)
    except OutputError as exc:
        if errors is not None:
            errors.append((str(path), str(exc)))
