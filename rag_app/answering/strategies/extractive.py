"""extractive: no model. Quote the rows and sentences of the sources' pages that answer the question.

Every candidate is a slice of a retrieved page (rag_app.answering.passages): a table row (its label and
figures, with the line naming its columns quoted before it) or a sentence. Candidates are scored by:

* the question's words they hold, each weighted by how rare it is among the candidates: the words
  that name the document (its company, its year: they chose the document, not the passage) do not
  count, so a report's title page no longer outranks the line that answers;
* their meaning, as the embedding model reads it, where it reads the question's language (the bundled
  model reads English only: Chinese candidates are scored by their words alone);
* for a question asking for a figure ("how much", "what was the total", 多少), whether they hold one,
  and whether their row or sentence is of the year asked.

Quotes come from the documents the question names first, are whole words (never a number or a word cut
in two), and are the page's own text: each source shows the passage its quotes come from, and the
citation check reads the same text. Below a relevance threshold the answer is "not found" with the
nearest sources named instead of a quote of something unrelated.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rag_app.answering.events import Event, Source, TokenEvent
from rag_app.answering.passages import Unit, header_for, is_cjk, units
from rag_app.answering.strategy_context import StrategyContext
from rag_app.retrieval.documents import named_years
from rag_app.text.lexicon import concepts
from rag_app.text.terms import CJK_STOPWORDS, terms_of

MAX_QUOTES = 3
# Weights of a candidate's score (chosen on the tuning halves: bench/answers.py, docs/benchmarks.md).
MEANING, WORDS, FIGURE_BONUS, YEAR_BONUS = 0.5, 0.5, 0.1, 0.1
OTHERS_WITHIN = 0.8  # the second and third quotes score at least this share of the first
# Below these the first candidate does not answer: "not found" (chosen on the tuning halves, bench/answers.py).
# Without a meaning score (a Chinese question, an embedder that reads English only) the words alone decide;
# subjects no document is about were refused before (rag_app.answering.absence).
RELEVANT_MEANING, RELEVANT_WORDS, RELEVANT_WORDS_ONLY = 0.35, 0.34, 0.10
FIGURE_QUESTION = re.compile(
    r"\b(how (much|many)|what (is|was|were|are) (the )?(total|amount|value|number|figure|size|balance)|amount|"
    r"in (usd|\$|millions|billions|thousands)|revenue|income|sales|expenditure|capex|cash|assets|liabilities|"
    r"margin|ratio|eps|earnings|dividend|debt|cost|expense|profit|loss)\b|多少|金额|数额|几|占比|比例|收入|利润",
    re.IGNORECASE,
)
NOTHING_FOUND = {"en": "No passage in the documents matches the question.", "zh": "文档中没有与问题相符的段落。"}
NOT_FOUND = {
    "en": "Not found: no passage of your documents answers this question closely enough. "
    "The nearest passages are listed under Sources: {nearest}.",
    "zh": "未找到：文档中没有与这个问题足够相关的段落。最接近的段落列在“来源”中：{nearest}。",
}
PERIOD_NOT_FOUND = {
    "en": "Not found: no page retrieved for this question mentions {years}, so none gives its figure for that "
    "period. The nearest passages are listed under Sources: {nearest}.",
    "zh": "未找到：为这个问题检索到的页面都没有提到{years}，没有该期间的数字。最接近的段落列在“来源”中：{nearest}。",
}


@dataclass
class Candidate:
    unit: Unit
    source: Source
    meaning: float = 0.0
    words: float = 0.0
    score: float = 0.0
    header: Unit | None = None
    terms: set[str] = field(default_factory=set)


def answer_extractive(ctx: StrategyContext) -> Iterator[Event]:
    picked = best_candidates(ctx)
    if not picked:
        yield TokenEvent(NOTHING_FOUND[ctx.prompts.language])
        return
    if not relevant(picked[0], _reads_question(ctx)):
        yield TokenEvent(not_found_text(ctx.prompts.language, ctx.sources))
        return
    if missing := unmentioned_years(ctx):
        yield TokenEvent(not_found_text(ctx.prompts.language, ctx.sources, missing))
        return
    for c in picked:  # the source shows (and the check reads) the passage its quotes come from
        c.source.widen((c.header or c.unit).start, c.unit.end)
    yield TokenEvent("\n".join(_quote(c) for c in picked))


def unmentioned_years(ctx: StrategyContext) -> list[str]:
    """The years a figure question asks for when no retrieved page of the documents it names mentions any.

    "Operating cash flow in fiscal 2023" asked of a 10-K for 2022 retrieves its cash-flow statement, whose
    columns are 2022 and 2021: quoting it would answer for another year. A page that mentions the year at all
    (a column header, a sentence, a footnote; "24" for 2024) keeps the answer; the document-level check
    (absence) has already refused years that no document named mentions anywhere."""
    years = named_years(ctx.question)
    if not years or not FIGURE_QUESTION.search(ctx.question):
        return []
    named = named_shas(ctx)
    pages = [s.page or s.hit.text for s in ctx.sources if not named or s.hit.sha256 in named]
    # 2024 is also written 24 (FY24, 24E, 24年, a chart's "24 营收"): a two-digit year standing alone counts
    written = re.compile("|".join(rf"{y}|(?<![\d.,]){y[2:]}(?![\d.,%])" for y in sorted(years)))
    if any(written.search(page) for page in pages):
        return []
    return sorted(years)


def _quote(c: Candidate) -> str:
    header = f"“{c.header.text}” " if c.header is not None else ""
    return f"{header}“{c.unit.text}” [{c.source.n}]"


def relevant(best: Candidate, by_meaning: bool = True) -> bool:
    """Whether the best candidate answers at all: by its meaning, or by the question's words it holds."""
    if not by_meaning:
        return best.words >= RELEVANT_WORDS_ONLY
    return best.meaning >= RELEVANT_MEANING or best.words >= RELEVANT_WORDS


def _reads_question(ctx: StrategyContext) -> bool:
    """Whether the embedder reads the question's language (so candidates have a meaning score)."""
    return ctx.embed is not None and (ctx.reads_chinese or not is_cjk(ctx.question))


def best_candidates(ctx: StrategyContext) -> list[Candidate]:
    """The quotes to give: at most MAX_QUOTES, from the documents the question names first."""
    ranked = rank_candidates(ctx)
    if not ranked:
        return []
    first = ranked[0]
    named = named_shas(ctx)
    others = [
        c for c in ranked[1:]
        if c.score >= OTHERS_WITHIN * first.score and c.unit.text != first.unit.text
        and (not named or c.source.hit.sha256 in named)
    ]  # fmt: skip
    return [first, *others][:MAX_QUOTES]


def named_shas(ctx: StrategyContext) -> set[str]:
    """The documents among the sources that the question names best (empty: it names none, or all alike)."""
    return ctx.route.best_named(list(dict.fromkeys(s.hit.sha256 for s in ctx.sources)))


def rank_candidates(ctx: StrategyContext) -> list[Candidate]:
    """Every row and sentence of the sources' pages, scored, best first; named documents' before others."""
    candidates = _candidates(ctx.sources)
    if not candidates:
        return []
    _score_words(ctx, candidates)
    _score_meaning(ctx, candidates)
    wants_figure = bool(FIGURE_QUESTION.search(ctx.question))
    years = named_years(ctx.question)
    for c in candidates:
        c.score = MEANING * c.meaning + WORDS * c.words
        if wants_figure:
            c.score += FIGURE_BONUS if c.unit.has_figure else -FIGURE_BONUS
        if years and any(y in c.unit.text or (c.header and y in c.header.text) for y in years):
            c.score += YEAR_BONUS
        elif years and c.header is not None:  # a table of other years than the one asked
            c.score -= YEAR_BONUS
    named = named_shas(ctx)
    return sorted(candidates, key=lambda c: (bool(named) and c.source.hit.sha256 not in named, -c.score))


def _candidates(sources: list[Source]) -> list[Candidate]:
    """The units of every source's page, once per page (two sources of one page share their units)."""
    seen: set[tuple[str, int]] = set()
    out = []
    for source in sources:
        key = (source.hit.sha256, source.hit.page)
        page = source.page or source.hit.text
        if key in seen:
            continue
        seen.add(key)
        for unit in units(page):
            header = header_for(page, unit) if unit.kind == "row" else None
            out.append(Candidate(unit, source, header=header))
    return out


def _score_words(ctx: StrategyContext, candidates: list[Candidate]) -> None:
    """The share of the question's words (idf-weighted over the candidates) each candidate holds, without the
    words that name its document or the years asked (the document match and the year bonus weigh those)."""
    asked = {
        t for t in terms_of(ctx.question)
        if t not in CJK_STOPWORDS and not re.fullmatch(r"(fy)?\d{2,4}|[\u3400-\u9fff]", t)  # years, lone characters
    }  # fmt: skip
    asked |= concepts(ctx.question)  # "capex" also finds "Purchases of property, plant and equipment"
    frequency: Counter = Counter()
    for c in candidates:
        c.terms = set(c.unit.terms) | (set(terms_of(c.header.text)) if c.header else set()) | concepts(c.unit.text)
        frequency.update(c.terms & asked)
    # words no candidate holds tell the candidates nothing apart: only the others are counted
    idf = {t: math.log(1 + len(candidates) / (1 + frequency[t])) for t in asked if frequency[t]}
    for c in candidates:
        own = set(idf) - ctx.route.titles.get(c.source.hit.sha256, frozenset())
        total = sum(idf[t] for t in own)
        c.words = sum(idf[t] for t in own & c.terms) / total if total else 0.0


def _score_meaning(ctx: StrategyContext, candidates: list[Candidate]) -> None:
    """Cosine similarity of each candidate with the question, where the embedder reads both."""
    if not _reads_question(ctx):
        return
    readable = [c for c in candidates if ctx.reads_chinese or not is_cjk(c.unit.text)]
    if not readable:
        return
    texts = [ctx.question] + [(f"{c.header.text} {c.unit.text}" if c.header else c.unit.text) for c in readable]
    vectors = np.asarray(ctx.embed(texts))
    for c, similarity in zip(readable, vectors[1:] @ vectors[0], strict=True):
        c.meaning = float(similarity)


def not_found_text(language: str, sources: list[Source], years: list[str] | None = None) -> str:
    """The plain "not found" answer, naming the nearest sources (file and page) without citing them; with
    ``years``, the periods no retrieved page mentions."""
    nearest = "; ".join(dict.fromkeys(f"{s.hit.file} p. {s.hit.page}" for s in sources[:3]))
    if years:
        joined = ("、" if language == "zh" else ", ").join(years)
        return PERIOD_NOT_FOUND[language].format(years=joined, nearest=nearest)
    return NOT_FOUND[language].format(nearest=nearest)
