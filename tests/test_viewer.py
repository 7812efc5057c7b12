"""Citations you can follow: [n] links to its source, sources open in PDF.js at the page, printed page labels."""

from urllib.parse import parse_qs, urlparse

import pytest
from conftest import ROOT

from rag_app.answering.events import Answer, Source
from rag_app.ingestion.page_labels import page_label
from rag_app.records import SearchHit
from rag_app.web.render import link_citations, sources_html

SAMPLE = ROOT / "samples" / "acme-q3-2023.pdf"


def labelled_copy(tmp_path):
    """The sample with printed labels: page 1 is "i", pages 2-3 are numbered from 7."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(SAMPLE).pages:
        writer.add_page(page)
    writer.set_page_label(0, 0, "/r")
    writer.set_page_label(1, 2, "/D", start=7)
    path = tmp_path / "labelled.pdf"
    writer.write(path)
    return path


def test_printed_page_labels_are_read_where_the_pdf_has_them(tmp_path):
    path = labelled_copy(tmp_path)
    assert [page_label(path, p) for p in (1, 2, 3)] == ["i", "7", "8"]
    assert page_label(SAMPLE, 2) is None  # no labels: the page number stands alone


def test_a_source_opens_the_viewer_at_its_page_with_the_quoted_passage():
    hit = SearchHit("acme q3.pdf", 2, 0, "Gross margin was 41.5 percent, compared with 38.9 percent.", 0.4, "s", "i")
    answer = Answer("margin?", "“Gross margin was 41.5 percent” [1]", "extractive", "none", [Source(1, hit, True)])
    markup = sources_html(answer.sources, "margin?", answer, labels={1: "7"}, collection="docs")
    assert "acme q3.pdf, p. 2 (printed 7)</a>" in markup and 'id="rag-source-1"' in markup
    href = markup.split('class="rag-open" href="')[1].split('"')[0].replace("&amp;", "&")
    assert 'target="rag-pdf"' in markup and href.startswith("viewer/?")
    params = parse_qs(urlparse(href).query)
    assert params["doc"] == ["acme q3.pdf"] and params["collection"] == ["docs"] and params["page"] == ["2"]
    assert "file" not in params, "the viewer is given a document's name, never a URL to load"
    assert params["q"] == ["Gross margin was 41.5 percent"] and params["label"] == ["7"]


def test_citations_in_the_answer_link_to_their_source():
    assert (
        link_citations("It was 41.5 percent [1][3].")
        == 'It was 41.5 percent <a class="rag-cite" href="#rag-source-1">[1]</a><a class="rag-cite" href="#rag-source-3">[3]</a>.'
    )


@pytest.fixture
def client(service, settings):
    from fastapi.testclient import TestClient

    from rag_app.web.server import create_app

    settings.llm_backend = "extractive"
    with TestClient(create_app(service), base_url="http://127.0.0.1") as client:
        yield client


def test_the_viewer_and_pdfjs_are_served(client):
    page = client.get("/viewer/")
    assert page.status_code == 200 and "static/viewer.js" in page.text
    script = client.get("/viewer/static/vendor/pdfjs/build/pdf.min.mjs")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert client.get("/viewer/static/vendor/pdfjs/build/pdf.worker.min.mjs").status_code == 200
    assert "Apache License" in client.get("/viewer/static/vendor/pdfjs/LICENSE").text
