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


PREPARE_PARTS = 100  # progress is told in hundredths: splitting pages 0-50, tokenizing 50-85, terms 85-100
PAGES_A_PIECE, CHUNKS_A_PIECE = 20, 256  # a 300-page filing takes several seconds: told piece by piece


def prepare_chunks(
    doc: ExtractedDocument, sha256: str, plan: ChunkPlan, on_progress: Callable[[int], None] | None = None
) -> PreparedChunks:
    """Split a parsed document into chunks with their model token ids and BM25 term counts; ``on_progress(n)``
    as n hundredths of the work are done."""
    told = on_progress or (lambda n: None)
    pages = len(doc.pages)

    def page_done(done: int) -> None:
        if done % PAGES_A_PIECE == 0:
            told(50 * done // max(pages, 1))

    chunks = chunker_for(plan).split_pages(doc.pages, sha256, page_done)
    encoded = []
    for start in range(0, len(chunks), CHUNKS_A_PIECE):
        told(50 + 35 * start // max(len(chunks), 1))
        texts = [c.text for c in chunks[start : start + CHUNKS_A_PIECE]]
        encoded += encoder_for(plan).encode_batch(texts, add_special_tokens=True)
    lengths = np.fromiter((len(e.ids) for e in encoded), dtype=np.int64, count=len(encoded))
    starts = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    ids = np.fromiter((i for e in encoded for i in e.ids), dtype=np.int32, count=int(starts[-1]))
    counts = []
    for start in range(0, len(chunks), CHUNKS_A_PIECE):
        told(85 + 15 * start // max(len(chunks), 1))
        counts += [Counter(terms_of(c.text)) for c in chunks[start : start + CHUNKS_A_PIECE]]
    return PreparedChunks(chunks, ids, starts, PackedTerms.of(counts))
