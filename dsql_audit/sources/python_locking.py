"""Row locks an ORM takes (sources/python's visitor): SQLAlchemy's with_for_update() and Django's
select_for_update(), as the SELECT … FOR UPDATE they emit, on the table of the model the query chain reads."""

from __future__ import annotations

import libcst as cst

from dsql_audit.sources.python_cst import _const, _kw, _name, _q, _UNKNOWN


def _wait_policy(call) -> str:
    """" NOWAIT" / " SKIP LOCKED" as the ORM call's keywords ask (SQLAlchemy and Django name them alike)."""
    if _const(_kw(call, "nowait")) is True:
        return " NOWAIT"
    return " SKIP LOCKED" if _const(_kw(call, "skip_locked")) is True else ""


class _Locking:
    """The visitor's locking calls (python._Visitor takes these members in; they use its emit and scopes)."""

    def call_with_for_update(self, node, owner):
        # a helper forwarding its parameters: the worst value any caller (or the default) passes
        read = True in self._param_values(_kw(node, "read"))
        key_share = True in self._param_values(_kw(node, "key_share"))
        clause = ("FOR KEY SHARE" if key_share else "FOR SHARE") if read else (
            "FOR NO KEY UPDATE" if key_share else "FOR UPDATE")
        clause += _wait_policy(node)
        table, where = self._locked_query(node, django=False)
        self.emit(node, sql=f"SELECT * FROM {table}{where} {clause}", literal=False,
                  origin=f"SQLAlchemy with_for_update() emits {clause}", framework="sqlalchemy")

    def call_select_for_update(self, node, owner):
        clause = "FOR NO KEY UPDATE" if True in self._param_values(_kw(node, "no_key")) else "FOR UPDATE"
        clause += _wait_policy(node)
        table, where = self._locked_query(node, django=True)
        self.emit(node, sql=f"SELECT * FROM {table}{where} {clause}", literal=False,
                  origin=f"Django select_for_update() emits {clause}", framework="django")

    # the calls of a query chain that pin rows by equality: (method, keyword filters count, first positional is
    # the primary key)
    _EQUALITY_FILTERS = {"filter_by": False, "filter": False, "get": True, "where": False}

    def _locked_query(self, node, django: bool) -> tuple[str, str]:
        """(the quoted table, a WHERE of the equality filters) a locking call's query chain reads: the model
        the chain starts from (``Model.objects…``, ``Model.query…``, ``session.query(Model)…``,
        ``select(Model)…``) mapped to its table; a model not known here is named as unknown, not guessed."""
        model, columns = None, []
        cur = node.func.value if isinstance(node.func, cst.Attribute) else None
        while cur is not None:
            if isinstance(cur, cst.Call):
                method = _name(cur.func)
                if method in ("query", "select") and cur.args and model is None:
                    first = cur.args[0].value
                    if isinstance(first, (cst.Name, cst.Attribute)):
                        model = _name(first)
                if method in self._EQUALITY_FILTERS:
                    for arg in cur.args:
                        if arg.keyword is not None:  # filter_by(id=…), filter(pk=…), get(pk=…)
                            key = arg.keyword.value.split("__")[0]
                            if "__" not in arg.keyword.value or arg.keyword.value.endswith("__exact"):
                                columns.append("id" if key == "pk" else key)
                        elif isinstance(arg.value, cst.Comparison) and len(arg.value.comparisons) == 1 and \
                                isinstance(arg.value.comparisons[0].operator, cst.Equal) and \
                                isinstance(arg.value.left, cst.Attribute):  # where(Model.id == …)
                            columns.append(arg.value.left.attr.value)
                        elif method == "get" and arg.keyword is None:  # session.get / query.get(pk)
                            columns.append("id")
                cur = cur.func.value if isinstance(cur.func, cst.Attribute) else None
            elif isinstance(cur, cst.Attribute):
                if cur.attr.value in ("objects", "query") and isinstance(cur.value, (cst.Name, cst.Attribute)):
                    model = model or _name(cur.value)
                    break
                cur = cur.value
            else:
                break
        table = self._model_table_name(model, django) if model else None
        where = " WHERE " + " AND ".join(f"{_q(c)} = $1" for c in dict.fromkeys(columns)) if columns else ""
        return (_q(table) if table else '"(unknown table)"'), where

    def _model_table_name(self, model: str, django: bool) -> str | None:
        if django:
            if any(name == model for name, _ in self.classes):
                return self._django_table(model)
            module = self.imported_from.get(model, "")
            parts = module.split(".")
            if "models" in parts and parts.index("models") > 0:  # from shop.models import Order
                return f"{parts[parts.index('models') - 1]}_{model.lower()}"
            return None
        from dsql_audit.sources.sqlalchemy_models import model_table

        return model_table(self.path, model)

    def _param_values(self, node) -> list:
        """The values a keyword argument can take: a literal; or, for a parameter of the enclosing function,
        its default and every literal the module's calls of that function pass for it."""
        value = _const(node)
        if value is not _UNKNOWN or not isinstance(node, cst.Name) or not self.functions:
            return [value]
        fn = self.functions[-1].node
        params = list(fn.params.params) + list(fn.params.kwonly_params) + list(fn.params.posonly_params)
        for param in params:
            if param.name.value == node.value:
                values = [_const(param.default)] if param.default is not None else []
                values += self._call_site_values(fn.name.value, param.name.value)
                return values or [_UNKNOWN]
        return [value]

    def _call_site_values(self, function: str, param: str) -> list:
        """The literals the module's calls of ``function`` pass for ``param`` (every call's keyword literals
        are collected in one walk of the module, the first time any is asked for)."""
        if self._keyword_literals is None:
            found: dict = {}

            class _Calls(cst.CSTVisitor):
                def visit_Call(self, call):
                    name = _name(call.func)
                    for arg in call.args:
                        if name and arg.keyword is not None:
                            found.setdefault((name, arg.keyword.value), []).append(_const(arg.value))

            self.module.visit(_Calls())
            self._keyword_literals = found
        return self._keyword_literals.get((function, param), [])
