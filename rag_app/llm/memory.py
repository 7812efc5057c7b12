"""Will the model fit? Estimate weights and KV cache before loading, refuse clearly if not."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rag_app.errors import RagError

log = logging.getLogger(__name__)
GIB = 1024**3
# Bytes per parameter of quantized linear layers: nf4 packs two weights per byte
# plus a bf16 scale per 64 weights, double-quantized (~0.127 bits each).
LINEAR_BYTES = {"4bit": 0.5 + 0.127 / 8, "8bit": 1.0 + 4 / 64}
OVERHEAD = 1.10  # activations, allocator slack
CUDA_CONTEXT_BYTES = 0.6 * GIB


class InsufficientMemoryError(RagError):
    """The model would not fit; the message names the setting to change."""


@dataclass
class MemoryEstimate:
    weights_bytes: float
    kv_cache_bytes: float

    @property
    def total_bytes(self) -> float:
        return (self.weights_bytes + self.kv_cache_bytes) * OVERHEAD

    def as_gib(self) -> dict[str, float]:
        return {
            "weights": round(self.weights_bytes / GIB, 2),
            "kv_cache": round(self.kv_cache_bytes / GIB, 2),
            "total_planned": round(self.total_bytes / GIB, 2),
        }


def count_parameters(config) -> tuple[int, int]:
    """(parameters in quantizable Linear layers, all other parameters) without allocating weights."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    remote = bool(getattr(config, "auto_map", None))  # its config came from its own code: so does the model
    try:
        with init_empty_weights():
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=remote)
    except ValueError as exc:  # an architecture transformers cannot build as a causal LM
        from rag_app.llm.backend import ModelUnavailableError

        raise ModelUnavailableError(f"not a causal language model transformers can load: {str(exc)[:200]}") from exc
    output = model.get_output_embeddings()
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not output)
    total = sum(p.numel() for p in model.parameters())
    return linear, total - linear


def kv_cache_bytes(config, context_window: int, batch: int = 1, bytes_per_value: int = 2) -> float:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = text.num_hidden_layers
    heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    return 2.0 * layers * heads * head_dim * context_window * batch * bytes_per_value


def estimate(
    config, quantization: str, dtype_bytes: int, context_window: int, counts: tuple[int, int] | None = None
) -> MemoryEstimate:
    """Weights and KV cache in bytes; ``counts``: count_parameters(config), when the caller has it already."""
    linear, other = counts or count_parameters(config)
    per_linear = LINEAR_BYTES.get(quantization, dtype_bytes)
    weights = linear * per_linear + other * dtype_bytes
    return MemoryEstimate(weights, kv_cache_bytes(config, context_window, bytes_per_value=min(dtype_bytes, 2)))


def available_bytes(device: str) -> float:
    """Free memory where the model will live: the GPU's, or the machine's available RAM."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info()
        return float(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


def check_fits(
    estimate_: MemoryEstimate, device: str, model: str, quantization: str, context_window: int, hint: str = ""
) -> None:
    """Raise InsufficientMemoryError naming the setting to change (``hint``, or one chosen here)."""
    need = estimate_.total_bytes + (CUDA_CONTEXT_BYTES if device.startswith("cuda") else 0)
    have = available_bytes(device)
    log.info("memory plan for %s: %s GiB planned, %.1f GiB free on %s", model, estimate_.as_gib(), have / GIB, device)
    if need > have:
        hint = hint or (
            "RAG_LLM_QUANTIZATION=4bit"
            if quantization not in ("4bit",) and device.startswith("cuda")
            else "a smaller RAG_LLM_MODEL"
        )
        raise InsufficientMemoryError(
            f"{model} needs about {need / GIB:.1f} GiB on {device} (weights {estimate_.weights_bytes / GIB:.1f} GiB, "
            f"KV cache for {context_window} tokens {estimate_.kv_cache_bytes / GIB:.1f} GiB) but only "
            f"{have / GIB:.1f} GiB is free: set {hint}, or a smaller RAG_LLM_CONTEXT_WINDOW"
        )
