"""Two probes of issue 17's ingest on a GPU machine, beside bench/ingest.py's run.

* ``embed``: where the embedder's time goes when it embeds from token ids (the pipeline's path)
  against leaner paths, on random token sequences of 60-130 tokens, each path alone;
* ``chroma-growth``: Chroma add chunks/s per call of 1,000 as a collection grows, on the chunks a
  bench/ingest.py run stored (its financebench collection in bench/.data);
* ``chroma-config``: Chroma add of 62,434 random unit vectors with their sha256, 1,082 a call (the H200
  run's corpus as the ingest writes it), per HNSW configuration; needs only chromadb.

* ``fp16-model OUT``: writes the bundled all-MiniLM-L6-v2 with float16 weights to OUT (45 MB: it fits
  what the device tool carries, where the 91 MB float32 file does not). On CUDA the embedder turns the
  float32 weights into exactly these float16 ones, so a run with it is a run of the bundled model;
* ``chroma-shards``: Chroma add of the same vectors into 1 collection, and into K collections in K
  folders written by K processes at once (the store's shards), for real vectors (``--vectors`` .npy,
  e.g. from an ingest's collection) and random unit vectors: HNSW inserts cost more for random ones.
* ``embed-run CORPUS``: the pipeline's embedder over the token ids the parser processes make of a
  real corpus, in the ingest's groups of 8,192 chunks: the first pass (shapes never seen), a second
  pass, and passes while the parser pool parses the corpus again in this process (its results
  unpickled beside the embedder, as in an ingest). ``--shapes`` mask2d / unpadded / cudnn /
  unpadded+cudnn undoes the embedder's 4D mask, padding and attention choice (the last: all three); each needs a fresh process (the first pass is
  what it measures).

    python -m bench.ingest_probes embed --shape-from /tmp/minilm-shape
    python -m bench.ingest_probes chroma-growth --model /tmp/random-minilm-XXXX
    python -m bench.ingest_probes chroma-config
    python -m bench.ingest_probes fp16-model /tmp/minilm-fp16
    python -m bench.ingest_probes chroma-shards --vectors /tmp/real.npy
    python -m bench.ingest_probes agreement agreement_sample.npz
    python -m bench.ingest_probes handoff
    python -m bench.ingest_probes embed-run /tmp/corpus17 --model /tmp/minilm-fp16 [--shapes unpadded+cudnn]

``agreement`` checks a GPU run's stored vectors (the sample bench.ingest --raw-model writes to $OUT)
against the bundled model's float32 weights on this machine's CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def embed_paths(shape_from: Path | None, device: str = "cuda", count: int = 20000, batch: int = 512, model: str | None = None) -> dict:  # fmt: skip
    """Sequences/s of the pipeline's embed_tokens and of leaner paths over the same batches."""
    import torch

    from bench.ingest import random_minilm
    from rag_app.embedding.embedder import LocalEmbeddings
    from rag_app.embedding.inputs import model_inputs

    embeddings = LocalEmbeddings(model or random_minilm(shape_from), device=device, batch_size=batch)
    rng = np.random.default_rng(0)
    lengths = rng.integers(60, 131, count)
    seqs = sorted((np.concatenate([[101], rng.integers(1000, 29000, n - 2), [102]]).astype(np.int32) for n in lengths), key=len, reverse=True)  # fmt: skip
    inputs = [{k: torch.from_numpy(v).to(device) for k, v in model_inputs(seqs[s : s + batch], 0).items()} for s in range(0, count, batch)]  # fmt: skip
    bert = embeddings.model[0].auto_model

    def direct(ones: bool) -> None:
        for f in inputs:
            mask = torch.ones_like(f["attention_mask"]) if ones else f["attention_mask"]
            hidden = bert(input_ids=f["input_ids"], attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            torch.nn.functional.normalize(((hidden * weights).sum(1) / weights.sum(1)).float(), dim=1)

    paths = {
        "embed_tokens (the pipeline's path: inputs built on the CPU, copied, ST forward)": lambda: (
            embeddings.embed_tokens(seqs)
        ),  # fmt: skip
        "sentence-transformers forward, inputs already on the device": lambda: [
            embeddings._model_forward(f) for f in inputs
        ],  # noqa: SLF001
        "transformer + mean pooling called directly, padded mask": lambda: direct(False),
        "transformer called directly, all-ones mask (the bare-model figure's setting)": lambda: direct(True),
        "inputs built on the CPU alone (model_inputs, no model)": lambda: [
            model_inputs(seqs[s : s + batch], 0) for s in range(0, count, batch)
        ],
        "inputs built on the CPU and copied to the device (no model)": lambda: [
            {k: torch.from_numpy(v).to(device) for k, v in model_inputs(seqs[s : s + batch], 0).items()}
            for s in range(0, count, batch)
        ],
    }
    out = {}
    with torch.inference_mode():
        for label, run in paths.items():
            run()  # warm-up
            _sync(device)
            started = time.perf_counter()
            for _ in range(3):
                run()
            _sync(device)
            out[label] = round(3 * count / (time.perf_counter() - started))
    return {"sequences": count, "batch": batch, "precision": embeddings.precision, "seq_per_s": out}


def chroma_growth(model: str, seconds: float = 20.0) -> dict:
    """Chroma add chunks/s per call of 1,000 into a fresh collection, with and without texts and metadata."""
    import chromadb

    from bench.ingest import DATA
    from rag_app.service import RagService
    from rag_app.settings import Settings
    from rag_app.storage.chunk_index import chroma_metadata

    service = RagService(Settings(_env_file=None, data_dir=DATA, embedding_model=model, embedding_device="cpu"))
    index = service.store("financebench", with_model=True).index()
    got = index.vectors.parts[0].get(limit=30000, include=["embeddings"])
    ids, vectors = got["ids"], np.asarray(got["embeddings"], dtype=np.float32)
    stored = index.table.chunks_by_id(ids)
    got["documents"] = [stored[i].text for i in ids]
    got["metadatas"] = [chroma_metadata(stored[i]) for i in ids]
    out = {}
    for label, with_text in (("documents and metadata", True), ("vectors only", False)):
        client = chromadb.PersistentClient(tempfile.mkdtemp(), chromadb.Settings(anonymized_telemetry=False))
        target = client.create_collection("growth", embedding_function=None, configuration={"hnsw": {"space": "cosine"}})  # fmt: skip
        rates, started = [], time.perf_counter()
        for s in range(0, len(ids), 1000):
            extra = {"documents": got["documents"][s : s + 1000], "metadatas": got["metadatas"][s : s + 1000]}
            call = time.perf_counter()
            target.add(ids=ids[s : s + 1000], embeddings=vectors[s : s + 1000], **(extra if with_text else {}))
            rates.append(round(len(ids[s : s + 1000]) / (time.perf_counter() - call)))
            if time.perf_counter() - started > seconds:
                break
        out[label] = rates
    return out


HNSW_CONFIGS = {
    "default": {},
    "batch_size 1000": {"batch_size": 1000},
    "batch_size 1000, sync_threshold 10000": {"batch_size": 1000, "sync_threshold": 10000},
    "batch_size 5000, sync_threshold 20000": {"batch_size": 5000, "sync_threshold": 20000},
    "num_threads 16, batch_size 1000": {"num_threads": 16, "batch_size": 1000},
}


def chroma_configs(count: int = 62434, per_call: int = 1082) -> dict:
    """Seconds and chunks/s of Chroma's add per HNSW configuration, with a self-query's top-1 beside it."""
    import chromadb

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((count, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    out = {}
    for name, config in HNSW_CONFIGS.items():
        client = chromadb.PersistentClient(tempfile.mkdtemp(), chromadb.Settings(anonymized_telemetry=False))
        target = client.create_collection("probe", embedding_function=None, configuration={"hnsw": {"space": "cosine", **config}})  # fmt: skip
        started = time.perf_counter()
        for s in range(0, count, per_call):
            ids = [f"s{i // per_call}:{i}" for i in range(s, min(count, s + per_call))]
            target.add(
                ids=ids, embeddings=vectors[s : s + per_call], metadatas=[{"sha256": i.split(":")[0]} for i in ids]
            )
        seconds = time.perf_counter() - started
        found = target.query(query_embeddings=vectors[:200:2], n_results=10)
        top1 = np.mean([found["ids"][j][0] == f"s{2 * j // per_call}:{2 * j}" for j in range(100)])
        out[name] = {"seconds": round(seconds, 1), "chunks_per_s": round(count / seconds), "self_top1": float(top1)}
    return out


def fp16_model(out: Path) -> dict:
    """The bundled model, its weights in float16, saved to ``out``."""
    from sentence_transformers import SentenceTransformer

    from rag_app.embedding.embedder import bundled_model_path

    model = SentenceTransformer(str(bundled_model_path()), device="cpu").half()
    model.save(str(out))
    return {"out": str(out), "bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file())}


def _add_all(path: str, vectors: np.ndarray, per_call: int = 1000) -> float:
    import chromadb

    client = chromadb.PersistentClient(path=path, settings=chromadb.Settings(anonymized_telemetry=False))
    collection = client.create_collection("probe", embedding_function=None, configuration={"hnsw": {"space": "cosine"}})  # fmt: skip
    started = time.perf_counter()
    for start in range(0, len(vectors), per_call):
        part = vectors[start : start + per_call]
        ids = [f"c{start + i}" for i in range(len(part))]
        collection.add(ids=ids, embeddings=part, metadatas=[{"sha256": "0" * 64}] * len(part))
    return time.perf_counter() - started


def chroma_shards(vectors_file: Path | None, count: int, shard_counts=(1, 2, 4)) -> dict:
    """Wall seconds to add ``count`` vectors into K collections written by K processes at once."""
    from concurrent.futures import ProcessPoolExecutor

    rng = np.random.default_rng(0)
    sets = {"random": rng.normal(size=(count, 384)).astype(np.float32)}
    if vectors_file is not None:
        sets["real"] = np.load(vectors_file)[:count].astype(np.float32)
    out: dict = {}
    for name, vectors in sets.items():
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        for shards in shard_counts:
            folders = [tempfile.mkdtemp(prefix=f"shard{i}-") for i in range(shards)]
            started = time.perf_counter()
            with ProcessPoolExecutor(shards) as pool:
                list(pool.map(_add_all, folders, [vectors[i::shards] for i in range(shards)]))
            seconds = time.perf_counter() - started
            out[f"{name} vectors, {shards} shard(s)"] = {"vectors": len(vectors), "seconds": round(seconds, 2), "vectors_per_s": round(len(vectors) / seconds)}  # fmt: skip
            print(name, shards, out[f"{name} vectors, {shards} shard(s)"], flush=True)
    return out


def handoff(files: int = 6) -> dict:
    """Seconds to unpickle and pickle parsed financebench filings as the parser processes hand them over,
    with each chunk's BM25 terms packed (as now) and as a dict per chunk (as before): time the ingesting
    process holds the GIL for, beside its embedder."""
    import pickle
    from collections import Counter
    from dataclasses import replace

    from bench.common import CORPUS
    from rag_app.embedding.embedder import LocalEmbeddings
    from rag_app.ingestion.chunking import TokenChunker
    from rag_app.ingestion.loaders import load_document
    from rag_app.ingestion.prepared import prepare_chunks
    from rag_app.text.terms import terms_of

    embeddings = LocalEmbeddings(device="cpu")
    plan = embeddings.chunk_plan(
        128, 16, TokenChunker(embeddings.count_tokens, 128, 16, embeddings.max_tokens).max_tokens
    )
    blobs: dict[str, list[bytes]] = {"packed terms": [], "a dict per chunk": []}
    chunks = 0
    for path in sorted((CORPUS / "qa" / "financebench_dev" / "pdfs").glob("*.pdf"))[:files]:
        doc = load_document(path)
        prepared = prepare_chunks(doc, "sha", plan)
        chunks += len(prepared.chunks)
        doc.prepared = prepared
        blobs["packed terms"].append(pickle.dumps(doc))
        doc.prepared = replace(prepared, terms=[dict(Counter(terms_of(c.text))) for c in prepared.chunks])
        blobs["a dict per chunk"].append(pickle.dumps(doc))
    out: dict = {"files": files, "chunks": chunks}
    for label, found in blobs.items():
        started = time.perf_counter()
        docs = [pickle.loads(b) for b in found]
        loads = time.perf_counter() - started
        started = time.perf_counter()
        for doc in docs:
            pickle.dumps(doc)
        out[label] = {"MB": round(sum(map(len, found)) / 1e6, 1), "unpickle_s": round(loads, 3), "pickle_s": round(time.perf_counter() - started, 3)}  # fmt: skip
    return out


def agreement(sample: Path) -> dict:
    """Vectors a GPU run stored (``agreement_sample.npz`` of bench.ingest) against the bundled model's
    float32 weights on this machine's CPU: cosine per chunk."""
    from rag_app.embedding.embedder import LocalEmbeddings

    data = np.load(sample)
    reference = LocalEmbeddings(device="cpu", precision="fp32").embed_array([str(t) for t in data["texts"]])
    stored = data["stored"]
    cosine = np.sum(stored * reference, axis=1) / (np.linalg.norm(stored, axis=1) * np.linalg.norm(reference, axis=1))
    return {"chunks": len(cosine), "min_cosine": round(float(cosine.min()), 5), "mean_cosine": round(float(cosine.mean()), 6), "reference": "bundled all-MiniLM-L6-v2, float32 weights and arithmetic, CPU"}  # fmt: skip


def embed_run(corpus: Path, model: str, device: str = "cuda", shapes: str = "default", group: int = 8192) -> dict:
    """The embedder over a real corpus's token ids: first pass, second pass, passes beside parsing.

    ``shapes``: "default" (the embedder as it is), "mask2d" (the 2D mask given to transformers),
    "unpadded" (batches as wide as their longest row, as many rows as they have), "cudnn" (cuDNN's
    attention allowed), "unpadded+cudnn" (all three: the embedder before issue 17's fixes)."""
    import contextlib
    import os
    import threading

    from rag_app.ingestion.parsing import ExtractionJob, ExtractionPool
    from rag_app.service import RagService
    from rag_app.settings import Settings

    settings = Settings(
        _env_file=None, data_dir=Path(tempfile.mkdtemp()), embedding_model=model, embedding_device=device
    )
    service = RagService(settings)
    embeddings, chunker = service.embeddings, service.chunker
    if "unpadded" in shapes:
        embeddings.pad_width = embeddings.pad_rows = 1
    if "mask2d" in shapes or shapes == "unpadded+cudnn":
        embeddings.mask_4d = False
    if "cudnn" in shapes:
        embeddings._attention = contextlib.nullcontext  # noqa: SLF001 - the attention PyTorch picks itself
    plan = embeddings.chunk_plan(chunker.chunk_size, chunker.chunk_overlap, chunker.max_tokens)
    pdfs = sorted(corpus.rglob("*.pdf"))
    jobs = [ExtractionJob(p, (), "auto", f"{i:064x}", plan) for i, p in enumerate(pdfs)]
    workers = max(1, (os.cpu_count() or 2) - 1)

    def parse() -> list:
        with ExtractionPool(workers) as pool:
            return [doc.prepared for _, doc in pool.run(jobs) if doc.prepared is not None]

    started = time.perf_counter()
    prepared = parse()
    parse_s = time.perf_counter() - started
    sequences = [p.token_ids[p.starts[i] : p.starts[i + 1]] for p in prepared for i in range(len(p.chunks))]
    groups = [sequences[s : s + group] for s in range(0, len(sequences), group)]
    embeddings.embed_array(["warm-up"] * embeddings.batch_size)  # as bench.ingest warms up

    def one_pass() -> tuple[float, list[float]]:
        calls = []
        for g in groups:
            t = time.perf_counter()
            embeddings.embed_tokens(g)
            _sync(device)
            calls.append(round(time.perf_counter() - t, 3))
        return sum(calls), calls

    first, first_calls = one_pass()
    second, _ = one_pass()
    syncs = _syncs(lambda: embeddings.embed_tokens(groups[0]), device)
    beside, done = [], threading.Event()

    def background() -> None:
        parse()
        done.set()

    thread = threading.Thread(target=background)
    thread.start()
    time.sleep(1.0)  # the pool's processes start
    while not done.is_set():
        beside.append(one_pass()[0])
    thread.join()
    shapes_seen = set()
    for g in groups:
        ordered = sorted(map(len, g), reverse=True)
        for b in range(0, len(ordered), embeddings.batch_size):
            width = ordered[b] + -ordered[b] % embeddings.pad_width
            rows = min(embeddings.batch_size, len(ordered) - b)
            shapes_seen.add((rows + -rows % embeddings.pad_rows, width))
    ours = embeddings.embed_tokens(groups[0])
    embeddings.pad_width = embeddings.pad_rows = 1
    embeddings.mask_4d = False
    embeddings._attention = contextlib.nullcontext  # noqa: SLF001
    plain = embeddings.embed_tokens(groups[0])
    cosine = np.sum(ours * plain, axis=1)
    rate = lambda seconds: round(len(sequences) / seconds)  # noqa: E731
    return {
        "chunks": len(sequences), "files": len(prepared), "parse_s": round(parse_s, 2), "shapes": shapes,
        "batch": embeddings.batch_size, "distinct_shapes": len(shapes_seen),
        "mean_tokens": round(float(np.mean([len(s) for s in sequences])), 1),
        "first_pass_chunks_per_s": rate(first), "first_pass_calls_s": first_calls,
        "second_pass_chunks_per_s": rate(second), "synchronizing_ops_in_one_call": syncs,
        "beside_parse_chunks_per_s": [rate(b) for b in beside],
        "against_unpadded_cudnn": {"chunks": len(cosine), "min_cosine": round(float(cosine.min()), 6), "max_abs_diff": float(np.abs(ours - plain).max())},
    }  # fmt: skip


def _syncs(run, device: str) -> int:
    """How many operations made the CPU wait for the GPU during ``run()`` (torch's sync debug mode)."""
    import warnings

    import torch

    if not device.startswith("cuda"):
        return 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "probe",
        choices=[
            "embed",
            "embed-run",
            "chroma-growth",
            "chroma-config",
            "fp16-model",
            "chroma-shards",
            "agreement",
            "handoff",
        ],
    )
    parser.add_argument(
        "out",
        nargs="?",
        type=Path,
        help="fp16-model: the folder to write; agreement: the sample .npz; embed-run: the corpus folder",
    )
    parser.add_argument("--vectors", type=Path, help="chroma-shards: a .npy of real vectors (N x 384)")
    parser.add_argument("--shape-from", type=Path, help="embed: the MiniLM config and tokenizer folder")
    parser.add_argument(
        "--model",
        help="chroma-growth: the embedding model the ingest run stored with; embed: the model (instead of random weights)",
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument(
        "--shapes",
        default="default",
        choices=["default", "mask2d", "unpadded", "cudnn", "unpadded+cudnn"],
        help="embed-run: what to undo of the embedder's shape handling",
    )
    args = parser.parse_args()
    if args.probe == "embed":
        print("embed_probe", json.dumps(embed_paths(args.shape_from, args.device, args.count, model=args.model)), flush=True)  # fmt: skip
    elif args.probe == "embed-run":
        print("embed_run", json.dumps(embed_run(args.out, args.model, args.device, args.shapes)), flush=True)
    elif args.probe == "chroma-growth":
        print("chroma_growth", json.dumps(chroma_growth(args.model)), flush=True)
    elif args.probe == "fp16-model":
        print("fp16_model", json.dumps(fp16_model(args.out)), flush=True)
    elif args.probe == "handoff":
        print("handoff", json.dumps(handoff()), flush=True)
    elif args.probe == "agreement":
        print("agreement", json.dumps(agreement(args.out)), flush=True)
    elif args.probe == "chroma-shards":
        print("chroma_shards", json.dumps(chroma_shards(args.vectors, args.count)), flush=True)
    else:
        print("chroma_config", json.dumps(chroma_configs()), flush=True)


if __name__ == "__main__":
    main()
