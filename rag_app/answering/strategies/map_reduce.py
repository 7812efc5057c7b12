"""map_reduce: extract what is relevant from each source (one batched call), then combine the extracts.

Each extract keeps its source number, so the combined answer can still cite
``[n]``. Extracts that do not fit one reduce prompt are reduced in groups first.
"""

from __future__ import annotations

from collections.abc import Iterator

from rag_app.answering.events import Event, TokenEvent
from rag_app.answering.strategy_context import MAP_MAX_TOKENS, StrategyContext, status
from rag_app.prompts import NOTHING_RELEVANT

CANNOT_FIND = {"en": "I cannot find the answer in the documents.", "zh": "根据已知信息无法回答该问题。"}
MAX_REDUCE_DEPTH = 4


def map_extracts(ctx: StrategyContext) -> list[str]:
    """``[n] extract`` for every source that had something relevant."""
    conversations = [ctx.messages("map", source=f"[{s.n}]", context=s.text) for s in ctx.sources]
    replies = ctx.batch(conversations, min(ctx.max_new_tokens, MAP_MAX_TOKENS))
    return [f"[{s.n}] {reply}" for s, reply in zip(ctx.sources, replies, strict=True) if is_relevant(reply)]


def is_relevant(reply: str) -> bool:
    text = reply.strip().strip("。.").upper()
    return bool(text) and not any(text.startswith(marker) for marker in NOTHING_RELEVANT)


def answer_map_reduce(ctx: StrategyContext) -> Iterator[Event]:
    yield status(f"reading {len(ctx.sources)} sources")
    extracts = map_extracts(ctx)
    if not extracts:
        yield TokenEvent(CANNOT_FIND[ctx.prompts.language])
        return
    yield status(f"{len(extracts)} of {len(ctx.sources)} sources are relevant: combining")
    for depth in range(MAX_REDUCE_DEPTH):
        final = ctx.messages("reduce", extracts="\n\n".join(extracts))
        if ctx.fits(final) or len(extracts) == 1:
            break
        yield status(f"extracts exceed the context window: combining them in groups (round {depth + 1})")
        extracts = reduce_in_groups(ctx, extracts)
    ctx.require_fit(final, "the combined extracts")
    yield from ctx.stream(final)


def reduce_in_groups(ctx: StrategyContext, extracts: list[str]) -> list[str]:
    """Reduce consecutive extracts that fit together; each partial answer keeps its citations."""
    groups: list[list[str]] = [[]]
    for extract in extracts:
        if groups[-1] and not ctx.fits(ctx.messages("reduce", extracts="\n\n".join([*groups[-1], extract]))):
            groups.append([])
        groups[-1].append(extract)
    conversations = [ctx.messages("reduce", extracts="\n\n".join(g)) for g in groups]
    return ctx.batch(conversations)
