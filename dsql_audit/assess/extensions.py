"""The extension inventory: every extension a live database has installed and every one the schema or code
uses, each classified (removable / replaceable / load-bearing) by the data in rules/assess/extensions.toml,
with the evidence — the objects that use it, from pg_depend and from the scan's findings."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache

from dsql_audit.resources import catalog_dir

REMOVABLE, REPLACEABLE, LOAD_BEARING = "removable", "replaceable", "load-bearing"
_RANK = {REMOVABLE: 0, REPLACEABLE: 1, LOAD_BEARING: 2}
# what a scan finding of the extension rule says it uses
_USE = re.compile(r"(?:(?P<kind>type|operator class) )?(?P<name>[\w.\"]+?)(?:\(\))? is provided by the "
                  r"(?P<ext>[\w-]+) extension")


@dataclass
class Use:
    kind: str  # function | type | opclass | extension | object
    name: str  # the member used (uuid_generate_v4, citext, gin_trgm_ops) or the object itself
    where: str  # the using object (public.users.email) or file:line
    source: str  # catalog | scan


@dataclass
class Extension:
    name: str
    installed: bool = False
    version: str | None = None
    uses: list = field(default_factory=list)
    klass: str = REMOVABLE
    why: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "installed": self.installed, "version": self.version, "class": self.klass,
                "why": self.why, "uses": [u.__dict__ for u in self.uses]}


@lru_cache(maxsize=1)
def classes() -> dict:
    with open(catalog_dir() / "assess" / "extensions.toml", "rb") as fh:
        return tomllib.load(fh)


def _member(data: dict, use: Use) -> dict:
    group = {"opclass": "opclasses", "function": "functions", "type": "types"}.get(use.kind)
    return (data.get(group) or {}).get(use.name.strip('"').lower(), {}) if group else {}


def classify(ext: Extension) -> Extension:
    """The extension's class and why, from its uses: none → removable; else the worst class over its uses
    (a member's own class where the data gives one, else the extension's)."""
    data = classes().get(ext.name)
    if not ext.uses:
        ext.klass = REMOVABLE
        ext.why = ("installed, and nothing uses it: no object in the database depends on it (pg_depend) and the "
                   "scan found no use — drop it" if ext.installed else "named, but nothing uses it")
        if data and data.get("class") == REMOVABLE and data.get("why"):
            ext.why += f" ({data['why']})"
        return ext
    if data is None:
        ext.klass = LOAD_BEARING
        ext.why = (f"used ({len(ext.uses)} use(s)) and not classified in rules/assess/extensions.toml: treated as "
                   "load-bearing until someone classifies it")
        return ext
    worst, reasons = REMOVABLE, []
    for use in ext.uses:
        member = _member(data, use)
        klass = member.get("class", data.get("class", LOAD_BEARING))
        if _RANK[klass] > _RANK[worst]:
            worst = klass
        reason = member.get("why") or (data.get("why") if klass == LOAD_BEARING else None)
        if reason and reason not in reasons and klass == LOAD_BEARING:
            reasons.append(f"{use.name} at {use.where}: {reason}")
    ext.klass = worst
    if worst == LOAD_BEARING:
        ext.why = "; ".join(reasons[:3]) or data.get("why", "")
    elif worst == REPLACEABLE:
        ext.why = f"replace with {data.get('replacement', 'an application-side equivalent')}"
    else:
        ext.why = data.get("why", "a tool, not part of the schema")
    return ext


def from_scan(findings) -> dict:
    """{extension: [Use]} from the scan's extension findings (CREATE EXTENSION, and the functions, types and
    operator classes an extension provides, used in SQL or code)."""
    out: dict = {}
    for f in findings:
        if f.name != "extension":
            continue
        where = f"{f.path}:{f.line}"
        m = _USE.search(f.message)
        if m:
            kind = {"type": "type", "operator class": "opclass"}.get(m["kind"] or "", "function")
            out.setdefault(m["ext"], []).append(Use(kind, m["name"], where, "scan"))
        elif f.object and "cannot be installed" in f.message:
            out.setdefault(f.object, [])  # CREATE EXTENSION: named, a use only through what it provides
    return out


# every installed extension, and every object outside it that depends on one of its members (a column of its
# type, an index with its operator class, a default or view calling its function): the catalog's own record
INSTALLED = "SELECT e.extname, e.extversion FROM pg_extension e ORDER BY 1"
DEPENDENTS = """
SELECT e.extname,
       CASE m.classid WHEN 'pg_type'::regclass THEN 'type' WHEN 'pg_opclass'::regclass THEN 'opclass'
                      WHEN 'pg_proc'::regclass THEN 'function' ELSE 'object' END,
       pg_describe_object(m.classid, m.objid, 0),
       CASE WHEN d.classid = 'pg_class'::regclass THEN
              (SELECT CASE c.relkind WHEN 'i' THEN 'index ' WHEN 'I' THEN 'index ' WHEN 'v' THEN 'view '
                                     WHEN 'm' THEN 'materialized view ' ELSE '' END
                      || n.nspname || '.' || c.relname
                      || coalesce('.' || (SELECT a.attname FROM pg_attribute a
                                          WHERE a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0), '')
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = d.objid)
            WHEN d.classid = 'pg_rewrite'::regclass THEN
              (SELECT 'view ' || n.nspname || '.' || c.relname FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
               JOIN pg_namespace n ON n.oid = c.relnamespace WHERE r.oid = d.objid)
            WHEN d.classid = 'pg_attrdef'::regclass THEN
              (SELECT 'default of ' || n.nspname || '.' || c.relname || '.' || a.attname FROM pg_attrdef ad
               JOIN pg_class c ON c.oid = ad.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum WHERE ad.oid = d.objid)
            ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END
FROM pg_extension e
JOIN pg_depend m ON m.refclassid = 'pg_extension'::regclass AND m.refobjid = e.oid AND m.deptype = 'e'
JOIN pg_depend d ON d.refclassid = m.classid AND d.refobjid = m.objid AND d.deptype IN ('n', 'a')
WHERE NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = d.classid AND x.objid = d.objid
                  AND x.deptype = 'e')
  -- a view's rule belongs to the view: an extension's own view is the extension's
  AND NOT EXISTS (SELECT 1 FROM pg_rewrite r JOIN pg_depend x ON x.classid = 'pg_class'::regclass
                  AND x.objid = r.ev_class AND x.deptype = 'e' WHERE d.classid = 'pg_rewrite'::regclass
                  AND r.oid = d.objid)
  AND d.classid <> 'pg_amproc'::regclass AND d.classid <> 'pg_amop'::regclass
  AND NOT (d.classid = 'pg_type'::regclass AND EXISTS (SELECT 1 FROM pg_type t WHERE t.oid = d.objid
                                                        AND t.typelem = m.objid))
ORDER BY 1, 2, 3, 4
"""


def _member_name(kind: str, described: str) -> str:
    # pg_describe_object: "type citext", "operator class gin_trgm_ops for access method gin",
    # "function similarity(text,text)"
    text = described
    for prefix in ("type ", "operator class ", "function "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return re.split(r"[ (]", text, maxsplit=1)[0].split(".")[-1]


def from_catalog(conn) -> tuple[dict, dict]:
    """({extension: version} installed, {extension: [Use]}) from a live database (read-only queries)."""
    installed = {name: version for name, version in conn.execute(INSTALLED).fetchall()}
    uses: dict = {}
    for ext, kind, member, dependent in conn.execute(DEPENDENTS).fetchall():
        uses.setdefault(ext, []).append(Use(kind, _member_name(kind, member), dependent, "catalog"))
    return installed, uses


def inventory(installed: dict | None, catalog_uses: dict | None, scan_uses: dict | None) -> list[Extension]:
    """Every extension installed or used, classified, the worst first."""
    names = set(installed or ()) | set(catalog_uses or ()) | set(scan_uses or ())
    out = []
    for name in sorted(names):
        ext = Extension(name, installed=name in (installed or {}), version=(installed or {}).get(name))
        seen = set()
        for use in (catalog_uses or {}).get(name, []) + (scan_uses or {}).get(name, []):
            key = (use.kind, use.name, use.where)
            if key not in seen:
                seen.add(key)
                ext.uses.append(use)
        out.append(classify(ext))
    return sorted(out, key=lambda e: (-_RANK[e.klass], e.name))
