"""What every strategy gets: the question, numbered sources, the model, prompts and a token tally."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from rag_app.answering.events import Source, StatusEvent, TokenEvent
from rag_app.errors import InvalidRequestError
from rag_app.llm.backend import ChatBackend
from rag_app.prompts import PromptSet
from rag_app.retrieval.documents import DocumentRoute

# Map-step outputs are extracts and short answers: they need fewer tokens than the final answer.
MAP_MAX_TOKENS = 256


@dataclass
class Tally:
    prompt: int = 0
    completion: int = 0

    def add(self, message) -> None:
        usage = getattr(message, "usage_metadata", None) or {}
        self.prompt += int(usage.get("input_tokens", 0))
        self.completion += int(usage.get("output_tokens", 0))


@dataclass
class StrategyContext:
    question: str
    sources: list[Source]
    backend: ChatBackend | None
    prompts: PromptSet
    max_new_tokens: int
    temperature: float
    tally: Tally = field(default_factory=Tally)
    embed: Callable[[Sequence[str]], object] | None = None  # extractive: texts -> normalised vectors
    reads_chinese: bool = False  # whether ``embed`` reads Chinese (the bundled English model does not)
    dropped: list[int] = field(default_factory=list)
    scores: dict[int, int] = field(default_factory=dict)
    route: DocumentRoute = field(default_factory=DocumentRoute)  # the documents the question names

    def messages(self, role: str, **values: str) -> list[BaseMessage]:
        return [
            SystemMessage(self.prompts.system),
            HumanMessage(self.prompts.render(role, question=self.question, **values)),
        ]

    def fits(self, messages: Sequence[BaseMessage], answer_tokens: int | None = None) -> bool:
        """Whether the prompt plus the answer budget fits the model's context window."""
        budget = self.backend.context_window - (answer_tokens or self.max_new_tokens)
        return self.backend.count_tokens(messages) <= budget

    def require_fit(self, messages: Sequence[BaseMessage], what: str) -> None:
        if not self.fits(messages):
            raise InvalidRequestError(
                f"{what} does not fit the model's context window of {self.backend.context_window} tokens "
                f"with {self.max_new_tokens} tokens left for the answer: shorten the question, lower "
                "max_new_tokens or raise RAG_LLM_CONTEXT_WINDOW"
            )

    def sampling(self, max_tokens: int | None = None) -> dict:
        return {"max_tokens": max_tokens or self.max_new_tokens, "temperature": self.temperature}

    def stream(self, messages: Sequence[BaseMessage]) -> Iterator[TokenEvent]:
        """Stream the final answer as token events, counting its tokens."""
        for chunk in self.backend.chat.stream(list(messages), **self.sampling()):
            if chunk.usage_metadata:
                self.tally.add(chunk)
            if chunk.content:
                yield TokenEvent(str(chunk.content))

    def invoke(self, messages: Sequence[BaseMessage], max_tokens: int | None = None) -> str:
        reply = self.backend.chat.invoke(list(messages), **self.sampling(max_tokens))
        self.tally.add(reply)
        return str(reply.content).strip()

    def batch(self, conversations: list[list[BaseMessage]], max_tokens: int | None = None) -> list[str]:
        """Several prompts at once: one batched generate call for a local model."""
        replies = self.backend.chat.batch(conversations, **self.sampling(max_tokens))
        for reply in replies:
            self.tally.add(reply)
        return [str(r.content).strip() for r in replies]


def status(message: str, zh: str = "") -> StatusEvent:
    return StatusEvent(message, zh=zh)
