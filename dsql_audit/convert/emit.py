"""The model as DSQL DDL: one statement per step, in dependency order — schemas, domains, sequences, tables
(foreign keys inline where the referenced table already exists), SQL functions, views; then what must come
after every table: foreign keys added later (NOT VALID, validated by an async job), and every index as
CREATE INDEX ASYNC."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from pglast import ast, enums
from pglast.stream import RawStream

from dsql_audit.convert.model import CONSTR, Origin, PlanItem, names_of, qname
from dsql_audit.convert.types import type_name

MAX_INDEXES = 24  # per table, the primary key and unique constraints included (DSQL quota)
_REPLACEABLE_METHODS = {"hash": "an equality lookup", "brin": "range scans over a naturally ordered column"}


@dataclass
class Step:
    kind: str  # schema, domain, sequence, table, function, view, table-as, foreign-key, index, validate
    object: str
    sql: str
    origin: Origin | None = None
    node: object = None  # table steps: (Table, inline foreign keys), for a degraded retry
    deps: set = field(default_factory=set)  # functions and views: the functions/views it reads or calls


def _sql(node) -> str:
    return RawStream()(node)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _qualified(name: str) -> str:
    return ".".join(_ident(p) for p in name.split(".", 1))


class Emitter:
    def __init__(self, builder):
        self.b = builder
        self.sch = builder.schema
        self.profile = builder.profile
        self.steps: list[Step] = []
        self.late: list[Step] = []  # after all tables: foreign keys, indexes, validations

    def run(self) -> list[Step]:
        from dsql_audit.convert.exprs import Scrubber

        sch = self.sch
        self.scrub = Scrubber(self.b)
        if self.b.keys == "uuid":
            self._uuid_keys_from_sequences()
        for name, origin in sch.schemas.items():
            self.steps.append(Step("schema", name, f"CREATE SCHEMA {_ident(name)}", origin))
        for name, t in sch.types.items():
            if t[0] == "enum":
                values = ", ".join(_lit(v) for v in t[1])
                self.steps.append(Step("domain", name, f"CREATE DOMAIN {_qualified(name)} AS text CHECK (VALUE IN "
                                       f"({values}))", t[2] if len(t) > 2 else None))
        for name, (s, origin) in sch.domains.items():
            kept = []
            for c in s.constraints or ():
                blocker = self.scrub.fix(c.raw_expr) if c.raw_expr is not None else None
                if blocker:
                    self._blocked("domain", f"{name}.{c.conname or 'check'}", blocker, origin, c)
                else:
                    kept.append(c)
            s.constraints = tuple(kept) or None
            self.steps.append(Step("domain", name, _sql(s), origin))
        for name, (s, origin) in sch.sequences.items():
            self.steps.append(Step("sequence", name, _sql(s), origin))
        self._tables_and_code()
        self._indexes()
        return self.steps

    def _uuid_keys_from_sequences(self) -> None:
        """--keys uuid on pg_dump output: a one-column primary key whose default is nextval() of a sequence
        no other column draws from is the dump's spelling of serial — it becomes uuid DEFAULT gen_random_uuid() as serial
        does, and the sequence goes."""
        from dsql_audit.convert.build import _primary_key
        from dsql_audit.convert.exprs import func_name, walk
        from dsql_audit.convert.types import _expr

        sch = self.sch

        def sequence_of(c):
            calls = [n for n in walk(c.raw_expr) if isinstance(n, ast.FuncCall) and func_name(n).endswith("nextval")]
            seq = next((a.arg.val.sval for n in calls for a in (n.args or ()) if isinstance(a, ast.TypeCast)
                        and isinstance(a.arg, ast.A_Const)), None) or next(
                (a.val.sval for n in calls for a in (n.args or ()) if isinstance(a, ast.A_Const)), None)
            return (seq.lower() if "." in seq else f"public.{seq.lower()}") if seq else None

        uses: dict = {}  # sequence → column defaults that draw from it (a shared one is not a serial)
        for t in sch.tables.values():
            for col in t.columns():
                for c in col.constraints or ():
                    seq = sequence_of(c) if c.contype == CONSTR.CONSTR_DEFAULT and c.raw_expr is not None else None
                    if seq:
                        uses[seq] = uses.get(seq, 0) + 1
        for t in sch.tables.values():
            pk = _primary_key(t)
            col = t.column(pk[0]) if pk and len(pk) == 1 else None
            if col is None:
                continue
            for c in col.constraints or ():
                if c.contype != CONSTR.CONSTR_DEFAULT or c.raw_expr is None:
                    continue
                key = sequence_of(c)
                if key is None or uses.get(key) != 1 or key not in sch.sequences:
                    continue
                col.typeName = type_name("uuid")
                c.raw_expr = _expr("gen_random_uuid()")
                self.b.uuid_keys.add(f"{t.name}.{col.colname}")
                sch.sequences.pop(key, None)
                sch.note(t.origin, f"{t.name}.{col.colname}: integer key with sequence {key} → uuid DEFAULT "
                                   f"gen_random_uuid() (--keys uuid); the sequence is not carried over")

    # -- tables, SQL functions and views: each after what it needs ------------------------------------------
    def _tables_and_code(self) -> None:
        """One depth-first walk: a table after the tables its foreign keys reference (a cycle's key is added
        later) and after the SQL functions its defaults and CHECKs call; a function or view after the tables,
        views and functions it reads or calls. Otherwise input order: tables, then functions, then views."""
        from dsql_audit.convert import bodies

        sch = self.sch
        tables = sch.tables
        fk_ok = bool(self.profile.features.get("foreign_keys"))
        resolver = bodies.Resolver(sch)
        code, deps = self._prepare_code(resolver)
        by_name: dict = {}
        for key in code:
            by_name.setdefault(key[:2], []).append(key)
        done: set = set()
        visiting: set = set()

        def visit_code(key) -> None:
            if key in done or key in visiting:
                return
            visiting.add(key)
            for dep in sorted(deps[key]):
                if dep[0] == "table":
                    visit_table(dep[1])
                for other in by_name.get(dep, ()):
                    if other != key:
                        visit_code(other)
            kind, name, stmt, origin = code[key]
            step = Step(kind, name, _sql(stmt), origin)
            step.deps = {d[1] for d in deps[key] if d[:2] != key[:2]}
            self.steps.append(step)
            visiting.discard(key)
            done.add(key)

        def visit_table(name: str) -> None:
            key = ("table", name)
            if key in done or key in visiting or name not in tables:
                return
            visiting.add(key)
            t = tables[name]
            inline = []
            for c, origin in t.fks:
                target = qname(c.pktable)
                if target not in tables:
                    self._drop_fk(t, c, origin, f"the referenced table {target} is not in the converted schema")
                    continue
                self._fk_types(t, c)  # the referencing column follows a key made uuid, key or not enforced
                if not fk_ok:
                    self._fk_to_plan(t, c, origin)
                    continue
                if target != name and ("table", target) not in done:
                    if ("table", target) in visiting:  # a cycle: this one is added once both tables exist
                        self._late_fk(t, c, origin)
                        continue
                    visit_table(target)
                inline.append(c)
            for fn in bodies.table_calls(t, resolver):  # SQL functions its defaults and CHECKs call
                for other in by_name.get(("function", fn), ()):
                    visit_code(other)
            self._scrub_table(t)
            self.steps.append(Step("table", name, table_sql(t, inline), t.origin, (t, inline)))
            visiting.discard(key)
            done.add(key)

        for name in list(tables):
            visit_table(name)
        for key in code:
            visit_code(key)

    def _unused_trigger_functions(self) -> None:
        """A trigger function's body travels with its trigger's plan item; one no trigger uses (or an event
        trigger's) gets an item of its own, so nothing leaves the schema unsaid."""
        from dsql_audit.convert.routines import body_of, describe

        used = {p.details.get("function", "").lower() for p in self.sch.plan if p.kind == "trigger"}
        used |= {f"public.{u}" for u in used if "." not in u}
        for name, (s, origin, lang) in self.sch.routines.items():
            returns = ".".join(names_of(s.returnType.names)).lower() if getattr(s, "returnType", None) else ""
            if not returns.endswith("trigger") or name.lower() in used:
                continue
            what, todo, hours = describe(body_of(s))
            event = returns.endswith("event_trigger")
            self.sch.plan.append(PlanItem(
                "function", name, "moved", f"DSQL has no {'event ' if event else ''}triggers, and runs only "
                f"LANGUAGE sql functions, not {lang}" + ("" if event else " (no trigger in the input uses this one)"),
                todo or "drop it, or do what it does in the application", origin, hours or 1,
                {"language": lang, "does": what or "custom logic", "body": body_of(s)}))

    def _prepare_code(self, resolver) -> tuple[dict, dict]:
        """Kept SQL functions and views, names qualified and bodies scrubbed: ({key: (kind, name, statement,
        origin)}, {key: what it depends on}); those that cannot carry over go into the plan here."""
        from dsql_audit.convert import bodies

        sch = self.sch
        self._unused_trigger_functions()
        code: dict = {}
        deps: dict = {}
        for i, (s, origin) in enumerate(sch.functions):
            name = ".".join(names_of(s.funcname)).lower()
            path = sch.paths.get(id(s), ("public",))
            needs, blocker = bodies.prepare_function(resolver, self.scrub, s, path)
            gone = bodies.missing_type(sch, s)
            if gone:
                sch.plan.append(PlanItem("function", name, "moved", f"its signature uses {gone[0]}, a {gone[1]} type "
                                         "DSQL does not have (columns of it became jsonb or text)", "rewrite it over "
                                         "the replacement type, or compute it in the application", origin, 1,
                                         {"statement": _sql(s)}))
                continue
            if blocker:
                self._blocked("function", name, blocker, origin, None, drop_object=True)
                continue
            code[("function", name, i)] = ("function", name, s, origin)
            deps[("function", name, i)] = needs
        for name, (s, origin) in sch.views.items():
            resolver.qualify(s.query, sch.paths.get(id(s), ("public",)))
            blocker = self.scrub.fix(s.query)
            if blocker:
                self._blocked("view", name, blocker, origin, None, drop_object=True)
                continue
            code[("view", name, 0)] = ("view", name, s, origin)
            deps[("view", name, 0)] = resolver.depends_on(s.query)
        return code, deps

    def _unkeyable(self, col) -> str | None:
        """Why DSQL cannot use this column in a key or an index, if it cannot (DSQL-FACTS §types)."""
        parts = names_of(col.typeName.names) if col is not None and col.typeName is not None else []
        base = parts[-1].lower() if parts else ""
        if base in ("json", "jsonb"):
            return f"DSQL cannot use a {base} column ({col.colname}) in a key or an index (datatype {base} is " \
                   f"not supported in a key)"
        if base in ("numeric", "decimal") and not self.profile.features.get("numeric_1000"):
            return f"numeric columns ({col.colname}) can be keys and indexed on DSQL only from 2026-08-25"
        return None

    def _unkeyable_keys(self, t) -> None:
        """PRIMARY KEY / UNIQUE over a column DSQL cannot key: a numeric(p ≤ 18, 0) key becomes bigint; any
        other such key is removed into the plan."""
        cols = {c.colname: c for c in t.columns()}

        def keys(c, col=None):
            return [col.colname] if col is not None else names_of(c.keys)

        holders = [(c, col) for col in t.columns() for c in col.constraints or ()] + \
            [(c, None) for c in t.constraints()]
        for c, col in holders:
            if c.contype not in (CONSTR.CONSTR_PRIMARY, CONSTR.CONSTR_UNIQUE):
                continue
            for name in keys(c, col):
                why = self._unkeyable(cols.get(name))
                if not why:
                    continue
                tn = cols[name].typeName
                mods = [getattr(m.val, "ival", None) for m in tn.typmods or ()]
                if why.startswith("numeric") and len(mods) == 2 and mods[1] == 0 and (mods[0] or 99) <= 18:
                    cols[name].typeName = type_name("pg_catalog", "int8")
                    self.sch.note(t.origin, f"{t.name}.{name}: numeric({mods[0]},0) key → bigint (numeric keys "
                                            f"need the 2026-08-25 profile; bigint holds every value)")
                    continue
                if col is not None:
                    col.constraints = tuple(x for x in col.constraints if x is not c) or None
                else:
                    t.remove(c)
                self.sch.plan.append(PlanItem("constraint", f"{t.name}.{c.conname or name}", "dropped", why,
                                              "enforce the uniqueness in the application (or key a derived text "
                                              "column)", t.origin, 1, {"constraint": _sql(c)}))
                break

    def _scrub_table(self, t) -> None:
        """Defaults, CHECKs and generated columns rewritten for DSQL; those calling a function that moved
        into the plan are dropped into the plan too."""
        from dsql_audit.convert.exprs import jsonb_default

        self._unkeyable_keys(t)
        for col in t.columns():
            jsonb_default(col)
            kept = []
            for c in col.constraints or ():
                blocker = self.scrub.fix(c.raw_expr) if c.raw_expr is not None else None
                if blocker:
                    self._blocked("default" if c.contype == CONSTR.CONSTR_DEFAULT else "constraint",
                                  f"{t.name}.{col.colname}", blocker, t.origin, c)
                else:
                    kept.append(c)
            col.constraints = tuple(kept) or None
        for c in t.constraints():
            blocker = self.scrub.fix(c.raw_expr) if c.raw_expr is not None else None
            if blocker:
                t.remove(c)
                self._blocked("constraint", f"{t.name}.{c.conname or 'check'}", blocker, t.origin, c)

    def _blocked(self, kind: str, what: str, fn: str, origin, node, drop_object: bool = False) -> None:
        routine = self.sch.routines.get(fn) or self.sch.routines.get(f"public.{fn}")
        lang = routine[2] if routine else "extension"
        callee = "a user-defined aggregate" if lang == "aggregate" else f"a {lang} function" if routine else \
            "an extension function"
        why = f"calls {fn}(), {callee} DSQL will not have"
        todo = {"default": "compute the value in the application when inserting",
                "constraint": "check the rule in the application before writing (or rewrite it without the "
                              "function)",
                "view": "port the function first, then recreate the view",
                "index": "index a column the application computes instead"}.get(kind, "port the function first")
        self.sch.plan.append(PlanItem(kind, what, "dropped" if not drop_object else "moved", why, todo, origin, 1,
                                      {"statement": _sql(node)} if node is not None else {}))

    def _fk_types(self, t, c) -> None:
        """--keys uuid: a column referencing a key that became uuid becomes uuid too."""
        target = qname(c.pktable)
        for fk_col, pk_col in zip(names_of(c.fk_attrs), names_of(c.pk_attrs) or ["id"]):
            if f"{target}.{pk_col}" in self.b.uuid_keys:
                col = t.column(fk_col)
                if col is not None:
                    col.typeName = type_name("uuid")

    def _fk_name(self, t, c) -> str:
        if c.conname:
            return c.conname
        cols = "_".join(names_of(c.fk_attrs))
        c.conname = f"{t.name.split('.', 1)[1]}_{cols}_fkey"
        return c.conname

    def _late_fk(self, t, c, origin) -> None:
        name = self._fk_name(t, c)
        c = copy.copy(c)
        c.skip_validation = True
        c.initially_valid = False
        alter = ast.AlterTableStmt(relation=t.stmt.relation, objtype=enums.ObjectType.OBJECT_TABLE, cmds=(
            ast.AlterTableCmd(subtype=enums.AlterTableType.AT_AddConstraint, def_=c),))
        sql = _sql(alter)
        if "NOT VALID" not in sql:
            sql += " NOT VALID"
        self.late.append(Step("foreign-key", f"{t.name}.{name}", sql, origin))
        self.late.append(Step("validate", f"{t.name}.{name}",
                              f"ALTER TABLE ASYNC {_qualified(t.name)} VALIDATE CONSTRAINT {_ident(name)}", origin))

    def _drop_fk(self, t, c, origin, why: str) -> None:
        self.sch.plan.append(PlanItem("foreign-key", f"{t.name}.{self._fk_name(t, c)}", "dropped", why,
                                      "enforce the reference in the application", origin, 1, {"constraint": _sql(c)}))

    def _fk_to_plan(self, t, c, origin) -> None:
        """A profile without foreign keys: the reference is checked by the application; an index on the
        referencing columns keeps those checks (and cascades) cheap."""
        from dsql_audit.convert.build import _primary_key

        target = qname(c.pktable)
        fk_cols = names_of(c.fk_attrs)
        parent = self.sch.tables.get(target)
        parent_pk = (_primary_key(parent) if parent is not None else None) or ["id"]
        pk_cols = names_of(c.pk_attrs) or parent_pk
        lock = "FOR KEY SHARE" if self.profile.features.get("for_key_share") else "FOR UPDATE"
        match = " AND ".join(f"{_ident(p)} = ${i + 1}" for i, p in enumerate(pk_cols))
        child = " AND ".join(f"{_ident(f)} = ${i + 1}" for i, f in enumerate(fk_cols))
        if pk_cols == parent_pk or self.profile.features.get("for_update_general"):
            check = f"SELECT 1 FROM {_qualified(target)} WHERE {match} {lock}"
        else:  # this profile locks rows only by their full primary key: find the key, then lock it
            keys = ", ".join(_ident(p) for p in parent_pk)
            by_key = " AND ".join(f"{_ident(p)} = ${i + 1}" for i, p in enumerate(parent_pk))
            check = (f"SELECT {keys} FROM {_qualified(target)} WHERE {match}; then SELECT 1 FROM "
                     f"{_qualified(target)} WHERE {by_key} {lock}  -- row locks need the full primary key on this "
                     f"profile")
        action = {"c": f"DELETE FROM {_qualified(t.name)} WHERE {child}  -- ON DELETE CASCADE, ≤ 3,000 rows per "
                       f"transaction",
                  "n": f"UPDATE {_qualified(t.name)} SET " + ", ".join(f"{_ident(f)} = NULL" for f in fk_cols)
                       + f" WHERE {child}  -- ON DELETE SET NULL",
                  "d": f"UPDATE {_qualified(t.name)} SET " + ", ".join(f"{_ident(f)} = DEFAULT" for f in fk_cols)
                       + f" WHERE {child}  -- ON DELETE SET DEFAULT"}.get(
            c.fk_del_action, f"SELECT 1 FROM {_qualified(t.name)} WHERE {child} LIMIT 1  -- refuse the delete "
                             f"when a row comes back (NO ACTION / RESTRICT)")
        n = len(fk_cols)
        old_match = " AND ".join(f"{_ident(f)} = ${n + i + 1}" for i, f in enumerate(fk_cols))
        on_update = {"c": f"UPDATE {_qualified(t.name)} SET " + ", ".join(f"{_ident(f)} = ${i + 1}" for i, f in
                                                                          enumerate(fk_cols))
                          + f" WHERE {old_match}  -- ON UPDATE CASCADE: new key values, then the old ones",
                     "n": f"UPDATE {_qualified(t.name)} SET " + ", ".join(f"{_ident(f)} = NULL" for f in fk_cols)
                          + f" WHERE {child}  -- ON UPDATE SET NULL (old key values)",
                     "d": f"UPDATE {_qualified(t.name)} SET " + ", ".join(f"{_ident(f)} = DEFAULT" for f in fk_cols)
                          + f" WHERE {child}  -- ON UPDATE SET DEFAULT (old key values)"}.get(c.fk_upd_action)
        todo = f"before writing {t.name}({', '.join(fk_cols)}): {check}; before deleting from {target}: {action}"
        details = {"references": target, "check": check, "on_delete": action}
        if on_update:
            todo += f"; before changing {target}({', '.join(pk_cols)}): {on_update}"
            details["on_update"] = on_update
        self.sch.plan.append(PlanItem(
            "foreign-key", f"{t.name}.{self._fk_name(t, c)}", "moved",
            "this DSQL profile has no foreign keys (DSQL enforces them since 2026-08-26)", todo, origin, 1, details))
        if self._indexed(t, fk_cols):
            return
        idx = ast.IndexStmt(idxname=None, relation=t.stmt.relation, accessMethod="btree",
                            indexParams=tuple(ast.IndexElem(name=f, ordering=enums.SortByDir.SORTBY_DEFAULT,
                                                            nulls_ordering=enums.SortByNulls.SORTBY_NULLS_DEFAULT)
                                              for f in fk_cols))
        self.sch.indexes.append((idx, origin))

    def _indexed(self, t, cols: list) -> bool:
        """Does a key or an index of ``t`` already lead with ``cols`` (so a check on them is cheap)?"""
        from dsql_audit.convert.build import _primary_key

        leads = [_primary_key(t) or []]
        leads += [names_of(c.keys) for c in t.constraints() if c.contype == CONSTR.CONSTR_UNIQUE]
        leads += [[col.colname] for col in t.columns() for c in col.constraints or ()
                  if c.contype == CONSTR.CONSTR_UNIQUE]
        leads += [[e.name for e in s.indexParams or ()] for s, _ in self.sch.indexes if qname(s.relation) == t.name]
        return any(lead[:len(cols)] == cols for lead in leads)

    # -- indexes -------------------------------------------------------------------------------------------
    def _indexes(self) -> None:
        sch = self.sch
        counts: dict = {}
        for name, t in sch.tables.items():
            counts[name] = sum(1 for c in t.constraints() if c.contype in (CONSTR.CONSTR_PRIMARY, CONSTR.CONSTR_UNIQUE)) \
                + sum(1 for col in t.columns() for c in col.constraints or ()
                      if c.contype in (CONSTR.CONSTR_PRIMARY, CONSTR.CONSTR_UNIQUE))
        matviews = {m[0] for m in sch.matviews}
        taken = {s.idxname for s, _ in sch.indexes if s.idxname}
        for s, origin in sch.indexes:
            table = qname(s.relation)
            what = f"{table}.{s.idxname or '(unnamed index)'}"
            if table not in sch.tables and table not in matviews:
                sch.note(origin, f"index {what}: its table is not in the converted schema")
                continue
            t = sch.tables.get(table)
            if t is not None:
                have = {c.colname for c in t.columns()}
                missing = [e.name for e in s.indexParams or () if e.name and e.name not in have]
                if missing:
                    sch.plan.append(PlanItem("index", what, "dropped", f"its column {missing[0]} did not carry over "
                                             "(see the column's item)", "index what replaces the column, if anything",
                                             origin, 0.25, {"index": _sql(s)}))
                    continue
                why = next((r for e in s.indexParams or () if e.name
                            for r in [self._unkeyable(t.column(e.name))] if r), None)
                if why:
                    sch.plan.append(PlanItem("index", what, "dropped", why, "index a text or integer column derived "
                                             "from it (an expression index on ->> where the profile has them)",
                                             origin, 0.5, {"index": _sql(s)}))
                    continue
            method = (s.accessMethod or "btree").lower()
            if method != "btree":
                if method in _REPLACEABLE_METHODS and all(e.name for e in s.indexParams or ()):
                    sch.note(origin, f"index {what}: {method} → btree (serves {_REPLACEABLE_METHODS[method]})")
                else:
                    sch.plan.append(PlanItem("index", what, "dropped", f"DSQL has only btree indexes, not {method}",
                                             _method_todo(method), origin, 1, {"index": _sql(s)}))
                    continue
                s.accessMethod = "btree"
            exprs = any(e.expr is not None for e in s.indexParams or ())
            if exprs and not self.profile.features.get("expression_index"):
                sch.plan.append(PlanItem("index", what, "dropped", "expression indexes need the 2026-08-13 profile",
                                         "index a stored column computed by the application", origin, 1,
                                         {"index": _sql(s)}))
                continue
            if s.whereClause is not None and not self.profile.features.get("partial_index"):
                s.whereClause = None
                sch.note(origin, f"index {what}: partial (WHERE) dropped — partial indexes need the 2026-09-15 "
                                 f"profile; the index covers every row")
                if s.unique:
                    sch.plan.append(PlanItem("index", what, "changed", "a partial UNIQUE index cannot become a "
                                             "full one without changing what it allows", "enforce the partial "
                                             "uniqueness in the application", origin, 1))
                    continue
            blocker = None
            for e in s.indexParams or ():
                if e.expr is not None:
                    blocker = blocker or self.scrub.fix(e.expr)
            if s.whereClause is not None:
                blocker = blocker or self.scrub.fix(s.whereClause)
            if blocker:
                self._blocked("index", what, blocker, origin, s)
                continue
            for e in s.indexParams or ():
                if e.ordering or e.nulls_ordering:
                    sch.note(origin, f"index {what}: sort order (DESC / NULLS FIRST|LAST) dropped — DSQL indexes "
                                     f"take no sort order")
                    e.ordering = enums.SortByDir.SORTBY_DEFAULT
                    e.nulls_ordering = enums.SortByNulls.SORTBY_NULLS_DEFAULT
                if e.opclass:
                    sch.note(origin, f"index {what}: operator class {'.'.join(names_of(e.opclass))} dropped")
                e.opclass = None
                e.opclassopts = None
                e.collation = None
            s.tableSpace = None
            s.options = None
            s.concurrent = False
            if counts.get(table, 0) >= MAX_INDEXES:
                sch.plan.append(PlanItem("index", what, "dropped", f"{table} already has {MAX_INDEXES} indexes "
                                         "(DSQL's limit per table)", "keep the indexes the hottest queries need",
                                         origin, 1, {"index": _sql(s)}))
                continue
            counts[table] = counts.get(table, 0) + 1
            if not s.idxname:  # named as PostgreSQL would, so a re-run of apply finds it instead of adding one
                s.idxname = _index_name(table, s, taken)
            taken.add(s.idxname)
            sql = _index_sql(s)
            sql = re.sub(r"^CREATE (UNIQUE )?INDEX\b", lambda m: f"CREATE {m.group(1) or ''}INDEX ASYNC", sql, count=1)
            self.late.append(Step("index", what, sql, origin))


DEGRADE = ("checks", "defaults", "foreign keys")  # what a refused CREATE TABLE sheds, in this order


def table_sql(t, inline, shed: tuple = ()) -> tuple | str:
    """The table's CREATE TABLE; with ``shed``, without its CHECKs / defaults / inline foreign keys, and
    then (sql, [(kind, column or None, removed node)])."""
    removed = []
    elts = []
    for e in t.stmt.tableElts or ():
        if isinstance(e, ast.Constraint) and e.contype == CONSTR.CONSTR_CHECK and "checks" in shed:
            removed.append(("constraint", None, e))
            continue
        if isinstance(e, ast.ColumnDef) and shed:
            col = copy.copy(e)
            kept = []
            for c in e.constraints or ():
                if c.contype == CONSTR.CONSTR_CHECK and "checks" in shed or \
                        c.contype == CONSTR.CONSTR_DEFAULT and "defaults" in shed:
                    removed.append(("constraint" if c.contype == CONSTR.CONSTR_CHECK else "default", e.colname, c))
                    continue
                kept.append(c)
            col.constraints = tuple(kept) or None
            e = col
        elts.append(e)
    fks = [] if "foreign keys" in shed else list(inline)
    removed += [("foreign-key", None, c) for c in inline if "foreign keys" in shed]
    stmt = copy.copy(t.stmt)
    stmt.tableElts = tuple(elts) + tuple(fks)
    return (_sql(stmt), removed) if shed else _sql(stmt)


def _index_name(table: str, s, taken: set) -> str:
    """PostgreSQL's choice for an unnamed index: table_col1_col2_idx (63 bytes at most), numbered if taken."""
    cols = "_".join(e.name or "expr" for e in s.indexParams or ()) or "expr"
    base = f"{table.split('.', 1)[-1]}_{cols}"[:59] + "_idx"
    name, n = base, 0
    while name in taken:
        n += 1
        name = f"{base}{n}"
    return name


def _index_sql(s) -> str:
    """pglast prints NULLS NOT DISTINCT after a WHERE clause, where PostgreSQL does not parse it."""
    if not (s.nulls_not_distinct and s.whereClause is not None):
        return _sql(s)
    where, s.whereClause = s.whereClause, None
    try:
        return f"{_sql(s)} WHERE {_sql(where)}"
    finally:
        s.whereClause = where


def _method_todo(method: str) -> str:
    return {"gin": "JSON containment, array membership and trigram/full-text search have no DSQL index: query a "
                   "normalised child table with a btree index, or an external search service",
            "gist": "geometric, range and nearest-neighbour searches have no DSQL index: precompute a grid or key "
                    "column with a btree index, or use a spatial service",
            "spgist": "as for GiST: a btree on a derived key column"}.get(method, "use a btree on a derived column")
