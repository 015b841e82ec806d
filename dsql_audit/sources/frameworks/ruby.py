"""Ruby source read from tree-sitter's ``ruby`` grammar: call arguments as ``synth.Value`` objects, blocks,
heredocs and string literals with their character positions; and Rails' inflector, for table names."""

from __future__ import annotations

import bisect
import re

import inflection

from dsql_audit.sources.frameworks.synth import Value
from dsql_audit.sources.frameworks.tree import Source, walk

# --------------------------------------------------------------------------------------------------------------
# Rails' inflector
# --------------------------------------------------------------------------------------------------------------
# inflection ports Rails' rules with a few that Rails (7.x, activesupport/lib/active_support/inflections.rb)
# does not have: cow → kine, potato → potatoes, passerby → passersby, and (m|l)ouse / (m|l)ice unanchored
# (slice → slice); and it misses "police" among the uncountable words. Rails' own answers win.
_RAILS_ADDS_S = re.compile(r"(?i)(?:cow|potato|.mouse|.mice|.louse|.lice)$")  # no Rails rule: its default "s"


def pluralize(word: str) -> str:
    """A word's plural as Rails' ``String#pluralize`` gives it."""
    low = word.lower()
    if low == "police":
        return word
    if low.endswith("passerby"):
        return word[:-1] + "ies"
    if _RAILS_ADDS_S.search(word):
        return word + "s"
    return inflection.pluralize(word)


def singularize(word: str) -> str:
    """A word's singular as Rails' ``String#singularize`` gives it."""
    if re.search(r"(?i)(?:^police|kine|.mice|.lice)$", word):  # Rails leaves these as they are
        return word
    return inflection.singularize(word)


def tableize(model: str) -> str:
    """A model class's table name as Rails derives it: ``Billing::LineItem`` → ``line_items``."""
    return pluralize(inflection.underscore(model.split("::")[-1]))


# --------------------------------------------------------------------------------------------------------------
# Ruby values
# --------------------------------------------------------------------------------------------------------------

def _blank(code: str) -> str:
    """``#{…}`` → underscores of the same length, newlines kept (an identifier where the SQL wants a name)."""
    return "".join("\n" if ch == "\n" else "_" for ch in code)


def _unescape_double(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), raw, flags=re.S)


def _unescape_single(raw: str) -> str:
    """Ruby single quotes only know ``\\\\`` and ``\\'``."""
    return re.sub(r"\\([\\'])", r"\1", raw)


class Ruby:
    """One Ruby file: its tree, its call nodes (in document order) and its heredocs."""

    def __init__(self, text: str):
        self.text = text
        self.src = Source(text, "ruby")
        self.calls: list = []
        self._call_starts: list[int] = []
        self._heredocs: dict = {}  # opener's start byte → its heredoc_body node

    # -- the tree
    def scan(self, skipped) -> None:
        """Read the tree once: every ``call`` outside the subtrees for which ``skipped(node)`` is true goes to
        ``self.calls``; heredoc openers are paired with their bodies everywhere (skipped code included, so the
        pairs stay in step)."""
        openers, bodies, calls = [], [], []
        stack = [(self.src.root, False)]
        while stack:
            node, skip = stack.pop()
            kind = node.type
            if kind == "heredoc_beginning":
                openers.append(node)
            elif kind == "heredoc_body":
                bodies.append(node)
            elif not skip:
                if kind == "call":
                    skip = skipped(node)
                    if not skip:
                        calls.append(node)
                elif kind in ("method", "singleton_method"):
                    skip = skipped(node)
            children = node.named_children  # punctuation and keywords hold nothing to read
            if children:
                stack.extend((child, skip) for child in reversed(children))
        # Ruby reads heredoc bodies in the order of their openers, one after another
        openers.sort(key=lambda n: n.start_byte)
        bodies.sort(key=lambda n: n.start_byte)
        self._heredocs = {o.start_byte: b for o, b in zip(openers, bodies)}
        self.calls = calls
        self._call_starts = [c.start_byte for c in calls]

    def calls_within(self, node) -> list:
        """The scanned calls inside ``node``."""
        if node is None:
            return []
        lo = bisect.bisect_left(self._call_starts, node.start_byte)
        hi = bisect.bisect_left(self._call_starts, node.end_byte)
        return self.calls[lo:hi]

    def start(self, node) -> int:
        return self.src.start(node)

    def node_text(self, node) -> str:
        return self.src.node_text(node)

    @staticmethod
    def method(call) -> str:
        m = call.child_by_field_name("method")
        return m.text.decode("utf-8", "replace") if m is not None else ""

    # -- calls
    def args(self, call) -> tuple[list[Value], dict[str, Value]]:
        """A call's arguments: (positional, {keyword: value}); splats and block arguments are left out."""
        pos: list[Value] = []
        kw: dict[str, Value] = {}
        arglist = call.child_by_field_name("arguments")
        if arglist is None:
            return pos, kw
        for arg in arglist.named_children:
            kind = arg.type
            if kind == "pair":
                key, value = arg.child_by_field_name("key"), arg.child_by_field_name("value")
                if key is not None:
                    kw[self.key(key)] = self.value(value) if value is not None else self.raw(key)
            elif kind in ("comment", "hash_splat_argument", "block_argument", "forward_argument"):
                continue
            else:
                pos.append(self.value(arg))
        return pos, kw

    def block(self, call) -> tuple[str | None, object] | None:
        """A call's ``do |t| … end`` or ``{ |t| … }`` block: (its first parameter, its body node), else None."""
        blk = call.child_by_field_name("block")
        if blk is None:
            return None
        param = None
        params = blk.child_by_field_name("parameters")
        if params is not None:
            first = next((p for p in params.named_children if p.type == "identifier"), None)
            param = self.node_text(first) if first is not None else None
        return param, blk.child_by_field_name("body")

    def key(self, node) -> str:
        if node.type == "hash_key_symbol":
            return self.node_text(node)
        v = self.value(node)
        return v.name if v.name is not None else str(v.value)

    # -- values
    def raw(self, node) -> Value:
        return Value("raw", self.node_text(node).strip(), self.src.start(node), self.src.end(node))

    def value(self, node) -> Value:
        reader = _READERS.get(node.type)
        if reader is None:
            return self.raw(node)
        return reader(self, node)

    def _span(self, node, kind, value, extra=None) -> Value:
        return Value(kind, value, self.src.start(node), self.src.end(node), extra)

    def _symbol(self, node) -> Value:
        return self._span(node, "sym", self.node_text(node)[1:])

    def _delimited_symbol(self, node) -> Value:
        return self._span(node, "sym", self._string(node).value)

    def content(self, node) -> tuple[int, str, bool]:
        """A string literal's content: (offset of its first character, its text with each ``#{…}`` as
        same-length underscores, whether it has any)."""
        kids = node.children
        start = self.src.end(kids[0]) if kids else self.src.start(node)
        end = self.src.start(kids[-1]) if len(kids) > 1 and kids[-1].type == '"' else self.src.end(node)
        return self._holed(start, end, kids)

    def _holed(self, start: int, end: int, kids) -> tuple[int, str, bool]:
        parts, at, dynamic = [], start, False
        for kid in kids:
            if kid.type == "interpolation":
                a, b = self.src.start(kid), self.src.end(kid)
                parts += [self.text[at:a], _blank(self.text[a:b])]
                at, dynamic = b, True
        parts.append(self.text[at:end])
        return start, "".join(parts), dynamic

    def _string(self, node) -> Value:
        start, raw, dynamic = self.content(node)
        opener = self.node_text(node.children[0]) if node.children else '"'
        single = opener == "'" or opener.startswith("%q") or opener == ":'"
        value = _unescape_single(raw) if single else _unescape_double(raw)
        return self._span(node, "str", value, (start, raw, dynamic))

    def _chained_string(self, node) -> Value:
        # "a " \ "b": one string; its content is placed where the first part's starts (the parts' own lines
        # cannot all be kept in one text)
        parts = [self._string(s) for s in node.named_children if s.type == "string"]
        if not parts:
            return self.raw(node)
        raw = "".join(p.extra[1] for p in parts)
        extra = (parts[0].extra[0], raw, any(p.extra[2] for p in parts))
        return self._span(node, "str", "".join(str(p.value) for p in parts), extra)

    def _heredoc(self, node) -> Value:
        """``<<~SQL`` (its body read from the paired ``heredoc_body``); a method on the opener
        (``<<~SQL.squish``) belongs to it."""
        opener = node
        while opener.type == "call":
            opener = opener.child_by_field_name("receiver")
        body = self._heredocs.get(opener.start_byte)
        if body is None:
            return self.raw(node)
        return self._span(node, "heredoc", self.heredoc_body(body))

    def heredoc_body(self, body) -> dict:
        """{"body": (start, end) of the lines between the opener's line and the terminator's, "raw": that text
        with ``#{…}`` blanked, "dynamic": whether it had any}."""
        text = self.text
        first = self.src.start(body)
        nl = text.find("\n", first)
        start = len(text) if nl < 0 else nl + 1
        kids = body.children
        end_node = kids[-1] if kids and kids[-1].type == "heredoc_end" else None
        end = text.rfind("\n", 0, self.src.start(end_node)) + 1 if end_node is not None else self.src.end(body)
        end = max(end, start)
        _, raw, dynamic = self._holed(start, end, kids)
        return {"body": (start, end), "raw": raw, "dynamic": dynamic}

    def _call_value(self, node) -> Value:
        inner = node
        while inner is not None and inner.type == "call":
            inner = inner.child_by_field_name("receiver")
        if inner is not None and inner.type == "heredoc_beginning":
            return self._heredoc(node)
        if node.child_by_field_name("receiver") is None and self.method(node) in ("lambda", "proc"):
            return self._lambda(node)
        return self.raw(node)

    def _array(self, node) -> Value:
        items = [self.value(k) for k in node.named_children if k.type != "comment"]
        return self._span(node, "arr", items)

    def _word_array(self, node) -> Value:
        words = [self._span(w, "str", self.node_text(w)) for w in node.named_children]
        return self._span(node, "arr", words)

    def _hash(self, node) -> Value:
        kw: dict[str, Value] = {}
        for pair in node.named_children:
            if pair.type != "pair":
                continue
            key, value = pair.child_by_field_name("key"), pair.child_by_field_name("value")
            if key is not None:
                kw[self.key(key)] = self.value(value) if value is not None else self.raw(key)
        return self._span(node, "hash", kw)

    def _number(self, node) -> Value:
        return self._span(node, "num", self.node_text(node).replace("_", ""))

    def _unary(self, node) -> Value:
        operand = node.child_by_field_name("operand")
        op = node.child_by_field_name("operator")
        if operand is not None and op is not None and op.type in ("-", "+") and operand.type in ("integer", "float"):
            sign = "-" if op.type == "-" else ""
            return self._span(node, "num", sign + self.node_text(operand).replace("_", ""))
        return self.raw(node)

    def _lambda(self, node) -> Value:
        """``-> { "now()" }``: the SQL Rails takes from it, the first string inside, else the body's code."""
        blk = node.child_by_field_name("body" if node.type == "lambda" else "block")
        body = blk.child_by_field_name("body") if blk is not None else None
        if body is None:
            return self._span(node, "lambda", "")
        for child in walk(body):
            if child.type == "string":
                return self._span(node, "lambda", self.content(child)[1])
        return self._span(node, "lambda", self.node_text(body).strip())

    def _bool(self, node) -> Value:
        return self._span(node, "bool", node.type == "true")

    def _nil(self, node) -> Value:
        return self._span(node, "nil", None)


_READERS = {
    "simple_symbol": Ruby._symbol,
    "delimited_symbol": Ruby._delimited_symbol,
    "string": Ruby._string,
    "chained_string": Ruby._chained_string,
    "heredoc_beginning": Ruby._heredoc,
    "call": Ruby._call_value,
    "array": Ruby._array,
    "string_array": Ruby._word_array,
    "symbol_array": Ruby._word_array,
    "hash": Ruby._hash,
    "integer": Ruby._number,
    "float": Ruby._number,
    "unary": Ruby._unary,
    "lambda": Ruby._lambda,
    "true": Ruby._bool,
    "false": Ruby._bool,
    "nil": Ruby._nil,
}
