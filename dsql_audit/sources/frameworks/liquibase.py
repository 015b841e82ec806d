"""Liquibase changelogs: XML, YAML and JSON."""

from __future__ import annotations

import bisect
import itertools
import re
import sys

from dsql_audit.sources.frameworks.synth import (
    Layout,
    Out,
    file_parts,
    index_sql,
    lit,
    qi,
    qn,
    valid_expr,
    valid_type,
    valid_where,
)

_XML_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#\d+|\w+);")


class _LNode:
    """A changelog element: XML element or YAML/JSON mapping. ``attrs``: name → (value, offset of the value);
    ``text``: (file-aligned raw text, offset of its first character) for SQL bodies."""

    __slots__ = ("name", "attrs", "children", "offset", "text")

    def __init__(self, name: str, offset: int):
        self.name, self.offset = name, offset
        self.attrs: dict[str, tuple[str, int]] = {}
        self.children: list[_LNode] = []
        self.text: tuple[str, int] | None = None

    def get(self, key: str, default=None):
        v = self.attrs.get(key)
        return v[0] if v is not None else default

    def flag(self, key: str) -> bool:
        return str(self.get(key, "")).strip().lower() == "true"

    def kids(self, name: str) -> list["_LNode"]:
        return [c for c in self.children if c.name == name]


def _xml_clean(raw: str) -> str:
    """Raw element content → the SQL it holds, same length and lines: markup and comments blanked, CDATA markers
    blanked, entities decoded (padded before the character, so columns after them stay right)."""
    out, i, n = [], 0, len(raw)
    ent = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}

    def blank(t):
        return "".join("\n" if ch == "\n" else " " for ch in t)

    skip_depth = 0
    while i < n:
        if raw.startswith("<![CDATA[", i):
            j = raw.find("]]>", i + 9)
            j = n if j < 0 else j
            out.append(" " * 9)
            body = raw[i + 9:j]
            out.append(blank(body) if skip_depth else body)
            out.append(" " * min(3, n - j))
            i = j + 3
            continue
        if raw.startswith("<!--", i):
            j = raw.find("-->", i + 4)
            j = n if j < 0 else j + 3
            out.append(blank(raw[i:j]))
            i = j
            continue
        c = raw[i]
        if c == "<":
            j = raw.find(">", i)
            j = n if j < 0 else j + 1
            tag = raw[i:j]
            m = re.match(r"<\s*(/?)\s*(?:\w+:)?(\w+)", tag)
            if m and m.group(2) == "comment" and not tag.endswith("/>"):
                skip_depth += -1 if m.group(1) else 1
            out.append(blank(tag))
            i = j
            continue
        if c == "&":
            m = _XML_ENTITY.match(raw, i)
            if m:
                name = m.group(1)
                ch = chr(int(name[2:], 16)) if name.startswith("#x") else chr(int(name[1:])) if \
                    name.startswith("#") else ent.get(name, " ")
                out.append(" " * (len(m.group(0)) - 1) + (" " if skip_depth else ch))
                i = m.end()
                continue
        out.append(blank(c) if skip_depth else c)
        i += 1
    return "".join(out)


def _liquibase_xml(text: str) -> _LNode:
    from xml.parsers import expat

    data = text.encode("utf-8")
    if len(data) == len(text):
        def b2c(b):
            return b
    else:
        ends = list(itertools.accumulate(len(ch.encode("utf-8", errors="surrogatepass")) for ch in text))

        def b2c(b):  # the character that starts at byte b
            return bisect.bisect_right(ends, b)
    root = _LNode("#document", 0)
    stack = [root]
    parser = expat.ParserCreate(encoding="utf-8")

    def start(name, attrs):
        off = b2c(parser.CurrentByteIndex)
        node = _LNode(name.rsplit(":", 1)[-1], off)
        # the start tag's end (content starts after it), quote-aware
        i, q = off, None
        while i < len(text):
            ch = text[i]
            if q:
                q = None if ch == q else q
            elif ch in "'\"":
                q = ch
            elif ch == ">":
                break
            i += 1
        tag = text[off:i + 1]
        for k, v in attrs.items():
            key = k.rsplit(":", 1)[-1]
            m = re.search(r"(?<![\w:-])" + re.escape(k) + r"\s*=\s*(['\"])", tag)
            node.attrs[key] = (v, off + m.end() if m else off)
        node.text = ("", i + 1) if not tag.endswith("/>") else None
        stack[-1].children.append(node)
        stack.append(node)

    def end(name):
        node = stack.pop()
        if node.text is not None:
            content_start = node.text[1]
            content_end = b2c(parser.CurrentByteIndex)
            raw = text[content_start:content_end] if content_end > content_start else ""
            node.text = (_xml_clean(raw), content_start)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except Exception:  # noqa: BLE001 - broken XML: the elements read before the error are kept
        pass
    return root


def _yaml_raw(text: str, node) -> tuple[str, int]:
    """A YAML scalar's SQL as written in the file (so its lines and columns map back), with its offset."""
    a, b = node.start_mark.index, node.end_mark.index
    style = node.style
    if style in ("|", ">"):
        nl = text.find("\n", a)
        if 0 <= nl < b:
            return text[nl + 1:b], nl + 1
        return node.value, a
    if style in ('"', "'"):
        inner = text[a + 1:b - 1]
        return (inner if inner == node.value else node.value), a + 1
    raw = text[a:b]
    return (raw if " ".join(raw.split()) == " ".join(node.value.split()) else node.value), a


def _liquibase_yaml(text: str, is_json: bool) -> _LNode:
    import yaml

    src = text.replace("\t", " ") if is_json else text
    root = _LNode("#document", 0)
    try:
        doc = yaml.compose(src, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except Exception:  # noqa: BLE001 - unreadable YAML/JSON: nothing to report
        return root

    def scalar(n):
        return n if isinstance(n, yaml.ScalarNode) else None

    def build(name, value, offset) -> _LNode:
        node = _LNode(name, offset)
        if isinstance(value, yaml.SequenceNode):
            for item in value.value:
                if isinstance(item, yaml.MappingNode):
                    for ik, iv in item.value:
                        if isinstance(ik, yaml.ScalarNode):
                            node.children.append(build(ik.value, iv, ik.start_mark.index))
            return node
        if isinstance(value, yaml.ScalarNode):
            node.text = _yaml_raw(src, value)
            node.attrs["#value"] = (value.value, value.start_mark.index)
            return node
        if isinstance(value, yaml.MappingNode):
            for k, v in value.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else None
                if key is None:
                    continue
                if scalar(v) is not None:
                    node.attrs[key] = (v.value, v.start_mark.index)
                    if key in ("sql", "procedureText", "procedureBody", "where", "selectQuery"):
                        node.attrs[key + "#raw"] = _yaml_raw(src, v)
                elif isinstance(v, yaml.SequenceNode):
                    holder = node if key != "rollback" else _LNode("rollback", k.start_mark.index)
                    for item in v.value:
                        if isinstance(item, yaml.MappingNode):
                            for ik, iv in item.value:
                                if isinstance(ik, yaml.ScalarNode):
                                    holder.children.append(build(ik.value, iv, ik.start_mark.index))
                    if holder is not node:
                        node.children.append(holder)
                elif isinstance(v, yaml.MappingNode):
                    node.children.append(build(key, v, k.start_mark.index))
        return node

    if isinstance(doc, yaml.MappingNode):
        for k, v in doc.value:
            if isinstance(k, yaml.ScalarNode):
                root.children.append(build(k.value, v, k.start_mark.index))
    return root


_LB_TYPES = {
    "int": "INTEGER", "integer": "INTEGER", "int4": "INTEGER", "mediumint": "INTEGER", "bigint": "BIGINT",
    "int8": "BIGINT", "long": "BIGINT", "smallint": "SMALLINT", "int2": "SMALLINT", "tinyint": "SMALLINT",
    "boolean": "BOOLEAN", "bool": "BOOLEAN", "bit": "BOOLEAN", "varchar": "VARCHAR", "nvarchar": "VARCHAR",
    "varchar2": "VARCHAR", "nvarchar2": "VARCHAR", "character varying": "VARCHAR", "char": "CHAR", "nchar": "CHAR",
    "character": "CHAR", "text": "TEXT", "clob": "TEXT", "nclob": "TEXT", "longtext": "TEXT", "mediumtext": "TEXT",
    "tinytext": "TEXT", "longvarchar": "TEXT", "blob": "BYTEA", "longblob": "BYTEA", "mediumblob": "BYTEA",
    "binary": "BYTEA", "varbinary": "BYTEA", "longvarbinary": "BYTEA", "image": "BYTEA", "bytea": "BYTEA",
    "datetime": "TIMESTAMP", "timestamp": "TIMESTAMP", "smalldatetime": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ",
    "date": "DATE", "time": "TIME", "decimal": "DECIMAL", "numeric": "DECIMAL", "number": "DECIMAL",
    "currency": "DECIMAL", "double": "DOUBLE PRECISION", "float": "FLOAT", "real": "REAL", "uuid": "UUID",
    "uniqueidentifier": "UUID", "json": "JSON", "jsonb": "JSONB", "xml": "XML",
}


def _lb_type(t: str | None) -> str | None:
    if not t:
        return None
    t = re.sub(r"^java\.sql\.Types\.", "", t.strip(), flags=re.I)
    m = re.fullmatch(r"([A-Za-z_][\w ]*?)\s*(\([^()]*\))?\s*((?:\[\])*)", t)
    if m:
        base = m.group(1).lower()
        mapped = _LB_TYPES.get(base)
        if mapped:
            for cand in (mapped + (m.group(2) or "") + m.group(3), mapped + m.group(3)):
                if valid_type(cand):
                    return cand
    return t if valid_type(t) else None


def _lb_dbms_ok(dbms: str | None) -> bool:
    if not dbms:
        return True
    items = [d.strip().lower() for d in dbms.split(",") if d.strip()]
    if "!postgresql" in items or items == ["none"]:
        return False
    positive = [d for d in items if not d.startswith("!")]
    return not positive or "postgresql" in positive or "all" in positive


class _Liquibase:
    def __init__(self, text: str, out: Out):
        self.text, self.out, self.pos = text, out, out.pos

    def lc(self, off):
        return self.pos.lc(off)

    def table(self, n: _LNode, key="tableName") -> str | None:
        name = n.get(key)
        return qn(name, n.get("schemaName")) if name else None

    def run(self, root: _LNode):
        logs = [c for c in root.children if c.name == "databaseChangeLog"]
        for log in logs:
            for cs in log.children:
                if cs.name != "changeSet" or not _lb_dbms_ok(cs.get("dbms")):
                    continue
                txn = None if str(cs.get("runInTransaction", "true")).lower() == "false" else self.out.new_txn()
                for change in cs.children:
                    handler = getattr(self, "c_" + change.name, None)
                    if handler is None or not _lb_dbms_ok(change.get("dbms")):
                        continue
                    try:
                        handler(change, txn)
                    except Exception:  # noqa: BLE001 - one unreadable change does not stop the changelog
                        continue

    def emit(self, sql, n: _LNode, txn, origin):
        line, col = self.lc(n.offset)
        self.out.sql(sql, line, col, f"Liquibase {origin or n.name}", txn)

    def column_def(self, c: _LNode) -> tuple[str | None, list]:
        """(type and inline options, the column's constraints nodes)."""
        t = _lb_type(c.get("type"))
        if t is None:
            return None, []
        cons = c.kids("constraints")
        defn = t
        if c.flag("autoIncrement"):
            opts = []
            if c.get("startWith"):
                opts.append(f"START WITH {c.get('startWith')}")
            if c.get("incrementBy"):
                opts.append(f"INCREMENT BY {c.get('incrementBy')}")
            gen = "ALWAYS" if str(c.get("generationType", "")).upper() == "ALWAYS" else "BY DEFAULT"
            # Liquibase 4 on PostgreSQL 10+: an identity column (older releases wrote serial/bigserial)
            defn += "@AT@" + f" GENERATED {gen} AS IDENTITY" + (f" ({' '.join(opts)})" if opts else "")
        default = None
        for key in ("defaultValue", "defaultValueNumeric", "defaultValueBoolean", "defaultValueDate",
                    "defaultValueComputed", "defaultValueSequenceNext"):
            v = c.get(key)
            if v is None:
                continue
            if key == "defaultValue" or key == "defaultValueDate":
                default = lit(v)
            elif key == "defaultValueSequenceNext":
                default = f"nextval({lit(v)})"
            elif key == "defaultValueComputed":
                default = v if valid_expr(v) else None
            elif key == "defaultValueBoolean":
                default = "true" if str(v).lower() == "true" else "false"
            else:
                default = v if re.fullmatch(r"-?\d+(\.\d+)?", str(v)) else None
        if default is not None:
            defn += f" DEFAULT {default}"
        for k in cons:
            if str(k.get("nullable", "")).lower() == "false":
                defn += " NOT NULL"
            if k.flag("unique"):
                defn += " UNIQUE"
        return defn, cons

    def split_identity(self, c: _LNode, defn: str, line: int) -> tuple[str, list]:
        """The identity clause goes at the ``autoIncrement`` attribute (where a finding on it belongs)."""
        if "@AT@" not in defn:
            return defn, []
        head, tail = defn.split("@AT@", 1)
        at = c.attrs.get("autoIncrement")
        aline = acol = None
        if at:
            k = self.text.rfind("autoIncrement", max(0, at[1] - 40), at[1])  # the attribute, not its value
            aline, acol = self.lc(k if k >= 0 else at[1])
        return head, [(tail.strip(), acol if aline == line else None)]

    def fk_of(self, table_name: str, c: _LNode, k: _LNode, txn, later: bool, origin: str):
        ref_table = k.get("referencedTableName")
        ref_cols = k.get("referencedColumnNames")
        refs = k.get("references")
        if refs and not ref_table:
            m = re.match(r"\s*([\w.\"$]+)\s*(?:\(([^)]*)\))?", refs)
            if m:
                ref_table, ref_cols = m.group(1), m.group(2)
        if not (k.get("foreignKeyName") or ref_table):
            return
        target = ref_table + (f".{ref_cols.replace(' ', '')}" if ref_cols else "") if ref_table else None
        on_delete = "CASCADE" if k.flag("deleteCascade") else k.get("onDelete")
        line, col = self.lc(k.offset)
        self.out.fk(line, col, f"Liquibase {origin}", "Liquibase", f"{table_name}.{c.get('name')}", target,
                    on_delete, later, txn)

    def c_createTable(self, n: _LNode, txn):
        table = self.table(n)
        if not table:
            return
        line, col = self.lc(n.offset)
        layout = Layout(line, col)
        layout.put(f"CREATE TABLE {table} (")
        pk_cols, ncols, fks = [], 0, []
        for c in n.kids("column"):
            name = c.get("name")
            defn, cons = self.column_def(c)
            if not name or defn is None:
                continue
            for k in cons:
                if k.flag("primaryKey"):
                    pk_cols.append(name)
                if k.get("foreignKeyName") or k.get("references") or k.get("referencedTableName"):
                    fks.append((c, k))
            if ncols:
                layout.comma()
            cline, ccol = self.lc(c.offset)
            tv = c.attrs.get("type")
            tline, tcol = self.lc(tv[1]) if tv else (cline, None)
            type_sql, extra = self.split_identity(c, defn + ("@PK@" if name in pk_cols else ""), tline)
            layout.column(qi(name), type_sql, tline, ccol, tcol, extra)
            ncols += 1
        if not ncols:
            return
        text = layout.text()
        if len(pk_cols) == 1:
            text = text.replace("@PK@", " PRIMARY KEY")
        else:
            text = text.replace("@PK@", "")
            if pk_cols:
                text += ", PRIMARY KEY (" + ", ".join(qi(c) for c in pk_cols) + ")"
        self.out.sql(text + ")", line, col, "Liquibase createTable", txn)
        for c, k in fks:
            self.fk_of(n.get("tableName"), c, k, txn, False, "createTable")

    def c_addColumn(self, n: _LNode, txn):
        table = self.table(n)
        if not table:
            return
        for c in n.kids("column"):
            name = c.get("name")
            defn, cons = self.column_def(c)
            if not name or defn is None:
                continue
            line, col = self.lc(c.offset)
            tv = c.attrs.get("type")
            layout = Layout(line, col)
            layout.put(f"ALTER TABLE {table} ADD COLUMN")
            tline, tcol = self.lc(tv[1]) if tv else (line, None)
            type_sql, extra = self.split_identity(c, defn, tline)
            layout.column(qi(name), type_sql, tline, None, tcol, extra)
            self.out.sql(layout.text(), line, col, "Liquibase addColumn", txn)
            for k in cons:
                if k.flag("primaryKey"):
                    self.out.sql(f"ALTER TABLE {table} ADD PRIMARY KEY ({qi(name)})", line, col,
                                 "Liquibase addColumn", txn)
                if k.get("foreignKeyName") or k.get("references") or k.get("referencedTableName"):
                    self.fk_of(n.get("tableName"), c, k, txn, True, "addColumn")

    def c_addForeignKeyConstraint(self, n: _LNode, txn):
        base, cols = n.get("baseTableName"), n.get("baseColumnNames")
        if not base or not cols:
            return
        ref, ref_cols = n.get("referencedTableName"), n.get("referencedColumnNames")
        target = (ref + (f".{ref_cols.replace(' ', '')}" if ref_cols else "")) if ref else None
        on_delete = "CASCADE" if n.flag("deleteCascade") else n.get("onDelete")
        line, col = self.lc(n.offset)
        self.out.fk(line, col, "Liquibase addForeignKeyConstraint", "Liquibase", f"{base}.{cols.replace(' ', '')}",
                    target, on_delete, True, txn)

    def c_createIndex(self, n: _LNode, txn):
        table = self.table(n)
        keys = []
        for c in n.kids("column"):
            name = c.get("name")
            if not name:
                continue
            if c.flag("computed"):
                if valid_expr(name):
                    keys.append(f"({name})")
                continue
            keys.append(qi(name) + (" DESC" if c.flag("descending") else ""))
        if table and keys:
            self.emit(index_sql(n.get("indexName"), table, keys, unique=n.flag("unique")), n, txn, None)

    def c_createSequence(self, n: _LNode, txn):
        name = n.get("sequenceName")
        if not name:
            return
        sql = f"CREATE SEQUENCE {qn(name, n.get('schemaName'))}"
        if n.get("dataType") and valid_type(n.get("dataType")):
            sql += f" AS {n.get('dataType')}"
        for key, kw in (("incrementBy", "INCREMENT BY"), ("minValue", "MINVALUE"), ("maxValue", "MAXVALUE"),
                        ("startValue", "START WITH"), ("cacheSize", "CACHE")):
            v = n.get(key)
            if v is not None and re.fullmatch(r"-?\d+", str(v).strip()):
                sql += f" {kw} {str(v).strip()}"
        if n.flag("cycle"):
            sql += " CYCLE"
        self.emit(sql, n, txn, None)

    def body(self, n: _LNode, *keys) -> tuple[str, int] | None:
        for key in keys:
            if key + "#raw" in n.attrs:
                return n.attrs[key + "#raw"]
            for k in n.kids(key):
                if k.text and k.text[0].strip():
                    return k.text
        if n.text and n.text[0].strip():
            return n.text
        return None

    def c_sql(self, n: _LNode, txn):
        body = self.body(n, "sql")
        if body:
            line, col = self.lc(body[1])
            self.out.literal(body[0], line, col, "Liquibase sql", txn, params=())

    def c_createProcedure(self, n: _LNode, txn):
        from dsql_audit.sources.app import looks_like_sql

        body = self.body(n, "procedureText", "procedureBody")
        if body and looks_like_sql(body[0]):
            line, col = self.lc(body[1])
            self.out.literal(body[0], line, col, f"Liquibase {n.name}", txn, params=())

    c_createFunction = c_createTrigger = c_createProcedure

    def c_createView(self, n: _LNode, txn):
        body = self.body(n, "selectQuery")
        name = n.get("viewName")
        if body and name:
            head = "CREATE OR REPLACE VIEW" if n.flag("replaceIfExists") else "CREATE VIEW"
            q = " ".join(body[0].split())
            if n.flag("fullDefinition"):
                self.emit(q, n, txn, None)
            else:
                self.emit(f"{head} {qn(name, n.get('schemaName'))} AS {q}", n, txn, None)

    def c_dropTable(self, n: _LNode, txn):
        table = self.table(n)
        if table:
            self.emit(f"DROP TABLE {table}" + (" CASCADE" if n.flag("cascadeConstraints") else ""), n, txn, None)

    def c_dropColumn(self, n: _LNode, txn):
        table = self.table(n)
        names = [n.get("columnName")] if n.get("columnName") else [c.get("name") for c in n.kids("column")]
        for name in names:
            if table and name:
                self.emit(f"ALTER TABLE {table} DROP COLUMN {qi(name)}", n, txn, None)

    def c_renameColumn(self, n: _LNode, txn):
        table = self.table(n)
        if table and n.get("oldColumnName") and n.get("newColumnName"):
            self.emit(f"ALTER TABLE {table} RENAME COLUMN {qi(n.get('oldColumnName'))} TO "
                      f"{qi(n.get('newColumnName'))}", n, txn, None)

    def c_renameTable(self, n: _LNode, txn):
        old = self.table(n, "oldTableName")
        if old and n.get("newTableName"):
            self.emit(f"ALTER TABLE {old} RENAME TO {qi(n.get('newTableName'))}", n, txn, None)

    def _cols(self, value: str | None) -> str:
        return ", ".join(qi(c.strip()) for c in (value or "").split(",") if c.strip())

    def c_addUniqueConstraint(self, n: _LNode, txn):
        table, cols = self.table(n), self._cols(n.get("columnNames"))
        if table and cols:
            name = n.get("constraintName")
            self.emit(f"ALTER TABLE {table} ADD " + (f"CONSTRAINT {qi(name)} " if name else "") + f"UNIQUE ({cols})",
                      n, txn, None)

    def c_addPrimaryKey(self, n: _LNode, txn):
        table, cols = self.table(n), self._cols(n.get("columnNames"))
        if table and cols:
            name = n.get("constraintName")
            self.emit(f"ALTER TABLE {table} ADD " + (f"CONSTRAINT {qi(name)} " if name else "") +
                      f"PRIMARY KEY ({cols})", n, txn, None)

    def c_modifyDataType(self, n: _LNode, txn):
        table, t = self.table(n), _lb_type(n.get("newDataType"))
        if table and t and n.get("columnName"):
            self.emit(f"ALTER TABLE {table} ALTER COLUMN {qi(n.get('columnName'))} TYPE {t}", n, txn, None)

    def c_addNotNullConstraint(self, n: _LNode, txn):
        table = self.table(n)
        if table and n.get("columnName"):
            self.emit(f"ALTER TABLE {table} ALTER COLUMN {qi(n.get('columnName'))} SET NOT NULL", n, txn, None)

    def c_dropNotNullConstraint(self, n: _LNode, txn):
        table = self.table(n)
        if table and n.get("columnName"):
            self.emit(f"ALTER TABLE {table} ALTER COLUMN {qi(n.get('columnName'))} DROP NOT NULL", n, txn, None)

    def c_addDefaultValue(self, n: _LNode, txn):
        table = self.table(n)
        fake = _LNode("column", n.offset)
        fake.attrs = dict(n.attrs)
        fake.attrs["type"] = ("text", n.offset)
        defn, _ = self.column_def(fake)
        if table and n.get("columnName") and defn and " DEFAULT " in defn:
            self.emit(f"ALTER TABLE {table} ALTER COLUMN {qi(n.get('columnName'))} SET DEFAULT "
                      f"{defn.split(' DEFAULT ', 1)[1]}", n, txn, None)

    def c_dropIndex(self, n: _LNode, txn):
        if n.get("indexName"):
            self.emit(f"DROP INDEX {qn(n.get('indexName'), n.get('schemaName'))}", n, txn, None)

    def c_dropSequence(self, n: _LNode, txn):
        if n.get("sequenceName"):
            self.emit(f"DROP SEQUENCE {qn(n.get('sequenceName'), n.get('schemaName'))}", n, txn, None)

    def c_dropForeignKeyConstraint(self, n: _LNode, txn):
        table = self.table(n, "baseTableName")
        if table and n.get("constraintName"):
            self.emit(f"ALTER TABLE {table} DROP CONSTRAINT {qi(n.get('constraintName'))}", n, txn, None)

    def where(self, n: _LNode) -> str | None:
        body = self.body(n, "where") if ("where#raw" in n.attrs or n.kids("where")) else None
        w = " ".join(body[0].split()) if body else n.get("where")
        return w if w and valid_where(w) else None

    def c_insert(self, n: _LNode, txn):
        table = self.table(n)
        cols = [c.get("name") for c in n.kids("column") if c.get("name")]
        if table:
            if cols:
                sql = f"INSERT INTO {table} ({', '.join(qi(c) for c in cols)}) VALUES (" + \
                    ", ".join(f"${i + 1}" for i in range(len(cols))) + ")"
            else:
                sql = f"INSERT INTO {table} DEFAULT VALUES"
            self.emit(sql, n, txn, None)

    def c_update(self, n: _LNode, txn):
        table = self.table(n)
        cols = [c.get("name") for c in n.kids("column") if c.get("name")]
        if table and cols:
            sql = f"UPDATE {table} SET " + ", ".join(f"{qi(c)} = ${i + 1}" for i, c in enumerate(cols))
            w = self.where(n)
            self.emit(sql + (f" WHERE {w}" if w else ""), n, txn, None)

    def c_delete(self, n: _LNode, txn):
        table = self.table(n)
        if table:
            w = self.where(n)
            self.emit(f"DELETE FROM {table}" + (f" WHERE {w}" if w else ""), n, txn, None)

    def c_loadData(self, n: _LNode, txn):
        table = self.table(n)
        if table:
            line, col = self.lc(n.offset)
            self.out.sql(f"INSERT INTO {table} DEFAULT VALUES", line, col, f"Liquibase {n.name}", txn, dynamic=True)

    c_loadUpdateData = c_loadData


def _liquibase(path: str, text: str, out: Out):
    lower = path.lower()
    if lower.endswith((".yaml", ".yml", ".json")):
        root = _liquibase_yaml(text, lower.endswith(".json"))
    else:
        root = _liquibase_xml(text)
    _Liquibase(text, out).run(root)




NAME = "liquibase"


def detect(path: str, text: str) -> bool:
    return file_parts(path)[1] in (".xml", ".yaml", ".yml", ".json") and "databaseChangeLog" in text


def emit(path: str, text: str, out: Out):
    _liquibase(path, text, out)


def extract(path: str, text: str) -> list:
    """This framework's records for one file (whatever detect() says)."""
    from dsql_audit.sources import frameworks

    return frameworks.run(sys.modules[__name__], path, text)
