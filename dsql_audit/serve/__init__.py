"""`dsql-audit serve`: DSQL on localhost for any PostgreSQL client (see server.py and docs/serve.md)."""

from __future__ import annotations

import datetime
import json
import os
import ssl
import tempfile
from pathlib import Path

from dsql_audit.serve.server import Server

__all__ = ["Server", "self_signed_context", "write_report"]


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
    return ctx


def write_report(server: Server, path: str, started: float) -> None:
    """The violations seen while serving, as json, sarif or markdown (by the file's extension)."""
    from dsql_audit import __version__
    from dsql_audit.catalog import load_catalog
    from dsql_audit.output import write_text  # atomic: an interrupted write leaves the previous file

    findings = server.findings()
    for f in findings:
        f["time"] = datetime.datetime.fromtimestamp(f["time"], datetime.timezone.utc).isoformat()
    suffix = Path(path).suffix.lower()
    if suffix == ".sarif":
        catalog = load_catalog()
        used = sorted({f["code"] for f in findings if f.get("code")})
        rules = [{"id": c, "name": catalog.get(c).slug, "shortDescription": {"text": catalog.get(c).title},
                  "helpUri": catalog.get(c).docs} for c in used]
        results = [{"ruleId": f["code"] or f["rule"], "level": "error",
                    "message": {"text": f"{f['sqlstate']} {f['message']} — {' '.join(f['statement'].split())}"},
                    "locations": [{"logicalLocations": [{"name": f"session {f['session']}", "kind": "module",
                                                          "fullyQualifiedName": f"{f['client']}/{f['session']}"}]}],
                    "properties": {k: f[k] for k in ("client", "user", "application_name", "time", "transaction")}}
                   for f in findings]
        doc = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
               "runs": [{"tool": {"driver": {"name": "dsql-audit serve", "version": __version__,
                                             "informationUri": "https://github.com/", "rules": rules}},
                         "results": results}]}
        write_text(path, json.dumps(doc, indent=2))
        return
    if suffix in (".md", ".markdown"):
        lines = [f"# dsql-audit serve: {len(findings)} DSQL violations", "",
                 "| time | client | rule | SQLSTATE | message | statement |", "|---|---|---|---|---|---|"]
        for f in findings:
            stmt = " ".join(f["statement"].split()).replace("|", "\\|")[:200]
            lines.append(f"| {f['time']} | {f['client']} | {f.get('code') or ''} {f['rule']} | {f['sqlstate']} | "
                         f"{f['message'].replace('|', '/')} | `{stmt}` |")
        write_text(path, "\n".join(lines) + "\n")
        return
    doc = {"tool": {"name": "dsql-audit", "version": __version__}, "mode": "serve",
           "profile": server.engine.profile.date if hasattr(server.engine.profile, "date") else None,
           "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(),
           "summary": {"violations": len(findings),
                       "by_rule": {r: sum(1 for f in findings if f["rule"] == r) for r in sorted({f["rule"] for f in findings})}},
           "findings": findings}
    write_text(path, json.dumps(doc, indent=2, default=str))


def temp_dir() -> str:
    return tempfile.mkdtemp(prefix="dsql-audit-serve-")
