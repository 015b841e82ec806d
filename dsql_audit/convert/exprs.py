"""Expressions inside DDL (defaults, CHECKs, generated columns, index expressions) made DSQL-legal: casts to
types DSQL lacks follow the column type mapping, extension functions with a built-in twin are swapped
(uuid_generate_v4() → gen_random_uuid()), operators qualified with an extension's schema lose the schema,
and an array default on a column that became jsonb is wrapped in to_jsonb(). What cannot be rescued — an
expression calling a function that moved into the plan — is reported so its owner can drop it."""

from __future__ import annotations

from pglast import ast, enums

from dsql_audit.convert.model import names_of

# extension functions with a built-in equivalent (same arguments, same meaning for a default)
TWINS = {"uuid_generate_v1": "gen_random_uuid", "uuid_generate_v4": "gen_random_uuid",
         "uuid_generate_v1mc": "gen_random_uuid"}


def walk(node):
    """Every ast.Node under ``node`` (itself included), depth first."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, tuple) or isinstance(n, list):
            stack.extend(reversed(n))
            continue
        if not isinstance(n, ast.Node):
            continue
        yield n
        for name in n.__slots__:
            v = getattr(n, name, None)
            if isinstance(v, (ast.Node, tuple, list)):
                stack.append(v)


def func_name(fc) -> str:
    return ".".join(names_of(fc.funcname)).lower()


class Scrubber:
    def __init__(self, builder):
        from dsql_audit.catalog import rule_data
        from dsql_audit.convert import types as T

        self.b = builder
        self.T = T
        self.ext_functions = set(rule_data("extension").get("functions", {}))
        self.ext_types = set(rule_data("extension").get("types", {}))
        kept = {".".join(names_of(s.funcname)).lower() for s, _ in builder.schema.functions}
        self.kept = kept | {k.split(".", 1)[1] for k in kept if "." in k}
        moved = {name.lower() for name in builder.schema.routines} - {k for k in kept}
        self.moved = moved | {k.split(".", 1)[1] for k in moved if "." in k}

    def fix(self, expr) -> str | None:
        """Rewrite ``expr`` in place; the name of a function it still needs that DSQL will not have, if any."""
        blocker = None
        for n in walk(expr):
            if isinstance(n, ast.TypeName):
                self._cast_type(n)
            elif isinstance(n, ast.CollateClause) and names_of(n.collname)[-1:] not in (["C"], ["POSIX"],
                                                                                           ["default"]):
                n.collname = (ast.String(sval="C"),)  # DSQL has only the C collation; the input's did not carry
            elif isinstance(n, ast.A_Expr) and isinstance(n.name, tuple) and len(n.name) > 1:
                n.name = n.name[-1:]  # OPERATOR(public.~) → ~ : the built-in operator on text
            elif isinstance(n, ast.FuncCall):
                name = func_name(n)
                short = name.rsplit(".", 1)[-1]
                if short in TWINS:
                    n.funcname = (ast.String(sval=TWINS[short]),)
                elif name in self.moved or short in self.moved and name not in self.kept:
                    blocker = blocker or name
                elif short in self.ext_functions:
                    blocker = blocker or name
        return blocker

    def _cast_type(self, tn) -> None:
        """A type named inside an expression: built-in types all exist on DSQL (arrays and inet work in
        expressions, only not as column types), so only an extension's type or a user type that did not
        carry over is rewritten."""
        parts = [p.lower() for p in names_of(tn.names)]
        if not parts or parts[0] == "pg_catalog":
            return
        base = parts[-1]
        data = self.T.table()
        sch = self.b.schema
        key = ".".join(parts) if len(parts) > 1 else f"public.{base}"
        if key in sch.types and sch.types[key][0] == "enum" or key in sch.domains:
            return
        if key in sch.types:
            rule = data["map"]["composite" if sch.types[key][0] == "composite" else
                               "range" if sch.types[key][0] == "range" else "other"]
        elif base in self.ext_types:
            rule = data["map"].get(base) or data["map"]["other"]
        else:
            return
        if rule["to"] == "drop":
            return
        new = self.T._parse_type(rule["to"])
        tn.names, tn.typmods = new.names, new.typmods


def jsonb_default(col) -> None:
    """An array default on a column that became jsonb: to_jsonb(<the array>); on one that became text (a
    profile before jsonb columns): the same JSON as text, as the recorded cast converts existing rows."""
    parts = names_of(col.typeName.names) if col.typeName is not None else []
    if not parts or parts[-1] not in ("jsonb", "text"):
        return
    for c in col.constraints or ():
        if c.raw_expr is None or c.contype != enums.ConstrType.CONSTR_DEFAULT:
            continue
        e = c.raw_expr  # the default's value itself is an array (not a call that merely takes one)
        if isinstance(e, ast.A_ArrayExpr) or isinstance(e, ast.TypeCast) and e.typeName.arrayBounds:
            c.raw_expr = ast.FuncCall(funcname=(ast.String(sval="to_jsonb"),), args=(c.raw_expr,),
                                      funcformat=enums.CoercionForm.COERCE_EXPLICIT_CALL)
            if parts[-1] == "text":
                c.raw_expr = ast.TypeCast(arg=c.raw_expr, typeName=ast.TypeName(
                    names=(ast.String(sval="text"),), typemod=-1))
