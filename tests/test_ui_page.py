"""The page's handlers called directly (no browser): what a person reads in the chat and the status line."""

import pytest
from conftest import ROOT

from rag_app.web.ui import ChatPage, new_session

SAMPLE = ROOT / "samples" / "acme-q3-2023.pdf"


@pytest.fixture
def page(service, settings):
    settings.llm_backend = "extractive"
    return ChatPage(service)


def last_reply(page, question: str, session: dict, **kwargs) -> tuple[str, str]:
    outputs = list(page.ask(question, [], "auto", 4, None, session, **kwargs))
    _, chat, _, note, _ = outputs[-1]
    return chat[-1]["content"], note


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What was the gross margin?", "No documents yet: add PDFs on the Documents tab."),
        ("毛利率是多少？", "还没有文档"),
    ],
)
def test_asking_before_any_upload_says_to_add_documents(page, settings, question, expected):
    reply, _ = last_reply(page, question, new_session(settings))
    assert reply.startswith(expected) and "no collection named" not in reply


def test_the_api_says_no_documents_yet_too(service):
    from rag_app.errors import NoDocumentsError
    from rag_app.requests import AskRequest

    with pytest.raises(NoDocumentsError, match="no documents yet"):
        service.answer(AskRequest(question="What was the gross margin?"))


@pytest.mark.parametrize(
    ("question", "warned"),
    [("What was the gross margin in the third quarter?", False), ("And how did it change?", True)],
)
def test_the_follow_up_warning_only_when_a_rewrite_was_needed(page, service, settings, question, warned):
    service.ingest([SAMPLE])
    session = {**new_session(settings), "turns": [["What was Acme's revenue?", "48.2 million dollars [1]"]]}
    _, note = last_reply(page, question, session)
    assert ("the follow-up was not rewritten" in note) is warned


def test_dropping_files_ingests_them_with_one_progress_display(page):
    config = page.build().get_config_file()
    elem = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    uploads = [d for d in config["dependencies"] if any(elem.get(t[0]) == "rag-upload" and t[1] == "upload"
               for t in d["targets"])]  # fmt: skip
    assert len(uploads) == 1, "dropping a file must start ingesting it"
    assert elem[uploads[0]["outputs"][0]] == "rag-progress" and uploads[0]["show_progress"] == "hidden"
    assert "rag-ingest" not in elem.values(), "no second button to press"


def test_a_status_refresh_never_overlaps_a_collection_switch(page):
    """A refresh that read the session before the switch and wrote after it would name the old collection
    for good (CI saw it once: the status line never showed the new name). Gradio reads a gr.State when an
    event starts, so the two events must share one queue slot."""
    demo = page.build()
    elem = {block._id: getattr(block, "elem_id", None) for block in demo.blocks.values()}
    timer = next(i for i, block in demo.blocks.items() if type(block).__name__ == "Timer")

    def handler(target, event):
        return next(fn for fn in demo.fns.values() if any(t[0] == target and t[1] == event for t in fn.targets))

    switch = handler(next(i for i, e in elem.items() if e == "rag-collection"), "change")
    refresh = handler(timer, "tick")
    assert switch.concurrency_id == refresh.concurrency_id
    assert switch.concurrency_limit == refresh.concurrency_limit == 1
