"""`dsql-audit serve`: DSQL on localhost for any PostgreSQL client (see server.py and docs/serve.md)."""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dsql_audit.serve.server import Server

__all__ = ["Server", "self_signed_context", "write_report"]


def __getattr__(name: str):
    """``Server`` on first use (PEP 562): serve/workers.py and `run` before it starts the command stay light."""
    if name == "Server":
        from dsql_audit.serve.server import Server

        return Server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def self_signed_context(directory: str) -> ssl.SSLContext:
    """A TLS context with a freshly generated self-signed certificate for localhost (DSQL requires TLS)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = Path(directory) / "server.crt", Path(directory) / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    ctx.dsql_files = (str(cert_path), str(key_path))  # a worker process builds the same context from them
    return ctx


# the report's format from its file name (anything else: the JSON that `dsql-audit report` reads)
_FORMATS = {".json": "json", ".sarif": "sarif", ".md": "markdown", ".markdown": "markdown", ".html": "html",
            ".htm": "html", ".xml": "junit", ".txt": "console"}


def write_report(server: Server, path: str, started: float) -> None:
    """The violations seen while serving, through the same reporters and JSON contract as scan and run (one
    finding per rule and call site, or per statement when a client sent no call site): `dsql-audit report`
    re-renders or merges the file. The format follows the file's extension."""
    from dsql_audit.config import Config
    from dsql_audit.output import write_text  # atomic: an interrupted write leaves the previous file
    from dsql_audit.report import render
    from dsql_audit.report.loaded import LoadedRunResult
    from dsql_audit.run.observe import group, observed_findings

    raw = server.findings()
    observations = group(raw)
    config, root = Config(), Path.cwd()
    per = [observed_findings([obs], config, root) for obs in observations]  # one finding per observation
    findings = [f for found in per for f in found]
    # who sent it: serve's clients are the report's subject (users, applications, client addresses)
    senders: dict = {}
    for f in raw:
        site = f.get("site") or None
        key = (f["rule"], site.get("f"), site.get("l")) if site else (f["rule"], " ".join(f["statement"].split()))
        senders.setdefault(key, []).append(f)
    for obs, found in zip(observations, per):
        site = obs.site or None
        key = (obs.rule, site.get("f"), site.get("l")) if site else (obs.rule, " ".join(obs.statement.split()))
        for finding in found:
            finding.message += _sent_by(senders.get(key, ()))
    findings.sort(key=lambda f: (f.path, f.line, f.rule))
    stats = getattr(server.engine, "stats", {}) or {}
    summary = {"command": ["dsql-audit", "serve"], "exit_status": 0,
               "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(),
               "seconds": round(max(0.0, datetime.datetime.now().timestamp() - started), 3),
               "interrupted": False, "statements": stats.get("statements", 0),
               "refused_by_dsql": stats.get("refused", len(raw)), "sessions": len({f.get("session") for f in raw}),
               "distinct_violations": len(findings), "with_call_site": sum(1 for f in raw if f.get("site")),
               "left_running_and_ended": 0}
    result = LoadedRunResult(findings=findings, errors=[], profile=server.engine.profile, inputs=0,
                             units=summary["statements"], run=summary)
    fmt = _FORMATS.get(Path(path).suffix.lower(), "json")
    write_text(path, render(fmt, result, color=False, fail_on="never"))


def _sent_by(raw: list) -> str:
    users = sorted({f.get("user") for f in raw if f.get("user")})
    apps = sorted({f.get("application_name") for f in raw if f.get("application_name")})
    clients = sorted({f.get("client") for f in raw if f.get("client")})
    parts = []
    if users:
        parts.append("user " + ", ".join(users[:3]) + (" …" if len(users) > 3 else ""))
    if apps:
        parts.append("application " + ", ".join(apps[:3]) + (" …" if len(apps) > 3 else ""))
    if clients:
        parts.append("from " + (clients[0] if len(clients) == 1 else f"{len(clients)} clients"))
    return f" — sent by {'; '.join(parts)}" if parts else ""


def temp_dir() -> str:
    return tempfile.mkdtemp(prefix="dsql-audit-serve-")
