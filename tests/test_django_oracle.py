"""Django is the oracle: the installed Django's own ``migrate`` runs fixtures/django_ops against the embedded
PostgreSQL, every statement it sends is captured per migration, and the statements the scan models for the
same migration (sources/django_migrations.py) must be the same — same statements, same names, same order of
immediate and deferred SQL. CHECK and WHERE bodies are compared as placeholders (Django renders Q objects)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES

pytest.importorskip("django")

APP = FIXTURES / "django_ops"

DRIVER = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from django.conf import settings
settings.configure(INSTALLED_APPS=["opsapp"], DATABASES={"default": {
    "ENGINE": "django.db.backends.postgresql", "NAME": "postgres", "OPTIONS": {"conninfo": sys.argv[2]}}},
    USE_TZ=True)
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
out = {}
for name in sys.argv[3:]:
    with CaptureQueriesContext(connection) as ctx:
        call_command("migrate", "opsapp", name, verbosity=0)
    out[name] = [q["sql"] for q in ctx.captured_queries]
print(json.dumps(out))
"""


def _mask(sql: str) -> str:
    sql = " ".join(sql.strip().rstrip(";").split())
    # a default evaluated when the migration runs (auto_now_add, timezone.now): the time of day is no model's
    sql = re.sub(r"DEFAULT '\d{4}-\d\d-\d\d[ T][^']*'::timestamptz|DEFAULT '<default>'", "DEFAULT <now>", sql)
    for word in ("CHECK (", "WHERE "):
        start = sql.find(word)
        while start >= 0:
            i, depth = start + len(word), 1 if word.endswith("(") else 0
            if depth:
                while i < len(sql) and depth:
                    depth += {"(": 1, ")": -1}.get(sql[i], 0)
                    i += 1
                sql = sql[:start] + "CHECK (…)" + sql[i:]
            else:
                sql = sql[:start] + "WHERE …"
            start = sql.find(word, start + 5)
    return sql


def _sent_by_django(uri: str, names: list[str]) -> dict:
    r = subprocess.run([sys.executable, "-c", DRIVER, str(APP), uri, *names], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    sent = json.loads(r.stdout.strip().splitlines()[-1])
    keep = re.compile(r"^\s*(CREATE|ALTER|DROP|SET CONSTRAINTS|UPDATE)\b", re.I)
    return {name: [_mask(s) for s in stmts if keep.match(s) and "django_migrations" not in s]
            for name, stmts in sent.items()}


def test_modelled_sql_is_what_djangos_migrate_sends(scripted_engine):
    from dsql_audit.sources import django_migrations

    engine = scripted_engine()
    with engine._lock:
        engine._admin.execute("DROP TABLE IF EXISTS django_migrations")
    names = sorted(p.stem for p in (APP / "opsapp" / "migrations").glob("0*.py"))
    sent = _sent_by_django(engine.internal_uri, names)
    django_migrations._CACHE.clear()
    modelled = django_migrations.app_migrations(str(APP / "opsapp" / "migrations"), "opsapp")
    for name in names:
        mf = modelled[name + ".py"]
        place = {}  # statement → (deferred?, operation number): the order Django must send them in
        for number, line in enumerate(sorted(mf.statements)):
            for stmt in mf.statements[line]:
                place.setdefault(_mask(stmt.sql), (stmt.deferred, number))
        modelled_sql = [_mask(stmt.sql) for line in sorted(mf.statements) for stmt in mf.statements[line]]
        # the same statements, names included …
        assert sorted(modelled_sql) == sorted(sent[name]), (name, "\n".join(modelled_sql), "\n".join(sent[name]))
        # … in the same order from one operation to the next, deferred ones after all the others (within one
        # operation Django's order of the foreign keys it re-creates follows its relation registry)
        order = [place[sql] for sql in sent[name]]
        assert order == sorted(order), name
