"""JPA / Hibernate: entities (Java and Kotlin) and the settings that make Hibernate write the schema."""

from __future__ import annotations

import re
import sys

from dsql_audit.sources.frameworks._clike import match_bracket, split_top
from dsql_audit.sources.frameworks.js import Js
from dsql_audit.sources.frameworks.synth import (
    Layout,
    Out,
    file_parts,
    index_sql,
    qi,
    snake,
    valid_type,
)

_ANN = re.compile(r"@(?:(?:field|get|set|param|property|setparam):)?(?P<name>[A-Za-z_][\w.]*)")
_JPA_ID_TYPES = {"long": "bigint", "Long": "bigint", "BigInteger": "bigint", "int": "integer", "Integer": "integer",
                 "Int": "integer", "short": "smallint", "Short": "smallint", "UUID": "uuid",
                 "String": "character varying(255)"}
_JPA_MODIFIERS = r"(?:(?:public|protected|private|internal|static|final|abstract|open|data|sealed|transient|" \
                 r"volatile|override|lateinit|const)\s+)*"


class _Ann:
    __slots__ = ("name", "args", "start", "end", "pos", "named")

    def __init__(self, name, args, start, end):
        self.name, self.args, self.start, self.end = name.rsplit(".", 1)[-1], args, start, end
        self.pos, self.named = [], {}
        for _, piece in split_top(args or ""):
            m = re.match(r"\s*(\w+)\s*=(?!=)\s*(.*)$", piece, re.S)
            if m:
                self.named[m.group(1)] = m.group(2).strip()
            elif piece.strip():
                self.pos.append(piece.strip())

    def get(self, key, positional=False) -> str | None:
        v = self.named.get(key)
        if v is None and positional and self.pos:
            v = self.pos[0]
        return v

    def string(self, key, positional=False) -> str | None:
        v = self.get(key, positional)
        if v is None:
            return None
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', v)
        return "".join(parts) if parts else None


def _anns(js: Js) -> list[_Ann]:
    s, out = js.s, []
    i = 0
    while True:
        m = _ANN.search(s, i)
        if not m:
            return out
        if m.start() > 0 and (s[m.start() - 1].isalnum() or s[m.start() - 1] in "\"'"):
            i = m.end()
            continue
        j = js.ws(m.end())
        args, end = None, m.end()
        if j < js.n and s[j] == "(":
            close = match_bracket(s, j)
            args, end = s[j + 1:close], close + 1
        out.append(_Ann(m.group("name"), args, m.start(), end))
        i = end


def _nested_anns(text: str, base: int, name: str) -> list[_Ann]:
    """``@Index(…)`` (Java) or ``Index(…)`` (Kotlin) inside an annotation argument, with file offsets."""
    out = []
    for m in re.finditer(r"@?\b" + name + r"\s*\(", text):
        open_ = m.end() - 1
        close = match_bracket(text, open_)
        out.append(_Ann(name, text[open_ + 1:close], base + m.start(), base + close + 1))
    return out


class _Jpa:
    def __init__(self, text: str, out: Out):
        self.js = Js(text)
        self.out, self.pos = out, out.pos
        self.anns = _anns(self.js)

    def lc(self, off):
        return self.pos.lc(off)

    def run_before(self, p: int) -> list[_Ann]:
        """The annotations written just before offset ``p`` (only whitespace and modifiers between)."""
        s = self.js.s
        run, cur = [], p
        for a in sorted((a for a in self.anns if a.end <= p), key=lambda a: a.end, reverse=True):
            gap = s[a.end:cur]
            if re.fullmatch(r"\s*" + _JPA_MODIFIERS + r"\s*", gap):
                run.append(a)
                cur = a.start
            else:
                break
        return list(reversed(run))

    def run(self):
        s = self.js.s
        entities = {}
        for m in re.finditer(r"\bclass\s+([A-Za-z_]\w*)", s):
            run = self.run_before(m.start())
            names = {a.name for a in run}
            if "Entity" not in names:
                continue
            cls = m.group(1)
            ent = next(a for a in run if a.name == "Entity")
            table_ann = next((a for a in run if a.name == "Table"), None)
            table = (table_ann.string("name") if table_ann else None) or ent.string("name") or cls
            entities[cls] = {"table": snake(table) if not (table_ann and table_ann.string("name")) else table,
                             "entity": ent.string("name") or cls, "class_off": m.start(), "run": run,
                             "name_end": m.end()}
        for cls, e in entities.items():
            try:
                self.entity(cls, e, entities)
            except Exception:  # noqa: BLE001
                continue
        self.locks(entities)

    def class_span(self, name_end: int) -> tuple[int, int]:
        """From the class name to the end of its body (a Kotlin primary constructor included)."""
        s, js = self.js.s, self.js
        j = js.ws(name_end)
        end = j
        if j < js.n and s[j] == "(":
            end = match_bracket(s, j) + 1
            j = js.ws(end)
        b = s.find("{", j)
        nxt = re.compile(r"\bclass\s+\w").search(s, j)
        if b >= 0 and (nxt is None or b < nxt.start()):
            end = match_bracket(s, b) + 1
        return name_end, end

    def fields(self, start: int, end: int):
        """(annotations, field name, type name, declaration offset) in a class span."""
        s = self.js.s
        java = re.compile(r"\s*" + _JPA_MODIFIERS + r"([\w.]+(?:<[^;=(){}]*>)?(?:\[\])?)\s+([A-Za-z_]\w*)\s*[;=]")
        kotlin = re.compile(r"\s*" + _JPA_MODIFIERS + r"(?:val|var)\s+([A-Za-z_]\w*)\s*:\s*([\w.]+(?:<[^=,()]*>)?)")
        done = set()
        anns = self.anns  # in source order
        for idx, a in enumerate(anns):
            if not (start <= a.start < end) or a.start in done:
                continue
            run = [a]
            cur = a.end
            for b in anns[idx + 1:]:
                if b.start < cur:
                    continue
                if b.start >= end or s[cur:b.start].strip():
                    break
                run.append(b)
                cur = b.end
            for b in run:
                done.add(b.start)
            mj = java.match(s, cur)
            mk = kotlin.match(s, cur)
            if mk:
                yield run, mk.group(1), mk.group(2).rstrip("?"), cur
            elif mj:
                yield run, mj.group(2), mj.group(1), cur

    def entity(self, cls: str, e: dict, entities: dict):
        s = self.js.s
        table = e["table"]
        start, end = self.class_span(e["name_end"])
        line, col = self.lc(e["class_off"])
        layout = Layout(line, col)
        layout.put(f"CREATE TABLE {qi(table)} (")
        ncols, interesting, after = 0, False, []
        generators = {}
        for a in [*e["run"], *self.anns]:
            if a.name == "SequenceGenerator" and (a in e["run"] or start <= a.start < end):
                generators[a.string("name") or ""] = a
        for run, field, ftype, decl in self.fields(start, end):
            names = {a.name: a for a in run}
            column_ann = names.get("Column")
            column = (column_ann.string("name") if column_ann else None) or snake(field)
            base_type = ftype.split("<")[0].rsplit(".", 1)[-1]
            if "Id" in names:
                sql_type = _JPA_ID_TYPES.get(base_type, "bigint")
                gen = names.get("GeneratedValue")
                strategy = (gen.get("strategy") or "AUTO").rsplit(".", 1)[-1] if gen else None
                if column_ann and column_ann.string("columnDefinition"):
                    sql_type = column_ann.string("columnDefinition")
                if ncols:
                    layout.comma()
                fline, fcol = self.lc(decl)
                if gen and strategy == "IDENTITY" and sql_type in ("bigint", "integer", "smallint"):
                    gline, gcol = self.lc(gen.start)
                    layout.column(f"{qi(column)} {sql_type}", "GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                                  gline, None, gcol)
                    interesting = True
                else:
                    layout.column(qi(column), f"{sql_type} PRIMARY KEY", fline, None, None)
                ncols += 1
                if gen and strategy in ("SEQUENCE", "AUTO") and sql_type in ("bigint", "integer", "smallint"):
                    g = generators.get(gen.string("generator") or "") or generators.get("") if generators else None
                    # Hibernate 6 without a generator: "<EntityName>_SEQ", lower-cased by Spring's naming
                    seq = (g.string("sequenceName") if g else None) or \
                        (g.string("name") if g and g.string("name") else f"{snake(e['entity'])}_seq")
                    alloc = (g.get("allocationSize") if g else None) or "50"
                    initial = (g.get("initialValue") if g else None) or "1"
                    where = g if g is not None else gen
                    sline, scol = self.lc(where.start)
                    if re.fullmatch(r"-?\d+", alloc.strip()) and re.fullmatch(r"-?\d+", initial.strip()):
                        after.append(lambda seq=seq, alloc=alloc, initial=initial, sline=sline, scol=scol:
                                     self.out.sql(f"CREATE SEQUENCE {qi(seq)} START WITH {initial.strip()} "
                                                  f"INCREMENT BY {alloc.strip()}", sline, scol,
                                                  "JPA @GeneratedValue SEQUENCE"))
                continue
            rel = names.get("ManyToOne") or names.get("OneToOne")
            if rel is not None and not rel.get("mappedBy"):
                jc = names.get("JoinColumn")
                if jc and re.search(r"NO_CONSTRAINT", jc.args or ""):
                    continue
                target_cls = base_type
                target = entities.get(target_cls, {}).get("table") or snake(target_cls)
                jcol = (jc.string("name") if jc else None) or f"{snake(field)}_id"
                ref = (jc.string("referencedColumnName") if jc else None) or "id"
                od = names.get("OnDelete")
                on_delete = od.get("action", True).rsplit(".", 1)[-1] if od and od.get("action", True) else None
                rline, rcol = self.lc(rel.start)
                after.append(lambda rline=rline, rcol=rcol, obj=f"{table}.{jcol}", t=f"{target}.{ref}",
                             od=on_delete, origin=f"JPA @{rel.name}":
                             self.out.fk(rline, rcol, origin, "JPA", obj, t, od, True))
                continue
            mtm = names.get("ManyToMany")
            if mtm is not None and not mtm.get("mappedBy"):
                jt = names.get("JoinTable")
                target_cls = re.sub(r".*<\s*([\w.]+)\s*>.*", r"\1", ftype).rsplit(".", 1)[-1]
                target = entities.get(target_cls, {}).get("table") or snake(target_cls)
                jt_name = (jt.string("name") if jt else None) or f"{table}_{snake(field)}"
                join = inverse = None
                if jt:
                    for key in ("joinColumns", "inverseJoinColumns"):
                        v = jt.get(key)
                        if v:
                            inner = _nested_anns(v, 0, "JoinColumn")
                            name = inner[0].string("name") if inner else None
                            if key == "joinColumns":
                                join = name
                            else:
                                inverse = name
                join = join or f"{snake(cls)}_id"
                inverse = inverse or f"{snake(field)}_id"
                mline, mcol = self.lc(mtm.start)
                for obj, tgt in ((f"{jt_name}.{join}", f"{table}.id"), (f"{jt_name}.{inverse}", f"{target}.id")):
                    after.append(lambda obj=obj, tgt=tgt, mline=mline, mcol=mcol:
                                 self.out.fk(mline, mcol, "JPA @ManyToMany", "JPA", obj, tgt, None, True))
                continue
            if column_ann:
                definition = column_ann.string("columnDefinition")
                if definition and valid_type(definition):
                    if ncols:
                        layout.comma()
                    cd = column_ann.named.get("columnDefinition", "")
                    q = (column_ann.args or "").find(cd)
                    args_start = s.find("(", column_ann.start) + 1
                    d_off = args_start + q + cd.find('"') + 1 if q >= 0 and '"' in cd else column_ann.start
                    dline, dcol = self.lc(d_off)
                    layout.column(qi(column), definition, dline, None, dcol)
                    ncols += 1
                    interesting = True
                if re.search(r"\bunique\s*=\s*true\b", column_ann.args or ""):
                    uline, ucol = self.lc(column_ann.start)
                    after.append(lambda uline=uline, ucol=ucol, c=column:
                                 self.out.sql(f"ALTER TABLE {qi(table)} ADD CONSTRAINT {qi(f'uk_{table}_{c}')} "
                                              f"UNIQUE ({qi(c)})", uline, ucol, "JPA @Column(unique = true)"))
        layout.put(")")
        if interesting and ncols:
            self.out.sql(layout.text(), line, col, "JPA @Entity", None)
        table_ann = next((a for a in e["run"] if a.name == "Table"), None)
        if table_ann is not None and table_ann.args:
            base = s.find("(", table_ann.start) + 1
            for ix in _nested_anns(table_ann.args, base, "Index"):
                cols = [c.strip() for c in (ix.string("columnList") or "").split(",") if c.strip()]
                keys = []
                for c in cols:
                    m = re.fullmatch(r"(\w+)(?:\s+(asc|desc))?", c, re.I)
                    if m:
                        keys.append(qi(m.group(1)) + (f" {m.group(2).upper()}" if m.group(2) else ""))
                if keys:
                    bare = "_".join(c.split()[0] for c in cols)
                    name = ix.string("name") or f"idx_{table}_{bare}"
                    iline, icol = self.lc(ix.start)
                    unique = re.search(r"\bunique\s*=\s*true\b", ix.args or "") is not None
                    self.out.sql(index_sql(name, qi(table), keys, unique=unique), iline, icol, "JPA @Index")
            for uc in _nested_anns(table_ann.args, base, "UniqueConstraint"):
                cols = re.findall(r'"(\w+)"', uc.get("columnNames") or "")
                if cols:
                    name = uc.string("name") or f"uk_{table}_{'_'.join(cols)}"
                    uline, ucol = self.lc(uc.start)
                    self.out.sql(f"ALTER TABLE {qi(table)} ADD CONSTRAINT {qi(name)} UNIQUE ("
                                 + ", ".join(qi(c) for c in cols) + ")", uline, ucol, "JPA @UniqueConstraint")
        for emit in after:
            emit()

    def locks(self, entities: dict):
        """``@Lock(LockModeType.PESSIMISTIC_*)``, ``em.find(…, LockModeType…)``, ``setLockMode(…)``."""
        s = self.js.s
        repo = re.search(r"\b(?:Jpa|Crud|PagingAndSorting|ListCrud|Reactive)?Repository\s*<\s*([\w.]+)", s)
        default = repo.group(1).rsplit(".", 1)[-1] if repo else (next(iter(entities)) if len(entities) == 1 else None)
        for m in re.finditer(r"\bLockMode(?:Type)?\s*\.\s*(PESSIMISTIC_READ|PESSIMISTIC_WRITE|"
                             r"PESSIMISTIC_FORCE_INCREMENT|UPGRADE_NOWAIT|UPGRADE_SKIPLOCKED)\b", s):
            line_start = s.rfind("\n", 0, m.start()) + 1
            if re.match(r"\s*import\b", s[line_start:m.start()]):
                continue
            lock = next((a for a in self.anns if a.name == "Lock" and a.start <= m.start() < a.end), None)
            stmt_start = max(s.rfind(";", 0, m.start()), s.rfind("{", 0, m.start()), s.rfind("}", 0, m.start()))
            stmt_end = s.find(";", m.end())
            stmt = s[stmt_start + 1:stmt_end if stmt_end >= 0 else len(s)]
            cls = None
            if lock is None:
                cm = re.search(r"\b([A-Z]\w*)(?:\.class|::class)", stmt)
                cls = cm.group(1) if cm else None
            cls = cls or default
            if cls is None:
                continue
            table = entities.get(cls, {}).get("table") or snake(cls)
            mode = m.group(1)
            clause = "FOR SHARE" if mode == "PESSIMISTIC_READ" else "FOR UPDATE"
            if mode == "UPGRADE_NOWAIT":
                clause += " NOWAIT"
            elif mode == "UPGRADE_SKIPLOCKED":
                clause += " SKIP LOCKED"
            elif lock is not None:
                hints = " ".join(a.args or "" for a in self.run_around(lock) if a.name == "QueryHints")
                hm = re.search(r"lock\.timeout\"\s*,\s*value\s*=\s*\"(-?\d+)\"", hints)
                if hm and hm.group(1) == "0":
                    clause += " NOWAIT"
                elif hm and hm.group(1) == "-2":
                    clause += " SKIP LOCKED"
            where = lock if lock is not None else None
            line, col = self.lc(where.start if where is not None else m.start())
            self.out.sql(f"SELECT * FROM {qi(table)} WHERE id = $1 {clause}", line, col,
                         f"JPA {'@Lock' if lock is not None else 'LockModeType'}.{mode}", None, dynamic=True)

    def run_around(self, a: _Ann) -> list[_Ann]:
        """The annotations of the declaration ``a`` belongs to."""
        s = self.js.s
        run = self.run_before(a.end)
        cur = a.end
        for b in self.anns:
            if b.start < cur:
                continue
            if s[cur:b.start].strip():
                break
            run.append(b)
            cur = b.end
        return run


def _jpa(path: str, text: str, out: Out):
    _Jpa(text, out).run()


_SCHEMA_KEYS = re.compile(r"(?:^|\.)(?:hbm2ddl\.auto|ddl-auto|ddl_auto|ddlAuto|"
                          r"schema-generation\.database\.action)$", re.I)
_SCHEMA_VALUES = {"update", "create", "create-drop", "create-only", "drop-and-create", "drop", "create_drop",
                  "create_only", "drop_and_create"}


def _jpa_config(path: str, text: str, out: Out):
    """``hibernate.hbm2ddl.auto`` / ``spring.jpa.hibernate.ddl-auto`` that makes Hibernate write the schema."""
    lower = path.lower()

    def note(key, value, off):
        v = str(value).strip().strip("\"'").lower()
        m = re.fullmatch(r"\$\{[^:}]+:([^}]*)\}", v)  # ${DDL_AUTO:update}: the default applies when unset
        v = m.group(1).strip() if m else v
        if v in _SCHEMA_VALUES:
            line, col = out.pos.lc(off)
            out.construct({"kind": "SchemaAutoUpdate", "orm": "Hibernate", "value": v, "setting": key}, line, col,
                          key)

    if lower.endswith(".properties"):
        for m in re.finditer(r"^[ \t]*([\w.\-\[\]]+)[ \t]*[=:][ \t]*([^\n#]*)", text, re.M):
            if _SCHEMA_KEYS.search(m.group(1)):
                note(m.group(1), m.group(2), m.start(1))
    elif lower.endswith((".yml", ".yaml")):
        import yaml

        try:
            docs = list(yaml.compose_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        except Exception:  # noqa: BLE001
            docs = []

        def walk(node, prefix):
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if not isinstance(k, yaml.ScalarNode):
                        continue
                    key = f"{prefix}.{k.value}" if prefix else str(k.value)
                    if isinstance(v, yaml.ScalarNode):
                        if _SCHEMA_KEYS.search(key):
                            note(key, v.value, k.start_mark.index)
                    else:
                        walk(v, key)

        for d in docs:
            walk(d, "")
    else:  # persistence.xml, hibernate.cfg.xml
        for m in re.finditer(r"<property\b[^>]*\bname\s*=\s*[\"']([^\"']+)[\"'][^>]*?(?:\bvalue\s*=\s*[\"']"
                             r"([^\"']*)[\"'][^>]*)?/?>(?:([^<]*)</property>)?", text):
            if _SCHEMA_KEYS.search(m.group(1)):
                note(m.group(1), m.group(2) if m.group(2) is not None else (m.group(3) or ""), m.start())




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
        _jpa(path, text, out)
    else:
        _jpa_config(path, text, out)


def extract(path: str, text: str) -> list:
    """This framework's records for one file (whatever detect() says)."""
    from dsql_audit.sources import frameworks

    return frameworks.run(sys.modules[__name__], path, text)
