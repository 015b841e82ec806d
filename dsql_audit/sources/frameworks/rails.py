"""Rails: migrations (db/migrate) and db/schema.rb, read from tree-sitter's Ruby tree (``ruby.Ruby``)."""

from __future__ import annotations

import os
import re
import sys

from dsql_audit.sources.frameworks.ruby import Ruby, pluralize, singularize, tableize
from dsql_audit.sources.frameworks.synth import (Layout, Out, Value, enum_sql, file_parts, index_sql, lit, parses, qi,
                                                 qq, scalar_sql, valid_expr, valid_type, valid_where)

_RAILS_TYPES = {
    "string": "character varying", "text": "text", "integer": "integer", "bigint": "bigint", "float": "float",
    "decimal": "decimal", "numeric": "numeric", "datetime": "timestamp(6)", "timestamp": "timestamp",
    "timestamptz": "timestamptz", "time": "time", "date": "date", "binary": "bytea", "boolean": "boolean",
    "json": "json", "jsonb": "jsonb", "uuid": "uuid", "inet": "inet", "cidr": "cidr", "macaddr": "macaddr",
    "tsvector": "tsvector", "hstore": "hstore", "citext": "citext", "ltree": "ltree", "xml": "xml",
    "money": "money", "interval": "interval", "point": "point", "line": "line", "lseg": "lseg", "box": "box",
    "path": "path", "polygon": "polygon", "circle": "circle", "bit": "bit", "bit_varying": "bit varying",
    "oid": "oid", "daterange": "daterange", "numrange": "numrange", "tsrange": "tsrange", "tstzrange": "tstzrange",
    "int4range": "int4range", "int8range": "int8range", "serial": "serial", "bigserial": "bigserial",
    "smallint": "smallint", "primary_key": "bigserial", "enum": None, "virtual": None,
}
_RAILS_LITERAL_SQL = frozenset({"execute", "exec_query", "select_all", "select_one", "select_value",
                                "select_values", "select_rows", "exec_update", "exec_delete", "exec_insert"})
_RAILS_METHODS = frozenset({"create_table", "create_join_table", "change_table", "add_column", "add_reference",
                            "add_belongs_to", "add_index", "add_foreign_key", "add_timestamps", "create_enum",
                            "add_enum_value", "enable_extension", "change_column", "change_column_null",
                            "change_column_default", "remove_column", "rename_column", "rename_table",
                            "drop_table", "remove_index", "add_check_constraint"}) | _RAILS_LITERAL_SQL
# Model.where(…).update_all(…): data changed through a model; the scopes a chain may pass through on the way
_MODEL_DML = frozenset({"update_all", "delete_all", "insert_all", "insert_all!", "upsert_all", "create", "create!",
                        "find_or_create_by", "find_or_create_by!", "insert", "insert!"})
_MODEL_SCOPES = frozenset({"where", "unscoped", "all", "in_batches", "joins", "order", "limit"})
_MODEL_NAME = re.compile(r"(?:[A-Z]\w*::)*[A-Z]\w*")


def _not_deployed(rb: Ruby, node) -> bool:
    """Code a deploy does not run: ``def down`` / ``def self.down``, ``dir.down { … }`` and ``revert do … end``."""
    kind = node.type
    if kind in ("method", "singleton_method"):
        name = node.child_by_field_name("name")
        return name is not None and rb.node_text(name) == "down"
    if node.child_by_field_name("block") is None:
        return False
    method = rb.method(node)
    receiver = node.child_by_field_name("receiver")
    return (method == "down" and receiver is not None) or (method == "revert" and receiver is None)


def _join_table_name(first: str, second: str) -> str:
    """Rails' ``derive_join_table_name``: sorted names, a shared prefix said once (music_artists, music_records →
    music_artists_records)."""
    joined = "\0".join(sorted((first, second)))
    return re.sub(r"^(.*_)(.+)\0\1(.+)", r"\1\2_\3", joined).replace("\0", "_")


class _Rails:
    def __init__(self, path: str, text: str, out: Out):
        self.rb = Ruby(text)
        self.rb.scan(lambda node: _not_deployed(self.rb, node))
        self.out = out
        self.pos = out.pos
        norm = path.replace("\\", "/")
        self.schema = os.path.basename(norm) == "schema.rb"
        no_txn = any(self.rb.method(c) == "disable_ddl_transaction!" for c in self.rb.calls)
        self.txn = None if self.schema or no_txn else out.new_txn()

    # -- helpers
    def lc(self, off):
        return self.pos.lc(off)

    @staticmethod
    def name(v: Value | None) -> str | None:
        if v is None:
            return None
        if v.kind in ("sym", "str"):
            return str(v.value)
        return None

    @staticmethod
    def names(v: Value | None) -> list[str]:
        if v is None:
            return []
        if v.kind == "arr":
            return [str(x.value) for x in v.value if x.kind in ("sym", "str")]
        n = _Rails.name(v)
        if n is None:
            return []
        # a string of columns with SQL around them (add_index :t, "lower(email)") is one expression key
        return [n]

    @staticmethod
    def truthy(v: Value | None) -> bool:
        return v is not None and not (v.kind == "bool" and v.value is False) and v.kind != "nil"

    @staticmethod
    def is_false(v: Value | None) -> bool:
        return v is not None and v.kind == "bool" and v.value is False

    @staticmethod
    def sql_text(v: Value | None) -> str | None:
        """The text of a string or heredoc (``as: <<~SQL``), on one line."""
        if v is None:
            return None
        if v.kind == "str":
            text = str(v.value)
        elif v.kind == "heredoc":
            text = v.value["raw"]
        else:
            return None
        return " ".join(text.split())

    def default_sql(self, v: Value | None) -> str | None:
        if v is None or v.kind == "nil":
            return None
        if v.kind in ("str", "sym", "num", "bool"):
            return scalar_sql(v)
        if v.kind == "lambda" and valid_expr(v.value):
            return v.value
        if v.kind in ("arr", "hash"):
            return "'{}'"
        return None

    def col_type(self, method: str, opts: dict, extra: list) -> str | None:
        if method == "column":
            t = self.name(extra[0]) if extra else None
            if t is None:
                return None
            if t in _RAILS_TYPES:
                method = t
            else:
                return t if valid_type(t) else None
        if method == "virtual":
            return self.generated_type(opts)
        if method in ("references", "belongs_to"):
            t = self.name(opts.get("type")) or "bigint"
            return _RAILS_TYPES.get(t, t)
        if method == "enum":
            t = self.name(opts.get("enum_type"))
            return qi(t) if t else None
        base = _RAILS_TYPES.get(method)
        if base is None:
            return None
        limit, precision, scale = opts.get("limit"), opts.get("precision"), opts.get("scale")
        if method == "string" and limit is not None and limit.kind == "num":
            base = f"character varying({limit.value})"
        elif method == "integer" and limit is not None and limit.kind == "num":
            base = {"1": "smallint", "2": "smallint", "8": "bigint"}.get(limit.value, "integer")
        elif method in ("decimal", "numeric") and precision is not None and precision.kind == "num":
            base = f"{method}({precision.value}" + (f", {scale.value})" if scale is not None and scale.kind == "num"
                                                    else ")")
        elif method in ("datetime", "timestamp") and precision is not None and precision.kind == "num":
            base = f"timestamp({precision.value})"
        if self.truthy(opts.get("array")):
            base += "[]"
        return base

    def generated_type(self, opts: dict) -> str | None:
        """``t.virtual :c, type: :tsvector, as: "…", stored: true``: Rails' PostgreSQL adapter takes the column's
        type from ``type:`` and writes ``GENERATED ALWAYS AS (…) STORED``; without ``stored: true`` it raises
        (PostgreSQL has no virtual generated columns), so nothing runs."""
        inner = self.name(opts.get("type"))
        if inner is None or inner == "virtual":
            return None
        base = self.col_type(inner, opts, []) if inner in _RAILS_TYPES else (inner if valid_type(inner) else None)
        if base is None or opts.get("as") is None:
            return base
        if not self.truthy(opts.get("stored")):
            return None
        expr = self.sql_text(opts["as"])
        # an expression we cannot read still leaves a column of that type (what the type rules judge)
        return f"{base} GENERATED ALWAYS AS ({expr}) STORED" if valid_expr(expr) else base

    def col_def(self, base: str, opts: dict) -> str:
        defn = base
        if self.is_false(opts.get("null")):
            defn += " NOT NULL"
        d = self.default_sql(opts.get("default"))
        if d is not None:
            defn += f" DEFAULT {d}"
        if self.truthy(opts.get("primary_key")):
            defn += " PRIMARY KEY"
        return defn

    def index_name(self, table: str, cols: list[str]) -> str:
        keys = "_and_".join(re.sub(r"\W+", "_", c).strip("_") for c in cols)
        return f"index_{table}_on_{keys}"

    def index(self, table: str, cols: list[str], opts: dict, line: int, col: int, origin: str):
        if not cols:
            return
        name = self.name(opts.get("name")) or self.index_name(table, cols)
        keys = []
        order = opts.get("order")
        for c in cols:
            if re.fullmatch(r"\w+", c):
                k = qi(c)
                if order is not None and order.kind == "hash" and c in order.value:
                    direction = self.name(order.value[c]) or ""
                    k += " DESC" if direction.lower() == "desc" else ""
                keys.append(k)
            elif valid_expr(c):
                keys.append(f"({c})" if not c.startswith("(") else c)
        if not keys:
            return
        concurrently = self.name(opts.get("algorithm")) == "concurrently"
        sql = index_sql(name, qi(table), keys, unique=self.truthy(opts.get("unique")), concurrently=concurrently,
                        using=self.name(opts.get("using")), where=self.name(opts.get("where")),
                        if_not_exists=self.truthy(opts.get("if_not_exists")))
        inc = opts.get("include")
        if inc is not None and self.names(inc):
            head, _, tail = sql.partition(" WHERE ")
            sql = head + " INCLUDE (" + ", ".join(qi(c) for c in self.names(inc)) + ")" + \
                (" WHERE " + tail if tail else "")
        self.out.sql(sql, line, col, origin, self.txn)

    def reference_columns(self, table: str, ref: str, opts: dict) -> list[tuple[str, str]]:
        base = self.col_type("references", opts, [])
        cols = [(f"{ref}_id", self.col_def(base, opts))]
        if self.truthy(opts.get("polymorphic")):
            cols.insert(0, (f"{ref}_type", self.col_def("character varying", opts)))
        return cols

    def reference_index(self, table: str, ref: str, opts: dict, line: int, col: int, origin: str):
        idx = opts.get("index")
        if self.is_false(idx):
            return
        cols = [f"{ref}_type", f"{ref}_id"] if self.truthy(opts.get("polymorphic")) else [f"{ref}_id"]
        self.index(table, cols, idx.value if idx is not None and idx.kind == "hash" else {}, line, col, origin)

    def reference_fk(self, table: str, ref: str, opts: dict, line: int, col: int, origin: str, later: bool):
        fk = opts.get("foreign_key")
        if not self.truthy(fk) or self.truthy(opts.get("polymorphic")):
            return
        target, on_delete, pk = pluralize(ref), None, "id"
        if fk.kind == "hash":
            target = self.name(fk.value.get("to_table")) or target
            on_delete = self.name(fk.value.get("on_delete"))
            pk = self.name(fk.value.get("primary_key")) or pk
        self.out.fk(line, col, origin, "Rails", f"{table}.{ref}_id", f"{target}.{pk}", on_delete, later, self.txn)

    # -- statements
    def run(self):
        rb = self.rb
        for call in rb.calls:
            method = rb.method(call)
            receiver = call.child_by_field_name("receiver")
            try:
                if method in _RAILS_METHODS and (receiver is None or method in _RAILS_LITERAL_SQL):
                    handler = getattr(self, "do_" + method, None) or self.do_literal
                    handler(method, call, rb.start(call.child_by_field_name("method")))
                elif method in _MODEL_DML and receiver is not None:
                    self.model_dml(call, method, receiver)
            except Exception:  # noqa: BLE001 - one unreadable statement does not stop the file
                continue
        self.out.records.sort(key=lambda e: (e.line, e.column))

    def model_dml(self, call, op: str, receiver):
        """Data changed through a model in a migration (DML in the migration's transaction):
        ``Model[.scope(…)…].update_all(…)``."""
        rb = self.rb
        where = False
        while receiver.type == "call" and rb.method(receiver) in _MODEL_SCOPES:
            where = where or rb.method(receiver) == "where"
            receiver = receiver.child_by_field_name("receiver")
            if receiver is None:
                return
        if receiver.type not in ("constant", "scope_resolution"):
            return
        model = rb.node_text(receiver)
        if not _MODEL_NAME.fullmatch(model) or model in ("ActiveRecord", "Base", "ActiveRecord::Base"):
            return
        table = qi(tableize(model))
        line, col = self.lc(rb.start(receiver))
        kind = op.rstrip("!")
        if kind == "update_all":
            pos, kw = rb.args(call)
            if kw:
                sets = ", ".join(f"{qi(k)} = ${i + 1}" for i, k in enumerate(kw))
            elif pos and pos[0].kind == "str" and parses(f"UPDATE t SET {pos[0].value}"):
                sets = pos[0].value
            else:
                sets = "updated_at = $1"
            n = sets.count("$") + 1
            sql = f"UPDATE {table} SET {sets}" + (f" WHERE ${n}" if where else "")
        elif kind == "delete_all":
            sql = f"DELETE FROM {table}" + (" WHERE $1" if where else "")
        else:
            sql = f"INSERT INTO {table} DEFAULT VALUES"
        self.out.sql(sql, line, col, f"Rails {model}.{op}", self.txn, dynamic=True)

    def do_literal(self, method, call, start):
        pos, kw = self.rb.args(call)
        if not pos:
            return
        v = pos[0]
        origin = f"Rails {method}"
        if v.kind == "heredoc":
            a, _ = v.value["body"]
            line, col = self.lc(a)
            self.out.literal(v.value["raw"], line, col, origin, self.txn, params=(), dynamic=v.value["dynamic"])
        elif v.kind == "str" and v.extra:
            cstart, raw, dynamic = v.extra
            text = raw if "\\" not in raw else v.value
            line, col = self.lc(cstart)
            self.out.literal(text, line, col, origin, self.txn, params=(), dynamic=dynamic)

    def do_enable_extension(self, method, call, start):
        pos, kw = self.rb.args(call)
        name = self.name(pos[0]) if pos else None
        if name:
            line, col = self.lc(start)
            self.out.sql(f"CREATE EXTENSION IF NOT EXISTS {qq(name)}", line, col, "Rails enable_extension", self.txn)

    def do_create_enum(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) >= 2:
            values = self.names(pos[1])
            name = self.name(pos[0])
            if name and values:
                line, col = self.lc(start)
                self.out.sql(enum_sql(name, values), line, col, "Rails create_enum", self.txn)

    def do_add_enum_value(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) >= 2 and self.name(pos[0]) and self.name(pos[1]):
            line, col = self.lc(start)
            self.out.sql(f"ALTER TYPE {qi(self.name(pos[0]))} ADD VALUE {lit(self.name(pos[1]))}", line, col,
                         "Rails add_enum_value", self.txn)

    def id_column(self, kw: dict) -> str:
        """The definition of ``create_table``'s own primary key column, from its ``id:`` option."""
        id_opt = kw.get("id")
        id_type = self.name(id_opt) if id_opt is not None else None
        if id_type in (None, "primary_key", "bigint", "bigserial"):
            return "bigserial PRIMARY KEY"
        if id_type in ("integer", "serial"):
            return "serial PRIMARY KEY"
        if id_type == "uuid":
            d = self.default_sql(kw.get("default")) or "gen_random_uuid()"
            return f"uuid DEFAULT {d} PRIMARY KEY"
        t = _RAILS_TYPES.get(id_type, id_type)
        return f"{t} PRIMARY KEY" if t and valid_type(t) else "bigserial PRIMARY KEY"

    def do_create_table(self, method, call, start):
        rb = self.rb
        pos, kw = rb.args(call)
        table = self.name(pos[0]) if pos else None
        if table is None:
            return
        line, col = self.lc(start)
        layout = Layout(line, col)
        head = "CREATE TABLE "
        if self.truthy(kw.get("if_not_exists")):
            head += "IF NOT EXISTS "
        layout.put(f"{head}{qi(table)} (")
        ncols = 0
        pk = kw.get("primary_key")
        pk_names = self.names(pk) if pk is not None else []
        composite = len(pk_names) > 1
        if not self.is_false(kw.get("id")) and not composite:
            layout.column(qi(pk_names[0] if pk_names else "id"), self.id_column(kw), None, None, None)
            ncols += 1
        after_table: list = []
        blk = rb.block(call)
        if blk:
            ncols = self.table_body(table, blk[0], blk[1], layout, ncols, after_table, create=True)
        if composite:
            if ncols:
                layout.comma()
            layout.put("PRIMARY KEY (" + ", ".join(qi(c) for c in pk_names) + ")")
            ncols += 1
        layout.put(")")
        if ncols:
            self.out.sql(layout.text(), line, col, f"Rails {method}", self.txn)
        for emit in after_table:
            emit()

    def do_create_join_table(self, method, call, start):
        rb = self.rb
        pos, kw = rb.args(call)
        names = [self.name(p) for p in pos[:2] if self.name(p)]
        if len(names) != 2:
            return
        line, col = self.lc(start)
        table = self.name(kw.get("table_name")) or _join_table_name(*names)
        # Rails: td.references <singular name>, null: false, index: false, **column_options
        column_options = kw.get("column_options")
        ref_opts = {"null": Value("bool", False, start, start)}
        if column_options is not None and column_options.kind == "hash":
            ref_opts.update(column_options.value)
        layout = Layout(line, col)
        layout.put(f"CREATE TABLE {qi(table)} (")
        cols = [f"{qi(c)} {d}" for n in names for c, d in self.reference_columns(table, singularize(n), ref_opts)]
        layout.put(", ".join(cols))
        after_table: list = []
        blk = rb.block(call)
        if blk:
            self.table_body(table, blk[0], blk[1], layout, len(cols), after_table, create=True)
        layout.put(")")
        self.out.sql(layout.text(), line, col, "Rails create_join_table", self.txn)
        for emit in after_table:
            emit()

    def do_change_table(self, method, call, start):
        rb = self.rb
        pos, kw = rb.args(call)
        table = self.name(pos[0]) if pos else None
        blk = rb.block(call)
        if table and blk:
            after_table: list = []
            self.table_body(table, blk[0], blk[1], None, 0, after_table, create=False)
            for emit in after_table:
                emit()

    def table_body(self, table, param, body, layout, ncols, after_table, create: bool) -> int:
        """``t.<type> :name, …`` calls of a create_table / change_table block."""
        rb = self.rb
        if not param:
            return ncols
        for call in rb.calls_within(body):
            receiver = call.child_by_field_name("receiver")
            if receiver is None or receiver.type != "identifier" or rb.node_text(receiver) != param:
                continue
            method = rb.method(call)
            pos, kw = rb.args(call)
            line, col = self.lc(rb.start(call))
            tline, tcol = self.lc(rb.start(call.child_by_field_name("method")))
            origin = f"Rails t.{method}"
            if method == "index":
                cols = self.names(pos[0]) if pos else []
                after_table.append(lambda cols=cols, kw=kw, line=line, col=col, origin=origin:
                                   self.index(table, cols, kw, line, col, origin))
                continue
            if method == "timestamps":
                cols = [("created_at", "timestamp(6) NOT NULL"), ("updated_at", "timestamp(6) NOT NULL")]
                if "null" in kw:
                    cols = [(c, self.col_def("timestamp(6)", kw)) for c, _ in cols]
            elif method in ("references", "belongs_to"):
                cols = []
                for p in pos:
                    ref = self.name(p)
                    if not ref:
                        continue
                    cols += self.reference_columns(table, ref, kw)
                    after_table.append(lambda ref=ref, kw=kw, line=line, col=col:
                                       self.reference_index(table, ref, kw, line, col, "Rails t.references"))
                    after_table.append(lambda ref=ref, kw=kw, line=line, col=col:
                                       self.reference_fk(table, ref, kw, line, col, "Rails t.references",
                                                         later=not create))
            elif method in ("remove", "remove_references", "remove_belongs_to", "remove_timestamps", "rename",
                            "change", "change_default", "change_null", "remove_index", "check_constraint"):
                self.change_table_op(table, method, pos, kw, line, col)
                continue
            else:
                base = self.col_type(method, kw, pos[1:] if method == "column" else [])
                if base is None:
                    continue
                names = [self.name(p) for p in (pos[:1] if method == "column" else pos) if self.name(p)]
                cols = [(n, self.col_def(base, kw)) for n in names]
                idx = kw.get("index")
                if self.truthy(idx):
                    for n in names:
                        iopts = idx.value if idx.kind == "hash" else {}
                        after_table.append(lambda n=n, iopts=iopts, line=line, col=col:
                                           self.index(table, [n], iopts, line, col, "Rails t.index"))
            for cname, cdef in cols:
                if create:
                    if ncols:
                        layout.comma()
                    layout.column(qi(cname), cdef, tline, None, tcol)
                    ncols += 1
                else:
                    self.out.sql(f"ALTER TABLE {qi(table)} ADD COLUMN {qi(cname)} {cdef}", line, col,
                                 f"Rails change_table t.{method}", self.txn)
        return ncols

    def change_table_op(self, table, method, pos, kw, line, col):
        names = [self.name(p) for p in pos if self.name(p)]
        t = qi(table)
        sqls = []
        if method == "remove":
            sqls = [f"ALTER TABLE {t} DROP COLUMN {qi(n)}" for n in names]
        elif method == "rename" and len(names) >= 2:
            sqls = [f"ALTER TABLE {t} RENAME COLUMN {qi(names[0])} TO {qi(names[1])}"]
        elif method == "change" and len(pos) >= 2:
            base = self.col_type("column", kw, [pos[1]])
            if base:
                sqls = [f"ALTER TABLE {t} ALTER COLUMN {qi(names[0])} TYPE {base}"]
        for sql in sqls:
            self.out.sql(sql, line, col, f"Rails t.{method}", self.txn)

    def do_add_column(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) < 3:
            return
        table, cname = self.name(pos[0]), self.name(pos[1])
        tname = self.name(pos[2])
        base = self.col_type(tname, kw, []) if tname in _RAILS_TYPES else self.col_type("column", kw, [pos[2]])
        if table and cname and base:
            line, col = self.lc(start)
            tline, tcol = self.lc(pos[2].start)
            layout = Layout(line, col)
            layout.put(f"ALTER TABLE {qi(table)} ADD COLUMN")
            layout.column(qi(cname), self.col_def(base, kw), tline, None, tcol)
            self.out.sql(layout.text(), line, col, "Rails add_column", self.txn)

    def do_add_timestamps(self, method, call, start):
        pos, kw = self.rb.args(call)
        table = self.name(pos[0]) if pos else None
        if table:
            line, col = self.lc(start)
            for c in ("created_at", "updated_at"):
                self.out.sql(f"ALTER TABLE {qi(table)} ADD COLUMN {c} {self.col_def('timestamp(6)', kw)}",
                             line, col, "Rails add_timestamps", self.txn)

    def do_add_reference(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) >= 2 and self.name(pos[0]) and self.name(pos[1]):
            table, ref = self.name(pos[0]), self.name(pos[1])
            line, col = self.lc(start)
            for cname, cdef in self.reference_columns(table, ref, kw):
                self.out.sql(f"ALTER TABLE {qi(table)} ADD COLUMN {qi(cname)} {cdef}", line, col,
                             f"Rails {method}", self.txn)
            self.reference_index(table, ref, kw, line, col, f"Rails {method}")
            self.reference_fk(table, ref, kw, line, col, f"Rails {method}", later=True)

    do_add_belongs_to = do_add_reference

    def do_add_index(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) >= 2 and self.name(pos[0]):
            line, col = self.lc(start)
            self.index(self.name(pos[0]), self.names(pos[1]), kw, line, col, "Rails add_index")

    def do_add_foreign_key(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) >= 2 and self.name(pos[0]) and self.name(pos[1]):
            table, target = self.name(pos[0]), self.name(pos[1])
            # Rails' foreign_key_column_for: the target table's singular and "_id", whatever its primary key
            column = self.name(kw.get("column")) or f"{singularize(target)}_id"
            pk = self.name(kw.get("primary_key")) or "id"
            line, col = self.lc(start)
            self.out.fk(line, col, "Rails add_foreign_key", "Rails", f"{table}.{column}", f"{target}.{pk}",
                        self.name(kw.get("on_delete")), True, self.txn)

    def do_change_column(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) >= 3 and all(self.name(p) for p in pos[:2]):
            base = self.col_type("column", kw, [pos[2]])
            if base:
                line, col = self.lc(start)
                self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} ALTER COLUMN {qi(self.name(pos[1]))} TYPE {base}",
                             line, col, "Rails change_column", self.txn)

    def do_change_column_null(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) >= 3 and all(self.name(p) for p in pos[:2]) and pos[2].kind == "bool":
            line, col = self.lc(start)
            action = "DROP NOT NULL" if pos[2].value else "SET NOT NULL"
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} ALTER COLUMN {qi(self.name(pos[1]))} {action}",
                         line, col, "Rails change_column_null", self.txn)

    def do_change_column_default(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) >= 2 and all(self.name(p) for p in pos[:2]):
            value = kw.get("to") if "to" in kw else (pos[2] if len(pos) > 2 else None)
            d = self.default_sql(value)
            action = f"SET DEFAULT {d}" if d is not None else "DROP DEFAULT"
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} ALTER COLUMN {qi(self.name(pos[1]))} {action}",
                         line, col, "Rails change_column_default", self.txn)

    def do_remove_column(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) >= 2 and all(self.name(p) for p in pos[:2]):
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} DROP COLUMN {qi(self.name(pos[1]))}", line, col,
                         "Rails remove_column", self.txn)

    def do_rename_column(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) >= 3 and all(self.name(p) for p in pos[:3]):
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} RENAME COLUMN {qi(self.name(pos[1]))} TO "
                         f"{qi(self.name(pos[2]))}", line, col, "Rails rename_column", self.txn)

    def do_rename_table(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) >= 2 and all(self.name(p) for p in pos[:2]):
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} RENAME TO {qi(self.name(pos[1]))}", line, col,
                         "Rails rename_table", self.txn)

    def do_drop_table(self, method, call, start):
        pos, kw = self.rb.args(call)
        if pos and self.name(pos[0]):
            line, col = self.lc(start)
            sql = "DROP TABLE " + ("IF EXISTS " if self.truthy(kw.get("if_exists")) else "") + qi(self.name(pos[0]))
            if self.name(kw.get("force")) == "cascade":
                sql += " CASCADE"
            self.out.sql(sql, line, col, "Rails drop_table", self.txn)

    def do_remove_index(self, method, call, start):
        pos, kw = self.rb.args(call)
        if pos and self.name(pos[0]):
            table = self.name(pos[0])
            name = self.name(kw.get("name"))
            cols = self.names(kw.get("column")) or (self.names(pos[1]) if len(pos) > 1 else [])
            name = name or (self.index_name(table, cols) if cols else None)
            if name:
                line, col = self.lc(start)
                conc = " CONCURRENTLY" if self.name(kw.get("algorithm")) == "concurrently" else ""
                self.out.sql(f"DROP INDEX{conc} {qi(name)}", line, col, "Rails remove_index", self.txn)

    def do_add_check_constraint(self, method, call, start):
        pos, kw = self.rb.args(call)
        if len(pos) >= 2 and self.name(pos[0]) and pos[1].kind == "str" and valid_where(pos[1].value):
            table = self.name(pos[0])
            name = self.name(kw.get("name")) or f"chk_rails_{abs(hash(pos[1].value)) % 10**10:010d}"
            not_valid = " NOT VALID" if self.is_false(kw.get("validate")) else ""
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(table)} ADD CONSTRAINT {qi(name)} CHECK ({pos[1].value}){not_valid}",
                         line, col, "Rails add_check_constraint", self.txn)


NAME = "rails"


def detect(path: str, text: str) -> bool:
    name, ext, parts = file_parts(path)
    if ext != ".rb":
        return False
    if name == "schema.rb" and "ActiveRecord::Schema" in text:
        return True
    return ("migrate" in parts and "db" in parts) or "ActiveRecord::Migration" in text


def emit(path: str, text: str, out: Out):
    _Rails(path, text, out).run()


def extract(path: str, text: str) -> list:
    """This framework's records for one file (whatever detect() says)."""
    from dsql_audit.sources import frameworks

    return frameworks.run(sys.modules[__name__], path, text)
