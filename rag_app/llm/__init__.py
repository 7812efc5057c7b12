"""Answer models behind one interface: local transformers, a GGUF file on llama.cpp, an OpenAI-compatible
endpoint, scripted replies.

``load_chat_backend`` picks one from the settings (a plain ``match``, lazy
imports); a :class:`LoadedModel` without a backend means extractive mode: answers
quote the best sentences.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from rag_app.llm.backend import ChatBackend, ModelInfo, ModelUnavailableError
from rag_app.llm.memory import InsufficientMemoryError
from rag_app.settings import Settings

log = logging.getLogger(__name__)
EXTRACTIVE_HOWTO = (
    "set RAG_LLM_MODEL to a local model directory or GGUF file (or a hub id), or RAG_LLM_ENDPOINT to an "
    "OpenAI-compatible server, to get written answers"
)

__all__ = [
    "ChatBackend", "ModelInfo", "ModelUnavailableError", "LoadedModel", "load_chat_backend", "EXTRACTIVE_HOWTO",
]  # fmt: skip


@dataclass(frozen=True)
class LoadedModel:
    """What loading the answer model gave: a backend, or none (extractive mode) and why."""

    backend: ChatBackend | None
    reason: str = ""  # why there is no backend

    @property
    def extractive(self) -> bool:
        return self.backend is None


def load_chat_backend(settings: Settings) -> LoadedModel:
    """The configured model, or none and why (extractive mode). Explicit backends raise on failure."""
    match settings.llm_backend:
        case "extractive":
            return LoadedModel(None, "extractive mode was chosen (RAG_LLM_BACKEND=extractive)")
        case "scripted":
            return LoadedModel(_scripted(settings))
        case "endpoint":
            return LoadedModel(_endpoint(settings))
        case "local":
            return LoadedModel(_local(settings))
        case "auto":
            return _auto(settings)
    raise ModelUnavailableError(f"unknown llm_backend {settings.llm_backend!r}")


def _auto(settings: Settings) -> LoadedModel:
    if settings.llm_endpoint:
        return LoadedModel(_endpoint(settings))
    try:
        return LoadedModel(_local(settings))
    except (ModelUnavailableError, InsufficientMemoryError) as exc:
        log.warning("no answer model: %s; answering in extractive mode", exc)
        return LoadedModel(None, f"no answer model could be loaded ({exc})")


def _local(settings: Settings) -> ChatBackend:
    from rag_app.llm.chat_models import LocalChatModel
    from rag_app.llm.gguf_file import find_gguf
    from rag_app.llm.local import load_local_model

    gguf = find_gguf(settings.llm_model)  # a .gguf file, or a folder holding one; raises for other files
    if gguf is not None:
        return _gguf(settings, gguf)

    local = load_local_model(
        settings.llm_model,
        settings.llm_quantization,
        settings.llm_device,
        str(settings.llm_adapter) if settings.llm_adapter else None,
        settings.llm_context_window,
        settings.llm_engine,
        settings.llm_batch_slots,
        settings.gemlite_autotune,
        settings.llm_trust_remote_code,
    )
    chat = LocalChatModel(local=local, max_tokens=settings.max_new_tokens)
    return ChatBackend(chat, local.info, local.count_tokens)


def _gguf(settings: Settings, path: Path) -> ChatBackend:
    from rag_app.llm.chat_models import LocalChatModel
    from rag_app.llm.gguf import load_gguf_model

    model = load_gguf_model(path, settings)
    chat = LocalChatModel(local=model, max_tokens=settings.max_new_tokens)
    return ChatBackend(chat, model.info, model.count_tokens, model.yes_no_scores)


def _endpoint(settings: Settings) -> ChatBackend:
    from rag_app.llm.endpoint import load_endpoint_backend

    if not settings.llm_endpoint:
        raise ModelUnavailableError("RAG_LLM_BACKEND=endpoint needs RAG_LLM_ENDPOINT, e.g. http://localhost:8000/v1")
    return load_endpoint_backend(
        settings.llm_endpoint,
        settings.llm_endpoint_model,
        settings.llm_api_key,
        settings.llm_context_window,
        settings.max_new_tokens,
    )


def _scripted(settings: Settings) -> ChatBackend:
    from rag_app.llm.chat_models import ScriptedChatModel, approximate_tokens

    if not settings.llm_script:
        raise ModelUnavailableError("RAG_LLM_BACKEND=scripted needs RAG_LLM_SCRIPT: a JSON list of replies")
    try:
        replies = json.loads(settings.llm_script.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"cannot read the reply script {settings.llm_script}: {exc}") from exc
    if not isinstance(replies, list) or not all(isinstance(r, str) for r in replies) or not replies:
        raise ModelUnavailableError(f"{settings.llm_script} must hold a non-empty JSON list of strings")
    window = settings.llm_context_window or 8192
    info = ModelInfo(f"scripted:{settings.llm_script.name}", "scripted", "none", "none", window)
    return ChatBackend(
        ScriptedChatModel(replies=replies), info, lambda ms: sum(approximate_tokens(str(m.content)) + 4 for m in ms)
    )
