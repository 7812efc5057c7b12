"""The chunks of one collection for one embedding model: vectors in Chroma; texts, places and BM25
terms in a SQLite file beside it (:class:`rag_app.lexical.LexicalIndex`).

One adapter over both, so whatever is added, deleted or searched is added, deleted or searched in
both. Only :class:`rag_app.store.DocumentStore` uses it: the store decides what a write is; this
class knows how Chroma and the SQLite file hold it.

Chroma's record of a chunk is its id, its vector and its file's sha256 (what a search filters on).
Writing the text and the place as well made Chroma index each text for full-text search and each
field in its metadata tables: 4x the cost of the vector alone, and most of an ingest's time on a GPU
machine. A Chroma *server* still gets the texts and places too: other machines share it, and they
rebuild their own SQLite file from it. Collections written before this layout held the texts in
Chroma; their SQLite file is rebuilt from there once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from rag_app.lexical import LexicalIndex, StoredChunk
from rag_app.records import Chunk, SearchHit

CHUNKS_INFIX = ".chunks."
MAX_WRITE_BATCH = 1000  # below Chroma's maximum batch size (5,461 on SQLite)


def chunks_collection_name(collection: str, embedding_fingerprint: str) -> str:
    """Chroma name of the chunk collection of ``collection`` for one embedding model."""
    model = embedding_fingerprint.split("|")[0].rstrip("/").split("/")[-1]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", model)[:40].strip("-_") or "model"
    digest = hashlib.sha256(embedding_fingerprint.encode()).hexdigest()[:8]
    return f"{collection}{CHUNKS_INFIX}{slug}-{digest}"


class ChunkIndex:
    """Chroma's chunk collection and the SQLite file of one embedding model, kept in step.

    ``texts_in_chroma``: also give Chroma each chunk's text and place (a Chroma server, shared).
    """

    def __init__(
        self, client, collection: str, embedding_fingerprint: str, lexical_dir: Path, texts_in_chroma: bool = False
    ) -> None:
        self.name = chunks_collection_name(collection, embedding_fingerprint)
        self.embedding = embedding_fingerprint
        self.texts_in_chroma = texts_in_chroma
        self._client = client
        self._chroma = client.get_or_create_collection(
            self.name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"rag_app": "chunks", "embedding": embedding_fingerprint},
        )
        self.lexical = LexicalIndex(lexical_dir / f"{self.name}.sqlite")
        self._openings: dict[tuple[str, int], dict[int, str]] = {}  # (sha256, chars) -> page_openings

    def close(self) -> None:
        self.lexical.close()

    # ----- writing ---------------------------------------------------------------------------

    def add(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, metadata: dict, terms: Sequence[dict] | None = None
    ) -> None:
        """Keep the chunks' texts and terms, then write their vectors in batches under Chroma's maximum
        (``metadata``: the file's ``sha256``, ``file`` and ``pages``; ``terms``: each chunk's term
        counts, when already extracted)."""
        sha = metadata["sha256"]
        self._forget_openings(sha)
        if chunks:
            self.lexical.add(sha, chunks, metadata["file"], int(metadata["pages"]), terms)
        batch = min(MAX_WRITE_BATCH, self._client.get_max_batch_size())
        for start in range(0, len(chunks), batch):
            part = chunks[start : start + batch]
            if self.texts_in_chroma:
                stored = [StoredChunk(c.id, c.text, c.page, c.offset, c.index, sha, metadata["file"], int(metadata["pages"])) for c in part]  # fmt: skip
                extra = {"documents": [c.text for c in part], "metadatas": [chroma_metadata(c) for c in stored]}
            else:
                extra = {"metadatas": [{"sha256": sha}] * len(part)}
            # not upsert: the store deleted this content's chunks first, and add is cheaper
            self._chroma.add(ids=[c.id for c in part], embeddings=vectors[start : start + batch], **extra)

    def delete(self, sha256: str) -> None:
        """Remove every chunk of one file content."""
        self._forget_openings(sha256)
        self._chroma.delete(where={"sha256": sha256})
        self.lexical.delete(sha256)

    def sync_lexical(self, wanted: set[str], have: set[str] | None = None, keep: Collection[str] = ()) -> None:
        """Make the SQLite file hold the ``wanted`` file contents (rebuilt from the texts Chroma holds, if
        it has them, when the file lacks some) and drop the others of ``have`` (what it held when the
        caller looked) except ``keep`` (writes in progress)."""
        self.lexical.sync(wanted, self._chroma_chunks, have, keep)

    def _chroma_chunks(self, sha256: str) -> list[StoredChunk]:
        """The chunks of one file content as Chroma holds them: empty unless Chroma has their texts."""
        found = self._chroma.get(where={"sha256": sha256}, include=["documents", "metadatas"])
        rows = list(zip(found["ids"], found["documents"], found["metadatas"], strict=True))
        if not rows or any(text is None or "page" not in (meta or {}) for _, text, meta in rows):
            return []
        chunks = [_from_chroma(i, text, m, sha256) for i, text, m in rows]
        return sorted(chunks, key=lambda c: (c.page, c.offset))

    # ----- reading ---------------------------------------------------------------------------

    def count(self, sha256: str | None = None) -> int:
        if sha256 is None:
            return self._chroma.count()
        return len(self._chroma.get(where={"sha256": sha256}, include=[])["ids"])

    def chunk_texts(self, sha256: str) -> list[tuple[str, str]]:
        """(id, text) of every chunk of one file content, in reading order."""
        return [(c.id, c.text) for c in self.lexical.chunks_of(sha256)]

    def records(self, sha256: str) -> tuple[list[Chunk], np.ndarray, dict]:
        """Every chunk of one file content, its vectors, and the metadata its file gave them (to copy it)."""
        stored = self.lexical.chunks_of(sha256)
        chunks = [Chunk(c.id, c.text, c.page, c.offset, c.index) for c in stored]
        vectors = self._vectors([c.id for c in chunks])
        metadata = {"file": stored[0].file, "sha256": sha256, "pages": stored[0].pages} if stored else {}
        return chunks, np.asarray([vectors[c.id] for c in chunks], dtype=np.float32), metadata

    def _vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        found = self._chroma.get(ids=list(ids), include=["embeddings"]) if ids else {"ids": [], "embeddings": []}
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(found["ids"], found["embeddings"], strict=True)}

    def query(self, vector: Sequence[float], k: int, shas: Collection[str] | None) -> list[SearchHit]:
        """Nearest chunks by cosine similarity (score = 1 - cosine distance), within ``shas`` if given."""
        found = self._nearest(vector, k, shas, ["distances"])
        if found is None:
            return []
        stored = self.lexical.chunks_by_id(found["ids"][0])
        # A chunk without its record (possible only while another writer is mid-delete) is skipped, never a crash.
        return [
            _hit_from(stored[i], distance)
            for i, distance in zip(found["ids"][0], found["distances"][0], strict=False)
            if i in stored
        ]

    def nearest_ids(self, vector: Sequence[float], k: int, shas: Collection[str] | None) -> list[str]:
        """Ids of the nearest chunks, best first: what fusion needs, without reading any text."""
        found = self._nearest(vector, k, shas, ["distances"])
        return list(found["ids"][0]) if found is not None else []

    def _nearest(self, vector: Sequence[float], k: int, shas: Collection[str] | None, include: list[str]):
        if shas is not None and not shas:
            return None
        where = {"sha256": {"$in": sorted(shas)}} if shas is not None else None
        query = [np.asarray(vector, dtype=np.float32)]
        try:  # not counting first: at 100,000 chunks Chroma's count() takes 10 ms, the query 3
            return self._chroma.query(query_embeddings=query, n_results=k, where=where, include=include)
        except Exception:  # noqa: BLE001 - Chroma before 1.x refused to query an empty collection
            if self._chroma.count() == 0:
                return None
            raise

    def search_terms(self, query: str, k: int, shas: Collection[str] | None) -> list[str]:
        """Chunk ids best first by BM25, within ``shas`` if given."""
        return [chunk for chunk, _ in self.lexical.search(query, k, set(shas) if shas is not None else None)]

    def hits(self, ids: Sequence[str], vector: Sequence[float]) -> dict[str, SearchHit]:
        """Chunks by id, scored by cosine similarity with ``vector`` (for hits found by BM25)."""
        if not ids:
            return {}
        stored = self.lexical.chunks_by_id(ids)
        vectors = self._vectors([i for i in ids if i in stored])
        query = np.asarray(vector, dtype=np.float32)
        return {
            chunk_id: _hit_from(stored[chunk_id], 1.0 - float(np.dot(query, embedding)))
            for chunk_id, embedding in vectors.items()
        }

    def page_chunks(self, sha256: str, page: int) -> list[tuple[int, str]]:
        """(offset, text) of every chunk of one page, in page order."""
        return [(c.offset, c.text) for c in self.lexical.chunks_of(sha256, page)]

    def page_openings(self, sha256: str, chars: int) -> dict[int, str]:
        """Page -> the first ``chars`` characters of its first chunk, for every page of one file content with
        text; read once per file content and kept (an add or delete of it here forgets them)."""
        key = (sha256, chars)
        if key not in self._openings:
            self._openings[key] = self.lexical.page_openings(sha256, chars)
        return self._openings[key]

    def _forget_openings(self, sha256: str) -> None:
        for key in [key for key in list(self._openings) if key[0] == sha256]:  # list(): other threads may add
            self._openings.pop(key, None)

    def cover_terms(self) -> dict[str, frozenset[str]]:
        return self.lexical.cover_terms()


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
