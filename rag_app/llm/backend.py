"""What the answer chains need from a model, whatever serves it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from rag_app.errors import ConfigurationError, RagError


class ModelUnavailableError(ConfigurationError):
    """No answer model could be loaded; the message says why and what to configure."""


class GenerationError(RagError):
    """The model refused or failed a request (e.g. a prompt longer than its context); the engine's reason."""


@dataclass
class ModelInfo:
    """Shown in ``--json``, ``/api/health`` and the UI status line."""

    name: str
    backend: str  # local, gguf, endpoint, scripted, extractive
    device: str = ""
    quantization: str = ""
    context_window: int = 0
    notes: list[str] = field(default_factory=list)
    memory: dict[str, float] = field(default_factory=dict)  # GiB: weights, kv_cache, ...
    load_seconds: float = 0.0
    engine: str = ""  # local models: "fast" or "transformers"; GGUF models: "llama.cpp"
    # the fast path's load-time check of its compiled decode step against the eager one:
    # {"verdict": "agreed" | "disagreed" | "not_compiled", "agreed", "max_abs_diff", "tolerance", "reason", ...}
    fast_path_check: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChatBackend:
    """A LangChain chat model plus the model's own token counting and window.

    ``chat.stream(messages, max_tokens=, temperature=)`` streams an answer;
    ``chat.batch([...])`` runs map steps, in one batched generate call for a local model.
    """

    chat: BaseChatModel
    info: ModelInfo
    count_tokens: Callable[[Sequence[BaseMessage]], int]
    # log P(yes) - log P(no) of the first answer token of each conversation (chat dicts); None where the backend
    # cannot give token probabilities (reranking pages with the answer model needs it)
    yes_no: Callable[[Sequence[Sequence[dict]]], list[float]] | None = None

    @property
    def context_window(self) -> int:
        return self.info.context_window
