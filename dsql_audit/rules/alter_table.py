"""alter-table: the ALTER TABLE forms DSQL refuses.

Foreign keys, exclusion constraints, triggers, RLS, rules, inheritance,
partitions, tablespaces and REPLICA IDENTITY have rules of their own.
Dropping a primary-key column needs the table's key, so it is resolved
once the whole input is known.
"""

from dsql_audit.facts import rel_of, alter_cmds
from dsql_audit.model import Hit

# which statements this check can fire on (the rest never reach it)
NODES = {"AlterTableStmt", "RenameStmt"}
PROBES = ('"options"',)  # CREATE TABLE … WITH (…)


_COLUMN_CONSTRAINTS = {
    "CONSTR_NOTNULL": "NOT NULL", "CONSTR_DEFAULT": "DEFAULT", "CONSTR_CHECK": "CHECK",
    "CONSTR_UNIQUE": "UNIQUE", "CONSTR_PRIMARY": "PRIMARY KEY", "CONSTR_IDENTITY": "identity",
    "CONSTR_FOREIGN": "REFERENCES", "CONSTR_GENERATED": "GENERATED",
}
_SIMPLE = {
    "AT_AlterColumnType": "alter_column_type",
    "AT_SetNotNull": "set_not_null",
    "AT_DropNotNull": "drop_not_null",
    "AT_ColumnDefault": "column_default",
    "AT_SetStatistics": "set_statistics",
    "AT_SetStorage": "set_storage",
    "AT_AddIdentity": "identity",
    "AT_SetIdentity": "identity",
    "AT_DropIdentity": "identity",
    "AT_SetRelOptions": "storage_parameters",
    "AT_ResetRelOptions": "storage_parameters",
    "AT_SetOptions": "storage_parameters",
    "AT_ResetOptions": "storage_parameters",
    "AT_ClusterOn": "cluster_on",
    "AT_DropCluster": "cluster_on",
    "AT_SetLogged": "set_logged",
    "AT_DropExpression": "identity",
    "AT_SetExpression": "alter_column_type",
    "AT_SetAccessMethod": "storage_parameters",
    "AT_AddOf": "other",
    "AT_DropOf": "other",
    "AT_SetCompression": "set_compression",
}


def clause_offsets(facts) -> list[int]:
    """Where each comma-separated sub-clause of an ALTER TABLE starts (character offsets; the first is the
    statement's start). pglast gives a sub-command no location, and pg_dump and Prisma write one ALTER TABLE
    with a clause per line: a finding belongs on its clause's line."""
    from pglast.parser import scan

    try:
        tokens = scan(facts.text)
    except Exception:  # noqa: BLE001 - no offsets: findings stay at the statement
        return []
    starts, depth, after_comma = [_first_clause(tokens, facts)] if tokens else [], 0, False
    for t in tokens:
        if after_comma:
            starts.append(t.start)
            after_comma = False
        if t.name == "ASCII_40":
            depth += 1
        elif t.name == "ASCII_41":
            depth -= 1
        elif t.name == "ASCII_44" and depth == 0:
            after_comma = True
    return [facts.char_offset(b) for b in starts]


def _first_clause(tokens, facts) -> int:
    """The first sub-clause starts after ALTER TABLE [IF EXISTS] [ONLY] name [*] (the name may be qualified)."""
    location = ((facts.stmt or {}).get("relation") or {}).get("location")
    i = next((k for k, t in enumerate(tokens) if location is not None and t.start >= location), None)
    if i is None:
        return tokens[0].start
    i += 1
    while i + 1 < len(tokens) and tokens[i].name == "ASCII_46":  # schema.table
        i += 2
    if i < len(tokens) and tokens[i].name == "ASCII_42":  # table *: descendants too
        i += 1
    return tokens[i].start if i < len(tokens) else tokens[0].start


def check(facts):
    if facts.node == "CreateStmt" and facts.stmt.get("options"):
        yield Hit("alter-table", "storage_parameters", rel=rel_of(facts.stmt.get("relation")),
                  detail="CREATE TABLE … WITH (…)")
    if facts.node == "RenameStmt":
        if facts.stmt.get("renameType") == "OBJECT_INDEX":
            yield Hit("alter-table", "alter_index_rename", rel=rel_of(facts.stmt.get("relation")))
        return
    if facts.node == "AlterTableStmt" and facts.stmt.get("objtype") == "OBJECT_INDEX":
        yield Hit("alter-table", "alter_index", rel=rel_of(facts.stmt.get("relation")))
        return
    cmds = list(alter_cmds(facts))
    offsets = clause_offsets(facts) if len(cmds) > 1 else []
    if len(offsets) != len(cmds):
        offsets = [None] * len(cmds)  # clauses and sub-commands do not pair up: the statement's place
    for (cmd, rv), clause_at in zip(cmds, offsets):
        for hit in _command_hits(facts, cmd, rv):
            if hit.offset is None and clause_at:
                hit.offset = clause_at
            yield hit


def _command_hits(facts, cmd, rv):
    """The hits of one ALTER TABLE sub-command."""
    sub = cmd.get("subtype")
    col = cmd.get("name")
    if sub == "AT_AddColumn":
        cd = (cmd.get("def") or {}).get("ColumnDef") or {}
        kinds = sorted({_COLUMN_CONSTRAINTS.get(c.get("Constraint", {}).get("contype"), "constraint")
                        for c in cd.get("constraints", ()) if "Constraint" in c
                        and c["Constraint"].get("contype") != "CONSTR_NULL"})
        if kinds:
            references = any((c.get("Constraint") or {}).get("contype") == "CONSTR_FOREIGN"
                             for c in cd.get("constraints", ()))
            claim = f"fk:{(rv.get('relname') or '').lower()}.{(cd.get('colname') or '').lower()}" \
                if references else None  # joins the model's declaration of this key (a restatement)
            yield Hit("alter-table", "add_column_constraint", rel=rel_of(rv), object=cd.get("colname"),
                      detail=", ".join(kinds), args={"claim": claim})
    elif sub == "AT_AddConstraint":
        con = (cmd.get("def") or {}).get("Constraint") or {}
        ctype = con.get("contype")
        name = con.get("conname") or ""
        at = facts.char_offset(con.get("location"))
        if ctype == "CONSTR_PRIMARY":
            variant = "add_primary_key_using_index" if con.get("indexname") else "add_primary_key"
            yield Hit("alter-table", variant, offset=at, rel=rel_of(rv), detail=name)
        elif ctype == "CONSTR_UNIQUE":
            if not con.get("indexname"):
                yield Hit("alter-table", "add_unique", offset=at, rel=rel_of(rv), object=name or None, detail=name)
        elif ctype == "CONSTR_CHECK":
            variant = "add_check_not_valid" if con.get("skip_validation") else "add_check"
            yield Hit("alter-table", variant, offset=at, rel=rel_of(rv), object=name or None, detail=name)
    elif sub == "AT_ValidateConstraint":
        if "alter_async" not in facts.dsql:
            yield Hit("alter-table", "validate_sync", rel=rel_of(rv), object=col, detail=col)
    elif sub == "AT_DropColumn":
        yield Hit("alter-table", "drop_column", rel=rel_of(rv), object=col, detail=col,
                  args={"table": (rv.get("schemaname"), rv.get("relname")), "column": col,
                        "resolve": True})
    elif sub == "AT_ColumnDefault":
        yield Hit("alter-table", "column_default", rel=rel_of(rv), object=col, detail=col)
    elif sub in _SIMPLE:
        yield Hit("alter-table", _SIMPLE[sub], rel=rel_of(rv), object=col, detail=col)


def resolve(hit, schema, profile):
    """DROP COLUMN: refused on a primary-key column in every profile."""
    if hit.variant != "drop_column":
        return hit
    table = schema.table(*hit.args["table"])
    if table is not None and hit.args["column"] in (table.pk or ()):
        hit.variant = "drop_pk_column"
    return hit
