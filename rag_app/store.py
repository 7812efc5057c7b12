"""Chroma storage of chunks and of the documents they came from.

A logical collection (``--collection papers``) is two kinds of Chroma collection:

* ``papers.documents`` — a registry with one record per stored document name
  (sha256, pages, chunks, settings) and "pending" markers for writes in progress;
* ``papers.chunks.<model>`` — the chunks with their vectors, one per embedding
  model, so vectors of different models never share an index.

Chunks are keyed by the file's sha256: identical content under two names is
stored once. Works the same on an embedded ``PersistentClient`` and on a
``chroma run`` server through ``HttpClient``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag_app.errors import CollectionNotFoundError, StoreUnavailableError
from rag_app.lexical import LexicalIndex
from rag_app.records import Chunk, DocumentInfo, SearchHit
from rag_app.settings import Settings

log = logging.getLogger(__name__)

REGISTRY_SUFFIX = ".documents"
CHUNKS_INFIX = ".chunks."
MAX_WRITE_BATCH = 1000  # below Chroma's maximum batch size (5,461 on SQLite)
_DOC_PREFIX = "doc:"
_PENDING_PREFIX = "pending:"


def make_client(settings: Settings):
    """An embedded Chroma under the data directory, or a client of a Chroma server."""
    import chromadb

    options = chromadb.Settings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_host:
            client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=options)
            client.heartbeat()
            return client
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=options)
    except Exception as exc:  # noqa: BLE001 - connection and file errors alike
        where = (
            f"Chroma server at {settings.chroma_host}:{settings.chroma_port}"
            if settings.chroma_host
            else f"Chroma database in {settings.chroma_dir}"
        )
        raise StoreUnavailableError(f"cannot open the {where}: {exc}") from exc


def chunks_collection_name(collection: str, embedding_fingerprint: str) -> str:
    """Chroma name of the chunk collection of ``collection`` for one embedding model."""
    model = embedding_fingerprint.split("|")[0].rstrip("/").split("/")[-1]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", model)[:40].strip("-_") or "model"
    digest = hashlib.sha256(embedding_fingerprint.encode()).hexdigest()[:8]
    return f"{collection}{CHUNKS_INFIX}{slug}-{digest}"


@dataclass
class PendingWrite:
    """Marker of chunks being written; left behind only if a run was killed."""

    sha256: str
    embedding: str
    owner: str
    started_at: str


class DocumentStore:
    """Registry and chunks of one logical collection, for one embedding model."""

    def __init__(
        self, client, collection: str, embedding_fingerprint: str = "", lexical_dir: Path | None = None
    ) -> None:
        self.client = client
        self.collection = collection
        self.embedding = embedding_fingerprint
        self.lexical_dir = lexical_dir
        self._lexical: dict[str, LexicalIndex] = {}
        self._registry = client.get_or_create_collection(
            collection + REGISTRY_SUFFIX, embedding_function=None, metadata={"rag_app": "registry"}
        )
        self._chunks_cache: dict[str, object] = {}

    # ----- collections -------------------------------------------------------------

    @staticmethod
    def list_collections(client) -> list[str]:
        """Logical collections that exist in this database."""
        names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
        return sorted(n[: -len(REGISTRY_SUFFIX)] for n in names if n.endswith(REGISTRY_SUFFIX))

    @classmethod
    def open_existing(
        cls, client, collection: str, embedding_fingerprint: str = "", lexical_dir: Path | None = None
    ) -> DocumentStore:
        """Open a collection for reading; unknown names raise with the known ones listed."""
        known = cls.list_collections(client)
        if collection not in known:
            listing = ", ".join(known) if known else "none yet: ingest some files first"
            raise CollectionNotFoundError(f"no collection named {collection!r} (collections: {listing})")
        return cls(client, collection, embedding_fingerprint, lexical_dir)

    @property
    def lexical(self) -> LexicalIndex | None:
        """The BM25 index of the current model's chunks (None without a directory for it)."""
        return self.lexical_for(self.embedding)

    def lexical_for(self, embedding_fingerprint: str) -> LexicalIndex | None:
        if self.lexical_dir is None or not embedding_fingerprint:
            return None
        if embedding_fingerprint not in self._lexical:
            name = chunks_collection_name(self.collection, embedding_fingerprint)
            self._lexical[embedding_fingerprint] = LexicalIndex(self.lexical_dir / f"{name}.sqlite")
        return self._lexical[embedding_fingerprint]

    def sync_lexical(self, documents: list[DocumentInfo]) -> None:
        """Bring the BM25 index in step with the registry (after writes elsewhere, or an old index)."""
        if self.lexical is None:
            return
        wanted = {d.sha256 for d in documents if d.embedding == self.embedding}
        wanted -= {p.sha256 for p in self.pending_writes()}
        self.lexical.sync(wanted, self.chunk_texts)

    def chunk_texts(self, sha256: str) -> list[tuple[str, str]]:
        found = self.chunks().get(where={"sha256": sha256}, include=["documents"])
        return list(zip(found["ids"], found["documents"], strict=True))

    def chunks(self, embedding_fingerprint: str | None = None):
        """The chunk collection of an embedding model (the current one by default)."""
        fingerprint = embedding_fingerprint or self.embedding
        if not fingerprint:
            raise ValueError("this store was opened without an embedding model")
        name = chunks_collection_name(self.collection, fingerprint)
        if name not in self._chunks_cache:
            self._chunks_cache[name] = self.client.get_or_create_collection(
                name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"rag_app": "chunks", "embedding": fingerprint},
            )
        return self._chunks_cache[name]

    def drop(self) -> None:
        """Delete the registry and every chunk collection of this logical collection."""
        prefix = self.collection + CHUNKS_INFIX
        for col in self.client.list_collections():
            name = col if isinstance(col, str) else col.name
            if name.startswith(prefix) or name == self.collection + REGISTRY_SUFFIX:
                self.client.delete_collection(name)
        self._chunks_cache.clear()
        for index in self._lexical.values():
            index.close()
        self._lexical.clear()
        if self.lexical_dir is not None:
            for path in self.lexical_dir.glob(f"{prefix}*.sqlite*"):
                path.unlink()

    # ----- document registry -------------------------------------------------------

    def get_document(self, name: str) -> DocumentInfo | None:
        found = self._registry.get(ids=[_DOC_PREFIX + name], include=["metadatas"])
        return _document_from(found["metadatas"][0]) if found["ids"] else None

    def list_documents(self) -> list[DocumentInfo]:
        found = self._registry.get(where={"kind": "document"}, include=["metadatas"])
        return sorted((_document_from(m) for m in found["metadatas"]), key=lambda d: d.name.lower())

    def documents_with_sha(self, sha256: str) -> list[DocumentInfo]:
        found = self._registry.get(where={"$and": [{"kind": "document"}, {"sha256": sha256}]}, include=["metadatas"])
        return [_document_from(m) for m in found["metadatas"]]

    def put_document(self, info: DocumentInfo) -> None:
        """Register (or update) a document name: the commit point of an ingest."""
        meta = {"kind": "document", **info.to_dict()}
        self._registry.upsert(
            ids=[_DOC_PREFIX + info.name], embeddings=[[1.0]], metadatas=[meta], documents=[info.name]
        )

    def remove_document(self, name: str) -> None:
        self._registry.delete(ids=[_DOC_PREFIX + name])

    # ----- pending markers (crash safety) -----------------------------------------

    def mark_pending(self, pending: PendingWrite) -> None:
        meta = {"kind": "pending", **pending.__dict__}
        self._registry.upsert(
            ids=[self._pending_id(pending.sha256, pending.embedding)], embeddings=[[1.0]], metadatas=[meta]
        )

    def clear_pending(self, sha256: str, embedding: str | None = None) -> None:
        self._registry.delete(ids=[self._pending_id(sha256, embedding or self.embedding)])

    def pending_writes(self) -> list[PendingWrite]:
        found = self._registry.get(where={"kind": "pending"}, include=["metadatas"])
        fields = PendingWrite.__dataclass_fields__
        return [PendingWrite(**{k: m[k] for k in fields}) for m in found["metadatas"]]

    @staticmethod
    def _pending_id(sha256: str, embedding: str) -> str:
        return f"{_PENDING_PREFIX}{sha256}:{hashlib.sha256(embedding.encode()).hexdigest()[:8]}"

    # ----- chunks ----------------------------------------------------------------------

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray, metadata: dict) -> None:
        """Write chunks with their vectors in batches under Chroma's maximum."""
        collection = self.chunks()
        batch = min(MAX_WRITE_BATCH, self.client.get_max_batch_size())
        if self.lexical is not None and chunks:
            self.lexical.add(metadata["sha256"], [(c.id, c.text) for c in chunks])
        for start in range(0, len(chunks), batch):
            part = chunks[start : start + batch]
            collection.upsert(
                ids=[c.id for c in part],
                embeddings=vectors[start : start + batch],
                documents=[c.text for c in part],
                metadatas=[{**metadata, "page": c.page, "offset": c.offset, "chunk_index": c.index} for c in part],
            )

    def delete_chunks(self, sha256: str, embedding_fingerprint: str | None = None) -> None:
        """Remove every chunk of one file content from one model's chunk collection."""
        self.chunks(embedding_fingerprint).delete(where={"sha256": sha256})
        lexical = self.lexical_for(embedding_fingerprint or self.embedding)
        if lexical is not None:
            lexical.delete(sha256)

    def count_chunks(self, sha256: str | None = None) -> int:
        collection = self.chunks()
        if sha256 is None:
            return collection.count()
        return len(collection.get(where={"sha256": sha256}, include=[])["ids"])

    def get_hits(self, ids: Sequence[str], vector: Sequence[float]) -> dict[str, SearchHit]:
        """Chunks by id, scored by cosine similarity with ``vector`` (for hits found by BM25)."""
        if not ids:
            return {}
        found = self.chunks().get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
        query = np.asarray(vector, dtype=np.float32)
        hits = {}
        for chunk_id, text, meta, embedding in zip(
            found["ids"], found["documents"], found["metadatas"], found["embeddings"], strict=True
        ):
            hits[chunk_id] = _hit_from(chunk_id, text, meta, 1.0 - float(np.dot(query, np.asarray(embedding))))
        return hits

    def page_chunks(self, sha256: str, page: int) -> list[tuple[int, str]]:
        """(offset, text) of every chunk of one page, in page order."""
        found = self.chunks().get(
            where={"$and": [{"sha256": sha256}, {"page": page}]}, include=["documents", "metadatas"]
        )
        return sorted((int(m["offset"]), text) for m, text in zip(found["metadatas"], found["documents"], strict=True))

    def query(self, vector: Sequence[float], k: int, where: dict | None = None) -> list[SearchHit]:
        """Nearest chunks by cosine similarity (score = 1 - cosine distance)."""
        collection = self.chunks()
        if collection.count() == 0:
            return []
        found = collection.query(
            query_embeddings=[list(vector)],
            n_results=k,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        rows = zip(found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0], strict=False)
        return [_hit_from(chunk_id, text, meta, distance) for chunk_id, text, meta, distance in rows]


def _document_from(meta: dict) -> DocumentInfo:
    fields = DocumentInfo.__dataclass_fields__
    return DocumentInfo(**{k: meta[k] for k in fields if k in meta})


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
