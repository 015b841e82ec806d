"""Django migrations: the SQL ``migrate`` sends to PostgreSQL for each operation, read without running them.

The migrations of one app are read together (CPython's ast, never imported): operations are replayed in order
over a small model of the app's tables, so that an ``AlterField`` is compared with the field as the earlier
migrations left it — Django sends SQL only for what changed in the database (type, NULL, UNIQUE, index,
foreign key), and most AlterFields change nothing there (a verbose_name, a help_text).

What each operation becomes follows Django 4.2–5.2's PostgreSQL schema editor: CREATE TABLE with the columns
inline; foreign keys, indexes, the LIKE-pattern index of a text column, unique_together and index_together
as *deferred* statements run at the end of the migration; ``AddField`` of a NOT NULL column with a default
as ADD COLUMN … DEFAULT … NOT NULL then ALTER … DROP DEFAULT; names as Django makes them (table, columns, an
8-character md5 digest, a suffix, cut to 63 characters) so findings join with the catalog's. Tests compare
this with the SQL the installed Django itself emits (``sqlmigrate``).

A migration that another one ``replaces`` (a squashed migration exists) is not what a fresh database runs:
it sends nothing here and does not change the model.
"""

from __future__ import annotations

import ast
import re
import hashlib
import os
from dataclasses import dataclass, field

MAX_NAME = 63

# field class → PostgreSQL type (Django's DatabaseWrapper.data_types for postgresql)
TYPES = {
    "AutoField": "integer", "BigAutoField": "bigint", "SmallAutoField": "smallint",
    "BinaryField": "bytea", "BooleanField": "boolean", "NullBooleanField": "boolean", "CharField": "varchar",
    "DateField": "date", "DateTimeField": "timestamp with time zone", "DecimalField": "numeric",
    "DurationField": "interval", "FileField": "varchar", "FilePathField": "varchar", "FloatField": "double precision",
    "IntegerField": "integer", "BigIntegerField": "bigint", "IPAddressField": "inet",
    "GenericIPAddressField": "inet", "JSONField": "jsonb", "PositiveBigIntegerField": "bigint",
    "PositiveIntegerField": "integer", "PositiveSmallIntegerField": "smallint", "SlugField": "varchar",
    "SmallIntegerField": "smallint", "TextField": "text", "TimeField": "time", "UUIDField": "uuid",
    "EmailField": "varchar", "URLField": "varchar", "ImageField": "varchar", "SearchVectorField": "tsvector",
    "HStoreField": "hstore", "ArrayField": "text[]", "CICharField": "citext", "CITextField": "citext",
    "CIEmailField": "citext",
}
DEFAULT_LENGTH = {"SlugField": 50, "EmailField": 254, "URLField": 200, "FileField": 100, "ImageField": 100,
                  "FilePathField": 100}
AUTO = {"AutoField", "BigAutoField", "SmallAutoField"}
RELATED = {"ForeignKey", "OneToOneField"}
POSITIVE = {"PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField"}
INDEX_METHODS = {"GinIndex": "gin", "GistIndex": "gist", "BrinIndex": "brin", "HashIndex": "hash",
                 "SpGistIndex": "spgist", "BloomIndex": "bloom", "BTreeIndex": None, "Index": None}
UNKNOWN = object()


def digest(*args: str, length: int = 8) -> str:
    """django.db.backends.utils.names_digest."""
    h = hashlib.md5(usedforsecurity=False)
    for arg in args:
        h.update(arg.encode())
    return h.hexdigest()[:length]


def index_name(table: str, columns: list[str], suffix: str = "") -> str:
    """BaseDatabaseSchemaEditor._create_index_name."""
    hash_suffix = f"{digest(table, *columns)}{suffix}"
    name = f"{table}_{'_'.join(columns)}_{hash_suffix}"
    if len(name) <= MAX_NAME:
        return name
    if len(hash_suffix) > MAX_NAME / 3:
        hash_suffix = hash_suffix[: MAX_NAME // 3]
    other = (MAX_NAME - len(hash_suffix)) // 2 - 1
    name = f"{table[:other]}_{'_'.join(columns)[:other]}_{hash_suffix}"
    if name[0] == "_" or name[0].isdigit():
        name = f"D{name[:-1]}"
    return name


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Field:
    kind: str
    kw: dict
    target: str | None = None  # a relation's model, "app.Model" or "Model" (settings.AUTH_USER_MODEL: auth.User)
    line: int = 0
    column: int = 1


@dataclass
class Model:
    app: str
    name: str
    table: str
    fields: dict = field(default_factory=dict)  # name → Field, in order
    unique_together: list = field(default_factory=list)
    index_together: list = field(default_factory=list)


@dataclass
class Stmt:
    sql: str
    line: int
    column: int
    origin: str
    deferred: bool = False  # run at the end of the migration (Django's deferred_sql)
    spans: list | None = None  # [(offset in sql, line, column)]: where each column of a CREATE TABLE is declared
    # a deferred index or foreign key, as Django keeps it (a Statement whose table and column references a later
    # RenameField / RenameModel of the same migration rewrites, name included): ("index", table, [columns],
    # suffix, opclass) or ("fk", table, column, to_table, to_column)
    recipe: tuple | None = None

    def render(self):
        kind, table, cols, a, b = self.recipe
        if kind == "index":
            column_sql = ", ".join(q(c) + (f" {b}" if b else "") for c in cols)
            self.sql = f"CREATE INDEX {q(index_name(table, cols, a))} ON {q(table)} ({column_sql})"
        else:
            name = index_name(table, [cols], suffix=f"_fk_{a}_{b}")
            self.sql = (f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} FOREIGN KEY ({q(cols)}) REFERENCES "
                        f"{q(a)} ({q(b)}) DEFERRABLE INITIALLY DEFERRED")
        return self


def drop_fk(table: str, name: str, line: int, column: int, origin: str) -> Stmt:
    """Django's sql_delete_fk on PostgreSQL: one query string that makes the constraint immediate, then drops it."""
    return Stmt(f"SET CONSTRAINTS {q(name)} IMMEDIATE; ALTER TABLE {q(table)} DROP CONSTRAINT {q(name)}", line,
                column, origin)


def _value(node):
    """A literal's value; lists/tuples of literals; UNKNOWN otherwise."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        values = [_value(e) for e in node.elts]
        return UNKNOWN if any(v is UNKNOWN for v in values) else values
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return -node.operand.value if isinstance(node.operand.value, (int, float)) else UNKNOWN
    return UNKNOWN


def _callee(node) -> str:
    func = node.func if isinstance(node, ast.Call) else node
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _kw(call: ast.Call, name: str, index: int | None = None):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    if index is not None and len(call.args) > index:
        return call.args[index]
    return None


def read_field(node, line: int = 0, column: int = 0) -> Field | None:
    if not isinstance(node, ast.Call):
        return None
    kind = _callee(node)
    kw = {k.arg: _value(k.value) for k in node.keywords if k.arg}
    for k in node.keywords:  # a callable default (timezone.now, uuid.uuid4) is still a default
        if k.arg == "default" and kw["default"] is UNKNOWN:
            kw["default"] = "<callable>"
    target = None
    if kind in RELATED or kind == "ManyToManyField":
        to = _kw(node, "to", 0)
        if isinstance(to, ast.Constant) and isinstance(to.value, str):
            target = to.value
        elif isinstance(to, ast.Attribute):  # a swappable model: named by its setting (resolved per project)
            target = f"settings.{to.attr}"
        elif isinstance(to, ast.Name):
            target = to.id
    if kind == "ArrayField":
        base = _kw(node, "base_field", 0)
        inner = read_field(base) if isinstance(base, ast.Call) else None
        kw["_array_of"] = inner
    return Field(kind, kw, target, line or node.lineno, column or node.col_offset + 1)


class AppState:
    """Every model of every app read so far (the tables a migration's relations point at)."""

    def __init__(self):
        self.models: dict = {}  # (app, model name lower) → Model
        self.settings: dict = {}  # swappable model settings → "app.Model" (AUTH_USER_MODEL = "shop.User")

    def get(self, app: str, name: str) -> Model | None:
        return self.models.get((app, name.lower()))

    def resolve(self, app: str, target: str | None) -> Model | None:
        if not target:
            return None
        if "." in target:
            other, name = target.split(".", 1)
            return self.get(other, name)
        return self.get(app, target)


def _swapped(state: AppState, target: str | None) -> str | None:
    """settings.AUTH_USER_MODEL (or another swappable setting) as the "app.Model" the project's settings name."""
    if target and target.startswith("settings."):
        setting = target.split(".", 1)[1]
        value = state.settings.get(setting)
        if value:
            return value
        return "auth.User" if setting == "AUTH_USER_MODEL" else target
    return target


def _table_of(state: AppState, app: str, target: str | None) -> str:
    target = _swapped(state, target)
    model = state.resolve(app, target)
    if model is not None:
        return model.table
    if target and "." in target:
        other, name = target.split(".", 1)
        return f"{other.lower()}_{name.lower()}"
    return f"{app}_{(target or 'model').lower()}"


def _pk(state: AppState, app: str, target: str | None) -> tuple[str, str]:
    """(column, type) of a relation's target primary key."""
    target = _swapped(state, target)
    model = state.resolve(app, target)
    if model is not None:
        for name, f in model.fields.items():
            if f.kw.get("primary_key") is True or f.kind in AUTO:
                return column_name(name, f), _base_type(f, state, model.app)
    return "id", "integer" if target and target.lower() in ("auth.user", "auth.group", "contenttypes.contenttype") \
        else "bigint"


def column_name(name: str, f: Field) -> str:
    column = f.kw.get("db_column")
    if isinstance(column, str):
        return column
    return f"{name}_id" if f.kind in RELATED else name


def _base_type(f: Field, state: AppState, app: str) -> str:
    if f.kind in RELATED:
        target_type = _pk(state, app, f.target)[1]
        return {"serial": "integer", "bigserial": "bigint"}.get(target_type, target_type)
    if f.kind == "ArrayField":
        inner = f.kw.get("_array_of")
        return (_base_type(inner, state, app) if isinstance(inner, Field) else "text") + "[]"
    sql = TYPES.get(f.kind)
    if sql is None:
        return "text"  # a custom field: its db_type() is not readable here
    if sql == "varchar":
        length = f.kw.get("max_length", DEFAULT_LENGTH.get(f.kind))
        return f"varchar({length})" if isinstance(length, int) else "varchar"
    if f.kind == "DecimalField":
        p, s = f.kw.get("max_digits"), f.kw.get("decimal_places")
        if isinstance(p, int) and isinstance(s, int):
            return f"numeric({p}, {s})"
    return sql


def _unique(f: Field) -> bool:
    return f.kw.get("unique") is True or f.kind == "OneToOneField"


def _indexed(f: Field) -> bool:
    """db_index as Django decides it: True for relations and slugs unless turned off; never for a unique
    column (its constraint indexes it)."""
    db_index = f.kw.get("db_index")
    if db_index is None:
        db_index = f.kind in RELATED or f.kind == "SlugField"
    return db_index is True and not _unique(f) and f.kw.get("primary_key") is not True


def _like(f: Field, sql_type: str) -> bool:
    """Django adds a varchar_pattern_ops / text_pattern_ops index to an indexed or unique text column."""
    return (f.kw.get("db_index") is True or _unique(f) or f.kw.get("primary_key") is True or
            (f.kind == "SlugField" and f.kw.get("db_index") is not False)) and \
        sql_type.startswith(("varchar", "text")) and not sql_type.endswith("[]")


def _default_sql(value) -> str | None:
    if value is UNKNOWN or value == "<callable>":
        return "'<default>'"
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        return "'{}'"
    return "'<default>'"


def column_definition(name: str, f: Field, state: AppState, app: str, *, include_default: bool = False,
                      inline_fk: str | None = None) -> str:
    """The column as Django's column_sql renders it."""
    sql_type = _base_type(f, state, app)
    parts = [sql_type]
    if include_default and "default" in f.kw:
        default = _default_sql(f.kw["default"])
        if default is not None:
            parts.append(f"DEFAULT {default}")
    null = f.kw.get("null") is True and f.kw.get("primary_key") is not True and f.kind not in AUTO
    parts.append("NULL" if null else "NOT NULL")
    if f.kw.get("primary_key") is True or f.kind in AUTO:
        parts.append("PRIMARY KEY")
    elif _unique(f):
        parts.append("UNIQUE")
    if f.kind in AUTO:
        parts.append("GENERATED BY DEFAULT AS IDENTITY")
    if f.kind in POSITIVE:
        parts.append(f'CHECK ({q(column_name(name, f))} >= 0)')
    if inline_fk:
        parts.append(inline_fk)
    return " ".join(parts)


class Renderer:
    """The statements of one app's migrations, in the order migrate runs them."""

    def __init__(self, state: AppState, app: str):
        self.state, self.app = state, app
        self.pending: list = []  # this migration's deferred statements with a recipe (renames rewrite them)
        self.big_auto = False  # settings.DEFAULT_AUTO_FIELD is BigAutoField

    def _deferred(self, stmt: Stmt) -> Stmt:
        self.pending.append(stmt)
        return stmt

    def _renamed(self, table: str | None = None, old_col: str | None = None, new_col: str | None = None,
                 old_table: str | None = None, new_table: str | None = None):
        """A rename later in the migration: Django rewrites the references in its deferred SQL."""
        for stmt in self.pending:
            kind, t, cols, a, b = stmt.recipe
            if old_table is not None:
                t = new_table if t == old_table else t
                if kind == "fk" and a == old_table:
                    a = new_table
            elif t == table:
                cols = [new_col if c == old_col else c for c in cols] if kind == "index" else \
                    (new_col if cols == old_col else cols)
            stmt.recipe = (kind, t, cols, a, b)
            stmt.render()

    def table(self, model_name: str) -> str:
        model = self.state.get(self.app, model_name)
        return model.table if model is not None else f"{self.app}_{model_name.lower()}"

    # --- pieces -------------------------------------------------------------------------------------------------
    def fk(self, table: str, name: str, f: Field, line: int, column: int, origin: str) -> Stmt | None:
        if f.kind not in RELATED or f.kw.get("db_constraint") is False:
            return None
        col = column_name(name, f)
        to_table = _table_of(self.state, self.app, f.target)
        to_col = _pk(self.state, self.app, f.target)[0]
        return self._deferred(Stmt("", line, column, origin, True, recipe=("fk", table, col, to_table, to_col))
                              .render())

    def indexes(self, table: str, name: str, f: Field, line: int, column: int, origin: str) -> list[Stmt]:
        out = []
        col = column_name(name, f)
        sql_type = _base_type(f, self.state, self.app)
        if _indexed(f):
            out.append(self._deferred(Stmt("", line, column, origin, True, recipe=("index", table, [col], "", None))
                                      .render()))
        if _like(f, sql_type):
            ops = "varchar_pattern_ops" if sql_type.startswith("varchar") else "text_pattern_ops"
            out.append(self._deferred(Stmt("", line, column, origin, True,
                                           recipe=("index", table, [col], "_like", ops)).render()))
        return out

    def together(self, model: Model, groups: list, kind: str, line: int, column: int, origin: str) -> list[Stmt]:
        out = []
        for group in groups:
            cols = [column_name(n, model.fields[n]) if n in model.fields else n for n in group]
            if kind == "unique":
                name = index_name(model.table, cols, "_uniq")
                out.append(Stmt(f"ALTER TABLE {q(model.table)} ADD CONSTRAINT {q(name)} UNIQUE "
                                f"({', '.join(q(c) for c in cols)})", line, column, origin, True))
            else:
                name = index_name(model.table, cols, "_idx")
                out.append(Stmt(f"CREATE INDEX {q(name)} ON {q(model.table)} ({', '.join(q(c) for c in cols)})",
                                line, column, origin, True))
        return out

    def index(self, table: str, model: Model | None, call: ast.Call, line: int, column: int,
              origin: str) -> Stmt | None:
        """models.Index / GinIndex / … as Index.create_sql renders it."""
        if not isinstance(call, ast.Call):
            return None
        kind = _callee(call)
        fields = _value(_kw(call, "fields")) if _kw(call, "fields") is not None else []
        name = _value(_kw(call, "name"))
        opclasses = _value(_kw(call, "opclasses")) if _kw(call, "opclasses") is not None else []
        if fields is UNKNOWN:
            fields = []
        parts = []
        for i, fname in enumerate(fields):
            if not isinstance(fname, str):
                continue
            desc = fname.startswith("-")
            fname = fname.lstrip("-")
            col = column_name(fname, model.fields[fname]) if model is not None and fname in model.fields else fname
            piece = q(col)
            if isinstance(opclasses, list) and i < len(opclasses) and isinstance(opclasses[i], str):
                piece += f" {opclasses[i]}"
            if desc:
                piece += " DESC"
            parts.append(piece)
        if not parts and call.args:  # expressions: Index(Lower("title"), name=…)
            parts = [_expression(a, wrap=True) for a in call.args]
        method = INDEX_METHODS.get(kind, None)
        using = f" USING {method}" if method else ""
        include = _value(_kw(call, "include")) if _kw(call, "include") is not None else None
        include_sql = f" INCLUDE ({', '.join(q(c) for c in include if isinstance(c, str))})" \
            if isinstance(include, list) and include else ""
        where = " WHERE true" if _kw(call, "condition") is not None else ""
        iname = name if isinstance(name, str) else index_name(table, [p.strip('"') for p in parts], "_idx")
        return Stmt(f"CREATE INDEX {q(iname)} ON {q(table)}{using} ({', '.join(parts) or q('id')}){include_sql}"
                    f"{where}", line, column, origin, True)

    def constraint(self, table: str, model: Model | None, call: ast.Call) -> tuple[str | None, str | None]:
        """(inline table constraint, or a separate CREATE UNIQUE INDEX) for CheckConstraint/UniqueConstraint."""
        kind = _callee(call)
        name = _value(_kw(call, "name"))
        name = name if isinstance(name, str) else "constraint"
        if kind == "CheckConstraint":
            cond = _kw(call, "condition") or _kw(call, "check")
            return f"CONSTRAINT {q(name)} CHECK ({ast.unparse(cond) if cond is not None else 'true'})", None
        if kind == "UniqueConstraint":
            fields = _value(_kw(call, "fields")) if _kw(call, "fields") is not None else []
            fields = [f for f in (fields if isinstance(fields, list) else []) if isinstance(f, str)]
            cols = [column_name(n, model.fields[n]) if model is not None and n in model.fields else n for n in fields]
            if not cols and call.args:
                cols = [_expression(a, wrap=True) for a in call.args]
            col_sql = ", ".join(c if c.startswith("(") else q(c) for c in cols)
            include = _value(_kw(call, "include")) if _kw(call, "include") is not None else None
            include_sql = f" INCLUDE ({', '.join(q(c) for c in include if isinstance(c, str))})" \
                if isinstance(include, list) and include else ""
            deferrable = _kw(call, "deferrable")
            defer_sql = ""
            if deferrable is not None:
                defer_sql = " DEFERRABLE INITIALLY DEFERRED" if "DEFERRED" in ast.unparse(deferrable) else \
                    " DEFERRABLE INITIALLY IMMEDIATE"
            if _kw(call, "condition") is not None or (cols and cols[0].startswith("(")) or \
                    _kw(call, "opclasses") is not None or include_sql:  # Django makes these a unique index
                where = " WHERE true" if _kw(call, "condition") is not None else ""
                return None, f"CREATE UNIQUE INDEX {q(name)} ON {q(table)} ({col_sql}){include_sql}{where}"
            return f"CONSTRAINT {q(name)} UNIQUE ({col_sql}){include_sql}{defer_sql}", None
        if kind == "ExclusionConstraint":
            return f"CONSTRAINT {q(name)} EXCLUDE USING gist (id WITH =)", None
        return None, None

    # --- operations ---------------------------------------------------------------------------------------------
    def create_model(self, call: ast.Call, line: int, column: int) -> list[Stmt]:
        name = _value(_kw(call, "name", 0))
        if not isinstance(name, str):
            return []
        options = _kw(call, "options")
        opts = {}
        if isinstance(options, ast.Dict):
            for k, v in zip(options.keys, options.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                    opts[k.value] = v
        db_table = _value(opts["db_table"]) if "db_table" in opts else None
        table = db_table if isinstance(db_table, str) else f"{self.app}_{name.lower()}"
        model = Model(self.app, name, table)
        fields_node = _kw(call, "fields", 1)
        m2m = []
        if isinstance(fields_node, (ast.List, ast.Tuple)):
            for element in fields_node.elts:
                if not isinstance(element, ast.Tuple) or len(element.elts) < 2:
                    continue
                fname = _value(element.elts[0])
                f = read_field(element.elts[1], element.lineno, element.col_offset + 1)
                if f is None:
                    continue
                if not isinstance(fname, str):  # a name computed at run time: the column still exists
                    fname = f"_dyn_field_{len(model.fields)}"
                if f.kind == "ManyToManyField":
                    m2m.append((fname, f))
                    continue
                model.fields[fname] = f
        if opts.get("abstract") is not None and _value(opts["abstract"]) is True:
            return []
        if opts.get("managed") is not None and _value(opts["managed"]) is False:
            self.state.models[(self.app, name.lower())] = model
            return []
        if opts.get("proxy") is not None and _value(opts["proxy"]) is True:
            return []
        if not any(f.kw.get("primary_key") is True or f.kind in AUTO for f in model.fields.values()):
            # a model whose primary key comes from a parent (multi-table inheritance) or a default id
            bases = _kw(call, "bases")
            if bases is None:
                model.fields = {"id": Field("AutoField", {"primary_key": True}, None, line, column), **model.fields}
        self.state.models[(self.app, name.lower())] = model
        origin = f"Django CreateModel({name})"
        # Django's deferred order: unique_together (table_sql), foreign keys (the column loop), then the
        # model's indexes (each field's index and LIKE index, index_together, Meta.indexes)
        columns, later, constraints, places, fks, field_indexes = [], [], [], [], [], []
        for fname, f in model.fields.items():
            columns.append(f"{q(column_name(fname, f))} {column_definition(fname, f, self.state, self.app)}")
            places.append((f.line, f.column))
            field_indexes += self.indexes(table, fname, f, f.line, f.column, origin)
            fk = self.fk(table, fname, f, f.line, f.column, origin)
            if fk:
                fks.append(fk)
        unique_together = _value(opts["unique_together"]) if "unique_together" in opts else []
        index_together = _value(opts["index_together"]) if "index_together" in opts else []
        model.unique_together = _groups(unique_together)
        model.index_together = _groups(index_together)
        later += self.together(model, model.unique_together, "unique", line, column, origin)
        later += fks + field_indexes
        later += self.together(model, model.index_together, "index", line, column, origin)
        for key in ("indexes",):
            node = opts.get(key)
            if isinstance(node, (ast.List, ast.Tuple)):
                for element in node.elts:
                    stmt = self.index(table, model, element, element.lineno, element.col_offset + 1, origin)
                    if stmt:
                        later.append(stmt)
        node = opts.get("constraints")
        if isinstance(node, (ast.List, ast.Tuple)):
            for element in node.elts:
                if isinstance(element, ast.Call):
                    inline, separate = self.constraint(table, model, element)
                    if inline:
                        constraints.append(inline)
                    if separate:
                        later.append(Stmt(separate, element.lineno, element.col_offset + 1, origin, True))
        head = f"CREATE TABLE {q(table)} ("
        spans, offset = [(0, line, column)], len(head)
        for text, (at_line, at_column) in zip(columns, places):
            spans.append((offset, at_line, at_column))
            offset += len(text) + 2
        if constraints:
            spans.append((offset, line, column))
        out = [Stmt(head + ", ".join(columns + constraints) + ")", line, column, origin, spans=spans)]
        out += later
        for fname, f in m2m:
            out += self.m2m_table(model, fname, f)
        return out

    def m2m_table(self, model: Model, fname: str, f: Field) -> list[Stmt]:
        """The join table of an auto-created ManyToManyField: table, unique pair, two foreign keys, two indexes."""
        if f.kw.get("through") is not None and f.kw.get("through") is not UNKNOWN:
            return []
        if "through" in f.kw:  # through=SomeModel (a name, not a literal): that model makes the table
            return []
        db_table = f.kw.get("db_table")
        table = db_table if isinstance(db_table, str) else f"{model.table}_{fname}"[:MAX_NAME]
        target = self.state.resolve(self.app, f.target)
        target_name = (target.name if target else (f.target or "model").split(".")[-1]).lower()
        source_name = model.name.lower()
        if target_name == source_name:
            source_col, target_col = f"from_{source_name}_id", f"to_{target_name}_id"
        else:
            source_col, target_col = f"{source_name}_id", f"{target_name}_id"
        # the auto-created through model of migration state takes settings.DEFAULT_AUTO_FIELD (AutoField unless
        # the project sets it; an AppConfig's default_auto_field is not consulted there)
        id_type = "bigint" if self.big_auto else "integer"
        src_type = _pk(self.state, self.app, model.name)[1]
        tgt_type = _pk(self.state, self.app, f.target)[1]
        origin = f"Django ManyToManyField {model.name}.{fname} (its join table)"
        line, column = f.line, f.column
        through = Model(self.app, f"{model.name}_{fname}", table)
        through.fields = {source_col[:-3]: Field("ForeignKey", {}, f"{self.app}.{model.name}"),
                          target_col[:-3]: Field("ForeignKey", {}, f.target if f.target and "." in f.target
                                                 else f"{self.app}.{f.target}")}
        self.state.models[(self.app, through.name.lower())] = through
        out = [Stmt(f"CREATE TABLE {q(table)} ({q('id')} {id_type} NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS "
                    f"IDENTITY, {q(source_col)} {src_type} NOT NULL, {q(target_col)} {tgt_type} NOT NULL)",
                    line, column, origin)]
        pair = index_name(table, [source_col, target_col], "_uniq")
        out.append(Stmt(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(pair)} UNIQUE ({q(source_col)}, {q(target_col)})",
                        line, column, origin, True))
        for col, to in ((source_col, model.table), (target_col, _table_of(self.state, self.app, f.target))):
            cname = index_name(table, [col], suffix=f"_fk_{to}_id")
            out.append(Stmt(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(cname)} FOREIGN KEY ({q(col)}) REFERENCES "
                            f"{q(to)} ({q('id')}) DEFERRABLE INITIALLY DEFERRED", line, column, origin, True))
        for col in (source_col, target_col):
            out.append(Stmt(f"CREATE INDEX {q(index_name(table, [col]))} ON {q(table)} ({q(col)})",
                            line, column, origin, True))
        return out

    def add_field(self, call: ast.Call, line: int, column: int) -> list[Stmt]:
        model_name, fname = _value(_kw(call, "model_name", 0)), _value(_kw(call, "name", 1))
        f = read_field(_kw(call, "field", 2))
        if not isinstance(model_name, str) or not isinstance(fname, str) or f is None:
            return []
        model = self.state.get(self.app, model_name)
        table = model.table if model else self.table(model_name)
        origin = f"Django AddField({model_name}.{fname})"
        if f.kind == "ManyToManyField":
            return self.m2m_table(model or Model(self.app, model_name, table), fname, f)
        if model is not None:
            model.fields[fname] = f
        col = column_name(fname, f)
        # Django sets the default on the column to fill existing rows, then drops it; a NOT NULL text column
        # without one gets '' (effective_default: empty strings are allowed)
        if "default" not in f.kw and f.kw.get("null") is not True and f.kw.get("blank") is True and \
                _base_type(f, self.state, self.app).startswith(("varchar", "text")) and f.kind not in RELATED:
            f.kw["default"] = ""
        if "default" not in f.kw and (f.kw.get("auto_now") is True or f.kw.get("auto_now_add") is True):
            f.kw["default"] = "<callable>"  # effective_default: the time the migration runs
        # effective_default(): any default that is not None is set on the column, then dropped (nullable too)
        with_default = "default" in f.kw and f.kw.get("default") is not None
        inline_fk = None
        out = []
        if f.kind in RELATED and f.kw.get("db_constraint") is not False:
            to_table = _table_of(self.state, self.app, f.target)
            to_col = _pk(self.state, self.app, f.target)[0]
            cname = index_name(table, [col], suffix=f"_fk_{to_table}_{to_col}")
            inline_fk = f"CONSTRAINT {q(cname)} REFERENCES {q(to_table)}({q(to_col)}) DEFERRABLE INITIALLY DEFERRED"
        definition = column_definition(fname, f, self.state, self.app, include_default=with_default,
                                       inline_fk=inline_fk)
        set_immediate = f"; SET CONSTRAINTS {q(cname)} IMMEDIATE" if inline_fk else ""
        out.append(Stmt(f"ALTER TABLE {q(table)} ADD COLUMN {q(col)} {definition}{set_immediate}", line, column,
                        origin))
        if with_default:
            out.append(Stmt(f"ALTER TABLE {q(table)} ALTER COLUMN {q(col)} DROP DEFAULT", line, column, origin))
        out += self.indexes(table, fname, f, line, column, origin)
        return out

    def alter_field(self, call: ast.Call, line: int, column: int) -> list[Stmt]:
        model_name, fname = _value(_kw(call, "model_name", 0)), _value(_kw(call, "name", 1))
        new = read_field(_kw(call, "field", 2))
        if not isinstance(model_name, str) or not isinstance(fname, str) or new is None:
            return []
        model = self.state.get(self.app, model_name)
        if model is None or fname not in model.fields:
            if model is not None:
                model.fields[fname] = new
            return []  # the field as it was is not known: nothing is claimed
        old = model.fields[fname]
        model.fields[fname] = new
        if new.kind == "ManyToManyField" or old.kind == "ManyToManyField":
            return []
        table, origin = model.table, f"Django AlterField({model_name}.{fname})"
        old_col, new_col = column_name(fname, old), column_name(fname, new)
        out = []
        old_type, new_type = _base_type(old, self.state, self.app), _base_type(new, self.state, self.app)
        # Django drops a relation's foreign key before any change the database sees, and adds it back after
        changed = old_type != new_type or (old.kw.get("null") is True) != (new.kw.get("null") is True) or \
            _unique(old) != _unique(new) or _indexed(old) != _indexed(new) or old_col != new_col
        fk_cycle = old.kind in RELATED and new.kind in RELATED and old.kw.get("db_constraint") is not False and \
            new.kw.get("db_constraint") is not False and changed
        if old.kind in RELATED and old.kw.get("db_constraint") is not False and (fk_cycle or
                new.kind not in RELATED or new.target != old.target or new.kw.get("db_constraint") is False):
            to_table = _table_of(self.state, self.app, old.target)
            cname = index_name(table, [old_col], suffix=f"_fk_{to_table}_{_pk(self.state, self.app, old.target)[0]}")
            out.append(drop_fk(table, cname, line, column, origin))
        if _unique(old) and not _unique(new):
            out.append(Stmt(f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(index_name(table, [old_col], '_uniq'))}",
                            line, column, origin))
        dropped_like = False
        if _indexed(old) and not _indexed(new):
            out.append(Stmt(f"DROP INDEX IF EXISTS {q(index_name(table, [old_col]))}", line, column, origin))
            if _like(old, _base_type(old, self.state, self.app)):
                out.append(Stmt(f"DROP INDEX IF EXISTS {q(index_name(table, [old_col], '_like'))}", line, column,
                                origin))
                dropped_like = True
        if old_col != new_col:
            out.append(Stmt(f"ALTER TABLE {q(table)} RENAME COLUMN {q(old_col)} TO {q(new_col)}", line, column,
                            origin))
        # a primary key changing type (AutoField → BigAutoField): Django drops the foreign keys that point at it,
        # changes their columns too, and adds the keys back
        incoming = []
        if (old.kw.get("primary_key") is True or old.kind in AUTO) and \
                _base_type(old, self.state, self.app) != _base_type(new, self.state, self.app):
            incoming = self._incoming(model)
        for other, rname, rel in incoming:
            rcol = column_name(rname, rel)
            out.append(drop_fk(other.table, index_name(other.table, [rcol], suffix=f"_fk_{table}_{new_col}"), line,
                               column, origin))
        if old_type != new_type or (old.kind in AUTO) != (new.kind in AUTO):
            using = f" USING {q(new_col)}::{new_type}" if old_type.split("(")[0] != new_type.split("(")[0] else ""
            out.append(Stmt(f"ALTER TABLE {q(table)} ALTER COLUMN {q(new_col)} TYPE {new_type}{using}", line, column,
                            origin))
            if old.kind in AUTO and new.kind in AUTO:
                out.append(Stmt(f"ALTER SEQUENCE IF EXISTS {q(table + '_' + new_col + '_seq')} AS {new_type}", line,
                                column, origin))
        for other, rname, rel in incoming:
            rcol = column_name(rname, rel)
            out.append(Stmt(f"ALTER TABLE {q(other.table)} ALTER COLUMN {q(rcol)} TYPE {new_type} USING "
                            f"{q(rcol)}::{new_type}", line, column, origin))
        for other, rname, rel in incoming:  # added back under the name _create_fk_sql(…, "_fk") gives
            rcol = column_name(rname, rel)
            fk_name = index_name(other.table, [rcol], "_fk")
            out.append(Stmt(f"ALTER TABLE {q(other.table)} ADD CONSTRAINT {q(fk_name)} FOREIGN KEY ({q(rcol)}) "
                            f"REFERENCES {q(table)} ({q(new_col)}) DEFERRABLE INITIALLY DEFERRED", line, column,
                            origin))
        old_null = old.kw.get("null") is True
        new_null = new.kw.get("null") is True
        if old_null and not new_null:
            default = _default_sql(new.kw.get("default")) if "default" in new.kw else None
            if default is not None:
                out.append(Stmt(f"ALTER TABLE {q(table)} ALTER COLUMN {q(new_col)} SET DEFAULT {default}", line,
                                column, origin))
                out.append(Stmt(f"UPDATE {q(table)} SET {q(new_col)} = {default} WHERE {q(new_col)} IS NULL",
                                line, column, origin))
            out.append(Stmt(f"ALTER TABLE {q(table)} ALTER COLUMN {q(new_col)} SET NOT NULL", line, column, origin))
            if default is not None:
                out.append(Stmt(f"ALTER TABLE {q(table)} ALTER COLUMN {q(new_col)} DROP DEFAULT", line, column,
                                origin))
        elif new_null and not old_null:
            out.append(Stmt(f"ALTER TABLE {q(table)} ALTER COLUMN {q(new_col)} DROP NOT NULL", line, column, origin))
        if _unique(new) and not _unique(old):
            out.append(Stmt(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(index_name(table, [new_col], '_uniq'))} "
                            f"UNIQUE ({q(new_col)})", line, column, origin))
        if _indexed(new) and not _indexed(old):
            out.append(Stmt(f"CREATE INDEX {q(index_name(table, [new_col]))} ON {q(table)} ({q(new_col)})",
                            line, column, origin))
        new_like = _like(new, new_type)
        if new_like and (not _like(old, old_type) or old_type != new_type or dropped_like):
            ops = "varchar_pattern_ops" if new_type.startswith("varchar") else "text_pattern_ops"
            out.append(Stmt(f"CREATE INDEX {q(index_name(table, [new_col], '_like'))} ON {q(table)} "
                            f"({q(new_col)} {ops})", line, column, origin))
        if new.kind in RELATED and new.kw.get("db_constraint") is not False and (fk_cycle or
                old.kind not in RELATED or new.target != old.target or old.kw.get("db_constraint") is False):
            fk = self.fk(table, fname, new, line, column, origin)
            if fk:
                self.pending.remove(fk)
                fk.deferred = False
                out.append(fk)
        return out

    def together_change(self, call: ast.Call, line: int, column: int, kind: str) -> list[Stmt]:
        model_name = _value(_kw(call, "name", 0))
        groups = _groups(_value(_kw(call, f"{kind}_together", 1)))
        model = self.state.get(self.app, model_name) if isinstance(model_name, str) else None
        if model is None:
            return []
        old = model.unique_together if kind == "unique" else model.index_together
        origin = f"Django Alter{kind.title()}Together({model_name})"
        out = []
        for group in old:
            if group not in groups:
                cols = [column_name(n, model.fields[n]) if n in model.fields else n for n in group]
                if kind == "unique":
                    out.append(Stmt(f"ALTER TABLE {q(model.table)} DROP CONSTRAINT "
                                    f"{q(index_name(model.table, cols, '_uniq'))}", line, column, origin))
                else:
                    out.append(Stmt(f"DROP INDEX IF EXISTS {q(index_name(model.table, cols, '_idx'))}", line, column,
                                    origin))
        added = [g for g in groups if g not in old]
        for stmt in self.together(model, added, kind, line, column, origin):
            stmt.deferred = False
            out.append(stmt)
        if kind == "unique":
            model.unique_together = groups
        else:
            model.index_together = groups
        return out

    def add_index(self, call: ast.Call, line: int, column: int) -> list[Stmt]:
        model_name = _value(_kw(call, "model_name", 0))
        if not isinstance(model_name, str):
            return []
        model = self.state.get(self.app, model_name)
        stmt = self.index(self.table(model_name), model, _kw(call, "index", 1), line, column,
                          f"Django AddIndex({model_name})")
        if stmt:
            stmt.deferred = False
            stmt.line, stmt.column = line, column
        return [stmt] if stmt else []

    def add_constraint(self, call: ast.Call, line: int, column: int) -> list[Stmt]:
        model_name = _value(_kw(call, "model_name", 0))
        node = _kw(call, "constraint", 1)
        if not isinstance(model_name, str) or not isinstance(node, ast.Call):
            return []
        table = self.table(model_name)
        inline, separate = self.constraint(table, self.state.get(self.app, model_name), node)
        origin = f"Django AddConstraint({model_name})"
        if inline:
            return [Stmt(f"ALTER TABLE {q(table)} ADD {inline}", line, column, origin)]
        if separate:
            return [Stmt(separate, line, column, origin)]
        return []

    def remove_field(self, call: ast.Call, line: int, column: int) -> list[Stmt]:
        model_name, fname = _value(_kw(call, "model_name", 0)), _value(_kw(call, "name", 1))
        if not isinstance(model_name, str) or not isinstance(fname, str):
            return []
        model = self.state.get(self.app, model_name)
        old = model.fields.pop(fname, None) if model else None
        table = self.table(model_name)
        origin = f"Django RemoveField({model_name}.{fname})"
        if old is not None and old.kind == "ManyToManyField":
            return [Stmt(f"DROP TABLE {q(table + '_' + fname)} CASCADE", line, column, origin)]
        col = column_name(fname, old) if old is not None else fname
        out = []
        if old is not None and old.kind in RELATED and old.kw.get("db_constraint") is not False:
            to_table = _table_of(self.state, self.app, old.target)
            cname = index_name(table, [col], suffix=f"_fk_{to_table}_{_pk(self.state, self.app, old.target)[0]}")
            out.append(drop_fk(table, cname, line, column, origin))
        out.append(Stmt(f"ALTER TABLE {q(table)} DROP COLUMN {q(col)} CASCADE", line, column, origin))
        return out

    def delete_model(self, call: ast.Call, line: int, column: int) -> list[Stmt]:
        name = _value(_kw(call, "name", 0))
        if not isinstance(name, str):
            return []
        model = self.state.models.pop((self.app, name.lower()), None)
        table = model.table if model else f"{self.app}_{name.lower()}"
        return [Stmt(f"DROP TABLE {q(table)} CASCADE", line, column, f"Django DeleteModel({name})")]

    def rename_field(self, call: ast.Call, line: int, column: int) -> list[Stmt]:
        model_name = _value(_kw(call, "model_name", 0))
        old, new = _value(_kw(call, "old_name", 1)), _value(_kw(call, "new_name", 2))
        if not all(isinstance(v, str) for v in (model_name, old, new)):
            return []
        model = self.state.get(self.app, model_name)
        f = model.fields.pop(old, None) if model else None
        if model is not None and f is not None:
            model.fields[new] = f
        if f is not None and (f.kind == "ManyToManyField" or isinstance(f.kw.get("db_column"), str)):
            return []
        old_col = column_name(old, f) if f else old
        new_col = column_name(new, f) if f else new
        table, origin = self.table(model_name), f"Django RenameField({model_name}.{old})"
        out = [Stmt(f"ALTER TABLE {q(table)} RENAME COLUMN {q(old_col)} TO {q(new_col)}", line, column, origin)]
        if f is not None and f.kind in RELATED and f.kw.get("db_constraint") is not False:
            # alter_field() with a new column: the foreign key is dropped and added back under its new name
            to_table, to_col = _table_of(self.state, self.app, f.target), _pk(self.state, self.app, f.target)[0]
            out.insert(0, drop_fk(table, index_name(table, [old_col], f"_fk_{to_table}_{to_col}"), line, column,
                                  origin))
            fk = self.fk(table, new, f, line, column, origin)
            if fk:
                self.pending.remove(fk)
                fk.deferred = False
                out.append(fk)
        self._renamed(table=table, old_col=old_col, new_col=new_col)
        return out

    def rename_model(self, call: ast.Call, line: int, column: int) -> list[Stmt]:
        old, new = _value(_kw(call, "old_name", 0)), _value(_kw(call, "new_name", 1))
        if not isinstance(old, str) or not isinstance(new, str):
            return []
        model = self.state.get(self.app, old)
        incoming = self._incoming(model) if model is not None else []
        self.state.models.pop((self.app, old.lower()), None)
        old_table = model.table if model else f"{self.app}_{old.lower()}"
        new_table = f"{self.app}_{new.lower()}" if model is None or model.table == f"{self.app}_{old.lower()}" \
            else model.table
        if model is not None:
            model.name, model.table = new, new_table
            self.state.models[(self.app, new.lower())] = model
        for other, rname, rel in incoming:  # relations now name the model by its new name
            if rel.target and rel.target.split(".")[-1].lower() == old.lower():
                rel.target = (rel.target.rsplit(".", 1)[0] + "." + new) if "." in rel.target else new
        if old_table == new_table:
            return []
        origin = f"Django RenameModel({old})"
        out = [Stmt(f"ALTER TABLE {q(old_table)} RENAME TO {q(new_table)}", line, column, origin)]
        self._renamed(old_table=old_table, new_table=new_table)
        for other, rname, rel in incoming:
            rcol = column_name(rname, rel)
            out.append(drop_fk(other.table, index_name(other.table, [rcol], f"_fk_{old_table}_id"), line, column,
                               origin))
            fk = self.fk(other.table, rname, rel, line, column, origin)
            if fk:
                self.pending.remove(fk)
                fk.deferred = False
                out.append(fk)
        return out

    def remove_constraint(self, call: ast.Call, line: int, column: int) -> list[Stmt]:
        model_name, name = _value(_kw(call, "model_name", 0)), _value(_kw(call, "name", 1))
        if not isinstance(model_name, str) or not isinstance(name, str):
            return []
        return [Stmt(f"ALTER TABLE {q(self.table(model_name))} DROP CONSTRAINT {q(name)}", line, column,
                     f"Django RemoveConstraint({model_name})")]

    def remove_index(self, call: ast.Call, line: int, column: int) -> list[Stmt]:
        model_name, name = _value(_kw(call, "model_name", 0)), _value(_kw(call, "name", 1))
        if not isinstance(model_name, str) or not isinstance(name, str):
            return []
        return [Stmt(f"DROP INDEX IF EXISTS {q(name)}", line, column, f"Django RemoveIndex({model_name})")]

    def _incoming(self, model: Model) -> list:
        """(model, field name, field) of every foreign key in the known models that points at ``model``."""
        out = []
        for other in self.state.models.values():
            for rname, rel in other.fields.items():
                if rel.kind in RELATED and rel.kw.get("db_constraint") is not False and \
                        self.state.resolve(other.app, rel.target) is model:
                    out.append((other, rname, rel))
        return out

    def alter_model_table(self, call: ast.Call, line: int, column: int) -> list[Stmt]:
        name, table = _value(_kw(call, "name", 0)), _value(_kw(call, "table", 1))
        model = self.state.get(self.app, name) if isinstance(name, str) else None
        if model is None or not isinstance(table, str) or table == model.table:
            return []
        old, model.table = model.table, table
        return [Stmt(f"ALTER TABLE {q(old)} RENAME TO {q(table)}", line, column, f"Django AlterModelTable({name})")]


# Django's database functions as PostgreSQL spells them
_FUNCTIONS = {"Lower": "LOWER", "Upper": "UPPER", "Abs": "ABS", "Length": "LENGTH", "Trim": "TRIM",
              "Coalesce": "COALESCE", "MD5": "MD5", "Cast": None}


def _expression(node, wrap: bool = False) -> str:
    """An index expression as Django renders it: Lower("title") → (LOWER("title")), F("a") → "a"; ``wrap``:
    as an index column, always in parentheses."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return f"({q(node.value)})" if wrap else q(node.value)
    if isinstance(node, ast.Call):
        name = _callee(node)
        if name == "F" and node.args:
            return _expression(node.args[0], wrap)
        if _FUNCTIONS.get(name):
            return f"({_FUNCTIONS[name]}({', '.join(_expression(a) for a in node.args)}))"
    return f"({ast.unparse(node)})"


def _groups(value) -> list:
    """unique_together as Django normalises it: a list of tuples of field names."""
    if not isinstance(value, list) or not value:
        return []
    if all(isinstance(v, str) for v in value):
        return [tuple(value)]
    return [tuple(g) for g in value if isinstance(g, list) and all(isinstance(v, str) for v in g)]


OPERATIONS = {"CreateModel": Renderer.create_model, "AddField": Renderer.add_field,
              "AlterField": Renderer.alter_field, "AddIndex": Renderer.add_index,
              "AddConstraint": Renderer.add_constraint, "RemoveField": Renderer.remove_field,
              "DeleteModel": Renderer.delete_model, "RenameField": Renderer.rename_field,
              "RenameModel": Renderer.rename_model, "AlterModelTable": Renderer.alter_model_table,
              "RemoveConstraint": Renderer.remove_constraint, "RemoveIndex": Renderer.remove_index,
              "AlterUniqueTogether": lambda self, call, line, col: self.together_change(call, line, col, "unique"),
              "AlterIndexTogether": lambda self, call, line, col: self.together_change(call, line, col, "index")}


@dataclass
class MigrationFile:
    statements: dict  # operation line → [Stmt]
    superseded: bool = False  # another migration replaces it (a squash): a fresh database never runs it


def _migration_class(tree: ast.Module) -> ast.ClassDef | None:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            return node
    return None


_PG = {"postgresql", "postgres", "postgis"}


def _postgres_branch(test) -> bool | None:
    """For ``if connection.vendor == "postgresql":`` in a class body: True when the body is what PostgreSQL
    runs, False when the else branch is, None when the test is not about the database."""
    if not isinstance(test, ast.Compare) or len(test.ops) != 1 or "vendor" not in ast.unparse(test.left) and \
            "dialect" not in ast.unparse(test.left):
        return None
    right = test.comparators[0]
    values = [_value(right)] if isinstance(right, ast.Constant) else _value(right)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return None
    pg = any(v in _PG for v in values)
    if isinstance(test.ops[0], (ast.Eq, ast.In)):
        return pg
    if isinstance(test.ops[0], (ast.NotEq, ast.NotIn)):
        return not pg
    return None


def _class_value(cls: ast.ClassDef, name: str, body=None):
    """An attribute of the Migration class, looking into ``if connection.vendor == …`` branches."""
    for stmt in cls.body if body is None else body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
            return stmt.value
        if isinstance(stmt, ast.If):
            branch = _postgres_branch(stmt.test)
            if branch is not None:
                found = _class_value(cls, name, stmt.body if branch else stmt.orelse)
                if found is not None:
                    return found
    return None


_CACHE: dict = {}


def app_migrations(folder: str, app: str) -> dict:
    """{file name: MigrationFile} for a migrations/ folder (read once per folder, in name order — the order of
    an app's own dependency chain in practice)."""
    key = (folder, app)
    if key in _CACHE:
        return _CACHE[key]
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".py") and n != "__init__.py")
    except OSError:
        names = []
    trees, replaced = {}, set()
    for name in names:
        try:
            with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as fh:
                tree = ast.parse(fh.read(2_000_000))
        except (OSError, SyntaxError, ValueError, RecursionError):
            continue
        cls = _migration_class(tree)
        if cls is None:
            continue
        trees[name] = cls
        replaces = _value(_class_value(cls, "replaces")) if _class_value(cls, "replaces") is not None else []
        if isinstance(replaces, list):
            for pair in replaces:
                if isinstance(pair, list) and len(pair) == 2 and pair[0] == app and isinstance(pair[1], str):
                    replaced.add(pair[1] + ".py")
    state = AppState()
    renderer = Renderer(state, app)
    renderer.big_auto = "BigAutoField" in (settings_value(os.path.join(folder, "x.py"), "DEFAULT_AUTO_FIELD") or "")
    user = (settings_value(os.path.join(folder, "x.py"), "AUTH_USER_MODEL") or "").strip("'\" ")
    if re.fullmatch(r"\w+\.\w+", user):
        state.settings["AUTH_USER_MODEL"] = user
    # the replaced migrations are rendered on a state of their own: what they would send is counted (the
    # summary says how many findings a fresh database never meets), and never shapes the real state
    side = Renderer(AppState(), app)
    side.big_auto, side.state.settings = renderer.big_auto, state.settings
    out: dict = {}
    for name, cls in trees.items():
        superseded = name in replaced
        current = side if superseded else renderer
        statements: dict = {}
        current.pending = []
        ops = _class_value(cls, "operations")
        if isinstance(ops, (ast.List, ast.Tuple)):
            for op in ops.elts:
                if isinstance(op, ast.Call) and _callee(op) in OPERATIONS:
                    try:
                        stmts = OPERATIONS[_callee(op)](current, op, op.lineno, op.col_offset + 1)
                    except (KeyError, TypeError, AttributeError, ValueError):
                        stmts = []  # an operation written in a way this reading does not follow
                    statements[op.lineno] = stmts
        out[name] = MigrationFile(statements, superseded=superseded)
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[key] = out
    return out


def file_statements(path: str, app: str) -> MigrationFile | None:
    folder, name = os.path.split(os.path.abspath(path))
    return app_migrations(folder, app).get(name)


_LABEL = __import__("re").compile(r"^\s*label\s*=\s*[\"'](\w+)[\"']", __import__("re").M)


def app_label(path: str) -> str | None:
    """The app's label from its AppConfig (apps.py beside migrations/): ``label = "wagtailcore"``."""
    folder = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    key = ("label", folder)
    if key not in _CACHE:
        label = None
        try:
            with open(os.path.join(folder, "apps.py"), encoding="utf-8", errors="replace") as fh:
                m = _LABEL.search(fh.read(200_000))
                label = m.group(1) if m else None
        except OSError:
            pass
        _CACHE[key] = label
    return _CACHE[key]


_SETTINGS_CACHE: dict = {}


def settings_value(path: str, name: str) -> str | None:
    """The text assigned to a Django setting (``NAME = …`` or ``"NAME": …``) in a settings module near ``path``:
    settings.py / settings*.py / settings/*.py in the folders up to four levels above. Read, never imported."""
    import re

    folder = os.path.dirname(os.path.abspath(path))
    key = (folder, name)
    if key in _SETTINGS_CACHE:
        return _SETTINGS_CACHE[key]
    pattern = re.compile(rf"""^[ \t]*["']?{re.escape(name)}["']?\s*[:=]\s*([^\n#]+)""", re.M)
    found = None
    up = folder
    for _ in range(5):
        try:
            entries = sorted(os.listdir(up))
        except OSError:
            entries = []
        files = []
        for entry in entries:
            full = os.path.join(up, entry)
            if entry.startswith("settings") and entry.endswith(".py"):
                files.append(full)
            elif os.path.isdir(full) and not entry.startswith("."):
                for sub in ("settings.py", "settings"):
                    inner = os.path.join(full, sub)
                    if os.path.isfile(inner):
                        files.append(inner)
                    elif os.path.isdir(inner):
                        files += [os.path.join(inner, n) for n in sorted(os.listdir(inner)) if n.endswith(".py")]
        for f in files:
            try:
                with open(f, encoding="utf-8", errors="replace") as fh:
                    m = pattern.search(fh.read(500_000))
            except OSError:
                continue
            if m:
                found = m.group(1).strip().rstrip(",")
                break
        if found is not None or os.path.dirname(up) == up:
            break
        up = os.path.dirname(up)
    if len(_SETTINGS_CACHE) > 4096:
        _SETTINGS_CACHE.clear()
    _SETTINGS_CACHE[key] = found
    return found
