"""False-positive patterns found by hand-checking scans of real applications (issue 18): each is a shape real
code has, written small, with what the scan must (not) report."""

from __future__ import annotations

from pathlib import Path

from dsql_audit.scan import scan


def _scan(root: Path, files: dict) -> list:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted((Path(f.path).name, f.line, f.name) for f in scan([str(root)]).findings)


ALEMBIC_HEAD = "import sqlalchemy as sa\nfrom alembic import op\n\nrevision = '0001'\ndown_revision = None\n\n\n"


def test_an_early_return_for_postgresql_skips_the_rest(tmp_path):
    """Airflow 0104: `if dialect_name == "postgresql": return` — what follows never runs on PostgreSQL."""
    found = _scan(tmp_path, {"m/versions/0001_fix.py": ALEMBIC_HEAD +
                             "def upgrade():\n    dialect_name = op.get_bind().dialect.name\n"
                             "    if dialect_name == 'postgresql':\n        return\n"
                             "    op.create_foreign_key('fk', 'a', 'b', ['b_id'], ['id'])\n"
                             "    op.create_index('ix', 'a', ['b_id'])\n"})
    assert found == []


def test_a_function_for_another_database_is_not_read(tmp_path):
    found = _scan(tmp_path, {"m/versions/0001_x.py": ALEMBIC_HEAD +
                             "def _create_procedures_mysql():\n"
                             "    op.execute('CREATE TRIGGER t BEFORE INSERT ON a')\n\n\n"
                             "def upgrade():\n    op.create_index('ix', 'a', ['b'])\n"})
    assert found == [("0001_x.py", 13, "sync-index")]


def test_the_metadata_of_self_is_not_the_packages_models(tmp_path):
    """Airflow's BaseDBManager.create_db_from_orm: self.metadata is set by a subclass, not the core models."""
    found = _scan(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/models.py": "from sqlalchemy import Column, Integer, String\nfrom sqlalchemy.orm import declarative_base\n"
                         "Base = declarative_base()\n\n\nclass A(Base):\n    __tablename__ = 'a'\n"
                         "    id = Column(Integer, primary_key=True)\n    name = Column(String(10))\n\n\n"
                         "class B(Base):\n    __tablename__ = 'b'\n    id = Column(Integer, primary_key=True)\n",
        "pkg/manager.py": "from sqlalchemy import create_engine\n\n\nclass Manager:\n    metadata = None\n\n"
                          "    def create(self, engine):\n        self.metadata.create_all(engine)\n"})
    assert not [f for f in found if f[0] == "manager.py" and f[2] != "connection-settings"]


def test_an_enum_type_is_created_once_and_never_by_add_column_or_existing_type(tmp_path):
    """ihatemoney: two create_table with the same Enum create the type once; add_column and
    alter_column(existing_type=Enum) create none."""
    enum = "sa.Enum('a', 'b', name='mode')"
    found = _scan(tmp_path, {"m/versions/0001_x.py": ALEMBIC_HEAD +
                             "def upgrade():\n"
                             f"    op.create_table('p', sa.Column('id', sa.Uuid(), primary_key=True),"
                             f" sa.Column('m', {enum}))\n"
                             f"    op.create_table('q', sa.Column('id', sa.Uuid(), primary_key=True),"
                             f" sa.Column('m', {enum}))\n"
                             f"    op.add_column('r', sa.Column('m', {enum}))\n"
                             f"    op.alter_column('r', 'm', existing_type={enum}, nullable=True)\n"})
    assert [f for f in found if f[2] == "custom-type"] == [("0001_x.py", 9, "custom-type")]


def test_alembic_keyword_arguments_and_batch_signatures_name_the_tables(tmp_path):
    """Airflow 0041 / 0096: create_foreign_key by keywords, batch_op.create_unique_constraint(name, columns)."""
    (tmp_path / "m" / "versions").mkdir(parents=True)
    (tmp_path / "m" / "versions" / "0001_x.py").write_text(
        ALEMBIC_HEAD + "def upgrade():\n"
        "    op.create_foreign_key(constraint_name='fk_a_b', source_table='a', referent_table='b',\n"
        "                          local_cols=['b_id'], remote_cols=['id'], ondelete='CASCADE')\n"
        "    with op.batch_alter_table('team') as batch_op:\n"
        "        batch_op.create_unique_constraint('team_name_uq', ['name'])\n")
    messages = [f.message for f in scan([str(tmp_path)]).findings]
    assert any("a → b" in m for m in messages), messages
    assert any("public.team.team_name_uq" in m for m in messages), messages
    assert not any(" t " in m or "→ p" in m or "public.t." in m for m in messages), messages


def test_a_join_table_takes_the_projects_default_auto_field(tmp_path):
    """pretix: DEFAULT_AUTO_FIELD = BigAutoField makes the auto-created join table's id bigint."""
    _scan(tmp_path, {
        "proj/settings.py": "DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'\n",
        "proj/shop/migrations/0001_initial.py":
            "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n"
            "    operations = [\n        migrations.CreateModel(name='Tag', fields=[('id', models.BigAutoField("
            "primary_key=True, serialize=False))]),\n"
            "        migrations.CreateModel(name='Item', fields=[('id', models.BigAutoField(primary_key=True, "
            "serialize=False)), ('tags', models.ManyToManyField(to='shop.tag'))]),\n    ]\n"})
    messages = [f.message for f in scan([str(tmp_path)]).findings if f.name == "sequence"]
    assert messages and not any("is integer" in m for m in messages), messages


def test_only_a_sole_integer_key_that_is_no_foreign_key_is_serial(tmp_path):
    """Airflow 0026/0048: composite integer keys and a key that is also a foreign key are not SERIAL
    (SQLAlchemy's autoincrement="auto"); the sole integer key is."""
    found = _scan(tmp_path, {"m/versions/0001_x.py": ALEMBIC_HEAD + "def upgrade():\n"
                             "    op.create_table('pair', sa.Column('a', sa.Integer(), primary_key=True),\n"
                             "                    sa.Column('b', sa.Integer(), primary_key=True))\n"})
    assert not [f for f in found if f[2] == "sequence"]
    found = _scan(tmp_path / "2", {"m/versions/0001_x.py": ALEMBIC_HEAD + "def upgrade():\n"
                                   "    op.create_table('note', sa.Column('run_id', sa.Integer(), "
                                   "sa.ForeignKey('run.id'), primary_key=True))\n"})
    assert not [f for f in found if f[2] == "sequence"]
    found = _scan(tmp_path / "3", {"m/versions/0001_x.py": ALEMBIC_HEAD + "def upgrade():\n"
                                   "    op.create_table('run', sa.Column('id', sa.Integer(), primary_key=True))\n"})
    assert [f[2] for f in found] == ["sequence"]


def test_a_method_of_another_class_is_not_the_callers(tmp_path):
    """pretix stripe views: `self.get(request)` in one view is not the atomic get() of another class."""
    found = _scan(tmp_path, {"views.py": "from django.db import transaction\n\n\n"
                             "class Return:\n    @transaction.atomic\n    def get(self, request):\n        return 1\n\n\n"
                             "class Pay:\n    @transaction.atomic\n    def post(self, request):\n"
                             "        return self.get(request)\n\n    def get(self, request):\n        return 2\n"})
    assert not [f for f in found if f[2] == "savepoint"]


def test_the_user_model_is_the_one_the_settings_name(tmp_path):
    """pretix: AUTH_USER_MODEL = "shop.User" — a relation to settings.AUTH_USER_MODEL points at shop_user."""
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "settings.py").write_text("AUTH_USER_MODEL = 'shop.User'\n")
    _scan(tmp_path, {"proj/shop/migrations/0001_initial.py":
                     "from django.conf import settings\nfrom django.db import migrations, models\n\n\n"
                     "class Migration(migrations.Migration):\n    operations = [\n"
                     "        migrations.CreateModel(name='Order', fields=[('id', models.BigAutoField(primary_key=True,"
                     " serialize=False)), ('owner', models.ForeignKey(on_delete=models.CASCADE, "
                     "to=settings.AUTH_USER_MODEL))]),\n    ]\n"})
    messages = [f.message for f in scan([str(tmp_path)]).findings if f.name == "foreign-key"]
    assert messages and all("shop_user" in m for m in messages), messages


def test_a_helpers_batch_operations_run_where_the_batch_block_is(tmp_path):
    """Airflow 0041: a helper given batch_op adds an index; Alembic runs it when the caller's batch block ends,
    so the statement is sent there (the helper's own lines send nothing); an op.X() in a helper runs there."""
    found = _scan(tmp_path, {"m/versions/0001_x.py": ALEMBIC_HEAD +
                             "def _rename_index(batch_op, name, columns):\n"
                             "    batch_op.create_index(name, columns)\n\n\n"
                             "def _direct():\n    op.create_index('ix_b', 'b', ['c'])\n\n\n"
                             "def upgrade():\n"
                             "    with op.batch_alter_table('asset') as batch_op:\n"
                             "        _rename_index(batch_op, 'ix_a', ['name'])\n"
                             "    _direct()\n"})
    sync = [f[1] for f in found if f[2] == "sync-index"]
    assert sync == [13, 18], found  # the op.create_index in its helper, the batch one at its call


def test_a_locking_helper_is_judged_with_the_values_that_reach_it(tmp_path):
    """A helper forwarding key_share=/read=/no_key= into the ORM's locking call: its default, and the literals
    the module's callers pass, decide the clause (FOR NO KEY UPDATE / FOR SHARE are refused)."""
    found = _scan(tmp_path, {
        "accounts.py": "from sqlalchemy import select\n\n\n"
                       "def lock_account(session, account_id, *, key_share=True):\n"
                       "    stmt = select(Account).where(Account.id == account_id)\n"
                       "    return session.scalars(stmt.with_for_update(key_share=key_share)).one()\n\n\n"
                       "def lock_plain(session, account_id, *, read=False):\n"
                       "    return session.scalars(select(Account).with_for_update(read=read)).one()\n\n\n"
                       "def audit(session):\n    return lock_plain(session, 1, read=True)\n",
        "orders.py": "from django.db import models\n\n\n"
                     "def lock(qs, no_key=False):\n    return qs.select_for_update(no_key=no_key)\n\n\n"
                     "def plain(qs):\n    return lock(qs)\n"})
    locking = [(f[0], f[1]) for f in found if f[2] == "select-for-update"]
    # the default key_share=True; read=True from audit(); no_key stays False everywhere (FOR UPDATE is accepted)
    assert locking == [("accounts.py", 6), ("accounts.py", 10)], found
