"""The HTML report of the largest corpus schema: its size, the time to write it, and the time headless
Chromium takes to open it (process start to the end of the page's script, and the page's own figure).

    python bench/html_report.py [--runs 5]

Chromium: Debian's `chromium` on PATH. Results: bench/results/html_report.json and html_report.md."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import RESULTS, corpus_files  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        sys.exit("chromium not found on PATH (Debian: apt-get install chromium)")
    largest = max(corpus_files(), key=lambda p: p.stat().st_size)

    from dsql_audit.report.html import render_html
    from dsql_audit.scan import scan

    t0 = time.perf_counter()
    result = scan([str(largest)])
    scanned = time.perf_counter() - t0
    t0 = time.perf_counter()
    page = render_html(result)
    rendered = time.perf_counter() - t0
    work = Path(tempfile.mkdtemp(prefix="html_report_"))
    target = work / "report.html"
    target.write_text(page, encoding="utf-8")
    walls, in_page = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                              f"--user-data-dir={work / 'profile'}", "--dump-dom", target.as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
        walls.append(time.perf_counter() - t0)
        m = re.search(r'data-render-ms="(\d+)"', dom)
        if not m or 'data-ready="1"' not in dom:
            sys.exit("the page did not finish its script in Chromium")
        in_page.append(int(m.group(1)) / 1000)
    shutil.rmtree(work, ignore_errors=True)
    out = {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "schema": largest.name,
           "schema_mb": round(largest.stat().st_size / 1e6, 2), "findings": len(result.findings),
           "html_mb": round(len(page.encode()) / 1e6, 2), "scan_s": round(scanned, 2),
           "render_s": round(rendered, 3), "chromium_wall_s": round(statistics.median(walls), 2),
           "chromium_wall_max_s": round(max(walls), 2), "page_script_done_s": round(statistics.median(in_page), 2),
           "runs": args.runs}
    (RESULTS / "html_report.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / "html_report.md").write_text(
        f"# HTML report of the largest corpus schema\n\n{out['date']} · {out['cpus']} CPUs · "
        f"`../shared/corpus/schemas/{out['schema']}` ({out['schema_mb']} MB, {out['findings']:,} findings)\n\n"
        "| measure | value | target |\n|---|---|---|\n"
        f"| HTML size | {out['html_mb']} MB | < 5 MB |\n"
        f"| headless Chromium, process start → page script done (median of {args.runs}; max) | "
        f"{out['chromium_wall_s']} s; {out['chromium_wall_max_s']} s | < 2 s |\n"
        f"| in the page: navigation start → script done (median) | {out['page_script_done_s']} s | |\n"
        f"| dsql-audit: render the HTML | {out['render_s']} s | |\n"
        f"| dsql-audit: scan the schema | {out['scan_s']} s | |\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
