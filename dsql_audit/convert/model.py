"""The schema a PostgreSQL input builds, as convert needs it: statements read in order (a dump, or a migration
folder's files in the framework's order) and applied to a model of tables, sequences, types, indexes,
functions, views — so later ALTERs fold into the objects they change, and the output is the final state.

Convert is not a hot path: it uses pglast's node objects (mutable, deparsable) rather than the scan's JSON.
Everything that does not become DSQL DDL becomes a plan item here, with the original statement and where it
came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pglast import ast, enums


@dataclass
class Origin:
    path: str
    line: int
    text: str  # the original statement


@dataclass
class PlanItem:
    kind: str  # trigger, function, extension, foreign-key, type, index, column, table, policy, …
    object: str
    action: str  # what convert did: moved, dropped, replaced, changed, kept-with-note
    why: str
    todo: str  # what the application (or the team) must now do
    origin: Origin | None = None
    effort_hours: float = 0.5
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"kind": self.kind, "object": self.object, "action": self.action, "why": self.why,
               "todo": self.todo, "effort_hours": self.effort_hours}
        if self.origin is not None:
            out["origin"] = {"path": self.origin.path, "line": self.origin.line,
                             "statement": self.origin.text.strip()}
        if self.details:
            out["details"] = self.details
        return out


def qname(rv) -> str:
    """schema.name of a RangeVar (public when unqualified)."""
    return f"{rv.schemaname or 'public'}.{rv.relname}"


def names_of(parts) -> list[str]:
    return [p.sval for p in parts or () if isinstance(p, ast.String)]


def type_key(parts) -> str:
    """A type's qualified name as written (pg_catalog dropped)."""
    ns = names_of(parts)
    if len(ns) > 1 and ns[0] == "pg_catalog":
        ns = ns[1:]
    return ".".join(ns).lower() if len(ns) > 1 else (f"public.{ns[0].lower()}" if ns else "?")


@dataclass
class Table:
    name: str
    stmt: ast.CreateStmt
    origin: Origin
    fks: list = field(default_factory=list)  # (Constraint, Origin) foreign keys, emitted where the order allows
    owned_sequences: list = field(default_factory=list)

    def column(self, name: str):
        for e in self.stmt.tableElts or ():
            if isinstance(e, ast.ColumnDef) and e.colname == name:
                return e
        return None

    def columns(self) -> list:
        return [e for e in self.stmt.tableElts or () if isinstance(e, ast.ColumnDef)]

    def constraints(self) -> list:
        return [e for e in self.stmt.tableElts or () if isinstance(e, ast.Constraint)]

    def add(self, element) -> None:
        # a named constraint added twice (Django renders unique_together again on a later state) is one
        name = getattr(element, "conname", None) if isinstance(element, ast.Constraint) else None
        if name and any(getattr(e, "conname", None) == name for e in self.constraints()):
            return
        self.stmt.tableElts = tuple(self.stmt.tableElts or ()) + (element,)

    def remove(self, element) -> None:
        self.stmt.tableElts = tuple(e for e in self.stmt.tableElts or () if e is not element)


@dataclass
class Schema:
    """Objects by kind, each in first-seen order (dicts keep insertion order: output is deterministic)."""

    schemas: dict = field(default_factory=dict)  # name → Origin
    types: dict = field(default_factory=dict)  # qualified → ("enum", [labels]) | ("composite", stmt) | ("range", stmt)
    domains: dict = field(default_factory=dict)  # qualified → (CreateDomainStmt, Origin)
    sequences: dict = field(default_factory=dict)  # qualified → (CreateSeqStmt, Origin)
    tables: dict = field(default_factory=dict)  # qualified → Table
    indexes: list = field(default_factory=list)  # (IndexStmt, Origin)
    functions: list = field(default_factory=list)  # (CreateFunctionStmt, Origin): LANGUAGE sql only
    views: dict = field(default_factory=dict)  # qualified → (stmt, Origin)
    late_fks: list = field(default_factory=list)  # (table, Constraint, Origin): added after creation
    plan: list = field(default_factory=list)  # PlanItem
    notes: list = field(default_factory=list)  # smaller changes, one line each: (origin, text)
    skipped: dict = field(default_factory=dict)  # statement kind → count (data, settings, grants …)
    routines: dict = field(default_factory=dict)  # qualified function name → (stmt, Origin, language)
    matviews: list = field(default_factory=list)  # (name, query, Origin, materialized?): tables made later
    paths: dict = field(default_factory=dict)  # id(function or view statement) → the search_path it was read under

    def note(self, origin: Origin | None, text: str) -> None:
        self.notes.append((origin, text))

    def skip(self, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1


CONSTR = enums.ConstrType
AT = enums.AlterTableType
