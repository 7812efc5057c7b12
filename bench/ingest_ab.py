"""Ingestion of two or more checkouts of rag_app on the same files, interleaved, in one run.

A structure change must not move the CPU ingest figure beyond the noise, and the noise on a shared 2-core
machine is large (the same checkout ran 9.2 to 13.5 pages/s in one run): so each checkout runs in turn, round
after round, each in a fresh interpreter and a fresh data folder, its embedder warmed first (the load is not
the measure), and the load average is kept beside every figure.

    git worktree add /tmp/base 83b06b5
    python -m bench.ingest_ab --checkout base=/tmp/base --checkout main=. --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import CORPUS, machine, write_result

DOCUGAMI = CORPUS / "qa" / "docugami_sec10q" / "data" / "v1" / "docs"

RUN = r"""
import json, sys, time
sys.path.insert(0, ".")
from rag_app.service import RagService
from rag_app.settings import Settings
service = RagService(Settings(_env_file=None, data_dir=sys.argv[1]))
service.embeddings.embed_array(["warm"] * 64)
started = time.perf_counter()
report = service.ingest(sys.argv[2].split("|"))
print(json.dumps({"seconds": time.perf_counter() - started, "pages": sum(f.pages for f in report.files), "ok": report.ok}))
"""


def run_once(root: Path, files: list[Path]) -> dict:
    with tempfile.TemporaryDirectory() as data:
        done = subprocess.run(
            [sys.executable, "-c", RUN, data, "|".join(map(str, files))], cwd=root, capture_output=True, text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=True,
        )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", action="append", required=True, metavar="NAME=PATH",
                        help="a checkout of rag_app to time (give two or more)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs every checkout once, in turn")
    parser.add_argument("--files", type=int, default=8, help="the first N docugami 10-Qs (sorted by name)")
    parser.add_argument("--name", default="ingest-ab", help="the result file, bench/results/NAME.json")
    args = parser.parse_args(argv)
    checkouts = dict(c.split("=", 1) for c in args.checkout)
    files = sorted(DOCUGAMI.glob("*.pdf"))[: args.files]
    result: dict = {"command": "python -m bench.ingest_ab " + " ".join(sys.argv[1:] if argv is None else argv),
                    "files": [f.name for f in files], "checkouts": {}, "runs": []}  # fmt: skip
    for name, root in checkouts.items():
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        result["checkouts"][name] = commit.stdout.strip()
    for round_ in range(args.rounds):
        for name, root in checkouts.items():
            load = os.getloadavg()[0]
            run = run_once(Path(root), files)
            run.update(checkout=name, round=round_, load_before=round(load, 2), load_after=round(os.getloadavg()[0], 2),
                       pages_per_s=round(run["pages"] / run["seconds"], 2))  # fmt: skip
            result["runs"].append(run)
            print(json.dumps(run), flush=True)
    result["summary"] = {
        name: {"pages_per_s": [r["pages_per_s"] for r in result["runs"] if r["checkout"] == name],
               "median": statistics.median(r["pages_per_s"] for r in result["runs"] if r["checkout"] == name)}
        for name in checkouts
    }  # fmt: skip
    result["load_average_after"] = machine()["load_average"]
    write_result(args.name, result)
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
