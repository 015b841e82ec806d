"""Compare dsql-lint's findings with dsql-audit's on the schema corpus, and on small probes.

    python bench/compare_dsql_lint.py

Corpus: runs `dsql-lint --format json FILE` and `dsql-audit scan FILE -f json -q --no-aggregate` (newest profile,
and `--profile 2026-06-30`) on each corpus schema, maps dsql-lint's rule ids to dsql-audit slugs (MAP), and maps
both tools' lines to statements of dsql-audit's splitter, so the tools are compared per (file, statement, slug)
even where one reports a statement's first line and the other the offending token. Transaction rules are
compared per transaction (the BEGIN that opens it).
Probes: one small file per construct whose DSQL verdict DSQL-REFERENCE.md gives, run through both tools.
Writes bench/results/dsql_lint_comparison.json and .md (every difference, listed). The verdicts in
bench/DSQL_LINT_COMPARISON.md are written by hand from these.
"""

from __future__ import annotations

import bisect
import json
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from pglast import parser

from _util import RESULTS, corpus_files, find_exe, version
from dsql_audit.sqltext import split_text

OLD_PROFILE = "2026-06-30"
TXN_SLUGS = {"multiple-ddl", "ddl-dml-mix"}

# dsql-lint rule id → dsql-audit slug of the rule that covers the same construct
MAP = {
    "index_async": "sync-index", "index_concurrently": "sync-index",
    "index_using": "index-method",
    "index_sort_direction": "index-definition", "index_expression": "index-definition",
    "index_partial": "index-definition",
    "foreign_key_not_valid": "foreign-key", "foreign_key": "foreign-key",
    "at_unsupported_add_primary_key": "alter-table", "alter_add_primary_key_collapse": "alter-table",
    "at_unsupported_add_unique": "alter-table", "alter_add_unique_collapse": "alter-table",
    "add_column_constraint": "alter-table", "check_not_valid": "alter-table",
    "unsupported_create_table_with_storage_parameters": "alter-table",
    "unsupported_create_trigger": "trigger",
    "serial_type": "sequence", "serial_sequence_idiom": "sequence", "sequence_type": "sequence",
    "sequence_cache_missing": "sequence", "identity_cache_missing": "sequence", "identity_type": "sequence",
    "unsupported_create_function_non_sql": "procedural-function",
    "array_type": "unsupported-type",
    "unsupported_create_type": "custom-type", "unsupported_drop_type": "custom-type",
    "unsupported_create_extension": "extension",
    "unsupported_create_policy": "row-level-security", "at_unsupported_row_level_security": "row-level-security",
    "partition_by": "partitioned-table", "unsupported_partition_of": "partitioned-table",
    "collation": "collation",
    "multi_ddl_transaction": "multiple-ddl",
    "unsupported_materialized_view": "materialized-view", "unsupported_drop_materialized_view": "materialized-view",
    "create_table_as": "create-table-as",
    "unsupported_create_database": "database",
    "unsupported_create_server": "foreign-table",
    "unsupported_alter_aggregate": "unsupported-statement",
    "truncate": "truncate",
    "parse_error": "parse-error",
}


# ---------------------------------------------------------------- running the tools

def run_json(argv: list[str]) -> dict:
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode not in (0, 1, 3):
        sys.exit(f"{argv[0]} failed ({out.returncode}): {out.stderr[:300]}")
    return json.loads(out.stdout)


def lint_findings(lint: str, path: Path) -> list[dict]:
    return [d for f in run_json([lint, "--format", "json", str(path)])["files"] for d in f["diagnostics"]]


def our_findings(ours: str, path: Path, profile: str | None = None) -> list[dict]:
    argv = [ours, "scan", str(path), "-f", "json", "-q", "-j", "1", "--no-aggregate"]
    return run_json(argv + (["--profile", profile] if profile else []))["findings"]


# ---------------------------------------------------------------- corpus comparison

class Statements:
    """dsql-audit's statements of one file: which one a line belongs to, and which transaction."""

    def __init__(self, path: Path):
        self.stmts = split_text(path.read_text(encoding="utf-8", errors="replace"))
        self.starts = [s.line for s in self.stmts]
        self.ends = [s.line + s.text.count("\n") for s in self.stmts]
        self.txn, begin = [], None
        for i, s in enumerate(self.stmts):
            head = s.text.lstrip().upper()
            if head.startswith(("BEGIN", "START TRANSACTION")):
                begin = i
            self.txn.append(begin)
            if head.startswith(("COMMIT", "END", "ROLLBACK")):
                begin = None

    def index(self, line: int) -> int:
        i = bisect.bisect_right(self.starts, line) - 1
        if i >= 0 and line <= self.ends[i]:
            return i
        return min(i + 1, len(self.stmts) - 1)  # in a comment or blank gap: the next statement

    def anchor(self, slug: str, line: int) -> int:
        i = self.index(line)
        return self.txn[i] if slug in TXN_SLUGS and self.txn[i] is not None else i

    def kind(self, i: int) -> str:
        s = self.stmts[i]
        if s.kind == "meta":
            return "psql meta-command (glued to the next statement; column 3: that statement)"
        try:
            return next(iter(json.loads(parser.parse_sql_json(s.text))["stmts"][0]["stmt"]))
        except (parser.ParseError, LookupError, StopIteration):
            return "unparsable"

    def text(self, i: int, width: int = 110) -> str:
        return " ".join(self.stmts[i].text.split())[:width]


def compare_corpus(files: list[Path], lint: str, ours: str) -> dict:
    by_rule: dict = defaultdict(Counter)  # dsql-lint rule id → statements, matched
    by_slug: dict = defaultdict(Counter)  # our slug → counts on both profiles
    by_file: dict = defaultdict(Counter)
    diffs: dict = defaultdict(list)  # "slug: side" → items
    parse_errors: dict = defaultdict(Counter)  # statement kind → {n, ours_flags}
    for path in files:
        st = Statements(path)
        lint_at: dict = defaultdict(lambda: defaultdict(set))  # slug → anchor → {rule}
        ours_at = {key: defaultdict(lambda: defaultdict(list)) for key in ("new", "old")}
        for d in lint_findings(lint, path):
            slug = MAP.get(d["rule"], "unmapped:" + d["rule"])
            lint_at[slug][st.anchor(slug, d["line"])].add(d["rule"])
        for key, profile in (("new", None), ("old", OLD_PROFILE)):
            for f in our_findings(ours, path, profile):
                ours_at[key][f["name"]][st.anchor(f["name"], f["line"])].append(f["message"])
        flagged_by_ours = {i for per in ours_at["new"].values() for i in per}
        for slug in set(lint_at) | set(ours_at["new"]) | set(ours_at["old"]):
            lint_s, new_s, old_s = set(lint_at[slug]), set(ours_at["new"][slug]), set(ours_at["old"][slug])
            c = Counter(lint=len(lint_s), ours=len(new_s), both=len(lint_s & new_s), lint_only=len(lint_s - new_s),
                        ours_only=len(new_s - lint_s), ours_old=len(old_s), both_old=len(lint_s & old_s),
                        lint_only_old=len(lint_s - old_s), ours_only_old=len(old_s - lint_s))
            by_slug[slug].update(c)
            by_file[path.name].update(c)
            for i, rules in lint_at[slug].items():
                for r in rules:
                    by_rule[r].update(statements=1, matched=int(i in new_s), matched_old=int(i in old_s))
            for i in sorted(lint_s - new_s):
                item = {"file": path.name, "line": st.stmts[i].line, "rules": sorted(lint_at[slug][i]),
                        "statement": st.text(i)}
                item["ours"] = sorted({n for n, per in ours_at["new"].items() if i in per})
                if slug == "parse-error":
                    kind = st.kind(i)
                    # a meta-command swallows the statement after it: does dsql-audit flag that one?
                    j = i + 1 if st.stmts[i].kind == "meta" and i + 1 < len(st.stmts) else i
                    parse_errors[kind].update(n=1, ours_flags=int(j in flagged_by_ours))
                    item["kind"] = kind
                diffs[f"{slug}: dsql-lint only"].append(item)
            for i in sorted(new_s - lint_s):
                diffs[f"{slug}: dsql-audit only"].append(
                    {"file": path.name, "line": st.stmts[i].line, "message": ours_at["new"][slug][i][0],
                     "statement": st.text(i)})
    return {"by_rule": by_rule, "by_slug": by_slug, "by_file": by_file, "diffs": diffs, "parse_errors": parse_errors}


# ---------------------------------------------------------------- probes

PREAMBLE = ("CREATE TABLE p (id bigint PRIMARY KEY);\n"
            "CREATE TABLE t (id bigint PRIMARY KEY, c int, d int, name text, pid bigint, deleted_at timestamptz);\n")

# (construct, SQL, what DSQL does per DSQL-REFERENCE.md / DSQL-FACTS.md: ok | refused | unconfirmed, where)
PROBES = [
    ("inline FOREIGN KEY", "CREATE TABLE c1 (id bigint PRIMARY KEY, pid bigint REFERENCES p (id) ON DELETE CASCADE);",
     "ok", "REF §1 2026-08-26, §3"),
    ("ADD FOREIGN KEY … NOT VALID", "ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (pid) REFERENCES p (id) NOT VALID;",
     "ok", "REF §1 2026-08-26"),
    ("ADD FOREIGN KEY (validated)", "ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (pid) REFERENCES p (id);",
     "refused", "REF §2"),
    ("ADD CHECK … NOT VALID", "ALTER TABLE t ADD CONSTRAINT t_ck CHECK (c > 0) NOT VALID;", "ok", "REF §1 2026-08-03"),
    ("ALTER TABLE ASYNC … VALIDATE", "ALTER TABLE ASYNC t VALIDATE CONSTRAINT t_ck;", "ok", "REF §1, §6"),
    ("VALIDATE CONSTRAINT (sync)", "ALTER TABLE t VALIDATE CONSTRAINT t_ck;", "refused", "REF §2"),
    ("expression index", "CREATE INDEX ASYNC t_lower ON t (lower(name));", "ok", "REF §1 2026-08-13, §3"),
    ("partial index", "CREATE INDEX ASYNC t_live ON t (c) WHERE deleted_at IS NULL;", "ok", "REF §1 2026-09-15, §3"),
    ("INCLUDE + NULLS NOT DISTINCT", "CREATE UNIQUE INDEX ASYNC t_u ON t (c) INCLUDE (d) NULLS NOT DISTINCT;",
     "ok", "REF §3"),
    ("UNIQUE USING INDEX", "ALTER TABLE t ADD CONSTRAINT t_c_key UNIQUE USING INDEX t_u;", "ok",
     "REF §6 (once the index is valid); FACTS §1.1"),
    ("DROP CONSTRAINT", "ALTER TABLE t DROP CONSTRAINT t_ck;", "unconfirmed", "FACTS §1.2 (usable after FK GA, partly unconfirmed)"),
    ("DROP COLUMN", "ALTER TABLE t DROP COLUMN d;", "ok", "REF §1 2026-08-03"),
    ("SET DEFAULT / DROP NOT NULL", "ALTER TABLE t ALTER COLUMN c SET DEFAULT 0;\nALTER TABLE t ALTER COLUMN c DROP NOT NULL;",
     "ok", "REF §1 ≤ 2026-07-20"),
    ("SET NOT NULL", "ALTER TABLE t ALTER COLUMN c SET NOT NULL;", "refused", "REF §2 (docs list)"),
    ("ENABLE TRIGGER ALL", "ALTER TABLE t ENABLE TRIGGER ALL;", "ok", "REF §1 ~2026-06-15"),
    ("DROP TRIGGER IF EXISTS", "DROP TRIGGER IF EXISTS trg ON t;", "ok", "REF §1 ~2026-08-07"),
    ("FOR UPDATE, non-key predicate", "SELECT * FROM t WHERE c > 1 FOR UPDATE;", "ok", "REF §1 ~2026-09-09"),
    ("FOR KEY SHARE", "SELECT * FROM t WHERE id = 1 FOR KEY SHARE;", "ok", "REF §1 2026-08-25"),
    ("FOR SHARE", "SELECT * FROM t WHERE id = 1 FOR SHARE;", "refused", "REF §2"),
    ("jsonb / json columns", "CREATE TABLE j (id uuid PRIMARY KEY, doc jsonb, raw json);", "ok", "REF §1, §3"),
    ("numeric(100,2)", "CREATE TABLE n (id bigint PRIMARY KEY, x numeric(100,2));", "ok", "REF §1 2026-08-25, §7"),
    ("sequence CACHE 65536", "CREATE SEQUENCE s1 CACHE 65536;", "ok", "REF §1 2026-02-13"),
    ("sequence without CACHE", "CREATE SEQUENCE s2;", "refused", "REF §2"),
    ("identity bigint CACHE 1", "CREATE TABLE i (id bigint GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY);",
     "ok", "REF §1 2026-02-13"),
    ("identity integer", "CREATE TABLE i2 (id integer GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY);",
     "refused", "REF §2"),
    ("bigserial", "CREATE TABLE b (id bigserial PRIMARY KEY);", "refused", "REF §2 (docs), FACTS §1.1"),
    ("inet column", "CREATE TABLE a (id bigint PRIMARY KEY, ip inet);", "refused", "REF §2"),
    ("text[] column", "CREATE TABLE a2 (id bigint PRIMARY KEY, tags text[]);", "refused", "REF §2"),
    ("CREATE TABLE … WITH (fillfactor)", "CREATE TABLE w (id bigint PRIMARY KEY) WITH (fillfactor = 70);",
     "refused", "FACTS §1.1 (LINT only)"),
    ("non-C column collation", 'CREATE TABLE co (id bigint PRIMARY KEY, s text COLLATE "de-DE-x-icu");',
     "refused", "REF §2 (docs)"),
    ("non-C collation on an index key", 'CREATE INDEX ASYNC t_ci ON t (name COLLATE "de-DE-x-icu");',
     "refused", "REF §2 (docs: non-C collations)"),
    ("index ASC/DESC", "CREATE INDEX ASYNC t_desc ON t (c DESC);", "refused", "FACTS §2.5, §4"),
    ("index USING btree", "CREATE INDEX ASYNC t_btree ON t USING btree (c);", "unconfirmed",
     "FACTS §4 (DOC-IDX syntax has no USING)"),
    ("CREATE INDEX without ASYNC", "CREATE INDEX t_sync ON t (c);", "refused", "REF §2"),
    ("schema-qualified index name", "CREATE INDEX ASYNC public.t_q ON t (c);", "refused", "REF §2"),
    ("ADD COLUMN … DEFAULT", "ALTER TABLE t ADD COLUMN e int DEFAULT 0;", "refused", "REF §2"),
    ("ALTER COLUMN TYPE", "ALTER TABLE t ALTER COLUMN c TYPE bigint;", "refused", "REF §2"),
    ("TRUNCATE", "TRUNCATE t;", "refused", "REF §2"),
    ("SET TRANSACTION", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;", "refused", "REF §2"),
    ("SAVEPOINT", "BEGIN;\nSAVEPOINT s;\nCOMMIT;", "refused", "REF §2"),
    ("two DDL in one transaction", "BEGIN;\nCREATE TABLE x1 (id bigint PRIMARY KEY);\nCREATE TABLE x2 (id bigint PRIMARY KEY);\nCOMMIT;",
     "refused", "REF §4"),
    ("DDL then DML in one transaction", "BEGIN;\nCREATE TABLE x3 (id bigint PRIMARY KEY);\nINSERT INTO x3 VALUES (1);\nCOMMIT;",
     "refused", "REF §4"),
    ("advisory lock", "SELECT pg_advisory_lock(1);", "refused", "REF §2 (docs)"),
    ("LOCK TABLE", "LOCK TABLE t;", "refused", "REF §2 (docs)"),
    ("COPY from a server file", "COPY t FROM '/tmp/t.csv';", "refused", "REF §2"),
    ("CREATE DOMAIN with CHECK", "CREATE DOMAIN pos AS int CHECK (VALUE > 0);", "ok", "REF §3"),
    ("plpgsql function", "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;",
     "refused", "REF §2"),
    ("LANGUAGE sql function", "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;", "ok", "REF §3"),
    ("CREATE PROCEDURE", "CREATE PROCEDURE pr() LANGUAGE sql AS $$ SELECT 1 $$;", "refused", "REF §2 (docs)"),
    ("DO block", "DO $$ BEGIN PERFORM 1; END $$;", "refused", "REF §2 (docs)"),
    ("CREATE TRIGGER", "CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();", "refused", "REF §2"),
    ("CREATE EXTENSION", "CREATE EXTENSION IF NOT EXISTS pgcrypto;", "refused", "REF §2"),
    ("enum type", "CREATE TYPE mood AS ENUM ('a', 'b');", "refused", "REF §2"),
    ("DROP TYPE IF EXISTS", "DROP TYPE IF EXISTS mood;", "refused", "REF §2"),
    ("materialized view", "CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x;", "refused", "REF §2"),
    ("SELECT INTO", "SELECT * INTO t_copy FROM t;", "refused", "REF §2 (CreateTableAs)"),
    ("temporary table ON COMMIT", "CREATE TEMP TABLE tmp (id int) ON COMMIT DROP;", "refused", "REF §2"),
    ("unlogged table", "CREATE UNLOGGED TABLE u (id bigint PRIMARY KEY);", "refused", "REF §2"),
    ("PARTITION BY", "CREATE TABLE pt (id bigint, k int) PARTITION BY RANGE (k);", "refused", "REF §2 (docs)"),
    ("INHERITS", "CREATE TABLE ih (x int) INHERITS (t);", "refused", "REF §2 (docs)"),
    ("TABLESPACE clause", "CREATE TABLE ts (id bigint PRIMARY KEY) TABLESPACE fast;", "refused",
     "FACTS §1.1 (clause flagged, LINT)"),
    ("ALTER TABLE SET (storage)", "ALTER TABLE t SET (fillfactor = 70);", "refused", "FACTS §1.2 (LINT)"),
    ("REPLICA IDENTITY", "ALTER TABLE t REPLICA IDENTITY FULL;", "refused", "FACTS §1.2 (LINT)"),
    ("ADD GENERATED AS IDENTITY", "ALTER TABLE t ALTER COLUMN d ADD GENERATED ALWAYS AS IDENTITY (CACHE 1);",
     "unconfirmed", "FACTS §1.2"),
    ("ALTER INDEX … RENAME", "ALTER INDEX t_u RENAME TO t_u2;", "unconfirmed",
     "FACTS §1.2 refused (LINT) vs §6 Django can_rename_index=True"),
    ("ALTER INDEX … SET (storage)", "ALTER INDEX t_u SET (fillfactor = 70);", "refused", "FACTS §1.2 (LINT)"),
    ("row-level security", "ALTER TABLE t ENABLE ROW LEVEL SECURITY;", "refused", "REF §2 (docs)"),
    ("CREATE RULE", "CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING;", "refused", "REF §2 (docs)"),
    ("CREATE PUBLICATION", "CREATE PUBLICATION pub FOR ALL TABLES;", "refused", "REF §2 (docs)"),
    ("event trigger", "CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION f();", "refused", "REF §2 (docs)"),
    ("exclusion constraint", "CREATE TABLE ex (r int, EXCLUDE USING gist (r WITH =));", "refused", "REF §2 (docs)"),
    ("MERGE", "MERGE INTO t USING p ON t.id = p.id WHEN MATCHED THEN DELETE;", "refused", "REF §2"),
    ("TABLESAMPLE", "SELECT * FROM t TABLESAMPLE SYSTEM (10);", "refused", "REF §2"),
    ("VACUUM", "VACUUM t;", "refused", "REF §2"),
    ("ANALYZE", "ANALYZE t;", "ok", "REF §2, §3"),
    ("LISTEN / NOTIFY", "LISTEN ch;\nNOTIFY ch;", "refused", "REF §2"),
    ("DECLARE CURSOR", "BEGIN;\nDECLARE cur CURSOR FOR SELECT 1;\nCOMMIT;", "refused", "REF §2 (docs: cursors)"),
    ("RELEASE SAVEPOINT", "BEGIN;\nRELEASE SAVEPOINT s;\nCOMMIT;", "refused", "REF §2 (docs)"),
    ("BEGIN … SERIALIZABLE", "BEGIN ISOLATION LEVEL SERIALIZABLE;\nCOMMIT;", "refused", "REF §2"),
    ("SET default_transaction_isolation", "SET default_transaction_isolation = 'serializable';", "refused", "REF §2"),
    ("pg_dump SET statement_timeout", "SET statement_timeout = 0;", "refused", "FACTS §1.3 (PGD)"),
    ("SET search_path", "SET search_path = public;", "ok", "FACTS §1.3 (allow-list)"),
    ("ALTER SYSTEM", "ALTER SYSTEM SET work_mem = '64MB';", "refused", "REF §2"),
    ("CREATE DATABASE", "CREATE DATABASE other;", "refused", "REF §2"),
    ("text search function", "SELECT to_tsvector('english', name) FROM t;", "refused", "REF §2"),
    ("tsvector column", "CREATE TABLE fts (id bigint PRIMARY KEY, v tsvector);", "refused", "REF §2"),
    ("PREPARE / DEALLOCATE name", "PREPARE q AS SELECT 1;\nDEALLOCATE q;", "refused", "FACTS §1.3 (LINT)"),
    ("DISCARD", "DISCARD ALL;", "refused", "FACTS §1.3 (LINT)"),
    ("LOAD", "LOAD 'auto_explain';", "refused", "FACTS §1.1 (extensions, LOAD)"),
    ("ALTER ROLE … SET", "ALTER ROLE app SET search_path = app;", "refused", "FACTS §1.1 (roles)"),
    ("GRANT USAGE ON SCHEMA public", "GRANT USAGE ON SCHEMA public TO app;", "refused", "FACTS §1.1 (roles, ADR-S1)"),
    ("CREATE VIEW", "CREATE VIEW v AS SELECT id FROM t;", "ok", "REF §3"),
    ("ON CONFLICT, RETURNING", "INSERT INTO t (id) VALUES (1) ON CONFLICT (id) DO NOTHING RETURNING id;", "ok", "REF §3"),
]


def run_probes(lint: str, ours: str) -> list[dict]:
    skip = PREAMBLE.count("\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, sql, dsql, where) in enumerate(PROBES):
            path = Path(tmp) / f"probe{i}.sql"
            path.write_text(PREAMBLE + sql + "\n")
            lint_rules = sorted({d["rule"] for d in lint_findings(lint, path) if d["line"] > skip})
            ours_new = sorted({label(f) for f in our_findings(ours, path) if f["line"] > skip})
            ours_old = sorted({label(f) for f in our_findings(ours, path, OLD_PROFILE) if f["line"] > skip})
            rows.append({"construct": name, "sql": sql, "dsql": dsql, "source": where,
                         "dsql_lint": lint_rules, "dsql_audit": ours_new, "dsql_audit_old": ours_old})
    return rows


def label(finding: dict) -> str:
    return finding["name"] + ("" if finding["severity"] == "error" else f" ({finding['severity']})")


def agrees(flagged: list, dsql: str) -> str:
    """Does the tool's verdict (an error-level finding, or none) match DSQL's?"""
    if dsql == "unconfirmed":
        return "?"
    errors = [f for f in flagged if "(" not in f]
    if errors == ["parse_error"]:
        return "≈"  # flagged, but only because the tool could not parse it
    return "✓" if bool(errors) == (dsql == "refused") else "✗"


# ---------------------------------------------------------------- report

def markdown(res: dict) -> str:
    c = res["corpus"]
    out = ["# dsql-lint vs dsql-audit: generated detail", "",
           f"dsql-lint {res['dsql_lint']} · dsql-audit {res['dsql_audit']} (newest profile; *old* = --profile {OLD_PROFILE}) "
           "· counts are statements (transactions for multiple-ddl) · regenerate: `python bench/compare_dsql_lint.py`", "",
           "## Probes", "", "✓ agrees with DSQL · ✗ disagrees · ≈ flagged only as a parse error · ? DSQL behaviour unconfirmed; "
           "a finding marked (warning) is advice, not a predicted refusal.", "", "| construct | DSQL | source | dsql-lint | dsql-audit | dsql-audit old |", "|---|---|---|---|---|---|"]
    for p in res["probes"]:
        lint_cell, audit_cell = (f"{agrees(fl, p['dsql'])} {', '.join(fl) or '—'}" for fl in (p["dsql_lint"], p["dsql_audit"]))
        out.append(f"| {p['construct']} | {p['dsql']} | {p['source']} | {lint_cell} | {audit_cell} | "
                   f"{', '.join(p['dsql_audit_old']) or '—'} |")
    out += ["", "## Corpus, per dsql-audit slug", "",
            "| slug | dsql-lint | ours | both | lint only | ours only | ours old | both | lint only | ours only |",
            "|---" + "|---:" * 9 + "|"]
    keys = ("lint", "ours", "both", "lint_only", "ours_only", "ours_old", "both_old", "lint_only_old", "ours_only_old")
    for slug, n in sorted(c["by_slug"].items(), key=lambda kv: -max(kv[1]["lint"], kv[1]["ours"])):
        out.append(f"| {slug} | " + " | ".join(str(n[k]) for k in keys) + " |")
    out += ["", "## Corpus, per dsql-lint rule", "", "| dsql-lint rule | → slug | statements | ours flags the same statement (newest) | (old) |",
            "|---|---|---:|---:|---:|"]
    for rule, n in sorted(c["by_rule"].items(), key=lambda kv: -kv[1]["statements"]):
        out.append(f"| {rule} | {MAP.get(rule, '?')} | {n['statements']} | {n['matched']} | {n['matched_old']} |")
    out += ["", "## Corpus, per file", "", "| file | dsql-lint | ours | both | lint only | ours only | ours old |",
            "|---" + "|---:" * 6 + "|"]
    for name, n in c["by_file"].items():
        out.append(f"| {name} | " + " | ".join(str(n[k]) for k in ("lint", "ours", "both", "lint_only", "ours_only", "ours_old")) + " |")
    out += ["", "## dsql-lint parse errors, by statement kind", "", "| statement kind | statements | dsql-audit flags it |",
            "|---|---:|---:|"]
    for kind, n in sorted(c["parse_errors"].items(), key=lambda kv: -kv[1]["n"]):
        out.append(f"| {kind} | {n['n']} | {n['ours_flags']} |")
    out += ["", "## Every statement only one tool flags (newest profile)", ""]
    for key in sorted(c["diffs"]):
        items = c["diffs"][key]
        out += [f"### {key} ({len(items)})", ""]
        for it in items:
            if "rules" in it:
                what = ", ".join(it["rules"]) + f" (dsql-audit here: {', '.join(it['ours']) or 'nothing'})"
            else:
                what = it["message"][:100]
            out.append(f"- `{it['file']}:{it['line']}` {what} — `{it['statement']}`")
        out.append("")
    return "\n".join(out)


def main() -> None:
    files = corpus_files()
    lint, ours = find_exe("dsql-lint"), find_exe("dsql-audit")
    if not lint:
        sys.exit("dsql-lint is not installed (pip install dsql-lint): nothing to compare")
    if not ours:
        sys.exit("dsql-audit is not installed (pip install -e .)")
    res = {"dsql_lint": version([lint, "--version"]), "dsql_audit": version([ours, "--version"]),
           "old_profile": OLD_PROFILE, "probes": run_probes(lint, ours), "corpus": compare_corpus(files, lint, ours)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dsql_lint_comparison.json").write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    md = markdown(res)
    (RESULTS / "dsql_lint_comparison.md").write_text(md)
    print(md.split("## Every statement")[0])


if __name__ == "__main__":
    main()
