"""An OpenAI-compatible server (vLLM, llama.cpp's server, Ollama) as the answer model.

The way to serve a model one machine's in-process model cannot: a 70B model,
or many users on several GPUs. Same strategies, streaming and token accounting
(the server reports usage); map steps run as concurrent requests.
"""

from __future__ import annotations

import json
import logging
import typing
import urllib.request
from collections.abc import Sequence

from rag_app.llm.backend import ChatBackend, ModelInfo, ModelUnavailableError
from rag_app.llm.chat_models import approximate_tokens

log = logging.getLogger(__name__)
DEFAULT_ENDPOINT_CONTEXT = 8192
MAP_CONCURRENCY = 8


def _compatible_chat_class():
    from langchain_openai import ChatOpenAI

    class CompatibleChatOpenAI(ChatOpenAI):
        """ChatOpenAI that sends ``max_tokens``: llama.cpp, Ollama and older vLLM ignore the newer
        ``max_completion_tokens`` and would generate until their own limit."""

        def _get_request_payload(self, input_, *, stop=None, **kwargs):
            payload = super()._get_request_payload(input_, stop=stop, **kwargs)
            if "max_completion_tokens" in payload:
                payload["max_tokens"] = payload.pop("max_completion_tokens")
            return payload

    return CompatibleChatOpenAI


def load_endpoint_backend(
    endpoint: str, model: str | None, api_key: str | None, context_window: int | None, max_tokens: int
) -> ChatBackend:
    try:
        chat_class = _compatible_chat_class()
    except ImportError as exc:
        raise ModelUnavailableError("RAG_LLM_ENDPOINT needs langchain-openai: pip install langchain-openai") from exc
    build_response_schemas()
    base = endpoint.rstrip("/")
    served = _served_models(base, api_key)
    name = model or (served[0]["id"] if served else None)
    if not name:
        raise ModelUnavailableError(f"{base}/models lists no model: set RAG_LLM_ENDPOINT_MODEL")
    window = context_window or _served_window(served, name) or DEFAULT_ENDPOINT_CONTEXT
    chat = chat_class(
        base_url=base,
        model=name,
        api_key=api_key or "not-needed",
        temperature=0,
        max_tokens=max_tokens,
        stream_usage=True,
        max_retries=1,
        timeout=300,
    )
    info = ModelInfo(name, "endpoint", base, "served", window, [f"OpenAI-compatible endpoint {base}"])
    return ChatBackend(chat, info, _count_messages)


def build_response_schemas() -> int:
    """Build the pydantic schemas of the OpenAI response types now, in one thread.

    openai defers building them to first use, and pydantic's deferred rebuild is not thread-safe:
    the first map step's concurrent requests could fail with "type object 'BaseModel' has no
    attribute '__pydantic_core_schema__'". Returns how many classes were built (about 40, ~0.1 s).
    """
    import openai
    import pydantic
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    built: set[type] = set()
    pending: list = [openai.BaseModel, ChatCompletion, ChatCompletionChunk]
    while pending:
        kind = pending.pop()
        if isinstance(kind, type) and issubclass(kind, pydantic.BaseModel):
            if kind not in built:
                built.add(kind)
                kind.model_rebuild()
                pending.extend(field.annotation for field in kind.model_fields.values())
        else:
            pending.extend(typing.get_args(kind))
    return len(built)


def _count_messages(messages: Sequence) -> int:
    # The server's tokenizer is not available here: a conservative estimate plus chat markup.
    return sum(approximate_tokens(str(m.content)) + 4 for m in messages) + 2


def _served_models(base: str, api_key: str | None) -> list[dict]:
    request = urllib.request.Request(f"{base}/models", headers={"Authorization": f"Bearer {api_key or 'not-needed'}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response).get("data", [])
    except Exception as exc:  # noqa: BLE001 - connection refused, HTTP errors, bad JSON
        raise ModelUnavailableError(f"cannot reach the model endpoint {base}: {exc}") from exc


def _served_window(served: list[dict], name: str) -> int | None:
    """vLLM reports ``max_model_len`` per model; others report nothing."""
    for entry in served:
        if entry.get("id") == name and entry.get("max_model_len"):
            return int(entry["max_model_len"])
    return None
