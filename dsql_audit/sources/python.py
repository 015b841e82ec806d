"""Python source (libcst): the SQL a program sends, and what its ORM and migrations make the database run.

Found, with exact positions:
- SQL strings passed to execute/executemany/executescript/mogrify/copy (psycopg 2 and 3), asyncpg's
  execute/fetch*, SQLAlchemy text()/exec_driver_sql, Django raw()/RawSQL/RunSQL, Alembic op.execute —
  literals, implicit and ``+`` concatenation, f-strings and str.format (run-time parts become placeholders of
  the same length, and the statement is marked partly dynamic), names bound to such strings;
- SQLAlchemy: ForeignKey / ForeignKeyConstraint / relationship(passive_deletes=True), Enum, Index and
  index=True, with_for_update(), isolation_level=, create_engine's pool_recycle;
- Django: ForeignKey / OneToOneField / ManyToManyField, select_for_update(), unfiltered update()/delete(),
  bulk writes in transaction.atomic, DATABASES settings; migrations' operations as the SQL Django emits
  (sources/django_migrations, with the app's earlier migrations as state), one transaction per migration
  unless ``atomic = False``, deferred statements at its end, RunPython code's ORM writes and savepoints;
- Alembic: the operations of upgrade() and the functions it calls as the SQL Alembic emits; a migration with
  a down_revision runs in one transaction with the migrations before it and their alembic_version writes
  (unless env.py sets transaction_per_migration), except autocommit blocks; env.py's run_migrations() writes
  alembic_version in the migration's transaction;
- branches for another database (``if dialect.name == "sqlite"``, offline mode) are not read;
- drivers: connection strings with a password or sslmode=disable, conn.notifies()/add_listener,
  set_isolation_level;
- write paths (functions that commit) with no SQLSTATE 40001 handling up their call chain in the module.
A file that cannot matter never reaches libcst: PREFILTER (no word any construct needs) and the ast gate
(python_gate) drop it first, asking the predicates the visitor asks (python_predicates). Each family of
constructs has a module: python_strings (SQL strings), python_sqlalchemy, python_django, python_alembic,
python_locking, python_connections; python_cst holds the helpers on libcst nodes.
"""

from __future__ import annotations

import re

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from dsql_audit.sources.app import Emitted, SourceError
from dsql_audit.sources.python_alembic import _Alembic
from dsql_audit.sources.python_connections import _Connections
from dsql_audit.sources.python_cst import _const, _dotted, _kw, _name, _owner, _positional, call_shape
from dsql_audit.sources.python_django import _Django
from dsql_audit.sources.python_gate import worth_parsing as _worth_parsing
from dsql_audit.sources.python_locking import _Locking
from dsql_audit.sources.python_predicates import (
    CALL_NAMES, DB_LIBRARIES, MIGRATION_FOLDERS, PREFILTER, SQLALCHEMY, adapter_name, atomic_decorator, commits,
    commits_reported, django_migration_file, may_report, migration_folder, transaction_block,
)
from dsql_audit.sources.python_sqlalchemy import _SQLAlchemy
from dsql_audit.sources.python_strings import _Strings

# what tests and benches reach through this module: the gate and libcst's names, besides extract
__all__ = ["extract", "PREFILTER", "_worth_parsing", "cst", "MetadataWrapper", "PositionProvider"]

RETRY_WORDS = re.compile(r"SerializationFailure|40001|TransactionRollbackError|retry|backoff|tenacity|"
                         r"OCC|serialization_failure", re.I)


def extract(path: str, text: str) -> list[Emitted]:
    """Every record in one Python file (empty when it cannot matter). Raises SourceError on a syntax error."""
    if not PREFILTER.search(text) or not _worth_parsing(path, text):
        return []
    return _read(path, text)


def _read(path: str, text: str) -> list[Emitted]:
    """What libcst's reading of the file finds: extract() past its gates (the gates' test compares the two)."""
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        line = exc.raw_line
        try:  # CPython's own parser names the line where the error is, libcst's where it noticed it
            compile(text, path, "exec", flags=0x400, dont_inherit=True)  # ast.PyCF_ONLY_AST
        except SyntaxError as err:
            line = err.lineno or line
        except Exception:  # noqa: BLE001
            pass
        raise SourceError(f"Python syntax error: {exc.message}", line) from None
    except Exception as exc:  # noqa: BLE001 - libcst's native parser can fail in other ways
        raise SourceError(f"Python source could not be parsed: {exc}", None) from None
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    visitor = _Visitor(path, wrapper.module, positions)
    wrapper.module.visit(visitor)
    visitor.finish()
    visitor.expand_helpers()
    # a migration's statements outside its transaction (downgrade(), helpers it alone calls) go last, so that
    # they do not cut the upgrade's transaction in two
    visitor.out.sort(key=lambda e: e.txn is None)
    if visitor.django_file is not None and visitor.django_file.superseded:
        for e in visitor.out:
            e.superseded = True
    return visitor.out


def _with_families(*families):
    """The class with the members of each family's class (python_strings, python_sqlalchemy, …) copied in.
    Copied, not inherited: libcst looks visit_<Node>/leave_<Node> up on the visitor for every node, by names it
    builds (which Python's method cache never holds), so each class in the chain slows every node down."""
    def build(cls):
        for family in families:
            for name, member in vars(family).items():
                if not name.startswith("__"):
                    setattr(cls, name, member)
        return cls
    return build


@_with_families(_Strings, _SQLAlchemy, _Django, _Alembic, _Locking, _Connections)
class _Visitor(cst.CSTVisitor):
    """One pass over the module: SQL strings, ORM constructs, and the facts missing-occ-retry needs. Each family
    of calls (call_<name>, run where python_predicates.may_report says it can report) comes from its module."""

    def __init__(self, path: str, module, positions):
        super().__init__()
        self.path = path
        self.module = module
        self.pos = positions
        self.out: list[Emitted] = []
        self.assigned: list[dict] = [{}]  # name → expression, per scope (module, then functions)
        self.functions: list = []  # stack of _Function
        self.all_functions: dict = {}  # name → _Function (the last definition of that name)
        self.classes: list = []  # stack of (class name, table name or None)
        self.imports: set = set()
        self.imported_from: dict = {}  # name → the module it was imported from
        self.atomic_depth = 0
        self.driver_txn_depth = 0  # psycopg 3 / asyncpg `with conn.transaction()` nesting
        self.db_names: set = set()  # names imported from a database library
        self.enums_created: set = set()  # CREATE TYPE statements an Alembic migration already sent
        self.class_nodes: list = []  # the ClassDef nodes of self.classes
        self.core_tables: list = []  # the SQLAlchemy Table("name", …) calls being read
        self._atomic_fns: set | None = None
        self._keyword_literals: dict | None = None  # (called name, keyword) → literals passed (_call_site_values)
        # Alembic helper functions: what each sends (synthesized statements), and where each is called
        self._helper_start: int | None = None
        self.helper_emits: dict = {}
        self.helper_calls: list = []  # (name, index in out or None inside a helper, line, column, txn, in helper)
        self.autocommit_depth = 0
        self.migration_txn: int | None = None
        folder = MIGRATION_FOLDERS.get(migration_folder(path))
        self.alembic = folder == "alembic"
        self.django_migration = folder == "django"
        self.migration_atomic = True
        self._context_done = False
        self._reach: set | None = None
        self.batch_tables: dict = {}  # `with op.batch_alter_table("t") as batch_op`: batch_op → "t"
        self.app_label = "app"
        self.django_file = None  # django_migrations.MigrationFile of this file
        self.django_deferred: list = []
        self.orm_writes: dict = {}  # module function → [(line, column, ORM write method)]
        self.orm_calls: dict = {}  # module function → module functions it calls
        if self.django_migration:
            self.app_label, self.django_file = django_migration_file(path)

    def visit_Module(self, node):
        # a migration that a squashed one replaces never runs on a fresh database: it is read as any other, and
        # the scan counts its findings instead of reporting them (see extract)
        if self.django_file is not None and self.django_file.superseded:
            self.out.append(Emitted(line=1, column=1, construct={"kind": "SupersededMigration"},
                                    origin="a squashed migration replaces this one", framework="django"))
        return True

    # -- positions ------------------------------------------------------------------------------------
    def where(self, node) -> tuple:
        try:
            p = self.pos[node].start
            return p.line, p.column + 1
        except KeyError:
            return 1, 1

    def emit(self, node, **kw) -> Emitted:
        if kw.get("spans"):  # [(offset, node)] → [(offset, line, column)]
            kw["spans"] = [(offset, *self.where(part)) for offset, part in kw["spans"]]
        line, column = self.where(node)
        if self.migration_txn is not None and "txn" not in kw and self.autocommit_depth == 0:
            kw["txn"] = self.migration_txn
            self._before_first(kw["txn"], line, column)
        e = Emitted(line=line, column=column, **kw)
        if self.alembic and any(fn.name == "downgrade" for fn in self.functions):
            e.down = True  # an Alembic downgrade(): reported, but no part of what a deploy runs
        self.out.append(e)
        return e

    # -- imports, scopes --------------------------------------------------------------------------------
    def visit_Import(self, node):
        for alias in node.names:
            self.imports.add(_dotted(alias.name).split(".")[0])
            self._adapter(_dotted(alias.name), node)

    def visit_ImportFrom(self, node):
        if node.module is not None:
            self.imports.add(_dotted(node.module).split(".")[0])
            self._adapter(_dotted(node.module), node)
            if not isinstance(node.names, cst.ImportStar):  # where each imported name comes from (models' app)
                for alias in node.names:
                    self.imported_from[_dotted(alias.asname.name if alias.asname else alias.name)] = \
                        _dotted(node.module)
            if _dotted(node.module).split(".")[0] in DB_LIBRARIES and not isinstance(node.names, cst.ImportStar):
                for alias in node.names:  # `from psycopg import connect`: a bare connect() is the driver's
                    self.db_names.add(_dotted(alias.asname.name if alias.asname else alias.name))

    def _adapter(self, module: str, node):
        name = adapter_name(module)
        if name:
            self.emit(node, construct={"kind": "Adapter", "name": name}, origin=f"import of {module.split('.')[0]}")

    def visit_ClassDef(self, node):
        table = None
        for stmt in node.body.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.Assign) and any(
                            _name(t.target) == "__tablename__" for t in small.targets):
                        value = _const(small.value)
                        table = value if isinstance(value, str) else None
                    if isinstance(small, cst.Assign) and any(_name(t.target) == "atomic" for t in small.targets) \
                            and _const(small.value) is False and node.name.value == "Migration":
                        self.migration_atomic = False
        bases = {_name(b.value) for b in node.bases}
        if node.name.value == "Migration" and "Migration" in bases and self.django_migration:
            self.migration_txn = None if not self.migration_atomic else 1
        self.classes.append((node.name.value, table))
        self.class_nodes.append(node)

    def leave_ClassDef(self, node):
        self.classes.pop()
        self.class_nodes.pop()
        if node.name.value == "Migration":
            deferred, self.django_deferred = self.django_deferred, []
            for stmt in deferred:
                self._django_emit(stmt)
            if self.django_migration and self.migration_txn is not None and not deferred and any(
                    e.txn == self.migration_txn and e.sql for e in self.out):
                # with no deferred SQL, Django records the migration inside its transaction (executor.apply_migration)
                self.emit(node.name, sql="INSERT INTO django_migrations (app, name, applied) VALUES ('a', 'n', now())",
                          literal=False, framework="django",
                          origin="Django records the migration in django_migrations inside the migration's transaction")
            self.migration_txn = None

    def visit_FunctionDef(self, node):
        fn = _Function(node.name.value, node)
        for dec in node.decorators:
            text = self.module.code_for_node(dec.decorator)
            if RETRY_WORDS.search(text):
                fn.protected = True
            if atomic_decorator(text):
                fn.commits = fn.commits or "transaction.atomic"
                fn.atomic = True
        self.functions.append(fn)
        if self.alembic and len(self.functions) == 1 and not self.classes and \
                fn.name not in ("upgrade", "downgrade"):
            self._helper_start = len(self.out)  # a helper: what it sends is sent where it is called
        self.all_functions[fn.name] = fn
        self.assigned.append({})
        if self.alembic and len(self.functions) == 1 and not self.classes and fn.name in self._upgrade_reach():
            self.migration_txn = 1
        if fn.atomic:
            self.atomic_depth += 1
        if _FOREIGN_FUNCTION.search(fn.name):
            return False  # _create_db_from_orm_mysql, upgrade_sqlite: code for another database
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
        for n, stmt in enumerate(body):
            # `if dialect == "postgresql": return` — nothing after it runs on PostgreSQL
            if isinstance(stmt, cst.If) and stmt.orelse is None and _foreign_branch(stmt.test) == "orelse" and \
                    _terminal(stmt.body):
                for kept in body[:n]:
                    kept.visit(self)
                return False
        return True

    def leave_FunctionDef(self, node):
        fn = self.functions.pop()
        self.assigned.pop()
        if self.alembic and not self.functions and not self.classes and fn.name not in ("upgrade", "downgrade") \
                and self._helper_start is not None:
            start, self._helper_start = self._helper_start, None
            # a batch operation a helper adds runs when the caller's `with op.batch_alter_table()` block ends:
            # there, not in the helper (an op.X() call in a helper runs in the helper, and stays)
            moved = [e for e in self.out[start:] if not e.literal and not e.context and
                     (e.origin or "").startswith("Alembic batch_op.")]
            if moved:
                self.helper_emits[fn.name] = moved
                self.out[start:] = [e for e in self.out[start:] if not any(e is m for m in moved)]
        if self.alembic and not self.functions and not self.classes:
            self.migration_txn = None
        if fn.atomic:
            self.atomic_depth -= 1

    def visit_Assign(self, node):
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                self.assigned[-1][target.target.value] = node.value
        self._settings_dict(node)
        value = _const(node.value)
        if isinstance(value, str):  # DATABASE_URL = "postgresql://user:pw@…"
            self._connection_string(node.value, value)

    def visit_AnnAssign(self, node):
        if isinstance(node.target, cst.Name) and node.value is not None:
            self.assigned[-1][node.target.value] = node.value

    def visit_If(self, node):
        """A branch for another database (``if dialect.name == "sqlite":``, ``connection.vendor != "postgresql"``,
        Alembic's offline mode) sends nothing to PostgreSQL: only the other branch is read."""
        foreign = _foreign_branch(node.test)
        if foreign is None:
            return True
        keep = node.orelse if foreign == "body" else node.body
        if keep is not None:
            keep.visit(self)
        return False

    def visit_Try(self, node):
        for handler in node.handlers:
            text = self.module.code_for_node(handler)
            if RETRY_WORDS.search(text) or "pgcode" in text or "sqlstate" in text.lower():
                if self.functions:
                    self.functions[-1].protected = True

    def visit_With(self, node):
        for item in node.items:
            code = self.module.code_for_node(item.item)
            block = transaction_block(code)
            if block == "atomic":
                if self._in_atomic() and not re.search(r"savepoint\s*=\s*False", code) and not self.django_migration:
                    self._savepoint(item.item, "a transaction.atomic() block inside another opens a SAVEPOINT")
                self.atomic_depth += 1
                self._commits("transaction.atomic")
            elif block == "driver":
                self._commits(code.split("(")[0] + "()")
                if re.search(r"\.transaction\(", code) and self.imports & {"psycopg", "asyncpg"}:
                    if self.driver_txn_depth > 0:
                        self._savepoint(item.item, "a driver transaction() block inside another opens a SAVEPOINT")
                    self.driver_txn_depth += 1
            if "autocommit_block" in code:
                self.autocommit_depth += 1
            call = item.item
            if isinstance(call, cst.Call) and _name(call.func) == "batch_alter_table" and \
                    item.asname is not None and isinstance(item.asname.name, cst.Name):
                table = _const(_positional(call, 0) or _kw(call, "table_name"))
                self.batch_tables[item.asname.name.value] = table if isinstance(table, str) else "unknown_table"

    def leave_With(self, node):
        for item in node.items:
            code = self.module.code_for_node(item.item)
            block = transaction_block(code)
            if block == "atomic":
                self.atomic_depth -= 1
            elif block == "driver" and re.search(r"\.transaction\(", code) and self.imports & {"psycopg", "asyncpg"}:
                self.driver_txn_depth -= 1
            if "autocommit_block" in code:
                self.autocommit_depth -= 1

    def _savepoint(self, node, why: str):
        self.emit(node, sql="SAVEPOINT orm_savepoint", literal=False, origin=why)

    def _commits(self, how: str):
        if self.functions and not self.functions[-1].commits:
            self.functions[-1].commits = how

    # -- calls ----------------------------------------------------------------------------------------------
    def visit_Call(self, node):
        name = _name(node.func)
        if name is None:
            return
        if self.functions:
            self.functions[-1].calls.add(name)
        owner = _owner(node.func)
        call = call_shape(node, name, owner) if name in CALL_NAMES else None
        if call is not None:
            self._sql_call(node, call)
            if commits(call):
                self._commits(f"{owner}.commit()")
        self._note_orm_write(node, name)
        self._note_helper_call(node, name)
        self._atomic_function_call(node, name, owner)
        if name == "Table" and self.imports & SQLALCHEMY:  # Table("name", metadata, Column…, Index…)
            table = _const(_positional(node, 0))
            self.core_tables.append(table if isinstance(table, str) else None)
        if call is not None and may_report(call, self):
            getattr(self, "call_" + name)(node, owner)

    def leave_Call(self, node):
        if _name(node.func) == "Table" and self.imports & SQLALCHEMY and self.core_tables:
            self.core_tables.pop()
        self._connection_strings(node)

    # -- where am I -------------------------------------------------------------------------------------------------
    def _table(self) -> str | None:
        return self.classes[-1][1] if self.classes else None

    def _column_object(self) -> str | None:
        """table.column of the assignment being visited (``author_id = Column(ForeignKey(...))``)."""
        name = getattr(self, "_target", None)
        owner = self._table() or (self.classes[-1][0] if self.classes else None)
        if owner and name:
            return f"{owner}.{name}"
        return owner or name

    def visit_SimpleStatementLine(self, node):
        self._target = None
        for small in node.body:
            if isinstance(small, cst.Assign) and len(small.targets) == 1:
                self._target = _name(small.targets[0].target)
            elif isinstance(small, cst.AnnAssign):
                self._target = _name(small.target)

    # -- missing-occ-retry ------------------------------------------------------------------------------------------
    def finish(self):
        """Functions that commit, with no 40001 handling in them or in any caller up the chain in this module."""
        callers: dict = {}
        for fn in self.all_functions.values():
            for called in fn.calls:
                callers.setdefault(called, set()).add(fn.name)

        def covered(name: str, seen: set) -> bool:
            fn = self.all_functions.get(name)
            if fn is not None and fn.protected:
                return True
            for caller in callers.get(name, ()):
                if caller not in seen and covered(caller, seen | {caller}):
                    return True
            return False

        if not commits_reported(self):
            return  # a commit() here is not a PostgreSQL transaction's (git, sqlite, a message queue …)
        for fn in self.all_functions.values():
            if fn.commits and not covered(fn.name, {fn.name}):
                line, column = self.where(fn.node.name)
                self.out.append(Emitted(line=line, column=column,
                                        construct={"kind": "MissingOccRetry", "function": fn.name,
                                                   "commits": fn.commits},
                                        origin=f"{fn.name}() commits through {fn.commits}"))


class _Function:
    __slots__ = ("name", "node", "commits", "protected", "calls", "writes", "atomic")

    def __init__(self, name: str, node):
        self.name, self.node = name, node
        self.commits: str | None = None
        self.protected = False
        self.calls: set = set()
        self.writes = False
        self.atomic = False


_PG_DIALECTS = {"postgresql", "postgres", "psycopg", "psycopg2", "asyncpg", "pg8000", "postgis"}

_DIALECT_WORDS = re.compile(r"dialect|vendor|engine\.name|bind\.name|driver|backend|db_type|database_type", re.I)


def _foreign_branch(test) -> str | None:
    """Which branch of an if is for another database: "body", "orelse", or None (both may run here)."""
    negate = False
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        test, negate = test.expression, True
    flip = {"body": "orelse", "orelse": "body"}
    if isinstance(test, cst.Call) and _name(test.func) == "is_offline_mode":
        return flip["body"] if negate else "body"  # offline mode writes a script: nothing reaches a database
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return None
    left, target = test.left, test.comparisons[0]
    op = target.operator
    try:
        code = cst.Module([]).code_for_node(left)
    except Exception:  # noqa: BLE001
        return None
    if not _DIALECT_WORDS.search(code):
        return None
    right = target.comparator
    if isinstance(right, (cst.Tuple, cst.List, cst.Set)):
        values = [_const(e.value) for e in right.elements]
    else:
        values = [_const(right)]
    if not values or not all(isinstance(v, str) for v in values):
        return None
    pg = any(v.lower() in _PG_DIALECTS for v in values)
    if isinstance(op, (cst.Equal, cst.In)):
        side = "orelse" if pg else "body"
    elif isinstance(op, (cst.NotEqual, cst.NotIn)):
        side = "body" if pg else "orelse"
    else:
        return None
    return flip[side] if negate else side


_FOREIGN_FUNCTION = re.compile(r"(?:^|_)(mysql|mariadb|sqlite|mssql|oracle)(?:_|$)", re.I)


def _terminal(block) -> bool:
    """A branch that ends the function: its last statement returns or raises."""
    lines = block.body if isinstance(block, cst.IndentedBlock) else ()
    if not lines:
        return False
    last = lines[-1]
    return isinstance(last, cst.SimpleStatementLine) and isinstance(last.body[-1], (cst.Return, cst.Raise))
