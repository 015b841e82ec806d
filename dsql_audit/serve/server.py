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

from dsql_audit.engine import DsqlError, Engine, Result, SessionClosed, UnknownRole
from dsql_audit.engine.pgcall import ClientGone, Field
from dsql_audit.serve.binary import encoder
from dsql_audit.serve import protocol as P
from dsql_audit.serve.listen import listen
from dsql_audit.serve import relay
from dsql_audit.serve.protocol import ProtocolError
from dsql_audit.run.tag import MARK, strip_tag

# ParameterStatus a client gets at startup (PostgreSQL 16 reports these; server_version as DSQL answers it)
REPORTED = ("application_name", "client_encoding", "DateStyle", "default_transaction_read_only",
            "in_hot_standby", "integer_datetimes", "IntervalStyle", "is_superuser", "server_encoding",
            "session_authorization", "standard_conforming_strings", "TimeZone")
NOT_SETTINGS = {"user", "database", "options", "replication"}
# PostgreSQL's answer when its connection slots are taken (53300). A DSQL cluster answers its own quota (10,000
# connections) with 53300 "Unable to accept connection, too many open connections." (DSQL-FACTS §2.6, §3); serve's
# --max-connections is a local resource bound, so it answers as the PostgreSQL it embeds, naming the bound.
TOO_MANY = ("53300", "sorry, too many clients already")
_TEXT, _BOOL, _INT8 = 25, 16, 20
_SETTING_HEADS = ("SET", "RESET", "DISCARD")  # statements that can change what ParameterStatus reports
_OUT_LIMIT = 1 << 16  # bytes of answers buffered before they are sent (else at ReadyForQuery or Flush)
_ROW_BATCH = 256  # rows framed at once from a result held in memory


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
                 tls: ssl.SSLContext | None = None, log=None, max_connections: int | None = None, workers: int = 1,
                 worker: int = 0, upstream=None, launched: list | None = None,
                 listener: socket.socket | None = None):
        """``listener``: a socket already bound and listening (``listen``), whose clients wait in its backlog
        until this server starts. ``workers`` > 1: that many processes serve the clients (serve/workers.py;
        this one accepts and hands them over). ``worker``/``upstream``: this Server runs inside worker process
        ``worker`` and sends its findings and clients up to the serving process with ``upstream(kind,
        payload)``."""
        self.engine = engine
        if workers > 1 and tls is not None and not getattr(tls, "dsql_files", None):
            workers = 1  # a TLS context a worker cannot rebuild (not serve's own certificate): one process
        self.workers, self.worker, self.upstream = workers, worker, upstream
        self.launched = list(launched or [])  # workers.launch(): worker processes started ahead
        self.pool = None
        # clients with a session at once (None: only the embedded PostgreSQL's own max_connections bounds them)
        self.max_connections = max_connections
        self.host, self.port = host, port
        self.password = password
        self.tls = tls
        self.log = log or (lambda line: None)
        self.clients: dict[int, "ClientConnection"] = {}
        self.client_info: dict[int, ClientInfo] = {}  # engine session id → who
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        if listener is not None:
            self._sock, self.port = listener, listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        if upstream is None:
            engine.listeners.append(self._on_finding)
        else:  # the serving process logs and keeps it (with the client behind the session, sent up too)
            engine.listeners.append(lambda finding: upstream("finding", finding))

    # -- lifecycle ---------------------------------------------------------------------------------
    def bind(self) -> "Server":
        self._sock = listen(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        return self

    def serve_forever(self) -> None:
        self._start_workers()
        while not self._stop.is_set():
            try:
                conn, addr = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.pool is None:
                self._threads = [x for x in self._threads if x.is_alive()]
            held = self.pool.connections() if self.pool is not None else len(self._threads)
            if self.max_connections is not None and held >= 2 * self.max_connections + 16:
                # a flood of connections that never finish their startup: refused before a thread is spent
                # on them (PostgreSQL's postmaster bounds its children the same way)
                try:
                    conn.sendall(P.error(*TOO_MANY, severity="FATAL"))
                except OSError:
                    pass
                conn.close()
                continue
            address = f"{addr[0]}:{addr[1]}"
            if self.pool is None:
                self.take(conn, address)
                continue
            if not self.pool.dispatch(conn, address):
                try:
                    conn.sendall(P.error("57P03", "the database system is starting up", severity="FATAL"))
                except OSError:
                    pass
            conn.close()  # (the worker holds its own descriptor of the connection)

    def take(self, conn: socket.socket, address: str) -> None:
        """Serve one accepted connection on a thread of its own."""
        client = ClientConnection(self, conn, address)
        t = threading.Thread(target=client.run, name=f"dsql-client-{address.rsplit(':', 1)[-1]}", daemon=True)
        if self.upstream is not None:  # (before adding the new thread: not started yet, it is not alive)
            self._threads = [x for x in self._threads if x.is_alive()]
        self._threads.append(t)  # stop() waits for it: its session is closed before the engine stops
        t.start()

    def _start_workers(self) -> None:
        if self.workers > 1 and self.pool is None:
            from dsql_audit.serve.workers import WorkerPool

            self.pool = WorkerPool(self, self.workers).start()

    def start(self) -> "Server":
        """Serve on a background thread (tests, embedding); with workers, once they are ready."""
        if self._sock is None:
            self.bind()
        self._start_workers()
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
        if self.pool is not None:
            self.pool.stop()
        for launched in self.launched:  # started ahead and never used
            launched.discard()
        self.launched = []

    @property
    def dsn(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        ssl_mode = "require" if self.tls else "disable"
        return f"postgresql://admin@{host}:{self.port}/postgres?sslmode={ssl_mode}"

    # -- shared ------------------------------------------------------------------------------------
    def register(self, client: "ClientConnection") -> tuple[int, int]:
        """The client's cancel key and secret, also on its session's board slot: a CancelRequest may reach
        another worker process."""
        board = self.engine.board
        with self._lock:
            while True:
                key = random.randint(1, 2**31 - 1)
                if key not in self.clients and board.by_cancel_key(key) is None:
                    self.clients[key] = client
                    secret = random.randint(1, 2**31 - 1)
                    client.session.set_cancel_key(key, secret)
                    return key, secret

    def unregister(self, client: "ClientConnection") -> None:
        with self._lock:
            self.clients.pop(client.key, None)

    def admit(self, client: "ClientConnection") -> bool:
        """A connection slot for a client about to get a session (--max-connections over every worker, kept
        below the embedded PostgreSQL's own limit so the engine always has room); False after telling the
        client 53300 FATAL."""
        if self.engine.board.admit(self.max_connections):
            client.admitted = True
            return True
        client._fatal(*TOO_MANY, detail=f"dsql-audit serve accepts {self.max_connections} connections at once "
                                         "(--max-connections)")
        return False

    @property
    def admitted(self) -> int:
        """Clients holding a connection slot now, over every worker."""
        return self.engine.board.header.admitted

    def release(self, client: "ClientConnection") -> None:
        with self._lock:
            admitted, client.admitted = client.admitted, False
        if admitted and self.engine.board is not None:
            self.engine.board.leave()

    def cancel(self, key: int, secret: int) -> None:
        client = self.clients.get(key)
        if client is not None:
            if client.secret == secret and client.session is not None and client.busy:
                self.engine.cancel(client.session.pid)
            return
        board = self.engine.board  # a client of another worker process
        index = board.by_cancel_key(key)
        if index is not None:
            slot = board.slots[index]
            if slot.cancel_secret == secret and slot.busy and slot.pid:
                self.engine.cancel(slot.pid)

    def add_client(self, session_id: int, info: "ClientInfo") -> None:
        """Who is behind a session (findings name it); a worker tells the serving process too."""
        self.client_info[session_id] = info
        if self.upstream is not None:
            self.upstream("client", (session_id, info))

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
        self._busy = False
        self.out = bytearray()
        self.prepared: dict[str, tuple[str, list]] = {}
        self.portals: dict[str, Portal] = {}
        self.skip_to_sync = False
        self.reported: dict[str, str] = {}
        self._rfile = self._rfile_sock = None
        self.settings_changed = False
        self.admitted = False  # holds one of the server's --max-connections slots
        self._copy = _CopyChannel(self)  # COPY's data channel (stateless: one serves every statement)

    @property
    def busy(self) -> bool:
        """A statement is running: a CancelRequest (to any worker: the board's slot says so) cancels it."""
        return self._busy

    @busy.setter
    def busy(self, value: bool) -> None:
        self._busy = value
        session = self.session
        if session is not None:
            session.busy = value

    # -- I/O ---------------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.out += data
        if len(self.out) > _OUT_LIMIT:
            self.flush()

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(self.out)
            self.out.clear()

    def rfile(self) -> P.Inbox:
        """The client's incoming messages (buffered: one recv serves several pipelined messages)."""
        if self._rfile is None or self._rfile_sock is not self.sock:
            self._rfile, self._rfile_sock = P.Inbox(self.sock), self.sock
        return self._rfile

    def close(self) -> None:
        try:  # wakes this client's thread if it is reading (the buffered reader's close would wait for it)
            self.sock.shutdown(socket.SHUT_RDWR)
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
        except (ConnectionError, OSError, ssl.SSLError, ClientGone):
            pass  # the client went away (ClientGone: while a statement ran, which was cancelled)
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
            self.server.release(self)
            self.close()
            if self.server.upstream is not None:  # counted by the serving process when it handed us over
                self.server.engine.board.connections(self.server.worker, -1)

    def _fatal(self, sqlstate: str, message: str, detail: str | None = None) -> None:
        try:
            self.out.clear()
            self.sock.sendall(P.error(sqlstate, message, severity="FATAL", detail=detail))
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
        engine = self.server.engine
        # one database per cluster (DSQL-REFERENCE §7); audit mode: also one the application created (a test
        # runner's test database, its CREATE DATABASE recorded as a violation)
        if database != "postgres" and not (engine.audit and engine.database_exists(database)):
            self._fatal("3D000", f'database "{database}" does not exist')
            return False
        settings = {k: v for k, v in params.items() if k not in NOT_SETTINGS}
        settings.update(_options(params.get("options", "")))
        if not self.server.admit(self):  # --max-connections, counted here (53300 FATAL; released in run())
            return False
        try:
            if not engine.postgres_alive():  # PostgreSQL died under us: start it again (its data survives)
                self.server.log("the embedded PostgreSQL is not running: restarting it")
                engine.recover()
            self.session = engine.session(user=user or None, settings=settings,
                                          database=database if database != "postgres" else None)
        except UnknownRole as exc:
            self._fatal("28000", exc.message)
            return False
        except Exception as exc:  # noqa: BLE001 - a bad or forbidden setting
            diag = getattr(exc, "diag", None)
            if diag is None and 'role "' in str(exc) and "does not exist" in str(exc):
                self._fatal("28000", f'role "{user}" does not exist')  # dropped since the check above
            else:
                self._fatal(getattr(diag, "sqlstate", None) or "08006",
                            getattr(diag, "message_primary", None) or str(exc))
            return False
        self.server.add_client(self.session.id, ClientInfo(self.address, user or "admin",
                                                           params.get("application_name", "")))
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
        message = self.rfile().message  # buffered: one recv serves several pipelined messages
        self.session.watch = self.sock.fileno()  # a hangup while a statement runs cancels it
        handlers = {b"Q": self.on_query, b"P": self.on_parse, b"B": self.on_bind, b"D": self.on_describe,
                    b"E": self.on_execute, b"S": self.on_sync, b"H": self.on_flush, b"C": self.on_close}
        while True:
            kind, body = message()
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
        if relay.ENABLED and relay.simple(self, body):  # a plain read: PostgreSQL's answer, as it sent it
            return
        end = body.find(b"\0")
        if end < 0:
            raise ProtocolError("unterminated string in message")
        sql = body[:end].decode("utf-8", "replace")
        try:
            self._execute(sql, emit=self._emit)  # each statement's result goes out as soon as it is done
        except DsqlError as error:
            self._send_error(error)
            if isinstance(error, SessionClosed):
                self.flush()
                raise ConnectionResetError("DSQL closed the connection") from None
        if self.settings_changed:
            self._parameter_status()
        self.out += P.ready(self.session.status)
        self.flush()

    def _execute(self, sql: str, *args, **kw) -> Result:
        head = sql.lstrip()[:7].upper()
        # a SET inside a multi-statement string changes settings too (a lone trailing ";" does not)
        if head.startswith(_SETTING_HEADS) or ";" in sql.rstrip().rstrip(";"):
            self.settings_changed = True
        session = self.session
        session.notices.clear()
        # `run`: the call-site tag its Python hook put on the statement is taken off before it is judged
        session.site = None
        if MARK in sql:
            sql, session.site = strip_tag(sql)
        self.busy = True
        try:
            return session.execute(sql, *args, raw=True, copy=self._copy, **kw)
        finally:
            self.busy = False
            if session.notices:
                for diag in session.notices:
                    self.send(P.notice(diag))

    def _emit(self, r: Result) -> None:
        """One statement's result of a simple query, sent while the next statement has not started: a read's
        rows go out as PostgreSQL produces them (notices raised so far go first, as PostgreSQL orders them)."""
        try:
            notices = self.session.notices
            if notices:
                for diag in notices:
                    self.send(P.notice(diag))
                notices.clear()
            self._send_result(r, None)
        except OSError as exc:  # the client is gone: the engine cancels the rest (Session.close)
            raise ClientGone() from exc

    def _send_result(self, r: Result, formats: list | None, limit: int = 0, portal: Portal | None = None) -> bool:
        """Rows and the command tag; False when a row limit suspended the portal. Rows are framed into the
        output buffer a batch at a time (sent once it holds 64 KiB, or at the end of the exchange)."""
        if r.command_tag == "EMPTY":
            self.out += P.EMPTY_QUERY
            return True
        fields, raw, convert = _wire(r, formats)
        out = self.out  # flush() empties it in place
        if portal is None and fields:
            out += P.row_description(fields)
        data_row = P.data_row
        if r.stream is not None:  # rows as PostgreSQL sends them, a chunk at a time
            stream = r.stream
            for values in stream.rows(limit):
                out += data_row(values if convert is None else _convert(values, convert))
                if len(out) > _OUT_LIMIT:
                    self.flush()
            if portal is not None and limit and not stream.done:
                out += P.PORTAL_SUSPENDED
                return False
            out += P.command_complete(stream.tag)
            return True
        start = portal.sent if portal else 0
        end = len(raw) if not limit else min(len(raw), start + limit)
        for at in range(start, end, _ROW_BATCH):
            rows = raw[at:min(end, at + _ROW_BATCH)]
            out += P.data_rows(rows if convert is None else [_convert(values, convert) for values in rows])
            if len(out) > _OUT_LIMIT:
                self.flush()
        if portal is not None:
            portal.sent = end
            if end < len(raw):
                out += P.PORTAL_SUSPENDED
                return False
        out += P.command_complete(r.command_tag)
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
        if relay.ENABLED and relay.extended(self, body):  # a plain read's whole batch, through Sync
            return
        name, query, oids = P.parse_parse(body)
        self.prepared[name] = (query, oids)
        self.send(P.PARSE_COMPLETE)

    def on_bind(self, body: bytes) -> None:
        portal, stmt, formats, values, result_formats = P.parse_bind(body)
        if stmt not in self.prepared:
            return self._fail_extended(DsqlError("26000", f'prepared statement "{stmt}" does not exist'))
        query, oids = self.prepared[stmt]
        self._drop_portal(portal)
        self.portals[portal] = Portal(query, oids, values, formats, result_formats)
        self.send(P.BIND_COMPLETE)

    def _drop_portal(self, name: str) -> None:
        """Forget a portal; a read of it still streaming is cancelled (its rows are not wanted)."""
        portal = self.portals.pop(name, None)
        stream = portal.result.stream if portal is not None and portal.result is not None else None
        if stream is not None and stream is self.session.stream:
            self.session.settle(keep=False)

    def on_describe(self, body: bytes) -> None:
        what, name = P.parse_target(body)
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
        if portal is None and self.server.engine.audit and name:
            # a cursor the SQL declared (DECLARE c CURSOR …: refused by DSQL, recorded, run in audit mode) is a
            # portal of PostgreSQL's: psycopg 3's server-side cursors describe it by name — in a transaction,
            # or WITH HOLD after it (Django's in autocommit: its test database's serialization)
            fields = self._describe_cursor(name)
            if fields is not None:
                self.send(P.row_description(fields) if fields else P.NO_DATA)
                return
        if portal is None:
            return self._fail_extended(DsqlError("34000", f'portal "{name}" does not exist'))
        if not self._run_portal(portal):
            return
        fields, _, _ = _wire(portal.result, portal.result_formats)
        self.send(P.row_description(fields) if fields else P.NO_DATA)

    def _describe_cursor(self, name: str) -> list | None:
        """The columns of an SQL-declared cursor, as PostgreSQL describes it (None: no such cursor)."""
        from psycopg import pq

        self.session.settle()
        conn = self.session.conn
        with conn.lock:
            res = conn.pgconn.describe_portal(name.encode())
        return _fields(res) if res.status == pq.ExecStatus.COMMAND_OK else None

    def _describe(self, query: str, oids: list) -> tuple[list, list]:
        """Parameter types and result columns of a statement without running it (PostgreSQL's own
        answer; statements PostgreSQL cannot prepare, such as DSQL-only syntax, describe as no data)."""
        from psycopg import pq

        self.session.settle()  # a suspended portal's rows are read into memory: the connection is needed
        conn = self.session.conn
        with conn.lock:
            res = conn.pgconn.prepare(b"", query.encode(), list(oids) or None)
            if res.status != pq.ExecStatus.COMMAND_OK:
                return [o for o in oids], []
            res = conn.pgconn.describe_prepared(b"")
        return [res.param_type(i) for i in range(res.nparams)], _fields(res)

    def _run_portal(self, portal: Portal) -> bool:
        if portal.result is not None:
            return True
        formats = portal.result_formats
        result_format = formats[0] if formats and formats.count(formats[0]) == len(formats) else 0
        try:
            self.session.begin_implicit()  # statements up to Sync are one implicit transaction
            n = len(portal.params)
            # Parse may name fewer types than there are parameters; one format code applies to all
            types = (list(portal.oids) + [0] * n)[:n] or None
            formats = portal.param_formats
            formats = (formats * n if len(formats) == 1 else formats)[:n] or None
            # a read's rows stay with PostgreSQL until Execute asks for them (a Result.stream)
            portal.result = self._execute(portal.query, portal.params, param_types=types, param_formats=formats,
                                          result_format=result_format, emit=_later)
        except DsqlError as error:
            self._fail_extended(error)
            return False
        return True

    def on_execute(self, body: bytes) -> None:
        name, limit = P.parse_execute(body)
        portal = self.portals.get(name)
        if portal is None:
            return self._fail_extended(DsqlError("34000", f'portal "{name}" does not exist'))
        if not self._run_portal(portal):
            return
        self.busy = portal.result.stream is not None  # a CancelRequest reaches a read still streaming
        try:
            self._send_result(portal.result, portal.result_formats, limit, portal)
        except ValueError as exc:  # a binary format asked for a type we only have as text
            self._fail_extended(DsqlError("0A000", str(exc)))
        except DsqlError as error:  # PostgreSQL's error after the first rows of a streamed read
            self._fail_extended(error)
        finally:
            self.busy = False

    def on_sync(self, body: bytes) -> None:
        if not self.skip_to_sync:
            try:
                self.session.end_implicit()
            except DsqlError as error:
                self._send_error(error)
        elif self.session.implicit:
            self.session.end_implicit()  # rolls the failed implicit transaction back
        self.skip_to_sync = False
        portals = self.portals
        portals.pop("", None)
        session = self.session
        status = session.status
        if status == "I":  # the transaction is over, and with it its portals' reads
            if session.stream is not None:
                session.settle(keep=False)
            if portals:
                for name in [n for n, p in portals.items() if p.result is not None and p.result.stream is not None]:
                    del portals[name]
        if self.settings_changed:
            self._parameter_status()
        self.out += P.ready(status)
        self.flush()

    def on_flush(self, body: bytes) -> None:
        self.flush()

    def on_close(self, body: bytes) -> None:
        what, name = P.parse_target(body)
        if what == b"S":
            self.prepared.pop(name, None)
        else:
            self._drop_portal(name)
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


def _fields(res) -> list:
    """The columns of a libpq Describe answer, as RowDescription sends them (text format)."""
    return [Field(res.fname(i).decode(), res.ftable(i), res.ftablecol(i), res.ftype(i), res.fsize(i), res.fmod(i), 0)
            for i in range(res.nfields)]


def _later(result: Result) -> None:
    """emit for a portal: its rows are sent by Execute, not when the statement is done."""


def _wire(r: Result, formats: list | None) -> tuple[list, list | None, list | None]:
    """Column descriptions to send, the rows (None when they stream: ``r.stream``) and, when the client asked
    for other formats than PostgreSQL's, a converter per column (None: as it is). Values are PostgreSQL's own
    when the engine has them, else the engine's answer (SHOW server_version, a job id, sys.wait_for_job's
    boolean) as text columns."""
    if r.stream is not None:
        fields, raw = r.fields, None
    elif r.raw is not None:
        fields, raw = r.fields, r.raw
    elif r.columns:
        types = [_BOOL if any(isinstance(row[i], bool) for row in r.rows) else
                 _INT8 if any(isinstance(row[i], int) for row in r.rows) else _TEXT for i in range(len(r.columns))]
        fields = [Field(name, 0, 0, oid, -1, -1, 0) for name, oid in zip(r.columns, types)]
        raw = [[None if v is None else (("t" if v else "f") if isinstance(v, bool) else str(v)).encode()
                for v in row] for row in r.rows]
    else:
        return [], [], None
    if not formats or not fields:
        return fields, raw, None
    want = formats if len(formats) == len(fields) else [formats[0]] * len(fields)
    if all(w == f.format for w, f in zip(want, fields)):
        return fields, raw, None
    out_fields = []
    convert = []
    for f, fmt in zip(fields, want):
        out_fields.append(Field(f.name, f.table_oid, f.column, f.type_oid, f.typlen, f.typmod, fmt))
        convert.append(None if fmt == f.format else encoder(f.type_oid) if fmt == 1 else None)
    return out_fields, raw, convert


def _convert(values: list, convert: list) -> list:
    return [v if c is None or v is None else c(v) for v, c in zip(values, convert)]
