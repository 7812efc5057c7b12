"""How hybrid retrieval weighs its signals and turns ranked chunks into ranked pages.

Three rankings are fused by weighted reciprocal rank: dense (the embedding model), lexical (BM25)
and a ranking by how well a chunk's *document* matches the question. Two facts shape the weights:

* An embedding model that cannot read the question's language ranks noise. all-MiniLM-L6-v2 (the
  bundled default) turns about two thirds of the tokens of a Chinese question into ``[UNK]``; on
  zh_reports_dev its ranking pulled BM25 down (hit@5 0.778 alone, 0.556 fused). So for a Chinese
  question and an embedder that does not read Chinese, the dense weight drops to
  ``unread_dense_weight`` and BM25 over jieba words plus the document match decide.
* The unit we cite is the page, so pages are ranked, not chunks: a page scores its best chunk plus
  ``page_weight`` times the scores of its other chunks among the candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag_app.textclean import is_chinese


@dataclass(frozen=True)
class RankingOptions:
    """Weights of the hybrid fusion (reciprocal rank, k = ``rrf_k``) and of page aggregation."""

    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    document_weight: float = 3.0
    unread_dense_weight: float = 0.0  # dense weight when the embedder cannot read the question
    page_weight: float = 0.0  # share of a page's other candidate chunks added to its best chunk
    title_parts: bool = True  # document match also reads the words inside "amazon.com" (lexical.term_parts)
    normalize_queries: bool = False  # lexical search and document match also read "FY2018" as "2018" (queries.py)
    rrf_k: int = 60


def chinese_note(text: str, model_name: str, reads_chinese: bool) -> str | None:
    """What the ingest report says about a Chinese document the embedding model cannot read."""
    if reads_chinese or not is_chinese(text):
        return None
    return (
        f"Chinese text: the embedding model {model_name} reads English only, so Chinese questions are answered "
        "from keyword search (BM25 over jieba words) and document names; for better Chinese set "
        "RAG_EMBEDDING_MODEL=BAAI/bge-m3 or intfloat/multilingual-e5-small (downloaded once)"
    )


def fusion_weights(query: str, reads_chinese: bool, options: RankingOptions) -> list[float]:
    """Weights of the (dense, lexical, document) rankings for this question."""
    dense = options.dense_weight
    if is_chinese(query) and not reads_chinese:
        dense = options.unread_dense_weight
    return [dense, options.lexical_weight, options.document_weight]


def fused_scores(rankings: Sequence[Sequence[str]], weights: Sequence[float], k: int = 60) -> dict[str, float]:
    """Sum of weight / (k + rank) over the rankings each id appears in."""
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if weight <= 0:
            continue
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return scores


def rank_pages(scores: dict[str, float], page_of: Callable[[str], str], k: int, page_weight: float) -> list[str]:
    """The best chunk of each of the ``k`` best pages, best page first.

    A page's score is its best chunk's plus ``page_weight`` times the sum of its other chunks'
    (0: pages ranked by their best chunk alone, i.e. one hit per page).
    """
    best: dict[str, str] = {}
    total: dict[str, float] = {}
    for chunk_id in sorted(scores, key=lambda c: -scores[c]):
        page = page_of(chunk_id)
        if page not in best:
            best[page] = chunk_id
            total[page] = scores[chunk_id]
        else:
            total[page] += page_weight * scores[chunk_id]
    pages = sorted(best, key=lambda p: -total[p])  # stable: ties keep the best chunks' order
    return [best[p] for p in pages[:k]]
