#!/usr/bin/env python3
"""Apply schema.sql (written by `dsql-audit convert`) to a PostgreSQL-wire endpoint — Aurora DSQL, or
`dsql-audit serve` — one statement per transaction, as DSQL requires.

    python3 apply.py "postgresql://admin@<cluster>.dsql.<region>.on.aws/postgres?sslmode=require"
    python3 apply.py            # libpq's PG* environment variables

- CREATE INDEX ASYNC and ALTER TABLE ASYNC … VALIDATE return a job id: the script waits for the job with
  CALL sys.wait_for_job and stops if the job failed.
- 40001 (an optimistic-concurrency or schema conflict) is retried with backoff.
- Re-running after a failure resumes: objects that already exist are skipped.
- An Aurora DSQL host without a password in the DSN gets an IAM token from aurora-dsql-python-connector
  (pip install 'aurora-dsql-python-connector[psycopg]'); otherwise psycopg (pip install 'psycopg[binary]').
"""

import os
import re
import sys
import time
from pathlib import Path

EXISTS = {"42P07", "42710", "42723", "42P06", "42P16"}  # relation, object, function, schema already there


def steps(text):
    """(number, kind, object, sql) from schema.sql's `-- step N kind: object` markers."""
    out, current = [], None
    for line in text.splitlines(keepends=True):
        m = re.match(r"-- step (\d+) ([\w-]+): (.*)$", line)
        if m:
            current = [int(m.group(1)), m.group(2), m.group(3).strip(), ""]
            out.append(current)
        elif current is not None and not line.startswith("--"):
            current[3] += line
    return [(n, k, o, sql.strip().rstrip(";").strip()) for n, k, o, sql in out if sql.strip()]


def connect(dsn):
    import psycopg

    host = dsn if "://" not in dsn else dsn.split("@")[-1].split("/")[0].split(":")[0]
    if re.search(r"\.dsql(-[a-z0-9]+)?\.[a-z0-9-]+\.on\.aws", host or os.environ.get("PGHOST", "")) \
            and "password" not in dsn and not os.environ.get("PGPASSWORD"):
        import aurora_dsql_psycopg

        return aurora_dsql_psycopg.connect(dsn, autocommit=True)
    return psycopg.connect(dsn, autocommit=True)


def main():
    import psycopg

    dsn = sys.argv[1] if len(sys.argv) > 1 else ""
    here = Path(__file__).resolve().parent
    todo = steps((here / "schema.sql").read_text(encoding="utf-8"))
    conn = connect(dsn)
    for n, kind, obj, sql in todo:
        for attempt in range(8):
            try:
                cur = conn.execute(sql)
                row = cur.fetchone() if cur.description else None
                if kind in ("index", "validate") and row:
                    ok = conn.execute("CALL sys.wait_for_job(%s)", (row[0],)).fetchone()
                    if ok is not None and ok[0] is False:
                        sys.exit(f"step {n} {kind} {obj}: job {row[0]} failed (see sys.jobs)")
                print(f"step {n}/{len(todo)} {kind} {obj}: done", flush=True)
                break
            except psycopg.Error as exc:
                state = getattr(exc, "sqlstate", None)
                if state in EXISTS:
                    print(f"step {n}/{len(todo)} {kind} {obj}: already there", flush=True)
                    break
                if state == "40001" and attempt < 7:
                    time.sleep(0.1 * 2 ** attempt)
                    continue
                sys.exit(f"step {n} {kind} {obj}: {state} {str(exc).strip().splitlines()[0]}")
    print(f"applied {len(todo)} steps")


if __name__ == "__main__":
    main()
