"""Typed events an answer streams: tokens for the answer panel, sources and status for the others."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag_app.records import SearchHit


@dataclass
class Source:
    """A retrieved chunk as numbered in the prompt: ``[n]``; its text is the passage of its page that the
    answer read (the chunk with its neighbours, widened to every line an extractive answer quotes), and
    quotes are checked against it, so what a source shows holds what the answer quotes from it."""

    n: int
    hit: SearchHit
    cited: bool = False
    page: str = ""  # the whole page's text (stitched from its chunks)
    window: tuple[int, int] = (0, 0)  # the passage read: page[start:end]

    def header(self) -> str:
        return f"[{self.n}] {self.hit.file}, p. {self.hit.page}"

    @property
    def context(self) -> str:
        return self.page[self.window[0] : self.window[1]] if self.page else ""

    @property
    def text(self) -> str:
        return (self.context or self.hit.text).strip()

    def widen(self, start: int, end: int) -> None:
        """Read (and show) more of the page: at least ``page[start:end]``."""
        self.window = (min(self.window[0], start), max(self.window[1], end))

    def block(self) -> str:
        return f"{self.header()}\n{self.text}"

    def to_dict(self) -> dict:
        h = self.hit
        return {
            "n": self.n, "file": h.file, "page": h.page, "offset": h.offset, "text": self.text,
            "score": h.score, "cited": self.cited, "sha256": h.sha256,
        }  # fmt: skip


@dataclass
class TokenEvent:
    text: str
    kind: str = "token"


@dataclass
class StatusEvent:
    message: str
    kind: str = "status"
    zh: str = ""  # the message in Chinese, where the bilingual page shows it beside the English


@dataclass
class SourcesEvent:
    sources: list[Source]
    kind: str = "sources"


@dataclass
class Answer:
    """The finished answer, as ``rag_app ask --json`` and ``POST /api/ask`` return it."""

    question: str
    answer: str
    strategy: str
    model: str
    sources: list[Source] = field(default_factory=list)
    standalone_question: str | None = None
    strategy_reason: str = ""
    mode: str = "generative"  # or "extractive"
    invalid_citations: list[str] = field(default_factory=list)
    unverified_quotes: list[str] = field(default_factory=list)
    dropped_sources: list[int] = field(default_factory=list)
    scores: dict[int, int] = field(default_factory=dict)  # map_rerank: source -> 0..100
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    model_notes: list[str] = field(default_factory=list)  # the backend's ModelInfo.notes (engine, self-check)

    @property
    def cited(self) -> list[int]:
        return [s.n for s in self.sources if s.cited]

    def to_dict(self) -> dict:
        data = {
            "question": self.question,
            "answer": self.answer,
            "strategy": self.strategy,
            "strategy_reason": self.strategy_reason,
            "model": self.model,
            "mode": self.mode,
            "sources": [s.to_dict() for s in self.sources],
            "cited": self.cited,
            "uncited": [s.n for s in self.sources if not s.cited],
            "invalid_citations": self.invalid_citations,
            "unverified_quotes": self.unverified_quotes,
            "dropped_sources": self.dropped_sources,
            "warnings": self.warnings,
            "timings": self.timings,
            "tokens": self.tokens,
            "model_notes": self.model_notes,
        }
        if self.standalone_question is not None:
            data["standalone_question"] = self.standalone_question
        if self.scores:
            data["scores"] = {str(k): v for k, v in self.scores.items()}
        return data


@dataclass
class DoneEvent:
    answer: Answer
    kind: str = "done"


Event = TokenEvent | StatusEvent | SourcesEvent | DoneEvent
