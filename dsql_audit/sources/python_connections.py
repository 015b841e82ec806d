"""How a Python program connects (sources/python's visitor): SQLAlchemy's create_engine (pool_recycle,
isolation_level), psycopg_pool's and asyncpg's pools, isolation levels, LISTEN, and passwords and sslmode in
connection strings and in the keywords of the calls that connect."""

from __future__ import annotations

from dsql_audit.sources.python_cst import _UNKNOWN, _const, _dotted, _kw, _name, _owner, _positional, call_shape
from dsql_audit.sources.python_predicates import DRIVER_CALLS, connection_string_settings, driver_call


class _Connections:
    """The visitor's connection calls (python._Visitor takes these members in; they use its emit). A call_<name>
    runs only where python_predicates.REPORTABLE[name] says it can report (the imports it needs, its receiver,
    its keywords)."""

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
        lifetime = self.value(_kw(node, "max_lifetime"))
        if _kw(node, "max_lifetime") is None or isinstance(lifetime, (int, float)) and lifetime >= 3600:
            self.emit(node, construct={"kind": "ConnectionSettings", "setting": "max_lifetime",
                                       "value": 3600 if _kw(node, "max_lifetime") is None else lifetime},
                      origin=f"{library} {_name(node.func)}()")

    def call_create_pool(self, node, owner):
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

    def _connection_strings(self, node):
        """Connection strings passed to any call; password=/sslmode= passed to one that connects to the database
        (python_predicates.driver_call: of a login form they are not the database's)."""
        name = _name(node.func)
        to_database = name in DRIVER_CALLS and driver_call(call_shape(node, name, _owner(node.func)), self)
        for arg in node.args:
            value = _const(arg.value)
            if isinstance(value, str):
                self._connection_string(arg.value, value)
            if not to_database or arg.keyword is None:
                continue
            if arg.keyword.value == "sslmode" and value in ("disable", "allow", "prefer"):
                self.emit(arg, construct={"kind": "ConnectionSettings", "setting": "sslmode", "value": value},
                          origin="sslmode keyword")
            if arg.keyword.value == "password" and isinstance(value, str) and value:
                self.emit(arg, construct={"kind": "ConnectionSettings", "setting": "password"},
                          origin="a password passed to the driver")

    def _connection_string(self, node, value: str):
        for setting, mode in connection_string_settings(value):
            if setting == "password":
                self.emit(node, construct={"kind": "ConnectionSettings", "setting": "password"},
                          origin="a connection string with a password")
            else:
                self.emit(node, construct={"kind": "ConnectionSettings", "setting": "sslmode", "value": mode},
                          origin="in a connection string")
