"""Citations are checked, not trusted: numbers outside the sources are removed, quotes verified."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag_app.answering.events import Source

# [1]  [1, 2]  [1-3]  【1】 (full-width brackets, common in Chinese output)
CITATION = re.compile(r"[ \t]?(?:\[(\s*\d+(?:\s*(?:[,，、;]|-|–)\s*\d+)*\s*)\]|【(\s*\d+(?:\s*[,，、]\s*\d+)*\s*)】)")
QUOTE = re.compile(r"“([^”]{8,})”|\"([^\"\n]{8,})\"|「([^」]{4,})」")


@dataclass
class CitationCheck:
    text: str
    cited: set[int] = field(default_factory=set)
    invalid: list[str] = field(default_factory=list)
    unverified_quotes: list[str] = field(default_factory=list)


def _numbers(group: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*[,，、;]\s*", group.strip()):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2 and all(b.isdigit() for b in bounds) and int(bounds[1]) - int(bounds[0]) < 50:
            numbers.extend(range(int(bounds[0]), int(bounds[1]) + 1))
        elif part.isdigit():
            numbers.append(int(part))
    return numbers


def check_citations(text: str, sources: list[Source]) -> CitationCheck:
    """Keep valid ``[n]`` (normalised), drop and report the rest, then verify quoted text."""
    valid = {s.n for s in sources}
    check = CitationCheck(text="")

    def rewrite(match: re.Match) -> str:
        numbers = _numbers(match.group(1) or match.group(2))
        kept = [n for n in numbers if n in valid]
        check.invalid.extend(f"[{n}]" for n in numbers if n not in valid)
        check.cited.update(kept)
        prefix = " " if match.group(0)[:1] in " \t" else ""
        return prefix + "".join(f"[{n}]" for n in dict.fromkeys(kept)) if kept else ""

    check.text = CITATION.sub(rewrite, text).strip()
    check.unverified_quotes = _unverified_quotes(check.text, sources, check.cited)
    return check


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _unverified_quotes(text: str, sources: list[Source], cited: set[int]) -> list[str]:
    """Quotes that appear in none of the cited sources (or of any source, when none is cited)."""
    pool = [s for s in sources if s.n in cited] or sources
    haystack = [_normal(s.text) for s in pool]
    unverified = []
    for match in QUOTE.finditer(text):
        quote = next(g for g in match.groups() if g)
        needle = _normal(quote).strip(" .,…。，")
        if needle and not any(needle in h for h in haystack):
            unverified.append(quote)
    return unverified


def apply_citations(check: CitationCheck, sources: list[Source]) -> None:
    for source in sources:
        source.cited = source.n in check.cited
