"""SQLAlchemy models and sessions (sources/python's visitor): ForeignKey / ForeignKeyConstraint /
relationship(passive_deletes=True), Enum, Index and index=True (what create_all emits), Enum.create(),
metadata.create_all(), yield_per() and begin_nested()."""

from __future__ import annotations

import libcst as cst

from dsql_audit.sources.python_cst import _UNKNOWN, _const, _dotted, _enum_class_name, _kw, _name, _positional, \
    _q, _strings
from dsql_audit.sources.python_predicates import SQLALCHEMY


class _SQLAlchemy:
    """The visitor's SQLAlchemy calls (python._Visitor takes these members in; they use its emit and model
    context). A call_<name> runs only where python_predicates.REPORTABLE[name] says it can report (the imports it
    needs, its receiver)."""

    # SQLAlchemy and Django foreign keys
    def call_ForeignKey(self, node, owner):
        if "django" in self.imports and (owner in ("models", "") and "sqlalchemy" not in self.imports
                                          or owner == "models"):
            return self._django_fk(node, "ForeignKey")
        if not self.imports & SQLALCHEMY:
            return  # a namedtuple or class of the same name (seen in pgcli)
        if self.alembic and self.migration_txn is not None:
            return  # inside op.create_table / add_column: the statement's SQL holds the key
        target = _const(_positional(node, 0) or _kw(node, "column"))
        ondelete = _const(_kw(node, "ondelete"))
        obj = self._column_object()
        self.emit(node, construct={"kind": "OrmForeignKey", "orm": "SQLAlchemy", "object": obj,
                                   "target": target if isinstance(target, str) else None,
                                   "on_delete": ondelete.upper() if isinstance(ondelete, str) else None,
                                   "added_later": False,
                                   "claim": f"fk:{obj.lower()}" if obj and self._table() else None},
                  origin="SQLAlchemy ForeignKey", framework="sqlalchemy", restates=not self.alembic)

    def call_ForeignKeyConstraint(self, node, owner):
        if self.alembic and self.migration_txn is not None:
            return  # inside op.create_table: handled with the table
        refs = _strings(_positional(node, 1) or cst.List([]))
        ondelete = _const(_kw(node, "ondelete"))
        self.emit(node, construct={"kind": "OrmForeignKey", "orm": "SQLAlchemy", "object": self._table() or None,
                                   "target": ", ".join(refs) or None,
                                   "on_delete": ondelete.upper() if isinstance(ondelete, str) else None,
                                   "added_later": False},
                  origin="SQLAlchemy ForeignKeyConstraint", framework="sqlalchemy")

    def call_relationship(self, node, owner):
        # uselist=False: one child row, nothing fans out
        if _const(_kw(node, "passive_deletes")) in (True, "all") and _const(_kw(node, "uselist")) is not False:
            target = _const(_positional(node, 0))
            self.emit(node, construct={"kind": "OrmForeignKey", "orm": "SQLAlchemy", "object": self._column_object(),
                                       "target": target if isinstance(target, str) else None,
                                       "on_delete": "CASCADE", "added_later": False, "passive_deletes": True},
                      origin="SQLAlchemy relationship(passive_deletes=True) relies on the database's ON DELETE",
                      framework="sqlalchemy")

    def call_Enum(self, node, owner):
        # never in a migration: op.create_table creates the type (add_column and existing_type do not)
        if _const(_kw(node, "native_enum")) is False or _const(_kw(node, "create_type")) is False:
            return
        values = [v for v in (_const(a.value) for a in node.args if a.keyword is None) if isinstance(v, str)]
        name = _const(_kw(node, "name"))
        name = name if isinstance(name, str) else _enum_class_name(node) or \
            (self._column_object() or "enum").split(".")[-1] + "_enum"
        labels = ", ".join("'" + v.replace("'", "''") + "'" for v in values) or "'value'"
        self.emit(node, sql=f'CREATE TYPE "{name}" AS ENUM ({labels})', literal=False,
                  origin="SQLAlchemy Enum creates a PostgreSQL enum type", framework="sqlalchemy",
                  restates=not self.alembic)

    def call_Index(self, node, owner):
        if "sqlalchemy" not in self.imports or self.django_migration or "django" in self.imports:
            return self._django_index(node)
        name = _const(_positional(node, 0))
        cols = []
        for a in node.args[1:]:
            if a.keyword is not None:
                continue
            value, desc = a.value, ""
            if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and \
                    value.func.attr.value in ("desc", "asc"):  # Model.column.desc()
                desc = " DESC" if value.func.attr.value == "desc" else ""
                value = value.func.value
            cols.append((_dotted(value).split(".")[-1] if _const(value) is _UNKNOWN else str(_const(value))) + desc)
        table = self._table() or (self.core_tables[-1] if self.core_tables else None) or "unknown_table"
        unique = "UNIQUE " if _const(_kw(node, "unique")) is True else ""
        rendered = ", ".join(_q(c[:-5]) + " DESC" if c.endswith(" DESC") else _q(c) for c in cols)
        self.emit(node, sql=f'CREATE {unique}INDEX "{name if isinstance(name, str) else "ix"}" ON "{table}" '
                            f'({rendered or "id"})', literal=False,
                  origin="SQLAlchemy Index (create_all emits CREATE INDEX)", framework="sqlalchemy",
                  restates=not self.alembic)

    def call_Column(self, node, owner):
        self._indexed_column(node)

    def call_mapped_column(self, node, owner):
        self._indexed_column(node)

    def _indexed_column(self, node):
        if _const(_kw(node, "index")) is True:
            table = self._table() or "unknown_table"
            column = self._column_object().split(".")[-1] if self._column_object() else "column"
            self.emit(node, sql=f'CREATE INDEX "ix_{table}_{column}" ON "{table}" ({_q(column)})', literal=False,
                      origin="SQLAlchemy Column(index=True) (create_all emits CREATE INDEX)", framework="sqlalchemy",
                      restates=True)

    def call_create(self, node, owner):
        """``sa.Enum(…).create(bind)`` / ``enum_type.create(bind, checkfirst=True)``: CREATE TYPE, now."""
        target = node.func.value
        if isinstance(target, cst.Name):
            for scope in reversed(self.assigned):
                if target.value in scope:
                    target = scope[target.value]
                    break
        if not (isinstance(target, cst.Call) and _name(target.func) in ("Enum", "ENUM")):
            return
        name = _const(_kw(target, "name"))
        first = _positional(target, 0)
        if not isinstance(name, str):
            name = (_dotted(first).split(".")[-1].lower() if first is not None and _const(first) is _UNKNOWN
                    else "enum_type")
        sql = f'CREATE TYPE "{name}" AS ENUM (\'value\')'
        if sql in self.enums_created:
            return
        self.enums_created.add(sql)
        self.emit(node, sql=sql, literal=False, origin="SQLAlchemy Enum.create() creates a PostgreSQL enum type",
                  framework="alembic" if self.alembic else "sqlalchemy")

    def call_create_all(self, node, owner):
        """metadata.create_all() / Flask-SQLAlchemy db.create_all(): every table of the package's models, with
        their types, sequences and indexes, in one transaction at this call."""
        from dsql_audit.sources.sqlalchemy_models import create_all_sql, project_tables

        statements = create_all_sql(project_tables(self.path))
        txn = 2_000_000 + len(self.out)
        for sql in statements:
            self.emit(node, sql=sql, literal=False, txn=txn, framework="sqlalchemy",
                      origin=f"{owner}.create_all() creates every table of the models in one transaction")

    def call_yield_per(self, node, owner):
        self.emit(node, sql="DECLARE orm_cursor CURSOR WITHOUT HOLD FOR SELECT 1", literal=False,
                  origin="SQLAlchemy yield_per() streams results through a server-side cursor", framework="sqlalchemy")

    def call_begin_nested(self, node, owner):
        self._savepoint(node, "SQLAlchemy begin_nested() opens a SAVEPOINT")
