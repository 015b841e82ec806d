"""One DSQL connection (Session) over one PostgreSQL connection: its transaction state, and ``execute``, the
public call that splits a query into statements and answers each as DSQL would.

The rest of a Session is in the modules named by its bases: statement.py (one statement as DSQL handles it),
running.py (running it on PostgreSQL), job_statements.py (async jobs), occ.py (OCC: COMMIT and conflicts),
pg_transaction.py (the PostgreSQL transaction under ours)."""

from __future__ import annotations

import operator
import re
from typing import TYPE_CHECKING

from dsql_audit.engine.errors import CLOSED, OCC, SCHEMA, DsqlError, SessionClosed
from dsql_audit.engine.job_statements import JobStatements
from dsql_audit.engine.occ import OccAdjudication
from dsql_audit.engine.pg_transaction import PgTransaction
from dsql_audit.engine.results import Notice, Result
from dsql_audit.engine.running import StatementRunner
from dsql_audit.engine.statement import StatementHandling
from dsql_audit.sqltext import split_text

if TYPE_CHECKING:
    from dsql_audit.engine.cluster import Engine

_ROUTINE = re.compile(r"\s*CREATE\b", re.I)  # a function's BEGIN ATOMIC body may hold a statement's only ";"


def _statements(sql: str) -> list:
    """The statements of a query string, as the splitter (psql's rules) cuts them. One statement closed by the
    string's only ";" and holding nothing the splitter reads specially (quotes, comments, dollar quotes,
    backslashes, a routine body) is cut here without it — the common case of a client that ends each
    statement with ";" (pgbench does) — to the same text: from its first non-blank character to the ";"."""
    body = sql.rstrip()
    if body.endswith(";") and body.count(";") == 1 and "'" not in body and '"' not in body and \
            "$" not in body and "\\" not in body and "--" not in body and "/*" not in body and \
            not _ROUTINE.match(body):
        text = body[:-1].lstrip()
        return [text] if text else []
    return [r.text for r in split_text(sql) if r.kind == "sql"]


def _on_board(name: str) -> property:
    """A session field other sessions read or set, whichever worker process runs them (engine/board.py)."""
    # (the getter is attrgetter's C code: these are read on every statement)
    return property(operator.attrgetter(f"_slot.{name}"), lambda self, value: setattr(self._slot, name, value),
                    doc=f"the board slot's {name}")


class Session(StatementHandling, StatementRunner, JobStatements, OccAdjudication, PgTransaction):
    """One DSQL connection. Use one thread per session."""

    # what another session's writer looks up or sets (a winner dooms us, a blocked writer names our transaction)
    pid = _on_board("pid")
    txn_number = _on_board("txn_number")
    committing = _on_board("committing")  # decided to commit; PostgreSQL's COMMIT in flight
    doomed = _on_board("doomed")  # another transaction committed first over our writes
    schema_doomed = _on_board("schema_doomed")  # a DDL that committed first rolled our transaction back: OC001
    wounded = _on_board("wounded")  # a winner ended our backend: reconnect before the next statement
    busy = _on_board("busy")  # a statement of the client's is running (a CancelRequest may reach another worker)
    watch: int | None = None  # the client's socket (the wire front): a hangup cancels the running statement
    stream = None  # a read's RowStream left open by execute(emit=…) (a portal suspended by a row limit)
    _emit = None

    def __init__(self, engine: Engine, user: str | None = None, settings: dict | None = None,
                 database: str | None = None):
        self.user = user if user not in (None, "admin") else None  # a role created with CREATE ROLE
        self.database = database if database not in (None, "postgres") else None
        self.site = None  # `run`: the call site the current statement's tag named (recorded with a finding)
        self._refused_at = -1  # the statement number the last violation was counted for (stats["refused"])
        self.settings = dict(settings or {})  # session settings a client asked for at startup
        self.notices: list = []  # PostgreSQL's notices for the statements run since the caller last cleared
        self.engine = engine
        self._slot_index, self.id = engine.board.claim()  # a new id, unique over every worker
        self._slot = engine.board.slots[self._slot_index]
        self.closed = False
        self._bind = None  # the statement's parameters (extended protocol)
        self._copy_io = None
        self._raw = False
        self.opened = engine.clock()
        self._connect()
        self._reset_txn()

    def _connect(self) -> None:
        import psycopg

        # every statement text is new (literals inline): psycopg's prepare bookkeeping only costs. A role a
        # client created logs in as itself (SET SESSION AUTHORIZATION would need a superuser session, which a
        # client could RESET back to)
        kwargs = {"user": self.user} if self.user else {}
        if self.database:
            kwargs["dbname"] = self.database
        self.conn = psycopg.connect(self.engine.uri, autocommit=True, prepare_threshold=None, **kwargs)
        self.conn.add_notice_handler(self._notice)
        for name, value in self.settings.items():
            self.conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        self.pid = self.conn.info.backend_pid
        self.engine.sessions[self.pid] = self

    def _notice(self, diag) -> None:
        # the diagnostic's memory is libpq's and gone after the callback: copy the fields now
        self.notices.append(Notice(diag.severity_nonlocalized or diag.severity or "NOTICE", diag.sqlstate or "00000",
                                   diag.message_primary or "", diag.message_detail, diag.message_hint))

    def close(self) -> None:
        self.closed = True
        self.engine.sessions.pop(self.pid, None)
        self._release_slot()
        try:
            # a statement still running (a read being streamed, a client gone mid-statement) is cancelled:
            # closing the connection alone would leave the backend at work until the statement ends
            if self.stream is not None or self.conn.pgconn.transaction_status == 1:  # PQTRANS_ACTIVE
                self.stream = None
                self._cancel_pg()
            self.conn.close()
        except Exception:  # noqa: BLE001 - already gone
            pass

    def set_cancel_key(self, key: int, secret: int) -> None:
        """The key and secret a client's CancelRequest names this session by: on the board, since the request's
        connection may be handed to another worker process."""
        slot = self._slot
        slot.cancel_key, slot.cancel_secret = key, secret

    def _release_slot(self) -> None:
        board, slot = self.engine.board, self._slot
        if isinstance(slot, _Detached) or board is None:
            return
        for _, blockers, _ in getattr(self, "pending", ()):
            board.unreference(blockers)
        self.pending = []
        if slot.session_id == self.id:  # (after a recovery the slot may be another session's)
            board.release(self._slot_index)
        detached = _Detached()
        detached.pid, detached.txn_number = slot.pid, slot.txn_number
        self._slot = detached

    @property
    def doomed_by(self) -> list:
        """The winners' writes that met ours, (statement, (schema, table)), for the loser's report."""
        return self.engine.board.winners(self._slot_index) if self._slot.doomed else []

    def _reset_txn(self) -> None:
        pending = getattr(self, "pending", None)
        if pending:
            for _, blockers, _ in pending:
                self.engine.board.unreference(blockers)
        self.in_txn = False  # inside BEGIN … COMMIT (or a multi-statement query's implicit transaction)
        self.implicit = False
        self.aborted = False
        self.pg_open = False  # a PostgreSQL transaction is open under it
        self.begin = "BEGIN"  # the user's BEGIN, sent to PostgreSQL with the first statement
        self.savepoint = False
        self.probe = False  # SET LOCAL lock_timeout done in this PostgreSQL transaction
        self.ddl = 0
        self.dml = 0
        self.rows = 0
        self.bytes = 0
        self.pending = []  # writes that met another transaction's row: (facts, {blockers} or {"committed"})
        self.jobs = []  # async jobs submitted when the transaction commits
        self.started = None  # clock reading at the transaction's start
        self.catalog_seen = None  # engine.catalog_version at the transaction's start
        self.wrote = False
        if self._slot.doomed:
            self.engine.board.clear_doom(self._slot_index)
        self.written: list = []  # our writes that went through (the first 32), to name the one a winner met
        if self._slot.committing:
            self.committing = False
        self.over_rows = False  # audit mode: the row bound was reported for this transaction
        self.stale_seen = False  # audit mode: OC001 was reported for this transaction

    def _start_txn(self) -> None:
        self.txn_number += 1
        self.started = self.engine.clock()
        self.catalog_seen = self.engine.catalog_version

    def execute(self, sql: str, params=None, *, param_types=None, param_formats=None, result_format: int = 0,
                raw: bool = False, copy=None, emit=None) -> Result:
        """Run ``sql`` as DSQL would. With ``params`` (bytes per $n value, text or binary per
        ``param_formats``) it is one statement, as in the extended protocol. ``raw``: keep values as
        PostgreSQL sent them (``Result.raw``, ``Result.fields``) instead of decoding them. ``copy``: where
        COPY … FROM STDIN reads and COPY … TO STDOUT writes — an object with ``begin(incoming, columns,
        binary)`` (for FROM STDIN returning an iterable of data chunks), ``write(chunk)`` and ``end()``.
        ``emit`` (with ``raw``): called with each statement's Result as soon as the statement is done, in
        order; a read's rows may then still be coming (``Result.stream``, a pgcall.RowStream), so a result of
        any size passes through in bounded memory. A stream the call leaves unread is read into memory when
        the next statement needs the connection — unless it was the last statement: then it stays open as
        ``Session.stream`` (a portal suspended by a row limit) until the next call, or ``end_implicit``
        drops it."""
        if self.stream is not None:
            self.settle()
        self._check_lifetime(sql)
        self._raw = raw
        self._emit = emit if raw else None
        self._copy_io = copy
        self._bind = None
        if params is not None or param_types or param_formats or result_format:
            self._bind = (params or [], param_types, param_formats, result_format)
            statements = [sql]
        elif ";" in sql or "--" in sql or "/*" in sql or sql.lstrip().startswith("\\"):
            statements = _statements(sql)
        else:  # one plain statement: nothing to split
            statements = [sql.strip()] if sql.strip() else []
        if not statements:
            return Result("EMPTY")
        implicit = len(statements) > 1 and not self.in_txn
        if implicit:
            self.in_txn, self.implicit = True, True
            self._start_txn()
        results = []
        emitting = False
        try:
            try:
                for i, text in enumerate(statements):
                    result = self._one(text)
                    results.append(result)
                    if self._emit is not None:
                        emitting = True
                        self._emit(result)
                        emitting = False
                        if result.stream is not None:
                            self._hold(result, last=i == len(statements) - 1)
                if implicit and self.in_txn and self.implicit:
                    self.settle()
                    self._finish("COMMIT")
            except DsqlError:
                raise
            except Exception as exc:  # noqa: BLE001 - the engine answers with DsqlError, never a driver error
                if emitting:  # the caller's own failure, not PostgreSQL's
                    raise
                raise self._connection_lost(exc) from None
        except DsqlError as error:
            if implicit and self.implicit:
                self._rollback_pg()
                self._reset_txn()
            error.results = results
            raise
        last = results[-1]
        if len(results) > 1:
            last = Result(last.command_tag, last.columns, last.rows, results)
        return last

    def _connection_lost(self, exc: Exception) -> DsqlError:
        """A statement lost its PostgreSQL connection. When a winner rolled our transaction back under it,
        that is an OCC loss reported early — DSQL too can spot a conflict before COMMIT (DSQL-FACTS §2.1,
        early abort) — and it is retryable like any 40001; otherwise the connection failed (08006)."""
        kind = self._wound_kind()
        lost, schema = kind is not None, kind == "schema"
        self.wounded = False
        try:
            self._reconnect()
        except Exception:  # noqa: BLE001 - PostgreSQL itself is gone
            self.closed = True
            return SessionClosed("08006", f"connection to the engine's PostgreSQL lost: {exc}")
        self.pg_open = False
        self.savepoint = self.probe = False
        self.schema_doomed = False
        self._reset_txn()
        if not lost:
            return DsqlError("08006", f"connection to the engine's PostgreSQL lost: {exc}")
        state, message = SCHEMA if schema else OCC
        return DsqlError(state, message, self.engine.record(self, "COMMIT" if not schema else "", state, message,
                                                            "occ-conflict", "schema" if schema else "data"))

    def _hold(self, result: Result, last: bool) -> None:
        """After emit: a stream left unread stays open for the caller if it was the last statement (a COMMIT of
        an implicit transaction after it reads it into memory first), else it is read into memory now."""
        stream = result.stream
        if stream is None or stream.done:
            return
        if last:
            self.stream = stream
        else:
            stream.keep()

    def settle(self, keep: bool = True) -> None:
        """Free the connection from a stream left open: read its rest into memory (``keep``; its portal may
        still be executed) or drop it (the transaction ends, and its portals with it)."""
        stream, self.stream = self.stream, None
        if stream is None:
            return
        if keep:
            stream.keep()
        else:  # a cancel inside an open PostgreSQL transaction would abort it: read to the end instead
            stream.close(cancel=not self.pg_open)

    def _cancel_pg(self) -> None:
        try:
            self.engine.cancel(self.pid)
        except Exception:  # noqa: BLE001 - PostgreSQL is gone: nothing runs
            pass

    def _stream_failed(self, exc: Exception) -> DsqlError:
        """A streamed read failed after its first rows had gone (PostgreSQL's error mid-result, or the
        backend lost): answered as a failing statement is (_one), the rows sent before it stay sent, as
        PostgreSQL's own client sees them."""
        import psycopg

        if isinstance(exc, psycopg.OperationalError) and self.conn.broken:
            return self._connection_lost(exc)
        return self._pg_failed(exc)

    def _pg_failed(self, exc: Exception) -> DsqlError:
        """PostgreSQL's own error for a statement (DSQL's PostgreSQL 16 front end answers the same): inside a
        transaction it aborts it, as on DSQL — in audit mode PostgreSQL's failed transaction stays, so a
        ROLLBACK TO SAVEPOINT recovers it as the application expects."""
        if self.in_txn and self.engine.audit:
            pass
        elif self.in_txn:
            self.aborted = True
            self._rollback_pg()
        else:
            self._rollback_pg()
            self._reset_txn()
        return self._pg_error(exc)

    @staticmethod
    def _pg_error(exc: Exception) -> DsqlError:
        """PostgreSQL's error as the engine answers it."""
        diag = getattr(exc, "diag", None)
        position = getattr(diag, "statement_position", None)
        return DsqlError(getattr(diag, "sqlstate", None) or "XX000", getattr(diag, "message_primary", None) or str(exc),
                         detail=getattr(diag, "message_detail", None), hint=getattr(diag, "message_hint", None),
                         position=int(position) if position else None)

    def begin_implicit(self) -> None:
        """Open an implicit transaction (the extended protocol's statements up to Sync) unless one is open."""
        if not self.in_txn:
            self.in_txn, self.implicit = True, True
            self._start_txn()

    def end_implicit(self) -> None:
        """At Sync: commit an implicit transaction still open (a COMMIT error is raised as DsqlError). A stream
        left open ends with the transaction (inside BEGIN … COMMIT it stays: a portal outlives Sync there)."""
        if not self.in_txn or self.implicit:
            self.settle(keep=False)
        if self.in_txn and self.implicit:
            if self.aborted:
                self._rollback_pg()
                self._reset_txn()
            else:
                self._finish("COMMIT")

    @property
    def status(self) -> str:
        """ReadyForQuery's transaction status: I idle, T in a transaction block, E in a failed one."""
        if not self.in_txn or self.implicit:
            return "I"
        return "E" if self.aborted else "T"

    def _check_lifetime(self, sql: str) -> None:
        limit = self.engine.profile.limit("connection_seconds")
        if self.closed:
            raise SessionClosed(CLOSED[0], CLOSED[1].format(limit=limit))
        if self.engine.clock() - self.opened > limit:
            self.close()
            message = CLOSED[1].format(limit=limit)
            raise SessionClosed(CLOSED[0], message,
                                self.engine.record(self, sql, CLOSED[0], message, "connection-lifetime"))


class _Detached:
    """A closed session's fields, off the board (its slot may already be another session's)."""

    pid = txn_number = committing = doomed = schema_doomed = wounded = busy = 0
    session_id = -1
