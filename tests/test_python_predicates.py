"""sources/python's gate (PREFILTER and the ast pass, python_gate) and its libcst visitor ask the same predicates
(python_predicates): the gate must let through every file the visitor finds anything in."""

from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path

import pytest

from dsql_audit.sources import python
from dsql_audit.sources.app import SourceError
from dsql_audit.sources.python_predicates import CALL_NAMES, REPORTABLE

ROOT = Path(__file__).resolve().parents[1]
# DSQL_AUDIT_GATE_FULL=1 reads every file of the installed packages (minutes); by default a seeded sample of
# each, up to this many bytes of source
SAMPLE_BYTES = 400_000


def gate_passes(path: str, text: str) -> bool:
    try:
        return bool(python.PREFILTER.search(text)) and python._worth_parsing(path, text)
    except SourceError:
        return True  # extract() raises it: the scan reports the file, nothing is lost


def visitor_finds(path: str, text: str) -> list:
    """What libcst's reading finds with no gate before it."""
    try:
        return python._read(path, text)
    except SourceError:
        return []


def missed(paths) -> list:
    """(file, line, origin) of the first record of every file the visitor finds something in and the gate
    refuses."""
    out = []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        if gate_passes(path, text):
            continue
        found = visitor_finds(path, text)
        if found:
            out.append((path, found[0].line, found[0].origin))
    return out


def py_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def package_sample(name: str) -> list[str]:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} is not installed")
    files = py_files(Path(list(spec.submodule_search_locations)[0]))
    if os.environ.get("DSQL_AUDIT_GATE_FULL"):
        return files
    random.Random(name).shuffle(files)
    sample, size = [], 0
    for path in files:
        size += os.path.getsize(path)
        if size > SAMPLE_BYTES:
            break
        sample.append(path)
    return sample


@pytest.mark.parametrize("folder", ["fixtures", "tests"])
def test_the_gate_passes_every_project_file_the_visitor_reads_something_in(folder):
    assert missed(py_files(ROOT / folder)) == []


@pytest.mark.parametrize("package", ["sqlalchemy", "alembic", "django"])
def test_the_gate_passes_every_package_file_the_visitor_reads_something_in(package):
    assert missed(package_sample(package)) == []


# each a construct the gate once refused, or could have: (source, path)
SUPERSET_CASES = [
    # no database import (a package's relative imports): the visitor reads these calls anyway
    ("from .sql import select\ndef f():\n    return select(1).with_for_update()\n", "lib/q.py"),
    ("from . import engine\ndef f(conn):\n    conn.execution_options(isolation_level='SERIALIZABLE')\n", "lib/e.py"),
    ("from .db import create_engine\nengine = create_engine(URL)\n", "lib/db.py"),
    ("from .compat import atomic\ndef f():\n    with atomic():\n        with atomic():\n            pass\n",
     "lib/t.py"),
    ("from .aurora_dsql_psycopg import connect\n", "lib/c.py"),
    # SQL built in ways the gate did not follow
    ("def f(cur, suffix):\n    sql = 'SELECT 1' + suffix\n    cur.execute(sql)\n", "app/a.py"),
    ("def f(cur):\n    cur.execute('' + 'SELECT 1')\n", "app/b.py"),
    ("def f(cur, cols):\n    cur.execute(' '.join(['SELECT', cols, 'FROM t']))\n", "app/c.py"),
    ("BASE = 'SELECT * FROM t'\ndef f(cur, w):\n    cur.execute(f'{BASE} WHERE {w}')\n", "app/d.py"),
    ("def f(cur, a):\n    cur.execute(*a, sql='SELECT 1')\n", "app/e.py"),
    ("def f(cur):\n    q: str = 'DELETE FROM t'\n    cur.execute(q)\n", "app/f.py"),
    # settings and connection strings
    ("settings.DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'CONN_MAX_AGE': None}}\n",
     "app/settings.py"),
    ("import psycopg\ndef f():\n    return psycopg.connect(b'host=db password=hunter2')\n", "app/g.py"),
    ("DSN = 'host=db dbname=app password=hunter2'\n", "app/h.py"),
    # libraries the prefilter did not name
    ("import sqlmodel\nclass A(sqlmodel.SQLModel):\n    c = relationship('C', passive_deletes=True)\n", "app/i.py"),
    ("import databases\nasync def f(db):\n    async with db.transaction():\n        pass\n", "app/j.py"),
    # a batch operation's alias outside versions/
    ("from x import op\ndef helper():\n    with op.batch_alter_table('t') as b:\n        b.drop_column('c')\n",
     "app/k.py"),
]


@pytest.mark.parametrize("source, path", SUPERSET_CASES)
def test_the_gate_passes_what_the_visitor_reads(source, path):
    assert visitor_finds(path, source), "the case no longer exercises the visitor"
    assert gate_passes(path, source)


@pytest.mark.parametrize("source", [
    "import django\ndef f(m):\n    m.objects.filter(a=1).delete()\n",  # filtered
    "import psycopg\ndef f(form):\n    form.commit(1)\n",  # not a transaction's commit
    "import psycopg\nDSN = 'postgresql://localhost/app'\n",  # a connection string with nothing wrong in it
    "import sqlalchemy\ndef f(x):\n    return x.y.create(1)\n",  # not an Enum's create()
    "import django\ndef f(m):\n    return m.iterator()\n",  # not a QuerySet
    "def f(cur):\n    execute('SELECT 1')\n",  # a bare execute() is no driver's
])
def test_the_gate_refuses_what_no_predicate_reports(source):
    assert not gate_passes("app/x.py", source)
    assert visitor_finds("app/x.py", source) == []


def test_every_visitor_handler_has_its_predicate():
    handlers = {name[len("call_"):] for name in dir(python._Visitor) if name.startswith("call_")}
    assert handlers == set(REPORTABLE)
    assert set(REPORTABLE) <= CALL_NAMES


def test_both_readers_describe_a_call_alike():
    """The gate's CallShape of a call (from ast) is the visitor's (from libcst)."""
    import ast

    import libcst as cst

    from dsql_audit.sources import python_cst, python_gate

    source = ("Model.objects.filter(a=1).all().delete()\nsa.Enum('a', name='e').create(bind, checkfirst=True)\n"
              "conn.execute(*args, sql=q, **kw)\nf(x)[0].g(1, 2)\nop.create_table('t')\n")
    from_ast = [python_gate._shape(s.value, python_gate._callee(s.value.func)) for s in ast.parse(source).body]
    from_cst = []
    for line in cst.parse_module(source).body:
        call = line.body[0].value
        from_cst.append(python_cst.call_shape(call, python_cst._name(call.func), python_cst._owner(call.func)))
    assert from_ast == from_cst
    assert [s.owner for s in from_cst] == ["Model.objects.filter().all()", "sa.Enum()", "conn", "?", "op"]
