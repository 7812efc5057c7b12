"""A small OpenAI-compatible chat server for tests: real HTTP and server-sent events, canned replies.

It records every request and how many ran at the same time, so tests can check
that map steps against an endpoint run concurrently.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from webapp import free_port, serve_in_thread


class StubServer:
    def __init__(self, reply, delay: float = 0.2, window: int = 2048) -> None:
        self.reply = reply  # (messages) -> str
        self.delay = delay
        self.window = window
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = free_port()
        self.app = self._build()
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> StubServer:
        self._server = serve_in_thread(self.app, self.port)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models():
            return {"object": "list", "data": [{"id": "stub-model", "object": "model", "max_model_len": self.window}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            self.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.delay)
                text = self.reply(body["messages"])
            finally:
                self.in_flight -= 1
            usage = {
                "prompt_tokens": 11,
                "completion_tokens": len(text.split()),
                "total_tokens": 11 + len(text.split()),
            }
            if body.get("stream"):
                return StreamingResponse(_sse(text, usage, body), media_type="text/event-stream")
            return JSONResponse({
                "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage,
            })  # fmt: skip

        return app


def _sse(text: str, usage: dict, body: dict):
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
    for word in text.split(" "):
        delta = {"choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
        yield f"data: {json.dumps({**base, **delta})}\n\n"
    yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
    if body.get("stream_options", {}).get("include_usage"):
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"
