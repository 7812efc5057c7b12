"""The fast generation path computes the same function as the reference (transformers) path.

On the same int4 weights: logits agree, and greedy continuations of a model
trained until its next-token distribution is peaked are identical, whether a
prompt runs alone, batched with others, after a shared cached prefix, or joins
while another request is decoding. Runs on CPU with the reference int4 layer;
tests/test_gpu.py repeats the comparison with gemlite's kernels on an H200.
"""

import threading
import time

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rag_app.fastgen.engine import FastEngine
from rag_app.fastgen.loading import build_fast_transformer
from rag_app.fastgen.quant import (
    dequantize_int4,
    dequantize_int8_rows,
    group_size_for,
    quantize_int4,
    quantize_int8_rows,
)

LOGIT_TOLERANCE = 2e-3  # float32 on CPU: the same math in a different order
PROMPTS = [
    "The Company issues unsecured short-term promissory notes",
    "Gross margin",
    "Net sales by reportable segment were as follows for the three months",
]


PEAKED_SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 2, "max_position_embeddings": 2048, "tie_word_embeddings": False}  # fmt: skip


def train_peaked_lm(directory, texts, steps: int = 250, device: str = "cpu", shape: dict | None = None):
    """Train a small model (the tiny shape unless ``shape``) until greedy decoding is well separated (few near-ties)."""
    from tiny_lm import build_random_lm

    build_random_lm(directory, texts, shape or PEAKED_SHAPE)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory).to(device).train()
    ids = torch.tensor(tokenizer("\n".join(texts))["input_ids"])
    windows = ids[: len(ids) // 65 * 65].view(-1, 65)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = windows[torch.randint(len(windows), (16,), generator=generator)].to(device)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval().save_pretrained(directory)
    return float(loss.detach())


# Every test here needs the briefly trained model (minutes on 2 cores): the quick subset skips them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def peaked_lm(tmp_path_factory, corpus):
    from conftest import DOCUGAMI

    from rag_app.ingestion.loaders import load_document

    texts = [p.text for p in load_document(DOCUGAMI / "2023 Q2 AAPL.pdf").pages]
    directory = tmp_path_factory.mktemp("peaked-lm")
    loss = train_peaked_lm(directory, texts)
    assert loss < 4.5, "the tiny model did not learn enough to be peaked"
    return directory


def reference_model(directory, head_int8: bool = False):
    """transformers' model with every linear layer replaced by its int4-dequantized weight
    (and, like the GPU fast path, the output head by its int8-dequantized weight)."""
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module is not model.lm_head:
            codes, scales, zeros = quantize_int4(module.weight.data, group_size_for(module.in_features))
            module.weight.data = dequantize_int4(codes, scales, zeros, torch.float32)
    if head_int8:
        codes, scales = quantize_int8_rows(model.lm_head.weight.data)
        model.lm_head.weight.data = dequantize_int8_rows(codes, scales, torch.float32)
    return model


@pytest.fixture(scope="module")
def models(peaked_lm):
    config = AutoModelForCausalLM.from_pretrained(peaked_lm).config
    fast = build_fast_transformer(peaked_lm, config, "4bit", "cpu")
    return reference_model(peaked_lm), fast, AutoTokenizer.from_pretrained(peaked_lm)


@pytest.fixture
def engine(models):
    _, fast, _ = models
    engine = FastEngine(fast, slots=4, context=512, compile_decode=False)
    yield engine
    engine.close()


def encode(tokenizer, text):
    return tokenizer(text)["input_ids"]


def reference_greedy(model, tokenizer, text, new_tokens=24):
    ids = torch.tensor([encode(tokenizer, text)])
    out = model.generate(ids, max_new_tokens=new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0)
    return out[0, ids.shape[1] :].tolist()


def test_logits_agree_with_the_reference_on_the_same_int4_weights(models):
    reference, fast, tokenizer = models
    ids = torch.tensor([encode(tokenizer, PROMPTS[2])])
    with torch.inference_mode():
        expected = reference(ids).logits
        got = fast.forward_full(ids)
    assert (got - expected).abs().max().item() < LOGIT_TOLERANCE
    top2 = expected[0].topk(2).values
    assert (top2[:, 0] - top2[:, 1]).median() > 0.5, "the model is not peaked enough for a greedy comparison"


def test_greedy_continuations_match_alone_and_batched(models, engine):
    reference, _, tokenizer = models
    expected = [reference_greedy(reference, tokenizer, p) for p in PROMPTS]
    alone = [engine.generate([encode(tokenizer, p)], 24)[0] for p in PROMPTS]
    together = engine.generate([encode(tokenizer, p) for p in PROMPTS], 24)
    assert alone == expected
    assert together == expected


@pytest.mark.parametrize("attention", ["math", "sdpa"])
def test_either_decode_attention_gives_the_same_continuations(models, monkeypatch, attention):
    """The decode step's attention as two matmuls and a float32 softmax (the default: 8 chats 4.85x one stream on
    an H200) or PyTorch's fused SDPA decodes what the reference does, alone and batched."""
    import rag_app.fastgen.model

    reference, fast, tokenizer = models
    monkeypatch.setattr(rag_app.fastgen.model, "DECODE_ATTENTION", attention)
    engine = FastEngine(fast, slots=4, context=512, compile_decode=False)
    try:
        expected = [reference_greedy(reference, tokenizer, p) for p in PROMPTS]
        assert engine.generate([encode(tokenizer, p) for p in PROMPTS], 24) == expected
        assert [engine.generate([encode(tokenizer, p)], 24)[0] for p in PROMPTS] == expected
    finally:
        engine.close()


def test_shared_prefix_cache_gives_the_same_continuation(models, engine):
    reference, _, tokenizer = models
    prefix = encode(tokenizer, "Apple Inc. quarterly report.")
    engine.add_prefix(prefix)
    prompts = [prefix + encode(tokenizer, " " + p) for p in PROMPTS]
    expected = [
        reference.generate(torch.tensor([p]), max_new_tokens=16, do_sample=False, eos_token_id=None, pad_token_id=0)[
            0, len(p) :
        ].tolist()
        for p in prompts
    ]
    assert engine.generate(prompts, 16) == expected


def test_a_request_joining_mid_generation_shares_decode_steps(models, engine):
    reference, _, tokenizer = models
    first = engine.submit(encode(tokenizer, PROMPTS[0]), 60)
    tokens_first = []
    iterator = iter(first)
    for _ in range(10):
        tokens_first.append(next(iterator))
    steps_before = engine.steps
    second = engine.submit(encode(tokenizer, PROMPTS[1]), 30)
    tokens_second = list(second)
    tokens_first += list(iterator)
    assert tokens_first == reference_greedy(reference, tokenizer, PROMPTS[0], 60)
    assert tokens_second == reference_greedy(reference, tokenizer, PROMPTS[1], 30)
    # 30 tokens of the second request took about 30 shared steps, not 50 steps after the first finished
    assert engine.steps - steps_before <= 50 + 2


def test_cancelled_request_frees_its_slot(models, engine):
    _, _, tokenizer = models
    request = engine.submit(encode(tokenizer, PROMPTS[0]), 400)
    next(iter(request))
    request.cancel()
    deadline = time.time() + 10
    while engine._active and time.time() < deadline:
        time.sleep(0.01)
    assert not engine._active
    assert len(engine.generate([encode(tokenizer, PROMPTS[1])] * 4, 4)) == 4


def test_sampling_uses_each_requests_temperature(models, engine):
    _, _, tokenizer = models
    prompt = encode(tokenizer, PROMPTS[1])
    greedy = engine.generate([prompt], 20)[0]
    torch.manual_seed(0)
    sampled = [engine.generate([prompt], 20, temperature=1.5)[0] for _ in range(3)]
    assert any(s != greedy for s in sampled)


def test_lora_adapter_is_merged_into_the_fast_weights(peaked_lm, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(peaked_lm)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(tmp_path / "adapter")
    merged_dir = tmp_path / "merged"
    from peft import PeftModel

    PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(peaked_lm), tmp_path / "adapter"
    ).merge_and_unload().save_pretrained(merged_dir)
    AutoTokenizer.from_pretrained(peaked_lm).save_pretrained(merged_dir)
    fast = build_fast_transformer(peaked_lm, base.config, "4bit", "cpu", adapter=tmp_path / "adapter")
    ids = torch.tensor([[5, 9, 33, 80, 120]])
    with torch.inference_mode():
        assert (fast.forward_full(ids) - reference_model(merged_dir)(ids).logits).abs().max() < LOGIT_TOLERANCE


def test_engine_serves_concurrent_callers_from_threads(models, engine):
    reference, _, tokenizer = models
    results = {}

    def ask(i):
        results[i] = engine.generate([encode(tokenizer, PROMPTS[i])], 12)[0]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [results[i] for i in range(3)] == [reference_greedy(reference, tokenizer, p, 12) for p in PROMPTS]


def test_strategies_stream_and_batch_on_the_fast_path(models, engine, peaked_lm):
    """LocalModel on the fast path: streaming yields pieces, map steps batch, text matches the reference path."""
    from langchain_core.messages import HumanMessage

    from rag_app.fastgen import FastGenerator
    from rag_app.llm.backend import ModelInfo
    from rag_app.llm.local import HFGenerator, LocalModel

    reference, _, tokenizer = models
    fast_local = LocalModel(FastGenerator(engine, tokenizer), tokenizer, ModelInfo("tiny", "local", engine="fast"))
    ref_local = LocalModel(HFGenerator(reference, tokenizer), tokenizer, ModelInfo("tiny", "local"))
    messages = [HumanMessage(PROMPTS[2])]
    pieces = list(fast_local.stream(messages, 20))
    assert len(pieces) > 3 and pieces[-1].completion_tokens == pieces[-1].completion_tokens > 0
    streamed = "".join(p for p in pieces if isinstance(p, str))
    expected = "".join(p for p in ref_local.stream(messages, 20) if isinstance(p, str))
    assert streamed.strip() == expected.strip()
    conversations = [[HumanMessage(p)] for p in PROMPTS]
    batched = fast_local.generate_batch(conversations, 12)
    assert [t for t, _ in batched] == [t for t, _ in ref_local.generate_batch(conversations, 12)]
    assert all(u.prompt_tokens == fast_local.count_tokens(c) for (_, u), c in zip(batched, conversations, strict=True))


def garbage_span_compiler(decode):
    """A 'compiled' decode step whose attention span holds garbage, as a graph reading a freed span did
    (issue 11): -1 everywhere lets every position, written or not, into the attention."""
    return lambda tokens, positions, span: decode(tokens, positions, torch.full_like(span, -1))


def test_compiled_step_that_agrees_with_eager_decode_is_kept(models):
    reference, fast, tokenizer = models
    engine = FastEngine(fast, slots=4, context=512, decode_compiler=lambda decode: decode)
    try:
        engine.warmup()
        assert engine.check.verdict == "agreed" and engine.check.max_abs_diff == 0.0
        assert engine.compile_decode and engine._compiled
        assert engine.generate([encode(tokenizer, PROMPTS[0])], 16)[0] == reference_greedy(
            reference, tokenizer, PROMPTS[0], 16
        )
    finally:
        engine.close()


def test_compiled_step_that_disagrees_is_replaced_by_the_eager_one(models):
    reference, fast, tokenizer = models
    engine = FastEngine(fast, slots=4, context=512, decode_compiler=garbage_span_compiler)
    try:
        engine.warmup()
        assert engine.check.verdict == "disagreed" and engine.check.max_abs_diff > engine.check.tolerance
        assert not engine.compile_decode and not engine._compiled
        together = engine.generate([encode(tokenizer, p) for p in PROMPTS], 16)
        assert together == [reference_greedy(reference, tokenizer, p, 16) for p in PROMPTS]
    finally:
        engine.close()


def test_loading_falls_back_to_eager_decode_and_says_why(peaked_lm, monkeypatch):
    """Through the normal loading path: the failed self-check shows in the model notes and in the
    structured field that /api/health and ``ask --json`` show, and answers stay right."""
    import rag_app.fastgen
    import rag_app.fastgen.engine
    from rag_app.llm.local import load_local_model

    monkeypatch.setattr(rag_app.fastgen, "fast_path_blocker", lambda device, quantization, autotune=False: None)
    monkeypatch.setattr(rag_app.fastgen.engine, "decode_compiler_for", lambda device: garbage_span_compiler)
    local = load_local_model(str(peaked_lm), device="cpu", engine="fast", slots=2, context_window=512)
    try:
        info = local.info.to_dict()
        assert info["engine"] == "fast"
        check = info["fast_path_check"]
        assert check["verdict"] == "disagreed" and not check["agreed"] and check["max_abs_diff"] > check["tolerance"]
        assert any(n.startswith("fast path self-check failed: compiled decode disagrees") for n in info["notes"])
        reference = AutoModelForCausalLM.from_pretrained(peaked_lm).eval()
        ids = encode(local.tokenizer, PROMPTS[2])
        assert local.generator.engine.generate([ids], 12)[0] == reference_greedy(
            reference, local.tokenizer, PROMPTS[2], 12
        )
    finally:
        local.generator.engine.close()


def test_benchmark_scores_generated_tokens_against_the_reference(models):
    """bench/generation.py: teacher-forced top-1 agreement, the log-prob gap of each miss, and no speed
    figure shown beside an agreement under 0.99."""
    from bench.generation import shown
    from bench.generation_paths import score

    reference, _, tokenizer = models
    prompt = encode(tokenizer, PROMPTS[0])
    greedy = reference_greedy(reference, tokenizer, PROMPTS[0], 20)
    right = score(reference, [(prompt, greedy)], "cpu")
    assert (right["agreement"], right["tokens"], right["max_logprob_gap"]) == (1.0, 20, 0.0)
    wrong = greedy[:10] + [(greedy[10] + 1) % 100] + greedy[11:]
    missed = score(reference, [(prompt, wrong)], "cpu")
    assert missed["agreement"] <= 0.95 and missed["max_logprob_gap"] > 0.5
    assert shown(321.0, {"correctness": {"b1": right}}, "b1") == "321.0 [agree 1.000]"
    # The bar reads agreement outside ties (bench/agreement.py), so the withheld figure is that one.
    outside = missed.get("agreement_outside_ties", missed["agreement"])
    assert outside < 0.99
    assert shown(321.0, {"correctness": {"b1": missed}}, "b1") == f"withheld (agreement {outside:.3f})"


def test_gemlite_scales_and_zeros_get_zeros_behind_them_for_the_kernels_unmasked_reads():
    """gemlite's kernels load scales/zeros [K/g, N] with no mask (issue 29): whole rows past the end along K, up to
    a block of columns past the last row. After padding, the same tensors (values, shape, strides, every reference
    to them) have at least 16 rows and 1,024 more elements of zeros behind them, so those reads meet zeros."""
    from types import SimpleNamespace

    from rag_app.fastgen.quant import META_SPARE_COLUMNS, META_SPARE_ROWS, pad_gemlite_meta

    rows, n = 9, 576  # SmolLM2-135M: K = 576 in groups of 64
    scales = torch.rand(rows, n, dtype=torch.bfloat16)
    zeros = -torch.rand(rows, n, dtype=torch.bfloat16)
    kernel = SimpleNamespace(scales=scales, zeros=zeros)
    held = [kernel.scales]  # what gemlite may hold elsewhere: the same tensor object
    before = (scales.clone(), zeros.clone())
    pad_gemlite_meta(kernel)
    for meta, original in zip((kernel.scales, kernel.zeros), before, strict=True):
        assert meta.shape == (rows, n) and meta.stride() == (n, 1) and torch.equal(meta, original)
        spare = meta.untyped_storage().nbytes() // meta.element_size() - rows * n
        assert spare == META_SPARE_ROWS * n + META_SPARE_COLUMNS
        over_read = torch.as_strided(meta, (rows + META_SPARE_ROWS, n), (n, 1))  # what a split-K config reads
        assert torch.equal(over_read[:rows], original) and not over_read[rows:].any()
    assert held[0] is kernel.scales and held[0].untyped_storage().nbytes() > rows * n * 2
    # the int8 head's empty zeros and a scalar are never indexed: left alone
    head = SimpleNamespace(scales=torch.rand(1, 8), zeros=torch.empty(0, dtype=torch.int32))
    pad_gemlite_meta(head)
    assert head.zeros.numel() == 0 and head.scales.untyped_storage().nbytes() > 8 * 4
    with pytest.raises(RuntimeError, match="not row-major"):
        pad_gemlite_meta(SimpleNamespace(scales=torch.rand(n, rows).t(), zeros=None))


@pytest.mark.parametrize("heads,kv_heads", [(9, 3), (4, 4), (28, 4)])
def test_decode_attention_equals_pytorchs_grouped_query_attention(heads, kv_heads):
    """One query row per sequence, masked past each sequence's own length, query heads sharing kv heads."""
    import torch.nn.functional as F

    from rag_app.fastgen.model import decode_attention

    torch.manual_seed(0)
    b, width, d = 3, 40, 64
    q = torch.randn(b, heads, 1, d)
    keys, values = torch.randn(b, kv_heads, width, d), torch.randn(b, kv_heads, width, d)
    mask = (torch.arange(width) <= torch.tensor([5, 39, 17]).unsqueeze(1)).view(b, 1, 1, width)
    want = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=True)
    assert torch.allclose(decode_attention(q, keys, values, mask), want, atol=1e-5)
