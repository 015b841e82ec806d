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

"Relay" is libpq + rows. Each mark reads the thread's CPU clock, a syscall (about 1 µs on the bench machine):
``calibrate()`` measures what one metered call adds, and ``split()`` takes it off the parts it fell on (half
on the part called, half on its caller). The metered run is still slower than an unmetered one (its marks
also cost cache misses the calibration does not see), so the bench reports the unmetered CPU per statement
beside the metered split, and the split scaled to that total.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

PARTS = ("protocol", "gate", "libpq", "rows")


def _targets():
    """(owner, attribute, part): the functions whose calls switch the part being charged."""
    from dsql_audit.engine import pg_transaction, pgcall, session
    from dsql_audit.serve import server

    out = [(server.ClientConnection, "loop", "protocol"),
           (session.Session, "execute", "gate"), (session.Session, "begin_implicit", "gate"),
           (session.Session, "end_implicit", "gate"),
           (pgcall, "run", "libpq"), (pgcall, "run_after", "libpq"), (pgcall.RowStream, "_next", "libpq"),
           (pgcall.RowStream, "close", "libpq"),
           (pgcall, "_raw", "rows"), (pgcall, "_fields", "rows"),
           (pg_transaction.PgTransaction, "_result", "rows"),
           (server.ClientConnection, "_send_result", "rows"), (server.ClientConnection, "_describe", "libpq")]
    return [(owner, attr, part) for owner, attr, part in out if hasattr(owner, attr)]


class Meter:
    """Install with ``start()``, read ``split(statements)`` (µs per statement per part, marks' cost taken off),
    ``stop()``."""

    def __init__(self):
        self._local = threading.local()
        self._all: list[tuple] = []
        self._lock = threading.Lock()
        self._saved: list = []
        self.mark_cost = 0.0

    def _state(self):
        st = getattr(self._local, "st", None)
        if st is None:
            st = self._local.st = {"stack": [], "last": 0.0, "acc": defaultdict(float), "calls": defaultdict(int)}
            with self._lock:
                self._all.append((st["acc"], st["calls"]))
        return st

    def _wrap(self, fn, part):
        clock = time.thread_time
        state = self._state

        def metered(*args, **kw):
            st = state()
            stack, acc, calls = st["stack"], st["acc"], st["calls"]
            now = clock()
            if stack:
                acc[stack[-1]] += now - st["last"]
                calls[stack[-1]] += 1
            calls[part] += 1
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

    def calibrate(self, n: int = 20_000) -> float:
        """CPU seconds one metered call adds (best of five warm loops)."""
        def noop():
            return None

        wrapped = self._wrap(noop, "calibration")
        best = None
        for _ in range(5):
            t0 = time.thread_time()
            for _ in range(n):
                noop()
            t1 = time.thread_time()
            for _ in range(n):
                wrapped()
            t2 = time.thread_time()
            cost = ((t2 - t1) - (t1 - t0)) / n
            best = cost if best is None else min(best, cost)
        st = self._state()
        st["acc"].pop("calibration", None)
        st["calls"].pop("calibration", None)
        self.mark_cost = max(best, 0.0)
        return self.mark_cost

    def start(self) -> Meter:
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
            for acc, calls in self._all:
                acc.clear()
                calls.clear()

    def totals(self) -> dict:
        """Seconds per part over every metered thread, as measured (marks' cost included)."""
        out = dict.fromkeys(PARTS, 0.0)
        with self._lock:
            for acc, _ in self._all:
                for k, v in acc.items():
                    out[k] = out.get(k, 0.0) + v
        return out

    def split(self, statements: int) -> dict:
        """µs per statement per part, each part less half a mark's cost per metered call it took part in."""
        raw, calls = self.totals(), dict.fromkeys(PARTS, 0)
        with self._lock:
            for _, c in self._all:
                for k, v in c.items():
                    calls[k] = calls.get(k, 0) + v
        n = max(statements, 1)
        return {p: max(0.0, (raw[p] - calls.get(p, 0) * self.mark_cost / 2) / n * 1e6) for p in raw}
