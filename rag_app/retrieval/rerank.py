"""Optional rerankers that re-read the best candidate pages together with the question.

* :class:`CrossEncoderReranker`: ``RAG_RERANKER_MODEL`` names a sentence-transformers ``CrossEncoder`` (hub id
  or local path), e.g. ``BAAI/bge-reranker-v2-m3`` (multilingual). Its quality is not measured in this
  repository (no cross-encoder ships offline); it costs one cross-encoder pass over ``depth`` passages per
  question.
* :class:`AnswerModelReranker`: ``RAG_RETRIEVAL_RERANK=answer_model`` asks the configured answer model, for
  each of the ``depth`` best pages, whether the passage answers the question (``prompts/<lang>/rerank.txt``),
  and fuses its yes/no order with the retrieval's by reciprocal rank. Only where the model gives token
  probabilities (a GGUF file); one batched model call per page. Measured with SmolLM2-135M as a floor
  (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from rag_app.prompts import detect_language, load_prompts
from rag_app.records import SearchHit

log = logging.getLogger(__name__)
RERANK_DEPTH = 20  # candidate pages the cross-encoder re-reads
RRF_K = 10  # of the fusion of the answer model's order with the retrieval's (few pages: a small k)


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


class AnswerModelReranker:
    """Orders the ``depth`` best hits by the answer model's yes/no to "does this passage answer the question?",
    fused by reciprocal rank with the retrieval's order (``retrieval_weight`` 0: the model's order alone);
    the hits after them keep their places."""

    def __init__(
        self, yes_no: Callable[[list[list[dict]]], list[float]], depth: int = 10, retrieval_weight: float = 1.0
    ) -> None:
        self.yes_no, self.depth, self.retrieval_weight = yes_no, depth, retrieval_weight

    def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        head, tail = list(hits[: self.depth]), list(hits[self.depth :])
        if len(head) < 2:
            return head + tail
        prompts = load_prompts(detect_language(query))
        asked = [[{"role": "user", "content": prompts.render("rerank", context=h.text, question=query)}] for h in head]
        scores = self.yes_no(asked)
        by_model = sorted(range(len(head)), key=lambda i: -scores[i])
        fused = {i: self.retrieval_weight / (RRF_K + i + 1) for i in range(len(head))}
        for rank, i in enumerate(by_model, 1):
            fused[i] += 1.0 / (RRF_K + rank)
        return [head[i] for i in sorted(fused, key=lambda i: -fused[i])] + tail
