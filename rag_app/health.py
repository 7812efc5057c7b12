"""What the status line, ``GET /api/health`` and the CLI say about the app: typed, one definition."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class ModelState(StrEnum):
    """Where the answer model is: the API, the page and the status line all read this one value."""

    NOT_LOADED = "not loaded"
    LOADING = "loading"
    READY = "ready"  # a model answers
    EXTRACTIVE = "extractive"  # no model: answers quote sentences
    FAILED = "failed"  # an explicitly configured model could not be loaded

    @property
    def settled(self) -> bool:
        """Loading is over, one way or the other."""
        return self not in (ModelState.NOT_LOADED, ModelState.LOADING)

    @property
    def mode(self) -> str:
        """generative, extractive or pending, as /api/health reports it."""
        if self is ModelState.READY:
            return "generative"
        return "extractive" if self is ModelState.EXTRACTIVE else "pending"


@dataclass(frozen=True)
class EmbeddingStatus:
    model: str
    device: str
    precision: str
    chinese: str = ""  # the second model that reads Chinese documents and questions (RAG_EMBEDDING_MODEL_ZH)


@dataclass(frozen=True)
class Health:
    """The app's state as the page and ``GET /api/health`` show it."""

    model_state: ModelState
    model: dict | None  # ModelInfo.to_dict() of the loaded model
    no_model_reason: str
    embedding: EmbeddingStatus
    collection: str
    collections: list[str] = field(default_factory=list)
    documents: int = 0
    store: str = ""
    problems: list[str] = field(default_factory=list)  # what is wrong with the store, and what to do

    @property
    def mode(self) -> str:
        return self.model_state.mode

    @property
    def status(self) -> str:
        """ "ok", or "degraded" when the store has a problem (``problems`` says which and what to do)."""
        return "degraded" if self.problems else "ok"

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(status=self.status, mode=self.mode, model_state=self.model_state.value)
        return data
