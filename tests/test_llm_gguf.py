"""GGUF models on llama.cpp (xllamacpp) with the real SmolLM2-135M-Instruct: loading by settings, the file's own
template, tokenizer, context and stop tokens, streaming, Stop, batched map prompts, and clear refusals of paths
that no backend can load."""

import re
import threading
import time

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from rag_app.llm import load_chat_backend
from rag_app.llm.backend import GenerationError, ModelUnavailableError
from rag_app.llm.memory import GIB, InsufficientMemoryError
from rag_app.settings import Settings

MESSAGES = [SystemMessage("Answer briefly."), HumanMessage("What is 2+2?")]
STORY = [HumanMessage("Write a very long story about a dragon and a knight.")]


def gguf_settings(model, **values) -> Settings:
    return Settings(_env_file=None, llm_model=str(model), **{"llm_backend": "local", **values})


@pytest.fixture(scope="module")
def smollm2(smollm2_gguf):
    """The real model loaded from its path as RAG_LLM_MODEL gives it: 4 slots of 2048 tokens."""
    backend = load_chat_backend(gguf_settings(smollm2_gguf, llm_context_window=2048, llm_batch_slots=4)).backend
    yield backend
    backend.chat.local.close()


def slots(backend) -> list[dict]:
    return backend.chat.local.engine_get("/slots")


def wait_until_idle(backend, timeout: float) -> float:
    started = time.perf_counter()
    while any(slot["is_processing"] for slot in slots(backend)):
        assert time.perf_counter() - started < timeout, "the engine is still generating"
        time.sleep(0.02)
    return time.perf_counter() - started


def test_a_gguf_path_loads_on_the_cpu_and_the_model_info_says_what_answers(smollm2, smollm2_gguf):
    info = smollm2.info
    assert (info.name, info.backend, info.device, info.engine) == (str(smollm2_gguf), "gguf", "cpu", "llama.cpp")
    assert info.quantization == "Q4_1" and info.context_window == 2048  # the file's type; the window asked for
    assert "chat template: the file's own" in info.notes and any("4 slots of 2048 tokens" in n for n in info.notes)
    assert info.memory["weights"] > 0.08 and info.memory["kv_cache"] > 0


def test_a_folder_holding_one_gguf_loads_with_the_context_the_file_was_trained_with(smollm2_gguf, tmp_path):
    (tmp_path / "smollm2").mkdir()
    (tmp_path / "smollm2" / "model.gguf").symlink_to(smollm2_gguf)
    backend = load_chat_backend(gguf_settings(tmp_path / "smollm2", llm_batch_slots=1)).backend
    try:
        assert backend.info.name == str(tmp_path / "smollm2" / "model.gguf")
        assert backend.info.context_window == 8192  # llama.context_length in the file's header
    finally:
        backend.chat.local.close()


def test_the_files_chat_template_tokenizer_and_stop_token_are_used(smollm2):
    model = smollm2.chat.local
    assert model.render(MESSAGES) == (
        "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    text, usage = model.generate(MESSAGES, 48)
    assert usage.prompt_tokens == smollm2.count_tokens(MESSAGES) == 24
    assert "4" in text and "<|im_end|>" not in text and usage.completion_tokens < 48  # stopped at <|im_end|>


def test_the_answer_streams_piece_by_piece_while_the_engine_generates(smollm2):
    chunks = smollm2.chat.stream(STORY, max_tokens=40)
    first = next(chunks)
    assert first.content and any(slot["is_processing"] for slot in slots(smollm2)), "the first piece came early"
    rest = list(chunks)
    pieces = [first, *(c for c in rest if c.content)]
    [usage] = [c.usage_metadata for c in rest if c.usage_metadata]
    assert len(pieces) >= 10 and usage["output_tokens"] == 40  # a long story: all 40 tokens, streamed
    assert usage["input_tokens"] == smollm2.count_tokens(STORY)


def test_closing_the_stream_stops_generation_at_the_next_token(smollm2):
    chunks = smollm2.chat.stream(STORY, max_tokens=1500)  # about a minute of tokens on this machine
    next(chunks)
    chunks.close()  # what the page's Stop button and a dropped HTTP stream do
    assert wait_until_idle(smollm2, timeout=3) < 3, "the engine went on generating"


def test_map_prompts_run_together_in_the_engines_slots(smollm2, monkeypatch):
    model = smollm2.chat.local
    in_flight = InFlight(model._server)
    monkeypatch.setattr(model, "_server", in_flight)
    conversations = [[HumanMessage(f"Name {n} fruits.")] for n in (2, 3, 4)]
    replies = smollm2.chat.batch(conversations, max_tokens=16)
    assert in_flight.most == 3, "the three prompts were in the engine at once"
    assert [r.content for r in replies] == [model.generate(c, 16)[0] for c in conversations]
    assert all(r.usage_metadata["input_tokens"] > 0 for r in replies)


class InFlight:
    """The engine, counting the requests it holds at once."""

    def __init__(self, server) -> None:
        self.server, self.now, self.most, self.lock = server, 0, 0, threading.Lock()

    def handle_chat_completions(self, request, *callback):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            return self.server.handle_chat_completions(request, *callback)
        finally:
            with self.lock:
                self.now -= 1


def test_a_prompt_longer_than_a_slot_is_refused_with_the_engines_reason(smollm2):
    too_long = [HumanMessage("revenue " * 3000)]
    with pytest.raises(GenerationError, match="exceeds the available context size"):
        smollm2.chat.invoke(too_long, max_tokens=8)
    with pytest.raises(GenerationError, match="exceeds the available context size"):
        list(smollm2.chat.stream(too_long, max_tokens=8))


def unloadable(tmp_path, smollm2_gguf, kind: str):
    """A path no backend can load, of one kind."""
    if kind == "pdf":
        path = tmp_path / "report.pdf"
        path.write_bytes(b"%PDF-1.7\n...")
    elif kind == "missing":
        path = tmp_path / "SmolLM2.gguf"
    elif kind == "two ggufs":
        path = tmp_path / "models"
        path.mkdir()
        for name in ("a.gguf", "b.gguf"):
            (path / name).write_bytes(b"GGUF")
    elif kind == "empty folder":
        path = tmp_path / "empty"
        path.mkdir()
    else:  # a download cut short: the header, or the weights
        path = tmp_path / "cut.gguf"
        with open(smollm2_gguf, "rb") as whole, open(path, "wb") as cut:
            cut.write(whole.read(1000 if kind == "cut header" else 50_000_000))
    return path


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("pdf", "is a file but not a GGUF model"),
        ("missing", "the GGUF model .* does not exist"),
        ("two ggufs", "holds 2 GGUF models \\(a.gguf, b.gguf\\): set RAG_LLM_MODEL to the one to load"),
        ("empty folder", "holds neither a GGUF file nor a transformers model"),
        ("cut header", "cannot read the GGUF header of .* \\(is the file complete\\?\\)"),
        ("cut weights", "llama.cpp could not load .* set RAG_LLM_MODEL to a complete GGUF file"),
    ],
)
def test_a_model_path_no_backend_can_load_is_an_error_that_says_why(tmp_path, smollm2_gguf, kind, reason):
    path = unloadable(tmp_path, smollm2_gguf, kind)
    with pytest.raises(ModelUnavailableError, match=reason):
        load_chat_backend(gguf_settings(path, llm_batch_slots=1))
    fallback = load_chat_backend(gguf_settings(path, llm_batch_slots=1, llm_backend="auto"))
    assert fallback.extractive and fallback.reason.startswith("no answer model could be loaded (")
    assert re.search(reason, fallback.reason), "the page, the API and the CLI show this reason"


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"llm_device": "cuda"}, "GGUF models run on the CPU here"),
        ({"llm_adapter": "adapter"}, "RAG_LLM_ADAPTER applies to transformers models, not to a GGUF file"),
        ({"llm_engine": "fast"}, "RAG_LLM_ENGINE=fast runs transformers models"),
    ],
)
def test_settings_that_cannot_apply_to_a_gguf_are_refused(smollm2_gguf, values, reason):
    with pytest.raises(ModelUnavailableError, match=reason):
        load_chat_backend(gguf_settings(smollm2_gguf, **values))


def test_a_gguf_that_cannot_fit_in_memory_is_refused_with_the_settings_to_change(smollm2_gguf, monkeypatch):
    monkeypatch.setattr("rag_app.llm.memory.available_bytes", lambda device: 0.2 * GIB)
    with pytest.raises(InsufficientMemoryError, match="set fewer RAG_LLM_BATCH_SLOTS \\(8 now"):
        load_chat_backend(gguf_settings(smollm2_gguf))
