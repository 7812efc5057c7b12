"""Issue 11 on a GPU: the fast path's compiled, CUDA-graph-replayed decode step against the eager
step and the reference, with the capture as it was and as fixed, teacher-forced.

A model of tests/test_gpu.py's SMALL shape is trained until its next-token distribution is peaked
(so that top-1 agreement means something), loaded into the fast path with int4 weights, and run as
  eager          FastEngine(compile_decode=False)
  compiled-old   the compiled engine with the capture of issue 11 (the attention span is a tensor
                 made in ``_capture`` and freed when it returns; the self-check's fallback disabled)
  compiled       the compiled engine as fixed (spans owned by the engine for the graphs' lifetime)
Three prompts, N greedy tokens each, batched and one at a time; every generated token is compared
with the argmax of the reference (transformers, the same int4/int8 weights dequantized, float32)
on the same prefix. For compiled-old it also reads, after generating, what the memory the graphs
take as their span holds. Prints a table; writes fastgen-repro.json to $OUT (or bench/results).

    python -m bench.fastgen_repro [--tokens 48] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_fastgen import reference_model, train_peaked_lm  # noqa: E402
from tiny_lm import sample_texts  # noqa: E402

from rag_app.fastgen.engine import FastEngine  # noqa: E402
from rag_app.fastgen.loading import build_fast_transformer  # noqa: E402

SMALL = {
    "hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 4, "num_attention_heads": 8,
    "num_key_value_heads": 2, "max_position_embeddings": 8192, "vocab_size": 32000, "tie_word_embeddings": False,
}  # fmt: skip
PROMPTS = ["Revenue for the third quarter of 2023 was", "Gross margin was", "The board approved"]
SPAN_ADDRESSES: dict[tuple[int, int], int] = {}  # (size, window) -> address the old capture's graph reads


def capture_issue11(self, compiled, size: int, window: int, pool):
    """FastEngine._capture before the fix: ``span`` is local, so freed when this returns."""
    buffers = self._buffers(size)
    span = torch.arange(window, device=self.device)
    SPAN_ADDRESSES[(size, window)] = span.data_ptr()
    torch._dynamo.mark_dynamic(span, 0)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            self._decode_step(compiled, buffers, span)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        self._decode_step(compiled, buffers, span)
    self._graph_logits[(size, window)] = buffers["logits"]
    return graph


def teacher_forced(reference, prompt: list[int], generated: list[int], device) -> dict:
    """Share of generated tokens equal to the reference's argmax on the same prefix; first miss."""
    ids = torch.tensor([prompt + generated], device=device)
    with torch.inference_mode():
        logits = reference(ids).logits[0, len(prompt) - 1 : -1].float()
    want = logits.argmax(-1).tolist()
    hits = [a == b for a, b in zip(want, generated, strict=True)]
    first_miss = next((i for i, h in enumerate(hits) if not h), None)
    return {
        "agreement": round(sum(hits) / len(hits), 3),
        "first_miss": first_miss,
        "got": generated[:6],
        "want": want[:6],
    }


def run_variant(name: str, fast, reference, tokenizer, new_tokens: int, device) -> dict:
    old = name == "compiled-old"
    saved = FastEngine._capture, FastEngine._drop_compiled
    if old:
        FastEngine._capture = capture_issue11
        FastEngine._drop_compiled = lambda self: None  # keep the graphs: show what they answer
    compiler = None if device.type == "cuda" else (lambda decode: decode)  # CPU dry run: no graphs
    groups: list[int] = []
    try:
        engine = FastEngine(fast, slots=4, context=512, compile_decode=name != "eager", decode_compiler=compiler)
        original = engine._prefill_group
        engine._prefill_group = lambda prefix, group: (groups.append(len(group)), original(prefix, group))[1]
        started = time.perf_counter()
        engine.warmup()
        warm_s = time.perf_counter() - started
        groups.clear()
        prompts = [tokenizer(p)["input_ids"] for p in PROMPTS]
        batched = engine.generate(prompts, new_tokens)
        batched_groups = list(groups)
        alone = [engine.generate([p], new_tokens)[0] for p in prompts]
        result = {
            "warmup_s": round(warm_s, 1),
            "self_check": engine.check.to_dict(),
            "prefill_groups_batched": batched_groups,
            "batched": [teacher_forced(reference, p, g, device) for p, g in zip(prompts, batched, strict=True)],
            "alone": [teacher_forced(reference, p, g, device) for p, g in zip(prompts, alone, strict=True)],
        }
        if old:
            result["span_memory_after_generation"] = read_spans()
        engine.close()
        return result
    finally:
        FastEngine._capture, FastEngine._drop_compiled = saved


def read_spans() -> dict:
    """What the addresses the old graphs read as arange(W) hold now (via CuPy, which can read a raw pointer)."""
    try:
        return _read_spans()
    except Exception as exc:  # noqa: BLE001 - evidence only: never lose the rest of the run
        return {"error": f"{type(exc).__name__}: {exc}"}


def _read_spans() -> dict:
    import cupy

    out = {}
    for (size, window), address in SPAN_ADDRESSES.items():
        memory = cupy.cuda.UnownedMemory(address, window * 8, owner=None)
        values = cupy.ndarray((window,), dtype=cupy.int64, memptr=cupy.cuda.MemoryPointer(memory, 0)).get()
        expected = list(range(window))
        out[f"size{size}_window{window}"] = {
            "still_arange": values.tolist() == expected,
            "wrong_entries": int(sum(int(v) != i for i, v in enumerate(values.tolist()))),
            "first_values": values[:8].tolist(),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--steps", type=int, default=300, help="training steps of the SMALL model")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--variants", default="eager,compiled,compiled-old")
    args = parser.parse_args()
    device = torch.device(args.device)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = Path(tempfile.mkdtemp(prefix="small-peaked-"))
    shape = SMALL if device.type == "cuda" else {**SMALL, "hidden_size": 128, "intermediate_size": 256}
    loss = train_peaked_lm(directory, sample_texts(), steps=args.steps, device=args.device, shape=shape)
    print(f"trained {directory} to loss {loss:.3f}", flush=True)
    config = AutoModelForCausalLM.from_pretrained(directory).config
    tokenizer = AutoTokenizer.from_pretrained(directory)
    reference = reference_model(directory, head_int8=device.type == "cuda").to(device)
    results = {"train_loss": round(loss, 3), "tokens": args.tokens, "device": str(device), "variants": {}}
    for name in args.variants.split(","):
        fast = build_fast_transformer(directory, config, "4bit", args.device)
        results["variants"][name] = run_variant(name, fast, reference, tokenizer, args.tokens, device)
        print(name, json.dumps(results["variants"][name]), flush=True)
        del fast
    print(table(results))
    out = Path(os.environ.get("OUT") or Path(__file__).parent / "results")
    (out / "fastgen-repro.json").write_text(json.dumps(results, indent=2) + "\n")


def table(results: dict) -> str:
    rows = [
        "| engine | self-check | batched: agreement per prompt (first miss) | alone: agreement per prompt (first miss) |"
    ]
    rows.append("|---|---|---|---|")
    for name, r in results["variants"].items():

        def cells(runs):
            return ", ".join(f"{x['agreement']:.2f} ({x['first_miss']})" for x in runs)

        check = r["self_check"]
        rows.append(
            f"| {name} | {check['verdict']} {check['max_abs_diff']} | {cells(r['batched'])} | {cells(r['alone'])} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
