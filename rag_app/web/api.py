"""The HTTP API beside the web page: ask (JSON or server-sent events), documents, health, and
ChatGLM-6B's ``/api/chat`` shape. Every route calls RagService; errors are JSON with a reason."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_app.answering.events import DoneEvent, SourcesEvent, StatusEvent, TokenEvent
from rag_app.errors import (
    CollectionNotFoundError,
    ConfigurationError,
    DocumentNotFoundError,
    InvalidRequestError,
    RagError,
    StoreBusyError,
    StoreUnavailableError,
)
from rag_app.health import ModelState
from rag_app.requests import AskRequest, CollectionName, EdgeRequest, SummaryRequest, valid_collection
from rag_app.service import RagService
from rag_app.summaries.summarizer import SummaryDoneEvent
from rag_app.web.redact import public_answer, public_health, public_record, public_report

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class AskBody(AskRequest):
    """``POST /api/ask``: a question and its options, and how to answer."""

    stream: bool = Field(False, description="Answer as server-sent events: status, sources, token, done.")
    collection: CollectionName | None = Field(None, description="Collection to search (default: the app's).")

    def request(self) -> AskRequest:
        return AskRequest.model_validate(self.model_dump(exclude={"stream", "collection"}))


class ChatBody(BaseModel):
    """ChatGLM-6B api.py's request: clients written for it work unchanged."""

    prompt: str
    history: list[list[str | None]] = Field(default_factory=list, description="[[question, answer], ...]")
    max_length: int | None = None
    top_p: float | None = None
    temperature: float | None = None


class SummarizeBody(SummaryRequest):
    """``POST /api/summarize``: documents to summarize, and how."""

    stream: bool = Field(False, description="Summarize as server-sent events: status..., token..., done.")
    collection: CollectionName | None = Field(None, description="Collection of the documents (default: the app's).")

    def request(self) -> SummaryRequest:
        return SummaryRequest.model_validate(self.model_dump(exclude={"stream", "collection"}))


def json_body(model: type[EdgeRequest], settings) -> tuple:
    """A route's JSON body, validated once with the app's settings into ``model`` (400 with every problem),
    and its schema for the OpenAPI page."""

    async def parse(request: Request):
        return model.of_json(await request.body(), settings)

    schema = {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}
    return Depends(parse), schema


def collection_query(
    collection: str | None = Query(
        None, description="The collection (default: the app's): 1-63 letters, digits, '_' or '-'."
    ),
) -> str | None:
    """A route's ``?collection=`` parameter, checked at the edge (400 naming the pattern)."""
    return valid_collection(collection)


Collection = Annotated[str | None, Depends(collection_query)]


ERROR_STATUS = [
    (DocumentNotFoundError, 404),
    (CollectionNotFoundError, 404),
    (InvalidRequestError, 400),
    (StoreBusyError, 409),
    (ConfigurationError, 503),
    (StoreUnavailableError, 503),  # a writer process died, the chunk texts are lost: the message says what to do
    (RagError, 500),
]


def error_response(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason, "status": status}, status_code=status)


def api_message(exc: RagError) -> str:
    """The library's message with what the API offers to fix it (never a command-line flag)."""
    if isinstance(exc, DocumentNotFoundError):
        return f"{exc} (GET /api/documents lists the stored names)"
    return str(exc)


def status_of(exc: Exception) -> int:
    return next((code for kind, code in ERROR_STATUS if isinstance(exc, kind)), 500)


def install_error_handlers(app: FastAPI) -> None:
    """JSON with a reason for every error: never an HTML traceback."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError):
        return error_response(exc.status, exc.reason)

    @app.exception_handler(RagError)
    async def rag_error(_request: Request, exc: RagError):
        return error_response(status_of(exc), api_message(exc))

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

    ask_body, ask_schema = json_body(AskBody, service.settings)
    summarize_body, summarize_schema = json_body(SummarizeBody, service.settings)

    @router.post("/ask", openapi_extra=ask_schema)
    def ask(body: AskBody = ask_body):
        request = _model_ready(service, body.request())
        if body.stream:
            return StreamingResponse(
                _sse(lambda: service.ask(request, body.collection)), media_type="text/event-stream"
            )
        return public_answer(service.answer(request, body.collection).to_dict())

    @router.post("/chat")
    def chat(body: ChatBody) -> dict:
        history = [list(turn) for turn in body.history]
        request = AskRequest.of(service.settings, question=body.prompt, history=history)
        answer = service.answer(_model_ready(service, request))
        return {
            "response": answer.answer,
            "history": [*history, [body.prompt, answer.answer]],
            "status": 200,
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "sources": [s.to_dict() for s in answer.sources],
        }

    @router.post("/summarize", openapi_extra=summarize_schema)
    def summarize(body: SummarizeBody = summarize_body):
        """A summary of whole documents from every page (recursive map-reduce); 400/404 with a reason."""
        if service.model_state is ModelState.LOADING:
            raise ApiError(503, "the answer model is still loading: retry shortly")
        events = service.summarize(body.request(), body.collection)  # unknown documents raise here, before any event
        if body.stream:
            return StreamingResponse(_sse(lambda: events), media_type="text/event-stream")
        return public_answer(next(e.summary for e in events if e.kind == "done").to_dict())

    @router.get("/documents")
    def documents(collection: Collection) -> list[dict]:
        return [public_record(d.to_dict()) for d in service.list_documents(collection)]

    @router.post("/documents")
    async def upload(files: Annotated[list[UploadFile], File()], collection: Collection):
        # parsed into spooled temporary files (on disk past 1 MB); copied from there, never read whole
        received = [(f.filename or "upload", f.file) for f in files]
        report = await _in_thread(service.ingest_uploads, received, collection)
        return _upload_response(report)

    @router.delete("/documents/{name:path}")
    def delete(name: str, collection: Collection) -> dict:
        return {"deleted": service.delete_document(name, collection).to_dict()}

    @router.get("/documents/{name:path}/file")
    def document_file(name: str, collection: Collection):
        path = service.document_file(name, collection)
        media = "application/pdf" if path.suffix.lower() == ".pdf" else "text/plain; charset=utf-8"
        return FileResponse(path, media_type=media, content_disposition_type="inline", filename=name.split("/")[-1])

    return router


def _model_ready(service: RagService, request: AskRequest) -> AskRequest:
    """The request, unless it needs the answer model and the model is loading or failed (503)."""
    strategy = request.strategy or service.settings.strategy
    if strategy != "extractive" and service.model_state is ModelState.LOADING:
        raise ApiError(503, "the answer model is still loading: retry shortly, or ask with strategy 'extractive'")
    if strategy != "extractive" and service.model_state is ModelState.FAILED:
        raise ApiError(503, f"the answer model could not be loaded: {service.model_error}")
    return request


def _sse(start: Callable[[], Iterator]) -> Iterator[str]:
    """Server-sent events of an answer or a summary (``start()`` gives its events): ``status``, ``sources``,
    ``token``..., then ``done`` (or ``error``); a client that goes away stops the work."""
    events = None
    try:
        events = start()
        for event in events:
            if isinstance(event, TokenEvent):
                yield _event("token", {"text": event.text})
            elif isinstance(event, SourcesEvent):
                yield _event("sources", {"sources": [s.to_dict() for s in event.sources]})
            elif isinstance(event, StatusEvent):
                yield _event("status", {"message": event.message})
            elif isinstance(event, DoneEvent):
                yield _event("done", public_answer(event.answer.to_dict()))
            elif isinstance(event, SummaryDoneEvent):
                yield _event("done", public_answer(event.summary.to_dict()))
    except RagError as exc:
        yield _event("error", {"error": api_message(exc), "status": status_of(exc)})
    except Exception as exc:  # noqa: BLE001 - the stream has started: report, never a traceback
        log.exception("error while streaming")
        yield _event("error", {"error": f"internal error: {type(exc).__name__}", "status": 500})
    finally:
        if events is not None and hasattr(events, "close"):
            events.close()


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


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
