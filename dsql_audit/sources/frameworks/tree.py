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
        self._lines: tuple | None = None
        self.tree = parser(grammar).parse(self.src)
        self.root = self.tree.root_node

    def offset(self, byte: int) -> int:
        """The character offset of a byte offset: by line (the line's start in bytes and in characters, built
        once per non-ASCII file), then the characters of that line up to it."""
        if self.ascii:
            return byte
        if self._lines is None:
            byte_starts, char_starts, b, c = [], [], 0, 0
            for line in self.text.split("\n"):
                byte_starts.append(b)
                char_starts.append(c)
                b += len(line.encode("utf-8", "surrogatepass")) + 1
                c += len(line) + 1
            self._lines = (byte_starts, char_starts)
        byte_starts, char_starts = self._lines
        row = bisect.bisect_right(byte_starts, byte) - 1
        start = byte_starts[row]
        return char_starts[row] + len(self.src[start:byte].decode("utf-8", "ignore"))

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
