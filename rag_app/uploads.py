"""Files that arrive over the web: safe names, type checked by content, size limits.

Uploads are written into ``<data_dir>/uploads/<collection>/`` under a sanitised
name, so ``../../etc/passwd.pdf`` lands as ``etc_passwd.pdf`` inside that folder
and nothing outside the data directory is ever written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rag_app.loaders import PDF_HEADER_WINDOW, TEXT_SUFFIXES
from rag_app.records import FileReport, FileStatus

MAX_NAME_CHARS = 120


class UploadRejected(Exception):
    """A file is refused before ingestion; ``status`` is the HTTP status that fits."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


def safe_name(name: str) -> str:
    """A harmless file name: no directories, no control characters, no leading dots.

    Letters of any script (Chinese names stay readable), digits, spaces and ``._-()`` survive.
    """
    name = unicodedata.normalize("NFC", name.replace("\\", "/"))
    parts = [p for p in name.split("/") if p not in ("", ".", "..")]
    stem = "_".join(parts) if parts else "upload"
    stem = re.sub(r"[^\w .()\-]", "_", stem, flags=re.UNICODE).strip(" .")
    stem = re.sub(r"_+", "_", stem).lstrip("_") or "upload"
    if len(stem) > MAX_NAME_CHARS:
        suffix = Path(stem).suffix[:10]
        stem = stem[: MAX_NAME_CHARS - len(suffix)] + suffix
    return stem


def check_content(name: str, head: bytes) -> None:
    """Refuse a file whose bytes do not match its type (HTTP 415)."""
    suffix = Path(name).suffix.lower()
    if suffix == ".pdf":
        if b"%PDF-" not in head[:PDF_HEADER_WINDOW]:
            raise UploadRejected(f"{name}: not a PDF (no %PDF- header); upload PDF, .txt or .md files", 415)
    elif suffix in TEXT_SUFFIXES:
        if b"\x00" in head[:4096] and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise UploadRejected(f"{name}: not a text file (it contains binary data)", 415)
    else:
        raise UploadRejected(
            f"{name}: unsupported file type {suffix or '(none)'!r}; upload PDF, .txt or .md files", 415
        )


@dataclass
class StoredUpload:
    name: str
    path: Path


def store_upload(directory: Path, name: str, data: bytes, max_bytes: int) -> StoredUpload:
    """Check and write one uploaded file; raises UploadRejected (413 too large, 415 wrong type)."""
    clean = safe_name(name)
    if len(data) > max_bytes:
        raise UploadRejected(
            f"{clean}: {len(data) / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB upload limit", 413
        )
    if not data:
        raise UploadRejected(f"{clean}: the file is empty", 400)
    check_content(clean, data[:8192])
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / clean
    target.write_bytes(data)
    return StoredUpload(clean, target)


def rejected_report(name: str, error: UploadRejected) -> FileReport:
    return FileReport(safe_name(name), "", FileStatus.FAILED, reason=str(error), refused_status=error.status)
