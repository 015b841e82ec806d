"""hot-row: frequent single-row UPDATEs against a table of few rows (judged from pg_stat_statements)."""

from __future__ import annotations

SMALL_TABLE = 10_000  # rows: above this, single-row updates spread over many rows
UPDATES_PER_ROW = 100  # captured single-row updates per table row that make its rows hot
CANDIDATE_CALLS = 1_000  # size unknown: this many calls …
CANDIDATE_SHARE = 0.01  # … and this share of the capture's calls make a candidate


def judge(calls: int, table_rows: int | None, capture_calls: int, table: str,
          writes: str = "single-row updates") -> tuple[str, str] | None:
    """(variant, message) when the statement's rows are hot, else None."""
    if table_rows is not None:
        if table_rows <= SMALL_TABLE and calls / table_rows >= UPDATES_PER_ROW:
            return "small-table", (
                f"{calls:,} {writes} of {table}, a table of {table_rows:,} "
                f"row{'s' if table_rows != 1 else ''} ({calls / table_rows:,.0f} per row): concurrent calls will "
                f"conflict (40001 OC000) where PostgreSQL queued them")
        return None
    share = calls / capture_calls if capture_calls else 0.0
    if calls >= CANDIDATE_CALLS and share >= CANDIDATE_SHARE:
        return "candidate", (
            f"{calls:,} {writes} of {table} ({share:.0%} of the capture's calls); the table's size is "
            f"unknown (seed it with --data, or capture table sizes) — if it has few rows they will conflict")
    return None
