"""Django (sources/python's visitor): ForeignKey / OneToOneField / ManyToManyField, Index, unfiltered
update()/delete(), bulk writes and savepoints in transaction.atomic, QuerySet.iterator(), migrate --run-syncdb,
DATABASES settings; a migration's operations as the SQL Django emits (sources/django_migrations, with the app's
earlier migrations as state) and its RunPython code's ORM writes."""

from __future__ import annotations

import re

import libcst as cst

from dsql_audit.sources.app import Emitted
from dsql_audit.sources.python_cst import _MIGRATION_DML, _const, _dotted, _kw, _name, _positional, _q, _strings
from dsql_audit.sources.python_predicates import all_rows, databases_setting

# QuerySet / Model / related-manager calls that write rows (what RunPython code sends)
_ORM_WRITES = {"create", "get_or_create", "update_or_create", "bulk_create", "bulk_update", "save", "update",
               "delete", "add", "set"}


# receivers whose update()/delete()/add()/set() are no database write (a dict, a set, Django's cache, a file)
_NOT_ORM = re.compile(r"(?:^|\.)(cache|caches|cache_\w*|\w*_cache|file|files|storage|dict|data|kwargs|params|"
                      r"settings|context|headers|environ|config|options|meta|seen|done|result|results)$", re.I)


def _orm_receiver(receiver, method: str) -> bool:
    """Is ``receiver.method(…)`` a database write? A queryset, a manager or a model instance; not a dict's
    update(), a set's add(), the cache's delete() or a file's."""
    chain = _dotted(receiver)
    if not chain or _NOT_ORM.search(chain):
        return False
    if method in ("add", "set", "update") and "." not in chain and "(" not in chain:
        # a bare name: `seen.add(x)`, `d.update(…)`; a related manager is an attribute (`obj.tags.add`)
        return method == "update" and chain[:1].isupper()
    return True


def _atomic_requests(path: str) -> bool:
    """Does a Django settings module near this file set ATOMIC_REQUESTS = True (every view in a transaction)?"""
    return _setting_true(path, "ATOMIC_REQUESTS")


def _setting_true(path: str, name: str) -> bool:
    """Does a Django settings module near this file set ``name`` to True? (read, never imported)"""
    from dsql_audit.sources.django_migrations import settings_value

    return (settings_value(path, name) or "").startswith("True")


class _Django:
    """The visitor's Django calls and settings (python._Visitor takes these members in; they use its emit and
    model context). A call_<name> runs only where python_predicates.REPORTABLE[name] says it can report
    (Django imported, not in a migration; a migration's operations only in one)."""

    def _atomic_functions(self) -> set:
        """The module's functions that open a transaction.atomic() block: decorated with it, or with one at the
        top of their body (read once per module)."""
        if self._atomic_fns is None:
            found = set()
            for stmt in self.module.body:
                fns = [stmt] if isinstance(stmt, cst.FunctionDef) else \
                    [b for b in stmt.body.body if isinstance(b, cst.FunctionDef)] if isinstance(stmt, cst.ClassDef) \
                    and isinstance(stmt.body, cst.IndentedBlock) else []
                for fn in fns:
                    qualified = fn.name.value if isinstance(stmt, cst.FunctionDef) else \
                        f"{stmt.name.value}.{fn.name.value}"
                    decorated = any(re.search(r"\batomic\b", self.module.code_for_node(d.decorator)) and
                                    "savepoint=False" not in self.module.code_for_node(d.decorator)
                                    for d in fn.decorators)
                    body = fn.body.body if isinstance(fn.body, cst.IndentedBlock) else ()
                    opens = any(isinstance(b, cst.With) and any(
                        re.search(r"\batomic\b", self.module.code_for_node(i.item)) and
                        "savepoint=False" not in self.module.code_for_node(i.item) for i in b.items) for b in body)
                    if decorated or opens:
                        found.add(qualified)
            self._atomic_fns = found
        return self._atomic_fns

    def _in_atomic(self) -> bool:
        """Inside a Django atomic block: lexically, or in a view when ATOMIC_REQUESTS wraps every request."""
        if self.atomic_depth > 0:
            return True
        return "django" in self.imports and bool(self.functions) and self._is_view() and _atomic_requests(self.path)

    def _is_view(self) -> bool:
        """A Django view: a function (or a method after self) whose first parameter is the request."""
        for fn in self.functions:
            params = [p.name.value for p in fn.node.params.params]
            if params[:1] == ["request"] or params[:2] in (["self", "request"], ["cls", "request"]):
                return True
        return False

    def _atomic_function_call(self, node, name: str, owner: str):
        """A function of this module that opens an atomic block, called inside one: a SAVEPOINT."""
        if "django" not in self.imports or self.django_migration or not self.functions:
            return
        own_class = next((c for c, _ in reversed(self.classes) if c != "Meta"), None)
        callee = name if isinstance(node.func, cst.Name) else \
            f"{own_class}.{name}" if owner in ("self", "cls") and own_class else None
        if callee and callee in self._atomic_functions() and name != self.functions[-1].name and self._in_atomic():
            self._savepoint(node, f"{name}() opens a transaction.atomic() block inside the caller's: a SAVEPOINT")

    def _note_orm_write(self, node, name: str):
        """In a migration, the ORM writes each module function makes and the functions it calls (RunPython)."""
        if not self.django_migration or not self.functions:
            return
        top = self.functions[0].name
        if name in _ORM_WRITES and isinstance(node.func, cst.Attribute) and _orm_receiver(node.func.value, name):
            self.orm_writes.setdefault(top, []).append((*self.where(node), name))
        elif isinstance(node.func, cst.Name):
            self.orm_calls.setdefault(top, set()).add(name)

    def call_get_or_create(self, node, owner):
        self._orm_savepoint(node, "get_or_create")

    def call_update_or_create(self, node, owner):
        self._orm_savepoint(node, "update_or_create")

    def _orm_savepoint(self, node, method: str):
        """Django's get_or_create / update_or_create run in transaction.atomic(): a SAVEPOINT when a
        transaction is already open (migrations are handled with their RunPython code)."""
        if self._in_atomic():
            self._savepoint(node, f"Django {method}() inside an atomic block opens a SAVEPOINT")

    def call_iterator(self, node, owner):
        """QuerySet.iterator() on PostgreSQL reads through a server-side cursor (DECLARE … CURSOR), unless the
        settings set DISABLE_SERVER_SIDE_CURSORS."""
        if _setting_true(self.path, "DISABLE_SERVER_SIDE_CURSORS"):
            return
        self.emit(node, sql="DECLARE orm_cursor NO SCROLL CURSOR WITHOUT HOLD FOR SELECT 1", literal=False,
                  origin="Django QuerySet.iterator() reads through a server-side cursor", framework="django")

    def call_OneToOneField(self, node, owner):
        self._django_fk(node, "OneToOneField")

    def call_ManyToManyField(self, node, owner):
        self._django_fk(node, "ManyToManyField")

    def _django_fk(self, node, kind: str):
        if "django" not in self.imports or self.django_migration:
            return  # in a migration the operation reports it (CreateModel / AddField)
        if _const(_kw(node, "db_constraint")) is False:
            return
        if self._abstract_model() and self._app_has_migrations():
            return  # each concrete model's table gets the key, and its migrations report it there
        on_delete = _kw(node, "on_delete") or _positional(node, 1)
        target = _positional(node, 0)
        table = self._django_model_table()
        field = getattr(self, "_target", None) or "field"
        target_name = _dotted(target) if target is not None and not isinstance(_const(target), str) else (
            _const(target) if target is not None else None)
        if kind == "ManyToManyField":  # the join table's key to this model
            claim = f"fk:{table}_{field}.{table.split('_', 1)[-1]}_id".lower() if table else None
        else:
            claim = f"fk:{table}.{field}_id".lower() if table else None
        self.emit(node, construct={"kind": "OrmForeignKey", "orm": "Django", "object": self._column_object(),
                                   "target": target_name,
                                   "on_delete": _name(on_delete) if on_delete is not None else None,
                                   "added_later": True, "claim": claim, "one_to_one": kind == "OneToOneField"
                                   or _const(_kw(node, "unique")) is True},
                  origin=f"Django {kind}", framework="django", restates=True)

    def _django_index(self, node):
        fields = [self._django_column(f.lstrip("-")) for f in _strings(_kw(node, "fields") or cst.List([]))]
        name = _const(_kw(node, "name"))
        table = self._django_model_table() or "unknown_table"
        self.emit(node, sql=f'CREATE INDEX "{name if isinstance(name, str) else "idx"}" ON "{table}" '
                            f'({", ".join(_q(f.lstrip("-")) for f in fields) or "id"})', literal=False,
                  origin="Django Index (migrate emits CREATE INDEX)", framework="django", restates=True)

    # Django querysets
    def call_delete(self, node, owner):
        self._unbounded(node, owner, "delete")
        self._migration_orm_write(node, "delete")

    def call_update(self, node, owner):
        self._unbounded(node, owner, "update")
        self._migration_orm_write(node, "update")

    def _unbounded(self, node, chain: str, op: str):
        if "django" not in self.imports or not all_rows(chain):
            return
        self.emit(node, construct={"kind": "UnboundedWrite", "orm": "Django", "op": op, "query": chain},
                  origin=f"Django {chain}.{op}() without filter()", framework="django")
        if self.functions:
            self.functions[-1].writes = True

    def call_bulk_create(self, node, owner):
        self._bulk(node, "bulk_create")

    def call_bulk_update(self, node, owner):
        self._bulk(node, "bulk_update")

    def _bulk(self, node, op):
        self.emit(node, construct={"kind": "UnboundedWrite", "orm": "Django", "op": op,
                                   "query": _dotted(node.func.value) if isinstance(node.func, cst.Attribute) else ""},
                  origin=f"Django {op}() inside transaction.atomic", framework="django")

    def call_call_command(self, node, owner):
        if _const(_positional(node, 0)) == "migrate" and _const(_kw(node, "run_syncdb")) is True:
            self._run_syncdb(node)

    def _run_syncdb(self, node):
        """``migrate --run-syncdb``: Django creates the tables of every app without migrations in one
        schema-editor transaction (their CREATE TABLEs, then the deferred keys and indexes)."""
        import os

        from dsql_audit.sources.sqlalchemy_models import _package_root

        root = os.path.dirname(_package_root(self.path))  # the folder holding the project's apps
        models = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("migrations", "tests",
                                                                                     "node_modules"))
            if "models.py" in files and not os.path.isdir(os.path.join(folder, "migrations")):
                try:
                    with open(os.path.join(folder, "models.py"), encoding="utf-8", errors="replace") as fh:
                        text = fh.read(1_000_000)
                except OSError:
                    continue
                app = os.path.basename(folder)
                models += [f"{app}_{m.lower()}" for m in re.findall(r"^class (\w+)\([^)]*Model\b", text, re.M)]
        txn = 4_000_000 + len(self.out)
        for table in models[:200]:
            self.emit(node, sql=f"CREATE TABLE {_q(table)} (id bigint PRIMARY KEY)", literal=False, txn=txn,
                      framework="django",
                      origin="migrate --run-syncdb creates the tables of apps without migrations in one transaction")

    # Django migration operations: the SQL comes from sources/django_migrations (the app's migrations read
    # together, so an AlterField is compared with the field as it was); deferred statements (foreign keys,
    # indexes) run at the end of the migration, as Django's schema editor runs them
    def _django_operation(self, node, owner):
        if self.django_file is None:
            return
        line, _ = self.where(node)
        for stmt in self.django_file.statements.get(line, ()):
            if stmt.deferred:
                self.django_deferred.append(stmt)
            else:
                self._django_emit(stmt)

    def _django_emit(self, stmt):
        kw = {"txn": self.migration_txn} if self.migration_txn is not None else {}
        # Django sends "ALTER TABLE …; SET CONSTRAINTS … IMMEDIATE" as one query string: two statements
        for n, sql in enumerate(re.split(r";\s+(?=SET CONSTRAINTS |ALTER TABLE )", stmt.sql)):
            self.out.append(Emitted(line=stmt.line, column=stmt.column, sql=sql, literal=False,
                                    origin=stmt.origin, framework="django", spans=stmt.spans if n == 0 else None,
                                    **kw))

    call_CreateModel = call_AddField = call_AlterField = call_AddIndex = call_AddConstraint = _django_operation
    call_DeleteModel = call_RemoveField = call_RenameField = call_RenameModel = _django_operation
    call_AlterUniqueTogether = call_AlterIndexTogether = call_AlterModelTable = _django_operation
    call_RemoveConstraint = call_RemoveIndex = _django_operation

    def call_RunPython(self, node, owner):
        """Data-migration code runs in the migration's transaction: each ORM write in the function (and the
        module functions it calls) is a DML there; get_or_create / update_or_create open a SAVEPOINT inside
        the migration's atomic block."""
        code = _positional(node, 0) or _kw(node, "code")
        name = code.value if isinstance(code, cst.Name) else None
        writes = []
        seen, todo = set(), [name] if name else []
        while todo:
            fn = todo.pop()
            if fn in seen:
                continue
            seen.add(fn)
            writes += self.orm_writes.get(fn, [])
            todo.extend(self.orm_calls.get(fn, ()))
        if not writes:
            self.emit(node, sql="UPDATE django_data_migration SET applied = true WHERE id = 1", literal=False,
                      origin="Django RunPython (data-migration code, counted as a write)", framework="django")
            return
        for line, column, method in sorted(writes):
            kw = {"txn": self.migration_txn} if self.migration_txn is not None else {}
            if method in ("get_or_create", "update_or_create"):
                self.out.append(Emitted(line=line, column=column, sql="SAVEPOINT django_savepoint", literal=False,
                                        origin=f"Django {method}() inside the migration's atomic block",
                                        framework="django", **kw))
            verb = _MIGRATION_DML["delete" if method == "delete" else
                                  "update" if method in ("update", "bulk_update", "save") else "insert"]
            self.out.append(Emitted(line=line, column=column, sql=verb, literal=False,
                                    origin=f"Django {method}() in RunPython code", framework="django", **kw))

    # -- settings ----------------------------------------------------------------------------------------------
    def _settings_dict(self, node):
        """Django's DATABASES = {"default": {...}}: isolation level, CONN_MAX_AGE, sslmode, a password."""
        if not databases_setting([_name(t.target) for t in node.targets], isinstance(node.value, cst.Dict)):
            return
        for element in node.value.elements:
            config = element.value
            if not isinstance(config, cst.Dict):
                continue
            entries = {(_const(e.key) if isinstance(_const(e.key), str) else None): e for e in config.elements
                       if isinstance(e, cst.DictElement)}
            engine = _const(entries["ENGINE"].value) if "ENGINE" in entries else ""
            if not isinstance(engine, str) or not ("postgres" in engine or "aurora_dsql" in engine):
                continue
            if "aurora_dsql" in engine:
                self.emit(entries["ENGINE"], construct={"kind": "Adapter", "name": "aurora-dsql-django"},
                          origin=f"DATABASES ENGINE {engine}")
            age = entries.get("CONN_MAX_AGE")
            value = _const(age.value) if age is not None else 0
            checks = entries.get("CONN_HEALTH_CHECKS")
            if age is not None and (value is None or isinstance(value, (int, float)) and value >= 3600):
                self.emit(age, construct={"kind": "ConnectionSettings", "setting": "CONN_MAX_AGE", "value": value,
                                          "health_checks": checks is not None and _const(checks.value) is True},
                          origin="Django DATABASES CONN_MAX_AGE", framework="django")
            atomic = entries.get("ATOMIC_REQUESTS")
            if atomic is not None and _const(atomic.value) is True:
                self.emit(atomic, construct={"kind": "ConnectionSettings", "setting": "ATOMIC_REQUESTS", "value": True},
                          origin="Django DATABASES ATOMIC_REQUESTS", framework="django")
            password = entries.get("PASSWORD")
            if password is not None and isinstance(_const(password.value), str) and _const(password.value):
                self.emit(password, construct={"kind": "ConnectionSettings", "setting": "password"},
                          origin="Django DATABASES PASSWORD", framework="django")
            options = entries.get("OPTIONS")
            if options is not None and isinstance(options.value, cst.Dict):
                for opt in options.value.elements:
                    if not isinstance(opt, cst.DictElement):
                        continue
                    key = _const(opt.key)
                    if key == "sslmode" and _const(opt.value) in ("disable", "allow", "prefer"):
                        self.emit(opt, construct={"kind": "ConnectionSettings", "setting": "sslmode",
                                                  "value": _const(opt.value)},
                                  origin="Django DATABASES OPTIONS sslmode", framework="django")
                    elif key == "isolation_level":
                        level = self.module.code_for_node(opt.value).upper()
                        for word in ("SERIALIZABLE", "READ_COMMITTED", "READ_UNCOMMITTED"):
                            if word in level:
                                self.emit(opt, sql="SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL "
                                                   + word.replace("_", " "), literal=False,
                                          origin="Django DATABASES OPTIONS isolation_level", framework="django")

    def _django_table(self, model: str) -> str:
        return f"{self.app_label}_{model.lower()}"

    def _django_column(self, field: str) -> str:
        """The column of a field of the model being read: a relation's is ``<field>_id``."""
        model = next((c for c in reversed(self.class_nodes) if c.name.value != "Meta"), None)
        if model is not None and isinstance(model.body, cst.IndentedBlock):
            for stmt in model.body.body:
                if isinstance(stmt, cst.SimpleStatementLine) and isinstance(stmt.body[0], cst.Assign) and \
                        _name(stmt.body[0].targets[0].target) == field and isinstance(stmt.body[0].value, cst.Call) \
                        and _name(stmt.body[0].value.func) in ("ForeignKey", "OneToOneField"):
                    return f"{field}_id"
        return field

    def _abstract_model(self) -> bool:
        """Is the Django model being read abstract (``class Meta: abstract = True``)?"""
        model = next((c for c in reversed(self.class_nodes) if c.name.value != "Meta"), None)
        if model is None or not isinstance(model.body, cst.IndentedBlock):
            return False
        for stmt in model.body.body:
            if isinstance(stmt, cst.ClassDef) and stmt.name.value == "Meta":
                code = self.module.code_for_node(stmt)
                return bool(re.search(r"\babstract\s*=\s*True", code))
        return False

    def _app_has_migrations(self) -> bool:
        import os

        app_dir = os.path.dirname(os.path.abspath(self.path))
        if os.path.basename(app_dir) == "models":
            app_dir = os.path.dirname(app_dir)
        return os.path.isdir(os.path.join(app_dir, "migrations"))

    def _django_model_table(self) -> str | None:
        """The table of the Django model being read (its Meta class skipped): the app's label (its AppConfig
        label, else the app folder) and the model's name."""
        model = next((name for name, _ in reversed(self.classes) if name != "Meta"), None)
        if model is None:
            return None
        from dsql_audit.sources import django_migrations

        import os

        app_dir = os.path.dirname(os.path.abspath(self.path))
        if os.path.basename(app_dir) == "models":  # blog/models/post.py: the app is blog
            app_dir = os.path.dirname(app_dir)
        label = django_migrations.app_label(os.path.join(app_dir, "migrations", "x.py")) or \
            os.path.basename(app_dir) or "app"
        return f"{label}_{model.lower()}".lower()
