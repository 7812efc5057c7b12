"""An optional cross-encoder that re-reads the best candidate pages together with the question.

Off unless ``RAG_RERANKER_MODEL`` names a sentence-transformers ``CrossEncoder`` (hub id or local
path), e.g. ``BAAI/bge-reranker-v2-m3`` (multilingual). Its quality is not measured in this
repository (no reranker ships offline); it costs one cross-encoder pass over ``depth`` passages per
question.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rag_app.records import SearchHit

log = logging.getLogger(__name__)
RERANK_DEPTH = 20  # candidate pages the cross-encoder re-reads


class CrossEncoderReranker:
    """Orders hits by a cross-encoder's relevance score of (question, passage)."""

    def __init__(self, model_name: str, device: str = "cpu", depth: int = RERANK_DEPTH) -> None:
        from sentence_transformers import CrossEncoder

        from rag_app.embedding.embedder import load_sentence_model, resolve_embedding_model

        self.model_name, self.depth = model_name, depth
        howto = (
            "Set RAG_RERANKER_MODEL to a sentence-transformers CrossEncoder (hub id or local directory), or unset it."
        )
        location = resolve_embedding_model(model_name)
        self.model = load_sentence_model(CrossEncoder, location, device, f"reranker model {model_name!r}", howto)

    def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        """``hits`` best first by the cross-encoder; their scores stay the retrieval's."""
        if len(hits) < 2:
            return list(hits)
        relevance = self.model.predict([(query, h.text) for h in hits], show_progress_bar=False)
        order = sorted(range(len(hits)), key=lambda i: -float(relevance[i]))
        return [hits[i] for i in order]
