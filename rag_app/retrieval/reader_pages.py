"""An English document's pages read by the Chinese reader, for a Chinese question.

The main model reads English only and the Chinese reader (RAG_EMBEDDING_MODEL_ZH) embeds only the documents whose
text is Chinese, so a Chinese question about an English filing ("沃尔玛2020财年国际业务净销售额为什么下降？") gets no
dense ranking of that filing's pages, and its words match none of theirs: what finds the filing is a name written
in Latin letters, a ticker or a year, and inside it the pages come in no useful order. The reader is multilingual:
it embeds each page of the best-ranked English document whole (its first 512 tokens), once, and ranks them by
their cosine similarity with the question's own vector (``Retriever`` adds that ranking inside the document,
``RankingOptions.within_reader_weight``).

A page vector costs the reader one pass over the page: about 10 s for a 112-page 10-K on 2 CPU cores, a fraction of
a second on a GPU. So the first Chinese question to reach a filing waits for it once; its vectors are kept in memory
(the last ``KEPT`` documents) and on disk beside the chunk table (``rag_app.storage.exact.reader_pages_folder``, a file a
content: a file content never changes, so its vectors never go stale; they go with its chunks), and every later question and process reads them from there.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag_app.storage.exact import keep_arrays

log = logging.getLogger(__name__)

KEPT = 16  # documents whose page vectors a process keeps in memory (the most recently ranked)

_kept: OrderedDict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = OrderedDict()
_lock = threading.Lock()


# progress(pages read, pages in all): called before the first page and after each batch, only where the reader reads
Progress = Callable[[int, int], None]


def ranked_pages(
    reader,
    vector: Sequence[float],
    sha256: str,
    folder: Path | None,
    texts: Callable[[], dict[int, str]],
    progress: Progress | None = None,
) -> list[int]:
    """The pages of one file content best first by the cosine similarity of the ``reader``'s page vectors with
    ``vector`` (the reader's vector of the question); ``texts()``: page -> whole text, read only when the vectors are
    neither kept nor on disk; ``folder``: where they are kept on disk (None: memory only); ``progress``: told how
    many pages the reader has read, where it reads them now (the seconds a question waits, once a document). Ties:
    earlier page first."""
    pages, matrix = page_vectors(reader, sha256, folder, texts, progress)
    if not len(pages):
        return []
    scores = matrix @ np.asarray(vector, dtype=np.float32)
    return [int(pages[i]) for i in np.lexsort((pages, -scores))]


def page_vectors(
    reader, sha256: str, folder: Path | None, texts: Callable[[], dict[int, str]], progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(page numbers, their normalised vectors by ``reader``) of one file content: kept, on disk, or embedded now."""
    key = (str(folder), reader.name, sha256)
    with _lock:
        if (found := _kept.get(key)) is not None:
            _kept.move_to_end(key)
            return found
    file = folder / f"{sha256}.npz" if folder is not None else None
    found = _read(file)
    if found is None:
        pages = texts()
        numbers = np.array(sorted(pages), dtype=np.int64)
        if not len(numbers):
            return numbers, np.zeros((0, reader.dimension), dtype=np.float32)
        log.info("reading %d pages of %s with %s for a Chinese question (once)", len(numbers), sha256[:12], reader.name)
        on_batch = _told(progress, len(numbers))
        matrix = np.asarray(reader.embed_passages([pages[int(p)] for p in numbers], on_batch), dtype=np.float32)
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        found = (numbers, matrix)
        if file is not None:
            keep_arrays(file, pages=numbers, vectors=matrix)
    with _lock:
        _kept[key] = found
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    return found


def _told(progress: Progress | None, total: int) -> Callable[[int], None] | None:
    """The reader's callback after each batch (the pages it completed), telling ``progress`` the pages read so far;
    told 0 first."""
    if progress is None:
        return None
    read = 0

    def on_batch(done: int) -> None:
        nonlocal read
        read += done
        progress(read, total)

    progress(0, total)
    return on_batch


def _read(file: Path | None) -> tuple[np.ndarray, np.ndarray] | None:
    if file is None or not file.exists():
        return None
    try:
        with np.load(file, allow_pickle=False) as saved:
            return saved["pages"], saved["vectors"]
    except (OSError, ValueError, KeyError) as exc:
        log.info("embedding %s's pages again: %s", file.name, exc)
        return None
