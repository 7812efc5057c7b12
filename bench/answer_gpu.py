"""The answering path on a GPU with a random-weight model of a real 7B architecture (Qwen2.5-7B).

Builds the model (random bf16 weights) in a directory, loads it in 4-bit through
rag_app's normal loading code, then measures: load time, memory, first-token
latency and decode tokens/s for stuff with k=4, and the map step of map_reduce
with k=8 batched against 8 sequential calls; finally answers once with every strategy.

    python -m bench.answer_gpu --model-dir /tmp/qwen7b-random
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from tiny_lm import QWEN25_7B, build_random_lm, sample_texts  # noqa: E402

from bench.common import write_result  # noqa: E402
from rag_app.answering.events import Source, TokenEvent  # noqa: E402
from rag_app.answering.strategies import STRATEGIES  # noqa: E402
from rag_app.answering.strategy_context import MAP_MAX_TOKENS, StrategyContext  # noqa: E402
from rag_app.llm.backend import ChatBackend  # noqa: E402
from rag_app.llm.chat_models import LocalChatModel  # noqa: E402
from rag_app.llm.local import load_local_model  # noqa: E402
from rag_app.prompts import load_prompts  # noqa: E402
from rag_app.records import SearchHit  # noqa: E402

GIB = 1024**3
CHUNK_TOKENS = 300


def chunk_texts(tokenizer, count: int) -> list[str]:
    """``count`` different chunks of about CHUNK_TOKENS tokens of report-like text."""
    words = " ".join(sample_texts()[:4]).split()
    chunks = []
    for i in range(count):
        rotated = words[i * 7 :] + words[: i * 7]
        text = " ".join(rotated * 4)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:CHUNK_TOKENS]
        chunks.append(tokenizer.decode(ids))
    return chunks


def context(local, texts: list[str], max_new: int) -> StrategyContext:
    backend = ChatBackend(LocalChatModel(local=local, max_tokens=max_new), local.info, local.count_tokens)
    sources = [Source(n, SearchHit("report.pdf", n, 0, t, 0.5, "sha", f"id{n}")) for n, t in enumerate(texts, 1)]
    return StrategyContext("What drove the change in gross margin?", sources, backend, load_prompts("en"), max_new, 0.0)


def measure_stuff(local, texts: list[str], max_new: int) -> dict:
    from rag_app.answering.strategies.stuff import stuff_messages

    ctx = context(local, texts, max_new)
    messages = stuff_messages(ctx, ctx.sources)
    list(ctx.stream(messages))  # warm-up: kernels, allocator
    ctx = context(local, texts, max_new)
    torch.cuda.synchronize()
    started = time.perf_counter()
    first = None
    for event in ctx.stream(messages):
        if first is None and isinstance(event, TokenEvent):
            first = time.perf_counter() - started
    total = time.perf_counter() - started
    tokens = ctx.tally.completion
    torch.cuda.synchronize()
    plain = time.perf_counter()
    [(_, usage)] = local.generate_batch([messages], max_new)
    plain = time.perf_counter() - plain
    return {
        "same_prompt_without_streaming_s": round(plain, 2),
        "same_prompt_without_streaming_tokens": usage.completion_tokens,
        "prompt_tokens": ctx.tally.prompt,
        "completion_tokens": tokens,
        "first_token_ms": round(first * 1000, 1),
        "total_s": round(total, 2),
        "decode_tokens_per_s": round((tokens - 1) / (total - first), 1),
    }


def measure_map_step(local, texts: list[str]) -> dict:
    ctx = context(local, texts, MAP_MAX_TOKENS)
    conversations = [ctx.messages("map", source=f"[{s.n}]", context=s.hit.text) for s in ctx.sources]
    local.generate_batch(conversations[:2], 8)  # warm-up
    timings = {}
    for label, run in [
        ("batched_s", lambda: local.generate_batch(conversations, 64)),
        ("sequential_s", lambda: [local.generate_batch([c], 64) for c in conversations]),
        ("single_call_s", lambda: local.generate_batch(conversations[:1], 64)),
    ]:
        torch.cuda.synchronize()
        started = time.perf_counter()
        run()
        torch.cuda.synchronize()
        timings[label] = round(time.perf_counter() - started, 2)
    timings["speedup_batched_vs_sequential"] = round(timings["sequential_s"] / timings["batched_s"], 2)
    timings["batched_vs_one_call"] = round(timings["batched_s"] / timings["single_call_s"], 2)
    return timings


def every_strategy(local, texts: list[str]) -> dict:
    answers = {}
    for name in ["stuff", "map_reduce", "refine", "map_rerank"]:
        ctx = context(local, texts[:4], 32)
        started = time.perf_counter()
        text = "".join(e.text for e in STRATEGIES[name](ctx) if isinstance(e, TokenEvent))
        answers[name] = {
            "seconds": round(time.perf_counter() - started, 2),
            "answer_chars": len(text),
            "tokens": ctx.tally.completion,
        }
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/qwen25-7b-random"))
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args()
    if not (args.model_dir / "config.json").exists():
        started = time.perf_counter()
        build_random_lm(args.model_dir, sample_texts(), QWEN25_7B, device="cuda")
        torch.cuda.empty_cache()
        print(f"built random Qwen2.5-7B-shaped model in {time.perf_counter() - started:.0f} s", flush=True)
    torch.cuda.reset_peak_memory_stats()
    local = load_local_model(str(args.model_dir), quantization="4bit", device="cuda", context_window=8192)
    weights = torch.cuda.memory_allocated() / GIB
    print(f"loaded in {local.info.load_seconds} s; weights {weights:.2f} GiB; plan {local.info.memory}", flush=True)
    texts = chunk_texts(local.tokenizer, 8)
    result = {
        "model": "Qwen2.5-7B architecture, random weights, bitsandbytes nf4 (double quant, bf16 compute)",
        "gpu": torch.cuda.get_device_name(0),
        "load_seconds": local.info.load_seconds,
        "memory_gib": {"weights_allocated": round(weights, 2), **local.info.memory},
        "stuff_k4": measure_stuff(local, texts[:4], args.max_new_tokens),
        "map_step_k8": measure_map_step(local, texts),
        "strategies": every_strategy(local, texts),
    }
    result["memory_gib"]["peak_allocated"] = round(torch.cuda.max_memory_allocated() / GIB, 2)
    print(json.dumps(result, indent=2))
    path = write_result("answer-gpu-7b", result)
    out = os.environ.get("OUT")
    if out:
        Path(out, path.name).write_text(path.read_text())


if __name__ == "__main__":
    main()
