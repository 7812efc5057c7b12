"""Page boosts: rules that lift pages the chunk rankings place badly, given to the retriever as a list.

A boost is a callable ``boost(question, ranked_pages, pages_opening) -> {(sha256, page): score}``:
``ranked_pages`` is every candidate page best first, as the fusion ranks them, and
``pages_opening(sha256, chars)`` each page of a document's first characters (``chars`` 0: its whole text).
The retriever adds the scores to those pages' (a page without a candidate chunk enters, cited by its first
chunk).

:class:`SectionBoost` is the one shipped: a question that names a section which a page opens with
("... rely on the cash flow statement") gets that page of its best routed documents. Which sections,
and how they are written, is data: ``prompts/sections/<name>.toml`` (the financial statements, in
English and Chinese, are one such set; the tables of results by segment another; the parts of a report a
heading starts anywhere on a page, such as its legal proceedings, a third). A question that names no
section is ranked exactly as without.

:class:`Formalities` is the other way round: it tells the pages that are a report's formalities (its tables of
contents, its officers' certifications, its auditors' consents; ``prompts/pages/formalities.toml``), which the
retriever puts below every other page it ranks, unless the question asks for their kind.
"""

from __future__ import annotations

import functools
import itertools
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rag_app.errors import ConfigurationError
from rag_app.retrieval.explanations import Explanations
from rag_app.text.script import simplified

SECTIONS_DIR = Path(__file__).resolve().parents[2] / "prompts" / "sections"
FORMALITIES_FILE = Path(__file__).resolve().parents[2] / "prompts" / "pages" / "formalities.toml"
_SPACE = re.compile(r"\s+")

Page = tuple[str, int]  # (sha256, page)
PagesOpening = Callable[[str, int], Mapping[int, str]]  # (sha256, chars) -> page -> its opening


class PageBoost(Protocol):
    def __call__(self, question: str, ranked_pages: Sequence[Page], pages_opening: PagesOpening) -> dict[Page, float]:
        """Scores to add to pages for this question (empty: the rule does not apply)."""

    def warm(self, sha256: str, pages_opening: PagesOpening) -> None:
        """Read now what a question reaching this content would read of its pages, and keep it."""


@dataclass(frozen=True, eq=False)  # one object per set (load is cached): compared and hashed by identity
class SectionSet:
    """Sections a question can name and a page can open with, read from ``prompts/sections/<name>.toml``."""

    name: str
    titles: Mapping[str, re.Pattern]  # section -> how a page's opening (or a question) writes its title
    asked: Mapping[str, re.Pattern]  # section -> how a question names it (titles and further ways)
    opening_chars: int
    items: Mapping[str, re.Pattern] = field(default_factory=dict)  # section -> the rows it carries ("capex")
    # a title anywhere on a page counts (a heading halfway down it); a page where ``index`` matches
    # ``index_count`` times or more is a table of contents ("Item 1A.", "Item 2." ...)
    anywhere: bool = False
    index: re.Pattern | None = None
    index_count: int = 0
    documents: int | None = None  # how many of the best routed documents it boosts (None: the boost's own)
    # the titles without their spaces, for a PDF whose spacing splits words ("Consolidated Balance Shee t")
    squeezed: Mapping[str, re.Pattern] = field(default_factory=dict)
    # a question whose first sentence asks for a reason: answered in prose, so its rows name no section (``items_in``;
    # which questions do: prompts/pages/explanations.toml)
    reasons: Explanations | None = None

    @classmethod
    @functools.cache
    def load(cls, name: str, directory: Path = SECTIONS_DIR) -> SectionSet:
        path = directory / f"{name}.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            sections = data["sections"]
            titles = {s: _compile(v["titles"]) for s, v in sections.items()}
            asked = {s: _compile(v["titles"] + v.get("asked", [])) for s, v in sections.items()}
            items = {s: _compile(v["items"]) for s, v in sections.items() if v.get("items")}
            index = _compile([data["index"]]) if data.get("index") else None
            anywhere, count = bool(data.get("anywhere", False)), int(data.get("index_count", 0))
            documents = int(data["documents"]) if "documents" in data else None
            squeezed = {s: _compile([_squeeze(t) for t in v["titles"]]) for s, v in sections.items()}
            reasons = Explanations.load() if data.get("reasons") else None
            return cls(
                name, titles, asked, int(data["opening_chars"]), items, anywhere, index, count, documents, squeezed,
                reasons,
            )  # fmt: skip
        except (OSError, KeyError, TypeError, ValueError, re.error) as exc:
            known = ", ".join(sorted(p.stem for p in directory.glob("*.toml")))
            raise ConfigurationError(f"cannot read the section set {name!r} ({path}): {exc}; known: {known}") from exc

    def named_in(self, question: str) -> frozenset[str]:
        """The sections a question names."""
        return frozenset(s for s, pattern in self.asked.items() if pattern.search(question))

    def items_in(self, question: str) -> frozenset[str]:
        """The sections whose rows a question asks for ("accounts payable": the balance sheet); none where its first
        sentence asks for a reason (``reasons``: "Why did gross margin fall?" is answered by the discussion of the
        change, not by the statement that prints the margin)."""
        if self.reasons is not None and self.reasons.asks(question):
            return frozenset()
        return frozenset(s for s, pattern in self.items.items() if pattern.search(question))

    def opening_section(self, opening: str) -> str | None:
        """The section a page opens with, from its first characters; None for any other page (a page whose
        opening names several is a table of contents or an index)."""
        return _opening_section(self, opening)

    def page_sections(self, sha256: str, pages: Callable[[], Mapping[int, str]]) -> dict[int, frozenset[str]]:
        """Page -> the sections whose titles a content's page holds anywhere (``pages()``: its pages' texts, read
        only the first time: kept per content, whose text never changes), for a set with ``anywhere``; tables of
        contents (``index``) left out."""
        key = (self, sha256)
        if key not in _PAGE_SECTIONS:
            texts = pages()
            found = {page: self._titles_in(text) for page, text in texts.items()}
            if len(_PAGE_SECTIONS) >= PAGE_SECTIONS_KEPT:
                _PAGE_SECTIONS.pop(next(iter(_PAGE_SECTIONS)), None)
            _PAGE_SECTIONS[key] = {p: f for p, f in found.items() if f and not self._is_index(texts[p])}
        return _PAGE_SECTIONS[key]

    def _is_index(self, text: str) -> bool:
        return self.index is not None and len(self.index.findall(text)) >= self.index_count

    def _titles_in(self, text: str) -> frozenset[str]:
        text = _SPACE.sub(" ", simplified(text))  # a traditional report's 合併資產負債表 too
        return frozenset(s for s, pattern in self.titles.items() if pattern.search(text))


# (section set, content) -> page -> the sections its headings start (SectionSet.page_sections), oldest dropped first
_PAGE_SECTIONS: dict[tuple[SectionSet, str], dict[int, frozenset[str]]] = {}
PAGE_SECTIONS_KEPT = 4096


@functools.lru_cache(maxsize=65536)
def _opening_section(sections: SectionSet, opening: str) -> str | None:
    text = _SPACE.sub(" ", simplified(opening[: sections.opening_chars]))
    found = [s for s, pattern in sections.titles.items() if pattern.search(text)]
    if not found:  # "Consolidated Balance Shee t": the PDF's spacing split the title's words
        text = _SPACE.sub("", text)
        found = [s for s, pattern in sections.squeezed.items() if pattern.search(text)]
    return found[0] if len(found) == 1 else None


# a sentence ends at a question mark, an exclamation mark or a full stop followed by a space or the end (not "3.5")


def _compile(patterns: list[str]) -> re.Pattern:
    return re.compile("|".join(patterns), re.IGNORECASE)


def _squeeze(pattern: str) -> str:
    """A title pattern for text without spaces: "balance\\s+sheets?" -> "balancesheets?"."""
    return re.sub(r"\\s[+*]?|\\b| ", "", pattern)


@dataclass(frozen=True, eq=False)
class SectionBoost:
    """Pages opening with a section the question names, among the pages of its ``documents`` best-ranked
    documents, ranked as the fusion ranked them (the others after, by document and page), each given
    ``weight / (rrf_k + rank)``. A question naming no section but asking for one of a section's rows (its
    ``items``) gets that section's pages at ``item_weight`` among its ``item_documents`` best documents."""

    sections: SectionSet
    weight: float = 1.0
    documents: int = 2
    rrf_k: int = 10
    item_weight: float = 0.0
    item_documents: int = 1

    def __call__(self, question: str, ranked_pages: Sequence[Page], pages_opening: PagesOpening) -> dict[Page, float]:
        wanted = self.sections.named_in(question) if self.weight > 0 else frozenset()
        weight, documents = self.weight, self.sections.documents or self.documents
        if not wanted and self.item_weight > 0:
            wanted, weight, documents = self.sections.items_in(question), self.item_weight, self.item_documents
        if not wanted or not ranked_pages:
            return {}
        shas = list(dict.fromkeys(sha for sha, _ in ranked_pages))[:documents]
        position = {page: i for i, page in enumerate(ranked_pages)}
        found = [(sha, page) for sha in shas for page in self._pages_with(sha, wanted, pages_opening)]
        found.sort(key=lambda p: (position.get(p, len(position)), shas.index(p[0]), p[1]))
        return {page: weight / (self.rrf_k + rank) for rank, page in enumerate(found, 1)}

    def warm(self, sha256: str, pages_opening: PagesOpening) -> None:
        """Every section's pages of one content found and kept (:meth:`_pages_with` for all of them)."""
        self._pages_with(sha256, frozenset(self.sections.titles), pages_opening)

    def _pages_with(self, sha: str, wanted: frozenset[str], pages_opening: PagesOpening) -> list[int]:
        """The pages of one content that start a section in ``wanted``."""
        sections = self.sections
        if sections.anywhere:
            return [page for page, found in sections.page_sections(sha, lambda: pages_opening(sha, 0)).items()
                    if found & wanted]  # fmt: skip
        openings = pages_opening(sha, sections.opening_chars)
        return [page for page, opening in openings.items() if sections.opening_section(opening) in wanted]


def section_boosts(names: str, weight: float, item_weight: float = 0.0) -> list[PageBoost]:
    """The section boosts of the comma-separated set ``names`` (``RAG_RETRIEVAL_SECTION_SETS``) at ``weight``
    (``RAG_RETRIEVAL_SECTION_WEIGHT``; 0: none), their rows at ``item_weight``
    (``RAG_RETRIEVAL_SECTION_ITEM_WEIGHT``)."""
    if weight <= 0 and item_weight <= 0:
        return []
    return [
        SectionBoost(SectionSet.load(name.strip()), weight, item_weight=item_weight)
        for name in names.split(",") if name.strip()
    ]  # fmt: skip


@dataclass(frozen=True)
class Formality:
    """One kind of formal page: what its opening (and its body) carry, or its page numbers (``contents``), and how
    a question asks for it."""

    name: str
    asked: re.Pattern
    opening: re.Pattern | None = None
    body: re.Pattern | None = None
    contents: bool = False
    # a list of entries: ``listing_lines`` lines or more (and ``listing_share`` of the page's lines) that ``listing``
    # matches at their start ("10.17 Form of Retention Restricted Stock Unit Award Agreement"), on a page where
    # ``refers`` is found ``refers_count`` times or more ("incorporated by reference", "Form 8-K")
    listing: re.Pattern | None = None
    listing_lines: int = 0
    listing_share: float = 0.0
    refers: re.Pattern | None = None
    refers_count: int = 0


_NUMERIC = re.compile(r"^[($]?[\d.,]+%?\)?$")  # a figure or a number, alone: "25", "(1,204)", "3.5%"
_PAGE_NUMBER = re.compile(r"\d{1,3}")
_WORD = re.compile(r"[A-Za-z\u4e00-\u9fff]")
_DATE_PART = re.compile(r"(?:19|20)\d\d[,.;]?|[0-3]?\d,")  # a year, a day before its comma ("October 31, 2021")
_LEADER = re.compile(r"(?:\.{4,}|…{2,}|·{4,})\s*(\d{1,3})\s*$", re.MULTILINE)  # "重要提示 ........ 5"


def _page_number(line: str) -> int | None:
    """The page number a line of a table of contents ends with ("Item 1A. Risk Factors 25": 25), or None: the last
    word is a number of 1 to 3 digits after a word (not "$") or a date ("... ended October 31, 2021 3"), and the
    line holds no other figure but one ("Item 1A") besides its dates."""
    words = [w for w in line.replace("…", " ").split() if not _DATE_PART.fullmatch(w)]
    if len(words) < 2 or not _PAGE_NUMBER.fullmatch(words[-1]):
        return None
    if not _WORD.search(words[-2]) or sum(bool(_NUMERIC.match(w)) for w in words[:-1]) > 1:
        return None
    return int(words[-1])


@dataclass(frozen=True, eq=False)  # one object per file (load is cached): compared and hashed by identity
class Formalities:
    """The kinds of formal pages, read from ``prompts/pages/formalities.toml``."""

    kinds: tuple[Formality, ...]
    opening_chars: int
    body_chars: int
    contents_lines: int
    contents_share: float
    contents_order: float
    leader_lines: int

    @classmethod
    @functools.cache
    def load(cls, path: Path = FORMALITIES_FILE) -> Formalities:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            flags = re.IGNORECASE | re.MULTILINE
            kinds = tuple(
                Formality(
                    name,
                    re.compile("|".join(kind["asked"]), flags),
                    re.compile("|".join(kind["opening"]), flags) if kind.get("opening") else None,
                    re.compile("|".join(kind["body"]), flags) if kind.get("body") else None,
                    bool(kind.get("contents", False)),
                    re.compile(kind["listing"], flags) if kind.get("listing") else None,
                    int(kind.get("listing_lines", 0)),
                    float(kind.get("listing_share", 0.0)),
                    re.compile("|".join(kind["refers"]), flags) if kind.get("refers") else None,
                    int(kind.get("refers_count", 0)),
                )
                for name, kind in data["kinds"].items()
            )
            return cls(
                kinds, int(data["opening_chars"]), int(data["body_chars"]), int(data["contents_lines"]),
                float(data["contents_share"]), float(data["contents_order"]), int(data["leader_lines"]),
            )  # fmt: skip
        except (OSError, KeyError, TypeError, ValueError, re.error) as exc:
            raise ConfigurationError(f"cannot read the formal pages' kinds ({path}): {exc}") from exc

    def kind_of(self, text: str) -> str | None:
        """The kind of formal page ``text`` (a whole page) is, or None."""
        text = simplified(text)  # a traditional report's 目錄 too
        opening, body = text[: self.opening_chars], text[: self.body_chars]
        for kind in self.kinds:
            if kind.contents:
                if self._is_contents(text):
                    return kind.name
            elif kind.opening and kind.opening.search(opening) and (kind.body is None or kind.body.search(body)):
                return kind.name
            elif kind.listing is not None and self._is_listing(kind, text):
                return kind.name
        return None

    def asked_in(self, question: str) -> frozenset[str]:
        """The kinds a question asks for ("who certified the 10-Q?")."""
        return frozenset(kind.name for kind in self.kinds if kind.asked.search(question))

    def page_kind(self, page: Page, text: Callable[[], str]) -> str | None:
        """The kind of formal page ``page`` is (``text()``: its whole text, read only the first time: kept per
        content and page, whose text never changes)."""
        key = (self, page)
        if key not in _FORMAL_PAGES:
            if len(_FORMAL_PAGES) >= FORMAL_PAGES_KEPT:
                _FORMAL_PAGES.pop(next(iter(_FORMAL_PAGES)), None)
            _FORMAL_PAGES[key] = self.kind_of(text())
        return _FORMAL_PAGES[key]

    def last(
        self, question: str, pages: Sequence[Page], text: Callable[[Page], str], keep: int | None = None
    ) -> list[Page]:
        """``pages`` (best first) with the formal ones after the others, each part in its order; a kind the question
        asks for stays in place. ``text(page)``: a page's whole text. Once ``keep`` pages that stay are found, the
        pages after them are not read, and keep their order after them (the retriever cuts there)."""
        asked = self.asked_in(question)
        stay: list[Page] = []
        formal: list[Page] = []
        for i, page in enumerate(pages):
            if keep is not None and len(stay) >= keep:
                return stay + list(pages[i:]) + formal
            kind = self.page_kind(page, lambda page=page: text(page))
            (formal if kind and kind not in asked else stay).append(page)
        return stay + formal

    def _is_contents(self, text: str) -> bool:
        lines = [line for line in text.split("\n") if line.strip()]
        led = [int(m) for m in _LEADER.findall(text)]
        if len(led) >= max(self.leader_lines, self.contents_share * len(lines)) and self._rising(led):
            return True
        numbers = [n for n in map(_page_number, lines) if n is not None]
        return len(numbers) >= max(self.contents_lines, self.contents_share * len(lines)) and self._rising(numbers)

    @staticmethod
    def _is_listing(kind: Formality, text: str) -> bool:
        """A page that lists entries (an exhibit index): enough of its lines open with one, and it refers to filings."""
        lines = [line for line in text.split("\n") if line.strip()]
        listed = sum(1 for line in lines if kind.listing.match(line))
        if listed < max(kind.listing_lines, kind.listing_share * len(lines)):
            return False
        return kind.refers is None or len(kind.refers.findall(text)) >= kind.refers_count

    def _rising(self, numbers: list[int]) -> bool:
        """Page numbers go up (a table of contents), unlike a table's figures."""
        rising = sum(b >= a for a, b in itertools.pairwise(numbers))
        return rising >= self.contents_order * (len(numbers) - 1)


# (formalities, (content, page)) -> its kind of formal page or None (Formalities.page_kind), oldest dropped first
_FORMAL_PAGES: dict[tuple[Formalities, Page], str | None] = {}
FORMAL_PAGES_KEPT = 65536
