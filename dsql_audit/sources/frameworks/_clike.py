"""C-like scanning (JavaScript/TypeScript, Java/Kotlin, Prisma): strings, comments, brackets."""

from __future__ import annotations


def str_end(s: str, i: int) -> int:
    """Index just after the string literal that starts at ``s[i]`` (', ", ` with ${…}, or a Java \"\"\" block)."""
    n = len(s)
    q = s[i]
    if s.startswith('"""', i):
        j = s.find('"""', i + 3)
        return n if j < 0 else j + 3
    j = i + 1
    while j < n:
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == q:
            return j + 1
        if q == "`" and c == "$" and j + 1 < n and s[j + 1] == "{":
            j = code_end(s, j + 2, "}")
            continue
        if c == "\n" and q != "`":
            return j  # an unterminated string ends at its line
        j += 1
    return n


def code_end(s: str, i: int, close: str) -> int:
    """Index just after the ``close`` that balances code starting at ``i`` (strings and nesting skipped)."""
    n = len(s)
    depth = 0
    while i < n:
        c = s[i]
        if c in "'\"`":
            i = str_end(s, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return i + 1 if c == close else i + 1
            depth -= 1
        i += 1
    return n


def mask_comments(text: str, *, quotes: str = "'\"`") -> str:
    """``//`` and ``/* */`` comments → spaces (newlines kept), outside string literals."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in quotes:
            i = str_end(text, i)
            continue
        if c == "/" and i + 1 < n and text[i + 1] in "/*":
            if text[i + 1] == "/":
                j = text.find("\n", i)
                j = n if j < 0 else j
            else:
                j = text.find("*/", i + 2)
                j = n if j < 0 else j + 2
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
            continue
        i += 1
    return "".join(out)


def match_bracket(s: str, i: int) -> int:
    """Index of the bracket closing the one at ``s[i]`` (len(s) when unbalanced)."""
    end = code_end(s, i + 1, {"(": ")", "[": "]", "{": "}"}.get(s[i], ")"))
    return end - 1


def split_top(s: str, sep: str = ",") -> list[tuple[int, str]]:
    """Top-level pieces of ``s`` split at ``sep`` (outside brackets and strings), with their offsets."""
    out, depth, start, i, n = [], 0, 0, 0, len(s)
    while i < n:
        c = s[i]
        if c in "'\"`":
            i = str_end(s, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == sep and depth == 0:
            out.append((start, s[start:i]))
            start = i + 1
        i += 1
    if s[start:].strip():
        out.append((start, s[start:]))
    return out


def unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"`":
        return v[1:-1]
    return v


