"""Which part of a retrieved chunk matched the question: spans to highlight in the sources panel.

Whole words only: "End" marks "end" but not "Ended" or "endorse"; numbers whole ("2023", "41.5").
Chinese has no spaces, so both the question and the text are segmented into words with jieba
(the lexical index's segmenter) and a word is marked where the text's own segmentation has it; both are read in
simplified characters (:mod:`rag_app.text.script`, which keeps every character's place), so 營業收入 in a question
marks 营业收入 on the page.
"""

from __future__ import annotations

import re

from rag_app.text.clean import CJK_CHAR, jieba_or_none
from rag_app.text.script import simplified
from rag_app.text.terms import CJK_STOPWORDS, STOPWORDS

WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+|\d[\d,.%]*")
CJK_RUN = re.compile(f"{CJK_CHAR.pattern}+")


def _tokenize(run: str) -> list[tuple[str, int, int]]:
    """(word, start, end) of a CJK run: jieba's words, or character bigrams without jieba."""
    jieba = jieba_or_none()
    if jieba:
        return list(jieba.tokenize(run))
    return [(run[i : i + 2], i, i + 2) for i in range(len(run) - 1)] or [(run, 0, len(run))]


def highlight_terms(question: str) -> tuple[set[str], set[str]]:
    """(Latin words and numbers, Chinese words) of the question worth finding."""
    latin = {w.lower().rstrip(".,") for w in WORD.findall(question)}
    latin = {t for t in latin if t not in STOPWORDS and (len(t) > 2 or t[0].isdigit())}
    cjk = {w for run in CJK_RUN.findall(simplified(question)) for w, _, _ in _tokenize(run)}
    return latin, {w for w in cjk if len(w) >= 2 and w not in CJK_STOPWORDS}


def matching_spans(question: str, text: str) -> list[tuple[int, int]]:
    """Merged (start, end) character spans of ``text`` where the question's words occur as whole words."""
    latin, cjk = highlight_terms(question)
    spans = []
    if latin:
        alternatives = "|".join(re.escape(t) for t in sorted(latin, key=len, reverse=True))
        pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.I)
        spans += [m.span() for m in pattern.finditer(text)]
    if cjk:
        for run in CJK_RUN.finditer(simplified(text)):  # the same places as in the text as written
            spans += [(run.start() + s, run.start() + e) for w, s, e in _tokenize(run.group()) if w in cjk]
    return _merge(spans)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
