"""Column types, sequences and identity columns made DSQL-legal. The mapping itself is data (types.toml)."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from pglast import ast, enums

from dsql_audit.convert.model import CONSTR, PlanItem, names_of, type_key

SERIAL = {"serial": "int4", "serial4": "int4", "bigserial": "int8", "serial8": "int8", "smallserial": "int2",
          "serial2": "int2"}
RANGES = {"int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange", "int4multirange",
          "int8multirange", "nummultirange", "tsmultirange", "tstzmultirange", "datemultirange"}
LEGAL_CACHE = 65536  # DSQL: CACHE 1 or ≥ 65536 (DSQL-REFERENCE §2)


@lru_cache(maxsize=1)
def table() -> dict:
    with open(Path(__file__).with_name("types.toml"), "rb") as fh:
        return tomllib.load(fh)


def type_name(*parts: str, mods: tuple = ()) -> ast.TypeName:
    return ast.TypeName(names=tuple(ast.String(sval=p) for p in parts), typemod=-1,
                        typmods=tuple(ast.A_Const(isnull=False, val=ast.Integer(ival=m)) for m in mods) or None)


def _parse_type(text: str) -> ast.TypeName:
    from pglast import parse_sql

    return parse_sql(f"SELECT NULL::{text}")[0].stmt.targetList[0].val.typeName


def map_type(b, tn, what: str, origin, column=None) -> str:
    """Rewrite ``tn`` in place to a type DSQL stores; "keep", "changed" or "drop" (the column or domain
    cannot be carried)."""
    sch = b.schema
    if tn is None:
        return "keep"
    parts = [p.lower() for p in names_of(tn.names)]
    base = parts[-1] if parts else "?"
    key = type_key(tn.names)
    data = table()
    if base in SERIAL and not tn.arrayBounds and column is not None:
        _serial(b, column, tn, base, what, origin)
        return "changed"
    user = sch.types.get(key)
    if tn.arrayBounds:
        return _apply(b, tn, "arrays", what, origin, f"{'.'.join(parts)}[]")
    if user is not None:
        if user[0] == "enum":
            return "keep"  # a domain of the same name replaces the enum
        if user[0] == "dropped":
            return _apply(b, tn, "other", what, origin, key)
        return _apply(b, tn, "composite" if user[0] == "composite" else "range", what, origin, key)
    if key in sch.domains:
        return "keep"
    if base in RANGES:
        return _apply(b, tn, "range", what, origin, base)
    if base in ("json", "jsonb") and not b.profile.features.get(f"{base}_column"):
        return _apply(b, tn, base, what, origin, base)
    if base in data["supported"] and (len(parts) == 1 or parts[0] == "pg_catalog"):
        _sizes(b, tn, base, what, origin)
        return "keep"
    if base in data["map"]:
        return _apply(b, tn, base, what, origin, base)
    return _apply(b, tn, "other", what, origin, ".".join(parts))


def _apply(b, tn, rule: str, what: str, origin, shown: str) -> str:
    m = table()["map"][rule]
    to = m["to"]
    cast = m.get("cast", "{col}").replace("{col}", what.rsplit(".", 1)[-1])
    if to == "jsonb" and not b.profile.features.get("jsonb_column"):
        to, cast = "text", f"({cast})::text"  # JSON kept as text until the profile stores jsonb
    if to == "drop":
        b.schema.plan.append(PlanItem("column", what, "dropped", f"type {shown}: {m['why']}",
                                      f"stop reading and writing {what}; {m['why']}", origin, 2,
                                      {"from": shown}))
        return "drop"
    new = _parse_type(to)
    tn.names, tn.typmods, tn.arrayBounds, tn.typemod = new.names, new.typmods, None, -1
    b.schema.plan.append(PlanItem("column", what, "changed", f"type {shown} → {to}: {m['why']}",
                                  f"convert existing data with {cast}; adapt code that relies on {shown} semantics",
                                  origin, 0.5, {"from": shown, "to": to, "cast": cast}))
    return "changed"


def _sizes(b, tn, base: str, what: str, origin) -> None:
    mods = [m.val.ival for m in tn.typmods or () if isinstance(m, ast.A_Const) and isinstance(m.val, ast.Integer)]
    if base in ("numeric", "decimal") and mods:
        cap = 1000 if b.profile.features.get("numeric_1000") else 38
        if mods[0] > cap:
            scale = min(mods[1], cap) if len(mods) > 1 else None
            tn.typmods = type_name("numeric", mods=(cap,) + ((scale,) if scale is not None else ())).typmods
            b.schema.note(None, f"{what}: numeric precision {mods[0]} → {cap} (DSQL's cap in this profile)")
    if base in ("bpchar", "char", "character") and mods and mods[0] > 4096 or \
            base == "varchar" and mods and mods[0] > 65535:
        tn.names, tn.typmods = type_name("text").names, None
        b.schema.note(None, f"{what}: {base}({mods[0]}) → text (DSQL caps declared sizes)")


def _serial(b, col, tn, base: str, what: str, origin) -> None:
    why = "the profile has no sequences" if b.no_sequences else "--keys uuid"
    if b.keys == "uuid" and _is_key(col):
        tn.names, tn.typmods = type_name("uuid").names, None
        col.constraints = tuple(col.constraints or ()) + (
            ast.Constraint(contype=CONSTR.CONSTR_DEFAULT, raw_expr=_expr("gen_random_uuid()")),)
        b.uuid_keys.add(what)
        b.schema.note(origin, f"{what}: {base} → uuid DEFAULT gen_random_uuid() ({why})")
        return
    if b.no_sequences:  # a counter that is no key: a plain bigint the application assigns
        tn.names, tn.typmods = type_name("pg_catalog", "int8").names, None
        b.schema.plan.append(PlanItem("column", what, "changed", f"{base} → bigint: the profile has no sequences",
                                      "assign the value in the application (or move to a profile from 2026-02-13)",
                                      origin, 0.5, {"from": base, "to": "bigint"}))
        return
    tn.names, tn.typmods = type_name("pg_catalog", "int8").names, None
    ident = ast.Constraint(contype=CONSTR.CONSTR_IDENTITY, generated_when="d",
                           options=(_cache_option(b.cache),))
    col.constraints = tuple(col.constraints or ()) + (ident,)
    b.schema.note(origin, f"{what}: {base} → bigint GENERATED BY DEFAULT AS IDENTITY (CACHE {b.cache})")


def _is_key(col) -> bool:
    return any(c.contype == CONSTR.CONSTR_PRIMARY for c in col.constraints or ())


def _expr(text: str):
    from pglast import parse_sql

    return parse_sql(f"SELECT {text}")[0].stmt.targetList[0].val


def _cache_option(n: int) -> ast.DefElem:
    return ast.DefElem(defname="cache", arg=ast.Integer(ival=n), defaction=enums.DefElemAction.DEFELEM_UNSPEC)


def sequence_options(b, options, name: str, origin) -> tuple:
    """CACHE made legal (1 or ≥ 65536; convert's --cache), AS smallint/integer dropped (DSQL sequences are
    bigint)."""
    out, cache = [], None
    for o in options or ():
        if o.defname == "as":
            shown = ".".join(names_of(o.arg.names)) if isinstance(o.arg, ast.TypeName) else "?"
            if not shown.endswith("int8"):
                b.schema.note(origin, f"{name}: AS {shown} dropped (DSQL sequences are bigint)")
            continue
        if o.defname == "cache":
            cache = o.arg.ival if isinstance(o.arg, ast.Integer) else None
            continue
        if o.defname in ("maxvalue",) and isinstance(o.arg, ast.Integer) and o.arg.ival in (32767, 2147483647):
            continue  # the AS type's bound, not a choice
        out.append(o)
    # PostgreSQL's default CACHE 1 (pg_dump writes it always) becomes --cache (65536 unless ordering matters)
    want = cache if cache is not None and cache >= LEGAL_CACHE and b.cache != 1 else b.cache
    if cache is not None and want != cache:
        b.schema.note(origin, f"{name}: CACHE {cache} → {want} (DSQL allows 1 or ≥ {LEGAL_CACHE})")
    values = {o.defname: o.arg.ival for o in out if isinstance(getattr(o, "arg", None), ast.Integer)}
    if want > 1 and any(o.defname == "cycle" and getattr(o.arg, "boolval", True) for o in out) \
            and "maxvalue" in values and "minvalue" in values and values["maxvalue"] - values["minvalue"] < want:
        b.schema.plan.append(PlanItem("sequence", name, "changed", f"a CYCLE sequence over "
                                      f"{values['maxvalue'] - values['minvalue'] + 1:,} values with CACHE {want}: "
                                      f"each session's cache spans the whole cycle, so values repeat out of turn",
                                      "use --cache 1 for this sequence (strict order, slower), or stop relying on "
                                      "the cycle", origin, 0.5))
    out.append(_cache_option(want))
    return tuple(out)


def identity(b, col, c, what: str, origin) -> list | None:
    """An identity column: bigint, with a legal CACHE. On a profile without sequences there is no identity:
    the constraints that stand for it are returned (a uuid key's default, or none for a bigint the
    application assigns); None when the identity stays."""
    if b.no_sequences:
        tn = col.typeName
        if _is_key(col):
            tn.names, tn.typmods = type_name("uuid").names, None
            b.uuid_keys.add(what)
            b.schema.note(origin, f"{what}: identity → uuid DEFAULT gen_random_uuid() (the profile has no sequences)")
            return [ast.Constraint(contype=CONSTR.CONSTR_DEFAULT, raw_expr=_expr("gen_random_uuid()"))]
        b.schema.plan.append(PlanItem("column", what, "changed", "identity dropped: the profile has no sequences",
                                      "assign the value in the application", origin, 0.5, {}))
        return []
    parts = names_of(col.typeName.names) if col.typeName is not None else []
    if parts and parts[-1].lower() not in ("int8", "bigint"):
        b.schema.note(origin, f"{what}: identity column {parts[-1]} → bigint (DSQL identity columns are bigint)")
        col.typeName.names = type_name("pg_catalog", "int8").names
        col.typeName.typmods = None
    opts = [o for o in c.options or () if o.defname != "sequence_name"]
    c.options = sequence_options(b, opts, what, origin)
    return None
