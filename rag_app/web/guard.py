"""Guards in front of every route of the web app (Gradio's included): forwarded headers are believed only from
trusted proxies, requests to a host name that is not the app's are refused while it listens on loopback (DNS
rebinding), cross-site writes are refused by the request's Origin (or Referer), and request bodies are measured
while they stream in (uploads per file and per request, everything else per request).

DNS rebinding: a page on attacker.example re-points its name to 127.0.0.1 and then reads the app as its
own origin (same-origin to the browser, so neither CORS nor the Origin check applies). What it cannot
change is the ``Host`` header, which still names attacker.example: an app bound to loopback answers
only to loopback names, its share link's and ``--allowed-hosts``.

A browser tells where a request comes from: it sets ``Origin`` on every POST, PUT, PATCH and DELETE,
even a blind ``mode: "no-cors"`` one, and a page cannot forge it. A write whose origin is neither the
app's own nor one of ``--embed-origins`` is refused, whatever its content type. Scripts and the CLI
send neither Origin nor Referer and are not affected; auth is no substitute, since a logged-in
browser sends its credentials along with a forged request.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers

log = logging.getLogger(__name__)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
DEFAULT_PORTS = {"http": ":80", "https": ":443", "ws": ":80", "wss": ":443"}
# Routes that take uploads; their bodies are counted as they arrive.
UPLOAD_ROUTES = frozenset({"/api/documents", "/gradio_api/upload"})
# A multipart part carries headers (its name, its content type) before the file's bytes.
PART_HEADER_ALLOWANCE = 64 * 1024
MB = 1024 * 1024


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, without the scheme's default port; None for ``null`` or junk."""
    parts = urlsplit(url.strip())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return f"{parts.scheme}://{_authority(parts.netloc, parts.scheme)}"


def _authority(netloc: str, scheme: str | None = None) -> str:
    """host[:port] in lower case, without credentials or a default port (any scheme's when unknown)."""
    netloc = netloc.strip().lower().rsplit("@", 1)[-1]
    defaults = [DEFAULT_PORTS[scheme]] if scheme else [":80", ":443"]
    return next((netloc[: -len(d)] for d in defaults if netloc.endswith(d)), netloc)


def own_hosts(headers: Headers) -> set[str]:
    """Where the browser sent the request: its Host, or what a trusted reverse proxy says it was
    (X-Forwarded-Host reaches the guards only from ``--forwarded-allow-ips``: :class:`ForwardedHeaders`).
    A cross-site page can set neither on a request it sends blind."""
    hosts = [headers.get("host", ""), headers.get("x-forwarded-host", "").split(",")[0]]
    return {_authority(h) for h in hosts if h.strip()}


def cross_site_refusal(headers: Headers, allowed: set[str]) -> str | None:
    """Why a state-changing request is refused, or None when its origin is the app's own, an allowed
    embedding origin, or unknown (no Origin, no Referer: curl, scripts, the CLI)."""
    value, header = headers.get("origin"), "Origin"
    if value is None:
        value, header = headers.get("referer"), "Referer"
    if value is None:
        if headers.get("sec-fetch-site") == "cross-site":
            return "cross-site request refused: it came from another site's page without an Origin"
        return None
    origin = origin_of(value)
    # the app's own origin is matched by host and port: behind a TLS proxy the app itself is reached over http
    if origin is not None and (origin in allowed or origin.split("://", 1)[1] in own_hosts(headers)):
        return None
    shown = (origin or value)[:100]
    return (
        f"cross-site request refused: its {header} {shown} is neither this app's origin nor one of "
        "--embed-origins (RAG_EMBED_ORIGINS)"
    )


async def send_refusal(scope, send, status: int, reason: str, headers: tuple = ()) -> None:
    """An error as JSON with a reason; a WebSocket handshake is refused instead (the server answers it
    with HTTP 403; an http.response message on a WebSocket is an error, and uvicorn's
    ``websocket.http.response`` support logs one too)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})  # 1008: policy violation
        return
    body = json.dumps({"error": reason, "status": status}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class CrossSiteGuard:
    """403 for a write (any method but GET/HEAD/OPTIONS) or WebSocket handshake from another site's page."""

    def __init__(self, app, allowed_origins: Callable[[], list[str]]) -> None:
        self.app = app
        self.allowed_origins = allowed_origins  # read per request: the share link is known only once it is up

    @property
    def allowed(self) -> set[str]:
        return {o for o in map(origin_of, self.allowed_origins()) if o}

    async def __call__(self, scope, receive, send):
        writes = scope["type"] == "websocket" or (scope["type"] == "http" and scope["method"] not in SAFE_METHODS)
        refusal = cross_site_refusal(Headers(scope=scope), self.allowed) if writes else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        log.warning("%s %s: %s", scope.get("method", "WEBSOCKET"), scope["path"], refusal)
        await send_refusal(scope, send, 403, refusal)


def is_loopback(host: str) -> bool:
    """Whether an address or name means this machine only: 127.0.0.0/8, ::1, localhost, *.localhost."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(value: str) -> str:
    """The name in a Host header, without its port: ``[::1]:7860`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostGuard:
    """403 for a request whose ``Host`` is not a name of this app: mounted while it listens on loopback.
    X-Forwarded-Host is not read: a rebinding page may set it; Host it may not."""

    def __init__(self, app, allowed_hosts: Callable[[], list[str]]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts  # read per request: the share link is known only once it is up

    def refusal(self, headers: Headers) -> str | None:
        host = headers.get("host")
        if host is None:  # HTTP/1.0 without Host: not a browser
            return None
        name = host_name(host)
        if is_loopback(name) or name in {h.lower() for h in self.allowed_hosts() if h}:
            return None
        return (
            f"request refused: the host name {host[:100]!r} is not this app's (it listens on 127.0.0.1, so a page "
            "using another name may be a DNS rebinding attack); open it as http://127.0.0.1, or add the name to "
            "--allowed-hosts (RAG_ALLOWED_HOSTS) when a reverse proxy passes it on"
        )

    async def __call__(self, scope, receive, send):
        refusal = self.refusal(Headers(scope=scope)) if scope["type"] in ("http", "websocket") else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        log.warning("%s %s: %s", scope.get("method", "WEBSOCKET"), scope["path"], refusal)
        await send_refusal(scope, send, 403, refusal)


class PartCounter:
    """Bytes of the current part of a multipart body (of the whole body when it is not multipart),
    fed chunk by chunk; parts are told apart by the boundary, also when it straddles two chunks."""

    def __init__(self, content_type: str) -> None:
        boundary = _boundary(content_type)
        self.delimiter = b"--" + boundary if boundary else b""
        self.size = 0
        self.tail = b""

    def feed(self, chunk: bytes) -> int:
        """Count ``chunk``; returns the size of the part it ends in."""
        if not self.delimiter:
            self.size += len(chunk)
            return self.size
        data = self.tail + chunk
        last = data.rfind(self.delimiter)
        self.size = len(data) - last - len(self.delimiter) if last >= 0 else self.size + len(chunk)
        self.tail = data[-(len(self.delimiter) - 1) :]
        return self.size


def _boundary(content_type: str) -> bytes:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        return b""
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary" and value.strip('"'):
            return value.strip('"').encode("latin-1")
    return b""


@dataclass(frozen=True)
class BodyLimits:
    """How large a request body may be, in bytes: one file of an upload, all files of an upload, any other body."""

    upload_file: int
    upload_total: int
    request: int

    @classmethod
    def of(cls, settings) -> BodyLimits:
        mb = 1024 * 1024
        return cls(settings.max_upload_mb * mb, settings.max_upload_total_mb * mb, settings.max_request_kb * 1024)


class BodyLimit:
    """413 as soon as a request body passes its limit, before the route parses it: at once when its
    Content-Length says so, else while it streams in (chunked bodies too). Nothing past the limit is read,
    so memory and disk stay bounded. An upload (``routes``) may carry files of ``upload_file`` bytes each and
    ``upload_total`` in all; any other body ``request`` bytes (a JSON question, a Gradio event). The upload
    route still checks the exact size of each file it gets."""

    def __init__(self, app, limits: Callable[[], BodyLimits], routes: frozenset[str] = UPLOAD_ROUTES) -> None:
        self.app = app
        self.limits = limits  # read per request: settings may change while the app runs (tests)
        self.routes = routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits, headers = self.limits(), Headers(scope=scope)
        upload = scope["method"] == "POST" and _route(scope) in self.routes
        total = limits.upload_total + PART_HEADER_ALLOWANCE if upload else limits.request
        too_large = _total_reason(limits, upload)
        if _declared_length(headers) > total:
            log.warning("%s %s: %s", scope["method"], scope["path"], too_large)
            await send_refusal(scope, send, 413, too_large)
            return
        parts = PartCounter(headers.get("content-type", "")) if upload else None
        received, refused = 0, False

        async def counted_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            body = message.get("body", b"") if message["type"] == "http.request" else b""
            received += len(body)
            reason = too_large if received > total else None
            if parts is not None and parts.feed(body) > limits.upload_file + PART_HEADER_ALLOWANCE:
                reason = f"upload refused: a file is over the limit of {limits.upload_file / MB:g} MB (--max-upload-mb)"
            if reason is None:
                return message
            refused = True
            log.warning("%s %s: %s", scope["method"], scope["path"], reason)
            await send_refusal(scope, send, 413, reason)
            return {"type": "http.disconnect"}  # the route stops reading; its own reply is dropped below

        async def unless_refused(message):
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted_receive, unless_refused)
        except Exception:
            if not refused:
                raise
            log.debug("route stopped after the body limit", exc_info=True)


def _total_reason(limits: BodyLimits, upload: bool) -> str:
    if upload:
        return (
            f"upload refused: its files are over the limit of {limits.upload_total / MB:g} MB together "
            "(--max-upload-total-mb): upload them in several requests"
        )
    return f"request refused: its body is over the limit of {limits.request / 1024:g} KB (--max-request-kb)"


def _declared_length(headers: Headers) -> int:
    """The body size a request announces (0 when it announces none, or nonsense)."""
    try:
        return int(headers.get("content-length") or 0)
    except ValueError:
        return 0


class ForwardedHeaders:
    """X-Forwarded-Host, -Proto and -For (and Forwarded) believed only from the reverse proxies of
    ``--forwarded-allow-ips``; from anyone else they are dropped before any guard, route or page sees them,
    so the origin check and the page's links use the Host the browser sent. Outermost: uvicorn's own proxy
    handling is off (:func:`rag_app.web.server.serve`), and this applies it to trusted proxies only."""

    def __init__(self, app, trusted: list[str]) -> None:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        self.app = app
        self.proxied = ProxyHeadersMiddleware(app, trusted_hosts=trusted or [])

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        if client and client[0] in self.proxied.trusted_hosts:
            await self.proxied(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if not k.startswith(b"x-forwarded-") and k != b"forwarded"]
        await self.app({**scope, "headers": headers}, receive, send)


def _route(scope) -> str:
    """The request's path inside the app (without --root-path)."""
    path, root = scope["path"], scope.get("root_path") or ""
    return path[len(root) :] if root and path.startswith(root) else path
