"""JavaScript/TypeScript migrations: what TypeORM, Sequelize and Knex migrations share."""

from __future__ import annotations

import bisect
import re

from dsql_audit.sources.frameworks._clike import (
    code_end,
    mask_comments,
    match_bracket,
    str_end,
)
from dsql_audit.sources.frameworks.synth import Out, Value, file_parts, lit, valid_expr

_TS_CAST = re.compile(r"(as|satisfies)\b")


_JS_ID = re.compile(r"[A-Za-z_$][\w$]*")
_JS_NUM = re.compile(r"-?(?:0[xX][0-9a-fA-F]+|\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)")


class Js:
    """Values and call chains read from JS/TS source with its comments blanked."""

    def __init__(self, text: str):
        self.text = text
        self.s = mask_comments(text)
        self.n = len(self.s)
        self._pairs = None

    def ws(self, i):
        s, n = self.s, self.n
        while i < n and s[i].isspace():
            i += 1
        return i

    def string(self, i) -> Value:
        s = self.s
        end = str_end(s, i)
        q = s[i]
        raw = s[i + 1:end - 1] if end - 1 > i else ""
        dynamic = False
        if q == "`" and "${" in raw:
            out, k, n = [], 0, len(raw)
            while k < n:
                if raw.startswith("${", k):
                    j = code_end(raw, k + 2, "}")
                    out.append("".join("\n" if ch == "\n" else "_" for ch in raw[k:j]))
                    k = j
                    continue
                out.append(raw[k])
                k += 1
            raw, dynamic = "".join(out), True
        value = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": ""}.get(m.group(1), m.group(1)), raw) \
            if "\\" in raw else raw
        return Value("str", value, i, end, (i + 1, raw, dynamic))

    def value(self, i) -> Value:
        s, n = self.s, self.n
        i = self.ws(i)
        if i >= n:
            return Value("raw", "", i, i)
        c = s[i]
        if c in "'\"`":
            v = self.string(i)
        elif c == "{":
            v = self.obj(i)
        elif c == "[":
            items, j = [], i + 1
            while True:
                j = self.ws(j)
                if j >= n or s[j] == "]":
                    v = Value("arr", items, i, min(j + 1, n))
                    break
                item = self.value(j)
                if item.end <= j:
                    v = Value("arr", items, i, match_bracket(s, i) + 1)
                    break
                items.append(item)
                j = self.ws(item.end)
                if j < n and s[j] == ",":
                    j += 1
        elif c == "(":
            close = match_bracket(s, i)
            j = self.ws(close + 1)
            if s.startswith("=>", j):
                v = self.arrow(i, s[i + 1:close], j + 2)
            else:
                inner = self.value(i + 1)
                v = inner if self.ws(inner.end) == close else Value("raw", s[i:close + 1], i, close + 1)
                v = Value(v.kind, v.value, i, close + 1, v.extra)
        else:
            m = _JS_NUM.match(s, i)
            w = _JS_ID.match(s, i)
            if m and not w:
                v = Value("num", m.group(), i, m.end())
            elif w:
                word = w.group()
                j = self.ws(w.end())
                if word in ("true", "false"):
                    v = Value("bool", word == "true", i, w.end())
                elif word in ("null", "undefined"):
                    v = Value("nil", None, i, w.end())
                elif word in ("async", "await", "return", "void") and j < n and s[j] not in ".(,)=:;}":
                    inner = self.value(j)
                    v = Value(inner.kind, inner.value, i, inner.end, inner.extra)
                elif word == "function":
                    k = j
                    nm = _JS_ID.match(s, k)
                    if nm:
                        k = self.ws(nm.end())
                    if k < n and s[k] == "(":
                        close = match_bracket(s, k)
                        b = s.find("{", close)
                        if b < 0:
                            return Value("raw", "", i, n)
                        v = Value("func", s[k + 1:close], i, match_bracket(s, b) + 1, (b + 1, match_bracket(s, b), None))
                    else:
                        v = self.raw(i)
                elif s.startswith("=>", j):
                    v = self.arrow(i, word, j + 2)
                else:
                    v = self.chain(i)
            else:
                v = self.raw(i)
        # trailing operators (a + b, x as T, a || b): the whole expression is raw, its head kept
        j = self.ws(v.end)
        if j < n and s[j] not in ",;)]}:" and v.end > i and not s.startswith("=>", j) and s[j] not in "\n":
            if _TS_CAST.match(s, j) or s[j] in "+-*/|&?<>=!%":
                r = self.raw(j)
                return Value(v.kind, v.value, v.start, r.end, v.extra)
        return v

    def raw(self, i) -> Value:
        s, n = self.s, self.n
        j, depth = i, 0
        while j < n:
            ch = s[j]
            if ch in "'\"`":
                j = str_end(s, j)
                continue
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and ch in ",;":
                break
            j += 1
        if j == i:
            j = i + 1
        return Value("raw", s[i:j].strip(), i, j)

    def arrow(self, start, params, after) -> Value:
        j = self.ws(after)
        if j < self.n and self.s[j] == "{":
            close = match_bracket(self.s, j)
            return Value("func", params, start, close + 1, (j + 1, close, None))
        body = self.value(j)
        return Value("func", params, start, body.end, (j, body.end, body))

    def obj(self, i) -> Value:
        s, n = self.s, self.n
        items: dict[str, Value] = {}
        keys: dict[str, int] = {}
        j = i + 1
        while True:
            j = self.ws(j)
            if j >= n:
                return Value("obj", items, i, n, keys)
            if s[j] == "}":
                return Value("obj", items, i, j + 1, keys)
            if s.startswith("...", j):
                v = self.value(j + 3)
                key = None
                end = v.end
            else:
                key, kstart = None, j
                if s[j] in "'\"`":
                    kv = self.string(j)
                    key, k = kv.value, kv.end
                elif s[j] == "[":
                    k = match_bracket(s, j) + 1
                else:
                    w = _JS_ID.match(s, j) or _JS_NUM.match(s, j)
                    if not w:
                        return Value("obj", items, i, match_bracket(s, i) + 1, keys)
                    key, k = w.group(), w.end()
                    if key in ("async", "get", "set", "static") and _JS_ID.match(s, self.ws(k)):
                        w = _JS_ID.match(s, self.ws(k))
                        key, k = w.group(), w.end()
                k = self.ws(k)
                if k < n and s[k] == "?":
                    k = self.ws(k + 1)
                if k < n and s[k] == ":":
                    v = self.value(k + 1)
                elif k < n and s[k] == "(":  # method shorthand
                    close = match_bracket(s, k)
                    b = s.find("{", close)
                    if b < 0:
                        return Value("obj", items, i, n, keys)
                    v = Value("func", s[k + 1:close], kstart, match_bracket(s, b) + 1, (b + 1, match_bracket(s, b), None))
                else:
                    v = Value("raw", key, kstart, k)
                end = v.end
                if key is not None:
                    items[key] = v
                    keys[key] = kstart
            j = self.ws(end)
            if j < n and s[j] == ",":
                j += 1
            elif j < n and s[j] == "}":
                continue
            else:
                return Value("obj", items, i, match_bracket(s, i) + 1, keys)

    def chain(self, i) -> Value:
        """``a.b(x).c`` → kind "chain": [(name, args or None, offset)]."""
        s, n = self.s, self.n
        segs = []
        j = i
        w = _JS_ID.match(s, j)
        if w and w.group() == "new":
            j = self.ws(w.end())
        end = j
        while True:
            w = _JS_ID.match(s, j)
            if not w:
                break
            name, off = w.group(), j
            j = w.end()
            end = j
            k = self.ws(j)
            if k < n and s[k] == "<":  # TypeScript type arguments: foo<T>(…)
                close = s.find(">", k)
                if 0 < close and self.ws(close + 1) < n and s[self.ws(close + 1)] == "(":
                    k = self.ws(close + 1)
            args = None
            while k < n and s[k] in "([":
                close = match_bracket(s, k)
                if s[k] == "(" and args is None:
                    args = self.args(k, close)
                j = end = close + 1
                k = self.ws(j)
                if k < n and s[k] == "!":
                    k = self.ws(k + 1)
            segs.append((name, args, off))
            if s.startswith("?.", k):
                j = self.ws(k + 2)
                continue
            if k < n and s[k] == "." and not s.startswith("...", k):
                j = self.ws(k + 1)
                continue
            break
        if not segs:
            return self.raw(i)
        return Value("chain", segs, i, end)

    def args(self, open_, close) -> list[Value]:
        out, j = [], open_ + 1
        while True:
            j = self.ws(j)
            if j >= close:
                return out
            v = self.value(j)
            if v.end <= j:
                return out
            out.append(v)
            j = self.ws(v.end)
            if j < close and self.s[j] == ",":
                j += 1
            elif j >= close:
                return out
            else:
                return out

    def pairs(self):
        if self._pairs is None:
            pairs, stack, s, i, n = [], [], self.s, 0, self.n
            while i < n:
                c = s[i]
                if c in "'\"`":
                    i = str_end(s, i)
                    continue
                if c in "([{":
                    stack.append(i)
                elif c in ")]}" and stack:
                    pairs.append((stack.pop(), i))
                i += 1
            pairs.sort()
            self._pairs = pairs
        return self._pairs

    def enclosing(self, off) -> tuple[int, int] | None:
        """The innermost bracket pair around ``off``."""
        pairs = self.pairs()
        i = bisect.bisect_left(pairs, (off, -1)) - 1
        while i >= 0:
            if pairs[i][1] > off:
                return pairs[i]
            i -= 1
        return None

    def functions(self, name: str) -> list[tuple[str, int, int]]:
        """Bodies of the migration functions called ``name`` (up): [(params, body start, body end)]."""
        s, n, out = self.s, self.n, []
        for m in re.finditer(r"(?<![\w$])" + name + r"\b", s):
            before = s[max(0, m.start() - 40):m.start()]
            if before.endswith(".") and not re.search(r"exports\s*\.\s*$", before):  # exports.up, not x.up
                continue
            j = self.ws(m.end())
            if j >= n:
                continue
            if s[j] == "(":  # method / function declaration
                close = match_bracket(s, j)
                k = self.ws(close + 1)
                if k < n and s[k] == ":":  # TypeScript return type
                    k = s.find("{", k)
                    if k < 0:
                        continue
                if k < n and s[k] == "{":
                    out.append((s[j + 1:close], k + 1, match_bracket(s, k)))
            elif s[j] in ":=" and not s.startswith("==", j):
                v = self.value(j + 1)
                if v.kind == "func":
                    a, b, expr = v.extra
                    out.append((v.value, a, b))
        return out


def js_names(params: str) -> list[str]:
    """Parameter names (TypeScript types dropped): ``queryRunner: QueryRunner`` → [queryRunner]."""
    params = re.sub(r":\s*[\w.$<>\[\]| ]+", "", params or "")
    return _JS_ID.findall(params)


def js_str(v: Value | None) -> str | None:
    return str(v.value) if v is not None and v.kind == "str" else None


def js_strs(v: Value | None) -> list[str]:
    if v is None:
        return []
    if v.kind == "arr":
        return [str(x.value) for x in v.value if x.kind == "str"]
    return [str(v.value)] if v.kind == "str" else []


def js_bool(v: Value | None) -> bool:
    return v is not None and v.kind == "bool" and v.value is True


def js_get(v: Value | None, key: str) -> Value | None:
    if v is None:
        return None
    if v.kind == "obj":
        return v.value.get(key)
    if v.kind == "chain" and v.value and v.value[-1][1]:  # new Table({...})
        args = v.value[-1][1]
        if args and args[0].kind == "obj":
            return args[0].value.get(key)
    return None


def js_default(v: Value | None) -> str | None:
    if v is None or v.kind == "nil":
        return None
    if v.kind == "str":
        return lit(v.value)
    if v.kind == "num":
        return v.value
    if v.kind == "bool":
        return "true" if v.value else "false"
    if v.kind == "func" and v.extra and v.extra[2] is not None and v.extra[2].kind == "str":
        e = v.extra[2].value  # TypeORM: default: () => "now()"
        return e if valid_expr(e) else None
    if v.kind == "chain":
        segs = v.value
        names = [x[0] for x in segs]
        if names[-1] in ("raw", "literal") and segs[-1][1] and segs[-1][1][0].kind == "str":
            e = segs[-1][1][0].value
            return e if valid_expr(e) else None
        if names[-1] == "now" and "fn" in names:  # knex.fn.now()
            return "CURRENT_TIMESTAMP"
        if names[-1] == "fn" and segs[-1][1] and segs[-1][1][0].kind == "str":  # Sequelize.fn('now')
            e = f"{segs[-1][1][0].value}()"
            return e if valid_expr(e) else None
        if names[-1] in ("NOW",):
            return "now()"
    return None


class JsMigration:
    """Shared by the three JS frameworks: output, positions, transaction, the up bodies."""

    orm = ""

    def __init__(self, js: Js, out: Out, txn):
        self.js, self.out, self.pos, self.txn = js, out, out.pos, txn

    def lc(self, off):
        return self.pos.lc(off)

    def literal(self, v: Value, origin, params=(), knex=False):
        if v is None or v.kind != "str" or not v.extra:
            return
        cstart, raw, dynamic = v.extra
        text = raw if "\\" not in raw else v.value
        if knex and ("??" in text or re.search(r":\w+:", text)):
            # knex identifier bindings (?? and :name:) stand for names: an identifier of the same length
            text = re.sub(r"\?\?|:\w+:(?!:)", lambda m: "_" * len(m.group()), text)
            dynamic = True
        line, col = self.lc(cstart)
        self.out.literal(text, line, col, origin, self.txn, params=params, dynamic=dynamic)

    def sql(self, sql, off, origin, dynamic=False):
        line, col = self.lc(off)
        self.out.sql(sql, line, col, origin, self.txn, dynamic=dynamic)

    def fk(self, off, origin, obj, target, on_delete, later):
        line, col = self.lc(off)
        self.out.fk(line, col, origin, self.orm, obj, target, on_delete, later, self.txn)


def js_kind(text: str) -> str | None:
    if "MigrationInterface" in text or re.search(r"\bqueryRunner\s*\.", text):
        return "typeorm"
    if "queryInterface" in text or re.search(r"\b(?:Sequelize|DataTypes)\s*\.\s*[A-Z]", text):
        return "sequelize"
    if re.search(r"\.\s*schema\s*\.|\bKnex\b|\bknex\s*\.\s*raw\b", text):
        return "knex"
    return None




JS_EXT = (".js", ".ts", ".mjs", ".cjs", ".mts", ".cts")


def migration_kind(path: str, text: str) -> str | None:
    """typeorm, sequelize or knex for a JS/TS migration file, else None."""
    name, ext, parts = file_parts(path)
    if ext not in JS_EXT or name.endswith((".d.ts", ".d.mts", ".d.cts")):
        return None
    in_folder = any(p in ("migrations", "migration") for p in parts)
    if in_folder or "MigrationInterface" in text or "queryInterface" in text or "knex.schema" in text:
        return js_kind(text) if re.search(r"\bup\b", text) else None
    return None


def emit_migration(text: str, out: Out):
    """A migration read by the framework its code uses (comments aside), which may not be the one detect() chose
    from the raw text."""
    import importlib

    js = Js(text)
    kind = js_kind(js.s)
    if kind is None:
        return
    out.framework = kind
    importlib.import_module(f"dsql_audit.sources.frameworks.{kind}").emit_js(js, out)
