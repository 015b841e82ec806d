"""The SQL strings a Python program sends (sources/python's visitor): literals, implicit and ``+``
concatenation, f-strings and str.format (run-time parts become placeholders of the same length, and the statement
is marked partly dynamic), ``sep.join(…)``, and names bound to such strings."""

from __future__ import annotations

import re

import libcst as cst

from dsql_audit.sources.app import Emitted, looks_like_sql
from dsql_audit.sources.python_cst import _const, _kw, _positional, _UNKNOWN
from dsql_audit.sources.python_predicates import SQL_FUNCTIONS, core_dml, sql_argument_at

_PY_FORMAT = re.compile(r"%%|%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdrifxXeEgGc]")


def _placeholder(length: int) -> str:
    """An identifier of exactly ``length`` characters (SQL still parses, columns stay exact)."""
    return ("_dyn" + "_" * max(0, length - 4))[:max(length, 2)] if length >= 2 else "_d"


class _Piece:
    __slots__ = ("text", "line", "column")

    def __init__(self, text: str, line: int, column: int):
        self.text, self.line, self.column = text, line, column


class _Strings:
    """The visitor's reading of SQL strings (python._Visitor takes these members in; they use its positions,
    scopes and emit)."""

    def _sql_call(self, node, call):
        """cursor.execute(…), text(…), RunSQL(…): the SQL in the argument python_predicates.sql_argument_at
        names; a migration's execute() of a SQLAlchemy Core statement, its DML."""
        where = sql_argument_at(call)
        if where is None:
            return
        arg = _positional(node, 0) if where == 0 else _kw(node, where)
        name, owner = call.name, call.owner
        if name == "RunSQL":
            self._run_sql(arg)
        elif name in SQL_FUNCTIONS:
            self.sql_argument(arg, f"{name}() argument", framework="sqlalchemy" if name == "text" else "django")
        else:
            sent = self.sql_argument(arg, f"{owner}.{name}() argument", framework="alembic" if owner == "op" else None)
            if not sent and core_dml(call, self):
                self._core_dml(node, arg)

    def _run_sql(self, arg):
        if isinstance(arg, (cst.List, cst.Tuple)):
            for element in arg.elements:
                value = element.value
                if isinstance(value, (cst.Tuple,)) and value.elements:  # (sql, params)
                    value = value.elements[0].value
                self.sql_argument(value, "RunSQL() argument", framework="django")
        else:
            self.sql_argument(arg, "RunSQL() argument", framework="django")

    # -- strings and the SQL they hold ---------------------------------------------------------------------
    def resolve(self, node, depth: int = 0) -> tuple[list, bool] | None:
        """(pieces, dynamic) of the string an expression builds, or None when it is not a string."""
        if depth > 8:
            return None
        if isinstance(node, cst.SimpleString):
            return self._simple(node), False
        if isinstance(node, cst.ConcatenatedString):
            left, right = self.resolve(node.left, depth + 1), self.resolve(node.right, depth + 1)
            if left is None or right is None:
                return None
            return left[0] + right[0], left[1] or right[1]
        if isinstance(node, cst.FormattedString):
            return self._fstring(node, depth), True
        if isinstance(node, cst.BinaryOperation):
            if isinstance(node.operator, cst.Add):
                left = self.resolve(node.left, depth + 1)
                right = self.resolve(node.right, depth + 1)
                if left is None and right is None:
                    return None
                line, column = self.where(node)
                left = left or ([_Piece("_dyn", line, column)], True)
                right = right or ([_Piece(" _dyn", line, column)], True)
                return left[0] + right[0], True
            if isinstance(node.operator, cst.Modulo):  # "… %s" % args: Python formatting, not driver parameters
                left = self.resolve(node.left, depth + 1)
                if not left:
                    return None
                return [_Piece(_PY_FORMAT.sub(lambda m: "%" if m.group(0) == "%%" else _placeholder(len(m.group(0))),
                                              p.text), p.line, p.column) for p in left[0]], True
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "format":
            base = self.resolve(node.func.value, depth + 1)
            if base is None:
                return None
            return [_Piece(re.sub(r"\{[^{}]*\}", lambda m: _placeholder(len(m.group(0))), p.text), p.line, p.column)
                    for p in base[0]], True
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "join" \
                and node.args:
            return self._joined(node, depth)
        if isinstance(node, cst.Name):
            for scope in reversed(self.assigned):
                if node.value in scope:
                    return self.resolve(scope[node.value], depth + 1)
        return None

    def _joined(self, node, depth: int):
        """``sep.join([...])`` / ``sep.join(f"…" for x in xs)``: the parts joined by the separator (one element
        of a comprehension stands for all of them: what decides a rule is the fixed text it repeats)."""
        sep = self.resolve(node.func.value, depth + 1)
        sep_text = "".join(p.text for p in sep[0]) if sep else " "
        items = node.args[0].value
        if isinstance(items, (cst.GeneratorExp, cst.ListComp, cst.SetComp)):
            elements = [items.elt]
        elif isinstance(items, (cst.List, cst.Tuple)):
            elements = [e.value for e in items.elements]
        else:
            return None
        line, column = self.where(node)
        pieces, found = [], False
        for n, element in enumerate(elements):
            part = self.resolve(element, depth + 1)
            if part is not None:
                found = True
            text = "".join(p.text for p in part[0]) if part else "_dyn"
            pieces.append(_Piece((sep_text if n else "") + text, line, column))
        return (pieces, True) if found else None

    def _simple(self, node) -> list:
        value = node.value
        prefix = len(node.prefix)
        quote = node.quote
        raw = value[prefix + len(quote):len(value) - len(quote)]
        if "\\" in raw and "r" not in node.prefix.lower():
            try:
                decoded = node.evaluated_value
                raw = decoded.decode("utf-8", "replace") if isinstance(decoded, bytes) else decoded
            except Exception:  # noqa: BLE001
                pass
        line, column = self.where(node)
        return [_Piece(raw, line, column + prefix + len(quote))]

    def _fstring(self, node, depth: int = 0) -> list:
        line, column = self.where(node)
        start = len(node.prefix) + len(node.start)
        text = []
        for part in node.parts:
            code = self.module.code_for_node(part)
            if isinstance(part, cst.FormattedStringText):
                text.append(part.value)
                continue
            # {name} bound to SQL text built here (a joined list of lock calls): that text, not a placeholder
            inner = self.resolve(part.expression, depth + 1) if isinstance(part.expression, cst.Name) and \
                depth < 4 else None
            if inner is not None and all("\n" not in p.text for p in inner[0]):
                text.append("".join(p.text for p in inner[0]))
            else:
                text.append(_placeholder(len(code)) if "\n" not in code else "_dyn" + "\n" * code.count("\n"))
        return [_Piece("".join(text), line, column + start)]

    @staticmethod
    def join(pieces: list) -> tuple[str, int, int]:
        first = pieces[0]
        out = [first.text]
        end_line = first.line + first.text.count("\n")
        for p in pieces[1:]:
            if p.line > end_line:
                out.append("\n" * (p.line - end_line) + " " * max(0, p.column - 1))
            out.append(p.text)
            end_line = p.line + p.text.count("\n") if p.line >= end_line else end_line + p.text.count("\n")
        return "".join(out), first.line, first.column

    def sql_argument(self, node, origin: str, **kw) -> bool:
        resolved = self.resolve(node)
        if resolved is None:
            return False
        pieces, dynamic = resolved
        text, line, column = self.join(pieces)
        if not looks_like_sql(text):
            return False
        if dynamic:
            origin += ", partly dynamic"
        if self.migration_txn is not None and "txn" not in kw and self.autocommit_depth == 0:
            kw["txn"] = self.migration_txn
            self._before_first(kw["txn"], line, column)
        if (self.alembic or self.django_migration) and isinstance(node, cst.Name) and self.functions and \
                node.value not in self.assigned[-1] and node.value in self.assigned[0]:
            # a migration sending a module constant: the statement runs here, where the call is
            line, column = self.where(node)
            self.out.append(Emitted(line=line, column=column, sql=text, origin=origin, dynamic=dynamic,
                                    literal=False, **kw))
            return True
        self.out.append(Emitted(line=line, column=column, sql=text, origin=origin, dynamic=dynamic,
                                params=("named",) if origin.startswith("text(") else ("format", "pyformat"), **kw))
        if self.functions and re.match(r"\s*(INSERT|UPDATE|DELETE|MERGE|COPY)\b", text, re.I):
            self.functions[-1].writes = True
        return True

    def value(self, node):
        """A literal's value, following a name bound to one in this scope or the module."""
        if isinstance(node, cst.Name):
            for scope in reversed(self.assigned):
                if node.value in scope:
                    return _const(scope[node.value])
        return _const(node) if node is not None else _UNKNOWN
