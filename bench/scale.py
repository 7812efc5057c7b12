"""Retrieval latency at 100,000 chunks, with the hit rate of the same run beside it.

The collection is built from collections ``bench.retrieval`` already ingested (no new embedding):
every document of the question set's collection as it is, padded with renamed copies of the
documents no question refers to, from that and the other ingested collections (their real chunks,
vectors and texts under new content ids) until it holds 100,000 chunks. The set's questions are then
asked one at a time, as a user would (query embedding, dense search, BM25, document match, fusion,
page ranking); their page hit@5 is reported beside the latency, so a faster search that found less
would show.

    python -m bench.retrieval --sets financebench,zh_reports,docugami   # the source collections
    python -m bench.scale [--set zh_reports]                           # -> bench/results/retrieval-scale.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import statistics
import time
from dataclasses import replace

import numpy as np
import torch

from bench.common import write_result
from bench.retrieval import (
    DATA,
    K_MAX,
    Ours,
    financebench_questions,
    first_hit_rank,
    hit_metrics,
    pages_of,
    zh_reports_questions,
)
from rag_app.chunking import chunk_id
from rag_app.records import Chunk
from rag_app.service import RagService
from rag_app.settings import Settings

TARGET = 100_000
QUESTIONS = {"financebench": financebench_questions, "zh_reports": zh_reports_questions}
PADDING = ("financebench", "zh_reports", "docugami")


def service_for(collection: str) -> RagService:
    return RagService(Settings(_env_file=None, data_dir=DATA, collection=collection))


def copy_document(source, dest, info, copy: int) -> int:
    """Copy one document's chunks (copy 0: as is; else under a new content id and name)."""
    found = source.chunks().get(where={"sha256": info.sha256}, include=["documents", "metadatas", "embeddings"])
    sha = info.sha256 if copy == 0 else hashlib.sha256(f"{info.sha256}:{copy}".encode()).hexdigest()
    name = info.name if copy == 0 else f"copy{copy}-{info.name}"
    chunks = [
        Chunk(chunk_id(sha, m["page"], m["offset"]), text, m["page"], m["offset"], m.get("chunk_index", i))
        for i, (text, m) in enumerate(zip(found["documents"], found["metadatas"], strict=True))
    ]
    meta = {k: v for k, v in found["metadatas"][0].items() if k not in ("page", "offset", "chunk_index")}
    dest.add_chunks(chunks, np.asarray(found["embeddings"], dtype=np.float32), {**meta, "file": name, "sha256": sha})
    dest.put_document(type(info)(**{**info.to_dict(), "name": name, "sha256": sha, "chunks": len(chunks)}))
    return len(chunks)


def build(service: RagService, source_name: str, asked: set[str], target: int) -> int:
    dest = service.store(with_model=True, create=True)
    total = dest.count_chunks()
    if total >= target:
        return total
    dest.drop()
    dest = service.store(with_model=True, create=True)
    source = service_for(source_name).store(with_model=True)
    for info in source.list_documents():
        total += copy_document(source, dest, info, 0)
    padding = []
    for name in PADDING:
        try:
            store = service_for(name).store(with_model=True)
        except Exception:  # noqa: BLE001 - a collection not ingested yet is simply not used
            continue
        padding += [(store, info) for info in store.list_documents() if info.name not in asked]
    copy = 1
    while total < target:
        for store, info in padding:
            total += copy_document(store, dest, info, copy)
            if total >= target:
                return total
        copy += 1
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=TARGET)
    parser.add_argument("--set", default="financebench", choices=sorted(QUESTIONS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)  # one query at a time; more threads only spin on a shared 2-core CPU
    questions = QUESTIONS[args.set]()
    service = service_for(f"scale{args.chunks // 1000}k_{args.set}")
    started = time.perf_counter()
    total = build(service, args.set, {q.document for q in questions}, args.chunks)
    built = time.perf_counter() - started
    ours = Ours(service)
    ours.search(questions[0].text, K_MAX)  # warm: models loaded, BM25 index synced
    result = {
        "chunks": total,
        "documents": len(service.store(with_model=True).list_documents()),
        "build_seconds": round(built, 1),
        "questions": len(questions),
        "set": args.set,
        "command": f"python -m bench.scale --set {args.set}",
        "note": "per question, end to end (query embedding included), one at a time, on a CPU shared with other work",
        "paths": {},
    }
    base = service.retriever(service.store(with_model=True)).ranking
    # The default path, and dense + BM25 + document match for every question (the English path).
    for label, ranking in (("default", base), ("with dense search", replace(base, unread_dense_weight=1.0))):
        ranks, ms = [], []
        ours.vectors.clear()  # each path embeds its questions itself
        for q in questions:
            started = time.perf_counter()
            top = pages_of(ours.search(q.text, K_MAX, ranking=ranking))
            ms.append((time.perf_counter() - started) * 1000)
            ranks.append(first_hit_rank(top, q.relevant))
        result["paths"][label] = {
            "ms_p50": round(statistics.median(ms), 1),
            "ms_p95": round(sorted(ms)[int(0.95 * (len(ms) - 1))], 1),
            "hits": hit_metrics(ranks),
        }
    write_result("retrieval-scale", result)
    logging.info("%s", json.dumps(result["paths"])[:800])


if __name__ == "__main__":
    main()
