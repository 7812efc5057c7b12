"""Where a chunk collection's vectors live: one Chroma collection, or several shard databases.

:class:`VectorIndex` is what :class:`rag_app.storage.chunk_index.ChunkIndex` asks of them; two
implementations:

* :class:`ChromaVectors`: one Chroma collection (in the embedded database, or on a Chroma server).
* :class:`ShardedVectors`: the same vectors spread by chunk id over several embedded Chroma databases,
  one per folder under ``chroma/shards/``. Chroma's add inserts into one HNSW index on one core,
  holding the GIL; on a GPU machine that bounded ingestion. Searches ask every shard and merge. With
  ``processes`` it owns one writer process per shard (:mod:`rag_app.storage.shard_process`), so the
  shards grow at once, each on its own core; :meth:`VectorIndex.flush` waits for them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from rag_app.storage.chroma import open_shard_collection

MAX_WRITE_BATCH = 1000  # below Chroma's maximum batch size (5,461 on SQLite)
SHARDS_FOLDER = "shards"


class VectorIndex(Protocol):
    """The vectors of one chunk collection, keyed by chunk id, each tagged with its file's sha256."""

    shards: int

    def add(
        self, ids: list[str], vectors: np.ndarray, metadatas: list[dict], documents: list[str] | None = None
    ) -> None:
        """Add vectors (queued, where writer processes write them: see :meth:`flush`)."""

    def delete(self, sha256: str) -> None:
        """Remove every vector of one file content."""

    def flush(self) -> None:
        """Wait until every add and delete sent so far is written; raise the first error among them."""

    def count(self, sha256: str | None = None) -> int: ...

    def shas_except(self, known: Collection[str]) -> set[str]:
        """The file contents with vectors here other than ``known`` (what recovery looks for: chunks no
        registered document owns)."""

    def nearest(self, vector: np.ndarray, k: int, shas: Collection[str] | None) -> tuple[list[str], list[float]]:
        """Ids and cosine distances of the ``k`` nearest vectors, within the file contents ``shas`` (None: all)."""

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of ``ids`` (an id with none is absent)."""

    def stored_texts(self, sha256: str) -> list[tuple[str, str | None, dict]]:
        """(id, text, metadata) of one file content's chunks where Chroma holds their texts (a server, or
        an embedded collection of the layout before the chunk table); empty where it holds none."""

    def close(self) -> None: ...


def shard_of(chunk_id: str, shards: int) -> int:
    """The shard a chunk's vector lives in: by its id, so one file's chunks spread over every shard."""
    return zlib.crc32(chunk_id.encode()) % shards if shards > 1 else 0


def _where(shas: Collection[str] | None) -> dict | None:
    return {"sha256": {"$in": sorted(shas)}} if shas is not None else None


def _query(collection, vector: np.ndarray, k: int, shas: Collection[str] | None) -> tuple[list[str], list[float]]:
    try:  # not counting first: at 100,000 chunks Chroma's count() takes 10 ms, the query 3
        found = collection.query(query_embeddings=[vector], n_results=k, where=_where(shas), include=["distances"])
    except Exception:  # noqa: BLE001 - Chroma before 1.x refused to query an empty collection
        if collection.count() == 0:
            return [], []
        raise
    return list(found["ids"][0]), list(found["distances"][0])


def _vectors_of(collection, ids: Sequence[str]) -> dict[str, np.ndarray]:
    found = collection.get(ids=list(ids), include=["embeddings"])
    return {i: np.asarray(e, dtype=np.float32) for i, e in zip(found["ids"], found["embeddings"], strict=True)}


def _shas_except(collection, known: Collection[str], batch: int = 1000) -> set[str]:
    """File contents with vectors in ``collection`` other than ``known``: each query skips those found so far,
    so it costs one Chroma read per ``batch`` and one more, however many chunks each holds."""
    found: set[str] = set()
    while True:
        skip = sorted({*known, *found})
        where = {"sha256": {"$nin": skip}} if skip else None
        rows = collection.get(where=where, limit=batch, include=["metadatas"])["metadatas"]
        new = {m["sha256"] for m in rows if m and m.get("sha256")} - found
        if not new:
            return found
        found |= new


def _count(collection, sha256: str | None) -> int:
    if sha256 is None:
        return collection.count()
    return len(collection.get(where={"sha256": sha256}, include=[])["ids"])


class ChromaVectors:
    """One Chroma collection."""

    shards = 1

    def __init__(self, collection, max_batch: int) -> None:
        self.collection = collection
        self._batch = min(MAX_WRITE_BATCH, max_batch)

    @property
    def parts(self) -> list:
        """The Chroma collections holding the vectors: this one."""
        return [self.collection]

    def add(
        self, ids: list[str], vectors: np.ndarray, metadatas: list[dict], documents: list[str] | None = None
    ) -> None:
        for start in range(0, len(ids), self._batch):
            end = start + self._batch
            extra = {"documents": documents[start:end]} if documents is not None else {}
            # not upsert: the store deleted this content's chunks first, and add is cheaper
            self.collection.add(ids=ids[start:end], embeddings=vectors[start:end], metadatas=metadatas[start:end], **extra)  # fmt: skip

    def delete(self, sha256: str) -> None:
        self.collection.delete(where={"sha256": sha256})

    def flush(self) -> None:
        pass  # every write is done when add or delete returns

    def count(self, sha256: str | None = None) -> int:
        return _count(self.collection, sha256)

    def shas_except(self, known: Collection[str]) -> set[str]:
        return _shas_except(self.collection, known)

    def nearest(self, vector: np.ndarray, k: int, shas: Collection[str] | None) -> tuple[list[str], list[float]]:
        return _query(self.collection, vector, k, shas)

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        return _vectors_of(self.collection, ids) if ids else {}

    def stored_texts(self, sha256: str) -> list[tuple[str, str | None, dict]]:
        found = self.collection.get(where={"sha256": sha256}, include=["documents", "metadatas"])
        return list(zip(found["ids"], found["documents"], found["metadatas"], strict=True))

    def close(self) -> None:
        pass


class ShardedVectors:
    """The vectors spread over ``shards`` embedded Chroma databases (``client(i)``, in folder ``folder(i)``),
    written directly or, with ``processes``, by a writer process per shard that this object owns."""

    def __init__(
        self,
        name: str,
        metadata: dict,
        shards: int,
        client: Callable[[int], object],
        folder: Callable[[int], Path],
        processes: bool = False,
        max_batch: int = MAX_WRITE_BATCH,
    ) -> None:
        self.name, self.metadata, self.shards = name, metadata, shards
        self._client = client
        self._batch = min(MAX_WRITE_BATCH, max_batch)
        self._parts: list | None = None
        self.writers: list = []
        if processes:
            from rag_app.storage.shard_process import ShardWriterProcess

            self.writers = [ShardWriterProcess(folder(i)) for i in range(shards)]

    @property
    def parts(self) -> list:
        """Each shard's Chroma collection, opened at first use."""
        if self._parts is None:
            self._parts = [open_shard_collection(self._client(i), self.name, self.metadata) for i in range(self.shards)]
        return self._parts

    def add(
        self, ids: list[str], vectors: np.ndarray, metadatas: list[dict], documents: list[str] | None = None
    ) -> None:
        rows = np.arange(len(ids))
        shard = np.fromiter((shard_of(i, self.shards) for i in ids), dtype=np.int64, count=len(ids))
        for part in range(self.shards):
            mine = rows[shard == part]
            for start in range(0, len(mine), self._batch):
                take = mine[start : start + self._batch]
                some_ids, some_meta = [ids[i] for i in take], [metadatas[i] for i in take]
                if self.writers:
                    self.writers[part].add((self.name, self.metadata), some_ids, vectors[take], some_meta)
                else:
                    self.parts[part].add(ids=some_ids, embeddings=vectors[take], metadatas=some_meta)

    def delete(self, sha256: str) -> None:
        """Remove a file content's vectors from every shard: a shard that fails (its writer process died) does not
        keep the others from it; the first error is raised after."""
        _on_every_shard(
            lambda part: (
                self.writers[part].delete((self.name, self.metadata), sha256)
                if self.writers
                else self.parts[part].delete(where={"sha256": sha256})
            ),
            range(self.shards),
        )

    def flush(self) -> None:
        _on_every_shard(lambda writer: writer.flush(), self.writers)

    def count(self, sha256: str | None = None) -> int:
        return sum(_count(part, sha256) for part in self.parts)

    def shas_except(self, known: Collection[str]) -> set[str]:
        return set().union(*(_shas_except(part, known) for part in self.parts))

    def nearest(self, vector: np.ndarray, k: int, shas: Collection[str] | None) -> tuple[list[str], list[float]]:
        # Every shard's k nearest, merged: the k nearest of all (each shard holds a slice of every file).
        found = [_query(part, vector, k, shas) for part in self.parts]
        merged = sorted((d, i) for ids, distances in found for i, d in zip(ids, distances, strict=True))[:k]
        return [i for _, i in merged], [d for d, _ in merged]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        by_shard: dict[int, list[str]] = {}
        for chunk_id in ids:
            by_shard.setdefault(shard_of(chunk_id, self.shards), []).append(chunk_id)
        vectors: dict[str, np.ndarray] = {}
        for part, some in by_shard.items():
            vectors.update(_vectors_of(self.parts[part], some))
        return vectors

    def stored_texts(self, sha256: str) -> list[tuple[str, str | None, dict]]:
        return []  # shards hold vectors only: the texts are in the chunk table

    def close(self) -> None:
        from rag_app.processes import close_all

        close_all(self.writers)
        self.writers = []


def _on_every_shard(call: Callable, shards) -> None:
    """``call(shard)`` for every shard, whatever the others do; then the first error, if any."""
    errors = []
    for shard in shards:
        try:
            call(shard)
        except Exception as exc:  # noqa: BLE001 - every shard gets its call; the first error is raised
            errors.append(exc)
    if errors:
        raise errors[0]
