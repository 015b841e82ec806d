"""Agreement with a real DSQL cluster: ../shared/corpus/dsql-probes/probes.json.

Every statement whose outcome the statement decides by itself (accepted, or refused with 0A000,
42704 `type "serial"` / text search, 42601 syntax, 54000 row limit) must be flagged at error severity
exactly when DSQL refused it. Multi-statement cases are scanned with their transaction shape (explicit
BEGIN … COMMIT, or one implicit transaction for a simple-protocol query string), and the refusals that
shape decides (multiple DDL, DDL after DML) must be flagged too.
"""

from __future__ import annotations

import json

import pytest

from dsql_audit.config import Config
from dsql_audit.model import Severity
from dsql_audit.scan import scan_sql
from tests.conftest import absent_param, shared_path

CONTEXT_MESSAGES = ("ddl and dml are not supported", "multiple ddl statements")
DECIDED_CODES = {"0A000", "42601", "54000"}


def _decided(expect: dict) -> bool | None:
    """True: refused by the statement itself; False: accepted; None: depends on state/timing."""
    if expect["outcome"] == "ok":
        return False
    state, msg = expect.get("sqlstate"), expect.get("message", "")
    if state == "42704" and ('type "serial"' in msg or "text search configuration" in msg):
        return True
    if state in DECIDED_CODES and not msg.startswith(CONTEXT_MESSAGES):
        return True
    return None


def _load():
    data = json.loads(shared_path("corpus", "dsql-probes", "probes.json").read_text())
    return data["cases"]


def _statement_cases():
    try:
        cases = _load()
    except pytest.skip.Exception:
        return []
    out = []
    for case in cases:
        if case.get("simple_protocol"):
            continue
        for s, steps in enumerate(case["sessions"]):
            for k, step in enumerate(steps):
                refused = _decided(step["expect"])
                if refused is not None and step["sql"].strip().upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
                    out.append((f"{case['name']}[{s}.{k}]", step["sql"], refused, step["expect"]))
    return out


STATEMENTS = _statement_cases()
CASES = STATEMENTS or [pytest.param(None, None, None, None, marks=absent_param("corpus/dsql-probes/probes.json").marks)]
IDS = [c[0] for c in STATEMENTS] or ["no-probes"]


def _errors(sql: str, **kw):
    return [f for f in scan_sql(sql, **kw).findings if f.severity == Severity.error]


@pytest.mark.parametrize("name,sql,refused,expect", CASES, ids=IDS)
def test_statement_agrees_with_dsql(name, sql, refused, expect):
    errors = _errors(sql + ";")
    if refused:
        assert errors, f"DSQL refused ({expect['sqlstate']} {expect['message']}) but no error finding"
        # where we know DSQL's exact message, it is the one we quote
        quoted = {f.dsql_message for f in errors if f.dsql_message}
        if quoted and expect["sqlstate"] == "0A000":
            assert expect["message"] in quoted or any(expect["message"].split(":")[0] in q for q in quoted), \
                (expect["message"], quoted)
    else:
        assert not errors, [(f.name, f.message) for f in errors]


def test_statement_agreement_rate(capsys):
    if not STATEMENTS:
        shared_path("corpus", "dsql-probes", "probes.json")
    agree = sum(1 for _, sql, refused, _ in STATEMENTS if bool(_errors(sql + ";")) == refused)
    with capsys.disabled():
        print(f"\nDSQL probe agreement: {agree}/{len(STATEMENTS)} statements "
              f"({sum(1 for c in STATEMENTS if c[2])} refused, {sum(1 for c in STATEMENTS if not c[2])} accepted)")
    assert agree == len(STATEMENTS)


def test_transaction_shapes_agree_with_dsql():
    """Explicit-transaction and multi-statement cases: the refusal lands on the statement DSQL refused."""
    checked = 0
    for case in _load():
        if len(case["sessions"]) != 1:
            continue
        steps = case["sessions"][0]
        if case.get("simple_protocol"):
            step = steps[0]
            errors = _errors(step["sql"] + ";", config=Config(single_transaction=True))
            refused = step["expect"]["outcome"] == "error"
            assert bool(errors) == refused, (case["name"], [(f.name, f.message) for f in errors])
            if refused:
                assert any(f.dsql_message == step["expect"]["message"] for f in errors), case["name"]
            checked += 1
            continue
        if not any(s["sql"].strip().upper() == "BEGIN" for s in steps):
            continue
        script = "\n".join(s["sql"] + ";" for s in steps)
        errors = _errors(script)
        lines = {}
        line = 1
        for s in steps:
            lines[line] = s
            line += s["sql"].count("\n") + 1
        for ln, s in lines.items():
            exp = s["expect"]
            if exp["outcome"] == "error" and exp["message"].startswith(CONTEXT_MESSAGES):
                assert any(f.line == ln and f.dsql_message == exp["message"] for f in errors), (case["name"], ln)
                checked += 1
            elif exp["outcome"] == "ok" and s["sql"].strip().upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
                assert not [f for f in errors if f.line == ln], (case["name"], ln, [f.message for f in errors])
                checked += 1
    assert checked >= 8
