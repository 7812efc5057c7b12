"""Retrieval quality at page level on financebench_dev (19 filings, 31 questions).

A question is a hit at k when one of the top-k chunks lies on one of its
evidence pages. Reports hit@1/5/10 and MRR (first hit within the top 10).

    python -m bench.retrieval                       # the default settings
    python -m bench.retrieval --chunk-size 128 --chunk-overlap 16
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import CORPUS, ROOT, write_result
from rag_app.service import RagService
from rag_app.settings import Settings

FINANCEBENCH = CORPUS / "qa" / "financebench_dev"
DATA = ROOT / "bench" / ".data"
K_MAX = 10


@dataclass
class PageQuestion:
    question: str
    evidence: set[tuple[str, int]]  # (file name, 1-based page)


def financebench_questions() -> list[PageQuestion]:
    rows = [json.loads(line) for line in (FINANCEBENCH / "qa.jsonl").open(encoding="utf-8")]
    return [
        PageQuestion(r["question"], {(f"{e['doc_name']}.pdf", int(e["page_number1"])) for e in r["evidence"]})
        for r in rows
    ]


def first_hit_rank(hits: list[tuple[str, int]], evidence: set[tuple[str, int]]) -> int | None:
    """1-based rank of the first hit on an evidence page, or None."""
    for rank, hit in enumerate(hits, 1):
        if hit in evidence:
            return rank
    return None


def page_metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    metrics = {f"hit@{k}": round(sum(1 for r in ranks if r and r <= k) / n, 3) for k in (1, 5, 10)}
    metrics["mrr"] = round(sum(1 / r for r in ranks if r) / n, 3)
    metrics["questions"] = n
    return metrics


def evaluate(search, questions: list[PageQuestion]) -> dict[str, float]:
    """``search(question, k)`` returns [(file, page), ...] best first."""
    return page_metrics([first_hit_rank(search(q.question, K_MAX), q.evidence) for q in questions])


def ours(settings: Settings) -> tuple[dict, dict]:
    service = RagService(settings)
    started = time.perf_counter()
    report = service.ingest([FINANCEBENCH / "pdfs"])
    ingest = {"seconds": round(time.perf_counter() - started, 1), "timings": report.timings}

    def search(question: str, k: int) -> list[tuple[str, int]]:
        return [(h.file, h.page) for h in service.search(question, k).hits]

    return evaluate(search, financebench_questions()), ingest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunk-size", type=int, default=Settings.model_fields["chunk_size"].default)
    parser.add_argument("--chunk-overlap", type=int, default=Settings.model_fields["chunk_overlap"].default)
    parser.add_argument("--name", default=None, help="result file name (default: derived from the settings)")
    args = parser.parse_args()
    tag = f"c{args.chunk_size}o{args.chunk_overlap}"
    settings = Settings(
        _env_file=None,
        data_dir=DATA,
        collection=f"fb-{tag}",
        chunk_size=args.chunk_size,
        chunk_overlap=args.chunk_overlap,
    )
    metrics, ingest = ours(settings)
    print(f"financebench_dev page level, ours ({tag}): {metrics}")
    path = write_result(
        args.name or f"retrieval-financebench-{tag}",
        {
            "settings": {"chunk_size": args.chunk_size, "chunk_overlap": args.chunk_overlap},
            "ours": metrics,
            "ingest": ingest,
        },
    )
    print(f"wrote {Path(path).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
