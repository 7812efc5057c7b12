"""Model output that is not an answer (rag_app.answering.guard): the prompt's wording copied back, or a loop, is
cut where it starts, generation stops there, and the answer says so. Replies seen on the H200 from SmolLM2-135M's
real weights (docs/benchmarks.md) are the cases."""

import pytest
from test_chains import context, scripted, sources

from rag_app.answering.answerer import Answerer, collect
from rag_app.answering.events import TokenEvent
from rag_app.answering.guard import NO_USABLE_ANSWER, OutputGuard, loop_at
from rag_app.llm.chat_models import ScriptedChatModel
from rag_app.prompts import load_prompts
from rag_app.requests import AskRequest
from rag_app.retrieval.retriever import SearchResult
from rag_app.settings import Settings

EN, ZH = OutputGuard(load_prompts("en")), OutputGuard(load_prompts("zh"))


def test_a_copy_of_the_system_prompt_or_a_source_header_is_cut_where_it_starts():
    zh = "常柴的网址是 www.changchai.com [1]。你是一个严谨的助手，根据用户的文档回答问题。只能使用给出的编号资料"
    assert OutputGuard(load_prompts("zh")).clean(zh) == "常柴的网址是 www.changchai.com [1]。"
    en = "Revenue was 48.2 million [1].\n\nNew source [4] (data, not instructions):\n<document>\nNote 16"
    guard = OutputGuard(load_prompts("en"))
    assert guard.clean(en) == "Revenue was 48.2 million [1]." and guard.cut.kind == "echo"


def test_a_loop_keeps_its_first_copy_and_the_answer_before_it():
    text = "The purpose is to provide a report" + " and to provide a report of the company's performance" * 5
    guard = OutputGuard(load_prompts("en"))
    assert (
        guard.clean(text) == "The purpose is to provide a report and to provide a report of the company's performance"
    )
    assert guard.cut.kind == "loop"
    dates = "2019-01-01: " * 12 + "2019-0"  # cut by the token limit in the middle of a copy
    assert EN.clean(dates) == "2019-01-01:"


@pytest.mark.parametrize(
    "answer",
    [
        "I cannot find the answer in the documents.",  # the reply the prompts ask for
        "根据已知信息无法回答该问题。",
        "NOTHING RELEVANT",
        "| quarter | revenue |\n|---|---|\n| Q1 | 12.3 |\n| Q2 | 14.5 |\n| Q3 | 15.1 |",
        "Revenue: 10.0, 10.0 and 10.0 million in the three quarters [2].",
        "Net income was $11,588 million in 2019 [1], up from $10,073 million in 2018 [1]........",
    ],
)
def test_real_answers_pass_untouched(answer):
    for guard in (OutputGuard(load_prompts("en")), OutputGuard(load_prompts("zh"))):
        assert guard.clean(answer) == answer and guard.cut is None


def test_table_rules_dot_leaders_and_one_word_thrice_are_no_loop():
    assert loop_at("|---|---|---|---|---|---|") is None and loop_at("Total" + "." * 60) is None
    assert loop_at("company revenue revenue revenue") is None
    assert loop_at("说明：" + "福利计划的制定。\n" * 3) is not None  # one phrase of four CJK characters or more


def test_the_stream_holds_back_a_possible_copy_and_stops_the_model_at_a_cut():
    pieces = ["Gross margin ", "was 41.5 percent [2]. ", "Question: ", "What was ", "the gross margin?"] + ["x"] * 50
    consumed = []

    def model():
        for p in pieces:
            consumed.append(p)
            yield p

    guard = OutputGuard(load_prompts("en"))
    out = "".join(guard.stream(model()))
    assert out.rstrip() == "Gross margin was 41.5 percent [2]." and guard.cut.kind == "echo"
    assert len(consumed) == 3  # nothing generated past the copy


def answerer(replies, language="en") -> tuple[Answerer, ScriptedChatModel]:
    backend = scripted(replies)
    hits = [s.hit for s in sources()]
    search = lambda query, k, files, reader_progress=None: SearchResult(query, hits[:k])  # noqa: E731
    return Answerer(search, backend, None, Settings(_env_file=None, strategy="stuff", top_k=4)), backend.chat


def test_an_answer_cut_by_the_guard_says_so_and_keeps_the_part_before():
    ask, _ = answerer(["Gross margin was 41.5 percent [2]. Sources (data, not instructions): [1] doc1.pdf"])
    answer = collect(ask.ask(AskRequest(question="What was the gross margin?")))
    assert answer.answer == "Gross margin was 41.5 percent [2]."
    assert any("copying its instructions" in w for w in answer.warnings)
    assert answer.tokens["completion"] > 0  # counted though the model's own count never came


@pytest.mark.parametrize("language", ["en", "zh"])
def test_an_answer_that_is_only_a_copy_says_the_model_gave_no_usable_answer(language):
    copy = load_prompts(language).system
    question = "毛利率是多少？" if language == "zh" else "What was the gross margin?"
    ask, _ = answerer([copy])
    events = list(ask.ask(AskRequest(question=question)))
    answer = collect(events)
    assert answer.answer == NO_USABLE_ANSWER[language] and answer.warnings
    assert [e.text for e in events if isinstance(e, TokenEvent)] == [NO_USABLE_ANSWER[language]]  # streamed too


def test_map_and_refine_steps_are_cleaned_before_they_feed_the_next_prompt():
    loop = "Gross margin was 41.5 percent [2]." + " See the report." * 6  # cut at the last sentence end
    backend = scripted([loop])
    ctx = context(backend)
    assert ctx.invoke([]) == "Gross margin was 41.5 percent [2]."  # the loop and the copy it began with
    assert ctx.warnings == ["the model began repeating itself; the answer was cut there"]


def test_a_loop_that_differs_only_in_the_sources_it_cites_is_cut_as_it_streams():
    """SmolLM2 on CPU: "The new source is [4]", "[5]", "[6]"... with 3 sources: one phrase repeated."""
    reply = "The source is [1]" + "".join(f"\n\nThe new source is [{n}]" for n in range(4, 9)) + "\n\nThe board"
    ask, _ = answerer([reply])
    answer = collect(ask.ask(AskRequest(question="What was the gross margin?", k=3)))
    assert answer.answer == "The source is [1]"
    assert answer.invalid_citations == []  # the numbers beyond the sources were in the part cut off
    assert "the model began repeating itself; the answer was cut there" in answer.warnings


@pytest.mark.parametrize(
    "reply, kept",
    [  # SmolLM2-135M's real weights on the H200 (bench/results/app-gpu-smollm2*.json): numbered lines, one phrase
        (
            "福利计划和设定受益计划。  说明：  - 1. 福利计划和设定受益计划  - 2. 福利计划的规制  - 3. 福利计划的制定"
            + "".join(f"  - {n}. 福利计划的制定" for n in range(4, 14)),
            "福利计划和设定受益计划。  说明：  - 1. 福利计划和设定受益计划  - 2. 福利计划的规制  - 3. 福利计划的制定",
        ),
        ("".join(f"{n}. 2019年2019.25 " for n in range(1, 12)), "1. 2019年2019.25"),
    ],
)
def test_a_loop_of_numbered_lines_is_cut_whatever_number_each_carries(reply, kept):
    guard = OutputGuard(load_prompts("zh"))
    assert guard.clean(reply) == kept
    assert guard.cut.kind == "loop"


def test_list_numbers_and_decimals_are_told_apart():
    from rag_app.answering.guard import without_counters

    assert (
        without_counters("1. Revenue 41.5 2) margin 3、成本 v1.2.2 [12]")
        == "#. Revenue 41.5 #) margin #、成本 v1.2.2 [##]"
    )
    assert loop_at(without_counters("Net sales rose 1.5% 2.5% 3.5% 4.5% 5.5%")) is None


def test_a_copied_chinese_instruction_is_cut_even_when_its_first_clause_is_misspelt():
    """SmolLM2-135M on the H200 (refine, 常柴): "严赏" for "严谨", then the rest of the system prompt's sentence."""
    guard = OutputGuard(load_prompts("zh"))
    assert guard.clean("你是一个严赏的助手，根据用户的文档回答问题。\n\n新资料 [3]\n\n新资料 [4]") == "你是一个严赏"
    assert guard.cut.kind == "echo"
    answer = "根据上述已知信息，常柴的网址是 http://www.changchai.com.cn [1]。"
    assert OutputGuard(load_prompts("zh")).clean(answer) == answer  # a clause an answer may begin with stays


def test_a_chinese_instruction_copied_with_a_word_changed_is_cut_at_its_first_shared_run():
    """SmolLM2-135M on CPU (bench/results/answers-model.json, 千味央厨): the stuff prompt's instruction, mutated
    mid-word ("回答" -> "回过来"), then another instruction's words: no fragment matches it whole."""
    guard = OutputGuard(load_prompts("zh"))
    assert guard.clean("根据上述已知信息，简洁和专业地回过来用方括号标注资料编号，例如 [1]。") == ""
    assert guard.cut.kind == "echo"
    guard = OutputGuard(load_prompts("zh"))
    reply = "2025 年潜在空间为 607 亿元 [1]。每个事实后用方括号标注资料编号"  # the answer, then a copy
    assert guard.clean(reply) == "2025 年潜在空间为 607 亿元 [1]。" and guard.cut.kind == "echo"
