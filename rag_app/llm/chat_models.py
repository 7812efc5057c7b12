"""LangChain chat models for an in-process model (transformers or GGUF) and for scripted replies.

The chains call ``stream`` for the answer and ``batch`` for map steps. For a
transformers model ``batch`` is one left-padded ``generate`` call over all
prompts, not one call per prompt; a GGUF model decodes them together in its slots.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

from rag_app.llm.local import Usage

log = logging.getLogger(__name__)


def usage_metadata(usage: Usage) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
    )


def _sampling(kwargs: dict, default_max: int) -> tuple[int, float]:
    return int(kwargs.get("max_tokens") or default_max), float(kwargs.get("temperature") or 0.0)


@runtime_checkable
class InProcessModel(Protocol):
    """A model in this process: :class:`rag_app.llm.local.LocalModel` (transformers) or
    :class:`rag_app.llm.gguf.GgufModel` (llama.cpp)."""

    def count_tokens(self, messages: Sequence) -> int: ...

    def stream(self, messages: Sequence, max_new_tokens: int, temperature: float = 0.0) -> Iterator[str | Usage]:
        """Text pieces, then one Usage; closing the iterator stops generation."""
        ...

    def generate_batch(
        self, conversations: Sequence[Sequence], max_new_tokens: int, temperature: float = 0.0
    ) -> list[tuple[str, Usage]]: ...


class LocalChatModel(BaseChatModel):
    """A model in this process (:class:`InProcessModel`) as a LangChain chat model."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    local: InProcessModel
    max_tokens: int = 512

    @property
    def _llm_type(self) -> str:
        return "rag_app-local"

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        max_tokens, temperature = _sampling(kwargs, self.max_tokens)
        [(text, usage)] = self.local.generate_batch([messages], max_tokens, temperature)
        message = AIMessage(content=text, usage_metadata=usage_metadata(usage))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        max_tokens, temperature = _sampling(kwargs, self.max_tokens)
        pieces = self.local.stream(messages, max_tokens, temperature)
        try:
            for piece in pieces:
                if isinstance(piece, Usage):
                    chunk = AIMessageChunk(content="", usage_metadata=usage_metadata(piece))
                else:
                    chunk = AIMessageChunk(content=piece)
                    if run_manager:
                        run_manager.on_llm_new_token(piece)
                yield ChatGenerationChunk(message=chunk)
        finally:
            pieces.close()  # a consumer that stops early stops generation

    def batch(self, inputs: list, config=None, *, return_exceptions: bool = False, **kwargs: Any) -> list[AIMessage]:
        """All prompts decoded together: one batched generate call, or the GGUF engine's slots."""
        conversations = [self._convert_input(item).to_messages() for item in inputs]
        max_tokens, temperature = _sampling(kwargs, self.max_tokens)
        results = self.local.generate_batch(conversations, max_tokens, temperature)
        return [AIMessage(content=text, usage_metadata=usage_metadata(usage)) for text, usage in results]

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Sequence | None = None) -> int:
        return self.local.count_tokens(messages)


class ScriptedChatModel(BaseChatModel):
    """Replies queued in advance, every prompt recorded: tests the logic that depends on what a model says.

    Replies are used in order (cycling when the script runs out); ``batch`` keeps
    the order of its inputs. ``prompts`` holds each call's messages.
    """

    replies: list[str]
    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    batch_sizes: list[int] = Field(default_factory=list)
    _position: int = 0
    _lock: Any = None

    def model_post_init(self, __context: Any) -> None:
        self._lock = threading.Lock()

    @property
    def _llm_type(self) -> str:
        return "rag_app-scripted"

    def next_reply(self, messages: list[BaseMessage]) -> str:
        with self._lock:
            if not self.replies:
                raise RuntimeError("the scripted model has no replies")
            reply = self.replies[self._position % len(self.replies)]
            self._position += 1
            self.prompts.append(list(messages))
            return reply

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        reply = self.next_reply(messages)
        message = AIMessage(content=reply, usage_metadata=_word_usage(messages, reply))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        reply = self.next_reply(messages)
        for piece in re.findall(r"\s*\S+", reply):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=_word_usage(messages, reply)))

    def batch(self, inputs: list, config=None, *, return_exceptions: bool = False, **kwargs: Any) -> list[AIMessage]:
        self.batch_sizes.append(len(inputs))
        return [self.invoke(item, config, **kwargs) for item in inputs]


def approximate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per CJK character, one per ~3 other characters."""
    cjk = len(re.findall(r"[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]", text))
    return cjk + (len(text) - cjk + 2) // 3


def _word_usage(messages: list[BaseMessage], reply: str) -> UsageMetadata:
    prompt = sum(approximate_tokens(str(m.content)) for m in messages)
    return usage_metadata(Usage(prompt, approximate_tokens(reply)))
