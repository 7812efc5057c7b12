"""A chunk table (the SQLite file that is the only copy of the chunks' texts beside an embedded Chroma) that is
deleted, emptied or damaged is a named state: health says "degraded" and why, searches and answers name the
documents that lost their texts and the one command that restores them (never a traceback, never "nothing
matches"), a damaged file is moved aside and never read again, and ``python -m ingest --restore-texts`` stores
them again from their uploads or the paths they were read from, naming what it cannot find."""

import json
import sqlite3

import pytest
from conftest import ROOT, call_cli, cli_env
from fastapi.testclient import TestClient
from pdfgen import write_pdf

from rag_app.errors import TextsLostError
from rag_app.requests import AskRequest, SearchRequest
from rag_app.service import RagService

SAMPLE = ROOT / "samples" / "acme-q3-2023.pdf"
COMMAND = "python -m ingest --restore-texts --collection test"
DAMAGE = ["deleted", "emptied", "garbage", "bad-header"]


@pytest.fixture
def stored(service, settings, tmp_path):
    """Three documents: two read from paths by the CLI, one uploaded."""
    notes = write_pdf(tmp_path / "docs" / "orbital.pdf", ["Contract ZX-4471 was signed with Orbital Freight in March."])
    service.ingest([SAMPLE, notes])
    upload = write_pdf(tmp_path / "up" / "dividend.pdf", ["Dividends were 5 cents a share in 2023."])
    assert service.ingest_uploads([("dividend.pdf", upload.read_bytes())]).ok
    return service


def chunk_table(service):
    return service.store(with_model=True).index().table.path


def damage(path, kind: str) -> None:
    """What a user, a full disk or a crash can do to the file (its WAL checkpointed first, as a clean exit does)."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if kind == "deleted":
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    elif kind == "emptied":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * (path.stat().st_size // 256 + 1))
    else:
        with path.open("r+b") as handle:
            handle.write(b"this is not SQLite" * 6)


def env_of(settings) -> dict:
    return cli_env(settings.data_dir, RAG_COLLECTION="test")


# The quick subset (-m "not slow") keeps one damage of each kind of handling, each seen by another reader: a damaged
# file moved aside, seen by the running app; a deleted one, seen by a new process. The full run takes all eight.
QUICK = {("the running app", "garbage"), ("a new process", "deleted")}
MATRIX = [
    pytest.param(who, kind, marks=() if (who, kind) in QUICK else pytest.mark.slow)
    for who in ("the running app", "a new process")
    for kind in DAMAGE
]


@pytest.mark.parametrize(("who", "kind"), MATRIX)
def test_a_lost_or_damaged_chunk_table_is_named_and_restored(stored, settings, kind, who):
    path = chunk_table(stored)
    damage(path, kind)
    service = stored if who == "the running app" else RagService(settings)
    service.embeddings = stored.embeddings
    with pytest.raises(TextsLostError) as lost:
        service.search(SearchRequest(query="gross margin", k=3))
    message = str(lost.value)
    assert COMMAND in message and all(n in message for n in ("acme-q3-2023.pdf", "orbital.pdf", "dividend.pdf"))
    health = service.health()
    assert health.status == "degraded" and COMMAND in health.problems[0]
    if kind in ("garbage", "bad-header"):
        aside = list(path.parent.glob(path.name + ".damaged-*"))
        assert aside and "moved aside" in message, "a damaged file is moved aside, never read again"
        assert sqlite3.connect(path).execute("PRAGMA quick_check").fetchone() == ("ok",)
    searched = call_cli("rag_app", "search", "gross margin", env=env_of(settings))
    assert searched.returncode == 1 and COMMAND in searched.stderr and "Traceback" not in searched.stderr
    listed = call_cli("ingest", "--list", env=env_of(settings))
    assert listed.returncode == 0 and COMMAND in listed.stderr
    restored = call_cli("ingest", "--restore-texts", "--json", env=env_of(settings))
    assert restored.returncode == 0, restored.stderr
    files = {f["name"]: f for f in json.loads(restored.stdout)["files"]}
    assert set(files) == {"acme-q3-2023.pdf", "orbital.pdf", "dividend.pdf"}
    assert {f["status"] for f in files.values()} == {"replaced"}
    assert all(f["note"] == "its stored chunk texts were missing" for f in files.values())
    hits = service.search(SearchRequest(query="gross margin", k=3)).hits
    assert "41.5 percent" in hits[0].text and service.health().status == "ok"
    again = call_cli("ingest", "--restore-texts", env=env_of(settings))
    assert again.returncode == 0 and "nothing to restore" in again.stdout


def test_the_api_and_the_page_say_what_was_lost_and_what_to_do(stored, settings):
    settings.llm_backend = "extractive"
    from rag_app.web import render
    from rag_app.web.server import create_app

    damage(chunk_table(stored), "garbage")
    with TestClient(create_app(stored), base_url="http://127.0.0.1") as client:
        stored.preload_model().join()
        health = client.get("/api/health").json()
        assert health["status"] == "degraded" and COMMAND in health["problems"][0]
        for path, body in [("/api/ask", {"question": "What was the gross margin?"}),
                           ("/api/ask", {"question": "What was the gross margin?", "stream": True})]:  # fmt: skip
            response = client.post(path, json=body)
            assert COMMAND in response.text and "Traceback" not in response.text
            assert response.status_code == 503 or '"status": 503' in response.text
        assert "No passage" not in client.post("/api/ask", json={"question": "gross margin?"}).text
    status = render.status_markdown(stored.health())
    assert "Store degraded" in status and "acme-q3-2023.pdf" in status and COMMAND in status


def test_documents_that_kept_their_texts_still_answer_and_the_others_are_named(stored, settings):
    """A chunk table that lost some documents (an older copy put back): answers come from the others, with a
    warning naming the lost ones and the command."""
    table = chunk_table(stored)
    sha = stored.store().get_document("orbital.pdf").sha256
    with sqlite3.connect(table) as db:
        for name in ("postings", "chunks", "files", "covers", "stamps"):
            db.execute(f"DELETE FROM {name} WHERE sha = ?", (sha,))
        db.execute("UPDATE state SET version = version + 1")
    answer = stored.answer(AskRequest.of(settings, question="What was the gross margin?", strategy="extractive"))
    assert "41.5 percent" in answer.answer
    assert any("orbital.pdf" in w and COMMAND in w for w in answer.warnings)
    assert not any("acme-q3-2023.pdf" in w for w in answer.warnings)


def test_restoring_names_the_files_it_cannot_find_and_restores_the_others(stored, settings, tmp_path):
    damage(chunk_table(stored), "deleted")
    (tmp_path / "docs" / "orbital.pdf").rename(tmp_path / "moved.pdf")
    restored = call_cli("ingest", "--restore-texts", "--json", env=env_of(settings))
    assert restored.returncode == 1
    files = {f["name"]: f for f in json.loads(restored.stdout)["files"]}
    assert files["orbital.pdf"]["status"] == "failed" and "cannot find its file" in files["orbital.pdf"]["reason"]
    assert files["acme-q3-2023.pdf"]["status"] == files["dividend.pdf"]["status"] == "replaced"
    answer = stored.answer(AskRequest.of(settings, question="dividends per share", strategy="extractive"))
    assert "5 cents" in answer.answer and any("orbital.pdf" in w for w in answer.warnings)
