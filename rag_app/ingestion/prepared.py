"""Chunking, BM25 terms and model token ids made in the parser processes, beside the parsing.

The ingesting process then only embeds and stores: splitting, term extraction and tokenizing
(about half of its time before, all of it holding the GIL) run in parallel in the workers. The
workers use the embedding model's own fast tokenizer, loaded from a file, so chunks and ids are
the ones :class:`rag_app.ingestion.chunking.TokenChunker` and sentence-transformers make in this process.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from rag_app.ingestion.chunking import TokenChunker
from rag_app.records import ExtractedDocument, PreparedChunks


@dataclass(frozen=True)
class ChunkPlan:
    """How a parser process chunks and tokenizes: the tokenizer file and the chunker's settings."""

    tokenizer_path: str  # the model's fast tokenizer, saved as tokenizer.json
    chunk_size: int
    chunk_overlap: int
    max_tokens: int  # the longest chunk, without special tokens
    max_length: int  # the model's sequence length, special tokens included (longer inputs are truncated)


_tools: dict[ChunkPlan, tuple[TokenChunker, object]] = {}


def _tools_for(plan: ChunkPlan) -> tuple[TokenChunker, object]:
    """The chunker and the model-input tokenizer of a plan, loaded once per process."""
    if plan not in _tools:
        from tokenizers import Tokenizer

        counter = Tokenizer.from_file(plan.tokenizer_path)
        counter.no_truncation()
        counter.no_padding()
        encoder = Tokenizer.from_file(plan.tokenizer_path)
        encoder.no_padding()
        encoder.enable_truncation(max_length=plan.max_length)

        def count(text: str) -> int:
            return len(counter.encode(text, add_special_tokens=False))

        _tools[plan] = (TokenChunker(count, plan.chunk_size, plan.chunk_overlap, plan.max_tokens), encoder)
    return _tools[plan]


def prepare_chunks(doc: ExtractedDocument, sha256: str, plan: ChunkPlan) -> PreparedChunks:
    """Split a parsed document into chunks with their model token ids and BM25 term counts."""
    from rag_app.storage.chunk_table import PackedTerms, terms_of

    chunker, encoder = _tools_for(plan)
    chunks = chunker.split_pages(doc.pages, sha256)
    encoded = encoder.encode_batch([c.text for c in chunks], add_special_tokens=True)
    lengths = np.fromiter((len(e.ids) for e in encoded), dtype=np.int64, count=len(encoded))
    starts = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    ids = np.fromiter((i for e in encoded for i in e.ids), dtype=np.int32, count=int(starts[-1]))
    terms = PackedTerms.of(Counter(terms_of(c.text)) for c in chunks)
    return PreparedChunks(chunks, ids, starts, terms)


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
