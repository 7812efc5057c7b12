"""The chunks of one collection for one embedding model: their vectors (:mod:`rag_app.storage.vectors`) and
their texts, places and BM25 terms (:class:`rag_app.storage.chunk_table.ChunkTable`, a SQLite file).

One adapter over both, so whatever is added, deleted or searched is added, deleted or searched in
both. Only :class:`rag_app.storage.store.DocumentStore` uses it: the store decides what a write is; this
class knows how the vectors and the chunk table hold it.

Chroma's record of a chunk is its id, its vector and its file's sha256 (what a search filters on).
Writing the text and the place as well made Chroma index each text for full-text search and each
field in its metadata tables: 4x the cost of the vector alone, and most of an ingest's time on a GPU
machine. A Chroma *server* still gets the texts and places too: other machines share it, and they
rebuild their own chunk table from it. Collections written before this layout held the texts in
Chroma; their chunk table is rebuilt from there once.

The collection of this name in the main Chroma database records the shard count in its metadata, fixed
when it is made; a collection of one shard keeps its vectors there, one of several shards in the shard
databases (:class:`rag_app.storage.vectors.ShardedVectors`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rag_app.records import Chunk, SearchHit, chunk_page
from rag_app.storage.chunk_table import ChunkTable, StoredChunk
from rag_app.storage.exact import Segment, Stacked, exact_vectors, read_segment
from rag_app.storage.vectors import VectorIndex
from rag_app.text.terms import PackedTerms

CHUNKS_INFIX = ".chunks."
PAGE_VECTORS_KEPT = 128  # file contents whose page vectors stay in memory (a 300-page filing: about 0.5 MB)
# Above the exact search's limit, the file contents whose chunk vectors stay in memory once read (about 1.5 MB a
# 10-K): the routed filing's nearest chunks are searched in them, not by Chroma's filtered query (35 ms)
SEGMENTS_KEPT = 8


def chunks_collection_name(collection: str, embedding_fingerprint: str) -> str:
    """Chroma name of the chunk collection of ``collection`` for one embedding model."""
    model = embedding_fingerprint.split("|")[0].rstrip("/").split("/")[-1]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", model)[:40].strip("-_") or "model"
    digest = hashlib.sha256(embedding_fingerprint.encode()).hexdigest()[:8]
    return f"{collection}{CHUNKS_INFIX}{slug}-{digest}"


class ChunkIndex:
    """A chunk collection's vectors and its chunk table, kept in step.

    ``texts_in_chroma``: also give Chroma each chunk's text and place (a Chroma server, shared).
    """

    def __init__(
        self,
        name: str,
        embedding: str,
        vectors: VectorIndex,
        table: ChunkTable,
        texts_in_chroma: bool,
        exact_chunks: int = 0,
    ) -> None:
        """``exact_chunks``: up to this many chunks, searched exactly in memory (:mod:`rag_app.storage.exact`)."""
        self.name = name
        self.exact_chunks = exact_chunks
        self.embedding = embedding
        self.vectors = vectors
        self.table = table
        self.texts_in_chroma = texts_in_chroma
        self._openings: dict[tuple[str, int], dict[int, str]] = {}  # (sha256, chars) -> page_openings
        self._page_vectors: dict[str, PageVectors] = {}  # sha256 -> its pages' vectors, oldest first
        self._segments: dict[str, Segment] = {}  # sha256 -> its vectors read from Chroma, above the exact limit

    @property
    def shards(self) -> int:
        return self.vectors.shards

    def close(self) -> None:
        self.vectors.close()
        self.table.close()

    # ----- writing ---------------------------------------------------------------------------

    def add(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        metadata: dict,
        terms: PackedTerms | Sequence[dict] | None = None,
    ) -> None:
        """Keep the chunks' texts and terms, then their vectors (``metadata``: the file's ``sha256``, ``file``
        and ``pages``; ``terms``: each chunk's term counts, when already extracted)."""
        sha = metadata["sha256"]
        self._forget_kept(sha)
        if chunks:
            self.table.add(sha, chunks, metadata["file"], int(metadata["pages"]), terms)
        ids = [c.id for c in chunks]
        if self.texts_in_chroma:
            stored = [StoredChunk(c.id, c.text, c.page, c.offset, c.index, sha, metadata["file"], int(metadata["pages"])) for c in chunks]  # fmt: skip
            self.vectors.add(ids, vectors, [chroma_metadata(c) for c in stored], [c.text for c in chunks])
        else:
            self.vectors.add(ids, vectors, [{"sha256": sha}] * len(chunks))

    def flush(self) -> None:
        """Wait until the vectors sent so far are written; raise the first error among them."""
        self.vectors.flush()

    def delete(self, sha256: str) -> None:
        """Remove every chunk of one file content: from the chunk table even when the vectors could not all go
        (a shard's writer process died); that error is raised after."""
        self._forget_kept(sha256)
        try:
            self.vectors.delete(sha256)
        finally:
            self.table.delete(sha256)

    def sync_table(self, wanted: set[str], have: set[str] | None = None, keep: Collection[str] = ()) -> None:
        """Make the chunk table hold the ``wanted`` file contents (rebuilt from the texts Chroma holds, if
        it has them, when the table lacks some) and drop the others of ``have`` (what it held when the
        caller looked) except ``keep`` (writes in progress)."""
        self.table.sync(wanted, self._chroma_chunks, have, keep)

    def _chroma_chunks(self, sha256: str) -> list[StoredChunk]:
        """The chunks of one file content as Chroma holds them: empty unless Chroma has their texts."""
        rows = self.vectors.stored_texts(sha256)
        if not rows or any(text is None or "page" not in (meta or {}) for _, text, meta in rows):
            return []
        chunks = [_from_chroma(i, text, m, sha256) for i, text, m in rows]
        return sorted(chunks, key=lambda c: (c.page, c.offset))

    # ----- reading ---------------------------------------------------------------------------

    def count(self, sha256: str | None = None) -> int:
        return self.vectors.count(sha256)

    def chunk_texts(self, sha256: str) -> list[tuple[str, str]]:
        """(id, text) of every chunk of one file content, in reading order."""
        return [(c.id, c.text) for c in self.table.chunks_of(sha256)]

    def records(self, sha256: str) -> tuple[list[Chunk], np.ndarray, dict]:
        """Every chunk of one file content, its vectors, and the metadata its file gave them (to copy it)."""
        stored = self.table.chunks_of(sha256)
        chunks = [Chunk(c.id, c.text, c.page, c.offset, c.index) for c in stored]
        vectors = self.vectors.vectors([c.id for c in chunks])
        metadata = {"file": stored[0].file, "sha256": sha256, "pages": stored[0].pages} if stored else {}
        return chunks, np.asarray([vectors[c.id] for c in chunks], dtype=np.float32), metadata

    def query(self, vector: Sequence[float], k: int, shas: Collection[str] | None) -> list[SearchHit]:
        """Nearest chunks by cosine similarity (score = 1 - cosine distance), within ``shas`` if given."""
        ids, distances = self._nearest(vector, k, shas)
        stored = self.table.chunks_by_id(ids)
        # A chunk without its record (possible only while another writer is mid-delete) is skipped, never a crash.
        return [_hit_from(stored[i], distance) for i, distance in zip(ids, distances, strict=True) if i in stored]

    def nearest_ids(self, vector: Sequence[float], k: int, shas: Collection[str] | None) -> list[str]:
        """Ids of the nearest chunks, best first: what fusion needs, without reading any text."""
        return self._nearest(vector, k, shas)[0]

    def _nearest(self, vector: Sequence[float], k: int, shas: Collection[str] | None) -> tuple[list[str], list[float]]:
        if shas is not None and not shas:
            return [], []
        if (exact := self._exact()) is not None:
            return exact.nearest(vector, k, shas)
        if shas is not None and len(shas) <= 2:  # inside the routed documents: their vectors, read once and kept
            return Stacked.of({sha: self._read(sha) for sha in shas}).nearest(vector, k, None)
        return self.vectors.nearest(np.asarray(vector, dtype=np.float32), k, shas)

    def _segment(self, sha256: str) -> tuple[np.ndarray, np.ndarray]:
        """One file content's chunk ids and normalised vectors: the kept matrix's rows under the exact search's
        limit, else read once and kept (:meth:`_read`)."""
        exact = self._exact()
        if exact is not None and (segment := exact.segment(sha256)) is not None:
            return segment
        found = self._read(sha256)
        return np.array(found.ids[: len(found.matrix)], dtype=object), found.matrix

    def _read(self, sha256: str) -> Segment:
        """One file content's vectors above the exact search's limit, kept (the last ``SEGMENTS_KEPT``): from the
        file the exact search keeps of it beside the chunk table, else read from Chroma and written there (about
        35 ms for a filing, once per library, not once per process); from Chroma alone where no exact search is
        kept at all (``exact_chunks`` 0)."""
        if (found := self._segments.get(sha256)) is None:
            if self.exact_chunks > 0:
                table = self.table
                stamp, ids = table.stamped_ids().get(sha256, (0, []))
                found = exact_vectors(str(table.path)).content(table.state()[0], sha256, stamp, ids, self.vectors.vectors)  # fmt: skip
            else:
                found = read_segment(0, tuple(c.id for c in self.table.chunks_of(sha256)), self.vectors.vectors)
            if len(self._segments) >= SEGMENTS_KEPT:
                self._segments.pop(next(iter(self._segments)), None)
            self._segments[sha256] = found
        return found

    def _exact(self) -> Stacked | None:
        """The collection's vectors in memory, in step with the chunk table; None above ``exact_chunks`` chunks."""
        if self.exact_chunks <= 0:
            return None
        table = self.table
        return exact_vectors(str(table.path)).current(table.state(), table.stamped_ids, self.vectors.vectors, self.exact_chunks)  # fmt: skip

    def warm(self) -> None:
        """Read what searches keep in memory (the BM25 postings, the vectors searched exactly) now, not at the first
        question."""
        self.table.stamped_ids()
        self._exact()

    def _vectors_of(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors of ``ids``: from memory where the collection is kept there, else from Chroma."""
        exact = self._exact()
        return exact.vectors(ids) if exact is not None else self.vectors.vectors(ids)

    def search_terms(
        self, query: str, k: int, shas: Collection[str] | None, term_weights: Mapping[str, float] | None = None
    ) -> list[str]:
        """Chunk ids best first by BM25, within ``shas`` if given (``term_weights``: see ChunkTable.search)."""
        found = self.table.search(query, k, set(shas) if shas is not None else None, term_weights)
        return [chunk for chunk, _ in found]

    def page_scores(self, query: str, sha256: str, term_weights: Mapping[str, float] | None = None) -> dict[int, float]:
        """Page -> BM25 of each page of one file content as a whole (see ChunkTable.page_scores)."""
        return self.table.page_scores(query, sha256, term_weights)

    def hits(self, ids: Sequence[str], vector: Sequence[float]) -> dict[str, SearchHit]:
        """Chunks by id, scored by cosine similarity with ``vector`` (for hits found by BM25)."""
        if not ids:
            return {}
        stored = self.table.chunks_by_id(ids)
        vectors = self._vectors_of([i for i in ids if i in stored])
        query = np.asarray(vector, dtype=np.float32)
        return {
            chunk_id: _hit_from(stored[chunk_id], 1.0 - float(np.dot(query, embedding)))
            for chunk_id, embedding in vectors.items()
        }

    def page_chunks(self, sha256: str, page: int) -> list[tuple[int, str]]:
        """(offset, text) of every chunk of one page, in page order."""
        return [(c.offset, c.text) for c in self.table.chunks_of(sha256, page)]

    def page_openings(self, sha256: str, chars: int) -> dict[int, str]:
        """Page -> the first ``chars`` characters of its first chunk, for every page of one file content with
        text; read once per file content and kept (an add or delete of it here forgets them)."""
        key = (sha256, chars)
        if key not in self._openings:
            self._openings[key] = self.table.page_openings(sha256, chars)
        return self._openings[key]

    def page_vectors(self, sha256: str) -> PageVectors:
        """The pages of one file content as vectors: the mean of each page's chunk vectors, normalised; read once
        per file content and kept (the last ``PAGE_VECTORS_KEPT``; an add or delete of it here forgets them)."""
        if (found := self._page_vectors.get(sha256)) is None:
            found = PageVectors.of_rows(*self._segment(sha256))
            if len(self._page_vectors) >= PAGE_VECTORS_KEPT:
                self._page_vectors.pop(next(iter(self._page_vectors)), None)
            self._page_vectors[sha256] = found
        return found

    def _forget_kept(self, sha256: str) -> None:
        """Drop what is kept in memory of one file content (its page openings and page vectors): it is being
        written or deleted."""
        for key in [key for key in list(self._openings) if key[0] == sha256]:  # list(): other threads may add
            self._openings.pop(key, None)
        self._page_vectors.pop(sha256, None)
        self._segments.pop(sha256, None)

    def cover_terms(self) -> dict[str, frozenset[str]]:
        return self.table.cover_terms()

    def documents_with(self, terms) -> dict[str, set[str]]:
        return self.table.documents_with(terms)

    def pages_with(self, terms, at_most: int | None = None) -> dict[str, dict[str, int]]:
        return self.table.pages_with(terms, at_most)


@dataclass(frozen=True)
class PageVectors:
    """One file content's pages (``pages``, in order) as the normalised means of their chunks' vectors (``matrix``,
    one row each): a page's representation beside its chunks, read by the page ranking inside a document."""

    pages: tuple[int, ...]
    matrix: np.ndarray

    @classmethod
    def of_rows(cls, ids: Sequence[str], matrix: np.ndarray) -> PageVectors:
        """From chunk ids and their vectors, row for row (one content's), without a loop per page."""
        if not len(ids):
            return cls((), np.zeros((0, 0), dtype=np.float32))
        pages = np.fromiter((chunk_page(str(chunk)) for chunk in ids), dtype=np.int64, count=len(ids))
        if np.any(pages[1:] < pages[:-1]):  # the chunk table's order is the pages' already
            order = np.argsort(pages, kind="stable")
            pages, matrix = pages[order], matrix[order]
        found, first = np.unique(pages, return_index=True)
        means = np.add.reduceat(matrix, first, axis=0) / np.diff(np.append(first, len(pages)))[:, None].astype(
            np.float32
        )
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        return cls(tuple(int(p) for p in found), means)

    def ranked(self, vector: Sequence[float]) -> list[int]:
        """The pages by cosine similarity with ``vector``, best first (ties: earlier page first)."""
        if not self.pages:
            return []
        query = np.asarray(vector, dtype=np.float32)
        similarity = self.matrix @ (query / max(float(np.linalg.norm(query)), 1e-12))
        return [self.pages[i] for i in np.argsort(-similarity, kind="stable")]


def chroma_metadata(chunk: StoredChunk) -> dict:
    """What a Chroma server keeps with a chunk (and embedded collections did before the SQLite file held it)."""
    return {"file": chunk.file, "sha256": chunk.sha256, "pages": chunk.pages, "page": chunk.page,
            "offset": chunk.offset, "chunk_index": chunk.index}  # fmt: skip


def _from_chroma(chunk_id: str, text: str, meta: dict, sha256: str) -> StoredChunk:
    """The inverse of :func:`chroma_metadata`."""
    return StoredChunk(chunk_id, text, int(meta["page"]), int(meta["offset"]), int(meta.get("chunk_index", 0)),
                       sha256, meta.get("file", ""), int(meta.get("pages", 0)))  # fmt: skip


def _hit_from(chunk: StoredChunk, distance: float) -> SearchHit:
    return SearchHit(
        file=chunk.file,
        page=chunk.page,
        offset=chunk.offset,
        text=chunk.text,
        score=round(1.0 - float(distance), 4),
        sha256=chunk.sha256,
        chunk_id=chunk.id,
        total_pages=chunk.pages,
        chunk_index=chunk.index,
    )
