"""Summaries of whole documents: every page read once, within the window, combined in ceil(log) rounds."""

import json
import math
import random
import re
from dataclasses import replace

import pytest
from conftest import DOCUGAMI, ROOT
from pdfgen import make_pdf

from rag_app.answering.events import DoneEvent, SourcesEvent, StatusEvent, TokenEvent
from rag_app.llm.backend import ChatBackend, ModelInfo
from rag_app.llm.chat_models import ScriptedChatModel, approximate_tokens
from rag_app.requests import AskRequest, SummaryRequest
from rag_app.settings import Settings
from rag_app.summaries.page_guide import is_heading, page_guide
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


def summarize(backend, pages, request=None, reason: str = "", **options):
    summarizer = Summarizer(backend, settings(**options), reason)
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


# ----- without a model: no summary, each page's heading and first sentence ----------------------------------

ZH_REPORT = (
    ROOT.parent / "shared" / "corpus" / "qa" / "zh_reports_dev" / "pdfs" / "千味央厨-千寻百味乘势而上-22122726页.pdf"
)


TOPICS = ["tapes", "films", "filters", "respirators", "adhesives", "abrasives", "sensors"]


def test_the_page_guide_quotes_headings_and_first_sentences_without_form_furniture():
    pages = [
        (
            "r.pdf",
            n,
            f"Acme Corp. | 2023 Annual Report | {n}\nThe {topic.title()} Business\nYes ☐ No ☒\n"
            f"The company sells {topic} to customers in many regions\nthrough its {topic} channels. It grew.\n"
            f"{topic.title()} revenue 12.5 13.1\nTable of Contents",
        )
        for n, topic in enumerate(TOPICS, 1)
    ]
    pages.append(("r.pdf", 8, "SIGNATURES\nPursuant to the requirements of the Securities Exchange Act of 1934,\n"
                               "the registrant has duly caused this report to be signed.\nBy: /s/ Jane Doe\nJane Doe"))  # fmt: skip
    entries = page_guide(pages)
    assert [(e.page, e.heading, e.sentence) for e in entries][:2] == [
        (1, "The Tapes Business", "The company sells tapes to customers in many regions through its tapes channels."),
        (2, "The Films Business", "The company sells films to customers in many regions through its films channels."),
    ]
    shown = " ".join(f"{e.heading} {e.sentence}" for e in entries)
    for furniture in ("Acme Corp. |", "☐", "☒", "Table of Contents", "Pursuant", "/s/", "Jane Doe", "revenue 12.5"):
        assert furniture not in shown
    assert len(entries) == 7 and not is_heading("The company sells tapes.") and not is_heading("Cash and")


def guide_of(path) -> list:
    from rag_app.ingestion.loaders import load_document

    return page_guide([(path.name, p.number, p.text) for p in load_document(path).pages])


def test_the_page_guide_of_a_real_10q_leaves_its_cover_tables_and_signatures_out(corpus):
    entries = guide_of(DOCUGAMI / "2022 Q3 AAPL.pdf")  # 28 pages: its outline was "Yes ☐ No ☒", "Cash and", ...
    shown = "\n".join(f"{e.heading} — {e.sentence}" for e in entries)
    for noise in ("☐", "☒", "PURSUANT TO", "Cash and —", "/s/", "SECURITIES AND EXCHANGE COMMISSION"):
        assert noise not in shown
    by_page = {e.page: e for e in entries}
    assert by_page[9].heading.startswith("Notes to Condensed Consolidated Financial Statements")
    assert by_page[9].sentence.startswith(
        "The condensed consolidated financial statements include the accounts of Apple"
    )
    assert sum(bool(e.sentence) for e in entries) >= 15


def test_the_page_guide_of_a_chinese_report_drops_its_running_header(corpus):
    entries = guide_of(ZH_REPORT)  # 26 pages: its outline was its page header, twice
    shown = "\n".join(f"{e.heading} {e.sentence}" for e in entries)
    assert "001215 CH" not in shown and "免责声明" not in shown and "资料来源" not in shown
    assert len(entries) >= 18 and all(e.sentence.endswith(("。", "…")) for e in entries if e.sentence)
    assert entries[2].sentence.startswith("生意模式：专注差异化优质赛道")  # page 4


def test_without_a_model_there_is_no_summary_and_it_says_so():
    pages = [("r.pdf", 1, "Annual Report\nRisk Factors\nSome text follows here in a sentence of its own.")]
    summary, events, _ = summarize(None, pages)
    assert not [e for e in events if isinstance(e, TokenEvent)], "quoted, not written: nothing streams"
    text = summary.text
    assert summary.mode == "page_guide" and summary.summary == ""
    assert text.startswith("No summary: a summary needs an answer model") and "summary of" not in text
    assert "p. 1 · Annual Report — Some text follows here in a sentence of its own." in text
    assert summary.page_guide[0].to_dict() == {
        "file": "r.pdf", "page": 1, "heading": "Annual Report", "sentence": "Some text follows here in a sentence of its own.",
    }  # fmt: skip
    assert summary.stats.calls == 0 and summary.to_dict()["mode"] == "page_guide"


def test_the_chinese_notice_holds_no_english():
    pages = [("r.pdf", 1, "第一章 公司简介\n本公司主要从事速冻米面制品的研发、生产和销售，产品覆盖全国。")]
    summary, events, _ = summarize(None, pages, reason="no answer model could be loaded (out of memory)")
    assert summary.language == "zh" and summary.notice.startswith("未生成摘要")
    assert not re.search("[A-Za-z]", summary.notice)
    status = next(e for e in events if isinstance(e, StatusEvent))
    assert status.zh and not re.search("[A-Za-z]", status.zh)


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


def test_cli_summarize_without_a_model_says_there_is_no_summary(stored, monkeypatch, capsys):
    from rag_app.cli import main

    monkeypatch.setenv("RAG_DATA_DIR", str(stored.settings.data_dir))
    monkeypatch.setenv("RAG_COLLECTION", "test")
    monkeypatch.setenv("RAG_LLM_BACKEND", "extractive")
    assert main(["summarize", "report.pdf"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("No summary: a summary needs an answer model")
    assert re.search(r"^p\. 12 · .*MARK12X sold more tapes and films than before\.$", out, re.MULTILINE)
    assert re.search(r"no summary \(no answer model\): headings and first sentences of \d+ of 12 pages", err)
    assert "combining rounds" not in err and "summary of" not in out


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
    session = {"collection": "test", "turns": []}
    picker, choices, _ = page.choose_summary(None, session)  # the only document is ticked already
    assert picker["visible"] and choices["choices"] == ["report.pdf"] and choices["value"] == ["report.pdf"]
    outputs = list(page.summarize([], ["report.pdf"], session))
    chat, panel, note, _, picker, _ = outputs[-1]
    assert chat[-2] == {"role": "user", "content": "Summarize / 总结: report.pdf"}  # shown as text
    assert chat[-1] == {"role": "assistant", "content": "<p>Brief [2].</p>\n"}  # the model's markdown, as safe HTML
    assert "report.pdf" in panel and note.startswith("summary of 12 pages") and "12 页的摘要" in note
    assert any(o[2].startswith("… summarizing 12 pages") and "12 页" in o[2] for o in outputs[:-1])
    assert not picker["visible"]
    demo = page.build()
    buttons = [c for c in demo.config["components"] if c.get("props", {}).get("elem_id") == "rag-summarize"]
    assert buttons and buttons[0]["props"]["value"] == "Summarize / 总结"


def test_the_page_without_a_model_says_there_is_no_summary_in_both_languages(stored):
    from rag_app.web.ui import ChatPage

    stored.settings.llm_backend = "extractive"
    page = ChatPage(stored)
    unchosen = list(page.summarize([], [], {"collection": "test", "turns": []}))
    assert unchosen[-1][-1] == "Tick at least one document above / 请先在上方勾选至少一个文档"  # beside the list
    chat, _, note, _, _, _ = list(page.summarize([], ["report.pdf"], {"collection": "test", "turns": []}))[-1]
    message = chat[-1]["content"]
    assert message.startswith("No summary: a summary needs an answer model") and "未生成摘要" in message
    assert note.startswith("**No summary: no answer model is loaded.**") and "未生成摘要" in note
    assert "summary of" not in note and "0 parts" not in note


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
