"""`python -m rag_app ask` over an ingested folder of the qa corpus: every strategy, three kinds of model."""

import json
import re

import pytest
from conftest import DOCUGAMI, call_cli, cli_env, run_cli

from rag_app.settings import STRATEGY_NAMES

pytestmark = [pytest.mark.usefixtures("corpus"), pytest.mark.slow]
QUESTIONS = "What was Apple's total net sales in the quarter?\n净利润是多少？\n"


@pytest.fixture(scope="module")
def qa_env(tmp_path_factory):
    """Two 10-Q filings from qa/docugami_sec10q, ingested once through the CLI."""
    root = tmp_path_factory.mktemp("ask")
    docs = root / "docs"
    docs.mkdir()
    for name in ["2023 Q2 AAPL.pdf", "2023 Q3 AAPL.pdf"]:
        (docs / name).symlink_to(DOCUGAMI / name)
    env = cli_env(root / "data", RAG_COLLECTION="qa")
    assert call_cli("ingest", str(docs), "--json", env=env).returncode == 0
    return env


def ask_lines(env, *args: str) -> list[dict]:
    result = call_cli("rag_app", "ask", "--json", "--k", "4", *args, env=env, stdin=QUESTIONS)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def check_answer(answer: dict, strategy: str) -> None:
    assert {"question", "answer", "strategy", "model", "sources", "timings", "tokens"} <= set(answer)
    assert answer["strategy"] == strategy and answer["answer"]
    assert [s["n"] for s in answer["sources"]] == [1, 2, 3, 4]
    assert all(s["file"] in {"2023 Q2 AAPL.pdf", "2023 Q3 AAPL.pdf"} and s["page"] >= 1 for s in answer["sources"])
    assert {"retrieve_ms", "first_token_ms", "total_ms"} <= set(answer["timings"])
    assert set(answer["tokens"]) == {"prompt", "completion"}


@pytest.mark.parametrize("strategy", [s for s in STRATEGY_NAMES if s != "auto"])
def test_every_strategy_with_the_tiny_random_model(qa_env, tiny_lm, strategy):
    answers = ask_lines({**qa_env, "RAG_LLM_MODEL": str(tiny_lm), "RAG_MAX_NEW_TOKENS": "12"}, "--strategy", strategy)
    assert [a["question"] for a in answers] == QUESTIONS.splitlines()
    for answer in answers:
        check_answer(answer, strategy)
        if strategy != "extractive":
            assert answer["model"] == str(tiny_lm) and answer["tokens"]["completion"] > 0


@pytest.mark.parametrize("strategy", [s for s in STRATEGY_NAMES if s != "auto"])
def test_every_strategy_with_the_scripted_model(qa_env, tmp_path, strategy):
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["Net sales were $94.8 billion [1] and [9].\nScore: 80"]))
    env = {**qa_env, "RAG_LLM_BACKEND": "scripted", "RAG_LLM_SCRIPT": str(script)}
    for answer in ask_lines(env, "--strategy", strategy):
        check_answer(answer, strategy)
        if strategy == "extractive":
            continue
        assert answer["invalid_citations"] == ["[9]"] and "[9]" not in answer["answer"]
        assert answer["cited"] == [1] and answer["sources"][0]["cited"] is True


def test_extractive_without_any_model(qa_env, tmp_path):
    env = {**qa_env, "RAG_LLM_MODEL": str(tmp_path / "missing-model")}
    answers = ask_lines(env)
    for answer in answers:
        check_answer(answer, "extractive")
        assert answer["mode"] == "extractive" and answer["unverified_quotes"] == []
        assert any("RAG_LLM_MODEL" in w for w in answer["warnings"])
    assert re.search(r"“[^”]+” \[\d\]", answers[0]["answer"])  # a quote (rows span lines), then its source


def test_terminal_output_streams_then_lists_sources(qa_env, tiny_lm):
    env = {**qa_env, "RAG_LLM_MODEL": str(tiny_lm), "RAG_MAX_NEW_TOKENS": "8"}
    result = run_cli("rag_app", "ask", "What was the gross margin?", "--strategy", "stuff", env=env)  # a real process
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r'\[1\] 2023 Q[23] AAPL\.pdf, p\. \d+ — ".+".*', lines[-4])
    assert "strategy stuff (requested)" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["  "], 2, "the question is empty"),
        (["revenue?", "--k", "0"], 2, "k must be between 1 and 200"),
        (["revenue?", "--strategy", "magic"], 2, "invalid choice: 'magic'"),
        (["revenue?", "--collection", "nope"], 1, "no collection named 'nope'"),
        (
            ["revenue?", "--llm-backend", "local", "--llm-model", "/nonexistent/model"],
            2,
            "cannot load the answer model",
        ),
    ],
)
def test_bad_input_exits_with_a_clear_message(qa_env, args, code, message):
    result = call_cli("rag_app", "ask", *args, env=qa_env)
    assert result.returncode == code and message in result.stderr and "Traceback" not in result.stderr
