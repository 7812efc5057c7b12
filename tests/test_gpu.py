"""On an NVIDIA GPU: a model saved to disk loads in 4-bit through the normal loading code and answers
with every strategy. Skipped on machines without CUDA (run on the H200 through the device tool)."""

import pytest
import torch

from rag_app.chains import STRATEGIES
from rag_app.chains.base import StrategyContext
from rag_app.chains.events import Source, TokenEvent
from rag_app.llm.backend import ChatBackend
from rag_app.llm.chat_models import LocalChatModel
from rag_app.llm.local import load_local_model
from rag_app.prompts import load_prompts
from rag_app.records import SearchHit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (bitsandbytes kernels)"),
]
SMALL = {
    "hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 4, "num_attention_heads": 8,
    "num_key_value_heads": 2, "max_position_embeddings": 8192, "vocab_size": 32000, "tie_word_embeddings": False,
}  # fmt: skip


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory):
    from tiny_lm import build_random_lm, sample_texts

    return build_random_lm(tmp_path_factory.mktemp("small-gpu-lm"), sample_texts(), SMALL, device="cuda")


@pytest.fixture(scope="module", params=["transformers", "fast"])
def quantized(request, small_model_dir):
    return load_local_model(str(small_model_dir), quantization="auto", device="cuda", engine=request.param)


def test_loads_in_4bit_nf4_on_cuda(small_model_dir):
    import bitsandbytes as bnb

    quantized = load_local_model(str(small_model_dir), quantization="auto", device="cuda", engine="transformers")
    assert (quantized.info.device, quantized.info.quantization, quantized.info.engine) == (
        "cuda",
        "4bit",
        "transformers",
    )
    layers = [m for m in quantized.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 4 * 7  # q, k, v, o, gate, up, down in each layer
    assert layers[0].weight.quant_type == "nf4" and layers[0].weight.quant_state.nested  # double quantization
    assert quantized.model.device.type == "cuda"


@pytest.mark.parametrize("strategy", ["stuff", "map_reduce", "refine", "map_rerank"])
def test_answers_with_every_strategy(quantized, strategy):
    backend = ChatBackend(LocalChatModel(local=quantized), quantized.info, quantized.count_tokens)
    texts = ["Revenue was 48.2 million dollars.", "Gross margin was 41.5 percent.", "Dividend of 5 cents."]
    sources = [Source(n, SearchHit("acme.pdf", n, 0, t, 0.5, "sha", f"id{n}")) for n, t in enumerate(texts, 1)]
    ctx = StrategyContext("What was the gross margin?", sources, backend, load_prompts("en"), 16, 0.0)
    text = "".join(e.text for e in STRATEGIES[strategy](ctx) if isinstance(e, TokenEvent))
    assert text and ctx.tally.completion > 0


def test_auto_engine_picks_the_fast_path_on_this_gpu(small_model_dir):
    local = load_local_model(str(small_model_dir), quantization="auto", device="cuda")
    assert local.info.engine == "fast" and local.info.quantization == "4bit"
    assert any("compiled and captured in" in n for n in local.info.notes)
    assert local.info.memory["allocated_after_load"] < 1.0
    assert local.generator.engine.stats["steps_s"] >= 0
    pieces = list(local.stream([{"role": "user", "content": "gross margin?"}], 24))
    assert len([p for p in pieces if isinstance(p, str)]) > 3, "the fast path must still stream"


@pytest.fixture(scope="module")
def peaked_gpu_lm(tmp_path_factory):
    from test_fastgen import train_peaked_lm
    from tiny_lm import sample_texts

    directory = tmp_path_factory.mktemp("peaked-gpu")
    train_peaked_lm(directory, sample_texts(), steps=300, device="cuda")
    return directory


def test_gemlite_fast_path_matches_the_reference_path(peaked_gpu_lm):
    """Same int4 weights: logits close in bf16, and identical greedy continuations, compiled + CUDA graphs."""
    from test_fastgen import reference_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rag_app.fastgen.engine import FastEngine
    from rag_app.fastgen.loading import build_fast_transformer
    from rag_app.fastgen.quant import GemliteLinear

    config = AutoModelForCausalLM.from_pretrained(peaked_gpu_lm).config
    fast = build_fast_transformer(peaked_gpu_lm, config, "4bit", "cuda")
    assert any(isinstance(m, GemliteLinear) for m in fast.modules())
    reference = reference_model(peaked_gpu_lm, head_int8=True).to("cuda", torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(peaked_gpu_lm)
    prompts = ["Revenue for the third quarter of 2023 was", "Gross margin was", "The board approved"]
    ids = torch.tensor([tokenizer(prompts[0])["input_ids"]], device="cuda")
    with torch.inference_mode():
        expected = torch.log_softmax(reference(ids).logits.float(), -1)
        got = torch.log_softmax(fast.forward_full(ids), -1)
    assert (got - expected).abs().max().item() < 0.25  # bf16, different accumulation order
    assert (got.argmax(-1) == expected.argmax(-1)).float().mean().item() == 1.0
    engine = FastEngine(fast, slots=4, context=512, compile_decode=True)
    engine.warmup()
    want = []
    for p in prompts:
        prompt = torch.tensor([tokenizer(p)["input_ids"]], device="cuda")
        out = reference.generate(prompt, max_new_tokens=24, do_sample=False, eos_token_id=None, pad_token_id=0)
        want.append(out[0, prompt.shape[1] :].tolist())
    assert engine.generate([tokenizer(p)["input_ids"] for p in prompts], 24) == want
    assert [engine.generate([tokenizer(p)["input_ids"]], 24)[0] for p in prompts] == want
    engine.close()
