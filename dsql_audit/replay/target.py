"""`replay --target DSN --allow-writes`: the capture replayed against another PostgreSQL-wire endpoint (a
real Aurora DSQL cluster in practice, or `dsql-audit serve`) beside the engine, so each statement's real
outcome sits next to the engine's prediction.

One connection per captured session, statements sent as captured (simple query, or the extended protocol
with the captured parameters), in the same order as the engine gets them. DSQL never makes a statement
wait, so one driver thread interleaves the sessions as the capture does. pg_stat_statements entries carry
no values: they are only parsed on the target (Parse, unnamed statement; nothing runs).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from dsql_audit.replay.endpoints import EndpointError, connect, redact_dsn
from dsql_audit.sqltext import lead

MAX_KEPT = 100  # disagreements kept for the report
BACKOFF = (0.2, 0.5, 1.0, 2.0)  # seconds between reconnection attempts when the endpoint drops a connection
_TXN_END = re.compile(r"\s*(COMMIT|ROLLBACK|END|ABORT)\b", re.I)


@dataclass
class Outcome:
    sqlstate: str | None = None  # None: the statement succeeded
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.sqlstate is None

    def __str__(self) -> str:
        return "ok" if self.ok else f"{self.sqlstate} {self.message}"


@dataclass
class TargetStats:
    endpoint: str
    statements: int = 0
    errors: int = 0
    agreed: int = 0
    disagreed: int = 0
    reconnects: int = 0
    lost: int = 0  # statements whose connection broke while they ran: outcome unknown, never re-sent
    skipped: int = 0  # later statements of a transaction that died with its connection
    disagreements: list = field(default_factory=list)

    def summary(self) -> dict:
        return {"endpoint": self.endpoint, "statements": self.statements, "errors": self.errors,
                "agreed_with_engine": self.agreed, "disagreed_with_engine": self.disagreed,
                "reconnects": self.reconnects, "lost_in_flight": self.lost, "skipped_after_loss": self.skipped,
                "disagreements": self.disagreements}


class Target:
    def __init__(self, dsn: str, sleep=time.sleep):
        self.dsn = dsn
        self.stats = TargetStats(redact_dsn(dsn))
        self.conns: dict = {}
        self.dead_txn: set = set()  # sessions whose open transaction died with its connection
        self.dropped: set = set()  # sessions whose connection the endpoint dropped
        self.sleep = sleep
        connect(dsn).close()  # fail early, with a clear message, when the endpoint cannot be reached

    def _conn(self, key):
        from psycopg import pq

        conn = self.conns.get(key)
        if conn is not None and not conn.closed:
            pg = conn.pgconn
            try:  # closed by the endpoint while idle? Then nothing is in flight: reconnect before sending
                pg.consume_input()
            except Exception:  # noqa: BLE001
                pass
            if pg.status == pq.ConnStatus.OK:
                return conn
            if pg.transaction_status != pq.TransactionStatus.IDLE:
                self.dead_txn.add(key)
            self._drop(key)
        if key in self.conns or key in self.dropped:
            self.stats.reconnects += 1
        for delay in (0, *BACKOFF):  # the endpoint dropped us (or never let us in): back off and try again
            self.sleep(delay)
            try:
                conn = self.conns[key] = connect(self.dsn)
                self.dropped.discard(key)
                return conn
            except EndpointError as exc:
                error = exc
        raise error

    def execute(self, key, sql: str, params: list | None) -> Outcome:
        from psycopg import pq

        if key in self.dead_txn:  # the rest of a transaction the endpoint already rolled back: not sent, so
            self.stats.skipped += 1  # none of it is applied outside its transaction
            if _TXN_END.match(lead(sql)):
                self.dead_txn.discard(key)
            return Outcome("08006", "skipped: its transaction was lost with the connection")
        try:
            pg = self._conn(key).pgconn
        except EndpointError as exc:
            return Outcome("08006", str(exc))
        if _copy_from_stdin(sql):
            return Outcome(None, "skipped: COPY data is not in the capture")
        in_txn = pg.transaction_status != pq.TransactionStatus.IDLE
        try:
            if params is not None:
                res = pg.exec_params(sql.encode(), [None if p is None else p.encode() for p in params])
            else:
                res = pg.exec_(sql.encode())
            if pg.status != pq.ConnStatus.OK:
                raise ConnectionError(res.error_message.decode(errors="replace").strip() or "connection closed")
        except Exception as exc:  # noqa: BLE001 - the connection broke while the statement ran
            # its outcome is unknown (it may have committed): reported, never sent again
            self._drop(key)
            self.stats.lost += 1
            if in_txn and not _TXN_END.match(lead(sql)):
                self.dead_txn.add(key)
            return Outcome("08006", f"connection lost while the statement ran (outcome unknown, not re-sent): "
                                    f"{exc}")
        return _outcome(res, pq)

    def _drop(self, key) -> None:
        conn = self.conns.pop(key, None)
        self.dropped.add(key)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def parse(self, sql: str) -> Outcome:
        from psycopg import pq

        try:
            res = self._conn("pgss").pgconn.prepare(b"", sql.encode())
        except EndpointError as exc:
            return Outcome("08006", str(exc))
        except Exception as exc:  # noqa: BLE001
            self._drop("pgss")
            return Outcome("08006", f"connection lost: {exc}")
        return _outcome(res, pq)

    def compare(self, capture: str, line: int, sql: str, engine: Outcome, target: Outcome) -> None:
        s = self.stats
        s.statements += 1
        s.errors += not target.ok
        if engine.sqlstate == target.sqlstate:
            s.agreed += 1
            return
        s.disagreed += 1
        if len(s.disagreements) < MAX_KEPT:
            s.disagreements.append({"capture": capture, "line": line, "statement": " ".join(sql.split())[:300],
                                    "engine": str(engine), "target": str(target)})

    def close(self) -> None:
        for conn in self.conns.values():
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        self.conns.clear()


def _outcome(res, pq) -> Outcome:
    if res.status in (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.NONFATAL_ERROR):
        state = res.error_field(pq.DiagnosticField.SQLSTATE)
        msg = res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY)
        return Outcome(state.decode() if state else "XX000", msg.decode(errors="replace") if msg else "")
    return Outcome()


def _copy_from_stdin(sql: str) -> bool:
    return bool(re.match(r"\s*COPY\b.*\b(FROM\s+STDIN|TO\s+STDOUT)\b", sql, re.I | re.S))
