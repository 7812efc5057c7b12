"""Find the chunks that answer a question, among the documents a user chose."""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from rag_app.embedding.chinese import ChineseReader
from rag_app.embedding.protocol import Embedder
from rag_app.errors import DocumentNotFoundError, TextsLostError
from rag_app.records import DocumentInfo, SearchHit, chunk_id, parse_chunk_id
from rag_app.retrieval import reader_pages
from rag_app.retrieval.blas import blas_on_one_thread
from rag_app.retrieval.boosts import Formalities, Page, PageBoost
from rag_app.retrieval.documents import DocumentRoute, PageNames, latest_words, route, symbol_names
from rag_app.retrieval.explanations import Explanations
from rag_app.retrieval.fusion import (
    READ_CHINESE,
    RankingOptions,
    fused_scores,
    fusion_weights,
    rank_pages,
    within_weights,
)
from rag_app.retrieval.rerank import CrossEncoderReranker
from rag_app.retrieval.within import best_documents, dense_pages, lexical_pages, reciprocal
from rag_app.storage import exact
from rag_app.storage.store import DocumentStore
from rag_app.text.clean import is_table_row
from rag_app.text.lexicon import english_names, expanded
from rag_app.text.terms import PERIOD_TERM, read_question, terms_of, unnamed

log = logging.getLogger(__name__)
# How many times the depth asked the ranking hands the formal pages' step (Retriever._formal_last), which reads pages
# only until it has the depth of pages that are not formal: a question about a company's "10-Qs" may find 16 of 20
# pages its officers' certifications
FORMAL_ROOM = 4
# (file name, pages read, pages): the Chinese reader reading an English document's pages for a question, once
ReadingProgress = Callable[[str, int, int], None]
# File content -> its cover's text (the same content has the same cover in every collection), oldest first
_COVERS: dict[str, str] = {}
COVERS_KEPT = 4096
# Pages Retriever.warm reads at most: half of what the formal pages' cache keeps (boosts.FORMAL_PAGES_KEPT)
WARM_PAGES = 32_768


@dataclass
class SearchResult:
    """Hits best first, the documents the question names (:mod:`rag_app.retrieval.documents`), and anything
    the user should know about what was searched."""

    query: str
    hits: list[SearchHit]
    warnings: list[str] = field(default_factory=list)
    route: DocumentRoute = field(default_factory=DocumentRoute)

    def to_dict(self) -> dict:
        return {"query": self.query, "hits": [h.to_dict() for h in self.hits], "warnings": self.warnings}


class Retriever:
    """Dense (cosine) search; in ``hybrid`` mode fused by weighted reciprocal rank with BM25 and with
    a ranking by the document a chunk comes from, plus page ``boosts``, then one hit per page.

    The document ranking exists because questions name a company and a year ("3M's FY2018 capital
    expenditure") that most chunks of that company's report never repeat. Measured on
    financebench_dev / docugami_sec10q (docs/benchmarks.md), dense + BM25 alone lost documents.
    The caller validated the query and k (:mod:`rag_app.requests`).
    """

    reading_chinese = READ_CHINESE  # what changes in the ranking of a Chinese question the Chinese reader embeds
    # on the copy that ranks a Chinese question of a library holding English documents (Retriever._reader_reading)
    reading: ReaderReading | None = None
    # on the copy that ranks a question of documents in the other language (Retriever._searcher_for): an English
    # question of Chinese reports, searched by its terms' Chinese names too
    across: bool = False
    # on the copy that ranks a question the reader does not read (an English one) of a library holding documents it
    # read and documents it did not (Chinese reports beside English filings): the reader's ranking of its documents
    # (Retriever._searcher_for)
    beside: ReaderBeside | None = None

    def __init__(
        self,
        store: DocumentStore,
        embeddings: Embedder,
        mode: str = "hybrid",
        candidates: int = 50,
        ranking: RankingOptions | None = None,
        boosts: Sequence[PageBoost] = (),
        reranker: CrossEncoderReranker | None = None,
        chinese: ChineseReader | None = None,
        dense_candidates: int | None = None,
        formalities: Formalities | None = None,
        explanations: Explanations | None = None,
    ) -> None:
        self.store = store
        self.embeddings = embeddings
        self.mode = mode
        self.candidates = candidates  # chunks of the BM25 ranking, and of the dense one unless dense_candidates
        self.dense_candidates = dense_candidates or candidates
        self.ranking = ranking or RankingOptions()
        self.boosts = list(boosts)
        self.reranker = reranker
        self.chinese = chinese  # embeds Chinese questions, compared with the documents it read (DocumentInfo.reader)
        self.formalities = formalities  # a report's formal pages, put below every other page (None: ranked as any)
        # for a question asking for a reason, the pages giving one ranked inside the best documents (None: none)
        self.explanations = explanations

    def search(
        self, query: str, k: int, files: Sequence[str] | None = None, reader_progress: ReadingProgress | None = None
    ) -> SearchResult:
        """The ``k`` best passages for ``query``, one a page (of ``files`` only, where given); ``reader_progress(file,
        pages read, pages)``: told while the Chinese reader reads an English document's pages for this question, the
        first time one reaches it (seconds on a CPU: :mod:`rag_app.retrieval.reader_pages`)."""
        blas_on_one_thread()  # numpy's products beside torch's embedding, without their threads competing
        asked, query = query, self.read(query)
        self.store.refresh()
        documents = self.store.list_documents()
        scope, warnings = self._scope(documents, files)
        scope = self._with_texts(scope, documents, warnings)
        if not scope:
            return SearchResult(asked, [], warnings)
        searcher, reader = self._searcher_for(query, documents, scope)
        unread = self._unread(query, documents, scope)
        query = self._with_english_names(query, unread)
        self.store.sync_lexical()  # cheap when in step; rebuilds a chunk table of an older layout
        covers = self._covers()
        routed = self._route(query, documents, covers)
        query = self._with_symbol_names(query, covers, routed, documents)
        unnamed_text, titled = searcher._unnamed_question(query, routed, scope) if self.mode != "dense" else ("", ())
        vector, unnamed_vector = _embedded(reader or self.embeddings, query, unnamed_text)
        named = routed.best_named(sorted(scope)) if unread else set()
        reading = self._reader_reading(query, unread, named, vector if reader else None, reader_progress)
        if reading is not None:
            searcher.reading = reading  # a copy: the reader reads this question (_searcher_for)
        current = {d.sha256 for d in documents if d.embedding == self.embeddings.fingerprint}
        shas = None if scope == current else scope  # no filter when everything is searched: faster
        dense_shas = _read_by(reader.name if reader else "", documents, scope, shas)
        if self.mode == "dense":
            hits = self.store.search_dense(vector, k, dense_shas)
        else:
            embedded = (vector, unnamed_vector, frozenset(titled))
            hits = searcher._hybrid(query, embedded, k, (shas, dense_shas), documents, routed)
        _name_hits(hits, documents)
        return SearchResult(asked, hits, warnings, routed)

    @staticmethod
    def read(query: str) -> str:
        """The question as every ranking reads it (:func:`read_question`): in simplified characters, so that a question
        typed in traditional ones matches a report printed in simplified ones (and its terms, a traditional report's:
        the index reads both so), and with its abbreviated periods written out ("Nike's FY19 revenue" -> "Nike's
        FY2019 revenue"), so that a question routes to its year's filing however it writes the year."""
        return read_question(query)

    def _searcher_for(
        self, query: str, documents: list[DocumentInfo], scope: set[str]
    ) -> tuple[Retriever, ChineseReader | None]:
        """The retriever that ranks ``query`` and the Chinese reader that embeds it (None: the main model). Itself
        for a question the reader does not read. For one it reads, where it read a document searched: its pages
        inside the best documents ranked in the fusion's places, by their page BM25 and page vectors too
        (:data:`READ_CHINESE`). Where it read none of them (a Chinese question of an English library): ranked as
        without the reader, by its words, the names and, where neither matches, the main model's nearest passages.
        A question it does not read (an English one) whose searched documents it read every one of (a library of
        Chinese reports, or those chosen): the reader embeds it too (multilingual-e5 reads both languages), and its
        terms' Chinese names count in the chunk BM25 (``reader_lexicon_weight``), since the main model's vector
        compares with none of those documents and its words match none of theirs (:attr:`across`)."""
        reader = self.chinese
        if reader is None:
            return self, None
        if not reader.reads(query):
            if any(d.reader != reader.name for d in documents if d.sha256 in scope):  # scope is never empty here
                return self._beside(query, reader, documents, scope), None
            searcher = copy.copy(self)
            searcher.ranking, searcher.across = replace(self.ranking, **self.reading_chinese), True
            return searcher, reader
        searcher = copy.copy(self)
        if any(d.reader == reader.name for d in documents if d.sha256 in scope):
            searcher.ranking = replace(self.ranking, **self.reading_chinese)
            return searcher, reader
        searcher.chinese = None
        return searcher, None

    def _beside(self, query: str, reader: ChineseReader, documents: list[DocumentInfo], scope: set[str]) -> Retriever:
        """Itself for a question the reader does not read, where it read none of the documents searched; where it read
        some (a library of English filings and Chinese reports): a copy on which the reader ranks those documents'
        passages for the question beside the main model's ranking of the others (``reader_beside_weight``), and the
        Chinese names of its terms may count in the chunk BM25 too (``reader_beside_lexicon_weight``, off by default).
        Without it an English question about a Chinese report in such a library got no dense ranking of that report's
        passages, and its words matched none of them."""
        if not self.ranking.reader_beside_weight:
            return self
        read = frozenset(d.sha256 for d in documents if d.sha256 in scope and d.reader == reader.name)
        if not read:
            return self
        searcher = copy.copy(self)
        searcher.beside = ReaderBeside(reader, query, read)
        return searcher

    def _covers(self) -> dict[str, frozenset[str]]:
        """Each file content's cover terms, with the listing symbols it states (rag_app.storage.chunk_table)."""
        return self.store.cover_terms()

    def _with_symbol_names(
        self, query: str, covers: dict[str, frozenset[str]], routed: DocumentRoute, documents: list[DocumentInfo]
    ) -> str:
        """The question with the words naming the company of each listing symbol it writes (:func:`symbol_names`)
        after it, as the rankings of passages read it: routed by "AMZN" to Amazon's 10-K, "AMZN's FY2019 net income"
        drew its candidate passages from the whole collection by its other words (Kraft Heinz's income statement),
        and the route had nothing of Amazon's to lift; its name matches Amazon's pages as the same question by name
        does. The question as asked is unchanged (the search result keeps it)."""
        files = {d.sha256: d.name for d in documents}
        names = symbol_names(query, covers, routed.titles, files, self._page_names(documents).share)
        return f"{query} ({' '.join(names)})" if names else query

    def _route(self, query: str, documents: list[DocumentInfo], covers: dict[str, frozenset[str]]) -> DocumentRoute:
        """The documents the question names, by their file names, covers and the names their pages run with."""
        return route(query, documents, covers, self.store.documents_with, self._cover_text, self._page_names(documents))

    def _page_names(self, documents: list[DocumentInfo]) -> PageNames:
        """What the route reads of the documents' pages: which pages hold a term, and the best pages' texts."""
        pages = {d.sha256: max(d.pages, 1) for d in documents}
        return PageNames(self.store.pages_with, pages, self._texts_holding)

    def _texts_holding(self, term: str, sha256: str, pages: int = 3) -> list[str]:
        """The texts of the ``pages`` pages of a file content that BM25 ranks best for ``term``."""
        best = sorted(self.store.page_scores(term, sha256).items(), key=lambda kv: (-kv[1], kv[0]))[:pages]
        return [text for page, _ in best for _, text in self.store.page_chunks(sha256, page)]

    def _cover_text(self, sha256: str) -> str:
        """A file content's cover as text (its first chunks of page 1), to read the period it reports on; kept per
        content (a question asking for the latest report of all reads every cover)."""
        if (cover := _COVERS.get(sha256)) is None:
            cover = " ".join(text for _, text in self.store.page_chunks(sha256, 1)[:2])
            if cover:  # none while its texts are lost or not yet written: read again next time
                if len(_COVERS) >= COVERS_KEPT:
                    _COVERS.pop(next(iter(_COVERS)), None)
                _COVERS[sha256] = cover
        return cover

    def _with_texts(self, scope: set[str], documents: list[DocumentInfo], warnings: list[str]) -> set[str]:
        """The file contents of ``scope`` whose chunk texts are there to show; the others (their chunk table
        was lost or damaged) are named in a warning, or, when nothing else is left, in a TextsLostError
        (never an empty answer that looks like "nothing matches")."""
        lost = self.store.lost_texts(
            [d for d in documents if d.sha256 in scope and d.embedding == self.store.embedding]
        )
        if not lost:
            return scope
        gone = {d.sha256 for d in documents if d.name in lost.documents}
        if not scope - gone:
            raise TextsLostError(lost.message())
        warnings.append(lost.message())
        return scope - gone

    def weights(self, query: str) -> list[float]:
        """Weights of the (dense, lexical, document) rankings for ``query``."""
        reads = getattr(self.embeddings, "reads_chinese", True) or self.chinese is not None
        return fusion_weights(query, reads, self.ranking)

    def _hybrid(
        self, query, embedded, k: int, scopes: tuple[set[str] | None, set[str] | None], documents, routed: DocumentRoute
    ) -> list[SearchHit]:
        """``embedded``: the question's vector, and that of the question without the names of the documents it names
        with those documents (:meth:`_unnamed_question`; None and none); ``scopes``: the file contents searched
        (None: all), and those of them the question's vector can be compared with (read by the same model)."""
        vector, dense_shas = embedded[0], scopes[1]
        weights, _, scores = self._fused(query, vector, k, scopes, documents, routed)
        depth = max(k, self.reranker.depth) if self.reranker else k
        ranked = [_page_of(c) for c in rank_pages(scores, _page_of, len(scores))] if scores else []
        page_counts = {d.sha256: d.pages for d in documents}
        among = among_routed(ranked, routed, self.ranking.document_share)
        boosts = self._page_boosts(query, among, documents)
        deeper = FORMAL_ROOM * depth if self.formalities else depth  # room for the formal pages that go last
        vectors = self._vectors(embedded, ranked, page_counts) if weights[0] else None
        if self.ranking.within_order == "slots":
            every = rank_pages(scores, _page_of, len(scores) + len(boosts), _cited(boosts))
            inside = (query, vectors, dense_shas, page_counts, boosts)
            chosen = self._in_slots(every, deeper, *inside)
        else:
            within = self._within(query, vectors, ranked, dense_shas, page_counts)
            chosen = rank_pages(scores, _page_of, deeper, _cited(boosts, within))
        chosen = self._formal_last(query, chosen, depth)[:depth]
        hits = self._hits(chosen, vector)
        ranked = [hits[i] for i in chosen if i in hits]
        return self.reranker.rerank(query, ranked)[:k] if self.reranker else ranked

    def _fused(
        self, query, vector, k: int, scopes: tuple[set[str] | None, set[str] | None], documents, routed: DocumentRoute
    ) -> tuple[list[float], list[list[str]], dict[str, float]]:
        """The (dense, lexical, document) rankings of the question's candidate chunks, their weights, and each
        candidate's score in their weighted reciprocal-rank fusion."""
        shas, dense_shas = scopes
        weights = self.weights(query)
        named = self._named(routed, documents, shas)
        if weights[0] and not self._sees_named(named, dense_shas):
            weights = [0.0, *weights[1:]]
        dense = self.store.nearest_ids(vector, max(k, self.dense_candidates), dense_shas) if weights[0] else []
        searched, names = self._searched_words(query)
        term_weights = {
            **names,
            **self._title_terms(query, routed, documents),
            **dict.fromkeys(latest_words(query), 0.0),
        }
        lexical = self.store.search_lexical(searched, self.candidates, shas, term_weights)
        if not weights[0] and not lexical:  # nothing matched the words either: the nearest passages, not none
            weights = [1.0, *weights[1:]]
            dense = self.store.nearest_ids(vector, max(k, self.dense_candidates), dense_shas)
        beside = self._beside_ranking(k) if self.beside and self._sees_named(named, self.beside.shas) else []
        candidates = list(dict.fromkeys(dense + lexical + beside))
        by_names = self.ranking.document_order == "named"
        rankings = [dense, lexical, _by_document(candidates, routed, self.ranking.document_share, by_names)]
        if beside:
            rankings, weights = [*rankings, beside], [*weights, self.ranking.reader_beside_weight]
        return weights, rankings, fused_scores(rankings, weights, self.ranking.rrf_k)

    def _hits(self, chosen: list[str], vector: list[float]) -> dict[str, SearchHit]:
        """The chosen chunks as hits, scored by cosine similarity with the question's vector of the model that read
        each (the reader's for the documents it read, in a library of both: :meth:`_beside`)."""
        if self.beside is None:
            return self.store.hits(chosen, vector)
        read = [c for c in chosen if parse_chunk_id(c).sha256 in self.beside.shas]
        if not read:
            return self.store.hits(chosen, vector)
        others = [c for c in chosen if parse_chunk_id(c).sha256 not in self.beside.shas]
        return {**self.store.hits(others, vector), **self.store.hits(read, self.beside.vector())}

    def _named(self, routed: DocumentRoute, documents: list[DocumentInfo], shas: set[str] | None) -> set[str]:
        """The documents searched that the question names best (DocumentRoute.best_named; none where it names none)."""
        if self.ranking.dense_without_named or (self.beside is None and self.chinese is None):
            return set()
        current = self.embeddings.fingerprint
        searched = (d.sha256 in shas if shas is not None else d.embedding == current for d in documents)
        return routed.best_named([d.sha256 for d, kept in zip(documents, searched, strict=True) if kept])

    @staticmethod
    def _sees_named(named: set[str], comparable: set[str] | frozenset[str] | None) -> bool:
        """Whether a dense ranking over ``comparable`` (None: every document searched) can rank a document the question
        names (``named``: :meth:`_named`; none named: it can)."""
        return not named or comparable is None or bool(named & comparable)

    def _searched_words(self, query: str) -> tuple[str, Mapping[str, float]]:
        """The question's words as the chunk BM25 searches them, with the other names of its measures and their
        weights: those in its own language (``lexicon_weight``); for a question of documents in the other language,
        those in that language (``reader_lexicon_weight``); for a question of documents in both (:meth:`_beside`),
        the two (the other language's at ``reader_beside_lexicon_weight``)."""
        options = self.ranking
        if (self.reading is not None or self.across) and options.reader_lexicon_weight:  # the other language's
            return expanded(query, options.reader_lexicon_weight, across=True)
        searched, names = expanded(query, options.lexicon_weight)
        if self.beside is None or not options.reader_beside_lexicon_weight:
            return searched, names
        other, other_names = expanded(query, options.reader_beside_lexicon_weight, across=True)
        added = other[len(query) :]  # what expanded appends: the names' terms the question does not hold
        return searched + added, MappingProxyType({**other_names, **names})

    def _beside_ranking(self, k: int) -> list[str]:
        """The passages of the documents the reader read, nearest first to its vector of the question, for a question
        of a library holding both kinds (:meth:`_beside`); none for any other."""
        if self.beside is None:
            return []
        return self.store.nearest_ids(self.beside.vector(), max(k, self.dense_candidates), set(self.beside.shas))

    def _title_terms(self, query: str, routed: DocumentRoute, documents: list[DocumentInfo]) -> dict[str, float]:
        """The weight in the chunk BM25 ranking of the question's terms that title its best-routed documents and
        run through most of their pages (a running header, "常柴股份有限公司 2019 年年度报告全文")."""
        weight, share = self.ranking.title_term_weight, self.ranking.title_term_pages
        if weight == 1.0 or not routed.scores:
            return {}
        best = max(routed.scores.values())
        pages = {d.sha256: d.pages for d in documents}
        # a period a title names ("2019", "fy2018", "q2") still picks the right table column or year's note
        asked = {t for t in terms_of(query) if not PERIOD_TERM.fullmatch(t)}
        out: dict[str, float] = {}
        for sha in [sha for sha, score in routed.scores.items() if score >= best]:
            for term in (asked & routed.titles.get(sha, frozenset())) - set(out):
                if len(self.store.page_scores(term, sha)) >= share * max(pages.get(sha, 0), 1):  # pages holding it
                    out[term] = weight
        return out

    def _unnamed_question(self, query: str, routed: DocumentRoute, scope: set[str]) -> tuple[str, frozenset[str]]:
        """The question without the words that name the documents it names (:func:`unnamed`), and those documents,
        where its pages are to be ranked for it too; ("", none) where they are not (the rankings are off for this
        question, or it writes none of those names). The documents it names: those its names point to best
        (:meth:`DocumentRoute.best_named`), else those its words match best, else the one document searched."""
        options = self.ranking
        if (
            not (options.within_unnamed_dense_weight or options.within_unnamed_vector_weight)
            or not self.weights(query)[0]
        ):
            return "", frozenset()
        among = sorted(scope)
        titled = routed.best_named(among)
        if not titled and (best := max((routed.scores.get(sha, 0.0) for sha in among), default=0.0)) > 0:
            titled = {sha for sha in among if routed.scores.get(sha, 0.0) >= best}
        if not titled and len(among) == 1:
            titled = set(among)
        text = unnamed(
            query, frozenset().union(*(routed.titles.get(sha, frozenset()) for sha in titled)), routed.caseless
        )
        return ("", frozenset()) if text == query else (text, frozenset(titled))

    def _unread(self, query: str, documents: list[DocumentInfo], scope: set[str]) -> frozenset[str]:
        """The file contents searched that the Chinese reader did not embed (English ones), for a question it reads;
        none for any other question, or where no Chinese reader is configured."""
        reader = self.chinese
        if reader is None or not reader.reads(query):
            return frozenset()
        return frozenset(d.sha256 for d in documents if d.sha256 in scope and d.reader != reader.name)

    def _with_english_names(self, query: str, unread: frozenset[str]) -> str:
        """A Chinese question searching English documents (``unread``), with the English name of each company it
        names in Chinese after it (prompts/names: 沃尔玛 -> Walmart, 洛马 -> Lockheed Martin), as the route and the
        rankings of passages read it: the Chinese name is in no English filing's name, cover or pages. The question as
        asked is unchanged (the search result keeps it)."""
        names = english_names(query) if unread else []
        return f"{query} ({' '.join(names)})" if names else query

    def _reader_reading(
        self,
        query: str,
        unread: frozenset[str],
        named: set[str],
        vector: list[float] | None,
        progress: ReadingProgress | None = None,
    ) -> ReaderReading | None:
        """What the Chinese reader needs to rank, inside the best documents, the pages of the file contents searched
        it did not embed (``unread``: :meth:`_unread`, an English filing's) for a question it reads
        (:mod:`rag_app.retrieval.reader_pages`), and which those are (searched by the English names of what the
        question names: ``reader_lexicon_weight``); None where there are none. It reads the question whole: without
        the names of its documents (:meth:`_unnamed_question`) analyst_en_zh's tuning half lost (MRR 0.385 -> 0.339 at
        weight 0.5). ``vector``: the reader's vector of the question where it already embedded it (a library holding
        Chinese documents too); else it is embedded when first needed, so a library with no English document of
        ``within_min_pages`` pages never loads the reader. ``progress``: told while it reads a document's pages.

        ``named``: the documents the question names best (:meth:`DocumentRoute.best_named`). Where it names some, the
        reader reads the pages of those of them it did not embed, and no other's: "千味央厨的股权激励计划考核目标是什么？"
        names a Chinese report, and the second best document, an English 10-K of 304 pages that the pages of the
        inside rankings reach (``within_documents``), cost the question a minute of the reader's reading on 2 cores
        (three under load) for pages ranked below the report's. Where it names none, the best documents' pages are
        read, whichever they are."""
        if not unread:
            return None
        pages_of = unread & named if named else unread
        return ReaderReading(self.chinese, query, unread, vector, progress, frozenset(pages_of))

    def _read_pages(self, sha: str) -> tuple[list[Page], float, int] | None:
        """The Chinese reader's ranking of the pages of one file content it did not embed, for the question it read
        (``reading``, set by :meth:`search`), with its weight and k; None where there is none."""
        if self.reading is None or sha not in self.reading.pages_of or not self.ranking.within_reader_weight:
            return None
        reader = self.reading.reader
        folder = exact.reader_pages_folder(self.store.index().table.path, reader.name)

        told, name = self.reading.progress, sha[:12]

        def texts() -> dict[int, str]:  # only where the reader reads them now
            nonlocal name
            documents = self.store.documents_with_sha(sha)
            name = documents[0].name if documents else name
            return whole_pages(self.store, documents[0]) if documents else {}

        progress = (lambda done, total: told(name, done, total)) if told else None
        pages = reader_pages.ranked_pages(reader, self.reading.vector(), sha, folder, texts, progress)
        return [(sha, page) for page in pages], self.ranking.within_reader_weight, self.ranking.within_reader_rrf_k

    def _explaining(self, query: str, sha: str) -> tuple[list[Page], float, int] | None:
        """For a question asking for a reason, one file content's pages that give one, those giving most first
        (:mod:`rag_app.retrieval.explanations`), with the ranking's weight and k; None for any other question."""
        options, explanations = self.ranking, self.explanations
        if explanations is None or not options.within_explanation_weight or not explanations.asks(query):
            return None
        pages = explanations.ranked(sha, lambda: self._whole_pages(sha))
        return [(sha, page) for page in pages], options.within_explanation_weight, options.within_explanation_rrf_k

    def _whole_pages(self, sha: str) -> dict[int, str]:
        """Page -> whole text of one file content (none where it is gone)."""
        documents = self.store.documents_with_sha(sha)
        return whole_pages(self.store, documents[0]) if documents else {}

    def _vectors(self, embedded: tuple, ranked: list[Page], page_counts: dict[str, int]) -> tuple:
        """The question's vector, and for each best document (of ``within_min_pages`` or more) whose pages are also
        ranked for the question without its names, that question's vector: only a document the question names
        (``embedded``: :meth:`_hybrid`'s). Where the fusion put another filing first ("In Intel's Q2 2023 report"
        ranked NVIDIA's first), that filing's pages ranked for "analyze the relationship between global market
        revenues and ..." would crowd out the one asked about."""
        vector, unnamed_vector, titled = embedded
        best = [
            sha
            for sha in best_documents(ranked, self.ranking.within_documents)
            if sha in titled and page_counts.get(sha, 0) >= self.ranking.within_min_pages
        ]
        return vector, (dict.fromkeys(best, unnamed_vector) if unnamed_vector is not None else {})

    def _within(
        self, query: str, vectors, ranked: list[Page], dense_shas: set[str] | None, page_counts: dict[str, int]
    ) -> dict[Page, float]:
        """The rankings of the pages inside the best documents (:mod:`rag_app.retrieval.within`) of at least
        ``within_min_pages`` pages (``page_counts``: sha256 -> its page count), as scores to add; ``vectors``
        (:meth:`_vectors`) None: no dense ranking for this question."""
        options, out = self.ranking, {}
        for sha in best_documents(ranked, options.within_documents):
            if page_counts.get(sha, 0) < options.within_min_pages:
                continue
            for pages, weight, rrf_k in self._rankings_inside(query, vectors, sha, dense_shas):
                for page, score in reciprocal(pages, weight, rrf_k).items():
                    out[page] = out.get(page, 0.0) + score
        return out

    def _rankings_inside(
        self, query: str, vectors, sha: str, dense_shas: set[str] | None
    ) -> list[tuple[list[Page], float, int]]:
        """(pages best first, weight, k of its reciprocal rank where added) of each ranking of one document's pages on
        its own: its page BM25, its nearest chunks, its page vectors, the last two also for the question without the
        names of its documents (``vectors``: :meth:`_vectors`; None, or another model read the document: no dense
        ones); for a question asking for a reason, its pages that give one (:meth:`_explaining`); and for a Chinese
        question of a document the Chinese reader did not embed, the reader's ranking of its pages
        (:meth:`_read_pages`)."""
        options = self.ranking
        lexical_weight, dense_weight, vector_weight = within_weights(query, options)
        rankings = [read] if (read := self._read_pages(sha)) is not None else []
        if (explaining := self._explaining(query, sha)) is not None:
            rankings.append(explaining)
        other_language = (self.reading is not None and sha in self.reading.unread) or (
            self.beside is not None and sha in self.beside.shas
        )
        if other_language and options.within_reader_lexical_weight:
            searched, term_weights = expanded(query, 1.0, across=True)  # its words in the other language's names
            page_scores = self.store.page_scores(searched, sha, term_weights)
            weight = options.within_reader_lexical_weight
            rankings.append((lexical_pages(sha, page_scores), weight, options.within_reader_rrf_k))
        if lexical_weight:
            searched, term_weights = expanded(query, options.within_lexicon_weight)
            page_scores = self.store.page_scores(searched, sha, term_weights)
            rankings.append((lexical_pages(sha, page_scores), lexical_weight, options.rrf_k))
        if self.beside is not None and sha in self.beside.shas:  # the reader's vector, for the pages it read
            vectors = None if vectors is None else (self.beside.vector(), {})
        elif vectors is None or (dense_shas is not None and sha not in dense_shas):
            return rankings
        if vectors is None:
            return rankings
        readings = [(vectors[0], dense_weight, vector_weight, options.rrf_k)]
        if (unnamed_vector := vectors[1].get(sha)) is not None:
            unnamed_weights = (options.within_unnamed_dense_weight, options.within_unnamed_vector_weight)
            readings.append((unnamed_vector, *unnamed_weights, options.within_unnamed_rrf_k))
        for vector, dense, pages, rrf_k in readings:
            if dense:
                nearest = self.store.nearest_ids(vector, self.candidates, {sha})
                rankings.append((dense_pages(nearest, _page_of), dense, rrf_k))
            if pages:
                rankings.append(([(sha, page) for page in self.store.page_ranking(vector, sha)], pages, rrf_k))
        return rankings

    def _in_slots(
        self,
        every: list[str],
        depth: int,
        query: str,
        vectors,
        dense_shas: set[str] | None,
        page_counts: dict[str, int],
        boosts: dict[Page, float],
    ) -> list[str]:
        """The ``depth`` best pages (as chunk ids) of ``every`` candidate page ranked by the fusion, where the pages
        of the best documents (:func:`best_documents`, of ``within_min_pages`` pages or more) fill the places the
        fusion gave that document in the order of the reciprocal-rank fusion of its own order of them with the
        rankings inside the document (a page no chunk of which is a candidate is cited by its first chunk)."""
        options = self.ranking
        pages = [_page_of(c) for c in every]
        chunk_of = dict(zip(pages, every, strict=True))
        top = pages[:depth]
        for sha in best_documents(pages, options.within_documents):
            if page_counts.get(sha, 0) < options.within_min_pages:
                continue
            if not (inside := self._rankings_inside(query, vectors, sha, dense_shas)):
                continue
            lifted = sorted((p for p in boosts if p[0] == sha and boosts[p] > 0), key=lambda p: -boosts[p])
            rankings = [
                *((r, w) for r, w, _ in inside),
                ([p for p in pages if p[0] == sha], options.within_fusion_weight),
            ]
            rankings += [(lifted, options.within_boost_weight)] if lifted and options.within_boost_weight else []
            fused: dict[Page, float] = {}
            for ranking, weight in rankings:  # ties keep the first ranking's order (the page BM25's)
                for page, score in reciprocal(ranking, weight, options.within_rrf_k).items():
                    fused[page] = fused.get(page, 0.0) + score
            order = iter(sorted(fused, key=lambda p: -fused[p]))
            top = [next(order) if page[0] == sha else page for page in top]
        return [chunk_of.get(page) or chunk_id(page[0], page[1], 0) for page in top]

    def _formal_last(self, query: str, chosen: list[str], depth: int) -> list[str]:
        """The chosen chunks with those of a report's formal pages (:class:`Formalities`) after the others (the pages
        after the first ``depth`` others are not read)."""
        if self.formalities is None:
            return chosen
        by_page = {_page_of(c): c for c in chosen}
        text = functools.partial(whole_page, self.store)
        return [by_page[p] for p in self.formalities.last(query, list(by_page), text, depth)]

    def _page_boosts(self, query: str, ranked: list[Page], documents: list[DocumentInfo]) -> dict[Page, float]:
        """What the page boosts give the pages."""
        if not self.boosts or not ranked:
            return {}
        by_sha = {d.sha256: d for d in documents if d.embedding == self.embeddings.fingerprint}
        pages_opening = functools.partial(self._pages_opening, by_sha)
        total: dict[Page, float] = {}
        for boost in self.boosts:
            for page, score in boost(query, ranked, pages_opening).items():
                total[page] = total.get(page, 0.0) + score
        return total

    def _pages_opening(
        self, by_sha: dict[str, DocumentInfo], sha: str, chars: int, whole: dict[int, str] | None = None
    ) -> dict[int, str]:
        """The first ``chars`` characters of each page of a content (kept by the store); 0: whole pages, for
        headings anywhere on them (``whole`` where already read; not kept)."""
        if sha not in by_sha:
            return {}
        if chars > 0:
            return self.store.page_openings(by_sha[sha], chars)
        return whole if whole is not None else whole_pages(self.store, by_sha[sha])

    def warm(self, pages: int = WARM_PAGES) -> int:
        """Read now what a question reads of a document's pages the first time it reaches it, and keeps: which pages
        open each section of the page boosts, and which are formal pages (not which give reasons: counting them took a
        core 5.6 s more at 52 filings, and a question asking for one reads them the first time it reaches a document,
        0.2 to 0.4 s for a 300- to 550-page filing). For the collection's documents, in
        name order, up to ``pages`` pages (the caches keep more). The web app does it at start, in the background, so
        that a first question to a filing costs what the next ones do. Returns the documents read."""
        documents = [d for d in self.store.list_documents() if d.embedding == self.embeddings.fingerprint]
        by_sha = {d.sha256: d for d in documents}
        read = 0
        for count, (sha, document) in enumerate(by_sha.items()):
            whole = whole_pages(self.store, document)
            read += len(whole)
            if read > pages:
                return count
            opening = functools.partial(self._pages_opening, by_sha, whole=whole)
            for boost in self.boosts:
                boost.warm(sha, opening)
            if self.formalities is not None:
                for page, text in whole.items():
                    self.formalities.page_kind((sha, page), lambda text=text: text)
        return len(by_sha)

    def _scope(self, documents: list[DocumentInfo], files: Sequence[str] | None) -> tuple[set[str], list[str]]:
        """File contents to search: complete, chosen, embedded with the current model; and warnings."""
        warnings = _stale_warnings(documents, self.embeddings.fingerprint)
        chosen = _select(documents, files) if files else documents
        scope = self.store.searchable(chosen)
        if not scope and not documents:
            warnings.append(f"collection {self.store.collection!r} has no documents yet: ingest some first")
        return scope, warnings


class _ReadersVector:
    """The reader's vector of the question, embedded when first asked for (``reader``, ``query``, ``embedded``)."""

    def vector(self) -> list[float]:
        if self.embedded is None:
            self.embedded = self.reader.embed_query(self.query)
        return self.embedded


@dataclass
class ReaderReading(_ReadersVector):
    """The Chinese reader, a question it reads, the file contents searched it did not embed, and its vector of the
    question (embedded when first asked for, where it was not already)."""

    reader: ChineseReader
    query: str
    unread: frozenset[str]
    embedded: list[float] | None = None
    progress: ReadingProgress | None = None  # told while the reader reads a document's pages (Retriever.search)
    pages_of: frozenset[str] = frozenset()  # of ``unread``, those whose pages it may read (Retriever._reader_reading)


@dataclass
class ReaderBeside(_ReadersVector):
    """The Chinese reader, a question it does not read of a library holding documents it read and others, the file
    contents searched it read, and its vector of the question (embedded when first asked for)."""

    reader: ChineseReader
    query: str
    shas: frozenset[str]
    embedded: list[float] | None = None


def _cited(*added: dict[Page, float]) -> dict[Page, tuple[float, str]] | None:
    """Scores added to pages, summed, each page cited by its first chunk if none of its chunks is a
    candidate; None when nothing is added."""
    total: dict[Page, float] = {}
    for scores in added:
        for page, score in scores.items():
            total[page] = total.get(page, 0.0) + score
    return {page: (score, chunk_id(page[0], page[1], 0)) for page, score in total.items()} or None


def _embedded(model, query: str, unnamed_text: str) -> tuple[list[float], list[float] | None]:
    """The question's vector, and that of its form without the names of its documents where it has one (the two in
    one pass of the model where it can)."""
    if not unnamed_text:
        return model.embed_query(query), None
    if many := getattr(model, "embed_queries", None):
        vector, unnamed_vector = many([query, unnamed_text])
        return vector, unnamed_vector
    return model.embed_query(query), model.embed_query(unnamed_text)


def _read_by(reader: str, documents: list[DocumentInfo], scope: set[str], shas: set[str] | None) -> set[str] | None:
    """The file contents of ``scope`` that ``reader`` embedded ("": the main model), to compare the question's
    vector with; ``shas`` (the search's own filter) when every document was read by the same model."""
    readers = {d.reader for d in documents if d.sha256 in scope}
    if readers <= {reader}:
        return shas
    return {d.sha256 for d in documents if d.sha256 in scope and d.reader == reader}


def routed_documents(routed: DocumentRoute, share: float) -> set[str]:
    """The documents the route scores at least ``share`` of its best score, by all the question's terms or by its
    names alone (RankingOptions.document_share; 0: every document it scores)."""
    least = share * max(routed.scores.values(), default=0.0)
    least_named = share * max(routed.named.values(), default=0.0)
    return {
        sha
        for sha, score in routed.scores.items()
        if score > 0 and (score >= least or (least_named > 0 and routed.named.get(sha, 0.0) >= least_named))
    }


def among_routed(ranked: list[Page], routed: DocumentRoute, share: float) -> list[Page]:
    """The ranked pages the page boosts choose their documents among: those of the documents the document ranking
    holds (:func:`routed_documents`), where any is ranked; else all (``share`` 0: all, as before 2026-12-06). "Has MSFT
    increased its debt on balance sheet ...?" ranked JPMorgan's 10-Q second by its words once the other filings of
    2023 left the document ranking, and the statement boost, which lifts the balance sheets of the two best
    documents, put JPMorgan's first."""
    if share <= 0 or not routed.scores:
        return ranked
    wanted = routed_documents(routed, share)
    return [page for page in ranked if page[0] in wanted] or ranked


def _by_document(candidates: list[str], routed: DocumentRoute, share: float = 0.0, by_names: bool = False) -> list[str]:
    """Candidates whose document's names and cover share rare terms with the question, best first: those of the
    documents scored at least ``share`` of the best score (:func:`routed_documents`); ``by_names``: those the question's
    names score best first (``routed.named``), then by all its terms."""
    sha_of = {c: parse_chunk_id(c).sha256 for c in candidates}
    documents = routed_documents(routed, share)
    matching = [c for c in candidates if sha_of[c] in documents]
    if by_names:
        return sorted(matching, key=lambda c: (-routed.named.get(sha_of[c], 0.0), -routed.scores[sha_of[c]]))
    return sorted(matching, key=lambda c: -routed.scores[sha_of[c]])  # stable: ties keep the candidates' order


def _page_of(chunk_id: str) -> tuple[str, int]:
    return parse_chunk_id(chunk_id).page_key


def _select(documents: list[DocumentInfo], files: Sequence[str]) -> list[DocumentInfo]:
    known = {d.name for d in documents}
    unknown = [f for f in files if f not in known]
    if unknown:
        raise DocumentNotFoundError(f"no document named {', '.join(map(repr, unknown))}")
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


def stitch(pieces: list[tuple[int, str]], gap: str | None = None) -> str:
    """Join overlapping chunks of one page, given as (offset, text) in page order, into one passage (where
    two chunks do not overlap, the character the splitter dropped between them is ``gap``, or by default a line
    break beside a table row, else a space)."""
    text, end = "", -1
    for offset, piece in pieces:
        if offset + len(piece) <= end:
            continue
        if end < 0:
            text = piece
        elif offset <= end:
            text += piece[end - offset :]
        else:  # the one space or line break the splitter dropped
            text += (gap if gap is not None else _dropped(text, piece)) + piece
        end = offset + len(piece)
    return text


def whole_page(store: DocumentStore, page: Page) -> str:
    """One page's whole text, stitched from its chunks with its line breaks (as the page's rules read it)."""
    return stitch(store.page_chunks(*page), gap="\n")


def whole_pages(store: DocumentStore, document: DocumentInfo) -> dict[int, str]:
    """Page -> its whole text (:func:`whole_page`), for every page of a document, read at once."""
    pages: dict[int, list[tuple[int, str]]] = {}
    for page, offset, text in store.document_chunks(document):
        pages.setdefault(page, []).append((offset, text))
    return {page: stitch(pieces, gap="\n") for page, pieces in pages.items()}


def _dropped(text: str, piece: str) -> str:
    """The character the splitter dropped between ``text`` and the next chunk ``piece``: a table row keeps its line."""
    line_before, first_line = text[text.rfind("\n") + 1 :], piece.split("\n", 1)[0]
    return "\n" if is_table_row(line_before) or is_table_row(first_line) else " "


def page_window(store: DocumentStore, hit: SearchHit, neighbours: int) -> tuple[str, tuple[int, int]]:
    """The hit's whole page (stitched from its chunks) and the window of it holding the hit with up to
    ``neighbours`` chunks before and after it (offsets are the chunks' own: characters of the cleaned page)."""
    pieces = store.page_chunks(hit.sha256, hit.page)
    index = next((i for i, (offset, _) in enumerate(pieces) if offset == hit.offset), None)
    if index is None:  # another writer just replaced the page: the hit alone
        return hit.text, (0, len(hit.text))
    page = stitch(pieces)
    first, last = pieces[max(0, index - max(0, neighbours))], pieces[min(len(pieces) - 1, index + max(0, neighbours))]
    return page, (first[0], min(len(page), last[0] + len(last[1])))
