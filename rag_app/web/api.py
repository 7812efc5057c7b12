"""The HTTP API beside the web page: ask (JSON or server-sent events), documents, health, and
ChatGLM-6B's ``/api/chat`` shape. Every route calls RagService; errors are JSON with a reason."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_app.answering.answerer import AskRequest, check_question_length
from rag_app.answering.events import DoneEvent, SourcesEvent, StatusEvent, TokenEvent
from rag_app.errors import (
    CollectionNotFoundError,
    ConfigurationError,
    DocumentNotFoundError,
    InvalidRequestError,
    RagError,
    StoreBusyError,
)
from rag_app.health import ModelState
from rag_app.service import RagService
from rag_app.settings import STRATEGY_NAMES
from rag_app.web.redact import public_answer, public_health, public_record, public_report

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class AskBody(BaseModel):
    question: str = Field(description="The question.")
    strategy: str | None = Field(None, description="auto, stuff, map_reduce, refine, map_rerank or extractive.")
    k: int | None = Field(None, description="Sources to retrieve.")
    files: list[str] | None = Field(None, description="Answer only from these documents.")
    history: list = Field(default_factory=list, description='[{"role", "content"}] or [[question, answer], ...].')
    stream: bool = Field(False, description="Answer as server-sent events: status, sources, token, done.")
    collection: str | None = Field(None, description="Collection to search (default: the app's).")
    max_new_tokens: int | None = None
    temperature: float | None = None


class ChatBody(BaseModel):
    """ChatGLM-6B api.py's request: clients written for it work unchanged."""

    prompt: str
    history: list[list[str | None]] = Field(default_factory=list, description="[[question, answer], ...]")
    max_length: int | None = None
    top_p: float | None = None
    temperature: float | None = None


class SummarizeBody(BaseModel):
    files: list[str] = Field(description="Stored document names to summarize (as GET /api/documents lists them).")
    language: str | None = Field(None, description="en or zh; default: the documents' own language.")
    max_words: int | None = Field(None, description="Length of the summary in words (Chinese: characters), 20-2000.")
    stream: bool = Field(False, description="Summarize as server-sent events: status..., token..., done.")
    collection: str | None = Field(None, description="Collection of the documents (default: the app's).")
    max_new_tokens: int | None = None
    temperature: float | None = None


ERROR_STATUS = [
    (DocumentNotFoundError, 404),
    (CollectionNotFoundError, 404),
    (InvalidRequestError, 400),
    (StoreBusyError, 409),
    (ConfigurationError, 503),
    (RagError, 500),
]


def error_response(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason, "status": status}, status_code=status)


def status_of(exc: Exception) -> int:
    return next((code for kind, code in ERROR_STATUS if isinstance(exc, kind)), 500)


def install_error_handlers(app: FastAPI) -> None:
    """JSON with a reason for every error: never an HTML traceback."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError):
        return error_response(exc.status, exc.reason)

    @app.exception_handler(RagError)
    async def rag_error(_request: Request, exc: RagError):
        return error_response(status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors())
        return error_response(400, f"invalid request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception):
        log.exception("unhandled error in the HTTP API")
        return error_response(500, f"internal error: {type(exc).__name__}; see the server log")


def build_api(service: RagService) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/health")
    def health() -> dict:
        return public_health(service.health().to_dict())

    @router.post("/ask")
    def ask(body: AskBody):
        request = _ask_request(service, body)
        if body.stream:
            return StreamingResponse(_sse(service, request, body.collection), media_type="text/event-stream")
        return public_answer(service.answer(request, body.collection).to_dict())

    @router.post("/chat")
    def chat(body: ChatBody) -> dict:
        history = [list(turn) for turn in body.history]
        answer = service.answer(_ask_request(service, AskBody(question=body.prompt, history=history)))
        return {
            "response": answer.answer,
            "history": [*history, [body.prompt, answer.answer]],
            "status": 200,
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "sources": [s.to_dict() for s in answer.sources],
        }

    @router.post("/summarize")
    def summarize(body: SummarizeBody):
        """A summary of whole documents from every page (recursive map-reduce); 400/404 with a reason."""
        from rag_app.summaries.summarizer import SummaryRequest

        if service.model_state is ModelState.LOADING:
            raise ApiError(503, "the answer model is still loading: retry shortly")
        request = SummaryRequest(body.files, body.language, body.max_words, body.max_new_tokens, body.temperature)
        events = service.summarize(request, body.collection)  # bad input raises here, before any event
        if body.stream:
            return StreamingResponse(_summary_sse(events), media_type="text/event-stream")
        return public_answer(next(e.summary for e in events if e.kind == "done").to_dict())

    @router.get("/documents")
    def documents(collection: str | None = Query(None)) -> list[dict]:
        return [public_record(d.to_dict()) for d in service.list_documents(collection)]

    @router.post("/documents")
    async def upload(
        request: Request, files: Annotated[list[UploadFile], File()], collection: str | None = Query(None)
    ):
        _check_length(request, service, len(files))
        received = [(f.filename or "upload", await f.read()) for f in files]
        report = await _in_thread(service.ingest_uploads, received, collection)
        return _upload_response(report)

    @router.delete("/documents/{name:path}")
    def delete(name: str, collection: str | None = Query(None)) -> dict:
        return {"deleted": service.delete_document(name, collection).to_dict()}

    @router.get("/documents/{name:path}/file")
    def document_file(name: str, collection: str | None = Query(None)):
        path = service.document_file(name, collection)
        media = "application/pdf" if path.suffix.lower() == ".pdf" else "text/plain; charset=utf-8"
        return FileResponse(path, media_type=media, content_disposition_type="inline", filename=name.split("/")[-1])

    return router


def _ask_request(service: RagService, body: AskBody) -> AskRequest:
    strategy = body.strategy or service.settings.strategy
    check_question_length(body.question, service.settings.max_question_chars)
    if strategy not in STRATEGY_NAMES:
        raise ApiError(400, f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGY_NAMES)}")
    if strategy != "extractive" and service.model_state is ModelState.LOADING:
        raise ApiError(503, "the answer model is still loading: retry shortly, or ask with strategy 'extractive'")
    if strategy != "extractive" and service.model_state is ModelState.FAILED:
        raise ApiError(503, f"the answer model could not be loaded: {service.model_error}")
    return AskRequest(
        question=body.question, strategy=strategy, k=body.k, files=body.files, history=body.history,
        max_new_tokens=body.max_new_tokens, temperature=body.temperature,
    )  # fmt: skip


def _sse(service: RagService, request: AskRequest, collection: str | None) -> Iterator[str]:
    """Server-sent events: ``status``, ``sources``, ``token``..., then ``done`` (or ``error``)."""
    try:
        for event in service.ask(request, collection):
            if isinstance(event, TokenEvent):
                yield _event("token", {"text": event.text})
            elif isinstance(event, SourcesEvent):
                yield _event("sources", {"sources": [s.to_dict() for s in event.sources]})
            elif isinstance(event, StatusEvent):
                yield _event("status", {"message": event.message})
            elif isinstance(event, DoneEvent):
                yield _event("done", public_answer(event.answer.to_dict()))
    except RagError as exc:
        yield _event("error", {"error": str(exc), "status": status_of(exc)})
    except Exception as exc:  # noqa: BLE001 - the stream has started: report, never a traceback
        log.exception("error while streaming an answer")
        yield _event("error", {"error": f"internal error: {type(exc).__name__}", "status": 500})


def _summary_sse(events) -> Iterator[str]:
    """Server-sent events of a summary: ``status``..., ``token``..., then ``done`` (or ``error``)."""
    try:
        for event in events:
            if isinstance(event, TokenEvent):
                yield _event("token", {"text": event.text})
            elif isinstance(event, StatusEvent):
                yield _event("status", {"message": event.message})
            elif event.kind == "done":
                yield _event("done", public_answer(event.summary.to_dict()))
    except RagError as exc:
        yield _event("error", {"error": str(exc), "status": status_of(exc)})
    except Exception as exc:  # noqa: BLE001 - the stream has started: report, never a traceback
        log.exception("error while streaming a summary")
        yield _event("error", {"error": f"internal error: {type(exc).__name__}", "status": 500})
    finally:
        events.close()  # a client that went away stops the summary


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _check_length(request: Request, service: RagService, count: int) -> None:
    limit = service.settings.max_upload_mb * 1024 * 1024
    length = int(request.headers.get("content-length") or 0)
    if length > limit * max(count, 1) + 1024 * 1024:
        raise ApiError(
            413, f"upload of {length / 1e6:.0f} MB is over the limit of {service.settings.max_upload_mb} MB per file"
        )


def _upload_response(report) -> JSONResponse:
    """200 with the per-file report; 413/415 when every file was refused for that reason."""
    body = public_report(report.to_dict())
    refused = [f for f in report.files if f.refused_status is not None]
    if refused and len(refused) == len(report.files):
        status = refused[0].refused_status
        return JSONResponse(
            {"error": "; ".join(f.reason for f in refused), "status": status, **body}, status_code=status
        )
    return JSONResponse(body)


async def _in_thread(function, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)
