"""Chunks, token ids and BM25 terms made in the parser processes are the ones made in this process."""

import shutil
from collections import Counter

import numpy as np
import pytest
from conftest import DOCUGAMI

from rag_app.ingestion.chunking import TokenChunker
from rag_app.ingestion.loaders import load_document
from rag_app.ingestion.prepared import prepare_chunks
from rag_app.service import RagService
from rag_app.text.terms import terms_of

pytestmark = pytest.mark.usefixtures("corpus")
AAPL = DOCUGAMI / "2023 Q2 AAPL.pdf"


def test_prepared_chunks_terms_and_vectors_are_the_in_process_ones(embeddings, monkeypatch):
    chunker = TokenChunker(embeddings.count_tokens, 128, 16, embeddings.max_tokens)
    plan = embeddings.chunk_plan(chunker.chunk_size, chunker.chunk_overlap, chunker.max_tokens)
    assert plan is not None  # the bundled model's fast tokenizer gives the model's own inputs
    doc = load_document(AAPL)
    prepared = prepare_chunks(doc, "sha", plan)
    assert prepared.chunks == chunker.split_pages(doc.pages, "sha")
    vocabulary, packed = prepared.terms.vocabulary.split("\n"), prepared.terms
    unpacked = [{} for _ in prepared.chunks]  # the packed terms read back: each chunk's counts
    for row, term, count in zip(packed.rows, packed.term_ids, packed.counts, strict=True):
        unpacked[row][vocabulary[term]] = int(count)
    assert unpacked == [dict(Counter(terms_of(c.text))) for c in prepared.chunks]
    assert list(packed.lengths(len(unpacked))) == [sum(c.values()) for c in unpacked]
    some = range(0, len(prepared.chunks), 8)  # embedding on a CPU is slow: every 8th chunk
    sequences = [prepared.token_ids[prepared.starts[i] : prepared.starts[i + 1]] for i in some]
    from_ids = embeddings.embed_tokens(sequences)
    from_texts = embeddings.embed_array([prepared.chunks[i].text for i in some])
    assert np.min(np.sum(from_ids * from_texts, axis=1)) > 0.9999
    # the GPU's batch shapes: widths padded to a multiple of 8, rows to one of 64 (repeats, dropped)
    monkeypatch.setattr(embeddings, "pad_width", 8)
    monkeypatch.setattr(embeddings, "pad_rows", 64)
    padded = embeddings.embed_tokens(sequences)
    assert padded.shape == from_ids.shape
    assert np.min(np.sum(padded * from_ids, axis=1)) > 0.99999  # as close as two batchings of bf16 arithmetic
    # and the GPU's forward: the padding mask handed over in 4D, no "any padding?" check stopping the CPU
    monkeypatch.setattr(embeddings, "mask_4d", True)
    assert embeddings._direct_same
    direct = embeddings.embed_tokens(sequences)
    assert np.min(np.sum(direct * from_ids, axis=1)) > 0.99999


def stored(service) -> tuple[list, np.ndarray, list]:
    """Chunks (id, text, page, offset, index, file); vectors; BM25 rows (chunk id, length, packed postings)."""
    index = service.store(with_model=True).index()
    records = sorted(
        (c.id, c.text, c.page, c.offset, c.index, c.file)
        for sha in index.table.shas()
        for c in index.table.chunks_of(sha)
    )
    got = index.vectors.parts[0].get(include=["embeddings"])
    vectors = dict(zip(got["ids"], got["embeddings"], strict=True))
    rows = index.table._db.execute(
        "SELECT c.id, c.length, p.terms, p.rows, p.term_ids, p.tfs FROM chunks c JOIN postings p ON p.sha = c.sha ORDER BY 1"
    ).fetchall()
    return records, np.asarray([vectors[r[0]] for r in records]), rows


@pytest.mark.slow
def test_ingest_stores_the_same_chunks_vectors_and_bm25_rows_either_way(settings, embeddings, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(AAPL, folder / AAPL.name)
    (folder / "notes.md").write_text("# Notes\n\nGamma notes about the annual meeting.", encoding="utf-8")
    results = []
    for where in ("workers", "here"):
        service = RagService(settings.model_copy(update={"data_dir": tmp_path / where}))
        service.embeddings = embeddings
        if where == "here":
            monkeypatch.setattr(embeddings, "chunk_plan", lambda *args: None)
        report = service.ingest([folder])
        assert report.ok and (report.timings["chunk"] == 0) == (where == "workers")  # chunked here or not
        results.append(stored(service))
    (records, vectors, rows), (records_here, vectors_here, rows_here) = results
    assert records == records_here and rows == rows_here and len(records) > 100
    assert np.min(np.sum(vectors * vectors_here, axis=1)) > 0.9999


def test_the_tokenizer_file_is_named_by_its_content_and_shared(embeddings, tiny_embedder, tmp_path, monkeypatch):
    """One file per tokenizer, reused by every process and run: a killed ingest leaves no folder behind."""
    import tempfile
    from pathlib import Path

    from rag_app.embedding.embedder import LocalEmbeddings

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    first = Path(type(embeddings)._tokenizer_file.func(embeddings))
    again = Path(type(embeddings)._tokenizer_file.func(embeddings))
    assert first == again and first.parent == tmp_path and first.name.startswith("rag-tokenizer-")
    assert first.read_text(encoding="utf-8") == embeddings.model.tokenizer.backend_tokenizer.to_str()
    first.write_text("{}", encoding="utf-8")  # a damaged file is written again
    assert Path(type(embeddings)._tokenizer_file.func(embeddings)).read_text(encoding="utf-8") != "{}"
    other = LocalEmbeddings(str(tiny_embedder), device="cpu")
    assert Path(other._tokenizer_file).parent == tmp_path  # same vocabulary, maybe another file: never a folder
    assert not [p for p in tmp_path.iterdir() if p.is_dir() or p.name.endswith(".partial")]
