"""RagService: writes queue inside one app, uploads are kept only once stored, and a running app answers
from what another process (the ingest CLI) wrote."""

import threading

import pytest
from conftest import DOCUGAMI, ODD, cli_env, run_cli
from fastapi.testclient import TestClient
from pdfgen import write_pdf

from rag_app.health import Health, ModelState
from rag_app.records import FileStatus
from rag_app.requests import SearchRequest

pytestmark = pytest.mark.usefixtures("corpus")
LOCKED = ODD / "pypdf" / "encryption__r4-aes-user-password.pdf"


def pdf_bytes(tmp_path, name: str, pages: list[str]) -> bytes:
    return write_pdf(tmp_path / "src" / name, pages).read_bytes()


def test_uploads_inside_one_app_queue_behind_the_write_in_progress(service, tmp_path):
    files = [
        (f"r{i}.pdf", pdf_bytes(tmp_path, f"r{i}.pdf", [f"Report {i} says revenue was {i} million."])) for i in range(3)
    ]
    reports, errors = [], []

    def upload(item):
        try:
            reports.append(service.ingest_uploads([item]))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(item,)) for item in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(f.name for r in reports for f in r.files if f.status is FileStatus.INGESTED) == [
        "r0.pdf",
        "r1.pdf",
        "r2.pdf",
    ]
    assert [d.name for d in service.list_documents()] == ["r0.pdf", "r1.pdf", "r2.pdf"]


def test_a_failed_reupload_keeps_the_stored_file_and_its_chunks(service, tmp_path):
    good = pdf_bytes(tmp_path, "ok.pdf", ["Contract ZX-4471 was signed with Orbital Freight in March."])
    assert service.ingest_uploads([("ok.pdf", good)]).ok
    report = service.ingest_uploads([("ok.pdf", LOCKED.read_bytes())])
    assert report.files[0].status is FileStatus.FAILED and "encrypted" in report.files[0].reason
    assert service.document_file("ok.pdf").read_bytes() == good
    assert "ZX-4471" in service.search(SearchRequest(query="ZX-4471", k=1)).hits[0].text
    uploads = service.uploads_dir("test")
    assert sorted(p.name for p in uploads.iterdir()) == ["ok.pdf"]  # the failed bytes are not kept


def test_deleted_and_failed_uploads_leave_nothing_in_uploads(service, tmp_path):
    good = pdf_bytes(tmp_path, "keep.pdf", ["Dividends were 5 cents a share."])
    report = service.ingest_uploads([("keep.pdf", good), ("locked.pdf", LOCKED.read_bytes())])
    assert {f.name: f.status for f in report.files} == {
        "keep.pdf": FileStatus.INGESTED,
        "locked.pdf": FileStatus.FAILED,
    }
    uploads = service.uploads_dir("test")
    assert sorted(p.name for p in uploads.iterdir()) == ["keep.pdf"]
    service.delete_document("keep.pdf")
    assert list(uploads.iterdir()) == []
    assert not list((service.settings.data_dir / "uploads" / ".incoming").iterdir())


def test_a_file_ingested_from_elsewhere_is_never_deleted_with_its_document(service, tmp_path):
    source = write_pdf(tmp_path / "mine" / "notes.pdf", ["My own notes about the budget."])
    service.ingest([source])
    service.delete_document("notes.pdf")
    assert source.is_file()


def test_health_is_typed(service, settings):
    settings.llm_backend = "extractive"
    service.preload_model().join()
    health = service.health()
    assert isinstance(health, Health) and health.model_state is ModelState.EXTRACTIVE
    assert health.to_dict()["mode"] == "extractive" and health.to_dict()["model_state"] == "extractive"


@pytest.mark.slow
def test_running_app_answers_from_what_the_cli_wrote(service, settings, tmp_path):
    """App up on a data dir; the CLI ingests one filing and deletes another; the next ask sees both changes,
    with k = 4 (where stale handles once dropped the new document silently) and k = 8."""
    from rag_app.web.server import create_app

    settings.llm_backend = "extractive"
    service.ingest([DOCUGAMI / "2023 Q2 AAPL.pdf", DOCUGAMI / "2022 Q3 NVDA.pdf"])
    with TestClient(create_app(service), base_url="http://127.0.0.1") as client:
        service.preload_model().join()
        for k in (4, 8):
            first = client.post("/api/ask", json={"question": "NVIDIA data center revenue", "k": k})
            assert first.status_code == 200 and any(s["file"] == "2022 Q3 NVDA.pdf" for s in first.json()["sources"])
        env = cli_env(settings.data_dir, RAG_COLLECTION="test")
        added = run_cli("ingest", str(DOCUGAMI / "2023 Q1 INTC.pdf"), env=env)
        assert added.returncode == 0, added.stderr
        deleted = run_cli("ingest", "--delete", "2022 Q3 NVDA.pdf", env=env)
        assert deleted.returncode == 0, deleted.stderr
        for k in (4, 8):
            for question in ("Intel gross margin", "NVIDIA data center revenue"):
                response = client.post("/api/ask", json={"question": question, "k": k})
                assert response.status_code == 200, response.text
                files = {s["file"] for s in response.json()["sources"]}
                assert "2022 Q3 NVDA.pdf" not in files
            intel = client.post("/api/ask", json={"question": "Intel gross margin", "k": k}).json()
            assert intel["sources"][0]["file"] == "2023 Q1 INTC.pdf" and intel["cited"]
        names = [d["name"] for d in client.get("/api/documents").json()]
        assert names == ["2023 Q1 INTC.pdf", "2023 Q2 AAPL.pdf"]


def test_the_status_line_says_when_the_fast_path_failed_its_self_check():
    from rag_app.health import EmbeddingStatus
    from rag_app.web.render import status_markdown

    model = {"name": "qwen", "quantization": "4bit", "device": "cuda", "engine": "fast",
             "fast_path_check": {"verdict": "disagreed", "reason": "max logit difference 10.2 > 2.96"}}  # fmt: skip
    health = Health(ModelState.READY, model, "", EmbeddingStatus("m", "cuda", "bf16"), "docs")
    line = status_markdown(health)
    assert "failed its self-check and decodes eagerly" in line and "10.2 &gt; 2.96" in line
    model["fast_path_check"]["verdict"] = "agreed"
    assert "self-check" not in status_markdown(health)
