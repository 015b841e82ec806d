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
    rows = []
    for path in corpus_files():
        t0 = time.perf_counter()
        conv = convert([str(path)])
        with tempfile.TemporaryDirectory() as out:
            files.write(conv, out)
            check = files.verify(conv, out)
        s = conv.summary()
        rows.append({"schema": path.stem, "statements_read": s["statements_read"], "dsql_statements": s["steps"],
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
          "| schema | read | DSQL statements | tables | indexes | automatic changes | plan items | "
          "refused after conversion → plan | check rejected | seconds |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['schema']} | {r['statements_read']} | {r['dsql_statements']} | {r['by_kind'].get('table', 0)} | "
                  f"{r['by_kind'].get('index', 0)} | {r['automatic_changes']} | {r['plan_items']} | "
                  f"{r['refused_after_conversion']} | {r['check_rejected']} | {r['seconds']} |")
    (RESULTS / "convert_corpus.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
