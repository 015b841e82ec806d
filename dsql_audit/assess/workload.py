"""What pg_stat_statements says about a workload: the cost-planning profile (reads and writes, rows per call,
the top statements, key lookups) and the transaction bounds it already shows (rows per call over 3,000, calls
over 300 s). Measured figures only: no capacity or price is invented."""

from __future__ import annotations

import re

from dsql_audit.sqltext import lead

_WRITE = {"insert", "update", "delete", "merge"}
_READ = {"select", "with", "values", "table", "show"}
# a read that names one row by key: WHERE col = $n (AND col = $n …), nothing else
_KEY_LOOKUP = re.compile(r"\bwhere\s+[\w.\"]+\s*=\s*\$\d+(?:\s+and\s+[\w.\"]+\s*=\s*\$\d+)*"
                         r"\s*(?:limit\s+\$?\d+\s*)?;?\s*$", re.I)


def kind(sql: str) -> str:
    word = (lead(sql).split(None, 1) or [""])[0].lower().rstrip(";(")
    if word in _WRITE:
        return "write"
    if word == "with":  # a CTE that writes is a write
        return "write" if re.search(r"\b(insert|update|delete)\b", sql, re.I) else "read"
    return "read" if word in _READ else "other"


def profile(events: list, period_seconds: float | None = None, top: int = 10) -> dict:
    """The cost-planning figures of pg_stat_statements entries (replay's Events with calls/rows/total_ms)."""
    by_kind = {"read": [0, 0.0, 0.0], "write": [0, 0.0, 0.0], "other": [0, 0.0, 0.0]}  # calls, rows, ms
    lookups = 0
    for ev in events:
        k = kind(ev.sql)
        calls = max(1, int(ev.calls or 1))
        by_kind[k][0] += calls
        by_kind[k][1] += float(ev.rows or 0)
        by_kind[k][2] += float(ev.total_ms or 0)
        if k == "read" and _KEY_LOOKUP.search(ev.sql) and (ev.rows or 0) <= calls:
            lookups += calls
    total_calls = sum(v[0] for v in by_kind.values())
    total_ms = sum(v[2] for v in by_kind.values())

    def row(ev) -> dict:
        calls = max(1, int(ev.calls or 1))
        return {"query": " ".join(ev.sql.split())[:300], "kind": kind(ev.sql), "calls": calls,
                "total_ms": round(float(ev.total_ms or 0), 3), "mean_ms": round(float(ev.mean_ms or 0), 3),
                "max_ms": round(float(ev.max_ms or 0), 3), "rows_per_call": round(float(ev.rows or 0) / calls, 2),
                "queryid": ev.queryid}

    out = {
        "statements": len(events), "calls": total_calls, "total_ms": round(total_ms, 3),
        "reads": {"calls": by_kind["read"][0], "rows": int(by_kind["read"][1]),
                  "total_ms": round(by_kind["read"][2], 3)},
        "writes": {"calls": by_kind["write"][0], "rows": int(by_kind["write"][1]),
                   "total_ms": round(by_kind["write"][2], 3)},
        "rows_per_read_call": round(by_kind["read"][1] / by_kind["read"][0], 2) if by_kind["read"][0] else 0.0,
        "rows_per_write_call": round(by_kind["write"][1] / by_kind["write"][0], 2) if by_kind["write"][0] else 0.0,
        "key_lookup_share_of_reads": round(lookups / by_kind["read"][0], 4) if by_kind["read"][0] else 0.0,
        "top_by_total_time": [row(e) for e in sorted(events, key=lambda e: -(e.total_ms or 0))[:top]],
        "top_by_calls": [row(e) for e in sorted(events, key=lambda e: -(e.calls or 0))[:top]],
        "period_seconds": period_seconds,
        "bytes_per_call": None,  # pg_stat_statements does not count bytes: not measured, not guessed
    }
    if period_seconds:
        out["reads_per_second"] = round(by_kind["read"][0] / period_seconds, 3)
        out["writes_per_second"] = round(by_kind["write"][0] / period_seconds, 3)
    return out


def over_bounds(events: list, rows_limit: int, seconds_limit: int) -> list[dict]:
    """Statements whose own figures cross a transaction bound: a write touching more rows per call than a
    DSQL transaction may modify, or a call longer than a DSQL transaction may last."""
    out = []
    for ev in events:
        calls = max(1, int(ev.calls or 1))
        per_call = float(ev.rows or 0) / calls
        query = " ".join(ev.sql.split())[:300]
        if kind(ev.sql) == "write" and per_call > rows_limit:
            out.append({"query": query, "bound": "rows", "value": round(per_call, 1), "limit": rows_limit,
                        "calls": calls})
        if ev.max_ms is not None and float(ev.max_ms) / 1000 > seconds_limit:
            out.append({"query": query, "bound": "seconds", "value": round(float(ev.max_ms) / 1000, 1),
                        "limit": seconds_limit, "calls": calls})
    return out


_STATUS_READ = re.compile(r"\bfrom\s+([\w.\"]+)[^;]*?\bwhere\b[^;]*?\b(status|state)\s*(?:=|in\b)", re.I | re.S)
_STATUS_WRITE = re.compile(r"\bupdate\s+([\w.\"]+)\s+set\b[^;]*?\b(status|state)\s*=", re.I | re.S)


def queue_like(events: list, min_calls: int = 100) -> list[dict]:
    """Tables used as queues: polled by status (a read filtering on status/state, called often) and moved on
    by status updates. On DSQL the workers that pick the same row collide at COMMIT (40001): nothing waits,
    SKIP LOCKED skips nothing."""
    polled, moved = {}, {}
    for ev in events:
        calls = int(ev.calls or 1)
        m = _STATUS_READ.search(ev.sql) if kind(ev.sql) == "read" else None
        if m:
            table = m.group(1).strip('"').split(".")[-1].lower()
            polled[table] = polled.get(table, 0) + calls
        m = _STATUS_WRITE.search(ev.sql)
        if m:
            table = m.group(1).strip('"').split(".")[-1].lower()
            moved[table] = moved.get(table, 0) + calls
    return [{"table": t, "polls": polled[t], "status_updates": moved[t]}
            for t in sorted(set(polled) & set(moved), key=lambda t: -polled[t]) if polled[t] >= min_calls]
