"""The embedder's backends on real chunks: agreement with fp32 torch over 8,000 chunks, and chunks/s.

Chunks are sampled from every set of the corpus's qa/ folder (financebench_dev, docugami_sec10q,
zh_reports_dev, enterprise_rag_challenge_r1, finglm_zh_mini): the files of each set in turn, every third
chunk of each, made by our chunker and tokenizer at the default chunk size, then 8,000 drawn at random
(seed 0). Every variant embeds the same token ids; the cosine of each vector to fp32 torch's is
reported (mean, worst, 0.1% quantile), and the chunks/s of each on the same subset, with the load
average before it (timings are taken only when the load is under 2, retried a few times).

    python -m bench.embed_backends                  # writes bench/results/embed-backends.json
    python -m bench.embed_backends --isa avx2       # torch restricted to AVX2 (MKL, oneDNN, ATen), as a
                                                    # CPU without AVX-512 and bf16 runs it

onnxruntime picks its kernels from the CPU's instruction sets at run time and has no setting that
restricts them: its figures here use this CPU's AVX-512 (VNNI for int8), and the result says so.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from bench.common import AVX2_ONLY, CORPUS, quiet_load, write_result


def sample_chunks(n: int, plan) -> list[str]:
    """``n`` real chunks from every set of qa/, drawn as the module's docstring says."""
    from rag_app.ingestion.loaders import load_document
    from rag_app.ingestion.prepared import chunker_for

    sets = {d.name: sorted(d.rglob("*.pdf")) for d in sorted((CORPUS / "qa").iterdir()) if d.is_dir()}
    texts: list[str] = []
    for turn in range(max(len(f) for f in sets.values())):
        for files in sets.values():
            if turn < len(files) and not (doc := load_document(files[turn])).error:
                texts += [c.text for c in chunker_for(plan).split_pages(doc.pages, "sample")][::3]
        if len(texts) >= 2 * n:
            break
    pick = np.sort(np.random.default_rng(0).choice(len(texts), size=min(n, len(texts)), replace=False))
    return [texts[i] for i in pick]


START_PROBE = """
import resource, sys, time, json
t = time.perf_counter()
import rag_app.cli.ingest_command
imported = time.perf_counter() - t
from rag_app.embedding.choice import load_embeddings
from rag_app.settings import Settings
embedder = load_embeddings(Settings(_env_file=None, embedding_backend=sys.argv[1]))
embedder.embed_array(["warm-up"])
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"import_s": round(imported, 2), "ready_s": round(time.perf_counter() - t, 2),
                  "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "torch_imported": "torch" in sys.modules}))
"""


def start_costs() -> dict:
    """What a new ``python -m ingest`` spends before it can embed: importing the CLI, then loading the embedder
    (wall and CPU seconds; CPU seconds depend less on the machine's load)."""
    import json
    import subprocess

    out = {}
    for backend in ("onnx", "torch"):
        load = quiet_load()
        done = subprocess.run([sys.executable, "-c", START_PROBE, backend], capture_output=True, text=True, check=True)
        out[backend] = json.loads(done.stdout.strip().splitlines()[-1]) | {"load_before": load}
    return out


def timed(embedder, ids: list[np.ndarray]) -> dict:
    embedder.embed_tokens(ids[:64])  # warm
    load = quiet_load()
    started = time.perf_counter()
    embedder.embed_tokens(ids)
    seconds = time.perf_counter() - started
    return {"chunks_per_s": round(len(ids) / seconds, 1), "load_before": load, "load_after": round(os.getloadavg()[0], 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=8000, help="chunks compared (default 8000)")
    parser.add_argument("--timed", type=int, default=1024, help="chunks each variant is timed on")
    parser.add_argument("--isa", choices=["native", "avx2"], default="native", help="restrict torch to AVX2")
    parser.add_argument("--name", default="embed-backends")
    args = parser.parse_args()
    if args.isa == "avx2" and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        os.execve(sys.executable, [sys.executable, "-m", "bench.embed_backends", *sys.argv[1:]], {**os.environ, **AVX2_ONLY})  # fmt: skip
    from rag_app.embedding.choice import exported
    from rag_app.embedding.embedder import LocalEmbeddings
    from rag_app.embedding.inputs import encode_texts
    from rag_app.embedding.onnx_embedder import OnnxEmbeddings
    from rag_app.settings import DEFAULT_EMBEDDING_MODEL, Settings

    settings = Settings(_env_file=None)
    torch32 = LocalEmbeddings(DEFAULT_EMBEDDING_MODEL, "cpu", 0, "fp32")
    plan = torch32.chunk_plan(settings.chunk_size, settings.chunk_overlap, torch32.max_tokens)
    texts = sample_chunks(args.chunks, plan)
    ids = [np.asarray(i, dtype=np.int32) for i in encode_texts(plan, texts)]
    lengths = np.array([len(i) for i in ids])
    reference = torch32.embed_tokens(ids)
    folder = exported(DEFAULT_EMBEDDING_MODEL)
    subset = ids[:: max(1, len(ids) // args.timed)][: args.timed]
    result: dict = {
        "chunks": len(ids),
        "isa": args.isa,
        "torch_env": {k: os.environ.get(k) for k in AVX2_ONLY},
        "onnxruntime_isa": "not restrictable: onnxruntime picks kernels from the CPU at run time (this CPU's AVX-512 and VNNI)",  # fmt: skip
        "token_lengths": {f"p{q}": int(np.percentile(lengths, q)) for q in (10, 50, 90, 99, 100)}
        | {"mean": round(float(lengths.mean()), 1)},  # fmt: skip
        "variants": {},
    }
    variants = [("torch fp32", lambda: torch32)]
    if args.isa == "native":
        variants.append(("torch bf16", lambda: LocalEmbeddings(DEFAULT_EMBEDDING_MODEL, "cpu", 0, "bf16")))
    for precision in ("int8", "fp32"):
        for threads in (2, 1):
            variants.append((f"onnx {precision} {threads} threads", lambda p=precision, t=threads: OnnxEmbeddings(DEFAULT_EMBEDDING_MODEL, folder, p, 0, t)))  # fmt: skip
    for name, make in variants:
        embedder = make()
        row = timed(embedder, subset)
        if name != "torch fp32" and "1 threads" not in name:
            cosines = (embedder.embed_tokens(ids) * reference).sum(axis=1)
            row |= {"cosine_mean": round(float(cosines.mean()), 6), "cosine_worst": round(float(cosines.min()), 6),
                    "cosine_p0.1": round(float(np.quantile(cosines, 0.001)), 6)}  # fmt: skip
        result["variants"][name] = row
        print(name, row, flush=True)
    result["start"] = start_costs()
    print("start", result["start"], flush=True)
    path = write_result(args.name, result | {"command": "python -m bench.embed_backends" + (" --isa avx2" if args.isa == "avx2" else "")})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
