"""Secrets never printed: passwords in scanned code, in captured statements and in DSNs given on the command
line are masked in every report format; --redact strips literals from reported statements."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dsql_audit.secrets import mask

FORMATS = ("console", "json", "sarif", "markdown", "html", "junit")
SECRET = "hunter2pw"


@pytest.mark.parametrize("text, masked", [
    ('create_engine("postgresql+psycopg://app:hunter2pw@db/shop")', 'create_engine("postgresql+psycopg://app:*********@db/shop")'),
    ('DSN = "host=db user=app password=hunter2pw dbname=shop"', 'DSN = "host=db user=app password=********* dbname=shop"'),
    ("conninfo = \"password='a b\\' c' host=x\"", "conninfo = \"password='*******' host=x\""),
    ('psycopg.connect(host="db", password="hunter2pw")', 'psycopg.connect(host="db", password="*********")'),
    ("'PASSWORD': 'hunter2pw',", "'PASSWORD': '*********',"),
    ("ALTER ROLE app WITH PASSWORD 'hunter2pw'", "ALTER ROLE app WITH PASSWORD '*********'"),
    ("postgresql://h/db?user=u&password=hunter2pw&sslmode=require", "postgresql://h/db?user=u&password=*********&sslmode=require"),
    ("PGPASSWORD=hunter2pw psql -h db", "PGPASSWORD=********* psql -h db"),
    ("key AKIAABCDEFGHIJKLMNOP here", "key ******************** here"),
])
def test_secrets_are_masked_keeping_their_length(text, masked):
    assert mask(text) == masked and len(mask(text)) == len(text)


@pytest.mark.parametrize("text", ['password = os.environ["PW"]', 'x = "passenger"', "SELECT password_hash FROM users",
                                  "CREATE TABLE t (id int PRIMARY KEY)", "https://example.com/path"])
def test_what_is_not_a_secret_stays(text):
    assert mask(text) == text


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dsql_audit", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


@pytest.mark.parametrize("fmt", FORMATS)
def test_passwords_in_scanned_code_and_sql_are_never_printed(tmp_path, fmt):
    (tmp_path / "app.py").write_text(
        "import psycopg\nimport sqlalchemy\n"
        f'engine = sqlalchemy.create_engine("postgresql+psycopg://app:{SECRET}@db/shop", pool_recycle=1800)\n'
        f'conn = psycopg.connect(host="db", password="{SECRET}")\n'
        f"conn.execute(\"ALTER ROLE app WITH PASSWORD '{SECRET}'; TRUNCATE audit\")\n")
    (tmp_path / "roles.sql").write_text(f"CREATE ROLE reporter LOGIN PASSWORD '{SECRET}';\nTRUNCATE t;\n")
    r = _cli("scan", str(tmp_path), "-f", fmt)
    assert r.returncode == 1
    assert SECRET not in r.stdout + r.stderr
    assert "*" * len(SECRET) in r.stdout or fmt == "markdown"  # the finding is there, its secret masked


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_dsn_with_a_password_is_never_printed(fmt):
    dsn = f"postgresql://bob:{SECRET}@127.0.0.1:1/db?connect_timeout=2"
    r = _cli("catalog", dsn, "-f", fmt)
    assert r.returncode == 2 and "cannot connect" in r.stderr and SECRET not in r.stdout + r.stderr


def test_replay_masks_captured_secrets_and_target_dsns(tmp_path):
    capture = tmp_path / "w.sql"
    capture.write_text(f"ALTER ROLE app WITH PASSWORD '{SECRET}';\nTRUNCATE t;\n")
    r = _cli("replay", str(capture), "-f", "json", "--target", f"host=127.0.0.1 port=1 password={SECRET} "
             "connect_timeout=2", "--allow-writes")
    assert SECRET not in r.stdout + r.stderr
    r = _cli("replay", str(capture), "-f", "json", "--redact")
    assert SECRET not in r.stdout + r.stderr and "'?'" not in r.stdout


@pytest.mark.parametrize("dsn", [
    "postgresql://bob:S3cretPw@[::1:5432/db",  # libpq quotes a malformed URI whole in its error
    "postgresql://bob:S%33cretPw@[::1:5432/db",  # percent-encoded: the decoded form is masked too
    "postgresql://bob@[::1:5432/db?password=S3cretPw",
    "host=/nonexistent password='S3cretPw' port=notaport",
    "host=/nonexistent password=S3cretPw port=notaport",
])
def test_a_driver_error_never_prints_the_password(dsn, tmp_path):
    capture = tmp_path / "pgss.csv"
    capture.write_text("query,calls\nSELECT 1,1\n")
    for args in (["catalog", dsn], ["replay", str(capture), "--target", dsn, "--allow-writes"]):
        r = _cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        out = r.stdout + r.stderr
        assert "S3cretPw" not in out and "S%33cretPw" not in out, out
        assert "Traceback" not in out and "cannot connect" in out
