"""The only writer of one shard folder of an embedded Chroma, in a process of its own.

A chunk collection of several shards (``RAG_CHROMA_SHARDS``) keeps its vectors in several Chroma
databases, one per folder under ``chroma/shards/``. Chroma's add inserts into one HNSW index on one
core and holds the GIL throughout, so a process writes one folder at a time: during a pipelined ingest
the store's writer process opens its sharded collections with a :class:`ShardWriterProcess` per shard
(:class:`rag_app.storage.vectors.ShardedVectors` owns them), and the shards grow at once, each on its
own core.

Calls are sent without waiting: they run in the order sent. :meth:`ShardWriterProcess.flush` waits until
every call sent so far has run and raises the first error among them (the calls after an error are
skipped, so nothing is written past a failure). The process ignores Ctrl-C, like the store's writer,
and leaves when its connection closes.

Started as ``python -m rag_app.storage.shard_process FD``: it imports chromadb alone, not torch.
"""

from __future__ import annotations

import logging
import signal
from multiprocessing.connection import Connection
from pathlib import Path

from rag_app.processes import ChildProcess, parent_connection, sendable

log = logging.getLogger(__name__)


class ShardWriterProcess(ChildProcess):
    """Adds and deletes of the collections in one shard folder, run by a child process in order."""

    def __init__(self, path: Path) -> None:
        # named by its number, not its folder: the message may reach a web client
        super().__init__("rag_app.storage.shard_process", f"the writer process of the Chroma shard {path.name}")
        self.path = path
        self.conn.send(str(path))

    def add(self, collection: tuple[str, dict], ids: list[str], vectors, metadatas: list[dict]) -> None:
        """Queue an add to ``collection`` (its name and the metadata it is made with)."""
        self._send(("add", collection, ids, vectors, metadatas))

    def delete(self, collection: tuple[str, dict], sha256: str) -> None:
        """Queue the removal of every vector of one file content."""
        self._send(("delete", collection, sha256))

    def flush(self) -> None:
        """Wait until every queued call has run; raise the first error among them."""
        self._send(("flush",))
        try:
            ok, value = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise self.stopped() from exc
        if not ok:
            raise value

    def _send(self, message: tuple) -> None:
        try:
            self.conn.send(message)
        except OSError as exc:
            raise self.stopped() from exc


def _serve(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the store's writer decides when to stop
    import chromadb  # noqa: F401 - loaded now, while the store's writer opens the store, not at the first add

    from rag_app.storage.chroma import open_shard_collection, persistent_client

    path = conn.recv()
    client, collections, error = None, {}, None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "flush":
            conn.send((True, None) if error is None else (False, sendable(error)))
            error = None
            continue
        if error is not None:
            continue  # nothing is written past a failure
        try:
            if client is None:
                client = persistent_client(Path(path))
            op, (name, metadata), *args = message
            if name not in collections:
                collections[name] = open_shard_collection(client, name, metadata)
            if op == "add":
                ids, vectors, metadatas = args
                collections[name].add(ids=ids, embeddings=vectors, metadatas=metadatas)
            else:
                collections[name].delete(where={"sha256": args[0]})
        except Exception as exc:  # noqa: BLE001 - reported at the next flush
            error = exc


if __name__ == "__main__":  # python -m rag_app.storage.shard_process FD
    _serve(parent_connection())
