"""Rails: migrations (db/migrate) and db/schema.rb."""

from __future__ import annotations

import os
import re
import sys

from dsql_audit.sources.frameworks._clike import match_bracket, unquote
from dsql_audit.sources.frameworks.synth import (
    Layout,
    Out,
    Value,
    enum_sql,
    file_parts,
    index_sql,
    lit,
    parses,
    plural,
    qi,
    qq,
    singular,
    snake,
    valid_expr,
    valid_type,
    valid_where,
)

_RB_BLOCK_WORD = re.compile(r"\s(do|if|unless)\b")
_RB_ARG_END = re.compile(r"(do|if|unless|end)\b")
_RB_SYMBOL_KEY = re.compile(r"([A-Za-z_]\w*[?!]?)\s*:(?!:)")
_RB_STRING_KEY = re.compile(r"(\"[^\"]*\"|'[^']*')\s*:(?!:)")
_RB_PERCENT = re.compile(r"%([qQwWiI]?)([(\[{<|!/])")
_RB_CALL_CHAIN = re.compile(r"(?:\.\w+[?!]?)*")
_RB_NUMBER = re.compile(r"-?\d[\d_]*(\.\d+)?")
_BLANKS = re.compile(r"[ \t]*")


_HEREDOC = re.compile(r"<<([~-]?)(['\"`]?)([A-Za-z_]\w*)\2")
_PCT_DELIM = {"(": ")", "[": "]", "{": "}", "<": ">"}


def _ruby_scan(text: str) -> tuple[str, dict]:
    """Ruby source → (text with comments and heredoc bodies blanked, {opener offset: heredoc}). A heredoc is
    {"body": (start, end) of its body, "interp": bool, "squiggly": bool}. Strings are kept."""
    out = list(text)
    heredocs: dict[int, dict] = {}
    pending: list = []
    n = len(text)
    i = 0

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start and text.startswith("=begin", i):
            j = re.compile(r"^=end\b[^\n]*", re.M).search(text, i)
            j = n if j is None else j.end()
            blank(i, j)
            i = j
            continue
        at_line_start = False
        if c == "\n":
            at_line_start = True
            if pending:  # heredoc bodies start on the next line, one after another
                j = i + 1
                for h in pending:
                    term = re.compile(r"^[ \t]*" + re.escape(h["id"]) + r"[ \t]*$" if h["indent"] else
                                      r"^" + re.escape(h["id"]) + r"[ \t]*$", re.M)
                    m = term.search(text, j)
                    end = n if m is None else m.start()
                    h["body"] = (j, end)
                    stop = n if m is None else m.end()
                    blank(j, stop)
                    j = stop
                pending = []
                i = j
                continue
            i += 1
            continue
        if c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
            continue
        if c in "'\"`":
            i = _rb_str_end(text, i)
            continue
        if c == "<" and text.startswith("<<", i):
            m = _HEREDOC.match(text, i)
            if m and (m.group(1) or m.group(2) or m.group(3).isupper()):
                h = {"id": m.group(3), "indent": bool(m.group(1)), "squiggly": m.group(1) == "~",
                     "interp": m.group(2) != "'", "body": (n, n)}
                heredocs[i] = h
                pending.append(h)
                i = m.end()
                continue
        if c == "%" and i + 1 < n:
            m = _RB_PERCENT.match(text, i)
            if m and (i == 0 or text[i - 1] in " \t(,=[\n"):
                close = _PCT_DELIM.get(m.group(2), m.group(2))
                j = text.find(close, m.end())
                i = n if j < 0 else j + 1
                continue
        i += 1
    return "".join(out), heredocs


def _rb_str_end(s: str, i: int) -> int:
    q, n, j = s[i], len(s), i + 1
    while j < n:
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == q:
            return j + 1
        if q != "'" and c == "#" and j + 1 < n and s[j + 1] == "{":
            depth, j = 1, j + 2
            while j < n and depth:
                depth += {"{": 1, "}": -1}.get(s[j], 0)
                j += 1
            continue
        j += 1
    return n


_RB_ID = re.compile(r"[A-Za-z_]\w*[?!]?")


class _Rb:
    """Ruby call arguments and blocks, read from the masked source."""

    def __init__(self, text: str):
        self.text = text
        self.s, self.heredocs = _ruby_scan(text)
        self.n = len(self.s)

    def ws(self, i, nl=False):
        s, n = self.s, self.n
        while i < n:
            c = s[i]
            if c in " \t\r" or (nl and c == "\n"):
                i += 1
            elif c == "\\" and i + 1 < n and s[i + 1] == "\n":
                i += 2
            else:
                break
        return i

    def string(self, i) -> Value:
        s = self.text
        end = _rb_str_end(s, i)
        raw = s[i + 1:end - 1]
        q = s[i]
        dynamic = False
        if q != "'" and "#{" in raw:
            raw, dynamic = _rb_interp(raw), True
        value = re.sub(r"\\(.)", r"\1", raw) if q == "'" else _rb_unescape(raw)
        return Value("str", value, i, end, (i + 1, raw, dynamic))

    def value(self, i) -> Value:
        s, n = self.s, self.n
        i = self.ws(i)
        if i >= n:
            return Value("raw", "", i, i)
        c = s[i]
        if c == ":" and i + 1 < n:
            if s[i + 1] in "'\"":
                v = self.string(i + 1)
                return Value("sym", v.value, i, v.end)
            m = _RB_ID.match(s, i + 1)
            if m:
                return Value("sym", m.group(), i, m.end())
        if c in "'\"":
            return self.string(i)
        if c == "%":
            m = _RB_PERCENT.match(s, i)
            if m:
                close = _PCT_DELIM.get(m.group(2), m.group(2))
                j = s.find(close, m.end())
                j = n if j < 0 else j
                body = s[m.end():j]
                if m.group(1) in "wWiI" and m.group(1):
                    return Value("arr", [Value("str", w, i, j) for w in body.split()], i, j + 1)
                return Value("str", body, i, j + 1, (m.end(), body, False))
        if c == "[":
            items, j = [], i + 1
            while True:
                j = self.ws(j, nl=True)
                if j >= n or s[j] == "]":
                    return Value("arr", items, i, min(j + 1, n))
                v = self.value(j)
                if v.end <= j:
                    close = match_bracket(s, i)
                    return Value("arr", items, i, close + 1)
                items.append(v)
                j = self.ws(v.end, nl=True)
                if j < n and s[j] == ",":
                    j += 1
        if c == "{":
            pos, kw, end = self.args(i, close="}")
            return Value("hash", kw, i, end, pos)
        if c == "<" and i in self.heredocs:
            m = _HEREDOC.match(s, i)
            h = self.heredocs[i]
            end = m.end() if m else i + 2
            # a method on the opener (<<~SQL.squish) belongs to it
            mm = _RB_CALL_CHAIN.match(s, end)
            return Value("heredoc", h, i, mm.end(), h)
        if s.startswith("->", i):
            j = self.ws(i + 2)
            if j < n and s[j] == "(":
                j = self.ws(match_bracket(s, j) + 1)
            if j < n and s[j] == "{":
                close = match_bracket(s, j)
                inner = s[j + 1:close]
                sm = re.search(r"(['\"])((?:\\.|(?!\1).)*)\1", inner)
                return Value("lambda", sm.group(2) if sm else inner.strip(), i, close + 1)
        m = _RB_NUMBER.match(s, i)
        if m:
            return Value("num", m.group().replace("_", ""), i, m.end())
        m = _RB_ID.match(s, i)
        if m and m.group() in ("true", "false", "nil"):
            return Value("bool" if m.group() != "nil" else "nil", m.group() == "true" if m.group() != "nil" else None,
                      i, m.end())
        # anything else: an expression up to the next top-level comma, closing bracket or line end
        j, depth = i, 0
        while j < n:
            ch = s[j]
            if ch in "'\"":
                j = _rb_str_end(s, j)
                continue
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and (ch == "," or ch == "\n"):
                break
            elif depth == 0 and _RB_BLOCK_WORD.match(s, j):
                break
            j += 1
        return Value("raw", s[i:j].strip(), i, max(j, i + 1) if j == i else j)

    def args(self, i, close=None) -> tuple[list, dict, int]:
        """Arguments from ``i``: (positional, {keyword: value}, end). ``close``: ")" or "}" when s[i] opens."""
        s, n = self.s, self.n
        pos, kw = [], {}
        paren = close is not None
        if paren:
            i += 1
        after_comma = paren
        while True:
            i = self.ws(i, nl=after_comma or paren)
            if i >= n:
                break
            if paren and s[i] == close:
                i += 1
                break
            if not paren and (s[i] in "\n;{}" or _RB_ARG_END.match(s, i)):
                break
            m = _RB_SYMBOL_KEY.match(s, i) or \
                _RB_STRING_KEY.match(s, i)
            if m and not (s[i] in "'\"" and m.group(1) is None):
                key = unquote(m.group(1))
                v = self.value(m.end())
                kw[key] = v
                kw.setdefault("__pos__", {})[key] = i
            else:
                v = self.value(i)
                j = self.ws(v.end)
                if s.startswith("=>", j):
                    key = v.name if v.name is not None else str(v.value)
                    v2 = self.value(j + 2)
                    kw[key] = v2
                    kw.setdefault("__pos__", {})[key] = i
                    v = v2
                else:
                    pos.append(v)
            if v.end <= i:  # no progress: stop here
                if paren:
                    i = self._skip_to(i, close)
                break
            j = self.ws(v.end)
            if j < n and s[j] == ",":
                i, after_comma = j + 1, True
                continue
            i, after_comma = j, False
            if paren:
                if j < n and s[j] == close:
                    i = j + 1
                else:
                    i = self._skip_to(j, close)
                break
            break
        return pos, kw, i

    def _skip_to(self, i, close):
        s, n, depth = self.s, self.n, 0
        while i < n:
            c = s[i]
            if c in "'\"":
                i = _rb_str_end(s, i)
                continue
            if c in "([{":
                depth += 1
            elif c in ")]}":
                if depth == 0:
                    return i + 1
                depth -= 1
            i += 1
        return n

    def call(self, i) -> tuple[list, dict, int]:
        """The arguments of a call whose name ends at ``i`` (with or without parentheses)."""
        j = self.ws(i)
        if j < self.n and self.s[j] == "(" and j == i:
            return self.args(j, close=")")
        return self.args(i)

    def block(self, i, indent: int) -> tuple[str | None, int, int] | None:
        """A ``do |t| … end`` or ``{ |t| … }`` block starting at ``i``: (param, body start, body end)."""
        s, n = self.s, self.n
        j = self.ws(i)
        if s.startswith("do", j) and (j + 2 >= n or not (s[j + 2].isalnum() or s[j + 2] == "_")):
            k = self.ws(j + 2)
            param = None
            if k < n and s[k] == "|":
                e = s.find("|", k + 1)
                param = s[k + 1:e].split(",")[0].strip() if e > 0 else None
                k = e + 1 if e > 0 else k
            return param, k, self.block_end(j, indent)
        if j < n and s[j] == "{":
            close = match_bracket(s, j)
            k = self.ws(j + 1)
            param = None
            if k < n and s[k] == "|":
                e = s.find("|", k + 1)
                param = s[k + 1:e].split(",")[0].strip() if e > 0 else None
                k = e + 1 if e > 0 else k
            return param, k, close
        return None

    def block_end(self, i, indent: int) -> int:
        """Offset of the ``end`` closing a block opened on the line of ``i`` whose statement is at ``indent``."""
        s = self.s
        line_end = s.find("\n", i)
        if line_end < 0:
            return self.n
        for m in re.compile(r"^([ \t]*)end\b", re.M).finditer(s, line_end + 1):
            if len(m.group(1).expandtabs(2)) <= indent:
                return m.start()
        return self.n

    def indent_at(self, i) -> int:
        start = self.s.rfind("\n", 0, i) + 1
        m = _BLANKS.match(self.s, start)
        return len(m.group().expandtabs(2))


def _rb_interp(raw: str) -> str:
    """``#{…}`` → underscores of the same length (an identifier where the SQL needs a name)."""
    out, i, n = [], 0, len(raw)
    while i < n:
        if raw.startswith("#{", i):
            depth, j = 1, i + 2
            while j < n and depth:
                depth += {"{": 1, "}": -1}.get(raw[j], 0)
                j += 1
            out.append("".join("\n" if ch == "\n" else "_" for ch in raw[i:j]))
            i = j
            continue
        out.append(raw[i])
        i += 1
    return "".join(out)


def _rb_unescape(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), raw)


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
_RAILS_LITERAL_SQL = ("execute", "exec_query", "select_all", "select_one", "select_value", "select_values",
                      "select_rows", "exec_update", "exec_delete", "exec_insert")
_RAILS_METHODS = ("create_table", "create_join_table", "change_table", "add_column", "add_reference",
                  "add_belongs_to", "add_index", "add_foreign_key", "add_timestamps", "create_enum", "add_enum_value",
                  "enable_extension", "change_column", "change_column_null", "change_column_default",
                  "remove_column", "rename_column", "rename_table", "drop_table", "remove_index",
                  "add_check_constraint") + _RAILS_LITERAL_SQL
_RAILS_STMT = re.compile(r"(?:(?<=^)|(?<=[;{|(])|(?<=\bdo)|(?<=\bthen)|(?<=\belse)|(?<=\.))[ \t]*"
                         r"(?P<m>" + "|".join(_RAILS_METHODS) + r")(?=[ \t(]|$)", re.M)
_RAILS_MODEL_DML = re.compile(r"(?<![\w:.])(?P<model>(?:[A-Z]\w*::)*[A-Z]\w*)\s*"
                              r"(?P<chain>(?:\.\s*(?:where|unscoped|all|in_batches|joins|order|limit)\b"
                              r"(?:\s*\([^()\n]*\))?)*)\s*\.\s*(?P<op>update_all|delete_all|insert_all!?|upsert_all|"
                              r"create!?|find_or_create_by!?|insert!?)\b")


class _Rails:
    def __init__(self, path: str, text: str, out: Out):
        self.rb = _Rb(text)
        self.out = out
        self.pos = out.pos
        norm = path.replace("\\", "/")
        self.schema = os.path.basename(norm) == "schema.rb"
        s = self.rb.s
        if self.schema or re.search(r"^\s*disable_ddl_transaction!", s, re.M):
            self.txn = None
        else:
            self.txn = out.new_txn()

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

    def default_sql(self, v: Value | None) -> str | None:
        if v is None or v.kind == "nil":
            return None
        if v.kind == "str":
            return lit(v.value)
        if v.kind == "sym":
            return lit(v.value)
        if v.kind == "num":
            return v.value
        if v.kind == "bool":
            return "true" if v.value else "false"
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

    def col_def(self, base: str, opts: dict) -> str:
        defn = base
        if opts.get("null") is not None and opts["null"].kind == "bool" and opts["null"].value is False:
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

    def reference_fk(self, table: str, ref: str, opts: dict, line: int, col: int, origin: str, later: bool):
        fk = opts.get("foreign_key")
        if not self.truthy(fk) or self.truthy(opts.get("polymorphic")):
            return
        target, on_delete, pk = plural(ref), None, "id"
        if fk.kind == "hash":
            target = self.name(fk.value.get("to_table")) or target
            on_delete = self.name(fk.value.get("on_delete"))
            pk = self.name(fk.value.get("primary_key")) or pk
        self.out.fk(line, col, origin, "Rails", f"{table}.{ref}_id", f"{target}.{pk}", on_delete, later, self.txn)

    # -- statements
    def run(self):
        rb = self.rb
        s = rb.s
        skipped = self.skipped_regions()
        consumed = 0
        for m in _RAILS_STMT.finditer(s):
            start = m.start("m")
            if start < consumed or any(a <= start < b for a, b in skipped):
                continue
            method = m.group("m")
            if s[m.start("m") - 1:m.start("m")] == "." and method not in _RAILS_LITERAL_SQL:
                continue
            try:
                end = getattr(self, "do_" + method, self.do_literal if method in _RAILS_LITERAL_SQL else None)(
                    method, start, m.end("m"))
            except Exception:  # noqa: BLE001 - one unreadable statement does not stop the file
                end = None
            if end:
                consumed = end
        for m in _RAILS_MODEL_DML.finditer(s):
            if any(a <= m.start() < b for a, b in skipped) or m.group("model") in ("ActiveRecord", "Base"):
                continue
            self.model_dml(m)
        self.out.records.sort(key=lambda e: (e.line, e.column))

    def skipped_regions(self) -> list[tuple[int, int]]:
        """Code a deploy does not run: ``def down`` / ``def self.down``, ``dir.down`` and ``revert`` blocks."""
        rb, s = self.rb, self.rb.s
        out = []
        for m in re.finditer(r"^([ \t]*)def\s+(?:self\.)?down\b", s, re.M):
            out.append((m.start(), rb.block_end(m.start(), len(m.group(1).expandtabs(2)))))
        for m in re.finditer(r"^([ \t]*)(?:\w+\.down|revert)\b", s, re.M):
            blk = rb.block(m.end(), len(m.group(1).expandtabs(2)))
            if blk:
                out.append((m.start(), blk[2]))
        return out

    def model_dml(self, m: re.Match):
        """Data changed through a model in a migration (DML in the migration's transaction)."""
        table = qi(plural(snake(m.group("model").split("::")[-1])))
        op = m.group("op").rstrip("!")
        where = ".where" in (m.group("chain") or "")
        line, col = self.lc(m.start())
        if op in ("update_all",):
            pos, kw, _ = self.rb.call(m.end())
            keys = [k for k in kw if k != "__pos__"]
            if keys:
                sets = ", ".join(f"{qi(k)} = ${i + 1}" for i, k in enumerate(keys))
            elif pos and pos[0].kind == "str" and parses(f"UPDATE t SET {pos[0].value}"):
                sets = pos[0].value
            else:
                sets = "updated_at = $1"
            n = sets.count("$") + 1
            sql = f"UPDATE {table} SET {sets}" + (f" WHERE ${n}" if where else "")
        elif op == "delete_all":
            sql = f"DELETE FROM {table}" + (" WHERE $1" if where else "")
        else:
            sql = f"INSERT INTO {table} DEFAULT VALUES"
        self.out.sql(sql, line, col, f"Rails {m.group('model')}.{m.group('op')}", self.txn, dynamic=True)

    def do_literal(self, method, start, after):
        rb = self.rb
        pos, kw, end = rb.call(after)
        if not pos:
            return end
        v = pos[0]
        origin = f"Rails {method}"
        if v.kind == "heredoc":
            a, b = v.value["body"]
            raw = rb.text[a:b]
            dynamic = False
            if v.value["interp"] and "#{" in raw:
                raw, dynamic = _rb_interp(raw), True
            line, col = self.lc(a)
            self.out.literal(raw, line, col, origin, self.txn, params=(), dynamic=dynamic)
        elif v.kind == "str" and v.extra:
            cstart, raw, dynamic = v.extra
            text = raw if "\\" not in raw else v.value
            line, col = self.lc(cstart)
            self.out.literal(text, line, col, origin, self.txn, params=(), dynamic=dynamic)
        return end

    def do_enable_extension(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        name = self.name(pos[0]) if pos else None
        if name:
            line, col = self.lc(start)
            self.out.sql(f"CREATE EXTENSION IF NOT EXISTS {qq(name)}", line, col, "Rails enable_extension", self.txn)
        return end

    def do_create_enum(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2:
            values = self.names(pos[1])
            name = self.name(pos[0])
            if name and values:
                line, col = self.lc(start)
                self.out.sql(enum_sql(name, values), line, col, "Rails create_enum", self.txn)
        return end

    def do_add_enum_value(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and self.name(pos[0]) and self.name(pos[1]):
            line, col = self.lc(start)
            self.out.sql(f"ALTER TYPE {qi(self.name(pos[0]))} ADD VALUE {lit(self.name(pos[1]))}", line, col,
                         "Rails add_enum_value", self.txn)
        return end

    def do_create_table(self, method, start, after):
        rb = self.rb
        pos, kw, end = rb.call(after)
        table = self.name(pos[0]) if pos else None
        line, col = self.lc(start)
        blk = rb.block(end, rb.indent_at(start))
        if table is None:
            return blk[2] if blk else end
        layout = Layout(line, col)
        head = "CREATE TABLE "
        if self.truthy(kw.get("if_not_exists")):
            head += "IF NOT EXISTS "
        layout.put(f"{head}{qi(table)} (")
        ncols = 0
        id_opt = kw.get("id")
        pk = kw.get("primary_key")
        pk_names = self.names(pk) if pk is not None else []
        composite = len(pk_names) > 1
        if not (id_opt is not None and id_opt.kind == "bool" and id_opt.value is False) and not composite:
            id_type = self.name(id_opt) if id_opt is not None else None
            id_name = pk_names[0] if pk_names else "id"
            if id_type in (None, "primary_key", "bigint", "bigserial"):
                id_def = "bigserial PRIMARY KEY"
            elif id_type in ("integer", "serial"):
                id_def = "serial PRIMARY KEY"
            elif id_type == "uuid":
                d = self.default_sql(kw.get("default")) or "gen_random_uuid()"
                id_def = f"uuid DEFAULT {d} PRIMARY KEY"
            else:
                t = _RAILS_TYPES.get(id_type, id_type)
                id_def = f"{t} PRIMARY KEY" if t and valid_type(t) else "bigserial PRIMARY KEY"
            layout.column(qi(id_name), id_def, None, None, None)
            ncols += 1
        after_table: list = []
        if blk:
            param, body_start, body_end = blk
            ncols = self.table_body(table, param, body_start, body_end, layout, ncols, after_table, create=True)
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
        return blk[2] if blk else end

    def do_create_join_table(self, method, start, after):
        rb = self.rb
        pos, kw, end = rb.call(after)
        names = [self.name(p) for p in pos[:2] if self.name(p)]
        line, col = self.lc(start)
        blk = rb.block(end, rb.indent_at(start))
        if len(names) == 2:
            table = self.name(kw.get("table_name")) or "_".join(sorted(names))
            layout = Layout(line, col)
            layout.put(f"CREATE TABLE {qi(table)} (")
            cols = [f"{qi(singular(n) + '_id')} bigint NOT NULL" for n in names]
            layout.put(", ".join(cols))
            ncols = 2
            after_table: list = []
            if blk:
                ncols = self.table_body(table, blk[0], blk[1], blk[2], layout, ncols, after_table, create=True)
            layout.put(")")
            self.out.sql(layout.text(), line, col, "Rails create_join_table", self.txn)
            for emit in after_table:
                emit()
        return blk[2] if blk else end

    def do_change_table(self, method, start, after):
        rb = self.rb
        pos, kw, end = rb.call(after)
        table = self.name(pos[0]) if pos else None
        blk = rb.block(end, rb.indent_at(start))
        if table and blk:
            after_table: list = []
            self.table_body(table, blk[0], blk[1], blk[2], None, 0, after_table, create=False)
            for emit in after_table:
                emit()
        return blk[2] if blk else end

    def table_body(self, table, param, body_start, body_end, layout, ncols, after_table, create: bool) -> int:
        """``t.<type> :name, …`` lines of a create_table / change_table block."""
        rb, s = self.rb, self.rb.s
        if not param:
            return ncols
        stmt = re.compile(r"(?<![\w.])" + re.escape(param) + r"\s*\.\s*(\w+[!?]?)")
        for m in stmt.finditer(s, body_start, body_end):
            method = m.group(1)
            pos, kw, end = rb.call(m.end())
            line, col = self.lc(m.start())
            tline, tcol = self.lc(m.start(1))
            origin = f"Rails t.{method}"
            if method in ("index",):
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
                    idx = kw.get("index")
                    if not (idx is not None and idx.kind == "bool" and idx.value is False):
                        icols = [f"{ref}_type", f"{ref}_id"] if self.truthy(kw.get("polymorphic")) else [f"{ref}_id"]
                        iopts = idx.value if idx is not None and idx.kind == "hash" else {}
                        after_table.append(lambda icols=icols, iopts=iopts, line=line, col=col:
                                           self.index(table, icols, iopts, line, col, "Rails t.references"))
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

    def do_add_column(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 3:
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
        return end

    def do_add_timestamps(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        table = self.name(pos[0]) if pos else None
        if table:
            line, col = self.lc(start)
            for c in ("created_at", "updated_at"):
                self.out.sql(f"ALTER TABLE {qi(table)} ADD COLUMN {c} {self.col_def('timestamp(6)', kw)}",
                             line, col, "Rails add_timestamps", self.txn)
        return end

    def do_add_reference(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and self.name(pos[0]) and self.name(pos[1]):
            table, ref = self.name(pos[0]), self.name(pos[1])
            line, col = self.lc(start)
            for cname, cdef in self.reference_columns(table, ref, kw):
                self.out.sql(f"ALTER TABLE {qi(table)} ADD COLUMN {qi(cname)} {cdef}", line, col,
                             f"Rails {method}", self.txn)
            idx = kw.get("index")
            if not (idx is not None and idx.kind == "bool" and idx.value is False):
                icols = [f"{ref}_type", f"{ref}_id"] if self.truthy(kw.get("polymorphic")) else [f"{ref}_id"]
                self.index(table, icols, idx.value if idx is not None and idx.kind == "hash" else {}, line, col,
                           f"Rails {method}")
            self.reference_fk(table, ref, kw, line, col, f"Rails {method}", later=True)
        return end

    do_add_belongs_to = do_add_reference

    def do_add_index(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and self.name(pos[0]):
            line, col = self.lc(start)
            self.index(self.name(pos[0]), self.names(pos[1]), kw, line, col, "Rails add_index")
        return end

    def do_add_foreign_key(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and self.name(pos[0]) and self.name(pos[1]):
            table, target = self.name(pos[0]), self.name(pos[1])
            column = self.name(kw.get("column")) or f"{singular(target)}_id"
            pk = self.name(kw.get("primary_key")) or "id"
            line, col = self.lc(start)
            self.out.fk(line, col, "Rails add_foreign_key", "Rails", f"{table}.{column}", f"{target}.{pk}",
                        self.name(kw.get("on_delete")), True, self.txn)
        return end

    def do_change_column(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 3 and all(self.name(p) for p in pos[:2]):
            base = self.col_type("column", kw, [pos[2]])
            if base:
                line, col = self.lc(start)
                self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} ALTER COLUMN {qi(self.name(pos[1]))} TYPE {base}",
                             line, col, "Rails change_column", self.txn)
        return end

    def do_change_column_null(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 3 and all(self.name(p) for p in pos[:2]) and pos[2].kind == "bool":
            line, col = self.lc(start)
            action = "DROP NOT NULL" if pos[2].value else "SET NOT NULL"
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} ALTER COLUMN {qi(self.name(pos[1]))} {action}",
                         line, col, "Rails change_column_null", self.txn)
        return end

    def do_change_column_default(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and all(self.name(p) for p in pos[:2]):
            value = kw.get("to") if "to" in kw else (pos[2] if len(pos) > 2 else None)
            d = self.default_sql(value)
            action = f"SET DEFAULT {d}" if d is not None else "DROP DEFAULT"
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} ALTER COLUMN {qi(self.name(pos[1]))} {action}",
                         line, col, "Rails change_column_default", self.txn)
        return end

    def do_remove_column(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and all(self.name(p) for p in pos[:2]):
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} DROP COLUMN {qi(self.name(pos[1]))}", line, col,
                         "Rails remove_column", self.txn)
        return end

    def do_rename_column(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 3 and all(self.name(p) for p in pos[:3]):
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} RENAME COLUMN {qi(self.name(pos[1]))} TO "
                         f"{qi(self.name(pos[2]))}", line, col, "Rails rename_column", self.txn)
        return end

    def do_rename_table(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and all(self.name(p) for p in pos[:2]):
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(self.name(pos[0]))} RENAME TO {qi(self.name(pos[1]))}", line, col,
                         "Rails rename_table", self.txn)
        return end

    def do_drop_table(self, method, start, after):
        rb = self.rb
        pos, kw, end = rb.call(after)
        blk = rb.block(end, rb.indent_at(start))
        if pos and self.name(pos[0]):
            line, col = self.lc(start)
            sql = "DROP TABLE " + ("IF EXISTS " if self.truthy(kw.get("if_exists")) else "") + qi(self.name(pos[0]))
            if self.name(kw.get("force")) == "cascade":
                sql += " CASCADE"
            self.out.sql(sql, line, col, "Rails drop_table", self.txn)
        return blk[2] if blk else end

    def do_remove_index(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if pos and self.name(pos[0]):
            table = self.name(pos[0])
            name = self.name(kw.get("name"))
            cols = self.names(kw.get("column")) or (self.names(pos[1]) if len(pos) > 1 else [])
            name = name or (self.index_name(table, cols) if cols else None)
            if name:
                line, col = self.lc(start)
                conc = " CONCURRENTLY" if self.name(kw.get("algorithm")) == "concurrently" else ""
                self.out.sql(f"DROP INDEX{conc} {qi(name)}", line, col, "Rails remove_index", self.txn)
        return end

    def do_add_check_constraint(self, method, start, after):
        pos, kw, end = self.rb.call(after)
        if len(pos) >= 2 and self.name(pos[0]) and pos[1].kind == "str" and valid_where(pos[1].value):
            table = self.name(pos[0])
            name = self.name(kw.get("name")) or f"chk_rails_{abs(hash(pos[1].value)) % 10**10:010d}"
            not_valid = " NOT VALID" if (kw.get("validate") is not None and kw["validate"].kind == "bool"
                                         and kw["validate"].value is False) else ""
            line, col = self.lc(start)
            self.out.sql(f"ALTER TABLE {qi(table)} ADD CONSTRAINT {qi(name)} CHECK ({pos[1].value}){not_valid}",
                         line, col, "Rails add_check_constraint", self.txn)
        return end


def _rails(path: str, text: str, out: Out):
    _Rails(path, text, out).run()




NAME = "rails"


def detect(path: str, text: str) -> bool:
    name, ext, parts = file_parts(path)
    if ext != ".rb":
        return False
    if name == "schema.rb" and "ActiveRecord::Schema" in text:
        return True
    return ("migrate" in parts and "db" in parts) or "ActiveRecord::Migration" in text


def emit(path: str, text: str, out: Out):
    _rails(path, text, out)


def extract(path: str, text: str) -> list:
    """This framework's records for one file (whatever detect() says)."""
    from dsql_audit.sources import frameworks

    return frameworks.run(sys.modules[__name__], path, text)
