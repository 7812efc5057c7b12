"""Exceptions the library raises; the CLI, API and UI turn them into messages."""


class RagError(Exception):
    """Base class: the message is written for the person using the app."""


class ConfigurationError(RagError):
    """A setting is missing, invalid or points at something unusable."""


class EmbeddingModelError(ConfigurationError):
    """The embedding model cannot be found or loaded."""


class StoreUnavailableError(RagError):
    """The vector store cannot be reached or opened."""


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
