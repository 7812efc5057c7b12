"""extractive: no model. Quote the sentences of the top sources that best match the question.

Sentences are ranked by the embedding model (cosine similarity with the
question), so this mode needs nothing but what ingestion already loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from rag_app.chains.base import StrategyContext
from rag_app.chains.events import Event, Source, TokenEvent

SENTENCE_END = re.compile(r"(?<=[。！？；])|(?<=[.!?;])\s+|\n{2,}")
MIN_WORDS, MIN_CJK_CHARS, MAX_CHARS = 6, 10, 400
MAX_QUOTES = 3
MIN_SIMILARITY = 0.2
NOTHING_FOUND = {"en": "No passage in the documents matches the question.", "zh": "文档中没有与问题相符的段落。"}


def split_sentences(text: str) -> list[str]:
    """Sentences worth quoting: PDF line breaks inside a sentence are joined; headings and table labels skipped."""
    joined = re.sub(r"(?<=[\u3000-\u9fff])\n(?=[\u3000-\u9fff])", "", text).replace("\n", " ")
    sentences = (" ".join(s.split()) for s in SENTENCE_END.split(joined) if s)
    return [s[:MAX_CHARS].rstrip() for s in sentences if _substantial(s)]


def _substantial(sentence: str) -> bool:
    cjk = len(re.findall(r"[\u4e00-\u9fff]", sentence))
    return cjk >= MIN_CJK_CHARS or len(sentence.split()) >= MIN_WORDS


def best_sentences(ctx: StrategyContext) -> list[tuple[float, Source, str]]:
    """(similarity, source, sentence) of the best sentences, at most one below MIN_SIMILARITY."""
    candidates = [(source, s) for source in ctx.sources for s in split_sentences(source.hit.text)]
    if not candidates:
        return []
    vectors = np.asarray(ctx.embed([ctx.question] + [s for _, s in candidates]))
    similarity = vectors[1:] @ vectors[0]
    order = np.argsort(-similarity)[:MAX_QUOTES]
    picked = [(float(similarity[i]), *candidates[i]) for i in order]
    return [p for rank, p in enumerate(picked) if rank == 0 or p[0] >= MIN_SIMILARITY]


def answer_extractive(ctx: StrategyContext) -> Iterator[Event]:
    picked = best_sentences(ctx)
    if not picked:
        yield TokenEvent(NOTHING_FOUND[ctx.prompts.language])
        return
    yield TokenEvent("\n".join(f"“{sentence}” [{source.n}]" for _, source, sentence in picked))
