"""Files that arrive over the web: names kept as given where the file system allows, type checked by
content, size limits.

Uploads are written into ``<data_dir>/uploads/<collection>/`` under the name they were uploaded with,
changed only where a file system requires it: ``../../etc/passwd.pdf`` lands as ``etc_passwd.pdf``
inside that folder (nothing outside the data directory is ever written), and a name over 200 bytes is
shortened. The report says when a name changed, and a document can be deleted by either name.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rag_app.ingestion.loaders import PDF_HEADER_WINDOW, TEXT_SUFFIXES
from rag_app.records import FileReport, FileStatus, IngestReport

# File systems cap a name at 255 bytes (not characters: a Chinese character is 3 bytes in UTF-8).
MAX_NAME_BYTES = 200
MAX_SUFFIX_BYTES = 16
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UploadRejected(Exception):
    """A file is refused before ingestion; ``status`` is the HTTP status that fits."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


def safe_name(name: str) -> str:
    """The name an upload called ``name`` is stored under: :func:`plain_name`, at most MAX_NAME_BYTES
    bytes of UTF-8 (see :func:`shorten_name`)."""
    return shorten_name(plain_name(name))


def plain_name(name: str) -> str:
    """``name`` as given, changed only where a file system requires it: no directories (the parts of
    ``a/b.pdf`` or ``a\\b.pdf`` joined by ``_``), no control characters, no leading dots (a hidden file,
    ``..``). Letters of any script, spaces, punctuation and repeated ``_`` stay."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/"))
    parts = [p for p in name.split("/") if p not in ("", ".", "..")]
    stem = CONTROL.sub("_", "_".join(parts)).lstrip(".")
    return stem or "upload"


def rename_reasons(name: str) -> list[str]:
    """Why the file system needs another name than ``name`` (empty: it keeps it)."""
    name = unicodedata.normalize("NFC", name)
    reasons = []
    if "/" in name or "\\" in name:
        reasons.append("a file name cannot hold / or \\")
    if CONTROL.search(name):
        reasons.append("control characters")
    if name.startswith(".") and "/" not in name and "\\" not in name:
        reasons.append("a leading dot hides a file")
    if len(plain_name(name).encode("utf-8")) > MAX_NAME_BYTES:
        reasons.append(f"names hold at most {MAX_NAME_BYTES} bytes")
    return reasons


def shorten_name(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """``name`` if it fits in ``limit`` UTF-8 bytes; else its start, cut at a character boundary, then
    ``~`` and 8 hex digits of its SHA-256 (two long names that share a start stay apart), then its extension."""
    if len(name.encode("utf-8")) <= limit:
        return name
    suffix = Path(name).suffix
    if len(suffix.encode("utf-8")) > MAX_SUFFIX_BYTES:
        suffix = ""
    tag = "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    room = limit - len(tag.encode()) - len(suffix.encode("utf-8"))
    start = name[: len(name) - len(suffix)].encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return start.rstrip(" .") + tag + suffix


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
    original: str = ""  # the name as uploaded, when it had to change

    @property
    def note(self) -> str | None:
        """What the file's report says about its name (None when it was kept)."""
        if not self.original:
            return None
        reasons = "; ".join(rename_reasons(self.original)) or "the file system needs it"
        return f"uploaded as {self.original!r}, stored as {self.name!r} ({reasons}): either name deletes it"


def store_upload(directory: Path, name: str, data: bytes, max_bytes: int) -> StoredUpload:
    """Check and write one uploaded file; raises UploadRejected (413 too large, 415 wrong type,
    500 when the file system refuses it)."""
    plain = plain_name(name)
    clean = shorten_name(plain)
    if len(data) > max_bytes:
        raise UploadRejected(
            f"{clean}: {len(data) / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB upload limit", 413
        )
    if not data:
        raise UploadRejected(f"{clean}: the file is empty", 400)
    check_content(clean, data[:8192])
    target = directory / clean
    try:
        directory.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as exc:
        raise UploadRejected(f"{clean}: could not be stored ({exc.strerror})", 500) from None
    return StoredUpload(clean, target, name if clean != unicodedata.normalize("NFC", name) else "")


def note_shortened_names(report: IngestReport, stored: list[StoredUpload]) -> None:
    """Say in each file's report when its name had to change, and to what."""
    notes = {s.name: s.note for s in stored if s.note}
    for file in report.files:
        if file.name in notes:
            file.note = "; ".join(n for n in (file.note, notes[file.name]) if n)


def rejected_report(name: str, error: UploadRejected) -> FileReport:
    return FileReport(safe_name(name), "", FileStatus.FAILED, reason=str(error), refused_status=error.status)
