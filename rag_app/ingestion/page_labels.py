"""Printed page labels ("vii", "7") of a PDF, where it defines them: shown beside the physical page number."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def page_label(path: Path, page: int) -> str | None:
    """The label printed on 1-based ``page`` of the PDF at ``path``, when it differs from the page number."""
    labels = _labels(str(path), path.stat().st_mtime_ns if path.exists() else 0)
    label = labels[page - 1] if 0 < page <= len(labels) else ""
    return label if label and label != str(page) else None


@functools.lru_cache(maxsize=64)
def _labels(path: str, mtime_ns: int) -> tuple[str, ...]:
    """Every page's label (empty where none); cached per file version."""
    if not path.lower().endswith(".pdf"):
        return ()
    try:
        import pypdfium2

        pdf = pypdfium2.PdfDocument(path)
        try:
            return tuple(pdf.get_page_label(i) or "" for i in range(len(pdf)))
        finally:
            pdf.close()
    except Exception as exc:  # noqa: BLE001 - encrypted, damaged: no labels, the page number stands alone
        log.debug("no page labels for %s: %s", path, exc)
        return ()
