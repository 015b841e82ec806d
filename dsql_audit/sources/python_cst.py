"""Helpers on libcst nodes for sources/python's visitor: names, arguments, literal values, and the SQL text
the ORM and migration readers build from them (quoting, enum names, the DML a migration stands for)."""

from __future__ import annotations

import libcst as cst

from dsql_audit.sources.python_predicates import CallShape, dotted


def call_shape(node: cst.Call, name: str, owner: str) -> CallShape:
    """The call as python_predicates describes it (name and owner as the visitor already read them)."""
    keywords = frozenset(a.keyword.value for a in node.args if a.keyword is not None)
    positional = sum(1 for a in node.args if a.keyword is None and not a.star)
    return CallShape(name, owner, keywords, positional, len(node.args))


def _name(node) -> str | None:
    """Last name of a Name/Attribute (``sa.ForeignKey`` → ForeignKey)."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def _dotted(node) -> str:
    return dotted(node, _step)


def _owner(func) -> str:
    """The receiver of a method call as a dotted chain (``Model.objects.all()``); "" for a bare name."""
    return _dotted(func.value) if isinstance(func, cst.Attribute) else ""


def _step(node):
    """What a libcst node is, for python_predicates.dotted."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return ".", node.value, node.attr.value
    if isinstance(node, cst.Call):
        return "()", node.func, None
    return None


def _kw(call, name: str):
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def _positional(call, index: int):
    args = [a for a in call.args if a.keyword is None and not a.star]
    return args[index].value if len(args) > index else None


def _const(node):
    """A literal's Python value (str, int, bool, None), else the marker _UNKNOWN."""
    if isinstance(node, cst.SimpleString):
        try:
            value = node.evaluated_value
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        except Exception:  # noqa: BLE001
            return _UNKNOWN
    if isinstance(node, cst.ConcatenatedString):
        left, right = _const(node.left), _const(node.right)
        return left + right if isinstance(left, str) and isinstance(right, str) else _UNKNOWN
    if isinstance(node, cst.Integer):
        try:
            return int(node.value.replace("_", ""), 0)
        except ValueError:
            return _UNKNOWN
    if isinstance(node, cst.Float):
        try:
            return float(node.value.replace("_", ""))
        except ValueError:
            return _UNKNOWN
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[node.value]
    if isinstance(node, cst.Call) and _name(node.func) == "f" and len(node.args) == 1:
        return _const(node.args[0].value)  # Alembic's op.f("name"): the name as given
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Multiply):
        left, right = _const(node.left), _const(node.right)
        if isinstance(left, (int, float)) and isinstance(right, (int, float)):
            return left * right
    return _UNKNOWN


_UNKNOWN = object()


def _strings(node) -> list:
    """The literal strings in a list/tuple (or one string)."""
    if isinstance(node, (cst.List, cst.Tuple)):
        return [_const(e.value) for e in node.elements if isinstance(_const(e.value), str)]
    value = _const(node)
    return [value] if isinstance(value, str) else []


def _strings_args(call) -> list:
    return [v for v in (_const(a.value) for a in call.args if a.keyword is None) if isinstance(v, str)]


def _enum_class_name(call) -> str | None:
    """SQLAlchemy's name for ``Enum(SomePythonEnum)`` without name=: the class name in lower case."""
    first = _positional(call, 0)
    if isinstance(first, (cst.Name, cst.Attribute)):
        return _dotted(first).split(".")[-1].lower()
    return None


def _q(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# a write a migration makes whose rows are not known here: a DML in its transaction, never claimed unbounded
_MIGRATION_DML = {"insert": "INSERT INTO migration_rows DEFAULT VALUES",
                  "update": "UPDATE migration_rows SET c = 1 WHERE c = 1",
                  "delete": "DELETE FROM migration_rows WHERE c = 1"}
