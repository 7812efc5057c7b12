"""The app end to end on a GPU: filings ingested with the embedder on the GPU, then questions asked through
``POST /api/ask`` (streamed, as the page asks) with the fast path on real weights (SmolLM2-135M-Instruct, a
folder made by bench/gguf_to_hf.py), every strategy.

For each answer: its text, the sources it cites and whether a cited page is the question's evidence page
(financebench / zh_reports labels), the app's own citation check (``invalid_citations``), time to the first
token event and to ``done`` as the client sees them, and the GPU memory held.

    python -m bench.app_gpu --model-dir /tmp/smollm2-hf --files DIR_OF_PDFS [--embedding-model DIR] [--quantization 4bit]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from bench.common import write_result

GIB = 1024**3
STRATEGIES = ["stuff", "map_reduce", "refine", "map_rerank"]
# (file, question, evidence pages): financebench_dev and zh_reports_dev labels; the Chinese report travels to the
# GPU machine under an ASCII name (2020-04-11__常柴股份有限公司__200570__苏常柴__2019年__年度报告.pdf in the corpus)
QUESTIONS = [
    ("AMAZON_2019_10K.pdf", "What is Amazon's FY2019 net income attributable to shareholders?", [38]),
    (
        "AMCOR_2023Q2_10Q.pdf",
        "What is the nature and purpose of AMCOR's restructuring liability as of Q2 FY2023?",
        [15],
    ),
    (
        "MGMRESORTS_2023Q2_10Q.pdf",
        "Which type of debt was the largest short-term investment for MGM in H1 FY2023?",
        [11],
    ),
    ("changchai_2019_annual_report.pdf", "请提供常柴股份有限公司在2019年的公司网址。", [5]),
]


def ask_streamed(client, question: str, strategy: str, k: int) -> dict:
    """One streamed POST /api/ask: seconds to the first token event and to done, and the done payload."""
    started = time.perf_counter()
    first, done, error, event = None, None, None, None
    with client.stream(
        "POST", "/api/ask", json={"question": question, "strategy": strategy, "k": k, "stream": True}
    ) as reply:
        for line in reply.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                if event == "token" and first is None:
                    first = time.perf_counter() - started
                elif event == "done":
                    done = json.loads(line[6:])
                elif event == "error":
                    error = json.loads(line[6:])
    total = time.perf_counter() - started
    return {
        "first_token_s": round(first, 3) if first else None,
        "total_s": round(total, 3),
        "done": done,
        "error": error,
    }


def checked(answer: dict | None, file: str, evidence: list[int]) -> dict:
    """What the answer cites, and whether any cited source is the question's evidence page."""
    if not answer:
        return {}
    sources = {s["n"]: s for s in answer["sources"]}
    cited = [{"n": n, "file": sources[n]["file"], "page": sources[n]["page"]} for n in answer["cited"] if n in sources]
    retrieved = [(s["file"], s["page"]) for s in answer["sources"]]
    return {
        "answer": answer["answer"][:600], "cited": cited, "invalid_citations": answer["invalid_citations"],
        "unverified_quotes": answer.get("unverified_quotes", []),
        "evidence_page_retrieved": any(f == file and p in evidence for f, p in retrieved),
        "evidence_page_cited": any(c["file"] == file and c["page"] in evidence for c in cited),
        "tokens": answer["tokens"], "timings": answer["timings"], "warnings": answer.get("warnings", []),
    }  # fmt: skip


def main() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from rag_app.service import RagService
    from rag_app.settings import Settings
    from rag_app.web.api import build_api, install_error_handlers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--files", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/app-gpu-data"))
    parser.add_argument("--embedding-model", default=None)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--engine", default="fast", choices=["fast", "auto", "transformers"])
    parser.add_argument(
        "--quantization", default="auto", choices=["auto", "4bit", "8bit", "none"],
        help="RAG_LLM_QUANTIZATION: auto keeps a model under 1B in bf16; 4bit runs the int4 fast path",
    )  # fmt: skip
    parser.add_argument("--name", default="app-gpu-smollm2")
    parser.add_argument(
        "--device", default="cuda", help="cuda; cpu runs the same steps as a smoke test (transformers engine)"
    )
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    extra = {"embedding_model": args.embedding_model} if args.embedding_model else {}
    settings = Settings(
        _env_file=None, data_dir=args.data_dir, collection="gpu", llm_backend="local", llm_model=str(args.model_dir),
        llm_device=args.device, llm_engine=args.engine if cuda else "transformers", embedding_device=args.device, ocr="off", max_new_tokens=args.max_new_tokens,
        llm_quantization=args.quantization,
        **extra,
    )  # fmt: skip
    service = RagService(settings)
    files = sorted(args.files.glob("*.pdf"))
    started = time.perf_counter()
    report = service.ingest(files).to_dict()
    ingest_s = time.perf_counter() - started
    pages = sum(f.get("pages", 0) for f in report.get("files", []))
    print(f"ingested {len(files)} files, {pages} pages in {ingest_s:.1f} s", flush=True)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    service.preload_model().join()
    load_s = time.perf_counter() - started
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(build_api(service))
    result = {
        "gpu": torch.cuda.get_device_name(0) if cuda else "cpu", "model_dir": args.model_dir.name,
        "ingest": {"files": [f.name for f in files], "pages": pages, "seconds": round(ingest_s, 1),
                   "pages_per_s": round(pages / ingest_s, 1) if ingest_s else None, "plan": report.get("plan")},
        "model_load_s": round(load_s, 1), "answers": [],
    }  # fmt: skip
    with TestClient(app, base_url="http://127.0.0.1") as client:
        health = client.get("/api/health").json()
        result["health"] = {k: health.get(k) for k in ("mode", "model", "embedding", "documents")}
        print("health", json.dumps(result["health"], ensure_ascii=False), flush=True)
        ask_streamed(client, QUESTIONS[0][1], "stuff", args.k)  # warm-up: retrieval, prefix cache
        for file, question, evidence in QUESTIONS:
            for strategy in STRATEGIES:
                reply = ask_streamed(client, question, strategy, args.k)
                row = {"file": file, "question": question, "evidence_pages": evidence, "strategy": strategy,
                       "first_token_s": reply["first_token_s"], "total_s": reply["total_s"], "error": reply["error"],
                       **checked(reply["done"], file, evidence)}  # fmt: skip
                result["answers"].append(row)
                print(json.dumps(row, ensure_ascii=False), flush=True)
                save(result, args.name, cuda)
    save(result, args.name, cuda)
    print(json.dumps(result["summary"]), flush=True)


def save(result: dict, name: str, cuda: bool) -> None:
    """Memory, a summary and the file, after every answer: a run cut short by a time limit keeps what it has."""
    result["gpu_memory_gib"] = (
        {}
        if not cuda
        else {
            "allocated_now": round(torch.cuda.memory_allocated() / GIB, 2),
            "peak_allocated_while_answering": round(torch.cuda.max_memory_allocated() / GIB, 2),
            "reserved": round(torch.cuda.memory_reserved() / GIB, 2),
        }
    )
    rows = result["answers"]
    result["summary"] = {
        "answers": len(rows), "errors": sum(1 for r in rows if r["error"] or "answer" not in r),
        "with_citations": sum(1 for r in rows if r.get("cited")),
        "invalid_citations": sum(len(r.get("invalid_citations", [])) for r in rows),
        "evidence_page_cited": sum(1 for r in rows if r.get("evidence_page_cited")),
        "evidence_page_retrieved": sum(1 for r in rows if r.get("evidence_page_retrieved")),
        "median_first_token_s": sorted(r["first_token_s"] or 0 for r in rows)[len(rows) // 2] if rows else None,
        "median_total_s": sorted(r["total_s"] for r in rows)[len(rows) // 2] if rows else None,
    }  # fmt: skip
    path = write_result(name, result)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], path.name).write_bytes(path.read_bytes())


if __name__ == "__main__":
    main()
