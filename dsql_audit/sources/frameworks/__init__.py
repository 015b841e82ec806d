"""ORM schemas and migration DSLs of other ecosystems: what they make the database run.

One module per framework, each with the same face:

- ``NAME``: the framework, as findings name it;
- ``detect(path, text) -> bool``: cheap checks on the name first, then on the content;
- ``emit(path, text, out)``: the records into ``out`` (a ``synth.Out``), and ``extract(path, text)`` that returns
  them as a list of ``Emitted`` (see ``sources/app.py``).

A framework module returns:

- SQL the framework emits for a construct, synthesized (``literal=False``), e.g. ``CREATE INDEX`` for Rails
  ``add_index`` or ``CREATE TYPE … AS ENUM`` for a Prisma enum. A table's ``CREATE TABLE`` is one statement, as the
  framework sends it, and its column definitions are laid out on the file lines (and at the file columns) of the
  DSL lines that declare them (``synth.Layout``), so a finding inside it is located at that DSL line.
- SQL written literally inside the DSL (``execute <<~SQL``, ``knex.raw('…')``, ``<sql>…</sql>``), with the position
  of its first character and the raw text, so its lines and columns map into the file.
- Constructs that are not SQL: ``{"kind": "OrmForeignKey", …}``, ``{"kind": "SchemaAutoUpdate", …}`` (Hibernate
  writes the schema), ``{"kind": "SchemaOwner", …}`` (it does not: ddl-auto none/validate) and
  ``{"kind": "UnreadWrapper", …}`` (a migration call through a project helper not followed).

Foreign keys are never written into synthesized SQL (the ``OrmForeignKey`` construct carries them), so a key is
reported once. Nothing here raises: a file that cannot be read gives the records found before the problem.

To add a framework: a module here with NAME, detect and emit, and one line in ``FRAMEWORKS`` (see
docs/architecture.md).
"""

from __future__ import annotations

from dsql_audit.sources.app import Emitted
from dsql_audit.sources.frameworks import doctrine, jpa, knex, liquibase, prisma, rails, sequelize, typeorm
from dsql_audit.sources.frameworks.synth import Out

__all__ = ["extract", "detect", "FRAMEWORKS"]

# consulted in order: the first module whose detect() accepts a file reads it
FRAMEWORKS = (prisma, rails, liquibase, jpa, typeorm, sequelize, knex, doctrine)


def detect(path: str, text: str):
    """The framework module that reads this file, else None."""
    if not isinstance(text, str):
        return None
    for module in FRAMEWORKS:
        try:
            if module.detect(path, text):
                return module
        except Exception:  # noqa: BLE001 - a file a detector cannot judge is not its file
            continue
    return None


def extract(path: str, text: str) -> list[Emitted] | None:
    """The records a framework file makes the database run, or None when no framework module reads it."""
    module = detect(path, text)
    if module is None:
        return None
    return run(module, path, text)


def run(module, path: str, text: str) -> list[Emitted]:
    out = Out(text, module.NAME)
    try:
        module.emit(path, text, out)
    except Exception:  # noqa: BLE001 - keep what was found before the problem
        pass
    return out.records
