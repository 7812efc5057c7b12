"""Opening Chroma: an embedded database in a folder, and the collection holding one shard's vectors."""

from __future__ import annotations

from pathlib import Path

HNSW = {"hnsw": {"space": "cosine"}}  # how every chunk collection indexes its vectors


def persistent_client(path: Path):
    """An embedded Chroma database in ``path`` (made if missing), without telemetry."""
    import chromadb

    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chromadb.Settings(anonymized_telemetry=False, allow_reset=False))  # fmt: skip


def open_shard_collection(client, name: str, metadata: dict):
    """The collection holding one shard's vectors (the same name in every shard's database)."""
    return client.get_or_create_collection(name, embedding_function=None, configuration=HNSW, metadata=metadata)
