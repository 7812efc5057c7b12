"""The local model layer on a tiny random model: loading, chat template, streaming, batching, memory checks."""

import time

import pytest
import torch
from langchain_core.messages import HumanMessage, SystemMessage
from transformers import Qwen2Config

from rag_app.llm import load_chat_backend
from rag_app.llm.backend import ModelUnavailableError
from rag_app.llm.chat_models import LocalChatModel
from rag_app.llm.local import Usage, default_model_name, load_local_model
from rag_app.llm.memory import GIB, InsufficientMemoryError, check_fits, estimate
from rag_app.settings import Settings

MESSAGES = [SystemMessage("Answer from the sources."), HumanMessage("What was the gross margin?")]


def test_loads_by_path_unquantized_on_cpu_and_says_so(tiny_lm):
    local = load_local_model(str(tiny_lm), quantization="4bit", device="cpu")
    info = local.info
    assert (info.backend, info.device, info.quantization) == ("local", "cpu", "none")
    assert "4bit needs CUDA (bitsandbytes): loaded unquantized on CPU" in info.notes
    assert info.context_window == 4096 and {"weights", "kv_cache", "total_planned"} <= set(info.memory)
    assert local.tokenizer.padding_side == "left"


def test_chat_template_and_token_counts_use_the_models_tokenizer(tiny_local):
    rendered = tiny_local.render(MESSAGES)
    assert rendered.startswith("<|im_start|>system\nAnswer from the sources.<|im_end|>")
    assert rendered.endswith("<|im_start|>assistant\n")
    assert tiny_local.count_tokens(MESSAGES) == len(
        tiny_local.tokenizer(rendered, add_special_tokens=False)["input_ids"]
    )


def test_stream_yields_text_then_usage(tiny_local):
    pieces = list(tiny_local.stream(MESSAGES, max_new_tokens=12))
    usage = pieces[-1]
    assert isinstance(usage, Usage) and all(isinstance(p, str) for p in pieces[:-1]) and len(pieces) > 2
    assert usage.prompt_tokens == tiny_local.count_tokens(MESSAGES)
    assert 1 <= usage.completion_tokens <= 12


def test_closing_a_stream_stops_generation(tiny_local):
    stream = tiny_local.stream(MESSAGES, max_new_tokens=2000)
    next(stream)
    started = time.perf_counter()
    stream.close()
    assert time.perf_counter() - started < 5
    assert tiny_local.generator._lock.acquire(timeout=5), "generation still holds the model"
    tiny_local.generator._lock.release()


def test_batched_generation_is_one_call_and_matches_one_by_one(tiny_local, monkeypatch):
    conversations = [
        [HumanMessage("short")],
        [HumanMessage("a much longer question about the gross margin in the second quarter of 2023")],
        [SystemMessage("system"), HumanMessage("revenue?")],
    ]
    calls = []
    original = tiny_local.model.generate
    monkeypatch.setattr(
        tiny_local.model, "generate", lambda **kw: calls.append(kw["input_ids"].shape) or original(**kw)
    )
    batched = tiny_local.generate_batch(conversations, max_new_tokens=8)
    assert len(calls) == 1 and calls[0][0] == 3
    single = [tiny_local.generate_batch([c], max_new_tokens=8)[0][0] for c in conversations]
    assert [text for text, _ in batched] == single, "left padding changed the continuation"


def test_langchain_wrapper_streams_and_batches(tiny_local):
    chat = LocalChatModel(local=tiny_local, max_tokens=6)
    merged = _merge(chat.stream(MESSAGES))
    assert merged.content and merged.usage_metadata["output_tokens"] == 6
    replies = chat.batch([MESSAGES, MESSAGES[1:]], max_tokens=4)
    assert len(replies) == 2 and all(r.usage_metadata["input_tokens"] > 0 for r in replies)
    assert chat.get_num_tokens_from_messages(MESSAGES) == tiny_local.count_tokens(MESSAGES)


def _merge(chunks):
    total = None
    for chunk in chunks:
        total = chunk if total is None else total + chunk
    return total


def test_lora_adapter_is_applied(tiny_lm, tiny_local, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_lm)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(tmp_path / "adapter")
    adapted = load_local_model(str(tiny_lm), device="cpu", adapter=str(tmp_path / "adapter"))
    assert f"adapter {tmp_path / 'adapter'}" in adapted.info.notes
    prompt = [[HumanMessage("gross margin")]]
    assert adapted.generate_batch(prompt, 8) != tiny_local.generate_batch(prompt, 8)


def qwen_7b_config() -> Qwen2Config:
    """Qwen2.5-7B-Instruct's architecture (from its published config.json)."""
    return Qwen2Config(
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768, tie_word_embeddings=False,
    )  # fmt: skip


def test_memory_estimate_of_a_7b_model_in_4bit():
    plan = estimate(qwen_7b_config(), "4bit", 2, 8192)
    assert 5.0 < plan.weights_bytes / GIB < 6.0  # nf4 linears + bf16 embeddings and head
    assert plan.kv_cache_bytes == 2 * 28 * 4 * 128 * 8192 * 2
    assert estimate(qwen_7b_config(), "none", 2, 8192).weights_bytes / GIB > 14


def test_a_model_that_cannot_fit_is_refused_with_the_setting_to_change(monkeypatch):
    monkeypatch.setattr("rag_app.llm.memory.available_bytes", lambda device: 4 * GIB)
    plan = estimate(qwen_7b_config(), "none", 2, 8192)
    with pytest.raises(
        InsufficientMemoryError, match="set RAG_LLM_QUANTIZATION=4bit, or a smaller RAG_LLM_CONTEXT_WINDOW"
    ):
        check_fits(plan, "cuda", "Qwen/Qwen2.5-7B-Instruct", "none", 8192)


def test_unknown_model_is_a_clear_error_and_auto_falls_back_to_extractive(tmp_path, clean_env):
    with pytest.raises(ModelUnavailableError, match="Set RAG_LLM_MODEL to a local model directory"):
        load_local_model(str(tmp_path / "no-such-model"), device="cpu")
    settings = Settings(_env_file=None, llm_model=str(tmp_path / "no-such-model"))
    loaded = load_chat_backend(settings)
    backend, reason = loaded.backend, loaded.reason
    assert backend is None and reason.startswith("no answer model could be loaded")


def test_default_model_fits_the_hardware():
    assert default_model_name("cpu") == "Qwen/Qwen2.5-0.5B-Instruct"
    if torch.cuda.is_available():
        assert default_model_name("cuda").startswith("Qwen/Qwen2.5-")


def test_smollm2s_layer_widths_take_the_gpu_fast_path_in_4bit(monkeypatch):
    """SmolLM2-135M (576-wide layers) crashed the int4 fast path on the H200 until gemlite's scales and zeros got
    zero padding behind them (issue 29, quant.pad_gemlite_meta): no width guard sends it elsewhere now."""
    from tiny_lm import QWEN25_7B
    from transformers import LlamaConfig, Qwen2Config

    import rag_app.fastgen
    from rag_app.llm.local import choose_engine

    monkeypatch.setattr(rag_app.fastgen, "fast_path_blocker", lambda device, quantization, autotune=False: None)
    smollm2 = LlamaConfig(hidden_size=576, intermediate_size=1536, num_attention_heads=9, num_key_value_heads=3,
                          num_hidden_layers=30, vocab_size=49152, tie_word_embeddings=True)  # fmt: skip
    assert choose_engine("auto", "cuda", "4bit", smollm2, None) == (
        True, "engine: fast path (static KV cache, CUDA graphs, continuous batching)"
    )  # fmt: skip
    assert choose_engine("fast", "cuda", "4bit", smollm2, None)[0] is True
    assert choose_engine("auto", "cuda", "4bit", Qwen2Config(**{k: v for k, v in QWEN25_7B.items()}), None)[0]
    monkeypatch.setattr(rag_app.fastgen, "fast_path_blocker", lambda device, quantization, autotune=False: "no gemlite")
    assert choose_engine("auto", "cuda", "4bit", smollm2, None) == (False, "engine: bitsandbytes (no gemlite)")


def test_auto_keeps_a_small_model_in_bf16_on_a_gpu_and_quantizes_a_large_one():
    """4-bit cost SmolLM2-135M's real weights perplexity 9.77 -> 11.6-13.0 on the H200 (issue 29)."""
    from tiny_lm import QWEN25_7B
    from transformers import LlamaConfig, Qwen2Config

    from rag_app.llm.local import resolve_quantization
    from rag_app.llm.memory import count_parameters

    smollm2 = LlamaConfig(hidden_size=576, intermediate_size=1536, num_attention_heads=9, num_key_value_heads=3,
                          num_hidden_layers=30, vocab_size=49152, tie_word_embeddings=True)  # fmt: skip
    small, large = sum(count_parameters(smollm2)), sum(count_parameters(Qwen2Config(**QWEN25_7B)))
    assert 130e6 < small < 170e6 and 7e9 < large < 8e9  # the output head counted whether tied or not
    quant, notes = resolve_quantization("auto", "cuda", small)
    assert quant == "none" and "M parameters" in notes[0]
    assert resolve_quantization("auto", "cuda", large) == ("4bit", [])
    assert resolve_quantization("4bit", "cuda", small) == ("4bit", [])  # asked for: kept
    assert resolve_quantization("auto", "cpu", large)[0] == "none"
