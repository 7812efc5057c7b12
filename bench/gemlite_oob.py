"""Whether gemlite's int4 and int8-head kernels read past the end of a layer's scales / zeros, per layer shape,
kernel and autotune config, and whether rag_app's padding (rag_app.fastgen.quant.pad_gemlite_meta) keeps those
reads inside (issue 29). Needs CUDA and gemlite==0.6.0.post2; found first through Triton's interpreter on CPU.

For every layer shape, every gemlite kernel rag_app uses for <= 64 rows (GEMV_REVSPLITK for 1-4 rows,
GEMM_SPLITK for 5-63, GEMM for 64; GEMV_SPLITK / GEMM_SPLITK for the int8 head) and every config gemlite's
pruner autotunes over (its "fast" set, as on an H200 with no cached config), it builds the layer as rag_app
does, moves scales / zeros to the start of a larger buffer ([data][spare zeros with --fix][NaN tail]), forces
that config through gemlite's config cache and checks the output for NaN and against a float32 reference.

A read past the end along K (rows >= K/g) puts NaN into every output. A read past the end along N only feeds
output columns that are never stored; to see those, run with --plain under
``PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool memcheck``, or --at-end (the data at the very end of
a 2 MiB-multiple allocation, where an over-read should raise "illegal memory access").

    python -m bench.gemlite_oob                  # every shape, kernel and config; NaN sentinel, no padding
    python -m bench.gemlite_oob --fix            # the same with rag_app's padding
    python -m bench.gemlite_oob --shapes smol --types GEMM_SPLITK --rows 8
    python -m bench.gemlite_oob --autotune       # gemlite autotunes as in production
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import torch

from rag_app.fastgen.quant import META_SPARE_COLUMNS, META_SPARE_ROWS, group_size_for, quantize_int4, quantize_int8_rows

SHAPES = {  # name -> list of (layer, N, K, kind)
    "smol": [
        ("qkv", 960, 576, "int4"),
        ("o_proj", 576, 576, "int4"),
        ("gate_up", 3072, 576, "int4"),
        ("down", 576, 1536, "int4"),
        ("head", 49152, 576, "int8"),
    ],
    "padded": [("o_proj", 640, 640, "int4"), ("qkv", 1024, 640, "int4"), ("down", 640, 1536, "int4")],
    "qwen": [("qkv", 4608, 3584, "int4"), ("o_proj", 3584, 3584, "int4"), ("down", 3584, 18944, "int4")],
}


DEVICE = "cuda"


def build(N, K, kind, dtype):
    from gemlite.helper import A16W4_HQQ_INT, A16W8_INT8

    torch.manual_seed(0)
    w = torch.randn(N, K, device=DEVICE) * 0.02
    if kind == "int4":
        codes, scales, zeros = quantize_int4(w, group_size_for(K))
        layer = A16W4_HQQ_INT(device=DEVICE, dtype=dtype).from_weights(codes, scales.to(dtype), zeros.to(dtype))
        g = layer.group_size
        s, z = layer.scales.detach().float(), layer.zeros.detach().float()  # [K/g, N], fma form
        W = codes.float() * s.t().repeat_interleave(g, 1) + z.t().repeat_interleave(g, 1)
    else:  # rag_app's GemliteInt8Head
        codes, sc = quantize_int8_rows(w)
        layer = A16W8_INT8(device=DEVICE, dtype=dtype).from_weights(codes, scales=sc.to(dtype))
        W = codes.float() * layer.scales.detach().float().reshape(-1)[:, None]
    return layer, W


def relocate(layer, spare, tail, fill, at_end=False):
    """scales/zeros -> views at the start (or, at_end, the end) of bigger buffers; returns the buffers."""
    keep = []
    for name in ("scales", "zeros"):
        t = getattr(layer, name).detach()
        if t.dim() != 2 or t.numel() <= 1 or not t.is_floating_point():
            continue
        n = t.numel()
        if at_end:  # [..., data] ending exactly at the end of a 2 MiB-multiple allocation
            total = max(math.ceil(n * t.element_size() / (2 << 20)), 1) * (2 << 20) // t.element_size()
            buf = torch.zeros(total, dtype=t.dtype, device=t.device)
            buf[total - n :] = t.reshape(-1)
            view = buf[total - n :].view(t.shape)
        else:
            buf = torch.full((n + spare + tail,), fill, dtype=t.dtype, device=t.device)
            buf[:n] = t.reshape(-1)
            buf[n : n + spare] = 0
            view = buf[:n].view(t.shape)
        getattr(layer, name).data = view
        keep.append(buf)
    return keep


def pruned(mt, layer, M):
    import gemlite.core as core
    from gemlite.triton_kernels import gemm_kernels, gemm_splitK_kernels, gemv_revsplitK_kernels, gemv_splitK_kernels

    mod = {
        "GEMM_SPLITK": gemm_splitK_kernels,
        "GEMV_REVSPLITK": gemv_revsplitK_kernels,
        "GEMV_SPLITK": gemv_splitK_kernels,
        "GEMM": gemm_kernels,
    }[mt]
    nargs = dict(
        M=M,
        N=layer.out_features,
        K=layer.in_features,
        group_size=layer.group_size,
        elements_per_sample=layer.elements_per_sample,
        type_id=100 + layer.W_nbits,
        a_sizeof=2,
        b_sizeof=layer.W_q.element_size(),
        use_prehook=False,
    )
    saved = core.GEMLITE_TRITON_CONFIG_CACHE.pop(mt, None)
    try:
        kw = {"load_scales_as_block": False} if mt in ("GEMM_SPLITK", "GEMM") else {}
        return list(mod.kernel_config_pruner(mod.get_fast_autotune_config(), nargs, **kw)), mod
    finally:
        if saved is not None:
            core.GEMLITE_TRITON_CONFIG_CACHE[mt] = saved


def force(mt, layer, M, cfg, mod):
    import gemlite.core as core
    from gemlite.triton_kernels.utils import get_closest_m

    d = dict(cfg.kwargs)
    d.pop("NUM_STAGES", None)
    d["num_stages"], d["num_warps"] = cfg.num_stages, cfg.num_warps
    sig = str(
        tuple(
            [
                get_closest_m(M),
                layer.out_features,
                layer.in_features,
                layer.group_size,
                layer.elements_per_sample,
                100 + layer.W_nbits,
            ]
        )
    )
    core.GEMLITE_TRITON_CONFIG_CACHE[mt] = {sig: d}
    cls = {
        "GEMM_SPLITK": "gemm_splitK",
        "GEMV_REVSPLITK": "gemv_revsplitK",
        "GEMV_SPLITK": "gemv_splitK",
        "GEMM": "gemm",
    }[mt]
    for kern in getattr(mod, cls).kernel:  # the autotuner keeps its choice per key: forget it
        kern.cache.clear()


def predicted_spare(mt, layer, cfg):
    N, K, g = layer.out_features, layer.in_features, layer.group_size
    k = cfg.kwargs
    bk, bn, sk = k["BLOCK_SIZE_K"], k["BLOCK_SIZE_N"], k.get("SPLIT_K", 2 if mt == "GEMV_REVSPLITK" else 1)
    if mt == "GEMV_REVSPLITK":
        max_row = int(2 * (math.ceil(K / (bk * 2)) - 1) * bk / g)
    elif mt == "GEMM":
        max_row = int((math.ceil(K / bk) - 1) * bk / g)
    else:
        max_row = int((math.ceil(K / (bk * sk)) * sk - 1) * bk / g)
    rows = max(K // g, 1)
    return max(0, max_row + 1 - rows), (bn - N % bn) % bn


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="smol,padded,qwen")
    ap.add_argument("--layers", default="", help="only these layer names, e.g. o_proj,down (default: all)")
    ap.add_argument("--types", default="GEMV_REVSPLITK,GEMM_SPLITK,GEMM,GEMV_SPLITK")
    ap.add_argument("--rows", default="1,8,32,64", help="M values; each type only runs the M it serves")
    ap.add_argument("--fix", action="store_true", help="pad scales/zeros as rag_app does (16*N+1024 zero elements)")
    ap.add_argument("--plain", action="store_true", help="no sentinel buffers (for compute-sanitizer)")
    ap.add_argument(
        "--at-end", action="store_true", help="scales/zeros at the end of a 2 MiB-multiple allocation, unpadded"
    )
    ap.add_argument("--only-overread", action="store_true", help="skip configs predicted to stay in bounds")
    ap.add_argument("--autotune", action="store_true", help="no forced config: gemlite autotunes ('fast')")
    ap.add_argument("--h100-configs", action="store_true", help="load gemlite's h100.json first, as rag_app does")
    a = ap.parse_args()
    if a.at_end and a.fix:
        ap.error("--at-end puts the data at the very end of its allocation, with no padding: it cannot test --fix")
    dtype = torch.bfloat16

    import gemlite
    import gemlite.core as core
    from gemlite.core import GemLiteLinearTriton

    if a.h100_configs:
        GemLiteLinearTriton.load_config(os.path.join(os.path.dirname(gemlite.__file__), "configs", "h100.json"))
    print(
        "gemlite",
        getattr(gemlite, "__version__", "?"),
        "torch",
        torch.__version__,
        torch.cuda.get_device_name(),
        "caching allocator",
        os.environ.get("PYTORCH_NO_CUDA_MEMORY_CACHING") != "1",
        flush=True,
    )
    # which kernel gemlite.core.get_matmul_type picks for M rows: 4-bit / 8-bit weights
    serves = {
        "int4": {"GEMV_REVSPLITK": range(1, 5), "GEMM_SPLITK": range(5, 64), "GEMM": range(64, 65)},
        "int8": {"GEMV_SPLITK": range(1, 3), "GEMM_SPLITK": range(3, 64), "GEMM": range(64, 65)},
    }
    from triton.runtime.errors import OutOfResources

    n_bad = skipped = 0
    for shape_set in a.shapes.split(","):
        for lname, N, K, kind in SHAPES[shape_set]:
            if a.layers and lname not in a.layers.split(","):
                continue
            layer, W = build(N, K, kind, dtype)
            for mt in a.types.split(","):
                for M in (int(m) for m in a.rows.split(",")):
                    if M not in serves[kind].get(mt, ()):
                        continue
                    x = torch.randn(M, K, device=DEVICE).to(dtype)
                    ref = x.float() @ W.t()
                    cfgs, mod = pruned(mt, layer, M)
                    for cfg in [None] if a.autotune else cfgs:
                        spare_rows, spare_cols = (0, 0) if cfg is None else predicted_spare(mt, layer, cfg)
                        if a.only_overread and cfg is not None and spare_rows == 0 and spare_cols == 0:
                            continue
                        keep = (
                            []
                            if a.plain
                            else relocate(
                                layer,
                                META_SPARE_ROWS * N + META_SPARE_COLUMNS if a.fix else 0,
                                1 << 20,
                                float("nan"),
                                at_end=a.at_end,
                            )
                        )
                        if cfg is None:
                            core.GEMLITE_TRITON_CONFIG_CACHE.pop(mt, None)
                        else:
                            force(mt, layer, M, cfg, mod)
                        desc = (
                            "autotune"
                            if cfg is None
                            else " ".join(
                                f"{k}={v}"
                                for k, v in cfg.kwargs.items()
                                if k in ("BLOCK_SIZE_N", "BLOCK_SIZE_K", "SPLIT_K")
                            )
                        )
                        print(
                            f"RUN {shape_set}/{lname} N={N} K={K} g={layer.group_size} {mt} M={M} {desc} "
                            f"(predicted over-read: {spare_rows} rows, {spare_cols} cols)",
                            flush=True,
                        )
                        try:
                            y = layer.forward_manual(x, mt).float()
                            torch.cuda.synchronize()
                        except OutOfResources as exc:  # gemlite's autotuner drops such a config as well
                            print(f"    SKIPPED: the GPU cannot launch this config ({exc})", flush=True)
                            skipped += 1
                            del keep
                            continue
                        nan = int(y.isnan().sum())
                        err = float((y - ref).abs().max() / ref.abs().max()) if nan == 0 else float("nan")
                        ok = nan == 0 and err < 2e-2
                        n_bad += not ok
                        print(
                            f"    NaN outputs {nan}/{y.numel()}  max|err|/max|ref| {err:.2e}  {'OK' if ok else 'BAD'}",
                            flush=True,
                        )
                        del keep
    print(f"{n_bad} BAD, {skipped} skipped (more shared memory than the GPU has)", flush=True)
    sys.exit(1 if n_bad else 0)


if __name__ == "__main__":
    main()
