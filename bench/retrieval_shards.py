"""Retrieval with a collection's vectors in one Chroma collection and the same vectors copied into N
shards (RAG_CHROMA_SHARDS): hit@5 and MRR per question half, same questions, same code, no re-embedding.
Needs the set's collection as bench.retrieval leaves it in bench/.data (or ``--data``).

    python -m bench.retrieval_shards --shards 4
    python -m bench.retrieval_shards --set zh_reports --data ../other-checkout/bench/.data
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from bench.common import write_result
from bench.retrieval import (
    DATA,
    Ours,
    docugami_page_questions,
    docugami_questions,
    financebench_questions,
    run_set,
    zh_reports_questions,
)
from rag_app.service import RagService
from rag_app.settings import Settings
from rag_app.storage.store import Database

QUESTIONS = {
    "financebench": financebench_questions,
    "zh_reports": zh_reports_questions,
    "docugami": docugami_questions,
    "docugami_pages": docugami_page_questions,
}
COLLECTIONS = {"docugami_pages": "docugami"}  # docugami's page-level questions are asked of its collection


def sharded_copy(source, shards: int) -> tuple[str, dict]:
    """Every document of ``source`` (its chunks, vectors and records) written to a new collection of ``shards`` shards."""
    target = tempfile.mkdtemp(prefix="shards-")
    documents = source.list_documents()
    database = Database(Settings(_env_file=None, data_dir=target, collection=source.collection, chroma_shards=shards))
    store = database.store(source.collection, documents[0].embedding, create=True)
    started = time.perf_counter()
    for document in documents:
        chunks, vectors, metadata = source.document_records(document)
        store.write([document], chunks, vectors, metadata)
    copied = {"documents": len(documents), "chunks": store.count_chunks(), "shards": store.index().shards,
              "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    return target, copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=4, help="shards of the copy (2-16)")
    parser.add_argument("--set", default="financebench", choices=sorted(QUESTIONS), help="the question set and its collection")  # fmt: skip
    parser.add_argument("--data", type=Path, default=DATA, help="the data folder holding the collection")
    args = parser.parse_args()
    torch.set_num_threads(1)
    collection = COLLECTIONS.get(args.set, args.set)
    source = RagService(Settings(_env_file=None, data_dir=args.data, collection=collection))
    if collection not in source.collections():
        raise SystemExit(
            f"no {collection} collection in {args.data}: run python -m bench.retrieval --sets {args.set} first"
        )
    target, copied = sharded_copy(source.store(with_model=True), args.shards)
    questions = QUESTIONS[args.set]()
    result: dict = {"set": args.set, "copy": copied, "systems": {}}
    for label, data in (("one collection", args.data), (f"{args.shards} shards", target)):
        service = RagService(Settings(_env_file=None, data_dir=data, collection=collection))
        service.embeddings = source.embeddings
        systems = run_set(args.set, questions, Ours(service), None, [], {})["systems"]["ours"]
        result["systems"][label] = systems
        print(label, {g: (m["hit@5"], m["mrr"]) for g, m in systems.items() if isinstance(m, dict)}, flush=True)
    shutil.rmtree(target, ignore_errors=True)
    result["command"] = f"python -m bench.retrieval_shards --shards {args.shards}" + (f" --set {args.set}" if args.set != "financebench" else "")  # fmt: skip
    result["notes"] = "The two systems run one after the other in one process: their ms_p50 are not a comparison."
    print("wrote", write_result(f"retrieval-{args.set}-shards{args.shards}", result))


if __name__ == "__main__":
    main()
