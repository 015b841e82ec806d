"""The framework readers (sources/frameworks/) against the hand-written lexers they replaced, in one run.

    python bench/frameworks_extract.py --source DIR [DIR ...] [--before REV] [--repeat 3] [--name STEM]

Every file under the --source folders that a framework module reads (frameworks.detect) is read by:
  before  the lexical reader of commit --before (default 86bdafe: sources/dsl.py, the last commit with it),
          loaded from git into a scratch module;
  after   dsql_audit.sources.frameworks.extract, as a scan calls it;
  parse   tree-sitter alone, parsing the file with the grammar the after-reader uses (the raw-parser floor:
          what reading a real syntax tree costs before any framework work).
Times are the best of --repeat passes over all files, per framework, as microseconds per source line; the
records each reader returns are counted too (the two should agree, see the notes of the port). Results:
bench/results/<name>.json and .md (default name: frameworks_extract). Needs git and the repository's history.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import RESULTS  # noqa: E402

GRAMMAR = {"rails": "ruby", "prisma": "prisma", "jpa": "java", "typeorm": "typescript", "sequelize": "javascript",
           "knex": "javascript", "liquibase": "xml"}


def load_before(rev: str):
    """The old reader as a module, from git (it needs only sources.app, which is unchanged)."""
    repo = Path(__file__).resolve().parent.parent
    text = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:dsql_audit/sources/dsl.py"], check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "dsl_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("dsl_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def framework_files(sources: list[str]) -> list[tuple[str, str, str]]:
    """(framework, path, text) of every file a framework module reads."""
    from dsql_audit.sources import frameworks

    out = []
    for src in sources:
        for root, dirs, names in os.walk(src):
            dirs[:] = sorted(d for d in dirs if d not in ("node_modules", ".git"))
            for name in sorted(names):
                path = os.path.join(root, name)
                try:
                    text = Path(path).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                module = frameworks.detect(path, text)
                if module is not None:
                    grammar_name = module.NAME
                    if grammar_name == "jpa" and path.endswith(".kt"):
                        grammar_name = "jpa-kotlin"
                    out.append((module.NAME, path, text))
    return out


def best(fn, files, repeat) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = sum(len(fn(p, t) or ()) for p, t in files)
        times.append(time.perf_counter() - t0)
    return min(times), count


def parse_only(framework: str):
    from dsql_audit.sources.frameworks.tree import parser

    def run(path, text):
        grammar = GRAMMAR[framework]
        if framework == "liquibase" and not path.endswith(".xml"):
            grammar = "yaml" if path.endswith((".yaml", ".yml")) else "json"
        elif framework == "jpa" and path.endswith(".kt"):
            grammar = "kotlin"
        elif framework == "jpa" and not path.endswith(".java"):
            return ()
        elif framework in ("typeorm", "sequelize", "knex") and path.endswith((".ts", ".mts", ".cts")):
            grammar = "typescript"
        parser(grammar).parse(text.encode("utf-8", "surrogatepass"))
        return ()
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", nargs="+", required=True)
    ap.add_argument("--before", default="86bdafe")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--name", default="frameworks_extract")
    args = ap.parse_args()
    from dsql_audit.sources import frameworks

    before = load_before(args.before)
    files = framework_files(args.source)
    by_fw: dict = {}
    for fw, path, text in files:
        by_fw.setdefault(fw, []).append((path, text))
    rows = []
    for fw, group in sorted(by_fw.items()):
        lines = sum(t.count("\n") + 1 for _, t in group)
        t_before, n_before = best(before.extract, group, args.repeat)
        t_after, n_after = best(frameworks.extract, group, args.repeat)
        t_parse, _ = best(parse_only(fw), group, args.repeat)
        rows.append({"framework": fw, "files": len(group), "lines": lines,
                     "before_us_per_line": 1e6 * t_before / lines, "after_us_per_line": 1e6 * t_after / lines,
                     "parse_us_per_line": 1e6 * t_parse / lines, "after_over_before": t_after / t_before,
                     "after_over_parse": t_after / t_parse if t_parse else None,
                     "records_before": n_before, "records_after": n_after})
    lines = sum(r["lines"] for r in rows)
    total = {k: sum(r[k] * r["lines"] for r in rows) / lines for k in
             ("before_us_per_line", "after_us_per_line", "parse_us_per_line")} if lines else {}
    result = {"date": datetime.now().isoformat(timespec="minutes"), "cpus": os.cpu_count(), "before": args.before,
              "sources": args.source, "rows": rows, "total": total}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [f"# Framework readers: tree-sitter ({'after'}) against the lexers of {args.before} (before)\n",
          f"{result['date']} · {result['cpus']} CPUs · best of {args.repeat} · sources: "
          + ", ".join(Path(s).name for s in args.source) + "\n",
          "| framework | files | lines | before µs/line | after µs/line | tree-sitter parse µs/line | after / before "
          "| after / parse | records before → after |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['framework']} | {r['files']} | {r['lines']:,} | {r['before_us_per_line']:.1f} | "
                  f"{r['after_us_per_line']:.1f} | {r['parse_us_per_line']:.1f} | {r['after_over_before']:.2f} | "
                  + (f"{r['after_over_parse']:.1f}" if r["after_over_parse"] else "–")
                  + f" | {r['records_before']:,} → {r['records_after']:,} |")
    if total:
        md.append(f"| **all** | {sum(r['files'] for r in rows)} | {lines:,} | {total['before_us_per_line']:.1f} | "
                  f"{total['after_us_per_line']:.1f} | {total['parse_us_per_line']:.1f} | "
                  f"{total['after_us_per_line'] / total['before_us_per_line']:.2f} | "
                  f"{total['after_us_per_line'] / total['parse_us_per_line']:.1f} | |")
    (RESULTS / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
