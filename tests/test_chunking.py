"""Chunks: measured in embedding tokens, never across pages, exact offsets, stable ids."""

import pytest
from conftest import DOCUGAMI, FINGLM

from rag_app.ingestion.chunking import TokenChunker
from rag_app.ingestion.loaders import load_document
from rag_app.records import PageText, chunk_id

pytestmark = pytest.mark.usefixtures("corpus")
SHA = "ab" * 32


@pytest.fixture(scope="module")
def chunker(embeddings):
    return TokenChunker(embeddings.count_tokens, chunk_size=200, chunk_overlap=30, max_tokens=embeddings.max_tokens)


def assert_exact(chunks, pages):
    text_of = {p.number: p.text for p in pages}
    for c in chunks:
        assert text_of[c.page][c.offset : c.offset + len(c.text)] == c.text
        assert c.id == chunk_id(SHA, c.page, c.offset)


def test_chunks_fit_the_embedder_and_keep_exact_page_offsets(chunker, embeddings):
    pages = load_document(DOCUGAMI / "2023 Q2 AAPL.pdf").pages
    chunks = chunker.split_pages(pages, SHA)
    assert len(chunks) > 28
    assert max(embeddings.count_tokens(c.text) for c in chunks) <= chunker.max_tokens <= embeddings.max_tokens
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert_exact(chunks, pages)
    assert {c.page for c in chunks} == {p.number for p in pages if p.text}


def test_chunks_never_span_two_pages(chunker):
    pages = [PageText(1, "alpha " * 150), PageText(2, "omega " * 150)]
    chunks = chunker.split_pages(pages, SHA)
    assert all(set(c.text.split()) == {"alpha"} for c in chunks if c.page == 1)
    assert all(set(c.text.split()) == {"omega"} for c in chunks if c.page == 2)


def test_sentences_are_kept_whole_and_neighbours_overlap(chunker):
    sentences = [f"Sentence number {i} talks about revenue growth in segment {i}." for i in range(60)]
    pages = [PageText(1, " ".join(sentences))]
    chunks = chunker.split_pages(pages, SHA)
    assert len(chunks) >= 3
    for c in chunks:
        assert c.text.startswith("Sentence number") and c.text.endswith(".")
    for first, second in zip(chunks, chunks[1:], strict=False):
        assert second.offset < first.offset + len(first.text), "no overlap between neighbours"
    assert_exact(chunks, pages)


def test_chinese_text_splits_at_chinese_sentence_ends(chunker):
    pages = [p for p in load_document(next(FINGLM.glob("*四方科技*"))).pages if p.number in (8, 9, 10)]
    chunks = chunker.split_pages(pages, SHA)
    assert len(chunks) > 3
    ends = sum(c.text.endswith(("。", "！", "？", "；")) for c in chunks)
    assert ends / len(chunks) > 0.5
    assert_exact(chunks, pages)


def test_ids_are_stable_and_settings_are_fingerprinted(chunker, embeddings):
    pages = [PageText(1, "Stable text. " * 100)]
    assert [c.id for c in chunker.split_pages(pages, SHA)] == [c.id for c in chunker.split_pages(pages, SHA)]
    other = TokenChunker(embeddings.count_tokens, chunk_size=120, chunk_overlap=10)
    assert other.fingerprint != chunker.fingerprint


def test_fast_token_count_equals_the_tokenizer_and_gives_the_same_chunks(embeddings):
    """The chunker's counter (the tokenizer's backend, copied) counts exactly what the transformers
    tokenizer counts, long texts untruncated, also after an embedding batch set truncation on it."""
    pages = (
        load_document(DOCUGAMI / "2023 Q2 AAPL.pdf").pages[:6]
        + load_document(sorted(FINGLM.glob("*.pdf"))[0]).pages[:2]
    )
    embeddings.embed_array(["a short text", "another one"])  # leaves truncation set on the wrapper's backend

    def wrapper_count(text: str) -> int:
        return len(embeddings.model.tokenizer(text, add_special_tokens=False)["input_ids"])

    texts = [p.text for p in pages if p.text] + ["word " * 900, "收入增长 " * 300, ""]
    assert max(wrapper_count(t) for t in texts) > 512
    assert [embeddings.count_tokens(t) for t in texts] == [wrapper_count(t) for t in texts]
    fast = TokenChunker(embeddings.count_tokens, chunk_size=128, chunk_overlap=16).split_pages(pages, SHA)
    slow = TokenChunker(wrapper_count, chunk_size=128, chunk_overlap=16).split_pages(pages, SHA)
    assert [(c.id, c.text) for c in fast] == [(c.id, c.text) for c in slow]


def test_chinese_table_lines_are_never_chunks_of_their_own(embeddings):
    """Layout fragments of a Chinese annual report ("(2).", "目录第一节", "减值准备") join their neighbours."""
    chunker = TokenChunker(embeddings.count_tokens, chunk_size=128, chunk_overlap=16, max_tokens=embeddings.max_tokens)
    pages = load_document(next(FINGLM.glob("*金宇生物*"))).pages[:40]
    chunks = chunker.split_pages(pages, SHA)
    whole_pages = {p.number for p in pages if embeddings.count_tokens(p.text) < 32}
    fragments = [c.text for c in chunks if embeddings.count_tokens(c.text) < 32 and c.page not in whole_pages]
    assert not fragments
    assert max(embeddings.count_tokens(c.text) for c in chunks) <= chunker.max_tokens == 160
    assert_exact(chunks, pages)


def test_english_pages_keep_the_splitters_chunks(chunker):
    """Fragment merging is for Chinese layout; English pages are split as before (unmeasured there)."""
    pages = load_document(DOCUGAMI / "2023 Q2 AAPL.pdf").pages[:6]
    chunks = chunker.split_pages(pages, SHA)
    assert [c.text for c in chunks] == [t for p in pages for t in chunker._splitter.split_text(p.text)]
