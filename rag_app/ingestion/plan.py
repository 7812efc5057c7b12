"""How an ingest runs, decided once: parser processes, OCR threads, where the store writes, shards, warm-up.

:meth:`IngestPlan.build` makes the choice from the settings (``RAG_INGEST_MODE``), the machine (cores,
the embedder's device) and the number of files; the service builds one per ingest and passes it down.
Nothing below re-decides it, and a test passes a plan of its own.

Two modes:

* ``simple``: the parser processes beside this process, which embeds, and stores from a thread of its
  own while the next files are parsed and embedded.
* ``pipelined``: also a process of its own for the store (:mod:`rag_app.storage.writer_process`) and, for
  a sharded collection, one per shard; the parser processes start before the files are hashed; on a
  GPU the embedder captures its batch shapes while the first files are parsed. Starting those
  processes costs a second or more (1.6-3 s on the H200 machines), which a few files do not repay.

``auto`` runs ``simple``: measured in turn on the same filings, pipelined did not pay on a 2-core CPU (median
12.50 against 11.60 pages/s, 1,982 pages) nor on the 16-core H200 machine (142.75 against 132.61, 1,037 pages),
bound by embedding on the CPU and by parsing on the GPU (docs/benchmarks.md, "The ingest plan's modes"). ``pipelined`` stays a setting for a
machine where storing, not parsing, bounds an ingest.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Literal

from rag_app.settings import Settings

IngestMode = Literal["simple", "pipelined"]
MAX_AUTO_SHARDS = 4
CORES_PER_SHARD = 4


@dataclass(frozen=True)
class IngestPlan:
    """One ingest's layout: processes, threads and shards (see the module's docstring)."""

    mode: IngestMode = "simple"
    parse_workers: int = 1
    ocr_threads: int = 1  # threads of each parser process's OCR engine
    shards: int = 1  # vector shards of a collection this ingest makes (an existing one keeps its own)
    warm_up: bool = False  # the embedder captures its batch shapes while the first files are parsed (GPU)

    @property
    def writer_process(self) -> bool:
        """Whether the store writes in a process of its own."""
        return self.mode == "pipelined"

    @property
    def early_start(self) -> bool:
        """Whether the parser processes start before the files are hashed and looked up."""
        return self.mode == "pipelined"

    @classmethod
    def build(cls, settings: Settings, device: str, files: int, cpus: int | None = None) -> IngestPlan:
        """The plan for ``files`` files on this machine (``device``: where the embedder runs)."""
        cpus = cpus or os.cpu_count() or 2
        mode = settings.ingest_mode
        if mode == "auto":
            mode = "simple"  # pipelined measured no faster on CPU or GPU (module docstring)
        workers = settings.parse_workers or max(1, cpus - 1)
        return cls(
            mode=mode,
            parse_workers=workers,
            ocr_threads=ocr_threads(workers, cpus),
            shards=vector_shards(settings, device, cpus),
            warm_up=mode == "pipelined" and device.startswith("cuda"),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def ocr_threads(workers: int, cpus: int) -> int:
    """Threads of each parser process's OCR engine: its share of the cores but one (this process embeds
    meanwhile). N engines of N threads each would thrash, the more as onnxruntime's threads spin while waiting."""
    return max(1, (cpus - 1) // max(1, workers))


def vector_shards(settings: Settings, device: str, cpus: int | None = None) -> int:
    """Shards of a chunk collection made now: ``RAG_CHROMA_SHARDS``, or (0, auto) one per 4 cores, at most 4,
    when embeddings run on a GPU, where storing bounds ingestion; else 1 (on a CPU embedding takes 94% of an
    ingest, and more shards would only make searches ask more databases). A Chroma server keeps one."""
    if settings.chroma_host:
        return 1
    if settings.chroma_shards:
        return settings.chroma_shards
    if not device.startswith("cuda"):
        return 1
    return max(1, min(MAX_AUTO_SHARDS, (cpus or os.cpu_count() or 1) // CORES_PER_SHARD))
