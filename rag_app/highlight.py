"""Which part of a retrieved chunk matched the question: spans to highlight in the sources panel."""

from __future__ import annotations

import re

from rag_app.textclean import CJK_CHAR

STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have how in is it its of on or that the this to "
    "was were what when where which who why will with about into than then there these those was".split()
)
WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+|\d[\d,.%]*")
CJK_RUN = re.compile(f"{CJK_CHAR.pattern}+")


def highlight_terms(question: str) -> list[str]:
    """Words and numbers of the question worth finding (and CJK bigrams, which carry meaning in Chinese)."""
    terms = [w.lower().rstrip(".,") for w in WORD.findall(question)]
    terms = [t for t in terms if t not in STOPWORDS and (len(t) > 2 or t[0].isdigit())]
    for run in CJK_RUN.findall(question):
        terms += [run[i : i + 2] for i in range(len(run) - 1)] or [run]
    return sorted(set(terms), key=len, reverse=True)


def matching_spans(question: str, text: str) -> list[tuple[int, int]]:
    """Merged (start, end) character spans of ``text`` where the question's terms occur."""
    lowered = text.lower()
    spans = []
    for term in highlight_terms(question):
        start = lowered.find(term)
        while start >= 0:
            spans.append((start, start + len(term)))
            start = lowered.find(term, start + len(term))
    return _merge(spans)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
