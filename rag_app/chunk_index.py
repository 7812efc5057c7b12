"""The chunks of one collection for one embedding model: vectors in Chroma, terms in a BM25 index.

One adapter over both indexes, so whatever is added, deleted or searched is added,
deleted or searched in both. Only :class:`rag_app.store.DocumentStore` uses it: the
store decides what a write is; this class knows how Chroma and the BM25 index hold it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from rag_app.lexical import LexicalIndex
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
    """Chroma's chunk collection and the BM25 index of one embedding model, kept in step."""

    def __init__(self, client, collection: str, embedding_fingerprint: str, lexical_dir: Path | None) -> None:
        self.name = chunks_collection_name(collection, embedding_fingerprint)
        self.embedding = embedding_fingerprint
        self._client = client
        self._chroma = client.get_or_create_collection(
            self.name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"rag_app": "chunks", "embedding": embedding_fingerprint},
        )
        self.lexical = LexicalIndex(lexical_dir / f"{self.name}.sqlite") if lexical_dir is not None else None

    def close(self) -> None:
        if self.lexical is not None:
            self.lexical.close()

    # ----- writing ---------------------------------------------------------------------------

    def add(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, metadata: dict, terms: Sequence[dict] | None = None
    ) -> None:
        """Write chunks with their vectors in batches under Chroma's maximum, and index their terms
        (``terms``: each chunk's term counts, when already extracted)."""
        if self.lexical is not None and chunks:
            self.lexical.add(metadata["sha256"], [(c.id, c.text) for c in chunks], terms)
        batch = min(MAX_WRITE_BATCH, self._client.get_max_batch_size())
        for start in range(0, len(chunks), batch):
            part = chunks[start : start + batch]
            self._chroma.add(  # not upsert: the store deleted this content's chunks first, and add is cheaper
                ids=[c.id for c in part],
                embeddings=vectors[start : start + batch],
                documents=[c.text for c in part],
                metadatas=[{**metadata, "page": c.page, "offset": c.offset, "chunk_index": c.index} for c in part],
            )

    def delete(self, sha256: str) -> None:
        """Remove every chunk of one file content."""
        self._chroma.delete(where={"sha256": sha256})
        if self.lexical is not None:
            self.lexical.delete(sha256)

    def sync_lexical(self, wanted: set[str]) -> None:
        """Make the BM25 index hold exactly the ``wanted`` file contents (rebuilt from Chroma if lost)."""
        if self.lexical is not None:
            self.lexical.sync(wanted, self.chunk_texts)

    # ----- reading ---------------------------------------------------------------------------

    def count(self, sha256: str | None = None) -> int:
        if sha256 is None:
            return self._chroma.count()
        return len(self._chroma.get(where={"sha256": sha256}, include=[])["ids"])

    def chunk_texts(self, sha256: str) -> list[tuple[str, str]]:
        found = self._chroma.get(where={"sha256": sha256}, include=["documents"])
        return list(zip(found["ids"], found["documents"], strict=True))

    def records(self, sha256: str) -> tuple[list[Chunk], np.ndarray, dict]:
        """Every chunk of one file content, its vectors, and the metadata its file gave them (to copy it)."""
        found = self._chroma.get(where={"sha256": sha256}, include=["documents", "metadatas", "embeddings"])
        rows = zip(found["ids"], found["documents"], found["metadatas"], strict=True)
        chunks = [Chunk(i, text, int(m["page"]), int(m["offset"]), int(m.get("chunk_index", 0))) for i, text, m in rows]
        per_chunk = ("page", "offset", "chunk_index")
        metadata = {k: v for k, v in found["metadatas"][0].items() if k not in per_chunk} if chunks else {}
        return chunks, np.asarray(found["embeddings"], dtype=np.float32), metadata

    def query(self, vector: Sequence[float], k: int, shas: Collection[str] | None) -> list[SearchHit]:
        """Nearest chunks by cosine similarity (score = 1 - cosine distance), within ``shas`` if given."""
        found = self._nearest(vector, k, shas, ["documents", "metadatas", "distances"])
        if found is None:
            return []
        rows = zip(found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0], strict=False)
        # A row without its record (possible only while another writer is mid-delete) is skipped, never a crash.
        return [_hit_from(i, text, meta, distance) for i, text, meta, distance in rows if meta is not None]

    def nearest_ids(self, vector: Sequence[float], k: int, shas: Collection[str] | None) -> list[str]:
        """Ids of the nearest chunks, best first: what fusion needs, without reading 50 texts and metadata
        from Chroma's SQLite (at 100,000 chunks that was most of a dense search)."""
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
        if self.lexical is None:
            return []
        return [chunk for chunk, _ in self.lexical.search(query, k, set(shas) if shas is not None else None)]

    def hits(self, ids: Sequence[str], vector: Sequence[float]) -> dict[str, SearchHit]:
        """Chunks by id, scored by cosine similarity with ``vector`` (for hits found by BM25)."""
        if not ids:
            return {}
        found = self._chroma.get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
        query = np.asarray(vector, dtype=np.float32)
        rows = zip(found["ids"], found["documents"], found["metadatas"], found["embeddings"], strict=True)
        return {
            chunk_id: _hit_from(chunk_id, text, meta, 1.0 - float(np.dot(query, np.asarray(embedding))))
            for chunk_id, text, meta, embedding in rows
            if meta is not None
        }

    def page_chunks(self, sha256: str, page: int) -> list[tuple[int, str]]:
        """(offset, text) of every chunk of one page, in page order."""
        found = self._chroma.get(
            where={"$and": [{"sha256": sha256}, {"page": page}]}, include=["documents", "metadatas"]
        )
        return sorted((int(m["offset"]), text) for m, text in zip(found["metadatas"], found["documents"], strict=True))

    def cover_terms(self) -> dict[str, frozenset[str]]:
        return self.lexical.cover_terms() if self.lexical is not None else {}


def _hit_from(chunk_id: str, text: str, meta: dict, distance: float) -> SearchHit:
    return SearchHit(
        file=meta.get("file", ""),
        page=int(meta.get("page", 0)),
        offset=int(meta.get("offset", 0)),
        text=text,
        score=round(1.0 - float(distance), 4),
        sha256=meta.get("sha256", ""),
        chunk_id=chunk_id,
        total_pages=int(meta.get("pages", 0)),
        chunk_index=int(meta.get("chunk_index", 0)),
    )
