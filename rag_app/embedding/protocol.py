"""What the ingestion pipeline, the retriever and the service ask of an embedder: one interface for the
torch model (:class:`rag_app.embedding.embedder.LocalEmbeddings`) and the ONNX one
(:class:`rag_app.embedding.onnx_embedder.OnnxEmbeddings`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from rag_app.embedding.inputs import ChunkPlan
    from rag_app.records import EmbedderInfo


class Embedder(Protocol):
    model_name: str
    device: str
    precision: str
    batch_size: int

    @property
    def dimension(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def reads_chinese(self) -> bool: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def info(self) -> EmbedderInfo: ...

    def count_tokens(self, text: str) -> int: ...
    def chunk_plan(self, chunk_size: int, chunk_overlap: int, max_tokens: int) -> ChunkPlan | None: ...
    def warm_up(self, tokens: int) -> int: ...
    def embed_tokens(self, sequences: Sequence[np.ndarray], on_batch: Callable[[int], None] | None = None) -> np.ndarray: ...  # fmt: skip
    def embed_array(self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray: ...
    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...
    def embed_query(self, text: str) -> list[float]: ...
    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]: ...  # several at once: one pass of the model
