"""What extractive mode can honestly offer instead of a summary: each page's heading and first sentence.

No model writes anything here: the guide quotes the pages. What is not the page's own text is left
out first: running headers and footers (text that starts or ends many pages of a file, page numbers
aside), and lines of form furniture named in ``prompts/page_guide.toml`` (check boxes, signature
blocks, a filing's cover). Table-of-contents entries and table rows are neither headings nor sentences.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from rag_app.prompts import PROMPTS_DIR
from rag_app.text.clean import CJK_CHAR, is_cjk_heavy

MAX_ENTRIES = 500
MAX_WORDS, MAX_CHARS, MAX_CJK_CHARS = 10, 80, 24  # of a heading
SENTENCE_CHARS, CJK_SENTENCE_CHARS = 240, 120  # a longer first sentence is cut there, with "…"
MIN_WORDS, MIN_CJK_CHARS = 6, 12  # of a sentence
EDGE_CHARS = 80  # where running headers and footers are looked for: each page's start and end
EDGE_LINES = 3
REPEAT_CHARS = 16  # a repeated run this long at the edges of many pages is a header or footer
REPEATED_SHARE = 0.3  # "many": this share of a file's pages, and at least 3
NUMBERED = re.compile(r"^(item|part|note|section|chapter|article|appendix|schedule)\s+[\dIVXA-Z]+\b", re.IGNORECASE)
CJK_HEADING = re.compile(
    r"(第[一二三四五六七八九十百\d]+[章节部分篇条][\s　]*[^\s，。；：、,.;:]{0,20}"
    r"|^[一二三四五六七八九十]+、[^，。；：]{2,20}?(?=[，。；：\s]|$))"
)
TRAILING_PAGE_NUMBER = re.compile(r"(\s\.{2,}\s*|\s)\d{1,3}$")
SENTENCE_END = re.compile(r"[,;:，。；：、]$|(?<![A-Z0-9])\.$")
DANGLING = {"and", "or", "of", "the", "to", "in", "for", "with", "a", "an", "on", "by", "at", "from", "ended"}
NUMBER = re.compile(r"^\(?[$€£¥]?-?[\d,.]+\)?%?$")
BOUNDARY = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[\"“(A-Z0-9])|(?<=[。！？])")
ABBREVIATION = re.compile(r"(\b[A-Z]|\b(Inc|Corp|Co|Ltd|No|Nos|Mr|Mrs|Ms|Dr|St|vs|Jr|Sr|U\.S|e\.g|i\.e))\.$")
OPENING = re.compile(r"[A-Z0-9“\"‘'•·*]|[^\x00-\x7f]")  # not a sentence run on from the page before
COMPLETE = re.compile(r"[.!?。！？][\"”’)）]?$")
GIBBERISH = re.compile(r"[A-Za-z0-9]{25,}")  # a watermark or an id run into the text: never a word


@dataclass(frozen=True)
class GuideEntry:
    """One page in the guide: its heading and first sentence, each possibly empty (never both)."""

    file: str
    page: int
    heading: str
    sentence: str

    def to_dict(self) -> dict:
        return asdict(self)


@cache
def skipped_patterns(path: Path = PROMPTS_DIR / "page_guide.toml") -> re.Pattern:
    """One pattern for every line of form furniture the data file names."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return re.compile("|".join(f"(?:{p})" for patterns in data.values() for p in patterns), re.IGNORECASE)


def is_heading(line: str) -> bool:
    """A short line that reads like a title: capitalised words, no sentence ending, not a table row."""
    line = line.strip()
    if not line:
        return False
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
    if line.isupper() and len(words) > 3 or words[-1].lower() in DANGLING:
        return False  # a shouted cover line ("SECURITIES AND EXCHANGE COMMISSION"), a cut line ("Cash and")
    capitalised = sum(1 for w in words if w[0].isupper() or not w[0].isalpha() or len(w) <= 3)
    return capitalised == len(words)


def is_sentence(text: str) -> bool:
    """Prose: enough words (characters, in Chinese), mostly letters, not a shouted cover line."""
    cjk = len(CJK_CHAR.findall(text))
    if cjk:
        digits = sum(c.isdigit() for c in text)
        return cjk >= MIN_CJK_CHARS and digits < 0.3 * len(text)
    letters = sum(c.isalpha() for c in text)
    upper = sum(c.isupper() for c in text)
    return len(text.split()) >= MIN_WORDS and letters >= 0.6 * len(text.replace(" ", "")) and upper < 0.5 * letters


def running_text(pages: Sequence[str]) -> tuple[set[str], set[str]]:
    """What starts or ends many of these pages (digits as 0): whole lines among the first and last
    EDGE_LINES and, in Chinese, whose pages' line breaks were joined, runs of REPEAT_CHARS characters
    among the first and last EDGE_CHARS (a header run into the text)."""
    lines, runs = Counter(), Counter()
    joined = is_cjk_heavy("".join(text[:EDGE_CHARS] for text in pages))  # Latin lines keep their breaks
    for text in pages:
        rows = [_masked(line.strip()) for line in text.splitlines() if line.strip()]
        lines.update(set(rows[:EDGE_LINES] + rows[-EDGE_LINES:]))
        if not joined:
            continue
        edges = _masked(text[:EDGE_CHARS]) + "\n" + _masked(text[-EDGE_CHARS:])
        runs.update({edges[i : i + REPEAT_CHARS] for i in range(len(edges) - REPEAT_CHARS + 1)})
    limit = max(3, REPEATED_SHARE * len(pages))
    repeated_runs = {run for run, count in runs.items() if count >= limit and "\n" not in run and run.strip()}
    return {line for line, count in lines.items() if count >= limit}, repeated_runs


def without_running_text(text: str, running: tuple[set[str], set[str]]) -> str:
    """``text`` without the running lines, and without the characters running runs cover at its edges (a
    run that begins within EDGE_CHARS of an edge may go on beyond it)."""
    lines, runs = running
    text = "\n".join(line for line in text.splitlines() if _masked(line.strip()) not in lines)
    if not runs or len(text) < REPEAT_CHARS:
        return text
    masked, drop = _masked(text), bytearray(len(text))
    starts = range(len(text) - REPEAT_CHARS + 1)
    for order in (starts, reversed(starts)):
        covered = False
        for n, i in enumerate(order):
            if n >= EDGE_CHARS and not covered:
                break
            covered = masked[i : i + REPEAT_CHARS] in runs
            if covered:
                drop[i : i + REPEAT_CHARS] = b"\x01" * REPEAT_CHARS
    return "".join(c for c, gone in zip(text, drop, strict=True) if not gone)


def page_entry(file: str, page: int, text: str) -> GuideEntry | None:
    """The page's first heading and first sentence, leaving out form furniture; None when it has neither.
    A sentence may run over several lines; a heading, a table row or a skipped line ends it."""
    skip = skipped_patterns()
    heading, block, skipping, furniture_seen = "", [], False, False
    for line in [*text.splitlines(), ""]:
        line = line.strip()
        # a line of Chinese is often a whole page (its breaks were joined): skipped sentence by sentence
        skipped = skipping or (bool(skip.search(line)) and not CJK_CHAR.search(line))
        skipping = skipped and not COMPLETE.search(line)  # the rest of a skipped sentence goes with it
        furniture_seen = furniture_seen or skipped
        if line and not skipped and not is_heading(line) and _wordy(line):
            block.append(line)
            continue
        if block and (sentence := _first_sentence(block)):
            return GuideEntry(file, page, heading, sentence)
        block = []
        if not heading and not furniture_seen and is_heading(line):  # not a name under a signature
            heading = line
    if not heading and CJK_CHAR.search(text) and (match := CJK_HEADING.search(text)):
        heading = match.group(0).strip()
    return GuideEntry(file, page, heading, "") if heading else None


def _wordy(line: str) -> bool:
    """Not a table row (mostly letters, or Chinese; a few figures at most), nor a contents entry ending in
    its page number."""
    chars, tokens = line.replace(" ", ""), line.split()
    figures = sum(1 for t in tokens if NUMBER.match(t) and any(c.isdigit() for c in t))
    if figures >= 2 and figures >= 0.25 * len(tokens) and not CJK_CHAR.search(line):
        return False
    return sum(c.isalpha() for c in chars) >= 0.5 * len(chars) and not TRAILING_PAGE_NUMBER.search(line)


def _first_sentence(lines: list[str]) -> str:
    skip = skipped_patterns()
    text = ""
    for line in lines:  # lines of Chinese join without a space
        text += ("" if CJK_CHAR.match(line[:1]) and CJK_CHAR.match(text[-1:]) else " ") + line
    for piece in sentences(text):
        if COMPLETE.search(piece) and OPENING.match(piece) and is_sentence(piece) and not skip.search(piece):
            return _shortened(piece)
    return ""


def sentences(text: str) -> list[str]:
    """``text`` cut after each sentence's end (not after "U.S." or "Inc.")."""
    pieces, start = [], 0
    for boundary in BOUNDARY.finditer(text):
        if not ABBREVIATION.search(text[start : boundary.start()].rstrip('"”’)')):
            pieces.append(text[start : boundary.start()].strip())
            start = boundary.end()
    return [p for p in [*pieces, text[start:].strip()] if p]


def page_guide(pages: Sequence[tuple[str, int, str]]) -> list[GuideEntry]:
    """The guide of (file, page, text) in order: each page's heading and first sentence."""
    pages = [(file, page, GIBBERISH.sub("", text)) for file, page, text in pages]
    by_file: dict[str, list[str]] = defaultdict(list)
    for file, _, text in pages:
        by_file[file].append(text)
    runs = {file: running_text(texts) for file, texts in by_file.items()}
    entries = [page_entry(file, page, without_running_text(text, runs[file])) for file, page, text in pages]
    entries = [e for e in entries if e is not None]
    # a heading on many pages is a running header too ("Table of Contents")
    counts = Counter((e.file, e.heading) for e in entries if e.heading)
    limit = max(2, REPEATED_SHARE * len(pages) / max(len(by_file), 1))
    entries = [
        e if counts[(e.file, e.heading)] <= limit else GuideEntry(e.file, e.page, "", e.sentence) for e in entries
    ]
    return [e for e in entries if e.heading or e.sentence][:MAX_ENTRIES]


def guide_text(entries: Sequence[GuideEntry], several_files: bool, language: str) -> str:
    """One line per page, as plain text: "p. 4 · Heading — First sentence."."""
    lines = []
    for e in entries:
        where = f"第 {e.page} 页" if language == "zh" else f"p. {e.page}"
        where = f"{e.file}, {where}" if several_files else where
        body = " — ".join(part for part in (e.heading, e.sentence) if part)
        lines.append(f"{where} · {body}")
    return "\n".join(lines)


def _masked(text: str) -> str:
    return re.sub(r"\d", "0", text)


def _shortened(sentence: str) -> str:
    limit = CJK_SENTENCE_CHARS if CJK_CHAR.search(sentence) else SENTENCE_CHARS
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"
