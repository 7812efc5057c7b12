"""A collection's store in a process of its own, for the writes of a large ingest.

Chroma's add holds the GIL for as long as it runs (Rust code that never lets go of it). Stored from a
thread of the ingesting process, the chunks' vectors stalled the embedder beside them: on an H200 the
embedding stage took twice as long as alone. In a process of its own the store writes while the
ingesting process parses and embeds, each on its own cores.

The process owns one :class:`~rag_app.store.DocumentStore` and runs the calls it is sent, one at a
time, in order; a call's result or error comes back to the caller. Each write is atomic as it is in
the ingesting process (pending marker, chunks, registry commit). The process ignores Ctrl-C (the
terminal sends it to the whole process group): it finishes the write in hand, and leaves when the
ingesting process closes the connection or dies. The ingesting process's own Chroma client sees the
writes at its next :meth:`~rag_app.store.DocumentStore.refresh`, as it sees another process's.

Started as ``python -m rag_app.store_writer FD``, like the parser workers, so a script that calls
the library without an ``if __name__`` guard is not run again.
"""

from __future__ import annotations

import logging
import pickle
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection

from rag_app.errors import StoreUnavailableError
from rag_app.settings import Settings

log = logging.getLogger(__name__)

# The calls an ingest makes of its store; nothing else is sent.
CALLS = frozenset({"get_document", "documents_with_sha", "write", "release"})


class StoreProcess:
    """The calls of :data:`CALLS` on the store of ``collection``, run in a child process."""

    def __init__(self, settings: Settings, collection: str, embedding_fingerprint: str) -> None:
        parent, child = socket.socketpair()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "rag_app.store_writer", str(child.fileno())],
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # nothing it prints may reach the CLI's JSON
            stderr=subprocess.DEVNULL,
        )
        child.close()
        self._conn = Connection(parent.detach())
        self._conn.send((settings, collection, embedding_fingerprint))
        self._call("ready")

    def __getattr__(self, name: str):
        if name not in CALLS:
            raise AttributeError(name)
        return lambda *args: self._call(name, *args)

    def _call(self, name: str, *args):
        try:
            self._conn.send((name, args))
            ok, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            code = self._process.poll()
            raise StoreUnavailableError(
                f"the store's writer process stopped (exit code {code}): re-run the ingest; "
                "files already reported are stored"
            ) from exc
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Let the process finish the call in hand and leave."""
        try:
            self._conn.close()
        finally:
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                log.warning("the store's writer process did not stop within 60 s: stopping it")
                self._process.kill()
                self._process.wait()


def _serve(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the ingesting process decides when to stop
    from rag_app.store import Database

    settings, collection, fingerprint = conn.recv()
    try:
        store = Database(settings).store(collection, fingerprint, create=True)
    except Exception as exc:  # noqa: BLE001 - the answer to "ready" says why this process cannot write
        conn.recv()
        conn.send((False, _sendable(exc)))
        return
    while True:
        try:
            name, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (True, None if name == "ready" else getattr(store, name)(*args))
        except Exception as exc:  # noqa: BLE001 - every error goes back to the caller
            reply = (False, _sendable(exc))
        conn.send(reply)


def _sendable(exc: Exception) -> Exception:
    """The error itself when it survives pickling, else a StoreUnavailableError that says what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - a library's error class that does not pickle
        return StoreUnavailableError(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":  # python -m rag_app.store_writer FD
    _serve(Connection(int(sys.argv[1])))
