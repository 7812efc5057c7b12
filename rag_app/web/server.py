"""The web app process: FastAPI with /api, the Gradio page mounted at /, one auth for both,
and an optional share link that is refused without auth."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI

from rag_app.errors import ConfigurationError
from rag_app.health import ModelState
from rag_app.service import RagService
from rag_app.settings import Settings
from rag_app.web.api import build_api, install_error_handlers
from rag_app.web.embed import EmbedPolicyMiddleware, demo_page, frame_ancestors, public_url, snippet_text
from rag_app.web.guard import (
    BodyLimit,
    BodyLimits,
    CrossSiteGuard,
    ForwardedHeaders,
    HostGuard,
    is_loopback,
    send_refusal,
)

log = logging.getLogger(__name__)
SHARE_EXPIRY = "up to 1 week (Gradio's share server, best effort; 72 hours in older Gradio versions)"
NO_AUTH_SHARE = (
    "refusing --share without auth: a share link is public on the internet and anyone who finds it could read "
    "your documents. Add --auth user:password (or --auth-file FILE, or RAG_AUTH), or pass --allow-public-share "
    "if the documents are public."
)


def load_accounts(settings: Settings) -> list[tuple[str, str]]:
    """user:password pairs from --auth (comma-separated) and --auth-file (one per line)."""
    entries = [e for e in (settings.auth or "").split(",") if e.strip()]
    if settings.auth_file:
        try:
            lines = Path(settings.auth_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the auth file {settings.auth_file}: {exc.strerror}") from None
        entries += [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    accounts = []
    for entry in entries:
        user, sep, password = entry.strip().partition(":")
        if not sep or not user or not password:
            raise ConfigurationError(f"auth entries look like user:password, got {entry.strip()[:40]!r}")
        accounts.append((user, password))
    return accounts


class BasicAuthMiddleware:
    """HTTP Basic auth on every route (page, Gradio's API, /api, files): one gate for all clients."""

    def __init__(self, app, accounts: list[tuple[str, str]]) -> None:
        self.app = app
        self.accounts = accounts

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        # a WebSocket handshake is refused the WebSocket way (an http.response message there is an error)
        challenge = (b"www-authenticate", b'Basic realm="rag_app"')
        await send_refusal(scope, send, 401, "authentication required: send HTTP Basic credentials", (challenge,))

    def _authorized(self, scope) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        if not header.lower().startswith(b"basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        # compare every account in constant time so timing does not reveal which part was wrong
        given = (user.encode(), password.encode())
        return any(
            hmac.compare_digest(given[0], u.encode()) & hmac.compare_digest(given[1], p.encode())
            for u, p in self.accounts
        )


@dataclass
class PublicLinks:
    """Where browsers reach the app (the page shows embed snippets for these)."""

    local: str
    share: str | None = None

    @property
    def best(self) -> str:
        return self.share or self.local


def create_app(
    service: RagService, accounts: list[tuple[str, str]] | None = None, links: PublicLinks | None = None
) -> FastAPI:
    """The whole web app as an ASGI application (also what the tests run)."""
    from fastapi.middleware.cors import CORSMiddleware

    from rag_app.web.ui import add_web_component_script, mount_ui
    from rag_app.web.viewer import add_source_viewer

    settings = service.settings
    links = links or PublicLinks(public_url(settings))
    if service.model_state is ModelState.NOT_LOADED:
        service.preload_model()
    app = FastAPI(title="rag_app", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    install_error_handlers(app)
    app.include_router(build_api(service))
    add_web_component_script(app)
    add_source_viewer(app)
    app = mount_ui(app, service, links)
    app.add_middleware(BodyLimit, limits=lambda: BodyLimits.of(settings))
    if accounts:
        app.add_middleware(BasicAuthMiddleware, accounts=accounts)
    # writes from browser pages: the app's own origin, its share link, the embedding origins
    app.add_middleware(CrossSiteGuard, allowed_origins=lambda: [*settings.origins, links.share or ""])
    app.add_middleware(EmbedPolicyMiddleware, policy=frame_ancestors(settings))
    if is_loopback(settings.host):  # reachable by this machine's names only: refuse any other (DNS rebinding)
        app.add_middleware(
            HostGuard, allowed_hosts=lambda: [*settings.host_names, urlsplit(links.share or "").hostname]
        )
    # Outermost, so a browser's preflight (sent without credentials) is answered before auth.
    # Gradio defers to it: only the configured origins may call the app from their pages.
    app.add_middleware(
        CORSMiddleware, allow_origins=settings.origins, allow_credentials=True, allow_methods=["*"], allow_headers=["*"]
    )
    # Before anything reads them: X-Forwarded-* from trusted proxies only (--forwarded-allow-ips).
    app.add_middleware(ForwardedHeaders, trusted=settings.trusted_proxies)
    return app


Say = Callable[[str], None]


@dataclass
class Console:
    """Where the server tells its user what it is doing: ``say`` for the URLs and snippets (stdout in
    ``python app.py``), ``warn`` for warnings. The library itself never prints."""

    say: Say = log.info
    warn: Say = log.warning


def check_share(settings: Settings, accounts: list, console: Console | None = None) -> None:
    console = console or Console()
    if settings.share and not accounts and not settings.allow_public_share:
        raise ConfigurationError(NO_AUTH_SHARE)
    if settings.share and not accounts:
        console.warn("WARNING: --share without auth: anyone with the link can use the app and read your documents.")


def serve(settings: Settings, console: Console | None = None) -> None:
    """Start the service, the HTTP server and, with --share, the public link."""
    import uvicorn

    console = console or Console()
    accounts = load_accounts(settings)
    check_share(settings, accounts, console)
    if settings.embed_demo:
        settings.embed_origins = ",".join([*settings.origins, f"http://127.0.0.1:{settings.port + 1}"])
    service = RagService(settings)
    links = PublicLinks(public_url(settings))
    app = create_app(service, accounts, links)
    service.preload_search()
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5,
        root_path=settings.root_path or "", proxy_headers=False,  # the app's ForwardedHeaders decides whom to believe
    )  # fmt: skip
    server = uvicorn.Server(config)
    threading.Thread(target=_announce, args=(server, settings, links, console), daemon=True).start()
    if settings.embed_demo:
        threading.Thread(target=_serve_embed_demo, args=(settings, links, console), daemon=True).start()
    server.run()


def _announce(server, settings: Settings, links: PublicLinks, console: Console) -> None:
    """Once the server is up: say the URL and embed snippets, and with --share try the public link."""
    while not server.started:
        time.sleep(0.1)
    console.say(f"rag_app is serving {links.local} (API: {links.local}api/docs)")
    console.say(snippet_text(links.local))
    if settings.mcp:
        console.say(f"MCP server (streamable HTTP): {links.local}gradio_api/mcp/")
    if not settings.share:
        return
    from rag_app.web.ui import open_share_link

    try:
        links.share = open_share_link(settings.host, settings.port)
    except Exception as exc:  # noqa: BLE001 - offline, share server down: the local server keeps running
        console.warn(
            f"Could not create a share link ({type(exc).__name__}: {exc}); is this machine online? "
            f"The app keeps running locally at {links.local}"
        )
        return
    console.say(f"Public share link: {links.share} (expires in {SHARE_EXPIRY})")
    console.say(snippet_text(links.best))


def _serve_embed_demo(settings: Settings, links: PublicLinks, console: Console) -> None:
    """A page on port + 1 (another origin) that embeds the app as a web component and in an iframe."""
    import uvicorn
    from fastapi.responses import HTMLResponse

    demo = FastAPI()

    @demo.get("/", response_class=HTMLResponse)
    def page() -> str:
        return demo_page(links.best)

    console.say(f"Embedding demo page: http://127.0.0.1:{settings.port + 1}/")
    uvicorn.Server(uvicorn.Config(demo, host="127.0.0.1", port=settings.port + 1, log_level="warning")).run()
