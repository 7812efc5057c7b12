"""Exceptions the library raises; the CLI, API and UI turn them into messages."""

from __future__ import annotations


class RagError(Exception):
    """Base class: the message is written for the person using the app."""


class ConfigurationError(RagError):
    """A setting is missing, invalid or points at something unusable."""


class EmbeddingModelError(ConfigurationError):
    """The embedding model cannot be found or loaded."""


class StoreUnavailableError(RagError):
    """The vector store cannot be reached or opened."""


class ChildStoppedError(StoreUnavailableError):
    """A child process the store writes through (the store's writer, a shard's writer) stopped before it
    answered: ``what`` it was, ``reason`` ("killed by SIGKILL"), and the files whose write it had in hand."""

    def __init__(self, what: str, reason: str, in_hand: tuple[str, ...] = ()) -> None:
        super().__init__(what, reason, tuple(in_hand))  # args: how it is pickled back from a child
        self.what, self.reason, self.in_hand = what, reason, tuple(in_hand)

    def while_storing(self, names) -> ChildStoppedError:
        """The same stop, naming the files whose write was in hand (kept if it already names some)."""
        return self if self.in_hand or not names else ChildStoppedError(self.what, self.reason, tuple(names))

    def __str__(self) -> str:
        if not self.in_hand:
            return f"{self.what} stopped ({self.reason}): re-run the ingest; files already reported are stored"
        shown = ", ".join(self.in_hand[:10]) + (f" and {len(self.in_hand) - 10} more" if len(self.in_hand) > 10 else "")
        return (
            f"{self.what} stopped ({self.reason}) while storing {shown}: re-run the ingest, which stores what of "
            "them is missing (files already reported are stored)"
        )


class DamagedChunkTableError(StoreUnavailableError):
    """The SQLite file of chunk texts cannot be read (not a database, a malformed page). The store moves it
    aside and goes on without it; this error reaches no edge unless that fails too."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(name, detail)
        self.name, self.detail = name, detail

    def __str__(self) -> str:
        return f"the chunk table {self.name} is damaged ({self.detail})"


class TextsLostError(StoreUnavailableError):
    """Every document a search would read lost its chunk texts (the chunk table was lost or damaged); the
    message names them and the command that restores them."""


class StoreBusyError(RagError):
    """Another process is writing to the same embedded database."""


class DocumentNotFoundError(RagError):
    """No stored document has the given name."""


class CollectionNotFoundError(RagError):
    """No collection has the given name."""


class NoDocumentsError(CollectionNotFoundError):
    """A question was asked before any document was added to the collection."""


class InvalidRequestError(RagError):
    """A request is malformed: empty question, k out of range and the like."""
