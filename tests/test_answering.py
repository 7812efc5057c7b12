"""RagService.ask end to end: retrieval, every strategy on the tiny local model, citations, errors."""

import json
import shutil

import pytest
from conftest import ROOT, ingested_library
from pdfgen import write_pdf

from rag_app.answering.events import DoneEvent, SourcesEvent, StatusEvent, TokenEvent
from rag_app.errors import CollectionNotFoundError, InvalidRequestError
from rag_app.requests import AskRequest

pytestmark = pytest.mark.usefixtures("corpus")
SAMPLE = ROOT / "samples" / "acme-q3-2023.pdf"
ANSWER_KEYS = {"question", "answer", "strategy", "model", "sources", "timings", "tokens"}


@pytest.fixture(scope="module")
def tiny_library(tmp_path_factory, embeddings):
    """The sample report and an 8-page Beta Corp report, ingested once for the module: each test's ``tiny_service``
    starts from a copy (two ingests cost about 2 s, and thirty tests want the same library)."""
    folder = tmp_path_factory.mktemp("tiny_library")
    other = write_pdf(
        folder / "beta-2023.pdf",
        [
            f"Beta Corp page {i}: gross margin discussion, services revenue and operating costs." * 3
            for i in range(1, 9)
        ],
    )
    return ingested_library(folder / "data", embeddings, [SAMPLE, other])


@pytest.fixture
def tiny_service(service, settings, tiny_lm, tiny_library):
    shutil.copytree(tiny_library, settings.data_dir)
    settings.llm_model = str(tiny_lm)
    settings.llm_device = "cpu"
    settings.max_new_tokens = 16
    return service


def generate_calls(service, monkeypatch) -> list[int]:
    """Batch size of every generate() call the local model makes."""
    model = service.model.chat.local.model
    original = model.generate
    sizes: list[int] = []
    monkeypatch.setattr(model, "generate", lambda **kw: sizes.append(kw["input_ids"].shape[0]) or original(**kw))
    return sizes


@pytest.mark.parametrize(
    ("strategy", "calls"),
    [("stuff", [1]), ("map_reduce", [4, 1]), ("refine", [1, 1, 1, 1]), ("map_rerank", [4]), ("extractive", [])],
)
def test_every_strategy_answers_with_the_tiny_local_model(tiny_service, monkeypatch, strategy, calls):
    sizes = generate_calls(tiny_service, monkeypatch)
    events = list(
        tiny_service.ask(AskRequest(question="What was the gross margin in the third quarter?", strategy=strategy, k=4))
    )
    kinds = [e.kind for e in events]
    assert kinds.index("sources") < kinds.index("token") < kinds.index("done") == len(kinds) - 1
    sources = next(e for e in events if isinstance(e, SourcesEvent)).sources
    assert [s.n for s in sources] == [1, 2, 3, 4]
    assert {s.hit.file for s in sources} <= {"acme-q3-2023.pdf", "beta-2023.pdf"}
    answer = events[-1].answer.to_dict()
    assert ANSWER_KEYS <= set(answer) and answer["strategy"] == strategy
    assert {"retrieve_ms", "first_token_ms", "total_ms"} <= set(answer["timings"])
    assert set(answer["sources"][0]) >= {"n", "file", "page", "offset", "text", "score", "cited"}
    if strategy != "extractive":
        assert answer["model"] == str(tiny_service.settings.llm_model) and answer["mode"] == "generative"
        assert answer["tokens"]["prompt"] > 0 and answer["tokens"]["completion"] > 0
    assert sizes == calls, "map steps must be one batched generate call"


def test_auto_picks_stuff_and_says_why(tiny_service):
    answer = tiny_service.answer(AskRequest(question="What was the gross margin?", k=3))
    assert answer.strategy == "stuff" and "fit the 4096-token context window" in answer.strategy_reason


def test_auto_switches_to_map_reduce_when_sources_exceed_the_window(tiny_service, settings):
    settings.llm_context_window = 520
    tiny_service.__dict__.pop("_model", None)  # reload with the smaller window
    answer = tiny_service.answer(AskRequest(question="What drove the change in gross margin?", k=8))
    assert answer.strategy == "map_reduce" and "exceed the 520-token context window" in answer.strategy_reason


def test_explicit_stuff_drops_sources_that_do_not_fit_and_reports_them(tiny_service, settings):
    settings.llm_context_window = 520
    tiny_service.__dict__.pop("_model", None)
    answer = tiny_service.answer(AskRequest(question="What drove the change in gross margin?", strategy="stuff", k=8))
    assert answer.dropped_sources and answer.dropped_sources[-1] == 8


def test_follow_up_is_rewritten_into_a_standalone_question(service, settings, tmp_path):
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["What was Acme's gross margin in Q3 2023?", "It was 41.5 percent [1]."]))
    settings.llm_backend, settings.llm_script = "scripted", script
    service.ingest([SAMPLE])
    history = [["What was Acme's revenue in Q3 2023?", "48.2 million dollars [1]."]]
    answer = service.answer(AskRequest(question="And the gross margin?", history=history, strategy="stuff", k=2))
    assert answer.standalone_question == "What was Acme's gross margin in Q3 2023?"
    assert answer.answer == "It was 41.5 percent [1]." and answer.sources[0].cited
    condense_prompt = service.model.chat.prompts[0][-1].content
    assert "user: What was Acme's revenue in Q3 2023?" in condense_prompt and "And the gross margin?" in condense_prompt


def test_without_a_model_the_app_answers_extractively_and_says_how_to_configure_one(service, settings, tmp_path):
    settings.llm_model = str(tmp_path / "not-a-model")
    service.ingest([SAMPLE])
    answer = service.answer(AskRequest(question="What was the gross margin?", k=3))
    assert answer.mode == "extractive" and answer.strategy == "extractive"
    assert "41.5 percent" in answer.answer and answer.answer.endswith("]")
    assert any("RAG_LLM_MODEL" in w and "no answer model could be loaded" in w for w in answer.warnings)
    assert answer.unverified_quotes == [] and answer.cited


def test_answers_only_from_the_chosen_files(tiny_service):
    answer = tiny_service.answer(
        AskRequest(question="gross margin", strategy="extractive", k=4, files=["beta-2023.pdf"])
    )
    assert {s.hit.file for s in answer.sources} == {"beta-2023.pdf"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"question": "   "}, "the question is empty"),
        ({"question": "gross margin?", "k": 0}, "k must be between 1 and 200, got 0"),
        ({"question": "gross margin?", "strategy": "magic"}, "unknown strategy 'magic'"),
        ({"question": "gross margin?", "history": [{"who": "me"}]}, "history"),
        ({"question": "gross margin?", "history": "me"}, "history must be a list"),
        ({"question": "revenue " * 600}, "over the limit of 4,000 \\(RAG_MAX_QUESTION_CHARS\\)"),
        ({"question": "gross \ud800 margin"}, "not valid Unicode"),
        ({"question": "gross margin?", "temperature": 3}, "temperature must be between 0 and 2, got 3"),
    ],
)
def test_bad_requests_are_refused_at_the_edge_with_clear_errors(settings, fields, message):
    with pytest.raises(InvalidRequestError, match=message):
        AskRequest.of(settings, **fields)


def test_a_question_the_model_cannot_read_whole_is_refused(tiny_service, monkeypatch):
    monkeypatch.setattr(tiny_service.settings, "max_question_chars", 100_000)
    request = AskRequest.of(tiny_service.settings, question="revenue " * 6000)
    with pytest.raises(InvalidRequestError, match="does not fit the model's context window of 4096"):
        tiny_service.answer(request)


def test_unknown_collection_is_a_clear_error(tiny_service):
    with pytest.raises(CollectionNotFoundError, match="no collection named 'nope'"):
        tiny_service.answer(AskRequest(question="gross margin?"), collection="nope")


def test_status_events_describe_the_strategy(tiny_service):
    events = list(tiny_service.ask(AskRequest(question="gross margin?", strategy="map_reduce", k=2)))
    messages = [e.message for e in events if isinstance(e, StatusEvent)]
    assert messages[0].startswith("strategy map_reduce: requested") and "reading 2 sources" in messages
    assert isinstance(events[-1], DoneEvent) and any(isinstance(e, TokenEvent) for e in events)


def test_a_figure_asked_for_a_year_no_passage_gives_is_refused_before_the_model_answers(tiny_service, monkeypatch):
    """A report for 2018 whose pages mention 2020 (notes due then) holds no figure of fiscal 2020: every strategy says
    not found, as the quoted answer does, and the model is never asked (it would read 2018's column as 2020's)."""
    cash_flows = (
        "Gamma Industries consolidated statement of cash flows\n(Millions) 2018 2017 2016\n"
        "Net cash provided by operating activities 6,439 6,240 6,662\n"
        "Purchases of property, plant and equipment (1,577) (1,373) (1,420)\n"
        "Gamma's medium-term notes due 2020 were repaid early."
    )
    write_pdf(tiny_service.settings.data_dir / "gamma-2018.pdf", [cash_flows, "Gamma Industries annual report 2018."])
    assert tiny_service.ingest([tiny_service.settings.data_dir / "gamma-2018.pdf"]).ok
    sizes = generate_calls(tiny_service, monkeypatch)
    question = "What was Gamma's net cash provided by operating activities in fiscal year 2020?"
    events = list(tiny_service.ask(AskRequest(question=question, strategy="stuff", k=4)))
    answer = events[-1].answer.to_dict()
    assert answer["answer"].startswith("Not found:") and "2020" in answer["answer"], answer["answer"]
    assert answer["strategy"] == "none" and sizes == []
    asked_2017 = question.replace("fiscal year 2020", "2017")
    list(tiny_service.ask(AskRequest(question=asked_2017, strategy="stuff", k=4)))
    assert sizes == [1]  # a year its columns hold: the model answers
    # a question naming no year is not read for quotes before the model answers (it would embed every candidate)
    from rag_app.answering.strategies import extractive

    ranked = []
    original = extractive.rank_candidates
    monkeypatch.setattr(extractive, "rank_candidates", lambda ctx: ranked.append(1) or original(ctx))
    list(tiny_service.ask(AskRequest(question="What was Gamma's net cash from operations?", strategy="stuff", k=4)))
    assert sizes == [1, 1] and ranked == []
