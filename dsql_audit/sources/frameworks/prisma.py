"""Prisma schemas: the SQL `prisma migrate` generates for models, enums and relations, read from tree-sitter's
``prisma`` grammar.

That grammar reads ``//`` inside a string as a comment and an escaped quote as the string's end, pairs quotes
wrongly where it recovers from an error, and knows no ``Unsupported("…")`` type, no ``view``/``type`` block, no
attribute on an enum value and no named argument inside a function (``sort: Desc``). So it parses a copy of the
text where each string and each ``Unsupported("…")`` is one identifier of the same length (offsets hold), and
what it leaves as ERROR is read as the tokens it still holds. Every value is read from the original text, at
the offsets of the tree: a string is a value whose text starts with a quote.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from dsql_audit.sources.frameworks.synth import (Layout, Out, enum_sql, file_parts, index_sql, lit, qn, qq,
                                                 valid_expr, valid_type)
from dsql_audit.sources.frameworks.tree import Source

_PRISMA_SCALAR = {"String": "TEXT", "Boolean": "BOOLEAN", "Int": "INTEGER", "BigInt": "BIGINT",
                  "Float": "DOUBLE PRECISION", "Decimal": "DECIMAL(65,30)", "DateTime": "TIMESTAMP(3)",
                  "Json": "JSONB", "Bytes": "BYTEA"}
_PRISMA_NATIVE = {"text": "TEXT", "varchar": "VARCHAR", "char": "CHAR", "uuid": "UUID", "inet": "INET",
                  "citext": "CITEXT", "xml": "XML", "money": "MONEY", "smallint": "SMALLINT", "integer": "INTEGER",
                  "bigint": "BIGINT", "oid": "OID", "real": "REAL", "doubleprecision": "DOUBLE PRECISION",
                  "decimal": "DECIMAL", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ", "date": "DATE",
                  "time": "TIME", "timetz": "TIMETZ", "bit": "BIT", "varbit": "VARBIT", "boolean": "BOOLEAN",
                  "json": "JSON", "jsonb": "JSONB", "bytea": "BYTEA"}
_PRISMA_ACTIONS = {"Cascade": "CASCADE", "SetNull": "SET NULL", "Restrict": "RESTRICT", "NoAction": "NO ACTION",
                   "SetDefault": "SET DEFAULT"}
_SERIAL = {"INTEGER": "SERIAL", "BIGINT": "BIGSERIAL", "SMALLINT": "SMALLSERIAL"}

# what the grammar misreads: a comment (kept), an Unsupported("…") type, a string
_MISREAD = re.compile(r'//[^\n]*|\bUnsupported\s*\(\s*"(?:[^"\\\n]|\\.)*"\s*\)|"(?:[^"\\\n]|\\.)*"')
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_BLOCKS = {"model_block", "enum_block", "key_value_block"}
_SKIPPED = {"comment", "document_comment"}


def _readable(text: str) -> str:
    """The text as the grammar reads it right, every offset unchanged (see the module doc), in ASCII: outside
    strings Prisma has none but in comments, and tree offsets of ASCII text are character offsets at no cost."""
    def blank(m):
        s = m.group(0)
        if s.startswith("//"):
            return s
        if s.startswith("Unsupported"):
            return "Unsupported" + "_" * (len(s) - len("Unsupported"))
        return "_" * len(s)
    readable = _MISREAD.sub(blank, text)
    return readable if readable.isascii() else _NON_ASCII.sub("_", readable)


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] == '"':
        return v[1:-1]
    return v


# --------------------------------------------------------------------------------------------------------------
# Values: attribute arguments as the tree lays them out (flat tokens between the parentheses)
# --------------------------------------------------------------------------------------------------------------

@dataclass
class _Value:
    kind: str  # list, call, str or word (a number, an identifier, anything else)
    text: str  # as written in the file, trimmed
    start: int
    items: list = field(default_factory=list)  # a list's values
    name: str = ""  # a call's function
    args: _Args | None = None  # a call's arguments


@dataclass
class _Args:
    positional: list = field(default_factory=list)
    named: dict = field(default_factory=dict)

    def first(self, key: str | None = None) -> _Value | None:
        """The named argument ``key``, else the first positional one."""
        if key and key in self.named:
            return self.named[key]
        return self.positional[0] if self.positional else None


def _tokens(nodes) -> list:
    """Nodes with every ERROR node replaced by the tokens it holds, comments left out."""
    out, stack = [], list(reversed(nodes))
    while stack:
        n = stack.pop()
        if n.type == "ERROR":
            stack.extend(reversed(n.children))
        elif n.type not in _SKIPPED:
            out.append(n)
    return out


class _Reader:
    """The file's tree (of the readable copy) and its original text."""

    def __init__(self, text: str):
        self.text = text
        self.src = Source(_readable(text), "prisma")

    def start(self, node) -> int:
        return self.src.start(node)

    def raw(self, node) -> str:
        return self.text[self.src.start(node):self.src.end(node)]

    def between(self, a: int, b: int) -> str:
        return self.text[a:b].strip()

    # -- argument lists --------------------------------------------------------------------------------------------
    def parenthesized(self, nodes) -> tuple[_Args | None, str | None]:
        """The arguments inside the first ``(`` … last ``)`` of ``nodes`` and their text (None, None: none)."""
        toks = _tokens(nodes)
        opens = [i for i, t in enumerate(toks) if t.type == "("]
        closes = [i for i, t in enumerate(toks) if t.type == ")"]
        if not opens:
            return None, None
        i = opens[0]
        j = closes[-1] if closes and closes[-1] > i else len(toks)
        end = self.start(toks[j]) if j < len(toks) else self.src.end(toks[-1])
        inner_start = self.src.end(toks[i])
        return self.arguments(toks[i + 1:j], end), self.text[inner_start:end]

    def arguments(self, toks: list, end: int) -> _Args:
        """``a, b, key: value`` split at the commas outside brackets."""
        args = _Args()
        for piece, piece_end in self.pieces(toks, end):
            if len(piece) >= 2 and piece[0].type == "identifier" and piece[1].type == ":":
                value_from = self.src.end(piece[1])
                args.named[self.raw(piece[0])] = self.value(piece[2:], value_from, piece_end)
            else:
                args.positional.append(self.value(piece, self.start(piece[0]), piece_end))
        return args

    def pieces(self, toks: list, end: int):
        """(tokens, end offset) of each comma-separated piece; a piece ends where its comma starts."""
        depth, piece = 0, []
        for t in toks:
            if t.type in ("[", "("):
                depth += 1
            elif t.type in ("]", ")"):
                depth -= 1
            if t.type == "," and depth == 0:
                if piece:
                    yield piece, self.start(t)
                piece = []
                continue
            piece.append(t)
        if piece:
            yield piece, end

    def value(self, toks: list, start: int, end: int) -> _Value:
        text = self.between(start, end)
        if not toks:
            return _Value("word", text, start)
        first = toks[0]
        if first.type == "[":
            close = max((i for i, t in enumerate(toks) if t.type == "]"), default=len(toks))
            close_at = self.start(toks[close]) if close < len(toks) else end
            items = self.arguments(toks[1:close], close_at).positional
            return _Value("list", text, self.start(first), items=items)
        if first.type == "apply_function" and len(toks) == 1:
            name = first.child_by_field_name("name")
            args, _ = self.parenthesized(first.children)
            return _Value("call", text, self.start(first), name=self.raw(name) if name else "", args=args or _Args())
        kind = "str" if text.startswith('"') else "word"
        return _Value(kind, text, self.start(first))


def _names(v: _Value | None) -> list[tuple[str, _Value]]:
    """``[a, b(sort: Desc)]`` (or one name) → [(name, value)]."""
    if v is None:
        return []
    items = v.items if v.kind == "list" else [v]
    out = []
    for item in items:
        name = item.name if item.kind == "call" else item.text
        if re.fullmatch(r"\w+", name or ""):
            out.append((name, item))
    return out


def _string(v: _Value | None) -> str:
    return _unquote(v.text) if v is not None else ""


# --------------------------------------------------------------------------------------------------------------
# The schema: blocks, fields, attributes
# --------------------------------------------------------------------------------------------------------------

@dataclass
class _Attr:
    name: str  # "id", "db.VarChar"; a block attribute's with its second "@": "@index"
    start: int  # its "@"
    args: _Args | None
    raw: str | None  # the text between its parentheses


@dataclass
class _Field:
    name: str
    column: str
    type: str
    mod: str | None  # "?", "[]" or None
    attrs: list
    name_off: int
    type_off: int

    def attr(self, name: str) -> _Attr | None:
        """The last ``@name`` (a repeated attribute: the last one counts)."""
        return next((a for a in reversed(self.attrs) if a.name == name), None)


@dataclass
class _Model:
    name: str
    start: int
    table: str
    schema: str | None = None
    fields: dict = field(default_factory=dict)
    attrs: list = field(default_factory=list)  # block attributes (@@…)


@dataclass
class _Enum:
    name: str
    start: int
    db_name: str
    values: list  # (name, value in the database)


def _blocks(root) -> list:
    """model, enum, datasource and generator blocks in file order (ERROR nodes looked into)."""
    out, stack = [], [root]
    while stack:
        n = stack.pop()
        if n.type in _BLOCKS:
            out.append(n)
        elif n.type in ("source_file", "ERROR"):
            stack.extend(reversed(n.children))
    return out


def _attribute(r: _Reader, node) -> _Attr | None:
    kids = node.children
    at = next((i for i, c in enumerate(kids) if c.type == "attribute_specifier"), None)
    if at is None:
        return None
    name = r.raw(kids[at]).replace(" ", "")
    if node.type == "model_multi_attribute":
        name = "@" + name
    args, raw = r.parenthesized(kids[at + 1:]) if at + 1 < len(kids) else (None, None)
    return _Attr(name, r.start(node), args, raw)


def _field(r: _Reader, node) -> _Field | None:
    kids = node.children
    name = kids[0] if kids and kids[0].type == "identifier" else node.child_by_field_name("field_name")
    ftype = next((c for c in kids if c.type == "field_type"), None)
    if name is None or ftype is None or not ftype.named_children:
        return None
    shape = ftype.named_children[0]
    mod = {"nullable_type": "?", "array_type": "[]"}.get(shape.type)
    base = shape.named_children[0] if mod and shape.named_children else shape
    type_text = r.raw(base).strip()
    if not type_text:
        return None
    attrs = [a for a in (_attribute(r, c) for c in kids if c.type == "model_single_attribute") if a]
    column = r.raw(name)
    mapped = next((a for a in reversed(attrs) if a.name == "map" and a.args), None)
    if mapped is not None:
        column = _string(mapped.args.first("name")) or column
    return _Field(r.raw(name), column, type_text, mod, attrs, r.start(name), r.start(ftype))


def _model(r: _Reader, node) -> _Model:
    name = next((c for c in node.children if c.type == "identifier"), None)
    model = _Model(r.raw(name) if name else "", r.start(node), r.raw(name) if name else "")
    for child in _tokens(node.children):
        if child.type == "model_field":
            f = _field(r, child)
            if f is not None:
                model.fields[f.name] = f
        elif child.type == "model_multi_attribute":
            a = _attribute(r, child)
            if a is not None:
                model.attrs.append(a)
    for a in model.attrs:
        if a.name in ("@map", "@schema") and a.args is not None:
            value = _string(a.args.first("name"))
            if a.name == "@map":
                model.table = value or model.table
            else:
                model.schema = value or model.schema
    return model


def _enum(r: _Reader, node) -> _Enum:
    """An enum's values and names in the database, from its tokens (the grammar keeps no attribute of an enum:
    ``RED @map("red")`` and ``@@map("colors")`` come as ERROR tokens)."""
    toks = _tokens(node.children)
    name = next((t for t in toks if t.type == "identifier"), None)
    enum = _Enum(r.raw(name) if name else "", r.start(node), r.raw(name) if name else "", [])
    body = toks[toks.index(name) + 1:] if name is not None else []
    i = 0
    while i < len(body):
        t = body[i]
        if t.type in ("@", "@@") and i + 1 < len(body) and body[i + 1].type == "identifier":
            i = _enum_attribute(r, enum, t.type, r.raw(body[i + 1]), body, i + 2)
            continue
        if t.type == "identifier":
            value = r.raw(t)
            enum.values.append((value, value))
        i += 1
    return enum


def _enum_attribute(r: _Reader, enum: _Enum, at: str, name: str, body: list, i: int) -> int:
    """Reads ``@map("…")`` / ``@@map("…")`` at ``body[i]`` (just after the name); returns the next index."""
    if i >= len(body) or body[i].type != "(":
        return i
    depth, j = 0, i
    while j < len(body):
        depth += {"(": 1, ")": -1}.get(body[j].type, 0)
        if depth == 0:
            break
        j += 1
    if name == "map":
        strings = [r.raw(t) for t in body[i:j] if r.raw(t).startswith('"')]
        value = _unquote(strings[0]) if strings else ""
        if value and at == "@@":
            enum.db_name = value
        elif value and enum.values:
            enum.values[-1] = (enum.values[-1][0], value)
    return j + 1


def _key_values(r: _Reader, node) -> dict:
    """A datasource or generator block: key → (value node)."""
    out = {}
    for kv in node.children:
        if kv.type != "key_value":
            continue
        key = next((c for c in kv.children if c.type == "key"), None)
        value = next((c for c in kv.children if c.type == "value"), None)
        if key is not None and value is not None:
            out[r.raw(key).strip()] = value
    return out


# --------------------------------------------------------------------------------------------------------------
# The SQL prisma migrate writes
# --------------------------------------------------------------------------------------------------------------

class _Schema:
    def __init__(self, text: str, out: Out):
        self.r = _Reader(text)
        self.out, self.pos = out, out.pos
        self.blocks = _blocks(self.r.src.root)
        self.provider, self.relation_mode, self.has_datasource = None, "foreignKeys", False
        self.models: dict[str, _Model] = {}
        self.enums: dict[str, _Enum] = {}

    def run(self):
        for b in self.blocks:
            if b.type == "key_value_block" and b.children and b.children[0].type == "datasource":
                self.datasource(b)
        if self.provider in ("mongodb",):
            return
        postgres = self.provider in (None, "postgresql", "postgres", "cockroachdb") if self.has_datasource else True
        self.postgres = postgres and self.provider not in ("mysql", "sqlite", "sqlserver")
        self.foreign_keys = self.relation_mode != "prisma"
        parsed = []
        for b in self.blocks:
            if b.type == "model_block":
                m = _model(self.r, b)
                self.models[m.name] = m
                parsed.append(m)
            elif b.type == "enum_block":
                e = _enum(self.r, b)
                self.enums[e.name] = e
                parsed.append(e)
        m2m: dict[tuple, list] = {}
        for item in parsed:
            if isinstance(item, _Enum):
                self.enum(item)
            else:
                self.model(item, m2m)
        self.many_to_many(m2m)

    def datasource(self, node):
        self.has_datasource = True
        values = _key_values(self.r, node)
        provider = values.get("provider")
        if provider is not None and self.r.raw(provider).strip().startswith('"'):
            self.provider = _unquote(self.r.raw(provider)).lower()
        for key in ("relationMode", "referentialIntegrity"):
            mode = values.get(key)
            if mode is not None and self.r.raw(mode).strip().startswith('"'):
                self.relation_mode = _unquote(self.r.raw(mode))
        extensions = values.get("extensions")
        if extensions is not None:  # previewFeatures = ["postgresqlExtensions"]: Prisma migrate creates these
            v = self.r.value(_tokens(extensions.children), self.r.start(extensions), self.r.src.end(extensions))
            for name, item in _names(v):
                mapped = _string(item.args.named.get("map")) if item.kind == "call" else ""
                line, col = self.pos.lc(item.start)
                self.out.sql(f"CREATE EXTENSION IF NOT EXISTS {qq(mapped or name)}", line, col,
                             "Prisma datasource extensions")

    def enum(self, e: _Enum):
        if not self.postgres or not e.values:
            return
        line, col = self.pos.lc(e.start)
        self.out.sql(enum_sql(e.db_name, [v for _, v in e.values], qq), line, col, "Prisma enum")

    def table_of(self, model: str) -> str:
        m = self.models[model]
        return qn(m.table, m.schema, qq)

    def cols_of(self, model: str, names: list[str]) -> list[str]:
        fields = self.models[model].fields
        return [fields[n].column if n in fields else n for n in names]

    def model(self, m: _Model, m2m: dict):
        sline, scol = self.pos.lc(m.start)
        layout = Layout(sline, scol)
        layout.put(f"CREATE TABLE {self.table_of(m.name)} (")
        n_cols = 0
        later: list[tuple[int, callable]] = []
        for f in m.fields.values():
            if f.type in self.models:
                self.relation(m, f, later, m2m)
                continue
            definition = self.column_definition(f)
            if definition is None:
                continue
            defn, type_at = definition
            if n_cols:
                layout.comma()
            fline, fcol = self.pos.lc(f.name_off)
            tline, tcol = self.pos.lc(type_at)
            layout.column(qq(f.column), defn, fline, fcol, tcol if tline == fline else self.pos.lc(f.type_off)[1])
            n_cols += 1
            unique = f.attr("unique")
            if unique is not None:
                later.append((unique.start, self.unique_index(m, f, unique)))
        for a in m.attrs:
            n_cols = self.block_attribute(m, a, layout, n_cols, later)
        layout.put(")")
        if n_cols:
            self.out.sql(layout.text(), sline, scol, "Prisma model")
        for _, emit in sorted(later, key=lambda x: x[0]):
            emit()

    def relation(self, m: _Model, f: _Field, later: list, m2m: dict):
        rel = f.attr("relation")
        if rel is None:
            if f.mod == "[]":
                m2m.setdefault(tuple(sorted((m.name, f.type))), []).append((m.name, f.name, f.name_off))
            return
        args = rel.args or _Args()
        fields = [n for n, _ in _names(args.named.get("fields"))]
        refs = [n for n, _ in _names(args.named.get("references"))]
        if not fields or not self.foreign_keys:
            return
        # onUpdate is not carried: Prisma writes ON UPDATE CASCADE on every relation, and a key it follows is a
        # primary key, which practically never changes
        action = args.named.get("onDelete")
        optional = f.mod == "?" or any(m.fields[x].mod == "?" for x in fields if x in m.fields)
        on_delete = _PRISMA_ACTIONS.get(action.text, action.text) if action is not None and action.text else (
            "SET NULL" if optional else "RESTRICT")
        line, col = self.pos.lc(rel.start)
        obj = f"{m.table}.{','.join(self.cols_of(m.name, fields))}"
        target = self.models[f.type].table
        if refs:
            target += "." + ",".join(self.cols_of(f.type, refs))
        later.append((rel.start, lambda: self.out.fk(line, col, "Prisma @relation", "Prisma", obj, target,
                                                     on_delete, True)))

    def column_definition(self, f: _Field) -> tuple[str, int] | None:
        """(the column's type and constraints, the offset of what gave its type), or None: no column."""
        if f.type.startswith("Unsupported"):
            sql_type = _unquote(f.type[f.type.index("(") + 1:f.type.rindex(")")])
        elif f.type in _PRISMA_SCALAR:
            sql_type = _PRISMA_SCALAR[f.type]
        elif f.type in self.enums:
            if not self.postgres:
                return None
            sql_type = qq(self.enums[f.type].db_name)
        else:
            return None
        type_at = f.type_off
        for a in f.attrs:
            native = _PRISMA_NATIVE.get(a.name[3:].lower()) if a.name.startswith("db.") else None
            if native:
                sql_type = native + (f"({a.raw.strip()})" if a.raw and a.raw.strip() else "")
                type_at = a.start
        if f.mod == "[]":
            sql_type += "[]"
        default = None
        dflt = f.attr("default")
        if dflt is not None:
            sql_type, type_at, default = self.default(f, dflt, sql_type, type_at)
        if not valid_type(sql_type):
            return None
        defn = sql_type
        if f.mod not in ("?", "[]"):
            defn += " NOT NULL"
        if default is not None:
            defn += f" DEFAULT {default}"
        if f.attr("id") is not None:
            defn += " PRIMARY KEY"
        return defn, type_at

    def default(self, f: _Field, a: _Attr, sql_type: str, type_at: int) -> tuple[str, int, str | None]:
        """@default(…): (type, where the type comes from, DEFAULT expression or None)."""
        v = a.args.first() if a.args else None
        if v is None:
            return sql_type, type_at, None
        if v.kind == "call":
            if v.name == "autoincrement" and sql_type in _SERIAL:
                return _SERIAL[sql_type], a.start, None
            if v.name == "dbgenerated":
                expr = v.args.first() if v.args else None
                if expr is not None and expr.kind == "str" and valid_expr(expr.text[1:-1]):
                    return sql_type, type_at, expr.text[1:-1]
            if v.name == "now":
                return sql_type, type_at, "CURRENT_TIMESTAMP"
            return sql_type, type_at, None
        if re.fullmatch(r"-?\d+(\.\d+)?|true|false", v.text):
            return sql_type, type_at, v.text
        if v.kind == "str":
            return sql_type, type_at, lit(_unquote(v.text))
        if f.type in self.enums and re.fullmatch(r"\w+", v.text):
            return sql_type, type_at, lit(dict(self.enums[f.type].values).get(v.text, v.text))
        return sql_type, type_at, None

    def unique_index(self, m: _Model, f: _Field, a: _Attr):
        name = _string(a.args.named.get("map")) if a.args else ""
        name = name or f"{m.table}_{f.column}_key"
        line, col = self.pos.lc(a.start)
        table = self.table_of(m.name)
        return lambda: self.out.sql(index_sql(name, table, [qq(f.column)], unique=True, quote=qq), line, col,
                                    "Prisma @unique")

    def block_attribute(self, m: _Model, a: _Attr, layout: Layout, n_cols: int, later: list) -> int:
        """@@id (a table constraint), @@index and @@unique (indexes after the table); the column count after."""
        kind = a.name[1:]
        if kind not in ("index", "unique", "id") or a.args is None:
            return n_cols
        cols = _names(a.args.first("fields"))
        if not cols:
            return n_cols
        names = self.cols_of(m.name, [c for c, _ in cols])
        line, col = self.pos.lc(a.start)
        if kind == "id":
            if n_cols:
                layout.comma()
            layout.put("PRIMARY KEY (" + ", ".join(qq(c) for c in names) + ")", line, col)
            return n_cols + 1
        keys = []
        for (_, item), db_name in zip(cols, names):
            desc = item.kind == "call" and re.search(r"sort\s*:\s*Desc", item.text)
            keys.append(qq(db_name) + (" DESC" if desc else ""))
        suffix = "key" if kind == "unique" else "idx"
        name = _string(a.args.named.get("map")) or f"{m.table}_{'_'.join(names)}_{suffix}"
        using = a.args.named["type"].text if "type" in a.args.named else None
        table = self.table_of(m.name)
        later.append((a.start, lambda: self.out.sql(
            index_sql(name, table, keys, unique=kind == "unique", using=using, quote=qq), line, col,
            f"Prisma @@{kind}")))
        return n_cols

    def many_to_many(self, m2m: dict):
        """Implicit many-to-many relations: Prisma creates a join table "_AToB" ("A", "B") with keys to both
        sides."""
        for (a, b), sides in sorted(m2m.items()):
            if len(sides) < 2 or a not in self.models or b not in self.models:
                continue
            line, col = self.pos.lc(min(off for *_, off in sides))
            jt = f"_{a}To{b}"
            ida, idb = self.id_field(a), self.id_field(b)
            ta = _PRISMA_SCALAR.get(ida.type, "TEXT") if ida else "TEXT"
            tb = _PRISMA_SCALAR.get(idb.type, "TEXT") if idb else "TEXT"
            self.out.sql(f'CREATE TABLE {qq(jt)} ("A" {ta} NOT NULL, "B" {tb} NOT NULL, '
                         f'CONSTRAINT {qq(jt + "_AB_pkey")} PRIMARY KEY ("A", "B"))', line, col,
                         "Prisma implicit m2m")
            self.out.sql(index_sql(f"{jt}_B_index", qq(jt), ['"B"'], quote=qq), line, col, "Prisma implicit m2m")
            if self.foreign_keys:
                self.out.fk(line, col, "Prisma implicit m2m", "Prisma", f"{jt}.A",
                            f"{self.models[a].table}.{ida.column if ida else 'id'}", "CASCADE", True)
                self.out.fk(line, col, "Prisma implicit m2m", "Prisma", f"{jt}.B",
                            f"{self.models[b].table}.{idb.column if idb else 'id'}", "CASCADE", True)

    def id_field(self, model: str) -> _Field | None:
        return next((f for f in self.models[model].fields.values() if f.attr("id") is not None), None)


NAME = "prisma"


def detect(path: str, text: str) -> bool:
    return file_parts(path)[1] == ".prisma"


def emit(path: str, text: str, out: Out):
    _Schema(text, out).run()


def extract(path: str, text: str) -> list:
    """This framework's records for one file (whatever detect() says)."""
    from dsql_audit.sources import frameworks

    return frameworks.run(sys.modules[__name__], path, text)
