"""The one owner of persistence: documents, their chunks and vectors, the BM25 index, crash safety.

A logical collection (``--collection papers``) is kept as

* ``papers.documents`` — a Chroma registry with one record per stored document name
  (sha256, pages, chunks, settings), "pending" markers for writes in progress, and a
  generation number that every committed change increments;
* ``papers.chunks.<model>`` — the chunks' vectors, one Chroma collection per embedding model, and
  beside it a SQLite file with the same chunks' texts, places and BM25 terms
  (:class:`rag_app.storage.chunk_index.ChunkIndex`, one adapter for both).

Ingestion calls :meth:`DocumentStore.write` (atomic: marker, delete, add, register),
:meth:`~DocumentStore.register` and :meth:`~DocumentStore.release`; retrieval calls
:meth:`~DocumentStore.search_dense`, :meth:`~DocumentStore.search_lexical` and
:meth:`~DocumentStore.hits`. Neither builds a Chroma filter or parses a chunk id.

Embedded Chroma keeps each process's vector index in memory, so it does not see what
another process (the ingest CLI beside a running app) wrote. Every search and write first
calls :meth:`DocumentStore.refresh`: when the generation moved without this process
writing, the client is reopened from disk and the BM25 view re-synced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np

from rag_app.errors import CollectionNotFoundError, DamagedChunkTableError, StoreUnavailableError
from rag_app.records import Chunk, DocumentInfo, LostTexts, SearchHit, parse_chunk_id
from rag_app.settings import Settings
from rag_app.storage import exact
from rag_app.storage.chroma import HNSW, persistent_client
from rag_app.storage.chunk_index import (
    CHUNKS_INFIX,
    ChunkIndex,
    chunks_collection_name,
)
from rag_app.storage.chunk_table import ChunkTable, set_aside, set_aside_copies
from rag_app.storage.vectors import SHARDS_FOLDER, ChromaVectors, ShardedVectors
from rag_app.text.terms import PackedTerms

log = logging.getLogger(__name__)

__all__ = ["Database", "DocumentStore", "FileWrite", "PendingWrite", "chunks_collection_name", "make_client"]

REGISTRY_SUFFIX = ".documents"
_DOC_PREFIX = "doc:"
_PENDING_PREFIX = "pending:"
_GENERATION_ID = "meta:generation"
OWNER = f"{socket.gethostname()}:{os.getpid()}"
STALE_FOREIGN_MARKER_S = 24 * 3600
T = TypeVar("T")


def make_client(settings: Settings):
    """An embedded Chroma under the data directory, or a client of a Chroma server."""
    import chromadb

    options = chromadb.Settings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_host:
            client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=options)
            client.heartbeat()
            return client
        return persistent_client(settings.chroma_dir)
    except Exception as exc:  # noqa: BLE001 - connection and file errors alike
        where = (
            f"Chroma server at {settings.chroma_host}:{settings.chroma_port}"
            if settings.chroma_host
            else f"Chroma database in {settings.chroma_dir}"
        )
        raise StoreUnavailableError(f"cannot open the {where}: {exc}") from exc


class Database:
    """The Chroma client of one data directory or server, plus where BM25 indexes live.

    Remembers, per collection, the generation this process last saw, so a store can tell
    a commit of another process from its own.
    """

    def __init__(
        self, settings: Settings, new_shards: int | Callable[[], int] | None = None, shard_processes: bool = False
    ) -> None:
        """``new_shards``: the shards a chunk collection made now gets, or a function asked when one is made
        (the ingest plan decides it: :func:`rag_app.ingestion.plan.vector_shards`); None: RAG_CHROMA_SHARDS,
        or 1 when that is 0 (auto). ``shard_processes``: sharded collections are written by a process per
        shard (the store's writer process asks for it)."""
        self.settings = settings
        self.shard_processes = shard_processes
        self._new_shards = new_shards
        self._lock = threading.RLock()
        self._client = None
        self.epoch = 0  # incremented at each reopen: handles of an older epoch are stale
        self.seen: dict[str, int] = {}
        self.registry_cache: dict[str, tuple[int, list[dict]]] = {}  # collection -> (generation, document records)
        self.lexical_in_step: dict[str, tuple] = {}  # chunk index -> (generation, chunk table state) last found in step
        self._handles_epoch = -1
        self._registries: dict[str, object] = {}  # collection -> its registry's Chroma handle, this epoch
        self._chunk_indexes: dict[tuple[str, str], ChunkIndex] = {}  # (collection, embedding) -> its chunks, this epoch
        self._shard_clients: dict[int, object] = {}  # shard -> its Chroma database, this epoch

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                self._client = make_client(self.settings)
                self.seen = {name: _read_generation(self._client, name) for name in self.collections()}
            return self._client

    @property
    def embedded(self) -> bool:
        return not self.settings.chroma_host

    @property
    def lexical_dir(self) -> Path:
        """Where BM25 indexes live: beside the embedded database, or per Chroma server."""
        s = self.settings
        where = f"{s.chroma_host}_{s.chroma_port}" if s.chroma_host else "local"
        return s.data_dir / "lexical" / where

    @property
    def new_shards(self) -> int:
        """Shards of a chunk collection made now (see ``__init__``). A Chroma server keeps one collection."""
        if not self.embedded:
            return 1
        if callable(self._new_shards):
            return self._new_shards()
        return self._new_shards or self.settings.chroma_shards or 1

    def shard_dir(self, shard: int) -> Path:
        return self.settings.chroma_dir / SHARDS_FOLDER / str(shard)

    def shard_client(self, shard: int):
        """The embedded Chroma database of one shard, opened once per epoch."""
        with self._lock:
            if shard not in self._shard_clients:
                self._shard_clients[shard] = persistent_client(self.shard_dir(shard))
            return self._shard_clients[shard]

    def shard_clients_on_disk(self) -> list:
        """The databases of every shard folder there is (to drop a collection from all of them)."""
        root = self.settings.chroma_dir / SHARDS_FOLDER
        found = sorted(int(p.name) for p in root.glob("*") if p.is_dir() and p.name.isdigit()) if root.is_dir() else []
        return [self.shard_client(i) for i in found]

    def collections(self) -> list[str]:
        """Logical collections that exist in this database."""
        names = [c if isinstance(c, str) else c.name for c in self.client.list_collections()]
        return sorted(n[: -len(REGISTRY_SUFFIX)] for n in names if n.endswith(REGISTRY_SUFFIX))

    def reopen(self) -> None:
        """Load the database from disk again (another process changed it)."""
        with self._lock:
            if self._client is not None and self.embedded:
                from chromadb.api.client import SharedSystemClient

                for client in [self._client, *self._shard_clients.values()]:
                    identifier = getattr(client, "_identifier", None)
                    SharedSystemClient._identifier_to_system.pop(identifier, None)  # the next client loads from disk
                    SharedSystemClient._identifier_to_refcount.pop(identifier, None)
            self._client = None
            self._shard_clients = {}
            self.epoch += 1
            log.info("reopened the Chroma database: another process changed it")

    def invalidate(self) -> None:
        """Make every store of this process fetch its collection handles again."""
        with self._lock:
            self.epoch += 1

    def registry(self, collection: str):
        """The registry collection of ``collection`` (made if missing), fetched once per epoch."""
        with self._lock:
            self._current_handles()
            if collection not in self._registries:
                self._registries[collection] = self.client.get_or_create_collection(
                    collection + REGISTRY_SUFFIX, embedding_function=None, metadata={"rag_app": "registry"}
                )
            return self._registries[collection]

    def chunk_index(self, collection: str, embedding_fingerprint: str) -> ChunkIndex:
        """Vectors + chunk table of ``collection`` for one embedding model, opened once per epoch.

        Shared by the stores of this process: a store is made per request, and opening both took
        ~3 ms of every question.
        """
        with self._lock:
            self._current_handles()
            key = (collection, embedding_fingerprint)
            if key not in self._chunk_indexes:
                self._chunk_indexes[key] = self._open_chunk_index(collection, embedding_fingerprint)
            return self._chunk_indexes[key]

    def _open_chunk_index(self, collection: str, embedding: str) -> ChunkIndex:
        """The chunk collection's Chroma collection (made, recording its shard count, if missing), its
        vectors there or in its shards, and its chunk table."""
        name = chunks_collection_name(collection, embedding)
        try:
            main = self.client.get_collection(name, embedding_function=None)
        except Exception:  # noqa: BLE001 - not made yet (Chroma's error class moved between versions)
            metadata = {"rag_app": "chunks", "embedding": embedding, "shards": self.new_shards}
            main = self.client.get_or_create_collection(name, embedding_function=None, configuration=HNSW, metadata=metadata)  # fmt: skip
        shards = int((main.metadata or {}).get("shards", 1))
        batch = self.client.get_max_batch_size()
        if shards == 1:
            vectors = ChromaVectors(main, batch)
        elif not self.embedded:
            raise ValueError(f"{name} is spread over {shards} shards: only an embedded database holds them")
        else:
            metadata = {"rag_app": "chunks", "embedding": embedding}
            vectors = ShardedVectors(name, metadata, shards, self.shard_client, self.shard_dir, self.shard_processes, batch)  # fmt: skip
        table = _open_table(self.lexical_dir / f"{name}.sqlite")
        exact = self.settings.retrieval_exact_chunks
        return ChunkIndex(name, embedding, vectors, table, texts_in_chroma=not self.embedded, exact_chunks=exact)

    def replace_table(self, index: ChunkIndex, damaged: ChunkTable | None = None) -> None:
        """Give ``index`` the chunk table now at its path: after ``damaged`` (the table a read found damaged)
        was moved aside, or after its file was deleted or replaced under this process. A table another thread
        already replaced is left as it is, and only the file ``damaged`` opened is ever moved aside."""
        with self._lock:
            if damaged is not None and index.table is not damaged:
                return
            path = index.table.path
            if damaged is not None and _inode(path) == damaged.inode:
                set_aside(path)
            index.table = _open_table(path)
            self.lexical_in_step.pop(index.name, None)

    def close(self) -> None:
        """Close every chunk collection opened (their shard writer processes finish and leave)."""
        with self._lock:
            for index in self._chunk_indexes.values():
                index.close()
            self._chunk_indexes = {}

    def close_chunk_indexes(self, collection: str) -> None:
        """Close the BM25 files of a collection (it is being dropped); the next use opens them again."""
        with self._lock:
            for key in [key for key in self._chunk_indexes if key[0] == collection]:
                self._chunk_indexes.pop(key).close()

    def _current_handles(self) -> None:
        # Handles of an older epoch are left to the garbage collector, not closed: a search in another
        # thread may still be reading through them.
        if self._handles_epoch != self.epoch:
            for index in self._chunk_indexes.values():
                if getattr(index.vectors, "writers", None):  # processes this database started: never left running
                    index.vectors.close()
            self._registries, self._chunk_indexes, self.lexical_in_step = {}, {}, {}
            self._handles_epoch = self.epoch

    def store(self, collection: str, embedding_fingerprint: str = "", create: bool = False) -> DocumentStore:
        """The store of a collection; ``create`` makes it if it does not exist."""
        with self._lock:
            self._current_handles()
            opened = collection in self._registries  # it existed at this epoch, and a registry is never removed
        if not create and not opened and collection not in self.collections():
            known = self.collections()
            listing = ", ".join(known) if known else "none yet: ingest some files first"
            raise CollectionNotFoundError(f"no collection named {collection!r} (collections: {listing})")
        return DocumentStore(self, collection, embedding_fingerprint)


@dataclass
class FileWrite:
    """One file content to store: its names, chunks, their vectors, the file's metadata, and each
    chunk's BM25 term counts when already extracted."""

    documents: Sequence[DocumentInfo]
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    metadata: dict
    terms: PackedTerms | Sequence[dict[str, int]] | None = None


@dataclass
class PendingWrite:
    """Marker of chunks being written; left behind only if a run was killed."""

    sha256: str
    embedding: str
    owner: str
    started_at: str


class DocumentStore:
    """Registry and chunks of one logical collection, for one embedding model (may be none: listing only)."""

    def __init__(self, database: Database, collection: str, embedding_fingerprint: str = "") -> None:
        self.db = database
        self.collection = collection
        self.embedding = embedding_fingerprint
        self._handles()

    # ----- handles and freshness -----------------------------------------------------------

    def _handles(self):
        """The registry collection of the database's current client (re-fetched after a reopen)."""
        return self.db.registry(self.collection)

    def index(self, embedding_fingerprint: str | None = None) -> ChunkIndex:
        """Chroma chunks + BM25 index of an embedding model (the store's own by default)."""
        fingerprint = embedding_fingerprint or self.embedding
        if not fingerprint:
            raise ValueError("this store was opened without an embedding model")
        return self.db.chunk_index(self.collection, fingerprint)

    def _texts(self, read: Callable[[ChunkIndex], T], embedding: str | None = None) -> T:
        """``read(index)`` of the chunk index, whose chunk table is the one at its path. A table found damaged
        (not a database, a malformed page) is moved aside, never read again, and the read done once more on
        an empty table: its documents' texts are then lost, which :meth:`lost_texts` names."""
        index = self.index(embedding)
        if _inode(index.table.path) != index.table.inode:  # deleted or replaced under this process
            self.db.replace_table(index)
        table = index.table
        try:
            return read(index)
        except DamagedChunkTableError as exc:
            log.warning("%s: moving it aside", exc)
            self.db.replace_table(index, table)
            return read(index)

    @property
    def generation(self) -> int:
        return _generation_of(self._handles())

    def refresh(self) -> bool:
        """See the other processes' commits: True when the database had to be reopened."""
        try:
            generation = self.generation
        except Exception:  # noqa: BLE001 - the collection was dropped and re-made by another process
            generation = None
        seen = self.db.seen.get(self.collection)
        stale = generation is None or (seen is not None and generation != seen)
        if stale:
            self.db.reopen()
            generation = self.generation
        self.db.seen[self.collection] = generation
        if stale and self.embedding:
            self.sync_lexical()
        return stale

    def _commit(self, ids: list[str], metadatas: list[dict], documents: list[str], generation: int = 0) -> None:
        """Upsert registry records together with the next generation number: one atomic write."""
        generation = generation or self.generation + 1
        registry = self._handles()
        registry.upsert(
            ids=[*ids, _GENERATION_ID],
            embeddings=[[1.0]] * (len(ids) + 1),
            metadatas=[*metadatas, {"kind": "meta", "generation": generation}],
            documents=[*documents, ""],
        )
        self.db.seen[self.collection] = generation

    def _bump(self) -> None:
        self._commit([], [], [])

    # ----- documents -----------------------------------------------------------------------

    def get_document(self, name: str) -> DocumentInfo | None:
        found = self._handles().get(ids=[_DOC_PREFIX + name], include=["metadatas"])
        return _document_from(found["metadatas"][0]) if found["ids"] else None

    def list_documents(self) -> list[DocumentInfo]:
        """Every stored name, sorted; the registry is read again only when the generation moved (at 200
        documents Chroma takes ~20 ms to list them, ~1 ms to read the generation)."""
        generation = self.generation
        cached = self.db.registry_cache.get(self.collection)
        if cached is None or cached[0] != generation:
            found = self._handles().get(where={"kind": "document"}, include=["metadatas"])
            cached = self.db.registry_cache[self.collection] = (generation, found["metadatas"])
        return sorted((_document_from(m) for m in cached[1]), key=lambda d: d.name.lower())

    def documents_with_sha(self, sha256: str) -> list[DocumentInfo]:
        found = self._handles().get(where={"$and": [{"kind": "document"}, {"sha256": sha256}]}, include=["metadatas"])
        return [_document_from(m) for m in found["metadatas"]]

    def documents_with_shas(self, shas: Collection[str]) -> list[DocumentInfo]:
        """The registered documents of any of these file contents, read from the registry now."""
        where = {"$and": [{"kind": "document"}, {"sha256": {"$in": sorted(shas)}}]}
        return [_document_from(m) for m in self._handles().get(where=where, include=["metadatas"])["metadatas"]]

    def warm(self) -> None:
        """Read the chunk index's in-memory search structures now (see ChunkIndex.warm)."""
        self._texts(lambda index: index.warm())

    def count_chunks(self, sha256: str | None = None) -> int:
        return self.index().count(sha256)

    # ----- writes ---------------------------------------------------------------------------

    def write(
        self,
        documents: Sequence[DocumentInfo],
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        metadata: dict,
        terms: PackedTerms | Sequence[dict[str, int]] | None = None,
    ):
        """Store one file content's chunks and register its names, atomically (``terms``: each chunk's
        BM25 term counts when already extracted)."""
        self.write_many([FileWrite(documents, chunks, vectors, metadata, terms)])

    def write_many(self, writes: Sequence[FileWrite]) -> None:
        """Store several file contents' chunks and register their names, atomically.

        Pending markers bracket the write; chunks of the same contents from older settings or other
        embedding models go; the registry records (and the generation) are the commit, made once every
        shard and the chunk table hold the chunks. Several files at once let the shards' writer processes
        store them in parallel, and cost one registry write for all. A failure rolls every one of them
        back, in every shard and the chunk table; the markers go only when that rollback reached them all
        (a shard whose writer process died cannot be reached): what it left, and what a kill leaves, is
        for :meth:`recover`.
        """
        if not writes:
            return
        shas = [w.documents[0].sha256 for w in writes]
        index = self.index()  # opened before any marker: a collection that cannot be opened leaves none behind
        started = _now()
        self._mark_pending([PendingWrite(sha, self.embedding, OWNER, started) for sha in shas])
        try:
            for sha, w in zip(shas, writes, strict=True):
                index.delete(sha)  # leftovers of older settings
                index.add(w.chunks, w.vectors, w.metadata, *([w.terms] if w.terms is not None else []))
            index.flush()
            for sha in shas:
                for other in self.documents_with_sha(sha):
                    if other.embedding != self.embedding:
                        self.index(other.embedding).delete(sha)
                        self.index(other.embedding).flush()
            # stamped no earlier than the markers: recover() knows this write's names by it, and the
            # caller dated them before the write began (a second or more before, on a slow first open)
            documents = {d.name: d for w in writes for d in w.documents}.values()
            self._register([dataclasses.replace(d, ingested_at=max(d.ingested_at, started)) for d in documents])
        except BaseException:
            if _rolled_back(index, shas):
                self._clear_pending(shas, self.embedding)
            else:
                log.warning("the write of %d file(s) could not be rolled back everywhere: left for recovery", len(shas))
            raise
        self._clear_pending(shas, self.embedding)

    def register(self, document: DocumentInfo) -> None:
        """Store a name for content whose chunks are already stored (the same bytes under another name)."""
        self._register([document])

    def _register(self, documents: Sequence[DocumentInfo]) -> None:
        self._commit(
            [_DOC_PREFIX + d.name for d in documents],
            [{"kind": "document", **d.to_dict()} for d in documents],
            [d.name for d in documents],
        )

    def release(self, document: DocumentInfo) -> None:
        """Drop the chunks a name's previous content had, unless another name still uses them."""
        users = [d for d in self.documents_with_sha(document.sha256) if d.name != document.name]
        if not any(d.embedding == document.embedding for d in users):
            index = self.index(document.embedding)
            index.delete(document.sha256)
            exact.forget_reader_pages(index.table.path, document.sha256)

    def delete_document(self, name: str) -> DocumentInfo | None:
        """Remove a name; its chunks go when no other name shares the content. None if unknown."""
        document = self.get_document(name)
        if document is None:
            return None
        self._handles().delete(ids=[_DOC_PREFIX + name])
        self.release(document)
        self._bump()
        return document

    def drop(self) -> int:
        """Delete every document, chunk and BM25 index of this collection, leaving it empty; returns
        how many documents it held."""
        count, generation = len(self.list_documents()), self.generation
        self.db.close_chunk_indexes(self.collection)
        prefix = self.collection + CHUNKS_INFIX
        for client in [self.db.client, *(self.db.shard_clients_on_disk() if self.db.embedded else [])]:
            for col in client.list_collections():
                name = col if isinstance(col, str) else col.name
                if name.startswith(prefix) or name == self.collection + REGISTRY_SUFFIX:
                    client.delete_collection(name)
        for path in self.db.lexical_dir.glob(f"{prefix}*.sqlite*"):
            path.unlink()
        for folder in self.db.lexical_dir.glob(f"{prefix}*.vectors"):  # the vectors kept for exact search
            shutil.rmtree(folder, ignore_errors=True)
        self.db.invalidate()  # other stores of this process re-fetch their (now deleted) handles
        self._commit([], [], [], generation + 1)  # a new number, so other processes notice
        return count

    # ----- crash safety ------------------------------------------------------------------------

    def _mark_pending(self, pending: Sequence[PendingWrite]) -> None:
        self._handles().upsert(
            ids=[_pending_id(p.sha256, p.embedding) for p in pending],
            embeddings=[[1.0]] * len(pending),
            metadatas=[{"kind": "pending", **p.__dict__} for p in pending],
        )

    def _clear_pending(self, shas: Sequence[str], embedding: str) -> None:
        self._handles().delete(ids=[_pending_id(sha, embedding) for sha in shas])

    def pending_writes(self) -> list[PendingWrite]:
        found = self._handles().get(where={"kind": "pending"}, include=["metadatas"])
        fields = PendingWrite.__dataclass_fields__
        return [PendingWrite(**{k: m[k] for k in fields}) for m in found["metadatas"]]

    def recover(self) -> list[str]:
        """Remove what interrupted writes left: the chunks of writes whose process died (their markers say
        which), and chunks no registered document owns and no write in progress brackets, in every shard and
        in the chunk table, whoever left them. Returns the names that must be re-ingested."""
        lost: list[str] = []
        for pending in self.pending_writes():
            if _still_running(pending):
                continue
            if self._committed(pending):  # killed after the commit, before the marker went: keep it
                self._clear_pending([pending.sha256], pending.embedding)
                continue
            self.index(pending.embedding).delete(pending.sha256)
            names = [d.name for d in self.documents_with_sha(pending.sha256) if d.embedding == pending.embedding]
            if names:
                self._handles().delete(ids=[_DOC_PREFIX + n for n in names])
                lost += names
            self._clear_pending([pending.sha256], pending.embedding)
            self._bump()
            log.warning("removed the partial chunks of an interrupted ingest (sha256 %s)", pending.sha256[:12])
        if lost:
            log.warning("re-ingest these documents, their write was interrupted: %s", ", ".join(lost))
        if self.embedding:
            self._remove_orphans()
        return lost

    def check_texts(self) -> None:
        """Read every page of the chunk table (``PRAGMA quick_check``, about a second per 200 MB): a damaged
        one is moved aside before a write would use it (an ingest checks once, before it writes)."""
        self._texts(lambda index: index.table.check())

    def _remove_orphans(self) -> None:
        """Remove the vectors (from every shard) and chunk texts of file contents that no registered document
        owns and no write in progress brackets.

        Read in the order :meth:`sync_lexical` reads: what the vectors hold first, then the markers, then the
        registry. A write marks its contents before it adds a chunk and registers them before it unmarks
        them, so a content found in the first read that is in neither later read is no write's: nothing
        another process is writing is ever removed.
        """
        index = self.index()
        known = {d.sha256 for d in self.list_documents() if d.embedding == self.embedding}
        found = index.vectors.shas_except(known | {p.sha256 for p in self.pending_writes()})
        pending = {p.sha256 for p in self.pending_writes()}
        owned = {d.sha256 for d in self.documents_with_shas(found)} if found else set()
        orphans = found - pending - owned
        for sha in orphans:
            index.delete(sha)
        index.flush()
        if orphans:
            log.warning(
                "removed the chunks of %d file content(s) no document owns (an interrupted write)", len(orphans)
            )
        self.sync_lexical(force=True)  # the chunk table's own orphans

    def _committed(self, pending: PendingWrite) -> bool:
        """Whether the write a marker brackets reached its commit: names registered after the marker was
        set, with every chunk they count stored, vectors and texts."""
        index = self.index(pending.embedding)
        documents = [d for d in self.documents_with_sha(pending.sha256) if d.embedding == pending.embedding]
        return (
            bool(documents)
            and self._texts(lambda index: index.table.has(pending.sha256), pending.embedding)
            and all(d.ingested_at >= pending.started_at and d.chunks == index.count(pending.sha256) for d in documents)
        )

    # ----- search ------------------------------------------------------------------------------

    def searchable(self, documents: Sequence[DocumentInfo]) -> set[str]:
        """File contents of ``documents`` that are complete and embedded with this store's model."""
        pending = {p.sha256 for p in self.pending_writes()}
        return {d.sha256 for d in documents if d.embedding == self.embedding} - pending

    def sync_lexical(self, force: bool = False) -> None:
        """See :meth:`_sync_lexical`."""
        self._texts(lambda _: self._sync_lexical(force))

    def _sync_lexical(self, force: bool = False) -> None:
        """Bring the SQLite file of chunk texts and terms in step with the registry (after writes
        elsewhere, or a file of an older layout).

        Skipped while neither the generation this process saw nor the file moved since it was last
        found in step (unless ``force``): checking reads the pending markers, ~3 ms a question on a busy Chroma.

        What it holds is read first, then the pending markers, then the registry: a file content in
        the first read was marked pending before it (a write marks, writes, registers, unmarks), so it
        is either still pending, and kept, or already registered. Nothing another process is writing
        is ever removed.
        """
        index = self.index()
        key = index.name
        in_step = self.db.lexical_in_step.get(key) == self._lexical_state(index)
        if not force and self.collection in self.db.seen and in_step:
            return
        have = index.table.shas()
        pending = {p.sha256 for p in self.pending_writes()}
        wanted = {d.sha256 for d in self.list_documents() if d.embedding == self.embedding} - pending
        index.sync_table(wanted, have=have, keep=pending)
        self.db.lexical_in_step[key] = self._lexical_state(index)

    def has_texts(self, sha256: str) -> bool:
        """Whether the chunks of a file content, embedded with this store's model, have their texts."""
        self.sync_lexical()
        return self._texts(lambda index: index.table.has(sha256))

    def lost_texts(self, documents: Sequence[DocumentInfo] | None = None) -> LostTexts:
        """The registered documents (or those of ``documents``, none of them being written) whose chunk texts
        the chunk table lacks: its file was deleted, emptied, or damaged and moved aside. Beside an embedded
        Chroma it held the only copy; a Chroma server's copy fills it again first."""
        pending = {p.sha256 for p in self.pending_writes()} if documents is None else set()
        documents = self.list_documents() if documents is None else documents
        lost, aside = [], []
        for embedding in sorted({d.embedding for d in documents}):
            model = self if embedding == self.embedding else DocumentStore(self.db, self.collection, embedding)
            model.sync_lexical()  # a Chroma server's texts fill the table first; cheap when in step
            have = model._texts(lambda index: index.table.shas())
            gone = [d.name for d in documents if d.embedding == embedding and d.sha256 not in have | pending]
            lost += gone
            if gone:
                aside += [p.name for p in set_aside_copies(model.index().table.path)]
        return LostTexts(self.collection, tuple(sorted(lost)), tuple(aside))

    def _lexical_state(self, index: ChunkIndex) -> tuple:
        return self.db.seen.get(self.collection), index.table.state()

    def search_dense(self, vector: Sequence[float], k: int, shas: Collection[str] | None) -> list[SearchHit]:
        """The ``k`` chunks nearest to ``vector`` among the file contents ``shas`` (None: all)."""
        return self._texts(lambda index: index.query(vector, k, shas))

    def nearest_ids(self, vector: Sequence[float], k: int, shas: Collection[str] | None) -> list[str]:
        """Ids of the ``k`` chunks nearest to ``vector`` among the file contents ``shas`` (None: all), best first."""
        return self._texts(lambda index: index.nearest_ids(vector, k, shas))

    def search_lexical(
        self, query: str, k: int, shas: Collection[str] | None, term_weights: Mapping[str, float] | None = None
    ) -> list[str]:
        """Chunk ids of the ``k`` best BM25 matches for ``query`` among the file contents ``shas`` (None: all);
        a term in ``term_weights`` counts that much."""
        return self._texts(lambda index: index.search_terms(query, k, shas, term_weights))

    def page_scores(self, query: str, sha256: str, term_weights: Mapping[str, float] | None = None) -> dict[int, float]:
        """Page -> BM25 of each page of one file content as a whole, its pages the documents counted; a term in
        ``term_weights`` counts that much."""
        return self._texts(lambda index: index.page_scores(query, sha256, term_weights))

    def page_ranking(self, vector: Sequence[float], sha256: str) -> list[int]:
        """The pages of one file content by the cosine similarity of their page vectors (the mean of their chunks'
        vectors) with ``vector``, best first."""
        return self._texts(lambda index: index.page_vectors(sha256).ranked(vector))

    def hits(self, ids: Sequence[str], vector: Sequence[float]) -> dict[str, SearchHit]:
        """Chunks by id, scored by cosine similarity with ``vector``."""
        return self._texts(lambda index: index.hits(ids, vector))

    def cover_terms(self) -> dict[str, frozenset[str]]:
        """Each file content's cover terms: what its first page opens with (company, period, title)."""
        return self._texts(lambda index: index.cover_terms())

    def documents_with(self, terms) -> dict[str, set[str]]:
        """Term -> the file contents whose chunks hold it (index terms)."""
        return self.index().documents_with(terms)

    def pages_with(self, terms, at_most: int | None = None) -> dict[str, dict[str, int]]:
        """Term -> file content -> how many of its pages hold it (index terms; none held by more than ``at_most``)."""
        return self.index().pages_with(terms, at_most)

    def page_chunks(self, sha256: str, page: int) -> list[tuple[int, str]]:
        """(offset, text) of every chunk of one page, in page order."""
        return self._texts(lambda index: index.page_chunks(sha256, page))

    def page_openings(self, document: DocumentInfo, chars: int) -> dict[int, str]:
        """Page -> the first ``chars`` characters of its text, for every page of a document (kept in memory)."""
        return self._texts(lambda index: index.page_openings(document.sha256, chars), document.embedding)

    def document_records(self, document: DocumentInfo) -> tuple[list[Chunk], np.ndarray, dict]:
        """A document's chunks, vectors and file metadata, as :meth:`write` takes them (bench.scale copies them)."""
        return self._texts(lambda index: index.records(document.sha256), document.embedding)

    def document_chunks(self, document: DocumentInfo) -> list[tuple[int, int, str]]:
        """(page, offset, text) of every stored chunk of a document, in reading order (summaries read them all)."""
        rows = self._texts(lambda index: index.chunk_texts(document.sha256), document.embedding)
        keys = ((parse_chunk_id(chunk), text) for chunk, text in rows)
        return sorted((key.page, key.offset, text) for key, text in keys)


def _generation_of(registry) -> int:
    found = registry.get(ids=[_GENERATION_ID], include=["metadatas"])
    return int(found["metadatas"][0]["generation"]) if found["ids"] else 0


def _read_generation(client, collection: str) -> int:
    try:
        return _generation_of(client.get_collection(collection + REGISTRY_SUFFIX))
    except Exception:  # noqa: BLE001 - vanished between listing and reading
        return 0


def _pending_id(sha256: str, embedding: str) -> str:
    return f"{_PENDING_PREFIX}{sha256}:{hashlib.sha256(embedding.encode()).hexdigest()[:8]}"


def _document_from(meta: dict) -> DocumentInfo:
    fields = DocumentInfo.__dataclass_fields__
    return DocumentInfo(**{k: meta[k] for k in fields if k in meta})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _still_running(pending: PendingWrite) -> bool:
    host, _, pid = pending.owner.rpartition(":")
    if host != socket.gethostname():
        started = datetime.fromisoformat(pending.started_at)
        return (datetime.now(UTC) - started).total_seconds() < STALE_FOREIGN_MARKER_S
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rolled_back(index: ChunkIndex, shas: Sequence[str]) -> bool:
    """Remove a failed write's chunks from every shard and the chunk table, as far as each can be reached;
    whether all of it went."""
    complete = True
    for sha in shas:
        try:
            index.delete(sha)
        except Exception:  # noqa: BLE001 - every file and every shard is tried; the caller reports the rest
            complete = False
    try:
        index.flush()
    except Exception:  # noqa: BLE001 - a shard that cannot be reached: its part waits for recover()
        complete = False
    return complete


def _open_table(path: Path) -> ChunkTable:
    """The chunk table at ``path``; a file there that is damaged is moved aside and an empty table made."""
    try:
        return ChunkTable(path)
    except DamagedChunkTableError as exc:
        log.warning("%s: moving it aside", exc)
        set_aside(path)
        return ChunkTable(path)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None
