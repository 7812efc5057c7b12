"""How much a batch shape the embedder has not run before costs on the GPU (issue 17).

python -m bench.shape_probe MODEL_DIR
"""

import json
import os
import sys
import time

import torch
from sentence_transformers import SentenceTransformer


def forward(model, batch: int, width: int) -> float:
    ids = torch.randint(1000, 29000, (batch, width), device="cuda")
    mask = torch.ones_like(ids)
    mask[:, width - 3 :] = 0
    torch.cuda.synchronize()
    started = time.perf_counter()
    with torch.inference_mode():
        model({"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)})
    torch.cuda.synchronize()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    t = time.perf_counter()
    model = SentenceTransformer(sys.argv[1], device="cuda").half()
    load = time.perf_counter() - t
    for _ in range(3):
        forward(model, 512, 130)
    out = {"module_loading": os.environ.get("CUDA_MODULE_LOADING", "default"), "load_s": round(load, 2)}
    out["warm_512x130_ms"] = round(min(forward(model, 512, 130) for _ in range(5)), 2)
    widths = list(range(129, 99, -1))
    out["new_width_ms"] = [round(forward(model, 512, w), 1) for w in widths]
    out["same_widths_again_ms"] = [round(forward(model, 512, w), 1) for w in widths]
    sizes = list(range(511, 481, -1))
    out["new_batch_ms"] = [round(forward(model, b, 130), 1) for b in sizes]
    out["same_batches_again_ms"] = [round(forward(model, b, 130), 1) for b in sizes]
    out["new_batch_new_width_ms"] = [
        round(forward(model, b, w), 1) for b, w in zip(range(300, 270, -1), range(99, 69, -1), strict=True)
    ]
    print("shape_probe", json.dumps(out), flush=True)


def profile(model_dir: str) -> None:
    """The torch profiler's top CPU ops of one forward at a shape not run before."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    model = SentenceTransformer(model_dir, device="cuda").half()
    for _ in range(3):
        forward(model, 512, 130)
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        forward(model, 500, 121)
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=25), flush=True)
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        forward(model, 500, 121)
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=12), flush=True)


if __name__ == "__main__":
    profile(sys.argv[1]) if sys.argv[2:] == ["profile"] else main()
