"""JPA / Hibernate: entities (Java and Kotlin, read with tree-sitter's ``java`` and ``kotlin`` grammars) and the
settings that say whether Hibernate writes the schema.

Names are the ones Hibernate sends under Spring Boot's defaults: an entity's table is its ``@Table(name, schema)``
or its entity name, a column its ``@Column(name)``/``@JoinColumn(name)`` or its field name, each put through
Spring's CamelCaseToUnderscoresNamingStrategy (``bankAccount`` → ``bank_account``, explicit names too); a name
written quoted (``"\\"Order\\""``, `` `Order` ``) is kept as written. An entity of another file is named from its
class name (its ``@Table`` is not read)."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from dsql_audit.sources.frameworks.synth import Layout, Out, file_parts, index_sql, qi, qn, valid_type
from dsql_audit.sources.frameworks.tree import Source, walk

_JPA_ID_TYPES = {"long": "bigint", "Long": "bigint", "BigInteger": "bigint", "int": "integer", "Integer": "integer",
                 "Int": "integer", "short": "smallint", "Short": "smallint", "UUID": "uuid",
                 "String": "character varying(255)"}
_NUMERIC_IDS = ("bigint", "integer", "smallint")
_LOCK_MODES = re.compile(r"(?:[\w.]+\.)?LockMode(?:Type)?\s*\.\s*(PESSIMISTIC_READ|PESSIMISTIC_WRITE|"
                         r"PESSIMISTIC_FORCE_INCREMENT|UPGRADE_NOWAIT|UPGRADE_SKIPLOCKED)")
_REPOSITORY = re.compile(r"(?:[\w.]+\.)?(?:Jpa|Crud|PagingAndSorting|ListCrud|Reactive)?Repository")

# node types of each grammar
_ANNOTATIONS = {"annotation", "marker_annotation"}  # Java; Kotlin has "annotation" only
_STRINGS = {"string_literal"}
_IMPORTS = {"import_declaration", "package_declaration", "import_list", "import_header", "package_header"}
# where classes are declared (what _classes looks into)
_CLASS_HOLDERS = {"program", "source_file", "class_declaration", "class_body", "ERROR", "object_declaration",
                  "companion_object"}
# where climbing from a lock mode stops: the statement it is part of
_STATEMENT_HOLDERS = {"block", "class_body", "program", "statements", "function_body", "source_file",
                      "lambda_literal", "control_structure_body", "switch_block_statement_group"}


def _physical(name: str) -> str:
    """The name Hibernate sends under Spring Boot (CamelCaseToUnderscoresNamingStrategy): an underscore between a
    lower-case letter and an upper-case one followed by a lower-case one, dots made underscores, then lower case;
    a quoted name as written."""
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in '"`':
        return name[1:-1]
    chars = list(name.replace(".", "_"))
    i = 1
    while i < len(chars) - 1:
        if chars[i - 1].islower() and chars[i].isupper() and chars[i + 1].islower():
            chars.insert(i, "_")
            i += 1
        i += 1
    return "".join(chars).lower()


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip()


# --------------------------------------------------------------------------------------------------------------
# Annotations and their arguments, in either grammar
# --------------------------------------------------------------------------------------------------------------

@dataclass
class _Ann:
    name: str  # the last part of its name: "Table" for @jakarta.persistence.Table
    node: object
    start: int
    named: dict  # argument name → value node
    positional: list  # value nodes

    def get(self, key: str, positional: bool = False):
        v = self.named.get(key)
        if v is None and positional and self.positional:
            v = self.positional[0]
        return v


class _File:
    """One source file's tree and the annotation reading its grammar needs."""

    def __init__(self, src: bytes, root, source: Source | None = None):
        self.bytes, self.root, self.source = src, root, source
        self.kotlin = root.type == "source_file"  # Java's root is "program"

    @classmethod
    def parse(cls, text: str, grammar: str) -> _File:
        source = Source(text, grammar)
        return cls(source.src, source.root, source)

    def text(self, node) -> str:
        return self.bytes[node.start_byte:node.end_byte].decode("utf-8", "surrogatepass")

    def start(self, node) -> int:
        """A node's character offset (a parsed file only)."""
        return self.source.start(node)

    # -- annotations -------------------------------------------------------------------------------------------
    def annotation(self, node) -> _Ann | None:
        """A Java ``@X(…)`` / Kotlin ``@X(…)`` node, or a Kotlin ``X(…)`` call nested in an annotation."""
        if self.kotlin:
            return self.kotlin_annotation(node)
        name = node.child_by_field_name("name")
        if name is None:
            return None
        named, positional = {}, []
        args = node.child_by_field_name("arguments")
        for arg in args.named_children if args is not None else ():
            if arg.type == "element_value_pair":
                key, value = arg.child_by_field_name("key"), arg.child_by_field_name("value")
                if key is not None and value is not None:
                    named[self.text(key)] = value
            elif arg.type not in ("comment", "line_comment", "block_comment"):
                positional.append(arg)
        return _Ann(_last(self.text(name)), node, self.start(node) if self.source else -1, named, positional)

    def kotlin_annotation(self, node) -> _Ann | None:
        if node.type == "call_expression":  # Index(…) inside @Table(indexes = [Index(…)])
            callee = node.named_children[0] if node.named_children else None
            suffix = next((c for c in node.named_children if c.type == "call_suffix"), None)
            args = next((c for c in suffix.named_children if c.type == "value_arguments"), None) if suffix else None
            name = callee
        else:
            body = next((c for c in node.named_children if c.type in ("constructor_invocation", "user_type")),
                        None)
            if body is None:
                return None
            name = body if body.type == "user_type" else body.named_children[0]
            args = next((c for c in body.named_children if c.type == "value_arguments"), None)
        if name is None:
            return None
        named, positional = {}, []
        for arg in args.named_children if args is not None else ():
            if arg.type != "value_argument" or not arg.named_children:
                continue
            kids = arg.named_children
            has_key = any(c.type == "=" for c in arg.children) and kids[0].type == "simple_identifier"
            if has_key and len(kids) >= 2:
                named[self.text(kids[0])] = kids[-1]
            else:
                positional.append(kids[-1])
        text = re.sub(r"<.*", "", self.text(name))
        return _Ann(_last(text), node, self.start(node) if self.source else -1, named, positional)

    def annotations_of(self, node, before: int | None = None) -> list[_Ann]:
        """The annotations in a declaration's modifiers (the last ones before byte ``before``, when given)."""
        mods = None
        for c in node.children:
            if before is not None and c.start_byte >= before:
                break
            if c.type == "modifiers":
                mods = c
                if before is None:
                    break
        if mods is None:
            return []
        return [a for a in (self.annotation(c) for c in mods.children if c.type in _ANNOTATIONS) if a]

    def nested(self, value, name: str) -> list[_Ann]:
        """``@Index(…)`` (Java) or ``Index(…)`` (Kotlin) anywhere inside an argument value."""
        if value is None:
            return []
        out = []
        for n in walk(value):
            if self.kotlin and n.type == "call_expression" and n.named_children \
                    and _last(self.text(n.named_children[0])) == name:
                out.append(n)
            elif not self.kotlin and n.type in _ANNOTATIONS and n.child_by_field_name("name") is not None \
                    and _last(self.text(n.child_by_field_name("name"))) == name:
                out.append(n)
        return [a for a in (self.annotation(n) for n in out) if a]

    # -- values ------------------------------------------------------------------------------------------------
    def strings(self, value) -> list[str]:
        """The contents of the string literals in a value (``"a" + "b"``, ``{"a", "b"}``, ``["a", "b"]``)."""
        if value is None:
            return []
        out = []
        for n in walk(value):
            if n.type in _STRINGS:
                text = self.text(n)
                q = 3 if text.startswith('"""') else 1
                out.append(text[q:len(text) - q] if len(text) >= 2 * q else "")
        return out

    def string(self, ann: _Ann | None, key: str, positional: bool = False) -> str | None:
        """A string argument (its parts joined), None when it is not written as string literals."""
        if ann is None:
            return None
        parts = self.strings(ann.get(key, positional))
        return "".join(parts).replace('\\"', '"') if parts else None

    def word(self, ann: _Ann | None, key: str, positional: bool = False) -> str | None:
        """An argument as written (``GenerationType.SEQUENCE``, ``50``, ``true``)."""
        v = ann.get(key, positional) if ann is not None else None
        return self.text(v).strip() if v is not None else None

    def type_name(self, node) -> str:
        """A declared type as written, without Kotlin's ``?``."""
        return re.sub(r"\s+", "", self.text(node)).rstrip("?")


# --------------------------------------------------------------------------------------------------------------
# Classes and fields
# --------------------------------------------------------------------------------------------------------------

@dataclass
class _Field:
    name: str
    type: str  # as written: Long, Set<Tag>, java.util.List<Line>
    anns: list
    decl: int  # just after its last annotation

    def ann(self, name: str) -> _Ann | None:
        return next((a for a in self.anns if a.name == name), None)

    @property
    def base_type(self) -> str:
        return _last(self.type.split("<")[0])

    @property
    def element_type(self) -> str:
        """The last type argument: ``Set<Tag>`` → Tag."""
        m = re.search(r"<([^<>]*)>", self.type)
        return _last(m.group(1).split(",")[-1]) if m else self.base_type


@dataclass
class _Entity:
    cls: str
    name: str  # the entity name (@Entity(name) or the class)
    table: str
    schema: str | None
    class_off: int  # the "class" keyword
    anns: list
    node: object
    id_column: str = "id"
    fields: list = field(default_factory=list)

    @property
    def ref(self) -> str:
        """The table as constructs name it: ``schema.table`` or ``table``."""
        return f"{self.schema}.{self.table}" if self.schema else self.table

    @property
    def sql(self) -> str:
        return qn(self.table, self.schema, qi)


def _classes(f: _File) -> list:
    """Class declarations (nested ones too; method bodies are not looked into), and ERROR nodes holding the
    ``class`` keyword: a class the parser could not close (a file cut short, code it does not know) still has its
    annotations and fields there."""
    out, stack = [], [f.root]
    while stack:
        n = stack.pop()
        if n.type == "class_declaration" or (n.type == "ERROR" and any(c.type == "class" for c in n.children)):
            out.append(n)
        if n.type in _CLASS_HOLDERS:
            stack.extend(reversed(n.children))
    return out


def _fields(f: _File, cls) -> list[_Field]:
    """The annotated fields of a class: Java fields, Kotlin ``val``/``var`` properties and primary-constructor
    parameters, in source order."""
    out = []
    holders = [c for c in cls.children if c.type in ("class_body", "primary_constructor")]
    if cls.type == "ERROR":
        holders.append(cls)
    for holder in holders:
        for n in holder.named_children:
            declared = _declared(f, n)
            if declared is None:
                continue
            anns = f.annotations_of(n)
            if not anns:
                continue
            name, ftype = declared
            out.append(_Field(name, ftype, anns, max(f.source.end(a.node) for a in anns)))
    return out


def _declared(f: _File, n) -> tuple[str, str] | None:
    """(name, type) of a field declaration, or None."""
    if n.type == "field_declaration":  # Java
        decl, ftype = n.child_by_field_name("declarator"), n.child_by_field_name("type")
        name = decl.child_by_field_name("name") if decl is not None else None
        return (f.text(name), f.type_name(ftype)) if name is not None and ftype is not None else None
    if n.type == "class_parameter":  # Kotlin primary constructor: a property only with val/var
        if not any(c.type == "binding_pattern_kind" for c in n.children):
            return None
        holder = n
    elif n.type == "property_declaration":
        holder = next((c for c in n.named_children if c.type == "variable_declaration"), None)
    else:
        return None
    if holder is None:
        return None
    kids = holder.named_children
    name = next((c for c in kids if c.type == "simple_identifier"), None)
    ftype = next((c for c in kids if c.type in ("user_type", "nullable_type")), None)
    if name is None or ftype is None:
        return None
    return f.text(name), f.type_name(ftype)


def _class_keyword(cls):
    return next((c for c in cls.children if c.type == "class"), cls)


def _class_name(f: _File, cls) -> str | None:
    name = cls.child_by_field_name("name")
    if name is None:  # Kotlin, or a class left in an ERROR node: the name after the keyword
        keyword = _class_keyword(cls)
        name = next((c for c in cls.named_children if c.start_byte >= keyword.end_byte
                     and c.type in ("type_identifier", "simple_identifier", "identifier")), None)
    return f.text(name) if name is not None else None


# --------------------------------------------------------------------------------------------------------------
# Entities → SQL and constructs
# --------------------------------------------------------------------------------------------------------------

class _Jpa:
    def __init__(self, text: str, grammar: str, out: Out):
        self.f = _File.parse(text, grammar)
        self.out, self.pos = out, out.pos
        self.entities: dict[str, _Entity] = {}

    def lc(self, off: int) -> tuple[int, int]:
        return self.pos.lc(off)

    def run(self):
        for cls in _classes(self.f):
            anns = self.f.annotations_of(cls, _class_keyword(cls).start_byte)
            ent = next((a for a in anns if a.name == "Entity"), None)
            name = _class_name(self.f, cls)
            if ent is None or name is None:
                continue
            table_ann = next((a for a in anns if a.name == "Table"), None)
            entity_name = self.f.string(ent, "name") or name
            table = _physical(self.f.string(table_ann, "name") or entity_name)
            schema = self.f.string(table_ann, "schema")
            e = _Entity(name, entity_name, table, _physical(schema) if schema else None,
                        self.f.start(_class_keyword(cls)), anns, cls)
            e.fields = _fields(self.f, cls)
            id_field = next((x for x in e.fields if x.ann("Id")), None)
            if id_field is not None:
                e.id_column = self.column_name(id_field)
            self.entities[name] = e
        for e in self.entities.values():
            try:
                self.entity(e)
            except Exception:  # noqa: BLE001 - one entity the code cannot read does not stop the others
                continue
        if "LockMode" in self.f.source.text:
            self.locks()

    def column_name(self, fld: _Field) -> str:
        return _physical(self.f.string(fld.ann("Column"), "name") or fld.name)

    def target(self, cls: str) -> tuple[str, str]:
        """(table as constructs name it, primary key column) of an entity class (of another file: its name)."""
        e = self.entities.get(cls)
        return (e.ref, e.id_column) if e is not None else (_physical(cls), "id")

    def entity(self, e: _Entity):
        line, col = self.lc(e.class_off)
        layout = Layout(line, col)
        layout.put(f"CREATE TABLE {e.sql} (")
        self.ncols, self.interesting, after = 0, False, []
        generators = self.generators(e)
        for fld in e.fields:
            if fld.ann("Id"):
                self.id_column(e, fld, layout, generators, after)
            elif fld.ann("ManyToOne") or fld.ann("OneToOne"):
                self.to_one(e, fld, after)
            elif fld.ann("ManyToMany"):
                self.many_to_many(e, fld, after)
            elif fld.ann("Column"):
                self.column(e, fld, layout, after)
        layout.put(")")
        if self.interesting and self.ncols:
            self.out.sql(layout.text(), line, col, "JPA @Entity", None)
        self.table_constraints(e)
        for emit in after:
            emit()

    def generators(self, e: _Entity) -> dict:
        """@SequenceGenerator on the class or on a member of it (a field, a getter), by name."""
        anns = list(e.anns)
        for holder in e.node.children:
            if holder.type in ("class_body", "primary_constructor"):
                for member in holder.named_children:
                    anns += self.f.annotations_of(member)
        out = {}
        for a in anns:
            if a.name == "SequenceGenerator":
                out.setdefault(self.f.string(a, "name") or "", a)
        return out

    def id_column(self, e: _Entity, fld: _Field, layout: Layout, generators: dict, after: list):
        column_ann = fld.ann("Column")
        column = self.column_name(fld)
        sql_type = _JPA_ID_TYPES.get(fld.base_type, "bigint")
        gen = fld.ann("GeneratedValue")
        strategy = _last(self.f.word(gen, "strategy") or "AUTO") if gen else None
        definition = self.f.string(column_ann, "columnDefinition")
        if definition:
            sql_type = definition
        if self.ncols:
            layout.comma()
        if gen and strategy == "IDENTITY" and sql_type in _NUMERIC_IDS:
            gline, gcol = self.lc(gen.start)
            layout.column(f"{qi(column)} {sql_type}", "GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", gline, None,
                          gcol)
            self.interesting = True
        else:
            layout.column(qi(column), f"{sql_type} PRIMARY KEY", self.lc(fld.decl)[0], None, None)
        self.ncols += 1
        if gen and strategy in ("SEQUENCE", "AUTO") and sql_type in _NUMERIC_IDS:
            g = generators.get(self.f.string(gen, "generator") or "") or generators.get("") if generators else None
            # Hibernate 6 without a generator: "<EntityName>_SEQ"; with one: its sequenceName, else its name
            seq = _physical(self.f.string(g, "sequenceName") or self.f.string(g, "name") or f"{e.name}_SEQ")
            alloc = self.f.word(g, "allocationSize") or "50"
            initial = self.f.word(g, "initialValue") or "1"
            sline, scol = self.lc((g if g is not None else gen).start)
            if re.fullmatch(r"-?\d+", alloc) and re.fullmatch(r"-?\d+", initial):
                sql = f"CREATE SEQUENCE {qi(seq)} START WITH {initial} INCREMENT BY {alloc}"
                after.append(lambda: self.out.sql(sql, sline, scol, "JPA @GeneratedValue SEQUENCE"))

    def to_one(self, e: _Entity, fld: _Field, after: list):
        rel = fld.ann("ManyToOne") or fld.ann("OneToOne")
        if rel.get("mappedBy"):
            return
        jc = fld.ann("JoinColumn")
        if jc and "NO_CONSTRAINT" in self.f.text(jc.node):
            return
        target, target_id = self.target(fld.base_type)
        ref = _physical(self.f.string(jc, "referencedColumnName") or target_id)
        jcol = _physical(self.f.string(jc, "name") or f"{fld.name}_{ref}")
        od = fld.ann("OnDelete")
        action = self.f.word(od, "action", True)
        on_delete = _last(action) if action else None
        rline, rcol = self.lc(rel.start)
        obj, origin = f"{e.ref}.{jcol}", f"JPA @{rel.name}"
        after.append(lambda: self.out.fk(rline, rcol, origin, "JPA", obj, f"{target}.{ref}", on_delete, True))

    def many_to_many(self, e: _Entity, fld: _Field, after: list):
        mtm = fld.ann("ManyToMany")
        if mtm.get("mappedBy"):
            return
        jt = fld.ann("JoinTable")
        target, target_id = self.target(fld.element_type)
        name = self.f.string(jt, "name")
        schema = self.f.string(jt, "schema")
        jt_name = _physical(name) if name else f"{e.table}_{_physical(fld.name)}"  # Spring: owner table_field
        if schema:
            jt_name = f"{_physical(schema)}.{jt_name}"
        join = next(iter(self.f.nested(jt.get("joinColumns") if jt else None, "JoinColumn")), None)
        inverse = next(iter(self.f.nested(jt.get("inverseJoinColumns") if jt else None, "JoinColumn")), None)
        own_ref = _physical(self.f.string(join, "referencedColumnName") or e.id_column)
        target_ref = _physical(self.f.string(inverse, "referencedColumnName") or target_id)
        join_col = _physical(self.f.string(join, "name") or f"{e.name}_{own_ref}")
        inverse_col = _physical(self.f.string(inverse, "name") or f"{fld.name}_{target_ref}")
        mline, mcol = self.lc(mtm.start)
        for obj, tgt in ((f"{jt_name}.{join_col}", f"{e.ref}.{own_ref}"),
                         (f"{jt_name}.{inverse_col}", f"{target}.{target_ref}")):
            after.append(lambda obj=obj, tgt=tgt:
                         self.out.fk(mline, mcol, "JPA @ManyToMany", "JPA", obj, tgt, None, True))

    def column(self, e: _Entity, fld: _Field, layout: Layout, after: list):
        column_ann = fld.ann("Column")
        column = self.column_name(fld)
        definition = self.f.string(column_ann, "columnDefinition")
        if definition and valid_type(definition):
            if self.ncols:
                layout.comma()
            value = column_ann.get("columnDefinition")
            first = next((n for n in walk(value) if n.type in _STRINGS), None)
            at = self.f.start(first) + 1 if first is not None else column_ann.start
            dline, dcol = self.lc(at)
            layout.column(qi(column), definition, dline, None, dcol)
            self.ncols += 1
            self.interesting = True
        if (self.f.word(column_ann, "unique") or "") == "true":
            uline, ucol = self.lc(column_ann.start)
            sql = f"ALTER TABLE {e.sql} ADD CONSTRAINT {qi(f'uk_{e.table}_{column}')} UNIQUE ({qi(column)})"
            after.append(lambda: self.out.sql(sql, uline, ucol, "JPA @Column(unique = true)"))

    def table_constraints(self, e: _Entity):
        """@Table(indexes = @Index(…), uniqueConstraints = @UniqueConstraint(…))."""
        table_ann = next((a for a in e.anns if a.name == "Table"), None)
        if table_ann is None:
            return
        for ix in self.f.nested(table_ann.get("indexes"), "Index"):
            cols = [c.strip() for c in (self.f.string(ix, "columnList") or "").split(",") if c.strip()]
            keys = []
            for c in cols:
                m = re.fullmatch(r"(\w+)(?:\s+(asc|desc))?", c, re.I)
                if m:
                    keys.append(qi(_physical(m.group(1))) + (f" {m.group(2).upper()}" if m.group(2) else ""))
            if keys:
                bare = "_".join(_physical(c.split()[0]) for c in cols)
                name = self.f.string(ix, "name") or f"idx_{e.table}_{bare}"
                iline, icol = self.lc(ix.start)
                unique = (self.f.word(ix, "unique") or "") == "true"
                self.out.sql(index_sql(name, e.sql, keys, unique=unique), iline, icol, "JPA @Index")
        for uc in self.f.nested(table_ann.get("uniqueConstraints"), "UniqueConstraint"):
            cols = [_physical(c) for c in self.f.strings(uc.get("columnNames")) if re.fullmatch(r"\w+", c)]
            if cols:
                name = self.f.string(uc, "name") or f"uk_{e.table}_{'_'.join(cols)}"
                uline, ucol = self.lc(uc.start)
                self.out.sql(f"ALTER TABLE {e.sql} ADD CONSTRAINT {qi(name)} UNIQUE ("
                             + ", ".join(qi(c) for c in cols) + ")", uline, ucol, "JPA @UniqueConstraint")

    # -- locks -----------------------------------------------------------------------------------------------------
    def locks(self):
        """``@Lock(LockModeType.PESSIMISTIC_*)``, ``em.find(…, LockModeType…)``, ``setLockMode(…)``."""
        default = self.repository_entity() or (next(iter(self.entities)) if len(self.entities) == 1 else None)
        for node, mode in self.lock_modes():
            lock = self.enclosing_lock(node)
            cls = None if lock is not None else self.class_literal(node)
            cls = cls or default
            if cls is None:
                continue
            table = self.entities[cls].sql if cls in self.entities else qi(_physical(cls))
            clause = "FOR SHARE" if mode == "PESSIMISTIC_READ" else "FOR UPDATE"
            if mode == "UPGRADE_NOWAIT":
                clause += " NOWAIT"
            elif mode == "UPGRADE_SKIPLOCKED":
                clause += " SKIP LOCKED"
            elif lock is not None:
                clause += self.lock_timeout(lock)
            line, col = self.lc(lock.start if lock is not None else self.lock_word(node))
            self.out.sql(f"SELECT * FROM {table} WHERE id = $1 {clause}", line, col,
                         f"JPA {'@Lock' if lock is not None else 'LockModeType'}.{mode}", None, dynamic=True)

    def lock_modes(self):
        """(node, mode) of each ``LockModeType.X`` / ``LockMode.X`` in code (imports, comments and strings left
        out)."""
        kinds = ("navigation_expression",) if self.f.kotlin else ("field_access",)
        stack = [self.f.root]
        while stack:
            n = stack.pop()
            if n.type in _IMPORTS:
                continue
            if n.type in kinds:
                m = _LOCK_MODES.fullmatch(self.f.text(n))
                if m:
                    yield n, m.group(1)
                    continue
            stack.extend(reversed(n.children))

    def lock_word(self, node) -> int:
        """Where ``LockMode``/``LockModeType`` is written in ``jakarta.persistence.LockModeType.X``."""
        for n in walk(node):
            if n.type in ("identifier", "simple_identifier") and self.f.text(n) in ("LockMode", "LockModeType"):
                return self.f.start(n)
        return self.f.start(node)

    def enclosing_lock(self, node) -> _Ann | None:
        p = node.parent
        while p is not None and p.type not in _STATEMENT_HOLDERS:
            if p.type in _ANNOTATIONS:
                a = self.f.annotation(p)
                return a if a is not None and a.name == "Lock" else None
            p = p.parent
        return None

    def class_literal(self, node) -> str | None:
        """The entity class named in the statement: ``em.find(Account.class, …)`` / ``Account::class.java``."""
        top = node
        while top.parent is not None and top.parent.type not in _STATEMENT_HOLDERS:
            top = top.parent
        for n in walk(top):
            if n.type in ("class_literal", "callable_reference"):
                m = re.match(r"\s*(?:[\w.]*\.)?([A-Z]\w*)\s*(?:\.\s*class|::\s*class)", self.f.text(n))
                if m:
                    return m.group(1)
        return None

    def lock_timeout(self, lock: _Ann) -> str:
        """@QueryHints({@QueryHint(name = "…lock.timeout", value = "0")}) beside the @Lock: NOWAIT / SKIP LOCKED."""
        mods = lock.node.parent
        if mods is None or mods.type != "modifiers":
            return ""
        for n in mods.children:
            hints = self.f.annotation(n) if n.type in _ANNOTATIONS else None
            if hints is None or hints.name != "QueryHints":
                continue
            for hint in self.f.nested(hints.get("value", True), "QueryHint"):
                if (self.f.string(hint, "name") or "").endswith("lock.timeout"):
                    value = (self.f.string(hint, "value") or "").strip()
                    return {"0": " NOWAIT", "-2": " SKIP LOCKED"}.get(value, "")
        return ""

    def repository_entity(self) -> str | None:
        """``JpaRepository<Customer, Long>``: the entity a repository's queries lock."""
        for n in walk(self.f.root):
            if n.type in ("generic_type", "user_type"):
                args = next((c for c in n.named_children if c.type in ("type_arguments",)), None)
                head = n.named_children[0] if n.named_children else None
                if args is None or head is None or not _REPOSITORY.fullmatch(self.f.text(head)):
                    continue
                first = args.named_children[0] if args.named_children else None
                if first is not None:
                    return _last(re.sub(r"<.*", "", self.f.text(first)))
        return None


# --------------------------------------------------------------------------------------------------------------
# JPQL: the strings JPA reads as its own query language, not SQL
# --------------------------------------------------------------------------------------------------------------

_JPQL_CALLS = {"createQuery", "createSelectionQuery", "createMutationQuery"}
_SQL_QUERY_IMPORTS = re.compile(r"org\.springframework\.data\.(?:jdbc|r2dbc)\b|io\.micronaut\.data\.(?:jdbc|r2dbc)\b|"
                                r"org\.jdbi\b|org\.skife\.jdbi\b|org\.sql2o\b")


def jpql_strings(root, src: bytes) -> set[tuple[int, int]]:
    """The string literals of a Java or Kotlin tree (``root``, parsed from ``src``) that are JPQL/HQL: the query
    of ``@Query`` without ``nativeQuery = true`` and of ``@NamedQuery``, and the first argument of
    ``createQuery``/``createSelectionQuery``/``createMutationQuery`` — unless the file imports a library whose
    ``@Query``/``createQuery`` takes SQL (Spring Data JDBC/R2DBC, Micronaut Data JDBC, JDBI, Sql2o). As
    (start_byte, end_byte) of each literal, the keys other_languages gives string nodes."""
    if b"Query" not in src or _SQL_QUERY_IMPORTS.search(src.decode("utf-8", "surrogatepass")):
        return set()
    f = _File(src, root)
    out: set = set()
    for n in walk(root):
        query = None
        if n.type in _ANNOTATIONS or (f.kotlin and n.type == "annotation"):
            a = f.annotation(n)
            if a is not None and a.name == "Query" and (f.word(a, "nativeQuery") or "") != "true":
                query = a.get("value", True)
            elif a is not None and a.name == "NamedQuery":
                query = a.get("query")
        elif n.type in ("method_invocation", "call_expression"):
            query = _query_argument(f, n)
        if query is not None:
            out.update((s.start_byte, s.end_byte) for s in walk(query) if s.type in _STRINGS)
    return out


def _query_argument(f: _File, call):
    """The first argument of a createQuery(…) call, or None."""
    if not f.kotlin:
        name, args = call.child_by_field_name("name"), call.child_by_field_name("arguments")
    else:
        callee = call.named_children[0] if call.named_children else None
        name = callee.named_children[-1] if callee is not None and callee.named_children else callee
        suffix = next((c for c in call.named_children if c.type == "call_suffix"), None)
        args = next((c for c in suffix.named_children if c.type == "value_arguments"), None) if suffix else None
    if name is None or args is None or f.text(name).lstrip(".") not in _JPQL_CALLS or not args.named_children:
        return None
    first = args.named_children[0]
    return first.named_children[-1] if f.kotlin and first.named_children else first


# --------------------------------------------------------------------------------------------------------------
# Settings: does Hibernate write the schema?
# --------------------------------------------------------------------------------------------------------------

_SCHEMA_KEYS = re.compile(r"(?:^|\.)(?:hbm2ddl\.auto|ddl-auto|ddl_auto|ddlAuto|"
                          r"schema-generation\.database\.action)$", re.I)
_SCHEMA_VALUES = {"update", "create", "create-drop", "create-only", "drop-and-create", "drop", "create_drop",
                  "create_only", "drop_and_create"}
_NO_SCHEMA_VALUES = {"none", "validate"}  # Hibernate writes no schema: something else owns it


def _setting(out: Out, key: str, value, off: int):
    v = str(value).strip().strip("\"'").lower()
    m = re.fullmatch(r"\$\{[^:}]+:([^}]*)\}", v)  # ${DDL_AUTO:update}: the default applies when unset
    v = m.group(1).strip() if m else v
    if v in _SCHEMA_VALUES:
        kind = "SchemaAutoUpdate"
    elif v in _NO_SCHEMA_VALUES:
        kind = "SchemaOwner"
    else:
        return
    line, col = out.pos.lc(off)
    out.construct({"kind": kind, "orm": "Hibernate", "value": v, "setting": key}, line, col, key)


def _jpa_config(path: str, text: str, out: Out):
    """``hibernate.hbm2ddl.auto`` / ``spring.jpa.hibernate.ddl-auto``: Hibernate writes the schema, or not."""
    lower = path.lower()
    if lower.endswith(".properties"):
        for m in re.finditer(r"^[ \t]*([\w.\-\[\]]+)[ \t]*[=:][ \t]*([^\n#]*)", text, re.M):
            if _SCHEMA_KEYS.search(m.group(1)):
                _setting(out, m.group(1), m.group(2), m.start(1))
    elif lower.endswith((".yml", ".yaml")):
        _yaml_settings(text, out)
    else:  # persistence.xml, hibernate.cfg.xml
        _xml_settings(text, out)


def _yaml_settings(text: str, out: Out):
    import yaml

    try:
        docs = list(yaml.compose_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except Exception:  # noqa: BLE001
        docs = []
    stack = [(d, "") for d in reversed(docs)]
    while stack:
        node, prefix = stack.pop()
        if not isinstance(node, yaml.MappingNode):
            continue
        children = []
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                continue
            key = f"{prefix}.{k.value}" if prefix else str(k.value)
            if isinstance(v, yaml.ScalarNode):
                if _SCHEMA_KEYS.search(key):
                    _setting(out, key, v.value, k.start_mark.index)
            else:
                children.append((v, key))
        stack.extend(reversed(children))


def _xml_settings(text: str, out: Out):
    """``<property name="…" value="…"/>`` or ``<property name="…">…</property>``, read with defusedxml's SAX
    parser: entity declarations refused (no expansion), nothing external fetched; a file that stops parsing
    gives what came before."""
    import io
    import xml.sax.handler

    from defusedxml.expatreader import DefusedExpatParser

    class Handler(xml.sax.handler.ContentHandler):
        def __init__(self):
            super().__init__()
            self.locator = None
            self.open = None  # (name, offset, value or None, text parts) of the <property> being read

        def setDocumentLocator(self, locator):
            self.locator = locator

        def startElement(self, name, attrs):
            if name.rsplit(":", 1)[-1] != "property" or not _SCHEMA_KEYS.search(attrs.get("name", "")):
                return
            off = out.pos.offset(self.locator.getLineNumber(), self.locator.getColumnNumber() + 1)
            self.open = (attrs.get("name"), off, attrs.get("value"), [])

        def characters(self, content):
            if self.open is not None:
                self.open[3].append(content)

        def endElement(self, name):
            if self.open is not None and name.rsplit(":", 1)[-1] == "property":
                key, off, value, parts = self.open
                self.open = None
                _setting(out, key, value if value is not None else "".join(parts), off)

    # every hibernate.cfg.xml names an external DTD in its DOCTYPE: with external entities off it is skipped, not
    # fetched, so the file is read instead of refused (forbid_external would refuse it)
    parser = DefusedExpatParser(forbid_external=False)
    parser.setFeature(xml.sax.handler.feature_external_ges, False)
    parser.setFeature(xml.sax.handler.feature_external_pes, False)
    parser.setContentHandler(Handler())
    try:
        parser.parse(io.StringIO(text))
    except Exception:  # noqa: BLE001 - malformed or forbidden XML: the settings read before it stand
        return


NAME = "jpa"


def _is_config(name: str, ext: str) -> bool:
    return ext == ".properties" or (ext in (".yml", ".yaml") and name.startswith(("application", "bootstrap"))) or \
        name in ("persistence.xml", "hibernate.cfg.xml")


def detect(path: str, text: str) -> bool:
    name, ext, _ = file_parts(path)
    if ext in (".java", ".kt"):
        return "@Entity" in text or "LockModeType" in text or "LockMode." in text
    if _is_config(name, ext):
        return bool(re.search(r"hbm2ddl\.auto|ddl-auto|ddl_auto|schema-generation\.database\.action", text))
    return False


def emit(path: str, text: str, out: Out):
    name, ext, _ = file_parts(path)
    if ext in (".java", ".kt"):
        _Jpa(text, "kotlin" if ext == ".kt" else "java", out).run()
    else:
        _jpa_config(path, text, out)


def extract(path: str, text: str) -> list:
    """This framework's records for one file (whatever detect() says)."""
    from dsql_audit.sources import frameworks

    return frameworks.run(sys.modules[__name__], path, text)
