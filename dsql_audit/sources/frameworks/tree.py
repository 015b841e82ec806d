"""Syntax trees for the framework modules: tree-sitter grammars from ``tree-sitter-language-pack`` (its 0.x
wheels carry them), with node positions as character offsets into the file's text, the unit ``synth.Out``
locates records in."""

from __future__ import annotations

import bisect
import threading

_local = threading.local()


def parser(grammar: str):
    """A tree-sitter parser for ``grammar`` (ruby, javascript, typescript, tsx, java, kotlin, prisma, xml, yaml,
    json), one per thread (parsers are not shared across threads)."""
    cache = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    found = cache.get(grammar)
    if found is None:
        from tree_sitter_language_pack import get_parser

        found = cache[grammar] = get_parser(grammar)
    return found


class Source:
    """One file's text and its tree: node → text and character offset (tree-sitter counts bytes)."""

    def __init__(self, text: str, grammar: str):
        self.text = text
        self.src = text.encode("utf-8", "surrogatepass")
        self.ascii = len(self.src) == len(text)
        self._chars: list[int] | None = None
        self.tree = parser(grammar).parse(self.src)
        self.root = self.tree.root_node

    def offset(self, byte: int) -> int:
        """The character offset of a byte offset."""
        if self.ascii:
            return byte
        if self._chars is None:  # built once, on the first non-ASCII file's first question
            chars, count = [], 0
            for ch in self.text:
                chars.append(count)
                count += len(ch.encode("utf-8", "surrogatepass"))
            self._chars = chars
        return bisect.bisect_right(self._chars, byte) - 1 if byte < len(self.src) else len(self.text)

    def start(self, node) -> int:
        return self.offset(node.start_byte)

    def end(self, node) -> int:
        return self.offset(node.end_byte)

    def node_text(self, node) -> str:
        return self.src[node.start_byte:node.end_byte].decode("utf-8", "surrogatepass")


def walk(node):
    """Every node under ``node`` (itself first), depth first, without recursion (deep trees are common)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))
