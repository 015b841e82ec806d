"""Liquibase changelogs: XML, YAML and JSON, read by real parsers into one changelog model (``_LNode``).

XML is read by expat behind defusedxml: a changelog comes from a user's repository, so entity declarations,
external entities and external DTDs are refused (the file then gives the records read before them: none, as a DTD
comes before the root element). YAML and JSON are read by PyYAML's safe composer, as Liquibase reads JSON with
its YAML parser. Both give positions: expat the byte index of each event, PyYAML the marks of each node.

An SQL body (``<sql>``, ``sql:``) is kept file-aligned: as long as its text in the file, with its line breaks, so
each statement in it is reported at its own line and column. Markup, comments and CDATA markers become spaces;
what the parser decoded (``&lt;``, ``\\"``) is its character, and the columns it saves are given back at the next
whitespace (``_file_aligned``).
"""

from __future__ import annotations

import bisect
import io
import itertools
import re
import sys
from xml.sax.handler import ContentHandler, LexicalHandler

from dsql_audit.sources.frameworks.synth import (Layout, Out, file_parts, index_sql, lit, qi, qn, valid_expr,
                                                 valid_type, valid_where)

# characters str.splitlines() breaks lines at: the SQL text of a body keeps only the file's own line breaks
_LINE_BREAKS_TO_SPACES = str.maketrans(dict.fromkeys("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", " "))
# YAML/JSON keys whose scalar is SQL text (kept file-aligned as ``key#raw``)
_SQL_KEYS = ("sql", "procedureText", "procedureBody", "where", "selectQuery")


class _LNode:
    """A changelog element: XML element or YAML/JSON mapping. ``attrs``: name → (value, offset of the value);
    ``keys``: name → offset of the attribute or key itself; ``text``: (file-aligned SQL text, offset of its first
    character) for SQL bodies, or what makes it (see ``sql_text``)."""

    __slots__ = ("name", "attrs", "keys", "children", "offset", "text")

    def __init__(self, name: str, offset: int):
        self.name, self.offset = name, offset
        self.attrs: dict[str, tuple[str, int]] = {}
        self.keys: dict[str, int] = {}
        self.children: list[_LNode] = []
        self.text: tuple[str, int] | None = None

    def get(self, key: str, default=None):
        v = self.attrs.get(key)
        return v[0] if v is not None else default

    def flag(self, key: str) -> bool:
        return str(self.get(key, "")).strip().lower() == "true"

    def kids(self, name: str) -> list["_LNode"]:
        return [c for c in self.children if c.name == name]

    def sql_text(self) -> tuple[str, int] | None:
        """``text``, made on first use: an XML element's is only needed when it is a change's SQL body (made for
        every element, nested ones would cost the file's length times its depth)."""
        if callable(self.text):
            self.text = self.text()
        return self.text


def _file_aligned(pieces, keep_breaks=False) -> str:
    """Decoded pieces, each ``(source text, what the parser decoded it to)``, laid on their source: the text is as
    long as the source and breaks lines where it does. A piece shorter than its source (``&lt;``, ``\\"``) is
    written compact and the spaces it saves go at the next whitespace, or at the end: no token is split by them
    (``-&gt;&gt;`` is ``->>``) and every column from that whitespace on is the file's. A line break the file does
    not have is a space, unless ``keep_breaks``."""
    out, owed = [], 0
    for raw, decoded in pieces:
        if decoded == raw or (decoded in ("\n", "\r\n") and raw in ("\n", "\r\n", "\r")):
            text = raw  # the file's own text, or its line break that the parser normalized
        else:
            if not keep_breaks:
                decoded = decoded.translate(_LINE_BREAKS_TO_SPACES)
            text = decoded if len(decoded) <= len(raw) else _blank(raw)
            owed += len(raw) - len(text)
        if owed:
            at = next((i for i, ch in enumerate(text) if ch in " \t\r\n"), -1)
            if at >= 0:
                text, owed = text[:at] + " " * owed + text[at:], 0
        out.append(text)
    out.append(" " * owed)
    return "".join(out)


def _breaks_a_line(raw: str, decoded: str) -> bool:
    """Whether a decoded piece ends a SQL line (and a ``--`` comment) where the file does not break the line."""
    return ("\n" in decoded or "\r" in decoded) and "\n" not in raw and "\r" not in raw


_NOT_A_LINE_BREAK = re.compile(r"[^\n]")


def _blank(raw: str) -> str:
    """Markup as the SQL text holds it: spaces, the line breaks kept."""
    return _NOT_A_LINE_BREAK.sub(" ", raw)


# -- XML ----------------------------------------------------------------------------------------------------------

# a start tag expat accepted, read again only for where each attribute is written (expat does not say)
_TAG_NAME = re.compile(r"<[^ \t\r\n/>]+")
_ATTRIBUTE = re.compile(r"""[ \t\r\n]+([^ \t\r\n=]+)[ \t\r\n]*=[ \t\r\n]*("[^"]*"|'[^']*')""")


def _char_offsets(text: str, data: bytes):
    """Byte offset into ``data`` (``text`` in UTF-8) → character offset into ``text``."""
    if len(data) == len(text):
        return lambda b: b
    ends = list(itertools.accumulate(len(ch.encode("utf-8", "surrogatepass")) for ch in text))
    return lambda b: bisect.bisect_right(ends, b)


def _attribute_places(text: str, tag_start: int) -> dict[str, tuple[int, int]]:
    """Attribute name as written → (offset of the name, offset of the value's first character)."""
    m = _TAG_NAME.match(text, tag_start)
    pos, places = (m.end() if m else tag_start), {}
    while (m := _ATTRIBUTE.match(text, pos)) is not None:
        places[m.group(1)] = (m.start(1), m.start(2) + 1)
        pos = m.end()
    return places


class _XmlChangelog(ContentHandler, LexicalHandler):
    """SAX content and lexical handler that builds the changelog tree. Every event is placed by expat's byte
    index of it; an element's content starts at the event after its start tag and ends at its end tag."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text
        self.data = text.encode("utf-8")
        self.char = _char_offsets(text, self.data)
        self.root = _LNode("#document", 0)
        # open elements: [node, content start (None until the next event), first piece, solid pieces before]
        self.frames: list[list] = [[self.root, 0, 0, 0]]
        # character data outside <comment> elements: [start, end (the next event), decoded text]
        self.pieces: list[list] = []
        self.solid = 0  # pieces that hold more than whitespace
        self.open_piece: list | None = None  # the last piece: it ends where the next event starts
        self.in_comment = 0
        self.reader = None

    def read(self) -> _LNode:
        from xml.sax.handler import property_lexical_handler
        from xml.sax.xmlreader import InputSource

        from defusedxml.expatreader import create_parser

        self.reader = create_parser()  # forbids entity declarations and external references
        self.reader.setContentHandler(self)
        self.reader.setProperty(property_lexical_handler, self)
        source = InputSource()
        source.setByteStream(io.BytesIO(self.data))
        source.setEncoding("utf-8")  # the text is already decoded: whatever the XML declaration says
        try:
            self.reader.parse(source)
        except Exception:  # noqa: BLE001 - broken or refused XML: the elements read before the error are kept
            pass
        return self.root

    def at(self) -> int:
        """This event's character offset; it ends the open piece and starts the content of an element just
        opened."""
        offset = self.char(self.reader._parser.CurrentByteIndex)  # the SAX driver's expat parser
        if self.open_piece is not None:
            self.open_piece[1], self.open_piece = offset, None
        if self.frames[-1][1] is None:
            self.frames[-1][1] = offset
        return offset

    # ContentHandler
    def startElement(self, name, attrs):
        offset = self.at()
        node = _LNode(name.rsplit(":", 1)[-1], offset)
        places = _attribute_places(self.text, offset)
        for raw_name, value in attrs.items():
            key = raw_name.rsplit(":", 1)[-1]
            name_at, value_at = places.get(raw_name, (offset, offset))
            node.attrs[key], node.keys[key] = (value, value_at), name_at
        self.frames[-1][0].children.append(node)
        self.frames.append([node, None, len(self.pieces), self.solid])
        if node.name == "comment":  # a <comment> inside <sql> is not SQL
            self.in_comment += 1

    def endElement(self, name):
        offset = self.at()
        node, start, first, solid = self.frames.pop()
        if node.name == "comment":
            self.in_comment -= 1
        if self.solid > solid:
            last = len(self.pieces)
            node.text = lambda: (self.aligned(start, offset, self.pieces[first:last]), start)

    def characters(self, content):
        offset = self.at()
        if self.in_comment:
            return
        # a reference (&lt;) or a line break expat normalized is one piece of its own, so a piece's span in the
        # file, up to the next event, is either its text or what expat decoded into it
        self.open_piece = [offset, offset, content]
        self.pieces.append(self.open_piece)
        if not content.isspace():
            self.solid += 1

    ignorableWhitespace = characters

    def processingInstruction(self, target, data):
        self.at()

    # LexicalHandler: comments and CDATA markers are not SQL, but they end the piece before them
    def comment(self, content):
        self.at()

    def startCDATA(self):
        self.at()

    def endCDATA(self):
        self.at()

    def aligned(self, start: int, end: int, inside: list) -> str:
        """The content from ``start`` to ``end`` as SQL text: the pieces ``inside`` it in place, the markup
        between them blanked. A reference to a line break (``&#10;``) is a space, unless a ``--`` comment might end
        there: then it breaks the line (SQL over columns: the lines after it are one off)."""
        pieces, pos = [], start
        for p_start, p_end, decoded in inside:
            pieces.append((_blank(self.text[pos:p_start]),) * 2)  # as long as the markup: written as it is
            pieces.append((self.text[p_start:p_end], decoded))
            pos = p_end
        pieces.append((_blank(self.text[pos:end]),) * 2)
        keep_breaks = any(_breaks_a_line(raw, decoded) for raw, decoded in pieces) and \
            any("--" in decoded for _, decoded in pieces)
        return _file_aligned(pieces, keep_breaks)


# -- YAML and JSON ------------------------------------------------------------------------------------------------

# an escape in a double-quoted scalar PyYAML accepted, read again only for where it is written
_YAML_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|\r\n|[\s\S])")


def _double_quoted(inner: str) -> tuple[str, bool]:
    """A double-quoted scalar's text between the quotes as SQL text (``_file_aligned``), each escape its character
    (PyYAML's own table); and whether an escape stood for a line break, which that text cannot hold."""
    from yaml.scanner import Scanner

    pieces, pos = [], 0
    for m in _YAML_ESCAPE.finditer(inner):
        esc = m.group(1)
        pieces.append((inner[pos:m.start()],) * 2)
        pos = m.end()
        if esc in ("\n", "\r", "\r\n"):  # an escaped line break joins the lines: the file's break stays
            pieces.append((" " + esc,) * 2)
        elif esc[0] in Scanner.ESCAPE_CODES and len(esc) > 1:
            pieces.append((m.group(0), chr(int(esc[1:], 16))))
        else:
            pieces.append((m.group(0), Scanner.ESCAPE_REPLACEMENTS.get(esc, esc)))
    pieces.append((inner[pos:],) * 2)
    return _file_aligned(pieces), any(_breaks_a_line(raw, decoded) for raw, decoded in pieces)


def _yaml_sql(src: str, node) -> tuple[str, int]:
    """A scalar's SQL text, file-aligned, and its offset. A block scalar is its lines after the header (with
    their indentation), a quoted one its text between the quotes. When that is not the value up to whitespace,
    or when the value breaks a line the file does not and a ``--`` comment might end there, the value itself
    (its lines then no longer map one to one)."""
    a, b = node.start_mark.index, node.end_mark.index
    style, value = node.style, node.value
    if style in ("|", ">"):
        nl = src.find("\n", a)
        if not 0 <= nl < b:
            return value, a
        text, start = src[nl + 1:b], nl + 1
    elif style == "'":  # its one escape: '' for '
        parts = src[a + 1:b - 1].split("''")
        pieces = [piece for part in parts for piece in ((part, part), ("''", "'"))][:-1]
        text, start = _file_aligned(pieces), a + 1
    elif style == '"':
        (text, broke), start = _double_quoted(src[a + 1:b - 1]), a + 1
        if broke and "--" in value:
            return value, start
    else:
        text, start = src[a:b], a
    return (text, start) if text.split() == value.split() else (value, start)


class _YamlChangelog:
    """The changelog tree of a YAML or JSON changelog, from PyYAML's node graph: a mapping is an element, a
    scalar an attribute, a list of one-key mappings (``changes:``, ``columns:``) the children of the element that
    holds it (except ``rollback:``, a child of its own)."""

    def __init__(self, text: str, is_json: bool):
        # JSON may indent with tabs, which YAML refuses there; a tab inside a JSON string is invalid anyway
        self.src = text.replace("\t", " ") if is_json else text
        # PyYAML shares an aliased node; building it again for every alias of an alias… would never end (the
        # billion laughs in YAML). A file without aliases has fewer mappings than characters.
        self.budget = len(self.src) + 1000

    def read(self) -> _LNode:
        import yaml

        self.yaml = yaml
        root = _LNode("#document", 0)
        try:
            doc = yaml.compose(self.src, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            if isinstance(doc, yaml.MappingNode):
                for k, v in doc.value:
                    if isinstance(k, yaml.ScalarNode):
                        root.children.append(self.node(k, v))
        except Exception:  # noqa: BLE001 - unreadable YAML/JSON, or an alias bomb: nothing to report
            return _LNode("#document", 0)
        return root

    def node(self, key, value) -> _LNode:
        yaml = self.yaml
        self.budget -= 1
        if self.budget < 0:
            raise ValueError("more changelog nodes than the file has characters: aliases of aliases")
        node = _LNode(key.value, key.start_mark.index)
        if isinstance(value, yaml.SequenceNode):
            self.items_into(node, value)
        elif isinstance(value, yaml.ScalarNode):
            node.text = _yaml_sql(self.src, value)
            node.attrs["#value"] = (value.value, value.start_mark.index)
        elif isinstance(value, yaml.MappingNode):
            for k, v in value.value:
                if isinstance(k, yaml.ScalarNode):
                    self.field(node, k, v)
        return node

    def field(self, node: _LNode, k, v):
        yaml, key = self.yaml, k.value
        if isinstance(v, yaml.ScalarNode):
            node.attrs[key], node.keys[key] = (v.value, v.start_mark.index), k.start_mark.index
            if key in _SQL_KEYS:
                node.attrs[key + "#raw"] = _yaml_sql(self.src, v)
        elif isinstance(v, yaml.SequenceNode):
            if key == "rollback":
                holder = _LNode("rollback", k.start_mark.index)
                node.children.append(holder)
            else:
                holder = node
            self.items_into(holder, v)
        elif isinstance(v, yaml.MappingNode):
            node.children.append(self.node(k, v))

    def items_into(self, node: _LNode, seq):
        for item in seq.value:
            if isinstance(item, self.yaml.MappingNode):
                for k, v in item.value:
                    if isinstance(k, self.yaml.ScalarNode):
                        node.children.append(self.node(k, v))


# -- what the changes send ----------------------------------------------------------------------------------------

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
        at = c.keys.get("autoIncrement")  # the attribute, not its value
        aline, acol = self.lc(at) if at is not None else (None, None)
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
                text = k.sql_text()
                if text and text[0].strip():
                    return text
        text = n.sql_text()
        if text and text[0].strip():
            return text
        return None

    def c_sql(self, n: _LNode, txn):
        body = self.body(n, "sql")
        if body:
            line, col = self.lc(body[1])
            self.out.literal(body[0], line, col, "Liquibase sql", txn, params=())

    def c_createProcedure(self, n: _LNode, txn):
        from dsql_audit.sources.app import looks_like_sql

        body = self.body(n, "procedureText", "procedureBody")
        # stripped: app.SQL_START backtracks exponentially on whitespace runs around comments (a comment-only body)
        if body and looks_like_sql(body[0].strip()):
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


def _changelog(path: str, text: str) -> _LNode:
    lower = path.lower()
    if lower.endswith((".yaml", ".yml", ".json")):
        return _YamlChangelog(text, lower.endswith(".json")).read()
    return _XmlChangelog(text).read()


NAME = "liquibase"


def detect(path: str, text: str) -> bool:
    return file_parts(path)[1] in (".xml", ".yaml", ".yml", ".json") and "databaseChangeLog" in text


def emit(path: str, text: str, out: Out):
    _Liquibase(text, out).run(_changelog(path, text))


def extract(path: str, text: str) -> list:
    """This framework's records for one file (whatever detect() says)."""
    from dsql_audit.sources import frameworks

    return frameworks.run(sys.modules[__name__], path, text)
