"""When the collection cannot answer: the question names a subject, or a period, that no document is about.

"What was Tesla's FY2022 revenue?" asked of a library without Tesla's filings retrieves another company's
revenue table, and quoting it would answer as if it were Tesla's. A subject counts as absent when it is
in no document's title (file name and cover page), not in the passages retrieved for the question, and in
the texts of few documents: a word many documents use ("operating", "EBITDA", 营业收入) belongs to their
domain, not to one company. A year counts as absent when no document the question names (or, naming none,
no document at all) mentions it. The answer then says "not found" and names the nearest documents, whatever
the strategy: another company's figures are never cited as if they answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag_app.retrieval.documents import DOMAIN_WORD_SHARE, DocumentRoute
from rag_app.text.lexicon import is_domain_word
from rag_app.text.terms import terms_of

NOT_FOUND = {
    "en": "Not found: no document here is about {what}. The nearest documents are listed under Sources: {nearest}.",
    "zh": "未找到：文档库中没有关于{what}的文档。最接近的文档列在“来源”中：{nearest}。",
}


@dataclass(frozen=True)
class Absence:
    """What the question names that the collection does not hold."""

    subjects: tuple[str, ...] = ()
    periods: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.subjects or self.periods)

    def describe(self, language: str) -> str:
        """The three longest subjects (the most specific: "千味央厨" before "股价") and the years."""
        named = sorted(self.subjects, key=lambda s: (-len(s), self.subjects.index(s)))[:3]
        quoted = [f"“{s}”" for s in named] + list(self.periods)
        return ("、" if language == "zh" else ", ").join(quoted)


def absence(route: DocumentRoute, passages: Sequence[str], across: bool = False) -> Absence:
    """The subjects and years of the question (as routed) that no document here is about.

    A question whose subjects name some document (its title) asks about that document: its other unknown
    words are attributes ("USD", "PP&E"), unless they make up a name of their own that no title carries and
    the passages do not hold whole ("Which had more debt: Costco or Sleep Country Canada?": every company
    compared must be here; a passage that says "Canada" does not hold it). Otherwise an owner it names
    ("Tesla's revenue") must be a title, and any other subject must at least be in the passages retrieved,
    unless many documents use it.

    ``across``: every passage retrieved is in the other language than the question's (an English question of Chinese
    reports). A report names a company in the question's language in its text, not its title ("Zhejiang Hisoar
    Pharmaceutical Co., Ltd." on its fifth page), and its common words not at all, so what many documents use tells
    nothing there: a subject is absent when no document's title nor text holds it ("What was Tesla's revenue?" of
    Chinese reports; 千味央厨 of English filings), and where the question names some document ("Changchai", by the
    pinyin of its file name), only a name of its own that none holds ("Bright Smart Securities")."""
    if not route.documents:
        return Absence()
    retrieved = set(terms_of(" ".join(passages)))
    common = max(2.0, DOMAIN_WORD_SHARE * route.documents)

    # 净利润 asked of English filings is their "net income", not a name; nor are its parts (利润, 净利)
    domain = {t for t in route.untitled if is_domain_word(t)}

    def unknown(term: str) -> bool:
        return (
            term in route.untitled and term not in retrieved and len(route.untitled[term]) < common
            and not any(term in word for word in domain)
        )  # fmt: skip

    def held_nowhere(term: str) -> bool:
        return (
            term in route.untitled and not route.untitled[term] and term not in retrieved
            and not any(term in word for word in domain)
        )  # fmt: skip

    titled = set().union(*route.titles.values()) if route.by_subject else set()
    if across and route.by_subject:
        subjects = tuple(
            t for name in route.names if not name & titled and not name <= retrieved for t in sorted(name)
            if held_nowhere(t)
        )  # fmt: skip
    elif across:
        subjects = tuple(t for t in route.untitled if held_nowhere(t))
    elif route.by_subject:
        subjects = tuple(
            t for name in route.names if not name & titled and not name <= retrieved for t in sorted(name) if unknown(t)
        )  # fmt: skip
    else:
        subjects = tuple(t for t in route.untitled if t in route.owners or unknown(t))
    scope = set(route.by_subject) or {sha for sha, score in route.named.items() if score > 0} or set(route.titles)
    periods = tuple(y for y, docs in route.periods.items() if not docs & scope)
    return Absence(_longest(subjects), periods)


def _longest(terms: tuple[str, ...]) -> tuple[str, ...]:
    """Without the terms that are part of a longer one found too ("电子" beside "电子信箱")."""
    return tuple(t for t in terms if not any(t != o and t in o for o in terms))


def not_found_text(language: str, missing: Absence, nearest: Sequence[str]) -> str:
    """The plain "not found" answer: what is missing, and the nearest documents (not cited)."""
    listing = "; ".join(dict.fromkeys(nearest)) or "—"
    return NOT_FOUND[language].format(what=missing.describe(language), nearest=listing)
