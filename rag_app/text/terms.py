"""Index terms of a text: what BM25, the document match and the highlighter compare.

Latin words and numbers are kept whole ("2,468", "10-q", "fy2018"); Chinese runs are split into
words with jieba (character bigrams when jieba is not installed). :class:`PackedTerms` is how a
file's term counts cross processes and reach the chunk table.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np

from rag_app.text.clean import CJK_CHAR, jieba_or_none
from rag_app.text.script import simplified

STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have how in is it its of on or that the this to "
    "was were what when where which who why will with about into than then there these those was".split()
)
# Words of asking, not of the subject asked about: never highlighted, never taken for a name.
CJK_STOPWORDS = frozenset(
    "什么 多少 哪些 哪里 哪个 哪家 如何 怎么 怎样 是否 为什么 请问 一下 以及 还是 情况 能否 可否 请 根据 关于 提供 介绍 "
    "简要 简述 分析 说明 详细 具体 一下 给我 我们 是多少 有哪些 是什么".split()
)
# The same for English: how people word a request ("Give a response ... relying on the details shown", "Answer
# in USD millions, round to two decimal places"), as terms_of spells them (plural "s" removed).
ASKING_WORDS = frozenset(
    "give giving response respond answer question rely relying based base basing using use utilize utilizing detail "
    "shown show outlined provided provide information please calculate compute extract round decimal place unit "
    "assume assuming perspective analyst judgment primarily only clearly plainly according considering drawing "
    "conclusion taking referencing help need want you your we us following best abilitie possible reasonable "
    "approximation exact define defined explain describe briefly tell much many".split()
)
LATIN = re.compile(r"[a-z0-9][a-z0-9$%&'.,\-]*[a-z0-9%]|[a-z0-9]")
CJK_RUN = re.compile(f"{CJK_CHAR.pattern}+")
CJK_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")  # not punctuation


def _segment(run: str) -> list[str]:
    jieba = jieba_or_none()
    if jieba:
        words = jieba.cut_for_search(run)
    else:
        words = [run[i : i + 2] for i in range(len(run) - 1)] or [run]
    return [w for w in words if CJK_WORD.search(w)]


def _latin_terms(text: str) -> list[str]:
    terms = []
    for token in LATIN.findall(text.lower().replace("\u2019", "'")):
        token = token.strip(".,'-").removesuffix("'s")
        if not token or token in STOPWORDS:
            continue
        if token.isalpha() and len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]  # revenues -> revenue; a light touch, no stemmer
        terms.append(token)
    return terms


def terms_of(text: str) -> list[str]:
    """Index terms: Latin words and numbers whole, Chinese words (or bigrams) in simplified characters
    (:mod:`rag_app.text.script`: 營業收入 is the term 营业收入)."""
    terms = _latin_terms(CJK_RUN.sub(" ", text))
    for run in CJK_RUN.findall(text):
        terms += _segment(simplified(run))
    return terms


# The longest run of Chinese characters in a file name whose pinyin names it (a company's full name; longer runs
# are phrases, and their pinyin would make n * (n - 1) / 2 terms)
PINYIN_RUN = 12


@functools.lru_cache(maxsize=4096)
def pinyin_names(name: str) -> frozenset[str]:
    """The pinyin of each run of two or more Chinese characters inside each run of a file name's Chinese characters,
    its syllables joined: "2020-01-23__北方华锦__2019年__年度报告.pdf" -> {"beifang", "huajin", "beifanghuajin",
    "fanghua", ...}. An English question names a Chinese company in pinyin, whole or in part ("North Huajin",
    "Qianwei Yangchu"), which matches none of the report's words (cached: read on every question)."""
    runs = [run for run in CJK_RUN.findall(name) if len(run) <= PINYIN_RUN]
    if not runs:
        return frozenset()
    from pypinyin import lazy_pinyin  # its dictionaries load once, where a name is Chinese

    out: set[str] = set()
    for run in runs:
        syllables = lazy_pinyin(run)
        out |= {"".join(syllables[i:j]) for i in range(len(syllables)) for j in range(i + 2, len(syllables) + 1)}
    return frozenset(out)


@functools.lru_cache(maxsize=4096)
def name_terms(name: str) -> frozenset[str]:
    """Terms of a file name: "3M_2018_10K.pdf" -> {"3m", "2018", "10k"}; a year and its quarter written as one
    ("AMCOR_2023Q2_10Q.pdf") and a quarter in words (2023年第三季度报告) give the year and "q2" too (cached: read
    on every question)."""
    stem = name.rsplit(".", 1)[0]
    terms = set(terms_of(re.sub(r"[_\-.]+", " ", stem))) | part_terms(stem)
    return frozenset(terms | {part for t in terms if (m := _YEAR_QUARTER.fullmatch(t)) for part in m.groups()})


def term_parts(terms: Iterable[str]) -> set[str]:
    """Words of at least 3 letters inside compound terms: "amazon.com" -> {"amazon", "com"}. Terms keep
    dots and hyphens whole ("10-q", "2,468"), so a cover saying "AMAZON.COM, INC." never matched "Amazon"."""
    return {
        part
        for term in terms
        if any(c in term for c in ".-'&")
        for part in re.split(r"[.\-'&]+", term)
        if len(part) >= 3 and part.isalpha() and part not in STOPWORDS
    }


# A company's listing symbol as its own report states it: "under the symbol “AMZN.”", "The Company's ticker symbol is
# MMM", "The NYSE ticker symbol for Corning Incorporated is “GLW”", "Stock Trading Symbol – PEP"; and the cover's
# table of securities, a symbol before its exchange ("Common Stock, $0.01 par value MMM New York Stock Exchange"),
# read where the text says "Trading Symbol". Upper case only: "symbols (tokens)" is no symbol. Not "(NYSE: MAIA)":
# a 10-K writes so the other companies its directors serve (TransUnion's, in enterprise_rag_challenge_r1).
_SYMBOL = r"([A-Z][A-Z0-9]{0,5}(?:\.[A-Z])?)(?![A-Za-z0-9])"
_SYMBOL_STATED = re.compile(
    rf"(?i:\bsymbol)\s+(?:(?i:for)\s+[^.\u201c\"]{{1,60}}?\s+)?(?:(?i:is|of)\s+)?[\u2013\u2014:\-]?\s*"
    rf"[\u201c\u2018\"']?{_SYMBOL}"
)
_SYMBOL_LISTED = re.compile(
    rf"(?<![A-Za-z0-9.,$])\b{_SYMBOL}\s+(?:The\s+)?(?:New York Stock Exchange|NYSE|Nasdaq|NASDAQ)"
)
_SYMBOL_TABLE = re.compile(r"trading\s+symbol", re.IGNORECASE)
# A symbol among a cover's terms: "$COST", as no index term is written (they start with a letter or digit)
SYMBOL_MARK = "$"


def listing_symbols(text: str) -> set[str]:
    """The listing symbols a page states as its document's own, as printed ("AMZN", "BRK.B", and notes' "MMM26"):
    what questions name it by ("AMZN's revenue") where its title and cover name the company only (10-Ks before
    2019 print the symbol in Item 5, not on the cover). Symbols of one letter are left out (a cover's table lists
    preferred shares as "JPM PR G")."""
    found = {m.group(1) for m in _SYMBOL_STATED.finditer(text)}
    if _SYMBOL_TABLE.search(text):
        found |= {m.group(1) for m in _SYMBOL_LISTED.finditer(text)}
    return {s for s in found if len(s) >= 2} - {"NYSE", "NASDAQ"}  # one letter: a series of preferred shares


# Index terms that name a year ("2022", "fy2022"), a part of one ("q2", "h1"), or either
_YEAR, _PART = r"(?:19|20)\d\d", r"q[1-4]|h[12]"
YEAR_TERM = re.compile(rf"(?:fy)?({_YEAR})|fy\d\d", re.IGNORECASE)
PART_TERM = re.compile(_PART, re.IGNORECASE)
QUARTER_TERM = re.compile(r"q[1-4]", re.IGNORECASE)  # a quarter as a term ("Q1"), as file names write it
PERIOD_TERM = re.compile(rf"{YEAR_TERM.pattern}|{_PART}", re.IGNORECASE)
# A month, as questions write one ("the year ended 31 March 2022", "Sept. 2023"): capitalised, yet a period, not a
# name. Abbreviated only as a capital and small letters: "MAR" may be a listing symbol (Marriott's).
MONTHS = "january february march april may june july august september october november december".split()
MONTH_WORD = re.compile(rf"(?i:{'|'.join(MONTHS)})|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?")

# A quarter as questions word it ("the first quarter of 2023", "third fiscal quarter", 第三季度, 一季度) and as file
# names write it ("2023 Q1 AAPL.pdf", "AMCOR_2023Q2_10Q.pdf"): one term, q1 to q4.
_ORDINAL_QUARTER = re.compile(
    r"\b(first|second|third|fourth|1st|2nd|3rd|4th)\s+(?:fiscal\s+)?quarter\b|第?([一二三四])季度", re.IGNORECASE
)
_QUARTER_NUMBER = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
                   "一": 1, "二": 2, "三": 3, "四": 4}  # fmt: skip
_YEAR_QUARTER = re.compile(rf"({_YEAR})({_PART})")


# A half year in words, as Chinese reports title theirs (2023年半年度报告) and people ask for one ("the first half of
# 2023", 上半年, 半年报, 中报): h1 or h2, the term a file name's "H1" is.
_HALF = re.compile(
    r"\b(first|1st|second|2nd)\s+(?:fiscal\s+)?half\b|([上下])半年|半年度|半年报|中报|中期报告", re.IGNORECASE
)


def part_terms(text: str) -> set[str]:
    """The quarters and halves a text names in words, as the terms a file name's "Q1" and "H1" are: "first quarter"
    -> {"q1"}, 第三季度 -> {"q3"}, "the first half", 上半年 and 半年度报告 -> {"h1"}."""
    quarters = {f"q{_QUARTER_NUMBER[(m.group(1) or m.group(2)).lower()]}" for m in _ORDINAL_QUARTER.finditer(text)}
    halves = {"h2" if (m.group(1) or "").lower() in ("second", "2nd") or m.group(2) == "下" else "h1"
              for m in _HALF.finditer(text)}  # fmt: skip
    return quarters | halves


# A period as people abbreviate it: a fiscal year of two digits ("FY19", "FY '19", "fiscal '19", "FY'2019"), a
# quarter or half before its year ("1Q21", "2H22", "3QFY23") or with an apostrophe ("Q1'21", "H2 '22", "Q2'2023"),
# a quarter glued to its fiscal year ("Q2FY23"), a year glued to its quarter or half as Chinese research writes them
# ("23Q1", "2023Q1", "23H1"), and a Chinese two-digit year before a report's period (22年年报, 23年一季度; not a
# count of years, 近22年). A quarter without a year ("Q3") and a year of four digits beside a space are written out
# already ("FY 2019" stays; "3Q 2023" becomes "Q3 2023"). Chinese characters may touch it ("23Q1营收").
_Y = r"(?:19|20)\d\d|\d\d"  # a year, of four digits or two
_APOSTROPHE = r"['\u2019]"
_SHORT_PERIOD = re.compile(
    rf"(?<![A-Za-z0-9_])(?:(?P<fy>FY|fiscal(?:\s+year)?(?=\s*{_APOSTROPHE}))"
    rf"\s*(?:{_APOSTROPHE}\s*(?P<fy_full>(?:19|20)\d\d)|{_APOSTROPHE}?(?P<fy_year>\d\d))"
    rf"|(?P<n>[1-4])(?P<nq>[QH])\s*(?P<n_fy>FY)?\s*{_APOSTROPHE}?(?P<n_year>{_Y})"
    rf"|(?P<g>[QH][1-4])\s*FY\s*{_APOSTROPHE}?(?P<g_year>{_Y})"
    rf"|(?P<q>[QH][1-4])\s*{_APOSTROPHE}\s*(?P<q_year>{_Y})"
    rf"|(?P<yp_year>{_Y})(?P<yp>[QH][1-4])"
    r"|(?<![近约逾达历满第余去])(?P<zh_year>\d\d)(?=年(?:年报|年度|半年|中报|一季|二季|三季|四季|第[一二三四]季|前三季|Q[1-4])))"
    r"(?![A-Za-z0-9_%]|[.,]\d)",
    re.IGNORECASE,
)


def spelled_periods(text: str) -> str:
    """``text`` with its abbreviated periods written as filings and file names print them: "FY19" -> "FY2019",
    "fiscal '18" -> "fiscal 2018", "1Q21" and "Q1'21" -> "Q1 2021", "2H22" -> "H2 2022", "Q2FY23" and "2QFY23" ->
    "Q2 FY2023", "23Q1" -> "Q1 2023", 22年年报 -> 2022年年报 (a two-digit year before 70 is in this century). What
    routes a question to its year's filing, and what the period guards read."""

    def spelled(m: re.Match) -> str:
        groups = ("fy_full", "fy_year", "n_year", "g_year", "q_year", "yp_year", "zh_year")
        year = next(y for y in (m.group(g) for g in groups) if y)
        full = year if len(year) == 4 else f"{20 if int(year) < 70 else 19}{year}"
        if m.group("zh_year"):
            return full
        if m.group("yp"):  # "23Q1营收": apart from what it touches
            before = " " if m.start() and m.string[m.start() - 1].isalnum() else ""
            after = " " if m.end() < len(m.string) and m.string[m.end()].isalnum() else ""
            return f"{before}{m.group('yp').upper()} {full}{after}"
        if m.group("fy"):
            return f"{m.group('fy')}{'' if m.group('fy').upper() == 'FY' else ' '}{full}"
        if m.group("n"):
            part, fiscal = f"{m.group('nq')}{m.group('n')}", bool(m.group("n_fy"))
        else:
            part, fiscal = m.group("g") or m.group("q"), bool(m.group("g"))
        return f"{part.upper()} {'FY' if fiscal else ''}{full}"

    return _SHORT_PERIOD.sub(spelled, text)


def read_question(question: str) -> str:
    """The question as the rankings, the route and the quoted answer read it: in simplified characters (聯邦製藥 ->
    联邦制药: :mod:`rag_app.text.script`) and with its abbreviated periods written out (:func:`spelled_periods`). The
    question as asked is what the page and the model's prompt show."""
    return spelled_periods(simplified(question))


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9$%&'\u2019.\-]*[A-Za-z0-9%]|[A-Za-z0-9]")
_FISCAL_YEAR = re.compile(rf"\b(?:FY|fiscal(?: year)?)\s*({_YEAR})\b", re.IGNORECASE)  # "FY 2021", one name
_DANGLING = re.compile(  # "in the ?": the words that led to a name taken away
    r"\b(?:(?:in|of|for|from|during|the|as|at|on|by)\s+)*(?:in|of|for|from|during|the|at|on|by)\s*(?=[,.;:?!]|$)",
    re.IGNORECASE,
)


def unnamed(question: str, titles: AbstractSet[str], names: AbstractSet[str] = frozenset()) -> str:
    """The question without the words that name the documents it was routed to: the words it writes as names (with a
    capital or a digit: "Microsoft's", "MSFT", "10-Q", "2023", "FY2022") and the quarters it writes in words ("the
    first quarter"), where their term is one of ``titles`` (those documents' title terms: file names and covers).
    What is left asks for a page: "In Microsoft's Q1 2023 10-Q, what details were provided about its debt?" -> "what
    details were provided about its debt?". A year the titles do not hold stays ("how much will it pay its retirees
    in 2024", a research report's forecast for 2024), as do a capital that starts the question ("What"; not an owner's
    "Microsoft's") and a lower-case word a cover happens to hold ("market", "exchange"). ``names``: terms that are
    names however the question writes them (one typed without capitals: "microsoft" in "has microsoft increased its
    debt"). The question itself where nothing is left."""

    def titled(term: str) -> bool:
        year = YEAR_TERM.fullmatch(term)
        return term in titles or bool(year and year.group(1) in titles)

    def kept(match: re.Match) -> str:
        word = match.group(0)
        terms = terms_of(word)
        owner = word.endswith(("'s", "\u2019s"))  # "Microsoft's revenue": a name, first word or not
        named = any(c.isdigit() for c in word) or (word[0].isupper() and (match.start() > 0 or owner))
        named = named or bool(terms and terms[0] in names)
        return "" if named and terms and titled(terms[0]) else word

    text = _ORDINAL_QUARTER.sub(lambda m: "" if part_terms(m.group(0)) <= titles else m.group(0), question)
    text = _WORD.sub(kept, _FISCAL_YEAR.sub(lambda m: "" if titled(m.group(1)) else m.group(0), text))
    text = re.sub(r"(?<!\w)['\u2019]s\b", "", text)  # the "'s" of a name taken away
    text = _DANGLING.sub("", re.sub(r"\s+", " ", text))
    text = re.sub(r"\s+([,.;:?!)])", r"\1", text).strip(" ,;:")
    return text if set(terms_of(text)) - ASKING_WORDS else question


def document_query_terms(query: str) -> set[str]:
    """Terms of a question for matching documents: "FY2018" also matches a document of 2018. Without lone
    Chinese characters (的, 是, 在, 比) and words of asking (请问, 多少): like English stopwords, they name
    nothing, yet a research report's cover holds them and matched every question."""
    terms = {t for t in terms_of(query) if not (CJK_WORD.match(t) and (len(t) < 2 or t in CJK_STOPWORDS))}
    return terms | {m.group(1) for t in terms if (m := re.fullmatch(r"fy(\d{4})", t))} | part_terms(query)


@dataclass(frozen=True)
class PackedTerms:
    """The BM25 term counts of one file's chunks, packed as its postings row stores them: the terms in
    order of first use, and for each (chunk, term) pair the chunk's row, the term's place and the count.

    Made in the parser processes: four buffers cross to the ingesting process and on to the store's
    writer, where a dict per chunk cost the ingesting process ~3 s of GIL-held (un)pickling per 60,000
    chunks, time its embedder waited for.
    """

    vocabulary: str  # the terms, joined by newlines (a term never holds one)
    rows: np.ndarray  # int32
    term_ids: np.ndarray  # int32
    counts: np.ndarray  # int32

    @classmethod
    def of(cls, counted: Iterable[dict[str, int]]) -> PackedTerms:
        local: dict[str, int] = {}
        rows, term_ids, tfs = [], [], []
        for row, counts in enumerate(counted):
            for term, tf in counts.items():
                rows.append(row)
                term_ids.append(local.setdefault(term, len(local)))
                tfs.append(tf)
        as32 = functools.partial(np.asarray, dtype=np.int32)
        return cls("\n".join(local), as32(rows), as32(term_ids), as32(tfs))

    def lengths(self, chunks: int) -> np.ndarray:
        """Each chunk's number of terms (its BM25 length)."""
        return np.bincount(self.rows, weights=self.counts, minlength=chunks).astype(np.int64)
