"""Statements inside DO blocks, found with PostgreSQL's own PL/pgSQL parser.

Migrations often wrap real DDL in DO (``DO $$ BEGIN IF NOT EXISTS … THEN
CREATE TYPE …; END IF; END $$``). DSQL refuses the DO block, and the
statements inside are what has to move out of it, so they are analysed
like any other statement, at their own line.
"""

from __future__ import annotations

import json

from pglast import parser as _pg

from dsql_audit.facts import Facts, const_value, defelem_map


def _walk(node, out):
    if isinstance(node, dict):
        for key, val in node.items():
            if key in ("PLpgSQL_stmt_execsql", "PLpgSQL_stmt_perform"):
                expr = val.get("sqlstmt") or val.get("expr") or {}
                q = (expr.get("PLpgSQL_expr") or {}).get("query")
                if q:
                    out.append((val.get("lineno", 1), q, key == "PLpgSQL_stmt_perform"))
            elif key == "PLpgSQL_stmt_dynexecute":
                q = ((val.get("query") or {}).get("PLpgSQL_expr") or {}).get("query", "")
                if len(q) >= 2 and q[0] == "'" and q[-1] == "'" and "'" not in q[1:-1].replace("''", ""):
                    out.append((val.get("lineno", 1), q[1:-1].replace("''", "'"), False))
            _walk(val, out)
    elif isinstance(node, list):
        for item in node:
            _walk(item, out)


def embedded_statements(facts: Facts) -> list[tuple[str, int]]:
    """(statement text, character offset of it in the unit's text) for a plpgsql DO block."""
    if facts.node != "DoStmt":
        return []
    opts = defelem_map(facts.stmt.get("args"))
    lang = const_value((opts.get("language") or {}).get("arg")) or "plpgsql"
    body = const_value((opts.get("as") or {}).get("arg"))
    if str(lang).lower() != "plpgsql" or not isinstance(body, str):
        return []
    tag = "$__dsql_audit_do$"
    if tag in body:
        return []
    try:
        tree = json.loads(_pg.parse_plpgsql_json(
            f"CREATE FUNCTION __dsql_audit_do() RETURNS void LANGUAGE plpgsql AS {tag}{body}{tag}"))
    except Exception:  # not valid PL/pgSQL: the DO finding stands on its own
        return []
    found: list = []
    _walk(tree, found)
    base = facts.unit.text.find(body)
    line_starts = [0]
    for i, ch in enumerate(body):
        if ch == "\n":
            line_starts.append(i + 1)
    out = []
    for lineno, query, perform in found:
        start = line_starts[min(max(lineno - 1, 0), len(line_starts) - 1)]
        needle = query[len("SELECT "):] if perform and query.startswith("SELECT ") else query
        pos = body.find(needle[:60], start)
        if pos < 0 or base < 0:
            offset = 0
        else:
            offset = base + pos - (len("PERFORM ") if perform and body[:pos].rstrip().upper().endswith("PERFORM") else 0)
        out.append(("SELECT " + needle if perform else query, offset))
    return out
