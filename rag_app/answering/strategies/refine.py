"""refine: answer from the best source, then refine with each following source in rank order.

Every step runs; there is no early stop when a step changes nothing, because a
later source can still add to an answer an earlier one left unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

from rag_app.answering.events import Event
from rag_app.answering.strategy_context import StrategyContext, status


def refine_messages(ctx: StrategyContext, index: int, answer: str):
    source = ctx.sources[index]
    if index == 0:
        return ctx.messages("refine_initial", source=f"[{source.n}]", context=source.text)
    return ctx.messages("refine", source=f"[{source.n}]", context=source.text, existing_answer=answer)


def answer_refine(ctx: StrategyContext) -> Iterator[Event]:
    answer = ""
    last = len(ctx.sources) - 1
    for index in range(last):
        yield status(f"refining with source {index + 1} of {last + 1}")
        messages = refine_messages(ctx, index, answer)
        ctx.require_fit(messages, f"refining with source [{index + 1}]")
        answer = ctx.invoke(messages)
    messages = refine_messages(ctx, last, answer)
    ctx.require_fit(messages, f"refining with source [{last + 1}]")
    yield from ctx.stream(messages)
