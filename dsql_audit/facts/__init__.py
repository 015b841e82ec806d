"""Statement facts: what one statement is and does, from pglast's JSON tree.

A statement is parsed once with ``parse_sql_json`` and decoded into plain
dicts; while decoding, every node is indexed by its type, so a rule asks
``facts.nodes("FuncCall")`` instead of walking the tree again. Python node
objects are never built (they cost 8x the JSON route).
"""

from __future__ import annotations

import re

try:  # orjson decodes pglast's JSON about twice as fast as the standard library
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    from json import loads as _loads

from pglast import parser as _pg

from dsql_audit.dialect import preprocess
from dsql_audit.model import Unit

# Node types too common and too small to be worth indexing.
_SKIP = frozenset({"String", "A_Const", "Integer", "Float", "Boolean", "ResTarget", "ColumnRef", "A_Star"})

MAX_PARSE_CHARS = 32_000_000  # one statement bigger than this is reported, not parsed (its tree would need GBs)
DML_NODES = frozenset({"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "TruncateStmt"})
QUERY_NODES = frozenset({"SelectStmt", "ExplainStmt", "VariableShowStmt", "PrepareStmt", "ExecuteStmt"})
_DDL_PREFIXES = ("Create", "Alter", "Drop", "Define", "Comment", "Grant", "Rename", "SecLabel", "Reindex")
_DDL_NODES = frozenset({"IndexStmt", "ViewStmt", "RuleStmt", "CompositeTypeStmt", "RefreshMatViewStmt",
                        "ImportForeignSchemaStmt", "ReassignOwnedStmt"})


class Facts:
    """What one statement is. The JSON tree is decoded only when a rule or the schema model needs it:
    the node type and "is there any X?" questions are answered from pglast's JSON text."""

    __slots__ = ("unit", "text", "node", "js", "_tree", "_index", "_funcs", "dsql", "klass", "parse_error", "iam")

    def __init__(self, unit: Unit, text: str, node: str | None = None, js: str = "", dsql: dict | None = None,
                 klass: str = "other", parse_error: tuple | None = None, iam: tuple | None = None):
        self.unit = unit
        self.text = text  # what pglast saw (DSQL keywords blanked; same length as unit.text)
        self.node = node  # top-level node type, e.g. "CreateStmt"; "AwsIam" for AWS IAM GRANT
        self.js = js  # pglast's JSON
        self._tree = None
        self._index = None
        self._funcs = None
        self.dsql = dsql or {}  # DSQL-only syntax used → offset (index_async, alter_async, aws_iam, …)
        self.klass = klass  # ddl | dml | query | txn | set | utility | meta | empty | error
        self.parse_error = parse_error  # (message, char offset or None)
        self.iam = iam

    def with_text(self, text: str) -> "Facts":
        """The same analysis over another statement of the same shape (only literal values differ)."""
        twin = Facts.__new__(Facts)
        for name in self.__slots__:
            setattr(twin, name, getattr(self, name))
        twin.text = text
        twin.unit = Unit(path=self.unit.path, text=text, line=self.unit.line)
        return twin

    @property
    def stmt(self) -> dict | None:
        """The statement's tree as plain dicts (decoded on first use)."""
        if self._tree is None and self.js:
            tree = _loads(self.js)
            stmts = tree.get("stmts") or [{}]
            self._tree = next(iter(stmts[0].get("stmt", {}).values()), {})
        return self._tree

    def has(self, kind: str) -> bool:
        """Cheap: does the tree hold a node of this type anywhere?"""
        return f'"{kind}"' in self.js

    def nodes(self, kind: str) -> list:
        """Every node of a type, anywhere in the statement (walks the tree once, lazily)."""
        if not self.js or f'"{kind}"' not in self.js and kind != "TypeName":
            return ()
        if self._index is None:
            self._index = _build_index(self.stmt)
        return self._index.get(kind, ())

    def func_names(self) -> frozenset:
        """Lower-cased last names of every function called (from the JSON text, no walk)."""
        if self._funcs is None:
            self._funcs = frozenset(m.lower() for m in _FUNCNAME.findall(self.js)) \
                if '"FuncCall"' in self.js else frozenset()
        return self._funcs

    def char_offset(self, byte_loc: int | None) -> int | None:
        """pglast reports byte offsets; rules and reporters want characters."""
        if byte_loc is None or byte_loc < 0:
            return None
        if self.text.isascii():
            return byte_loc
        return len(self.text.encode("utf-8")[:byte_loc].decode("utf-8", "ignore"))


def _build_index(tree) -> dict:
    """Every wrapped node by type, plus TypeName fields (typed, so unwrapped)."""
    index: dict = {}
    setdefault = index.setdefault
    stack = [tree]
    pop, push = stack.pop, stack.append
    while stack:
        cur = pop()
        if type(cur) is dict:
            if len(cur) == 1:
                for k, v in cur.items():
                    if k[0].isupper():
                        if k not in _SKIP:
                            setdefault(k, []).append(v)
                        push(v)
                    elif type(v) in (dict, list):
                        push(v)
                continue
            for k, v in cur.items():
                if type(v) in (dict, list):
                    if k == "typeName":
                        setdefault("TypeName", []).append(v)
                    push(v)
        else:
            stack.extend(x for x in cur if type(x) in (dict, list))
    return index


def classify(node: str | None, js: str) -> str:
    """ddl / dml / query / txn / set / utility, from the node type (and two JSON probes)."""
    if node is None:
        return "error"
    if node == "TransactionStmt":
        return "txn"
    if node in DML_NODES:
        return "dml"
    if node == "CopyStmt":
        return "dml" if '"is_from":true' in js else "query"
    if node in QUERY_NODES:
        return "query"
    if node == "VariableSetStmt":
        return "set"
    if node == "AwsIam" or node in _DDL_NODES or node.startswith(_DDL_PREFIXES):
        return "ddl"
    return "utility"


_TOP_NODE = re.compile(r'\{"version":\d+,"stmts":\[\{"stmt":\{"(\w+)"')
_STMT_SPLIT = re.compile(r'[\[,]\{"stmt":\{"')

# "funcname":[{"String":{"sval":"pg_catalog"}},{"String":{"sval":"now"}}] → "now"
_FUNCNAME = re.compile(r'"funcname":\[(?:\{"String":\{"sval":"(?:[^"\\]|\\.)*"\}\},)*\{"String":\{"sval":"((?:[^"\\]|\\.)*)"\}\}\]')


NEAR_CHARS = 60  # of the text PostgreSQL quotes in a parse error ("at or near …"), kept in the message
ERROR_CHARS = 300  # a parse error message is cut here (it can quote the rest of the file)
_NEAR = re.compile(r'(at or near ")(.*)("\s*)$', re.S)


def bounded_error(message: str) -> str:
    """A parser message fit for a finding: PostgreSQL quotes the offending token, and the token of an
    unterminated quote, dollar quote or comment is the rest of the input (megabytes): cut it to its start."""
    m = _NEAR.search(message)
    if m is not None and len(m.group(2)) > NEAR_CHARS:
        near = m.group(2)[:NEAR_CHARS].split("\n", 1)[0].rstrip()
        message = f"{message[:m.start(2)]}{near}\u2026{m.group(3)}"
    if len(message) > ERROR_CHARS:
        message = message[:ERROR_CHARS - 1].rstrip() + "\u2026"
    return message


def analyse(unit: Unit) -> Facts:
    """Parse one unit into facts. Never raises for bad SQL."""
    if unit.meta is not None:
        return Facts(unit=unit, text=unit.text, klass="meta")
    if unit.construct is not None:  # an ORM/driver construct from application source: the app rules judge it
        facts = Facts(unit=unit, text="", node=unit.construct.get("kind"), klass="app")
        facts._tree = unit.construct
        return facts
    if len(unit.text) > MAX_PARSE_CHARS:
        facts = Facts(unit=unit, text=unit.text, klass="error")
        facts.parse_error = (f"statement of {len(unit.text) // 1_000_000} MB is too large to analyse; "
                             "it was skipped (split it)", None)
        return facts
    text, flags, iam = preprocess(unit.text)
    facts = Facts(unit=unit, text=text, dsql=flags, iam=iam)
    if iam is not None:
        facts.node, facts._tree, facts.klass = "AwsIam", {}, "ddl"
        return facts
    try:
        js = _pg.parse_sql_json(text)
    except _pg.ParseError as exc:
        msg = exc.args[0] if exc.args else str(exc)
        loc = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
        facts.parse_error = (bounded_error(str(msg)), facts.char_offset(loc) if loc is not None else None)
        facts.klass = "error"
        return facts
    except Exception as exc:  # libpg_query refuses some inputs (e.g. NUL bytes)
        facts.parse_error = (bounded_error(str(exc)), None)
        facts.klass = "error"
        return facts
    facts.js = js
    m = _TOP_NODE.match(js)
    if m is None:
        facts.klass = "empty"
        return facts
    facts.node = m.group(1)
    if len(_STMT_SPLIT.findall(js)) > 1:  # the splitter missed a boundary; the first one is analysed
        facts.parse_error = ("more than one statement in one unit", None)
    facts.klass = classify(facts.node, js)
    if facts.node == "SelectStmt" and '"intoClause"' in js:
        facts.klass = "ddl" if facts.stmt.get("intoClause") else "query"
    return facts


def schema_elements(facts: Facts) -> list:
    """The statements inside ``CREATE SCHEMA s CREATE TABLE … CREATE VIEW …``, each as facts of its own over
    the same text (their tree locations point into it). PostgreSQL runs them with the new schema first on
    the search path, so their unqualified relations are given the schema's name."""
    if facts.node != "CreateSchemaStmt" or '"schemaElts"' not in facts.js:
        return []
    import json

    stmt = facts.stmt
    schema = stmt.get("schemaname") or (stmt.get("authrole") or {}).get("rolename")
    out = []
    for element in stmt.get("schemaElts") or ():
        node, tree = next(iter(element.items()))
        if schema:
            stack = [tree]
            while stack:  # every RangeVar: unwrapped under a field name, so found by its relname key
                cur = stack.pop()
                if isinstance(cur, dict):
                    if "relname" in cur and "inh" in cur and not cur.get("schemaname"):
                        cur["schemaname"] = schema
                    stack.extend(v for v in cur.values() if isinstance(v, (dict, list)))
                elif isinstance(cur, list):
                    stack.extend(v for v in cur if isinstance(v, (dict, list)))
        js = json.dumps({"version": 0, "stmts": [{"stmt": {node: tree}}]}, separators=(",", ":"))
        out.append(Facts(unit=facts.unit, text=facts.text, node=node, js=js, dsql=facts.dsql,
                         klass=classify(node, js)))
    return out


# --- small helpers rules share ------------------------------------------------

def names(node_list) -> list[str]:
    """[{"String": {"sval": "pg_catalog"}}, {"String": {"sval": "int4"}}] → ["pg_catalog", "int4"]."""
    out = []
    for n in node_list or ():
        s = n.get("String")
        if s is not None:
            out.append(s.get("sval", ""))
    return out


def type_name(tn: dict) -> str:
    """A TypeName's last name part, with [] for arrays: 'int4', 'text[]'."""
    parts = names(tn.get("names"))
    base = parts[-1] if parts else "?"
    if tn.get("arrayBounds"):
        base += "[]"
    return base


def qualified(rv: dict) -> tuple:
    """(schema or None, name) of a RangeVar."""
    return (rv.get("schemaname"), rv.get("relname"))


def const_value(node: dict | None):
    """Python value of an A_Const / TypeCast(A_Const) / Integer node, else None."""
    if not node:
        return None
    if "A_Const" in node:
        c = node["A_Const"]
        for key in ("ival", "sval", "fval", "boolval"):
            if key in c:
                inner = c[key]
                return inner.get(key, 0 if key == "ival" else inner.get("sval")) if isinstance(inner, dict) else inner
        return None
    if "TypeCast" in node:
        return const_value(node["TypeCast"].get("arg"))
    if "Integer" in node:
        return node["Integer"].get("ival", 0)
    if "String" in node:
        return node["String"].get("sval")
    return None


def defelem_map(options) -> dict:
    out = {}
    for o in options or ():
        d = o.get("DefElem")
        if d is not None:
            out[d.get("defname")] = d
    return out


def rel_of(rv: dict | None) -> tuple:
    """(schema or None, name) of a RangeVar, for Hit.rel."""
    rv = rv or {}
    return (rv.get("schemaname"), rv.get("relname") or "?")


def relname(rv: dict | None) -> str:
    if not rv:
        return "?"
    schema = rv.get("schemaname")
    return f"{schema}.{rv.get('relname')}" if schema else rv.get("relname", "?")


def alter_cmds(facts: Facts):
    """(AlterTableCmd, table RangeVar) for ALTER TABLE statements."""
    if facts.node != "AlterTableStmt":
        return
    rv = facts.stmt.get("relation")
    for c in facts.stmt.get("cmds", ()):
        cmd = c.get("AlterTableCmd")
        if cmd is not None:
            yield cmd, rv


def column_defs(facts: Facts):
    """(ColumnDef, table RangeVar, 'create' | 'add_column') in CREATE TABLE / ALTER TABLE ADD COLUMN."""
    if facts.node in ("CreateStmt", "CreateForeignTableStmt"):
        stmt = facts.stmt if facts.node == "CreateStmt" else facts.stmt.get("base", {})
        rv = stmt.get("relation")
        for elt in stmt.get("tableElts", ()):
            cd = elt.get("ColumnDef")
            if cd is not None:
                yield cd, rv, "create"
    elif facts.node == "AlterTableStmt":
        for cmd, rv in alter_cmds(facts):
            if cmd.get("subtype") == "AT_AddColumn":
                cd = (cmd.get("def") or {}).get("ColumnDef")
                if cd is not None:
                    yield cd, rv, "add_column"


def constraints(facts: Facts):
    """(Constraint, table RangeVar, where, column name or None) for every constraint a
    CREATE TABLE or ALTER TABLE declares. where: 'create' | 'add_column' | 'add_constraint'."""
    if facts.node == "CreateStmt":
        rv = facts.stmt.get("relation")
        for elt in facts.stmt.get("tableElts", ()):
            if "Constraint" in elt:
                yield elt["Constraint"], rv, "create", None
            elif "ColumnDef" in elt:
                cd = elt["ColumnDef"]
                for c in cd.get("constraints", ()):
                    if "Constraint" in c:
                        yield c["Constraint"], rv, "create", cd.get("colname")
    elif facts.node == "AlterTableStmt":
        for cmd, rv in alter_cmds(facts):
            sub = cmd.get("subtype")
            d = cmd.get("def") or {}
            if sub == "AT_AddConstraint" and "Constraint" in d:
                yield d["Constraint"], rv, "add_constraint", None
            elif sub == "AT_AddColumn" and "ColumnDef" in d:
                cd = d["ColumnDef"]
                for c in cd.get("constraints", ()):
                    if "Constraint" in c:
                        yield c["Constraint"], rv, "add_column", cd.get("colname")


def option_value(options, name: str):
    d = defelem_map(options).get(name)
    if d is None:
        return None
    arg = d.get("arg")
    if arg is None:
        return True
    if isinstance(arg, dict) and "List" in arg:
        return [const_value(x) for x in arg["List"].get("items", ())]
    return const_value(arg)
