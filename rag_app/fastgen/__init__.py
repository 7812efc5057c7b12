"""The fast local generation path: int4 (gemlite) or bf16 weights, static KV cache, CUDA graphs,
continuous batching. Used automatically on supported NVIDIA GPUs; everything else
falls back to transformers' ``generate`` (bitsandbytes for 4/8-bit) with the reason logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

from rag_app.fastgen.model import UnsupportedModelError

log = logging.getLogger(__name__)
MIN_CAPABILITY = (8, 0)  # gemlite's Triton kernels and bf16 tensor cores

__all__ = ["UnsupportedModelError", "fast_path_blocker", "FastGenerator", "build_fast_generator"]


def fast_path_blocker(device: str, quantization: str, autotune: bool = False) -> str | None:
    """Why the fast path cannot run here, or None when it can."""
    if not device.startswith("cuda"):
        return "the fast path needs an NVIDIA GPU (running on CPU)"
    import torch

    capability = torch.cuda.get_device_capability(device)
    if capability < MIN_CAPABILITY:
        return f"the fast path needs compute capability 8.0+ (this GPU has {capability[0]}.{capability[1]})"
    if quantization == "8bit":
        return "8-bit weights run on bitsandbytes (the fast path is 4-bit or bf16)"
    if quantization == "4bit":
        try:
            prepare_gemlite(capability, autotune)
        except Exception as exc:  # noqa: BLE001 - ImportError, or triton failing to initialise
            return f"gemlite is not usable ({type(exc).__name__}: {exc}); pip install -r requirements-gpu.txt"
    return None


def prepare_gemlite(capability: tuple[int, int], autotune: bool = False) -> None:
    """Import gemlite; on a Hopper GPU it ships no tuned kernel configs for (H200), use its H100 ones
    (same SM 9.0 chip) instead of autotuning every shape at first use (``autotune``: RAG_GEMLITE_AUTOTUNE)."""
    import os

    import gemlite
    from gemlite.core import GemLiteLinearTriton, get_default_cache_config

    if autotune:  # search kernel configs on this GPU at first use
        gemlite.set_autotune("max")
        return
    if get_default_cache_config() is None and capability == (9, 0):
        h100 = os.path.join(os.path.dirname(gemlite.__file__), "configs", "h100.json")
        if os.path.exists(h100) and GemLiteLinearTriton.load_config(h100):
            log.info("gemlite: using its H100 kernel configs on this SM 9.0 GPU")


class FastGenerator:
    """Streaming and batched generation through a FastEngine, in text."""

    def __init__(self, engine, tokenizer) -> None:
        self.engine = engine
        self.tokenizer = tokenizer
        self.stop_ids = {t for t in (tokenizer.eos_token_id, tokenizer.pad_token_id) if t is not None}

    def stream(self, prompt_ids: list[int], max_new_tokens: int, temperature: float) -> Iterator[str | tuple[int, int]]:
        """Text pieces as tokens arrive, then (prompt_tokens, completion_tokens). Closing it cancels."""
        request = self.engine.submit(prompt_ids, max_new_tokens, temperature, self.stop_ids)
        tokens: list[int] = []
        printed = ""
        try:
            for token in request:
                tokens.append(token)
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                if text.endswith("\ufffd") or not text.startswith(printed):
                    continue  # half of a multi-byte character, or a prefix that re-decoded differently
                if len(text) > len(printed):
                    yield text[len(printed) :]
                    printed = text
            final = self.tokenizer.decode(tokens, skip_special_tokens=True)
            if final.startswith(printed) and len(final) > len(printed):
                yield final[len(printed) :]
            yield (len(prompt_ids), request.generated)
        finally:
            request.cancel()

    def generate_batch(
        self, prompts: Sequence[list[int]], max_new_tokens: int, temperature: float
    ) -> list[tuple[str, int, int]]:
        """All prompts submitted together: they are prefilled and decoded in the same steps."""
        requests = [self.engine.submit(p, max_new_tokens, temperature, self.stop_ids) for p in prompts]
        results = []
        for prompt, request in zip(prompts, requests, strict=True):
            ids = list(request)
            results.append((self.tokenizer.decode(ids, skip_special_tokens=True).strip(), len(prompt), len(ids)))
        return results


def build_fast_generator(
    directory, config, tokenizer, quantization: str, device: str, adapter, context: int, slots: int
):
    """Load, quantize and warm up the fast path; returns (FastGenerator, seconds to compile)."""
    from rag_app.fastgen.engine import FastEngine
    from rag_app.fastgen.loading import build_fast_transformer

    started = time.perf_counter()
    model = build_fast_transformer(directory, config, quantization, device, adapter)
    log.info("fast path: %s weights built in %.1f s", quantization, time.perf_counter() - started)
    engine = FastEngine(model, slots=slots, context=context, pad_id=tokenizer.pad_token_id or 0)
    compile_s = engine.warmup()
    return FastGenerator(engine, tokenizer), compile_s
