"""Doctrine Migrations (PHP): the smallest framework module, read as Doctrine's generator writes migrations."""

from __future__ import annotations

from dsql_audit.scan import scan
from dsql_audit.sources.frameworks import detect, doctrine

MIGRATION = r"""<?php

declare(strict_types=1);

namespace DoctrineMigrations;

use Doctrine\DBAL\Schema\Schema;
use Doctrine\Migrations\AbstractMigration;

final class Version20240101000000 extends AbstractMigration
{
    public function getDescription(): string
    {
        return '';
    }

    public function up(Schema $schema): void
    {
        // this up() migration is auto-generated, please modify it to your needs
        $this->addSql('CREATE TABLE users (id SERIAL NOT NULL, email VARCHAR(180) NOT NULL, PRIMARY KEY(id))');
        $this->addSql('CREATE UNIQUE INDEX UNIQ_1483A5E9E7927C74 ON users (email)');
        $this->addSql('COMMENT ON COLUMN users.email IS \'the login\'');
        $this->addSql("ALTER TABLE users ADD {$this->column} TEXT");
    }

    public function down(Schema $schema): void
    {
        $this->addSql('DROP TABLE users');
    }
}
"""


def test_detects_a_doctrine_migration_and_nothing_else():
    assert detect("migrations/Version20240101000000.php", MIGRATION) is doctrine
    assert detect("src/Controller.php", "<?php $db->query('SELECT 1');") is None


def test_each_statement_at_its_first_character_one_transaction_down_apart():
    recs = doctrine.extract("migrations/Version20240101000000.php", MIGRATION)
    lines = MIGRATION.split("\n")
    for r in recs:  # the SQL starts exactly where the record says
        assert lines[r.line - 1][r.column - 1:].startswith(r.sql[:10].replace(" '", "\\'"))
    assert [r.line for r in recs] == [20, 21, 22, 23, 28]
    assert len({r.txn for r in recs if not r.down}) == 1 and recs[-1].down and recs[-1].txn != recs[0].txn
    assert recs[3].dynamic and not recs[0].dynamic
    assert recs[2].sql == "COMMENT ON COLUMN users.email IS  'the login '"  # escapes kept to their length


def test_a_non_transactional_migration_runs_each_statement_alone(tmp_path):
    text = MIGRATION.replace("    public function down", "    public function isTransactional(): bool\n"
                             "    {\n        return false;\n    }\n\n    public function down")
    recs = doctrine.extract("m.php", text)
    assert recs and all(r.txn is None for r in recs)


def test_scan_reports_at_the_php_lines(tmp_path):
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "Version20240101000000.php").write_text(MIGRATION)
    found = {(f.line, f.name) for f in scan([str(tmp_path)]).findings}
    assert {(20, "sequence"), (21, "sync-index"), (21, "multiple-ddl")} <= found
    assert not any(line == 28 and name == "multiple-ddl" for line, name in found)  # down() is apart
