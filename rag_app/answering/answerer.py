"""Answer a question: rewrite a follow-up, retrieve, run a strategy, check citations, stream events."""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Iterator, Sequence

from rag_app.answering.absence import Absence, absence, not_found_text
from rag_app.answering.citations import apply_citations, check_citations
from rag_app.answering.events import Answer, DoneEvent, Event, Source, SourcesEvent, StatusEvent, TokenEvent
from rag_app.answering.strategies import STRATEGIES, choose_strategy
from rag_app.answering.strategies.extractive import not_found_text as period_not_found
from rag_app.answering.strategies.extractive import unreported_years
from rag_app.answering.strategy_context import StrategyContext
from rag_app.embedding.chinese import ChineseReader
from rag_app.llm import EXTRACTIVE_HOWTO
from rag_app.llm.backend import ChatBackend
from rag_app.prompts import detect_language, load_prompts
from rag_app.requests import AskRequest
from rag_app.text.clean import is_chinese

log = logging.getLogger(__name__)
MAX_HISTORY_TURNS = 6
NO_SOURCES = {
    "en": "No passage in the documents matches the question.",
    "zh": "文档中没有与问题相符的段落。",
}


FOLLOW_UP_EN = re.compile(
    r"^\s*(and|but|also|so|or|what about|how about|then)\b|\b(it|its|they|them|their|this|that|these|those|he|she|"
    r"his|her|there|same|former|latter|previous|above|mentioned|else)\b",
    re.I,
)
FOLLOW_UP_ZH = re.compile(r"它|他们|她们|这个|那个|这些|那些|上述|前面|呢[？?]?$|那么|还有|同样|该公司")


def reading_status(name: str, read: int, pages: int) -> StatusEvent:
    """What the page shows while the Chinese reader reads an English document's pages for a Chinese question."""
    return StatusEvent(
        f"reading the {pages} pages of {name} with the Chinese model, once for Chinese questions: {read} of {pages}",
        zh=f"中文模型正在阅读 {name} 的 {pages} 页（每个文档只读一次）：已读 {read} 页",
    )


def is_follow_up(question: str) -> bool:
    """Whether a question leans on the conversation ("And the margin?", "How did it change?", "那净利润呢？")."""
    if FOLLOW_UP_ZH.search(question) or FOLLOW_UP_EN.search(question):
        return True
    return len(re.findall(r"\w+", question)) <= 2 and not re.search(r"[\u4e00-\u9fff]{4,}", question)


def _across(question: str, sources: Sequence[Source]) -> bool:
    """Whether every source is in the other language than the question's (an English question of Chinese reports)."""
    asked = is_chinese(question)
    return bool(sources) and all(is_chinese(s.text) != asked for s in sources)


class Answerer:
    """Runs one question through retrieval and a strategy; yields events, ending with DoneEvent."""

    def __init__(
        self, search, backend: ChatBackend | None, embed, settings, no_model_reason: str = "", context=None,
        reads_chinese: bool = False, reader: ChineseReader | None = None,
    ) -> None:  # fmt: skip
        self.search = search  # (query, k, files) -> SearchResult
        self.context = context  # hit -> (its page, the window of it the model reads: the hit and its neighbours)
        self.reads_chinese = reads_chinese  # whether ``embed`` reads Chinese
        self.reader = reader  # the Chinese reader: compares what ``embed`` cannot (StrategyContext.reader)
        self.backend = backend
        self.embed = embed
        self.settings = settings
        self.no_model_reason = no_model_reason

    def ask(self, request: AskRequest) -> Iterator[Event]:
        """The answer's events for a validated request (:mod:`rag_app.requests`)."""
        started = time.perf_counter()
        question, strategy = request.question, request.strategy or self.settings.strategy
        k = self.settings.top_k if request.k is None else request.k
        prompts = load_prompts(detect_language(question))
        answer = Answer(question, "", strategy, self.backend.info.name if self.backend else "none (extractive)")
        answer.model_notes = list(self.backend.info.notes) if self.backend else []
        ctx = StrategyContext(question, [], self.backend, prompts, *self._sampling(request), embed=self.embed)
        ctx.reads_chinese, ctx.reader = self.reads_chinese, self.reader
        self._check_question_fits(ctx)
        query = ctx.question = yield from self._standalone(request, ctx, answer)
        retrieved = time.perf_counter()
        result = yield from self._searched(query, k, request.files)
        answer.timings["retrieve_ms"] = _ms(retrieved)
        answer.warnings += result.warnings
        ctx.sources = [Source(n, hit) for n, hit in enumerate(result.hits, 1)]
        if self.context is not None:  # extractive quotes read it too: a sentence cut at a chunk edge goes on
            for source in ctx.sources:
                source.page, source.window = self.context(source.hit)
        ctx.route = result.route
        answer.sources = ctx.sources
        yield SourcesEvent(ctx.sources)
        missing = absence(ctx.route, [s.text for s in ctx.sources], _across(ctx.question, ctx.sources))
        if missing and ctx.sources:
            text = yield from self._refuse(missing, ctx, answer, started)
        elif self.backend is not None and strategy != "extractive" and ctx.sources and (years := unreported_years(ctx)):
            text = yield from self._refuse_years(years, ctx, answer, started)
        else:
            text = yield from self._run_strategy(strategy, ctx, answer, started)
            text = yield from self._guarded(text, ctx, answer, started)
        self._finish(answer, ctx, text, started)
        yield DoneEvent(answer)

    # ----- steps -------------------------------------------------------------------------

    def _sampling(self, request: AskRequest) -> tuple[int, float]:
        max_new = request.max_new_tokens or self.settings.max_new_tokens
        temperature = self.settings.temperature if request.temperature is None else request.temperature
        return max_new, temperature

    def _check_question_fits(self, ctx: StrategyContext) -> None:
        if self.backend is not None:
            ctx.require_fit(ctx.messages("stuff", context=""), "the question")

    def _standalone(self, request: AskRequest, ctx: StrategyContext, answer: Answer) -> Iterator[Event]:
        """Rewrite a follow-up into a standalone question using the history (needs a model)."""
        history = request.history[-2 * MAX_HISTORY_TURNS :]
        if not history:
            return ctx.question
        if self.backend is None:
            answer.standalone_question = ctx.question
            if is_follow_up(ctx.question):  # a standalone question needs no rewriting: nothing to warn about
                answer.warnings.append(
                    "the follow-up was not rewritten with the conversation: no answer model is loaded"
                )
            return ctx.question
        yield StatusEvent("rewriting the follow-up question")
        started = time.perf_counter()
        lines = "\n".join(f"{t.role}: {t.content}" for t in history)
        rewritten = ctx.invoke(ctx.messages("condense", history=lines), max_tokens=128)
        answer.standalone_question = rewritten.strip().splitlines()[0].strip() if rewritten.strip() else ctx.question
        answer.timings["condense_ms"] = _ms(started)
        return answer.standalone_question

    def _searched(self, query: str, k: int, files: list[str] | None) -> Iterator[Event]:
        """The search's result; while it runs, a status event each time the Chinese reader has read more of an English
        document's pages for the question (the first Chinese question to reach that document waits for it: about
        10 s for a 112-page 10-K on a CPU, once), so the page does not sit silent. The search runs in a thread of
        its own, and what it raises is raised here."""
        told: queue.SimpleQueue = queue.SimpleQueue()
        outcome: list = []

        def run() -> None:
            try:
                outcome.append(self.search(query, k, files, reader_progress=lambda *step: told.put(step)))
            except BaseException as exc:  # noqa: BLE001 - raised again in the asking thread
                outcome.append(exc)
            finally:
                told.put(None)

        threading.Thread(target=run, name="search", daemon=True).start()
        while (step := told.get()) is not None:
            yield reading_status(*step)
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    def _refuse(self, missing: Absence, ctx: StrategyContext, answer: Answer, started: float) -> Iterator[Event]:
        """Not found: the question names what no document here is about (rag_app.answering.absence)."""
        language = ctx.prompts.language
        answer.strategy, answer.strategy_reason = "none", f"no document is about {missing.describe(language)}"
        text = not_found_text(language, missing, [f"{s.hit.file} p. {s.hit.page}" for s in ctx.sources[:3]])
        yield StatusEvent(f"not found: {answer.strategy_reason}")
        yield TokenEvent(text)
        answer.timings["first_token_ms"] = _ms(started)
        return text

    def _refuse_years(self, years: list[str], ctx: StrategyContext, answer: Answer, started: float) -> Iterator[Event]:
        """Not found: no passage retrieved gives a figure for the years the question asks (the quoted answer's check,
        strategies.extractive.unreported_years), before a model answers with another year's column."""
        language = ctx.prompts.language
        joined = ("、" if language == "zh" else ", ").join(years)
        answer.strategy, answer.strategy_reason = "none", f"no passage gives a figure for {joined}"
        text = period_not_found(language, ctx.sources, years)
        yield StatusEvent(f"not found: {answer.strategy_reason}")
        yield TokenEvent(text)
        answer.timings["first_token_ms"] = _ms(started)
        return text

    def _run_strategy(self, requested: str, ctx: StrategyContext, answer: Answer, started: float) -> Iterator[Event]:
        if not ctx.sources:
            answer.strategy, answer.strategy_reason = "none", "no matching passage was retrieved"
            yield TokenEvent(NO_SOURCES[ctx.prompts.language])
            answer.timings["first_token_ms"] = _ms(started)
            return NO_SOURCES[ctx.prompts.language]
        answer.strategy, answer.strategy_reason = choose_strategy(requested, ctx)
        if answer.strategy == "extractive":
            answer.mode = "extractive"
            if self.backend is None:
                answer.warnings.append(
                    f"extractive mode: {self.no_model_reason or 'no answer model'}; {EXTRACTIVE_HOWTO}"
                )
        yield StatusEvent(f"strategy {answer.strategy}: {answer.strategy_reason}")
        pieces: list[str] = []
        for event in STRATEGIES[answer.strategy](ctx):
            if isinstance(event, TokenEvent):
                if not pieces:
                    answer.timings["first_token_ms"] = _ms(started)
                pieces.append(event.text)
            yield event
        return "".join(pieces)

    def _guarded(self, text: str, ctx: StrategyContext, answer: Answer, started: float) -> Iterator[Event]:
        """The answer up to where the output guard cut it (rag_app.answering.guard), with its warning; when nothing
        is left, the words that say so are streamed as the answer."""
        if ctx.streamed_cut is not None:  # the stream ran a little past where the guard cut it
            text = text[: ctx.streamed_cut].rstrip()
        answer.warnings += ctx.warnings
        if ctx.warnings and not text.strip():
            text = ctx.guard().no_answer()
            yield TokenEvent(text)
            answer.timings.setdefault("first_token_ms", _ms(started))
        return text

    def _finish(self, answer: Answer, ctx: StrategyContext, text: str, started: float) -> None:
        check = check_citations(text, ctx.sources)
        apply_citations(check, ctx.sources)
        answer.answer = check.text
        answer.invalid_citations = check.invalid
        answer.unverified_quotes = check.unverified_quotes
        answer.dropped_sources = ctx.dropped
        answer.scores = ctx.scores
        answer.tokens = {"prompt": ctx.tally.prompt, "completion": ctx.tally.completion}
        answer.timings["total_ms"] = _ms(started)
        answer.timings.setdefault("first_token_ms", answer.timings["total_ms"])


def collect(events: Sequence[Event] | Iterator[Event]) -> Answer:
    """Run an event stream to the end and return its answer."""
    answer = None
    for event in events:
        if isinstance(event, DoneEvent):
            answer = event.answer
    assert answer is not None, "an answer stream ended without its answer"
    return answer


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
