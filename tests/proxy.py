"""A small reverse proxy for tests: http://127.0.0.1:PORT/<prefix>/... -> the app at /..., streaming."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from webapp import free_port, serve_in_thread

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "content-length", "host", "content-encoding"}


class ReverseProxy:
    """Like nginx's ``location /prefix/ { proxy_pass http://app/; }``: the prefix is stripped."""

    def __init__(self, upstream: str, prefix: str) -> None:
        self.upstream, self.prefix = upstream.rstrip("/"), prefix
        self.port = free_port()
        self.client = httpx.AsyncClient(timeout=None)
        route = Route(
            prefix + "/{path:path}", self.forward, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
        )
        self.app = Starlette(routes=[route])
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}/"

    async def forward(self, request: Request) -> Response:
        target = f"{self.upstream}/{request.path_params['path']}"
        if request.url.query:
            target += "?" + request.url.query
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers.update({"x-forwarded-host": f"127.0.0.1:{self.port}", "x-forwarded-proto": "http"})
        upstream = self.client.build_request(request.method, target, headers=headers, content=await request.body())
        response = await self.client.send(upstream, stream=True)
        out_headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
        return StreamingResponse(
            response.aiter_bytes(), status_code=response.status_code, headers=out_headers, background=None
        )

    def __enter__(self) -> ReverseProxy:
        self.server = serve_in_thread(self.app, self.port)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
