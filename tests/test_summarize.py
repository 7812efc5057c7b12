"""Summaries of whole documents: every page read once, within the window, combined in ceil(log) rounds."""

import json
import math
import random
from dataclasses import replace

import pytest
from conftest import ROOT
from pdfgen import make_pdf

from rag_app.answering.events import DoneEvent, SourcesEvent, StatusEvent, TokenEvent
from rag_app.llm.backend import ChatBackend, ModelInfo
from rag_app.llm.chat_models import ScriptedChatModel, approximate_tokens
from rag_app.requests import AskRequest, SummaryRequest
from rag_app.settings import Settings
from rag_app.summaries.outline import is_heading, outline
from rag_app.summaries.recursive import reduce_rounds
from rag_app.summaries.summarizer import (
    Summarizer,
    SummaryDoneEvent,
    is_summary_request,
    label_pages,
)

WORDS = "revenue margin growth segment cash debt dividend tax pension acquisition litigation".split()


def report_pages(count: int, file: str = "report.pdf", words: int = 120) -> list[tuple[str, int, str]]:
    """Pages with a unique marker each (MARK<page>X), so a test can find which prompt read which page."""
    rng = random.Random(count)
    return [(file, n, f"MARK{n}X " + " ".join(rng.choice(WORDS) for _ in range(words))) for n in range(1, count + 1)]


def scripted(replies, window: int) -> ChatBackend:
    model = ScriptedChatModel(replies=replies)
    info = ModelInfo("scripted", "scripted", context_window=window)
    return ChatBackend(model, info, lambda ms: sum(approximate_tokens(str(m.content)) + 4 for m in ms))


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def summarize(backend, pages, request=None, **options):
    summarizer = Summarizer(backend, settings(**options))
    request = request or SummaryRequest(files=["report.pdf"], max_words=100)
    events = list(summarizer.run(request, label_pages(pages, {})))
    assert isinstance(events[-1], SummaryDoneEvent)
    return events[-1].summary, events[:-1], summarizer.options(request, events[-1].summary.language)


def map_prompts(model) -> list[str]:
    return [p[-1].content for p in model.prompts if "Pages of the document" in p[-1].content]


def statuses(events) -> list[str]:
    return [e.message for e in events if isinstance(e, StatusEvent)]


# ----- the map-reduce, with a scripted model -----------------------------------------------------------


def test_every_page_is_read_once_and_no_call_exceeds_the_window():
    backend = scripted(["A partial summary [3]."], window=2048)
    pages = report_pages(60)
    summary, events, options = summarize(backend, pages)
    prompts = map_prompts(backend.chat)
    for _, n, _ in pages:
        assert sum(f"MARK{n}X" in p for p in prompts) == 1, f"page {n} must be in exactly one map prompt"
    assert len(prompts) == summary.stats.parts > 1
    final = backend.chat.prompts[-1]
    for prompt in backend.chat.prompts:
        budget = options.final_tokens if prompt is final else options.part_tokens
        assert backend.count_tokens(prompt) + budget <= 2048
    assert max(backend.chat.batch_sizes) <= options.batch == 8
    assert summary.stats.pages == 60 and summary.mode == "generative"
    assert "".join(e.text for e in events if isinstance(e, TokenEvent)) == "A partial summary [3]."


@pytest.mark.parametrize(("window", "count"), [(2048, 60), (1024, 60), (1024, 150), (4096, 300)])
def test_reduce_rounds_are_the_ceiling_of_the_log_of_the_parts(window, count):
    backend = scripted(["Short partial summary [1]."], window=window)
    summary, events, _ = summarize(backend, report_pages(count))
    stats = summary.stats
    assert stats.parts > stats.fan_in >= 2
    assert stats.rounds == math.ceil(math.log(stats.parts) / math.log(stats.fan_in) - 1e-9)
    assert stats.rounds == reduce_rounds(stats.parts, stats.fan_in)
    expected_calls, remaining = stats.parts, stats.parts
    while remaining > 1:
        remaining = math.ceil(remaining / stats.fan_in)
        expected_calls += remaining
    assert stats.calls == len(backend.chat.prompts) == expected_calls
    progress = statuses(events)
    assert f"summarizing {count} pages: 0 of {stats.parts} parts (8 at a time)" in progress
    assert f"summarizing {count} pages: {stats.parts} of {stats.parts} parts" in progress
    assert any(m.startswith("combining: round 1") for m in progress)
    assert progress[-1].startswith(f"combining: round {stats.rounds} (final: ")


def test_a_document_that_fits_is_summarized_in_one_streamed_call():
    backend = scripted(["The whole report in brief [2]."], window=8192)
    summary, events, _ = summarize(backend, report_pages(5, words=40))
    assert len(backend.chat.prompts) == 1 and backend.chat.batch_sizes == []
    assert summary.stats.parts == 1 and summary.stats.rounds == 0
    assert all(f"MARK{n}X" in backend.chat.prompts[0][-1].content for n in range(1, 6))
    assert "in one pass" in statuses(events)[0]


def test_a_document_that_fits_only_with_a_shorter_answer_is_one_shorter_call():
    backend = scripted(["Brief [1]."], window=2048)
    pages = report_pages(2, words=290)
    summary, events, options = summarize(backend, pages, SummaryRequest(files=["report.pdf"], max_words=600))
    assert len(backend.chat.prompts) == 1 and summary.stats.parts == 1 and summary.stats.rounds == 0
    assert backend.count_tokens(backend.chat.prompts[0]) + options.part_tokens <= 2048
    assert "in one pass, in at most" in statuses(events)[0]


def test_a_page_longer_than_the_window_is_cut_and_still_read_once():
    pages = report_pages(3, words=120) + [("report.pdf", 4, "MARK4X " + "widget " * 2500)]
    backend = scripted(["ok [4]"], window=1024)
    summary, _, _ = summarize(backend, pages)
    prompts = map_prompts(backend.chat)
    assert sum("MARK4X" in p for p in prompts) == 1
    assert sum(p.count("widget") for p in prompts) == 2500
    assert summary.cited == [{"n": 4, "file": "report.pdf", "page": 4}]


def test_closing_the_stream_stops_the_work():
    backend = scripted(["partial [1]"], window=1024)
    summarizer = Summarizer(backend, settings(llm_batch_slots=4))
    events = summarizer.run(SummaryRequest(files=["report.pdf"]), label_pages(report_pages(200), {}))
    for event in events:
        if isinstance(event, StatusEvent) and ": 4 of" in event.message:
            break
    events.close()
    assert len(backend.chat.prompts) == 4 and backend.chat.batch_sizes == [4]


def test_citations_are_checked_against_the_pages():
    backend = scripted(["Revenue grew [3] [999]; margins fell [p. 7].", "x"], window=8192)
    summary, _, _ = summarize(backend, report_pages(10, words=30))
    assert summary.summary == "Revenue grew [3]; margins fell [7]."
    assert summary.invalid_citations == ["[999]"]
    assert summary.cited == [{"n": 3, "file": "report.pdf", "page": 3}, {"n": 7, "file": "report.pdf", "page": 7}]
    assert "removed citations of pages outside the documents: [999]" in summary.warnings


def test_several_documents_are_numbered_on_and_cited_by_file_and_page():
    pages = report_pages(4, "a.pdf", 30) + report_pages(3, "b.pdf", 30)
    backend = scripted(["A [2] and B [6]."], window=8192)
    request = SummaryRequest(files=["a.pdf", "b.pdf"])
    summarizer = Summarizer(backend, settings())
    events = list(summarizer.run(request, label_pages(pages, {"a.pdf": 4, "b.pdf": 3})))
    summary = events[-1].summary
    assert "[6] b.pdf, p. 2\nMARK2X" in backend.chat.prompts[0][-1].content
    assert summary.cited == [{"n": 2, "file": "a.pdf", "page": 2}, {"n": 6, "file": "b.pdf", "page": 2}]
    assert summary.files == ["a.pdf", "b.pdf"]


def test_chinese_documents_get_a_chinese_summary_unless_asked_otherwise():
    pages = [("年报.pdf", n, f"第{n}页 公司营业收入增长百分之十二，净利润为一亿元。" * 20) for n in range(1, 4)]
    backend = scripted(["营业收入增长 [1]。"], window=8192)
    summary, _, _ = summarize(backend, pages, SummaryRequest(files=["年报.pdf"]))
    assert summary.language == "zh" and "请用中文" in backend.chat.prompts[0][-1].content
    backend = scripted(["Revenue grew [1]."], window=8192)
    summary, _, _ = summarize(backend, pages, SummaryRequest(files=["年报.pdf"], language="en"))
    assert summary.language == "en" and "Summarize these pages" in backend.chat.prompts[0][-1].content


@pytest.mark.parametrize(
    ("question", "wanted"),
    [
        ("Summarize this report", True),
        ("please summarise the filing", True),
        ("Give me an overview of 3M_2018_10K", True),
        ("总结一下这份年报", True),
        ("这份报告讲了什么？", True),
        ("What was the gross margin?", False),
        ("What does the summary compensation table show for the CEO?", False),
        ("毛利率是多少？", False),
    ],
)
def test_summary_requests_are_recognised(question, wanted):
    assert is_summary_request(question) is wanted


# ----- the outline without a model ---------------------------------------------------------------------


def test_outline_lists_title_like_lines_by_page_without_running_headers():
    pages = [
        (
            "r.pdf",
            n,
            f"Table of Contents\nItem {n}. Business Overview\nThe company sells tapes, adhesives and films "
            f"to customers in {n} regions.\nRevenue 12.5 13.1",
        )
        for n in range(1, 8)
    ]
    entries = outline(pages)
    assert [(e.page, e.heading) for e in entries][:2] == [
        (1, "Item 1. Business Overview"),
        (2, "Item 2. Business Overview"),
    ]
    assert all(e.heading != "Table of Contents" for e in entries)
    assert not is_heading("The company sells tapes, adhesives and films.") and not is_heading("Revenue 12.5 13.1")


def test_without_a_model_it_says_so_and_offers_the_outline():
    summary, events, _ = summarize(None, [("r.pdf", 1, "Annual Report\nRisk Factors\nSome text follows here.")])
    text = "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert summary.mode == "outline" and text.startswith("A summary needs an answer model")
    assert "- p. 1: Annual Report" in text and "- p. 1: Risk Factors" in text
    assert summary.outline[0].to_dict() == {"file": "r.pdf", "page": 1, "heading": "Annual Report"}
    assert summary.summary == text and summary.stats.calls == 0


# ----- through the service, the CLI and the API --------------------------------------------------------

REPORT_PAGES = [
    f"Annual Report {n}\nSection {n} Results\n"
    + "\n".join(f"In quarter {q} the company MARK{n}X sold more tapes and films than before." for q in range(12))
    for n in range(1, 13)
]


@pytest.fixture
def stored(service, tmp_path):
    """A 12-page report ingested into the test collection."""
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf(REPORT_PAGES))
    service.ingest([path])
    return service


def script(tmp_path, replies) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(replies))
    return str(path)


def test_the_service_summarizes_stored_pages_stitched_from_chunks(stored, tmp_path):
    stored.settings.llm_backend, stored.settings.llm_script = "scripted", script(tmp_path, ["Sales grew [2] [40]."])
    stored.settings.llm_context_window = 1024
    summary = stored.summary(SummaryRequest(files=["report.pdf"]))
    prompts = map_prompts(stored.model.chat)
    for n in range(1, 13):
        assert sum(p.count(f"MARK{n}X") for p in prompts) == 12, "each page's 12 lines once, overlaps stitched away"
    assert summary.summary == "Sales grew [2]." and summary.invalid_citations == ["[40]"]
    assert summary.stats.pages == 12 and summary.stats.parts > 1


def test_a_summary_question_is_routed_to_the_summary(stored, tmp_path):
    stored.settings.llm_backend, stored.settings.llm_script = "scripted", script(tmp_path, ["All of it [1]."])
    events = list(stored.ask(AskRequest(question="Summarize this report")))
    assert isinstance(events[0], StatusEvent) and "a summary was asked for" in events[0].message
    assert isinstance(events[-2], SourcesEvent) and isinstance(events[-1], DoneEvent)
    answer = events[-1].answer
    assert answer.strategy == "summarize" and answer.answer == "All of it [1]." and answer.cited == [1]
    assert answer.sources[0].hit.page == 1


def test_unknown_or_missing_documents_are_refused(stored):
    from rag_app.errors import DocumentNotFoundError, InvalidRequestError

    with pytest.raises(DocumentNotFoundError, match="no document named 'nope.pdf'"):
        stored.summarize(SummaryRequest(files=["nope.pdf"]))
    with pytest.raises(InvalidRequestError, match="at least one document"):
        SummaryRequest.of(stored.settings, files=[])
    with pytest.raises(InvalidRequestError, match="max_words must be between 20 and 2000"):
        SummaryRequest.of(stored.settings, files=["report.pdf"], max_words=5)


def test_cli_summarize_prints_json_and_streams_text(stored, tmp_path, monkeypatch, capsys):
    from rag_app.cli import main

    monkeypatch.setenv("RAG_DATA_DIR", str(stored.settings.data_dir))
    monkeypatch.setenv("RAG_COLLECTION", "test")
    monkeypatch.setenv("RAG_LLM_BACKEND", "scripted")
    monkeypatch.setenv("RAG_LLM_SCRIPT", script(tmp_path, ["The report in brief [3]."]))
    assert main(["summarize", "report.pdf", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"] == "The report in brief [3]." and data["cited"] == [
        {"n": 3, "file": "report.pdf", "page": 3}
    ]
    assert data["pages"] == 12 and data["mode"] == "generative" and data["language"] == "en"
    assert main(["summarize", "report.pdf"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("The report in brief [3].\n") and "[3] p. 3" in out and "… summarizing 12 pages" in err
    assert main(["summarize", "missing.pdf"]) == 1
    assert "error: no document named 'missing.pdf'" in capsys.readouterr().err


def test_cli_summarize_without_a_model_prints_the_outline(stored, monkeypatch, capsys):
    from rag_app.cli import main

    monkeypatch.setenv("RAG_DATA_DIR", str(stored.settings.data_dir))
    monkeypatch.setenv("RAG_COLLECTION", "test")
    monkeypatch.setenv("RAG_LLM_BACKEND", "extractive")
    assert main(["summarize", "report.pdf"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("A summary needs an answer model") and "- p. 2: Section 2 Results" in out


@pytest.fixture
def api(stored, tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from rag_app.web.api import build_api, install_error_handlers

    stored.settings.llm_backend, stored.settings.llm_script = "scripted", script(tmp_path, ["Brief [2]."])
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(build_api(stored))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def sse_events(text: str) -> list[tuple[str, dict]]:
    import re

    return [(m[0], json.loads(m[1])) for m in re.findall(r"event: (\w+)\ndata: (.*)\n\n", text)]


def test_api_summarize_json_and_errors(api):
    data = api.post("/api/summarize", json={"files": ["report.pdf"], "max_words": 80}).json()
    assert data["summary"] == "Brief [2]." and data["cited"][0]["page"] == 2 and data["files"] == ["report.pdf"]
    missing = api.post("/api/summarize", json={"files": ["nope.pdf"]})
    assert missing.status_code == 404 and "nope.pdf" in missing.json()["error"]
    for body, reason in [
        ({"files": []}, "at least one document"),
        ({"files": ["report.pdf"], "max_words": 1}, "max_words"),
        ({"files": ["report.pdf"], "language": "fr"}, "language"),
        ({}, "files"),
    ]:
        response = api.post("/api/summarize", json=body)
        assert response.status_code == 400 and reason in response.json()["error"]


def test_api_summarize_streams_status_tokens_then_done(api):
    response = api.post("/api/summarize", json={"files": ["report.pdf"], "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "status" and kinds[-1] == "done" and "token" in kinds
    assert kinds.index("token") > max(i for i, k in enumerate(kinds) if k == "status")
    tokens = "".join(data["text"] for kind, data in events if kind == "token")
    assert tokens == events[-1][1]["summary"] == "Brief [2]."


# ----- the tiny real model, end to end --------------------------------------------------------------------


@pytest.mark.slow
def test_tiny_model_summarizes_a_filing_end_to_end(tiny_local, corpus):
    from rag_app.ingestion.loaders import load_document
    from rag_app.llm.chat_models import LocalChatModel
    from rag_app.llm.local import LocalModel

    document = load_document(corpus / "qa" / "docugami_sec10q" / "data" / "v1" / "docs" / "2023 Q2 AAPL.pdf")
    pages = [("aapl.pdf", p.number, p.text) for p in document.pages[:6]]
    local = LocalModel(tiny_local.generator, tiny_local.tokenizer, replace(tiny_local.info, context_window=1024))
    calls: list[int] = []
    original = local.generate_batch

    def recording(conversations, max_new_tokens, temperature=0.0):
        calls.extend(local.count_tokens(c) + max_new_tokens for c in conversations)
        return original(conversations, max_new_tokens, temperature)

    local.generate_batch = recording
    backend = ChatBackend(LocalChatModel(local=local, max_tokens=64), local.info, local.count_tokens)
    summarizer = Summarizer(backend, settings(max_new_tokens=64, llm_batch_slots=8))
    events = list(summarizer.run(SummaryRequest(files=["aapl.pdf"], max_words=40), label_pages(pages, {})))
    summary = events[-1].summary
    stats = summary.stats
    assert stats.pages == 6 and stats.parts > stats.fan_in and stats.rounds == reduce_rounds(stats.parts, stats.fan_in)
    assert len(calls) == stats.calls - 1 and max(calls) <= 1024, "batched calls stay within the window"
    assert any(isinstance(e, TokenEvent) for e in events) and summary.timings["total_ms"] > 0
    assert summary.tokens["prompt"] > 0 and summary.tokens["completion"] > 0
    assert set(summary.invalid_citations).isdisjoint({f"[{n}]" for n in range(1, 7)})


@pytest.mark.slow
def test_tiny_model_summarizes_a_stored_document_through_the_service(stored, tiny_lm):
    stored.settings.llm_backend, stored.settings.llm_model, stored.settings.llm_device = "local", str(tiny_lm), "cpu"
    stored.settings.llm_context_window, stored.settings.max_new_tokens = 768, 48
    events = list(stored.summarize(SummaryRequest(files=["report.pdf"], max_words=30)))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "StatusEvent" and kinds[-1] == "SummaryDoneEvent" and "TokenEvent" in kinds
    summary = events[-1].summary
    assert summary.model == str(tiny_lm) and summary.stats.pages == 12 and summary.stats.parts > 1
    assert summary.stats.rounds == reduce_rounds(summary.stats.parts, summary.stats.fan_in)
    assert summary.tokens["completion"] > 0 and summary.mode == "generative"


def test_the_docs_show_the_summary_commands():
    usage = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
    assert "python -m rag_app summarize" in usage and "/api/summarize" in usage
    assert "python -m rag_app summarize" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_page_streams_a_summary_into_the_chat(stored, tmp_path):
    from rag_app.web.ui import ChatPage

    stored.settings.llm_backend, stored.settings.llm_script = "scripted", script(tmp_path, ["Brief [2]."])
    page = ChatPage(stored)
    outputs = list(page.summarize([], None, {"collection": "test", "turns": []}))
    chat, panel, note, _ = outputs[-1]
    assert chat[-2] == {"role": "user", "content": "Summarize / 总结: report.pdf"}  # shown as text
    assert chat[-1] == {"role": "assistant", "content": "<p>Brief [2].</p>\n"}  # the model's markdown, as safe HTML
    assert "report.pdf" in panel and note.startswith("summary of 12 pages")
    assert any(o[2].startswith("… summarizing 12 pages") for o in outputs[:-1])
    demo = page.build()
    buttons = [c for c in demo.config["components"] if c.get("props", {}).get("elem_id") == "rag-summarize"]
    assert buttons and buttons[0]["props"]["value"] == "Summarize / 总结"


@pytest.mark.slow
def test_the_gpu_benchmark_runs_end_to_end_on_cpu_with_a_tiny_model(tmp_path):
    import subprocess
    import sys

    command = [sys.executable, "-m", "bench.summarize_gpu", "--tiny", "--pages", "4", "--context-window", "1024"]
    command += ["--max-words", "40", "--model-dir", str(tmp_path / "model"), "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "summarize-tiny.json").read_text())
    transformers = result["paths"]["transformers"]
    assert transformers["pages"] == 4 and transformers["parts"] > 1 and transformers["seconds"] > 0
    checks = transformers["checks"]
    assert checks["pages_read_once"] == "4/4" and checks["no_call_over_the_window"] and checks["rounds_as_designed"]
    assert checks["calls_recorded"] and result["forbidden_modules_loaded"] == []
    assert "skipped" in result["paths"]["fast"] or "seconds" in result["paths"]["fast"]
