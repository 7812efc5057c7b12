"""A lever measured on a copy of a collection: each chunk embedded with its filing's name and the heading it sits
under ("2023 Q3 AMZN. Income Taxes. We are subject to ..."), the chunk texts, BM25 and everything else as stored.

A 10-Q's pages lie close together in MiniLM's space; a chunk of a table or of a note's third paragraph does not
say which filing or which note it belongs to, and the question names both ("Amazon's effective tax rate in the
most recent 10-Q"). Prefixing the filing and the heading (contextual chunk headers) puts that back into the vector.
Headings are read off the chunks in reading order: "Note 10 — Debt" / "Item 2." lines, Chinese section numbers
(第三节, 一、, （二）), and short title-case lines followed by prose; a chunk carries the last heading before it.
Measured as ``--variants chunk_headers`` (bench.retrieval); not part of ingestion yet.
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


def header_texts(document_name: str, chunks: Sequence) -> list[str]:
    """Each chunk's text as embedded: "<file name>. <the last heading before it>. <text>"."""
    order = sorted(range(len(chunks)), key=lambda i: (chunks[i].page, chunks[i].offset))
    title = document_name.rsplit(".", 1)[0].replace("_", " ")
    current, texts = "", [""] * len(chunks)
    for i in order:
        text = chunks[i].text
        texts[i] = f"{title}. {current}. {text}" if current else f"{title}. {text}"
        if found := headings(text):
            current = found[-1][:HEADING_CHARS]
    return texts


def header_copy(source):
    """``source``'s collection copied to ``<collection>-headers`` (kept in bench/.data for later runs), every chunk
    re-embedded with its header; (an Ours over it, what building it took)."""
    from bench.retrieval import Ours
    from rag_app.service import RagService

    service = RagService(source.settings.model_copy(update={"collection": f"{source.settings.collection}-headers"}))
    service.embeddings = source.embeddings  # one model in memory
    target, origin = service.store(with_model=True, create=True), source.store(with_model=True)
    have, started, embedded = {(d.name, d.sha256) for d in target.list_documents()}, time.perf_counter(), 0
    for document in origin.list_documents():
        if (document.name, document.sha256) in have:
            continue
        chunks, _, metadata = origin.document_records(document)
        vectors = np.asarray(source.embeddings.embed_documents(header_texts(document.name, chunks)), np.float32)
        target.write([document], chunks, vectors, metadata)
        embedded += len(chunks)
    info = {"seconds": round(time.perf_counter() - started, 1), "chunks embedded": embedded}
    info["note"] = "every chunk re-embedded with its file name and heading"
    return Ours(service), info
