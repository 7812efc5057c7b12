"""Retrieval latency at 100,000 chunks, with the hit rate of the same run beside it.

The collection is built from collections ``bench.retrieval`` already ingested (no new embedding):
every document of the question set's collection as it is, padded with renamed copies of the
documents no question refers to, from that and the other ingested collections (their real chunks,
vectors and texts under new content ids) until it holds 100,000 chunks. The set's questions are then
asked one at a time, as a user would (query embedding, dense search, BM25, document match, fusion,
page ranking); their page hit@5 is reported beside the latency, so a faster search that found less
would show.

    python -m bench.retrieval --sets financebench,zh_reports,docugami   # the source collections
    python -m bench.scale                    # financebench_dev's questions -> bench/results/retrieval-scale.json
    python -m bench.scale --set zh_reports   # zh_reports_dev's -> bench/results/retrieval-scale-zh_reports.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import statistics
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import torch
from threadpoolctl import OpenBLASController, ThreadpoolController, threadpool_limits

from bench.bm25_reference import sqlite_bm25
from bench.common import write_result
from bench.retrieval import (
    DATA,
    K_MAX,
    Ours,
    by_group,
    financebench_questions,
    first_hit_rank,
    hit_metrics,
    pages_of,
    zh_reports_questions,
)
from rag_app.records import chunk_id
from rag_app.retrieval import boosts
from rag_app.retrieval import retriever as retrieval
from rag_app.retrieval.fusion import SLOTS
from rag_app.retrieval.retriever import Retriever
from rag_app.service import RagService
from rag_app.settings import Settings
from rag_app.storage import exact
from rag_app.storage.chunk_index import ChunkIndex
from rag_app.storage.chunk_table import ChunkTable
from rag_app.storage.store import DocumentStore
from rag_app.text.terms import terms_of

TARGET = 100_000
QUESTIONS = {"financebench": financebench_questions, "zh_reports": zh_reports_questions}
PADDING = ("financebench", "zh_reports", "docugami")


def service_for(collection: str) -> RagService:
    return RagService(Settings(_env_file=None, data_dir=DATA, collection=collection))


def copy_document(source, dest, info, copy: int) -> int:
    """Copy one document's chunks (copy 0: as is; else under a new content id and name)."""
    chunks, vectors, meta = source.document_records(info)
    sha = info.sha256 if copy == 0 else hashlib.sha256(f"{info.sha256}:{copy}".encode()).hexdigest()
    name = info.name if copy == 0 else f"copy{copy}-{info.name}"
    chunks = [replace(c, id=chunk_id(sha, c.page, c.offset)) for c in chunks]
    dest.write(
        [replace(info, name=name, sha256=sha, chunks=len(chunks))],
        chunks,
        vectors,
        {**meta, "file": name, "sha256": sha},
    )
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


# Stages of one question, as methods of the objects that do them (timed by wrapping; a stage called
# twice in a question counts twice). What no stage covers (opening the store's handles, scope, naming
# hits) is reported as "other".
STAGES = {
    "query embedding": (None, "embed_query"),
    "query embedding, with the question without its names": (None, "embed_queries"),
    "freshness (generation)": (DocumentStore, "refresh"),
    "document list": (DocumentStore, "list_documents"),
    "pending markers": (DocumentStore, "pending_writes"),
    "BM25 sync check": (ChunkIndex, "sync_table"),
    "dense search": (DocumentStore, "nearest_ids"),
    "running-header terms": (Retriever, "_title_terms"),
    "BM25": (DocumentStore, "search_lexical"),
    "document route": (retrieval, "route"),
    "document match": (retrieval, "_by_document"),
    "page boosts": (Retriever, "_page_boosts"),
    "chunk texts (SQLite) + their vectors": (DocumentStore, "hits"),
    "fusion": (retrieval, "fused_scores"),
    "page ranking": (retrieval, "rank_pages"),
    "page BM25 inside the best documents": (DocumentStore, "page_scores"),
    "page vectors inside the best documents": (DocumentStore, "page_ranking"),
}


class StageTimer:
    """Milliseconds spent in each stage during the current question."""

    def __init__(self, embeddings, reader=None) -> None:
        """``reader``: the Chinese reader (RAG_EMBEDDING_MODEL_ZH), whose query embedding is the question's where
        it reads the question (a Chinese one)."""
        self.current: dict[str, float] = {}
        for stage, (owner, name) in STAGES.items():
            owner = owner or embeddings
            setattr(owner, name, self._timed(stage, getattr(owner, name)))
        if reader is not None:
            reader.embed_query = self._timed("query embedding", reader.embed_query)
            reader.embed_queries = self._timed(
                "query embedding, with the question without its names", reader.embed_queries
            )

    def _timed(self, stage: str, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.current[stage] = self.current.get(stage, 0.0) + (time.perf_counter() - started) * 1000

        return timed


def percentiles(ms: list[float]) -> dict:
    return {"ms_p50": round(statistics.median(ms), 1), "ms_p95": round(sorted(ms)[int(0.95 * (len(ms) - 1))], 1)}


def rss_mb() -> float:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024


def bm25_agreement(store, questions) -> dict:
    """The in-memory BM25's candidates against the SQL scorer it replaced, on the same index file."""
    path = store.index().table.path
    k = Settings(_env_file=None).retrieval_candidates
    same, worst = 0, 0.0
    for q in questions:
        found, expected = store.index().table.search(q.text, k), sqlite_bm25(path, q.text, k)
        same += [c for c, _ in found] == [c for c, _ in expected]
        worst = max([worst] + [abs(a - b) / abs(b) for (_, a), (_, b) in zip(found, expected, strict=False)])
    return {"candidates": k, "identical_rankings": same, "questions": len(questions), "max_relative_score_diff": worst}


class DenseForEveryQuestion(Retriever):
    """The English path for every question: the dense ranking also for Chinese ones."""

    def weights(self, query: str) -> list[float]:
        return [self.ranking.dense_weight, *super().weights(query)[1:]]


class PagesInSlots(Retriever):
    """RAG_RETRIEVAL_WITHIN=slots: the best documents' pages in the fusion's places, by the rankings inside them."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ranking = replace(self.ranking, **SLOTS)


def run_path(ours: Ours, timer: StageTimer, questions, retriever_class) -> tuple[dict, list]:
    """Every question through one retriever: its latency, per stage, and its top pages."""
    ranks, ms, cpu_ms, stages, tops = [], [], [], {stage: [] for stage in [*STAGES, "other"]}, []
    ours.vectors.clear()  # each path embeds its questions itself
    for q in questions:
        timer.current = {}
        started, cpu_started = time.perf_counter(), time.process_time()
        top = pages_of(ours.search(q.text, K_MAX, retriever_class=retriever_class))
        ms.append((time.perf_counter() - started) * 1000)
        cpu_ms.append((time.process_time() - cpu_started) * 1000)
        timer.current["other"] = ms[-1] - sum(timer.current.values())
        for stage in stages:
            stages[stage].append(timer.current.get(stage, 0.0))
        ranks.append(first_hit_rank(top, q.relevant))
        tops.append(top)
    # CPU time of this process: what a question costs, on the threads the app runs it with (torch's default)
    cpu = {f"cpu_{key}": value for key, value in percentiles(cpu_ms).items()}
    result = {**percentiles(ms), **cpu, "hits": hit_metrics(ranks), "groups": by_group(questions, ranks)}
    result["stages"] = {stage: percentiles(values) for stage, values in stages.items() if any(values)}
    return result, tops


BLAS_EVERY_CORE = "before 2026-12-06: numpy's BLAS on every core"
FLOAT32_ALONE = "no bf16 scan: the float32 product alone (a CPU without native bf16)"


@contextlib.contextmanager
def counted_screens():
    """How many searches the bf16 scan could take (SCREEN_ROWS rows or more) it answered (``proved``) and how many it
    left to the float32 product (``fell_back``; exact.Stacked.screened), while the block runs."""
    counts = {"proved": 0, "fell_back": 0, "bf16_native": exact.native_bf16()}
    screened = exact.Stacked.screened

    def counting(self, query, k, spans, rows):
        could = len(rows) >= exact.SCREEN_ROWS and self.screen_depth[0] * k * 2 <= len(rows)
        kept = screened(self, query, k, spans, rows)
        if could and self.coarse is not None:
            counts["proved" if kept is not None else "fell_back"] += 1
        return kept

    with mock.patch.object(exact.Stacked, "screened", counting):
        yield counts


FIRST_READ = "default, no pages read at start (the command line)"


def forget_pages(service: RagService) -> None:
    """What questions keep of the documents' pages, forgotten: as a new process starts."""
    boosts._FORMAL_PAGES.clear()
    boosts._PAGE_SECTIONS.clear()
    boosts._opening_section.cache_clear()
    index = service.store(with_model=True).index()
    index._openings.clear()
    index._page_vectors.clear()


def blas_threads() -> list[int]:
    return [i["num_threads"] for i in ThreadpoolController().info() if i["user_api"] == "blas"]


def with_blas_threads(n: int) -> None:
    threadpool_limits(limits=n, user_api="blas")
    OpenBLASController.clear_controlling_thread()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=TARGET)
    parser.add_argument("--set", default="financebench", choices=sorted(QUESTIONS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # torch's threads as the app leaves them (its default: one per core); numpy's BLAS on one thread, as the
    # retriever sets it at the first question (rag_app/retrieval/blas.py)
    questions = QUESTIONS[args.set]()
    service = service_for(f"scale{args.chunks // 1000}k_{args.set}")
    started = time.perf_counter()
    store = service.store(with_model=True, create=True)
    existed = store.count_chunks() >= args.chunks
    total = build(service, args.set, {q.document for q in questions}, args.chunks)
    built = None if existed else round(time.perf_counter() - started, 1)
    ours = Ours(service)
    service.embeddings.embed_query(terms_of("预热 warm")[0])  # the model and jieba's dictionary loaded
    before = rss_mb()
    started = time.perf_counter()
    # the in-memory BM25 postings, read once (by a real question's words: a word the index lacks reads nothing)
    service.store(with_model=True).search_lexical(questions[0].text, 1, None)
    loaded, memory = time.perf_counter() - started, rss_mb() - before
    # the vectors searched exactly in memory (RAG_RETRIEVAL_EXACT_CHUNKS): read from Chroma (their files beside the
    # chunk table removed first), then as a new process reads them, from those files
    store = service.store(with_model=True)
    shutil.rmtree(store.index().table.path.with_suffix(".vectors"), ignore_errors=True)
    exact._cache.clear()
    before, started = rss_mb(), time.perf_counter()
    store.warm()
    exact_loaded, exact_memory = time.perf_counter() - started, rss_mb() - before
    exact._cache.clear()
    started = time.perf_counter()
    store.warm()
    exact_from_disk = time.perf_counter() - started
    ours.search(questions[0].text, K_MAX)  # warm: every handle opened
    result = {
        "chunks": total,
        "documents": len(service.store(with_model=True).list_documents()),
        "build_seconds": built,
        "bm25_load_seconds": round(loaded, 1),
        "bm25_memory_mb": round(memory, 1),  # resident memory the in-memory postings added
        "exact_chunks_limit": service.settings.retrieval_exact_chunks,
        "exact_load_seconds": round(exact_loaded, 1),  # every vector read from Chroma once
        "exact_load_seconds_from_disk": round(exact_from_disk, 2),  # a new process: the files beside the table
        "exact_memory_mb": round(exact_memory, 1),
        "questions": len(questions),
        "set": args.set,
        "command": f"python -m bench.scale --set {args.set}",
        "note": "per question, end to end (query embedding included), one at a time, on a CPU shared with other work",
        "load_average_start": round(os.getloadavg()[0], 1),
        "paths": {},
    }
    timer = StageTimer(service.embeddings, service.chinese_reader)
    # The default path, and dense + BM25 + document match for every question (the English path).
    paths = (("default", Retriever), ("with dense search", DenseForEveryQuestion), ("pages in slots", PagesInSlots))
    tops = {}
    # a process that read no document's pages at start (the command line's one question): each filing's pages read
    # the first time a question reaches it; then, as the web app does at start (RagService.preload_search), every
    # document's pages read before the first question (what the first path kept forgotten first)
    result["paths"][FIRST_READ], first = run_path(ours, timer, questions, Retriever)
    forget_pages(service)
    started = time.perf_counter()
    result["warm_documents"] = service.retriever(service.store(with_model=True)).warm()
    result["warm_seconds"] = round(time.perf_counter() - started, 1)
    for label, retriever_class in paths:
        with counted_screens() as screens:
            result["paths"][label], tops[label] = run_path(ours, timer, questions, retriever_class)
        if label == "default":
            result["screens"] = screens
            # the same path with every search over the whole matrix its float32 product, as before 2026-12-07
            with mock.patch.object(exact.Stacked, "screened", lambda *_: None):
                result["paths"][FLOAT32_ALONE], unscreened = run_path(ours, timer, questions, Retriever)
            same = sum(a == b for a, b in zip(unscreened, tops["default"], strict=True))
            result["screens"]["top10_identical"] = same
    same = sum(a == b for a, b in zip(first, tops["default"], strict=True))
    result["first_read_top10_identical"] = {"identical": same, "questions": len(questions)}
    # the same again, each routed document's page vectors now kept in memory (made from the kept vectors first)
    result["paths"]["pages in slots, vectors kept"], _ = run_path(ours, timer, questions, PagesInSlots)
    result["torch_threads"], result["blas_threads"] = torch.get_num_threads(), blas_threads()
    # the default path as before 2026-12-06: numpy's BLAS on every core, beside torch's threads
    with_blas_threads(os.cpu_count() or 1)
    result["paths"][BLAS_EVERY_CORE], before = run_path(ours, timer, questions, Retriever)
    with_blas_threads(1)
    same = sum(a == b for a, b in zip(before, tops["default"], strict=True))
    result["blas_every_core_top10_identical"] = {"identical": same, "questions": len(questions)}
    # the default path through Chroma's approximate index (a collection above RAG_RETRIEVAL_EXACT_CHUNKS): each routed
    # filing's vectors read from Chroma the first time a question reaches it and written beside the chunk table (the
    # files removed first), then as a later process reads them, from those files
    index = service.store(with_model=True).index()
    index.exact_chunks = total - 1
    shutil.rmtree(index.table.path.with_suffix(".vectors"), ignore_errors=True)
    exact._cache.clear()
    result["paths"]["default, Chroma's approximate index"], _ = run_path(ours, timer, questions, Retriever)
    index._segments.clear()  # a later process: nothing kept in memory, the files on disk
    exact._cache.clear()
    label = "default, Chroma's approximate index, filings' vectors on disk"
    result["paths"][label], _ = run_path(ours, timer, questions, Retriever)
    index.exact_chunks = service.settings.retrieval_exact_chunks
    result["bm25_vs_sql"] = bm25_agreement(service.store(with_model=True), questions)
    result["top10_vs_sql_bm25"] = top10_agreement(ours, timer, questions, paths)
    write_result("retrieval-scale" if args.set == "financebench" else f"retrieval-scale-{args.set}", result)
    logging.info("%s", json.dumps(result["paths"])[:800])


def top10_agreement(ours: Ours, timer: StageTimer, questions, paths) -> dict:
    """Each path's top-10 pages, run again with the SQL BM25 scorer in place of the in-memory one."""
    agreement = {}
    for label, retriever_class in paths:
        _, ours_tops = run_path(ours, timer, questions, retriever_class)
        with mock.patch.object(
            ChunkTable,
            "search",
            lambda index, query, k, shas=None, weights=None: sqlite_bm25(index.path, query, k, shas, weights),
        ):
            _, sql_tops = run_path(ours, timer, questions, retriever_class)
        agreement[label] = {
            "identical": sum(a == b for a, b in zip(ours_tops, sql_tops, strict=True)),
            "questions": len(questions),
        }
    return agreement


if __name__ == "__main__":
    main()
