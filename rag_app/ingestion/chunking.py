"""Split cleaned pages into chunks the embedding model reads whole.

Length is measured in tokens of the embedding model's own tokenizer: a chunk
longer than the model's window would be cut silently by the embedder and its
tail would never be found. Chunks never cross a page boundary, so each carries
an exact page number and its character offset within that page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag_app.records import Chunk, PageText, chunk_id
from rag_app.text.clean import is_chinese

log = logging.getLogger(__name__)

# Paragraphs, lines, then sentence ends (Chinese full-width and Western), then
# clauses, then words; "" (single characters) only as a last resort.
SEPARATORS = [
    "\n\n", "\n",
    "。", "！", "？", "；", ". ", "! ", "? ", "; ",
    "，", "、", ", ", " ", "",
]  # fmt: skip
# bump when splitting, or the cleaned text it splits, changes, so stored documents are re-chunked (3: a Chinese
# page's table rows keep their lines, rag_app.text.clean)
CHUNKER_VERSION = 3
# On a Chinese page, a piece shorter than this share of the chunk size is a layout fragment (a table
# cell, a heading, "(2)."): it joins its neighbour instead of becoming a chunk that says nothing.
FRAGMENT_SHARE = 4


class TokenChunker:
    """Recursive, sentence-aware splitter whose lengths are token counts."""

    def __init__(
        self, count_tokens: Callable[[str], int], chunk_size: int, chunk_overlap: int, max_tokens: int | None = None
    ) -> None:
        self.chunk_size = chunk_size
        self.chunk_overlap = min(chunk_overlap, chunk_size // 2)
        # A fragment may push a chunk past chunk_size by up to a fragment, never past what the embedder reads.
        self.max_tokens = min(chunk_size + max(1, chunk_size // FRAGMENT_SHARE), max_tokens or 1 << 30)
        self._count = count_tokens
        self._cache: dict[str, int] = {}
        self._splitter = RecursiveCharacterTextSplitter(
            separators=SEPARATORS,
            keep_separator="end",
            chunk_size=chunk_size,
            chunk_overlap=self.chunk_overlap,
            length_function=self._cached_count,
            strip_whitespace=True,
        )

    @property
    def counts_with(self) -> Callable[[str], int]:
        """The token counter that measures chunk lengths."""
        return self._count

    @property
    def fingerprint(self) -> str:
        """Identifies the settings that shaped the chunks (stored with each document)."""
        return f"tokens{self.chunk_size}-overlap{self.chunk_overlap}-v{CHUNKER_VERSION}"

    def split_pages(
        self, pages: Iterable[PageText], sha256: str, on_page: Callable[[int], None] | None = None
    ) -> list[Chunk]:
        """Chunks of every page in order; empty pages give none. ``on_page(n)`` after the n-th page."""
        chunks: list[Chunk] = []
        for done, page in enumerate(pages, 1):
            for offset, text in self._split_page(page.text):
                chunks.append(Chunk(chunk_id(sha256, page.number, offset), text, page.number, offset, len(chunks)))
            if on_page:
                on_page(done)
        self._cache.clear()
        return chunks

    def _split_page(self, text: str) -> list[tuple[int, str]]:
        """(offset, text) pairs; the splitter returns substrings, so offsets are exact."""
        pieces: list[tuple[int, str]] = []
        cursor = 0
        for piece in self._splitter.split_text(text):
            offset = text.find(piece, cursor)
            if offset < 0:  # cannot happen for substrings; keep the chunk anyway
                log.warning("chunk not found in its page text; offset approximated")
                offset = cursor
            pieces.append((offset, piece))
            cursor = offset + 1
        # Chinese pages only: their tables and headings break into fragments of a few characters;
        # English pages keep the splitter's chunks (merging there is unmeasured).
        return self._merge_fragments(text, pieces) if is_chinese(text) else pieces

    def _merge_fragments(self, text: str, pieces: list[tuple[int, str]]) -> list[tuple[int, str]]:
        """Join each piece under chunk_size / FRAGMENT_SHARE tokens to the previous piece (else the
        next) as one span of the page of at most ``max_tokens``."""
        smallest = max(1, self.chunk_size // FRAGMENT_SHARE)
        limit = self.max_tokens
        merged: list[tuple[int, str]] = []
        for offset, piece in pieces:
            if merged:
                last_offset, last = merged[-1]
                span = text[last_offset : max(offset + len(piece), last_offset + len(last))]
                small = self._cached_count(piece) < smallest or self._cached_count(last) < smallest
                if small and self._cached_count(span) <= limit:
                    merged[-1] = (last_offset, span)
                    continue
            merged.append((offset, piece))
        return merged

    def _cached_count(self, text: str) -> int:
        count = self._cache.get(text)
        if count is None:
            count = self._cache[text] = self._count(text)
        return count
