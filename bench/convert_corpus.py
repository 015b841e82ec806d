"""convert over every corpus schema: what each keeps, changes and moves into the plan, whether the result
loads into the engine with nothing rejected, and how long it takes — in one run.

    python bench/convert_corpus.py

Results: bench/results/convert_corpus.json and .md.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import RESULTS, corpus_files  # noqa: E402
from dsql_audit.convert import convert, files  # noqa: E402


def main() -> None:
    truth = {Path(g["file"]).stem if g.get("file") else g["name"]: g["catalog"]
             for g in json.loads((corpus_files()[0].parent / "ground_truth.json").read_text())}
    rows = []
    for path in corpus_files():
        t0 = time.perf_counter()
        conv = convert([str(path)])
        with tempfile.TemporaryDirectory() as out:
            files.write(conv, out)
            check = files.verify(conv, out)
        s = conv.summary()
        cat = truth.get(path.stem, {})
        sql = "\n".join(st.sql for st in conv.steps)
        fks_kept = sql.count(" REFERENCES ")
        tables_kept = s["steps_by_kind"].get("table", 0) + s["steps_by_kind"].get("table-as", 0)
        rows.append({"catalog_tables": cat.get("tables_excluding_partitions", 0) + cat.get("materialized_views", 0),
                     "tables_kept": tables_kept, "catalog_foreign_keys": cat.get("foreign_keys"),
                     "foreign_keys_kept": fks_kept, "catalog_indexes": cat.get("standalone_indexes"),"schema": path.stem, "statements_read": s["statements_read"], "dsql_statements": s["steps"],
                     "by_kind": s["steps_by_kind"], "automatic_changes": s["changes"],
                     "plan_items": s["plan_items"], "plan_by_kind": {k: v["items"] for k, v in s["plan_by_kind"].items()},
                     "effort_hours": s["effort_hours"], "refused_after_conversion": s["refused_after_conversion"],
                     "check_loaded": check["loaded"], "check_rejected": check["rejected"],
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(f"{path.stem}: {s['steps']} statements, {s['plan_items']} plan items, rejected {check['rejected']}",
              flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "convert_corpus.json").write_text(json.dumps(rows, indent=2) + "\n")
    md = ["# convert over the corpus", "",
          "Tables and foreign keys: kept in schema.sql / in the real PostgreSQL catalog after loading the schema "
          "(ground_truth.json; tables without partitions, materialized views counted as the tables they become). "
          "Indexes: CREATE INDEX ASYNC kept / standalone indexes in the catalog.", "",
          "| schema | read | DSQL statements | tables | foreign keys | indexes | automatic changes | plan items | "
          "refused after conversion → plan | check rejected | seconds |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['schema']} | {r['statements_read']} | {r['dsql_statements']} | "
                  f"{r['tables_kept']}/{r['catalog_tables']} | {r['foreign_keys_kept']}/{r['catalog_foreign_keys']} | "
                  f"{r['by_kind'].get('index', 0)}/{r['catalog_indexes']} | {r['automatic_changes']} | {r['plan_items']} | "
                  f"{r['refused_after_conversion']} | {r['check_rejected']} | {r['seconds']} |")
    (RESULTS / "convert_corpus.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
