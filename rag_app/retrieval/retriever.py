"""Find the chunks that answer a question, among the documents a user chose."""

from __future__ import annotations

import functools
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag_app.embedding.embedder import LocalEmbeddings
from rag_app.errors import DocumentNotFoundError, InvalidRequestError
from rag_app.queries import normalize_query
from rag_app.records import DocumentInfo, SearchHit, chunk_id, parse_chunk_id
from rag_app.retrieval.boosts import OPENING_CHARS, asked_statements, opening_statement
from rag_app.retrieval.fusion import RankingOptions, fused_scores, fusion_weights, rank_pages, statement_boosts
from rag_app.retrieval.rerank import CrossEncoderReranker
from rag_app.storage.chunk_table import document_query_terms, name_terms, term_parts
from rag_app.storage.store import DocumentStore

log = logging.getLogger(__name__)
MAX_K = 200


@dataclass
class SearchResult:
    """Hits best first, plus anything the user should know about what was searched."""

    query: str
    hits: list[SearchHit]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"query": self.query, "hits": [h.to_dict() for h in self.hits], "warnings": self.warnings}


def validate_query(query: str, k: int) -> str:
    """The stripped query, or a clear error for an empty one or a k out of range."""
    query = (query or "").strip()
    if not query:
        raise InvalidRequestError("the question is empty")
    if not 1 <= k <= MAX_K:
        raise InvalidRequestError(f"k must be between 1 and {MAX_K}, got {k}")
    return query


class Retriever:
    """Dense (cosine) search; in ``hybrid`` mode fused by weighted reciprocal rank with BM25 and with
    a ranking by the document a chunk comes from, then one hit per page.

    The document ranking exists because questions name a company and a year ("3M's FY2018 capital
    expenditure") that most chunks of that company's report never repeat: a chunk's text cannot
    say which report it is in, its document's file name and cover page can. Measured on
    financebench_dev / docugami_sec10q (docs/benchmarks.md), dense + BM25 alone lost documents.
    """

    def __init__(
        self,
        store: DocumentStore,
        embeddings: LocalEmbeddings,
        mode: str = "hybrid",
        candidates: int = 50,
        rrf_k: int = 60,
        document_weight: float = 3.0,
        ranking: RankingOptions | None = None,
        reranker: CrossEncoderReranker | None = None,
        statement_weight: float = 1.0,
    ) -> None:
        self.store = store
        self.embeddings = embeddings
        self.mode = mode
        self.candidates = candidates
        self.ranking = ranking or RankingOptions(
            document_weight=document_weight, rrf_k=rrf_k, statement_weight=statement_weight
        )
        self.reranker = reranker

    def search(self, query: str, k: int, files: Sequence[str] | None = None) -> SearchResult:
        query = validate_query(query, k)
        self.store.refresh()
        documents = self.store.list_documents()
        scope, warnings = self._scope(documents, files)
        if not scope:
            return SearchResult(query, [], warnings)
        vector = self.embeddings.embed_query(query)
        current = {d.sha256 for d in documents if d.embedding == self.embeddings.fingerprint}
        shas = None if scope == current else scope  # no filter when everything is searched: faster
        if self.mode == "dense":
            hits = self.store.search_dense(vector, k, shas)
        else:
            hits = self._hybrid(query, vector, k, shas, documents)
        _name_hits(hits, documents)
        return SearchResult(query, hits, warnings)

    def _hybrid(self, query, vector, k: int, shas: set[str] | None, documents) -> list[SearchHit]:
        self.store.sync_lexical()  # cheap when in step; rebuilds an index of an older layout
        weights = fusion_weights(query, getattr(self.embeddings, "reads_chinese", True), self.ranking)
        dense = self.store.nearest_ids(vector, max(k, self.candidates), shas) if weights[0] else []
        # "FY2018" also as "2018", "10-K" as "10K", 年报 as 年度报告
        terms = normalize_query(query) if self.ranking.normalize_queries else query
        lexical = self.store.search_lexical(terms, self.candidates, shas)
        if not weights[0] and not lexical:  # nothing matched the words either: the nearest passages, not none
            weights = [1.0, *weights[1:]]
            dense = self.store.nearest_ids(vector, max(k, self.candidates), shas)
        candidates = list(dict.fromkeys(dense + lexical))
        by_document = self._by_document(terms, candidates, documents)
        scores = fused_scores([dense, lexical, by_document], weights, self.ranking.rrf_k)
        depth = max(k, self.reranker.depth) if self.reranker else k
        boosts = self._statement_boosts(query, scores, documents)
        chosen = rank_pages(scores, _page_of, depth, self.ranking.page_weight, boosts)
        hits = self.store.hits(chosen, vector)
        ranked = [hits[i] for i in chosen if i in hits]
        return self.reranker.rerank(query, ranked)[:k] if self.reranker else ranked

    def _statement_boosts(self, query: str, scores: dict[str, float], documents: list[DocumentInfo]) -> dict | None:
        """Page boosts for a question naming a financial statement (rag_app.retrieval.boosts); None when off or unnamed."""
        wanted = asked_statements(query) if self.ranking.statement_weight > 0 else frozenset()
        if not wanted or not scores:
            return None
        ranked = [_page_of(c) for c in rank_pages(scores, _page_of, len(scores), self.ranking.page_weight)]
        by_sha = {d.sha256: d for d in documents if d.embedding == self.embeddings.fingerprint}

        def statement_pages(sha: str) -> list[int]:
            if sha not in by_sha:
                return []
            openings = self.store.page_openings(by_sha[sha], OPENING_CHARS)
            return [page for page, text in openings.items() if opening_statement(text) in wanted]

        boosts = statement_boosts(ranked, statement_pages, self.ranking)
        return {page: (boost, chunk_id(page[0], page[1], 0)) for page, boost in boosts.items()}

    def _by_document(self, query: str, candidates: list[str], documents: list[DocumentInfo]) -> list[str]:
        """Candidates whose document's names and cover share rare terms with the question, best first."""
        covers = self.store.cover_terms()
        named = tuple((d.sha256, d.name, covers.get(d.sha256, frozenset())) for d in documents)
        titles, idf = _title_terms(named, self.ranking.title_parts)
        if len(titles) < 2:
            return []
        asked = document_query_terms(query)
        score = {sha: sum(idf[t] for t in asked & terms) for sha, terms in titles.items()}
        sha_of = {c: parse_chunk_id(c).sha256 for c in candidates}
        matching = [c for c in candidates if score.get(sha_of[c], 0.0) > 0]
        return sorted(matching, key=lambda c: -score[sha_of[c]])  # stable: ties keep the candidates' order

    def _scope(self, documents: list[DocumentInfo], files: Sequence[str] | None) -> tuple[set[str], list[str]]:
        """File contents to search: complete, chosen, embedded with the current model; and warnings."""
        warnings = _stale_warnings(documents, self.embeddings.fingerprint)
        chosen = _select(documents, files) if files else documents
        scope = self.store.searchable(chosen)
        if not scope and not documents:
            warnings.append(f"collection {self.store.collection!r} has no documents yet: ingest some first")
        return scope, warnings


@functools.lru_cache(maxsize=8)
def _title_terms(
    named: tuple[tuple[str, str, frozenset[str]], ...], title_parts: bool
) -> tuple[dict[str, set[str]], dict[str, float]]:
    """Each file content's title terms (its names' and its cover's) and their idf over the documents.

    Cached on the documents' names and covers: rebuilding it took ~15 ms a question at 200 documents.
    """
    titles: dict[str, set[str]] = {}
    for sha, name, cover in named:
        titles.setdefault(sha, set(cover)).update(name_terms(name))
    if title_parts:  # a cover's "amazon.com" also matches a question's "Amazon"
        titles = {sha: terms | term_parts(terms) for sha, terms in titles.items()}
    frequency = Counter(term for terms in titles.values() for term in terms)
    return titles, {term: math.log(len(titles) / count) for term, count in frequency.items()}


def _page_of(chunk_id: str) -> tuple[str, int]:
    return parse_chunk_id(chunk_id).page_key


def _select(documents: list[DocumentInfo], files: Sequence[str]) -> list[DocumentInfo]:
    known = {d.name for d in documents}
    unknown = [f for f in files if f not in known]
    if unknown:
        raise DocumentNotFoundError(
            f"no document named {', '.join(map(repr, unknown))} (see `python -m ingest --list`)"
        )
    wanted = set(files)
    return [d for d in documents if d.name in wanted]


def _stale_warnings(documents: list[DocumentInfo], fingerprint: str) -> list[str]:
    stale = [d for d in documents if d.embedding != fingerprint]
    if not stale:
        return []
    models = sorted({d.embedding.split("|")[0] for d in stale})
    return [
        f"{len(stale)} document(s) were embedded with {', '.join(models)} and are not searched with "
        f"{fingerprint.split('|')[0]}: re-ingest them ({', '.join(d.name for d in stale[:5])}"
        f"{'…' if len(stale) > 5 else ''})"
    ]


def _name_hits(hits: list[SearchHit], documents: list[DocumentInfo]) -> None:
    """Show each hit under a name that is still stored (content may be stored under several)."""
    names_by_sha: dict[str, list[str]] = {}
    for doc in documents:
        names_by_sha.setdefault(doc.sha256, []).append(doc.name)
    for hit in hits:
        names = names_by_sha.get(hit.sha256, [])
        if names and hit.file not in names:
            hit.file = names[0]


def stitch(pieces: list[tuple[int, str]]) -> str:
    """Join overlapping chunks of one page, given as (offset, text) in page order, into one passage."""
    text, end = "", -1
    for offset, piece in pieces:
        if offset + len(piece) <= end:
            continue
        if end < 0:
            text = piece
        elif offset <= end:
            text += piece[end - offset :]
        else:
            text += " " + piece
        end = offset + len(piece)
    return text


def page_context(store: DocumentStore, hit: SearchHit, neighbours: int) -> str:
    """The hit with up to ``neighbours`` chunks before and after it on the same page."""
    pieces = store.page_chunks(hit.sha256, hit.page)
    index = next((i for i, (offset, _) in enumerate(pieces) if offset == hit.offset), None)
    if index is None or neighbours <= 0:
        return hit.text
    return stitch(pieces[max(0, index - neighbours) : index + neighbours + 1])
