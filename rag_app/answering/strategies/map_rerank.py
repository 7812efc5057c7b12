"""map_rerank: each source answers alone with a 0-100 score (one batched call); the best answer wins."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from rag_app.answering.events import Event, TokenEvent
from rag_app.answering.strategy_context import MAP_MAX_TOKENS, StrategyContext, status

log = logging.getLogger(__name__)
# "Score: 85", "score = 85/100", "分数：85", "**Score:** 85" ... the last one in the reply counts.
SCORE = re.compile(r"(?:score|分数|得分|评分)\W{0,4}(\d{1,3})(?:\s*/\s*100)?", re.IGNORECASE)


def parse_scored_answer(reply: str) -> tuple[str, int | None]:
    """Split a reply into (answer, score); a missing or out-of-range score gives None."""
    matches = list(SCORE.finditer(reply))
    if not matches:
        return reply.strip(), None
    last = matches[-1]
    score = int(last.group(1))
    answer = (reply[: last.start()] + reply[last.end() :]).strip().rstrip("*").strip()
    return answer, score if 0 <= score <= 100 else None


def answer_map_rerank(ctx: StrategyContext) -> Iterator[Event]:
    yield status(f"scoring answers from {len(ctx.sources)} sources")
    conversations = [ctx.messages("map_rerank", source=f"[{s.n}]", context=s.text) for s in ctx.sources]
    replies = ctx.batch(conversations, min(ctx.max_new_tokens, MAP_MAX_TOKENS))
    best_answer, best_score, best_n = "", -1, 0
    for source, reply in zip(ctx.sources, replies, strict=True):
        answer, score = parse_scored_answer(reply)
        if score is None:
            log.warning("map_rerank: no valid 0-100 score for source [%d], counted as 0: %r", source.n, reply[-80:])
            score = 0
        ctx.scores[source.n] = score
        if score > best_score:
            best_answer, best_score, best_n = answer, score, source.n
    if f"[{best_n}]" not in best_answer:
        best_answer = f"{best_answer} [{best_n}]".strip()
    yield TokenEvent(best_answer)
