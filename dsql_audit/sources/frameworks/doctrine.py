"""Doctrine Migrations (PHP): the SQL a migration's ``up()`` passes to ``$this->addSql()``.

The smallest framework module, and the example docs/architecture.md walks through: detect the file, read it with
tree-sitter, emit each statement at the place its text starts. Doctrine runs a migration in one transaction
unless ``isTransactional()`` returns false; ``down()`` is what a rollback sends, not a deploy.
"""

from __future__ import annotations

import sys

from dsql_audit.sources.frameworks.synth import Out, file_parts
from dsql_audit.sources.frameworks.tree import Source, walk

NAME = "doctrine"


def detect(path: str, text: str) -> bool:
    return file_parts(path)[1] == ".php" and "AbstractMigration" in text and "addSql" in text


def emit(path: str, text: str, out: Out):
    src = Source(text, "php")
    for cls in (n for n in walk(src.root) if n.type == "class_declaration"):
        methods = {_name(src, m): m for m in walk(cls) if m.type == "method_declaration"}
        transactional = not _returns_false(src, methods.get("isTransactional"))
        for name in ("up", "down"):  # each its own transaction: a rollback is a run of its own
            txn = out.new_txn() if transactional else None
            if name in methods:
                for call in _add_sql_calls(src, methods[name]):
                    _statement(src, call, out, txn, down=name == "down")


def _name(src: Source, node) -> str:
    name = node.child_by_field_name("name")
    return src.node_text(name) if name is not None else ""


def _returns_false(src: Source, method) -> bool:
    return method is not None and any(n.type == "boolean" and src.node_text(n).lower() == "false"
                                      for n in walk(method))


def _add_sql_calls(src: Source, method):
    for n in walk(method):
        if n.type == "member_call_expression" and _name(src, n) == "addSql":
            yield n


def _statement(src: Source, call, out: Out, txn, down: bool):
    """The first argument's text, located at its first character; an interpolated string is dynamic."""
    args = call.child_by_field_name("arguments")
    first = next((a.named_children[0] for a in args.named_children if a.named_children), None) if args else None
    if first is None or first.type not in ("string", "encapsed_string"):
        return  # a variable or a call: what it holds is not written here
    raw = src.node_text(first)
    body = raw[1:-1]
    dynamic = first.type == "encapsed_string" and ("$" in body or "{" in body)
    if first.type == "string":  # single quotes: only \\' and \\\\ are escapes
        body = body.replace("\\'", " '").replace("\\\\", " \\")  # the same length: columns stay right
    line, col = out.pos.lc(src.start(first) + 1)
    out.literal(body, line, col, "Doctrine addSql()", txn, dynamic=dynamic)
    if down:
        out.records[-1].down = True


def extract(path: str, text: str) -> list:
    """This framework's records for one file (whatever detect() says)."""
    from dsql_audit.sources import frameworks

    return frameworks.run(sys.modules[__name__], path, text)
