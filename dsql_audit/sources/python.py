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
A file that cannot matter (no database word in it) never reaches libcst.
"""

from __future__ import annotations

import ast
import re
from pathlib import PurePosixPath

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from dsql_audit.sources.app import Emitted, SourceError, looks_like_sql
from dsql_audit.sources.sqlalchemy_models import TYPES as SQLALCHEMY_TYPES

PREFILTER = re.compile(
    r"execute|mogrify|copy_expert|\.fetch|text\(|exec_driver_sql|RawSQL|\.raw\(|RunSQL|sqlalchemy|django|alembic|"
    r"psycopg|asyncpg|select_for_update|with_for_update|isolation_level|pool_recycle|CONN_MAX_AGE|postgres|"
    r"\.commit\(|atomic|notifies|add_listener")

SQL_METHODS = {"execute", "executemany", "executescript", "mogrify", "copy", "copy_expert", "fetch", "fetchrow",
               "fetchval", "exec_driver_sql", "raw"}
SQL_FUNCTIONS = {"text", "RawSQL", "RunSQL"}
FK_CALLS = {"ForeignKey", "ForeignKeyConstraint"}
DJANGO_FK = {"ForeignKey", "OneToOneField", "ManyToManyField", "ForeignObject"}
# QuerySet methods that keep every row: a delete()/update() after only these writes the whole table
_ALL_ROWS = {"all", "order_by", "select_related", "prefetch_related", "using", "only", "defer", "annotate"}
# calls that open database connections: their password=/sslmode= keywords are the database's
DRIVER_CALLS = {"connect", "create_engine", "create_async_engine", "create_pool", "ConnectionPool",
                "AsyncConnectionPool", "Connection", "SimpleConnectionPool", "ThreadedConnectionPool"}
# a module that commits PostgreSQL transactions imports one of these
DB_LIBRARIES = {"psycopg", "psycopg2", "psycopg_pool", "asyncpg", "sqlalchemy", "sqlmodel", "django", "pg8000",
                "flask_sqlalchemy",
                "databases", "peewee", "tortoise", "piccolo", "aurora_dsql_psycopg", "aurora_dsql_psycopg2"}
_SQLALCHEMY = {"sqlalchemy", "sqlmodel", "alembic"}
RETRY_WORDS = re.compile(r"SerializationFailure|40001|TransactionRollbackError|retry|backoff|tenacity|"
                         r"OCC|serialization_failure", re.I)
PASSWORD_URL = re.compile(r"\bpostgres(?:ql)?(?:\+\w+)?://[^:/@\s{}$]+:([^@\s{}$]+)@")
# a libpq keyword/value string ("host=… dbname=… password=…") with a password written in it
_KEYWORD_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*(?!['\"]?\s*$)[^\s{}$%]+")
_LOOKS_DSN = re.compile(r"postgres(?:ql)?(?:\+\w+)?://|\b(?:host|dbname)\s*=\s*\S")

# SQLAlchemy column types → PostgreSQL (what the ORM emits in CREATE TABLE; Django's: sources/django_migrations)
SA_TYPES = SQLALCHEMY_TYPES  # the table lives in sources/sqlalchemy_models


def extract(path: str, text: str) -> list[Emitted]:
    """Every record in one Python file (empty when it cannot matter). Raises SourceError on a syntax error."""
    if not PREFILTER.search(text):
        return []
    if not _worth_parsing(path, text):
        return []
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


# --- the gate: CPython's own parser (about 6x faster than libcst with positions) decides whether anything in
# the file can be reported; most Python files in a repository, even those that import a database library,
# hold nothing to report, and never reach libcst

_GATED_CALLS = {"ForeignKey", "ForeignKeyConstraint", "OneToOneField", "ManyToManyField", "Enum", "Index",
                "with_for_update", "select_for_update", "create_engine", "ConnectionPool", "AsyncConnectionPool",
                "create_pool", "set_isolation_level", "notifies", "add_listener", "bulk_create", "bulk_update",
                "iterator", "yield_per", "begin_nested", "get_or_create", "update_or_create", "call_command"}
_OPTION_CALLS = {"relationship": "passive_deletes", "Column": "index", "mapped_column": "index",
                 "execution_options": "isolation_level", "sessionmaker": "isolation_level",
                 "connect": "isolation_level"}
_MIGRATION_OPS = {"create_table", "create_foreign_key", "create_index", "add_column", "alter_column",
                  "bulk_insert", "drop_table", "drop_index", "execute", "drop_column", "drop_constraint",
                  "create_unique_constraint", "create_primary_key", "create_check_constraint", "rename_table"}


def _worth_parsing(path: str, text: str) -> bool:
    """Does the file hold anything extract() reports? A syntax error is raised as SourceError here."""
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise SourceError(f"Python syntax error: {err.msg}", err.lineno) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SourceError(f"Python source could not be parsed: {exc}", None) from None
    imports: set = set()
    sql_names: set = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imports.add(node.module.split(".")[0])
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and \
                isinstance(node.value.value, str) and looks_like_sql(node.value.value):
            sql_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    if any(name.startswith("aurora_dsql") for name in imports):
        return True
    db = bool(imports & DB_LIBRARIES) or "alembic" in imports
    parent = PurePosixPath(path.replace("\\", "/")).parent.name
    if db and parent in ("migrations", "versions"):
        return True

    def sqlish(arg) -> bool:
        if isinstance(arg, ast.Constant):
            return isinstance(arg.value, (str, bytes)) and looks_like_sql(
                arg.value if isinstance(arg.value, str) else arg.value.decode("utf-8", "replace"))
        if isinstance(arg, ast.JoinedStr):
            head = arg.values[0] if arg.values else None
            return isinstance(head, ast.Constant) and isinstance(head.value, str) and looks_like_sql(head.value)
        if isinstance(arg, ast.BinOp):
            return sqlish(arg.left)
        if isinstance(arg, ast.Name):
            return arg.id in sql_names
        if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr == "format":
            return sqlish(arg.func.value)
        if isinstance(arg, (ast.List, ast.Tuple)):
            return any(sqlish(e) for e in arg.elts)
        return False

    has_atomic = "atomic" in text  # bulk writes are reported only inside transaction.atomic
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name is None:
                continue
            keywords = {k.arg for k in node.keywords if k.arg}  # **kwargs has arg None
            if name in SQL_METHODS or name in SQL_FUNCTIONS:
                first = node.args[0] if node.args else next(
                    (k.value for k in node.keywords if k.arg in ("query", "sql", "statement")), None)
                if first is not None and sqlish(first):
                    return True
            if not db:
                continue
            if name in _GATED_CALLS and (name not in _BULK or has_atomic) or \
                    _OPTION_CALLS.get(name) in keywords or name in DRIVER_CALLS and keywords & {"sslmode", "password"}:
                return True
            if name == "commit" and not node.args:
                return True
            if name in ("delete", "update") and isinstance(func, ast.Attribute) and _unfiltered(func.value):
                return True
            if name in _MIGRATION_OPS and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and func.value.id == "op":
                return True
            if name == "run_migrations" and "alembic" in imports or name in ("create_all", "stamp"):
                return True
        elif db and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                "atomic" in ast.dump(d) for d in node.decorator_list):
            return True
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _LOOKS_DSN.search(node.value):
            return True
        elif db and isinstance(node, (ast.With, ast.AsyncWith)) and any(
                "atomic" in ast.dump(item.context_expr) or ".transaction" in ast.unparse(item.context_expr)
                or ".begin(" in ast.unparse(item.context_expr) for item in node.items):
            return True
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "DATABASES"
                                                           for t in node.targets):
            return True
    return False


_BULK = {"bulk_create", "bulk_update"}
# a write a migration makes whose rows are not known here: a DML in its transaction, never claimed unbounded
_MIGRATION_DML = {"insert": "INSERT INTO migration_rows DEFAULT VALUES",
                  "update": "UPDATE migration_rows SET c = 1 WHERE c = 1",
                  "delete": "DELETE FROM migration_rows WHERE c = 1"}
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


def _unfiltered(receiver) -> bool:
    """Is ``receiver`` a Django manager chain that selects every row (what _Visitor._unbounded reports)?"""
    chain = ast.unparse(receiver)
    if ".objects" not in chain and not chain.endswith("objects"):
        return False
    return all(c in _ALL_ROWS for c in re.findall(r"\.(\w+)\(", chain))


# --- helpers on libcst nodes ---------------------------------------------------------------------

def _name(node) -> str | None:
    """Last name of a Name/Attribute (``sa.ForeignKey`` → ForeignKey)."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def _dotted(node) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    if isinstance(node, cst.Call):
        return _dotted(node.func) + "()"
    return "?"


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


def _placeholder(length: int) -> str:
    """An identifier of exactly ``length`` characters (SQL still parses, columns stay exact)."""
    return ("_dyn" + "_" * max(0, length - 4))[:max(length, 2)] if length >= 2 else "_d"


class _Piece:
    __slots__ = ("text", "line", "column")

    def __init__(self, text: str, line: int, column: int):
        self.text, self.line, self.column = text, line, column


class _Visitor(cst.CSTVisitor):
    """One pass over the module: SQL strings, ORM constructs, and the facts missing-occ-retry needs."""

    def __init__(self, path: str, module, positions):
        super().__init__()
        self.path = path
        self.module = module
        self.pos = positions
        self.out: list[Emitted] = []
        self.parts = PurePosixPath(path.replace("\\", "/")).parts
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
        parent = self.parts[-2] if len(self.parts) >= 2 else ""
        self.alembic = parent == "versions"
        self.django_migration = parent == "migrations"
        self.migration_atomic = True
        self._context_done = False
        self._reach: set | None = None
        self.batch_tables: dict = {}  # `with op.batch_alter_table("t") as batch_op`: batch_op → "t"
        self.app_label = self.parts[-3] if len(self.parts) >= 3 and self.parts[-2] == "migrations" else "app"
        self.django_file = None  # django_migrations.MigrationFile of this file
        self.django_deferred: list = []
        self.orm_writes: dict = {}  # module function → [(line, column, ORM write method)]
        self.orm_calls: dict = {}  # module function → module functions it calls
        if self.django_migration:
            from dsql_audit.sources import django_migrations

            self.app_label = django_migrations.app_label(path) or self.app_label
            self.django_file = django_migrations.file_statements(path, self.app_label)

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
        name = module.split(".")[0]
        if name.startswith("aurora_dsql_"):
            self.emit(node, construct={"kind": "Adapter", "name": name.replace("_", "-")},
                      origin=f"import of {name}")

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
            if "atomic" in text:
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
        if isinstance(value, str) and _LOOKS_DSN.search(value):  # DATABASE_URL = "postgresql://user:pw@…"
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
            if re.search(r"\batomic\b", code):
                if self._in_atomic() and not re.search(r"savepoint\s*=\s*False", code) and not self.django_migration:
                    self._savepoint(item.item, "a transaction.atomic() block inside another opens a SAVEPOINT")
                self.atomic_depth += 1
                self._commits("transaction.atomic")
            elif re.search(r"\.(begin|transaction)\(", code):
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
            if re.search(r"\batomic\b", code):
                self.atomic_depth -= 1
            elif re.search(r"\.transaction\(", code) and self.imports & {"psycopg", "asyncpg"}:
                self.driver_txn_depth -= 1
            if "autocommit_block" in code:
                self.autocommit_depth -= 1

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

    def _savepoint(self, node, why: str):
        self.emit(node, sql="SAVEPOINT orm_savepoint", literal=False, origin=why)

    def call_get_or_create(self, node, owner):
        self._orm_savepoint(node, "get_or_create")

    def call_update_or_create(self, node, owner):
        self._orm_savepoint(node, "update_or_create")

    def _orm_savepoint(self, node, method: str):
        """Django's get_or_create / update_or_create run in transaction.atomic(): a SAVEPOINT when a
        transaction is already open (migrations are handled with their RunPython code)."""
        if "django" in self.imports and not self.django_migration and self._in_atomic():
            self._savepoint(node, f"Django {method}() inside an atomic block opens a SAVEPOINT")

    def call_iterator(self, node, owner):
        """QuerySet.iterator() on PostgreSQL reads through a server-side cursor (DECLARE … CURSOR), unless the
        settings set DISABLE_SERVER_SIDE_CURSORS."""
        if "django" not in self.imports or not isinstance(node.func, cst.Attribute):
            return
        chain = _dotted(node.func.value)
        if not (".objects" in chain or chain.endswith("objects") or re.search(r"\.(filter|exclude|all|order_by|"
                                                                              r"values|values_list|only)\(", chain)):
            return
        if _setting_true(self.path, "DISABLE_SERVER_SIDE_CURSORS"):
            return
        self.emit(node, sql="DECLARE orm_cursor NO SCROLL CURSOR WITHOUT HOLD FOR SELECT 1", literal=False,
                  origin="Django QuerySet.iterator() reads through a server-side cursor", framework="django")

    def call_yield_per(self, node, owner):
        if self.imports & {"sqlalchemy", "sqlmodel", "flask_sqlalchemy"}:
            self.emit(node, sql="DECLARE orm_cursor CURSOR WITHOUT HOLD FOR SELECT 1", literal=False,
                      origin="SQLAlchemy yield_per() streams results through a server-side cursor",
                      framework="sqlalchemy")

    def call_begin_nested(self, node, owner):
        if self.imports & {"sqlalchemy", "sqlmodel", "flask_sqlalchemy"}:
            self._savepoint(node, "SQLAlchemy begin_nested() opens a SAVEPOINT")

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

    def _commits(self, how: str):
        if self.functions and not self.functions[-1].commits:
            self.functions[-1].commits = how

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

    # -- calls ----------------------------------------------------------------------------------------------
    def visit_Call(self, node):
        name = _name(node.func)
        if name is None:
            return
        if self.functions:
            self.functions[-1].calls.add(name)
        owner = _dotted(node.func.value) if isinstance(node.func, cst.Attribute) else ""
        first = _positional(node, 0)
        if name in SQL_METHODS and isinstance(node.func, cst.Attribute):
            arg = first if first is not None else _kw(node, "query") or _kw(node, "sql") or _kw(node, "statement")
            if arg is not None:
                framework = "alembic" if owner == "op" else None
                if not self.sql_argument(arg, f"{owner}.{name}() argument" if owner else f"{name}() argument",
                                         framework=framework) and name == "execute":
                    self._core_dml(node, arg)
        elif name in SQL_FUNCTIONS:
            arg = first if first is not None else _kw(node, "sql")
            if name == "RunSQL" and arg is not None:
                self._run_sql(arg)
            elif arg is not None:
                self.sql_argument(arg, f"{name}() argument", framework="sqlalchemy" if name == "text" else "django")
        if name == "commit" and not node.args:
            self._commits(f"{owner}.commit()")
        if self.django_migration and self.functions:
            top = self.functions[0].name
            if name in _ORM_WRITES and isinstance(node.func, cst.Attribute) and _orm_receiver(node.func.value, name):
                self.orm_writes.setdefault(top, []).append((*self.where(node), name))
            elif isinstance(node.func, cst.Name):
                self.orm_calls.setdefault(top, set()).add(name)
        if self.alembic and isinstance(node.func, cst.Name) and self.functions and not self.classes:
            line, column = self.where(node)
            txn = self.migration_txn if self.autocommit_depth == 0 else None
            self.helper_calls.append((name, len(self.out), line, column, txn,
                                      self.functions[0].name if self._helper_start is not None else None))
        own_class = next((c for c, _ in reversed(self.classes) if c != "Meta"), None)
        callee = name if isinstance(node.func, cst.Name) else \
            f"{own_class}.{name}" if owner in ("self", "cls") and own_class else None
        if "django" in self.imports and not self.django_migration and self.functions and callee and \
                callee in self._atomic_functions() and name != self.functions[-1].name and self._in_atomic():
            # a function of this module that opens an atomic block, called inside one: a SAVEPOINT
            self._savepoint(node, f"{name}() opens a transaction.atomic() block inside the caller's: a SAVEPOINT")
        if name == "call_command" and "django" in self.imports and first is not None and \
                _const(first) == "migrate" and _const(_kw(node, "run_syncdb")) is True:
            self._run_syncdb(node)
        if name == "Table" and self.imports & _SQLALCHEMY:  # Table("name", metadata, Column…, Index…)
            table = _const(first)
            self.core_tables.append(table if isinstance(table, str) else None)
        handler = getattr(self, "call_" + name, None)
        if handler is not None:
            handler(node, owner)

    def leave_Call(self, node):
        if _name(node.func) == "Table" and self.imports & _SQLALCHEMY and self.core_tables:
            self.core_tables.pop()
        self._connection_strings(node)

    def _run_sql(self, arg):
        if isinstance(arg, (cst.List, cst.Tuple)):
            for element in arg.elements:
                value = element.value
                if isinstance(value, (cst.Tuple,)) and value.elements:  # (sql, params)
                    value = value.elements[0].value
                self.sql_argument(value, "RunSQL() argument", framework="django")
        else:
            self.sql_argument(arg, "RunSQL() argument", framework="django")

    # SQLAlchemy and Django foreign keys
    def call_ForeignKey(self, node, owner):
        if "django" in self.imports and (owner in ("models", "") and "sqlalchemy" not in self.imports
                                          or owner == "models"):
            return self._django_fk(node, "ForeignKey")
        if not self.imports & _SQLALCHEMY:
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
        if not self.imports & _SQLALCHEMY:
            return
        refs = _strings(_positional(node, 1) or cst.List([]))
        ondelete = _const(_kw(node, "ondelete"))
        self.emit(node, construct={"kind": "OrmForeignKey", "orm": "SQLAlchemy", "object": self._table() or None,
                                   "target": ", ".join(refs) or None,
                                   "on_delete": ondelete.upper() if isinstance(ondelete, str) else None,
                                   "added_later": False},
                  origin="SQLAlchemy ForeignKeyConstraint", framework="sqlalchemy")

    def call_relationship(self, node, owner):
        if self.imports & _SQLALCHEMY and _const(_kw(node, "passive_deletes")) in (True, "all") and \
                _const(_kw(node, "uselist")) is not False:  # uselist=False: one child row, nothing fans out
            target = _const(_positional(node, 0))
            self.emit(node, construct={"kind": "OrmForeignKey", "orm": "SQLAlchemy", "object": self._column_object(),
                                       "target": target if isinstance(target, str) else None,
                                       "on_delete": "CASCADE", "added_later": False, "passive_deletes": True},
                      origin="SQLAlchemy relationship(passive_deletes=True) relies on the database's ON DELETE",
                      framework="sqlalchemy")

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

    def call_Enum(self, node, owner):
        if "sqlalchemy" not in self.imports or self.alembic:
            return  # in a migration, op.create_table creates the type (add_column and existing_type do not)
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

    def _django_index(self, node):
        if "django" not in self.imports or self.django_migration:
            return
        fields = [self._django_column(f.lstrip("-")) for f in _strings(_kw(node, "fields") or cst.List([]))]
        name = _const(_kw(node, "name"))
        table = self._django_model_table() or "unknown_table"
        self.emit(node, sql=f'CREATE INDEX "{name if isinstance(name, str) else "idx"}" ON "{table}" '
                            f'({", ".join(_q(f.lstrip("-")) for f in fields) or "id"})', literal=False,
                  origin="Django Index (migrate emits CREATE INDEX)", framework="django", restates=True)

    def call_Column(self, node, owner):
        self._indexed_column(node)

    def call_mapped_column(self, node, owner):
        self._indexed_column(node)

    def _indexed_column(self, node):
        if "sqlalchemy" not in self.imports or self.alembic:
            return
        if _const(_kw(node, "index")) is True:
            table = self._table() or "unknown_table"
            column = self._column_object().split(".")[-1] if self._column_object() else "column"
            self.emit(node, sql=f'CREATE INDEX "ix_{table}_{column}" ON "{table}" ({_q(column)})', literal=False,
                      origin="SQLAlchemy Column(index=True) (create_all emits CREATE INDEX)", framework="sqlalchemy",
                      restates=True)

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

    def value(self, node):
        """A literal's value, following a name bound to one in this scope or the module."""
        if isinstance(node, cst.Name):
            for scope in reversed(self.assigned):
                if node.value in scope:
                    return _const(scope[node.value])
        return _const(node) if node is not None else _UNKNOWN

    def call_create_engine(self, node, owner):
        url = self.value(_positional(node, 0))
        if isinstance(url, str) and not url.startswith(("postgres", "auroradsql")):
            return  # sqlite, mysql …
        if isinstance(url, str) and url.startswith("auroradsql"):
            self.emit(node, construct={"kind": "Adapter", "name": "aurora-dsql-sqlalchemy"},
                      origin="create_engine('auroradsql+…')")
        recycle = _const(_kw(node, "pool_recycle"))
        if recycle is None or recycle is _UNKNOWN and _kw(node, "pool_recycle") is None or \
                isinstance(recycle, (int, float)) and (recycle < 0 or recycle >= 3600):
            self.emit(node, construct={"kind": "ConnectionSettings", "setting": "pool_recycle",
                                       "value": None if recycle is _UNKNOWN else recycle},
                      origin="SQLAlchemy create_engine()", framework="sqlalchemy")
        self._isolation(node)

    def call_ConnectionPool(self, node, owner):
        self._pool_lifetime(node, "psycopg_pool")

    def call_AsyncConnectionPool(self, node, owner):
        self._pool_lifetime(node, "psycopg_pool")

    def _pool_lifetime(self, node, library: str):
        """psycopg_pool keeps a connection max_lifetime seconds (3600 by default: DSQL ends it first)."""
        if "psycopg_pool" not in self.imports:
            return
        lifetime = self.value(_kw(node, "max_lifetime"))
        if _kw(node, "max_lifetime") is None or isinstance(lifetime, (int, float)) and lifetime >= 3600:
            self.emit(node, construct={"kind": "ConnectionSettings", "setting": "max_lifetime",
                                       "value": 3600 if _kw(node, "max_lifetime") is None else lifetime},
                      origin=f"{library} {_name(node.func)}()")

    def call_create_pool(self, node, owner):
        if owner == "asyncpg" or "asyncpg" in self.imports and owner == "":
            self.emit(node, construct={"kind": "ConnectionSettings", "setting": "asyncpg_pool", "value": None},
                      origin="asyncpg.create_pool()")

    def call_execution_options(self, node, owner):
        self._isolation(node)

    def call_sessionmaker(self, node, owner):
        self._isolation(node)

    def call_connect(self, node, owner):
        self._isolation(node)

    def _isolation(self, node):
        level = _const(_kw(node, "isolation_level"))
        if isinstance(level, str) and level.upper().replace("_", " ") not in ("REPEATABLE READ", "AUTOCOMMIT"):
            self.emit(node, sql="SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL "
                                + level.upper().replace("_", " "), literal=False,
                      origin=f"isolation_level={level!r}")

    def call_set_isolation_level(self, node, owner):
        arg = _positional(node, 0)
        level = _dotted(arg) if arg is not None else ""
        for word in ("SERIALIZABLE", "READ_COMMITTED", "READ_UNCOMMITTED"):
            if word in level.upper():
                self.emit(node, sql="SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL "
                                    + word.replace("_", " "), literal=False, origin=f"set_isolation_level({level})")

    def call_notifies(self, node, owner):
        self.emit(node, sql="LISTEN channel", literal=False, origin=f"{owner}.notifies() (LISTEN/NOTIFY)")

    def call_add_listener(self, node, owner):
        channel = _const(_positional(node, 0))
        self.emit(node, sql=f'LISTEN "{channel if isinstance(channel, str) else "channel"}"', literal=False,
                  origin=f"{owner}.add_listener() (LISTEN)")

    # Django querysets
    def call_delete(self, node, owner):
        self._unbounded(node, "delete")
        self._migration_orm_write(node, "delete")

    def call_update(self, node, owner):
        self._unbounded(node, "update")
        self._migration_orm_write(node, "update")

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
        SQLAlchemy Core statement is a DML in the migration's transaction."""
        if not (self.alembic or self.django_migration) or self.migration_txn is None or arg is None:
            return False
        code = self.module.code_for_node(arg)
        m = re.search(r"(?:^|[.\s(])(insert|update|delete)\(", code)
        if not m or isinstance(arg, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
            return False
        self._dml(node, m.group(1), f"SQLAlchemy Core {m.group(1)}() in a migration")
        return True

    def _unbounded(self, node, op):
        if "django" not in self.imports or not isinstance(node.func, cst.Attribute):
            return
        chain = _dotted(node.func.value)
        if ".objects" not in chain and not chain.endswith("objects"):
            return
        calls = re.findall(r"\.(\w+)\(", chain)
        if any(c not in _ALL_ROWS for c in calls):  # a custom QuerySet method may well filter
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
        if "django" in self.imports and self.atomic_depth > 0:
            self.emit(node, construct={"kind": "UnboundedWrite", "orm": "Django", "op": op,
                                       "query": _dotted(node.func.value) if isinstance(node.func, cst.Attribute)
                                       else ""},
                      origin=f"Django {op}() inside transaction.atomic", framework="django")

    # Alembic operations
    def call_run_migrations(self, node, owner):
        """env.py's context.run_migrations(): Alembic writes alembic_version after each migration, in the
        transaction that ran the migration's DDL (offline mode writes a script instead: nothing sent)."""
        if owner != "context" or "alembic" not in self.imports or \
                any("offline" in fn.name.lower() for fn in self.functions):
            return
        txn = 1_000_000 + len(self.out)
        self.emit(node, construct={"kind": "TxnContext", "classes": ["ddl"]}, context=True, txn=txn,
                  origin="the migration's own DDL", framework="alembic")
        self.emit(node, sql="INSERT INTO alembic_version (version_num) VALUES ('rev')", literal=False, txn=txn,
                  origin="Alembic's alembic_version write after each migration, in the migration's transaction",
                  framework="alembic")

    def call_create(self, node, owner):
        """``sa.Enum(…).create(bind)`` / ``enum_type.create(bind, checkfirst=True)``: CREATE TYPE, now."""
        if not self.imports & {"sqlalchemy", "alembic"} or not isinstance(node.func, cst.Attribute):
            return
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

    def call_create_all(self, node, owner):
        """metadata.create_all() / Flask-SQLAlchemy db.create_all(): every table of the package's models, with
        their types, sequences and indexes, in one transaction at this call."""
        if not (owner.endswith("metadata") or owner in ("db", "self.db", "database")) or \
                not self.imports & {"sqlalchemy", "sqlmodel", "flask_sqlalchemy"}:
            return
        if owner.startswith(("self.", "cls.")) and owner.endswith("metadata"):
            return  # a class's metadata attribute (set by a subclass): which models it holds is not known here
        from dsql_audit.sources.sqlalchemy_models import create_all_sql, project_tables

        statements = create_all_sql(project_tables(self.path))
        txn = 2_000_000 + len(self.out)
        for sql in statements:
            self.emit(node, sql=sql, literal=False, txn=txn, framework="sqlalchemy",
                      origin=f"{owner}.create_all() creates every table of the models in one transaction")

    def call_stamp(self, node, owner):
        """Alembic's stamp() on a database without alembic_version creates the table and inserts the revision
        in one transaction."""
        if "alembic" not in self.imports or not owner.endswith(("context", "command")):
            return
        txn = 3_000_000 + len(self.out)
        origin = f"Alembic {owner}.stamp() creates alembic_version and writes the revision in one transaction"
        self.emit(node, sql="CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY)",
                  literal=False, txn=txn, framework="alembic", origin=origin)
        self.emit(node, sql="INSERT INTO alembic_version (version_num) VALUES ('rev')", literal=False, txn=txn,
                  framework="alembic", origin=origin)

    def call_create_table(self, node, owner):
        if owner != "op":
            return
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
        if self._alembic_table(owner) is None:
            return
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
        if self._alembic_table(owner) is None:
            return
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
        if self._alembic_table(owner) is not None:
            self._add_constraint(node, owner, "create_unique_constraint")

    def call_create_primary_key(self, node, owner):
        if self._alembic_table(owner) is not None:
            self._add_constraint(node, owner, "create_primary_key")

    def call_create_check_constraint(self, node, owner):
        if self._alembic_table(owner) is not None:
            self._add_constraint(node, owner, "create_check_constraint")

    def call_rename_table(self, node, owner):
        if owner == "op":
            old, new = _const(_positional(node, 0)), _const(_positional(node, 1))
            self.emit(node, sql=f"ALTER TABLE {_q(old if isinstance(old, str) else 't')} RENAME TO "
                                f"{_q(new if isinstance(new, str) else 't2')}", literal=False,
                      origin="Alembic op.rename_table()", framework="alembic")

    def call_create_index(self, node, owner):
        if self._alembic_table(owner) is None:
            return
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
        if self._alembic_table(owner) is None:
            return
        args = self._args(node, owner)
        table = _const(args[0]) if args else None
        column = self._returned_call(args[1]) if len(args) > 1 else None
        if not isinstance(table, str) or not isinstance(column, cst.Call):
            return
        col, _enum = self._sa_column(column, table)  # add_column never creates the enum type
        self.emit(node, sql=f"ALTER TABLE {_q(table)} ADD COLUMN {col}", literal=False,
                  origin=f"Alembic {owner}.add_column()", framework="alembic")

    def call_alter_column(self, node, owner):
        if self._alembic_table(owner) is None:
            return
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
        if owner != "op":
            return
        table = _positional(node, 0)
        self.emit(node, sql=f"INSERT INTO {_q(_name(table) or 'table')} VALUES (1)", literal=False,
                  origin="Alembic op.bulk_insert()", framework="alembic")

    def call_drop_table(self, node, owner):
        if owner == "op":
            table = _const(_positional(node, 0))
            self.emit(node, sql=f"DROP TABLE {_q(table if isinstance(table, str) else 't')}", literal=False,
                      origin="Alembic op.drop_table()", framework="alembic")

    def call_drop_column(self, node, owner):
        if self._alembic_table(owner) is None:
            return
        args = self._args(node, owner)
        table = _const(args[0]) if args else None
        column = _const(args[1]) if len(args) > 1 else None
        if isinstance(table, str) and isinstance(column, str):
            self.emit(node, sql=f"ALTER TABLE {_q(table)} DROP COLUMN {_q(column)}", literal=False,
                      origin=f"Alembic {owner}.drop_column()", framework="alembic")

    def call_drop_index(self, node, owner):
        if self._alembic_table(owner) is not None:
            name = _const(_positional(node, 0))
            self.emit(node, sql=f"DROP INDEX {_q(name if isinstance(name, str) else 'ix')}", literal=False,
                      origin="Alembic op.drop_index()", framework="alembic")

    # Django migration operations: the SQL comes from sources/django_migrations (the app's migrations read
    # together, so an AlterField is compared with the field as it was); deferred statements (foreign keys,
    # indexes) run at the end of the migration, as Django's schema editor runs them
    def _django_operation(self, node, owner):
        if not self.django_migration or self.django_file is None:
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
        if not self.django_migration:
            return
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

    # -- settings and connection strings ---------------------------------------------------------------------
    def _settings_dict(self, node):
        """Django's DATABASES = {"default": {...}}: isolation level, CONN_MAX_AGE, sslmode, a password."""
        if not any(_name(t.target) == "DATABASES" for t in node.targets) or not isinstance(node.value, cst.Dict):
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

    def _driver_call(self, node) -> bool:
        """A call that opens a database connection: password=/sslmode= of an FTP, SMTP, HTTP or message-broker
        connection (``ftplib.FTP(…).connect``, ``pika.ConnectionParameters``) or a login form are not the
        database's. A generic name (connect, Connection) counts when it comes from a database library."""
        name = _name(node.func)
        if name not in DRIVER_CALLS:
            return False
        if isinstance(node.func, cst.Name):
            return name in self.db_names or name in ("create_engine", "create_async_engine")
        root = _dotted(node.func.value).split(".")[0]
        return root in DB_LIBRARIES or root in self.db_names or root in ("sqlalchemy", "sa") or \
            root.startswith("aurora_dsql")

    def _connection_strings(self, node):
        driver_call = self._driver_call(node)  # password=/sslmode= of a login form is not the DB's
        for arg in node.args:
            value = _const(arg.value)
            if isinstance(value, str) and _LOOKS_DSN.search(value):
                self._connection_string(arg.value, value)
            if not driver_call or arg.keyword is None:
                continue
            if arg.keyword.value == "sslmode" and value in ("disable", "allow", "prefer"):
                self.emit(arg, construct={"kind": "ConnectionSettings", "setting": "sslmode", "value": value},
                          origin="sslmode keyword")
            if arg.keyword.value == "password" and isinstance(value, str) and value:
                self.emit(arg, construct={"kind": "ConnectionSettings", "setting": "password"},
                          origin="a password passed to the driver")

    def _connection_string(self, node, value: str):
        if PASSWORD_URL.search(value) or _KEYWORD_PASSWORD.search(value):
            self.emit(node, construct={"kind": "ConnectionSettings", "setting": "password"},
                      origin="a connection string with a password")
        m = re.search(r"sslmode=(disable|allow|prefer)\b", value)
        if m and ("postgres" in value or "host=" in value):
            self.emit(node, construct={"kind": "ConnectionSettings", "setting": "sslmode", "value": m.group(1)},
                      origin="in a connection string")

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

        if not self.imports & DB_LIBRARIES:
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


def _enum_class_name(call) -> str | None:
    """SQLAlchemy's name for ``Enum(SomePythonEnum)`` without name=: the class name in lower case."""
    first = _positional(call, 0)
    if isinstance(first, (cst.Name, cst.Attribute)):
        return _dotted(first).split(".")[-1].lower()
    return None


def _terminal(block) -> bool:
    """A branch that ends the function: its last statement returns or raises."""
    lines = block.body if isinstance(block, cst.IndentedBlock) else ()
    if not lines:
        return False
    last = lines[-1]
    return isinstance(last, cst.SimpleStatementLine) and isinstance(last.body[-1], (cst.Return, cst.Raise))


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


_PY_FORMAT = re.compile(r"%%|%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdrifxXeEgGc]")
_ENV_CACHE: dict = {}


def _atomic_requests(path: str) -> bool:
    """Does a Django settings module near this file set ATOMIC_REQUESTS = True (every view in a transaction)?"""
    return _setting_true(path, "ATOMIC_REQUESTS")


def _setting_true(path: str, name: str) -> bool:
    """Does a Django settings module near this file set ``name`` to True? (read, never imported)"""
    from dsql_audit.sources.django_migrations import settings_value

    return (settings_value(path, name) or "").startswith("True")


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


def _wait_policy(call) -> str:
    """" NOWAIT" / " SKIP LOCKED" as the ORM call's keywords ask (SQLAlchemy and Django name them alike)."""
    if _const(_kw(call, "nowait")) is True:
        return " NOWAIT"
    return " SKIP LOCKED" if _const(_kw(call, "skip_locked")) is True else ""


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


def _q(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _strings_args(call) -> list:
    return [v for v in (_const(a.value) for a in call.args if a.keyword is None) if isinstance(v, str)]
