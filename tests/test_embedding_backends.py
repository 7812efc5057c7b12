"""Which embedder runs (RAG_EMBEDDING_BACKEND), the ONNX path's agreement check at load, and the fallback to
torch that the ingest report states. Real models: a tiny random-weight one exported in seconds, and (slow) the
bundled all-MiniLM-L6-v2."""

from __future__ import annotations

import numpy as np
import pytest

from rag_app.embedding.choice import exported, load_embeddings, pick_backend
from rag_app.embedding.embedder import LocalEmbeddings
from rag_app.embedding.onnx_embedder import OnnxEmbeddings
from rag_app.settings import Settings


@pytest.fixture
def onnx_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize(
    ("requested", "precision", "device", "chosen"),
    [("auto", "auto", "cpu", "onnx"), ("auto", "int8", "cpu", "onnx"), ("auto", "fp32", "cpu", "onnx"),
     ("auto", "bf16", "cpu", "torch"), ("auto", "auto", "cuda", "torch"), ("torch", "auto", "cpu", "torch"),
     ("onnx", "auto", "cpu", "onnx")],
)  # fmt: skip
def test_auto_runs_onnx_on_a_cpu_without_bf16_and_torch_on_a_gpu_or_for_bf16(
    requested, precision, device, chosen, monkeypatch
):
    import rag_app.embedding.choice as choice

    monkeypatch.setattr(choice, "cpu_has_native_bf16", lambda: False)
    assert pick_backend(requested, precision, device) == chosen


def test_auto_runs_torch_bf16_on_a_cpu_that_has_it(monkeypatch):
    import rag_app.embedding.choice as choice

    monkeypatch.setattr(choice, "cpu_has_native_bf16", lambda: True)
    assert pick_backend("auto", "auto", "cpu") == "torch" and pick_backend("onnx", "auto", "cpu") == "onnx"


def test_the_onnx_embedder_is_used_where_it_agrees_with_fp32_torch(tiny_embedder, onnx_cache, tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, embedding_model=str(tiny_embedder), embedding_device="cpu",
                        embedding_backend="onnx")  # fmt: skip
    embedder = load_embeddings(settings)
    assert isinstance(embedder, OnnxEmbeddings) and embedder.precision == "int8"
    assert embedder.info.agreement[0] >= 0.999 and embedder.info.agreement[1] >= 0.99 and not embedder.note
    torch32 = LocalEmbeddings(str(tiny_embedder), "cpu", 0, "fp32")
    texts = ["Net revenue rose 12% to $2,468 million.", "报告期内公司营业收入", "a"]
    assert (embedder.embed_array(texts) * torch32.embed_array(texts)).sum(axis=1).min() > 0.99
    assert embedder.fingerprint == torch32.fingerprint  # the same vector space: nothing is re-ingested
    assert embedder.count_tokens(texts[0]) == torch32.count_tokens(texts[0])


def test_an_onnx_path_that_disagrees_falls_back_to_torch_and_the_ingest_report_says_so(
    tiny_embedder, onnx_cache, tmp_path
):
    from rag_app.service import RagService

    folder = exported(str(tiny_embedder))
    reference = np.load(folder / "reference.npy")
    np.save(folder / "reference.npy", -reference)  # what this machine's onnxruntime gives no longer agrees
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", embedding_model=str(tiny_embedder),
                        embedding_device="cpu", embedding_backend="onnx", parse_workers=1, ocr="off")  # fmt: skip
    (tmp_path / "note.txt").write_text("Gross margin was 41% in the third quarter.", encoding="utf-8")
    report = RagService(settings).ingest([tmp_path / "note.txt"]).to_dict()
    assert report["embedder"]["backend"] == "torch" and report["embedder"]["precision"] == "fp32"
    note = report["embedder"]["note"]
    assert "onnx int8 vectors disagree" in note and "onnx fp32 vectors disagree" in note and "torch fp32" in note


def test_without_the_export_packages_torch_embeds_and_says_why(tiny_embedder, onnx_cache, tmp_path, monkeypatch):
    import rag_app.embedding.onnx_export as onnx_export

    def missing(location, target):
        raise onnx_export.ExportError("onnx is not installed (pip install onnx onnx-ir)")

    monkeypatch.setattr(onnx_export, "export_model", missing)
    settings = Settings(_env_file=None, data_dir=tmp_path, embedding_model=str(tiny_embedder), embedding_device="cpu",
                        embedding_backend="onnx")  # fmt: skip
    embedder = load_embeddings(settings)
    assert embedder.info.backend == "torch" and "pip install onnx onnx-ir" in embedder.info.note


def test_an_explicit_torch_backend_loads_no_onnx(tiny_embedder, onnx_cache, tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, embedding_model=str(tiny_embedder),
                        embedding_device="cpu", embedding_backend="torch")  # fmt: skip
    assert load_embeddings(settings).info.backend == "torch" and not onnx_cache.exists()


@pytest.mark.slow
def test_the_bundled_model_in_int8_agrees_with_fp32_torch_here(tmp_path):
    """The real model, in the user's cache (exported there once): int8 passes the check on this machine."""
    embedder = load_embeddings(
        Settings(_env_file=None, data_dir=tmp_path, embedding_device="cpu", embedding_backend="onnx")
    )
    assert embedder.info.backend == "onnx" and embedder.precision == "int8"
    mean, worst = embedder.info.agreement
    assert mean >= 0.999 and worst >= 0.99
