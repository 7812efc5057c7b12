"""gradio_client against a running `python app.py`: upload a PDF, ask, read a streamed answer and its sources."""

import re

import pytest
from conftest import ROOT
from gradio_client import Client, handle_file
from webapp import running_app

SAMPLE = ROOT / "samples" / "acme-q3-2023.pdf"
pytestmark = pytest.mark.slow


def test_upload_then_streamed_cited_answer(tmp_path, tiny_lm):
    env = {"RAG_LLM_MODEL": str(tiny_lm), "RAG_MAX_NEW_TOKENS": "24", "RAG_COLLECTION": "web"}
    with running_app(tmp_path / "data", env_extra=env) as (url, _, _):
        client = Client(url, verbose=False)
        _progress, report, *_ = client.predict(files=[handle_file(SAMPLE)], api_name="/ingest")
        assert report["data"][0][:4] == ["acme-q3-2023.pdf", "ingested", 3, 3]
        job = client.submit(
            question="What was the gross margin in the third quarter?", chat=[], strategy="stuff", k=3,
            files=[], api_name="/ask",
        )  # fmt: skip
        updates = list(job)
        chat, sources = updates[-1][1], updates[-1][2]
        assert len(updates) > 5, "the answer did not stream"
        assert text_of(chat[0]) == "What was the gross margin in the third quarter?"
        assert chat[1]["role"] == "assistant" and text_of(chat[1]).strip()
        pages = re.findall(r"acme-q3-2023\.pdf, p\. (\d)</a>", sources)
        assert len(pages) == 3 and set(pages) <= {"1", "2", "3"}
        assert "#page=" in sources and "viewer/?" in sources and "score" not in sources  # no raw scores


def text_of(message: dict) -> str:
    """Gradio 6 returns message content as a list of blocks."""
    content = message["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
