"""Which embedder runs, decided once from the settings and the machine, and checked before it is used.

``RAG_EMBEDDING_BACKEND=auto`` runs ONNX Runtime on a CPU without native bf16 (see :func:`pick_backend` for
the measurement) and torch elsewhere. The ONNX path is tried int8 first, then fp32; each
must reproduce the fp32 torch vectors of the agreement probes on this machine
(:meth:`OnnxEmbeddings.check`), else the next is tried, and torch embeds last. Every step not taken
is said in the embedder's note, which the ingest report carries.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rag_app.embedding import embedder as torch_embedder
from rag_app.embedding.embedder import (
    BUNDLED_NAMES,
    BUNDLED_SHA256,
    bundled_model_path,
    pick_device,
    resolve_embedding_model,
)
from rag_app.embedding.protocol import Embedder
from rag_app.records import file_sha256
from rag_app.settings import EmbeddingBackend, EmbeddingPrecision, Settings

log = logging.getLogger(__name__)

TORCH_ONLY = ("bf16", "fp16")  # arithmetic only the torch backend does


def pick_backend(requested: EmbeddingBackend, precision: EmbeddingPrecision, device: str) -> str:
    """ "auto": onnx on a CPU without native bf16; torch on a GPU, on a CPU with native bf16, or for bf16/fp16.

    Measured interleaved on this 2-core EPYC (bench/results/embed-backends.json; busy machine): torch bf16
    ~20 chunks/s, onnx int8 ~13, onnx fp32 ~11-12, torch fp32 ~10. Where the CPU multiplies bf16 natively,
    torch's bf16 autocast is the fastest path; elsewhere onnx int8 is, and it also spares a process torch."""
    if requested != "auto":
        return requested
    if device != "cpu" or precision in TORCH_ONLY or cpu_has_native_bf16():
        return "torch"
    return "onnx"


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX, from /proc/cpuinfo on Linux (without importing torch); elsewhere torch is asked."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return torch_embedder.pick_precision("auto", "cpu") == "bf16"
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split(":", 1)[1].split()))


def load_embeddings(settings: Settings) -> Embedder:
    """The embedder the settings ask for, on the fastest path whose vectors agree with fp32 torch here."""
    s = settings
    device = pick_device(s.embedding_device)
    notes: list[str] = []
    if pick_backend(s.embedding_backend, s.embedding_precision, device) == "onnx":
        embedder = checked_onnx(s.embedding_model, s.embedding_precision, s.embedding_batch_size, notes)
        if embedder is not None:
            return embedder
    # Falling back from onnx: fp32 torch, the reference every faster path is checked against, on the CPU.
    precision = "fp32" if notes or s.embedding_precision == "int8" else s.embedding_precision
    torch_device = "cpu" if notes else s.embedding_device
    embedder = torch_embedder.LocalEmbeddings(s.embedding_model, torch_device, s.embedding_batch_size, precision)
    if notes:
        embedder.note = "; ".join(notes) + f": embedding with torch {embedder.precision}"
        log.warning("%s", embedder.note)
    return embedder


def onnx_precisions(precision: EmbeddingPrecision) -> list[str]:
    """The ONNX variants to try, fastest first."""
    if precision == "fp32":
        return ["fp32"]
    if precision in TORCH_ONLY:
        return []
    return ["int8", "fp32"]


def checked_onnx(model_name: str, precision: EmbeddingPrecision, batch_size: int, notes: list[str]) -> Embedder | None:
    """The first ONNX variant that loads and agrees with fp32 torch here; None (with ``notes`` saying
    why) when none does."""
    from rag_app.embedding.onnx_embedder import OnnxEmbeddings

    try:
        folder = exported(model_name)
    except Exception as exc:  # noqa: BLE001 - any export failure means: torch embeds, and says why
        notes.append(f"onnx unavailable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
        return None
    for variant in onnx_precisions(precision):
        try:
            embedder = OnnxEmbeddings(model_name, folder, variant, batch_size)
            agreement = embedder.check()
        except Exception as exc:  # noqa: BLE001 - a file onnxruntime cannot run here: the next variant
            notes.append(f"onnx {variant} did not run ({type(exc).__name__}: {str(exc)[:120]})")
            continue
        if agreement.passes:
            embedder.note = "; ".join(notes)
            log.info("embedding with onnx %s (cosine to fp32 torch here: mean %.6f, worst %.6f)", variant, agreement.mean, agreement.worst)  # fmt: skip
            return embedder
        notes.append(
            f"onnx {variant} vectors disagree with fp32 torch here (cosine mean {agreement.mean:.6f}, "
            f"worst {agreement.worst:.6f}; needed 0.999 and 0.99)"
        )
    return None


def exported(model_name: str) -> Path:
    """The cache folder of the model's ONNX export, exported now (torch loads, once) if missing."""
    from rag_app.embedding.onnx_embedder import export_folder
    from rag_app.embedding.onnx_export import ExportError, export_model

    bundled = bundled_model_path() if model_name in BUNDLED_NAMES else None  # verified against BUNDLED_SHA256
    location = str(bundled) if bundled else resolve_embedding_model(model_name)
    weights = Path(location) / "model.safetensors"
    if not weights.is_file():
        raise ExportError(f"no local model.safetensors for {model_name!r}")
    sha = BUNDLED_SHA256 if bundled else file_sha256(weights)
    folder = export_folder(sha)
    if not (folder / "meta.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        log.info("exporting the embedding model to ONNX (once, into %s)", folder)
        export_model(location, folder)
    return folder
