"""Shared helpers of the benchmarks: corpus location, machine description, result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("RAG_TEST_CORPUS", ROOT.parent / "shared" / "corpus"))
RESULTS = ROOT / "bench" / "results"


def machine() -> dict:
    """Where a figure was measured: CPU count, GPU, versions."""
    info = {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": round(os.getloadavg()[0], 1),  # other work on the machine slows every timing
        **cpu(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu() -> dict:
    """The CPU's model and the instruction sets that decide how fast a CPU embeds (bf16 and AMX above all)."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return {}
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    return {"cpu_model": model, "cpu_flags": {flag: flag in flags for flag in CPU_FLAGS}}


# A timing is a figure only on a quiet machine: under this 1-minute load average (2 cores shared with other jobs).
QUIET_LOAD = 2.0
# Restricts torch to AVX2 (MKL, oneDNN, ATen kernels), as on a CPU without AVX-512 and bf16. onnxruntime has no
# such switch: it picks its kernels from the CPU at run time.
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def quiet_load(tries: int = 3, wait_s: float = 30) -> float:
    """The 1-minute load average once it is under QUIET_LOAD, else after ``tries`` waits (then whoever reports
    the timing marks it: not a figure)."""
    import time

    for _ in range(tries):
        load = os.getloadavg()[0]
        if load < QUIET_LOAD:
            return round(load, 2)
        time.sleep(wait_s)
    return round(os.getloadavg()[0], 2)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return ""


def write_result(name: str, data: dict) -> Path:
    """Write ``bench/results/<name>.json`` with the machine, date and commit attached."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "name": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(),
        **data,
    }
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
