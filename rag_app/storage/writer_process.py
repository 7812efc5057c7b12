"""What an ingest asks of its store (:class:`StoreWriter`), and a collection's store in a process of its own.

Chroma's add holds the GIL for as long as it runs (Rust code that never lets go of it). Stored from a
thread of the ingesting process, the chunks' vectors stalled the embedder beside them: on an H200 the
embedding stage took twice as long as alone. In a process of its own the store writes while the
ingesting process parses and embeds, each on its own cores. A pipelined ingest
(:class:`rag_app.ingestion.plan.IngestPlan`) stores through :class:`StoreWriterProcess`; a simple one
through the :class:`~rag_app.storage.store.DocumentStore` itself. Both are a :class:`StoreWriter`.

The process owns one :class:`~rag_app.storage.store.DocumentStore` and runs the calls it is sent, one at
a time, in order; a call's result or error comes back to the caller. Each write is atomic as it is in
the ingesting process (pending marker, chunks, registry commit); a sharded collection is written by a
process per shard (:mod:`rag_app.storage.shard_process`), which this process owns. The process ignores
Ctrl-C (the terminal sends it to the whole process group): it finishes the write in hand, and leaves
when the ingesting process closes the connection or dies. The ingesting process's own Chroma client
sees the writes at its next :meth:`~rag_app.storage.store.DocumentStore.refresh`, as it sees another
process's.

Started as ``python -m rag_app.storage.writer_process FD`` (:mod:`rag_app.processes`).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Protocol

from rag_app.processes import ChildProcess, parent_connection, sendable
from rag_app.records import DocumentInfo
from rag_app.settings import Settings
from rag_app.storage.store import FileWrite

log = logging.getLogger(__name__)


class StoreWriter(Protocol):
    """The store calls an ingest makes: look up names and contents, write files atomically, release old content."""

    def get_document(self, name: str) -> DocumentInfo | None: ...

    def documents_with_sha(self, sha256: str) -> list[DocumentInfo]: ...

    def write_many(self, writes: Sequence[FileWrite]) -> None: ...

    def release(self, document: DocumentInfo) -> None: ...


class StoreWriterProcess(ChildProcess):
    """The :class:`StoreWriter` of ``collection``, run in a child process; ``shards``: the shard count a
    collection it makes gets (the ingest plan's)."""

    def __init__(self, settings: Settings, collection: str, embedding_fingerprint: str, shards: int) -> None:
        super().__init__("rag_app.storage.writer_process", "the store's writer process")
        self.conn.send((settings, collection, embedding_fingerprint, shards))
        self.shard_processes: int = self._call("ready")  # processes writing the collection's shards (0: none)

    def get_document(self, name: str) -> DocumentInfo | None:
        return self._call("get_document", name)

    def documents_with_sha(self, sha256: str) -> list[DocumentInfo]:
        return self._call("documents_with_sha", sha256)

    def write_many(self, writes: Sequence[FileWrite]) -> None:
        self._call("write_many", list(writes))

    def release(self, document: DocumentInfo) -> None:
        self._call("release", document)

    def _call(self, name: str, *args):
        try:
            self.conn.send((name, args))
            ok, value = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise self.stopped() from exc
        if not ok:
            raise value
        return value


def _serve(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the ingesting process decides when to stop
    from rag_app.storage.store import Database

    settings, collection, fingerprint, shards = conn.recv()
    database = Database(settings, new_shards=shards, shard_processes=True)
    try:
        try:
            store = database.store(collection, fingerprint, create=True)
            index = store.index()  # a sharded collection starts its shards' writer processes here
        except Exception as exc:  # noqa: BLE001 - the answer to "ready" says why this process cannot write
            conn.recv()
            conn.send((False, sendable(exc)))
            return
        calls = {
            "ready": lambda: len(getattr(index.vectors, "writers", [])),
            "get_document": store.get_document,
            "documents_with_sha": store.documents_with_sha,
            "write_many": store.write_many,
            "release": store.release,
        }
        while True:
            try:
                name, args = conn.recv()
            except (EOFError, OSError):
                return
            try:
                reply = (True, calls[name](*args))
            except Exception as exc:  # noqa: BLE001 - every error goes back to the caller
                reply = (False, sendable(exc))
            conn.send(reply)
    finally:
        database.close()


if __name__ == "__main__":  # python -m rag_app.storage.writer_process FD
    _serve(parent_connection())
