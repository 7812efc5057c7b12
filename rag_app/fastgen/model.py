"""A compact decoder for the Llama / Qwen2 / Mistral family with a static KV cache of slots.

The same math as transformers' implementations (RMSNorm in float32, rotate-half
RoPE, grouped-query attention, SwiGLU), arranged for fast inference: q/k/v and
gate/up are fused into one linear each, every shape is static, and the cache
holds ``slots`` independent sequences so several requests decode in one step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED_TYPES = ("qwen2", "llama", "mistral")
# Attention of a decode step (one query row per slot): "math", two batched matmuls and a float32 softmax that the
# compiled step fuses with its neighbours, or "sdpa", PyTorch's fused attention, which on an H200 runs cuDNN's flash
# kernel built for prefill tiles (16 x 128) on that one row. SmolLM2-135M's real weights in bf16 on an H200: 8 chats
# 3,657 -> 4,373 tok/s (3.83x -> 4.85x one stream), one stream 956 -> 901 tok/s, agreement with float32 outside ties
# 0.992-0.996 (bench/results/real-weights-h200-{int4,math-attention}.json).
DECODE_ATTENTION = "math"


class UnsupportedModelError(Exception):
    """The fast path cannot run this model; the message says why (the reference path is used)."""


@dataclass(frozen=True)
class ArchSpec:
    vocab_size: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    rope_theta: float
    rms_eps: float
    qkv_bias: bool
    tie_embeddings: bool

    @classmethod
    def from_hf(cls, config) -> ArchSpec:
        kind = getattr(config, "model_type", "")
        if kind not in SUPPORTED_TYPES:
            raise UnsupportedModelError(f"architecture {kind!r} (the fast path supports {', '.join(SUPPORTED_TYPES)})")
        scaling = getattr(config, "rope_scaling", None) or {}
        if scaling and scaling.get("rope_type", scaling.get("type")) not in (None, "default"):
            raise UnsupportedModelError(f"RoPE scaling {scaling.get('rope_type', scaling.get('type'))!r}")
        if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", False):
            raise UnsupportedModelError("sliding-window attention")
        heads = config.num_attention_heads
        return cls(
            vocab_size=config.vocab_size,
            hidden=config.hidden_size,
            intermediate=config.intermediate_size,
            layers=config.num_hidden_layers,
            heads=heads,
            kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
            rope_theta=float(_rope_theta(config)),
            rms_eps=float(config.rms_norm_eps),
            qkv_bias=kind == "qwen2" or bool(getattr(config, "attention_bias", False)),
            tie_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        )


def _rope_theta(config) -> float:
    theta = getattr(config, "rope_theta", None)
    if theta is None:  # transformers 5 keeps it in rope_parameters
        theta = (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    return theta


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, spec: ArchSpec, qkv: nn.Module, out: nn.Module) -> None:
        super().__init__()
        self.spec = spec
        self.qkv, self.out = qkv, out
        self.q_size, self.kv_size = spec.heads * spec.head_dim, spec.kv_heads * spec.head_dim

    def project(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """q [B, H, T, D] and k, v [B, KVH, T, D] with RoPE applied to q and k."""
        b, t, _ = x.shape
        s = self.spec
        q, k, v = self.qkv(x).split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q = q.view(b, t, s.heads, s.head_dim).transpose(1, 2)
        k = k.view(b, t, s.kv_heads, s.head_dim).transpose(1, 2)
        v = v.view(b, t, s.kv_heads, s.head_dim).transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin, v

    def attend(self, q, keys, values, mask=None) -> torch.Tensor:
        """Attention over ``keys``; ``mask=None`` means plain causal (flash attention's fast case)."""
        causal = mask is None and q.shape[2] > 1
        if DECODE_ATTENTION == "math" and q.shape[2] == 1 and mask is not None:
            out = decode_attention(q, keys, values, mask)
        else:
            out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, is_causal=causal, enable_gqa=True)
        b, _, t, _ = q.shape
        return self.out(out.transpose(1, 2).reshape(b, t, self.q_size))


def decode_attention(q, keys, values, mask) -> torch.Tensor:
    """One query row per sequence: q [B, H, 1, D] over keys / values [B, KVH, W, D] where ``mask`` [B, 1, 1, W] is
    True; query head h reads kv head h // (H / KVH), as grouped-query attention does. Scores and softmax in float32."""
    b, heads, _, d = q.shape
    kv_heads = keys.shape[1]
    grouped = q.view(b, kv_heads, heads // kv_heads, d)
    scores = torch.matmul(grouped, keys.transpose(-1, -2)).float() * d**-0.5  # [B, KVH, G, W]
    scores = scores.masked_fill(~mask.view(b, 1, 1, -1), float("-inf"))
    out = torch.matmul(scores.softmax(-1).to(values.dtype), values)  # [B, KVH, G, D]
    return out.view(b, heads, 1, d)


class MLP(nn.Module):
    def __init__(self, gate_up: nn.Module, down: nn.Module) -> None:
        super().__init__()
        self.gate_up, self.down = gate_up, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, spec: ArchSpec, attention: Attention, mlp: MLP) -> None:
        super().__init__()
        self.input_norm = RMSNorm(spec.hidden, spec.rms_eps)
        self.post_norm = RMSNorm(spec.hidden, spec.rms_eps)
        self.attention, self.mlp = attention, mlp


class KVCache(nn.Module):
    """Keys and values of ``slots`` sequences of up to ``length`` tokens: one tensor per layer.

    Separate tensors (not one 5-D buffer) let the compiled decode step update
    them in place; writing through a view of one big buffer made the compiler
    copy the whole cache every step.
    """

    def __init__(self, spec: ArchSpec, slots: int, length: int, dtype: torch.dtype, device) -> None:
        super().__init__()
        shape = (slots, spec.kv_heads, length, spec.head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(spec.layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(spec.layers)]
        for i, (k, v) in enumerate(zip(self.k, self.v, strict=True)):
            self.register_buffer(f"k{i}", k, persistent=False)
            self.register_buffer(f"v{i}", v, persistent=False)
        self.slots, self.length = slots, length

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in [*self.k, *self.v])


class FastTransformer(nn.Module):
    """Embedding, blocks, final norm and head; ``decode`` and ``prefill`` run it against the cache."""

    def __init__(
        self, spec: ArchSpec, embed: nn.Embedding, blocks: list[Block], norm: RMSNorm, head: nn.Module
    ) -> None:
        super().__init__()
        self.spec = spec
        self.embed, self.blocks, self.norm, self.head = embed, nn.ModuleList(blocks), norm, head
        self.cache: KVCache | None = None
        self.register_buffer("inv_freq", _inv_freq(spec), persistent=False)

    def allocate_cache(self, slots: int, length: int) -> KVCache:
        self.cache = KVCache(self.spec, slots, length, self.embed.weight.dtype, self.embed.weight.device)
        return self.cache

    def rope(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin [B, T, D] for integer positions [B, T], computed in float32 as transformers does."""
        freqs = positions.float().unsqueeze(-1) * self.inv_freq
        angles = torch.cat((freqs, freqs), dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def decode(self, tokens: torch.Tensor, positions: torch.Tensor, window: torch.Tensor | None = None) -> torch.Tensor:
        """One token for each of the first S slots: tokens [S, 1], positions [S] -> logits [S, V].

        ``window`` is ``arange(W)`` for a W at least every position + 1: attention reads only the
        first W cache positions (its length may be marked dynamic so one compile serves every W).
        """
        slots = tokens.shape[0]
        cache = self.cache
        window = torch.arange(cache.length, device=tokens.device) if window is None else window
        span = window.shape[0]
        x = self.embed(tokens)
        cos, sin = self.rope(positions.unsqueeze(1), x.dtype)
        rows = torch.arange(slots, device=tokens.device)
        mask = (window <= positions.unsqueeze(1)).view(slots, 1, 1, span)
        for i, block in enumerate(self.blocks):
            q, k, v = block.attention.project(block.input_norm(x), cos, sin)
            cache.k[i][rows, :, positions] = k[:, :, 0]
            cache.v[i][rows, :, positions] = v[:, :, 0]
            keys, values = cache.k[i][:slots, :, :span], cache.v[i][:slots, :, :span]
            x = x + block.attention.attend(q, keys, values, mask)
            x = x + block.mlp(block.post_norm(x))
        return self.head(self.norm(x))[:, 0].float()

    def prefill(self, tokens: torch.Tensor, start: int, slots: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Prompts [B, T] (right-padded) written to ``slots`` from position ``start``; logits of each last token [B, V].

        Positions below ``start`` must already hold the shared prefix in those slots.
        """
        b, t = tokens.shape
        cache = self.cache
        positions = torch.arange(start, start + t, device=tokens.device).expand(b, t)
        x = self.embed(tokens)
        cos, sin = self.rope(positions, x.dtype)
        span = start + t
        # After a cached prefix, queries also see its keys: a causal mask shifted right by ``start``.
        shifted = torch.ones(t, span, dtype=torch.bool, device=tokens.device).tril(diagonal=start) if start else None
        index = (slots.view(b, 1), slice(None), positions)
        for i, block in enumerate(self.blocks):
            q, k, v = block.attention.project(block.input_norm(x), cos, sin)
            cache.k[i][index] = k.transpose(1, 2)
            cache.v[i][index] = v.transpose(1, 2)
            if start:
                k, v = cache.k[i][slots, :, :span], cache.v[i][slots, :, :span]
            x = x + block.attention.attend(q, k, v, shifted)
            x = x + block.mlp(block.post_norm(x))
        last = x[torch.arange(b, device=tokens.device), lengths - 1]
        return self.head(self.norm(last)).float()

    def forward_full(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits at every position of one unpadded batch, without the cache (for tests)."""
        b, t = tokens.shape
        positions = torch.arange(t, device=tokens.device).expand(b, t)
        x = self.embed(tokens)
        cos, sin = self.rope(positions, x.dtype)
        for block in self.blocks:
            q, k, v = block.attention.project(block.input_norm(x), cos, sin)
            x = x + block.attention.attend(q, k, v)
            x = x + block.mlp(block.post_norm(x))
        return self.head(self.norm(x)).float()


def _inv_freq(spec: ArchSpec) -> torch.Tensor:
    exponents = torch.arange(0, spec.head_dim, 2, dtype=torch.int64).float() / spec.head_dim
    return 1.0 / (spec.rope_theta**exponents)
