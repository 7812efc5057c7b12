"""4-bit weights: group-wise round-to-nearest quantization and the linear layers that use them.

The format follows HQQ's convention, ``W ~= (codes - zeros) * scales`` with one
scale and zero per group of 128 input features. Two layers share it:

* ``DequantLinear`` multiplies with the dequantized weight: the reference math,
  used on CPU (and in tests as the definition of "the same function");
* ``GemliteLinear`` runs gemlite's Triton W4A16 kernels on CUDA (a GEMV for the
  few rows of a decode step, a GEMM for more), a torch custom op that works
  inside compiled graphs and CUDA graphs. Long prompts can instead dequantize
  once and use cuBLAS, whichever measured faster (``PREFILL_DEQUANT``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GROUP_SIZE = 128
PREFILL_DEQUANT = True  # rows above DECODE_ROWS: dequantize + cuBLAS rather than gemlite's GEMM
DECODE_ROWS = 64
HEAD_FORMAT = "int8"  # output projection on the GPU fast path: int8, int4 or bf16
SMALL_M_KERNEL: str | None = None  # force a gemlite kernel for <= 8 rows (None: gemlite's choice)


def group_size_for(in_features: int, preferred: int = GROUP_SIZE) -> int:
    """The largest power-of-two group size up to ``preferred`` that divides ``in_features``."""
    size = preferred
    while in_features % size:
        size //= 2
    if size < 16:
        raise ValueError(f"in_features {in_features} cannot be split into groups of 16 or more")
    return size


@torch.no_grad()
def quantize_int4(weight: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric min-max int4 per group: (codes uint8 [N, K] in 0..15, scales [N, K/g], zeros [N, K/g])."""
    n, k = weight.shape
    groups = weight.float().reshape(n, k // group_size, group_size)
    low, high = groups.amin(-1), groups.amax(-1)
    scales = (high - low).clamp(min=1e-8) / 15
    zeros = -low / scales
    codes = (groups / scales.unsqueeze(-1) + zeros.unsqueeze(-1)).round().clamp(0, 15).to(torch.uint8)
    return codes.reshape(n, k), scales, zeros


def dequantize_int4(codes: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The weight the codes stand for: (codes - zeros) * scales, in ``dtype``."""
    n, k = codes.shape
    groups = codes.reshape(n, scales.shape[1], -1).float()
    weight = (groups - zeros.float().unsqueeze(-1)) * scales.float().unsqueeze(-1)
    return weight.reshape(n, k).to(dtype)


def pack_nibbles(codes: torch.Tensor) -> torch.Tensor:
    return (codes[:, 0::2] | (codes[:, 1::2] << 4)).contiguous()


def unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    return torch.stack([packed & 0xF, packed >> 4], dim=-1).reshape(packed.shape[0], -1)


class DequantLinear(nn.Module):
    """Int4 weights stored packed; ``forward`` is ``F.linear`` with the dequantized weight."""

    def __init__(self, codes, scales, zeros, bias=None, dtype=torch.float32) -> None:
        super().__init__()
        self.out_features, self.in_features = codes.shape
        self.dtype = dtype
        self.register_buffer("packed", pack_nibbles(codes))
        self.register_buffer("scales", scales.to(torch.float32))
        self.register_buffer("zeros", zeros.to(torch.float32))
        self.bias = None if bias is None else nn.Parameter(bias.to(dtype), requires_grad=False)

    def weight(self) -> torch.Tensor:
        return dequantize_int4(unpack_nibbles(self.packed), self.scales, self.zeros, self.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)


# gemlite 0.6.0.post2 keeps scales and zeros row-major [K/g, N] and loads them with no mask: its split-K kernels
# read whole rows past the end when K % (BLOCK_SIZE_K * SPLIT_K) != 0 (K = 576: nearly every config it autotunes),
# and every kernel reads up to BLOCK_SIZE_N - N % BLOCK_SIZE_N columns past the last row. Read through Triton's
# interpreter on CPU (issue 29): 12-15 of the 16-17 split-K configs for SmolLM2-135M's layers, up to 18 KB, and a
# whole 96 KB row for the int8 head; none for Qwen2.5-7B's shapes. What lies there is another allocation: NaN or an
# illegal memory access. Zeros after the data keep every such read inside the tensor's own buffer, where it meets
# activations masked to 0 (rows) or output columns never stored (columns). Bound: rows < SPLIT_K <= 16 for groups
# of 32 or more, columns < BLOCK_SIZE_N <= 1024. On the H200 (bench/gemlite_oob.py): unpadded, 81 of 171 such configs
# read a NaN placed behind the data; padded, none, and SmolLM2-135M's real weights load and run in int4.
META_SPARE_ROWS, META_SPARE_COLUMNS = 16, 1024


def pad_gemlite_meta(kernel, spare_rows: int = META_SPARE_ROWS, spare_columns: int = META_SPARE_COLUMNS) -> None:
    """Re-seat a gemlite layer's scales and zeros at the start of zero-padded buffers: the same shape, strides and
    values, with ``spare_rows * N + spare_columns`` zeros behind them (what the unmasked loads may read)."""
    for name in ("scales", "zeros"):
        meta = getattr(kernel, name, None)
        if not isinstance(meta, torch.Tensor) or meta.dim() != 2 or meta.numel() <= 1 or not meta.is_floating_point():
            continue  # a scalar or the int8 head's empty zeros: never indexed
        if not meta.is_contiguous():
            raise RuntimeError(
                f"gemlite's {name} are not row-major [K/g, N] (strides {meta.stride()}): padding them is unsafe"
            )
        rows, columns = meta.shape
        buffer = torch.zeros(
            rows * columns + spare_rows * columns + spare_columns, dtype=meta.dtype, device=meta.device
        )
        buffer[: rows * columns].copy_(meta.detach().reshape(-1))
        meta.data = buffer[: rows * columns].view(rows, columns)  # .data: every reference gemlite holds sees it


class GemliteLinear(nn.Module):
    """gemlite's A16W4 kernels for few rows; dequantize + cuBLAS for long prompts."""

    def __init__(self, codes, scales, zeros, bias=None, dtype=torch.bfloat16) -> None:
        super().__init__()
        from gemlite.helper import A16W4_HQQ_INT

        self.out_features, self.in_features = codes.shape
        self.group_size = self.in_features // scales.shape[1]
        self.kernel = A16W4_HQQ_INT(device=str(codes.device), dtype=dtype).from_weights(
            codes, scales.to(dtype), zeros.to(dtype), bias=None if bias is None else bias.to(dtype)
        )
        pad_gemlite_meta(self.kernel)
        self.dtype = dtype

    def weight(self) -> torch.Tensor:
        """Dequantize from gemlite's own packed tensor, in one fused kernel (compiled per shape)."""
        k = self.kernel
        return _gemlite_dequant(k.W_q, k.scales, k.zeros, k.elements_per_sample, self.group_size, self.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        if PREFILL_DEQUANT and rows > DECODE_ROWS:
            bias = self.kernel.bias
            return F.linear(x, self.weight(), bias)
        if SMALL_M_KERNEL and rows <= 8:
            return self.kernel.forward_manual(x, SMALL_M_KERNEL)
        return self.kernel(x)


def _dequant_gemlite_words(words_t, scales_t, shift_t, per_word: int, group_size: int, dtype) -> torch.Tensor:
    """gemlite packs codes along K into words stored transposed [K/per_word, N]; fma form codes*s + shift."""
    words = words_t.t()
    n = words.shape[0]
    shifts = torch.arange(per_word, device=words.device, dtype=words.dtype) * 4
    codes = ((words.unsqueeze(-1) >> shifts) & 0xF).reshape(n, -1, group_size).to(dtype)
    return (codes * scales_t.t().unsqueeze(-1) + shift_t.t().unsqueeze(-1)).reshape(n, -1)


_compiled_dequant = None


def _gemlite_dequant(words_t, scales_t, shift_t, per_word, group_size, dtype):
    global _compiled_dequant
    if _compiled_dequant is None:
        _compiled_dequant = torch.compile(_dequant_gemlite_words, dynamic=False)
    return _compiled_dequant(words_t, scales_t, shift_t, per_word, group_size, dtype)


@torch.no_grad()
def quantize_int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one scale per output row: (codes int8 [N, K], scales float32 [N, 1])."""
    w = weight.float()
    scales = (w.abs().amax(dim=1, keepdim=True) / 127).clamp(min=1e-6)
    return (w / scales).round().clamp(-127, 127).to(torch.int8), scales


def dequantize_int8_rows(codes: torch.Tensor, scales: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (codes.float() * scales).to(dtype)


class GemliteInt8Head(nn.Module):
    """The output projection in int8 (per-row scales) on gemlite's kernels: half the bytes of bf16
    to read every step, near-lossless for logits. Only the last position's rows reach it."""

    def __init__(self, weight: torch.Tensor, dtype=torch.bfloat16) -> None:
        super().__init__()
        from gemlite.helper import A16W8_INT8

        codes, scales = quantize_int8_rows(weight)
        self.out_features, self.in_features = codes.shape
        self.kernel = A16W8_INT8(device=str(weight.device), dtype=dtype).from_weights(codes, scales=scales.to(dtype))
        pad_gemlite_meta(self.kernel)  # its [1, vocab] scales are read a whole row past the end by most configs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.kernel(x)


def make_head(weight: torch.Tensor, dtype: torch.dtype) -> nn.Module:
    """The output projection of a 4-bit model on the GPU fast path, in HEAD_FORMAT."""
    if HEAD_FORMAT == "int8":
        return GemliteInt8Head(weight, dtype)
    if HEAD_FORMAT == "int4":
        return make_int4_linear(weight, None, dtype, use_gemlite=True)
    head = nn.Linear(weight.shape[1], weight.shape[0], bias=False, device=weight.device, dtype=dtype)
    head.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
    return head


def make_int4_linear(
    weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, use_gemlite: bool
) -> nn.Module:
    codes, scales, zeros = quantize_int4(weight, group_size_for(weight.shape[1]))
    cls = GemliteLinear if use_gemlite else DequantLinear
    return cls(codes, scales, zeros, bias, dtype)
