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
* A question that names a primary financial statement ("... based on the balance sheet") is answered by
  the page that opens with that statement's title, a table the chunk rankings place badly. With
  ``statement_weight`` above 0 (the default, 1), such pages of the best-ranked documents get a page-level
  boost (:func:`statement_boosts`, :mod:`rag_app.retrieval.boosts`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

from rag_app.text.clean import is_chinese


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
    statement_weight: float = 1.0  # boost of the pages opening with a financial statement the question names (0: off)
    statement_documents: int = 2  # ... among the pages of this many best-ranked documents
    statement_rrf_k: int = 10  # the boost is statement_weight / (statement_rrf_k + rank among those pages)


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


def rank_pages(
    scores: dict[str, float],
    page_of: Callable[[str], Hashable],
    k: int,
    page_weight: float,
    boosts: Mapping[Hashable, tuple[float, str]] | None = None,
) -> list[str]:
    """The best chunk of each of the ``k`` best pages, best page first.

    A page's score is its best chunk's plus ``page_weight`` times the sum of its other chunks'
    (0: pages ranked by their best chunk alone, i.e. one hit per page), plus its boost in ``boosts``
    (page -> (score added, the chunk that stands for the page when none of its chunks is a candidate)).
    """
    best: dict[Hashable, str] = {}
    total: dict[Hashable, float] = {}
    for chunk_id in sorted(scores, key=lambda c: -scores[c]):
        page = page_of(chunk_id)
        if page not in best:
            best[page] = chunk_id
            total[page] = scores[chunk_id]
        else:
            total[page] += page_weight * scores[chunk_id]
    for page, (boost, chunk_id) in (boosts or {}).items():
        best.setdefault(page, chunk_id)
        total[page] = total.get(page, 0.0) + boost
    pages = sorted(best, key=lambda p: -total[p])  # stable: ties keep the best chunks' order
    return [best[p] for p in pages[:k]]


def statement_boosts(
    ranked_pages: Sequence[tuple[str, int]],
    statement_pages: Callable[[str], Sequence[int]],
    options: RankingOptions,
) -> dict[tuple[str, int], float]:
    """Boosts of the pages that open with a statement the question names, within the best-ranked documents.

    ``ranked_pages``: (sha256, page) best first, as the fusion ranks them; ``statement_pages(sha256)``: the
    pages of that file content opening with a statement the question names. Of the first
    ``statement_documents`` documents in ``ranked_pages``, those pages are ranked as the fusion ranked them
    (pages it did not rank after, by document and page) and given ``statement_weight / (statement_rrf_k + rank)``.
    """
    shas = list(dict.fromkeys(sha for sha, _ in ranked_pages))[: options.statement_documents]
    position = {page: i for i, page in enumerate(ranked_pages)}
    found = [(sha, page) for sha in shas for page in statement_pages(sha)]
    found.sort(key=lambda p: (position.get(p, len(position)), shas.index(p[0]), p[1]))
    return {page: options.statement_weight / (options.statement_rrf_k + rank) for rank, page in enumerate(found, 1)}
