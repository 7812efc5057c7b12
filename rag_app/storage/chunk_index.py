"""The chunks of one collection for one embedding model: vectors in Chroma; texts, places and BM25
terms in a SQLite file beside it (:class:`rag_app.storage.chunk_table.LexicalIndex`).

One adapter over both, so whatever is added, deleted or searched is added, deleted or searched in
both. Only :class:`rag_app.storage.store.DocumentStore` uses it: the store decides what a write is; this
class knows how Chroma and the SQLite file hold it.

Chroma's record of a chunk is its id, its vector and its file's sha256 (what a search filters on).
Writing the text and the place as well made Chroma index each text for full-text search and each
field in its metadata tables: 4x the cost of the vector alone, and most of an ingest's time on a GPU
machine. A Chroma *server* still gets the texts and places too: other machines share it, and they
rebuild their own SQLite file from it. Collections written before this layout held the texts in
Chroma; their SQLite file is rebuilt from there once.

Shards: Chroma's add inserts into one HNSW index on one core, holding the GIL, and on a GPU machine that
bounded ingestion. A chunk collection made with several shards (``RAG_CHROMA_SHARDS``) spreads its
vectors by chunk id over as many Chroma databases, one per folder under ``chroma/shards/``, which the
processes of :mod:`rag_app.storage.shard_process` fill at once; searches ask every shard and merge. The
collection of that name in the main database then holds no vectors: its metadata records the shard
count, fixed when it is made. A single-shard collection keeps its vectors in the main database.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import numpy as np

from rag_app.records import Chunk, SearchHit
from rag_app.storage.chunk_table import LexicalIndex, PackedTerms, StoredChunk

CHUNKS_INFIX = ".chunks."
MAX_WRITE_BATCH = 1000  # below Chroma's maximum batch size (5,461 on SQLite)
HNSW = {"hnsw": {"space": "cosine"}}
SHARDS_FOLDER = "shards"


def persistent_client(path: Path):
    """An embedded Chroma database in ``path`` (made if missing), without telemetry."""
    import chromadb

    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chromadb.Settings(anonymized_telemetry=False, allow_reset=False))  # fmt: skip


def open_shard_collection(client, name: str, metadata: dict):
    """The collection holding one shard's vectors (the same name in every shard's database)."""
    return client.get_or_create_collection(name, embedding_function=None, configuration=HNSW, metadata=metadata)


def shard_of(chunk_id: str, shards: int) -> int:
    """The shard a chunk's vector lives in: by its id, so one file's chunks spread over every shard."""
    return zlib.crc32(chunk_id.encode()) % shards if shards > 1 else 0


def chunks_collection_name(collection: str, embedding_fingerprint: str) -> str:
    """Chroma name of the chunk collection of ``collection`` for one embedding model."""
    model = embedding_fingerprint.split("|")[0].rstrip("/").split("/")[-1]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", model)[:40].strip("-_") or "model"
    digest = hashlib.sha256(embedding_fingerprint.encode()).hexdigest()[:8]
    return f"{collection}{CHUNKS_INFIX}{slug}-{digest}"


class ChunkIndex:
    """Chroma's chunk collection and the SQLite file of one embedding model, kept in step.

    ``texts_in_chroma``: also give Chroma each chunk's text and place (a Chroma server, shared).
    ``shard_client(i)``: the Chroma database of shard ``i`` (embedded only). ``new_shards``: how many
    shards the collection gets if it is made now (or a function asked only then). ``shard_writer(i)``:
    the process writing shard ``i`` while one does (:mod:`rag_app.storage.shard_process`), else None.
    """

    def __init__(
        self,
        client,
        collection: str,
        embedding_fingerprint: str,
        lexical_dir: Path,
        texts_in_chroma: bool = False,
        shard_client: Callable[[int], object] | None = None,
        new_shards: int | Callable[[], int] = 1,
        shard_writer: Callable[[int], object | None] | None = None,
    ) -> None:
        self.name = chunks_collection_name(collection, embedding_fingerprint)
        self.embedding = embedding_fingerprint
        self.texts_in_chroma = texts_in_chroma
        self._client = client
        try:
            self._chroma = client.get_collection(self.name, embedding_function=None)
        except Exception:  # noqa: BLE001 - not made yet (Chroma's error class moved between versions)
            shards = new_shards() if callable(new_shards) else new_shards
            self._chroma = client.get_or_create_collection(
                self.name,
                embedding_function=None,
                configuration=HNSW,
                metadata={"rag_app": "chunks", "embedding": embedding_fingerprint, "shards": shards},
            )
        self.shards = int((self._chroma.metadata or {}).get("shards", 1))
        if self.shards > 1 and shard_client is None:
            raise ValueError(f"{self.name} is spread over {self.shards} shards: only an embedded database holds them")
        self._shard_client = shard_client
        self._shard_writer = shard_writer or (lambda i: None)
        self._parts: list | None = None
        self.lexical = LexicalIndex(lexical_dir / f"{self.name}.sqlite")
        self._openings: dict[tuple[str, int], dict[int, str]] = {}  # (sha256, chars) -> page_openings

    @property
    def shard_metadata(self) -> dict:
        return {"rag_app": "chunks", "embedding": self.embedding}

    @property
    def parts(self) -> list:
        """The Chroma collections holding the vectors: this one, or one per shard."""
        if self._parts is None:
            if self.shards == 1:
                self._parts = [self._chroma]
            else:
                self._parts = [
                    open_shard_collection(self._shard_client(i), self.name, self.shard_metadata)
                    for i in range(self.shards)
                ]
        return self._parts

    def close(self) -> None:
        self.lexical.close()

    # ----- writing ---------------------------------------------------------------------------

    def add(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        metadata: dict,
        terms: PackedTerms | Sequence[dict] | None = None,
    ) -> None:
        """Keep the chunks' texts and terms, then write their vectors in batches under Chroma's maximum
        (``metadata``: the file's ``sha256``, ``file`` and ``pages``; ``terms``: each chunk's term
        counts, when already extracted)."""
        sha = metadata["sha256"]
        self._forget_openings(sha)
        if chunks:
            self.lexical.add(sha, chunks, metadata["file"], int(metadata["pages"]), terms)
        ids = [c.id for c in chunks]
        if self.texts_in_chroma:
            stored = [StoredChunk(c.id, c.text, c.page, c.offset, c.index, sha, metadata["file"], int(metadata["pages"])) for c in chunks]  # fmt: skip
            self._add_vectors(ids, vectors, [chroma_metadata(c) for c in stored], [c.text for c in chunks])
        else:
            self._add_vectors(ids, vectors, [{"sha256": sha}] * len(chunks))

    def _add_vectors(self, ids: list[str], vectors: np.ndarray, metadatas: list[dict], documents=None) -> None:
        """Each shard's vectors in batches under Chroma's maximum; to its writer process when it has one."""
        batch = min(MAX_WRITE_BATCH, self._client.get_max_batch_size())
        rows = np.arange(len(ids))
        shard = np.fromiter((shard_of(i, self.shards) for i in ids), dtype=np.int64, count=len(ids))
        for part in range(self.shards):
            mine = rows[shard == part] if self.shards > 1 else rows
            writer = self._shard_writer(part) if self.shards > 1 else None
            for start in range(0, len(mine), batch):
                take = mine[start : start + batch]
                some_ids, some_meta = [ids[i] for i in take], [metadatas[i] for i in take]
                if writer is not None:
                    writer.add((self.name, self.shard_metadata), some_ids, vectors[take], some_meta)
                    continue
                extra = {"documents": [documents[i] for i in take]} if documents is not None else {}
                # not upsert: the store deleted this content's chunks first, and add is cheaper
                self.parts[part].add(ids=some_ids, embeddings=vectors[take], metadatas=some_meta, **extra)

    def flush(self) -> None:
        """Wait for the shards' writer processes to run what they were sent; raise their first error."""
        if self.shards > 1:
            errors = []
            for part in range(self.shards):
                writer = self._shard_writer(part)
                try:
                    if writer is not None:
                        writer.flush()
                except Exception as exc:  # noqa: BLE001 - every shard is waited for, the first error raised
                    errors.append(exc)
            if errors:
                raise errors[0]

    def delete(self, sha256: str) -> None:
        """Remove every chunk of one file content."""
        self._forget_openings(sha256)
        for part in range(self.shards):
            writer = self._shard_writer(part) if self.shards > 1 else None
            if writer is not None:
                writer.delete((self.name, self.shard_metadata), sha256)
            else:
                self.parts[part].delete(where={"sha256": sha256})
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
            return sum(part.count() for part in self.parts)
        return sum(len(part.get(where={"sha256": sha256}, include=[])["ids"]) for part in self.parts)

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
        by_shard: dict[int, list[str]] = {}
        for chunk_id in ids:
            by_shard.setdefault(shard_of(chunk_id, self.shards), []).append(chunk_id)
        vectors = {}
        for part, some in by_shard.items():
            found = self.parts[part].get(ids=some, include=["embeddings"])
            vectors.update({i: np.asarray(e, dtype=np.float32) for i, e in zip(found["ids"], found["embeddings"], strict=True)})  # fmt: skip
        return vectors

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
        if self.shards == 1:
            return _query(self._chroma, query, k, where, include)
        # Every shard's k nearest, merged: the k nearest of all (each shard holds a slice of every file).
        found = [f for f in (_query(part, query, k, where, include) for part in self.parts) if f is not None]
        merged = sorted((d, i) for f in found for i, d in zip(f["ids"][0], f["distances"][0], strict=True))[:k]
        return {"ids": [[i for _, i in merged]], "distances": [[d for d, _ in merged]]}

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


def _query(collection, query: list, k: int, where: dict | None, include: list[str]):
    try:  # not counting first: at 100,000 chunks Chroma's count() takes 10 ms, the query 3
        return collection.query(query_embeddings=query, n_results=k, where=where, include=include)
    except Exception:  # noqa: BLE001 - Chroma before 1.x refused to query an empty collection
        if collection.count() == 0:
            return None
        raise


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
