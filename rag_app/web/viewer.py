"""The source viewer: PDF.js (pdfjs-dist, served from rag_app/web/static/vendor/pdfjs) shows a stored PDF at the
cited page with the cited passage highlighted, inside the page's sources column.

``GET /viewer/?doc=NAME&collection=C&page=N&q=passage`` is a static page; it fetches the PDF from the app's
own ``/api/documents/{name}/file`` like any other client, so auth and collections apply unchanged. It takes
a stored document's name, never a URL: what it loads, and what its "open the file" link opens, is always
that route of this app (a ``javascript:`` or foreign URL has no way in).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

STATIC = Path(__file__).parent / "static"
MAX_PASSAGE_CHARS = 300  # the viewer tries the passage, then shorter openings of it


def add_source_viewer(app) -> None:
    """Serve the viewer page at /viewer/ and PDF.js under /viewer/static/ (before the page is mounted at /)."""
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    @app.get("/viewer/", include_in_schema=False)
    def viewer_page():
        return FileResponse(STATIC / "viewer.html", media_type="text/html")

    app.mount("/viewer/static", StaticFiles(directory=STATIC), name="viewer-static")


def viewer_link(
    name: str, page: int, passage: str = "", base: str = "", label: str | None = None, collection: str | None = None
) -> str:
    """URL of the viewer showing the stored document ``name`` at ``page`` with ``passage`` highlighted."""
    params = {"doc": name, "page": page, "q": " ".join(passage.split())[:MAX_PASSAGE_CHARS]}
    if collection:
        params["collection"] = collection
    if label:
        params["label"] = label
    return f"{base}viewer/?{urlencode(params)}"
