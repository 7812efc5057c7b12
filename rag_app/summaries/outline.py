"""A document's outline without a model: short, title-like lines of its pages, with page numbers.

What extractive mode offers instead of a summary. Running headers ("Table of Contents" on every
page) and table-of-contents entries ("Note 2. Revenue 71") are left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from rag_app.text.clean import CJK_CHAR

MAX_PER_PAGE = 3
MAX_ENTRIES = 200
MAX_WORDS, MAX_CHARS, MAX_CJK_CHARS = 10, 80, 24
REPEATED_SHARE = 0.2  # a line on more than this share of the pages is a running header
NUMBERED = re.compile(r"^(item|part|note|section|chapter|article|appendix|schedule)\s+[\dIVXA-Z]+\b", re.IGNORECASE)
CJK_HEADING = re.compile(
    r"(第[一二三四五六七八九十百\d]+[章节部分篇条][\s　]*[^\s，。；：、,.;:]{0,20}"
    r"|^[一二三四五六七八九十]+、[^，。；：]{2,20}?(?=[，。；：\s]|$))"
)
TRAILING_PAGE_NUMBER = re.compile(r"(\s\.{2,}\s*|\s)\d{1,3}$")
SENTENCE_END = re.compile(r"[,;:，。；：、]$|(?<![A-Z0-9])\.$")


@dataclass(frozen=True)
class OutlineEntry:
    file: str
    page: int
    heading: str

    def to_dict(self) -> dict:
        return asdict(self)


def is_heading(line: str) -> bool:
    """A short line that reads like a title: capitalised words, no sentence ending, not a table row."""
    line = line.strip()
    if CJK_CHAR.search(line):
        return 2 <= len(line) <= MAX_CJK_CHARS and not re.search(r"[，。；：！？]", line) and not line[-1].isdigit()
    words = line.split()
    if not 1 <= len(words) <= MAX_WORDS or len(line) > MAX_CHARS or not line[0].isupper() and not line[0].isdigit():
        return False
    if TRAILING_PAGE_NUMBER.search(line) or sum(c.isalpha() for c in line) < 0.6 * len(line.replace(" ", "")):
        return False
    if NUMBERED.match(line):
        return True
    numbers = sum(1 for w in words if any(c.isdigit() for c in w))
    if SENTENCE_END.search(line) or len(words) < 2 or numbers > 1 or ("," in line and len(words) <= 3):
        return False  # single words and number rows are table headers, not titles
    capitalised = sum(1 for w in words if w[0].isupper() or not w[0].isalpha() or len(w) <= 3)
    return capitalised == len(words)


def page_headings(text: str) -> list[str]:
    """Candidate headings of one page, in order (Chinese pages: numbered section titles in the text)."""
    found = [line.strip() for line in text.splitlines() if is_heading(line)]
    if CJK_CHAR.search(text):
        found += [m.group(0).strip() for m in CJK_HEADING.finditer(text) if m.group(0).strip() not in found]
    return list(dict.fromkeys(found))


def outline(pages: Sequence[tuple[str, int, str]]) -> list[OutlineEntry]:
    """Headings by page of (file, page, text) in order; lines repeated on many pages are dropped."""
    per_page = [(file, page, page_headings(text)) for file, page, text in pages]
    counts = Counter(h for _, _, headings in per_page for h in headings)
    limit = max(2, REPEATED_SHARE * len(pages))
    entries = []
    for file, page, headings in per_page:
        kept = [h for h in headings if counts[h] <= limit][:MAX_PER_PAGE]
        entries += [OutlineEntry(file, page, h) for h in kept]
    return entries[:MAX_ENTRIES]


def outline_markdown(entries: Sequence[OutlineEntry], several_files: bool) -> str:
    lines = []
    for entry in entries:
        where = f"{entry.file}, p. {entry.page}" if several_files else f"p. {entry.page}"
        lines.append(f"- {where}: {entry.heading}")
    return "\n".join(lines)
