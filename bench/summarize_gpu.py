"""Summarizing a 100-page filing on a GPU: the fast path against transformers, Qwen2.5-7B shape.

A random-weight model of Qwen2.5-7B's architecture (speed does not depend on weight values),
every generation forced to its full length (no end-of-sequence stop), so both paths do the
same work: the same map inputs, the same partial-summary lengths, the same rounds. The pages
come from a JSON file (``--prepare`` writes it here from a real filing; the GPU machine has
no PDF parser, and this script imports none, nor chromadb). For each path: seconds, first-token
latency, model calls, batches and rounds, beside the checks that prove the run did what it
claims: every page read in exactly one map prompt, no call over the context window, reduce
rounds = ceil(log_fan_in(parts)).

    python -m bench.summarize_gpu --prepare                 # here: bench/data/3M_2018_10K-100pages.json.gz
    python -m bench.summarize_gpu                           # on the GPU: builds /tmp/qwen25-7b-random if missing
    python -m bench.summarize_gpu --tiny --pages 8          # a tiny random model on CPU, end to end
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from tiny_lm import QWEN25_7B, TINY, build_random_lm  # noqa: E402

from bench.common import CORPUS, RESULTS, ROOT, git_commit, machine  # noqa: E402

DATA = ROOT / "bench" / "data" / "3M_2018_10K-100pages.json.gz"
FILING = CORPUS / "qa" / "financebench_dev" / "pdfs" / "3M_2018_10K.pdf"
FORBIDDEN = ("chromadb", "pypdf", "pypdfium2")


def never_stop(local) -> None:
    """Fixed-length generation: no end-of-sequence token ends a measurement early."""
    generator = local.generator
    if hasattr(generator, "stop_ids"):
        generator.stop_ids = set()
    else:
        generator.model.generation_config.eos_token_id = None


def prepare(pages: int) -> Path:
    """Write the cleaned text of the filing's first ``pages`` pages (needs the PDF parser: run it here)."""
    from rag_app.ingestion.loaders import load_document

    document = load_document(FILING)
    data = {"file": FILING.name, "pages": [{"page": p.number, "text": p.text} for p in document.pages[:pages]]}
    DATA.parent.mkdir(parents=True, exist_ok=True)
    DATA.write_bytes(gzip.compress(json.dumps(data, ensure_ascii=False).encode("utf-8"), mtime=0))
    return DATA


def read_pages(limit: int | None) -> tuple[str, list[tuple[str, int, str]]]:
    data = json.loads(gzip.decompress(DATA.read_bytes()))
    pages = [(data["file"], p["page"], p["text"]) for p in data["pages"]][:limit]
    return data["file"], pages


def build_model(directory: Path, texts: list[str], tiny: bool, device: str) -> Path:
    if (directory / "config.json").exists():
        return directory
    started = time.perf_counter()
    build_random_lm(directory, texts, TINY if tiny else QWEN25_7B, device=device)
    print(f"built the random model in {time.perf_counter() - started:.0f} s", flush=True)
    return directory


class Recorder:
    """Wraps a LocalModel's generate_batch and stream: every prompt's tokens plus its answer budget."""

    def __init__(self, local) -> None:
        self.local, self.prompts, self.totals = local, [], []
        batch, stream = local.generate_batch, local.stream

        def generate_batch(conversations, max_new_tokens, temperature=0.0):
            self._record(conversations, max_new_tokens)
            return batch(conversations, max_new_tokens, temperature)

        def stream_(messages, max_new_tokens, temperature=0.0):
            self._record([messages], max_new_tokens)
            return stream(messages, max_new_tokens, temperature)

        local.generate_batch, local.stream = generate_batch, stream_

    def _record(self, conversations, max_new_tokens: int) -> None:
        for messages in conversations:
            self.prompts.append(str(messages[-1].content))
            self.totals.append(self.local.count_tokens(messages) + max_new_tokens)


def pages_read_once(prompts: list[str], pages) -> int:
    """Pages whose whole text the map prompts hold exactly once (a cut page: its pieces in order)."""
    import re

    pieces: dict[int, list[str]] = {}
    for prompt in prompts:
        if not prompt.startswith("Pages of the document"):
            continue
        body = prompt.split("\n", 1)[1].rsplit("\n\nSummarize these pages", 1)[0]
        parts = re.split(r"(?m)^\[(\d+)\]\n", body)
        for label, text in zip(parts[1::2], parts[2::2], strict=True):
            pieces.setdefault(int(label), []).append(text)
    squash = lambda text: re.sub(r"\s+", "", text)  # noqa: E731 - pieces were cut and joined at whitespace
    return sum(1 for _, n, text in pages if squash("".join(pieces.get(n, []))) == squash(text))


def summarize_once(local, file: str, pages, window: int, max_words: int, slots: int) -> dict:
    from rag_app.answering.events import TokenEvent
    from rag_app.llm.backend import ChatBackend
    from rag_app.llm.chat_models import LocalChatModel
    from rag_app.requests import SummaryRequest
    from rag_app.settings import Settings
    from rag_app.summaries.recursive import reduce_rounds
    from rag_app.summaries.summarizer import Summarizer, SummaryDoneEvent, label_pages

    recorder = Recorder(local)
    backend = ChatBackend(LocalChatModel(local=local), local.info, local.count_tokens)
    summarizer = Summarizer(backend, Settings(_env_file=None, llm_batch_slots=slots))
    request = SummaryRequest(files=[file], language="en", max_words=max_words)
    started = time.perf_counter()
    first, summary = None, None
    for event in summarizer.run(request, label_pages(pages, {})):
        if isinstance(event, TokenEvent) and first is None:
            first = time.perf_counter() - started
        if isinstance(event, SummaryDoneEvent):
            summary = event.summary
    seconds = time.perf_counter() - started
    stats = summary.stats
    read_once = pages_read_once(recorder.prompts, pages)
    return {
        "seconds": round(seconds, 1),
        "first_token_s": round(first or seconds, 1),
        "pages": stats.pages,
        "parts": stats.parts,
        "fan_in": stats.fan_in,
        "rounds": stats.rounds,
        "round_sizes": stats.round_sizes,
        "calls": stats.calls,
        "batches": stats.batches,
        "tokens": summary.tokens,
        "summary_chars": len(summary.summary),
        "checks": {
            "pages_read_once": f"{read_once}/{len(pages)}",
            "largest_call_tokens": max(recorder.totals),
            "context_window": window,
            "no_call_over_the_window": max(recorder.totals) <= window,
            "rounds_as_designed": stats.rounds == reduce_rounds(stats.parts, stats.fan_in),
            "calls_recorded": len(recorder.totals) == stats.calls,
        },
    }


def run_path(model_dir: Path, path: dict, device: str, window: int, slots: int, file, pages, max_words) -> dict:
    import torch

    from rag_app.llm.local import load_local_model

    started = time.perf_counter()
    try:
        local = load_local_model(
            str(model_dir), path["quantization"], device, context_window=window, engine=path["engine"], slots=slots
        )
    except Exception as exc:  # noqa: BLE001 - a path that cannot run here is reported, the others still run
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    never_stop(local)
    local.generate_batch([[_hello()]], 4)  # warm-up: kernels, allocator
    result = {"engine": local.info.engine, "load_s": round(time.perf_counter() - started, 1)}
    result.update(summarize_once(local, file, pages, window, max_words, slots))
    if device.startswith("cuda"):
        result["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 2)
    del local
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return result


def _hello():
    from langchain_core.messages import HumanMessage

    return HumanMessage("Hello")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare", action="store_true", help=f"write {DATA.relative_to(ROOT)} from the filing")
    parser.add_argument("--tiny", action="store_true", help="a tiny random model (CPU is fine), not the 7B shape")
    parser.add_argument("--pages", type=int, default=100, help="pages of the filing to summarize (default: 100)")
    parser.add_argument("--model-dir", type=Path, default=None, help="random model directory (built if missing)")
    parser.add_argument(
        "--context-window", type=int, default=None, help="tokens per call (default: 8192; --tiny: 2048)"
    )
    parser.add_argument(
        "--paths", default="fast,transformers",
        help="paths to run (default: fast,transformers); a later run with the other path merges into the same file",
    )  # fmt: skip
    parser.add_argument("--slots", type=int, default=8, help="prompts per batched call / fast-path slots")
    parser.add_argument("--max-words", type=int, default=400)
    parser.add_argument("--out", type=Path, default=None, help="result folder (default: bench/results; --tiny: $OUT)")
    args = parser.parse_args()
    if args.prepare:
        print(f"wrote {prepare(args.pages)}")
        return
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    file, pages = read_pages(args.pages)
    model_dir = args.model_dir or Path("/tmp/summarize-tiny-random" if args.tiny else "/tmp/qwen25-7b-random")
    build_model(model_dir, [text for _, _, text in pages], args.tiny, device)
    quant = "4bit" if device == "cuda" else "none"
    window = args.context_window or (2048 if args.tiny else 8192)
    result = {
        "model": ("tiny random Qwen2" if args.tiny else "Qwen2.5-7B architecture, random weights") + f", {quant}",
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "document": f"{file}, first {len(pages)} pages ({sum(len(t) for _, _, t in pages)} characters)",
        "context_window": window,
        "max_words": args.max_words,
        "generation": "every call generates its full token budget (no end-of-sequence stop)",
        "paths": _earlier_paths(args, window, len(pages)),
    }
    for name in args.paths.split(","):
        print(f"summarizing with the {name} path…", flush=True)
        path = {"quantization": quant, "engine": name}
        result["paths"][name] = run_path(model_dir, path, device, window, args.slots, file, pages, args.max_words)
        print(json.dumps(result["paths"][name]), flush=True)
    fast, slow = result["paths"].get("fast", {}), result["paths"].get("transformers", {})
    if "seconds" in fast and "seconds" in slow:
        result["speedup_fast_vs_transformers"] = round(slow["seconds"] / fast["seconds"], 2)
        result["same_plan"] = all(fast[k] == slow[k] for k in ("parts", "fan_in", "rounds", "calls"))
    result["forbidden_modules_loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
    print(json.dumps(result, indent=2), flush=True)
    _write(result, args)


def _result_path(args) -> Path:
    name = "summarize-tiny" if args.tiny else "summarize-h200"
    out = args.out or (Path(os.environ.get("OUT") or "/tmp") if args.tiny else RESULTS)
    return out / f"{name}.json"


def _earlier_paths(args, window: int, pages: int) -> dict:
    """Paths measured by an earlier run of the same setup (``--paths fast`` then ``--paths transformers``)."""
    path = _result_path(args)
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text(encoding="utf-8"))
    same = earlier.get("context_window") == window and f"first {pages} pages" in earlier.get("document", "")
    return {k: v for k, v in earlier.get("paths", {}).items() if same and k not in args.paths.split(",")}


def _write(result: dict, args) -> None:
    """The result with where and when it was measured; a copy in $OUT, which the device tool brings back."""
    path = _result_path(args)
    payload = {"name": path.stem, "date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": git_commit()}
    payload |= {"machine": machine(), **result}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if os.environ.get("OUT") and path.parent != Path(os.environ["OUT"]):
        Path(os.environ["OUT"], path.name).write_text(path.read_text())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
