"""A lever measured on a copy of a collection: each chunk embedded with its filing's name and the heading it sits
under ("2023 Q3 AMZN. Income Taxes. We are subject to ..."), the chunk texts, BM25 and everything else as stored.

A 10-Q's pages lie close together in MiniLM's space; a chunk of a table or of a note's third paragraph does not
say which filing or which note it belongs to, and the question names both ("Amazon's effective tax rate in the
most recent 10-Q"). Prefixing the filing and the heading (contextual chunk headers) puts that back into the vector.
Headings are read off the chunks in reading order: "Note 10 — Debt" / "Item 2." lines, Chinese section numbers
(第三节, 一、, （二）), and short title-case lines followed by prose; a chunk carries the last heading before it.
Measured as ``--variants chunk_headers`` (bench.retrieval); not part of ingestion yet. ``chunk_headers_name`` and
``chunk_headers_heading`` measure each part alone; ``chunk_headers_unrepeated`` skips lines printed on several pages
of the document (a running header: a 10-K's "Table of Contents" link atop 41 of 3M's pages, "PepsiCo, Inc. and
Subsidiaries"; a table's column headers repeated on each page of the table), which the heading rule took for headings.
``chunk_headers_table`` (issue 26's table-aware chunks) prefixes only a chunk of a table's rows whose table starts
above it on its page: the lines that title the table and the line that names its columns ("Consolidated Statements
of Cash Flows. (In millions) Three Months Ended ... 2023 2022. <rows>"), which the chunker left in an earlier chunk;
every other chunk keeps its text and its stored vector.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import numpy as np

NOTE = re.compile(r"^\s*(?:NOTE|Note)\s+\d+[A-Z]?\s*[—–:.\-]*\s*(.+)$")
ITEM = re.compile(r"^\s*(?:ITEM|Item)\s+\d+[A-C]?\s*[.:—–\-]?\s*(.*)$")
ZH = re.compile(
    r"^\s*(?:第[一二三四五六七八九十]+[节章]|[一二三四五六七八九十]+、|（[一二三四五六七八九十]+）|\d+、)\s*(\S.{0,30})$"
)
STOP = {"and", "of", "the", "in", "on", "for", "to", "a", "an", "our", "its"}
HEADING_CHARS = 80


def headings(text: str) -> list[str]:
    """The headings in a chunk's text, in order."""
    lines = [line.strip() for line in text.split("\n")]
    out = []
    for i, line in enumerate(lines):
        if not line or len(line) > 90:
            continue
        if m := NOTE.match(line) or ITEM.match(line) or ZH.match(line):
            if m.group(1).strip():
                out.append(m.group(1).strip())
            elif i + 1 < len(lines):
                out.append(lines[i + 1])
            continue
        if re.search(r"\d", line) or line[-1] in ".,;:)" or not line[0].isupper():
            continue
        words = re.findall(r"[A-Za-z][A-Za-z'’\-]*", line)
        capitalised = [w for w in words if w.lower() not in STOP]
        if not 1 <= len(words) <= 8 or not capitalised or not all(w[0].isupper() for w in capitalised):
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if line.isupper() or (len(following) >= 50 and following[:1].isupper()):
            out.append(line)
    return out


PARTS = ("name", "heading")
TITLE_LINES, TITLE_CHARS = 2, 100  # lines above a table's column header (or its first row) that title it


def _is_row(line: str) -> bool:
    """A table row: a label with words and an amount among its figures (not a footnote mark or a year)."""
    from rag_app.answering.passages import Unit, row_label

    label = row_label(line)
    return bool(
        label and re.search(r"[A-Za-z\u4e00-\u9fff]{2}", label) and Unit(line, 0, len(line), "row", label).has_figure
    )


def _page_text(pieces: list[tuple[int, str]]) -> str:
    """A page from its chunks at their offsets; a gap between two chunks (the whitespace the chunker dropped) is a
    line break, so a row never runs into the next chunk's first line."""
    chars = ["\n"] * max((offset + len(text) for offset, text in pieces), default=0)
    for offset, text in pieces:
        chars[offset : offset + len(text)] = text
    return "".join(chars)


def table_contexts(chunks: Sequence) -> list[str]:
    """For each chunk, the title and column header of the table its rows belong to, where they lie above the chunk
    on its page (rag_app.answering.passages: a row is a label and its figures; a header, a line of two years or
    more); "" for a chunk of prose, or one that holds its table's header itself."""
    from rag_app.answering.passages import Unit, _lines, header_for, row_label

    by_page: dict[int, list[int]] = {}
    for i, chunk in enumerate(chunks):
        by_page.setdefault(chunk.page, []).append(i)
    out = [""] * len(chunks)
    for indices in by_page.values():
        indices.sort(key=lambda i: chunks[i].offset)
        page = _page_text([(chunks[i].offset, chunks[i].text) for i in indices])
        lines = _lines(page)
        for i in indices:
            start, end = chunks[i].offset, chunks[i].offset + len(chunks[i].text)
            rows = [(a, b) for a, b in lines if start <= a and b <= end and _is_row(page[a:b])]
            if len(rows) < 2:
                continue
            first = Unit(page[rows[0][0] : rows[0][1]], *rows[0], "row", "")
            header = header_for(page, first)
            if header is not None and header.start >= start:
                continue  # the chunk holds its own column header
            top = header.start if header is not None else first.start
            title = []
            for a, b in reversed([(a, b) for a, b in lines if b <= top]):
                text = page[a:b]
                if not text or len(text) > TITLE_CHARS or row_label(text) is not None:
                    if title or text:
                        break
                    continue
                title.insert(0, text)
                if len(title) == TITLE_LINES:
                    break
            if title and page.find(title[0], start) == page.find(title[0]) >= start:
                title = []  # the title is in the chunk already
            parts = [*title, *([header.text] if header is not None else [])]
            out[i] = ". ".join(parts)
    return out


def header_texts(document_name: str, chunks: Sequence, parts: Sequence[str] = PARTS) -> list[str]:
    """Each chunk's text as embedded: "<file name>. <the last heading before it>. <text>", or with only the
    ``parts`` named ("name", "heading"); with "unrepeated", no line printed on several pages is a heading."""
    order = sorted(range(len(chunks)), key=lambda i: (chunks[i].page, chunks[i].offset))
    title = document_name.rsplit(".", 1)[0].replace("_", " ")
    running = repeated_lines(chunks) if "unrepeated" in parts else frozenset()
    tables = table_contexts(chunks) if "table" in parts else [""] * len(chunks)
    current, texts = "", [""] * len(chunks)
    for i in order:
        text = chunks[i].text
        prefix = [title] if "name" in parts else []
        prefix += [current] if current and "heading" in parts else []
        prefix += [tables[i]] if tables[i] else []
        texts[i] = ". ".join([*prefix, text])
        if found := [h for h in headings(text) if h not in running]:
            current = found[-1][:HEADING_CHARS]
    return texts


def repeated_lines(chunks: Sequence, least: int = 3, share: float = 0.02) -> frozenset[str]:
    """Lines printed on at least ``least`` pages and ``share`` of the document's pages: running headers and
    footers, a table's column headers on each of its pages."""
    pages: dict[str, set[int]] = {}
    for chunk in chunks:
        for line in chunk.text.split("\n"):
            if line := line.strip():
                pages.setdefault(line, set()).add(chunk.page)
    count = len({chunk.page for chunk in chunks})
    return frozenset(line for line, on in pages.items() if len(on) >= max(least, share * count))


def header_copy(source, parts: Sequence[str] = PARTS):
    """``source``'s collection copied to ``<collection>-headers`` (``-headers-<parts>`` for other ``parts``: kept in
    bench/.data for later runs), every chunk whose text its header changes re-embedded with it; (an Ours over it, what building it took)."""
    from bench.retrieval import Ours
    from rag_app.service import RagService

    suffix = "" if tuple(parts) == PARTS else "-" + "-".join(parts)
    service = RagService(
        source.settings.model_copy(update={"collection": f"{source.settings.collection}-headers{suffix}"})
    )
    service.embeddings = source.embeddings  # one model in memory
    target, origin = service.store(with_model=True, create=True), source.store(with_model=True)
    have, started, embedded = {(d.name, d.sha256) for d in target.list_documents()}, time.perf_counter(), 0
    for document in origin.list_documents():
        if (document.name, document.sha256) in have:
            continue
        chunks, stored, metadata = origin.document_records(document)
        texts = header_texts(document.name, chunks, parts)
        changed = [i for i, (chunk, text) in enumerate(zip(chunks, texts, strict=True)) if text != chunk.text]
        vectors = np.array(stored, dtype=np.float32)  # a chunk embedded as stored keeps its vector
        if changed:
            vectors[changed] = source.embeddings.embed_documents([texts[i] for i in changed])
        target.write([document], chunks, vectors, metadata)
        embedded += len(changed)
    info = {"seconds": round(time.perf_counter() - started, 1), "chunks embedded": embedded}
    named = [
        {"name": "file name", "table": "table's title and column header"}.get(p, p)
        for p in parts
        if p in (*PARTS, "table")
    ]
    info["note"] = (
        ("every chunk" if "table" not in parts else "each chunk it changes")
        + " re-embedded with its "
        + " and ".join(named)
    )
    if "unrepeated" in parts:
        info["note"] += " (no line printed on several pages taken for a heading)"
    return Ours(service), info
