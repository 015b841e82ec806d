"""Knex migrations (knex.schema)."""

from __future__ import annotations

import re
import sys

from dsql_audit.sources.frameworks.js import (JsFile, JsMigration, emit_migration, js_bool, js_default, js_str,
                                              js_strs, migration_kind)
from dsql_audit.sources.frameworks.synth import Layout, Out, Value, enum_sql, index_sql, lit, qi, qq, valid_type

# ---- Knex

_KNEX_TYPES = {"integer": "integer", "int": "integer", "bigInteger": "bigint", "bigint": "bigint",
               "smallint": "smallint", "tinyint": "smallint", "mediumint": "integer", "text": "text",
               "string": "character varying", "boolean": "boolean", "date": "date", "datetime": "timestamptz",
               "timestamp": "timestamptz", "time": "time", "float": "real", "double": "double precision",
               "decimal": "decimal", "uuid": "uuid", "json": "json", "jsonb": "jsonb", "binary": "bytea",
               "geometry": "geometry", "geography": "geography", "point": "point"}


class _Knex(JsMigration):
    orm = "Knex"
    runner = "knex"

    def run(self, body, names):
        """Every call chain headed by the knex object: ``knex.schema.createTable(…)``, ``knex.raw(…)``,
        ``knex('t').update(…)`` (one in another's arguments, ``.then(() => knex.raw(…))``, comes next)."""
        knex = [n for n in names if n not in ("Promise",)] or ["knex"]
        for head in self.heads(body, knex):
            top = self.js.chain_top(head)
            try:
                self.js.dynamic = False
                v = self.js.chain(top)
                if v.kind == "chain":
                    self.knex_statement(v, top, self.js.start(head))
            except Exception:  # noqa: BLE001
                continue

    def heads(self, body, names) -> list:
        """The identifiers in ``body`` named one of ``names`` that head a chain (``knex.…``, ``t.…``)."""
        js = self.js
        return [i for i in js.under(body)[1] if js.node_text(i) in names]

    def knex_statement(self, v: Value, top, start):
        segs = v.value
        names = [x[0] for x in segs]
        knex_args = segs[0][1]
        if len(segs) >= 2 and names[1] == "schema":
            i = 2
            while i < len(segs):
                name, args, off = segs[i]
                if name in ("createTable", "createTableIfNotExists", "alterTable", "table", "createTableLike"):
                    self.table(name, args or [], off)
                elif name == "raw" and args:
                    self.literal(args[0], "Knex schema.raw", params=self.binding_style(args), knex=True)
                elif name in ("dropTable", "dropTableIfExists") and args and js_str(args[0]):
                    self.sql(("DROP TABLE IF EXISTS " if name.endswith("IfExists") else "DROP TABLE ")
                             + qi(js_str(args[0])), off, f"Knex schema.{name}")
                elif name == "renameTable" and args and len(args) >= 2 and js_str(args[0]) and js_str(args[1]):
                    self.sql(f"ALTER TABLE {qi(js_str(args[0]))} RENAME TO {qi(js_str(args[1]))}", off,
                             "Knex schema.renameTable")
                i += 1
            return
        if len(segs) >= 2 and names[1] == "raw" and segs[1][1] and self.statement_level(top):
            args = segs[1][1]
            self.literal(args[0], "Knex knex.raw", params=self.binding_style(args), knex=True)
            return
        if knex_args and js_str(knex_args[0]):  # knex('table').insert(…)
            table = qi(js_str(knex_args[0]))
            ops = names[1:]
            where = any(o.startswith("where") for o in ops)
            for name, args, off in segs[1:]:
                if name == "insert":
                    self.sql(f"INSERT INTO {table} DEFAULT VALUES", start, "Knex insert", dynamic=True)
                elif name == "update" and args and args[0].kind == "obj" and args[0].value:
                    cols = list(args[0].value)
                    sets = ", ".join(f"{qi(c)} = ${i + 1}" for i, c in enumerate(cols))
                    self.sql(f"UPDATE {table} SET {sets}" + (f" WHERE ${len(cols) + 1}" if where else ""), start,
                             "Knex update", dynamic=True)
                elif name in ("del", "delete"):
                    self.sql(f"DELETE FROM {table}" + (" WHERE $1" if where else ""), start, "Knex del",
                             dynamic=True)
                elif name == "truncate":
                    self.sql(f"TRUNCATE {table}", start, "Knex truncate")

    @staticmethod
    def binding_style(args) -> tuple:
        """knex.raw(sql, [a, b]) binds ? placeholders; knex.raw(sql, {a}) binds :a."""
        if len(args) < 2:
            return ()
        return ("named",) if args[1].kind == "obj" else ("qmark",)

    def statement_level(self, top) -> bool:
        """``knex.raw(…)`` as a statement, not as a value inside another call (``defaultTo(knex.raw(…))``): the
        nearest enclosing bracket is a block, an array or an object, or the parentheses of a call that runs what
        it is given (then, Promise.all, transaction, …)."""
        js, p = self.js, top.parent
        while p is not None:
            if p.type == "arguments":
                fn = js.callee(p.parent) if p.parent is not None and p.parent.type == "call_expression" else None
                name = js.node_text(fn).rsplit(".", 1)[-1] if fn is not None else ""
                return name in ("then", "all", "allSettled", "each", "map", "mapSeries", "transaction")
            if p.type == "parenthesized_expression":
                return p.parent is None or p.parent.type not in ("if_statement", "while_statement", "do_statement",
                                                                 "switch_statement")
            if p.type in ("statement_block", "array", "object", "class_body", "program", "template_substitution"):
                return True
            p = p.parent
        return True

    def table(self, method, args, off):
        if len(args) < 2 or not js_str(args[0]) or args[-1].kind != "func":
            return
        table = js_str(args[0])
        fn = args[-1]
        params = fn.value
        if not params or fn.node is None:
            return
        t = params[0]
        create = method.startswith("createTable")
        js = self.js
        line, col = self.lc(off)
        layout = Layout(line, col)
        head = "CREATE TABLE IF NOT EXISTS " if method == "createTableIfNotExists" else "CREATE TABLE "
        layout.put(f"{head}{qi(table)} (")
        ncols, pre, post, pks, fks = 0, [], [], [], []
        tq = qi(table)
        for ident in self.heads(fn.node.child_by_field_name("body"), [t]):
            cstart = js.start(ident)
            v = js.chain(js.chain_top(ident))
            if v.kind != "chain" or len(v.value) < 2:
                continue
            segs = v.value[1:]
            name, args, moff = segs[0]
            args = args or []
            mods = {x[0]: (x[1] or []) for x in segs[1:]}
            origin = f"Knex table.{name}"
            cols: list[tuple[str, str, int]] = []  # (column, definition, offset of the type)
            if name in ("increments", "bigIncrements"):
                cname = js_str(args[0]) if args and args[0].kind == "str" else "id"
                opts = next((a for a in args if a.kind == "obj"), None)
                pk = not (opts is not None and opts.value.get("primaryKey") is not None
                          and opts.value["primaryKey"].kind == "bool" and not opts.value["primaryKey"].value)
                cols.append((cname, ("serial" if name == "increments" else "bigserial") +
                             (" PRIMARY KEY" if pk else ""), moff))
            elif name == "timestamps":
                nn = len(args) > 1 and js_bool(args[1])
                for c in ("created_at", "updated_at"):
                    cols.append((c, "timestamptz" + (" NOT NULL DEFAULT CURRENT_TIMESTAMP" if nn else ""), moff))
            elif name in ("enu", "enum") and args and js_str(args[0]):
                values = js_strs(args[1]) if len(args) > 1 else []
                opts = args[2] if len(args) > 2 and args[2].kind == "obj" else None
                cname = js_str(args[0])
                if opts is not None and js_bool(opts.value.get("useNative")):
                    ename = js_str(opts.value.get("enumName")) or f"{table}_{cname}"
                    if not js_bool(opts.value.get("existingType")) and values:
                        pre.append((enum_sql(ename, values, qq), moff))
                    cols.append((cname, self.modifiers(qq(ename), mods), moff))
                else:
                    check = f" CHECK ({qi(cname)} IN ({', '.join(lit(x) for x in values)}))" if values else ""
                    cols.append((cname, self.modifiers("text", mods) + check, moff))
            elif name == "specificType" and len(args) >= 2 and js_str(args[0]) and valid_type(js_str(args[1])):
                cols.append((js_str(args[0]), self.modifiers(js_str(args[1]), mods), args[1].start + 1))
            elif name in _KNEX_TYPES and args and js_str(args[0]):
                base = _KNEX_TYPES[name]
                nums = [a.value for a in args[1:] if a.kind == "num"]
                if name == "string":
                    base = f"character varying({nums[0] if nums else 255})"
                elif name == "decimal":
                    base = f"decimal({', '.join((nums + ['8', '2'])[:2])})"
                cols.append((js_str(args[0]), self.modifiers(base, mods), moff))
            elif name == "index" and args:
                icols = js_strs(args[0])
                iname = js_str(args[1]) if len(args) > 1 else None
                opts = next((a for a in args[1:] if a.kind == "obj"), None)
                using = js_str(args[2]) if len(args) > 2 and args[2].kind == "str" else \
                    (js_str(opts.value.get("indexType")) if opts is not None else None)
                if icols:
                    post.append((index_sql(iname or f"{table}_{'_'.join(icols)}_index".lower(), tq,
                                            [qi(c) for c in icols], using=using), cstart, origin))
                continue
            elif name == "unique" and args:
                ucols = js_strs(args[0])
                opts = next((a for a in args[1:] if a.kind == "obj"), None)
                uname = js_str(args[1]) if len(args) > 1 and args[1].kind == "str" else \
                    (js_str(opts.value.get("indexName")) if opts is not None else None)
                uname = uname or f"{table}_{'_'.join(ucols)}_unique".lower()
                if ucols:
                    if opts is not None and opts.value.get("useConstraint") is not None and \
                            opts.value["useConstraint"].kind == "bool" and not opts.value["useConstraint"].value:
                        post.append((index_sql(uname, tq, [qi(c) for c in ucols], unique=True), cstart, origin))
                    else:
                        post.append((f"ALTER TABLE {tq} ADD CONSTRAINT {qi(uname)} UNIQUE ("
                                     + ", ".join(qi(c) for c in ucols) + ")", cstart, origin))
                continue
            elif name == "primary" and args:
                pks = js_strs(args[0])
                if not create and pks:
                    post.append((f"ALTER TABLE {tq} ADD PRIMARY KEY ({', '.join(qi(c) for c in pks)})", cstart,
                                 origin))
                continue
            elif name == "foreign" and args:
                fks.append((table, js_strs(args[0]), mods, cstart, create))
                continue
            elif name in ("dropColumn", "dropColumns"):
                for a in args:
                    for c in js_strs(a):
                        post.append((f"ALTER TABLE {tq} DROP COLUMN {qi(c)}", cstart, origin))
                continue
            elif name == "renameColumn" and len(args) >= 2 and js_str(args[0]) and js_str(args[1]):
                post.append((f"ALTER TABLE {tq} RENAME COLUMN {qi(js_str(args[0]))} TO {qi(js_str(args[1]))}",
                             cstart, origin))
                continue
            else:
                continue
            for cname, defn, toff in cols:
                if "alter" in mods and not create:
                    base = defn.split(" ")[0]
                    post.append((f"ALTER TABLE {tq} ALTER COLUMN {qi(cname)} TYPE {base}", cstart, origin))
                    continue
                if create:
                    if ncols:
                        layout.comma()
                    tline, tcol = self.lc(toff)
                    layout.column(qi(cname), defn, tline, None, tcol)
                    ncols += 1
                else:
                    post.insert(0, (f"ALTER TABLE {tq} ADD COLUMN {qi(cname)} {defn}", cstart, origin))
                if "unique" in mods:
                    post.append((f"ALTER TABLE {tq} ADD CONSTRAINT {qi(f'{table}_{cname}_unique'.lower())} "
                                 f"UNIQUE ({qi(cname)})", cstart, origin))
                if "index" in mods:
                    iname = js_str(mods["index"][0]) if mods["index"] else None
                    post.append((index_sql(iname or f"{table}_{cname}_index".lower(), tq, [qi(cname)]), cstart,
                                 origin))
                if "references" in mods:
                    fks.append((table, [cname], mods, cstart, create))
        if create and pks:
            if ncols:
                layout.comma()
            layout.put("PRIMARY KEY (" + ", ".join(qi(c) for c in pks) + ")")
            ncols += 1
        layout.put(")")
        for sql, o in pre:
            self.sql(sql, o, "Knex table.enu useNative")
        if create and ncols:
            self.statement(layout.text(), line, col, f"Knex schema.{method}")
        for sql, o, origin in post:
            self.sql(sql, o, origin)
        for fk in fks:
            self.knex_fk(*fk)

    @staticmethod
    def modifiers(base: str, mods: dict) -> str:
        defn = base
        if "notNullable" in mods:
            defn += " NOT NULL"
        if "defaultTo" in mods and mods["defaultTo"]:
            d = js_default(mods["defaultTo"][0])
            if d is not None:
                defn += f" DEFAULT {d}"
        if "primary" in mods:
            defn += " PRIMARY KEY"
        return defn

    def knex_fk(self, table, cols, mods, off, create):
        ref = mods.get("references")
        if not ref or not cols:
            return
        target = js_str(ref[0]) or ""
        in_table = mods.get("inTable") or mods.get("on")
        if in_table and js_str(in_table[0]):
            target = f"{js_str(in_table[0])}.{target}" if target else js_str(in_table[0])
        on_delete = js_str(mods["onDelete"][0]) if mods.get("onDelete") else None
        # Knex sends a foreign key as ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY after CREATE TABLE, even for
        # one declared in createTable: added to an existing table
        self.fk(off, "Knex references" if create else "Knex alterTable references", f"{table}.{','.join(cols)}",
                target or None, on_delete, True)


def emit_js(js: JsFile, out: Out):
    """One transaction per file unless ``exports.config = { transaction: false }``."""
    no_txn = re.search(r"\bconfig\s*=\s*\{[^}]*\btransaction\s*:\s*false", js.code)
    _Knex.read_ups(js, out, None if no_txn else out.new_txn())


NAME = "knex"


def detect(path: str, text: str) -> bool:
    return migration_kind(path, text) == NAME


def emit(path: str, text: str, out: Out):
    emit_migration(path, text, out)


def extract(path: str, text: str) -> list:
    """This framework's records for one file (whatever detect() says)."""
    from dsql_audit.sources import frameworks

    return frameworks.run(sys.modules[__name__], path, text)
