"""What every strategy gets: the question, numbered sources, the model, prompts and a token tally."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from rag_app.answering.events import Source, StatusEvent, TokenEvent
from rag_app.answering.guard import OutputGuard
from rag_app.embedding.chinese import ChineseReader
from rag_app.errors import InvalidRequestError
from rag_app.llm.backend import ChatBackend
from rag_app.prompts import PromptSet
from rag_app.retrieval.documents import DocumentRoute
from rag_app.text.terms import read_question

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
    # the Chinese reader (RAG_EMBEDDING_MODEL_ZH; it reads both languages): compares the question with the candidates
    # ``embed`` cannot, a Chinese report's lines for an English question (strategies.extractive); None: none
    reader: ChineseReader | None = None
    dropped: list[int] = field(default_factory=list)
    scores: dict[int, int] = field(default_factory=dict)
    route: DocumentRoute = field(default_factory=DocumentRoute)  # the documents the question names
    warnings: list[str] = field(default_factory=list)  # for the answer's warnings (the output guard's)
    streamed_cut: int | None = None  # where the guard cut the streamed answer (its text may run a little past)
    quotes: list | None = None  # the extractive quotes chosen for the question (strategies.extractive.best_candidates)

    @property
    def read_question(self) -> str:
        """The question as the retrieval read it (``Retriever.read``: in simplified characters, "FY19" as FY2019, "1Q23"
        as Q1 2023): what the extractive answer scores passages and periods against; ``question`` stays as asked
        (prompts, the page)."""
        return read_question(self.question)

    def guard(self) -> OutputGuard:
        """A fresh check of model output against this language's prompts (rag_app.answering.guard)."""
        return OutputGuard(self.prompts)

    def note_cut(self, guard: OutputGuard) -> None:
        warning = guard.warning()
        if warning and warning not in self.warnings:
            self.warnings.append(warning)

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
        """Stream the final answer as token events, counting its tokens; generation stops where the output
        guard cuts (a copy of the prompt, a loop) and ``streamed_cut`` says where the answer ends."""
        guard = self.guard()
        chunks = self.backend.chat.stream(list(messages), **self.sampling())
        seen = {"usage": False, "pieces": 0}

        def texts() -> Iterator[str]:
            for chunk in chunks:
                if chunk.usage_metadata:
                    self.tally.add(chunk)
                    seen["usage"] = True
                if chunk.content:
                    seen["pieces"] += 1
                    yield str(chunk.content)

        try:
            for piece in guard.stream(texts()):
                if piece:
                    yield TokenEvent(piece)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()  # stops generation after a cut
        if not seen["usage"]:  # stopped before the model's count arrived: the prompt, and a token a piece
            self.tally.prompt += self.backend.count_tokens(messages)
            self.tally.completion += seen["pieces"]
        if guard.cut:
            self.streamed_cut = guard.cut.at
            self.note_cut(guard)

    def checked(self, reply: str) -> str:
        """A whole reply (a map step's, a refine step's) up to where the output guard cuts it."""
        guard = self.guard()
        text = guard.clean(reply)
        self.note_cut(guard)
        return text

    def invoke(self, messages: Sequence[BaseMessage], max_tokens: int | None = None) -> str:
        reply = self.backend.chat.invoke(list(messages), **self.sampling(max_tokens))
        self.tally.add(reply)
        return self.checked(str(reply.content).strip())

    def batch(self, conversations: list[list[BaseMessage]], max_tokens: int | None = None) -> list[str]:
        """Several prompts at once: one batched generate call for a local model."""
        replies = self.backend.chat.batch(conversations, **self.sampling(max_tokens))
        for reply in replies:
            self.tally.add(reply)
        return [self.checked(str(r.content).strip()) for r in replies]


def status(message: str, zh: str = "") -> StatusEvent:
    return StatusEvent(message, zh=zh)
