"""Server mode: the same code against a real `chroma run` started by this test."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DOCUGAMI
from pdfgen import write_pdf

from rag_app.errors import StoreUnavailableError
from rag_app.requests import SearchRequest
from rag_app.service import RagService
from rag_app.settings import Settings

pytestmark = pytest.mark.usefixtures("corpus")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    log = (tmp_path / "chroma.log").open("w")
    process = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "server-db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "chroma.log").read_text()
            time.sleep(0.3)
    yield port
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.slow  # starts a `chroma run` server
def test_ingest_and_search_through_a_chroma_server(chroma_server, tmp_path, embeddings, clean_env):
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "local", chroma_host="127.0.0.1", chroma_port=chroma_server,
        collection="served", parse_workers=1,
    )  # fmt: skip
    service = RagService(settings)
    service.embeddings = embeddings
    pdf = write_pdf(tmp_path / "memo.pdf", ["Quarterly memo.", "The board approved a dividend of 24 cents."])
    report = service.ingest([pdf, DOCUGAMI / "2023 Q2 AAPL.pdf"])
    assert report.ok and {f.status.value for f in report.files} == {"ingested"}
    assert service.ingest([pdf]).files[0].status.value == "unchanged"
    hit = service.search(SearchRequest(query="dividend approved by the board", k=1)).hits[0]
    assert (hit.file, hit.page) == ("memo.pdf", 2)
    assert service.collections() == ["served"]
    assert not (tmp_path / "local" / "chroma").exists(), "server mode must not create a local database"


def test_unreachable_server_is_a_clear_error(tmp_path, clean_env):
    settings = Settings(_env_file=None, data_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=free_port())
    with pytest.raises(StoreUnavailableError, match=r"cannot open the Chroma server at 127\.0\.0\.1:\d+"):
        RagService(settings).list_documents()
