"""The gate before libcst: CPython's own parser (about 6x faster than libcst with positions) decides whether
anything in a Python file can be reported. Most Python files of a repository, even those that import a database
library, hold nothing to report, and never reach libcst.

It asks the predicates the visitor asks (python_predicates), of the whole file at once: every import, every
name's every binding. Where the visitor also follows the context (an open transaction, a migration's
transaction), the gate takes it as possible, so it lets through at least what the visitor can report.
"""

from __future__ import annotations

import ast

from dsql_audit.sources.app import SourceError, looks_like_sql
from dsql_audit.sources.python_predicates import (
    CALL_NAMES, DB_LIBRARIES, MIGRATION_FOLDERS, CallShape, adapter_name, atomic_decorator, commits,
    commits_reported, connection_string_settings, core_dml, databases_setting, dotted, driver_settings_reported,
    may_report, migration_folder, sql_argument_at, superseded_migration, transaction_block, transaction_block_reported,
)


def worth_parsing(path: str, text: str) -> bool:
    """Does the file hold anything extract() reports? A syntax error is raised as SourceError here."""
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise SourceError(f"Python syntax error: {err.msg}", err.lineno) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SourceError(f"Python source could not be parsed: {exc}", None) from None
    file = _File(path, "atomic" in text)
    calls, withs, decorators = [], [], []
    for node in ast.walk(tree):
        kind = type(node)
        if kind is ast.Call:
            calls.append(node)
        elif kind is ast.Constant:
            if _connection_string(node.value):
                return True
        elif kind is ast.Import or kind is ast.ImportFrom:
            if file.read_import(node):
                return True
        elif kind is ast.Assign:
            file.bind([t for t in node.targets if isinstance(t, ast.Name)], node.value)
            if databases_setting([_callee(t) for t in node.targets], isinstance(node.value, ast.Dict)):
                return True
        elif kind is ast.AnnAssign:
            if isinstance(node.target, ast.Name) and node.value is not None:
                file.bind([node.target], node.value)
        elif kind is ast.With or kind is ast.AsyncWith:
            withs.append(node)
        elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
            decorators += node.decorator_list
    return any(file.with_reported(w) for w in withs) or \
        commits_reported(file) and any(atomic_decorator(ast.unparse(d)) for d in decorators) or \
        any(file.call_reported(c) for c in calls) or \
        file.django_migration and superseded_migration(path)


class _File:
    """The facts of the whole file the predicates read (python_predicates.FileFacts), and the names' bindings."""

    def __init__(self, path: str, says_atomic: bool):
        folder = MIGRATION_FOLDERS.get(migration_folder(path))
        self.alembic, self.django_migration = folder == "alembic", folder == "django"
        self.imports: set = set()
        self.db_names: set = set()
        self.batch_tables: set = set()
        self.atomic_depth = 1 if says_atomic else 0  # an atomic block may be open wherever the file names one
        self.bindings: dict = {}  # name → every value assigned to it, in any scope

    def read_import(self, node) -> bool:
        """Note an import; True when it is an Aurora DSQL adapter's (reported)."""
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if node.module else []  # `from .x import y` reads x, as libcst does
        for module in modules:
            self.imports.add(module.split(".")[0])
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in DB_LIBRARIES:
            self.db_names.update(a.asname or a.name for a in node.names if a.name != "*")
        return any(adapter_name(m) for m in modules)

    def bind(self, targets: list, value):
        for target in targets:
            self.bindings.setdefault(target.id, []).append(value)

    def with_reported(self, node) -> bool:
        """A with block that opens a transaction; the batch a ``batch_alter_table(…) as name`` binds is noted
        (every with is read before any call)."""
        found = False
        for item in node.items:
            expr = item.context_expr
            if isinstance(expr, ast.Call) and _callee(expr.func) == "batch_alter_table" and \
                    isinstance(item.optional_vars, ast.Name):
                self.batch_tables.add(item.optional_vars.id)
            found = found or transaction_block_reported(transaction_block(ast.unparse(expr)), self)
        return found

    def call_reported(self, node) -> bool:
        name = _callee(node.func)
        if name not in CALL_NAMES:
            return False
        call = _shape(node, name)
        if may_report(call, self) or core_dml(call, self) or driver_settings_reported(call, self) or \
                commits(call) and commits_reported(self):
            return True
        where = sql_argument_at(call)
        if where is None:
            return False
        arg = [a for a in node.args if not isinstance(a, ast.Starred)][0] if where == 0 else \
            next(k.value for k in node.keywords if k.arg == where)
        return any(looks_like_sql(text) for text in self.string_parts(arg, set()))

    def string_parts(self, node, seen: set):
        """The literal text a string expression is built from, as the visitor's resolve() reads it: literals,
        an f-string's text and the names it holds, both sides of +, the left of %, the base of .format(),
        .join()'s separator and items, a list's items (RunSQL), and what a name is bound to (anywhere in the
        file: the visitor looks in the scopes it is in)."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (str, bytes)):
                yield _text(node.value)
        elif isinstance(node, ast.JoinedStr):
            for part in node.values:
                inner = part.value if isinstance(part, ast.FormattedValue) else part
                if isinstance(inner, (ast.Constant, ast.Name)):
                    yield from self.string_parts(inner, seen)
        elif isinstance(node, ast.BinOp):
            if isinstance(node.op, (ast.Add, ast.Mod)):
                yield from self.string_parts(node.left, seen)
            if isinstance(node.op, ast.Add):
                yield from self.string_parts(node.right, seen)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("format", "join"):
                yield from self.string_parts(node.func.value, seen)
            if node.func.attr == "join" and node.args:
                items = node.args[0]
                yield from self.string_parts(items.elt if isinstance(items, (ast.GeneratorExp, ast.ListComp,
                                                                             ast.SetComp)) else items, seen)
        elif isinstance(node, (ast.List, ast.Tuple)):
            for element in node.elts:
                yield from self.string_parts(element, seen)
        elif isinstance(node, ast.Name) and node.id not in seen:
            seen.add(node.id)
            for value in self.bindings.get(node.id, ()):
                yield from self.string_parts(value, seen)


def _connection_string(value) -> bool:
    return isinstance(value, (str, bytes)) and bool(connection_string_settings(_text(value)))


def _text(value) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _callee(func) -> str | None:
    """The callee's last name (``sa.ForeignKey`` → ForeignKey), as the visitor's _name reads it."""
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def _shape(node: ast.Call, name: str) -> CallShape:
    func = node.func
    positional = sum(1 for a in node.args if not isinstance(a, ast.Starred))
    return CallShape(name, dotted(func.value, _step) if isinstance(func, ast.Attribute) else "",
                     frozenset(k.arg for k in node.keywords if k.arg), positional,
                     len(node.args) + len(node.keywords))


def _step(node):
    """What an ast node is, for python_predicates.dotted."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return ".", node.value, node.attr
    if isinstance(node, ast.Call):
        return "()", node.func, None
    return None
