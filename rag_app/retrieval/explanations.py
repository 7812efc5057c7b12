"""Pages that explain: for a question asking for a reason, a document's pages ranked by the sentences that give one.

"What drove JPMorgan's net interest income higher in Q2 2023?" shares its words with every page that prints net
interest income (the income statement, the segment tables, the ratios), and the page that answers says why: "Net
interest income was up 44%, driven by higher rates". For a question whose first sentence asks for a reason
(:meth:`Explanations.asks`), the retriever adds a ranking of its best documents' pages by how many of their sentences
give one (:meth:`Explanations.ranked`; ``RankingOptions.within_explanation_weight``). Which words ask and which give
a reason is data: ``prompts/pages/explanations.toml``, English and Chinese. The same test of the question keeps the
statement boost from lifting a statement for its rows (:class:`rag_app.retrieval.boosts.SectionSet`).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rag_app.errors import ConfigurationError
from rag_app.text.script import simplified

EXPLANATIONS_FILE = Path(__file__).resolve().parents[2] / "prompts" / "pages" / "explanations.toml"
# A question's first sentence: up to its first question mark or full stop (one followed by a space), Chinese ones too
_FIRST_SENTENCE = re.compile(r".*?(?:[?？。!！]|\.(?=\s|$)|$)", re.DOTALL)
# Where a page's sentences end: . ; ! ? before a space or a line's end, and their Chinese forms; a line's end alone
# does not end one (a PDF's text wraps a sentence's lines: "driven\nby")
_SENTENCE_END = re.compile(r"(?<=[.;!?])\s+|(?<=[。；！？])")
# Documents whose counts a process keeps (a document's: a few hundred integers)
DOCUMENTS_KEPT = 4096
_COUNTS: dict[tuple[Explanations, str], dict[int, int]] = {}


def first_sentence(text: str) -> str:
    """The first sentence of ``text``: up to its first question mark or full stop, Chinese ones included."""
    return _FIRST_SENTENCE.match(text.strip()).group(0)


@dataclass(frozen=True, eq=False)  # one object per file (load is cached): compared and hashed by identity
class Explanations:
    """How a question asks for a reason (``asked``) and how a sentence gives one (``phrases``)."""

    asked: re.Pattern
    phrases: re.Pattern

    @classmethod
    @functools.cache
    def load(cls, path: Path = EXPLANATIONS_FILE) -> Explanations:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            return cls(_compile(data["asked"]), _compile(data["phrases"]))
        except (OSError, KeyError, TypeError, ValueError, re.error) as exc:
            raise ConfigurationError(f"cannot read what asks for and gives a reason ({path}): {exc}") from exc

    def asks(self, question: str) -> bool:
        """Whether the question's first sentence asks for a reason ("Why did ...", "What drove ...", "...的原因")."""
        return bool(self.asked.search(first_sentence(question)))

    def explaining(self, text: str) -> int:
        """How many sentences of ``text`` give a reason ("..., primarily due to higher rates.", 主要由於 too)."""
        return sum(1 for sentence in _SENTENCE_END.split(simplified(text)) if self.phrases.search(sentence))

    def counts(self, sha256: str, pages: Callable[[], Mapping[int, str]]) -> dict[int, int]:
        """Page -> its sentences giving a reason, for the pages of one file content that have any (``pages()``: its
        pages' whole texts, read only the first time: kept per content, whose text never changes)."""
        key = (self, sha256)
        if (found := _COUNTS.get(key)) is None:
            found = {page: n for page, text in pages().items() if (n := self.explaining(text))}
            if len(_COUNTS) >= DOCUMENTS_KEPT:
                _COUNTS.pop(next(iter(_COUNTS)), None)
            _COUNTS[key] = found
        return found

    def ranked(self, sha256: str, pages: Callable[[], Mapping[int, str]]) -> list[int]:
        """The pages of one file content that give a reason, those giving most first (ties: the earlier page)."""
        counted = self.counts(sha256, pages)
        return sorted(counted, key=lambda page: (-counted[page], page))


def _compile(patterns: list[str]) -> re.Pattern:
    return re.compile("|".join(patterns), re.IGNORECASE)
