"""A collection's store in a process of its own, for the writes of a large ingest.

Chroma's add holds the GIL for as long as it runs (Rust code that never lets go of it). Stored from a
thread of the ingesting process, the chunks' vectors stalled the embedder beside them: on an H200 the
embedding stage took twice as long as alone. In a process of its own the store writes while the
ingesting process parses and embeds, each on its own cores.

The process owns one :class:`~rag_app.storage.store.DocumentStore` and runs the calls it is sent, one at a
time, in order; a call's result or error comes back to the caller. Each write is atomic as it is in
the ingesting process (pending marker, chunks, registry commit). The process ignores Ctrl-C (the
terminal sends it to the whole process group): it finishes the write in hand, and leaves when the
ingesting process closes the connection or dies. The ingesting process's own Chroma client sees the
writes at its next :meth:`~rag_app.storage.store.DocumentStore.refresh`, as it sees another process's.

Started as ``python -m rag_app.storage.writer_process FD``, like the parser workers, so a script that calls
the library without an ``if __name__`` guard is not run again.
"""

from __future__ import annotations

import logging
import signal
import sys
from multiprocessing.connection import Connection

from rag_app.processes import ChildProcess, close_all, sendable
from rag_app.settings import Settings
from rag_app.storage.shard_process import ShardProcess

log = logging.getLogger(__name__)

# The calls an ingest makes of its store; nothing else is sent.
CALLS = frozenset({"get_document", "documents_with_sha", "write", "write_many", "release"})


class StoreProcess(ChildProcess):
    """The calls of :data:`CALLS` on the store of ``collection``, run in a child process."""

    def __init__(self, settings: Settings, collection: str, embedding_fingerprint: str) -> None:
        from rag_app.storage.store import Database

        # the shard count a new collection gets, decided here (where the embedder's device is known)
        settings = settings.model_copy(update={"chroma_shards": Database(settings).new_shards})
        super().__init__("rag_app.storage.writer_process", "the store's writer process")
        self._conn.send((settings, collection, embedding_fingerprint))
        self.shard_writers: int = self._call("ready")  # processes writing the collection's shards (0: none)

    def __getattr__(self, name: str):
        if name not in CALLS:
            raise AttributeError(name)
        return lambda *args: self._call(name, *args)

    def _call(self, name: str, *args):
        try:
            self._conn.send((name, args))
            ok, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self.stopped() from exc
        if not ok:
            raise value
        return value


def _serve(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the ingesting process decides when to stop
    from rag_app.storage.store import Database

    settings, collection, fingerprint = conn.recv()
    database = Database(settings)
    # The shards' writers start first: each imports chromadb while this process does.
    count = database.new_shards
    shards = {i: ShardProcess(database.shard_dir(i)) for i in range(count)} if count > 1 else {}
    try:
        try:
            store = database.store(collection, fingerprint, create=True)
            store.index()
            _attach(database, store, shards)
        except Exception as exc:  # noqa: BLE001 - the answer to "ready" says why this process cannot write
            conn.recv()
            conn.send((False, sendable(exc)))
            return
        while True:
            try:
                name, args = conn.recv()
            except (EOFError, OSError):
                return
            try:
                reply = (True, len(shards) if name == "ready" else getattr(store, name)(*args))
            except Exception as exc:  # noqa: BLE001 - every error goes back to the caller
                reply = (False, sendable(exc))
            conn.send(reply)
    finally:
        close_all(list(shards.values()))


def _attach(database, store, shards: dict[int, ShardProcess]) -> None:
    """Let the shards' writer processes write the collection's shards (started for the shard count of a
    new collection: one made earlier keeps its own count)."""
    count = store.index().shards
    if count == 1:
        close_all(list(shards.values()))
        shards.clear()
        return
    for i in range(count):
        if i not in shards:
            shards[i] = ShardProcess(database.shard_dir(i))
    for i in [i for i in shards if i >= count]:
        shards.pop(i).close()
    database.shard_writers.update(shards)


if __name__ == "__main__":  # python -m rag_app.storage.writer_process FD
    _serve(Connection(int(sys.argv[1])))
