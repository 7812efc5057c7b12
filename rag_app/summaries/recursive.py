"""Summaries of whole documents from every page: recursive map-reduce past any context window.

Pages are grouped into map inputs that fill the window (leaving room for each part's summary),
mapped in batched calls, then the part summaries are combined ``fan_in`` at a time, round after
round, until one prompt holds them all; that last call streams. A document that fits one prompt
is summarized by one streamed call. With P parts there are ceil(log_fan_in(P)) reduce levels
(276 parts, fan-in 11: 276 → 26 → 3 → 1). Every page is labelled ``[n]`` and every summary keeps
those labels, so the final one still cites pages.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from rag_app.answering.events import Event
from rag_app.answering.strategy_context import StrategyContext, status
from rag_app.errors import InvalidRequestError

PART_TOKENS = 300  # most tokens of one part's summary (and of each combined partial summary)
MAX_FAN_IN = 10  # partial summaries combined in one prompt, at most: more loses detail
MIN_PART_TOKENS = 64  # a map input smaller than this means the window is too small to summarize
MAX_ROUNDS = 16
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class SummaryPage:
    """One page's text as the model reads it; ``n`` is its label, the number it cites as ``[n]``."""

    n: int
    file: str
    page: int
    text: str
    single_file: bool = True  # the header names the file only when several documents are summarized

    def block(self) -> str:
        header = f"[{self.n}]" if self.single_file else f"[{self.n}] {self.file}, p. {self.page}"
        return f"{header}\n{self.text.strip()}"


@dataclass
class SummaryStats:
    """How the work was divided: shown in --json, the API's done event and the benchmark."""

    pages: int = 0
    parts: int = 0
    fan_in: int = 0
    rounds: int = 0  # reduce levels, the final streamed one included
    calls: int = 0  # model calls (a batch of n prompts counts n)
    batches: int = 0  # batched model calls
    round_sizes: list[int] = field(default_factory=list)  # summaries entering each reduce level


@dataclass
class SummaryOptions:
    words: int = 400  # the final summary's length, in words (characters for Chinese)
    final_tokens: int = 768  # answer budget of the final, streamed call
    part_tokens: int = PART_TOKENS
    batch: int = 8  # prompts per batched call (the fast path's slots; concurrent endpoint requests)
    max_fan_in: int = MAX_FAN_IN


def words_for(tokens: int, language: str) -> int:
    """A length to ask for that fits ``tokens``: about 1.5 tokens per English word, 1 per Chinese character."""
    return max(20, tokens * 2 // 3) if language == "en" else max(20, tokens * 4 // 5)


# ----- prompts ---------------------------------------------------------------------------------


def map_messages(ctx: StrategyContext, pages: list[SummaryPage], words: int) -> list[BaseMessage]:
    text = ctx.prompts.render("summarize_map", pages=SEPARATOR.join(p.block() for p in pages), words=str(words))
    return [SystemMessage(ctx.prompts.system), HumanMessage(text)]


def reduce_messages(ctx: StrategyContext, summaries: list[str], words: int) -> list[BaseMessage]:
    text = ctx.prompts.render("summarize_reduce", summaries=SEPARATOR.join(summaries), words=str(words))
    return [SystemMessage(ctx.prompts.system), HumanMessage(text)]


# ----- splitting pages into map inputs -----------------------------------------------------------


def split_into_parts(ctx: StrategyContext, pages: list[SummaryPage], answer_tokens: int) -> list[list[SummaryPage]]:
    """Consecutive pages grouped so each map prompt fills the window; a page too long for one is cut."""
    words = words_for(answer_tokens, ctx.prompts.language)
    count = ctx.backend.count_tokens
    overhead = count(map_messages(ctx, [], words))
    budget = ctx.backend.context_window - answer_tokens - overhead
    if budget < MIN_PART_TOKENS:
        raise InvalidRequestError(
            f"the model's context window of {ctx.backend.context_window} tokens is too small to summarize: "
            "raise RAG_LLM_CONTEXT_WINDOW"
        )
    bare = count([HumanMessage("")])
    parts: list[list[SummaryPage]] = [[]]
    used = 0
    separator = max(1, count([HumanMessage(SEPARATOR)]) - bare)
    for page in pages:
        tokens = count([HumanMessage(page.block())]) - bare
        for piece in cut_page(page, tokens, budget):
            cost = separator + (tokens if piece is page else count([HumanMessage(piece.block())]) - bare)
            if parts[-1] and used + cost > budget:
                parts.append([])
                used = 0
            parts[-1].append(piece)
            used += cost
    return [fitted for part in parts if part for fitted in _fitting(ctx, part, words, answer_tokens)]


def cut_page(page: SummaryPage, tokens: int, budget: int) -> list[SummaryPage]:
    """The page in pieces of at most ``budget`` tokens (estimated by length), cut at whitespace."""
    if tokens <= budget:
        return [page]
    pieces = math.ceil(tokens / budget) + 1
    size = math.ceil(len(page.text) / pieces)
    out, start = [], 0
    while start < len(page.text):
        end = min(len(page.text), start + size)
        space = page.text.rfind(" ", start + size // 2, end) if end < len(page.text) else -1
        end = space if space > start else end
        out.append(SummaryPage(page.n, page.file, page.page, page.text[start:end], page.single_file))
        start = end
    return out


def _fitting(ctx: StrategyContext, part: list[SummaryPage], words: int, answer_tokens: int) -> list[list[SummaryPage]]:
    """The part itself if its prompt fits (the usual case: costs were summed), else its halves."""
    if ctx.fits(map_messages(ctx, part, words), answer_tokens):
        return [part]
    if len(part) == 1:
        page = part[0]
        half = max(1, len(page.text) // 2)
        part = [
            SummaryPage(page.n, page.file, page.page, t, page.single_file) for t in (page.text[:half], page.text[half:])
        ]
        return [p for piece in part for p in _fitting(ctx, [piece], words, answer_tokens)]
    middle = len(part) // 2
    return _fitting(ctx, part[:middle], words, answer_tokens) + _fitting(ctx, part[middle:], words, answer_tokens)


def fan_in(ctx: StrategyContext, options: SummaryOptions) -> int:
    """How many part summaries one reduce prompt holds, leaving room for the final answer."""
    overhead = ctx.backend.count_tokens(reduce_messages(ctx, [], options.words))
    answer = max(options.final_tokens, options.part_tokens)  # the same groups must fit either kind of call
    capacity = ctx.backend.context_window - answer - overhead
    fan = min(options.max_fan_in, capacity // (options.part_tokens + 8))
    if fan < 2:
        raise InvalidRequestError(
            f"the model's context window of {ctx.backend.context_window} tokens cannot combine two partial "
            "summaries with room for the summary: raise RAG_LLM_CONTEXT_WINDOW or ask for fewer words"
        )
    return fan


def reduce_rounds(parts: int, fan: int) -> int:
    """Reduce levels needed for ``parts`` summaries combined ``fan`` at a time: ceil(log_fan(parts))."""
    rounds, count = 0, parts
    while count > 1:
        count, rounds = math.ceil(count / fan), rounds + 1
    return rounds


# ----- running ---------------------------------------------------------------------------------------


def summarize_pages(
    ctx: StrategyContext, pages: list[SummaryPage], options: SummaryOptions, stats: SummaryStats
) -> Iterator[Event]:
    """Status events while parts are mapped and combined, then the final summary's token events.

    Work happens between events: closing the generator stops it before the next batch.
    """
    stats.pages = len({(p.file, p.page) for p in pages})
    language = ctx.prompts.language
    if _fits_one_prompt(ctx, pages, options):
        stats.parts, stats.calls = 1, 1
        yield status(
            f"summarizing {stats.pages} pages in one pass: they fit the context window",
            f"一次总结全部 {stats.pages} 页",
        )
        yield from ctx.stream(map_messages(ctx, pages, options.words))
        return
    parts = split_into_parts(ctx, pages, options.part_tokens)
    if len(parts) == 1:  # fits with a part's answer budget, not the final one's: one call, a shorter summary
        yield from _one_shorter_pass(ctx, parts[0], options, stats)
        return
    stats.parts, stats.fan_in = len(parts), fan_in(ctx, options)
    part_words = words_for(options.part_tokens, language)
    conversations = [map_messages(ctx, part, part_words) for part in parts]
    summaries: list[str] = []
    yield status(
        f"summarizing {stats.pages} pages: 0 of {len(parts)} parts ({options.batch} at a time)",
        f"正在总结 {stats.pages} 页：第 0/{len(parts)} 部分",
    )
    for done in _batches(ctx, conversations, options, stats, summaries):
        yield status(
            f"summarizing {stats.pages} pages: {done} of {len(parts)} parts",
            f"正在总结 {stats.pages} 页：第 {done}/{len(parts)} 部分",
        )
    yield from _combine(ctx, summaries, options, stats)


def _one_shorter_pass(ctx: StrategyContext, pages: list[SummaryPage], options: SummaryOptions, stats: SummaryStats):
    prompt = ctx.backend.count_tokens(map_messages(ctx, pages, options.words))
    ctx.max_new_tokens = min(options.final_tokens, ctx.backend.context_window - prompt)
    stats.parts, stats.calls = 1, 1
    yield status(
        f"summarizing {stats.pages} pages in one pass, in at most {ctx.max_new_tokens} tokens",
        f"一次总结全部 {stats.pages} 页",
    )
    yield from ctx.stream(
        map_messages(ctx, pages, min(options.words, words_for(ctx.max_new_tokens, ctx.prompts.language)))
    )


def _combine(ctx: StrategyContext, summaries: list[str], options: SummaryOptions, stats: SummaryStats):
    part_words = words_for(options.part_tokens, ctx.prompts.language)
    for round_number in range(1, MAX_ROUNDS + 1):
        stats.round_sizes.append(len(summaries))
        stats.rounds = round_number
        final = reduce_messages(ctx, summaries, options.words)
        if len(summaries) <= stats.fan_in and ctx.fits(final, options.final_tokens):
            yield status(
                f"combining: round {round_number} (final: {len(summaries)} partial summaries)",
                f"合并第 {round_number} 轮（最后一轮：{len(summaries)} 段部分摘要）",
            )
            stats.calls += 1
            yield from ctx.stream(final)
            return
        groups = _groups(ctx, summaries, stats.fan_in, part_words, options.part_tokens)
        yield status(
            f"combining: round {round_number} ({len(summaries)} partial summaries in {len(groups)} groups)",
            f"合并第 {round_number} 轮（{len(summaries)} 段部分摘要，分 {len(groups)} 组）",
        )
        conversations = [reduce_messages(ctx, g, part_words) for g in groups]
        combined: list[str] = []
        for done in _batches(ctx, conversations, options, stats, combined):
            if done < len(groups):
                yield status(
                    f"combining: round {round_number}, {done} of {len(groups)} groups",
                    f"合并第 {round_number} 轮：第 {done}/{len(groups)} 组",
                )
        summaries = combined
    raise InvalidRequestError(f"the summaries did not converge in {MAX_ROUNDS} rounds")


def _groups(ctx: StrategyContext, summaries: list[str], fan: int, words: int, answer_tokens: int) -> list[list[str]]:
    """Consecutive groups of ``fan`` summaries; a group over the window (a summary ran long) is halved."""
    groups = [summaries[i : i + fan] for i in range(0, len(summaries), fan)]
    out: list[list[str]] = []
    while groups:
        group = groups.pop(0)
        if len(group) > 1 and not ctx.fits(reduce_messages(ctx, group, words), answer_tokens):
            middle = len(group) // 2
            groups[:0] = [group[:middle], group[middle:]]
            continue
        out.append(group)
    return out


def _batches(ctx, conversations, options: SummaryOptions, stats: SummaryStats, into: list[str]) -> Iterator[int]:
    """Run ``conversations`` in batched calls, appending replies to ``into``; yields how many are done."""
    for start in range(0, len(conversations), options.batch):
        batch = conversations[start : start + options.batch]
        into.extend(clip(ctx, reply, options.part_tokens) for reply in ctx.batch(batch, options.part_tokens))
        stats.calls += len(batch)
        stats.batches += 1
        yield len(into)


def clip(ctx: StrategyContext, text: str, tokens: int) -> str:
    """A partial summary cut to ``tokens`` as the prompt counts them: generated tokens can re-tokenize into
    more, and fan-in (so the number of rounds) is planned on this budget."""
    count, bare = ctx.backend.count_tokens, ctx.backend.count_tokens([HumanMessage("")])
    while text and count([HumanMessage(text)]) - bare > tokens:
        text = text[: int(len(text) * 0.9)].rstrip()
    return text


def _fits_one_prompt(ctx: StrategyContext, pages: list[SummaryPage], options: SummaryOptions) -> bool:
    # No tokenizer run over a whole filing: a token rarely spans more than 6 characters.
    if sum(len(p.text) for p in pages) > 6 * ctx.backend.context_window:
        return False
    return ctx.fits(map_messages(ctx, pages, options.words), options.final_tokens)
