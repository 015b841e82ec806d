"""Alembic (sources/python's visitor): the operations of upgrade() and the functions it calls, as the SQL
Alembic emits; a migration with a down_revision runs in one transaction with the migrations before it and their
alembic_version writes (unless env.py sets transaction_per_migration), except autocommit blocks; env.py's
run_migrations() writes alembic_version in the migration's transaction; stamp(); SQLAlchemy Core and Query writes
in a migration."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import libcst as cst

from dsql_audit.sources.app import Emitted
from dsql_audit.sources.python_cst import _MIGRATION_DML, _const, _dotted, _enum_class_name, _kw, _lit, \
    _name, _positional, _q, _strings, _strings_args
from dsql_audit.sources.sqlalchemy_models import TYPES as SA_TYPES  # SQLAlchemy column types → PostgreSQL

_ENV_CACHE: dict = {}


def _alembic_env(path: str) -> dict:
    """What the env.py beside a versions/ folder configures (read once per folder; never run)."""
    folder = PurePosixPath(path.replace("\\", "/")).parent.parent
    key = str(folder)
    if key not in _ENV_CACHE:
        found: dict = {}
        try:
            with open(folder / "env.py", encoding="utf-8", errors="replace") as fh:
                text = fh.read(1_000_000)
        except OSError:
            text = ""
        if re.search(r"transaction_per_migration\s*=\s*True", text):
            found["transaction_per_migration"] = True
        if len(_ENV_CACHE) > 1000:
            _ENV_CACHE.clear()
        _ENV_CACHE[key] = found
    return _ENV_CACHE[key]


def _fk_actions(call) -> str:
    """ondelete=/onupdate= of a SQLAlchemy ForeignKey / ForeignKeyConstraint / create_foreign_key, as SQL."""
    out = ""
    for key, words in (("ondelete", "ON DELETE"), ("onupdate", "ON UPDATE")):
        value = _const(_kw(call, key))
        if isinstance(value, str) and re.fullmatch(r"[A-Za-z ]+", value):
            out += f" {words} {value.upper()}"
    return out


def _server_default(node) -> str | None:
    """A column's server_default as the SQL DEFAULT SQLAlchemy renders ("x" → 'x', text("0") → 0)."""
    if node is None:
        return None
    value = _const(node)
    if isinstance(value, str):
        return _lit(value)
    if isinstance(node, cst.Call):
        name = _name(node.func)
        if name in ("text", "literal_column") and node.args:
            inner = _const(node.args[0].value)
            return inner if isinstance(inner, str) and inner else "0"
        if name in ("false", "true"):
            return name
        return "0"
    return "0"


def _create_table(table: str, columns: list, parts: list) -> tuple[str, list]:
    """CREATE TABLE text from column definitions, and [(offset of each definition, its source node)]."""
    head = f"CREATE TABLE {_q(table)} ("
    text, spans = head, []
    for i, (column, part) in enumerate(zip(columns, parts)):
        if i:
            text += ", "
        spans.append((len(text), part))
        text += column
    if not columns:
        text += "id bigint"
    return text + ")", spans


class _Alembic:
    """The visitor's Alembic operations and migration transactions (python._Visitor takes these members in; they
    use its emit). A call_<name> runs only where python_predicates.REPORTABLE[name] says it can report (op.X,
    or a batch's)."""

    def expand_helpers(self):
        """Put the batch operations each Alembic helper adds at the places it is called (in the caller's
        transaction), where Alembic runs them. A helper called by a helper is expanded too (three levels)."""
        if not self.helper_emits:
            return

        def copies(name: str, line: int, column: int, txn, depth: int) -> list:
            out = []
            for e in self.helper_emits.get(name, ()):
                out.append(Emitted(line=line, column=column, sql=e.sql, construct=e.construct, literal=False,
                                   origin=f"{e.origin} (in {name}())", dynamic=e.dynamic, txn=txn,
                                   framework=e.framework, params=e.params))
            if depth < 3:  # helpers this helper calls
                for inner, _i, _l, _c, _t, within in self.helper_calls:
                    if within == name and inner != name:
                        out += copies(inner, line, column, txn, depth + 1)
            return out

        top = [c for c in self.helper_calls if c[5] is None and c[0] in self.helper_emits]
        for name, index, line, column, txn, _within in sorted(top, key=lambda c: -c[1]):
            self.out[index:index] = copies(name, line, column, txn, 0)
            if txn is not None:
                self._context_first(txn)

    def _context_first(self, txn: int):
        """The TxnContext of a transaction stays its first record once helper statements are placed."""
        for n, e in enumerate(self.out):
            if e.context and e.txn == txn:
                first = next((k for k, o in enumerate(self.out) if o.txn == txn), n)
                if first < n:
                    self.out.insert(first, self.out.pop(n))
                return

    def _before_first(self, txn: int, line: int, column: int):
        """Before the first statement of a non-root Alembic migration: what its transaction already ran."""
        if not self.alembic or self._context_done:
            return
        self._context_done = True
        if self._alembic_follows_others():
            self.out.append(Emitted(line=line, column=column, txn=txn, context=True, framework="alembic",
                                    construct={"kind": "TxnContext", "classes": ["ddl", "dml"]},
                                    origin="the earlier migrations and their alembic_version writes (one "
                                           "transaction for the whole upgrade)"))

    def _upgrade_reach(self) -> set:
        """upgrade() and the module's functions it calls, directly or through each other."""
        if self._reach is None:
            calls: dict = {}
            for stmt in self.module.body:
                if isinstance(stmt, cst.FunctionDef):
                    found: set = set()

                    class _Calls(cst.CSTVisitor):
                        def visit_Call(self, call):
                            if isinstance(call.func, cst.Name):
                                found.add(call.func.value)

                    stmt.visit(_Calls())
                    calls[stmt.name.value] = found
            reach, todo = set(), ["upgrade"]
            while todo:
                name = todo.pop()
                if name in reach or name not in calls:
                    continue
                reach.add(name)
                todo.extend(calls[name])
            self._reach = reach
        return self._reach

    def _alembic_follows_others(self) -> bool:
        """An Alembic migration with a down_revision runs, on a fresh database and whenever several are
        applied, in the same transaction as the migrations before it and their alembic_version writes —
        unless the env.py next to versions/ sets transaction_per_migration=True."""
        down = None
        for stmt in self.module.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    target = small.targets[0].target if isinstance(small, cst.Assign) and small.targets else \
                        small.target if isinstance(small, cst.AnnAssign) else None
                    if _name(target) == "down_revision" and small.value is not None:
                        down = small.value
        if down is None or isinstance(down, cst.Name) and down.value == "None":
            return False
        return not _alembic_env(self.path).get("transaction_per_migration")

    def _note_helper_call(self, node, name: str):
        """A module function called in a migration: what that helper sends is sent here (expand_helpers)."""
        if self.alembic and isinstance(node.func, cst.Name) and self.functions and not self.classes:
            line, column = self.where(node)
            txn = self.migration_txn if self.autocommit_depth == 0 else None
            self.helper_calls.append((name, len(self.out), line, column, txn,
                                      self.functions[0].name if self._helper_start is not None else None))

    # Alembic operations
    def call_run_migrations(self, node, owner):
        """env.py's context.run_migrations(): Alembic writes alembic_version after each migration, in the
        transaction that ran the migration's DDL (offline mode writes a script instead: nothing sent)."""
        if any("offline" in fn.name.lower() for fn in self.functions):
            return
        txn = 1_000_000 + len(self.out)
        self.emit(node, construct={"kind": "TxnContext", "classes": ["ddl"]}, context=True, txn=txn,
                  origin="the migration's own DDL", framework="alembic")
        self.emit(node, sql="INSERT INTO alembic_version (version_num) VALUES ('rev')", literal=False, txn=txn,
                  origin="Alembic's alembic_version write after each migration, in the migration's transaction",
                  framework="alembic")

    def call_stamp(self, node, owner):
        """Alembic's stamp() on a database without alembic_version creates the table and inserts the revision
        in one transaction."""
        txn = 3_000_000 + len(self.out)
        origin = f"Alembic {owner}.stamp() creates alembic_version and writes the revision in one transaction"
        self.emit(node, sql="CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY)",
                  literal=False, txn=txn, framework="alembic", origin=origin)
        self.emit(node, sql="INSERT INTO alembic_version (version_num) VALUES ('rev')", literal=False, txn=txn,
                  framework="alembic", origin=origin)

    def _migration_orm_write(self, node, op: str):
        """``session.query(Model).delete()`` in an Alembic migration: a DML in the migration's transaction."""
        if not self.alembic or self.migration_txn is None or not isinstance(node.func, cst.Attribute):
            return
        if ".query(" in self.module.code_for_node(node.func.value):
            self._dml(node, op, "SQLAlchemy Query." + op + "() in a migration")

    def _dml(self, node, op: str, origin: str):
        sql = _MIGRATION_DML[op]
        self.emit(node, sql=sql, literal=False, origin=origin, framework="alembic")

    def _core_dml(self, node, arg) -> bool:
        """``conn.execute(table.insert().values(…))`` / ``op.execute(sa.update(t)…)`` in a migration: the
        SQLAlchemy Core statement is a DML in the migration's transaction (python_predicates.core_dml)."""
        if self.migration_txn is None:
            return False
        code = self.module.code_for_node(arg)
        m = re.search(r"(?:^|[.\s(])(insert|update|delete)\(", code)
        if not m or isinstance(arg, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
            return False
        self._dml(node, m.group(1), f"SQLAlchemy Core {m.group(1)}() in a migration")
        return True

    def call_create_table(self, node, owner):
        table = _const(self._tablename(_positional(node, 0)))
        if not isinstance(table, str):
            return
        columns, extra, parts = [], [], []
        calls = [a.value for a in node.args[1:] if a.keyword is None and isinstance(a.value, cst.Call)]
        # SQLAlchemy makes a lone integer primary key autoincrement (SERIAL), however the key is declared
        pk_names = [n for c in calls if _name(c.func) == "PrimaryKeyConstraint" for n in _strings_args(c)]
        pk_names += [_const(_positional(c, 0)) for c in calls if _name(c.func) == "Column"
                     and _const(_kw(c, "primary_key")) is True]
        for call in calls:
            kind = _name(call.func)
            if kind == "Column":
                col, enum = self._sa_column(call, table, lone_pk=len(pk_names) == 1 and
                                            _const(_positional(call, 0)) == pk_names[0])
                columns.append(col)
                parts.append(call)
                if enum:
                    extra.append((call, enum))
            elif kind == "ForeignKeyConstraint":
                refs = _strings(_positional(call, 1) or cst.List([]))
                local = _strings(_positional(call, 0) or cst.List([]))
                target = refs[0].rsplit(".", 1)[0] if refs and "." in refs[0] else "p"
                columns.append(f"FOREIGN KEY ({', '.join(_q(c) for c in local) or 'id'}) REFERENCES {_q(target)} "
                               f"({', '.join(_q(r.rsplit('.', 1)[-1]) for r in refs) or 'id'}){_fk_actions(call)}")
                parts.append(call)
            elif kind in ("PrimaryKeyConstraint", "UniqueConstraint"):
                cols = _strings_args(call)
                word = "PRIMARY KEY" if kind == "PrimaryKeyConstraint" else "UNIQUE"
                columns.append(f"{word} ({', '.join(_q(c) for c in cols)})")
                parts.append(call)
        for at, enum in extra:  # the table's create event creates each type once (checkfirst)
            if enum in self.enums_created:
                continue
            self.enums_created.add(enum)
            self.emit(at, sql=enum, literal=False, origin="Alembic sa.Enum creates a PostgreSQL enum type",
                      framework="alembic")
        sql, spans = _create_table(table, columns, parts)
        self.emit(node, sql=sql, literal=False, origin="Alembic op.create_table()", framework="alembic", spans=spans)
        for call in calls:  # Column(index=True): create_table creates its index right after the table
            if _name(call.func) == "Column" and _const(_kw(call, "index")) is True:
                name = _const(_positional(call, 0))
                name = name if isinstance(name, str) else "column"
                unique = "UNIQUE " if _const(_kw(call, "unique")) is True else ""
                self.emit(call, sql=f"CREATE {unique}INDEX {_q('ix_' + table + '_' + name)} ON {_q(table)} "
                                    f"({_q(name)})", literal=False,
                          origin="Alembic op.create_table(): Column(index=True) creates an index", framework="alembic")

    def _sa_column(self, call, table: str, lone_pk: bool | None = None) -> tuple[str, str | None]:
        name = _const(_positional(call, 0))
        name = name if isinstance(name, str) else "column"
        type_node = _positional(call, 1)
        sql_type, enum = "text", None
        if type_node is not None:
            type_name = _name(type_node.func if isinstance(type_node, cst.Call) else type_node) or "Text"
            sql_type = SA_TYPES.get(type_name, "text")
            if type_name in ("String", "Numeric", "VARCHAR") and isinstance(type_node, cst.Call):
                args = [_const(a.value) for a in type_node.args if a.keyword is None] or \
                    [v for v in (_const(_kw(type_node, k)) for k in ("length", "precision", "scale")) if v is not None]
                if args and all(isinstance(a, int) for a in args):
                    sql_type += "(" + ", ".join(str(a) for a in args) + ")"
            if type_name == "DateTime" and isinstance(type_node, cst.Call) and \
                    _const(_kw(type_node, "timezone")) is True:
                sql_type = "timestamptz"
            if type_name == "Enum" and isinstance(type_node, cst.Call):
                values = [v for v in (_const(a.value) for a in type_node.args if a.keyword is None)
                          if isinstance(v, str)]
                enum_name = _const(_kw(type_node, "name"))
                enum_name = enum_name if isinstance(enum_name, str) else _enum_class_name(type_node) or f"{name}_enum"
                if _const(_kw(type_node, "native_enum")) is not False and _const(_kw(type_node, "create_type")) \
                        is not False:
                    enum = f'CREATE TYPE "{enum_name}" AS ENUM ({", ".join(_lit(v) for v in values) or _lit("value")})'
                sql_type = f'"{enum_name}"' if enum else "varchar"
        pk = _const(_kw(call, "primary_key")) is True
        autoincrement = _const(_kw(call, "autoincrement"))
        # SQLAlchemy's autoincrement="auto": the table's only primary-key column, an integer, not a foreign key
        references = any(a.keyword is None and isinstance(a.value, cst.Call) and _name(a.value.func) == "ForeignKey"
                         for a in call.args)
        sole = lone_pk if lone_pk is not None else pk
        if sole and sql_type in ("integer", "bigint") and (autoincrement is True or
                                                           autoincrement is not False and not references):
            sql_type = "serial" if sql_type == "integer" else "bigserial"  # what SQLAlchemy emits for PostgreSQL
        parts = [_q(name), sql_type]
        if pk:
            parts.append("PRIMARY KEY")
        if _const(_kw(call, "nullable")) is False:
            parts.append("NOT NULL")
        default = _server_default(_kw(call, "server_default"))
        if default is not None:
            parts.insert(2, f"DEFAULT {default}")
        for arg in call.args:
            if arg.keyword is None and isinstance(arg.value, cst.Call) and _name(arg.value.func) == "ForeignKey":
                target = _const(_positional(arg.value, 0))
                target = target if isinstance(target, str) and "." in target else "p.id"
                parts.append(f"REFERENCES {_q(target.rsplit('.', 1)[0])} ({_q(target.rsplit('.', 1)[1])})"
                             f"{_fk_actions(arg.value)}")
        return " ".join(parts), enum

    def _alembic_table(self, owner: str) -> str | None:
        """"" for Alembic's op (the table is an argument), the table for a batch_alter_table alias, else None
        (a helper given the batch as a parameter named batch_op: its table is not known here)."""
        if owner == "op":
            return ""
        if owner not in self.batch_tables and self.alembic and owner.endswith("batch_op"):
            return "unknown_table"
        return self.batch_tables.get(owner)

    def _returned_call(self, node):
        """``helper()`` of a module function whose body returns one call (``return sa.Column(…)``): that call."""
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and not node.args:
            for stmt in self.module.body:
                if isinstance(stmt, cst.FunctionDef) and stmt.name.value == node.func.value and \
                        isinstance(stmt.body, cst.IndentedBlock):
                    for line in stmt.body.body:
                        if isinstance(line, cst.SimpleStatementLine) and isinstance(line.body[0], cst.Return) and \
                                isinstance(line.body[0].value, cst.Call):
                            return line.body[0].value
        return node

    def _tablename(self, node):
        """``Model.__tablename__`` as the literal it is (the model read from the package), else the node."""
        if isinstance(node, cst.Attribute) and node.attr.value == "__tablename__":
            from dsql_audit.sources.sqlalchemy_models import model_table

            table = model_table(self.path, _dotted(node.value).split(".")[-1])
            if table:
                return cst.SimpleString(repr(table))
        return node

    def _args(self, node, owner: str) -> list:
        """The positional arguments as op.X takes them: a batch op's table is put back in front."""
        args = [self._tablename(a.value) for a in node.args if a.keyword is None and not a.star]
        batch = self._alembic_table(owner) if owner != "op" else None
        return args if not batch else [cst.SimpleString(repr(batch))] + args

    # Alembic's signatures (op.X; a batch op has no table argument: the batch's table is used)
    _OP_PARAMS = {
        "create_foreign_key": ("constraint_name", "source_table", "referent_table", "local_cols", "remote_cols"),
        "drop_constraint": ("constraint_name", "table_name"),
        "create_unique_constraint": ("constraint_name", "table_name", "columns"),
        "create_primary_key": ("constraint_name", "table_name", "columns"),
        "create_check_constraint": ("constraint_name", "table_name", "condition"),
    }

    def _op_args(self, node, owner: str, op: str) -> dict:
        """{parameter: value} of an Alembic operation, positional or keyword; the table as a string."""
        params = list(self._OP_PARAMS[op])
        table_param = params[1]
        if owner != "op":
            params.remove(table_param)
        out = {}
        positional = [a.value for a in node.args if a.keyword is None and not a.star]
        for name, value in zip(params, positional):
            out[name] = value
        for a in node.args:
            if a.keyword is not None:
                out[a.keyword.value] = a.value
        table = self._alembic_table(owner) if owner != "op" else None
        if not table:
            value = _const(self._tablename(out[table_param])) if table_param in out else None
            table = value if isinstance(value, str) else "unknown_table"
        out["_table"] = "unknown_table" if table == "t" else table
        return out

    def call_create_foreign_key(self, node, owner):
        a = self._op_args(node, owner, "create_foreign_key")
        name, target = _const(a.get("constraint_name")), _const(self._tablename(a.get("referent_table")))
        local = _strings(a.get("local_cols") or cst.List([]))
        remote = _strings(a.get("remote_cols") or cst.List([]))
        self.emit(node, sql=f"ALTER TABLE {_q(a['_table'])} ADD CONSTRAINT "
                            f"{_q(name if isinstance(name, str) else 'fk')} FOREIGN KEY "
                            f"({', '.join(_q(c) for c in local) or 'id'}) REFERENCES "
                            f"{_q(target if isinstance(target, str) else 'unknown_table')} "
                            f"({', '.join(_q(c) for c in remote) or 'id'}){_fk_actions(node)}",
                  literal=False, origin=f"Alembic {owner}.create_foreign_key()", framework="alembic")

    def call_drop_constraint(self, node, owner):
        a = self._op_args(node, owner, "drop_constraint")
        name = _const(a.get("constraint_name"))
        self.emit(node, sql=f"ALTER TABLE {_q(a['_table'])} DROP CONSTRAINT "
                            f"{_q(name if isinstance(name, str) else 'unnamed_constraint')}", literal=False,
                  origin=f"Alembic {owner}.drop_constraint()", framework="alembic")

    def _add_constraint(self, node, owner, what: str):
        a = self._op_args(node, owner, what)
        name = _const(a.get("constraint_name"))
        if what == "create_check_constraint":
            body = "CHECK (true)"
        else:
            cols = ", ".join(_q(c) for c in _strings(a.get("columns") or cst.List([]))) or "id"
            body = f"{'PRIMARY KEY' if what == 'create_primary_key' else 'UNIQUE'} ({cols})"
        self.emit(node, sql=f"ALTER TABLE {_q(a['_table'])} ADD CONSTRAINT "
                            f"{_q(name if isinstance(name, str) else 'unnamed_constraint')} {body}", literal=False,
                  origin=f"Alembic {owner}.{what}()", framework="alembic")

    def call_create_unique_constraint(self, node, owner):
        self._add_constraint(node, owner, "create_unique_constraint")

    def call_create_primary_key(self, node, owner):
        self._add_constraint(node, owner, "create_primary_key")

    def call_create_check_constraint(self, node, owner):
        self._add_constraint(node, owner, "create_check_constraint")

    def call_rename_table(self, node, owner):
        old, new = _const(_positional(node, 0)), _const(_positional(node, 1))
        self.emit(node, sql=f"ALTER TABLE {_q(old if isinstance(old, str) else 't')} RENAME TO "
                            f"{_q(new if isinstance(new, str) else 't2')}", literal=False,
                  origin="Alembic op.rename_table()", framework="alembic")

    def call_create_index(self, node, owner):
        args = self._args(node, owner)
        if owner != "op" and args:  # batch_op.create_index(name, columns)
            args[0:2] = [args[1], args[0]] if len(args) >= 2 else args[0:2]
        name = _const(args[0]) if args else None
        table = _const(args[1]) if len(args) > 1 else None
        cols = _strings((args[2] if len(args) > 2 else None) or _kw(node, "columns") or cst.List([]))
        unique = "UNIQUE " if _const(_kw(node, "unique")) is True else ""
        concurrently = "CONCURRENTLY " if _const(_kw(node, "postgresql_concurrently")) is True else ""
        table = table if isinstance(table, str) else "unknown_table"
        self.emit(node, sql=f"CREATE {unique}INDEX {concurrently}{_q(name if isinstance(name, str) else 'ix')} ON "
                            f"{_q(table)} ({', '.join(_q(c) for c in cols) or 'id'})",
                  literal=False, origin=f"Alembic {owner}.create_index()", framework="alembic")

    def call_add_column(self, node, owner):
        args = self._args(node, owner)
        table = _const(args[0]) if args else None
        column = self._returned_call(args[1]) if len(args) > 1 else None
        if not isinstance(table, str) or not isinstance(column, cst.Call):
            return
        col, _enum = self._sa_column(column, table)  # add_column never creates the enum type
        self.emit(node, sql=f"ALTER TABLE {_q(table)} ADD COLUMN {col}", literal=False,
                  origin=f"Alembic {owner}.add_column()", framework="alembic")

    def call_alter_column(self, node, owner):
        args = self._args(node, owner)
        table = _const(args[0]) if args else None
        column = _const(args[1]) if len(args) > 1 else None
        if not isinstance(table, str) or not isinstance(column, str):
            return
        type_node = _kw(node, "type_")
        if type_node is not None:
            type_name = _name(type_node.func if isinstance(type_node, cst.Call) else type_node) or "Text"
            self.emit(node, sql=f"ALTER TABLE {_q(table)} ALTER COLUMN {_q(column)} TYPE "
                                f"{SA_TYPES.get(type_name, 'text')}", literal=False,
                      origin=f"Alembic {owner}.alter_column(type_=…)", framework="alembic")
        elif _kw(node, "nullable") is not None or _kw(node, "server_default") is not None:
            what = "SET NOT NULL" if _const(_kw(node, "nullable")) is False else (
                "DROP NOT NULL" if _kw(node, "nullable") is not None else "SET DEFAULT 0")
            self.emit(node, sql=f"ALTER TABLE {_q(table)} ALTER COLUMN {_q(column)} {what}", literal=False,
                      origin=f"Alembic {owner}.alter_column()", framework="alembic")

    def call_bulk_insert(self, node, owner):
        table = _positional(node, 0)
        self.emit(node, sql=f"INSERT INTO {_q(_name(table) or 'table')} VALUES (1)", literal=False,
                  origin="Alembic op.bulk_insert()", framework="alembic")

    def call_drop_table(self, node, owner):
        table = _const(_positional(node, 0))
        self.emit(node, sql=f"DROP TABLE {_q(table if isinstance(table, str) else 't')}", literal=False,
                  origin="Alembic op.drop_table()", framework="alembic")

    def call_drop_column(self, node, owner):
        args = self._args(node, owner)
        table = _const(args[0]) if args else None
        column = _const(args[1]) if len(args) > 1 else None
        if isinstance(table, str) and isinstance(column, str):
            self.emit(node, sql=f"ALTER TABLE {_q(table)} DROP COLUMN {_q(column)}", literal=False,
                      origin=f"Alembic {owner}.drop_column()", framework="alembic")

    def call_drop_index(self, node, owner):
        name = _const(_positional(node, 0))
        self.emit(node, sql=f"DROP INDEX {_q(name if isinstance(name, str) else 'ix')}", literal=False,
                  origin="Alembic op.drop_index()", framework="alembic")
