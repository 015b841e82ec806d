"""Property: over random interleavings of small read-modify-write transactions, nothing ever waits or
hangs, no update is lost, and the final state is the committed transactions applied in commit order."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsql_audit.engine import DsqlError, Engine

ROWS = (1, 2, 3)


@pytest.fixture(scope="module")
def engine():
    with Engine() as e:
        s = e.session()
        s.execute("CREATE TABLE prop (id int PRIMARY KEY, v int NOT NULL)")
        s.execute("INSERT INTO prop VALUES (1, 0), (2, 0), (3, 0)")
        yield e


# each transaction increments 1–2 rows by reading then writing; steps interleave at random
transactions = st.lists(st.lists(st.sampled_from(ROWS), min_size=1, max_size=2, unique=True),
                        min_size=2, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@st.composite
def workloads(draw):
    """Transactions and a schedule (which transaction takes its next step, in order), drawn up front."""
    txns = draw(transactions)
    slots = [i for i, rows in enumerate(txns) for _ in range(2 + 2 * len(rows))]
    return txns, draw(st.permutations(slots))


@given(workload=workloads())
def test_no_lost_updates_and_no_waits(engine, workload):
    txns, schedule = workload
    reset = engine.session()
    sessions = [engine.session() for _ in txns]
    try:
        _run(reset, sessions, txns, schedule)
    finally:
        for s in sessions + [reset]:
            s.close()


def _run(reset, sessions, txns, schedule):
    reset.execute("UPDATE prop SET v = 0 WHERE id IN (1, 2, 3)")
    # per transaction: BEGIN, then (read, write) per row, then COMMIT
    programs = []
    for rows in txns:
        steps = [("begin", None)]
        for r in rows:
            steps += [("read", r), ("write", r)]
        programs.append(steps + [("commit", None)])
    cursor = [0] * len(programs)
    seen = [dict() for _ in programs]
    committed = []
    for i in schedule:
        op, row = programs[i][cursor[i]]
        cursor[i] += 1
        s = sessions[i]
        started = time.perf_counter()
        if op == "begin":
            s.execute("BEGIN")
        elif op == "read":
            seen[i][row] = s.execute(f"SELECT v FROM prop WHERE id = {row}").rows[0][0]
        elif op == "write":
            s.execute(f"UPDATE prop SET v = {seen[i][row] + 1} WHERE id = {row}")
        else:
            try:
                s.execute("COMMIT")
                committed.append(i)
            except DsqlError as e:
                assert e.sqlstate == "40001"
        assert time.perf_counter() - started < 3, "a statement waited"
    final = dict(reset.execute("SELECT id, v FROM prop ORDER BY id").rows)
    want = {r: 0 for r in ROWS}
    for i in committed:  # applying committed write sets in commit order
        for r in txns[i]:
            want[r] += 1
    assert final == want
    assert committed, "at least the first committer wins"
