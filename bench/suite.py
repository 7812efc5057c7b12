"""How long the test suite takes here: the README's test command's pytest, and the quick subset.

    python -m bench.suite                  # both, one after the other -> bench/results/test-suite.json
    python -m bench.suite --quick-only     # only `python -m pytest -m "not slow"`

Each run records its wall time, its counts and the load average before and after: on a machine shared
with other work the same suite takes longer, and the figure says so.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

from bench.common import ROOT, write_result

RUNS = {"suite": [], "quick": ["-m", "not slow"]}


def run(args: list[str]) -> dict:
    load_before = round(os.getloadavg()[0], 1)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|skipped|failed|errors?)", summary)}
    return {
        "command": " ".join(["python -m pytest", *(f'"{a}"' if " " in a else a for a in args)]),
        "seconds": round(seconds, 1),
        "passed": counts.get("passed", 0),
        "skipped": counts.get("skipped", 0),
        "failed": counts.get("failed", 0) + counts.get("errors", 0) + counts.get("error", 0),
        "exit_code": done.returncode,
        "summary": summary,
        # the short test summary's lines (pyproject's -ra): a failure under load is named, not only counted
        "failures": [line for line in done.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))],
        "load_before": load_before,
        "load_after": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick-only", action="store_true", help='time only python -m pytest -m "not slow"')
    args = parser.parse_args()
    names = ["quick"] if args.quick_only else ["suite", "quick"]
    runs = []
    for name in names:
        runs.append(run(RUNS[name]))
        print(runs[-1]["command"], runs[-1]["summary"], f"{runs[-1]['seconds']} s", flush=True)
    path = write_result("test-suite", {"runs": runs, "command": "python -m bench.suite"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
