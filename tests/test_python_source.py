"""Python application source: the fixture apps under fixtures/apps/python carry `# expect: rule` comments on
every line the scan must report (`# expect+N:` / `# expect-N:` for a line N below or above, inside a SQL
string); each scan must report exactly those (path, line, rule) — nothing more, nothing less — and each
`*_clean` variant nothing at all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dsql_audit.profile import load_profile
from dsql_audit.scan import scan
from tests.conftest import FIXTURES

APPS = FIXTURES / "apps" / "python"
DIRTY = sorted(p.name for p in APPS.iterdir() if p.is_dir() and not p.name.endswith("_clean"))
CLEAN = sorted(p.name for p in APPS.iterdir() if p.is_dir() and p.name.endswith("_clean"))
EXPECT = re.compile(r"#\s*expect([+-]\d+)?:\s*([\w, -]+)")


def _expected(root: Path) -> set:
    out = set()
    for path in sorted(root.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = EXPECT.search(line)
            if m:
                at = number + int(m.group(1) or 0)
                for rule in m.group(2).split(","):
                    out.add((path.relative_to(root).as_posix(), at, rule.strip()))
    return out


def _found(root: Path, profile=None) -> tuple[set, object]:
    result = scan([str(root)], profile=load_profile(profile) if profile else None)
    assert not result.errors, result.errors
    found = {(Path(f.path).resolve().relative_to(root.resolve()).as_posix(), f.line, f.name)
             for f in result.findings}
    return found, result


@pytest.mark.parametrize("app", DIRTY)
def test_every_expected_finding_and_nothing_else(app):
    root = APPS / app
    expected = _expected(root)
    assert expected, "a fixture app without expectations tests nothing"
    found, _ = _found(root)
    assert found == expected, {"missing": sorted(expected - found), "unexpected": sorted(found - expected)}


@pytest.mark.parametrize("app", CLEAN)
def test_the_clean_variant_has_no_finding(app):
    found, result = _found(APPS / app)
    assert not found, sorted(found)
    assert result.inputs >= 1 and result.units >= 1  # the source was read (a scan that read nothing is clean too)


def test_frameworks_and_adapters_are_named():
    _, result = _found(APPS / "django_blog")
    assert set(result.frameworks.values()) == {"django"}
    _, clean = _found(APPS / "django_blog_clean")
    assert clean.adapters == {"aurora-dsql-django"}


def test_locations_inside_strings_are_exact():
    """The finding points at the offending token inside the string: a triple-quoted constant, an f-string with
    a run-time part (same-length placeholder), a concatenation across lines."""
    _, result = _found(APPS / "sqlalchemy_shop")
    by_rule = {(f.name, Path(f.path).name): f for f in result.findings}
    share = by_rule[("select-for-update", "orders.py")]
    text = (APPS / "sqlalchemy_shop" / "shop" / "orders.py").read_text().splitlines()
    hits = [f for f in result.findings if f.name == "select-for-update" and f.line == 27]
    assert hits and text[26][hits[0].column - 1:].startswith("FOR SHARE"), (hits, text[26])
    assert "partly dynamic" in hits[0].message
    assert share.snippet  # the source line is shown
    _, worker = _found(APPS / "psycopg_worker")
    (index,) = [f for f in worker.findings if f.name == "sync-index"]
    source = (APPS / "psycopg_worker" / "worker.py").read_text().splitlines()
    assert source[index.line - 1][index.column - 1:].startswith("CREATE INDEX")


def test_foreign_keys_follow_the_profile():
    """Before 2026-08-26 every ORM foreign key is refused; from then on only cascades and keys added later."""
    old, result = _found(APPS / "sqlalchemy_shop", profile="2026-06-30")
    new, _ = _found(APPS / "sqlalchemy_shop")
    assert any("refused foreign keys before 2026-08-26" in f.message for f in result.findings)
    # the model's ForeignKey restates the key the migration adds: one finding, at the migration, declared at both
    (fk,) = [f for f in result.findings if f.name == "foreign-key" and f.line == 25]
    assert {(Path(r["path"]).name, r["line"]) for r in fk.related} == {("models.py", 17)}
    assert ("shop/models.py", 17, "orm-foreign-key") not in old
    # from 2026-08-26 the key is accepted: what is left at the model is the cascade's note (information)
    assert ("shop/models.py", 17, "orm-foreign-key") in new and ("alembic/versions/0001_initial.py", 25,
                                                                "foreign-key") in new


def _django_migration(root, *operations: str) -> None:
    """app/migrations/0001_initial.py holding these operations (one line each)."""
    (root / "app" / "migrations").mkdir(parents=True)
    (root / "app" / "migrations" / "0001_initial.py").write_text(
        "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    operations = [\n"
        + "".join(f"        {op}\n" for op in operations) + "    ]\n")


ADD_INDEX = "migrations.AddIndex(model_name='note', index=models.Index(fields=['body'], name='note_body')),"


def test_an_adapter_downgrades_exactly_what_it_handles(tmp_path):
    _django_migration(tmp_path, "migrations.CreateModel(name='Note', fields=[('id', models.BigAutoField("
                                "primary_key=True)), ('body', models.TextField()), ('ip', "
                                "models.GenericIPAddressField())]),", ADD_INDEX)
    (tmp_path / "settings.py").write_text(
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'x'}}\n")
    plain = {(f.name, f.severity.name) for f in scan([str(tmp_path)]).findings}
    assert {("sequence", "error"), ("sync-index", "error"), ("multiple-ddl", "error"),
            ("unsupported-type", "error")} <= plain
    (tmp_path / "settings.py").write_text(
        "DATABASES = {'default': {'ENGINE': 'aurora_dsql_django', 'NAME': 'postgres', 'CONN_MAX_AGE': 600}}\n")
    adapted = scan([str(tmp_path)]).findings
    severity = {f.name: f.severity.name for f in adapted}
    # what the adapter rewrites (identity/uuid keys, ASYNC indexes, no wrapping transaction) becomes info …
    assert severity["sequence"] == severity["sync-index"] == severity["multiple-ddl"] == "info"
    assert all("handled at run time by aurora-dsql-django" in f.message for f in adapted if f.severity.name == "info")
    # … and what it does not (an inet column) stays an error
    assert severity["unsupported-type"] == "error"


@pytest.mark.parametrize("manifest, text", [
    ("requirements.txt", "Django>=5.0\naurora-dsql-django==0.3.1  # the DSQL backend\n"),
    ("requirements-prod.in", "aurora_dsql_django\n"),
    ("pyproject.toml", "[project]\ndependencies = [\n  \"django>=5\",\n  \"aurora-dsql-django>=0.3\",\n]\n"),
    ("Pipfile", "[packages]\naurora-dsql-django = \"*\"\n"),
])
def test_an_adapter_named_only_in_a_dependency_manifest_is_found(tmp_path, manifest, text):
    _django_migration(tmp_path, ADD_INDEX)
    before = scan([str(tmp_path)])
    # AddIndex runs at once (no deferred SQL), so Django records the migration inside its transaction too
    assert sorted((f.name, f.severity.name) for f in before.findings) == [("ddl-dml-mix", "error"),
                                                                          ("sync-index", "error")]
    assert not before.adapters
    (tmp_path / manifest).write_text(text)
    after = scan([str(tmp_path)])
    assert after.adapters == {"aurora-dsql-django"}
    assert sorted((f.name, f.severity.name) for f in after.findings) == [("ddl-dml-mix", "info"),
                                                                         ("sync-index", "info")]


def test_a_commented_out_or_lookalike_dependency_is_no_adapter(tmp_path):
    (tmp_path / "requirements.txt").write_text("# aurora-dsql-django\naurora-dsql-django-extras==1\n")
    (tmp_path / "package.json").write_text('{"dependencies": {"@aws/aurora-dsql-prisma-tools": "^1.2.0"}}\n')
    assert scan([str(tmp_path)]).adapters == {"aurora-dsql-prisma-tools"}


def test_bad_python_never_stops_the_scan(tmp_path):
    (tmp_path / "broken.py").write_text("def f(:\n    cur.execute('SELECT 1')\n")
    (tmp_path / "binary.py").write_bytes(b"\x00\x01\x02execute" * 100)
    (tmp_path / "latin1.py").write_bytes("# caf\xe9\ncur.execute('TRUNCATE t')\n".encode("latin-1"))
    (tmp_path / "ok.py").write_text("def g(cur):\n    cur.execute('LOCK TABLE t')\n")
    result = scan([str(tmp_path)])
    errors = {Path(e.path).name: e for e in result.errors}
    assert errors["broken.py"].line == 1 and "syntax error" in errors["broken.py"].message
    assert "UTF-8" in errors["latin1.py"].message
    assert {(Path(f.path).name, f.name) for f in result.findings} == {("ok.py", "lock-table"),
                                                                     ("latin1.py", "truncate")}


def test_files_that_cannot_matter_never_reach_libcst(tmp_path, monkeypatch):
    from dsql_audit.sources import python

    calls = []
    real = python.cst.parse_module
    monkeypatch.setattr(python.cst, "parse_module", lambda text: calls.append(1) or real(text))
    (tmp_path / "util.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "repo.py").write_text("def q(cur):\n    cur.execute('TRUNCATE t')\n")
    result = scan([str(tmp_path)], jobs=1)
    assert len(calls) == 1 and [f.name for f in result.findings] == ["truncate"]


@pytest.mark.parametrize("source, reaches", [
    # seen on wagtail: **kwargs made every call look like it passed relationship(passive_deletes=...)
    ("import django\ndef f(**kw):\n    return g(**kw)\n", False),
    ("import django\ndef f(m):\n    m.objects.filter(a=1).delete()\n", False),
    ("import django\ndef f(m):\n    m.objects.all().delete()\n", True),
    ("import django\ndef f(m, rows):\n    m.objects.bulk_create(rows)\n", False),
    ("from django.db import transaction\n@transaction.atomic\ndef f(m, rows):\n    m.objects.bulk_create(rows)\n",
     True),
    ("import psycopg\ndef f(form):\n    form.commit(1)\n", False),
    ("import psycopg\ndef f(conn):\n    conn.commit()\n", True),
])
def test_the_gate_passes_exactly_what_the_visitor_can_report(source, reaches):
    from dsql_audit.sources import python

    assert python._worth_parsing("app/x.py", source) is reaches
    if not reaches:  # the gate's refusal loses nothing: libcst on the same file reports nothing either
        module = python.cst.parse_module(source)
        wrapper = python.MetadataWrapper(module, unsafe_skip_copy=True)
        visitor = python._Visitor("app/x.py", wrapper.module, wrapper.resolve(python.PositionProvider))
        wrapper.module.visit(visitor)
        visitor.finish()
        assert visitor.out == []


def test_vendored_and_ignored_folders_are_skipped(tmp_path):
    for folder in ("node_modules/pkg", ".venv/lib", "build/gen", "src"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "q.py").write_text("def q(cur):\n    cur.execute('TRUNCATE t')\n")
    (tmp_path / ".gitignore").write_text("# generated\nbuild/\n")
    found = {Path(f.path).parent.name for f in scan([str(tmp_path)]).findings}
    assert found == {"src"}


def test_a_field_named_at_run_time_keeps_its_primary_key(tmp_path):
    """A CreateModel field whose name is a variable (wagtail's parent_rel_name) is still a column: its
    primary key must not vanish into a missing-primary-key finding (a false positive found on real code)."""
    (tmp_path / "app" / "migrations").mkdir(parents=True)
    (tmp_path / "app" / "migrations" / "0001_initial.py").write_text(
        "from django.db import migrations, models\n\nparent_rel_name = 'page_ptr'\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    operations = [\n"
        "        migrations.CreateModel(name='Event', fields=[\n"
        "            (parent_rel_name, models.OneToOneField(parent_link=True, primary_key=True, serialize=False,\n"
        "                                                   on_delete=models.CASCADE, to='app.page')),\n"
        "        ]),\n"
        "    ]\n")
    names = {f.name for f in scan([str(tmp_path)]).findings}
    assert "missing-primary-key" not in names and "foreign-key" in names


def test_real_code_false_positives_stay_fixed(tmp_path):
    """Patterns found on wagtail and mlflow: a OneToOneField (unique) gets no extra index, a custom QuerySet
    method may filter, an AlterField changing only verbose_name sends no SQL, IN :ids is an expanding bind."""
    (tmp_path / "app" / "migrations").mkdir(parents=True)
    (tmp_path / "app" / "migrations" / "0002_more.py").write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    atomic = False\n"
        "    operations = [\n"
        "        migrations.AddField(model_name='page', name='owner', field=models.OneToOneField(\n"
        "            on_delete=models.CASCADE, to='app.user', db_constraint=False)),\n"
        "        migrations.AlterField(model_name='page', name='title',\n"
        "                              field=models.CharField(max_length=255, verbose_name='title')),\n"
        "    ]\n")
    (tmp_path / "app" / "views.py").write_text(
        "from django.db import models\nfrom sqlalchemy import text\n\n\n"
        "def purge(Page, conn, ids):\n"
        "    Page.objects.stale().delete()\n"
        "    conn.execute(text('DELETE FROM pages WHERE id IN :ids'), {'ids': ids})\n")
    findings = scan([str(tmp_path)]).findings
    # the one true finding: Django adds the column as ADD COLUMN … NOT NULL UNIQUE, which DSQL refuses
    assert [(f.name, f.line) for f in findings if f.severity.name != "info"] == [("alter-table", 7)]


def test_scanned_code_is_never_run(tmp_path):
    """Sources are parsed, never imported or executed: a module that would write a file at import time (and a
    setup.py, a conftest.py, a migration) leaves no trace."""
    marker = tmp_path / "executed"
    payload = f"import psycopg\nopen({str(marker)!r}, 'w').write('ran')\ncur.execute('TRUNCATE t')\n"
    for name in ("app/models.py", "setup.py", "conftest.py", "app/migrations/0001_x.py", "alembic/versions/1.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(payload)
    result = scan([str(tmp_path)])
    assert not marker.exists()
    assert sum(f.name == "truncate" for f in result.findings) == 5  # and every file was read


def test_superseded_migrations_are_named_not_reported():
    """0001 and 0002 are replaced by the squash: nothing of them is reported, the summary says so, and the
    AlterField after the squash is judged against the squash's state (varchar(200) → varchar(250))."""
    import json

    from dsql_audit.report.json_report import report_dict

    found, result = _found(APPS / "django_squash")
    assert not [f for f in found if Path(f[0]).name in ("0001_initial.py", "0002_story_headline.py")]
    assert sorted(Path(p).name for p in result.superseded) == ["0001_initial.py", "0002_story_headline.py"]
    summary = json.loads(json.dumps(report_dict(result)))["summary"]
    assert len(summary["superseded_migrations"]) == 2
    # 0001's identity column and 0002's ALTER COLUMN TYPE, never sent to a fresh database
    assert summary["superseded_findings"] >= 2 and result.superseded_findings == summary["superseded_findings"]
    alter = [f for f in result.findings if f.name == "alter-table" and f.line == 26]
    assert alter and "newsroom_story" in alter[0].message  # the AppConfig label names the table


def test_a_static_password_is_only_a_database_connections(tmp_path):
    """DSQL703's static password: a psycopg/psycopg2 connect() — not FTP, SMTP or a message broker's login."""
    (tmp_path / "services.py").write_text(
        "import ftplib\nimport pika\nimport psycopg2\nfrom psycopg import connect\n\n\n"
        "def ftp_upload():\n    ftp = ftplib.FTP()\n    ftp.connect('files.example.com', 21)\n"
        "    ftp.login(user='u', passwd='secret')\n"
        "    return pika.ConnectionParameters(host='mq', credentials=pika.PlainCredentials('u', password='mq'))\n\n\n"
        "def db():\n    a = psycopg2.connect(host='db', password='dbsecret')\n"
        "    b = connect(host='db', password='dbsecret2')\n    return a, b\n")
    found = {(f.line, f.name) for f in scan([str(tmp_path)]).findings}
    assert found == {(15, "connection-settings"), (16, "connection-settings")}


def test_locking_helpers_name_the_table_they_lock_or_say_it_is_unknown(tmp_path):
    """with_for_update() / select_for_update() name the mapped table their query chain starts from
    (never a placeholder), with the equality filters the chain shows; a chain whose model is not known here
    says so."""
    pkg = tmp_path / "shop"
    pkg.mkdir()
    (pkg / "models.py").write_text(
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n\n\n"
        "class Base(DeclarativeBase):\n    pass\n\n\n"
        "class Account(Base):\n    __tablename__ = 'accounts'\n    id: Mapped[int] = mapped_column(primary_key=True)\n")
    (pkg / "service.py").write_text(
        "from sqlalchemy import select\nfrom shop.models import Account\n\n\n"
        "def debit(session, account_id):\n"
        "    return session.execute(select(Account).where(Account.id == account_id).with_for_update())\n\n\n"
        "def legacy(session, account_id):\n"
        "    return session.query(Account).filter_by(id=account_id).with_for_update()\n\n\n"
        "def anything(q):\n    return q.with_for_update()\n")
    app = tmp_path / "orders"
    (app / "migrations").mkdir(parents=True)
    (app / "migrations" / "__init__.py").write_text("")
    (app / "views.py").write_text(
        "from django.db import transaction\nfrom orders.models import Order\n\n\n"
        "def pay(pk):\n    with transaction.atomic():\n"
        "        return Order.objects.filter(pk=pk).select_for_update().get()\n")
    found = scan([str(tmp_path)], profile=load_profile("2026-06-30")).findings
    locking = sorted((Path(f.path).name, f.line, f.object or "", f.message) for f in found
                     if f.name == "select-for-update")
    assert [(name, line) for name, line, *_ in locking] == [("service.py", 6), ("service.py", 10),
                                                            ("service.py", 14), ("views.py", 7)]
    messages = [m for *_, m in locking]
    assert "public.accounts" in messages[0] and "public.accounts" in messages[1]
    assert "(unknown table)" in messages[2]
    assert "public.orders_order" in messages[3]
    assert not any("orm_query" in m for m in messages)
