"""Other databases replay talks to: the source database a schema is read from (``--schema-from``) and the
endpoint a capture is replayed against (``--target``, a real Aurora DSQL cluster in practice).

Passwords and tokens never reach output: every DSN shown goes through ``redact_dsn`` (dsql_audit.secrets).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from dsql_audit.secrets import redact_dsn

_DSQL_HOST = re.compile(r"\.dsql(?:-[a-z0-9]+)?\.[a-z0-9-]+\.on\.aws$", re.I)


class EndpointError(Exception):
    """The endpoint cannot be used (a usage or connection problem, exit code 2)."""


def _secrets(dsn: str) -> list[str]:
    """The passwords a DSN carries, as written and URL-decoded (a malformed DSN too: no parser needed)."""
    from urllib.parse import unquote

    found = re.findall(r"://[^:/@?\s]*:([^@/?\s]+)@", dsn)
    found += [m.strip("'") for m in re.findall(r"(?i)\b(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)", dsn)]
    if os.environ.get("PGPASSWORD"):
        found.append(os.environ["PGPASSWORD"])
    out = {s for f in found for s in (f, unquote(f)) if len(s) >= 3}
    return sorted(out, key=len, reverse=True)


def driver_error(exc: BaseException, dsn: str) -> str:
    """The first line of a driver's error with every password of ``dsn`` taken out: libpq quotes a malformed
    URI whole in its message (``invalid URI … "postgresql://bob:S3cret@[::1"``)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for secret in _secrets(dsn):
        text = text.replace(secret, "***")
    return redact_dsn(text)


def _host(dsn: str) -> str:
    try:
        from psycopg.conninfo import conninfo_to_dict

        return str(conninfo_to_dict(dsn).get("host") or os.environ.get("PGHOST") or "")
    except Exception:  # noqa: BLE001
        return ""


def is_dsql(dsn: str) -> bool:
    return bool(_DSQL_HOST.search(_host(dsn)))


def connect(dsn: str):
    """An autocommit psycopg connection: to an Aurora DSQL endpoint with an IAM auth token made by the
    optional aurora-dsql-python-connector (when the DSN gives no password), else plain libpq."""
    import psycopg

    try:
        if is_dsql(dsn) and "password" not in dsn.lower() and not os.environ.get("PGPASSWORD"):
            try:
                import aurora_dsql_psycopg
            except ImportError:
                raise EndpointError("an Aurora DSQL endpoint needs an IAM auth token: pip install "
                                    "'dsql-audit[dsql]' (aurora-dsql-python-connector), or pass a token as "
                                    "the password") from None
            return aurora_dsql_psycopg.connect(dsn, autocommit=True)
        return psycopg.connect(dsn, autocommit=True, connect_timeout=15)
    except psycopg.Error as exc:
        raise EndpointError(f"cannot connect to {redact_dsn(dsn)}: {driver_error(exc, dsn)}") from None


def dump_schema(dsn: str, out: Path) -> None:
    """The source database's schema as SQL (pg_dump --schema-only: reads the catalog, writes nothing)."""
    from dsql_audit.resources import pg_tool

    exe = pg_tool("pg_dump")
    if exe is None:
        raise EndpointError("--schema-from needs pg_dump (install the PostgreSQL client tools)")
    env = dict(os.environ, PGCONNECT_TIMEOUT="15", PGOPTIONS="-c default_transaction_read_only=on "
               "-c statement_timeout=60000 -c lock_timeout=5000")
    r = subprocess.run([exe, "--schema-only", "--no-owner", "--no-privileges", "-f", str(out), "-d", dsn],
                       capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or ["pg_dump failed"])[-1]
        raise EndpointError(f"cannot read the schema of {redact_dsn(dsn)}: {redact_dsn(msg)}")
