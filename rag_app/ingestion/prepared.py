"""Chunking, BM25 terms and model token ids made in the parser processes, beside the parsing.

The ingesting process then only embeds and stores: splitting, term extraction and tokenizing
(about half of its time before, all of it holding the GIL) run in parallel in the workers. The
workers use the embedding model's own fast tokenizer, loaded from a file, so chunks and ids are
the ones :class:`rag_app.ingestion.chunking.TokenChunker` and sentence-transformers make in this process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from rag_app.embedding.inputs import ChunkPlan, encoder_for, token_counter
from rag_app.ingestion.chunking import TokenChunker
from rag_app.records import ExtractedDocument, PreparedChunks
from rag_app.text.terms import PackedTerms, terms_of

_chunkers: dict[ChunkPlan, TokenChunker] = {}


def chunker_for(plan: ChunkPlan) -> TokenChunker:
    """The plan's chunker, measuring with the model's tokenizer; made once per process."""
    if plan not in _chunkers:
        _chunkers[plan] = TokenChunker(token_counter(plan), plan.chunk_size, plan.chunk_overlap, plan.max_tokens)
    return _chunkers[plan]


PREPARE_STEPS = 3  # splitting, tokenizing, term counting: each a few seconds for a 300-page filing


def prepare_chunks(
    doc: ExtractedDocument, sha256: str, plan: ChunkPlan, on_step: Callable[[int], None] | None = None
) -> PreparedChunks:
    """Split a parsed document into chunks with their model token ids and BM25 term counts; ``on_step(n)``
    as step n of PREPARE_STEPS begins."""
    step = on_step or (lambda n: None)
    step(1)
    chunks = chunker_for(plan).split_pages(doc.pages, sha256)
    step(2)
    encoded = encoder_for(plan).encode_batch([c.text for c in chunks], add_special_tokens=True)
    lengths = np.fromiter((len(e.ids) for e in encoded), dtype=np.int64, count=len(encoded))
    starts = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    ids = np.fromiter((i for e in encoded for i in e.ids), dtype=np.int32, count=int(starts[-1]))
    step(3)
    terms = PackedTerms.of(Counter(terms_of(c.text)) for c in chunks)
    return PreparedChunks(chunks, ids, starts, terms)
