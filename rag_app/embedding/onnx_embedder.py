"""The embedding model on ONNX Runtime (CPU): no torch in the process once the model is exported.

:mod:`rag_app.embedding.onnx_export` makes the ONNX files once per machine (that one step loads torch);
later processes load them from the cache folder with onnxruntime and the ``tokenizers`` library only,
which saves a new process the ~10 CPU-seconds of importing torch and transformers. Every load checks
the vectors of the agreement probes against the fp32 torch model's (:meth:`OnnxEmbeddings.check`);
:func:`rag_app.embedding.choice.load_embeddings` uses this embedder only where they agree.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from langchain_core.embeddings import Embeddings

from rag_app.embedding.inputs import ChunkPlan, model_inputs
from rag_app.embedding.probes import agreement_probes
from rag_app.records import EmbedderInfo

log = logging.getLogger(__name__)

OnnxPrecision = Literal["int8", "fp32"]
EXPORT_VERSION = 1  # bump when onnx_export writes other files: older cache folders are exported anew
# The bar a faster path must clear against fp32 torch (issue 30): mean cosine and the worst one.
MIN_MEAN_COSINE, MIN_WORST_COSINE = 0.999, 0.99
CPU_BATCH_SIZE = 64


@dataclass(frozen=True)
class Agreement:
    """Cosine of this embedder's vectors to the fp32 torch model's, over the agreement probes."""

    mean: float
    worst: float

    @property
    def passes(self) -> bool:
        return self.mean >= MIN_MEAN_COSINE and self.worst >= MIN_WORST_COSINE


def cache_root() -> Path:
    """Where exported models are kept: $XDG_CACHE_HOME/rag_app/onnx (~/.cache/rag_app/onnx)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rag_app" / "onnx"


def export_folder(weights_sha256: str) -> Path:
    """The cache folder of one model's export with this onnxruntime (its graphs are optimized for it)."""
    import onnxruntime

    return cache_root() / f"{weights_sha256[:16]}-ort{onnxruntime.__version__}-v{EXPORT_VERSION}"


class OnnxEmbeddings(Embeddings):
    """The exported model in one onnxruntime session: normalised float32 vectors, length-sorted batches."""

    backend = "onnx"
    device = "cpu"

    def __init__(self, model_name: str, folder: Path, precision: OnnxPrecision, batch_size: int = 0, threads: int = 0):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_name, self.folder, self.precision = model_name, folder, precision
        self.batch_size = batch_size or CPU_BATCH_SIZE
        self.meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # Threads sleep when idle instead of spinning: the cores are shared with the parser processes.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(folder / f"{precision}.onnx"), options, providers=["CPUExecutionProvider"])  # fmt: skip
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.encoder = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.encoder.no_padding()
        self.encoder.enable_truncation(max_length=self.meta["max_seq_length"])
        self.counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.counter.no_padding()
        self.counter.no_truncation()
        self.agreement: Agreement | None = None
        self.note = ""

    # ----- what the pipeline and the retriever ask of an embedder -------------------------------------

    @property
    def dimension(self) -> int:
        return int(self.meta["dimension"])

    @property
    def max_tokens(self) -> int:
        return int(self.meta["max_seq_length"]) - int(self.meta["specials"])

    @property
    def reads_chinese(self) -> bool:
        return bool(self.meta["reads_chinese"])

    @property
    def fingerprint(self) -> str:
        """The same vector space as the torch model's (vectors agree within the bar): nothing is re-ingested."""
        return f"{self.model_name}|dim{self.dimension}"

    @property
    def info(self) -> EmbedderInfo:
        agreement = (self.agreement.mean, self.agreement.worst) if self.agreement else None
        return EmbedderInfo("onnx", self.precision, self.device, agreement, self.note)

    def count_tokens(self, text: str) -> int:
        return len(self.counter.encode(text, add_special_tokens=False).ids)

    def chunk_plan(self, chunk_size: int, chunk_overlap: int, max_tokens: int) -> ChunkPlan:
        """The parser processes tokenize with the exported tokenizer: the ids this session reads."""
        tokenizer = str(self.folder / "tokenizer.json")
        return ChunkPlan(tokenizer, chunk_size, chunk_overlap, max_tokens, int(self.meta["max_seq_length"]))

    def warm_up(self, tokens: int) -> int:
        return 0  # nothing to capture on a CPU

    def embed_tokens(self, sequences: Sequence[np.ndarray], on_batch=None) -> np.ndarray:
        """Embed chunks given as model input ids (special tokens included): length-sorted batches."""
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        order = np.argsort(-lengths, kind="stable")
        vectors = np.zeros((len(sequences), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            inputs = model_inputs([sequences[i] for i in batch], self.meta["pad_id"])
            pooled = self.session.run(None, {k: v for k, v in inputs.items() if k in self._inputs})[0]
            vectors[batch] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            if on_batch:
                on_batch(len(batch))
        return vectors

    def embed_array(self, texts: Sequence[str], on_batch=None) -> np.ndarray:
        ids = [np.asarray(e.ids, dtype=np.int32) for e in self.encoder.encode_batch(list(texts))]
        return self.embed_tokens(ids, on_batch)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    # ----- the check at load ------------------------------------------------------------------------------

    def check(self) -> Agreement:
        """Embed the agreement probes here and compare with the fp32 torch vectors made at export."""
        reference = np.load(self.folder / "reference.npy")
        cosines = (self.embed_array(agreement_probes()) * reference).sum(axis=1)
        self.agreement = Agreement(round(float(cosines.mean()), 6), round(float(cosines.min()), 6))
        return self.agreement
