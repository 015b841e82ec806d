"""What is not PostgreSQL is not a finding: folders named for another database, another dialect's statements
in application code, JPQL; and entities whose schema something else writes are informational."""

from __future__ import annotations

import pytest

from dsql_audit.scan import scan
from dsql_audit.sources import discover, other_database


@pytest.mark.parametrize("name,database", [
    ("sqlite", "SQLite"), ("migrations-sqlite", "SQLite"), ("mysqldb", "MySQL"), ("mysql_migrations", "MySQL"),
    ("mssql", "SQL Server"), ("oracle", "Oracle"), ("postgres", None), ("postgresdb", None), ("migrations", None),
    ("sqlite_to_postgres", None), ("mysqlish", None), ("h2", "H2"),
])
def test_folder_names_for_other_databases(name, database):
    assert other_database(name) == database


def _tree(tmp_path, files: dict):
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def test_a_scan_skips_folders_for_other_databases_and_says_so(tmp_path):
    """n8n's and wiki.js's layout: one migration folder per database. Only the PostgreSQL one is judged."""
    root = _tree(tmp_path, {
        "migrations/postgresdb/001.sql": "CREATE INDEX i ON t (a);\n",
        "migrations/sqlite/001.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT);\nTRUNCATE t;\n",
        "migrations-mysql/001.sql": "TRUNCATE t;\n",
    })
    result = scan([str(root)])
    assert {f.path.split("migrations")[-1] for f in result.findings} == {"/postgresdb/001.sql"}
    assert len(result.notes) == 1 and "2 folder(s) named for another database" in result.notes[0]
    assert "sqlite (SQLite)" in result.notes[0] and "migrations-mysql (MySQL)" in result.notes[0]
    # named on the command line, a folder is read whatever its name
    named = scan([str(root / "migrations" / "sqlite")])
    assert {f.name for f in named.findings} >= {"truncate"} and not named.notes
    assert discover([str(root)]).other_dialects  # the discovery keeps what it left out


@pytest.mark.parametrize("statement", [
    "CREATE TABLE `users` (id int)",
    "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT)",
    "CREATE TABLE t (id INT UNSIGNED NOT NULL AUTO_INCREMENT) ENGINE=InnoDB",
    "SELECT TOP 10 * FROM [dbo].[users]",
    "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?) ON CONFLICT DO NOTHING x",
    "SELECT * FROM users WITH (NOLOCK) WHERE id = @id",
])
def test_another_dialects_statement_in_code_is_not_a_finding(tmp_path, statement):
    src = tmp_path / "repo.js"
    src.write_text(f"async function f(db) {{\n  await db.query({statement!r});\n}}\n")
    assert [f.name for f in scan([str(src)]).findings] == []


def test_a_postgres_statement_that_does_not_parse_in_code_is_still_reported(tmp_path):
    src = tmp_path / "repo.js"
    src.write_text("async function f(db) {\n  await db.query('SELECT * FROM users WHERE id = = 1');\n}\n")
    assert [f.name for f in scan([str(src)]).findings] == ["parse-error"]


def test_a_named_bind_parameter_is_not_a_parse_error(tmp_path):
    """Sequelize replacements and Rails' where(\"… :name\") use :name, which the JS reader does not rewrite."""
    src = tmp_path / "repo.js"
    src.write_text("async function f(s) {\n  await s.query('SELECT * FROM users WHERE team_id = :team',"
                   " { replacements: { team: 1 } });\n}\n")
    assert [f.name for f in scan([str(src)]).findings] == []


def test_jpql_is_not_sql_but_native_and_jdbi_queries_are(tmp_path):
    repo = tmp_path / "Repo.java"
    repo.write_text(
        "import jakarta.persistence.EntityManager;\nclass Repo {\n  void a(EntityManager entityManager) {\n"
        '    entityManager.createQuery("select o from Operation o left join fetch o.labels where o.id = :id");\n'
        '    entityManager.createQuery("SELECT u FROM User u");\n'
        '    entityManager.createNativeQuery("SELECT * FROM operation FOR SHARE");\n  }\n}\n')
    dao = tmp_path / "Dao.java"  # JDBI's createQuery takes SQL
    dao.write_text("import org.jdbi.v3.core.Handle;\nclass Dao {\n  void a(Handle handle) {\n"
                   '    handle.createQuery("TRUNCATE operation");\n  }\n}\n')
    found = sorted((f.path.rsplit("/", 1)[-1], f.line, f.name) for f in scan([str(repo), str(dao)]).findings)
    assert found == [("Dao.java", 4, "truncate"), ("Repo.java", 6, "select-for-update")]


_ENTITY = """import jakarta.persistence.*;

@Entity
@Table(name = "bank_account")
public class BankAccount {
    @Id
    @GeneratedValue(strategy = GenerationType.SEQUENCE, generator = "sequenceGenerator")
    @SequenceGenerator(name = "sequenceGenerator")
    private Long id;
}
"""


@pytest.mark.parametrize("owner", [
    {"src/main/resources/application.yml": "spring:\n  jpa:\n    hibernate:\n      ddl-auto: none\n"},
    {"src/main/resources/application.properties": "spring.jpa.hibernate.ddl-auto=validate\n"},
    {"src/main/resources/config/liquibase/master.xml":
     '<databaseChangeLog xmlns="http://www.liquibase.org/xml/ns/dbchangelog">\n'
     '  <changeSet id="1" author="a"><createTable tableName="bank_account">\n'
     '    <column name="id" type="bigint"><constraints primaryKey="true"/></column>\n'
     '  </createTable></changeSet>\n</databaseChangeLog>\n'},
])
def test_entities_are_informational_where_something_else_writes_the_schema(tmp_path, owner):
    entity = {"src/main/java/app/BankAccount.java": _ENTITY}
    alone = scan([str(_tree(tmp_path / "alone", entity))])
    owned = scan([str(_tree(tmp_path / "owned", {**entity, **owner}))])
    jpa_alone = [f for f in alone.findings if f.framework == "jpa"]
    jpa_owned = [f for f in owned.findings if f.framework == "jpa"]
    assert jpa_alone and {f.severity.name for f in jpa_alone} == {"error"}
    assert jpa_owned and {f.severity.name for f in jpa_owned} == {"info"}
    assert all("Hibernate does not write this schema here" in f.message for f in jpa_owned)
