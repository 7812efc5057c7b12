"""Instruments of bench/ingest.py on a GPU machine: where the ingest's time goes and what bounds it.

* :func:`timed_calls` sums the seconds spent in named library calls during a run (Chroma upserts
  of chunks, BM25 inserts, registry commits...), a profile without the profiler's overhead;
* :func:`parse_sweep` times the parse stage alone through :class:`ExtractionPool` per worker count;
* :func:`raw_model_throughput` times the bare forward pass of the embedding model (sequences/s at
  128 tokens, bf16) beside :func:`embed_capacity`, the pipeline's own embedder on the run's chunks;
* :func:`vector_agreement` checks stored vectors against an fp32 re-embedding (the correctness
  figure printed beside the speed figures);
* :func:`cprofile_top` lists the functions that took the most time in one more, profiled ingest.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import pstats
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from rag_app.ingestion.parsing import ExtractionJob, ExtractionPool

RAW_TOKENS = 128


@contextlib.contextmanager
def timed_calls(targets: dict[str, tuple[object, str]]) -> Iterator[dict[str, float]]:
    """Within the block, ``seconds[name]`` sums the time spent in ``owner.attr`` for each named target."""
    seconds = {name: 0.0 for name in targets}
    originals = {name: getattr(owner, attr) for name, (owner, attr) in targets.items()}

    def timed(name: str, original: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - started

        return wrapper

    for name, (owner, attr) in targets.items():
        setattr(owner, attr, timed(name, originals[name]))
    try:
        yield seconds
    finally:
        for name, (owner, attr) in targets.items():
            setattr(owner, attr, originals[name])


def store_targets() -> dict[str, tuple[object, str]]:
    """The store's parts: chunk vectors into Chroma, texts and terms into SQLite, the registry's commits, deletes."""
    from rag_app.storage.chunk_index import ChunkIndex
    from rag_app.storage.chunk_table import ChunkTable
    from rag_app.storage.store import DocumentStore

    return {
        "chunks_chroma_and_sqlite": (ChunkIndex, "add"),
        "sqlite_texts_and_bm25": (ChunkTable, "add"),
        "delete_leftovers": (ChunkIndex, "delete"),
        "registry_commit": (DocumentStore, "_commit"),
        "pending_markers": (DocumentStore, "_mark_pending"),
        "pending_clear": (DocumentStore, "_clear_pending"),
        "registry_reads": (DocumentStore, "documents_with_sha"),
    }


def store_breakdown(seconds: dict[str, float]) -> dict[str, float]:
    """Split the timed calls into exclusive parts (Chroma's add of the vectors = add minus its SQLite insert)."""
    parts = dict(seconds)
    parts["chroma_add_vectors"] = parts.pop("chunks_chroma_and_sqlite") - parts["sqlite_texts_and_bm25"]
    return {k: round(v, 2) for k, v in sorted(parts.items(), key=lambda kv: -kv[1])}


def main_thread_shares(wall: float, stages: dict[str, float], store_parts: dict[str, float]) -> dict:
    """Where the ingesting thread's wall time went, largest first, and which part bounds the total.

    Parsing runs in worker processes and storing in the writer thread: their cost to the total is the
    time this thread waits for them. When that wait for the writer is the largest part, the bound is
    the writer's largest part (``writer`` lists them).
    """
    parts = {"waiting for parse": stages.get("wait", 0.0), "chunk": stages["chunk"], "embed": stages["embed"]}
    parts["waiting for the writer"] = stages.get("store_wait", 0.0)
    parts["other (hashing, planning, recover)"] = max(wall - sum(parts.values()), 0.0)
    shares = {k: {"s": round(v, 2), "share": round(v / wall, 3) if wall else 0.0} for k, v in parts.items()}
    ordered = dict(sorted(shares.items(), key=lambda kv: -kv[1]["s"]))
    # A run of many files stores through a writer process: its parts run there, untimed by this process.
    in_process = sum(store_parts.values()) < 0.05 * stages["store"]
    writer = {} if in_process else {f"store: {k}": v for k, v in store_parts.items()}
    if writer:
        writer["store: other"] = max(stages["store"] - sum(store_parts.values()), 0.0)
    writer_shares = {k: {"s": round(v, 2), "share": round(v / wall, 3) if wall else 0.0} for k, v in writer.items()}
    writer_ordered = dict(sorted(writer_shares.items(), key=lambda kv: -kv[1]["s"]))
    bound = next(iter(ordered))
    if bound == "waiting for the writer":
        bound = "the writer process (storing)" if in_process else f"writer thread, {next(iter(writer_ordered))}"
    return {"parts": ordered, "writer": writer_ordered, "bound": bound}


def parse_sweep(pdfs: Sequence[Path], counts: Sequence[int], timeout_s: float, memory_mb: int, parser: str) -> list:
    """Pages/s of the parse stage alone (worker start included) for each worker count."""
    rows = []
    for workers in counts:
        started = time.perf_counter()
        pages = failed = 0
        with ExtractionPool(workers, timeout_s, memory_mb) as pool:
            for _, doc in pool.run([ExtractionJob(p, (), parser) for p in pdfs]):
                pages += doc.total_pages
                failed += doc.error is not None
        seconds = time.perf_counter() - started
        rows.append({"workers": workers, "pages": pages, "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 1), "failed": failed})  # fmt: skip
    return rows


def raw_model_throughput(embeddings, batches: Sequence[int], repeats: int) -> dict:
    """Sequences/s of the bare transformer at 128 tokens: bf16 autocast (as the pipeline) and bf16 weights."""
    import copy

    import torch

    module = embeddings.model[0]
    bert = getattr(module, "auto_model", None) or module.model  # the transformer inside sentence-transformers
    device = torch.device(embeddings.device)
    out = {}
    for label, model, autocast in (("autocast_bf16", bert, True), ("bf16_weights", copy.deepcopy(bert).to(torch.bfloat16), False)):  # fmt: skip
        for batch in batches:
            ids = torch.randint(1000, 29000, (batch, RAW_TOKENS), device=device)
            mask = torch.ones_like(ids)
            context = torch.autocast(device.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
            with torch.inference_mode(), context:
                for _ in range(3):
                    model(input_ids=ids, attention_mask=mask)
                _sync(device)
                started = time.perf_counter()
                for _ in range(repeats):
                    model(input_ids=ids, attention_mask=mask)
                _sync(device)
            out[f"{label}_batch{batch}"] = round(batch * repeats / (time.perf_counter() - started), 1)
        del model
    out["best_sequences_per_s"] = max(out.values())
    return out


def embed_capacity(embeddings, texts: Sequence[str], batch_size: int) -> dict:
    """The pipeline's embedder over the run's chunk texts in one call: chunks/s with full batches."""
    saved = embeddings.batch_size
    embeddings.batch_size = batch_size
    try:
        embeddings.embed_array(list(texts[: batch_size * 2]))  # warm-up: kernels, allocator
        _sync_embeddings(embeddings)
        started = time.perf_counter()
        embeddings.embed_array(list(texts))
        _sync_embeddings(embeddings)
        seconds = time.perf_counter() - started
    finally:
        embeddings.batch_size = saved
    return {"chunks": len(texts), "batch_size": batch_size, "seconds": round(seconds, 2), "chunks_per_s": round(len(texts) / seconds, 1)}  # fmt: skip


def embed_tokens_capacity(embeddings, texts: Sequence[str], batch_size: int) -> dict:
    """The pipeline's embedder from token ids (as the parser processes make them), in one call: chunks/s."""
    from rag_app.embedding.inputs import encoder_for

    plan = embeddings.chunk_plan(128, 16, embeddings.max_tokens)
    if plan is None:
        return {}
    encoded = encoder_for(plan).encode_batch(list(texts), add_special_tokens=True)
    sequences = [np.asarray(e.ids, dtype=np.int32) for e in encoded]
    saved = embeddings.batch_size
    embeddings.batch_size = batch_size
    try:
        embeddings.embed_tokens(sequences[: batch_size * 2])  # warm-up
        _sync_embeddings(embeddings)
        started = time.perf_counter()
        embeddings.embed_tokens(sequences)
        _sync_embeddings(embeddings)
        seconds = time.perf_counter() - started
    finally:
        embeddings.batch_size = saved
    mean_tokens = round(float(np.mean([len(s) for s in sequences])), 1) if sequences else 0.0
    return {"chunks": len(sequences), "batch_size": batch_size, "mean_tokens": mean_tokens, "seconds": round(seconds, 2), "chunks_per_s": round(len(sequences) / seconds, 1)}  # fmt: skip


def vector_agreement(service, collection: str, sample: int = 256) -> dict:
    """Stored vectors against an fp32 re-embedding of the same chunk texts (cosine; 1.0 is identical)."""
    import copy

    import torch

    index = service.store(collection, with_model=True).index()
    found = index.vectors.parts[0].get(limit=sample, include=["embeddings"])  # the first shard: a sample of every file
    texts = index.table.chunks_by_id(found["ids"])
    found["documents"] = [texts[i].text for i in found["ids"]]
    stored = np.asarray(found["embeddings"], dtype=np.float32)
    reference = copy.deepcopy(service.embeddings.model).float()  # the pipeline's copy may hold float16 weights
    with torch.autocast(service.embeddings.device.split(":")[0], enabled=False):
        fresh = reference.encode_document(
            found["documents"], batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    cosine = np.sum(stored * fresh, axis=1) / (np.linalg.norm(stored, axis=1) * np.linalg.norm(fresh, axis=1))
    if os.environ.get(
        "OUT"
    ):  # the sample, for a check against the float32 weights elsewhere (bench.ingest_probes agreement)
        np.savez(Path(os.environ["OUT"]) / "agreement_sample.npz", ids=np.array(found["ids"]), texts=np.array(found["documents"]), stored=stored)  # fmt: skip
    return {"chunks": len(cosine), "min_cosine": round(float(cosine.min()), 5), "mean_cosine": round(float(cosine.mean()), 6)}  # fmt: skip


def cprofile_top(run: Callable[[], object], top: int = 25) -> list[dict]:
    """The ``top`` functions by own time during ``run()`` (this thread only: parse workers are processes)."""
    profile = cProfile.Profile()
    profile.runcall(run)
    stats = pstats.Stats(profile)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]
    return [
        {"function": f"{Path(f).name}:{line}({name})", "calls": nc, "own_s": round(tt, 3), "cumulative_s": round(ct, 3)}
        for (f, line, name), (_, nc, tt, ct, _) in rows
    ]


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _sync_embeddings(embeddings) -> None:
    import torch

    _sync(torch.device(embeddings.device))


def store_variants(service, collection: str, sample: int = 4000) -> dict:
    """Chunks/s of the store's parts on a sample of the run's own chunks, each into a fresh database.

    Tells what in a store write costs: Chroma with everything we store (as the pipeline, about one
    file's chunks per call, and in calls of 1,000), Chroma without metadata or documents, ``add``
    instead of ``upsert``, and the BM25 insert (term extraction alone, then with SQLite).
    """
    import tempfile

    import chromadb

    from rag_app.storage.chunk_index import chroma_metadata
    from rag_app.storage.chunk_table import ChunkTable
    from rag_app.text.terms import terms_of

    index = service.store(collection, with_model=True).index()
    got = index.vectors.parts[0].get(limit=sample, include=["embeddings"])
    ids = got["ids"]
    stored = index.table.chunks_by_id(ids)
    docs = [stored[i].text for i in ids]
    metas = [chroma_metadata(stored[i]) for i in ids]
    lean = [{"sha256": m["sha256"]} for m in metas]
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    files = len({d.sha256 for d in service.store(collection).list_documents()})
    per_file = max(1, round(index.count() / max(files, 1)))  # the pipeline writes one file's chunks a call

    def chroma(batch: int, method: str = "add", with_docs: bool = True, with_meta: bool = True, meta=metas) -> float:
        client = chromadb.PersistentClient(tempfile.mkdtemp(prefix="store-variant-"), chromadb.Settings(anonymized_telemetry=False))  # fmt: skip
        target = client.get_or_create_collection("variant", embedding_function=None, configuration={"hnsw": {"space": "cosine"}})  # fmt: skip
        started = time.perf_counter()
        for s in range(0, len(ids), batch):
            kwargs = {"ids": ids[s : s + batch], "embeddings": vectors[s : s + batch]}
            kwargs |= {"documents": docs[s : s + batch]} if with_docs else {}
            kwargs |= {"metadatas": meta[s : s + batch]} if with_meta else {}
            getattr(target, method)(**kwargs)
        return round(len(ids) / (time.perf_counter() - started), 1)

    def bm25(terms_only: bool) -> float:
        lexical = ChunkTable(Path(tempfile.mkdtemp(prefix="bm25-variant-")) / "x.sqlite")
        started = time.perf_counter()
        for s in range(0, len(ids), per_file):
            chunks = [stored[i] for i in ids[s : s + per_file]]
            if terms_only:
                for chunk in chunks:
                    terms_of(chunk.text)
            else:
                lexical.add(f"sha{s}", chunks, chunks[0].file, chunks[0].pages)
        lexical.close()
        return round(len(ids) / (time.perf_counter() - started), 1)

    return {
        "chunks": len(ids), "chunks_per_file": per_file, "chunks_per_s": {
            f"chroma add, vectors + sha256 as stored ({per_file} a call)": chroma(per_file, with_docs=False, meta=lean),
            f"chroma add, vectors only ({per_file} a call)": chroma(per_file, with_docs=False, with_meta=False),
            f"chroma add, texts and places too, as a Chroma server gets them ({per_file} a call)": chroma(per_file),
            f"chroma upsert, texts and places too ({per_file} a call)": chroma(per_file, "upsert"),
            "bm25 terms only": bm25(terms_only=True),
            "sqlite texts + bm25 terms + insert": bm25(terms_only=False),
        },
    }  # fmt: skip
