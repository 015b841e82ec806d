"""Saved JSON results read back (`dsql-audit report RESULT.json…`): one result, or several merged — a scan, a
catalog and a replay of the same estate become one report. Nothing is re-judged: findings keep the severity
they were saved with."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from dsql_audit.model import Finding, InputError
from dsql_audit.profile import load_profile

_SUMMED = ("statements", "sessions", "calls", "calls_affected", "time_ms", "time_affected_ms",
           "transactions_committed", "transactions_lost", "occ_conflicts", "transactions_rebuilt",
           "autocommit_statements", "autocommit_failed", "failed_in_capture")


@dataclass
class LoadedResult:
    findings: list
    errors: list
    profile: object
    inputs: int = 0
    units: int = 0
    frameworks: dict = field(default_factory=dict)
    adapters: set = field(default_factory=set)
    sources: list = field(default_factory=list)  # the files read, in order
    notes: list = field(default_factory=list)  # what the saved results said first (replay without a schema …)


@dataclass
class LoadedReplayResult(LoadedResult):
    """Reporters show replay figures for results that have replay_summary(), as a live replay result has."""

    replay: dict = field(default_factory=dict)

    def replay_summary(self) -> dict:
        return self.replay


@dataclass
class LoadedRunResult(LoadedResult):
    """A saved `run` result: reporters show its figures as for a live one (run_summary())."""

    run: dict = field(default_factory=dict)

    def run_summary(self) -> dict:
        return self.run


def load_results(paths: list[str]) -> LoadedResult:
    """Read and merge saved JSON reports. Raises ValueError naming the file on anything unreadable."""
    findings, errors, seen = [], [], set()
    frameworks, adapters, profiles = {}, set(), []
    inputs = units = 0
    replays, runs, notes = [], [], []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except OSError as exc:
            raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a dsql-audit JSON result ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("findings"), list) or "profile" not in data:
            raise ValueError(f"{path}: not a dsql-audit JSON result (no findings list or profile)")
        try:
            for d in data["findings"]:
                f = Finding.from_json(d)
                key = json.dumps(d, sort_keys=True)
                if key not in seen:  # the same finding saved twice (two runs over one file) is shown once
                    seen.add(key)
                    findings.append(f)
            errors += [InputError(e["path"], e["message"], e.get("line")) for e in data.get("errors", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: a finding or error is malformed ({exc.__class__.__name__}: {exc})") from None
        summary = data.get("summary") or {}
        inputs += int(summary.get("inputs", 0) or 0)
        units += int(summary.get("units", 0) or 0)
        frameworks.update(summary.get("frameworks") or {})
        adapters.update(summary.get("adapters") or [])
        profiles.append(str(data["profile"]))
        notes += [str(n) for n in data.get("notes") or () if str(n) not in notes]
        if isinstance(data.get("replay"), dict):
            replays.append(data["replay"])
        if isinstance(data.get("run"), dict) and {"statements", "distinct_violations"} <= set(data["run"]):
            runs.append(data["run"])
    from dsql_audit.findings import merge_catalog_reads

    common = dict(findings=merge_catalog_reads(findings), errors=errors,
                  profile=load_profile(max(profiles) if profiles else None),
                  inputs=inputs, units=units, frameworks=frameworks, adapters=adapters, sources=list(paths),
                  notes=notes)
    if replays:
        return LoadedReplayResult(**common, replay=merge_replays(replays))
    if len(runs) == 1:  # several runs' figures do not add up into one command's: shown only for one
        return LoadedRunResult(**common, run=runs[0])
    return LoadedResult(**common)


def merge_replays(replays: list[dict]) -> dict:
    if len(replays) == 1:
        return replays[0]
    out = dict(replays[0])
    for key in _SUMMED:
        out[key] = sum(r.get(key, 0) or 0 for r in replays)
    out["share_of_calls_affected"] = round(out["calls_affected"] / out["calls"], 4) if out["calls"] else 0.0
    out["share_of_time_affected"] = round(out["time_affected_ms"] / out["time_ms"], 4) if out["time_ms"] else 0.0
    ended = out["transactions_committed"] + out["transactions_lost"]
    out["occ_conflict_rate"] = round(out["occ_conflicts"] / ended, 4) if ended else 0.0
    out["share_of_transactions_lost"] = round(out["transactions_lost"] / ended, 4) if ended else 0.0
    tables: dict = {}
    for r in replays:
        for name, n in r.get("top_contended_tables", []):
            tables[name] = tables.get(name, 0) + n
    out["top_contended_tables"] = sorted(tables.items(), key=lambda kv: -kv[1])[:10]
    return out
