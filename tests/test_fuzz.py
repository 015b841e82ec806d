"""Hostile input on every input path (hypothesis, bounded): mutated SQL, Python, other-language and DSL
sources, captures (stderr, csvlog, jsonlog, pg_stat_statements CSV/JSON), config and rule files. Pass: no
crash, no internal-error finding, every error names its input. The wire protocol's fuzz is in
tests/test_serve.py; bench/fuzz.py runs the same targets for minutes and records the figures."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_targets import TARGETS, mutate, run_one, seeds

EXAMPLES = {"sql": 60, "python": 60, "other": 40, "dsl": 40, "capture": 150, "config": 150, "rule": 150,
            "filename": 30, "encoding": 40, "oneline": 20}


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_mutated_input_never_crashes(kind):
    pool = seeds(kind)
    assert pool, f"no seeds for {kind}"

    @settings(max_examples=EXAMPLES[kind], deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.integers(0, len(pool) - 1), st.integers(0, 2**32 - 1))
    def run(which, seed):
        run_one(kind, mutate(pool[which], random.Random(seed)))  # raises Crash on a failure

    run()


@pytest.mark.parametrize("kind, data", [
    ("sql", b"\xff\xfe\x00C\x00R\x00E\x00A\x00T\x00E"),  # UTF-16 with a BOM
    ("sql", b"CREATE TABLE t (" + b"a int, " * 20000 + b"z int);"),
    ("sql", b"SELECT '" + b"x" * 100_000),  # an unterminated literal
    ("sql", b"DO $$ BEGIN " * 500),
    ("python", b"import psycopg\n" + b"(" * 5000),  # deeper than the parser's recursion limit
    ("python", b"import psycopg\ncur.execute(f'''SELECT {x!r:>{w}} FROM t''')\n"),
    ("capture", b"\x00" * 5000),
    ("capture", b"userid,dbid,queryid,query,calls\n1,2,3,\"SELECT 1\n"),  # a CSV cut mid-quote
    # found by bench/fuzz.py: a parameter number no server writes made the reader build a list that long
    ("capture", b"2026-01-05 10:00:00 UTC [1] LOG:  execute <unnamed>: SELECT $1\n2026-01-05 10:00:00 UTC [1] "
                b"DETAIL:  Parameters: $99999999999 = '1'\n"),
    ("capture", b"2026-01-05 10:00:00 UTC [1] LOG:  duration: 0.0.060 ms  statement: SELECT 1\n"),
    ("config", b"[tool.dsql-audit]\nselect = 7\nseverity = 'x'\n"),
    ("config", b"tool = 5\n"),
    ("rule", b'code = "DSQL1"\nslug = 3\n'),
    ("rule", b'code = "DS"\nslug = "fuzz"\ntitle = "t"\n'),  # a code too short for its category digit
])
def test_known_nasty_inputs(kind, data):
    run_one(kind, data)
