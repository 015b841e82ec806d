"""SQLAlchemy is the oracle for create_all(): its own PostgreSQL compiler renders the fixture's metadata, and
the statements the scan models for the create_all() call (sources/sqlalchemy_models.py) must create the same
objects — every type, sequence, table and index, by name — and the same SERIAL columns."""

from __future__ import annotations

import re
import sys

import pytest

from tests.conftest import FIXTURES

sqlalchemy = pytest.importorskip("sqlalchemy")

APP = FIXTURES / "apps" / "python" / "sqla_create_all"
OBJECT = re.compile(r'^\s*CREATE\s+(UNIQUE\s+INDEX|INDEX|TABLE|SEQUENCE|TYPE)\s+"?([\w.]+)"?', re.I)


def _objects(statements) -> set:
    out = set()
    for sql in statements:
        m = OBJECT.match(sql)
        if m:
            out.add((" ".join(m.group(1).upper().split()), m.group(2).lower()))
    return out


def _serial(statements) -> set:
    out = set()
    for sql in statements:
        m = re.match(r'\s*CREATE TABLE "?(\w+)"? \((.*)\)\s*$', sql, re.S)
        if m:
            out.update((m.group(1), c) for c in re.findall(r'"?(\w+)"? (?:SERIAL|BIGSERIAL|SMALLSERIAL)\b',
                                                           m.group(2)))
    return out


def test_create_all_statements_are_what_sqlalchemy_compiles(monkeypatch):
    from sqlalchemy import create_mock_engine

    from dsql_audit.sources import sqlalchemy_models

    monkeypatch.syspath_prepend(str(APP))
    sys.modules.pop("inventory.models", None)
    from inventory.models import Base  # the fixture's own models (test code may import its fixture)

    compiled = []
    engine = create_mock_engine("postgresql+psycopg2://", lambda sql, *a, **k: compiled.append(
        str(sql.compile(dialect=engine.dialect))))
    Base.metadata.create_all(engine, checkfirst=False)
    sqlalchemy_models._CACHE.clear()
    modelled = sqlalchemy_models.create_all_sql(
        sqlalchemy_models.project_tables(str(APP / "inventory" / "setup_db.py")))
    assert _objects(compiled) and _objects(modelled) == _objects(compiled)
    assert _serial(modelled) == _serial(compiled) == {("warehouses", "id"), ("audit_log", "id")}
