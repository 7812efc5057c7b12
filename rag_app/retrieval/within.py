"""Rankings of the pages inside the documents a question is routed to.

The document router finds the right filing for most questions (financebench_dev: first for most, in the
top 5 for nearly all); what loses them is the order of that filing's own pages, since the fusion ranks
chunks across the whole collection and a filing's 50 best chunks by BM25 or by vector need not include
the page that answers. So, for the ``documents`` best documents of the fused ranking (the documents of
its best pages), two more rankings of their pages, added as reciprocal-rank scores:

* ``lexical``: BM25 with each *page* one document and idf over the document's pages (a page
  representation beside the chunks: a table's row labels, its column headers and its title count
  together, though the chunker split them; words every page of the filing shares count for little; with
  ``within_lexicon_weight``, on in "slots", the lexicon's other names of a measure the question names count
  too: "operating cash flow" finds "net cash provided by operating activities");
* ``dense``: the question's nearest chunks within the document alone (``candidates`` of them), instead
  of the collection's nearest, which other filings crowd out;
* page vectors: each page as the mean of its chunks' vectors (``DocumentStore.page_ranking``), what the
  page is about as a whole rather than its one closest chunk.

By default ("add") the page BM25 is on for English questions at weight 0.5, in documents of 10 pages or more,
added to the pages' scores; the others are off. ``within_order`` "slots" (RAG_RETRIEVAL_WITHIN=slots) fuses
them with the fusion's own order of the document's pages, and the pages fill the places the fusion gave the
document (:class:`rag_app.retrieval.fusion.RankingOptions`, ``Retriever._in_slots``); measured in
docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rag_app.retrieval.boosts import Page


def best_documents(ranked_pages: Sequence[Page], count: int) -> list[str]:
    """The first ``count`` documents (sha256) among pages ranked best first."""
    return list(dict.fromkeys(sha for sha, _ in ranked_pages))[:count]


def reciprocal(ranking: Sequence[Page], weight: float, rrf_k: int) -> dict[Page, float]:
    """``weight / (rrf_k + rank)`` for each page of a ranking, best first."""
    return {page: weight / (rrf_k + rank) for rank, page in enumerate(ranking, 1)}


def lexical_pages(sha: str, page_scores: dict[int, float]) -> list[Page]:
    """A document's pages by their BM25 as whole pages, best first (ties: earlier page first)."""
    return [(sha, page) for page, _ in sorted(page_scores.items(), key=lambda item: (-item[1], item[0]))]


def dense_pages(nearest_chunks: Sequence[str], page_of: Callable[[str], Page]) -> list[Page]:
    """The pages of a document's nearest chunks, in the order of each page's nearest."""
    return list(dict.fromkeys(page_of(chunk) for chunk in nearest_chunks))
