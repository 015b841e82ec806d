"""SQL string literals in JavaScript/TypeScript, Java, Kotlin, Go, Ruby, C# and PHP source, found with tree-sitter.

``extract(path, text)`` returns one ``Emitted`` record per string (or ``+``/``.`` concatenation of strings) that is
SQL. Each record's ``line``/``column`` (1-based, in characters) is the place in the file of the first character of
the string's content (after the opening quote, backtick, ``\"\"\"``, or on the line after a heredoc's or text
block's opening), and ``sql`` is that content laid out as in the file, so a statement's line and column inside it
map back to the file:

- run-time parts (``${x}``, ``#{x}``, ``{x}``, ``$x``/``{$x}``, Kotlin ``$x``, a non-literal operand of a
  concatenation, ``%s``/``%d`` of a ``Sprintf``/``format`` call) become a placeholder identifier of the same length
  (``_dyn___``), and the record is ``dynamic``;
- escape sequences are decoded in place and the line is padded with spaces to its source length (``\\n`` becomes
  a space, a ``--`` comment it ends is blanked), so only columns after an escape on its own line can be off;
- parts of a concatenation are laid out where they stand in the file: newlines and spaces fill the gaps.

A string is kept when it starts like SQL (``looks_like_sql``) and PostgreSQL's parser accepts it once the driver
placeholders of the language (``PARAMS``) are made ``$n``, or when it is an upper-case statement with a clear shape
(``INSERT INTO t``, ``SELECT … FROM t``, ``CREATE TABLE t`` …) that does not parse, so a broken statement still
reaches the rules as a parse error. Prose that happens to parse (``"Select an option"``, ``"Show more"``) is not
kept: outside a database call (``query()``, ``prepareStatement()``, ``Exec()``, ``CommandText =`` …) a string
whose first keyword is not upper case needs SQL punctuation (``*``, ``=``, ``$1``, ``::``, ``()``) or two SQL
clause words, and a one-word string (``"DELETE"``, an HTTP method) or a session or transaction statement (``SET``,
``SHOW``, ``BEGIN``, ``LOCK`` …, which log lines and UI text read like) needs a database call.

Files skipped whole (``[]``, cheaply, before parsing): larger than ``MAX_BYTES`` (2 MB), or with a line longer than
``MAX_LINE`` (5,000 characters) — minified or generated code — or with no SQL keyword right after an opening quote
or heredoc anywhere. ``extract`` never raises for a file: a file tree-sitter cannot fully parse yields what it
can (only a missing tree-sitter install raises ImportError). Needs ``tree-sitter-language-pack`` 0.x: its wheels
carry the grammars (1.x downloads them at run time).
"""

from __future__ import annotations

import bisect
import re
import threading
from dataclasses import dataclass

from dsql_audit.sources.app import Emitted, looks_like_sql, normalize_params
from dsql_audit.sources.frameworks.jpa import jpql_strings

SUFFIXES = {".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".java", ".kt", ".kts", ".go", ".rb", ".cs", ".php"}

MAX_BYTES = 2_000_000
MAX_LINE = 5_000

# suffix → tree-sitter grammar (tree-sitter-language-pack's names)
GRAMMAR = {".js": "javascript", ".jsx": "javascript", ".mjs": "javascript", ".cjs": "javascript",
           ".ts": "typescript", ".tsx": "tsx", ".java": "java", ".kt": "kotlin", ".kts": "kotlin", ".go": "go",
           ".rb": "ruby", ".cs": "csharp", ".php": "php"}
LANGUAGE_NAME = {"javascript": "JavaScript", "typescript": "TypeScript", "tsx": "TypeScript", "java": "Java",
                 "kotlin": "Kotlin", "go": "Go", "ruby": "Ruby", "csharp": "C#", "php": "PHP"}
# the drivers' parameter styles (see app.normalize_params); $1 (node-postgres, pgx, lib/pq, Npgsql) needs none
PARAMS = {"javascript": ("qmark",), "typescript": ("qmark",), "tsx": ("qmark",), "java": ("qmark", "named"),
          "kotlin": ("qmark", "named"), "go": ("qmark",), "ruby": ("qmark", "named"), "csharp": ("at",),
          "php": ("qmark", "named")}

# each grammar's string literals (@s), concatenations (@c) and Ruby's heredoc openings (@h)
_JS_QUERY = '[(string) (template_string)] @s (binary_expression) @c'
QUERIES = {
    "javascript": _JS_QUERY, "typescript": _JS_QUERY, "tsx": _JS_QUERY,
    "java": '(string_literal) @s (binary_expression) @c',
    "kotlin": '(string_literal) @s (additive_expression) @c',
    "go": '[(interpreted_string_literal) (raw_string_literal)] @s (binary_expression) @c',
    "ruby": '[(string) (heredoc_body)] @s (heredoc_beginning) @h (binary) @c',
    "csharp": "[(string_literal) (verbatim_string_literal) (raw_string_literal) (interpolated_string_expression)] @s"
              ' (binary_expression) @c',
    "php": '[(string) (encapsed_string) (heredoc) (nowdoc)] @s (binary_expression) @c',
}
# the concatenation operator of each language and the node types that carry it
CONCAT = {"javascript": ("+", {"binary_expression"}), "typescript": ("+", {"binary_expression"}),
          "tsx": ("+", {"binary_expression"}), "java": ("+", {"binary_expression"}),
          "kotlin": ("+", {"additive_expression"}), "go": ("+", {"binary_expression"}),
          "ruby": ("+", {"binary"}), "csharp": ("+", {"binary_expression"}), "php": (".", {"binary_expression"})}

_KEYWORDS = (r"SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|TRUNCATE|COPY|MERGE|BEGIN|START|COMMIT|ROLLBACK|"
             r"SAVEPOINT|RELEASE|SET|RESET|SHOW|LOCK|LISTEN|NOTIFY|UNLISTEN|DO|GRANT|REVOKE|VACUUM|ANALYZE|EXPLAIN|"
             r"CALL|PREPARE|EXECUTE|DEALLOCATE|DECLARE|FETCH|CLOSE|COMMENT|REFRESH|REINDEX|CLUSTER|DISCARD")
_LEAD = r"(?:\s|\\[ntr]|\|)*(?:(?:--[^\n]*\n|/\*.*?\*/)(?:\s|\\[ntr])*)*"
# the cheap file-level test: a SQL keyword right after an opening quote, heredoc or text block
_FILE_HINT = re.compile(r"(?:[\"'`]|%[qQ]?[^\w\s]|<<<?[~-]?['\"]?[A-Za-z_]\w*['\"]?[^\n]*\n)" + _LEAD
                        + r"(?:" + _KEYWORDS + r")\b", re.I | re.S)
# the same on one string node's text (a heredoc body starts at the newline that ends its opening line)
_NODE_HINT = re.compile(r"\A(?:[$@]*(?:\"+|'|`|%[qQ]?[^\w\s])|<<<[ \t]*['\"]?\w+['\"]?[ \t]*\r?\n)?" + _LEAD
                        + r"(?:" + _KEYWORDS + r")\b", re.I | re.S)

_SKIP = r"\A(?:\s+|--[^\n]*\n|/\*.*?\*/)*"
_ID = r"[\w\"$`]"
# statements whose shape is plain even when PostgreSQL's parser refuses them (kept to be reported as parse errors)
_SHAPES = (
    r"SELECT\b.*?\bFROM\s+[\w\"$(]",
    r"INSERT\s+INTO\s+" + _ID,
    r"UPDATE\s+(?:ONLY\s+)?[\w\"$.]+\s+(?:(?:AS\s+)?\w+\s+)?SET\s",
    r"DELETE\s+FROM\s+" + _ID,
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:UNIQUE|GLOBAL|LOCAL|TEMP|TEMPORARY|UNLOGGED|MATERIALIZED|RECURSIVE|"
    r"CONSTRAINT)\s+)*(?:TABLE|INDEX|VIEW|SEQUENCE|FUNCTION|PROCEDURE|TRIGGER|TYPE|EXTENSION|SCHEMA|DOMAIN|RULE|"
    r"POLICY|ROLE|USER|DATABASE|PUBLICATION|SUBSCRIPTION|AGGREGATE|CAST|COLLATION|OPERATOR|SERVER|TABLESPACE|"
    r"EVENT\s+TRIGGER|FOREIGN\s+TABLE|TEXT\s+SEARCH)\s+" + _ID,
    r"ALTER\s+(?:TABLE|INDEX|SEQUENCE|VIEW|MATERIALIZED\s+VIEW|TYPE|SCHEMA|FUNCTION|PROCEDURE|DATABASE|ROLE|USER|"
    r"DOMAIN)\s+" + _ID,
    r"DROP\s+(?:TABLE|INDEX|SEQUENCE|VIEW|MATERIALIZED\s+VIEW|TYPE|SCHEMA|FUNCTION|PROCEDURE|TRIGGER|EXTENSION|"
    r"DOMAIN|ROLE|USER|DATABASE|POLICY|RULE)\s+" + _ID,
    r"TRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?" + _ID,
    r"LOCK\s+(?:TABLE\s+)?(?:ONLY\s+)?" + _ID,
    r"WITH\s+(?:RECURSIVE\s+)?[\w\"]+\s*(?:\([^)]*\)\s*)?AS\s*(?:NOT\s+)?(?:MATERIALIZED\s*)?\(",
    r"MERGE\s+INTO\s+" + _ID,
)
_SHAPE_UPPER = re.compile(_SKIP + "(?:" + "|".join(_SHAPES) + ")", re.S)  # keywords as written: upper case
_SHAPE_ANY = re.compile(_SKIP + "(?:" + "|".join(_SHAPES) + ")", re.S | re.I)
_FIRST_WORD = re.compile(_SKIP + r"([A-Za-z]+)", re.S)
_SQL_PUNCT = re.compile(r"[*=<>]|\$\d|::|\(\s*\)")
_CLAUSES = re.compile(r"\b(from|where|join|values|returning|group\s+by|order\s+by|limit|offset|having|union|"
                      r"distinct|into|set|table|index|on\s+conflict)\b", re.I)

# calls whose argument is SQL (the last name of the callee, lower case): a string passed to one needs less proof
DB_CALLS = {
    "query", "querysync", "queryasync", "exec", "execute", "executeasync", "prepare", "preparestatement",
    "preparecall", "executequery", "executeupdate", "executelargeupdate", "addbatch", "createquery",
    "createnativequery", "createsqlquery", "queryforobject", "queryforlist", "queryformap", "queryforrowset",
    "querycontext", "queryrow", "queryrowcontext", "execcontext", "preparecontext", "raw", "sql", "queryraw",
    "$queryraw", "$executeraw", "executeraw", "$queryrawunsafe", "$executerawunsafe", "queryrawunsafe",
    "executerawunsafe", "unsafe", "none", "oneornone", "manyornone", "find_by_sql", "select_all", "select_one",
    "select_value", "select_values", "select_rows", "exec_query", "exec_update", "exec_delete", "exec_insert",
    "exec_params", "async_exec", "execute_query", "executenonquery", "executenonqueryasync", "executescalar",
    "executescalarasync", "executereader", "executereaderasync", "npgsqlcommand", "sqlcommand", "mysqlcommand",
    "sqlitecommand", "npgsqlbatchcommand", "querymultiple", "queryfirst", "queryfirstordefault", "querysingle",
    "querysingleordefault", "queryfirstasync", "queryfirstordefaultasync", "querysingleasync",
    "querysingleordefaultasync", "querymultipleasync", "fromsqlraw", "fromsqlinterpolated", "executesqlraw",
    "executesqlrawasync", "executesqlinterpolated", "executesqlinterpolatedasync", "sqlquery", "sqlqueryraw",
    "statement", "unprepared", "selectraw", "whereraw", "exec_prepared", "prepared", "namedquery", "namedexec",
    "mustexec", "queryx", "queryrowx", "preparex", "namedquerycontext", "namedexeccontext", "batchupdate",
    "exec_stmt", "executemany", "executebatch",
}
# a property whose value is SQL (C# DbCommand.CommandText, …)
DB_PROPERTIES = {"commandtext", "sql", "query", "querystring", "sqlquery"}
# calls that format their first argument: its %s / %d become placeholders
# calls whose string is an ORM's own query language, not SQL: JPA/Hibernate's JPQL/HQL (entityManager,
# session), Doctrine's DQL. JDBI's handle.createQuery takes SQL: a receiver named for JDBI keeps it
ORM_QUERY_CALLS = {"createquery", "createselectionquery", "createmutationquery", "createnamedquery"}
_SQL_RECEIVER = re.compile(r"handle|jdbi|dbi\b|connection|conn\b", re.I)
FORMAT_CALLS = {"sprintf", "format", "formatted", "printf", "fprintf", "errorf", "sprintf_s"}
_FORMAT_VERB = re.compile(r"%(?:\d+\$)?[-+# 0]*(?:\d+|\*)?(?:\.\d+)?[sdvqfxXeEgGbciu]")

_ARGLISTS = {"arguments", "argument_list", "value_arguments"}
_ARG_WRAPPERS = {"argument", "value_argument", "parenthesized_expression", "spread_element", "as_expression",
                 "type_assertion", "satisfies_expression", "non_null_expression"}
_MEMBER = {"member_expression", "navigation_expression", "member_access_expression", "field_access",
           "selector_expression"}
_CALLS = {"call_expression", "method_invocation", "call", "invocation_expression", "object_creation_expression",
          "new_expression", "member_call_expression", "function_call_expression", "scoped_call_expression",
          "nullsafe_member_call_expression"}
_ASSIGN = {"assignment_expression", "assignment", "assignment_statement"}

# children of a string node that are its text (everything else between the delimiters is a run-time part)
_TEXT = {"string_fragment", "string_content", "escape_sequence", "multiline_string_fragment",
         "raw_string_literal_content", "interpreted_string_literal_content", "heredoc_content",
         "string_literal_content", "raw_string_content", "nowdoc_string", "ERROR", "html_character_reference",
         "string_value", "text", "comment"}
_DELIMS = {'"', "'", "`", '"""', "raw_string_start", "raw_string_end", "interpolation_start", "interpolation_quote",
           "heredoc_end", "<<<", "heredoc_start", "string_start", "string_end", '@"', '$"'}
_OPEN = re.compile(rb"[$@]*(\"+|'|`)")

_ESC_C = re.compile(r"\\(u\{[0-9a-fA-F]{1,6}\}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.|\Z)",
                    re.S)
_ESC_SINGLE = re.compile(r"\\([\\']|\Z)")
_SIMPLE = {"n": " ", "t": " ", "r": " ", "f": " ", "v": " ", "b": " ", "a": " ", "e": " ", "s": " ", "0": " ",
           "": " "}


def _placeholder(length: int) -> str:
    """An identifier as long as the run-time part it stands for (columns after it stay exact)."""
    return ("_dyn" + "_" * max(0, length - 4))[:length] if length >= 2 else "_"


def _letters(n: int) -> str:
    """0 → a, 25 → z, 26 → ba: a placeholder's own name, letters only (it must read as one identifier)."""
    out = ""
    while True:
        out = chr(97 + n % 26) + out
        n //= 26
        if not n:
            return out


def _placeholder_text(source: str, names: dict | None = None) -> str:
    """A placeholder for source text that may span lines: its newlines are kept. With ``names``, one that can
    be told apart (``_dyna_``, ``_dynb___``) where the run-time part is long enough, recorded with the source it
    stands for, so a finding's message can show ``${tablePrefix}`` instead of the placeholder."""
    lines = source.split("\n")
    first = len(lines[0])
    head = _placeholder(first)
    if names is not None and len(lines) == 1:
        mark = f"_dyn{_letters(len(names))}_"
        if len(mark) <= first:
            head = mark + "_" * (first - len(mark))
            names[head] = source if source[:1] in "$#{" else "{" + source + "}"
    return "\n".join([head] + [" " * len(rest) for rest in lines[1:]])


def _decode(raw: str, mode: str) -> str:
    """Escape sequences decoded, each line padded with spaces to its source length."""
    if mode == "none" or ("\\" not in raw and '""' not in raw and "{{" not in raw and "}}" not in raw):
        return raw
    out = []
    for line in raw.split("\n"):
        n = len(line)
        newlines: list[int] = []  # where a \n escape ended the line in the program's string
        if mode in ("c", "php", "c_interp"):
            pieces: list[str] = []
            last = 0
            for m in _ESC_C.finditer(line):
                pieces.append(line[last:m.start()])
                pieces.append(_escape(m.group(1), mode, pieces, newlines))
                last = m.end()
            pieces.append(line[last:])
            line = "".join(pieces)
        elif mode == "single":
            line = _ESC_SINGLE.sub(lambda m: m.group(1) or " ", line)
        elif mode == "verbatim":
            line = line.replace('""', '"')
        if mode in ("c_interp", "verbatim_interp"):
            if mode == "verbatim_interp":
                line = line.replace('""', '"')
            line = line.replace("{{", "{").replace("}}", "}")
        if newlines:
            line = _blank_ended_comments(line, newlines)
        out.append(line + " " * max(0, n - len(line)))
    return "\n".join(out)


def _escape(body: str, mode: str, pieces: list, newlines: list) -> str:
    if body == "n":
        newlines.append(sum(map(len, pieces)))
    if body in _SIMPLE:
        return _SIMPLE[body]
    if body[0] in "uUx" and len(body) > 1 or body.isdigit():
        try:
            char = chr(int(body.strip("uUx{}"), 8 if body.isdigit() else 16))
        except ValueError:  # a malformed escape is kept as written
            return "\\" + body
        return char if char.isprintable() else " "  # a control character (a newline) would move the lines
    if mode == "php" and body not in "\\$\"'{":
        return "\\" + body  # PHP keeps an unknown escape as written
    return body


def _blank_ended_comments(line: str, newlines: list) -> str:
    """A ``--`` comment that a ``\\n`` escape ends would swallow the rest of the one-line string: blank it."""
    chars = list(line)
    quote = False
    i = 0
    while i < len(chars) - 1:
        c = chars[i]
        if c == "'":
            quote = not quote
        elif not quote and c == "-" and chars[i + 1] == "-":
            end = next((p for p in newlines if p > i), None)
            if end is None:
                break
            chars[i:end] = " " * (end - i)
            i = end
            continue
        i += 1
    return "".join(chars)


@dataclass
class _Seg:
    start: int  # byte offset in the file of the segment's first character
    text: str
    dynamic: bool = False


class _File:
    """One parsed file: byte offsets → 1-based line and character column."""

    def __init__(self, text: str, grammar: str):
        self.src = text.encode("utf-8", "surrogatepass")
        self.ascii = len(self.src) == len(text)
        self.grammar = grammar
        self.starts = [0] + [m.end() for m in re.finditer(rb"\n", self.src)]

    def position(self, offset: int) -> tuple[int, int]:
        row = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[row]
        if self.ascii:
            return row + 1, offset - start + 1
        return row + 1, len(self.src[start:offset].decode("utf-8", "replace")) + 1

    def text(self, a: int, b: int) -> str:
        return self.src[a:b].decode("utf-8", "surrogatepass")

    def node_text(self, node) -> str:
        return self.text(node.start_byte, node.end_byte)


_local = threading.local()


def _parser(grammar: str):
    cache = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    if grammar not in cache:
        from tree_sitter import Query
        from tree_sitter_language_pack import get_language, get_parser

        cache[grammar] = (get_parser(grammar), Query(get_language(grammar), QUERIES[grammar]))
    return cache[grammar]


def extract(path: str, text: str) -> list[Emitted]:
    """SQL strings of one non-Python source file, in file order; ``[]`` for a file skipped (see the module doc)."""
    try:
        suffix = path[path.rfind("."):].lower() if "." in path else ""
        grammar = GRAMMAR.get(suffix)
        if grammar is None or not text or len(text) > MAX_BYTES:
            return []
        if not _FILE_HINT.search(text):
            return []
        if len(text) > MAX_LINE and any(len(line) > MAX_LINE for line in text.split("\n")):
            return []
        return _Extractor(_File(text, grammar)).run()
    except ImportError:
        raise  # tree-sitter missing is a broken install, not a file to skip: say so instead of finding nothing
    except Exception:  # noqa: BLE001 - one unreadable file never stops a scan
        return []


class _Extractor:
    def __init__(self, f: _File):
        self.f = f
        self.grammar = f.grammar
        self.out: list[Emitted] = []
        self.done: set = set()
        self.op, self.concat_types = CONCAT[f.grammar]

    def run(self) -> list[Emitted]:
        from tree_sitter import QueryCursor

        parser, query = _parser(self.grammar)
        tree = parser.parse(self.f.src)
        captures = QueryCursor(query).captures(tree.root_node)
        # JPQL/HQL (@Query without nativeQuery, @NamedQuery, createQuery): JPA's query language, not SQL
        jpql = jpql_strings(tree.root_node, self.f.src) if self.grammar in ("java", "kotlin") else set()
        strings = [n for n in captures.get("s", []) if _key(n) not in jpql]
        self.heredoc_heads = sorted(captures.get("h", []), key=lambda n: n.start_byte)
        self.heredoc_bodies = sorted((n for n in strings if n.type == "heredoc_body"), key=lambda n: n.start_byte)
        # concatenations: the outermost ones (not an operand of another), found without climbing parents (a long
        # chain is a deep tree, and each step up from a node walks down from the root)
        concats = [n for n in captures.get("c", []) if self.is_concat(n)]
        inner = {_key(c) for n in concats for c in n.named_children if self.is_concat(c)}
        items = []
        for top in concats:
            if _key(top) in inner:
                continue
            leaves = self.leaves(top)
            parts = [leaf for leaf in leaves if self.is_string(leaf)]
            if any(_key(leaf) in jpql for leaf in parts):
                continue
            if parts:
                self.done.update(_key(leaf) for leaf in parts)
                items.append((top.start_byte, top, leaves))
        items.extend((n.start_byte, n, None) for n in strings if _key(n) not in self.done)
        items.sort(key=lambda item: item[0])
        for _, node, leaves in items:
            try:
                self.visit(node, leaves)
            except Exception:  # noqa: BLE001, PERF203 - a node we cannot read is skipped, the file goes on
                continue
        self.out.sort(key=lambda e: (e.line, e.column))
        return self.out

    # -- one string, or one concatenation ------------------------------------------------------------------------
    def visit(self, top, leaves: list | None) -> None:
        self.names: dict = {}  # this string's placeholders → the run-time source each stands for
        if leaves is not None:
            if not self.is_string(leaves[0]):
                return  # starts with a run-time part: not SQL we can read
            if not _NODE_HINT.match(self.f.text(leaves[0].start_byte, min(leaves[0].end_byte,
                                                                           leaves[0].start_byte + 4000))):
                return
            segs = []
            for leaf in leaves:
                if self.is_string(leaf):
                    seg = self.literal(leaf)
                    if seg is None:
                        return
                else:
                    seg = _Seg(leaf.start_byte, _placeholder_text(self.f.node_text(leaf), self.names), True)
                segs.append(seg)
        else:
            head = self.f.text(top.start_byte, min(top.end_byte, top.start_byte + 4000))
            if not _NODE_HINT.match(head):
                return
            seg = self.literal(top)
            if seg is None:
                return
            segs = [seg]
        anchor = top if top.type != "heredoc_body" else self.heredoc_head(top) or top
        origin, db_call, methods = self.context(anchor)
        if self.orm_query_language(origin):
            return
        text, dynamic = self.join(segs)
        if methods & FORMAT_CALLS:
            formatted = _FORMAT_VERB.sub(lambda m: _placeholder(len(m.group(0))), text)
            dynamic = dynamic or formatted != text
            text = formatted
        if "trimmargin" in methods:
            text = re.sub(r"(?m)^([ \t]*)\|", lambda m: m.group(1) + " ", text)
        styles = PARAMS[self.grammar]
        if not _keep(text, styles, db_call):
            return
        line, column = self.f.position(segs[0].start)
        if dynamic:
            origin += ", partly dynamic"
        self.out.append(Emitted(line=line, column=column, sql=text, origin=origin, literal=True, params=styles,
                                dynamic=dynamic, placeholders={k: v for k, v in self.names.items() if k in text}
                                or None))

    def orm_query_language(self, origin: str) -> bool:
        """A string passed to entityManager.createQuery() (JPQL) or $em->createQuery() (DQL): not SQL."""
        if self.grammar not in ("java", "kotlin", "php") or not origin.startswith("argument of "):
            return False
        callee = origin[len("argument of "):].rstrip("()")
        receiver, _, last = callee.replace("->", ".").rpartition(".")
        return last.lower() in ORM_QUERY_CALLS and not _SQL_RECEIVER.search(receiver)

    def is_string(self, node) -> bool:
        return node.type in _STRING_TYPES[self.grammar]

    def is_concat(self, node) -> bool:
        if node.type not in self.concat_types:
            return False
        op = node.child_by_field_name("operator")
        if op is not None:
            return op.type == self.op
        return any(not c.is_named and c.type == self.op for c in node.children)

    def leaves(self, top) -> list:
        """The operands of a concatenation, left to right (iterative: long chains are deep trees)."""
        out, stack = [], [top]
        while stack:
            n = stack.pop()
            if self.is_concat(n):
                stack.extend(reversed([c for c in n.children if c.is_named and c.type != "comment"]))
            else:
                out.append(n)
        return out

    def join(self, segs: list) -> tuple[str, bool]:
        """Segments laid out at their file positions: gaps become newlines and spaces."""
        first = segs[0]
        out = [first.text]
        line, col = self.f.position(first.start)
        end_line, end_col = _advance(line, col, first.text)
        for seg in segs[1:]:
            at_line, at_col = self.f.position(seg.start)
            if at_line > end_line:
                out.append("\n" * (at_line - end_line) + " " * (at_col - 1))
            else:
                # on one line the gap keeps the columns; between two parts of one word it is part of the word
                # ("sp_" + "one" stays one name), elsewhere spaces
                before = next((piece[-1] for piece in reversed(out) if piece), "")
                joins = (before.isalnum() or before == "_") and (seg.text[:1].isalnum() or seg.text[:1] == "_")
                out.append(("_" if joins else " ") * max(1, at_col - end_col))
                at_line, at_col = end_line, max(at_col, end_col + 1)
            out.append(seg.text)
            end_line, end_col = _advance(at_line, at_col, seg.text)
        return "".join(out), any(s.dynamic for s in segs)

    # -- the content of one literal ------------------------------------------------------------------------------
    def literal(self, node) -> _Seg | None:
        g, f = self.grammar, self.f
        body = node
        if node.type == "heredoc_body":  # Ruby: the body starts at the newline ending the line of <<~SQL
            cs = f.src.find(b"\n", node.start_byte, node.end_byte)
            if cs < 0:
                return None
            cs += 1
            end = next((c for c in node.children if c.type == "heredoc_end"), None)
            ce = end.start_byte if end is not None else node.end_byte
            head = self.heredoc_head(node)
            quoted = head is not None and ("'" in f.node_text(head) or "`" in f.node_text(head))
            mode = "none" if quoted else "c"
        elif node.type in ("heredoc", "nowdoc"):  # PHP
            body = next((c for c in node.children if c.type in ("heredoc_body", "nowdoc_body")), None)
            if body is None:
                return None
            cs = f.src.find(b"\n", body.start_byte, body.end_byte)
            cs = body.start_byte if cs < 0 else cs + 1
            ce = body.end_byte
            mode = "php" if node.type == "heredoc" else "none"
        else:
            kids = node.children
            i, j = 0, len(kids)
            if j and kids[-1].type in _DELIMS:  # one closing delimiter; opening ones can be several: $ then "
                j -= 1
            while i < j and kids[i].type in _DELIMS:
                i += 1
            m = _OPEN.match(f.src, node.start_byte, node.end_byte)
            opener = m.group(0).decode() if m else ""
            if i > 0:
                cs = kids[i - 1].end_byte
                opener = f.text(node.start_byte, cs)
            elif m:
                cs = m.end()
            else:
                cs = node.start_byte
            if j < len(kids):
                ce = kids[j].start_byte
            else:
                quotes = m.group(1) if m else b""
                ce = node.end_byte - len(quotes) if f.src[node.end_byte - len(quotes):node.end_byte] == quotes \
                    else node.end_byte
            mode = _mode(g, node.type, opener)
            if opener.endswith('"""') or opener.endswith("'''"):  # text block / raw string: from the next line
                nl = f.src.find(b"\n", cs, ce)
                if nl >= 0 and not f.src[cs:nl].strip():
                    cs = nl + 1
        ce = max(ce, cs)  # "" (or a quote the grammar reads oddly): an empty part
        # run-time parts: the children between the delimiters that are not text, grouped when adjacent
        parts: list[tuple[int, int]] = []
        prev_interp = False
        for c in body.children:
            if c.start_byte < cs or c.end_byte > ce:
                continue
            if c.type in _TEXT or (c.is_named and c.type in _STRING_TYPES[g]):
                prev_interp = False
                continue
            if prev_interp and parts and parts[-1][1] <= c.start_byte:
                parts[-1] = (parts[-1][0], c.end_byte)
            else:
                parts.append((c.start_byte, c.end_byte))
            prev_interp = True
        pieces = []
        at = cs
        for a, b in parts:
            pieces.append(_decode(f.text(at, a), mode))
            pieces.append(_placeholder_text(f.text(a, b), self.names))
            at = b
        pieces.append(_decode(f.text(at, ce), mode))
        return _Seg(cs, "".join(pieces), bool(parts))

    def heredoc_head(self, body):
        """Ruby: the <<~SQL that opens a heredoc body (the k-th body belongs to the k-th opening)."""
        try:
            k = next(i for i, b in enumerate(self.heredoc_bodies) if b.start_byte == body.start_byte)
            return self.heredoc_heads[k]
        except (StopIteration, IndexError):
            return None

    # -- where the string goes ---------------------------------------------------------------------------------
    def context(self, node) -> tuple[str, bool, set]:
        """(origin, passed to a database call?, lower-case names of methods called on the string on the way)."""
        lang = LANGUAGE_NAME[self.grammar]
        methods: set = set()
        fallback = None
        cur = node
        for _ in range(16):
            p = cur.parent
            if p is None:
                break
            if p.type in _ARG_WRAPPERS:
                cur = p
                continue
            if p.type in _ARGLISTS:
                call = p.parent
                if call is not None and call.type == "call_suffix":  # Kotlin
                    call = call.parent
                if call is None:
                    break
                name, last = self.callee(call)
                if name is None:
                    break
                if last in FORMAT_CALLS:  # fmt.Sprintf("… %s", t) passed on: the call it is passed to tells more
                    methods.add(last)
                    fallback = fallback or f"argument of {name}()"
                    cur = call
                    continue
                return f"argument of {name}()", last in DB_CALLS, methods
            if self.grammar in ("javascript", "typescript", "tsx") and p.type == "call_expression" \
                    and p.child_by_field_name("arguments") == cur:
                name, last = self.callee(p)  # a tagged template: sql`…` (postgres.js, slonik), Prisma.sql`…`
                return f"{name or 'tagged'}`…` template", last in DB_CALLS, methods
            # a method called on the string ("…".trimIndent(), <<~SQL.squish, "…".formatted(x)): go on from the call
            receiver = p.child_by_field_name("object") or p.child_by_field_name("receiver")
            if p.type in _CALLS and receiver == cur:
                method = p.child_by_field_name("name") or p.child_by_field_name("method")
                if method is not None:
                    methods.add(self.f.node_text(method).lower())
                cur = p
                continue
            if p.type in _MEMBER and p.named_children and p.named_children[0] == cur:
                method = p.named_children[-1] if len(p.named_children) > 1 else None
                call = p.parent
                if method is not None:
                    methods.add(self.f.node_text(method).lstrip(".?").lower())
                if call is not None and call.type in _CALLS and call.named_children \
                        and call.named_children[0] == p:
                    cur = call
                    continue
                break
            if p.type in _ASSIGN:
                left = p.child_by_field_name("left") or (p.named_children[0] if p.named_children else None)
                if left is not None and left != cur:
                    target = self.f.node_text(left)
                    last = re.split(r"[.>:]", target)[-1].strip().lower()
                    if last in DB_PROPERTIES:
                        return f"assigned to {target.strip()}", True, methods
            break
        return fallback or f"string in {lang}", False, methods

    def callee(self, call) -> tuple[str | None, str]:
        """The name shown for a call (``db.query``, ``prepareStatement``) and its last name in lower case."""
        name_node = None
        for field in ("name", "method", "function", "constructor", "type"):
            name_node = call.child_by_field_name(field)
            if name_node is not None:
                break
        receiver = call.child_by_field_name("object") or call.child_by_field_name("receiver") \
            or call.child_by_field_name("scope")
        while name_node is not None and name_node.type in ("await_expression", "parenthesized_expression") \
                and name_node.named_children:  # TypeScript reads `await pool.query<T>(…)` as a call of the await
            name_node = name_node.named_children[-1]
        if name_node is None:
            named = [c for c in call.named_children if c.type not in ("call_suffix", "value_arguments",
                                                                        "arguments", "argument_list")]
            if not named:
                return None, ""
            name_node = named[0]
        text = self.f.node_text(name_node)
        if receiver is not None and receiver != name_node:
            sep = "->" if self.grammar == "php" and call.type.startswith(("member", "nullsafe")) else \
                "::" if call.type == "scoped_call_expression" else "."
            text = self.f.node_text(receiver) + sep + text
        text = re.sub(r"<[^<>()]*>$", "", re.sub(r"\s+", "", text))  # pool.query<User> → pool.query
        parts = re.split(r"(\?\.|->|::|\.)", text)
        names, seps = parts[0::2], parts[1::2]
        last = names[-1]
        if not re.fullmatch(r"[$@]{0,2}\w+", last or ""):
            return None, ""
        if len(names) >= 2 and re.fullmatch(r"[$@]{0,2}\w+", names[-2]):
            return names[-2] + seps[-1] + last, last.lower()
        return last, last.lower()


def _key(node) -> tuple[int, int]:
    return node.start_byte, node.end_byte


def _advance(line: int, col: int, text: str) -> tuple[int, int]:
    """The line and column just after ``text`` placed at (line, col)."""
    n = text.count("\n")
    if n == 0:
        return line, col + len(text)
    return line + n, len(text) - text.rfind("\n")


def _mode(grammar: str, node_type: str, opener: str) -> str:
    """How a literal's escapes read: c (backslash escapes), single, verbatim, none (raw), …"""
    if grammar == "go":
        return "none" if node_type == "raw_string_literal" else "c"
    if grammar == "kotlin":
        return "none" if opener.endswith('"""') else "c"
    if grammar == "csharp":
        if node_type == "verbatim_string_literal":
            return "verbatim"
        if node_type == "raw_string_literal" or '"""' in opener:
            return "none"
        if node_type == "interpolated_string_expression":
            return "verbatim_interp" if "@" in opener else "c_interp"
        return "c"
    if grammar == "ruby":
        return "single" if opener.startswith(("'", "%q", "%w")) else "c"
    if grammar == "php":
        return "single" if node_type == "string" else "php"
    return "c"


_STRING_TYPES = {
    "javascript": {"string", "template_string"}, "typescript": {"string", "template_string"},
    "tsx": {"string", "template_string"}, "java": {"string_literal"}, "kotlin": {"string_literal"},
    "go": {"interpreted_string_literal", "raw_string_literal"}, "ruby": {"string", "heredoc_body"},
    "csharp": {"string_literal", "verbatim_string_literal", "raw_string_literal", "interpolated_string_expression"},
    "php": {"string", "encapsed_string", "heredoc", "nowdoc"},
}


def _parses(sql: str) -> bool:
    import pglast

    try:
        return bool(pglast.parser.parse_sql_json(sql).count('"stmt"'))
    except pglast.parser.ParseError:
        return False
    except Exception:  # noqa: BLE001 - anything else the parser says means: not SQL it can read
        return False


# statements that read like prose or log text: kept only as the argument of a database call
_NEEDS_DB_CALL = {"SET", "SHOW", "RESET", "BEGIN", "COMMIT", "ROLLBACK", "LOCK", "GRANT", "REVOKE", "ANALYZE",
                  "EXPLAIN", "DISCARD", "LISTEN", "NOTIFY", "COMMENT"}


def _keep(sql: str, styles: tuple, db_call: bool) -> bool:
    """Is this string SQL? (See the module doc: prose that parses is not kept.)"""
    if not looks_like_sql(sql):
        return False
    normalized = normalize_params(sql, styles)
    parses = _parses(normalized)
    if db_call:
        return parses or bool(_SHAPE_ANY.match(sql))
    if len(sql.split()) < 2:
        return False
    m = _FIRST_WORD.match(sql)
    word = m.group(1) if m else ""
    if word.upper() in _NEEDS_DB_CALL:  # log("SET …"), "Show all": text that only a database call makes SQL
        return False
    if word.isupper():
        return parses or bool(_SHAPE_UPPER.match(sql))
    if not parses:
        return False
    if _SQL_PUNCT.search(sql):
        return True
    return len({w.lower().split()[0] for w in _CLAUSES.findall(sql)}) >= 2
