"""What a pg_stat_statements entry's figures say about it on DSQL, beyond what the gate refuses.

- the transaction bounds judged from captured figures: rows per call over the row limit, mean or slowest
  call over the transaction age limit;
- names the schema as DSQL holds it cannot resolve (the statement prepared in the engine, parameter
  types inferred by PostgreSQL);
- hot-row candidates: frequent single-row UPDATEs, judged at the end against the table's size.

Findings come out as the engine records them (dicts with rule, variant, sqlstate, message), so replay turns
them into Findings the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsql_audit.catalog import load_catalog
from dsql_audit.rules import hot_row, unresolved_name

_WRITES = {"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"}


@dataclass
class _Update:
    origin: str  # the capture
    event: object
    table: str  # schema-qualified when the statement qualifies it


def finding(slug: str, variant: str | None, message: str, statement: str, detail: str = "") -> dict:
    """A finding as the engine records one; ``dsql_message`` is what DSQL itself would answer (None where
    DSQL answers nothing: a prediction such as a hot row)."""
    rule = load_catalog()[slug]
    v = rule.variant(variant or next(iter(rule.variants)))
    said = v.dsql_message.replace("{detail}", detail) if v.dsql_message else None
    return {"rule": slug, "code": rule.code, "variant": v.name, "sqlstate": v.sqlstate, "message": message,
            "dsql_message": said, "statement": statement, "session": None, "transaction": None, "time": None}


class WorkloadJudge:
    """Judges pg_stat_statements entries against one engine (its schema and data already loaded)."""

    def __init__(self, engine, *, resolve: bool, table_rows: dict | None = None):
        self.engine = engine
        self.resolve = resolve  # prepare statements: only meaningful once a schema is loaded
        self.table_rows = dict(table_rows or {})  # table → live rows, where known
        self.updates: list[_Update] = []
        self.calls = 0
        self._conn = None

    def _connection(self):
        if self._conn is None:
            import psycopg

            # reads only: PREPARE/DEALLOCATE and row counts, on the engine's own PostgreSQL
            self._conn = psycopg.connect(self.engine.uri, autocommit=True)
            self._conn.execute("SET statement_timeout = '5s'")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def judge(self, ev, facts, refused: bool, origin: str = "") -> list[dict]:
        self.calls += ev.calls
        out = []
        profile = self.engine.profile
        node = facts.node
        if (node in _WRITES or node == "CopyStmt" and (facts.stmt or {}).get("is_from")) and ev.rows is not None \
                and ev.calls:  # COPY … FROM counts its rows as written, as any write does
            per_call = ev.rows / ev.calls
            limit = profile.limit("rows_per_transaction")
            if per_call > limit:
                out.append(finding("transaction-row-limit", None,
                                   f"captured {per_call:,.0f} rows per call on average (DSQL allows {limit:,} "
                                   f"modified rows per transaction): these calls fail with 54000", ev.sql))
        age = profile.limit("transaction_seconds")
        if ev.mean_ms is not None and ev.mean_ms > age * 1000:
            out.append(finding("transaction-timeout", None,
                               f"captured mean time {ev.mean_ms / 1000:,.0f}s per call: its transaction passes "
                               f"DSQL's {age}s age limit and fails at COMMIT", ev.sql, str(age)))
        elif ev.max_ms is not None and ev.max_ms > age * 1000:
            out.append(dict(finding("transaction-timeout", None,
                                    f"the slowest captured call took {ev.max_ms / 1000:,.0f}s (DSQL's limit is "
                                    f"{age}s per transaction): calls that slow fail at COMMIT", ev.sql, str(age)),
                            slowest_only=True))
        if node == "UpdateStmt" and ev.rows is not None and ev.calls and ev.rows <= ev.calls:
            rel = (facts.stmt or {}).get("relation") or {}
            if rel.get("relname"):
                name = f"{rel['schemaname']}.{rel['relname']}" if rel.get("schemaname") else rel["relname"]
                self.updates.append(_Update(origin, ev, name))
        if self.resolve and not refused and facts.klass in ("dml", "query"):
            hit = self._prepare(ev.sql)
            if hit is not None:
                out.append(finding("unresolved-name", None, hit, ev.sql))
        return out

    def judge_duration(self, ev) -> list[dict]:
        """A logged autocommit statement's own duration (`duration:` lines) beyond DSQL's transaction age."""
        age = self.engine.profile.limit("transaction_seconds")
        if ev.duration_ms is None or ev.duration_ms <= age * 1000:
            return []
        return [finding("transaction-timeout", None, f"the captured run took {ev.duration_ms / 1000:,.0f}s (DSQL "
                        f"allows {age}s per transaction): on DSQL it fails", ev.sql, str(age))]

    def _prepare(self, sql: str) -> str | None:
        import psycopg

        conn = self._connection()
        try:
            conn.execute("PREPARE dsql_audit_probe AS " + sql, prepare=False)
        except psycopg.Error as exc:
            diag = exc.diag
            return unresolved_name.judge(diag.sqlstate, diag.message_primary or str(exc))
        conn.execute("DEALLOCATE dsql_audit_probe")
        return None

    def rows_of(self, table: str) -> int | None:
        """The table's live rows: as the capture or seeding said, else counted in the engine (up to a
        bound) when it holds any; None when unknown."""
        known = self.table_rows.get(table)
        if known is None and "." not in table:
            known = self.table_rows.get(f"public.{table}")
        if known is not None:
            return known
        import psycopg

        try:
            qualified = ".".join(psycopg.sql.Identifier(p).as_string(None) for p in table.split("."))
        except Exception:  # noqa: BLE001
            return None
        try:
            n = self._connection().execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {qualified} LIMIT {hot_row.SMALL_TABLE + 1}) s").fetchone()[0]
        except psycopg.Error:
            return None
        return n or None

    def finish(self) -> list[tuple[str, object, dict]]:
        """(capture, event, finding) for the hot-row candidates, now that the capture's total calls are known."""
        out = []
        for u in self.updates:
            verdict = hot_row.judge(u.event.calls, self.rows_of(u.table), self.calls, u.table)
            if verdict is not None:
                variant, message = verdict
                out.append((u.origin, u.event, finding("hot-row", variant, message, u.event.sql)))
        self.updates.clear()
        return out
