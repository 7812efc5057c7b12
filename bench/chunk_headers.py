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


def header_texts(document_name: str, chunks: Sequence, parts: Sequence[str] = PARTS) -> list[str]:
    """Each chunk's text as embedded: "<file name>. <the last heading before it>. <text>", or with only the
    ``parts`` named ("name", "heading"); with "unrepeated", no line printed on several pages is a heading."""
    order = sorted(range(len(chunks)), key=lambda i: (chunks[i].page, chunks[i].offset))
    title = document_name.rsplit(".", 1)[0].replace("_", " ")
    running = repeated_lines(chunks) if "unrepeated" in parts else frozenset()
    current, texts = "", [""] * len(chunks)
    for i in order:
        text = chunks[i].text
        prefix = [title] if "name" in parts else []
        prefix += [current] if current and "heading" in parts else []
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
    bench/.data for later runs), every chunk re-embedded with its header; (an Ours over it, what building it took)."""
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
        chunks, _, metadata = origin.document_records(document)
        vectors = np.asarray(source.embeddings.embed_documents(header_texts(document.name, chunks, parts)), np.float32)
        target.write([document], chunks, vectors, metadata)
        embedded += len(chunks)
    info = {"seconds": round(time.perf_counter() - started, 1), "chunks embedded": embedded}
    named = [{"name": "file name"}.get(p, p) for p in parts if p in PARTS]
    info["note"] = "every chunk re-embedded with its " + " and ".join(named)
    if "unrepeated" in parts:
        info["note"] += " (no line printed on several pages taken for a heading)"
    return Ours(service), info
