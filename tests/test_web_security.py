"""The web app under attack, without a browser: cross-site writes, oversized and oddly named uploads,
malformed and oversized requests, unauthenticated WebSockets, and what the API tells about the server."""

import asyncio
import logging
import os
import shutil
import socket

import httpx
import pytest
from conftest import ROOT
from fastapi.testclient import TestClient
from webapp import free_port, serve_in_thread

from rag_app.web.server import create_app

SAMPLE = ROOT / "samples" / "acme-q3-2023.pdf"
EVIL = "https://evil.example.com"
MB = 1024 * 1024


@pytest.fixture
def app(service, settings, with_sample):
    settings.llm_backend = "extractive"
    settings.embed_origins = "https://intranet.example.com"
    app = create_app(service)
    service.preload_model().join()
    return app


@pytest.fixture
def client(app):
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture(scope="module")
def refusing(tmp_path_factory, embeddings, sample_library):
    """(client, settings) of one app shared by the matrices of requests it must refuse: each case asserts that
    nothing was stored, deleted or answered, so a case that changed anything fails there or in the cases after it.
    An app costs about a second to build on 2 cores, and these matrices hold 36 cases."""
    from rag_app.service import RagService
    from rag_app.settings import Settings

    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("RAG_")]:
            patch.delenv(name)
        data = tmp_path_factory.mktemp("refusing") / "data"
        shutil.copytree(sample_library, data)
        settings = Settings(_env_file=None, data_dir=data, collection="test", parse_workers=1, ocr="off")
        settings.llm_backend = "extractive"
        settings.embed_origins = "https://intranet.example.com"
        service = RagService(settings)
        service.embeddings = embeddings
        app = create_app(service)
        service.preload_model().join()
        with TestClient(app, base_url="http://127.0.0.1") as client:
            yield client, settings


def nothing_uploaded(settings) -> bool:
    """No file kept in the uploads folder (its ``.incoming`` folder, where an upload streams to, empty or absent)."""
    uploads = settings.data_dir / "uploads"
    return not [p for p in uploads.rglob("*") if p.is_file()] if uploads.exists() else True


def stored(client) -> list[str]:
    return [d["name"] for d in client.get("/api/documents").json()]


def pdf_form(name: str = "planted.pdf") -> list:
    return [("files", (name, SAMPLE.read_bytes(), "application/pdf"))]


# ----- 1. cross-site writes --------------------------------------------------------------------

FOREIGN = [
    {"origin": EVIL},
    {"origin": "null"},  # sandboxed frames, file:// pages, privacy redirects
    {"referer": EVIL + "/innocent-page.html"},  # a browser that sent no Origin
    {"origin": "http://127.0.0.1.evil.example.com"},
    {"sec-fetch-site": "cross-site"},
]


@pytest.mark.parametrize("headers", FOREIGN)
def test_cross_site_upload_and_delete_are_refused(refusing, headers):
    client, settings = refusing
    upload = client.post("/api/documents", files=pdf_form(), headers=headers)
    assert upload.status_code == 403 and "cross-site request refused" in upload.json()["error"]
    delete = client.delete("/api/documents/acme-q3-2023.pdf", headers=headers)
    assert delete.status_code == 403
    assert stored(client) == ["acme-q3-2023.pdf"]
    assert nothing_uploaded(settings)


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/gradio_api/upload", None, None),  # Gradio's file upload (multipart)
        ("/gradio_api/queue/join", "text/plain", b'{"fn_index": 0, "data": [], "session_hash": "x"}'),
        ("/gradio_api/run/delete", "application/x-www-form-urlencoded", b"data=acme-q3-2023.pdf"),
        ("/gradio_api/call/delete", "application/json", b'{"data": ["acme-q3-2023.pdf"]}'),
        ("/api/ask", "text/plain", b'{"question": "margin?"}'),
    ],
)
def test_cross_site_posts_to_gradio_and_the_api_are_refused_in_every_simple_form(refusing, path, content_type, body):
    client, _ = refusing
    headers = {"origin": EVIL, **({"content-type": content_type} if content_type else {})}
    if body is None:
        response = client.post(path, files=[("files", ("x.pdf", SAMPLE.read_bytes()))], headers={"origin": EVIL})
    else:
        response = client.post(path, content=body, headers=headers)
    assert response.status_code == 403 and "--embed-origins" in response.json()["error"]
    assert stored(client) == ["acme-q3-2023.pdf"]


def test_cross_site_upload_with_credentials_is_refused(service, settings):
    """Auth does not replace the origin check: a logged-in browser sends its credentials along."""
    settings.llm_backend = "extractive"
    with TestClient(create_app(service, [("alice", "pw")]), base_url="http://127.0.0.1") as client:
        refused = client.post("/api/documents", files=pdf_form(), auth=("alice", "pw"), headers={"origin": EVIL})
        assert refused.status_code == 403
        assert "planted.pdf" not in client.get("/api/documents", auth=("alice", "pw")).text


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, scripts, the CLI, gradio_client
        {"origin": "http://127.0.0.1"},  # the app's own page
        {"referer": "http://127.0.0.1/?view=api"},
        {"origin": "https://intranet.example.com"},  # --embed-origins
        {"origin": "https://intranet.example.com:443"},
    ],
)
def test_same_origin_allowed_origins_and_scripts_may_write(client, headers):
    response = client.post("/api/documents", files=pdf_form("mine.pdf"), headers=headers)
    assert response.status_code == 200 and response.json()["files"][0]["status"] == "ingested"
    assert client.delete("/api/documents/mine.pdf", headers=headers).status_code == 200


# a reverse proxy says where the browser sent the request; so could anyone else
PROXIED = {"origin": "https://qa.example.com", "x-forwarded-host": "qa.example.com", "x-forwarded-proto": "https"}


def test_the_forwarded_host_is_believed_only_from_a_trusted_proxy(service, settings):
    """The TestClient connects from "testclient": untrusted by default, so a request that says it was
    forwarded for qa.example.com, with that Origin, is a cross-site write; from a proxy of
    --forwarded-allow-ips it is the app's own origin."""
    settings.llm_backend = "extractive"
    with TestClient(create_app(service), base_url="http://127.0.0.1") as client:
        refused = client.post("/api/documents", files=pdf_form("mine.pdf"), headers=PROXIED)
        assert refused.status_code == 403 and "cross-site request refused" in refused.json()["error"]
    settings.forwarded_allow_ips = "10.0.0.1, testclient"
    with TestClient(create_app(service), base_url="http://127.0.0.1") as client:
        response = client.post("/api/documents", files=pdf_form("mine.pdf"), headers=PROXIED)
        assert response.status_code == 200 and response.json()["files"][0]["status"] == "ingested"


def test_the_share_link_is_the_apps_own_origin(service, settings):
    from rag_app.web.server import PublicLinks

    settings.llm_backend = "extractive"
    links = PublicLinks("http://127.0.0.1:7860/", share="https://0123abcd.gradio.live/")
    with TestClient(create_app(service, links=links), base_url="http://127.0.0.1") as client:
        shared = client.post("/api/documents", files=pdf_form(), headers={"origin": "https://0123abcd.gradio.live"})
        assert shared.status_code == 200
        other = client.post("/api/documents", files=pdf_form(), headers={"origin": "https://other.gradio.live"})
        assert other.status_code == 403


def test_reading_from_another_origin_is_not_blocked_by_the_guard(client):
    """Reads stay for CORS to decide (the browser withholds the answer from pages that are not allowed)."""
    assert client.get("/api/health", headers={"origin": EVIL}).status_code == 200


# ----- 2b. DNS rebinding: another name for 127.0.0.1 -----------------------------------------------

REBOUND = ["evil.example.com:7860", "evil.example.com", "127.0.0.1.evil.example.com:7860", "192.168.1.5:7860"]


@pytest.mark.parametrize("host", REBOUND)
def test_a_page_reaching_the_app_under_another_name_reads_and_writes_nothing(refusing, host):
    """A rebinding page is same-origin to the browser: no Origin check or CORS stops it; its Host does.
    X-Forwarded-Host, which such a page can set, does not help it."""
    client, _ = refusing
    headers = {"host": host, "x-forwarded-host": "127.0.0.1:7860"}
    for response in (
        client.get("/api/documents", headers=headers),
        client.get("/api/documents/acme-q3-2023.pdf/file", headers=headers),
        client.get("/", headers=headers),
        client.post("/api/ask", json={"question": "What was the gross margin?"}, headers=headers),
        client.delete("/api/documents/acme-q3-2023.pdf", headers=headers),
    ):
        assert response.status_code == 403, response.request.url
        reason = response.json()["error"]
        assert "DNS rebinding" in reason and "--allowed-hosts" in reason and "ACME" not in response.text
    assert stored(client) == ["acme-q3-2023.pdf"]


@pytest.mark.parametrize("host", ["127.0.0.1:7860", "localhost:7860", "[::1]:7860", "rag.localhost", "127.0.0.2"])
def test_this_machines_names_are_answered(refusing, host):
    client, _ = refusing
    assert client.get("/api/documents", headers={"host": host}).status_code == 200


def test_allowed_hosts_and_the_share_links_name_are_answered(service, settings):
    from rag_app.web.server import PublicLinks

    settings.llm_backend = "extractive"
    settings.allowed_hosts = "rag.example.com, Docs.Example.com:443"
    links = PublicLinks("http://127.0.0.1:7860/", share="https://0123abcd.gradio.live/")
    with TestClient(create_app(service, links=links), base_url="http://127.0.0.1") as client:
        for host in ("rag.example.com", "docs.example.com", "0123abcd.gradio.live"):
            assert client.get("/api/health", headers={"host": host}).status_code == 200, host
        assert client.get("/api/health", headers={"host": "other.gradio.live"}).status_code == 403


def test_an_app_listening_on_every_interface_answers_to_any_name(service, settings):
    """Bound to 0.0.0.0 it is reached by addresses and names it cannot know (auth protects it there)."""
    settings.llm_backend = "extractive"
    settings.host = "0.0.0.0"
    with TestClient(create_app(service), base_url="http://127.0.0.1") as client:
        assert client.get("/api/health", headers={"host": "192.168.1.5:7860"}).status_code == 200


# ----- 3. upload size, counted while the body streams in ------------------------------------------


def streamed_post(app, path: str, pieces, content_type: str, length: int | None = None) -> tuple[int, int, str]:
    """POST the body ``pieces`` yields (bytes), streamed: chunked, or with ``length`` as its Content-Length;
    returns the status, how many bytes the app pulled from the stream, and the reply."""
    sent = 0

    async def body():
        nonlocal sent
        for piece in pieces:
            sent += len(piece)
            yield piece

    async def post():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            headers = {"content-type": content_type, **({"content-length": str(length)} if length else {})}
            return await client.post(path, content=body(), headers=headers)

    response = asyncio.run(post())
    return response.status_code, sent, response.text


def multipart_pieces(sizes: list[int], piece: int = 64 * 1024):
    """A multipart body of PDF-looking files of ``sizes`` bytes, 64 KiB at a time."""
    for i, size in enumerate(sizes):
        yield b'--b0undary\r\nContent-Disposition: form-data; name="files"; filename="big%d.pdf"\r\n\r\n%%PDF-1.4\n' % i
        for _ in range(0, size, piece):
            yield b"0" * piece
        yield b"\r\n"
    yield b"--b0undary--\r\n"


MULTIPART = "multipart/form-data; boundary=b0undary"


def chunked_upload(app, path: str, total: int) -> tuple[int, int, str]:
    """POST one file of ``total`` bytes as a chunked multipart stream (no Content-Length)."""
    return streamed_post(app, path, multipart_pieces([total]), MULTIPART)


@pytest.mark.parametrize("path", ["/api/documents", "/gradio_api/upload"])
def test_oversized_chunked_upload_is_refused_while_streaming(app, settings, path):
    settings.max_upload_mb = 1
    status, pulled, text = chunked_upload(app, path, 40 * MB)
    assert status == 413 and "limit of 1 MB" in text
    assert pulled < 2 * MB, f"the server read {pulled / MB:.0f} MB of a 40 MB upload before refusing it"


@pytest.mark.parametrize("path", ["/api/documents", "/gradio_api/upload"])
def test_an_upload_over_the_total_limit_is_refused_while_streaming(app, settings, path):
    """Files each under the per-file limit, together over the per-request one (8 x 90 MB, scaled down)."""
    settings.max_upload_mb, settings.max_upload_total_mb = 2, 5
    status, pulled, text = streamed_post(app, path, multipart_pieces([int(1.5 * MB)] * 8), MULTIPART)
    assert status == 413 and "limit of 5 MB together" in text and "--max-upload-total-mb" in text
    assert pulled < 6 * MB, f"the server read {pulled / MB:.0f} MB of a 12 MB upload before refusing it"
    assert stored_names_of(app) == ["acme-q3-2023.pdf"]


def test_an_upload_announcing_too_many_bytes_is_refused_before_it_is_read(app, settings):
    settings.max_upload_total_mb = 5
    status, pulled, text = streamed_post(app, "/api/documents", multipart_pieces([MB] * 8), MULTIPART, 8 * MB + 900)
    assert status == 413 and "together" in text and pulled < MB


JSON_ROUTES = ["/api/ask", "/api/chat", "/api/summarize", "/gradio_api/queue/join", "/gradio_api/call/ask"]


def json_pieces(total: int):
    yield b'{"question": "margin?", "history": [{"role": "user", "content": "'
    for _ in range(0, total, 64 * 1024):
        yield b"x" * (64 * 1024)
    yield b'"}]}'


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("announced", [False, True])
def test_a_json_body_over_the_limit_is_refused_before_it_is_parsed(app, settings, path, announced):
    """A 40 MB body (a 400 MB one, scaled down) is refused once 64 KB have come in, never parsed in full."""
    settings.max_request_kb = 64
    length = 40 * MB + 80 if announced else None
    status, pulled, text = streamed_post(app, path, json_pieces(40 * MB), "application/json", length)
    assert status == 413, text
    assert "limit of 64 KB" in text and "--max-request-kb" in text
    assert pulled < MB, f"the server read {pulled / MB:.0f} MB of a 40 MB body before refusing it"


def test_a_json_body_under_the_limit_is_answered(client, settings):
    settings.max_request_kb = 64
    history = [{"role": "user", "content": "x" * 20_000}, {"role": "assistant", "content": "y" * 20_000}]
    assert client.post("/api/ask", json={"question": "margin?", "history": history}).status_code == 200


@pytest.mark.slow  # 40 MB through the upload, traced by tracemalloc: ~6 s
def test_uploaded_files_are_copied_piece_by_piece_not_held_in_memory(app, settings):
    """A 40 MB file uploaded to /api/documents: what Python allocates meanwhile stays far below its size."""
    import tracemalloc

    tracemalloc.start()
    try:
        status, _, text = streamed_post(app, "/api/documents", multipart_pieces([40 * MB]), MULTIPART)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status in (200, 422) and "big0.pdf" in text, text  # stored or failed as a damaged PDF, never refused
    assert peak < 12 * MB, f"{peak / MB:.0f} MB allocated while a 40 MB upload was stored"


def stored_names_of(app) -> list[str]:
    with TestClient(app, base_url="http://127.0.0.1") as client:
        return stored(client)


def test_upload_just_under_the_limit_reaches_the_route(client, settings):
    settings.max_upload_mb = 1
    response = client.post("/api/documents", files=[("files", ("tool.exe", b"MZ" * 500_000))])  # 0.95 MB
    assert response.status_code == 415, "refused for its type by the route, not for its size on the way"


def test_part_counter_finds_boundaries_split_across_chunks():
    from rag_app.web.guard import PartCounter

    counter = PartCounter("multipart/form-data; boundary=XyZ")
    sizes = [counter.feed(chunk) for chunk in (b"--X", b"yZ\r\nhead\r\n\r\n" + b"1" * 100, b"\r\n--", b"XyZ12")]
    assert sizes[1] == len(b"\r\nhead\r\n\r\n") + 100 and sizes[-1] == 2


# ----- 4. long file names ---------------------------------------------------------------------------


def test_150_character_chinese_name_is_shortened_and_the_other_file_still_ingests(client, settings):
    long_name = "第三季度财务报告" * 18 + "附件.pdf"  # 150 characters, 444 bytes of UTF-8
    assert len(long_name) == 150
    notes = ("notes.md", b"# Notes\nThe board approved the budget for 2024.")
    response = client.post("/api/documents", files=[("files", (long_name, SAMPLE.read_bytes())), ("files", notes)])
    assert response.status_code == 200
    files = response.json()["files"]
    assert [f["status"] for f in files] == ["ingested", "ingested"]
    short = files[0]["name"]
    assert len(short.encode()) <= 255 and short.endswith(".pdf") and short.startswith("第三季度财务报告")
    assert f"stored as {short!r}" in files[0]["note"] and files[1]["note"] is None
    assert short in stored(client) and (settings.data_dir / "uploads" / "test" / short).is_file()
    # another long name with the same start is a different file, not a replacement
    other = "第三季度财务报告" * 18 + "附录.pdf"
    again = client.post("/api/documents", files=[("files", (other, SAMPLE.read_bytes()))]).json()["files"][0]
    assert again["status"] == "ingested" and again["name"] != short


# ----- 5. malformed and oversized requests, paths, WebSockets ----------------------------------------


def test_chat_with_a_malformed_history_is_400(client):
    response = client.post("/api/chat", json={"prompt": "x", "history": [5]})
    assert response.status_code == 400 and "history" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/ask", {"question": "margin? " + "x" * 1_000_000}),
        ("/api/ask", {"question": "margin? " + "x" * 5000, "stream": True}),
        ("/api/chat", {"prompt": "margin? " + "x" * 5000}),
    ],
)
def test_a_question_over_the_limit_is_400_and_not_echoed(refusing, path, body):
    client, _ = refusing
    response = client.post(path, json=body)
    assert response.status_code == 400 and "over the limit of 4,000" in response.json()["error"]
    assert "RAG_MAX_QUESTION_CHARS" in response.json()["error"] and len(response.text) < 500


def test_a_question_at_the_limit_is_answered(client, settings):
    settings.max_question_chars = 100
    assert client.post("/api/ask", json={"question": "What was the gross margin?".ljust(100)}).status_code == 200
    assert client.post("/api/ask", json={"question": "x" * 101}).status_code == 400


def test_health_documents_and_upload_reports_show_no_server_paths(client, settings, tmp_path):
    report = client.post("/api/documents", files=pdf_form("report.pdf"))
    answers = [client.get("/api/health"), client.get("/api/documents"), report]
    for response in answers:
        assert response.status_code == 200
        assert str(tmp_path) not in response.text and str(settings.data_dir) not in response.text, response.text
    assert client.get("/api/health").json()["store"] == "embedded"
    assert "path" not in client.get("/api/documents").json()[0] and "path" not in report.json()["files"][0]


def test_an_answers_model_fields_name_no_server_directory():
    from rag_app.web.redact import public_answer

    answer = {
        "answer": "The file /etc/hosts is quoted as the document wrote it [1].",
        "model": "/home/ana/models/Qwen2.5-7B-Instruct",
        "model_notes": ["LoRA adapter /home/ana/adapters/finance applied", "fast path: self-check passed"],
    }
    shown = public_answer(answer)
    assert shown["model"] == "Qwen2.5-7B-Instruct" and "/home/ana" not in " ".join(shown["model_notes"])
    assert shown["answer"] == answer["answer"] and answer["model"].startswith("/home")  # the answer itself untouched


def websocket_handshake(port: int, path: str = "/gradio_api/queue/join") -> str:
    """The server's reply to a WebSocket upgrade without credentials: its status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        return sock.recv(4096).decode("latin-1").split("\r\n")[0]


def test_websocket_without_credentials_is_refused_cleanly(service, settings):
    settings.llm_backend = "extractive"
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    port = free_port()
    server = serve_in_thread(create_app(service, [("alice", "pw")]), port)
    logging.getLogger("uvicorn.error").addHandler(handler)
    try:
        statuses = [websocket_handshake(port) for _ in range(3)]
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
        server.should_exit = True
    assert all(status.split()[1] in ("401", "403") for status in statuses), statuses
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


# ----- 6. collection names, lone surrogates, duplicate names in one upload ------------------------------

BAD_COLLECTIONS = ["../../../tmp/x", "a..b", "%2e%2e", "-lead", "名字", "x" * 300, "a/b", ""]


@pytest.mark.parametrize("name", BAD_COLLECTIONS)
def test_collection_names_are_checked_at_the_edge_and_nothing_leaks(refusing, name):
    client, settings = refusing
    from rag_app.settings import COLLECTION_NAME_PATTERN

    before = client.get("/api/health").json()["collections"]
    responses = [
        client.post("/api/documents", params={"collection": name}, files=pdf_form()),
        client.get("/api/documents", params={"collection": name}),
        client.delete("/api/documents/acme-q3-2023.pdf", params={"collection": name}),
        client.get("/api/documents/acme-q3-2023.pdf/file", params={"collection": name}),
        client.post("/api/ask", json={"question": "margin?", "collection": name}),
        client.post("/api/summarize", json={"files": ["acme-q3-2023.pdf"], "collection": name}),
    ]
    for response in responses:
        assert response.status_code == 400, (response.request.url, response.text)
        assert "invalid collection name" in response.json()["error"]
        assert COLLECTION_NAME_PATTERN in response.json()["error"]
    assert client.get("/api/health").json()["collections"] == before
    assert stored(client) == ["acme-q3-2023.pdf"]
    assert [p.name for p in (settings.data_dir / "uploads").glob("*") if p.name != ".incoming"] == []
    from rag_app.service import RagService

    assert RagService(settings).store().pending_writes() == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", b'{"prompt": "margin?", "history": [["\\ud800", "x"]]}'),
        ("/api/chat", b'{"prompt": "margin\\udc00?"}'),
        ("/api/ask", b'{"question": "\\ud800"}'),
        ("/api/ask", b'{"question": "margin?", "history": [{"role": "user", "content": "\\udfff"}]}'),
        ("/api/ask", b'{"question": "margin?", "files": ["\\ud800.pdf"]}'),
        ("/api/summarize", b'{"files": ["\\ud800"]}'),
    ],
)
def test_a_lone_surrogate_anywhere_in_a_request_is_400(refusing, path, body):
    client, _ = refusing
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "invalid" in response.json()["error"] or "surrogate" in response.json()["error"]


def test_a_lone_surrogate_from_python_callers_is_refused_with_a_reason():
    from rag_app.errors import InvalidRequestError
    from rag_app.requests import AskRequest

    for fields in (
        {"question": "\ud800"},
        {"question": "ok", "history": [["\ud800", "a"]]},
        {"question": "ok", "files": ["\udcff"]},
    ):
        with pytest.raises(InvalidRequestError, match="lone surrogate"):
            AskRequest.of(None, **fields)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["dup.pdf", "dup.pdf"], ["dup.pdf", "dup (2).pdf"]),
        (["a/b.pdf", "a_b.pdf"], ["a_b.pdf", "a_b (2).pdf"]),
        (["x.pdf", "x.pdf", "x.pdf"], ["x.pdf", "x (2).pdf", "x (3).pdf"]),
    ],
)
def test_files_of_one_upload_with_the_same_name_both_survive(client, settings, tmp_path, names, expected):
    from pdfgen import write_pdf

    forms = []
    for i, name in enumerate(names):
        pdf = write_pdf(tmp_path / f"{i}.pdf", [f"Part {i} of the upload: order number {4400 + i}."])
        forms.append(("files", (name, pdf.read_bytes(), "application/pdf")))
    files = client.post("/api/documents", files=forms).json()["files"]
    assert [f["name"] for f in files] == expected and {f["status"] for f in files} == {"ingested"}
    assert all("renamed: another file of this upload is named" in f["note"] for f in files[1:])
    assert set(expected) <= set(stored(client))
    on_disk = sorted(p.name for p in (settings.data_dir / "uploads" / "test").iterdir())
    assert on_disk == sorted(expected)
    texts = [client.get(f"/api/documents/{n}/file").content for n in expected]
    assert len(set(texts)) == len(expected), "each name holds its own file"
