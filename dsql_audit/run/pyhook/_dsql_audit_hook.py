"""Call-site tagging for ``dsql-audit run``'s Python children (installed by the ``sitecustomize`` beside it).

Every statement a PostgreSQL driver sends gets ``/*dsql_site='…'*/`` (see ``dsql_audit/run/tag.py``)
naming the first stack frame outside the standard library, site-packages/dist-packages, the interpreter's
scripts directory and dsql-audit itself: the line of the application that sent it.

Lazy patching
    ``install()`` puts a finder first on ``sys.meta_path`` (the import system's documented extension point,
    https://docs.python.org/3/reference/import.html#the-meta-path). For the few modules it patches it asks
    the other finders for the module's spec and wraps the spec's loader: the module is created and
    executed by its own loader exactly as before (the real loader is put back into ``__spec__`` and
    ``__loader__`` before the module's code runs), and right after, the patch is applied. Nothing is
    imported eagerly, and a module already imported when the hook is installed is patched at once.

What is patched (each patch on its own, wrapped in try/except; a failed patch leaves that library as it was)
    psycopg 3      Connection/AsyncConnection execute; Cursor/AsyncCursor execute, executemany, stream, copy;
                   ServerCursor/AsyncServerCursor execute; the connection's internal ``_exec_command``
                   (BEGIN, COMMIT, SAVEPOINT of ``conn.transaction()``, server-cursor FETCH/CLOSE). Every
                   cursor subclass (ClientCursor, RawCursor, Django's) goes through these.
    psycopg2       ``psycopg2.connect`` makes the connection class a subclass (per connection_factory) whose
                   cursors are subclasses (per cursor_factory: DictCursor, RealDictCursor, NamedTupleCursor,
                   LoggingCursor, a user's own…) overriding execute, executemany, copy_expert and — where the
                   factory does not override it — callproc (rebuilt as psycopg2's C code builds it).
    asyncpg        Connection execute, executemany, fetch, fetchrow, fetchval, fetchmany, prepare, cursor and
                   the internal _get_statement/_copy_out/_copy_in/_copy_in_records (pools hand out the same
                   Connection objects; the COPY statements of copy_to_table & co. are built inside asyncpg;
                   copy_records_to_table's goes to the compiled protocol directly, so its tag is appended to
                   the statement's last part, the WHERE clause _format_copy_where returns).
    Django         ``Operation.__new__`` remembers where each migration operation was constructed (the line
                   in the migration file's ``operations = [...]``); each Operation subclass's
                   database_forwards/backwards sets that site while it runs; the schema editor's deferred
                   SQL (indexes, FKs, unique constraints run when the migration ends) keeps the site of the
                   operation that queued it. The tag then carries ``m``/``ml`` (migration file and line)
                   and ``f``/``l`` point there too, or — for code the operation runs from an application
                   file, such as a RunPython function — at that code's line.
    Alembic        ``MigrationContext.run_migrations`` marks a migration run; the tag's ``m``/``ml`` are then
                   the frame of the revision file (a module with ``revision``, ``down_revision``,
                   ``upgrade``) on the stack.
SQLAlchemy (core, ORM, asyncio through greenlet) and Django's ORM send through these drivers.

Environment
    DSQL_AUDIT_RUN=1             switches it on (the sitecustomize checks).
    DSQL_AUDIT_RUN_APP_PATHS     os.pathsep-separated directories that are application code even where
                                 they lie under site-packages (an application installed from a registry).
    DSQL_AUDIT_RUN_DEBUG=1       report patches that failed on stderr.

Python 3.8+ syntax: the child may run another interpreter than dsql-audit's.
"""
import contextvars
import functools
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))  # .../dsql_audit/run/pyhook
_PACKAGE = os.path.dirname(os.path.dirname(_HERE))  # .../dsql_audit
_DEBUG = bool(os.environ.get("DSQL_AUDIT_RUN_DEBUG"))


def _debug(what, err):
    if _DEBUG:
        try:
            sys.stderr.write("dsql-audit run hook: %s: %s: %s\n" % (what, type(err).__name__, err))
        except Exception:  # noqa: BLE001
            pass


def _load_tag_module():
    """dsql_audit/run/tag.py, loaded by path (the child need not be able to import dsql_audit)."""
    name = "_dsql_audit_tag"
    module = sys.modules.get(name)
    if module is None:
        import importlib.util

        spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(_HERE), "tag.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    return module


_tag = _load_tag_module()
_make_tag, _add_tag, _is_tagged = _tag.make_tag, _tag.add_tag, _tag.is_tagged
_MARK = _tag.MARK
_MARK_B = _MARK.encode("ascii")

# (file, line, operation class name) of the Django operation being applied
_MIGRATION = contextvars.ContextVar("dsql_audit_migration", default=None)
# True while Alembic's MigrationContext.run_migrations runs
_ALEMBIC = contextvars.ContextVar("dsql_audit_alembic", default=False)
# the _DeferredList a schema editor's __exit__ is running
_DEFERRED_EXIT = contextvars.ContextVar("dsql_audit_deferred_exit", default=None)


# ---------------------------------------------------------------------------------------------------------
# which frames are the application's

def _dir_prefixes(paths):
    out = set()
    for p in paths:
        if not p:
            continue
        for q in (os.path.abspath(p), os.path.realpath(p)):
            out.add(os.path.normcase(q).rstrip(os.sep) + os.sep)
    return tuple(sorted(out))


def _library_prefixes():
    paths = [_PACKAGE, _HERE]
    try:
        import sysconfig

        found = sysconfig.get_paths()
        paths.extend(found.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib", "scripts"))
    except Exception as err:  # noqa: BLE001
        _debug("sysconfig", err)
    try:
        import site

        if hasattr(site, "getsitepackages"):
            paths.extend(site.getsitepackages())
        if hasattr(site, "getusersitepackages"):
            paths.append(site.getusersitepackages())
    except Exception as err:  # noqa: BLE001
        _debug("site", err)
    return _dir_prefixes(paths)


_LIBRARY_DIRS = _library_prefixes()
_APP_DIRS = _dir_prefixes(os.environ.get("DSQL_AUDIT_RUN_APP_PATHS", "").split(os.pathsep))
_PACKAGE_DIRS = tuple(os.sep + d + os.sep for d in ("site-packages", "dist-packages")) + (
    ("/site-packages/", "/dist-packages/") if os.sep != "/" else ())

_LIB = True
_FILES = {}  # code filename -> _LIB, or the file's absolute path when it is the application's


def _classify(filename):
    """_LIB, or the absolute path of an application file; remembered per code filename."""
    result = _LIB
    try:
        if filename and filename[0] != "<":  # <frozen ...>, <string>, <stdin>: never a file of the application
            path = filename if os.path.isabs(filename) else os.path.abspath(filename)
            keys = {os.path.normcase(path), os.path.normcase(os.path.realpath(path))}
            if _APP_DIRS and any(k.startswith(_APP_DIRS) for k in keys):
                result = path
            elif not any(k.startswith(_LIBRARY_DIRS) or any(d in k for d in _PACKAGE_DIRS) for k in keys):
                result = path
    except Exception as err:  # noqa: BLE001
        _debug("classify %r" % (filename,), err)
    _FILES[filename] = result
    return result


_NO_STOP = frozenset()


def _app_frame(f, stop_ids=_NO_STOP):
    """(frame, path) of the first application frame from ``f`` outwards, or (None, None); the walk also ends
    (None, None) at a frame running a code object whose id is in ``stop_ids``. The decision is cached per code
    filename (a str: its hash is cached too, unlike a code object's)."""
    files = _FILES
    while f is not None:
        code = f.f_code
        if id(code) in stop_ids:
            return None, None
        fn = code.co_filename
        path = files.get(fn)
        if path is None:
            path = _classify(fn)
        if path is not _LIB:
            return f, path
        f = f.f_back
    return None, None


def _greenlet_app_frame():
    """SQLAlchemy's asyncio layer runs the driver call in a greenlet whose stack ends at greenlet_spawn:
    the application's frame is on the stack of a parent greenlet."""
    greenlet = sys.modules.get("greenlet")
    if greenlet is None:
        return None, None
    try:
        g = greenlet.getcurrent().parent
        while g is not None:
            f, path = _app_frame(g.gr_frame)
            if f is not None:
                return f, path
            g = g.parent
    except Exception as err:  # noqa: BLE001
        _debug("greenlet", err)
    return None, None


_TAGS = {}


def _tag_for(key, site):
    tag = _TAGS.get(key)
    if tag is None:
        if len(_TAGS) > 100000:
            _TAGS.clear()
        tag = _TAGS[key] = _make_tag(site)
    return tag


_REVISION_FILES = {}


def _is_alembic_revision(f):
    fn = f.f_code.co_filename
    known = _REVISION_FILES.get(fn)
    if known is None:
        g = f.f_globals
        known = _REVISION_FILES[fn] = bool(isinstance(g.get("revision"), str) and "down_revision" in g
                                           and callable(g.get("upgrade")))
    return known


# ids of the code objects of the wrappers that set _MIGRATION (Django operations, deferred SQL); the
# wrapper functions live as long as the process, so do their code objects
_BOUNDARIES = set()


def _site_tag():
    """The tag for the statement being sent from here, or None when no frame is the application's."""
    migration = _MIGRATION.get()
    start = sys._getframe(2)
    if migration is None:
        f, path = _app_frame(start)
        if f is None:
            f, path = _greenlet_app_frame()
            if f is None:
                return None
        code = f.f_code
        line = f.f_lineno
        if _ALEMBIC.get():
            return _alembic_tag(f, path, line, code.co_name)
        key = (path, line, code.co_name)
        tag = _TAGS.get(key)
        return tag if tag is not None else _tag_for(key, {"f": path, "l": line, "fn": code.co_name})
    mfile, mline, mname = migration
    f, path = _app_frame(start, _BOUNDARIES)
    if f is None:  # the operation's own statements: point at the operation in the migration file
        site = {"f": mfile, "l": mline, "fn": mname, "m": mfile, "ml": mline}
    else:  # code the operation runs (a RunPython function, a custom operation): its line
        site = {"f": path, "l": f.f_lineno, "fn": f.f_code.co_name, "m": mfile, "ml": mline}
    return _tag_for((site["f"], site["l"], site["fn"], mfile, mline), site)


def _alembic_tag(f, path, line, name):
    site = {"f": path, "l": line, "fn": name}
    g = f
    while g is not None:
        if _FILES.get(g.f_code.co_filename, _LIB) is not _LIB and _is_alembic_revision(g):
            site["m"] = _FILES[g.f_code.co_filename]
            site["ml"] = g.f_lineno
            break
        g, _ = _app_frame(g.f_back)
    return _tag_for((path, line, name, site.get("m"), site.get("ml")), site)


def tagged(query):
    """``query`` (str or bytes) with the tag of the application line sending it; anything else, an already
    tagged statement, or a statement sent from no application frame: unchanged. Never raises."""
    try:
        if isinstance(query, str):
            if _MARK in query and _is_tagged(query):
                return query
        elif isinstance(query, bytes):
            if _MARK_B in query and _is_tagged(query):
                return query
        else:
            return query
        tag = _site_tag()
        return query if tag is None else _add_tag(query, tag)
    except Exception as err:  # noqa: BLE001
        _debug("tag", err)
        return query


# ---------------------------------------------------------------------------------------------------------
# wrapping helpers

def _convert_first(convert, self, args, kwargs, argname):
    try:
        if args:
            args = (convert(self, args[0]),) + tuple(args[1:])
        elif argname in kwargs:
            kwargs[argname] = convert(self, kwargs[argname])
    except Exception as err:  # noqa: BLE001
        _debug("convert", err)
    return args, kwargs


def _mark_async(wrapper, original):
    """A sync wrapper of a coroutine function (the call site is taken when the coroutine is created, not
    when a task first runs it) still looks like a coroutine function to inspect/asyncio."""
    try:
        import inspect

        if inspect.iscoroutinefunction(original):
            if hasattr(inspect, "markcoroutinefunction"):
                inspect.markcoroutinefunction(wrapper)
            coroutines = sys.modules.get("asyncio.coroutines")
            if coroutines is not None and hasattr(coroutines, "_is_coroutine"):
                wrapper._is_coroutine = coroutines._is_coroutine
    except Exception as err:  # noqa: BLE001
        _debug("mark async", err)


def _wrap_first_arg(cls, name, convert, argname="query", after=None):
    """Replace ``cls.name`` (defined on cls itself) by a wrapper passing its first argument through
    ``convert(self, value)``; ``after(self)`` runs once the call has returned or raised."""
    original = cls.__dict__.get(name) if cls is not None else None
    if original is None or not callable(original) or getattr(original, "_dsql_audit", False):
        return False

    if after is None:
        @functools.wraps(original)
        def wrapper(self, *args, **kwargs):
            args, kwargs = _convert_first(convert, self, args, kwargs, argname)
            return original(self, *args, **kwargs)
    else:
        @functools.wraps(original)
        def wrapper(self, *args, **kwargs):
            args, kwargs = _convert_first(convert, self, args, kwargs, argname)
            try:
                return original(self, *args, **kwargs)
            finally:
                after(self)

    wrapper._dsql_audit = True
    _mark_async(wrapper, original)
    setattr(cls, name, wrapper)
    return True


def _plain(self, query):
    return tagged(query)


# ---------------------------------------------------------------------------------------------------------
# psycopg 3

def _patch_psycopg(mod):
    from psycopg import sql as psql  # already imported by the psycopg package

    composable = psql.Composable

    def convert(self, query):
        if isinstance(query, composable):
            try:
                query = query.as_bytes(self)  # what psycopg does with it itself, a step later
            except Exception:  # noqa: BLE001
                return query
        return tagged(query)

    def untag(cur):
        """The statement the cursor says it sent (``cursor._query``, which Django's last_executed_query and
        so its captured queries read) is the application's own, without the tag."""
        try:
            query = cur._query
            if query is not None and isinstance(query.query, bytes) and _MARK_B in query.query:
                query.query = _tag.strip_tag(query.query)[0]
        except Exception as err:  # noqa: BLE001
            _debug("untag", err)

    for cls_name, methods in (("Connection", ("execute",)), ("AsyncConnection", ("execute",)),
                              ("Cursor", ("execute", "executemany", "stream", "copy")),
                              ("AsyncCursor", ("execute", "executemany", "stream", "copy")),
                              ("ServerCursor", ("execute",)),
                              ("AsyncServerCursor", ("execute",))):
        cls = getattr(mod, cls_name, None)
        for method in methods:
            argname = "statement" if method == "copy" else "query"
            try:
                _wrap_first_arg(cls, method, convert, argname,
                                untag if cls_name == "Cursor" and method in ("execute", "executemany") else None)
            except Exception as err:  # noqa: BLE001
                _debug("psycopg %s.%s" % (cls_name, method), err)
    try:
        for klass in mod.Connection.__mro__:
            if "_exec_command" in klass.__dict__:
                _wrap_first_arg(klass, "_exec_command", convert, "command")
                break
    except Exception as err:  # noqa: BLE001
        _debug("psycopg _exec_command", err)


# ---------------------------------------------------------------------------------------------------------
# psycopg2

def _patch_psycopg2(mod):
    extensions = mod.extensions
    base_conn, base_cursor = extensions.connection, extensions.cursor
    if getattr(mod.connect, "_dsql_audit", False):
        return
    factory_member = base_conn.__dict__["cursor_factory"]  # the C member the C cursor() reads

    def convert(cur, query):
        sqlmod = sys.modules.get("psycopg2.sql")
        if sqlmod is not None and isinstance(query, sqlmod.Composable):
            try:
                query = query.as_string(cur)  # what psycopg2 does with it itself, a step later
            except Exception:  # noqa: BLE001
                return query
        return tagged(query)

    class TaggingCursor(object):
        """Mixin put first in the MRO of a tagging copy of a cursor class."""

        __slots__ = ()

        def execute(self, *args, **kwargs):
            args, kwargs = _convert_first(convert, self, args, kwargs, "query")
            return super(TaggingCursor, self).execute(*args, **kwargs)

        def executemany(self, *args, **kwargs):
            args, kwargs = _convert_first(convert, self, args, kwargs, "query")
            return super(TaggingCursor, self).executemany(*args, **kwargs)

        def copy_expert(self, *args, **kwargs):
            args, kwargs = _convert_first(convert, self, args, kwargs, "sql")
            return super(TaggingCursor, self).copy_expert(*args, **kwargs)

    def callproc(self, procname, parameters=None):
        """psycopg2's C callproc, rebuilt in Python so that the statement goes through execute."""
        try:
            if self.name is not None or not isinstance(procname, str):
                raise LookupError
            count = 0 if parameters is None else len(parameters)
            if count and isinstance(parameters, dict):
                names = ",".join(extensions.quote_ident(k, self) + ":=%s" for k in parameters)
                statement, values, result = "SELECT * FROM %s(%s)" % (procname, names), list(
                    parameters.values()), None
            else:
                statement, values, result = "SELECT * FROM %s(%s)" % (procname, ",".join(
                    ["%s"] * count)), parameters, parameters
        except Exception:  # noqa: BLE001 - psycopg2's own callproc, untagged (and its own errors)
            return base_cursor.callproc(self, procname, parameters)
        self.execute(statement, values)
        return result

    cursor_classes = {}

    def tagging_cursor(cls):
        if not isinstance(cls, type) or not issubclass(cls, base_cursor) or issubclass(cls, TaggingCursor):
            return cls
        tagged_cls = cursor_classes.get(cls)
        if tagged_cls is None:
            namespace = {"__slots__": (), "__module__": cls.__module__, "__doc__": cls.__doc__,
                         "__qualname__": getattr(cls, "__qualname__", cls.__name__)}
            if cls.callproc is base_cursor.callproc:
                namespace["callproc"] = callproc
            tagged_cls = cursor_classes[cls] = type(cls.__name__, (TaggingCursor, cls), namespace)
        return tagged_cls

    default_cursor = tagging_cursor(base_cursor)

    class TaggingConnection(object):
        """Mixin put first in the MRO of a tagging copy of a connection class: its cursors tag."""

        __slots__ = ()

        def __init__(self, *args, **kwargs):
            super(TaggingConnection, self).__init__(*args, **kwargs)
            try:
                if factory_member.__get__(self, type(self)) is None:
                    factory_member.__set__(self, default_cursor)
            except Exception as err:  # noqa: BLE001
                _debug("psycopg2 connection", err)

        @property
        def cursor_factory(self):
            value = factory_member.__get__(self, type(self))
            if value is default_cursor:
                return None
            for original, copy in list(cursor_classes.items()):
                if copy is value:
                    return original
            return value

        @cursor_factory.setter
        def cursor_factory(self, value):
            factory_member.__set__(self, default_cursor if value is None else tagging_cursor(value))

        def cursor(self, *args, **kwargs):
            try:
                if len(args) >= 2:
                    args = (args[0], tagging_cursor(args[1])) + tuple(args[2:])
                elif kwargs.get("cursor_factory") is not None:
                    kwargs["cursor_factory"] = tagging_cursor(kwargs["cursor_factory"])
            except Exception as err:  # noqa: BLE001
                _debug("psycopg2 cursor", err)
            cur = super(TaggingConnection, self).cursor(*args, **kwargs)
            try:
                if not isinstance(cur, TaggingCursor):
                    # e.g. DictConnection.cursor picked DictCursor after us; a Python-level class can change
                    copy = tagging_cursor(type(cur))
                    if copy is not type(cur):
                        cur.__class__ = copy
            except Exception as err:  # noqa: BLE001
                _debug("psycopg2 cursor class", err)
            return cur

    connection_classes = {}

    def tagging_connection(cls):
        if cls is None:
            cls = base_conn
        if not isinstance(cls, type) or not issubclass(cls, base_conn) or issubclass(cls, TaggingConnection):
            return cls
        tagged_cls = connection_classes.get(cls)
        if tagged_cls is None:
            tagged_cls = connection_classes[cls] = type(cls.__name__, (TaggingConnection, cls), {
                "__slots__": (), "__module__": cls.__module__, "__doc__": cls.__doc__,
                "__qualname__": getattr(cls, "__qualname__", cls.__name__)})
        return tagged_cls

    original_connect = mod.connect

    @functools.wraps(original_connect)
    def connect(dsn=None, connection_factory=None, cursor_factory=None, **kwargs):
        try:
            connection_factory = tagging_connection(connection_factory)
        except Exception as err:  # noqa: BLE001
            _debug("psycopg2 connect", err)
        return original_connect(dsn, connection_factory=connection_factory, cursor_factory=cursor_factory,
                                **kwargs)

    connect._dsql_audit = True
    mod.connect = connect


# ---------------------------------------------------------------------------------------------------------
# asyncpg

_ASYNCPG_METHODS = (("execute", "query"), ("executemany", "command"), ("fetch", "query"), ("fetchrow", "query"),
                    ("fetchval", "query"), ("fetchmany", "query"), ("prepare", "query"), ("cursor", "query"),
                    ("_get_statement", "query"), ("_copy_out", "copy_stmt"), ("_copy_in", "copy_stmt"),
                    ("_copy_in_records", "copy_stmt"))


def _patch_asyncpg(mod):
    connection = sys.modules.get("asyncpg.connection") or mod.connection
    cls = connection.Connection
    for name, argname in _ASYNCPG_METHODS:
        try:
            _wrap_first_arg(cls, name, _plain, argname)
        except Exception as err:  # noqa: BLE001
            _debug("asyncpg %s" % name, err)
    # copy_records_to_table hands its COPY straight to the (compiled) protocol; the statement's last part is
    # what _format_copy_where returns: the tag goes there
    where = cls.__dict__.get("_format_copy_where")
    if where is not None and not getattr(where, "_dsql_audit", False):
        @functools.wraps(where)
        def _format_copy_where(self, *args, **kwargs):
            cond = where(self, *args, **kwargs)
            try:
                if isinstance(cond, str):
                    tag = _site_tag()
                    if tag is not None:
                        return cond + "\n" + tag
            except Exception as err:  # noqa: BLE001
                _debug("asyncpg copy", err)
            return cond

        _format_copy_where._dsql_audit = True
        cls._format_copy_where = _format_copy_where


# ---------------------------------------------------------------------------------------------------------
# Django migrations

def _call_in(var, value, method, *args, **kwargs):
    """``method(*args, **kwargs)`` with the context variable ``var`` set to ``value`` meanwhile."""
    token = var.set(value)
    try:
        return method(*args, **kwargs)
    finally:
        var.reset(token)


def _operation_wrapper(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        site = getattr(self, "_dsql_audit_site", None)
        if site is None:
            return method(self, *args, **kwargs)
        return _call_in(_MIGRATION, site, method, self, *args, **kwargs)

    wrapper._dsql_audit = True
    return wrapper


_BOUNDARIES.add(id(_operation_wrapper(lambda self: None).__code__))


def _wrap_operation_class(cls):
    for name in ("database_forwards", "database_backwards"):
        method = cls.__dict__.get(name)
        if method is not None and callable(method) and not getattr(method, "_dsql_audit", False):
            setattr(cls, name, _operation_wrapper(method))


def _patch_django_operations(mod):
    operation = mod.Operation
    if getattr(operation.__new__, "_dsql_audit", False):
        return
    operations_dir = os.path.dirname(os.path.abspath(mod.__file__)) + os.sep
    original_new = operation.__new__

    def __new__(cls, *args, **kwargs):
        self = original_new(cls, *args, **kwargs)
        try:
            f = sys._getframe(1)
            while f is not None and (f.f_code.co_filename.startswith(operations_dir)
                                     or f.f_code.co_filename.startswith(_HERE)):
                f = f.f_back
            if f is not None:
                filename = f.f_code.co_filename
                path = filename if os.path.isabs(filename) else os.path.abspath(filename)
                self.__dict__["_dsql_audit_site"] = (path, f.f_lineno, type(self).__name__)
        except Exception as err:  # noqa: BLE001
            _debug("django operation site", err)
        return self

    __new__._dsql_audit = True
    operation.__new__ = staticmethod(__new__)

    previous = operation.__dict__.get("__init_subclass__")

    def __init_subclass__(cls, **kwargs):
        if previous is not None:
            previous.__get__(None, cls)(**kwargs)
        else:
            super(operation, cls).__init_subclass__(**kwargs)
        try:
            _wrap_operation_class(cls)
        except Exception as err:  # noqa: BLE001
            _debug("django operation class", err)

    operation.__init_subclass__ = classmethod(__init_subclass__)
    pending = [operation]
    while pending:
        cls = pending.pop()
        _wrap_operation_class(cls)
        pending.extend(cls.__subclasses__())


def _migration_site(migration):
    """(file, line of its ``class Migration``, name) of a Django migration instance, or None."""
    module = sys.modules.get(type(migration).__module__)
    filename = getattr(module, "__file__", None)
    if not filename:
        return None
    line = 1
    try:
        with open(filename, encoding="utf-8", errors="replace") as fh:
            for number, text in enumerate(fh, 1):
                if text.startswith("class Migration"):
                    line = number
                    break
    except OSError:
        pass
    return (os.path.abspath(filename), line, "Migration")


def _migration_wrapper(method):
    """apply_migration / unapply_migration: what the migration sends outside its operations (Django's own
    `INSERT INTO django_migrations`, the transaction around it) points at the migration's class."""
    @functools.wraps(method)
    def wrapper(self, state, migration, *args, **kwargs):
        site = None
        try:
            site = _migration_site(migration)
        except Exception as err:  # noqa: BLE001
            _debug("django migration site", err)
        if site is None:
            return method(self, state, migration, *args, **kwargs)
        return _call_in(_MIGRATION, site, method, self, state, migration, *args, **kwargs)

    wrapper._dsql_audit = True
    return wrapper


_BOUNDARIES.add(id(_migration_wrapper(lambda self, state, migration: None).__code__))


def _patch_django_executor(mod):
    executor = mod.MigrationExecutor
    for name in ("apply_migration", "unapply_migration"):
        method = executor.__dict__.get(name)
        if method is not None and not getattr(method, "_dsql_audit", False):
            setattr(executor, name, _migration_wrapper(method))


class _DeferredList(list):
    """A schema editor's ``deferred_sql`` that remembers the operation that queued each statement."""

    __slots__ = ("sites",)

    def __init__(self, *args):
        list.__init__(self, *args)
        self.sites = {}

    def _note(self, item):
        site = _MIGRATION.get()
        if site is not None and id(item) not in self.sites:
            self.sites[id(item)] = (item, site)

    def append(self, item):
        self._note(item)
        list.append(self, item)

    def insert(self, index, item):
        self._note(item)
        list.insert(self, index, item)

    def extend(self, items):
        items = list(items)
        for item in items:
            self._note(item)
        list.extend(self, items)

    def __iadd__(self, items):
        self.extend(items)
        return self

    def __iter__(self):
        if _DEFERRED_EXIT.get() is self:
            return self._iter_with_sites()
        return list.__iter__(self)

    def _iter_with_sites(self):
        token = None
        try:
            for item in list.__iter__(self):
                if token is not None:
                    _MIGRATION.reset(token)
                    token = None
                entry = self.sites.get(id(item))
                if entry is not None and entry[0] is item:
                    token = _MIGRATION.set(entry[1])
                yield item
        finally:
            if token is not None:
                try:
                    _MIGRATION.reset(token)
                except Exception:  # noqa: BLE001
                    pass


def _schema_exit_wrapper(original):
    @functools.wraps(original)
    def __exit__(self, *exc_info):
        deferred = getattr(self, "deferred_sql", None)
        if type(deferred) is not _DeferredList:
            return original(self, *exc_info)
        return _call_in(_DEFERRED_EXIT, deferred, original, self, *exc_info)

    __exit__._dsql_audit = True
    return __exit__


_BOUNDARIES.add(id(_schema_exit_wrapper(lambda self: None).__code__))


def _patch_django_schema(mod):
    editor = mod.BaseDatabaseSchemaEditor
    enter, leave = editor.__dict__.get("__enter__"), editor.__dict__.get("__exit__")
    if enter is None or leave is None or getattr(enter, "_dsql_audit", False):
        return

    @functools.wraps(enter)
    def __enter__(self):
        result = enter(self)
        try:
            deferred = self.__dict__.get("deferred_sql")
            if type(deferred) is list:
                self.deferred_sql = _DeferredList(deferred)
        except Exception as err:  # noqa: BLE001
            _debug("django schema editor", err)
        return result

    __enter__._dsql_audit = True
    editor.__enter__ = __enter__
    editor.__exit__ = _schema_exit_wrapper(leave)


# ---------------------------------------------------------------------------------------------------------
# Alembic

def _patch_alembic(mod):
    context = mod.MigrationContext
    original = context.__dict__.get("run_migrations")
    if original is None or getattr(original, "_dsql_audit", False):
        return

    @functools.wraps(original)
    def run_migrations(self, *args, **kwargs):
        token = _ALEMBIC.set(True)
        try:
            return original(self, *args, **kwargs)
        finally:
            _ALEMBIC.reset(token)

    run_migrations._dsql_audit = True
    context.run_migrations = run_migrations


# ---------------------------------------------------------------------------------------------------------
# the import hook

_PATCHES = {
    "psycopg": _patch_psycopg,
    "psycopg2": _patch_psycopg2,
    "asyncpg": _patch_asyncpg,
    "django.db.migrations.operations.base": _patch_django_operations,
    "django.db.backends.base.schema": _patch_django_schema,
    "django.db.migrations.executor": _patch_django_executor,
    "alembic.runtime.migration": _patch_alembic,
}


def _apply(name, module):
    """Patch ``module`` (each patch is idempotent: what it wrapped is marked ``_dsql_audit``)."""
    if module is None:
        return
    try:
        _PATCHES[name](module)
    except Exception as err:  # noqa: BLE001
        _debug("patch %s" % name, err)


class _PatchingLoader(object):
    """The real loader, with the patch applied right after it executed the module."""

    def __init__(self, loader, name):
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        loader = self._loader
        try:  # the module sees its own loader, as without the hook
            spec = getattr(module, "__spec__", None)
            if spec is not None and spec.loader is self:
                spec.loader = loader
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = loader
        except Exception:  # noqa: BLE001
            pass
        loader.exec_module(module)
        _apply(self._name, sys.modules.get(self._name, module))

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _PatchingFinder(object):
    """First on sys.meta_path; answers only for the modules in _PATCHES, with the spec the other finders
    give and the loader wrapped."""

    def __init__(self):
        self._busy = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _PATCHES or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            for finder in list(sys.meta_path):
                if finder is self or isinstance(finder, _PatchingFinder):
                    continue
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
            if spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            spec.loader = _PatchingLoader(spec.loader, fullname)
            return spec
        except Exception as err:  # noqa: BLE001
            _debug("find %s" % fullname, err)
            return None
        finally:
            self._busy.discard(fullname)

    def invalidate_caches(self):
        pass


_installed = False


def install():
    """Put the finder first on sys.meta_path and patch what is already imported. Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.meta_path.insert(0, _PatchingFinder())
    for name in list(_PATCHES):
        if name in sys.modules:
            _apply(name, sys.modules[name])
