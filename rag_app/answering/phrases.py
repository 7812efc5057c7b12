"""Runs of a question's own wording that a passage repeats: "国内餐饮端速冻米面市场的潜在空间", "total current
liabilities". Two sentences can hold the same words of a question; the one that holds them in the question's
order, side by side, usually says what was asked. Runs are measured in words: a Latin word counts one, a
Chinese character half (two make a word), and stop words and words of asking ("the details shown in") sit
inside a run without adding to it.
"""

from __future__ import annotations

import re

from rag_app.answering.passages import CJK
from rag_app.text.script import simplified
from rag_app.text.terms import ASKING_WORDS, STOPWORDS

TOKEN = re.compile(r"[\u3400-\u9fff]|[a-z0-9][a-z0-9&'.%-]*[a-z0-9%]|[a-z0-9]")
CLAUSE_BREAK = re.compile(r"[，。？！；：、,?!;:()（）《》“”\"]+")


def normalised(text: str) -> str:
    """Lower case, in simplified characters, one space between Latin words, none beside a Chinese character: how runs
    are compared."""
    tokens = TOKEN.findall(simplified(text).lower())
    out = []
    for prev, token in zip([None, *tokens], tokens, strict=False):
        spaced = prev is not None and not (CJK.match(prev) or CJK.match(token))
        out.append(" " + token if spaced else token)
    return "".join(out)


def _weight(token: str) -> float:
    if CJK.match(token):
        return 0.5
    return 0.0 if token in STOPWORDS or token in ASKING_WORDS or token[:-1] in ASKING_WORDS else 1.0


def question_runs(question: str, least: float, most: float) -> list[tuple[float, str]]:
    """Every run of the question's wording, within a clause, of at least ``least`` words (counting to ``most``),
    normalised, longest first."""
    runs: dict[str, float] = {}
    for clause in CLAUSE_BREAK.split(question.lower()):
        tokens = TOKEN.findall(clause)
        weights = [_weight(t) for t in tokens]
        for i in range(len(tokens)):
            weight = 0.0
            for j in range(i, len(tokens)):
                weight += weights[j]
                if weight > most + 1:
                    break
                if weight >= least:
                    runs[normalised(" ".join(tokens[i : j + 1]))] = weight
    return sorted(((w, r) for r, w in runs.items()), reverse=True)


def longest_run(runs: list[tuple[float, str]], text: str) -> float:
    """The weight of the longest of ``runs`` (as question_runs gives them) that ``text`` holds; 0 for none."""
    held = normalised(text)
    return next((weight for weight, run in runs if run in held), 0.0)
