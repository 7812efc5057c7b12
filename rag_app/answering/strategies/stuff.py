"""stuff: every source in one prompt; lowest-ranked sources dropped (and reported) if they do not fit."""

from __future__ import annotations

from collections.abc import Iterator

from rag_app.answering.events import Event, Source
from rag_app.answering.strategy_context import StrategyContext, status


def stuff_messages(ctx: StrategyContext, sources: list[Source]):
    return ctx.messages("stuff", context="\n\n".join(s.block() for s in sources))


def sources_that_fit(ctx: StrategyContext) -> list[Source]:
    """The top-ranked sources whose stuffed prompt fits the window (possibly all)."""
    kept = list(ctx.sources)
    while kept and not ctx.fits(stuff_messages(ctx, kept)):
        kept.pop()
    return kept


def answer_stuff(ctx: StrategyContext) -> Iterator[Event]:
    kept = sources_that_fit(ctx)
    if not kept:
        ctx.require_fit(stuff_messages(ctx, ctx.sources[:1]), "the question with its best source")
    ctx.dropped = [s.n for s in ctx.sources[len(kept) :]]
    if ctx.dropped:
        yield status(f"sources {', '.join(map(str, ctx.dropped))} did not fit the context window and were left out")
    yield from ctx.stream(stuff_messages(ctx, kept))
