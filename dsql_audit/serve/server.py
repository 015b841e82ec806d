"""`dsql-audit serve`: the PostgreSQL v3 wire protocol in front of the DSQL-semantics engine.

One thread per client connection, one engine session per client (the engine's sessions are
thread-per-session by contract); every statement goes through ``Session.execute`` — the wire front adds
no semantics of its own. Results travel as PostgreSQL produced them (``raw=True``): column descriptions
and text or binary values are forwarded untouched.
"""

from __future__ import annotations

import random
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field

from dsql_audit.engine import DsqlError, Engine, Result, SessionClosed
from dsql_audit.engine.pgcall import Field
from dsql_audit.serve.binary import encoder
from dsql_audit.serve import protocol as P
from dsql_audit.serve.protocol import ProtocolError

# ParameterStatus a client gets at startup (PostgreSQL 16 reports these; server_version as DSQL answers it)
REPORTED = ("application_name", "client_encoding", "DateStyle", "default_transaction_read_only",
            "in_hot_standby", "integer_datetimes", "IntervalStyle", "is_superuser", "server_encoding",
            "session_authorization", "standard_conforming_strings", "TimeZone")
NOT_SETTINGS = {"user", "database", "options", "replication"}
_TEXT, _BOOL, _INT8 = 25, 16, 20


@dataclass
class Portal:
    query: str
    oids: list
    params: list
    param_formats: list
    result_formats: list
    result: Result | None = None
    sent: int = 0


@dataclass
class ClientInfo:
    address: str
    user: str
    application_name: str = ""
    connected: float = field(default_factory=time.time)


class Server:
    def __init__(self, engine: Engine, host: str = "127.0.0.1", port: int = 5433, password: str | None = None,
                 tls: ssl.SSLContext | None = None, log=None):
        self.engine = engine
        self.host, self.port = host, port
        self.password = password
        self.tls = tls
        self.log = log or (lambda line: None)
        self.clients: dict[int, "ClientConnection"] = {}
        self.client_info: dict[int, ClientInfo] = {}  # engine session id → who
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        engine.listeners.append(self._on_finding)

    # -- lifecycle ---------------------------------------------------------------------------------
    def bind(self) -> "Server":
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(512)
        sock.settimeout(0.2)
        self.port = sock.getsockname()[1]
        self._sock = sock
        return self

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = ClientConnection(self, conn, f"{addr[0]}:{addr[1]}")
            t = threading.Thread(target=client.run, name=f"dsql-client-{addr[1]}", daemon=True)
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def start(self) -> "Server":
        """Serve on a background thread (tests, embedding)."""
        if self._sock is None:
            self.bind()
        threading.Thread(target=self.serve_forever, name="dsql-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        for client in list(self.clients.values()):
            client.close()
        for t in self._threads:
            t.join(5)

    @property
    def dsn(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        ssl_mode = "require" if self.tls else "disable"
        return f"postgresql://admin@{host}:{self.port}/postgres?sslmode={ssl_mode}"

    # -- shared ------------------------------------------------------------------------------------
    def register(self, client: "ClientConnection") -> tuple[int, int]:
        with self._lock:
            while True:
                key = random.randint(1, 2**31 - 1)
                if key not in self.clients:
                    self.clients[key] = client
                    return key, random.randint(1, 2**31 - 1)

    def unregister(self, client: "ClientConnection") -> None:
        with self._lock:
            self.clients.pop(client.key, None)

    def cancel(self, key: int, secret: int) -> None:
        client = self.clients.get(key)
        if client is not None and client.secret == secret and client.session is not None and client.busy:
            self.engine.cancel(client.session.pid)

    def _on_finding(self, finding: dict) -> None:
        info = self.client_info.get(finding["session"])
        who = f"{info.address} {info.user}" + (f" ({info.application_name})" if info.application_name else "") \
            if info else f"session {finding['session']}"
        statement = " ".join(finding["statement"].split())
        if len(statement) > 100:
            statement = statement[:97] + "..."
        self.log(f"{finding.get('code') or ''} {finding['rule']}  {finding['sqlstate']} {finding['message']}"
                 f"  [{who}]  {statement}")

    def findings(self) -> list[dict]:
        out = []
        for f in list(self.engine.findings):
            info = self.client_info.get(f["session"])
            out.append({**f, "client": info.address if info else None, "user": info.user if info else None,
                        "application_name": info.application_name if info else None})
        return out


class ClientConnection:
    def __init__(self, server: Server, sock: socket.socket, address: str):
        self.server = server
        self.sock = sock
        self.address = address
        self.session = None
        self.key = self.secret = 0
        self.busy = False
        self.out = bytearray()
        self.prepared: dict[str, tuple[str, list]] = {}
        self.portals: dict[str, Portal] = {}
        self.skip_to_sync = False
        self.reported: dict[str, str] = {}
        self._rfile = self._rfile_sock = None
        self.settings_changed = False

    # -- I/O ---------------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.out += data
        if len(self.out) > 1 << 16:
            self.flush()

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(self.out)
            self.out.clear()

    def rfile(self):
        if self._rfile is None or self._rfile_sock is not self.sock:
            self._rfile, self._rfile_sock = self.sock.makefile("rb", buffering=1 << 16), self.sock
        return self._rfile

    def close(self) -> None:
        try:  # the buffered reader holds the socket open too
            if self._rfile is not None:
                self._rfile.close()
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    # -- the connection's life ---------------------------------------------------------------------
    def run(self) -> None:
        try:
            if self.startup():
                self.loop()
        except ProtocolError as exc:
            self._fatal("08P01", str(exc))
        except (ConnectionError, OSError, ssl.SSLError):
            pass  # the client went away
        except Exception as exc:  # noqa: BLE001 - one client's failure must not take the server down
            import traceback

            if isinstance(exc, ValueError) and self.server._stop.is_set():
                return  # "read of closed file": the server closed this connection while stopping

            self.server.log(f"internal error serving {self.address}: {exc!r}\n{traceback.format_exc()}")
            self._fatal("XX000", f"internal error in dsql-audit serve: {exc}")
        finally:
            if self.session is not None:
                self.session.close()  # PostgreSQL rolls back whatever transaction was open
            self.server.unregister(self)
            self.close()

    def _fatal(self, sqlstate: str, message: str) -> None:
        try:
            self.out.clear()
            self.sock.sendall(P.error(sqlstate, message, severity="FATAL"))
        except OSError:
            pass

    def startup(self) -> bool:
        self.sock.settimeout(60)  # a client that never finishes its startup is dropped
        while True:
            code, body = P.read_startup(self.sock)
            if code == P.SSL_REQUEST:
                if self.server.tls is None:
                    self.sock.sendall(b"N")
                else:
                    self.sock.sendall(b"S")
                    self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
                continue
            if code == P.GSSENC_REQUEST:
                self.sock.sendall(b"N")
                continue
            if code == P.CANCEL_REQUEST:
                if len(body) >= 8:
                    key, secret = struct.unpack("!ii", body[:8])
                    self.server.cancel(key, secret)
                return False
            if code != P.PROTOCOL_3:
                raise ProtocolError(f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
            break
        params = P.startup_params(body)
        user = params.get("user") or ""
        database = params.get("database") or user
        if self.server.tls is not None and not isinstance(self.sock, ssl.SSLSocket):
            # DSQL's endpoint requires TLS (DSQL-REFERENCE §8); --tls makes serve do the same
            self._fatal("28000", "connection requires SSL (sslmode=require): DSQL accepts only TLS connections")
            return False
        if self.server.password is not None:
            self.sock.sendall(P.auth_cleartext())
            kind, pw = P.read_message(self.rfile())
            if kind != b"p" or pw.rstrip(b"\0").decode("utf-8", "replace") != self.server.password:
                self._fatal("28P01", f'password authentication failed for user "{user}"')
                return False
        if database != "postgres":  # one database per cluster (DSQL-REFERENCE §7)
            self._fatal("3D000", f'database "{database}" does not exist')
            return False
        settings = {k: v for k, v in params.items() if k not in NOT_SETTINGS}
        settings.update(_options(params.get("options", "")))
        engine = self.server.engine
        try:
            if not engine.postgres_alive():  # PostgreSQL died under us: start it again (its data survives)
                self.server.log("the embedded PostgreSQL is not running: restarting it")
                engine.recover()
            self.session = engine.session(user=user or None, settings=settings)
        except Exception as exc:  # noqa: BLE001 - an unknown role or a bad setting
            diag = getattr(exc, "diag", None)
            if getattr(diag, "sqlstate", None) == "22023" or "role" in str(exc):
                self._fatal("28000", f'role "{user}" does not exist')
            else:
                self._fatal(getattr(diag, "sqlstate", None) or "08006",
                            getattr(diag, "message_primary", None) or str(exc))
            return False
        self.server.client_info[self.session.id] = ClientInfo(self.address, user or "admin",
                                                              params.get("application_name", ""))
        self.key, self.secret = self.server.register(self)
        self.send(P.auth_ok())
        self._parameter_status(initial=True)
        self.send(P.backend_key(self.key, self.secret))
        self.send(P.ready("I"))
        self.flush()
        self.sock.settimeout(None)
        return True

    def _parameter_status(self, initial: bool = False) -> None:
        """ParameterStatus for settings that changed (only looked at after statements that can change them)."""
        if not (initial or self.settings_changed):
            return
        self.settings_changed = False
        pgconn = self.session.conn.pgconn
        for name in REPORTED:
            value = (pgconn.parameter_status(name.encode()) or b"").decode()
            if value != self.reported.get(name):
                self.reported[name] = value
                self.send(P.parameter_status(name, value))
        if initial:
            self.send(P.parameter_status("server_version", "16.15"))

    def loop(self) -> None:
        rfile = self.rfile()  # buffered: one recv serves several pipelined messages
        handlers = {b"Q": self.on_query, b"P": self.on_parse, b"B": self.on_bind, b"D": self.on_describe,
                    b"E": self.on_execute, b"S": self.on_sync, b"H": self.on_flush, b"C": self.on_close}
        while True:
            kind, body = P.read_message(rfile)
            if kind == b"X":
                return
            if self.skip_to_sync and kind not in (b"S", b"Q"):
                continue  # after an error the extended protocol discards everything up to Sync
            handler = handlers.get(kind)
            if handler is None:
                if kind in (b"d", b"c", b"f"):
                    continue  # COPY data outside COPY: ignored, as PostgreSQL does
                raise ProtocolError(f"invalid frontend message type {kind!r}")
            handler(body)

    # -- simple query ------------------------------------------------------------------------------
    def on_query(self, body: bytes) -> None:
        self.skip_to_sync = False
        sql = P.Reader(body).cstring()
        try:
            result = self._execute(sql)
            for r in result.results or [result]:
                self._send_result(r, None)
        except DsqlError as error:
            for r in error.results:
                self._send_result(r, None)
            self._send_error(error)
            if isinstance(error, SessionClosed):
                self.flush()
                raise ConnectionResetError("DSQL closed the connection") from None
        self._parameter_status()
        self.send(P.ready(self.session.status))
        self.flush()

    def _execute(self, sql: str, *args, **kw) -> Result:
        head = sql.lstrip()[:6].upper()
        # a SET inside a multi-statement string changes settings too (a lone trailing ";" does not)
        self.settings_changed |= head.startswith(("SET", "RESET", "DISCARD")) or ";" in sql.rstrip().rstrip(";")
        self.session.notices.clear()
        self.busy = True
        try:
            return self.session.execute(sql, *args, raw=True, copy=_CopyChannel(self), **kw)
        finally:
            self.busy = False
            for diag in self.session.notices:
                self.send(P.notice(diag))

    def _send_result(self, r: Result, formats: list | None, limit: int = 0, portal: Portal | None = None) -> bool:
        """Rows and the command tag; False when a row limit suspended the portal."""
        if r.command_tag == "EMPTY":
            self.send(P.EMPTY_QUERY)
            return True
        fields, raw = _wire(r, formats)
        if portal is None and fields:
            self.send(P.row_description(fields))
        start = portal.sent if portal else 0
        end = len(raw) if not limit else min(len(raw), start + limit)
        for values in raw[start:end]:
            self.send(P.data_row(values))
        if portal is not None:
            portal.sent = end
            if end < len(raw):
                self.send(P.PORTAL_SUSPENDED)
                return False
        self.send(P.command_complete(r.command_tag))
        return True

    def _send_error(self, e: DsqlError) -> None:
        self.send(P.error(e.sqlstate, e.message, detail=e.detail, hint=e.hint, position=e.position))

    # -- extended query ----------------------------------------------------------------------------
    def _fail_extended(self, error: DsqlError) -> None:
        self._send_error(error)
        self.skip_to_sync = True
        if isinstance(error, SessionClosed):
            self.flush()
            raise ConnectionResetError("DSQL closed the connection")

    def on_parse(self, body: bytes) -> None:
        name, query, oids = P.parse_parse(body)
        self.prepared[name] = (query, oids)
        self.send(P.PARSE_COMPLETE)

    def on_bind(self, body: bytes) -> None:
        portal, stmt, formats, values, result_formats = P.parse_bind(body)
        if stmt not in self.prepared:
            return self._fail_extended(DsqlError("26000", f'prepared statement "{stmt}" does not exist'))
        query, oids = self.prepared[stmt]
        self.portals[portal] = Portal(query, oids, values, formats, result_formats)
        self.send(P.BIND_COMPLETE)

    def on_describe(self, body: bytes) -> None:
        r = P.Reader(body)
        what, name = r.byte(), r.cstring()
        if what == b"S":
            if name not in self.prepared:
                return self._fail_extended(DsqlError("26000", f'prepared statement "{name}" does not exist'))
            query, oids = self.prepared[name]
            try:
                param_oids, fields = self._describe(query, oids)
            except DsqlError as error:
                return self._fail_extended(error)
            self.send(P.parameter_description(param_oids))
            self.send(P.row_description(fields) if fields else P.NO_DATA)
            return
        portal = self.portals.get(name)
        if portal is None:
            return self._fail_extended(DsqlError("34000", f'portal "{name}" does not exist'))
        if not self._run_portal(portal):
            return
        fields, _ = _wire(portal.result, portal.result_formats)
        self.send(P.row_description(fields) if fields else P.NO_DATA)

    def _describe(self, query: str, oids: list) -> tuple[list, list]:
        """Parameter types and result columns of a statement without running it (PostgreSQL's own
        answer; statements PostgreSQL cannot prepare, such as DSQL-only syntax, describe as no data)."""
        from psycopg import pq

        conn = self.session.conn
        with conn.lock:
            res = conn.pgconn.prepare(b"", query.encode(), list(oids) or None)
            if res.status != pq.ExecStatus.COMMAND_OK:
                return [o for o in oids], []
            res = conn.pgconn.describe_prepared(b"")
        params = [res.param_type(i) for i in range(res.nparams)]
        fields = [Field(res.fname(i).decode(), res.ftable(i), res.ftablecol(i), res.ftype(i), res.fsize(i),
                        res.fmod(i), 0) for i in range(res.nfields)]
        return params, fields

    def _run_portal(self, portal: Portal) -> bool:
        if portal.result is not None:
            return True
        formats = portal.result_formats
        result_format = formats[0] if len(set(formats)) == 1 else 0
        try:
            self.session.begin_implicit()  # statements up to Sync are one implicit transaction
            n = len(portal.params)
            # Parse may name fewer types than there are parameters; one format code applies to all
            types = (list(portal.oids) + [0] * n)[:n] or None
            formats = portal.param_formats
            formats = (formats * n if len(formats) == 1 else formats)[:n] or None
            portal.result = self._execute(portal.query, portal.params, param_types=types, param_formats=formats,
                                          result_format=result_format)
        except DsqlError as error:
            self._fail_extended(error)
            return False
        return True

    def on_execute(self, body: bytes) -> None:
        r = P.Reader(body)
        name, limit = r.cstring(), r.int32()
        portal = self.portals.get(name)
        if portal is None:
            return self._fail_extended(DsqlError("34000", f'portal "{name}" does not exist'))
        if not self._run_portal(portal):
            return
        try:
            self._send_result(portal.result, portal.result_formats, limit, portal)
        except ValueError as exc:  # a binary format asked for a type we only have as text
            self._fail_extended(DsqlError("0A000", str(exc)))

    def on_sync(self, body: bytes) -> None:
        if not self.skip_to_sync:
            try:
                self.session.end_implicit()
            except DsqlError as error:
                self._send_error(error)
        elif self.session.implicit:
            self.session.end_implicit()  # rolls the failed implicit transaction back
        self.skip_to_sync = False
        self.portals.pop("", None)
        self._parameter_status()
        self.send(P.ready(self.session.status))
        self.flush()

    def on_flush(self, body: bytes) -> None:
        self.flush()

    def on_close(self, body: bytes) -> None:
        r = P.Reader(body)
        what, name = r.byte(), r.cstring()
        (self.prepared if what == b"S" else self.portals).pop(name, None)
        self.send(P.CLOSE_COMPLETE)


class _CopyChannel:
    """COPY data between the client and the engine: CopyInResponse / CopyData… / CopyDone or CopyFail in,
    CopyOutResponse / CopyData… / CopyDone out."""

    def __init__(self, client: ClientConnection):
        self.client = client

    def begin(self, incoming: bool, columns: int = 0, binary: int = 0):
        shape = struct.pack("!bh", binary, columns) + struct.pack("!h", binary) * columns
        if not incoming:
            self.client.send(P.msg(b"H", shape))  # CopyOutResponse
            return None
        return self._incoming(shape)

    def _incoming(self, shape: bytes):
        c = self.client
        c.send(P.msg(b"G", shape))  # CopyInResponse
        c.flush()
        while True:
            kind, body = P.read_message(c.rfile())
            if kind == b"d":
                yield body
            elif kind == b"c":
                return
            elif kind == b"f":
                raise DsqlError("57014", "COPY from stdin failed: " + P.Reader(body).cstring())
            elif kind in (b"H", b"S"):
                continue
            else:
                raise ProtocolError(f"unexpected message type {kind!r} during COPY from stdin")

    def write(self, chunk: bytes) -> None:
        self.client.send(P.msg(b"d", chunk))

    def end(self) -> None:
        self.client.send(P.msg(b"c"))


def _options(options: str) -> dict:
    """``-c name=value`` pairs from the startup ``options`` parameter (PGOPTIONS)."""
    out = {}
    parts = options.replace("--", "-c ").split()
    for i, part in enumerate(parts):
        if part == "-c" and i + 1 < len(parts) and "=" in parts[i + 1]:
            k, v = parts[i + 1].split("=", 1)
            out[k.replace("-", "_")] = v
        elif part.startswith("-c") and "=" in part[2:]:
            k, v = part[2:].split("=", 1)
            out[k.replace("-", "_")] = v
    return out


def _wire(r: Result, formats: list | None) -> tuple[list, list]:
    """Column descriptions and values to send: PostgreSQL's own when the engine has them, else the engine's
    answer (SHOW server_version, a job id, sys.wait_for_job's boolean) as text columns."""
    if r.raw is not None:
        fields, raw = r.fields, r.raw
    elif r.columns:
        types = [_BOOL if any(isinstance(row[i], bool) for row in r.rows) else
                 _INT8 if any(isinstance(row[i], int) for row in r.rows) else _TEXT for i in range(len(r.columns))]
        fields = [Field(name, 0, 0, oid, -1, -1, 0) for name, oid in zip(r.columns, types)]
        raw = [[None if v is None else (("t" if v else "f") if isinstance(v, bool) else str(v)).encode()
                for v in row] for row in r.rows]
    else:
        return [], []
    if not formats or not fields:
        return fields, raw
    want = formats if len(formats) == len(fields) else [formats[0]] * len(fields)
    if all(w == f.format for w, f in zip(want, fields)):
        return fields, raw
    out_fields = []
    convert = []
    for f, fmt in zip(fields, want):
        out_fields.append(Field(f.name, f.table_oid, f.column, f.type_oid, f.typlen, f.typmod, fmt))
        convert.append(None if fmt == f.format else encoder(f.type_oid) if fmt == 1 else None)
    rows = [[v if c is None or v is None else c(v) for v, c in zip(row, convert)] for row in raw]
    return out_fields, rows


