"""The HTTP API with FastAPI's TestClient: every route, every error status, auth, hostile uploads."""

import base64
import json
import re

import pytest
from conftest import ROOT
from fastapi.testclient import TestClient

from rag_app.health import ModelState
from rag_app.web.server import create_app

SAMPLE = ROOT / "samples" / "acme-q3-2023.pdf"
ANSWER_KEYS = {"question", "answer", "strategy", "model", "sources", "timings", "tokens", "cited", "invalid_citations"}


@pytest.fixture
def client(service, settings, with_sample):
    settings.llm_backend = "extractive"
    app = create_app(service)
    service.preload_model().join()
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def upload(client, *files, **params):
    return client.post("/api/documents", files=[("files", f) for f in files], params=params)


def sse_events(text: str) -> list[tuple[str, dict]]:
    return [(m[0], json.loads(m[1])) for m in re.findall(r"event: (\w+)\ndata: (.*)\n\n", text)]


def test_health_names_model_embedding_collection_and_count(client):
    health = client.get("/api/health").json()
    assert health["mode"] == "extractive" and health["collection"] == "test" and health["documents"] == 1
    assert health["embedding"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert health["embedding"]["device"] == "cpu" and health["embedding"]["precision"] in ("bf16", "fp32")
    assert "RAG_LLM_BACKEND=extractive" in health["no_model_reason"]


def test_ask_returns_the_same_json_as_the_cli(client):
    answer = client.post("/api/ask", json={"question": "What was the gross margin?", "k": 2}).json()
    assert ANSWER_KEYS <= set(answer)
    assert answer["sources"][0]["file"] == "acme-q3-2023.pdf" and answer["sources"][0]["page"] == 1
    assert "41.5 percent" in answer["answer"] and answer["cited"]


def test_ask_streams_server_sent_events(client):
    response = client.post("/api/ask", json={"question": "What was the gross margin?", "stream": True, "k": 3})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds.index("sources") < kinds.index("token") < kinds.index("done") == len(kinds) - 1
    usage = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
    documented = re.search(r"# events: ([a-z, ]+)", usage).group(1).split(", ")
    assert list(dict.fromkeys(kinds)) == documented, "docs/usage.md lists the events in the order they arrive"
    tokens = "".join(data["text"] for kind, data in events if kind == "token")
    done = events[-1][1]
    assert tokens.strip() == done["answer"] and len(events[kinds.index("sources")][1]["sources"]) == 3


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"question": "  "}, 400, "the question is empty"),
        ({"question": "margin?", "k": 0}, 400, "k must be between 1 and 200"),
        ({"question": "margin?", "strategy": "magic"}, 400, "unknown strategy 'magic'"),
        ({"question": "margin?", "collection": "nope"}, 404, "no collection named 'nope'"),
        ({"question": "margin?", "files": ["missing.pdf"]}, 404, "no document named 'missing.pdf'"),
        ({"k": 3}, 400, "invalid request: question is required"),
        ({"question": "margin?", "history": [{"who": 1}]}, 400, "history must be a list"),
    ],
)
def test_bad_ask_requests_get_json_errors(client, body, status, reason):
    response = client.post("/api/ask", json=body)
    assert response.status_code == status and response.headers["content-type"] == "application/json"
    assert reason in response.json()["error"] and response.json()["status"] == status


def test_malformed_json_is_400_not_a_traceback(client):
    response = client.post("/api/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "invalid request" in response.json()["error"]


def test_chatglm_compatible_chat(client):
    response = client.post("/api/chat", json={"prompt": "What was the gross margin?", "history": [["hi", "hello"]]})
    body = response.json()
    assert set(body) >= {"response", "history", "status", "time"} and body["status"] == 200
    assert body["history"] == [["hi", "hello"], ["What was the gross margin?", body["response"]]]
    assert "41.5" in body["response"] and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["time"])


def test_upload_list_open_and_delete_documents(client, tmp_path):
    notes = tmp_path / "meeting notes.md"
    notes.write_text("# Board meeting\nThe board approved the budget for 2024.", encoding="utf-8")
    report = upload(client, ("report.pdf", SAMPLE.read_bytes()), (notes.name, notes.read_bytes())).json()
    assert {f["name"]: f["status"] for f in report["files"]} == {
        "report.pdf": "ingested",
        "meeting notes.md": "ingested",
    }
    again = upload(client, ("report.pdf", SAMPLE.read_bytes())).json()
    assert again["files"][0]["status"] == "unchanged"
    names = [d["name"] for d in client.get("/api/documents").json()]
    assert names == ["acme-q3-2023.pdf", "meeting notes.md", "report.pdf"]
    pdf = client.get("/api/documents/report.pdf/file")
    assert (
        pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    )
    assert client.delete("/api/documents/meeting notes.md").json()["deleted"]["name"] == "meeting notes.md"
    assert client.delete("/api/documents/meeting notes.md").status_code == 404
    assert client.get("/api/documents/nothing.pdf/file").status_code == 404


def test_not_found_messages_name_api_fields_not_command_line_flags(client):
    replies = [
        client.delete("/api/documents/nothing.pdf"),
        client.post("/api/summarize", json={"files": ["nothing.pdf"]}),
        client.post("/api/ask", json={"question": "margin?", "files": ["nothing.pdf"], "strategy": "extractive"}),
    ]
    for reply in replies:
        error = reply.json()["error"]
        assert reply.status_code == 404 and "nothing.pdf" in error
        assert "--" not in error and "GET /api/documents lists the stored names" in error


def test_fake_pdf_is_refused_with_415_and_the_others_still_ingest(client):
    fake = ("invoice.pdf", b"<html>this is not a pdf</html>")
    alone = upload(client, fake)
    assert alone.status_code == 415 and "invoice.pdf: not a PDF" in alone.json()["error"]
    mixed = upload(client, fake, ("good.pdf", SAMPLE.read_bytes()))
    files = {f["name"]: f for f in mixed.json()["files"]}
    assert mixed.status_code == 200 and files["good.pdf"]["status"] == "ingested"
    assert files["invoice.pdf"]["status"] == "failed" and "not a PDF" in files["invoice.pdf"]["reason"]
    assert upload(client, ("virus.exe", b"MZ\x90\x00")).status_code == 415


def test_path_traversal_names_land_harmlessly_inside_the_data_directory(client, settings, tmp_path):
    response = upload(
        client, ("../../etc/passwd.pdf", SAMPLE.read_bytes()), ("..\\..\\boot.ini.pdf", SAMPLE.read_bytes())
    )
    assert response.status_code == 200
    names = [f["name"] for f in response.json()["files"]]
    assert names == ["etc_passwd.pdf", "boot.ini.pdf"]
    stored = sorted(p.name for p in (settings.data_dir / "uploads" / "test").iterdir())
    assert stored == ["boot.ini.pdf", "etc_passwd.pdf"]
    assert not list(tmp_path.parent.glob("**/etc/passwd.pdf"))


def test_too_large_upload_is_413(client, settings):
    settings.max_upload_mb = 1
    big = b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024)
    response = upload(client, ("big.pdf", big))
    assert response.status_code == 413 and "over" in response.json()["error"]


def test_model_still_loading_or_failed_is_503(client, service):
    service.model_state = ModelState.LOADING
    loading = client.post("/api/ask", json={"question": "margin?", "strategy": "stuff"})
    assert loading.status_code == 503 and "still loading" in loading.json()["error"]
    assert client.post("/api/ask", json={"question": "margin?", "strategy": "extractive"}).status_code == 200
    service.model_state, service.model_error = ModelState.FAILED, "out of memory"
    failed = client.post("/api/ask", json={"question": "margin?"})
    assert failed.status_code == 503 and "could not be loaded: out of memory" in failed.json()["error"]


def test_unexpected_errors_are_json_500(client, service, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "list_documents", broken)
    client = TestClient(
        client.app, base_url=client.base_url, raise_server_exceptions=False
    )  # as a real server: respond, do not raise
    response = client.get("/api/documents")
    assert (
        response.status_code == 500 and response.json()["error"] == "internal error: RuntimeError; see the server log"
    )
    assert "Traceback" not in response.text


def test_auth_protects_the_api_and_the_page(service, settings):
    settings.llm_backend = "extractive"
    with TestClient(
        create_app(service, [("alice", "s3cret"), ("bob", "pässwört")]), base_url="http://127.0.0.1"
    ) as client:
        for path in ("/api/health", "/"):
            denied = client.get(path)
            assert denied.status_code == 401 and denied.headers["www-authenticate"] == 'Basic realm="rag_app"'
        assert client.get("/api/health", auth=("alice", "wrong")).status_code == 401
        assert client.get("/api/health", auth=("alice", "s3cret")).status_code == 200
        token = base64.b64encode("bob:pässwört".encode()).decode()
        assert client.get("/", headers={"authorization": f"Basic {token}"}).status_code == 200


def test_api_documentation_is_served(client):
    assert client.get("/api/openapi.json").json()["paths"].keys() >= {"/api/ask", "/api/chat", "/api/documents"}
