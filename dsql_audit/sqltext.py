"""Streaming statement splitter with psql semantics.

Reads text line by line and yields statements with their exact line and
column, never holding more than the current statement. It understands
quotes, E'' strings, dollar quotes, nested block comments, psql
meta-commands (``\\connect``) and skips ``COPY … FROM stdin`` data blocks
without looking at them (only counting their rows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator

_TOP = re.compile(r"--|/\*|'|\"|\$(?:[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)?\$|;|\\")
_ESTR = re.compile(r"\\.|'", re.S)
_BLOCK = re.compile(r"/\*|\*/")
_COPY_STDIN = re.compile(r"^\s*COPY\b.*?\bFROM\s+STDIN\b", re.I | re.S)
_SUPPRESS = re.compile(r"dsql-audit\s*:\s*(ignore|disable)(?:\[([^\]]*)\])?", re.I)


def _identchar(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


@dataclass(slots=True)
class RawStatement:
    text: str
    line: int  # 1-based line of the first character
    column: int  # 1-based column of the first character
    kind: str = "sql"  # sql | meta | comment
    copy_rows: int = 0
    unterminated: str | None = None  # what was left open at end of input


@dataclass(slots=True)
class Suppression:
    line: int
    rules: frozenset | None  # None: every rule
    own_line: bool  # the comment is alone on its line (so it covers the next line)


class Splitter:
    """Feed lines; iterate statements. Also collects inline suppressions."""

    def __init__(self, *, comments: bool = False, copy_sink=None):
        self.comments = comments
        self.suppressions: list[Suppression] = []
        # called with (COPY statement, data line) for each line of a COPY … FROM stdin block, before the
        # statement itself is yielded at the block's end (data seeding reads the rows; a scan does not)
        self.copy_sink = copy_sink

    def split(self, lines: Iterable[str]) -> Iterator[RawStatement]:
        state = None  # None | "'" | "E" | '"' | "$tag$" | "/*"
        depth = 0
        buf: list[str] = []
        started = False
        body: _RoutineBody | None = None  # the statement's BEGIN ATOMIC tracking, from its first ';'
        start_line = start_col = 0
        copy_stmt: RawStatement | None = None
        lineno = 0
        collect_comments = self.comments
        for line in lines:
            lineno += 1
            if copy_stmt is not None:
                if line.rstrip("\r\n") == "\\.":
                    yield copy_stmt
                    copy_stmt = None
                else:
                    copy_stmt.copy_rows += 1
                    if self.copy_sink is not None:
                        self.copy_sink(copy_stmt, line)
                continue
            if "dsql-audit" in line:
                self._note_suppression(line, lineno)
            pos = 0
            seg = 0  # start of the part of this line that belongs to the statement
            n = len(line)
            while pos < n:
                if state is None:
                    m = _TOP.search(line, pos)
                    if not started:
                        end = m.start() if m else n
                        # first significant character before the next token?
                        stripped = line[pos:end].lstrip()
                        if stripped and not stripped.isspace():
                            first = end - len(stripped)
                            started, start_line, start_col, seg = True, lineno, first + 1, first
                    if m is None:
                        break
                    tok = m.group()
                    at = m.start()
                    if tok == "--":
                        if not started and collect_comments:
                            yield RawStatement(line[at:].rstrip("\r\n"), lineno, at + 1, kind="comment")
                        pos = n
                        break
                    if tok == "/*":
                        state, depth, pos = "/*", 1, m.end()
                        continue
                    if tok == ";":
                        if started:
                            if body is None:
                                body = _RoutineBody(_ROUTINE.match(buf[0]) if buf else _ROUTINE.match(line, seg, at))
                            if body.inside(buf, line, seg, at):
                                pos = m.end()  # a statement of a BEGIN ATOMIC … END body, as psql reads it
                                continue
                        if started:
                            buf.append(line[seg:at])
                            raw = RawStatement("".join(buf), start_line, start_col)
                            buf = []
                            started, body = False, None
                            if _COPY_STDIN.match(raw.text):
                                copy_stmt = raw
                                # data starts on the next line; the rest of this one is ignored
                                pos = n
                                seg = n
                                break
                            yield raw
                        pos = seg = m.end()
                        continue
                    if tok == "\\":
                        # psql meta-command: runs to end of line; ends a statement in progress
                        if started:
                            buf.append(line[seg:at])
                            yield RawStatement("".join(buf), start_line, start_col)
                            buf = []
                            started, body = False, None
                        yield RawStatement(line[at:].rstrip("\r\n"), lineno, at + 1, kind="meta")
                        pos = seg = n
                        break
                    if not started:
                        started, start_line, start_col, seg = True, lineno, at + 1, at
                    if tok == "'":
                        prev = line[at - 1] if at else ""
                        if prev and prev in "eE" and not (at >= 2 and _identchar(line[at - 2])):
                            state = "E"
                        else:
                            state = "'"
                        pos = m.end()
                    elif tok == '"':
                        state, pos = '"', m.end()
                    else:  # dollar quote, unless it is part of an identifier (a$b$)
                        if at and _identchar(line[at - 1]):
                            pos = at + 1
                        else:
                            state, pos = tok, m.end()
                elif state == "'" or state == '"':
                    i = line.find(state, pos)
                    if i < 0:
                        break
                    state, pos = None, i + 1
                elif state == "E":
                    while True:
                        m = _ESTR.search(line, pos)
                        if m is None:
                            pos = n
                            break
                        pos = m.end()
                        if m.group() == "'":
                            state = None
                            break
                elif state == "/*":
                    m = _BLOCK.search(line, pos)
                    if m is None:
                        break
                    depth += 1 if m.group() == "/*" else -1
                    pos = m.end()
                    if depth == 0:
                        state = None
                else:  # dollar-quoted body
                    i = line.find(state, pos)
                    if i < 0:
                        break
                    pos = i + len(state)
                    state = None
            if started:
                buf.append(line[seg:] if seg < n else "")
        if copy_stmt is not None:
            copy_stmt.unterminated = "COPY data block without its terminating \\. line"
            yield copy_stmt
        if started:
            text = "".join(buf)
            if text.strip():
                raw = RawStatement(text.rstrip(), start_line, start_col)
                if state is not None:
                    raw.unterminated = {
                        "'": "string literal",
                        "E": "string literal",
                        '"': "quoted identifier",
                        "/*": "block comment",
                    }.get(state, f"dollar-quoted string {state if len(state) <= 64 else state[:63] + ELLIPSIS}")
                yield raw

    def _note_suppression(self, line: str, lineno: int) -> None:
        idx = line.find("--")
        if idx < 0:
            idx = line.find("/*")
        if idx < 0:
            return
        m = _SUPPRESS.search(line, idx)
        if not m:
            return
        rules = None
        if m.group(2):
            rules = frozenset(r.strip().lower() for r in m.group(2).split(",") if r.strip())
        self.suppressions.append(Suppression(lineno, rules, own_line=not line[:idx].strip()))


_ROUTINE = re.compile(r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE)\b", re.I)
_ATOMIC = re.compile(r"\bBEGIN\s+ATOMIC\b", re.I)
_BLOCK_WORDS = re.compile(r"'[^']*(?:''[^']*)*'|\"[^\"]*(?:\"\"[^\"]*)*\"|--[^\n]*|\b(BEGIN|CASE|END)\b", re.I)


class _RoutineBody:
    """Is a top-level ';' inside a SQL-standard function body (CREATE FUNCTION … BEGIN ATOMIC … END)? psql
    counts BEGIN/CASE against END the same way. Asked at each top-level ';' of one statement, it reads only
    the text since the previous ';' (never the whole statement again): a body that is never closed costs
    linear time, not quadratic."""

    __slots__ = ("routine", "depth", "n_buf", "rel")

    def __init__(self, routine):
        self.routine = routine is not None  # the statement's first line is CREATE [OR REPLACE] FUNCTION/PROCEDURE
        self.depth: int | None = None  # BEGIN/CASE less END since BEGIN ATOMIC; None: not seen yet
        self.n_buf = 0  # where the last check stopped: the statement's buf entry …
        self.rel = 0  # … and the offset in it (in the current line: from seg)

    def inside(self, buf: list, line: str, seg: int, at: int) -> bool:
        if not self.routine:
            return False
        if len(buf) == self.n_buf:  # still on the line of the last check
            chunk = line[seg + self.rel:at]
        else:
            chunk = buf[self.n_buf][self.rel:] + "".join(buf[self.n_buf + 1:]) + line[seg:at]
        self.n_buf, self.rel = len(buf), at - seg
        start = 0
        if self.depth is None:
            m = _ATOMIC.search(chunk)
            if m is None:
                return False
            self.depth, start = 0, m.start()
        depth = self.depth
        for w in _BLOCK_WORDS.finditer(chunk, start):
            word = (w.group(1) or "").upper()
            depth += 1 if word in ("BEGIN", "CASE") else -1 if word == "END" else 0
        self.depth = depth
        return depth > 0


def split_text(text: str, **kw) -> list[RawStatement]:
    return list(Splitter(**kw).split(text.splitlines(keepends=True)))


# a code frame shows at most this many columns of a line: a long line (minified SQL, a dump on one line) is
# shown as a window around the construct, never whole (a finding must not hold, nor a report repeat, the line)
FRAME_WIDTH = 320
FRAME_BEFORE = 60  # columns shown before the construct's column when the line is cut (the caret stays on screen)
ELLIPSIS = "\u2026"
_NONSPACE = re.compile(r"\S")


def frame(text: str, start: int, end: int, first_column: int, column: int) -> tuple[str, int]:
    """A bounded code frame of the line part ``text[start:end]``, whose first character is at file column
    ``first_column``, for a construct at file column ``column``: (snippet, file column of the snippet's first
    character). ``snippet[i]`` is at file column ``snippet_column + i``; columns before ``first_column`` (the
    statement began mid-line; only its own text is at hand) are spaces. A line that fits is returned whole
    from column 1; a longer one is cut to ``FRAME_WIDTH`` columns around ``column``, each cut end shown as one
    "…" in place of the character it stands for. Only the window is copied, whatever the line's length."""
    end = max(start, end)
    last = first_column + (end - start)  # the column after the line's last character
    if last - 1 <= FRAME_WIDTH:
        return (" " * (first_column - 1) + text[start:end]).rstrip(), 1
    # from FRAME_BEFORE columns before the construct, but not into the blank columns before a mid-line start:
    # there "… " stands for the rest of the file's line
    w0 = max(1, column - FRAME_BEFORE, first_column - 2)
    w1 = w0 + FRAME_WIDTH
    lo = start + max(0, w0 - first_column)
    hi = min(end, start + max(0, w1 - first_column))
    body = " " * max(0, min(first_column, w1) - w0) + text[lo:hi]
    if w0 > 1 and body:
        body = ELLIPSIS + body[1:]
    if hi < end and _NONSPACE.search(text, hi, end) and body:
        body = body[:-1] + ELLIPSIS
    return body.rstrip(), w0


def offset_to_linecol(text: str, offset: int, line: int, column: int) -> tuple[int, int]:
    """Line/column of character ``offset`` of a statement that starts at (line, column)."""
    nl = text.count("\n", 0, offset)
    if nl == 0:
        return line, column + offset
    return line + nl, offset - text.rfind("\n", 0, offset)


# a quoted identifier is kept (it names something); string and number literals become ?
# a negative number after an operator, comma or parenthesis is one literal ("+ -758" and "+ 758" are one shape)
_LITERAL = re.compile(r'"[^"]*(?:""[^"]*)*"|\'[^\']*(?:\'\'[^\']*)*\'|(?:(?<=[-+*/=<>,(] )|(?<=[-+*/=<>,(]))-?\b\d+(?:\.\d+)?\b'
                      r'|\b\d+(?:\.\d+)?\b')


def blank_literals(sql: str) -> str:
    """The statement with its string and number literals replaced by ? (quoted identifiers kept): the
    statement's shape, and what a report may show of a captured statement without its data."""
    return _LITERAL.sub(lambda m: m.group(0) if m.group(0)[0] == '"' else "?", sql)


def where_clause(text: str) -> str:
    """An UPDATE's or DELETE's own top-level ``WHERE …`` (up to RETURNING; "" when none), from pglast's
    scanner: cheap next to building and deparsing the statement's tree."""
    from pglast.parser import scan

    depth, start, end = 0, None, len(text)
    for tok in scan(text):
        name = tok.name
        if name == "ASCII_40":
            depth += 1
        elif name == "ASCII_41":
            depth -= 1
        elif depth == 0 and name == "WHERE" and start is None:
            start = tok.start
        elif depth == 0 and name == "RETURNING" and start is not None:
            end = tok.start
            break
    return text[start:end].rstrip().rstrip(";").rstrip() if start is not None else ""


def lead(sql: str) -> str:
    """The statement from its first token on: leading whitespace and comments (``--`` lines, nested
    ``/* */``) skipped, as PostgreSQL's and DSQL's lexers skip them — so a statement recognised by its first
    word (COMMIT, BEGIN …) is recognised behind a query tagger's comment too."""
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        else:
            break
    return sql[i:]
