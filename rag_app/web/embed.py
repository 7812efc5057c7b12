"""How other pages embed the app: snippets, the Content-Security-Policy that decides who may frame
it, and a small demo page that embeds it both ways."""

from __future__ import annotations

import html

from rag_app.settings import Settings


def public_url(settings: Settings, share_url: str | None = None) -> str:
    """The app's base URL as a browser reaches it (the share link when there is one), ending with '/'."""
    if share_url:
        return share_url.rstrip("/") + "/"
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}{settings.root_path or ''}/"


def snippets(url: str) -> dict[str, str]:
    """The two ways Gradio apps are embedded, filled in with ``url``."""
    return {
        "web_component": f'<script type="module" src="{url}gradio.js"></script>\n<gradio-app src="{url}"></gradio-app>',
        "iframe": f'<iframe src="{url}" width="100%" height="900" style="border:0"></iframe>',
    }


def snippet_text(url: str) -> str:
    parts = snippets(url)
    return f"Embed it as a web component:\n{parts['web_component']}\nor in an iframe:\n{parts['iframe']}"


def frame_ancestors(settings: Settings) -> str:
    """CSP value: the app's own origin, plus the configured embedding origins."""
    return " ".join(["frame-ancestors", "'self'", *settings.origins])


class EmbedPolicyMiddleware:
    """Adds ``Content-Security-Policy: frame-ancestors ...`` to every response."""

    def __init__(self, app, policy: str) -> None:
        self.app = app
        self.header = (b"content-security-policy", policy.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [h for h in message["headers"] if h[0].lower() != b"content-security-policy"]
                message["headers"].append(self.header)
            await send(message)

        await self.app(scope, receive, send_with_policy)


def demo_page(url: str) -> str:
    """A page from another origin that embeds the app twice: as a web component and in an iframe."""
    parts = snippets(url)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rag_app embedded</title>
<style>body{{font-family:sans-serif;margin:2em}} section{{margin-bottom:3em}} pre{{background:#f4f4f4;padding:1em}}</style>
</head><body>
<h1>rag_app embedded in another page</h1>
<section id="web-component"><h2>As a web component</h2><pre>{html.escape(parts["web_component"])}</pre>
{parts["web_component"]}</section>
<section id="iframe"><h2>In an iframe</h2><pre>{html.escape(parts["iframe"])}</pre>
{parts["iframe"]}</section>
</body></html>"""
