"""Migration frameworks: how to recognise each one, and which statements it runs together.

The transaction model decides the DDL-per-transaction findings, so it is
the point of knowing the framework. Each framework is a row of data:
detection signals and one of four transaction models:

- ``psql``: every statement autocommits unless the text says BEGIN … COMMIT
  (plain SQL, pg_dump, Rails structure.sql, sqitch, Django sqlmigrate and
  Alembic --sql output, which write their BEGIN/COMMIT into the text);
- ``file``: the whole file is one transaction (Flyway, Prisma; golang-migrate
  sends a file as one multi-statement query, which PostgreSQL runs as one
  implicit transaction);
- ``sections``: marker comments open sections, each one transaction unless
  the marker opts out (goose, dbmate, Liquibase formatted SQL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Framework:
    name: str
    title: str
    model: str  # psql | file | sections
    source: str  # the framework's documentation on its transaction behaviour
    file_name: re.Pattern | None = None  # matched against the path relative to the scan root
    content: re.Pattern | None = None  # matched against the first 4 KiB
    sibling: str | None = None  # a file that, next to or above, marks the framework
    section: re.Pattern | None = None  # marker comment opening a section
    no_txn: re.Pattern | None = None  # marker (in a section marker or anywhere) turning transactions off
    skip_section: re.Pattern | None = None  # sections a deploy does not run (down migrations)


FRAMEWORKS: tuple[Framework, ...] = (
    Framework(
        "goose", "goose", "sections",
        "https://pressly.github.io/goose/documentation/annotations/",
        content=re.compile(r"^\s*--\s*\+goose\s+Up\b", re.M | re.I),
        section=re.compile(r"^--\s*\+goose\s+(Up|Down)\b", re.I),
        no_txn=re.compile(r"^--\s*\+goose\s+NO\s+TRANSACTION\b", re.I | re.M),
        skip_section=re.compile(r"^--\s*\+goose\s+Down\b", re.I),
    ),
    Framework(
        "dbmate", "dbmate", "sections",
        "https://github.com/amacneil/dbmate#creating-migrations",
        content=re.compile(r"^\s*--\s*migrate:up\b", re.M),
        section=re.compile(r"^--\s*migrate:(up|down)\b"),
        # transaction:false still sends the whole section in one call: one implicit transaction
        no_txn=None,
        skip_section=re.compile(r"^--\s*migrate:down\b"),
    ),
    Framework(
        "liquibase", "Liquibase formatted SQL", "sections",
        "https://docs.liquibase.com/concepts/changelogs/sql-format.html",
        content=re.compile(r"\A(?:\s*--[^\n]*\n)*?\s*--\s*liquibase\s+formatted\s+sql", re.I),
        section=re.compile(r"^--\s*changeset\s+\S+", re.I),
        no_txn=re.compile(r"runInTransaction:\s*false", re.I),
    ),
    Framework(
        "golang-migrate", "golang-migrate", "file",
        "https://github.com/golang-migrate/migrate/blob/master/database/postgres/README.md",
        file_name=re.compile(r"(^|/)\d+_[^/]*\.(up|down)\.sql$"),
    ),
    Framework(
        "flyway", "Flyway", "file",
        "https://documentation.red-gate.com/fd/migrations-184127470.html (each migration in its own transaction)",
        file_name=re.compile(r"(^|/)([VU]\d+(?:[._]\d+)*__[^/]+|R__[^/]+)\.sql$"),
        no_txn=re.compile(r"executeInTransaction\s*=\s*false", re.I),
    ),
    Framework(
        "prisma", "Prisma Migrate", "file",
        "https://www.prisma.io/docs/orm/prisma-migrate (a migration.sql is sent as one script)",
        file_name=re.compile(r"(^|/)migrations/[^/]+/migration\.sql$"),
    ),
    Framework(
        "sqitch", "Sqitch", "psql",
        "https://sqitch.org/docs/manual/sqitchtutorial/ (psql runs each script; BEGIN/COMMIT in the script)",
        sibling="sqitch.plan",
        file_name=re.compile(r"(^|/)(deploy|revert|verify)/[^/]+\.sql$"),
    ),
    Framework(
        "rails", "Rails structure.sql", "psql",
        "https://guides.rubyonrails.org/active_record_migrations.html#schema-dumping-and-you (loaded with psql)",
        file_name=re.compile(r"(^|/)db/structure\.sql$|(^|/)structure\.sql$"),
    ),
    Framework(
        "alembic", "Alembic offline (--sql) output", "psql",
        "https://alembic.sqlalchemy.org/en/latest/offline.html (BEGIN/COMMIT written into the output)",
        content=re.compile(r"^--\s*Running (?:upgrade|downgrade)\b|alembic_version", re.M),
    ),
    Framework(
        "django", "Django sqlmigrate output", "psql",
        "https://docs.djangoproject.com/en/stable/ref/django-admin/#sqlmigrate (BEGIN/COMMIT written for atomic migrations)",
        content=re.compile(
            r"^--\n-- (?:Create|Add|Alter|Remove|Delete|Rename|Raw SQL|Custom state|Change|Set)\b[^\n]*\n--$",
            re.M),
    ),
)

BY_NAME = {f.name: f for f in FRAMEWORKS}
PSQL = Framework("psql", "psql script", "psql", "https://www.postgresql.org/docs/16/app-psql.html")
BY_NAME["psql"] = PSQL
BY_NAME["pg_dump"] = Framework("pg_dump", "pg_dump output", "psql", PSQL.source)


def has_sibling(path: Path, root: Path, name: str) -> bool:
    cur = path.parent
    while True:
        if (cur / name).exists():
            return True
        if cur == root or cur.parent == cur or root not in cur.parents:
            return False
        cur = cur.parent


def detect(path: Path, rel: str, head: str, root: Path) -> Framework | None:
    for fw in FRAMEWORKS:
        if fw.content is not None and fw.content.search(head):
            return fw
    for fw in FRAMEWORKS:
        if fw.file_name is not None and fw.file_name.search(rel):
            if fw.sibling and not has_sibling(path, root, fw.sibling):
                continue
            return fw
    return None


def file_runs_without_transaction(fw: Framework, path: Path, head: str) -> bool:
    """Flyway script config (V3__x.sql.conf) or an in-file marker turning the transaction off."""
    if fw.no_txn is None:
        return False
    conf = path.with_name(path.name + ".conf")
    if conf.is_file():
        try:
            if fw.no_txn.search(conf.read_text(errors="replace")):
                return True
        except OSError:
            return False
    return fw.model == "file" and bool(fw.no_txn.search(head))
