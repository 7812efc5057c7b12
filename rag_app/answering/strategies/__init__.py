"""The answer strategies: stuff, map_reduce, refine, map_rerank, extractive, and auto's choice between them.

Each is a small generator over a :class:`StrategyContext` that yields typed
events; none uses LangChain's deprecated chains, so all stream, batch and count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rag_app.answering.events import Event
from rag_app.answering.strategies.extractive import answer_extractive
from rag_app.answering.strategies.map_reduce import answer_map_reduce
from rag_app.answering.strategies.map_rerank import answer_map_rerank
from rag_app.answering.strategies.refine import answer_refine
from rag_app.answering.strategies.stuff import answer_stuff, sources_that_fit
from rag_app.answering.strategy_context import StrategyContext

STRATEGIES: dict[str, Callable[[StrategyContext], Iterator[Event]]] = {
    "stuff": answer_stuff,
    "map_reduce": answer_map_reduce,
    "refine": answer_refine,
    "map_rerank": answer_map_rerank,
    "extractive": answer_extractive,
}


def choose_strategy(requested: str, ctx: StrategyContext) -> tuple[str, str]:
    """(strategy, why): ``auto`` stuffs when every source fits the window, else map_reduce."""
    if ctx.backend is None:
        why = (
            "no answer model is loaded"
            if requested in ("auto", "extractive")
            else f"{requested} needs a model, none is loaded"
        )
        return "extractive", why
    if requested != "auto":
        return requested, "requested"
    if len(sources_that_fit(ctx)) == len(ctx.sources):
        return "stuff", f"all {len(ctx.sources)} sources fit the {ctx.backend.context_window}-token context window"
    return "map_reduce", f"the {len(ctx.sources)} sources exceed the {ctx.backend.context_window}-token context window"
