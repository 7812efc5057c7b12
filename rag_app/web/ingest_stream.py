"""An upload's ingest, run in a thread of its own, as a stream of what the page shows while it runs.

The page's handler yields each new progress display (a page read, a batch of passages embedded) and then
the report; a display that did not change is not sent again."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from rag_app.ingestion.progress import ProgressMeter, ProgressSnapshot
from rag_app.records import IngestReport
from rag_app.service import RagService

REFRESH_S = 0.5  # how often the page looks at the meter


@dataclass(frozen=True)
class IngestUpdate:
    """Either the progress so far or, at the end, the report (or the error that stopped the ingest)."""

    progress: ProgressSnapshot | None = None
    report: IngestReport | None = None
    error: BaseException | None = None


def ingest_updates(
    service: RagService, uploads: Sequence[tuple[str, bytes | BinaryIO]], collection: str,
    render: Callable[[ProgressSnapshot], str], refresh_s: float = REFRESH_S,
) -> Iterator[tuple[str, IngestUpdate]]:  # fmt: skip
    """(display, update) while the uploads are ingested: each time ``render`` of the progress changes, then
    ("", the final update)."""
    meter, outcome = ProgressMeter(), {}

    def run() -> None:
        try:
            outcome["report"] = service.ingest_uploads(uploads, collection, meter)
        except BaseException as exc:  # noqa: BLE001 - handed to the page's thread, shown there
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="rag-upload-ingest", daemon=True)
    thread.start()
    shown = ""
    while thread.is_alive():
        thread.join(refresh_s)
        snapshot = meter.snapshot()
        display = render(snapshot)
        if display != shown and thread.is_alive():
            shown = display
            yield display, IngestUpdate(progress=snapshot)
    yield "", IngestUpdate(report=outcome.get("report"), error=outcome.get("error"))
