"""Clean the raw text a PDF parser returns so that it reads as written.

pypdf returns text with words hyphenated at line ends, runs of spaces from
layout, control characters from broken font maps, and in some Chinese PDFs a
line break between almost every character. The chunker and the embedder both
work better on text that reads like the document.
"""

from __future__ import annotations

import functools
import logging
import re

# CJK ideographs, kana, hangul and CJK/full-width punctuation: text written
# without spaces between words, so a line break inside it is never a space.
_CJK = (
    r"\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3130-\u318f"
    r"\u31a0-\u31ff\u3200-\u32ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    r"\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
)
CJK_CHAR = re.compile(f"[{_CJK}]")

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f]+")
_ZERO_WIDTH = re.compile(r"[\u200b-\u200d\u2060\ufeff]")
_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb06": "st"}
)
# "inter-\nnational" -> "international"; only lower-case continuations, so
# "Hewlett-\nPackard" and "2019-\n2020" keep their hyphen.
_HYPHENATED = re.compile(r"(?<=[^\W\d_])[-\u00ad\u2010]\n[ \t]*(?=[a-z])")
_SOFT_HYPHEN = re.compile(r"\u00ad")
# Line breaks inside CJK text: a single break joins, a blank line separates.
_CJK_SINGLE_BREAK = re.compile(f"(?<=[{_CJK}])[ \\t]*\\n[ \\t]*(?=[{_CJK}])")
_SINGLE_BREAK = re.compile(r"(?<=\S)[ \t]*\n[ \t]*(?=\S)")
_LATIN_SINGLE_BREAK = re.compile(r"(?<=[A-Za-z])[ \t]*\n[ \t]*(?=[A-Za-z])")
_CJK_BLANK_LINE = re.compile(f"(?<=[{_CJK}0-9])[ \\t]*\\n(?:[ \\t]*\\n)+[ \\t]*(?=[{_CJK}0-9])")
_BLANK_LINES = re.compile(r"[ \t]*\n(?:[ \t]*\n)+[ \t]*")
# A table row as a CJK page prints it: a label, then two figures or more, each after a space ("负债合计
# 525,802,580.88 692,654,284.96"); and the start of a line that goes on with the figure before it (its unit, or
# the sentence's punctuation: "人民币 2,941,412,770.30\n元(合并...")
# A figure as tables print it, one cell: 1,577  (1,577)  $  5,363  12.5%  —  ** (the quoted answers' rows use it too)
FIGURE_CELL = r"\(?[-−–]?[$€£¥￥]?\d[\d,]*(?:\.\d+)?%?\)?|[$€£¥￥]|[-−–—]|\*+"
_FIGURE_CELL = f"(?:{FIGURE_CELL})"
_ROW_FIGURES = re.compile(rf"(?:[ \t]+|(?<=[\u3400-\u9fff）)])){_FIGURE_CELL}(?:[ \t]+{_FIGURE_CELL})+[ \t]*$")
_LETTER = re.compile(r"[^\W\d_]")
_ONLY_FIGURES = re.compile(rf"^[ \t]*{_FIGURE_CELL}(?:[ \t]+{_FIGURE_CELL})+[ \t]*$")  # a row whose label wrapped
_GOES_ON = re.compile(r"^[ \t]*[元万亿%％股人家个次倍，。、；：）)]")
_ROW_BREAK = "\x00"  # a kept line break while the others join (control characters are gone by then)
_LINE_EDGES = re.compile(r"[ \t]*\n[ \t]*")


def is_cjk_heavy(text: str, threshold: float = 0.3) -> bool:
    """True when at least ``threshold`` of the visible characters are CJK."""
    visible = sum(1 for ch in text if not ch.isspace())
    return visible > 0 and len(CJK_CHAR.findall(text)) / visible >= threshold


def clean_page_text(raw: str) -> str:
    """Return ``raw`` with control characters, layout spacing and broken lines repaired."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").translate(_LIGATURES)
    text = _ZERO_WIDTH.sub("", _CONTROL.sub("", text))
    text = _HYPHENATED.sub("", text)
    text = _SOFT_HYPHEN.sub("", text)
    text = _join_cjk_lines(text)
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n", text)
    text = _LINE_EDGES.sub("\n", text)
    return text.strip()


def _join_cjk_lines(text: str) -> str:
    """Undo line breaks a parser put inside CJK text.

    In a mostly-CJK page every single line break joins (a space only between two
    Latin letters), since such parsers break lines after almost every glyph run,
    except around a table row (a label and two figures or more), which keeps its line;
    elsewhere only breaks between two CJK characters join. A blank line between
    CJK text (a table cell boundary) becomes one space.
    """
    if not CJK_CHAR.search(text):
        return text
    if is_cjk_heavy(text):
        text = _keep_row_breaks(text)
        text = _LATIN_SINGLE_BREAK.sub(" ", text)
        text = _SINGLE_BREAK.sub("", text)
    else:
        text = _CJK_SINGLE_BREAK.sub("", text)
    return _CJK_BLANK_LINE.sub(" ", text).replace(_ROW_BREAK, "\n")


def _keep_row_breaks(text: str) -> str:
    """Mark the line breaks before and after each table row (a label and two figures or more) to be kept, so
    a mostly-CJK page's table keeps one row a line ("负债合计 525,802,580.88 692,654,284.96\n所有者权益："), as
    PDFium prints it, instead of running into one long line. A line of figures alone ends the row whose label
    wrapped onto the lines before it ("所有者权益（或股东权\n益）合计\n1,132,603,716.40 1,103,214,999.16\n"); a
    break after a row whose figure the next line goes on with ("...2,941,412,770.30 1.2\n元") joins as before."""
    lines = text.split("\n")
    out = [lines[0]]
    for before, line in zip(lines, lines[1:], strict=False):
        row_ends = (is_table_row(before) or _ONLY_FIGURES.match(before)) and not _GOES_ON.match(line)
        out += [_ROW_BREAK if row_ends or is_table_row(line) else "\n", line]
    return "".join(out)


def is_table_row(line: str) -> bool:
    """Whether a line is a table row: words, then two figures or more, each after a space (the first may follow
    a Chinese label directly, "益）合计1,132,603,716.40 1,103,214,999.16", though not a sentence's end)."""
    figures = _ROW_FIGURES.search(line)
    return figures is not None and _LETTER.search(line, 0, figures.start()) is not None


LATIN_LETTER = re.compile(r"[A-Za-z]")
CHINESE_SHARE = 0.3  # share of Chinese characters among letters from which a text counts as Chinese


def is_chinese(text: str) -> bool:
    """Whether Chinese characters make up at least CHINESE_SHARE of the text's letters."""
    chinese = len(CJK_CHAR.findall(text))
    latin = len(LATIN_LETTER.findall(text))
    return chinese > 0 and chinese >= CHINESE_SHARE * (chinese + latin)


@functools.cache
def jieba_or_none():
    """jieba (Chinese word segmentation), imported once and quiet; None when it is not installed."""
    try:
        import jieba
    except ImportError:
        return None
    jieba.setLogLevel(logging.WARNING)
    return jieba
