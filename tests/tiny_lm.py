"""Build random-weight chat models (Qwen2 architecture) with a BPE tokenizer trained on given text.

Their output is noise, but they load through the same ``from_pretrained`` path as
a real model, have a chat template and special tokens, and generate real tokens.
Speed does not depend on weight values, so a random model of a real shape (for
example Qwen2.5-7B's) stands in for the real weights in benchmarks.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2.5-7B-Instruct's architecture, from its published config.json.
QWEN25_7B = {
    "vocab_size": 152064,
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-06,
    "tie_word_embeddings": False,
}
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
    "initializer_range": 0.5,  # varied, visible noise rather than one repeated token
}


def train_tokenizer(texts: list[str], vocab_size: int = 2000, pad_to: int | None = None):
    """A byte-level BPE tokenizer with a chat template; ``pad_to`` adds filler tokens up to a vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(texts, trainer)
    if pad_to and tokenizer.get_vocab_size() < pad_to:
        tokenizer = _pad_vocabulary(tokenizer, pad_to)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _pad_vocabulary(tokenizer, size: int):
    """Add plain vocabulary entries " w<i>" up to ``size``, so every id a random model of a real
    vocabulary emits decodes to a word (and streams word by word like real text)."""
    import json

    from tokenizers import Tokenizer

    data = json.loads(tokenizer.to_str())
    vocab = data["model"]["vocab"]
    for i in range(size - len(vocab)):
        vocab[f"\u0120w{i}"] = len(vocab)  # \u0120 is byte-level BPE's space
    return Tokenizer.from_str(json.dumps(data))


def build_random_lm(
    directory: Path, texts: list[str], shape: dict | None = None, device: str = "cpu", seed: int = 0
) -> Path:
    """Save a random Qwen2 causal LM of ``shape`` (default: tiny) and its tokenizer to ``directory``."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    shape = dict(shape or TINY)
    tokenizer = train_tokenizer(texts, pad_to=shape.get("vocab_size"))
    shape.setdefault("vocab_size", len(tokenizer))
    config = Qwen2Config(
        **shape,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    )
    torch.manual_seed(seed)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, max_shard_size="5GB")
    tokenizer.save_pretrained(directory)
    del model
    return directory


def build_tiny_lm(directory: Path, texts: list[str]) -> Path:
    return build_random_lm(directory, texts)


def sample_texts() -> list[str]:
    """Text to train a tokenizer on when no corpus is at hand (the GPU machine has none): the bundled sample."""
    from rag_app.ingestion.loaders import load_document

    root = Path(__file__).resolve().parents[1]
    pages = [p.text for p in load_document(root / "samples" / "acme-q3-2023.pdf").pages]
    chinese = ["公司主营业务是食品冷冻设备及罐式集装箱的研发、生产和销售。报告期内，净利润为一亿元。"]
    return (pages + chinese) * 20
