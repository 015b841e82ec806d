"""Statements in, schema model out: each statement is applied to the model (convert.model) — created,
folded into what it changes, or moved into the plan with the reason and what the application must do."""

from __future__ import annotations

import copy

from pglast import ast, enums
from pglast.stream import RawStream

from dsql_audit.convert import types as T
from dsql_audit.convert.model import AT, CONSTR, Origin, PlanItem, Schema, Table, names_of, qname, type_key

# statements that carry no schema: data, session settings, ownership and privileges (DSQL's roles are IAM's)
_SKIP = {
    "InsertStmt": "data (INSERT)", "CopyStmt": "data (COPY)", "UpdateStmt": "data (UPDATE)",
    "DeleteStmt": "data (DELETE)", "VariableSetStmt": "session settings (SET)", "SelectStmt": "queries (SELECT)",
    "GrantStmt": "privileges (GRANT/REVOKE)", "GrantRoleStmt": "role grants", "AlterOwnerStmt": "owners",
    "AlterDefaultPrivilegesStmt": "default privileges", "CreateRoleStmt": "roles (CREATE ROLE)",
    "AlterRoleStmt": "roles", "AlterRoleSetStmt": "role settings", "TransactionStmt": "transaction control",
    "CommentStmt": "comments (COMMENT ON)", "SecLabelStmt": "security labels", "CreateStatsStmt":
    "extended statistics", "VacuumStmt": "VACUUM/ANALYZE", "AlterDatabaseSetStmt": "database settings",
    "AlterDatabaseStmt": "database settings", "CheckPointStmt": "CHECKPOINT", "DiscardStmt": "DISCARD",
    "ClusterStmt": "CLUSTER", "ReindexStmt": "REINDEX", "ExplainStmt": "EXPLAIN", "DeallocateStmt": "DEALLOCATE",
    "NotifyStmt": "NOTIFY", "ListenStmt": "LISTEN", "LockStmt": "LOCK",
    "CallStmt": "CALL", "DoStmt": None, "CreatedbStmt": "CREATE DATABASE", "DropdbStmt": "DROP DATABASE",
    "AlterSystemStmt": "ALTER SYSTEM", "AlterCollationStmt": "collations", "RefreshMatViewStmt":
    "REFRESH MATERIALIZED VIEW", "AlterObjectSchemaStmt": None, "AlterEnumStmt": None,
}

# whole object kinds DSQL does not have: (plan kind, why, what to do, effort hours)
_MOVE = {
    "CreateExtensionStmt": ("extension", "DSQL supports no extensions",
                            "replace what the schema uses from the extension (see the column and index items)", 1),
    "CreateTableSpaceStmt": ("tablespace", "DSQL manages storage itself", "nothing: drop it", 0.1),
    "CreatePolicyStmt": ("policy", "DSQL has no row-level security",
                         "enforce the policy's predicate in every query of the application (or a view per role)", 3),
    "AlterPolicyStmt": ("policy", "DSQL has no row-level security", "as for the policy", 1),
    "RuleStmt": ("rule", "DSQL has no rewrite rules", "do what the rule did in the application or a view", 2),
    "CreatePublicationStmt": ("publication", "DSQL has no logical replication publications",
                              "use another change feed (application events)", 4),
    "AlterPublicationStmt": ("publication", "DSQL has no logical replication publications", "as above", 0.5),
    "CreateSubscriptionStmt": ("subscription", "DSQL has no logical replication", "load data another way", 4),
    "CreateEventTrigStmt": ("event-trigger", "DSQL has no event triggers",
                            "run the DDL checks in the migration pipeline instead", 2),
    "CreateForeignTableStmt": ("foreign-table", "DSQL has no foreign data wrappers",
                               "read the remote data in the application or load it", 4),
    "CreateFdwStmt": ("foreign-table", "DSQL has no foreign data wrappers", "as above", 0.5),
    "CreateForeignServerStmt": ("foreign-table", "DSQL has no foreign data wrappers", "as above", 0.5),
    "CreateUserMappingStmt": ("foreign-table", "DSQL has no foreign data wrappers", "as above", 0.1),
    "ImportForeignSchemaStmt": ("foreign-table", "DSQL has no foreign data wrappers", "as above", 0.5),
    "CreateCastStmt": ("cast", "DSQL does not allow user-defined casts", "cast explicitly in queries", 1),
    "CreateOpClassStmt": ("operator-class", "DSQL does not allow operator classes", "drop it", 0.5),
    "CreateOpFamilyStmt": ("operator-class", "DSQL does not allow operator families", "drop it", 0.5),
    "AlterOpFamilyStmt": ("operator-class", "DSQL does not allow operator families", "drop it", 0.1),
    "CreateConversionStmt": ("conversion", "DSQL is UTF-8 only", "drop it", 0.1),
    "CreateTransformStmt": ("transform", "DSQL has no procedural languages", "drop it", 0.1),
    "CreatePLangStmt": ("language", "DSQL has no procedural languages", "drop it", 0.1),
    "DefineStmt": ("definition", "DSQL does not allow user-defined aggregates, operators, base types or "
                   "collations", "compute the aggregate in a query or the application", 2),
    "CreateTrigStmt": None,  # handled: the plan item carries the trigger function's body
}


_OT = enums.ObjectType
# CREATE AGGREGATE / OPERATOR / TYPE (base) / COLLATION / TEXT SEARCH …: (kind, why, what to do)
_DEFINE = {
    _OT.OBJECT_AGGREGATE: ("aggregate", "DSQL does not allow user-defined aggregates",
                           "compute the aggregate in a query (built-in aggregates) or in the application"),
    _OT.OBJECT_COLLATION: ("collation", "DSQL has only the C collation",
                           "compare and sort in C order; where case or accents must not matter, store and key a "
                           "normalised column (lower(), unaccented) the application fills"),
    _OT.OBJECT_OPERATOR: ("operator", "DSQL does not allow user-defined operators",
                          "call the function the operator wraps, or compute it in the application"),
    _OT.OBJECT_TYPE: ("type", "DSQL does not allow user-defined base types", "store the value as text or bytea"),
    _OT.OBJECT_TSCONFIGURATION: ("text-search", "DSQL has no full-text search",
                                 "index the text in an external search service (OpenSearch)"),
    _OT.OBJECT_TSDICTIONARY: ("text-search", "DSQL has no full-text search",
                              "index the text in an external search service (OpenSearch)"),
}


def deparse(node) -> str:
    return RawStream()(node)


def _in_sys_schema(stmt) -> bool:
    """CREATE SCHEMA sys, or a statement on an object in schema sys (sys.jobs, sys.iam_pg_role_mappings …)."""
    if isinstance(stmt, ast.CreateSchemaStmt):
        return (stmt.schemaname or "").lower() == "sys"
    for field in ("relation", "view", "into"):
        rv = getattr(stmt, field, None)
        rv = getattr(rv, "rel", rv)
        if isinstance(rv, ast.RangeVar):
            return (rv.schemaname or "").lower() == "sys"
    return False


_DEFERRAL = (CONSTR.CONSTR_ATTR_DEFERRABLE, CONSTR.CONSTR_ATTR_NOT_DEFERRABLE, CONSTR.CONSTR_ATTR_DEFERRED,
             CONSTR.CONSTR_ATTR_IMMEDIATE)


def _drop_primary_key(table) -> None:
    """The table's primary key gone, whether declared on a column or as a table constraint."""
    for c in table.constraints():
        if c.contype == CONSTR.CONSTR_PRIMARY:
            table.remove(c)
    for col in table.columns():
        if any(c.contype == CONSTR.CONSTR_PRIMARY for c in col.constraints or ()):
            col.constraints = tuple(c for c in col.constraints if c.contype != CONSTR.CONSTR_PRIMARY) or None


class Builder:
    def __init__(self, profile, *, cache: int = 65536, keys: str = "identity"):
        self.profile = profile
        self.cache = cache
        # a profile without sequences (before 2026-02-13) has no identity columns either: keys become uuid
        self.no_sequences = profile.holds(["!sequences"])
        self.keys = "uuid" if self.no_sequences else keys
        self.schema = Schema()
        self.uuid_keys: set = set()  # table.column made uuid by --keys uuid (their FK columns follow)
        self.search_path: list = ["public"]  # as the input's SET search_path / set_config left it
        self.folded: dict = {}  # partition → the table it was folded into

    # -- entry ---------------------------------------------------------------------------------------
    def feed(self, stmt, origin: Origin) -> None:
        kind = type(stmt).__name__
        if self._search_path(stmt):
            return
        self._qualify(stmt)
        if _in_sys_schema(stmt):  # DSQL's own schema (a dump of DSQL or of the engine holds it): not the user's
            self.schema.skip("objects of DSQL's own sys schema")
            return
        handler = getattr(self, f"_{kind}", None)
        if handler is not None:
            handler(stmt, origin)
        elif kind in _MOVE and _MOVE[kind] is not None:
            pk, why, todo, hours = _MOVE[kind]
            if isinstance(stmt, ast.DefineStmt):
                pk, why, todo = _DEFINE.get(stmt.kind, (pk, why, todo))
            if isinstance(stmt, ast.DefineStmt) and stmt.kind == enums.ObjectType.OBJECT_AGGREGATE:
                name = names_of(stmt.defnames)
                name = ".".join(name if len(name) > 1 else [self.search_path[0]] + name).lower()
                self.schema.routines[name] = (stmt, origin, "aggregate")  # what calls it cannot carry over
            self.schema.plan.append(PlanItem(pk, _object_name(stmt), "moved", why, todo, origin, hours))
        elif kind in _SKIP:
            label = _SKIP[kind]
            if label is None:
                self.schema.plan.append(PlanItem(kind_label(kind), _object_name(stmt), "moved",
                                                 "DSQL does not run this statement", "do it in the application "
                                                 "or a migration script", origin, 1))
            else:
                self.schema.skip(label)
        else:
            self.schema.plan.append(PlanItem("statement", kind, "moved", f"convert does not carry {kind} over",
                                             "review by hand", origin, 0.5))

    # -- names: what an unqualified name means is the input's search_path at that point --------------
    def _search_path(self, stmt) -> bool:
        """SET search_path / set_config('search_path', …): remembered (True), not carried over."""
        value = None
        if isinstance(stmt, ast.VariableSetStmt) and (stmt.name or "").lower() == "search_path":
            value = [a.val.sval for a in stmt.args or () if isinstance(a, ast.A_Const)
                     and isinstance(a.val, ast.String)]
        elif isinstance(stmt, ast.SelectStmt) and stmt.targetList and len(stmt.targetList) == 1:
            fc = stmt.targetList[0].val
            if isinstance(fc, ast.FuncCall) and names_of(fc.funcname)[-1:] == ["set_config"] and fc.args \
                    and isinstance(fc.args[0], ast.A_Const) and getattr(fc.args[0].val, "sval", "") == "search_path":
                arg = fc.args[1]
                value = [p.strip().strip('"') for p in getattr(getattr(arg, "val", None), "sval", "").split(",")]
        if value is None:
            return False
        value = [v for v in value if v and v != "$user" and v != "pg_catalog"]
        self.search_path = value or ["public"]
        self.schema.skip("session settings (SET)")
        return True

    def _qualify(self, stmt) -> None:
        """Give unqualified names their schema: objects a statement creates go to the first schema of the
        search_path; tables it refers to, to the first schema of the path that holds them."""
        first = self.search_path[0]
        creates = {ast.CreateStmt: "relation", ast.IndexStmt: None, ast.CreateSeqStmt: "sequence",
                   ast.ViewStmt: "view", ast.CompositeTypeStmt: "typevar"}
        attr = creates.get(type(stmt))
        if attr and getattr(stmt, attr) is not None and getattr(stmt, attr).schemaname is None:
            getattr(stmt, attr).schemaname = first
        if isinstance(stmt, ast.CreateTableAsStmt) and stmt.into.rel.schemaname is None:
            stmt.into.rel.schemaname = first
        for owner, field in ((ast.CreateEnumStmt, "typeName"), (ast.CreateDomainStmt, "domainname"),
                             (ast.CreateRangeStmt, "typeName")):
            if isinstance(stmt, owner):
                parts = getattr(stmt, field)
                if parts and len(parts) == 1:
                    setattr(stmt, field, (ast.String(sval=first),) + tuple(parts))
        if isinstance(stmt, ast.CreateFunctionStmt) and len(stmt.funcname or ()) == 1:
            stmt.funcname = (ast.String(sval=first),) + tuple(stmt.funcname)
        if self.search_path == ["public"]:
            return
        from dsql_audit.convert.exprs import walk

        ctes = {c.ctename for c in walk(stmt) if isinstance(c, ast.CommonTableExpr)}
        for n in walk(stmt):
            if isinstance(n, ast.RangeVar) and n.schemaname is None and n.relname not in ctes:
                n.schemaname = self.resolve(n.relname)
            elif isinstance(n, ast.TypeName) and n.names and len(n.names) == 1:
                name = n.names[0].sval.lower()
                for sp in self.search_path:
                    if f"{sp}.{name}" in self.schema.types or f"{sp}.{name}" in self.schema.domains:
                        n.names = (ast.String(sval=sp), n.names[0])
                        break

    def resolve(self, relname: str) -> str:
        for sp in self.search_path:
            key = f"{sp}.{relname}"
            if key in self.schema.tables or key in self.schema.views or key in self.schema.sequences:
                return sp
        return self.search_path[0]

    # -- schemas and types ---------------------------------------------------------------------------------
    def _CreateSchemaStmt(self, s, origin):
        if s.schemaname and s.schemaname != "public":
            self.schema.schemas.setdefault(s.schemaname, origin)
        saved = self.search_path
        self.search_path = [s.schemaname or "public"]  # CREATE SCHEMA x CREATE TABLE t …: t is x.t
        try:
            for elt in s.schemaElts or ():
                self.feed(elt, origin)
        finally:
            self.search_path = saved

    def _CreateEnumStmt(self, s, origin):
        name = type_key(s.typeName)
        labels = [v.sval for v in s.vals or ()]
        self.schema.types[name] = ("enum", labels, origin)
        self.schema.note(origin, f"enum {name} → a domain over text with CHECK (VALUE IN ({len(labels)} labels))")

    def _CompositeTypeStmt(self, s, origin):
        name = qname(s.typevar)
        self.schema.types[name] = ("composite", s)
        self.schema.plan.append(PlanItem("type", name, "replaced", "DSQL has no composite types",
                                         "columns of this type become jsonb: read and write the fields as a JSON "
                                         "object", origin, 1))

    def _CreateRangeStmt(self, s, origin):
        name = type_key(s.typeName)
        self.schema.types[name] = ("range", s)
        self.schema.plan.append(PlanItem("type", name, "replaced", "DSQL has no range types",
                                         "columns of this type become text; split into lower/upper columns where "
                                         "the bounds are queried", origin, 1))

    def _CreateDomainStmt(self, s, origin):
        name = type_key(s.domainname)
        s.collClause = None
        mapped = T.map_type(self, s.typeName, name, origin)
        if mapped == "drop":
            self.schema.types[name] = ("dropped", None)
            return
        self.schema.domains[name] = (s, origin)

    def _AlterEnumStmt(self, s, origin):
        name = type_key(s.typeName)
        t = self.schema.types.get(name)
        if t and t[0] == "enum" and s.newVal:
            labels = t[1]
            if s.oldVal:  # RENAME VALUE
                t[1][:] = [s.newVal if x == s.oldVal else x for x in labels]
            elif s.newVal not in labels:
                labels.append(s.newVal)
            return
        self.schema.skip("ALTER TYPE")

    # -- sequences -------------------------------------------------------------------------------------------
    def _CreateSeqStmt(self, s, origin):
        name = qname(s.sequence)
        s.options = T.sequence_options(self, s.options, name, origin)
        s.if_not_exists = False
        self.schema.sequences[name] = (s, origin)

    def _AlterSeqStmt(self, s, origin):
        name = qname(s.sequence)
        owned = [o for o in s.options or () if o.defname == "owned_by"]
        rest = [o for o in s.options or () if o.defname != "owned_by"]
        if owned:
            parts = names_of(owned[0].arg)
            if len(parts) >= 2:
                table = ".".join(parts[:-1]) if len(parts) > 2 else f"public.{parts[0]}"
                t = self.schema.tables.get(table)
                if t is not None:
                    t.owned_sequences.append(name)
        seq = self.schema.sequences.get(name)
        if seq is not None and rest:  # fold the changes into the CREATE
            merged = {o.defname: o for o in seq[0].options or ()}
            for o in rest:
                merged[o.defname] = o
            seq[0].options = T.sequence_options(self, tuple(merged.values()), name, origin)

    # -- tables ----------------------------------------------------------------------------------------------
    def _CreateStmt(self, s, origin):
        name = qname(s.relation)
        sch = self.schema
        if s.relation.relpersistence == "t":
            sch.plan.append(PlanItem("table", name, "moved", "DSQL has no temporary tables",
                                     "use a regular table with a session key, or keep the rows in the application",
                                     origin, 2))
            return
        if s.relation.relpersistence == "u":
            s.relation.relpersistence = "p"
            sch.note(origin, f"{name}: UNLOGGED dropped (every DSQL table is durable)")
        if s.partbound is not None:  # PARTITION OF parent: its rows live in the parent on DSQL
            parent = qname(s.inhRelations[0]) if s.inhRelations else "?"
            self._fold_partition(parent, name, origin)
            return
        if s.partspec is not None:
            s.partspec = None
            if not any(p.kind == "partitioning" and p.object == name for p in sch.plan):
                sch.plan.append(PlanItem("partitioning", name, "folded", "DSQL has no partitioning: the partitioned "
                                         "table becomes one table", "retention by DROP/DETACH PARTITION becomes "
                                         "batched DELETEs (≤ 3,000 rows per transaction)", origin, 1))
        if s.inhRelations:
            parents = [qname(p) for p in s.inhRelations]
            inherited = []
            for p in parents:
                t = sch.tables.get(p)
                if t is not None:
                    own = {c.colname for c in (e for e in s.tableElts or () if isinstance(e, ast.ColumnDef))}
                    inherited += [_plain_copy(c) for c in t.columns() if c.colname not in own]
            s.tableElts = tuple(inherited) + tuple(s.tableElts or ())
            s.inhRelations = None
            sch.plan.append(PlanItem("inheritance", name, "changed", "DSQL has no table inheritance: the parent's "
                                     f"columns are copied into {name}", f"queries on {', '.join(parents)} no longer "
                                     f"see {name}'s rows: UNION them explicitly", origin, 1))
        if s.ofTypename is not None:
            sch.plan.append(PlanItem("table", name, "moved", "DSQL has no typed tables (OF type)",
                                     "create the table with explicit columns", origin, 1))
            return
        s.options = None
        s.tablespacename = None
        s.accessMethod = None
        s.oncommit = 0
        s.if_not_exists = False
        table = Table(name, s, origin)
        sch.tables[name] = table
        for e in list(s.tableElts or ()):
            if isinstance(e, ast.ColumnDef):
                self._column(table, e, origin)
            elif isinstance(e, ast.Constraint):
                self._table_constraint(table, e, origin)
            elif isinstance(e, ast.TableLikeClause):
                src = sch.tables.get(qname(e.relation))
                table.remove(e)
                if src is not None:
                    for c in src.columns():
                        table.add(_plain_copy(c))
                    sch.note(origin, f"{name}: LIKE {src.name} expanded into its columns")

    def _fold_partition(self, parent: str, child: str, origin) -> None:
        """One plan item per partitioned table, listing its partitions (their rows live in the parent)."""
        sch = self.schema
        self.folded[child] = parent
        item = next((p for p in sch.plan if p.kind == "partitioning" and p.object == parent), None)
        if item is None:
            item = PlanItem("partitioning", parent, "folded", "DSQL has no partitioning: the partitioned table "
                            "becomes one table", "retention by DROP/DETACH PARTITION becomes batched DELETEs "
                            "(≤ 3,000 rows per transaction)", origin, 1)
            sch.plan.append(item)
        item.details.setdefault("partitions", []).append(child)
        item.todo = (f"queries naming a partition ({', '.join(item.details['partitions'][:3])}"
                     f"{', …' if len(item.details['partitions']) > 3 else ''}) must query {parent} with the "
                     f"partition's bounds as a WHERE; retention by DROP/DETACH PARTITION becomes batched DELETEs "
                     f"(≤ 3,000 rows per transaction)")
        item.effort_hours = round(1 + 0.1 * len(item.details["partitions"]), 1)

    def _column(self, table: Table, col, origin) -> bool:
        """Make one column DSQL-legal in place; False when it was removed."""
        if col.collClause is not None:
            self.schema.note(origin, f"{table.name}.{col.colname}: COLLATE {'.'.join(names_of(col.collClause.collname))} "
                                     f"dropped (DSQL compares text in the C collation)")
        col.collClause = None
        col.storage = None
        col.compression = None
        what = f"{table.name}.{col.colname}"
        mapped = T.map_type(self, col.typeName, what, origin, column=col)
        if mapped == "drop":
            table.remove(col)
            return False
        kept = []
        previous = None  # the constraint a DEFERRABLE / INITIALLY … attribute that follows belongs to
        for c in col.constraints or ():
            if c.contype in _DEFERRAL:
                # the parser gives `REFERENCES p DEFERRABLE INITIALLY DEFERRED` as three nodes: the attributes go
                # with the foreign key they follow (wherever it is emitted), never stay on the column alone
                if previous is not None and previous.contype == CONSTR.CONSTR_FOREIGN:
                    if c.contype == CONSTR.CONSTR_ATTR_DEFERRABLE:
                        previous.deferrable = True
                    elif c.contype == CONSTR.CONSTR_ATTR_DEFERRED:
                        previous.deferrable, previous.initdeferred = True, True
                    elif c.contype == CONSTR.CONSTR_ATTR_NOT_DEFERRABLE:
                        previous.deferrable = False
                continue
            previous = c
            if c.contype == CONSTR.CONSTR_FOREIGN:
                c.fk_attrs = (ast.String(sval=col.colname),)
                table.fks.append((c, origin))
                continue
            if c.contype == CONSTR.CONSTR_IDENTITY:
                replaced = T.identity(self, col, c, what, origin)
                if replaced is not None:  # no identity in this profile: what stands for it
                    kept.extend(replaced)
                    continue
            if c.contype in (CONSTR.CONSTR_PRIMARY, CONSTR.CONSTR_UNIQUE):
                c.indexspace = None
                c.options = None
            kept.append(c)
        col.constraints = tuple(kept) or None
        return True

    def _table_constraint(self, table: Table, c, origin) -> None:
        sch = self.schema
        if c.contype == CONSTR.CONSTR_FOREIGN:
            table.remove(c)
            table.fks.append((c, origin))
        elif c.contype == CONSTR.CONSTR_EXCLUSION:
            table.remove(c)
            sch.plan.append(PlanItem("constraint", f"{table.name}.{c.conname or 'exclusion'}", "moved",
                                     "DSQL has no exclusion constraints",
                                     "check for overlapping rows in the application inside the writing "
                                     "transaction (DSQL's OCC makes the check-then-insert safe when both read the "
                                     "same rows)", origin, 3, {"constraint": deparse(c)}))
        elif c.contype in (CONSTR.CONSTR_PRIMARY, CONSTR.CONSTR_UNIQUE):
            c.indexspace = None
            c.options = None
            if c.indexname:  # UNIQUE/PK USING INDEX: the index's columns are not known here
                table.remove(c)
                sch.plan.append(PlanItem("constraint", f"{table.name}.{c.conname}", "moved",
                                         "a constraint over an existing index", "declare it with its columns",
                                         origin, 0.5))

    def _AlterTableStmt(self, s, origin):
        sch = self.schema
        name = qname(s.relation)
        if name in self.folded:  # a partition's own constraints: the parent holds the same ones once
            self._partition_alter(s, self.folded[name], origin)
            return
        table = sch.tables.get(name)
        for cmd in s.cmds or ():
            st = cmd.subtype
            if table is None:
                if name in sch.views or name in sch.sequences:
                    continue
                sch.skip("ALTER of an object convert did not create")
                continue
            if st == AT.AT_AddConstraint:
                c = cmd.def_
                if c.contype == CONSTR.CONSTR_FOREIGN:
                    table.fks.append((c, origin))
                elif c.contype == CONSTR.CONSTR_EXCLUSION:
                    self._table_constraint(table, c, origin)
                elif c.contype in (CONSTR.CONSTR_PRIMARY, CONSTR.CONSTR_UNIQUE, CONSTR.CONSTR_CHECK):
                    c.skip_validation = False
                    c.initially_valid = True
                    if c.contype == CONSTR.CONSTR_PRIMARY:
                        _drop_primary_key(table)  # one key a table: the one added last is the schema's
                    table.add(c)
                    self._table_constraint(table, c, origin)
                else:
                    sch.skip("other ALTER TABLE")
            elif st == AT.AT_ColumnDefault:
                col = table.column(cmd.name)
                if col is not None:
                    rest = [c for c in col.constraints or () if c.contype != CONSTR.CONSTR_DEFAULT]
                    if cmd.def_ is not None:
                        rest.append(ast.Constraint(contype=CONSTR.CONSTR_DEFAULT, raw_expr=cmd.def_))
                    col.constraints = tuple(rest) or None
            elif st == AT.AT_AddIdentity:
                col = table.column(cmd.name)
                if col is not None:
                    c = cmd.def_
                    col.constraints = tuple(col.constraints or ()) + (c,)
                    T.identity(self, col, c, f"{name}.{cmd.name}", origin)
                    seq_name = next((names_of(o.arg) for o in c.options or () if o.defname == "sequence_name"), None)
                    if seq_name:
                        c.options = tuple(o for o in c.options if o.defname != "sequence_name")
            elif st == AT.AT_SetNotNull:
                col = table.column(cmd.name)
                if col is not None:  # NOT NULL replaces an explicit NULL (both together: 42601)
                    rest = [c for c in col.constraints or () if c.contype not in (CONSTR.CONSTR_NULL,
                                                                                   CONSTR.CONSTR_NOTNULL)]
                    col.constraints = tuple(rest) + (ast.Constraint(contype=CONSTR.CONSTR_NOTNULL),)
            elif st == AT.AT_DropNotNull:
                col = table.column(cmd.name)
                if col is not None:
                    col.is_not_null = False
                    col.constraints = tuple(c for c in col.constraints or ()
                                            if c.contype not in (CONSTR.CONSTR_NOTNULL, CONSTR.CONSTR_NULL)) or None
            elif st == AT.AT_AddColumn:
                col = cmd.def_
                if table.column(col.colname) is None:
                    table.add(col)
                    self._column(table, col, origin)
            elif st == AT.AT_DropColumn:
                col = table.column(cmd.name)
                if col is not None:
                    table.remove(col)
                    # as PostgreSQL: the keys and unique constraints over the column go with it
                    for c in table.constraints():
                        if c.contype in (CONSTR.CONSTR_PRIMARY, CONSTR.CONSTR_UNIQUE) and \
                                cmd.name in names_of(c.keys or ()):
                            table.remove(c)
                    table.fks = [(c, o) for c, o in table.fks if cmd.name not in names_of(c.fk_attrs or ())]
            elif st == AT.AT_AlterColumnType:
                col = table.column(cmd.name)
                if col is not None:
                    col.typeName = cmd.def_.typeName
                    T.map_type(self, col.typeName, f"{name}.{cmd.name}", origin, column=col)
            elif st == AT.AT_DropConstraint:
                named = [c for c in table.constraints() if c.conname == cmd.name]
                for c in named:
                    table.remove(c)
                if not named and cmd.name == f"{table.stmt.relation.relname}_pkey":
                    _drop_primary_key(table)  # PostgreSQL's own name for a key declared without one
                table.fks = [(c, o) for c, o in table.fks if c.conname != cmd.name]
            elif st in (AT.AT_EnableRowSecurity, AT.AT_ForceRowSecurity):
                sch.plan.append(PlanItem("policy", name, "moved", "DSQL has no row-level security",
                                         "filter rows by tenant/owner in every query of the application", origin, 2))
            elif st == AT.AT_AttachPartition:
                child = qname(cmd.def_.name) if getattr(cmd.def_, "name", None) is not None else None
                if child and child in sch.tables:
                    del sch.tables[child]
                    sch.indexes = [(i, o) for i, o in sch.indexes if qname(i.relation) != child]
                self._fold_partition(name, child or "?", origin)
            else:  # owner, replica identity, triggers on/off, statistics, storage, cluster, validate …
                sch.skip("ALTER TABLE settings (owner, replica identity, triggers, storage …)")

    def _IndexStmt(self, s, origin):
        table = qname(s.relation)
        if table in self.folded:  # a partition's index: the parent gets one like it (once)
            parent = self.folded[table]
            shape = _index_shape(s)
            if any(qname(i.relation) == parent and _index_shape(i) == shape for i, _ in self.schema.indexes):
                return
            s.relation.schemaname, s.relation.relname = parent.split(".", 1)
            s.idxname = None  # PostgreSQL names it after the parent
        self.schema.indexes.append((s, origin))

    def _partition_alter(self, s, parent: str, origin) -> None:
        t = self.schema.tables.get(parent)
        for cmd in s.cmds or ():
            c = cmd.def_ if cmd.subtype == AT.AT_AddConstraint else None
            if t is None or c is None or c.contype != CONSTR.CONSTR_FOREIGN:
                continue
            sig = _fk_shape(c)
            if not any(_fk_shape(x) == sig for x, _ in t.fks):
                c.conname = None
                t.fks.append((c, origin))

    def _RenameStmt(self, s, origin):
        sch = self.schema
        if s.relation is not None:
            name = qname(s.relation)
            table = sch.tables.get(name)
            if table is not None and s.subname:  # column rename
                col = table.column(s.subname)
                if col is not None:
                    col.colname = s.newname
                    return
            if table is not None and not s.subname:
                new = f"{s.relation.schemaname or 'public'}.{s.newname}"
                table.stmt.relation.relname = s.newname
                table.name = new
                sch.tables = {new if k == name else k: v for k, v in sch.tables.items()}
                return
        sch.skip("RENAME")

    def _DropStmt(self, s, origin):
        sch = self.schema
        for obj in s.objects or ():
            parts = names_of(obj) if isinstance(obj, tuple) else names_of(getattr(obj, "names", None) or ())
            if not parts:
                continue
            key = ".".join(parts) if len(parts) > 1 else f"public.{parts[0]}"
            sch.tables.pop(key, None)
            sch.views.pop(key, None)
            sch.sequences.pop(key, None)
            if len(parts) == 1:
                sch.indexes = [(i, o) for i, o in sch.indexes if i.idxname != parts[0]]
        sch.skip("DROP")

    def _TruncateStmt(self, s, origin):
        """TRUNCATE does not exist on DSQL: each table's rows go in batched DELETEs (3,000 rows per
        transaction), keyed on its primary key where the model knows it. CASCADE empties the tables that
        reference them first; RESTART IDENTITY becomes a note to restart the identity."""
        names = [qname(rv) for rv in s.relations or ()]
        named = set(names)
        if s.behavior == enums.DropBehavior.DROP_CASCADE:
            seen = set(names)
            i = 0
            while i < len(names):  # every table whose foreign key reaches one being emptied, children first
                for child, t in self.schema.tables.items():
                    if child not in seen and any(qname(c.pktable) == names[i] for c, _ in t.fks):
                        seen.add(child)
                        names.append(child)
                i += 1
            names = names[len(s.relations):][::-1] + names[:len(s.relations)]
        for name in names:
            t = self.schema.tables.get(name)
            key = _primary_key(t) if t is not None else None
            if key:
                cols = ", ".join(key)
                batch = (f"DELETE FROM {name} WHERE ({cols}) IN (SELECT {cols} FROM {name} LIMIT 3000)  -- repeat, "
                         f"one transaction each, until it deletes 0 rows")
            else:
                batch = (f"DELETE FROM {name} WHERE <key> IN (SELECT <key> FROM {name} LIMIT 3000)  -- repeat until "
                         f"0 rows")
            if s.restart_seqs and t is not None:
                batch += "; then restart its identity/sequence (ALTER SEQUENCE … RESTART or a new start value)"
            why = "DSQL has no TRUNCATE, and a DELETE of every row passes its 3,000-row transaction limit"
            if name not in named:
                why += " (TRUNCATE … CASCADE reaches it through a foreign key: empty it before what it references)"
            self.schema.plan.append(PlanItem("truncate", name, "moved", why, f"delete in batches: {batch}", origin,
                                             0.5, {"statement": batch}))

    # -- code ------------------------------------------------------------------------------------------------
    def _CreateFunctionStmt(self, s, origin):
        from dsql_audit.convert import routines

        routines.function(self, s, origin)

    def _CreateTrigStmt(self, s, origin):
        from dsql_audit.convert import routines

        routines.trigger(self, s, origin)

    def _ViewStmt(self, s, origin):
        self.schema.views[qname(s.view)] = (s, origin)
        self.schema.paths[id(s)] = tuple(self.search_path)

    def _CreateTableAsStmt(self, s, origin):
        from dsql_audit.convert import routines

        routines.table_as(self, s, origin)


def _primary_key(t) -> list | None:
    for c in t.constraints():
        if c.contype == CONSTR.CONSTR_PRIMARY:
            return names_of(c.keys)
    for col in t.columns():
        if any(c.contype == CONSTR.CONSTR_PRIMARY for c in col.constraints or ()):
            return [col.colname]
    return None


def _index_shape(s) -> tuple:
    from pglast.stream import RawStream

    cols = tuple(e.name or RawStream()(e.expr) for e in s.indexParams or ())
    return cols, bool(s.unique), RawStream()(s.whereClause) if s.whereClause is not None else None, s.accessMethod


def _fk_shape(c) -> tuple:
    return tuple(names_of(c.fk_attrs)), qname(c.pktable), tuple(names_of(c.pk_attrs))


def _plain_copy(col):
    """A column copied from a parent (INHERITS, LIKE): type, default, NOT NULL and CHECKs; not the parent's
    keys or identity (PostgreSQL does not copy those either)."""
    c = copy.deepcopy(col)
    c.constraints = tuple(x for x in c.constraints or () if x.contype not in (
        CONSTR.CONSTR_PRIMARY, CONSTR.CONSTR_UNIQUE, CONSTR.CONSTR_IDENTITY, CONSTR.CONSTR_FOREIGN)) or None
    return c


def kind_label(kind: str) -> str:
    return {"DoStmt": "do-block", "AlterObjectSchemaStmt": "statement"}.get(kind, "statement")


def _object_name(stmt) -> str:
    for attr in ("extname", "tablespacename", "policy_name", "rulename", "pubname", "subname", "trigname",
                 "servername", "fdwname"):
        v = getattr(stmt, attr, None)
        if isinstance(v, str) and v:
            return v
    for attr in ("relation", "table", "base"):
        v = getattr(stmt, attr, None)
        if isinstance(v, ast.RangeVar):
            return qname(v)
    defnames = getattr(stmt, "defnames", None)
    if defnames:
        return ".".join(names_of(defnames))
    return type(stmt).__name__
