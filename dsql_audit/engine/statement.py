"""One statement as DSQL handles it: the gate's refusals and the live catalog's, the transaction's shape (one
DDL, no DDL with DML), the answers DSQL gives where PostgreSQL 16 differs, then the run and the bounds checked
after it (rows per transaction, DDL quotas, temporary space). Enforcing, a violation fails the statement;
audit mode records it and lets PostgreSQL run the statement."""

from __future__ import annotations

from dsql_audit.catalog import load_catalog
from dsql_audit.engine import quotas
from dsql_audit.engine.errors import ABORTED, ROW_LIMIT, SCHEMA, DsqlError
from dsql_audit.engine.gate import transaction_message
from dsql_audit.engine.results import Result

DSQL_SERVER_VERSION = "16.15"  # SHOW server_version on a real cluster (probe env_server_version_setting)
DSQL_SERVER_VERSION_NUM = "160015"
_ENVIRONMENT_NODES = frozenset({"VariableShowStmt", "CallStmt"})  # the statements _environment answers


class StatementHandling:
    """A part of Session (engine/session.py)."""

    def _fail(self, text: str, sqlstate: str, message: str, slug: str | None, variant: str | None = None) -> DsqlError:
        """Fail the statement; a DSQL rule's violation (``slug``) is recorded as a finding."""
        finding = None
        if slug:
            finding = self.engine.record(self, text, sqlstate, message, slug, variant)
            self._count_refused()
        if self.in_txn:
            self.aborted = True  # DSQL: any error inside a transaction aborts it
            self._rollback_pg()
        return DsqlError(sqlstate, message, finding)

    def _violation(self, text: str, sqlstate: str, message: str, slug: str, variant: str | None = None) -> None:
        """DSQL refuses here. Enforcing: the statement fails as on DSQL. Audit mode: the violation is recorded
        and the statement goes on with PostgreSQL's semantics."""
        if not self.engine.audit:
            raise self._fail(text, sqlstate, message, slug, variant)
        self.engine.record(self, text, sqlstate, message, slug, variant)
        self._count_refused()

    def _count_refused(self) -> None:
        """One more statement DSQL refuses (once per statement, however many rules it breaks)."""
        stats = self.engine.stats
        if self._refused_at != stats["statements"]:
            self._refused_at = stats["statements"]
            stats["refused"] += 1

    def _live_catalog(self, text: str, pending: list) -> None:
        """What the statement alone cannot say and the live catalog does (the scan decides it from files): a
        FOR UPDATE's full-key equality before ~2026-09-09, a dropped column that is a key (or any DROP COLUMN
        before 2026-08-03), an index over a json/jsonb column. The first such refusal answers."""
        from dsql_audit.rules.index_definition import UNKEYABLE

        catalog, profile = load_catalog(), self.engine.profile
        for hit in pending:
            key = (hit.slug, hit.variant)
            if key == ("select-for-update", "needs_pk") and not profile.features.get("for_update_general"):
                pk = self.engine.primary_key(self.conn, *hit.args["table"])
                if pk is None or set(pk) <= set(hit.args["columns"]):
                    continue  # an unknown table is PostgreSQL's to answer (42P01)
                variant = catalog["select-for-update"].variant("not_pk_equality")
                self._violation(text, variant.sqlstate, variant.dsql_message, "select-for-update", "not_pk_equality")
                return
            if key == ("alter-table", "drop_column"):
                variant = catalog["alter-table"].variant("drop_column")
                if profile.holds(variant.when):
                    self._violation(text, variant.sqlstate, variant.message.format(object=hit.detail or ""),
                                    "alter-table", "drop_column")
                    return
                pk = self.engine.primary_key(self.conn, *hit.args["table"])
                if pk and hit.args["column"] in pk:
                    variant = catalog["alter-table"].variant("drop_pk_column")
                    self._violation(text, variant.sqlstate, variant.dsql_message.format(detail=hit.args["column"]),
                                    "alter-table", "drop_pk_column")
                    return
            if key == ("index-definition", "key_type_unresolved"):
                types = self.engine.column_types(self.conn, *hit.args["table"])
                bad = [c for c in hit.args["columns"] if types.get(c) in UNKEYABLE]
                if bad:
                    variant = catalog["index-definition"].variant("key_type")
                    self._violation(text, variant.sqlstate, variant.dsql_message.format(detail=types[bad[0]]),
                                    "index-definition", "key_type")
                    return

    def _transaction_violations(self, facts) -> list:
        """(sqlstate, message, rule, variant) of DSQL's transaction rules this statement breaks where it stands:
        a second DDL, or DDL and DML mixed, in one transaction."""
        if not self.in_txn or not (self.ddl or facts.klass == "ddl" and self.dml):
            return []  # (the common case: nothing to look up in the catalog)
        out = []
        if facts.klass == "ddl":
            if self.ddl:
                out.append(("0A000", transaction_message("multiple-ddl"), "multiple-ddl", "explicit"))
            if self.dml:
                out.append(("0A000", transaction_message("ddl-dml-mix"), "ddl-dml-mix", "explicit"))
        elif facts.klass == "dml" and self.ddl:
            out.append(("0A000", transaction_message("ddl-dml-mix"), "ddl-dml-mix", "explicit"))
        return out

    def _one(self, text: str) -> Result:
        facts, refused, pending = self.engine.decide(text, live=True)
        self.engine.stats["statements"] += 1
        kind = (facts.stmt or {}).get("kind") if facts.node == "TransactionStmt" else None
        if kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK"):
            return self._finish("COMMIT" if kind == "TRANS_STMT_COMMIT" else "ROLLBACK")
        if self.aborted:  # reported before any other check (probe aborted_txn_prefers_25P02)
            raise DsqlError(*ABORTED)
        if self.in_txn and self._stale() and not self.stale_seen:  # DDL committed since our transaction started
            self.stale_seen = self.engine.audit  # audit mode: once a transaction
            self._violation(text, *SCHEMA, "occ-conflict", "schema")
        if refused and not self.engine.audit:
            # DSQL answers with one error; every other rule that applies to the statement is a finding too (a
            # sync CREATE INDEX that is also a second DDL), so fixing the first does not just reveal the next
            first = refused[0]
            error = self._fail(text, first.sqlstate, first.message, first.slug, first.variant)
            for also in [(r.sqlstate, r.message, r.slug, r.variant) for r in refused[1:]] + \
                    self._transaction_violations(facts):
                self.engine.record(self, text, *also)
            raise error
        for refusal in refused:
            self._violation(text, refusal.sqlstate, refusal.message, refusal.slug, refusal.variant)
        if pending:
            self._live_catalog(text, pending)
        if facts.node == "ViewStmt" and \
                len(text.encode("utf-8")) > self.engine.profile.limit("view_definition_bytes"):
            variant = load_catalog()["size-limit"].variant("view")
            self._violation(text, variant.sqlstate, variant.dsql_message, "size-limit", "view")
        if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
            if self.implicit and not self.pg_open:  # BEGIN inside an implicit block makes it explicit
                self.implicit = False
                self.begin = facts.text
            if not self.in_txn:
                self.in_txn = True
                self._start_txn()
                self.begin = facts.text  # BEGIN [READ ONLY]; the database default is REPEATABLE READ
            return Result("BEGIN")
        if facts.node in _ENVIRONMENT_NODES:
            answer = self._environment(facts)
            if answer is not None:
                return answer
        autocommit = not self.in_txn
        if autocommit:
            self._start_txn()
        if self.in_txn:
            for violation in self._transaction_violations(facts):  # (enforcing, the first fails the statement)
                self._violation(text, *violation)
        if facts.klass == "ddl":
            self.ddl += 1
        elif facts.klass == "dml":
            self.dml += 1
        try:
            result = self._run_doomed_safe(facts)
            if facts.klass == "dml" and result.rowcount > 0:
                self.rows += result.rowcount
                if self.rows > self.engine.profile.limit("rows_per_transaction") and not self.over_rows:
                    self.over_rows = self.engine.audit  # audit mode: once a transaction
                    self._violation(text, *ROW_LIMIT, "transaction-row-limit")
            if facts.klass == "ddl":
                over = quotas.check(self.conn, facts, self.engine.profile)
                if over is not None:
                    slug, sqlstate, message = over
                    self._violation(text, sqlstate, message, slug)
        except DsqlError:
            if autocommit:
                self._rollback_pg()
                self._reset_txn()
            raise
        except Exception as exc:  # PostgreSQL's own error: DSQL's PostgreSQL 16 front end answers the same
            if self.conn.broken:  # not an answer: the backend went away (execute() says why)
                raise
            if _over_temp_space(exc):  # PostgreSQL's temp_file_limit stands for DSQL's 128 MiB of query memory
                variant = load_catalog()["size-limit"].variant("temp_space")
                raise self._fail(text, variant.sqlstate, variant.dsql_message.replace(
                    "131072", str(self.engine.profile.limit("query_temp_kb"))), "size-limit", "temp_space") from None
            raise self._pg_failed(exc) from None
        if autocommit:
            if self.pg_open or self.pending or self.jobs:
                self._finish("COMMIT")  # an autocommit write is a transaction too: it can win or lose
            else:
                self._reset_txn()
        return result.result

    def _environment(self, facts) -> Result | None:
        """Answers that differ from the embedded PostgreSQL 16.14 (recorded on a real cluster), and DSQL's
        own procedure."""
        if facts.node == "VariableShowStmt":
            name = (facts.stmt.get("name") or "").lower()
            if name == "server_version":
                return Result("SHOW", ["server_version"], [(DSQL_SERVER_VERSION,)])
            if name == "server_version_num":
                return Result("SHOW", ["server_version_num"], [(DSQL_SERVER_VERSION_NUM,)])
            if name in ("lc_collate", "lc_ctype"):
                self._violation(facts.unit.text, "42704", f'unrecognized configuration parameter "{name}"',
                                "unsupported-statement")
                return None  # audit mode: PostgreSQL answers
            if name == "timezone":
                return Result("SHOW", ["TimeZone"], [("UTC",)])
        if facts.node == "CallStmt":
            return self._wait_for_job(facts)
        return None


def _over_temp_space(exc: Exception) -> bool:
    diag = getattr(exc, "diag", None)
    return getattr(diag, "sqlstate", None) == "53400" and "temp_file_limit" in (getattr(diag, "message_primary", None)
                                                                                or "")
