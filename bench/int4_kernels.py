"""Which 4-bit matmul runs fastest inside a compiled graph on this GPU? (design probe for the fast path)

For the linear shapes of a 7B model it times, at 1, 8 and 4096 rows:
bf16 cuBLAS, PyTorch's built-in int4 "tinygemm" kernel (aten._weight_int4pack_mm),
and an int4 group-quantized matmul written in plain torch ops that torch.compile
fuses into one kernel (unpack + scale + reduce), plus dequantize-then-cuBLAS.

    python -m bench.int4_kernels
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F

GROUP = 128
SHAPES = {"gate/up": (18944, 3584), "down": (3584, 18944), "qkv": (4608, 3584), "o": (3584, 3584)}


def quantize(w: torch.Tensor):
    """Asymmetric int4, groups of 128 along K: w ~= q * scale + low. Returns packed uint8 [N, K/2]."""
    n, k = w.shape
    groups = w.float().reshape(n, k // GROUP, GROUP)
    low, high = groups.amin(-1, keepdim=True), groups.amax(-1, keepdim=True)
    scale = ((high - low).clamp(min=1e-6) / 15).to(torch.bfloat16)
    q = ((groups - low) / scale.float()).round().clamp(0, 15).to(torch.uint8).reshape(n, k)
    packed = (q[:, ::2] << 4) | q[:, 1::2]
    return packed, scale.squeeze(-1), low.to(torch.bfloat16).squeeze(-1)


def unpack(packed: torch.Tensor) -> torch.Tensor:
    return torch.stack([packed >> 4, packed & 0xF], dim=-1).reshape(packed.shape[0], -1)


def dequantize(packed, scale, low) -> torch.Tensor:
    n = packed.shape[0]
    q = unpack(packed).reshape(n, -1, GROUP).to(torch.bfloat16)
    return (q * scale.unsqueeze(-1) + low.unsqueeze(-1)).reshape(n, -1)


def fused_linear(x, packed, scale, low):
    """x [M, K] @ dequant(W)^T written as a reduction, for inductor to fuse with the unpacking."""
    m, k = x.shape
    n = packed.shape[0]
    q = unpack(packed).reshape(n, k // GROUP, GROUP).to(torch.bfloat16)
    xg = x.reshape(m, 1, k // GROUP, GROUP)
    partial = (xg * q.unsqueeze(0)).float().sum(-1)  # [M, N, G]
    xsum = xg.float().sum(-1)  # [M, 1, G]
    return ((partial * scale.float() + xsum * low.float()).sum(-1)).to(torch.bfloat16)


def dequant_mm(x, packed, scale, low):
    return F.linear(x, dequantize(packed, scale, low))


def tinygemm_pack(packed, scale, low):
    """PyTorch's tinygemm layout: w = (q - 8) * scale + zero, zero = low + 8 * scale."""
    weight = torch.ops.aten._convert_weight_to_int4pack(packed.contiguous(), 8)
    zero = low.float() + 8 * scale.float()
    scales_zeros = torch.stack([scale.float(), zero], dim=-1).transpose(0, 1).contiguous().to(torch.bfloat16)
    return weight, scales_zeros


def bench(fn, *args) -> float:
    from triton.testing import do_bench

    return do_bench(lambda: fn(*args), warmup=25, rep=100)


def main() -> None:
    torch.manual_seed(0)
    compiled_fused = torch.compile(fused_linear, mode="max-autotune-no-cudagraphs", dynamic=False)
    compiled_dequant = torch.compile(dequant_mm, dynamic=False)
    results = {}
    for name, (n, k) in SHAPES.items():
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
        packed, scale, low = quantize(w)
        tg_w, tg_sz = tinygemm_pack(packed, scale, low)
        row = {}
        for m in (1, 8, 4096):
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            ref = F.linear(x, dequantize(packed, scale, low))
            cases = {
                "bf16_cublas": (F.linear, x, w),
                "tinygemm": (torch.ops.aten._weight_int4pack_mm, x, tg_w, GROUP, tg_sz),
                "dequant_mm": (compiled_dequant, x, packed, scale, low),
            }
            if m <= 8:
                cases["fused_compiled"] = (compiled_fused, x, packed, scale, low)
            for label, (fn, *args) in cases.items():
                try:
                    out = fn(*args)
                    err = (out.float() - ref.float()).abs().max().item() if label != "bf16_cublas" else 0.0
                    ms = bench(fn, *args)
                    gbs = (
                        (n * k / 2 + n * k / GROUP * 4) / (ms / 1000) / 1e9
                        if label != "bf16_cublas"
                        else n * k * 2 / (ms / 1000) / 1e9
                    )
                    row[f"{label}@{m}"] = {"ms": round(ms, 4), "weight_GB/s": round(gbs), "max_abs_err": round(err, 4)}
                except Exception as exc:  # noqa: BLE001 - a kernel missing on this GPU is a result too
                    row[f"{label}@{m}"] = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
        results[name] = row
        print(name, json.dumps(row, indent=1), flush=True)
    out = os.environ.get("OUT")
    if out:
        Path(out, "int4-kernels.json").write_text(
            json.dumps({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "results": results}, indent=1)
        )


if __name__ == "__main__":
    main()
