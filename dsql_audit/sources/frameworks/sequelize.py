"""Sequelize migrations (queryInterface)."""

from __future__ import annotations

import re
import sys

from dsql_audit.sources.frameworks.js import (JsFile, JsMigration, emit_migration, js_bool, js_default, js_get,
                                              js_str, js_strs, migration_kind)
from dsql_audit.sources.frameworks.synth import Layout, Out, Value, enum_sql, index_sql, qi, qq, valid_type

# ---- Sequelize

_SEQUELIZE_TYPES = {"STRING": "VARCHAR(255)", "CHAR": "CHAR(255)", "TEXT": "TEXT", "CITEXT": "CITEXT",
                    "INTEGER": "INTEGER", "BIGINT": "BIGINT", "SMALLINT": "SMALLINT", "TINYINT": "SMALLINT",
                    "MEDIUMINT": "INTEGER", "FLOAT": "FLOAT", "REAL": "REAL", "DOUBLE": "DOUBLE PRECISION",
                    "DECIMAL": "DECIMAL", "NUMERIC": "DECIMAL", "BOOLEAN": "BOOLEAN",
                    "DATE": "TIMESTAMP WITH TIME ZONE", "DATEONLY": "DATE", "TIME": "TIME", "UUID": "UUID",
                    "JSON": "JSON", "JSONB": "JSONB", "BLOB": "BYTEA", "INET": "INET", "CIDR": "CIDR",
                    "MACADDR": "MACADDR", "TSVECTOR": "TSVECTOR", "HSTORE": "HSTORE", "GEOMETRY": "GEOMETRY",
                    "GEOGRAPHY": "GEOGRAPHY", "RANGE": "INT4RANGE"}


class _Sequelize(JsMigration):
    orm = "Sequelize"
    runner = "queryInterface"
    in_transaction = False  # a helper called inside sequelize.transaction(…)
    METHODS = ("createTable", "addColumn", "changeColumn", "addIndex", "addConstraint", "removeColumn",
               "renameColumn", "dropTable", "renameTable", "bulkInsert", "bulkDelete", "bulkUpdate", "query")

    def run(self, body, names):
        """Each call joins the migration's transaction when it is inside ``sequelize.transaction(…)`` or passes
        ``{ transaction }``; otherwise it runs on its own (Sequelize does not wrap a migration)."""
        js, base_txn = self.js, self.txn
        for call in js.under(body)[0]:
            method = self.method(call, names)
            if method is None:
                continue
            arguments = call.child_by_field_name("arguments")
            passes = re.search(r"\btransaction\s*[:,}]", js.code[js.start(arguments):js.end(arguments)])
            self.txn = base_txn if (self.inside_transaction(call) or passes) else None
            try:
                getattr(self, "m_" + method)(self.args(call), js.start(js.callee(call)),
                                             f"Sequelize queryInterface.{method}")
            except Exception:  # noqa: BLE001
                continue
        self.txn = base_txn

    def method(self, call, names) -> str | None:
        """``queryInterface.addColumn(…)`` → addColumn; ``queryInterface.sequelize.query(…)`` → query."""
        js = self.js
        fn = js.callee(call)
        if fn is None or fn.type != "member_expression":
            return None
        method = js.node_text(fn.child_by_field_name("property"))
        obj = fn.child_by_field_name("object")
        if method == "query":
            if obj.type != "member_expression" or js.node_text(obj.child_by_field_name("property")) != "sequelize":
                return None
            obj = obj.child_by_field_name("object")
        elif method not in self.METHODS:
            return None
        return method if obj.type == "identifier" and js.node_text(obj) in names else None

    def inside_transaction(self, node) -> bool:
        """Within the arguments of a ``….transaction(…)`` call (or in a helper called there)."""
        js, p = self.js, node.parent
        while p is not None:
            if p.type == "arguments" and p.parent is not None and p.parent.type == "call_expression":
                fn = js.callee(p.parent)
                if fn is not None and fn.type == "member_expression" and \
                        js.node_text(fn.child_by_field_name("property")) == "transaction":
                    return True
            p = p.parent
        return self.in_transaction

    def nested(self, call) -> JsMigration:
        reader = _Sequelize(self.js, self.out, self.txn)
        reader.in_transaction = self.inside_transaction(call)
        return reader

    def coltype(self, table: str, col: str, v: Value) -> tuple[str | None, list]:
        if v is None:
            return None, []
        if v.kind == "str":
            return (v.value if valid_type(v.value) else None), []
        if v.kind != "chain":
            return None, []
        segs = v.value
        names = [x[0] for x in segs]
        tname = names[-1] if names[-1] != "UNSIGNED" else names[-2]
        args = next((x[1] for x in reversed(segs) if x[1] is not None and x[0] == tname), None) or []
        if tname == "ENUM":
            values = [str(a.value) for a in args if a.kind == "str"]
            if not values and args and args[0].kind == "obj":
                values = js_strs(args[0].value.get("values"))
            ename = f"enum_{table}_{col}"
            return qq(ename), ([(enum_sql(ename, values, qq), v.start)] if values else [])
        if tname == "ARRAY":
            inner, pre = self.coltype(table, col, args[0]) if args else (None, [])
            return (f"{inner}[]" if inner else None), pre
        base = _SEQUELIZE_TYPES.get(tname)
        if base is None:
            return None, []
        nums = [a.value for a in args if a.kind == "num"]
        if tname in ("STRING", "CHAR") and nums:
            base = f"{base.split('(')[0]}({nums[0]})"
        elif tname in ("DECIMAL", "NUMERIC") and nums:
            base = f"DECIMAL({', '.join(nums[:2])})"
        return base, []

    def attribute(self, table, col, v: Value) -> tuple[str | None, list, Value | None]:
        """(definition, statements before, the attribute's type value) of one attribute."""
        if v.kind == "obj":
            tv = v.value.get("type")
            base, pre = self.coltype(table, col, tv)
            if base is None:
                return None, pre, tv
            if js_bool(v.value.get("autoIncrement")):
                base = {"INTEGER": "SERIAL", "BIGINT": "BIGSERIAL", "SMALLINT": "SMALLSERIAL"}.get(base, base)
            defn = base
            an = v.value.get("allowNull")
            if an is not None and an.kind == "bool" and an.value is False:
                defn += " NOT NULL"
            d = js_default(v.value.get("defaultValue"))
            if d is not None:
                defn += f" DEFAULT {d}"
            if js_bool(v.value.get("unique")):
                defn += " UNIQUE"
            if js_bool(v.value.get("primaryKey")):
                defn += " PRIMARY KEY"
            return defn, pre, tv
        base, pre = self.coltype(table, col, v)
        return base, pre, v

    def reference(self, table, col, v: Value, later, origin):
        ref = v.value.get("references") if v.kind == "obj" else None
        if ref is None or ref.kind != "obj":
            return
        model = ref.value.get("model")
        target = js_str(model) or js_str(js_get(model, "tableName"))
        key = js_str(ref.value.get("key")) or "id"
        self.fk(ref.start, origin, f"{table}.{col}", f"{target}.{key}" if target else None,
                js_str(v.value.get("onDelete")), later)

    def table_name(self, v):
        return js_str(v) or js_str(js_get(v, "tableName"))

    def m_createTable(self, args, off, origin):
        if len(args) < 2 or args[1].kind != "obj":
            return
        table = self.table_name(args[0])
        if not table:
            return
        line, col = self.lc(off)
        layout = Layout(line, col)
        layout.put(f"CREATE TABLE {qi(table)} (")
        ncols, pre, refs = 0, [], []
        for cname, v in args[1].value.items():
            defn, before, tv = self.attribute(table, cname, v)
            pre += before
            if defn is None:
                continue
            if ncols:
                layout.comma()
            tline, tcol = self.lc(tv.start) if tv is not None else (None, None)
            layout.column(qi(cname), defn, tline, None, tcol)
            ncols += 1
            refs.append((cname, v))
        layout.put(")")
        for sql, o in pre:
            self.sql(sql, o, "Sequelize ENUM")
        if ncols:
            self.statement(layout.text(), line, col, "Sequelize createTable")
        for cname, v in refs:
            self.reference(table, cname, v, False, "Sequelize createTable references")

    def m_addColumn(self, args, off, origin):
        if len(args) < 3:
            return
        table, cname = self.table_name(args[0]), js_str(args[1])
        if not (table and cname):
            return
        defn, pre, tv = self.attribute(table, cname, args[2])
        for sql, o in pre:
            self.sql(sql, o, "Sequelize ENUM")
        if defn:
            line, col = self.lc(off)
            layout = Layout(line, col)
            layout.put(f"ALTER TABLE {qi(table)} ADD COLUMN")
            tline, tcol = self.lc(tv.start) if tv is not None else (None, None)
            layout.column(qi(cname), defn, tline, None, tcol)
            self.statement(layout.text(), line, col, "Sequelize addColumn")
        self.reference(table, cname, args[2], True, "Sequelize addColumn references")

    def m_changeColumn(self, args, off, origin):
        if len(args) < 3:
            return
        table, cname = self.table_name(args[0]), js_str(args[1])
        v = args[2]
        base, pre, _ = self.attribute(table or "", cname or "", v.value.get("type") if v.kind == "obj" else v)
        if table and cname and base:
            for sql, o in pre:
                self.sql(sql, o, "Sequelize ENUM")
            self.sql(f"ALTER TABLE {qi(table)} ALTER COLUMN {qi(cname)} TYPE {base}", off, "Sequelize changeColumn")
            an = v.value.get("allowNull") if v.kind == "obj" else None
            if an is not None and an.kind == "bool" and an.value is False:
                self.sql(f"ALTER TABLE {qi(table)} ALTER COLUMN {qi(cname)} SET NOT NULL", off,
                         "Sequelize changeColumn")
            self.reference(table, cname, v, True, "Sequelize changeColumn references")

    def m_addIndex(self, args, off, origin):
        if not args:
            return
        table = self.table_name(args[0])
        opts = next((a for a in args[1:] if a.kind == "obj"), None)
        fields = js_strs(args[1]) if len(args) > 1 and args[1].kind == "arr" else []
        if opts is not None and not fields:
            fv = opts.value.get("fields")
            if fv is not None and fv.kind == "arr":
                fields = [str(x.value) if x.kind == "str" else js_str(js_get(x, "name")) or ""
                          for x in fv.value]
                fields = [f for f in fields if f]
        if not (table and fields):
            return
        o = opts.value if opts is not None else {}
        name = js_str(o.get("name")) or re.sub(r"\W", "_", f"{table}_{'_'.join(fields)}").lower()
        unique = js_bool(o.get("unique")) or js_str(o.get("type")) == "UNIQUE"
        using = js_str(o.get("using")) or js_str(o.get("method"))
        self.sql(index_sql(name, qi(table), [qi(f) for f in fields], unique=unique,
                            concurrently=js_bool(o.get("concurrently")), using=using), off, "Sequelize addIndex")

    def m_addConstraint(self, args, off, origin):
        if len(args) < 2:
            return
        table = self.table_name(args[0])
        opts = args[1] if args[1].kind == "obj" else (args[2] if len(args) > 2 and args[2].kind == "obj" else None)
        if opts is None or not table:
            return
        o = opts.value
        kind = (js_str(o.get("type")) or "").lower()
        fields = js_strs(o.get("fields")) or (js_strs(args[1]) if args[1].kind == "arr" else [])
        name = js_str(o.get("name"))
        if kind in ("foreign key", "foreign_key", "foreignkey"):
            ref = o.get("references")
            target = js_str(js_get(ref, "table")) or js_str(js_get(js_get(ref, "table"), "tableName"))
            field = js_str(js_get(ref, "field")) or "id"
            self.fk(off, "Sequelize addConstraint", f"{table}.{','.join(fields)}",
                    f"{target}.{field}" if target else None, js_str(o.get("onDelete")), True)
        elif kind in ("unique", "primary key") and fields:
            cons = "UNIQUE" if kind == "unique" else "PRIMARY KEY"
            self.sql(f"ALTER TABLE {qi(table)} ADD " + (f"CONSTRAINT {qi(name)} " if name else "") +
                     f"{cons} (" + ", ".join(qi(f) for f in fields) + ")", off, "Sequelize addConstraint")

    def m_removeColumn(self, args, off, origin):
        if len(args) >= 2 and self.table_name(args[0]) and js_str(args[1]):
            self.sql(f"ALTER TABLE {qi(self.table_name(args[0]))} DROP COLUMN {qi(js_str(args[1]))}", off,
                     "Sequelize removeColumn")

    def m_renameColumn(self, args, off, origin):
        if len(args) >= 3 and self.table_name(args[0]) and js_str(args[1]) and js_str(args[2]):
            self.sql(f"ALTER TABLE {qi(self.table_name(args[0]))} RENAME COLUMN {qi(js_str(args[1]))} TO "
                     f"{qi(js_str(args[2]))}", off, "Sequelize renameColumn")

    def m_renameTable(self, args, off, origin):
        if len(args) >= 2 and self.table_name(args[0]) and js_str(args[1]):
            self.sql(f"ALTER TABLE {qi(self.table_name(args[0]))} RENAME TO {qi(js_str(args[1]))}", off,
                     "Sequelize renameTable")

    def m_dropTable(self, args, off, origin):
        if args and self.table_name(args[0]):
            self.sql(f"DROP TABLE {qi(self.table_name(args[0]))}", off, "Sequelize dropTable")

    def m_bulkInsert(self, args, off, origin):
        if args and self.table_name(args[0]):
            cols = []
            if len(args) > 1 and args[1].kind == "arr" and args[1].value and args[1].value[0].kind == "obj":
                cols = list(args[1].value[0].value)
            t = qi(self.table_name(args[0]))
            sql = (f"INSERT INTO {t} ({', '.join(qi(c) for c in cols)}) VALUES ("
                   + ", ".join(f"${i + 1}" for i in range(len(cols))) + ")") if cols else \
                f"INSERT INTO {t} DEFAULT VALUES"
            self.sql(sql, off, "Sequelize bulkInsert", dynamic=True)

    def m_bulkDelete(self, args, off, origin):
        if args and self.table_name(args[0]):
            where = len(args) > 1 and args[1].kind == "obj" and bool(args[1].value)
            self.sql(f"DELETE FROM {qi(self.table_name(args[0]))}" + (" WHERE $1" if where else ""), off,
                     "Sequelize bulkDelete", dynamic=True)

    def m_bulkUpdate(self, args, off, origin):
        if len(args) >= 2 and self.table_name(args[0]) and args[1].kind == "obj" and args[1].value:
            cols = list(args[1].value)
            sets = ", ".join(f"{qi(c)} = ${i + 1}" for i, c in enumerate(cols))
            where = len(args) > 2 and args[2].kind == "obj" and bool(args[2].value)
            self.sql(f"UPDATE {qi(self.table_name(args[0]))} SET {sets}" + (f" WHERE ${len(cols) + 1}" if where
                                                                                  else ""),
                     off, "Sequelize bulkUpdate", dynamic=True)

    def m_query(self, args, off, origin):
        if not args:
            return
        opts = args[1] if len(args) > 1 and args[1].kind == "obj" else None
        params = ()
        if opts is not None:
            rep = opts.value.get("replacements")
            if rep is not None:
                params = ("qmark",) if rep.kind == "arr" else ("named",)
        self.literal(args[0], "Sequelize sequelize.query", params=params)


def emit_js(js: JsFile, out: Out):
    _Sequelize.read_ups(js, out, out.new_txn())


NAME = "sequelize"


def detect(path: str, text: str) -> bool:
    return migration_kind(path, text) == NAME


def emit(path: str, text: str, out: Out):
    emit_migration(path, text, out)


def extract(path: str, text: str) -> list:
    """This framework's records for one file (whatever detect() says)."""
    from dsql_audit.sources import frameworks

    return frameworks.run(sys.modules[__name__], path, text)
