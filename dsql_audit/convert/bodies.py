"""SQL functions and views as DSQL will create them: names resolved, and created in dependency order.

A dump creates functions before tables with `check_function_bodies = false` and a `search_path` of its own,
and relies on both; DSQL checks every LANGUAGE sql body at CREATE time and allows neither trick. So each kept
function and view is rewritten once the whole model is known: unqualified tables, views, row types, domains
and functions are qualified with the schema the input's search_path gave them at definition (only where that
is not `public`, which DSQL's default path already finds), the body goes through the same expression scrubber
as defaults and CHECKs, and functions and views are emitted so that what one calls or reads exists first.
A body is re-printed only when something in it changed; otherwise the author's text is kept.
"""

from __future__ import annotations

from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

from dsql_audit.convert.exprs import func_name, walk
from dsql_audit.convert.model import names_of, qname
from dsql_audit.convert.types import table


class Resolver:
    """Where an unqualified name lands under a given search_path, in the finished model."""

    def __init__(self, schema):
        self.sch = schema
        self.relations = set(schema.tables) | set(schema.views) | set(schema.sequences) | \
            {m[0] for m in schema.matviews}
        self.row_types = set(schema.tables) | set(schema.views) | {m[0] for m in schema.matviews}
        self.types = set(schema.types) | set(schema.domains) | self.row_types
        self.builtin = set(table()["builtin"])
        self.functions = {".".join(names_of(s.funcname)).lower() for s, _ in schema.functions} | \
            {name.lower() for name in schema.routines}

    def _find(self, name: str, path, pool) -> str | None:
        for sp in path:
            if f"{sp}.{name}" in pool:
                return sp
        return None

    def qualify(self, node, path) -> bool:
        """Qualify unqualified names under ``node`` in place; True when any changed."""
        changed = False
        ctes = {c.ctename for c in walk(node) if isinstance(c, ast.CommonTableExpr)}
        for n in walk(node):
            if isinstance(n, ast.RangeVar) and n.schemaname is None and n.relname not in ctes:
                sp = self._find(n.relname, path, self.relations)
                if sp and sp != "public":
                    n.schemaname = sp
                    changed = True
            elif isinstance(n, ast.TypeName) and n.names and len(n.names) == 1 and \
                    n.names[0].sval.lower() not in self.builtin:
                name = n.names[0].sval.lower()
                sp = self._find(name, path, self.types)
                if sp and sp != "public":
                    n.names = (ast.String(sval=sp), n.names[0])
                    changed = True
            elif isinstance(n, ast.FuncCall) and len(n.funcname or ()) == 1:
                sp = self._find(func_name(n), path, self.functions)
                if sp and sp != "public":
                    n.funcname = (ast.String(sval=sp),) + tuple(n.funcname)
                    changed = True
        return changed

    def depends_on(self, node) -> set:
        """Tables, views and functions ``node`` reads or calls, its row types included (qualified names;
        functions as a name without arguments)."""
        out = set()
        for n in walk(node):
            if isinstance(n, ast.RangeVar):
                key = qname(n)
                if key in self.sch.views:
                    out.add(("view", key))
                elif key in self.sch.tables:
                    out.add(("table", key))
            elif isinstance(n, ast.TypeName) and n.names:
                parts = [p.lower() for p in names_of(n.names)]
                key = ".".join(parts) if len(parts) > 1 else f"public.{parts[0]}"
                if key in self.sch.tables:
                    out.add(("table", key))
                elif key in self.sch.views:
                    out.add(("view", key))
            elif isinstance(n, ast.FuncCall):
                name = func_name(n)
                out.add(("function", name if "." in name else f"public.{name}"))
        return out


def missing_type(schema, s) -> tuple | None:
    """(type, kind) of a composite/range/dropped user type in a function's signature: DSQL will not have it."""
    for n in walk((s.parameters, s.returnType)):
        if isinstance(n, ast.TypeName) and n.names:
            parts = [p.lower() for p in names_of(n.names)]
            key = ".".join(parts) if len(parts) > 1 else f"public.{parts[0]}"
            kind = schema.types.get(key, ("enum",))[0]
            if kind != "enum":
                return key, kind
    return None


def body_statements(s):
    """(parsed statements, the String node holding the text) of a LANGUAGE sql function's body; the
    parsed BEGIN ATOMIC body has no text node. (None, None) when the body does not parse."""
    if s.sql_body is not None:
        return [s.sql_body], None
    for o in s.options or ():
        if o.defname == "as":
            parts = o.arg if isinstance(o.arg, tuple) else (o.arg,)
            text = parts[0] if parts and isinstance(parts[0], ast.String) else None
            if text is None:
                return None, None
            try:
                return [r.stmt for r in parse_sql(text.sval)], text
            except ParseError:
                return None, None
    return None, None


def table_calls(t, resolver) -> list:
    """Kept SQL functions a table's defaults, generated columns and CHECKs call (qualified, sorted)."""
    schema = t.name.split(".", 1)[0]
    out = set()
    for n in walk(t.stmt.tableElts):
        if isinstance(n, ast.FuncCall):
            name = func_name(n)
            for candidate in ((name,) if "." in name else (f"{schema}.{name}", f"public.{name}")):
                if candidate in resolver.functions:
                    out.add(candidate)
                    break
    return sorted(out)


def prepare_function(resolver, scrub, s, path) -> tuple[set, str | None]:
    """Qualify and scrub one kept function in place: (what it depends on, a function it still needs that
    DSQL will not have, or None)."""
    resolver.qualify(s.parameters, path)
    resolver.qualify(s.returnType, path)
    stmts, text = body_statements(s)
    if stmts is None:
        return resolver.depends_on((s.parameters, s.returnType)), None
    before = [RawStream()(st) for st in stmts] if text is not None else None
    changed = False
    blocker = None
    for st in stmts:
        changed |= resolver.qualify(st, path)
        blocker = blocker or scrub.fix(st)
    deps = resolver.depends_on((s.parameters, s.returnType))
    for st in stmts:
        deps |= resolver.depends_on(st)
    if text is not None:
        after = [RawStream()(st) for st in stmts]
        if changed or after != before:
            text.sval = "\n" + ";\n".join(after) + "\n"
    return deps, blocker
