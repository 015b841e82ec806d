"""Optimistic concurrency as DSQL decides it: writes never wait, conflicts are decided at COMMIT — first
committer wins, the loser gets 40001 (OC000) — and a DDL racing other work rolls that work back (OC001).
PostgreSQL's row locks tell who met whom; the loser's backend is ended (wounded) and its next statement or
COMMIT answers as DSQL's would. COMMIT also checks the 300 s and 10 MiB bounds."""

from __future__ import annotations

import threading

from dsql_audit.engine.errors import AGE, OCC, SCHEMA, SIZE, DsqlError
from dsql_audit.engine.results import Ran, Result

_RERUNS = 20  # a statement re-run after a winner ended its backend, at most this many times


class Blocked(Exception):
    def __init__(self, blockers):
        self.blockers = blockers


class OccAdjudication:
    """A part of Session (engine/session.py)."""

    def _stale(self) -> bool:
        return self.schema_doomed or (self.catalog_seen is not None
                                      and self.catalog_seen != self.engine.catalog_version)

    def _finish(self, how: str) -> Result:
        """COMMIT or ROLLBACK. PostgreSQL's own refusal of the COMMIT (a deferred constraint checked at the end)
        ends the transaction, rolled back, and is answered with PostgreSQL's error, as any statement's is."""
        import psycopg

        try:
            return self._end_txn(how)
        except psycopg.Error as exc:
            if self.conn.broken:  # not an answer: the backend went away
                raise
            self.engine.board.mark_committed(self.id, self.txn_number, False)
            self.committing = False
            self.pg_open = False  # (PostgreSQL ended it)
            self._rollback_pg()
            self._reset_txn()
            raise self._pg_error(exc) from None

    def _end_txn(self, how: str) -> Result:
        if how == "ROLLBACK" or self.aborted:
            self._rollback_pg()
            self._reset_txn()
            return Result("ROLLBACK")
        engine = self.engine
        if engine.audit:
            return self._finish_audit()
        if not (self.pg_open or self.pending or self.ddl or self.jobs or self.doomed):
            self._reset_txn()  # nothing ran under a transaction of ours: nothing to decide
            return Result("COMMIT")
        profile = engine.profile
        limit = profile.limit("transaction_seconds")
        if self.started is not None and engine.clock() - self.started > limit:
            return self._refuse_commit(AGE[0], AGE[1].format(limit=limit), "transaction-timeout")
        size_limit = profile.limit("bytes_per_transaction")
        if self.bytes > size_limit:
            mb = -(-self.bytes // (1024 * 1024))
            return self._refuse_commit(SIZE[0], SIZE[1], "transaction-size-limit",
                                       detail=f"Current transaction size {mb}mb > {size_limit // (1024 * 1024)}mb")
        with engine.adjudicator:  # first committer wins: decisions are taken one at a time
            if (self.wrote or self.ddl or self.pending) and self._stale():
                return self._refuse_commit(*SCHEMA, "occ-conflict", variant="schema")
            board = engine.board
            if self.doomed or any(board.is_committed(b) for _, blockers, _ in self.pending for b in blockers):
                return self._lose()
            board.mark_committed(self.id, self.txn_number)  # (kept while a pending write names it)
            if self.pending or self.ddl:  # re-apply and commit while holding the decision
                self._commit_pg()
                if self.ddl:
                    engine.catalog_version += 1
            else:
                # decided: nothing can make this transaction lose now. Others see it as committed from
                # here on (and do not wound it), so PostgreSQL's COMMIT can run outside the lock, in
                # parallel with other sessions' commits
                self.committing = True
        if self.committing:
            try:
                self._commit_pg()
            finally:
                self.committing = False
        jobs, self.jobs = self.jobs, []
        self._reset_txn()
        for job in jobs:
            engine.jobs.submit(job)
        return Result("COMMIT")

    def _finish_audit(self) -> Result:
        """COMMIT in audit mode: what DSQL would answer at COMMIT (the 300 s and 10 MiB bounds, OC001) is
        recorded, and PostgreSQL commits — or answers ROLLBACK for a transaction its own error left failed."""
        import psycopg

        engine = self.engine
        if self.pg_open and self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            self._rollback_pg()
            self._reset_txn()
            return Result("ROLLBACK")
        limit = engine.profile.limit("transaction_seconds")
        if self.started is not None and engine.clock() - self.started > limit:
            self._violation("COMMIT", AGE[0], AGE[1].format(limit=limit), "transaction-timeout")
        if self.bytes > engine.profile.limit("bytes_per_transaction"):
            self._violation("COMMIT", SIZE[0], SIZE[1], "transaction-size-limit")
        if (self.wrote or self.ddl) and self._stale() and not self.stale_seen:
            self._violation("COMMIT", *SCHEMA, "occ-conflict", "schema")
        with engine.adjudicator:
            if self.pg_open:
                self._pg("COMMIT")
                self.pg_open = False
            if self.ddl:
                engine.catalog_version += 1
        jobs, self.jobs = self.jobs, []
        self._reset_txn()
        for job in jobs:
            engine.jobs.submit(job)
        return Result("COMMIT")

    def _commit_pg(self) -> None:
        # decided to commit: it commits even if the client hangs up now (its socket is not watched)
        watch, self.watch = self.watch, None
        try:
            self._reapply()
        finally:
            self.watch = watch
        if self.pg_open:
            self._pg("COMMIT")
            self.pg_open = False

    def _reapply(self) -> None:
        for facts, _, bind in self.pending:
            # re-apply the writes that met another transaction's lock. PostgreSQL's MVCC is the record
            # of what committed: a row written by a transaction that committed after our snapshot fails
            # the write (we lose); a writer still open blocks it, and loses to us (first committer wins)
            try:
                self._guarded(facts.text, wound="data", bind=bind)
            except Exception:  # noqa: BLE001 - SerializationFailure, or the row's constraint now fails
                self.engine.board.mark_committed(self.id, self.txn_number, False)
                self._lose()

    def _refuse_commit(self, sqlstate: str, message: str, slug: str, variant: str | None = None,
                       detail: str | None = None) -> Result:
        self._rollback_pg()
        self._reset_txn()
        raise DsqlError(sqlstate, message, self.engine.record(self, "COMMIT", sqlstate, message, slug, variant),
                        detail)

    def _lose(self) -> Result:
        # where the conflict is (for reports): our writes that met a transaction that committed, and the
        # winners' writes that met ours; not a write that only waited for a transaction that rolled back
        board = self.engine.board
        colliding = [facts.text for facts, blockers, _ in self.pending
                     if any(board.is_committed(b) for b in blockers)]
        for theirs, table in self.doomed_by:  # a winner met a row we wrote: name our write to that table
            mine = [t for t in self.written if self._relation(t) == table]
            colliding.append(mine[-1] if mine else theirs)
        colliding = colliding or [facts.text for facts, _, _ in self.pending]
        self._rollback_pg()
        self._reset_txn()
        finding = self.engine.record(self, "COMMIT", *OCC, "occ-conflict", "data")
        finding["colliding"] = colliding
        raise DsqlError(*OCC, finding)

    def _relation(self, text: str):
        rel = (self.engine.decide(text)[0].stmt or {}).get("relation") or {}
        return rel.get("schemaname"), rel.get("relname")

    def _run_doomed_safe(self, facts) -> "Ran":
        """Run the statement; if a winner rolls our transaction back while the statement runs (its backend
        is terminated), answer as DSQL does — the statement succeeds, the COMMIT fails — by running it again
        on a fresh backend (OC001 at once when a DDL did it). The run again can lose its backend to another
        winner too (a hot row): it is run again until it completes."""
        import psycopg

        for attempt in range(_RERUNS):
            try:
                return self._run(facts)
            except psycopg.OperationalError:
                kind = self._wound_kind()
                if kind == "schema":
                    raise self._fail(facts.unit.text, *SCHEMA, "occ-conflict", "schema") from None
                if kind is None or attempt == _RERUNS - 1:
                    raise
                # a winner terminated our backend: this transaction lost its work and cannot commit
                self.doomed = True
                self.wounded = False
                self._reconnect()
                self.pg_open = False
                self.savepoint = self.probe = False
        raise AssertionError("unreachable")

    def _wound_kind(self) -> str | None:
        """Why our backend went away, when a winner ended it: "schema" (a DDL committed first) or "data";
        None when nothing of ours explains it (PostgreSQL itself failed)."""
        recorded = self.engine.board.take_wound(self._slot_index, self.pid)
        if self.schema_doomed or recorded == "schema":
            return "schema"
        # the session flags can outlive a transaction that ended meanwhile, so ``wounded`` alone counts
        if recorded or self.doomed or self.wounded:
            return "data"
        return None

    def _guarded(self, text: str, wound: str | None, bind=None):
        """Run a statement that must not wait for another session's transaction: when PostgreSQL makes it
        wait, the sessions holding it lose now — ``wound="schema"`` for a DDL (they get OC001 at their next
        statement), ``"data"`` for a write re-applied at our COMMIT (we commit first, they get OC000 at
        theirs) — and are rolled back, which releases their locks. Waits on the engine's own connections
        (an async build) are waited out. ``wound=None``: cancel the statement and raise Blocked naming
        the sessions it waited for."""
        box: list = []

        def run():
            try:
                box.append(self._user(text, bind))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread (ClientGone too)
                box.append(exc)

        if self.pg_open:  # an earlier write's lock probe would cut this wait short
            self._pg("SET LOCAL lock_timeout = 0")
            self.probe = False
        worker = threading.Thread(target=run)
        worker.start()
        worker.join(0.002)
        # the sessions holding the lock may run in another worker process: the board finds them by backend pid
        board = self.engine.board
        relation = None
        while worker.is_alive():
            pids = self.engine.blocking(self.pid)
            if wound is None and pids:
                blockers = set()
                for p in pids:
                    if (index := board.by_pid(p)) is not None:
                        other = board.slots[index]
                        blockers.add("committed" if other.committing else (other.session_id, other.txn_number))
                if self.engine.cancel_waiting(self.pid):
                    worker.join()
                    raise Blocked(blockers or {"committed"})
                worker.join(0.002)  # the wait ended as we looked: the statement's own outcome decides
                continue
            for pid in pids:
                index = board.by_pid(pid)
                if index is None or index == self._slot_index:
                    continue
                if board.slots[index].committing:  # decided already: it wins; a write re-applied behind it loses
                    if wound == "data" and self.engine.cancel_waiting(self.pid):
                        worker.join()
                        raise Blocked({"committed"})
                    continue  # a DDL waits for it to finish
                # (a transaction doomed before may hold locks again on its new backend: roll it back too)
                if wound == "data" and relation is None:
                    relation = self._relation(text)
                board.doom(index, wound, text, relation)
                self.engine.wound(pid, wound)  # the backend holding the lock, not a later one of the session
            worker.join(0.002)
        out = box[0]
        if isinstance(out, Exception):
            raise out
        return out
