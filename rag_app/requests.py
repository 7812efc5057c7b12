"""The requests the app answers, validated once, at the edge.

The HTTP API, the CLI and the page build an :class:`AskRequest`, :class:`SearchRequest` or
:class:`SummaryRequest` with :meth:`~EdgeRequest.of` (or the API parses its JSON body into one): types,
ranges, the strategy's name, the question's length (``RAG_MAX_QUESTION_CHARS``) and its text are checked
here, and a bad request becomes one :class:`~rag_app.errors.InvalidRequestError` that says what to fix.
Everything inside (the service, the answerer, the retriever) trusts the request it is given.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from rag_app.errors import InvalidRequestError
from rag_app.settings import (
    MAX_K,
    MAX_NEW_TOKENS,
    MAX_TEMPERATURE,
    Settings,
    StrategyName,
    collection_name_problem,
)

SUMMARY_WORDS = (20, 2000)  # words of a summary (Chinese: characters) a request may ask for
HISTORY_SHAPE = (
    'history must be a list of {"role": "user"|"assistant", "content": "..."} or of [question, answer] pairs'
)


def _unicode(what: str) -> AfterValidator:
    """Text that encodes as UTF-8: a lone surrogate (which JSON and Python strings can carry) is refused."""

    def check(value: str) -> str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"the {what} holds a character that is not valid Unicode (a lone surrogate): send UTF-8 text") from None  # fmt: skip
        return value

    return AfterValidator(check)


def _collection(value: str) -> str:
    problem = collection_name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


DocumentName = Annotated[str, _unicode("document name")]
CollectionName = Annotated[str, AfterValidator(_collection)]


def valid_collection(value: str | None) -> str | None:
    """A collection name a request gives (a query parameter), checked once at the edge: None stays None
    (the app's own collection); a name that could not be a collection is an InvalidRequestError naming the
    pattern, before anything is opened or made."""
    if value is None:
        return None
    problem = collection_name_problem(value)
    if problem:
        raise InvalidRequestError(problem)
    return value


class Turn(BaseModel):
    """One message of the conversation so far."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: Annotated[str, _unicode("history")]


class EdgeRequest(BaseModel):
    """A request as a person or a program sends it; ``of`` validates it with the app's settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def of(cls, settings: Settings | None = None, **fields: Any) -> Self:
        """The validated request, or an InvalidRequestError naming every problem."""
        try:
            return cls.model_validate(fields, context={"settings": settings})
        except ValidationError as exc:
            raise InvalidRequestError(describe(exc)) from None

    @classmethod
    def of_json(cls, body: bytes, settings: Settings | None = None) -> Self:
        """The validated request from a JSON body (the HTTP API)."""
        try:
            return cls.model_validate_json(body or b"{}", context={"settings": settings})
        except ValidationError as exc:
            raise InvalidRequestError(f"invalid request: {describe(exc)}") from None


def _question(value: str, info: ValidationInfo, what: str = "question") -> str:
    """A question (or a search query) as the app reads it: stripped, valid Unicode, not empty, within the
    length limit."""
    value = _unicode(what).func(value).strip()
    if not value:
        raise ValueError(f"the {what} is empty")
    settings = (info.context or {}).get("settings")
    limit = settings.max_question_chars if settings is not None else None
    if limit is not None and len(value) > limit:
        raise ValueError(
            f"the {what} is {len(value):,} characters long, over the limit of {limit:,} (RAG_MAX_QUESTION_CHARS): shorten it"
        )
    return value


class AskRequest(EdgeRequest):
    """One question with its options; unset options take the settings' defaults."""

    question: str = Field(description="The question, in English or Chinese.")
    strategy: StrategyName | None = Field(
        None, description="auto, stuff, map_reduce, refine, map_rerank or extractive."
    )
    k: int | None = Field(None, ge=1, le=MAX_K, description="Sources to retrieve.")
    files: list[DocumentName] | None = Field(None, description="Answer only from these documents.")
    history: list[Turn] = Field(
        default_factory=list, description='The conversation so far: [{"role", "content"}] or [[question, answer], ...].'
    )
    max_new_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS, description="Most tokens in the answer.")
    temperature: float | None = Field(None, ge=0.0, le=MAX_TEMPERATURE, description="Sampling temperature.")

    @field_validator("question")
    @classmethod
    def _check_question(cls, value: str, info: ValidationInfo) -> str:
        return _question(value, info)

    @field_validator("history", mode="before")
    @classmethod
    def _history_shapes(cls, value: Any) -> list[dict]:
        """Accept [{"role", "content"}, ...] or ChatGLM-style [[question, answer], ...]."""
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError(HISTORY_SHAPE)
        turns: list[dict] = []
        for item in value:
            if isinstance(item, Turn):
                turns.append(item)
            elif isinstance(item, dict):
                if set(item) != {"role", "content"} or item["role"] not in ("user", "assistant"):
                    raise ValueError(HISTORY_SHAPE)
                turns.append(item)
            elif isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(x, str | None) for x in item):
                turns += [{"role": "user", "content": item[0] or ""}, {"role": "assistant", "content": item[1] or ""}]
            else:
                raise ValueError(HISTORY_SHAPE)
        return turns


class SearchRequest(EdgeRequest):
    """A query for the best-matching chunks."""

    query: str = Field(description="What to look for.")
    k: int = Field(5, ge=1, le=MAX_K, description="Chunks to return.")
    files: list[DocumentName] | None = Field(None, description="Search only these documents.")

    @field_validator("query")
    @classmethod
    def _check_query(cls, value: str, info: ValidationInfo) -> str:
        return _question(value, info)


class SummaryRequest(EdgeRequest):
    """Summarize these stored documents (names as --list shows); unset options take defaults."""

    files: list[DocumentName] = Field(min_length=1, description="Stored document names to summarize.")
    language: Literal["en", "zh"] | None = Field(None, description="en or zh; default: the documents' own language.")
    max_words: int | None = Field(
        None,
        ge=SUMMARY_WORDS[0],
        le=SUMMARY_WORDS[1],
        description="Length of the summary in words (Chinese: characters).",
    )
    max_new_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS)
    temperature: float | None = Field(None, ge=0.0, le=MAX_TEMPERATURE)


def describe(exc: ValidationError) -> str:
    """Every problem of a request, in words a person can act on."""
    return "; ".join(_problem(error) for error in exc.errors())


def _problem(error: dict) -> str:
    where = ".".join(str(p) for p in error["loc"] if p != "body") or "request"
    kind, context, given = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "value_error":
        return str(context.get("error", error["msg"]))
    if kind == "literal_error":
        return f"unknown {where} {given!r}: choose one of {context.get('expected')}"
    if kind in ("greater_than_equal", "less_than_equal"):
        field = _bounds(where)
        if field is not None:
            return f"{where} must be between {field[0]:g} and {field[1]:g}, got {given}"
    if kind == "too_short" and where == "files":
        return "name at least one document (see the document list)"
    if kind == "json_invalid":
        return f"the body is not valid JSON: {error['msg'].removeprefix('Invalid JSON: ')}"
    if kind == "missing":
        return f"{where} is required"
    if kind == "extra_forbidden":
        return f"unknown field {where!r}"
    return f"{where}: {error['msg']}"


def _bounds(field: str) -> tuple[float, float] | None:
    for model in (AskRequest, SearchRequest, SummaryRequest):
        info = model.model_fields.get(field)
        if info is None:
            continue
        low = next((m.ge for m in info.metadata if getattr(m, "ge", None) is not None), None)
        high = next((m.le for m in info.metadata if getattr(m, "le", None) is not None), None)
        if low is not None and high is not None:
            return low, high
    return None
