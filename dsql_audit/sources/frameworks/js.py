"""JavaScript/TypeScript migrations: what TypeORM, Sequelize and Knex migrations share, read from the file's
tree-sitter tree (parsed once): values, call chains, the up() functions and the helpers they call."""

from __future__ import annotations

import bisect
import re
import threading
from functools import lru_cache

from dsql_audit.sources.frameworks.synth import Out, Value, file_parts, scalar_sql, valid_expr
from dsql_audit.sources.frameworks.tree import Source

JS_EXT = (".js", ".ts", ".mjs", ".cjs", ".mts", ".cts")
_TS_EXT = (".ts", ".mts", ".cts")

_FUNCTIONS = ("function_declaration", "generator_function_declaration", "function_expression", "generator_function",
              "arrow_function", "method_definition")
CLASSES = ("class_declaration", "class", "abstract_class_declaration")
_FILE_QUERY = "(comment) @comment\n[" + " ".join(f"({t})" for t in _FUNCTIONS) + "] @function"
_BODY_QUERY = "(call_expression) @call (identifier) @ident"
_IMPORT_QUERY = '(import_statement) @import (call_expression function: (identifier) @fn (#eq? @fn "require")) @call'

_local = threading.local()


def grammar_of(path: str) -> str:
    return "typescript" if file_parts(path)[1] in _TS_EXT else "javascript"


def _captures(grammar: str, query: str, node) -> dict:
    """Nodes of ``query`` in the tree under ``node``, by capture name."""
    from tree_sitter import Query, QueryCursor
    from tree_sitter_language_pack import get_language

    cache = getattr(_local, "queries", None)
    if cache is None:
        cache = _local.queries = {}
    compiled = cache.get((grammar, query))
    if compiled is None:
        compiled = cache[(grammar, query)] = Query(get_language(grammar), query)
    return QueryCursor(compiled).captures(node)


def _in_order(nodes) -> list:
    """Nodes in source order, an enclosing node before those it contains (what a depth-first walk gives)."""
    return sorted(nodes, key=lambda n: (n.start_byte, -n.end_byte))


def _within(body, nodes: list, starts: list) -> list:
    """The nodes (in source order, ``starts`` their start bytes) that lie inside ``body``."""
    lo, hi = bisect.bisect_left(starts, body.start_byte), bisect.bisect_left(starts, body.end_byte)
    return [n for n in nodes[lo:hi] if n.end_byte <= body.end_byte]


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": ""}.get(m.group(1), m.group(1)), raw)


def _stand_in(source: str) -> str:
    """What run-time code in a string stands as: an identifier made from the code's own name, lower case, one
    underscore before it (``${tablePrefix}`` → ``__tableprefix_``, ``+ t.name`` → ``_t_name``). It reads as what
    the program puts there; it is an identifier wherever one can stand (never a keyword, never a number) and
    PostgreSQL does not fold it (a finding's object shows it as written, so findings.py can put the code back);
    for ``${…}`` it is exactly as long as the code, so the columns after it stay exact. Newlines are kept."""
    if source.startswith("${") and source.endswith("}"):
        return "__" + re.sub(r"[^\w\n]", "_", source[2:-1]).lower() + "_"
    return "_" + re.sub(r"[^\w\n]", "_", source).lower()


# what the condition of ``cond ? a : b`` says about the database: the branch PostgreSQL runs
_PG_NAMED = re.compile(r"postgres|\bpg\b", re.IGNORECASE)
_OTHER_DB_NAMED = re.compile(r"mysql|maria|sqlite|mssql|sqlserver|oracle", re.IGNORECASE)
# a branch that shows another database's SQL (the other branch is the one PostgreSQL runs)
_OTHER_SQL = re.compile(r"`|\bAUTO_?INCREMENT\b|\bPRAGMA\b|\bUNSIGNED\b|\bDATETIME\b|\bENGINE\s*=|"
                        r"\b(?:TINY|MEDIUM|LONG)(?:INT|TEXT|BLOB)\b", re.IGNORECASE)


def postgres_branch(condition: str) -> bool | None:
    """True: PostgreSQL takes the first branch of ``condition ? a : b``; False: the second; None: the condition
    does not say (it names no database, or both)."""
    pg, other = _PG_NAMED.search(condition), _OTHER_DB_NAMED.search(condition)
    if bool(pg) == bool(other):
        return None
    negated = condition.count("!") % 2 == 1  # !isPostgres, dbType !== 'postgresdb'
    return bool(pg) != negated


class JsValue(Value):
    """A Value read from the tree (character offsets): ``node`` its tree node; ``alt`` the other branch of a run-time
    choice (``cond ? a : b``) whose condition does not tell which one PostgreSQL runs."""

    __slots__ = ("alt", "node")

    def __init__(self, kind, value, start, end, extra=None, node=None, alt=None):
        super().__init__(kind, value, start, end, extra)
        self.node, self.alt = node, alt

    def spanned(self, start: int, end: int) -> JsValue:
        return JsValue(self.kind, self.value, start, end, self.extra, self.node, self.alt)


class JsFile:
    """One JS/TS file and its tree: values, call chains and functions as the migration readers ask for them.

    ``env``: names a followed helper's parameters are bound to (the values the call passed). ``dynamic``: set when
    a value read since it was last cleared was chosen or built at run time (a ternary, ``${…}``, ``+ name``)."""

    def __init__(self, text: str, grammar: str):
        self.text, self.grammar = text, grammar
        self.src = Source(text, grammar)
        self.root = self.src.root
        found = _captures(grammar, _FILE_QUERY, self.root)
        self.comments = found.get("comment", [])
        self.functions = _in_order(found.get("function", []))
        self.env: dict[str, JsValue] = {}
        self.dynamic = False
        self.marks: dict[str, str] = {}  # stand-in → the code it stands for, as a finding shows it
        self._code: str | None = None
        self._imports: dict[str, str] | None = None
        self._everything: tuple | None = None

    # -- text and positions ------------------------------------------------------------------------------------
    def start(self, node) -> int:
        return self.src.start(node)

    def end(self, node) -> int:
        return self.src.end(node)

    def node_text(self, node) -> str:
        return self.src.node_text(node)

    @property
    def code(self) -> str:
        """The text with its comments blanked (newlines kept): what the regular-expression checks read."""
        if self._code is None:
            pieces, at = [], 0
            for c in sorted(self.comments, key=lambda n: n.start_byte):
                a, b = self.start(c), self.end(c)
                pieces += [self.text[at:a], re.sub(r"[^\n]", " ", self.text[a:b])]
                at = b
            self._code = "".join(pieces) + self.text[at:]
        return self._code

    def under(self, body) -> tuple[list, list]:
        """(calls, identifiers) inside ``body``, in source order (the file's, queried once, cut to the body)."""
        if self._everything is None:
            found = _captures(self.grammar, _BODY_QUERY, self.root)
            calls, idents = _in_order(found.get("call", [])), _in_order(found.get("ident", []))
            self._everything = (calls, [n.start_byte for n in calls], idents, [n.start_byte for n in idents])
        calls, call_starts, idents, ident_starts = self._everything
        return _within(body, calls, call_starts), _within(body, idents, ident_starts)

    # -- functions ---------------------------------------------------------------------------------------------
    def function_name(self, fn) -> str | None:
        """The name a function is known by: its own, or the variable, key or property it is assigned to."""
        if fn.type in ("function_declaration", "generator_function_declaration", "method_definition"):
            name = fn.child_by_field_name("name")
            return self.node_text(name) if name is not None else None
        holder = fn.parent
        if holder is None:
            return None
        field = {"variable_declarator": "name", "pair": "key", "assignment_expression": "left",
                 "field_definition": "property", "public_field_definition": "name"}.get(holder.type)
        if field is None:
            return None
        named = holder.child_by_field_name(field)
        if named is None or named == fn:
            return None
        if named.type == "member_expression":
            named = named.child_by_field_name("property")
        if named.type == "string":
            return self.node_text(named)[1:-1]
        return self.node_text(named) if named.type in ("identifier", "property_identifier") else None

    def ups(self) -> list:
        """The migration functions called up, in file order: exports.up = …, up: …, async up() {}, function up()."""
        out = []
        for fn in self.functions:
            if self.function_name(fn) != "up" or fn.child_by_field_name("body") is None:
                continue
            holder = fn.parent
            if holder is not None and holder.type == "assignment_expression":
                left = holder.child_by_field_name("left")
                if left.type == "member_expression" and \
                        not self.node_text(left.child_by_field_name("object")).endswith("exports"):
                    continue  # x.up = …: not the module's up
            out.append(fn)
        return out

    @staticmethod
    def parameters(fn) -> list:
        params = fn.child_by_field_name("parameters")
        if params is None:
            single = fn.child_by_field_name("parameter")  # knex => …
            return [single] if single is not None else []
        return [p for p in params.named_children if p.type != "comment"]

    def names(self, param) -> list[str]:
        """The names a parameter binds (``{ queryRunner }: MigrationContext`` → [queryRunner]): types and default
        values aside."""
        out, stack = [], [param]
        while stack:
            n = stack.pop()
            t = n.type
            if t in ("identifier", "shorthand_property_identifier_pattern"):
                out.append(self.node_text(n))
            elif t in ("required_parameter", "optional_parameter"):
                stack.append(n.child_by_field_name("pattern"))
            elif t in ("assignment_pattern", "object_assignment_pattern"):
                stack.append(n.child_by_field_name("left"))
            elif t == "pair_pattern":
                stack.append(n.child_by_field_name("value"))
            elif t in ("object_pattern", "array_pattern", "rest_pattern"):
                stack.extend(reversed(n.named_children))
        return out

    @staticmethod
    def destructures(param) -> bool:
        """``{ queryRunner, schemaBuilder: { createTable } }``: the parameter is a context object taken apart."""
        if param.type in ("required_parameter", "optional_parameter"):
            param = param.child_by_field_name("pattern")
        elif param.type == "assignment_pattern":
            param = param.child_by_field_name("left")
        return param is not None and param.type == "object_pattern"

    def enclosing(self, node, types) -> object | None:
        p = node.parent
        while p is not None and p.type not in types:
            p = p.parent
        return p

    def declared(self, name: str, call) -> object | None:
        """The function this file declares under ``name`` (``this.name``: a method of the call's class)."""
        cls = None
        if name.startswith("this."):
            cls, name = self.enclosing(call, CLASSES), name[5:]
            if cls is None:
                return None
        for fn in self.functions:
            if fn.child_by_field_name("body") is None or self.function_name(fn) != name:
                continue
            method = fn.type == "method_definition" or (fn.parent is not None and fn.parent.type in
                                                        ("field_definition", "public_field_definition"))
            if cls is None and not method:
                return fn
            if cls is not None and method and self.enclosing(fn, CLASSES) == cls:
                return fn
        return None

    def imports(self) -> dict[str, str]:
        """Names bound to another file of the project (a relative import or require): name → module."""
        if self._imports is None:
            found = _captures(self.grammar, _IMPORT_QUERY, self.root)
            out: dict[str, str] = {}
            for imp in found.get("import", []):
                source = imp.child_by_field_name("source")
                module = self.node_text(source)[1:-1] if source is not None else ""
                clause = next((c for c in imp.named_children if c.type == "import_clause"), None)
                if module.startswith(".") and clause is not None:
                    for n in self._import_names(clause):
                        out[n] = module
            for call in found.get("call", []):
                self._required(call, out)
            self._imports = out
        return self._imports

    def _import_names(self, clause) -> list[str]:
        out = []
        for c in clause.named_children:
            if c.type == "identifier":
                out.append(self.node_text(c))
            elif c.type == "namespace_import":
                out += [self.node_text(x) for x in c.named_children if x.type == "identifier"]
            elif c.type == "named_imports":
                for spec in c.named_children:
                    alias = spec.child_by_field_name("alias")
                    alias = alias if alias is not None else spec.child_by_field_name("name")
                    if alias is not None:
                        out.append(self.node_text(alias))
        return out

    def _required(self, call, out: dict):
        """``const m = require('./m')`` (also wrapped: ``__importDefault(require('./m'))``) → out[m]."""
        args = [a for a in call.child_by_field_name("arguments").named_children if a.type != "comment"]
        module = self.node_text(args[0])[1:-1] if args and args[0].type == "string" else ""
        if not module.startswith("."):
            return
        holder = call.parent
        while holder is not None and holder.type in ("arguments", "call_expression", "parenthesized_expression",
                                                     "member_expression", "await_expression"):
            holder = holder.parent
        if holder is not None and holder.type == "variable_declarator":
            for n in self.names(holder.child_by_field_name("name")):
                out[n] = module

    # -- values ------------------------------------------------------------------------------------------------
    def value(self, node) -> JsValue:
        """The value a node is: str, num, bool, nil, obj, arr, func, chain (``a.b(x).c``) or raw."""
        handler = _VALUES.get(node.type)
        if handler is not None:
            found = handler(self, node)
            if found is not None:
                return found
        return self.raw(node)

    def raw(self, node) -> JsValue:
        return JsValue("raw", self.node_text(node).strip(), self.start(node), self.end(node), node=node)

    def inner(self, node) -> JsValue:
        """(x), await x, x as T, x!: the value of x over the whole span."""
        kids = [c for c in node.named_children if c.type != "comment"]
        if not kids or kids[0].type == "sequence_expression":
            return self.raw(node)
        return self.value(kids[0]).spanned(self.start(node), self.end(node))

    def string(self, node) -> JsValue:
        a, b = self.start(node), self.end(node)
        raw = self.text[a + 1:max(a + 1, b - 1)]
        return self._str(raw, a, b, dynamic=False, node=node)

    def template(self, node) -> JsValue:
        """A template literal: each ``${…}`` is what a followed helper's call bound it to, else a stand-in."""
        a, b = self.start(node), self.end(node)
        pieces, at, dynamic = [], a + 1, False
        for sub in node.named_children:
            if sub.type != "template_substitution":
                continue
            s, e = self.start(sub), self.end(sub)
            pieces.append(self.text[at:s])
            bound = self._bound(sub)
            pieces.append(bound if bound is not None else self.stand_in(self.text[s:e]))
            dynamic = dynamic or bound is None
            at = e
        pieces.append(self.text[at:max(at, b - 1)])
        return self._str("".join(pieces), a, b, dynamic=dynamic, node=node)

    def _bound(self, sub) -> str | None:
        kids = sub.named_children
        if len(kids) == 1 and kids[0].type == "identifier":
            v = self.env.get(self.node_text(kids[0]))
            if v is not None and v.kind == "str" and not v.extra[2]:
                return str(v.value)
        return None

    def _str(self, raw, a, b, dynamic, node) -> JsValue:
        if dynamic:
            self.dynamic = True
        value = _unescape(raw) if "\\" in raw else raw
        return JsValue("str", value, a, b, (a + 1, raw, dynamic), node)

    def concatenation(self, node) -> JsValue | None:
        """``'…' + name + '…'``: the program's string, each non-literal part a stand-in (dynamic). Its literal text
        lays the parts out at their file positions (a line break between two parts is kept), except where two
        parts join inside a word or a quoted SQL string: there they are glued, as the program glues them."""
        if self.node_text(node.child_by_field_name("operator")) != "+":
            return None
        operands = self._operands(node)
        parts = [self._part(op) for op in operands]
        if parts[0] is None:
            return None  # starts with a run-time part: not SQL anyone can read
        value, laid, dynamic = [], [], False
        prev_end = None
        for part, text, dyn, begin, end in (p or self._stand_in_part(op) for p, op in zip(parts, operands)):
            if prev_end is not None and not _glued("".join(laid), text):
                gap = re.sub(r"[^\n]", " ", self.text[prev_end:begin])
                if dyn and text.startswith("_") and gap.endswith(" "):
                    gap = gap[:-1]  # the stand-in's leading underscore takes the column before the code
                laid.append(gap)
            laid.append(text)
            value.append(part)
            dynamic = dynamic or dyn
            prev_end = end
        if dynamic:
            self.dynamic = True
        a, b = self.start(node), self.end(node)
        return JsValue("str", "".join(value), a, b, (parts[0][3], "".join(laid), dynamic), node)

    @staticmethod
    def _operands(node) -> list:
        out, stack = [], [node]
        while stack:
            n = stack.pop()
            op = n.child_by_field_name("operator") if n.type == "binary_expression" else None
            if op is not None and op.type == "+":
                stack += [n.child_by_field_name("right"), n.child_by_field_name("left")]
            else:
                out.append(n)
        return out

    def _part(self, node) -> tuple[str, str, bool, int, int] | None:
        """(value, laid-out text, dynamic, file offsets where the text begins and ends) of one operand of a
        concatenation that is a string (its content; a helper's parameter bound to one: its value where the name
        is) or a number; None for other code."""
        v = self.value(node)
        a, b = self.start(node), self.end(node)
        written = v.node is not None and v.node.type in ("string", "template_string") and \
            node.start_byte <= v.node.start_byte and v.node.end_byte <= node.end_byte  # not a bound name
        if v.kind == "str" and v.extra and written and v.alt is None:
            begin, raw, dyn = v.extra
            return str(v.value), raw if "\\" not in raw else str(v.value), dyn, begin, self.end(v.node) - 1
        if v.kind in ("str", "num"):  # a bound name, a chosen branch, a nested concatenation, a number
            dyn = v.kind == "str" and bool(v.extra and v.extra[2])
            return str(v.value), str(v.value), dyn, a, b
        return None

    def _stand_in_part(self, node) -> tuple[str, str, bool, int, int]:
        stand = self.stand_in(self.node_text(node))
        return stand, stand, True, self.start(node), self.end(node)

    def stand_in(self, source: str) -> str:
        """The stand-in for run-time code, remembered with what a finding shows instead: ``${tablePrefix}``, or
        ``{tablePrefix}`` for an operand of ``+`` (how the other readers show run-time parts)."""
        mark = _stand_in(source)
        if "\n" not in mark:
            self.marks[mark] = source if source.startswith("${") else "{" + source + "}"
        return mark

    def marks_in(self, sql: str) -> dict | None:
        """The stand-ins in ``sql``, longest first (one may hold a shorter one: ``__v_x_``, ``__v_``)."""
        found = sorted((m for m in self.marks if m in sql), key=len, reverse=True)
        return {m: self.marks[m] for m in found} or None

    def ternary(self, node) -> JsValue:
        """``cond ? a : b``, dynamic: the branch PostgreSQL runs when the condition names the database (isPostgres,
        dbType === 'sqlite'); else the branch that shows no other database's SQL when one does (backquotes,
        AUTO_INCREMENT, datetime); else both could run on PostgreSQL: the first, the second kept as ``alt`` (a
        literal SQL argument gives both). A branch PostgreSQL never runs is not judged: it would only report what
        PostgreSQL never sees."""
        self.dynamic = True
        yes = self.value(node.child_by_field_name("consequence"))
        no = self.value(node.child_by_field_name("alternative"))
        which = postgres_branch(self.node_text(node.child_by_field_name("condition")))
        if which is not None:
            chosen, other = (yes, None) if which else (no, None)
        elif _other_sql(yes) != _other_sql(no):
            chosen, other = (no, None) if _other_sql(yes) else (yes, None)
        else:
            chosen, other = yes, no
        chosen, other = _run_time(chosen), _run_time(other)
        return JsValue(chosen.kind, chosen.value, chosen.start, chosen.end, chosen.extra, chosen.node, other)

    def number(self, node) -> JsValue:
        return JsValue("num", self.node_text(node), self.start(node), self.end(node), node=node)

    def unary(self, node) -> JsValue | None:
        op = self.node_text(node.child_by_field_name("operator"))
        arg = node.child_by_field_name("argument")
        if op == "-" and arg is not None and arg.type == "number":
            return JsValue("num", "-" + self.node_text(arg), self.start(node), self.end(node), node=node)
        if op == "void" and arg is not None:
            return self.value(arg).spanned(self.start(node), self.end(node))
        return None

    def obj(self, node) -> JsValue:
        items: dict[str, JsValue] = {}
        keys: dict[str, int] = {}
        for c in node.named_children:
            key, v = self._member(c)
            if key is not None:
                items[key], keys[key] = v, self.start(c)
        return JsValue("obj", items, self.start(node), self.end(node), keys, node)

    def _member(self, c) -> tuple[str | None, JsValue | None]:
        if c.type == "pair":
            key = self._key(c.child_by_field_name("key"))
            return key, self.value(c.child_by_field_name("value"))
        if c.type == "method_definition":
            name = self.node_text(c.child_by_field_name("name"))
            return name, self.func(c).spanned(self.start(c), self.end(c))
        if c.type == "shorthand_property_identifier":
            key = self.node_text(c)
            return key, self.env.get(key) or JsValue("raw", key, self.start(c), self.end(c), node=c)
        return None, None

    def _key(self, key) -> str | None:
        if key.type == "string":
            return str(self.string(key).value)
        if key.type == "computed_property_name":
            return None
        return self.node_text(key)

    def arr(self, node) -> JsValue:
        items = [self.value(c) for c in node.named_children if c.type != "comment"]
        return JsValue("arr", items, self.start(node), self.end(node), node=node)

    def func(self, node) -> JsValue:
        """kind func: value = its parameter names; extra = (body start, body end, the body's value when the
        body is an expression: ``() => "now()"``)."""
        params = [n for p in self.parameters(node) for n in self.names(p)]
        body = node.child_by_field_name("body")
        if body is None:
            return self.raw(node)
        if body.type == "statement_block":
            extra = (self.start(body) + 1, self.end(body) - 1, None)
        else:
            extra = (self.start(body), self.end(body), self.value(body))
        return JsValue("func", params, self.start(node), self.end(node), extra, node)

    def identifier(self, node) -> JsValue:
        bound = self.env.get(self.node_text(node))
        return bound if bound is not None else self.chain(node)

    def chain(self, node) -> JsValue:
        """``a.b(x).c`` → kind chain: [(name, args or None, offset)] (a call's first arguments; new, await,
        ``!``, ``[i]`` and type arguments aside)."""
        steps, n = [], node
        while True:
            t = n.type
            if t in ("call_expression", "new_expression"):
                args = n.child_by_field_name("arguments")
                steps.append(("call", args))
                n = n.child_by_field_name("function" if t == "call_expression" else "constructor")
            elif t == "member_expression":
                steps.append(("name", n.child_by_field_name("property")))
                n = n.child_by_field_name("object")
            elif t in ("subscript_expression",):
                n = n.child_by_field_name("object")
            elif t in ("non_null_expression", "await_expression") and n.named_children:
                n = n.named_children[0]
            else:
                break
            if n is None:
                return self.raw(node)
        if n.type not in ("identifier", "this", "super", "property_identifier"):
            return self.raw(node)
        segs = [[self.node_text(n), None, self.start(n)]]
        for kind, part in reversed(steps):
            if kind == "name":
                segs.append([self.node_text(part), None, self.start(part)])
            elif segs[-1][1] is None and part is not None and part.type == "arguments":
                segs[-1][1] = self.args(part)
        return JsValue("chain", [tuple(s) for s in segs], self.start(node), self.end(node), node=node)

    def args(self, arguments) -> list[JsValue]:
        return [self.value(c) for c in arguments.named_children if c.type != "comment"]

    @staticmethod
    def callee(call):
        """What a call calls: ``await f<T>(…)`` (TypeScript reads the await into the callee) and ``(0, m.f)(…)``
        (compiled TypeScript; after ``await`` the grammar reads a call of ``await`` with the arguments 0, m.f)
        unwrapped."""
        fn = call.child_by_field_name("function")
        while fn is not None:
            kids = [c for c in fn.named_children if c.type != "comment"]
            if fn.type == "call_expression" and fn.child_by_field_name("function").text == b"await":
                kids = [c for c in fn.child_by_field_name("arguments").named_children if c.type != "comment"]
                fn = kids[-1] if kids else None
            elif fn.type in ("await_expression", "non_null_expression", "parenthesized_expression") and kids:
                fn = kids[0]
            elif fn.type == "sequence_expression" and kids:
                fn = kids[-1]
            else:
                break
        return fn

    @staticmethod
    def chain_top(node):
        """The whole call chain ``node`` heads: ``knex`` → ``knex.schema.createTable(…).createTable(…)``."""
        while True:
            p = node.parent
            if p is None:
                return node
            if (p.type == "member_expression" and p.child_by_field_name("object") == node) or \
                    (p.type in ("call_expression", "new_expression") and
                     p.child_by_field_name("function" if p.type == "call_expression" else "constructor") == node) or \
                    (p.type in ("non_null_expression", "subscript_expression") and p.named_children[0] == node) or \
                    (p.type == "await_expression" and p.parent is not None and p.parent.type == "call_expression"
                     and p.parent.child_by_field_name("function") == p):
                node = p
                continue
            return node

    def awaited(self, node) -> bool:
        """Whether the chain ``node`` is part of is awaited or returned: a migration step, not a value."""
        top = self.chain_top(node)
        p = top.parent
        return p is not None and (p.type in ("await_expression", "return_statement") or
                                  (p.type == "arrow_function" and p.child_by_field_name("body") == top))


def _glued(before: str, after: str) -> bool:
    """Two parts of a concatenation join inside a word, or inside a quoted SQL string or name."""
    if (before[-1:].isalnum() or before[-1:] == "_") and (after[:1].isalnum() or after[:1] == "_"):
        return True
    return before.count("'") % 2 == 1 or before.count('"') % 2 == 1


def _run_time(v: JsValue | None) -> JsValue | None:
    """A string that a run-time choice picks: dynamic."""
    if v is None or v.kind != "str" or not v.extra:
        return v
    return JsValue("str", v.value, v.start, v.end, v.extra[:2] + (True,), v.node, v.alt)


def _other_sql(v: JsValue) -> bool:
    return v.kind == "str" and bool(_OTHER_SQL.search(str(v.value)))


_VALUES = {
    "string": JsFile.string, "template_string": JsFile.template, "number": JsFile.number,
    "true": lambda js, n: JsValue("bool", True, js.start(n), js.end(n), node=n),
    "false": lambda js, n: JsValue("bool", False, js.start(n), js.end(n), node=n),
    "null": lambda js, n: JsValue("nil", None, js.start(n), js.end(n), node=n),
    "undefined": lambda js, n: JsValue("nil", None, js.start(n), js.end(n), node=n),
    "object": JsFile.obj, "array": JsFile.arr, "ternary_expression": JsFile.ternary,
    "binary_expression": JsFile.concatenation, "unary_expression": JsFile.unary,
    "parenthesized_expression": JsFile.inner, "await_expression": JsFile.inner, "as_expression": JsFile.inner,
    "satisfies_expression": JsFile.inner, "non_null_expression": JsFile.inner,
    "arrow_function": JsFile.func, "function_expression": JsFile.func, "generator_function": JsFile.func,
    "identifier": JsFile.identifier, "this": JsFile.chain, "call_expression": JsFile.chain,
    "member_expression": JsFile.chain, "new_expression": JsFile.chain, "subscript_expression": JsFile.chain,
}


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
    if v.kind in ("str", "num", "bool"):
        return scalar_sql(v)
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
    """Shared by the three JS frameworks: output, positions, transaction, and reading a function's body: the
    framework's own calls (``run``, per framework), then the file's helpers the body passes the runner to."""

    orm = ""
    runner = ""  # the runner's usual name: queryRunner, queryInterface, knex
    first_only = True  # the runner is up()'s first parameter (TypeORM reads every parameter's names)
    MAX_DEPTH = 3  # helpers followed through helpers, this deep

    def __init__(self, js: JsFile, out: Out, txn):
        self.js, self.out, self.pos, self.txn = js, out, out.pos, txn
        self.followed: tuple = ()  # the helpers being read, innermost last (no recursion)

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
        count = len(self.out.records)
        self.out.literal(text, line, col, origin, self.txn, params=params, dynamic=dynamic)
        self.name_marks(count, text)
        if getattr(v, "alt", None) is not None:  # cond ? 'A' : 'B' with a condition that does not tell: both
            self.literal(v.alt, origin, params, knex)

    def sql(self, sql, off, origin, dynamic=False):
        line, col = self.lc(off)
        self.statement(sql, line, col, origin, dynamic)

    def statement(self, sql, line, col, origin, dynamic=False):
        """A synthesized statement (laid out from ``line``/``col`` when it comes from synth.Layout)."""
        count = len(self.out.records)
        self.out.sql(sql, line, col, origin, self.txn, dynamic=dynamic or self.js.dynamic)
        self.name_marks(count, sql)

    def name_marks(self, count: int, sql: str):
        """The record just emitted (if any was) learns what its stand-ins stand for (findings.py shows that)."""
        if len(self.out.records) > count and self.js.marks and hasattr(self.out.records[-1], "placeholders"):
            self.out.records[-1].placeholders = self.js.marks_in(sql)

    def fk(self, off, origin, obj, target, on_delete, later):
        line, col = self.lc(off)
        self.out.fk(line, col, origin, self.orm, obj, target, on_delete, later, self.txn)

    def args(self, call) -> list[JsValue]:
        """A call's arguments read afresh: what they read decides whether its statements are dynamic."""
        self.js.dynamic = False
        arguments = call.child_by_field_name("arguments")
        return self.js.args(arguments) if arguments is not None and arguments.type == "arguments" else []

    # -- a function body ---------------------------------------------------------------------------------------
    @classmethod
    def read_ups(cls, js: JsFile, out: Out, txn):
        """Each up() and the helpers it passes the runner to; the whole file when it has no up()."""
        ups = js.ups()
        if not ups:
            cls(js, out, txn).read(js.root, [cls.runner], [])
        for fn in ups:
            cls.read_up(js, out, txn, fn)

    @classmethod
    def read_up(cls, js: JsFile, out: Out, txn, fn):
        """One up(): its parameters name the runner, and the context functions when it takes an object apart
        (``up({ queryRunner, schemaBuilder: { createTable } })``)."""
        params = js.parameters(fn)[:1] if cls.first_only else js.parameters(fn)
        names, context = [], []
        for p in params:
            pnames = js.names(p)
            names += pnames
            if js.destructures(p):
                context += [n for n in pnames if n != cls.runner]
        cls(js, out, txn).read(fn.child_by_field_name("body"), names + [cls.runner], context)

    def read(self, body, names: list[str], context: list[str]):
        """``names``: what the runner is called in ``body``; ``context``: functions taken from the migration's
        context object (``{ schemaBuilder: { createTable } }``), the project's own wrappers."""
        self.run(body, names)
        self.follow(body, names, context)

    def run(self, body, names: list[str]):
        raise NotImplementedError

    def follow(self, body, names: list[str], context: list[str]):
        """The calls in ``body`` that pass the runner on: a helper of this file is read (its statements are
        located in the helper, once per call); one imported from another project file is recorded as an
        UnreadWrapper construct. Awaited calls of context functions are UnreadWrapper too."""
        calls, _ = self.js.under(body)
        for call in calls:
            try:
                self.passing(call, body, names, context)
            except Exception:  # noqa: BLE001, S112 - a call we cannot follow is skipped, the body goes on
                continue

    def passing(self, call, body, names, context):
        js = self.js
        arguments = call.child_by_field_name("arguments")
        if arguments is None or arguments.type != "arguments":
            return
        args = [a for a in arguments.named_children if a.type != "comment"]
        passed = [i for i, a in enumerate(args) if a.type == "identifier" and js.node_text(a) in names]
        callee = js.callee(call) if passed or context else None
        if callee is None:
            return
        name = js.node_text(callee)
        if passed:
            helper = js.declared(name, call)
            if helper is not None:
                inside = body.start_byte <= helper.start_byte and helper.end_byte <= body.end_byte
                if not inside and helper not in self.followed and len(self.followed) < self.MAX_DEPTH:
                    self.enter(helper, call, args, passed, context)
                return
            head = callee.child_by_field_name("object") if callee.type == "member_expression" else callee
            module = js.imports().get(js.node_text(head)) if head is not None else None
            if module is not None:
                short = name.rsplit(".", 1)[-1]
                self.wrapper(call, {"kind": "UnreadWrapper", "name": short, "module": module})
                return
        if context and self.through_context(callee, context) and js.awaited(call):
            self.wrapper(call, {"kind": "UnreadWrapper", "name": name, "module": None})

    def through_context(self, callee, context) -> bool:
        """``createTable(…)`` or ``schemaBuilder.dropIndex(…)`` with the name taken from the context object."""
        head = callee.child_by_field_name("object") if callee.type == "member_expression" else callee
        return head is not None and head.type == "identifier" and self.js.node_text(head) in context

    def wrapper(self, call, construct: dict):
        line, col = self.lc(self.js.start(call))
        self.out.construct(construct, line, col, f"{self.orm} migration through {construct['name']}() (not read)",
                           self.txn)

    def enter(self, helper, call, args, passed, context):
        """Read a helper of this file with what the call gives it: the runner's parameters are the runner (or
        context) names, other plain parameters are bound to the call's values (a ``${table}`` reads 'users')."""
        js = self.js
        names, inner_context, env = [], [], {}
        for i, param in enumerate(js.parameters(helper)):
            pnames = js.names(param)
            if i in passed:
                names += pnames
                if js.destructures(param) or js.node_text(args[i]) in context:
                    inner_context += [n for n in pnames if n != self.runner]
            elif i < len(args) and len(pnames) == 1 and not js.destructures(param):
                env[pnames[0]] = js.value(args[i])
        nested = self.nested(call)
        nested.followed = self.followed + (helper,)
        saved, js.env = js.env, env
        try:
            nested.read(helper.child_by_field_name("body"), names + [self.runner], inner_context)
        finally:
            js.env = saved

    def nested(self, call) -> JsMigration:
        """The reader of a helper called at ``call`` (a framework may carry state over: a transaction)."""
        return type(self)(self.js, self.out, self.txn)


def js_kind(text: str) -> str | None:
    if "MigrationInterface" in text or re.search(r"\bqueryRunner\s*\.", text):
        return "typeorm"
    if "queryInterface" in text or re.search(r"\b(?:Sequelize|DataTypes)\s*\.\s*[A-Z]", text):
        return "sequelize"
    if re.search(r"\.\s*schema\s*\.|\bKnex\b|\bknex\s*\.\s*raw\b", text):
        return "knex"
    return None


@lru_cache(maxsize=8)  # the three JS modules' detect() ask in turn about the same file
def migration_kind(path: str, text: str) -> str | None:
    """typeorm, sequelize or knex for a JS/TS migration file, else None."""
    name, ext, parts = file_parts(path)
    if ext not in JS_EXT or name.endswith((".d.ts", ".d.mts", ".d.cts")):
        return None
    in_folder = any(p in ("migrations", "migration") for p in parts)
    if in_folder or "MigrationInterface" in text or "queryInterface" in text or "knex.schema" in text:
        return js_kind(text) if re.search(r"\bup\b", text) else None
    return None


def emit_migration(path: str, text: str, out: Out):
    """A migration read by the framework its code uses (comments aside), which may not be the one detect() chose
    from the raw text."""
    import importlib

    js = JsFile(text, grammar_of(path))
    kind = js_kind(js.code)
    if kind is None:
        return
    out.framework = kind
    importlib.import_module(f"dsql_audit.sources.frameworks.{kind}").emit_js(js, out)
