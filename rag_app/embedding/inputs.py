"""The embedding model's inputs made outside the model: token ids from its own fast tokenizer, padded batches.

Parser processes tokenize the chunks they make (:mod:`rag_app.ingestion.prepared`) with the model's
fast tokenizer, loaded from the file a :class:`ChunkPlan` names, so the ingesting process only embeds:
:meth:`rag_app.embedding.embedder.LocalEmbeddings.embed_tokens` batches those ids with :func:`model_inputs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChunkPlan:
    """How a parser process chunks and tokenizes: the tokenizer file and the chunker's settings."""

    tokenizer_path: str  # the model's fast tokenizer, saved as tokenizer.json
    chunk_size: int
    chunk_overlap: int
    max_tokens: int  # the longest chunk, without special tokens
    max_length: int  # the model's sequence length, special tokens included (longer inputs are truncated)


_encoders: dict[ChunkPlan, object] = {}
_counters: dict[str, object] = {}


def encoder_for(plan: ChunkPlan):
    """The plan's tokenizer as the model reads its inputs (special tokens, truncation), loaded once per process."""
    if plan not in _encoders:
        from tokenizers import Tokenizer

        encoder = Tokenizer.from_file(plan.tokenizer_path)
        encoder.no_padding()
        encoder.enable_truncation(max_length=plan.max_length)
        _encoders[plan] = encoder
    return _encoders[plan]


def token_counter(plan: ChunkPlan):
    """``text -> tokens`` without special tokens or truncation, as the chunker measures; loaded once per process."""
    if plan.tokenizer_path not in _counters:
        from tokenizers import Tokenizer

        counter = Tokenizer.from_file(plan.tokenizer_path)
        counter.no_truncation()
        counter.no_padding()
        _counters[plan.tokenizer_path] = counter
    counter = _counters[plan.tokenizer_path]

    def count(text: str) -> int:
        return len(counter.encode(text, add_special_tokens=False))

    return count


def encode_texts(plan: ChunkPlan, texts: list[str]) -> list[list[int]]:
    """Model input ids of ``texts`` (special tokens included)."""
    return [e.ids for e in encoder_for(plan).encode_batch(texts, add_special_tokens=True)]


def model_inputs(sequences: list[np.ndarray], pad_id: int, multiple: int = 1) -> dict[str, np.ndarray]:
    """A padded batch as the model's preprocessing makes it: ids, attention mask, token types (zeros).

    ``multiple``: the width rounded up to a multiple of it (more padding, masked as padding is)."""
    width = max((len(s) for s in sequences), default=0)
    width += -width % multiple
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": mask}
