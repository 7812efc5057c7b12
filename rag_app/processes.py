"""The one way rag_app starts a child process: ``python -m MODULE FD [ARGS...]``, at the other end of a socket.

Parser workers (:mod:`rag_app.ingestion.parsing`), the store's writer process
(:mod:`rag_app.storage.writer_process`) and the shards' writer processes
(:mod:`rag_app.storage.shard_process`) all start this way. Started as a module, not through
multiprocessing's spawn, so a script that calls the library without an ``if __name__`` guard is not
run again; the child's output never reaches the caller's (the CLI prints JSON).
"""

from __future__ import annotations

import logging
import pickle
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection

from rag_app.errors import ChildStoppedError, StoreUnavailableError

log = logging.getLogger(__name__)
EXIT_STATUS_WAIT_S = 5.0  # a child's socket closes as it dies; its exit status follows within moments


class ChildProcess:
    """``module`` run in a child process; ``what`` names it in messages ("the store's writer process")."""

    def __init__(self, module: str, what: str, args: Sequence[str] = ()) -> None:
        parent, child = socket.socketpair()
        self.what = what
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, str(child.fileno()), *args],
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # nothing it prints may reach the CLI's JSON
            stderr=subprocess.DEVNULL,
        )
        child.close()
        self.conn = Connection(parent.detach())

    def exit_reason(self) -> str:
        """How the process ended, in words: "killed by SIGKILL", "exit code 1", or "still running"."""
        return exit_reason(self.process.poll())

    def stopped(self) -> ChildStoppedError:
        """The error for a child that stopped before answering, with how it ended (its signal, its exit code):
        waited for briefly, since the connection closes a moment before the exit status is there to read."""
        self.wait(EXIT_STATUS_WAIT_S)
        return ChildStoppedError(self.what, self.exit_reason())

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> int | None:
        """The exit code once the process has ended within ``timeout`` seconds, else None."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """Stop the process now and close the connection."""
        if self.process.poll() is None:
            self.process.kill()
            self.wait(5)
        self.conn.close()

    def close(self) -> None:
        """Let the process finish what it was sent and leave (killed if it has not within 60 s)."""
        close_all([self])


def exit_reason(code: int | None) -> str:
    """A process's return code in words (negative codes are the signal that ended it)."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def close_all(children: Sequence[ChildProcess]) -> None:
    """Close every child's connection, then wait for them all: they leave at once, not one by one."""
    for child in children:
        try:
            child.conn.close()
        except OSError:
            pass
    for child in children:
        if child.wait(60) is None:
            log.warning("%s did not stop within 60 s: stopping it", child.what)
            child.process.kill()
            child.process.wait()


def parent_connection() -> Connection:
    """In the child: the connection to the parent (the file descriptor in ``argv[1]``)."""
    return Connection(int(sys.argv[1]))


def sendable(exc: Exception) -> Exception:
    """The error itself when it survives pickling, else a StoreUnavailableError that says what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - a library's error class that does not pickle
        return StoreUnavailableError(f"{type(exc).__name__}: {exc}")
