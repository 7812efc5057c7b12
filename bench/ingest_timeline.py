"""bench.ingest with a timeline of the ingest's embedding calls, writer batches, waits and writer process,
printed at exit and written to $OUT/timeline.txt (or /tmp): where the ingesting thread and the writer wait
for each other.

    python -m bench.ingest_timeline --no-baseline --device cuda --random-weights --shape-from /tmp/minilm-shape \\
        --corpus /tmp/corpus17 --batch-size 512 --name ingest-h200-timeline
"""

from __future__ import annotations

import atexit
import functools
import os
import runpy
import sys
import threading
import time
from pathlib import Path

from rag_app.ingestion import pipeline as ingestion
from rag_app.storage import writer_process as store_writer

STARTED = time.perf_counter()
EVENTS: list[str] = []


def mark(what: str) -> None:
    EVENTS.append(f"{time.perf_counter() - STARTED:7.2f} {threading.current_thread().name[:12]:12s} {what}")


def logged(owner, name: str, before, after: str) -> None:
    """Wrap ``owner.name`` so it marks ``before(*args)`` when it starts and ``after`` when it returns."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        mark(before(*args))
        try:
            return original(*args, **kwargs)
        finally:
            mark(after)

    setattr(owner, name, wrapper)


logged(ingestion.Ingestor, "run", lambda *a: "run start", "run end")
logged(ingestion.Ingestor, "_embed", lambda self, pending: f"embed start {sum(len(r.chunks) for r in pending)} chunks", "embed end")  # fmt: skip
logged(ingestion.WriterThread, "_store", lambda self, items: f"store start {len(items)} files {sum(len(r.chunks) for r, _ in items)} chunks", "store end")  # fmt: skip
logged(ingestion.WriterThread, "wait", lambda self: "wait start", "wait end")
logged(ingestion.Ingestor, "_ready", lambda self, group, doc, report: f"parsed {doc.total_pages} pages", "ready")
logged(store_writer.StoreWriterProcess, "__init__", lambda *a: "writer process start", "writer process ready")
logged(store_writer.StoreWriterProcess, "close", lambda self: "writer process close", "writer process closed")


@atexit.register
def dump() -> None:
    text = "\n".join(EVENTS)
    print(text)
    (Path(os.environ.get("OUT", "/tmp")) / "timeline.txt").write_text(text)


if __name__ == "__main__":
    sys.argv = ["bench.ingest", *sys.argv[1:]]
    runpy.run_module("bench.ingest", run_name="__main__")
