"""The quotable units of a page: table rows, sentences, and the header line that names a table's columns.

A page's text keeps its line breaks (rag_app.text.clean joins only the breaks inside a sentence), so a
table row is one line: a label and its figures ("Purchases of property, plant and equipment (PP&E) (1,577)
(1,373) (1,420)"). The line above a table that names its columns ("(Millions) 2018 2017 2016") says
which figure belongs to which period, and is quoted with a row. Lines of prose are joined back into
sentences. Every unit is a slice of the page, so a quote of it is the page's own text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from rag_app.text.clean import FIGURE_CELL, jieba_or_none
from rag_app.text.terms import terms_of

CJK = re.compile(r"[\u3400-\u9fff]")
FIGURE = re.compile(rf"^(?:{FIGURE_CELL})$")  # a token of a row's tail (rag_app.text.clean)
YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
# An amount: 1,577  3.5  12%  $ 40  (2,023)  5亿元  1,581,905,632.48 元 (years removed first)
AMOUNT = re.compile(r"\d{1,3}(?:,\d{3})+|\d+\.\d+|\d+\s?%|[$€£¥]\s?\d|\(\d[\d,]*\)|\d{3,}|\d+\s?[万亿]")
PAGE_MARK = re.compile(r"^\s*\d{1,4}\s*/\s*\d{1,4}\s*$|^\s*(?:page\s+)?\d{1,4}\s*$", re.IGNORECASE)
SENTENCE_END = re.compile(r"(?<=[。！？；])|(?<=[.!?;])\s+(?=[A-Z0-9(\"“])")
MIN_WORDS, MIN_CJK_CHARS = 4, 4
MAX_CHARS, MAX_CJK_CHARS = 400, 150


@dataclass(frozen=True)
class Unit:
    """A quotable slice of a page: ``text == page[start:end]``."""

    text: str
    start: int
    end: int
    kind: str  # "row" (a label and its figures on one line), "sentence", or "window" (a piece of a long one)
    label: str  # a row's words before its figures; a sentence's own text

    @cached_property
    def terms(self) -> frozenset[str]:
        return frozenset(terms_of(self.label))

    @property
    def has_figure(self) -> bool:
        """Whether it states an amount: a number that is not a year, a date or a count of periods."""
        text = YEAR.sub(" ", self.text)
        return bool(AMOUNT.search(text))


def units(page: str) -> list[Unit]:
    """Every row and sentence of a page worth quoting, in page order."""
    found: list[Unit] = []
    prose: list[tuple[int, int]] = []  # line spans waiting to be joined into sentences
    for start, end in _lines(page):
        line = page[start:end]
        label = row_label(line)
        if label is not None and len(line) > (MAX_CJK_CHARS if is_cjk(line) else MAX_CHARS):
            label = None  # a paragraph that ends in figures (a chart's axis run into it) is prose, not a row
        if label is not None:
            found += _sentences(page, prose)
            prose = []
            if _names_something(label) and not PAGE_MARK.match(line):
                found.append(Unit(line, start, end, "row", label))
        elif line.strip():
            prose.append((start, end))
        else:
            found += _sentences(page, prose)
            prose = []
    return found + _sentences(page, prose)


def _lines(page: str) -> list[tuple[int, int]]:
    """(start, end) of each line without its surrounding spaces (an empty line: start == end)."""
    spans, start = [], 0
    for line in page.split("\n"):
        lead = len(line) - len(line.lstrip())
        spans.append((start + lead, start + lead + len(line.strip())))
        start += len(line) + 1
    return spans


def row_label(line: str) -> str | None:
    """A table row's label (the words before its figures), or None when the line is not a row."""
    tokens = line.split()
    tail = 0
    while tail < len(tokens) and FIGURE.match(tokens[-1 - tail]):
        tail += 1
    numbers = sum(bool(re.search(r"\d", t)) for t in tokens[len(tokens) - tail :])
    if numbers == 0 or tail == len(tokens):
        return None
    label = " ".join(tokens[: len(tokens) - tail])
    if label.endswith((".", "。")) and len(label.split()) > 12:  # a sentence that ends with a number is prose
        return None
    return label


def header_for(page: str, row: Unit) -> Unit | None:
    """The nearest line above a row that names its columns: two years or more, few other figures."""
    before = page[: row.start]
    for start, end in reversed(_lines(before)):
        line = page[start:end]
        years = YEAR.findall(line)
        others = len(re.findall(r"\d[\d,.]*", line)) - len(years)
        if len(years) >= 2 and others <= 2:
            return Unit(line, start, end, "header", line)
        if before.count("\n", start) > 40:  # a header is near the top of its table
            break
    return None


# The years naming a table's columns as a flattened table prints them: "2023A 2024A 2025E 2026E", "2020 2019"
YEAR_RUN = re.compile(r"(?<![\d.,])(?:19|20)\d\d[AEFHQ]?(?:\s*(?:19|20)\d\d[AEFHQ]?)+(?![\d.,%])")
WINDOW_HEADER_REACH = 600  # characters back from a window to the years above its figures


def window_header(page: str, window: Unit) -> Unit | None:
    """For a window over a table flattened into one long line (as Chinese reports' pages often are), the run of
    years naming its columns, the nearest before it ("2023A 2024A 2025E ... 营业总收入 13,754 13,759 ...
    归母净利润 2,701 2,660"): what says which figure is which year, as a row's header line does. None when the
    window holds its own years or none are near."""
    if YEAR_RUN.search(window.text):
        return None
    before = page[max(0, window.start - WINDOW_HEADER_REACH) : window.start]
    runs = list(YEAR_RUN.finditer(before))
    if not runs:
        return None
    run = runs[-1]
    start = window.start - len(before) + run.start()
    return Unit(run.group(), start, start + len(run.group()), "header", run.group())


def _sentences(page: str, spans: list[tuple[int, int]]) -> list[Unit]:
    """The sentences of consecutive prose lines (a span from the first line's start to the last's end)."""
    if not spans:
        return []
    start, end = spans[0][0], spans[-1][1]
    text = page[start:end]
    out, cursor = [], 0
    for piece in SENTENCE_END.split(text):
        if not piece:
            continue
        at = text.find(piece, cursor)
        cursor = at + len(piece)
        stripped = piece.strip()
        offset = start + at + (len(piece) - len(piece.lstrip()))
        spans = _windows(stripped)
        kind = "window" if len(spans) > 1 else "sentence"
        for a, b in spans:
            if _substantial(stripped[a:b]):
                out.append(Unit(stripped[a:b], offset + a, offset + b, kind, stripped[a:b]))
    return out


def _windows(text: str) -> list[tuple[int, int]]:
    """A sentence whole, or, when it runs past the quote limit (a table flattened into one line, as Chinese
    reports' pages often are), overlapping pairs of its space-separated pieces, each within the limit: a
    label and the value after it ("电子信箱 zqb@ntsquare.com") stay together."""
    limit = MAX_CJK_CHARS if is_cjk(text) else MAX_CHARS
    if len(text) <= limit:
        return [(0, len(text))]
    pieces, start = [], 0
    for match in re.finditer(r"\s+|(?<=[，、：；])", text):
        if match.start() - start >= limit // 4 or match.end() == len(text):
            pieces.append((start, match.start()))
            start = match.end()
    pieces.append((start, len(text)))
    pieces = [(a, b) for a, b in pieces if b > a]
    spans = []
    for i, (a, b) in enumerate(pieces):
        end = pieces[i + 1][1] if i + 1 < len(pieces) and pieces[i + 1][1] - a <= limit else b
        spans.append((a, a + len(clip(text[a:end]))))
    return spans


def _names_something(label: str) -> bool:
    """A row label worth quoting: a word of three letters, or two Chinese characters ("Inventories", "存货")."""
    return bool(re.search(r"[A-Za-z]{3,}", label)) or len(CJK.findall(label)) >= 2


def _substantial(text: str) -> bool:
    cjk = len(CJK.findall(text))
    return cjk >= MIN_CJK_CHARS or len(re.findall(r"[A-Za-z]{2,}", text)) >= MIN_WORDS


def is_cjk(text: str) -> bool:
    return len(CJK.findall(text)) > len(text) // 3


def clip(text: str) -> str:
    """At most MAX_CHARS (Chinese: MAX_CJK_CHARS), cut at a word boundary: a space, or a word jieba
    finds (never inside a number or a word)."""
    limit = MAX_CJK_CHARS if is_cjk(text) else MAX_CHARS
    if len(text) <= limit:
        return text
    cut = max(text.rfind(" ", 0, limit + 1), _last_word_end(text, limit))
    return (text[:cut] if cut > limit // 2 else text[:limit]).rstrip(" ,;:，、")


def _last_word_end(text: str, limit: int) -> int:
    """The end of the last whole Chinese word within ``limit`` characters (-1: none)."""
    jieba = jieba_or_none()
    if jieba is None or not CJK.search(text[:limit]):
        return -1
    ends = [end for _, _, end in jieba.tokenize(text[: limit + 20]) if end <= limit]
    ends = [
        e for e in ends if not re.match(r"[\dA-Za-z]", text[e : e + 1]) or not re.match(r"[\dA-Za-z]", text[e - 1 : e])
    ]
    return ends[-1] if ends else -1
