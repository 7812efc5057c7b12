"""Which layer shapes gemlite's int4 kernels compute correctly: each [N, K] unpadded, in a process of its own
(an illegal memory access ends the process), against x @ W^T of the dequantized weight, 1 and 8 rows.

    CUDA_LAUNCH_BLOCKING=1 python -m bench.gemlite_shapes 960x576 576x576 3072x576 576x1536 4608x3584
"""

from __future__ import annotations

import json
import subprocess
import sys


def probe(n: int, k: int) -> dict:
    import torch
    from gemlite.helper import A16W4_HQQ_INT

    from rag_app.fastgen import prepare_gemlite
    from rag_app.fastgen.quant import dequantize_int4, group_size_for, quantize_int4

    prepare_gemlite(torch.cuda.get_device_capability())
    torch.manual_seed(0)
    weight = torch.randn(n, k, device="cuda") * 0.05
    codes, scales, zeros = quantize_int4(weight, group_size_for(k))
    dense = dequantize_int4(codes, scales, zeros, torch.bfloat16)
    layer = A16W4_HQQ_INT(device="cuda", dtype=torch.bfloat16).from_weights(
        codes, scales.bfloat16(), zeros.bfloat16(), bias=None
    )
    out = {}
    for rows in (1, 8):
        x = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
        got, want = layer(x).float(), (x @ dense.t()).float()
        torch.cuda.synchronize()
        out[rows] = round(float((got - want).abs().max() / want.abs().max()), 4)
    return out


def main() -> None:
    if sys.argv[1] == "--one":
        n, k = map(int, sys.argv[2].split("x"))
        print(json.dumps(probe(n, k)), flush=True)
        return
    for shape in sys.argv[1:]:
        run = subprocess.run([sys.executable, "-m", "bench.gemlite_shapes", "--one", shape], capture_output=True,
                             text=True, timeout=120)  # fmt: skip
        last = (run.stdout.strip().splitlines() or [""])[-1]
        error = [line for line in run.stderr.splitlines() if "Error" in line][-1:] if run.returncode else []
        print(shape, "exit", run.returncode, "relative max error by rows", last, *error, flush=True)


if __name__ == "__main__":
    main()
