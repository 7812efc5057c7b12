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

log = logging.getLogger(__name__)

# Paragraphs, lines, then sentence ends (Chinese full-width and Western), then
# clauses, then words; "" (single characters) only as a last resort.
SEPARATORS = [
    "\n\n", "\n",
    "。", "！", "？", "；", ". ", "! ", "? ", "; ",
    "，", "、", ", ", " ", "",
]  # fmt: skip
CHUNKER_VERSION = 1  # bump when splitting changes, so stored documents are re-chunked


class TokenChunker:
    """Recursive, sentence-aware splitter whose lengths are token counts."""

    def __init__(self, count_tokens: Callable[[str], int], chunk_size: int, chunk_overlap: int) -> None:
        self.chunk_size = chunk_size
        self.chunk_overlap = min(chunk_overlap, chunk_size // 2)
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
    def fingerprint(self) -> str:
        """Identifies the settings that shaped the chunks (stored with each document)."""
        return f"tokens{self.chunk_size}-overlap{self.chunk_overlap}-v{CHUNKER_VERSION}"

    def split_pages(self, pages: Iterable[PageText], sha256: str) -> list[Chunk]:
        """Chunks of every page in order; empty pages give none."""
        chunks: list[Chunk] = []
        for page in pages:
            for offset, text in self._split_page(page.text):
                chunks.append(Chunk(chunk_id(sha256, page.number, offset), text, page.number, offset, len(chunks)))
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
        return pieces

    def _cached_count(self, text: str) -> int:
        count = self._cache.get(text)
        if count is None:
            count = self._cache[text] = self._count(text)
        return count
