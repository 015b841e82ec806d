"""What sources/python's two readers ask alike: one predicate per construct, over a neutral description.

The ast gate (python_gate) and the libcst visitor (python) each describe a call the same way — a CallShape: the
callee's last name, its receiver as a dotted chain, its keywords, how many arguments — from their own node type,
and ask the same predicate whether the call can be reported. A predicate also reads the file's facts (FileFacts):
the visitor passes itself (the imports it has read so far), the gate a summary of the whole file (every import
at once). Every predicate only grows with the imports, so what the visitor can report, the gate lets through
(tests/test_python_predicates checks it on real code). The visitor's handlers then decide the finer points.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Callable, Container, NamedTuple, Protocol

# a file holding none of these words has nothing to report: each construct the visitor reports needs one of them
# written in the file (a call's name, a database library's import, a connection string's marker)
PREFILTER = re.compile(
    r"execute|mogrify|\.copy\(|copy_expert|\.fetch|text\(|exec_driver_sql|RawSQL|\.raw\(|RunSQL|"  # SQL strings
    r"sqlalchemy|sqlmodel|django|alembic|psycopg|asyncpg|pg8000|databases|peewee|tortoise|piccolo|aurora_dsql|"
    r"select_for_update|with_for_update|isolation_level|pool_recycle|CONN_MAX_AGE|create_engine|\bop\.|batch_op|"
    r"postgres|password\s*=|sslmode=|\.commit\(|atomic|notifies|add_listener")

SQL_METHODS = {"execute", "executemany", "executescript", "mogrify", "copy", "copy_expert", "fetch", "fetchrow",
               "fetchval", "exec_driver_sql", "raw"}
SQL_FUNCTIONS = {"text", "RawSQL", "RunSQL"}
# calls that open database connections: their password=/sslmode= keywords are the database's
DRIVER_CALLS = {"connect", "create_engine", "create_async_engine", "create_pool", "ConnectionPool",
                "AsyncConnectionPool", "Connection", "SimpleConnectionPool", "ThreadedConnectionPool"}
# a module that commits PostgreSQL transactions imports one of these
DB_LIBRARIES = {"psycopg", "psycopg2", "psycopg_pool", "asyncpg", "sqlalchemy", "sqlmodel", "django", "pg8000",
                "flask_sqlalchemy",
                "databases", "peewee", "tortoise", "piccolo", "aurora_dsql_psycopg", "aurora_dsql_psycopg2"}
SQLALCHEMY = {"sqlalchemy", "sqlmodel", "alembic"}  # SQLAlchemy's schema objects (Alembic migrations use them)
SQLALCHEMY_ORM = {"sqlalchemy", "sqlmodel", "flask_sqlalchemy"}  # sessions, queries, metadata
# QuerySet methods that keep every row: a delete()/update() after only these writes the whole table
ALL_ROWS = {"all", "order_by", "select_related", "prefetch_related", "using", "only", "defer", "annotate"}
MIGRATION_FOLDERS = {"versions": "alembic", "migrations": "django"}

PASSWORD_URL = re.compile(r"\bpostgres(?:ql)?(?:\+\w+)?://[^:/@\s{}$]+:([^@\s{}$]+)@")
# a libpq keyword/value string ("host=… dbname=… password=…") with a password written in it
_KEYWORD_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*(?!['\"]?\s*$)[^\s{}$%]+")
_LOOKS_DSN = re.compile(r"postgres(?:ql)?(?:\+\w+)?://|\b(?:host|dbname)\s*=\s*\S")
_WEAK_SSLMODE = re.compile(r"sslmode=(disable|allow|prefer)\b")


class CallShape(NamedTuple):
    """A call as both readers see it."""
    name: str  # the callee's last name: sa.ForeignKey(…) → "ForeignKey"
    owner: str  # the receiver as a dotted chain ("op", "Model.objects.all()"); "" for a bare name
    keywords: frozenset  # the keyword arguments' names (**kwargs names none)
    positional: int  # positional arguments, *args not counted
    arguments: int  # every argument: positional, keyword, *args, **kwargs


class FileFacts(Protocol):
    """What a predicate reads of the file (the visitor's own attributes; the gate's summary of the file)."""
    imports: set  # the first name of each module imported (``from .x import y`` counts x, as libcst reads it)
    db_names: set  # names imported from a database library (``from psycopg import connect``)
    alembic: bool  # in a versions/ folder
    django_migration: bool  # in a migrations/ folder
    batch_tables: Container  # the names ``with op.batch_alter_table(…) as NAME`` binds
    atomic_depth: int  # > 0 where a transaction.atomic block may be open


def dotted(node, step: Callable) -> str:
    """A receiver as a dotted chain, the same text from either reader's nodes: ``a.b`` → "a.b", a call → its
    callee and "()" (``Model.objects.all()``), anything else "?". step(node) says what a node is: a name's
    identifier, (".", value, attr) for an attribute, ("()", callee, None) for a call, None for anything else."""
    part = step(node)
    if part is None or isinstance(part, str):
        return part or "?"
    kind, inner, attr = part
    return f"{dotted(inner, step)}.{attr}" if kind == "." else dotted(inner, step) + "()"


def migration_folder(path: str) -> str:
    """The name of the folder the file is in ("versions" and "migrations" are migration frameworks')."""
    return PurePosixPath(path.replace("\\", "/")).parent.name


def django_migration_file(path: str) -> tuple:
    """(app label, MigrationFile or None) of a file in a migrations/ folder: the label is the app's AppConfig
    label, else the folder above migrations/; the MigrationFile, what sources/django_migrations reads of it
    (the app's migrations read together)."""
    from dsql_audit.sources import django_migrations

    parts = PurePosixPath(path.replace("\\", "/")).parts
    label = django_migrations.app_label(path) or (parts[-3] if len(parts) >= 3 and parts[-2] == "migrations"
                                                  else "app")
    return label, django_migrations.file_statements(path, label)


def superseded_migration(path: str) -> bool:
    """A Django migration a squashed one replaces: reported (as superseded) whatever it holds."""
    found = django_migration_file(path)[1]
    return found is not None and found.superseded


# --- SQL strings -----------------------------------------------------------------------------------------

def sql_argument_at(call: CallShape) -> int | str | None:
    """Where a call that sends SQL takes it: 0 (the first positional argument) or a keyword's name; None for a
    call that sends none. Driver methods (cursor.execute, conn.fetch, session.exec_driver_sql) are methods;
    text(), RawSQL() and RunSQL() functions, however imported."""
    if call.name in SQL_METHODS and call.owner:
        keys = ("query", "sql", "statement")
    elif call.name in SQL_FUNCTIONS:
        keys = ("sql",)
    else:
        return None
    if call.positional:
        return 0
    return next((k for k in keys if k in call.keywords), None)


def core_dml(call: CallShape, f: FileFacts) -> bool:
    """``conn.execute(table.insert()…)`` in a migration: a SQLAlchemy Core statement run in its transaction."""
    return call.name == "execute" and (f.alembic or f.django_migration) and sql_argument_at(call) is not None


# --- transactions: what missing-occ-retry and the SAVEPOINT checks read ----------------------------------------

def commits(call: CallShape) -> bool:
    """``conn.commit()``: a transaction ends here (a form's commit(1) or a git commit(message) is not one)."""
    return call.name == "commit" and not call.arguments


def commits_reported(f: FileFacts) -> bool:
    """A commit is a PostgreSQL transaction's only in a module that imports a database library."""
    return bool(f.imports & DB_LIBRARIES)


def transaction_block(code: str) -> str | None:
    """What a ``with`` item opens, from its code: "atomic" (Django's transaction.atomic, a nested one a
    SAVEPOINT), "driver" (a driver's or SQLAlchemy's begin()/transaction()), or None."""
    if re.search(r"\batomic\b", code):
        return "atomic"
    if re.search(r"\.(begin|transaction)\(", code):
        return "driver"
    return None


def transaction_block_reported(block: str | None, f: FileFacts) -> bool:
    """An atomic block can open a SAVEPOINT in any file (nested, or in a view under ATOMIC_REQUESTS); a
    driver's transaction block is a commit (and, nested, a SAVEPOINT) of a database library."""
    return block == "atomic" or block == "driver" and commits_reported(f)


def atomic_decorator(code: str) -> bool:
    """``@transaction.atomic`` (or any decorator naming atomic): the function runs in one transaction."""
    return "atomic" in code


# --- connections -------------------------------------------------------------------------------------------------

def adapter_name(module: str) -> str | None:
    """The Aurora DSQL adapter an import names (``aurora_dsql_psycopg`` → aurora-dsql-psycopg), or None."""
    first = module.split(".")[0]
    return first.replace("_", "-") if first.startswith("aurora_dsql_") else None


def connection_string_settings(value: str) -> list[tuple[str, str | None]]:
    """The settings a connection string gets wrong: ("password", None) when it holds a password, ("sslmode",
    mode) when it turns TLS verification off."""
    if not _LOOKS_DSN.search(value):
        return []
    found: list = []
    if PASSWORD_URL.search(value) or _KEYWORD_PASSWORD.search(value):
        found.append(("password", None))
    m = _WEAK_SSLMODE.search(value)
    if m and ("postgres" in value or "host=" in value):
        found.append(("sslmode", m.group(1)))
    return found


def driver_call(call: CallShape, f: FileFacts) -> bool:
    """A call that opens a database connection: password=/sslmode= of an FTP, SMTP, HTTP or message-broker
    connection (``ftplib.FTP(…).connect``, ``pika.ConnectionParameters``) or a login form are not the
    database's. A generic name (connect, Connection) counts when it comes from a database library."""
    if call.name not in DRIVER_CALLS:
        return False
    if not call.owner:
        return call.name in f.db_names or call.name in ("create_engine", "create_async_engine")
    root = call.owner.split(".")[0]
    return root in DB_LIBRARIES or root in f.db_names or root in ("sqlalchemy", "sa") or \
        root.startswith("aurora_dsql")


def driver_settings_reported(call: CallShape, f: FileFacts) -> bool:
    """password=/sslmode= passed to a database connection."""
    return bool(call.keywords & {"sslmode", "password"}) and driver_call(call, f)


def databases_setting(targets: list, value_is_dict: bool) -> bool:
    """Django's ``DATABASES = {…}`` (also ``settings.DATABASES = {…}``)."""
    return value_is_dict and "DATABASES" in targets


# --- receivers ---------------------------------------------------------------------------------------------------

def all_rows(chain: str) -> bool:
    """A Django manager chain that selects every row (``Model.objects.all()``): a custom QuerySet method may
    well filter, so only the known row-keeping ones may follow the manager."""
    if ".objects" not in chain and not chain.endswith("objects"):
        return False
    return all(c in ALL_ROWS for c in re.findall(r"\.(\w+)\(", chain))


def queryset(chain: str) -> bool:
    """A receiver that is a Django QuerySet (a manager, or a chain of QuerySet methods)."""
    return ".objects" in chain or chain.endswith("objects") or bool(
        re.search(r"\.(filter|exclude|all|order_by|values|values_list|only)\(", chain))


def alembic_target(owner: str, f: FileFacts) -> bool:
    """Alembic's op, or a batch (``with op.batch_alter_table(…) as batch_op``; in a migration, a helper's
    parameter named batch_op)."""
    return owner == "op" or owner in f.batch_tables or f.alembic and owner.endswith("batch_op")


def metadata_owner(owner: str) -> bool:
    """``metadata.create_all()`` / Flask-SQLAlchemy's ``db.create_all()``; not a class's metadata attribute
    (set by a subclass: which models it holds is not known here)."""
    if owner.startswith(("self.", "cls.")) and owner.endswith("metadata"):
        return False
    return owner.endswith("metadata") or owner in ("db", "self.db", "database")


def enum_receiver(owner: str) -> bool:
    """``sa.Enum(…).create(bind)`` or ``name.create(bind)`` (a name the visitor follows to an Enum)."""
    return owner.endswith(("Enum()", "ENUM()")) or owner.isidentifier()


# --- the calls the visitor has a handler for (call_<name>): when each can report --------------------------------

def _django(c, f) -> bool:
    return "django" in f.imports and not f.django_migration  # a migration's operations report its models


def _sqlalchemy(c, f) -> bool:
    return bool(f.imports & SQLALCHEMY)


def _sqlalchemy_orm(c, f) -> bool:
    return bool(f.imports & SQLALCHEMY_ORM)


def _always(c, f) -> bool:
    return True


def _alembic_op(c, f) -> bool:
    return c.owner == "op"


def _alembic_table_op(c, f) -> bool:
    return alembic_target(c.owner, f)


def _django_operation(c, f) -> bool:
    return f.django_migration


def _isolation_level(c, f) -> bool:
    return "isolation_level" in c.keywords


def _bulk_write(c, f) -> bool:
    return "django" in f.imports and f.atomic_depth > 0  # reported only inside transaction.atomic


def _write_all_rows(c, f) -> bool:
    """A Django manager's delete()/update() of every row; in an Alembic migration, a Query's (its code is read)."""
    return bool(c.owner) and ("django" in f.imports and all_rows(c.owner) or f.alembic)


REPORTABLE: dict[str, Callable[[CallShape, FileFacts], bool]] = {
    # SQLAlchemy and Django models
    "ForeignKey": lambda c, f: "django" in f.imports or _sqlalchemy(c, f),
    "ForeignKeyConstraint": _sqlalchemy,
    "relationship": lambda c, f: "passive_deletes" in c.keywords and _sqlalchemy(c, f),
    "OneToOneField": _django,
    "ManyToManyField": _django,
    "Enum": lambda c, f: "sqlalchemy" in f.imports and not f.alembic,
    "Index": lambda c, f: not f.django_migration and ("django" in f.imports or "sqlalchemy" in f.imports),
    "Column": lambda c, f: "index" in c.keywords and "sqlalchemy" in f.imports and not f.alembic,
    "mapped_column": lambda c, f: "index" in c.keywords and "sqlalchemy" in f.imports and not f.alembic,
    "create": lambda c, f: bool(c.owner) and enum_receiver(c.owner) and bool(f.imports & {"sqlalchemy", "alembic"}),
    "create_all": lambda c, f: metadata_owner(c.owner) and _sqlalchemy_orm(c, f),
    # locking, cursors, savepoints
    "with_for_update": _always,
    "select_for_update": _always,
    "yield_per": _sqlalchemy_orm,
    "begin_nested": _sqlalchemy_orm,
    "iterator": lambda c, f: "django" in f.imports and bool(c.owner) and queryset(c.owner),
    "get_or_create": _django,
    "update_or_create": _django,
    # Django writes and commands
    "delete": _write_all_rows,
    "update": _write_all_rows,
    "bulk_create": _bulk_write,
    "bulk_update": _bulk_write,
    "call_command": lambda c, f: "django" in f.imports and "run_syncdb" in c.keywords,
    # connections
    "create_engine": _always,  # any URL not known to be another database's
    "ConnectionPool": lambda c, f: "psycopg_pool" in f.imports,
    "AsyncConnectionPool": lambda c, f: "psycopg_pool" in f.imports,
    "create_pool": lambda c, f: c.owner == "asyncpg" or c.owner == "" and "asyncpg" in f.imports,
    "execution_options": _isolation_level,
    "sessionmaker": _isolation_level,
    "connect": _isolation_level,
    "set_isolation_level": lambda c, f: c.positional > 0,
    "notifies": _always,
    "add_listener": _always,
    # Alembic
    "run_migrations": lambda c, f: c.owner == "context" and "alembic" in f.imports,
    "stamp": lambda c, f: "alembic" in f.imports and c.owner.endswith(("context", "command")),
    "create_table": _alembic_op,
    "rename_table": _alembic_op,
    "bulk_insert": _alembic_op,
    "drop_table": _alembic_op,
    **dict.fromkeys(("create_foreign_key", "drop_constraint", "create_unique_constraint", "create_primary_key",
                     "create_check_constraint", "create_index", "add_column", "alter_column", "drop_column",
                     "drop_index"), _alembic_table_op),
    # Django migrations: their SQL comes from sources/django_migrations
    **dict.fromkeys(("CreateModel", "AddField", "AlterField", "AddIndex", "AddConstraint", "DeleteModel",
                     "RemoveField", "RenameField", "RenameModel", "AlterUniqueTogether", "AlterIndexTogether",
                     "AlterModelTable", "RemoveConstraint", "RemoveIndex", "RunPython"), _django_operation),
}

# every callee name some predicate can say yes to: any other call is looked at no further
CALL_NAMES = frozenset(REPORTABLE) | SQL_METHODS | SQL_FUNCTIONS | DRIVER_CALLS | {"commit"}


def may_report(call: CallShape, f: FileFacts) -> bool:
    """Can the visitor's handler of this call (call_<name>) report anything, in this file?"""
    rule = REPORTABLE.get(call.name)
    return rule is not None and rule(call, f)
