"""extractive: no model. Quote the rows and sentences of the sources' pages that answer the question.

Every candidate is a slice of a retrieved page (rag_app.answering.passages): a table row (its label and
figures, with the line naming its columns quoted before it) or a sentence. Candidates are scored by:

* the question's words they hold, each weighted by how rare it is among the candidates: the words
  that name the document (its company, its year: they chose the document, not the passage) do not
  count, so a report's title page no longer outranks the line that answers;
* their meaning, as the embedding model reads it, where it reads the question's language (the bundled
  model reads English only: Chinese candidates of a Chinese question are scored by their words alone); a
  candidate of a page in the other language than the question's (a Chinese report's line for an English
  question, an English filing's for a Chinese one), by the Chinese reader, which reads both, with the glossary's
  concepts among its words;
* for a question asking for a figure ("how much", "what was the total", 多少), whether they hold one,
  and whether their row or sentence is of the year asked;
* the longest run of the question's own wording they repeat (rag_app.answering.phrases).

The question's words of asking ("give a response ... relying on the details shown") and the statements it
names ("rely on the balance sheet": where to look) are not words to find; a line item it names is found by
any of its names (prompts/lexicon: "capital expenditure", "Purchases of property, plant and equipment").
A measure asked that no quote names ("the quick ratio", 毛利率) is said to be missing before the nearest
quotes, so a gross-profit row is never passed off as the gross margin.

Quotes come from the documents the question names first, are whole words (never a number or a word cut
in two), and are the page's own text: each source shows the passage its quotes come from, and the
citation check reads the same text. Below a relevance threshold the answer is "not found" with the
nearest sources named instead of a quote of something unrelated.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from rag_app.answering.events import Event, Source, TokenEvent
from rag_app.answering.passages import Unit, header_for, is_cjk, units, window_header
from rag_app.answering.phrases import longest_run, question_runs
from rag_app.answering.strategy_context import StrategyContext
from rag_app.retrieval.boosts import SECTIONS_DIR, SectionSet
from rag_app.retrieval.documents import latest_words, named_years
from rag_app.text.clean import is_chinese
from rag_app.text.lexicon import GLOSSARY_DIR, concepts, named
from rag_app.text.terms import (
    ASKING_WORDS,
    CJK_STOPWORDS,
    QUARTER_TERM,
    name_terms,
    part_terms,
    terms_of,
)

MAX_QUOTES = 3
# Weights of a candidate's score (chosen on the tuning halves: bench/answers.py, docs/benchmarks.md).
MEANING, WORDS, FIGURE_BONUS, YEAR_BONUS = 0.5, 0.5, 0.1, 0.1
# The longest run of the question's own wording a candidate repeats ("国内餐饮端速冻米面市场的潜在空间",
# "total current liabilities"), in words (a Chinese character counts half), full marks at PHRASE_WORDS.
PHRASE, PHRASE_WORDS, PHRASE_MIN = 0.2, 6.0, 2.5
OTHERS_WITHIN = 0.8  # the second and third quotes score at least this share of the first
# Below these the first candidate does not answer: "not found" (chosen on the tuning halves, bench/answers.py).
# Without a meaning score (a Chinese question, an embedder that reads English only) the words alone decide;
# subjects no document is about were refused before (rag_app.answering.absence).
RELEVANT_MEANING, RELEVANT_WORDS, RELEVANT_WORDS_ONLY = 0.35, 0.34, 0.10
# A candidate of a page in the other language than the question's (a Chinese report's line for an English question),
# which the bundled model cannot compare with it, is compared by the Chinese reader (multilingual-e5 reads both), whose
# cosine similarities sit high for any pair: rescaled to (s - READER_FLOOR) / (1 - READER_FLOOR), at least 0, as the
# main model's are read (analyst_zh_en's tuning half: 0.65, 0.7 and 0.75 gave the same verdicts, 0.8 two fewer right;
# bench/answers.py). The glossary's concepts (prompts/lexicon/glossary: "core competitiveness" and 核心竞争力) count
# among its words, as the lexicon's do, and its Latin words do not: in a Chinese report they are names (its company's,
# an analyst's e-mail), which chose the page, not the line.
READER_FLOOR = 0.7
LATIN_WORD = re.compile(r"[a-z]+")
FIGURE_QUESTION = re.compile(
    r"\b(how (much|many)|what (is|was|were|are) (the )?(total|amount|value|number|figure|size|balance)|amount|"
    r"in (usd|\$|millions|billions|thousands)|revenue|income|sales|expenditure|capex|cash|assets|liabilities|"
    r"margin|ratio|eps|earnings|dividend|debt|cost|expense|profit|loss)\b|多少|金额|数额|几|占比|比例|收入|利润",
    re.IGNORECASE,
)
# A question answered yes or no ("Are there trends in ...?", "是否 ...") does not ask for the measures it names.
YES_NO_QUESTION = re.compile(
    r"^\W*(is|are|was|were|do|does|did|has|have|had|can|could|will|would|should)\b|是否|是不是|有没有|吗\W*$",
    re.IGNORECASE,
)
NOTHING_FOUND = {"en": "No passage in the documents matches the question.", "zh": "文档中没有与问题相符的段落。"}
NOT_FOUND = {
    "en": "Not found: no passage of your documents answers this question closely enough. "
    "The nearest passages are listed under Sources: {nearest}.",
    "zh": "未找到：文档中没有与这个问题足够相关的段落。最接近的段落列在“来源”中：{nearest}。",
}
# The quotes hold none of the names of a measure asked (a margin, a ratio, marketing spending): they are the
# nearest passages, not the figure; said first, in words that do not claim the documents lack it.
UNSTATED = {
    "en": "The pages found do not state {measures}; the nearest passages are quoted below.",
    "zh": "检索到的页面未明确给出{measures}，以下是最接近的段落。",
}
PERIOD_NOT_FOUND = {
    "en": "Not found: no passage retrieved for this question gives a figure for {years}. The nearest passages are "
    "listed under Sources: {nearest}.",
    "zh": "未找到：为这个问题检索到的段落都没有{years}的数字。最接近的段落列在“来源”中：{nearest}。",
}


@dataclass
class Candidate:
    unit: Unit
    source: Source
    meaning: float = 0.0
    words: float = 0.0
    phrase: float = 0.0
    score: float = 0.0
    header: Unit | None = None
    terms: set[str] = field(default_factory=set)
    source_chinese: bool = False  # whether its page is Chinese (rag_app.text.clean.is_chinese)

    @property
    def text(self) -> str:
        """What is quoted: the row or sentence, after the line naming its columns where it has one."""
        return f"{self.header.text} {self.unit.text}" if self.header else self.unit.text


def answer_extractive(ctx: StrategyContext) -> Iterator[Event]:
    picked = best_candidates(ctx)
    if not picked:
        yield TokenEvent(NOTHING_FOUND[ctx.prompts.language])
        return
    if not relevant(picked[0], _reads_question(ctx), _across(ctx, picked[0])):
        yield TokenEvent(not_found_text(ctx.prompts.language, ctx.sources))
        return
    if missing := unreported_years(ctx):
        yield TokenEvent(not_found_text(ctx.prompts.language, ctx.sources, missing))
        return
    for c in picked:  # the source shows (and the check reads) the passage its quotes come from
        c.source.widen((c.header or c.unit).start, c.unit.end)
    quotes = "\n".join(_quote(c) for c in picked)
    if unstated := unstated_measures(ctx.question, picked):
        joined = ("、" if ctx.prompts.language == "zh" else ", ").join(unstated)
        quotes = UNSTATED[ctx.prompts.language].format(measures=joined) + "\n" + quotes
    yield TokenEvent(quotes)


def unstated_measures(question: str, picked: list[Candidate]) -> list[str]:
    """The measures the question names (prompts/lexicon: "quick ratio", "gross margin", 毛利率) that no quote
    names by any of their names, as the question words them.

    "What was the Gross Profit Margin of Safe & Green in 2022?" asked of a report that prints its gross profit
    but no margin finds the gross-profit row: quoting it as the answer would pass a figure off as another.
    The quotes still come (they are the nearest passages, and the parts a margin is computed from), after a
    sentence that says the measure is not among them."""
    asked = named(question)
    if not asked or YES_NO_QUESTION.search(question):
        return []
    texts = [c.text for c in picked]
    quoted = set().union(*(concepts(t) for t in texts))
    held = [set(terms_of(t)) for t in texts]  # "Net cash provided by (used in) operating activities": every word
    return [
        words for key, words in asked.items()
        if key not in quoted and not any(set(terms_of(words)) <= terms for terms in held)
    ]  # fmt: skip


def unreported_years(ctx: StrategyContext) -> list[str]:
    """The years a figure question asks for that no retrieved passage gives a figure for: no page of the documents
    it names mentions them (:func:`unmentioned_years`), or every quote is of other years (:func:`other_years`). Every
    strategy refuses them (rag_app.answering.answerer): a model given a report for 2022 answers "fiscal 2023" with
    its 2022 column as readily as a quote would."""
    return unmentioned_years(ctx) or other_years(ctx)


def unmentioned_years(ctx: StrategyContext) -> list[str]:
    """The years a figure question asks for when no retrieved page of the documents it names mentions any.

    "Operating cash flow in fiscal 2023" asked of a 10-K for 2022 retrieves its cash-flow statement, whose
    columns are 2022 and 2021: quoting it would answer for another year. A page that mentions the year at all
    (a column header, a sentence, a footnote; "24" for 2024) keeps the answer; so does a document whose file name
    is the quarter asked ("2023 Q1 MSFT.pdf" for "the first quarter of 2023", whose pages may print the dates of a
    fiscal quarter, December 31, 2022, and never 2023); the document-level check (absence) has already refused
    years that no document named mentions anywhere."""
    asked = ctx.read_question  # "FY23", "1Q23": 2023, "Q1 2023"
    years = named_years(asked)
    if not years or not FIGURE_QUESTION.search(ctx.question):
        return []
    named = named_shas(ctx)
    searched = [s for s in ctx.sources if not named or s.hit.sha256 in named]
    # a quarter in words ("the first quarter") or as a term ("Q1 2023", "2023 Q1")
    quarters = part_terms(asked) | {t for t in terms_of(asked) if QUARTER_TERM.fullmatch(t)}
    if quarters and any(years & (terms := name_terms(s.hit.file)) and quarters & terms for s in searched):
        return []
    pages = [s.page or s.hit.text for s in searched]
    # 2024 is also written 24 (FY24, 24E, 24年, a chart's "24 营收"): a two-digit year standing alone counts
    written = re.compile("|".join(rf"{y}|(?<![\d.,]){y[2:]}(?![\d.,%])" for y in sorted(years)))
    if any(written.search(page) for page in pages):
        return []
    return sorted(years)


_FOUR_DIGIT_YEAR = re.compile(r"(?<![\d.,])(?:19|20)\d\d(?![\d.,%])")


def other_years(ctx: StrategyContext) -> list[str]:
    """The years a figure question asks for when every quote is dated, and by other years only.

    "Total liabilities in the fiscal year 2023" asked of a report for 2022 finds its balance sheet, columns
    "2022 2021": a page of it mentions 2023 (a maturity, a date after the balance sheet's), so the pages pass
    :func:`unmentioned_years`, but no quote is of 2023. A quote whose row, sentence or column line names no year
    keeps the answer (it may be of any year); so does a question naming a quarter or half, whose fiscal quarter
    may end in the year before ("Q1 2023" of a fiscal year ending in June: "September 30, 2022")."""
    asked = ctx.read_question
    years = named_years(asked)
    if not years or not FIGURE_QUESTION.search(ctx.question):
        return []
    if part_terms(asked) | {t for t in terms_of(asked) if QUARTER_TERM.fullmatch(t)}:
        return []
    picked = best_candidates(ctx)  # chosen only for such a question: it embeds every candidate (kept on ctx)
    if not picked:
        return []
    written = re.compile("|".join(rf"{y}|(?<![\d.,]){y[2:]}(?![\d.,%])" for y in sorted(years)))
    for c in picked:
        if not _FOUR_DIGIT_YEAR.search(c.text) or written.search(c.text):
            return []
    return sorted(years)


def _quote(c: Candidate) -> str:
    header = f"“{c.header.text}” " if c.header is not None else ""
    return f"{header}“{c.unit.text}” [{c.source.n}]"


def relevant(best: Candidate, by_meaning: bool = True, across: bool = False) -> bool:
    """Whether the best candidate answers at all: by its meaning, or by the question's words it holds; ``across``: it is
    in the other language than the question's, and the reader finds it nearer than READER_FLOOR (its similarities are
    too close together for a bar above that: on analyst_zh_en's tuning half a bar of 0.35 refused two more
    questions and answered none more)."""
    if across:
        return best.meaning > 0 or best.words >= RELEVANT_WORDS
    if not by_meaning:
        return best.words >= RELEVANT_WORDS_ONLY
    return best.meaning >= RELEVANT_MEANING or best.words >= RELEVANT_WORDS


def _reads_question(ctx: StrategyContext) -> bool:
    """Whether the embedder reads the question's language (so candidates have a meaning score)."""
    return ctx.embed is not None and (ctx.reads_chinese or not is_cjk(ctx.question))


def _across(ctx: StrategyContext, c: Candidate) -> bool:
    """Whether the candidate's page is in the other language than the question's, and the reader compares the two (a
    line of a Chinese report printing the company's English name is still the Chinese report's)."""
    return ctx.reader is not None and not ctx.reads_chinese and is_chinese(ctx.question) != c.source_chinese


def best_candidates(ctx: StrategyContext) -> list[Candidate]:
    """The quotes to give: at most MAX_QUOTES, from the documents the question names first (chosen once a
    question: the answerer's period check and the quoted answer read the same ones)."""
    if ctx.quotes is not None:
        return ctx.quotes
    ranked = rank_candidates(ctx)
    if not ranked:
        ctx.quotes = []
        return ctx.quotes
    first = ranked[0]
    named = named_shas(ctx)
    others = [
        c for c in ranked[1:]
        if c.score >= OTHERS_WITHIN * first.score and c.unit.text != first.unit.text
        and (not named or c.source.hit.sha256 in named)
    ]  # fmt: skip
    ctx.quotes = [first, *others][:MAX_QUOTES]
    return ctx.quotes


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
    _score_phrase(ctx, candidates)
    wants_figure = bool(FIGURE_QUESTION.search(ctx.read_question))
    years = named_years(ctx.read_question)
    for c in candidates:
        c.score = MEANING * c.meaning + WORDS * c.words + PHRASE * c.phrase
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
        chinese = is_chinese(page)
        for unit in units(page):
            header = header_for(page, unit) if unit.kind == "row" else None
            if unit.kind == "window":
                header = window_header(page, unit)
            out.append(Candidate(unit, source, header=header, source_chinese=chinese))
    return out


def _score_words(ctx: StrategyContext, candidates: list[Candidate]) -> None:
    """The share of the question's words (idf-weighted over the candidates) each candidate holds, without the
    words that name its document or the years asked (the document match and the year bonus weigh those)."""
    # the sections it names say where to look, not what to quote; a line item it names ("capital expenditure") is
    # held by a row naming it by any of its names ("Purchases of property, plant and equipment"), words and all
    question = _without_sections(ctx.read_question)
    measures = {key: set(terms_of(words)) for key, words in named(question).items()}
    asked = {
        t for t in terms_of(question)
        if t not in CJK_STOPWORDS and t not in ASKING_WORDS and not re.fullmatch(r"(fy)?\d{2,4}|[\u3400-\u9fff]", t)  # years, lone characters
    }  # fmt: skip
    asked -= latest_words(question)  # "the most recent 10-Q" chose the report (rag_app.retrieval.documents)
    across = any(_across(ctx, c) for c in candidates)
    asked |= set(measures) | concepts(question) | (concepts(question, GLOSSARY_DIR) if across else set())
    frequency: Counter = Counter()
    for c in candidates:
        c.terms = set(c.unit.terms) | (set(terms_of(c.header.text)) if c.header else set()) | concepts(c.unit.text)
        if across and _across(ctx, c):
            c.terms |= concepts(c.unit.text, GLOSSARY_DIR)
            if c.source_chinese:  # a Chinese page's Latin words are names (its company's, an analyst's): they chose it
                c.terms = {t for t in c.terms if not LATIN_WORD.fullmatch(t)}
        for key in c.terms & measures.keys():
            c.terms |= measures[key]
        frequency.update(c.terms & asked)
    # words no candidate holds tell the candidates nothing apart: only the others are counted
    idf = {t: math.log(1 + len(candidates) / (1 + frequency[t])) for t in asked if frequency[t]}
    for c in candidates:
        own = set(idf) - ctx.route.titles.get(c.source.hit.sha256, frozenset())
        total = math.fsum(idf[t] for t in own)  # exact sums: the same in any order the sets give (any process)
        c.words = math.fsum(idf[t] for t in own & c.terms) / total if total else 0.0


@functools.cache
def _section_names() -> re.Pattern | None:
    """How questions name the sections of prompts/sections (the balance sheet, 现金流量表), in any set."""
    sets = [SectionSet.load(path.stem) for path in sorted(SECTIONS_DIR.glob("*.toml"))]
    names = [pattern.pattern for sections in sets for pattern in sections.asked.values()]
    return re.compile("|".join(f"(?:{n})" for n in names), re.IGNORECASE) if names else None


def _without_sections(question: str) -> str:
    """The question without the sections it names: "using the balance sheet" says where to look (retrieval's
    section boost reads it), and no row of that sheet repeats its name."""
    pattern = _section_names()
    return pattern.sub(" ", question) if pattern else question


def _score_phrase(ctx: StrategyContext, candidates: list[Candidate]) -> None:
    """The longest run of the question's wording each candidate holds, as a share of PHRASE_WORDS (none for a
    candidate that holds none of the question's own words)."""
    runs = question_runs(ctx.read_question, PHRASE_MIN, PHRASE_WORDS)
    if not runs:
        return
    for c in candidates:
        if c.words:  # one that holds none repeats nothing but its document's name ("2020年金宇生物技术股份有限公司")
            held = longest_run(runs, c.text)
            c.phrase = min(held, PHRASE_WORDS) / PHRASE_WORDS


def _score_meaning(ctx: StrategyContext, candidates: list[Candidate]) -> None:
    """Cosine similarity of each candidate with the question, where the embedder reads both; a candidate in the other
    language, by the Chinese reader's vectors, rescaled (READER_FLOOR)."""
    across = [c for c in candidates if _across(ctx, c)]
    if across and ctx.reader is not None:
        unnamed = _without_names(ctx)
        question = np.asarray(ctx.reader.embed_query(unnamed(ctx.read_question)))
        vectors = np.asarray(ctx.reader.embed_passages([unnamed(c.text) for c in across]))
        for c, similarity in zip(across, vectors @ question, strict=True):
            c.meaning = max(0.0, (float(similarity) - READER_FLOOR) / (1 - READER_FLOOR))
    if not _reads_question(ctx):
        return
    compared = {id(c) for c in across}
    readable = [c for c in candidates if (ctx.reads_chinese or not is_cjk(c.unit.text)) and id(c) not in compared]
    if not readable:
        return
    texts = [ctx.read_question] + [c.text for c in readable]
    vectors = np.asarray(ctx.embed(texts))
    for c, similarity in zip(readable, vectors[1:] @ vectors[0], strict=True):
        c.meaning = float(similarity)


def _without_names(ctx: StrategyContext) -> Callable[[str], str]:
    """A text without the words of the names the question gives the documents it names ("Sifang Technology", whose
    "Sifang" titles 四方科技's report): the line of a Chinese report printing its English name ("公司的外文名称 Sifang
    Technology Group Co., Ltd.") shares them with the English question, and the reader found it nearest."""
    titled = frozenset().union(*ctx.route.titles.values()) if ctx.route.titles else frozenset()
    words = sorted({t for group in ctx.route.names if group & titled for t in group}, key=len, reverse=True)
    if not words:
        return lambda text: text
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\w*", re.IGNORECASE)
    return lambda text: pattern.sub(" ", text)


def not_found_text(language: str, sources: list[Source], years: list[str] | None = None) -> str:
    """The plain "not found" answer, naming the nearest sources (file and page) without citing them; with
    ``years``, the periods no retrieved page mentions."""
    nearest = "; ".join(dict.fromkeys(f"{s.hit.file} p. {s.hit.page}" for s in sources[:3]))
    if years:
        joined = ("、" if language == "zh" else ", ").join(years)
        return PERIOD_NOT_FOUND[language].format(years=joined, nearest=nearest)
    return NOT_FOUND[language].format(nearest=nearest)
