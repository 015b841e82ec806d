"""What an application migrated to Aurora DSQL imports at run time (kept dependency-free).

``retry_on_conflict``: DSQL reports optimistic-concurrency conflicts as SQLSTATE 40001 at COMMIT (OC000 for
data, OC001 for a schema change); the whole transaction must run again. Decorate the function that runs the
transaction — from its start to its COMMIT — and it is retried with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
import time

__all__ = ["retry_on_conflict", "is_conflict"]


def is_conflict(exc: BaseException) -> bool:
    """SQLSTATE 40001 from psycopg 3, psycopg2, asyncpg, or any of them wrapped by SQLAlchemy/Django."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if state is None:
            diag = getattr(exc, "diag", None)
            state = getattr(diag, "sqlstate", None)
        if state == "40001":
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False


def retry_on_conflict(func=None, *, attempts: int = 5, base_delay: float = 0.05, max_delay: float = 2.0):
    """Run the decorated transaction again when it loses a conflict (40001), up to ``attempts`` times.

    Only safe when the function is the whole transaction and has no side effects outside the database
    (an e-mail sent inside it would be sent again)."""

    def decorate(fn):
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(*args, **kwargs):
                for attempt in range(attempts):
                    try:
                        return await fn(*args, **kwargs)
                    except Exception as exc:  # noqa: BLE001
                        if attempt == attempts - 1 or not is_conflict(exc):
                            raise
                    await asyncio.sleep(_delay(attempt, base_delay, max_delay))
            return run_async

        @functools.wraps(fn)
        def run(*args, **kwargs):
            for attempt in range(attempts):
                try:
                    return fn(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001
                    if attempt == attempts - 1 or not is_conflict(exc):
                        raise
                time.sleep(_delay(attempt, base_delay, max_delay))
        return run

    return decorate(func) if func is not None else decorate


def _delay(attempt: int, base: float, cap: float) -> float:
    return random.uniform(0, min(cap, base * 2 ** attempt))  # full jitter
