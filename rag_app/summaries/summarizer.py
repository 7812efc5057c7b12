"""Summarize whole stored documents: the request, the finished summary, and the run that streams it.

:class:`Summarizer` takes the documents' pages (stored chunks stitched back together, never a
re-parse of the PDF), runs :func:`rag_app.summaries.recursive.summarize_pages` and checks the
citations of the result against those pages. Without a model it makes no summary and says so, and offers
what extractive mode honestly can: each page's heading and first sentence (:mod:`rag_app.summaries.page_guide`).
It needs no vector store, so the GPU benchmark runs it on page texts from a JSON file.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

from rag_app.answering.citations import check_citations
from rag_app.answering.events import Answer, DoneEvent, Event, Source, SourcesEvent, StatusEvent, TokenEvent
from rag_app.answering.strategy_context import StrategyContext
from rag_app.llm.backend import ChatBackend
from rag_app.prompts import load_prompts
from rag_app.records import SearchHit
from rag_app.requests import SummaryRequest
from rag_app.summaries.page_guide import GuideEntry, guide_text, page_guide
from rag_app.summaries.recursive import SummaryOptions, SummaryPage, SummaryStats, summarize_pages
from rag_app.text.clean import is_cjk_heavy

DEFAULT_WORDS = 400
LANGUAGE_SAMPLE_CHARS = 20000
# Without a model: no summary, and the notice says so before the page guide (no English reason inside the Chinese).
NEEDS_MODEL = {
    "en": "No summary: a summary needs an answer model, and none is loaded. What extractive mode can "
    "offer instead is each page's heading and first sentence, quoted (running headers and footers, check boxes "
    "and signature blocks left out):",
    "zh": "未生成摘要：生成摘要需要问答模型，当前没有加载。作为替代，下面逐页引用每页的标题和第一句"
    "（已略去页眉页脚、勾选框和签名栏）：",
}
NO_GUIDE = {"en": "No page has a heading or a sentence to quote.", "zh": "没有可以引用的标题或句子。"}
# "[p. 14]", "[pp. 3, 5]", "[page 14]", "[第14页]": a single document's pages, cited by page number.
PAGE_CITATION = re.compile(r"\[(?:pp?\.|pages?)\s*([\d\s,，、–-]+)\]|\[第\s*(\d+)\s*页\]", re.IGNORECASE)
SUMMARY_REQUEST = [
    re.compile(
        r"^\s*(please\s+|can you\s+|could you\s+)?(summari[sz]e|give\s+(me\s+)?(an?\s+)?(brief\s+|short\s+)?"
        r"(overview|summary)|(an?\s+)?(overview|summary)\s+of|tl;?\s*dr|what\s+is\s+(this|the)\s+(document|report|"
        r"filing|paper|file)\s+about)",
        re.IGNORECASE,
    ),
    re.compile(
        r"(总结|概括|概述|归纳|摘要).{0,12}$|(这|该|本)(份|篇|个)?(文档|报告|年报|文件|论文).{0,6}(讲|说)了?(什么|啥)"
    ),
]


@dataclass
class Summary:
    """The finished summary, as ``rag_app summarize --json`` and ``POST /api/summarize`` return it."""

    files: list[str]
    summary: str  # empty without a model: no summary is made
    language: str
    model: str
    mode: str = "generative"  # or "page_guide": no model, so no summary; each page's heading and first sentence
    text: str = ""  # what is shown: the summary, or the notice and the page guide
    notice: str = ""  # why there is no summary (page_guide mode), in the documents' language
    stats: SummaryStats = field(default_factory=SummaryStats)
    cited: list[dict] = field(default_factory=list)  # [{"n", "file", "page"}] of the pages cited
    invalid_citations: list[str] = field(default_factory=list)
    unverified_quotes: list[str] = field(default_factory=list)
    page_guide: list[GuideEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    sources: list[Source] = field(default_factory=list)  # the cited pages, for the sources panel

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k not in ("page_guide", "sources", "stats")}
        data.update(asdict(self.stats))
        data["page_guide"] = [e.to_dict() for e in self.page_guide]
        return data

    def as_answer(self, question: str) -> Answer:
        """The summary as an answer to a question that asked for it (the chat, POST /api/ask)."""
        answer = Answer(question, self.text, "summarize", self.model, sources=self.sources)
        answer.strategy_reason = f"a summary of every page of {', '.join(self.files)} was asked for"
        answer.mode = "generative" if self.mode == "generative" else "extractive"
        answer.invalid_citations, answer.unverified_quotes = self.invalid_citations, self.unverified_quotes
        answer.warnings, answer.timings, answer.tokens = self.warnings, self.timings, self.tokens
        return answer


@dataclass
class SummaryDoneEvent:
    summary: Summary
    kind: str = "done"


def is_summary_request(question: str) -> bool:
    """Whether a question asks for a summary of a whole document ("summarize this report", "总结一下这份年报")."""
    return any(pattern.search(question.strip()) for pattern in SUMMARY_REQUEST)


def stitched_pages(documents: Sequence[tuple[str, Sequence[tuple[int, int, str]]]]) -> list[tuple[str, int, str]]:
    """(file, page, text) of each page with text, from documents' (page, offset, text) chunks in order."""
    from rag_app.retrieval.retriever import stitch

    pages = []
    for file, chunks in documents:
        by_page: dict[int, list[tuple[int, str]]] = {}
        for page, offset, text in chunks:
            by_page.setdefault(page, []).append((offset, text))
        pages += [(file, page, stitch(pieces)) for page, pieces in sorted(by_page.items())]
    return pages


def label_pages(pages: Sequence[tuple[str, int, str]], page_counts: dict[str, int]) -> list[SummaryPage]:
    """Number pages for citation: one document's pages keep their page numbers; several documents
    are numbered on, each after the pages of the ones before it."""
    files = list(dict.fromkeys(file for file, _, _ in pages))
    last_page = {file: page_counts.get(file, 0) for file in files}
    for file, page, _ in pages:
        last_page[file] = max(last_page[file], page)
    offsets, total = {}, 0
    for file in files:
        offsets[file], total = total, total + last_page[file]
    single = len(files) == 1
    return [SummaryPage(offsets[f] + page, f, page, text, single) for f, page, text in pages if text.strip()]


def document_language(pages: Sequence[SummaryPage]) -> str:
    sample, size = [], 0
    for page in pages:
        sample.append(page.text)
        size += len(page.text)
        if size > LANGUAGE_SAMPLE_CHARS:
            break
    return "zh" if is_cjk_heavy("".join(sample)) else "en"


class Summarizer:
    """Summarizes labelled pages with a model, or without one says so and gives their page guide; yields events."""

    def __init__(self, backend: ChatBackend | None, settings, no_model_reason: str = "") -> None:
        self.backend = backend
        self.settings = settings
        self.no_model_reason = no_model_reason

    def options(self, request: SummaryRequest, language: str) -> SummaryOptions:
        words = request.max_words or DEFAULT_WORDS
        window = self.backend.context_window if self.backend else 0
        wanted = math.ceil(words * (1.6 if language == "en" else 1.3))
        final = request.max_new_tokens or min(max(self.settings.max_new_tokens, wanted), max(64, window // 4))
        part = min(300, max(64, window // 8))
        return SummaryOptions(words, final, part, self.settings.llm_batch_slots)

    def run(self, request: SummaryRequest, pages: list[SummaryPage]) -> Iterator[Event | SummaryDoneEvent]:
        started = time.perf_counter()
        language = request.language or document_language(pages)
        files = list(dict.fromkeys(p.file for p in pages))
        model = self.backend.info.name if self.backend else "none (extractive)"
        summary = Summary(files, "", language, model)
        if self.backend is None:
            text = yield from self._page_guide(summary, pages)
        else:
            text = yield from self._summarize(request, summary, pages, started)
        self._finish(summary, text, pages, started)
        yield SummaryDoneEvent(summary)

    def _summarize(self, request: SummaryRequest, summary: Summary, pages: list[SummaryPage], started: float):
        options = self.options(request, summary.language)
        temperature = self.settings.temperature if request.temperature is None else request.temperature
        ctx = StrategyContext("", [], self.backend, load_prompts(summary.language), options.final_tokens, temperature)
        pieces: list[str] = []
        for event in summarize_pages(ctx, pages, options, summary.stats):
            if isinstance(event, TokenEvent):
                summary.timings.setdefault("first_token_ms", _ms(started))
                pieces.append(event.text)
            yield event
        summary.tokens = {"prompt": ctx.tally.prompt, "completion": ctx.tally.completion}
        return "".join(pieces)

    def _page_guide(self, summary: Summary, pages: list[SummaryPage]):
        summary.mode = "page_guide"
        reason = self.no_model_reason or "no answer model"
        summary.warnings.append(f"no summary: {reason}")
        yield StatusEvent(
            "no summary without an answer model: quoting each page's heading and first sentence",
            zh="没有问答模型，无法生成摘要：逐页引用标题和第一句",
        )
        summary.page_guide = page_guide([(p.file, p.page, p.text) for p in pages])
        listing = guide_text(summary.page_guide, len(summary.files) > 1, summary.language) or NO_GUIDE[summary.language]
        summary.notice = NEEDS_MODEL[summary.language]  # why: in warnings, the status line and /api/health
        return summary.notice + "\n\n" + listing  # quoted, not written: no token events, the done event has it

    def _finish(self, summary: Summary, text: str, pages: list[SummaryPage], started: float) -> None:
        summary.stats.pages = len({(p.file, p.page) for p in pages})
        summary.text = text
        if summary.mode == "generative":
            sources = page_sources(pages)
            single = len(summary.files) == 1
            check = check_citations(PAGE_CITATION.sub(_page_numbers, text) if single else text, sources)
            summary.summary, summary.invalid_citations = check.text, check.invalid
            summary.text = check.text
            summary.unverified_quotes = check.unverified_quotes
            summary.sources = [s for s in sources if s.n in check.cited]
            for source in summary.sources:
                source.cited = True
            summary.cited = [{"n": s.n, "file": s.hit.file, "page": s.hit.page} for s in summary.sources]
            if check.invalid:
                summary.warnings.append(f"removed citations of pages outside the documents: {', '.join(check.invalid)}")
        summary.timings["total_ms"] = _ms(started)
        summary.timings.setdefault("first_token_ms", summary.timings["total_ms"])


def page_sources(pages: Sequence[SummaryPage]) -> list[Source]:
    """One numbered source per page (pieces of a cut page joined), for checking citations and quotes."""
    merged: dict[int, SummaryPage] = {}
    texts: dict[int, list[str]] = {}
    for page in pages:
        merged.setdefault(page.n, page)
        texts.setdefault(page.n, []).append(page.text)
    return [
        Source(n, SearchHit(p.file, p.page, 0, " ".join(texts[n]), 0.0, "", f"{p.file}:{p.page}"))
        for n, p in merged.items()
    ]


def summary_answer_events(question: str, events: Iterator[Event | SummaryDoneEvent]) -> Iterator[Event]:
    """A summary's events as an answer's: its cited pages as sources, then the DoneEvent of an Answer."""
    for event in events:
        if isinstance(event, SummaryDoneEvent):
            yield SourcesEvent(event.summary.sources)
            yield DoneEvent(event.summary.as_answer(question))
        else:
            yield event


def _page_numbers(match: re.Match) -> str:
    return "[" + (match.group(1) or match.group(2)).strip() + "]"


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
