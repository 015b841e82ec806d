"""Where serve's CPU goes per statement: a meter that wraps the functions bounding each part of a client's loop
and charges the thread CPU time (``time.thread_time``) between two marks to the part on top of a stack.

Parts (the default for a client thread's loop is ``protocol``):

- protocol: reading and parsing the client's messages, building and sending the answers that are not rows
  (ReadyForQuery, ParseComplete …), the socket syscalls to the client;
- gate: the engine's DSQL judgement and transaction bookkeeping (``Session.execute`` and the implicit
  transaction's begin/end around the PostgreSQL calls): the cached decision by shape, the refusal checks,
  OCC adjudication at COMMIT;
- libpq: sending a statement to PostgreSQL and taking its result (``pgcall``'s send, poll, get_result);
- rows: PostgreSQL's result into the client's messages (column descriptions, values, DataRow framing).

The brief's "relay" is libpq + rows. Each mark costs a syscall (about 1 µs on the bench machine), so the metered
run is slower than an unmetered one; the bench reports the unmetered total CPU per statement beside the
metered split, and the split scaled to that total.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

PARTS = ("protocol", "gate", "libpq", "rows")


def _targets():
    """(owner, attribute, part): the functions whose calls switch the part being charged."""
    from dsql_audit.engine import pgcall, pg_transaction, session
    from dsql_audit.serve import server

    out = [(server.ClientConnection, "loop", "protocol"),
           (session.Session, "execute", "gate"), (session.Session, "begin_implicit", "gate"),
           (session.Session, "end_implicit", "gate"),
           (pgcall, "run", "libpq"), (pgcall.RowStream, "_next", "libpq"), (pgcall.RowStream, "close", "libpq"),
           (pgcall, "_raw", "rows"), (pgcall, "_fields", "rows"),
           (pg_transaction.PgTransaction, "_result", "rows"),
           (server.ClientConnection, "_send_result", "rows"), (server.ClientConnection, "_describe", "libpq")]
    for name in ("_row_bytes", "_row_message", "_first_chunk", "_chunk"):  # helpers the relay may have
        if hasattr(pgcall, name):
            out.append((pgcall, name, "rows"))
    return [(owner, attr, part) for owner, attr, part in out if hasattr(owner, attr)]


class Meter:
    """Install with ``start()``, read ``totals()`` (seconds per part, over every metered thread), ``stop()``."""

    def __init__(self):
        self._local = threading.local()
        self._all: list[dict] = []
        self._lock = threading.Lock()
        self._saved: list = []

    def _state(self):
        st = getattr(self._local, "st", None)
        if st is None:
            st = self._local.st = {"stack": [], "last": 0.0, "acc": defaultdict(float)}
            with self._lock:
                self._all.append(st["acc"])
        return st

    def _wrap(self, fn, part):
        clock = time.thread_time
        state = self._state

        def metered(*args, **kw):
            st = state()
            stack, acc = st["stack"], st["acc"]
            now = clock()
            if stack:
                acc[stack[-1]] += now - st["last"]
            st["last"] = now
            stack.append(part)
            try:
                return fn(*args, **kw)
            finally:
                now = clock()
                acc[stack.pop()] += now - st["last"]
                st["last"] = now

        metered.__wrapped__ = fn
        return metered

    def start(self) -> "Meter":
        for owner, attr, part in _targets():
            fn = owner.__dict__[attr] if attr in getattr(owner, "__dict__", {}) else getattr(owner, attr)
            self._saved.append((owner, attr, fn))
            setattr(owner, attr, self._wrap(fn, part))
        return self

    def stop(self) -> None:
        for owner, attr, fn in reversed(self._saved):
            setattr(owner, attr, fn)
        self._saved.clear()

    def reset(self) -> None:
        with self._lock:
            for acc in self._all:
                acc.clear()

    def totals(self) -> dict:
        out = dict.fromkeys(PARTS, 0.0)
        with self._lock:
            for acc in self._all:
                for k, v in acc.items():
                    out[k] = out.get(k, 0.0) + v
        return out
