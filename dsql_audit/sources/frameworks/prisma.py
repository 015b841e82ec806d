"""Prisma schemas: the SQL `prisma migrate` generates for models, enums and relations."""

from __future__ import annotations

import re
import sys

from dsql_audit.sources.frameworks._clike import (
    mask_comments,
    match_bracket,
    split_top,
    str_end,
    unquote,
)
from dsql_audit.sources.frameworks.synth import (
    Layout,
    Out,
    enum_sql,
    file_parts,
    index_sql,
    lit,
    qn,
    qq,
    valid_expr,
    valid_type,
)

_PRISMA_BLOCK = re.compile(r"^[ \t]*(model|enum|datasource|generator|view|type)[ \t]+(\w+)[ \t]*\{", re.M)
_PRISMA_FIELD = re.compile(r"[ \t]*(?P<name>\w+)[ \t]+(?P<type>Unsupported\(\s*\"[^\"]*\"\s*\)|\w+(?:\.\w+)?)"
                           r"(?P<mod>\[\]|\?)?")
_PRISMA_ATTR = re.compile(r"@(?P<name>@?[\w.]+)")
_PRISMA_SCALAR = {"String": "TEXT", "Boolean": "BOOLEAN", "Int": "INTEGER", "BigInt": "BIGINT",
                  "Float": "DOUBLE PRECISION", "Decimal": "DECIMAL(65,30)", "DateTime": "TIMESTAMP(3)",
                  "Json": "JSONB", "Bytes": "BYTEA"}
_PRISMA_NATIVE = {"text": "TEXT", "varchar": "VARCHAR", "char": "CHAR", "uuid": "UUID", "inet": "INET",
                  "citext": "CITEXT", "xml": "XML", "money": "MONEY", "smallint": "SMALLINT", "integer": "INTEGER",
                  "bigint": "BIGINT", "oid": "OID", "real": "REAL", "doubleprecision": "DOUBLE PRECISION",
                  "decimal": "DECIMAL", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ", "date": "DATE",
                  "time": "TIME", "timetz": "TIMETZ", "bit": "BIT", "varbit": "VARBIT", "boolean": "BOOLEAN",
                  "json": "JSON", "jsonb": "JSONB", "bytea": "BYTEA"}
_PRISMA_ACTIONS = {"Cascade": "CASCADE", "SetNull": "SET NULL", "Restrict": "RESTRICT", "NoAction": "NO ACTION",
                   "SetDefault": "SET DEFAULT"}


def _prisma_attrs(s: str, start: int, end: int) -> list[tuple[str, str | None, int]]:
    """Attributes (``@id``, ``@default(…)``, ``@@index(…)``) in s[start:end]: (name, args or None, offset)."""
    out = []
    i = start
    while i < end:
        c = s[i]
        if c == '"':
            i = str_end(s, i)
            continue
        if c == "@":
            m = _PRISMA_ATTR.match(s, i)
            if not m:
                i += 1
                continue
            name, j = m.group("name"), m.end()
            args = None
            k = j
            while k < end and s[k] in " \t":
                k += 1
            if k < end and s[k] == "(":
                close = min(match_bracket(s, k), end)
                args = s[k + 1:close]
                j = close + 1
            out.append((name, args, i))
            i = j
            continue
        i += 1
    return out


def _prisma_args(args: str | None) -> tuple[list[str], dict[str, str]]:
    positional, named = [], {}
    for _, piece in split_top(args or ""):
        m = re.match(r"\s*(\w+)\s*:(?!:)(.*)", piece, re.S)
        if m:
            named[m.group(1)] = m.group(2).strip()
        elif piece.strip():
            positional.append(piece.strip())
    return positional, named


def _prisma_list(v: str | None) -> list[tuple[str, str]]:
    """``[a, b(sort: Desc)]`` → [(name, options)]."""
    if not v:
        return []
    v = v.strip()
    if v.startswith("[") and v.endswith("]"):
        v = v[1:-1]
    out = []
    for _, piece in split_top(v):
        m = re.match(r"\s*(\w+)\s*(?:\((.*)\))?\s*$", piece, re.S)
        if m:
            out.append((m.group(1), m.group(2) or ""))
    return out


def _prisma(path: str, text: str, out: Out):
    s = mask_comments(text, quotes='"')
    pos = out.pos
    blocks = []
    for m in _PRISMA_BLOCK.finditer(s):
        open_ = s.index("{", m.start(2))
        close = match_bracket(s, open_)
        blocks.append((m.group(1), m.group(2), m.start(1), open_ + 1, min(close, len(s))))

    provider, relation_mode, has_datasource = None, "foreignKeys", False
    for kind, name, start, body, end in blocks:
        if kind != "datasource":
            continue
        has_datasource = True
        block = s[body:end]
        p = re.search(r"^\s*provider\s*=\s*\"([^\"]*)\"", block, re.M)
        provider = p.group(1).lower() if p else provider
        r = re.search(r"^\s*(?:relationMode|referentialIntegrity)\s*=\s*\"([^\"]*)\"", block, re.M)
        if r:
            relation_mode = r.group(1)
        ext = re.search(r"^\s*extensions\s*=\s*\[", block, re.M)
        if ext:  # previewFeatures = ["postgresqlExtensions"]: Prisma migrate creates these
            lb = body + ext.end() - 1
            for off, piece in split_top(s[lb + 1:match_bracket(s, lb)]):
                em = re.match(r"\s*([\w-]+)", piece)
                if em:
                    line, col = pos.lc(lb + 1 + off + em.start(1))
                    ename = em.group(1)
                    mm = re.search(r"map\s*:\s*\"([^\"]+)\"", piece)
                    out.sql(f'CREATE EXTENSION IF NOT EXISTS {qq(mm.group(1) if mm else ename)}', line, col,
                            "Prisma datasource extensions")
    if provider in ("mongodb",):
        return
    postgres = provider in (None, "postgresql", "postgres", "cockroachdb") if has_datasource else True
    postgres = postgres and provider not in ("mysql", "sqlite", "sqlserver")
    foreign_keys = relation_mode != "prisma"

    enums = {name for kind, name, *_ in blocks if kind == "enum"}
    models: dict[str, dict] = {}
    for kind, name, start, body, end in blocks:
        if kind != "model":
            continue
        info = {"table": name, "schema": None, "fields": {}, "start": start, "body": body, "end": end}
        for aname, args, off in _prisma_attrs(s, body, end):
            if aname in ("@map", "@schema") and s[off:off + 2] == "@@":
                pos_args, named = _prisma_args(args)
                value = unquote(named.get("name") or (pos_args[0] if pos_args else ""))
                info["table" if aname == "@map" else "schema"] = value or info["table"]
        models[name] = info
    for name, info in models.items():  # fields: name → (column, type, modifier, line offsets)
        body, end = info["body"], info["end"]
        for lm in re.finditer(r"[^\n]*", s[body:end]):
            line_start = body + lm.start()
            row = lm.group(0)
            if not row.strip() or row.strip().startswith("@"):
                continue
            fm = _PRISMA_FIELD.match(row)
            if not fm:
                continue
            rest_start = line_start + fm.end()
            attrs = _prisma_attrs(s, rest_start, line_start + len(row))
            column = fm.group("name")
            for aname, args, _ in attrs:
                if aname == "map":
                    pa, na = _prisma_args(args)
                    column = unquote(na.get("name") or (pa[0] if pa else column)) or column
            info["fields"][fm.group("name")] = {
                "column": column, "type": fm.group("type"), "mod": fm.group("mod"), "attrs": attrs,
                "name_off": line_start + fm.start("name"), "type_off": line_start + fm.start("type")}

    def table_of(model: str) -> str:
        info = models[model]
        return qn(info["table"], info["schema"], qq)

    def cols_of(model: str, names: list[str]) -> list[str]:
        fields = models[model]["fields"]
        return [fields[n]["column"] if n in fields else n for n in names]

    m2m: dict[tuple, list] = {}
    for kind, name, start, body, end in blocks:
        sline, scol = pos.lc(start)
        if kind == "enum" and postgres:
            block = list(s[body:end])
            attrs = _prisma_attrs(s, body, end)
            for aname, args, off in attrs:  # values are the words left once attributes are blanked
                stop = off + len(aname) + 1 + (len(args) + 2 if args is not None else 0)
                stop = s.find(")", off) + 1 if args is not None else stop
                for k in range(off - body, min(stop, end) - body):
                    block[k] = " "
            values = re.findall(r"[A-Za-z_]\w*", "".join(block))
            mapped = name
            for aname, args, off in attrs:
                if aname == "@map":
                    pa, na = _prisma_args(args)
                    mapped = unquote(na.get("name") or (pa[0] if pa else name)) or name
            if values:
                out.sql(enum_sql(mapped, values, qq), sline, scol, "Prisma enum")
            continue
        if kind != "model":
            continue
        info = models[name]
        table = table_of(name)
        layout = Layout(sline, scol)
        layout.put(f"CREATE TABLE {table} (")
        n_cols = 0
        later: list[tuple[int, callable]] = []
        for fname, f in info["fields"].items():
            ftype, mod, attrs = f["type"], f["mod"], f["attrs"]
            fline, fcol = pos.lc(f["name_off"])
            type_col = pos.lc(f["type_off"])[1]
            amap = {a: (args, off) for a, args, off in attrs}
            if ftype in models:  # a relation field
                if "relation" in amap:
                    args, off = amap["relation"]
                    _, named = _prisma_args(args)
                    fields = [n for n, _ in _prisma_list(named.get("fields"))]
                    refs = [n for n, _ in _prisma_list(named.get("references"))]
                    if fields and foreign_keys:
                        action = named.get("onDelete")
                        optional = mod == "?" or any(
                            info["fields"].get(x, {}).get("mod") == "?" for x in fields)
                        on_delete = _PRISMA_ACTIONS.get(action or "", action) if action else (
                            "SET NULL" if optional else "RESTRICT")
                        rline, rcol = pos.lc(off)
                        obj = f"{info['table']}.{','.join(cols_of(name, fields))}"
                        target = f"{models[ftype]['table']}.{','.join(cols_of(ftype, refs))}" if refs else \
                            models[ftype]["table"]
                        later.append((off, lambda rline=rline, rcol=rcol, obj=obj, target=target, od=on_delete:
                                      out.fk(rline, rcol, "Prisma @relation", "Prisma", obj, target, od, True)))
                elif mod == "[]":
                    key = tuple(sorted((name, ftype)))
                    m2m.setdefault(key, []).append((name, fname, f["name_off"]))
                continue
            if ftype.startswith("Unsupported"):
                sql_type = unquote(ftype[ftype.index("(") + 1:ftype.rindex(")")])
                type_at = f["type_off"]
            elif ftype in _PRISMA_SCALAR:
                sql_type, type_at = _PRISMA_SCALAR[ftype], f["type_off"]
            elif ftype in enums:
                if not postgres:
                    continue
                sql_type, type_at = qq(ftype), f["type_off"]
            else:
                continue
            for aname, args, off in attrs:
                if aname.startswith("db."):
                    native = _PRISMA_NATIVE.get(aname[3:].lower())
                    if native:
                        sql_type = native + (f"({args.strip()})" if args and args.strip() else "")
                        type_at = off
            if mod == "[]":
                sql_type += "[]"
            default = None
            if "default" in amap:
                dargs, doff = amap["default"]
                pa, _ = _prisma_args(dargs)
                d = pa[0] if pa else ""
                if d.startswith("autoincrement"):
                    serial = {"INTEGER": "SERIAL", "BIGINT": "BIGSERIAL", "SMALLINT": "SMALLSERIAL"}.get(sql_type)
                    if serial:
                        sql_type, type_at = serial, doff
                elif d.startswith("dbgenerated"):
                    inner = re.match(r"dbgenerated\(\s*\"((?:[^\"\\]|\\.)*)\"\s*\)", d)
                    if inner and valid_expr(inner.group(1)):
                        default = inner.group(1)
                elif d.startswith("now"):
                    default = "CURRENT_TIMESTAMP"
                elif re.fullmatch(r"-?\d+(\.\d+)?|true|false", d):
                    default = d
                elif d.startswith('"'):
                    default = lit(unquote(d))
                elif ftype in enums and re.fullmatch(r"\w+", d):
                    default = lit(d)
            if not valid_type(sql_type):
                continue
            defn = sql_type
            if mod not in ("?", "[]"):
                defn += " NOT NULL"
            if default is not None:
                defn += f" DEFAULT {default}"
            if "id" in amap:
                defn += " PRIMARY KEY"
            if n_cols:
                layout.comma()
            tline, tcol = pos.lc(type_at)
            if tline != fline:
                tcol = None
            layout.column(qq(f["column"]), defn, fline, fcol, tcol or type_col)
            n_cols += 1
            if "unique" in amap:
                uargs, uoff = amap["unique"]
                _, named = _prisma_args(uargs)
                iname = unquote(named.get("map", "")) or f"{info['table']}_{f['column']}_key"
                uline, ucol = pos.lc(uoff)
                later.append((uoff, lambda uline=uline, ucol=ucol, iname=iname, col=f["column"]:
                              out.sql(index_sql(iname, table, [qq(col)], unique=True, quote=qq), uline, ucol,
                                      "Prisma @unique")))
        for aname, args, off in _prisma_attrs(s, info["body"], info["end"]):
            if not aname.startswith("@"):
                continue
            aname = aname[1:]
            if aname not in ("index", "unique", "id"):
                continue
            pa, named = _prisma_args(args)
            cols = _prisma_list(named.get("fields") or (pa[0] if pa else ""))
            if not cols:
                continue
            names = cols_of(name, [c for c, _ in cols])
            aline, acol = pos.lc(off)
            if aname == "id":
                if n_cols:
                    layout.comma()
                layout.put("PRIMARY KEY (" + ", ".join(qq(c) for c in names) + ")", aline, acol)
                n_cols += 1
                continue
            keys = []
            for (c, opts), dbname in zip(cols, names):
                k = qq(dbname)
                if re.search(r"sort\s*:\s*Desc", opts):
                    k += " DESC"
                keys.append(k)
            suffix = "key" if aname == "unique" else "idx"
            iname = unquote(named.get("map", "")) or f"{info['table']}_{'_'.join(names)}_{suffix}"
            using = named.get("type")
            later.append((off, lambda aline=aline, acol=acol, iname=iname, keys=keys, u=aname == "unique",
                          using=using: out.sql(index_sql(iname, table, keys, unique=u, using=using, quote=qq),
                                               aline, acol, f"Prisma @@{'unique' if u else 'index'}")))
        layout.put(")")
        if n_cols:
            out.sql(layout.text(), sline, scol, "Prisma model")
        for _, emit in sorted(later, key=lambda x: x[0]):
            emit()
    # implicit many-to-many relations: Prisma creates a join table "_AToB" ("A", "B") with keys to both sides
    for (a, b), sides in sorted(m2m.items()):
        if len(sides) < 2 or a not in models or b not in models:
            continue
        _, _, off = min(sides, key=lambda x: x[2])
        line, col = pos.lc(off)
        jt = f"_{a}To{b}"
        ida = next((f for f in models[a]["fields"].values() if any(x[0] == "id" for x in f["attrs"])), None)
        idb = next((f for f in models[b]["fields"].values() if any(x[0] == "id" for x in f["attrs"])), None)
        ta = _PRISMA_SCALAR.get(ida["type"], "TEXT") if ida else "TEXT"
        tb = _PRISMA_SCALAR.get(idb["type"], "TEXT") if idb else "TEXT"
        out.sql(f'CREATE TABLE {qq(jt)} ("A" {ta} NOT NULL, "B" {tb} NOT NULL, '
                f'CONSTRAINT {qq(jt + "_AB_pkey")} PRIMARY KEY ("A", "B"))', line, col, "Prisma implicit m2m")
        out.sql(index_sql(f"{jt}_B_index", qq(jt), ['"B"'], quote=qq), line, col, "Prisma implicit m2m")
        if foreign_keys:
            out.fk(line, col, "Prisma implicit m2m", "Prisma", f"{jt}.A",
                   f"{models[a]['table']}.{ida['column'] if ida else 'id'}", "CASCADE", True)
            out.fk(line, col, "Prisma implicit m2m", "Prisma", f"{jt}.B",
                   f"{models[b]['table']}.{idb['column'] if idb else 'id'}", "CASCADE", True)




NAME = "prisma"


def detect(path: str, text: str) -> bool:
    return file_parts(path)[1] == ".prisma"


def emit(path: str, text: str, out: Out):
    _prisma(path, text, out)


def extract(path: str, text: str) -> list:
    """This framework's records for one file (whatever detect() says)."""
    from dsql_audit.sources import frameworks

    return frameworks.run(sys.modules[__name__], path, text)
