"""`rag_app search` on financebench filings: every hit's page is the PDF page its text is on."""

import json

import pypdfium2 as pdfium
import pytest
from conftest import CORPUS, FINANCEBENCH, call_cli, cli_env

from rag_app.text.clean import clean_page_text

pytestmark = [pytest.mark.usefixtures("corpus"), pytest.mark.slow]
DOCS = ["AMCOR_2023Q2_10Q", "NETFLIX_2015_10K"]


def independent_pages(name: str) -> list[str]:
    """Cleaned page texts straight from PDFium (the default parser), outside the ingest pipeline."""
    pdf = pdfium.PdfDocument(FINANCEBENCH / f"{name}.pdf")
    try:
        return [clean_page_text(page.get_textpage().get_text_bounded()) for page in pdf]
    finally:
        pdf.close()


def test_search_hits_carry_the_page_their_text_comes_from(tmp_path):
    env = cli_env(tmp_path / "data", RAG_COLLECTION="fb")
    assert call_cli("ingest", *(str(FINANCEBENCH / f"{d}.pdf") for d in DOCS), "--json", env=env).returncode == 0
    questions = [json.loads(line) for line in (CORPUS / "qa" / "financebench_dev" / "qa.jsonl").open()]
    questions = [q for q in questions if q["doc_name"] in DOCS]
    queries = [q["question"] for q in questions] + ["restructuring liability", "streaming content obligations"]
    result = call_cli("rag_app", "search", "--k", "5", env=env, stdin="\n".join(queries) + "\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(queries)
    pages = {d: independent_pages(d) for d in DOCS}
    checked = 0
    for row in rows:
        for hit in row["hits"]:
            doc = hit["file"].removesuffix(".pdf")
            page_text = pages[doc][hit["page"] - 1]
            assert page_text[hit["offset"] : hit["offset"] + len(hit["text"])] == hit["text"]
            others = [i + 1 for i, text in enumerate(pages[doc]) if hit["text"] in text]
            assert hit["page"] in others
            checked += 1
    assert checked == 5 * len(queries)


def test_dataset_evidence_pages_match_our_page_numbers():
    """FinanceBench's 1-based evidence pages are the pages our loader numbers the same way."""
    from rag_app.ingestion.loaders import load_document

    questions = [json.loads(line) for line in (CORPUS / "qa" / "financebench_dev" / "qa.jsonl").open()]
    for q in questions:
        if q["doc_name"] not in DOCS:
            continue
        doc = load_document(FINANCEBENCH / f"{q['doc_name']}.pdf")
        for evidence in q["evidence"]:
            words = [w for w in clean_page_text(evidence["evidence_text"]).split() if len(w) > 3][:12]
            page = doc.pages[evidence["page_number1"] - 1].text
            assert sum(w in page for w in words) >= 0.8 * len(words)
