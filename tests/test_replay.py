"""`dsql-audit replay` on captures real PostgreSQL wrote: a log made during the test (two sessions
colliding on one row) and the shared workload captures."""

from __future__ import annotations

import collections
import json
import subprocess
import sys

import psycopg
import pytest

from dsql_audit.replay import redact, replay
from tests.conftest import SHARED, StatementLog

CAPTURES = SHARED / "corpus" / "captures"
needs_shared = pytest.mark.skipif(not CAPTURES.exists(), reason="../shared/corpus/captures is not present "
                                  "(it is beside the repository in CI only)")


@pytest.fixture(scope="module")
def overlapping_log(tmp_path_factory):
    """Two sessions updating the same row in overlapping transactions, logged by PostgreSQL itself
    (log_statement=all). On PostgreSQL the second UPDATE fails at the statement; the log keeps every
    statement as sent, including the losing session's COMMIT."""
    tmp = tmp_path_factory.mktemp("capture")
    with StatementLog(tmp / "pg") as capture:
        engine = capture.engine
        with psycopg.connect(engine.uri) as a, psycopg.connect(engine.uri) as b:
            a.execute("CREATE TABLE acct (id int PRIMARY KEY, balance int)")
            a.commit()
            a.execute("INSERT INTO acct VALUES (1, 100), (2, 100)")
            a.commit()
            a.execute("UPDATE acct SET balance = balance - 10 WHERE id = 1")
            b.execute("SELECT balance FROM acct WHERE id = 2")
            a.commit()
            with pytest.raises(psycopg.errors.SerializationFailure):
                b.execute("UPDATE acct SET balance = balance + 10 WHERE id = 1")
            b.commit()
        text = capture.text()
    path = tmp / "overlap.log"
    path.write_text(text)
    return path


def test_replay_reports_the_occ_conflict_and_the_key(overlapping_log):
    result = replay([str(overlapping_log)])
    occ = [f for f in result.findings if f.name == "occ-conflict"]
    assert len(occ) == 1 and result.stats.occ_conflicts == 1
    assert occ[0].sqlstate == "40001" and occ[0].snippet == "COMMIT"
    assert "colliding write: UPDATE acct SET balance = balance + 10 WHERE id = 1" in occ[0].message
    lines = overlapping_log.read_text().splitlines()
    assert "COMMIT" in lines[occ[0].line - 1]  # the line of the losing COMMIT in the capture
    assert result.stats.sessions == 2 and not result.errors


def test_cli_replay_json_and_redaction(overlapping_log, tmp_path):
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "dsql_audit.cli", "replay", str(overlapping_log), "-f", "json",
                        "-o", str(out), "--redact"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr  # an error-severity violation
    doc = json.loads(out.read_text())
    (f,) = [f for f in doc["findings"] if f["name"] == "occ-conflict"]
    assert "balance + ? WHERE id = ?" in f["message"] and "+ 10" not in f["message"]
    summary = doc["replay"]
    assert summary["occ_conflicts"] == 1 and summary["top_contended_tables"] == [["acct", 1]]
    largest = summary["largest_transactions"]
    assert {x["outcome"] for x in largest} == {"committed", "failed 40001"}
    assert max(x["rows"] for x in largest) == 2  # the two-row INSERT
    assert all(x["seconds"] >= 0 and x["line"] >= 1 for x in largest)
    assert summary["transactions_lost"] == 1 and 0 < summary["occ_conflict_rate"] <= 1
    assert redact("UPDATE t SET v = 'secret' WHERE id = 42") == "UPDATE t SET v = ? WHERE id = ?"


@needs_shared
def test_replay_generated_workload_finds_what_it_was_built_with():
    """workload_dsql_features.sql was built to contain one of each (SOURCES.md); replaying the server's
    csvlog of it finds them, at the capture lines where the statements are."""
    result = replay([str(CAPTURES / "generated" / "workload_pg15.csv")])
    found = collections.Counter(f.name for f in result.findings)
    for rule in ("truncate", "temporary-table", "ddl-dml-mix", "isolation-level", "advisory-lock",
                 "listen-notify", "lock-table", "extension", "custom-type", "materialized-view", "sync-index",
                 "procedural-function", "trigger", "partitioned-table", "collation", "do-block"):
        assert found[rule] >= 1, (rule, found)
    assert not result.errors and result.stats.statements == 934


@needs_shared
def test_replay_pg_stat_statements_weights_by_calls():
    result = replay([str(CAPTURES / "generated" / "workload_pg_stat_statements.csv")])
    assert result.stats.statements == 133 and result.stats.calls > result.stats.statements
    vacuum = [f for f in result.findings if f.name == "vacuum"]
    assert vacuum and all(f.occurrences >= 1 and f.queryid for f in vacuum)
    assert vacuum[0].to_json()["calls"] == vacuum[0].occurrences
    assert result.stats.calls_affected >= sum(1 for _ in vacuum)


def test_captured_timings_drive_the_age_and_lifetime_bounds(overlapping_log, tmp_path):
    """The same real log with its clock moved: the COMMIT of session b 400 s after its BEGIN exceeds DSQL's
    300-second transaction age; statements of a session 61 minutes after it connected find it closed."""
    from dsql_audit.replay import capture_seconds

    assert abs(capture_seconds("2026-11-23 08:20:00.513 UTC") - capture_seconds("2026-11-23 08:19:00 UTC") - 60.513) < 1e-6
    assert capture_seconds("2026-11-23 10:20:00+02:00") == capture_seconds("2026-11-23 08:20:00 UTC")
    lines = overlapping_log.read_text().splitlines(keepends=True)
    last_commit = max(i for i, line in enumerate(lines) if "statement: COMMIT" in line)

    def shifted(seconds):
        out = []
        for i, line in enumerate(lines):
            if i >= last_commit and (m := __import__("re").match(r"(\S+ \S+)( \w+ .*)", line, __import__("re").S)):
                import datetime

                stamp = datetime.datetime.fromisoformat(m.group(1)) + datetime.timedelta(seconds=seconds)
                line = stamp.isoformat(sep=" ", timespec="milliseconds") + m.group(2)
            out.append(line)
        path = tmp_path / f"shift{seconds}.log"
        path.write_text("".join(out))
        return path

    late = replay([str(shifted(400))])
    assert [f.name for f in late.findings if f.name != "occ-conflict"] == ["transaction-timeout"]
    older = replay([str(shifted(3700))])
    assert "connection-lifetime" in {f.name for f in older.findings}


def test_two_captures_of_one_workload_merge_by_time(overlapping_log, tmp_path):
    """The same real log split by session into two files (as two servers' or two rotations' logs would be):
    merged by captured time, the interleaving — and so the conflict — is the same."""
    import re

    lines = overlapping_log.read_text().splitlines(keepends=True)
    pids = sorted({m.group(1) for line in lines if (m := re.search(r"\[(\d+)\]", line))})
    parts = []
    for pid in pids:
        path = tmp_path / f"{pid}.log"
        path.write_text("".join(line for line in lines if f"[{pid}]" in line))
        parts.append(str(path))
    merged = replay(parts[::-1])
    assert [f.name for f in merged.findings] == [f.name for f in replay([str(overlapping_log)]).findings]
    assert merged.stats.occ_conflicts == 1
