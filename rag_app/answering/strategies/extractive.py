"""extractive: no model. Quote the sentences of the top sources that best match the question.

Sentences are ranked by the embedding model (cosine similarity with the
question), so this mode needs nothing but what ingestion already loaded. Three
rules keep the quotes honest:

* a quote is whole words: it never ends inside a number (``$ 53,88`` of ``$ 53,888``)
  or a word, at a length limit or at the edge of a chunk;
* when the question names a company, product or period that some documents match
  (file name or cover page), quotes come from those documents first;
* when no sentence is similar enough (``RELEVANT_SIMILARITY``, chosen on the dev sets by
  ``python -m bench.refusal``), the answer says that nothing was found and names the
  nearest sources instead of quoting something unrelated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rag_app.answering.events import Event, Source, TokenEvent
from rag_app.answering.strategy_context import StrategyContext

SENTENCE_END = re.compile(r"(?<=[。！？；])|(?<=[.!?;])\s+|\n{2,}")
ENDS_SENTENCE = re.compile(r"[。！？；.!?;:：)）\]】\"”]$")
MIN_WORDS, MIN_CJK_CHARS, MAX_CHARS, MAX_CJK_QUOTE = 6, 10, 400, 150
MAX_QUOTES = 3
DANGLING = " $€£¥(（-–—:,;"  # what a quote must not end on: a currency sign without its amount, an open bracket
MIN_SIMILARITY = 0.2  # the second and third quotes must reach this
# Below this similarity of the first quote the answer is "not found". Chosen by bench/refusal.py
# (bench/results/refusal-extractive.json): the largest refusal recall with at most 5% of answerable
# questions refused. Tuned on enterprise_rag_challenge_r1 (29 questions to refuse: N/A answers or
# companies without a report here; 2 answerable) and docugami_sec10q on its five 2023 Q1 10-Qs
# (91 answerable): precision 0.70, recall 0.24, 3.2% of answerable questions refused. Not yet
# confirmed on a held-out set. The similarities of the two kinds overlap widely (medians 0.51 vs
# 0.60), so most unanswerable questions are still answered with their nearest quotes.
RELEVANT_SIMILARITY = 0.46
NOTHING_FOUND = {"en": "No passage in the documents matches the question.", "zh": "文档中没有与问题相符的段落。"}
NOT_FOUND = {
    "en": "Not found: no passage of your documents answers this question closely enough. "
    "The nearest passages are listed under Sources: {nearest}.",
    "zh": "未找到：文档中没有与这个问题足够相关的段落。最接近的段落列在“来源”中：{nearest}。",
}


@dataclass(frozen=True)
class Quote:
    similarity: float
    source: Source
    sentence: str


def _normalise(text: str) -> str:
    """PDF line breaks inside a sentence joined (none between CJK characters), spaces collapsed per line."""
    joined = re.sub(r"(?<=[\u3000-\u9fff])\n(?=[\u3000-\u9fff])", "", text)
    return re.sub(r"[ \t\r\f\v]*\n[ \t\r\f\v]*(?!\n)", " ", joined)


def split_sentences(text: str, cut_start: bool = False, cut_end: bool = False) -> list[str]:
    """Sentences worth quoting, whole words only; headings and table labels skipped.

    ``cut_start``/``cut_end``: the text is a slice of a page (a chunk), so its first or last
    word may be cut in two: they are dropped unless the text ends a sentence there.
    """
    pieces = [" ".join(s.split()) for s in SENTENCE_END.split(_normalise(text)) if s and s.strip()]
    if cut_end and pieces and not ENDS_SENTENCE.search(pieces[-1]):
        pieces[-1] = _drop_last_word(pieces[-1])
    if cut_start and pieces:
        pieces[0] = _drop_first_word(pieces[0])
    return [clip(s, _limit(s)).rstrip(DANGLING) for s in pieces if _substantial(s)]


def _limit(sentence: str) -> int:
    """Characters a quote may have: Chinese says in 150 what English says in 400."""
    return MAX_CJK_QUOTE if len(re.findall(r"[\u4e00-\u9fff]", sentence)) > len(sentence) // 3 else MAX_CHARS


def clip(sentence: str, limit: int = MAX_CHARS) -> str:
    """At most ``limit`` characters, cut at a word boundary (never inside a number or a word)."""
    if len(sentence) <= limit:
        return sentence
    cut = sentence[: limit + 1]
    boundary = max(cut.rfind(" "), _last_cjk(cut[:limit]))
    return (cut[:boundary] if boundary > limit // 2 else cut[:limit]).rstrip(" ,;:")


def _last_cjk(text: str) -> int:
    """Index after the last CJK character (a safe cut: Chinese has no spaces between words)."""
    ends = [m.end() for m in re.finditer(r"[\u3000-\u9fff]", text)]
    return ends[-1] if ends else -1


def _drop_last_word(piece: str) -> str:
    if re.search(r"[\u3000-\u9fff]$", piece):
        return piece
    return piece.rsplit(" ", 1)[0] if " " in piece else ""


def _drop_first_word(piece: str) -> str:
    if re.match(r"[\u3000-\u9fff]", piece):
        return piece
    return piece.split(" ", 1)[1] if " " in piece else ""


def _substantial(sentence: str) -> bool:
    cjk = len(re.findall(r"[\u4e00-\u9fff]", sentence))
    return cjk >= MIN_CJK_CHARS or len(sentence.split()) >= MIN_WORDS


def source_sentences(source: Source) -> list[str]:
    """The sentences of a source as the model would read it (the hit with its page neighbours)."""
    return split_sentences(source.text, cut_start=source.hit.offset > 0, cut_end=True)


def rank_quotes(ctx: StrategyContext) -> list[Quote]:
    """Every candidate sentence with its similarity, best first; named documents' sentences before others."""
    candidates = [(source, s) for source in ctx.sources for s in source_sentences(source)]
    if not candidates:
        return []
    vectors = np.asarray(ctx.embed([ctx.question] + [s for _, s in candidates]))
    similarity = vectors[1:] @ vectors[0]
    quotes = [Quote(float(sim), source, s) for sim, (source, s) in zip(similarity, candidates, strict=True)]
    named = named_shas(ctx)
    return sorted(quotes, key=lambda q: (bool(named) and q.source.hit.sha256 not in named, -q.similarity))


def named_shas(ctx: StrategyContext) -> set[str]:
    """The documents among the sources that the question names best (empty: it names none, or all alike)."""
    return ctx.route.best_named(list(dict.fromkeys(s.hit.sha256 for s in ctx.sources)))


def best_sentences(ctx: StrategyContext) -> list[Quote]:
    """The quotes to give: at most MAX_QUOTES, the first always, the others if similar enough."""
    ranked = rank_quotes(ctx)
    if not ranked:
        return []
    first, rest = ranked[0], ranked[1:]
    picked = [first] + [q for q in rest if q.similarity >= MIN_SIMILARITY and q.sentence != first.sentence]
    return picked[:MAX_QUOTES]


def not_found_text(language: str, sources: list[Source]) -> str:
    """The plain "not found" answer, naming the nearest sources (file and page) without citing them."""
    nearest = "; ".join(dict.fromkeys(f"{s.hit.file} p. {s.hit.page}" for s in sources[:3]))
    return NOT_FOUND[language].format(nearest=nearest)


def answer_extractive(ctx: StrategyContext) -> Iterator[Event]:
    picked = best_sentences(ctx)
    if not picked:
        yield TokenEvent(NOTHING_FOUND[ctx.prompts.language])
        return
    if picked[0].similarity < RELEVANT_SIMILARITY:  # the first quote is from the named documents
        yield TokenEvent(not_found_text(ctx.prompts.language, ctx.sources))
        return
    yield TokenEvent("\n".join(f"“{q.sentence}” [{q.source.n}]" for q in picked))
