"""A module of rag_app run as a child process, ``python -m MODULE FD``, at the other end of a socket.

Started that way, like the parser workers, so a script that calls the library without an
``if __name__`` guard is not run again; its output never reaches the caller's (the CLI prints JSON).
"""

from __future__ import annotations

import logging
import pickle
import socket
import subprocess
import sys
from multiprocessing.connection import Connection

from rag_app.errors import StoreUnavailableError

log = logging.getLogger(__name__)


class ChildProcess:
    """``module`` run in a child process; ``what`` names it in messages ("the store's writer process")."""

    def __init__(self, module: str, what: str) -> None:
        parent, child = socket.socketpair()
        self.what = what
        self._process = subprocess.Popen(
            [sys.executable, "-m", module, str(child.fileno())],
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # nothing it prints may reach the CLI's JSON
            stderr=subprocess.DEVNULL,
        )
        child.close()
        self._conn = Connection(parent.detach())

    def stopped(self) -> StoreUnavailableError:
        """The error for a child that stopped before answering."""
        return StoreUnavailableError(
            f"{self.what} stopped (exit code {self._process.poll()}): re-run the ingest; files already reported are stored"
        )

    def close(self) -> None:
        """Let the process finish what it was sent and leave (killed if it has not within 60 s)."""
        close_all([self])


def close_all(children: list[ChildProcess]) -> None:
    """Close every child's connection, then wait for them all: they leave at once, not one by one."""
    for child in children:
        try:
            child._conn.close()
        except OSError:
            pass
    for child in children:
        try:
            child._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within 60 s: stopping it", child.what)
            child._process.kill()
            child._process.wait()


def sendable(exc: Exception) -> Exception:
    """The error itself when it survives pickling, else a StoreUnavailableError that says what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - a library's error class that does not pickle
        return StoreUnavailableError(f"{type(exc).__name__}: {exc}")
