"""Running a statement on PostgreSQL the way DSQL runs it: reads as they are; writes measured (the row and
value bounds, the 10 MiB transaction bound) and probed for another transaction's row, where DSQL would not
wait; DDL run to its end; COPY through the caller's data channel."""

from __future__ import annotations

import re

from dsql_audit.catalog import load_catalog
from dsql_audit.engine import pgcall, writes
from dsql_audit.engine.errors import OCC, DsqlError
from dsql_audit.engine.occ import Blocked
from dsql_audit.engine.results import Ran, Result
from dsql_audit.sqltext import where_clause

LOCK_PROBE = "2ms"  # a write waiting this long for a row lock met an open transaction's write
_UNMEASURABLE = None  # PostgreSQL errors our RETURNING column can cause (then the write runs unmeasured)
# statements PostgreSQL refuses inside a transaction block (audit mode sends them on their own)
_NO_TXN_BLOCK = frozenset({"CreatedbStmt", "DropdbStmt", "VacuumStmt", "CreateTableSpaceStmt",
                           "DropTableSpaceStmt", "AlterSystemStmt", "ReindexStmt", "CreateSubscriptionStmt",
                           "DropSubscriptionStmt", "AlterSubscriptionStmt"})
_LOCKING = re.compile(r"\s+FOR\s+(?:NO\s+KEY\s+UPDATE|KEY\s+SHARE|UPDATE|SHARE)\b(?:\s+OF\s+[\w\s,.\"]+?)?"
                      r"(?:\s+NOWAIT|\s+SKIP\s+LOCKED)?(?:\s*/\*.*?\*/|\s*--[^\n]*)*\s*;?\s*$", re.I | re.S)


class StatementRunner:
    """A part of Session (engine/session.py)."""

    def _run(self, facts) -> "Ran":
        if self.wounded:  # our backend was terminated by a winner: keep answering, the COMMIT will fail
            self.wounded = False
            self._reconnect()
            self.pg_open = False
            self.savepoint = self.probe = False
        if facts.node == "IndexStmt" and "index_async" in facts.dsql:
            return self._async_job("INDEX_BUILD", facts)
        # the extended protocol's implicit transaction holding only this statement is no transaction block to
        # PostgreSQL (Parse/Bind/Execute/Sync of CREATE INDEX CONCURRENTLY runs): nothing opened, nothing before
        alone = not self.in_txn or (self.implicit and not self.pg_open and self.ddl <= 1 and not self.dml)
        if self.engine.audit and alone and (facts.node in _NO_TXN_BLOCK or (
                facts.node == "IndexStmt" and facts.stmt.get("concurrent"))):
            # audit mode runs what DSQL refused; these PostgreSQL runs only outside a transaction block
            return Ran(self._result(self._user(facts.text, self._bind)), 0)
        if "alter_async" in facts.dsql:
            return self._async_job("VALIDATE", facts)
        if facts.klass == "ddl":
            return self._ddl(facts)
        if facts.node == "CopyStmt" and not facts.stmt.get("filename") and not facts.stmt.get("is_program"):
            return self._copy(facts)
        write = facts.klass == "dml" or (facts.node == "SelectStmt" and '"LockingClause"' in facts.js)
        if not write:
            stream = self._emit is not None  # the wire front takes the rows as they come
            if not self.in_txn or (self.implicit and not self.pg_open):
                # an autocommit read needs no transaction of ours; nor does a read that opens an implicit
                # block (the extended protocol's statements up to Sync): a write after it starts one
                res = self._user(facts.text, self._bind, stream)
            else:
                res = self._send([], facts.text, self._bind, stream)
            if isinstance(res, pgcall.RowStream):
                res.on_error = self._stream_failed
                return Ran(Result(res.tag, [f.name for f in res.fields], fields=res.fields, stream=res), 0)
            return Ran(self._result(res), 0)
        self.wrote = True
        return self._write(facts)

    def _write(self, facts) -> "Ran":
        import psycopg

        global _UNMEASURABLE
        if _UNMEASURABLE is None:
            _UNMEASURABLE = _unmeasurable()
        text, sized = facts.text, False
        target = writes.target(facts.stmt) if facts.node in writes.SIZED_NODES else None
        if target is not None:
            ref, regclass = target
            bounded = facts.node != "DeleteStmt"  # a deleted row is over no bound
            profile = self.engine.profile
            expression = writes.size_expression(
                ref, self.engine.index_keys(self.conn, regclass),
                self.engine.value_columns(self.conn, regclass) if bounded else (),
                row_bytes=profile.limit("row_bytes") if bounded else 0,
                value_bytes=profile.limit("value_bytes") if bounded else 0)
            text, sized = writes.sized_text(facts.text, facts.stmt, expression), True
        # a savepoint per write (not released: a released one costs the same subtransaction and one more
        # statement); the lock probe is set once per transaction, outside any savepoint
        prefix = [] if self.probe else [f"SET LOCAL lock_timeout = '{LOCK_PROBE}'"]
        prefix.append("SAVEPOINT dsql_write")
        bind = self._bind
        try:
            res = self._send(prefix, text, bind)
            self.savepoint = self.probe = True
        except (psycopg.errors.LockNotAvailable, psycopg.errors.SerializationFailure) as exc:
            self.savepoint = self.probe = True
            if self.engine.audit:
                return self._write_audit(facts, text, sized, bind, exc)
            self._pg("ROLLBACK TO SAVEPOINT dsql_write")
            if isinstance(exc, psycopg.errors.SerializationFailure):  # a newer committed version of the row
                self.pending.append((facts, {"committed"}, bind))
                return self._snapshot_answer(facts)
            # it met an open transaction's row lock: run it again, watching who holds the lock (a FOR
            # UPDATE leaves no trace once committed, so the blockers are remembered)
            try:
                res = self._guarded(text, wound=None, bind=bind)
            except Blocked as blocked:
                self._pg("ROLLBACK TO SAVEPOINT dsql_write")
                self.engine.board.reference(blocked.blockers)  # kept on the board while this names them
                self.pending.append((facts, blocked.blockers, bind))
                return self._snapshot_answer(facts)
        except _UNMEASURABLE:
            if not sized:  # the statement's own error
                raise
            self.savepoint = self.probe = True  # our RETURNING did not fit the statement: run it unmeasured
            self._pg("ROLLBACK TO SAVEPOINT dsql_write")
            res, sized = self._user(facts.text, bind), False
        if len(self.written) < 32:
            self.written.append(facts.text)
        return self._written(facts, res, sized)

    def _written(self, facts, res, sized: bool) -> "Ran":
        """A write's answer; ``sized``: its last column is the engine's row-size measure (counted, dropped)."""
        if sized:
            keep = bool(facts.stmt.get("returningClause") or facts.stmt.get("returningList"))
            result, sizes = self._result(res, split_last=True, keep=keep)
            unpacked = [writes.unpack(n) for n in sizes]
            self.bytes += sum(n for n, _, _ in unpacked)
            if any(row or value for _, row, value in unpacked):
                self._size_bound(facts, unpacked)
        else:
            result = self._result(res)
        return Ran(result, res.rowcount if facts.klass == "dml" else 0)

    def _size_bound(self, facts, unpacked: list) -> None:
        """A written row over DSQL's 2 MiB row bound, or with a value over its 1 MiB bound: DSQL refuses
        the statement (54000)."""
        over_row = any(row for _, row, _ in unpacked)
        variant = load_catalog()["size-limit"].variant("row" if over_row else "value")
        self._violation(facts.unit.text, variant.sqlstate, variant.dsql_message, "size-limit",
                        "row" if over_row else "value")

    def _write_audit(self, facts, text: str, sized: bool, bind, exc) -> "Ran":
        """Audit mode: a write that met another open transaction's row (it would lose at COMMIT on DSQL, or
        make the other lose) is recorded, then waits for that transaction as PostgreSQL makes it; a row a
        transaction committed after our snapshot fails now with PostgreSQL's 40001 (DSQL: at COMMIT)."""
        import psycopg

        variant = "data"
        message = OCC[1] + (": this write met a row another open transaction wrote; on DSQL the transaction "
                            "that commits second fails at COMMIT" if isinstance(exc, psycopg.errors.LockNotAvailable)
                            else ": this write met a row another transaction changed after this one began")
        self._violation(facts.text, OCC[0], message, "occ-conflict", variant)
        if isinstance(exc, psycopg.errors.SerializationFailure):
            raise exc
        self._pg("ROLLBACK TO SAVEPOINT dsql_write")
        self._pg("SET LOCAL lock_timeout = 0")  # wait, as PostgreSQL does
        self.probe = False
        return self._written(facts, self._user(text, bind), sized)

    def _ddl(self, facts) -> "Ran":
        """DDL runs to the end: a DSQL DDL does not wait for other sessions' transactions; they lose
        (OC001) when they next use the catalog. Here PostgreSQL would make it wait for their locks, so
        those sessions' transactions are rolled back now and marked stale."""
        self._open_pg()
        for constraint in facts.nodes("Constraint"):
            # an index still building is not valid yet (DSQL-REFERENCE §6); PostgreSQL would wait for the
            # build to finish and then accept, so answer as DSQL does before asking PostgreSQL
            name = constraint.get("indexname")
            if name and not self.conn.execute("SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = "
                                              "to_regclass(%s)), true)", (quote_ident(name),)).fetchone()[0]:
                raise self._fail(facts.unit.text, "55000", f'index "{name}" is not valid', None)
        self.engine.jobs.drain()  # a build holds its table; PostgreSQL would deadlock a DDL against it
        if self.engine.audit:  # no session is rolled back for it: the DDL waits for their locks, as on PostgreSQL
            return Ran(self._result(self._user(facts.text, self._bind)), 0)
        res = self._guarded(facts.text, wound="schema", bind=self._bind)
        return Ran(self._result(res), 0)

    def _copy(self, facts) -> "Ran":
        """COPY … FROM STDIN / TO STDOUT, data through ``execute(copy=…)``. Rows copied in count toward the
        row bound like any write."""
        is_from = bool(facts.stmt.get("is_from"))
        io = self._copy_io
        if io is None:
            raise DsqlError("0A000", f"COPY {'FROM STDIN' if is_from else 'TO STDOUT'} needs a data channel "
                                     "(execute(sql, copy=…), or a PostgreSQL client through dsql-audit serve)")
        if is_from or self.in_txn:
            self._open_pg()
            self.wrote = self.wrote or is_from
        with self.conn.cursor() as cur:
            with cur.copy(facts.text) as cp:
                res = cur.pgresult  # PostgreSQL's CopyIn/CopyOutResponse: columns and format
                shape = (res.nfields, res.binary_tuples) if res is not None else (0, 0)
                if is_from:
                    for chunk in io.begin(True, *shape):
                        cp.write(chunk)
                else:
                    io.begin(False, *shape)
                    for data in cp:
                        io.write(bytes(data))
                    io.end()
            return Ran(Result(cur.statusmessage or ""), cur.rowcount if is_from else 0)

    def _snapshot_answer(self, facts) -> "Ran":
        """What DSQL answers for a write it lets through until COMMIT: the rows it would touch, read on
        our snapshot (DSQL-REFERENCE §5: the loser's statements return normal tags)."""
        node, s = facts.node, facts.stmt
        bind = self._bind
        if node == "SelectStmt":
            res = self._user(_LOCKING.sub("", facts.text), bind)
            return Ran(self._result(res), 0)
        if node == "InsertStmt":
            sel = (s.get("selectStmt") or {}).get("SelectStmt") or {}
            n = len(sel.get("valuesLists") or ()) or 1
            return Ran(Result(f"INSERT 0 {n}"), n)
        rel = s.get("relation") or {}
        target = ".".join(quote_ident(p) for p in (rel.get("schemaname"), rel.get("relname")) if p)
        if (rel.get("alias") or {}).get("aliasname"):
            target += " AS " + quote_ident(rel["alias"]["aliasname"])
        where = where_clause(facts.text)
        where = f" {where}" if where else ""
        try:
            self._pg("SAVEPOINT dsql_count")
            n = int(self._user(f"SELECT count(*) FROM {target}{where}", bind and (bind[0], bind[1], bind[2], 0))
                    .raw_rows()[0][0])
            self._pg("RELEASE SAVEPOINT dsql_count")
        except Exception:  # noqa: BLE001 - a parameter the WHERE does not use has no type: say one row
            self._pg("ROLLBACK TO SAVEPOINT dsql_count")
            n = 1
        return Ran(Result(f"{'UPDATE' if node == 'UpdateStmt' else 'DELETE'} {n}"), n)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _unmeasurable():
    import psycopg.errors as e

    return (e.FeatureNotSupported, e.UndefinedColumn, e.UndefinedTable, e.AmbiguousColumn,
            e.WrongObjectType)
