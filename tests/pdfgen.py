"""Write small, valid PDFs for tests: text pages (Helvetica), pages without text, and text on an image."""

from __future__ import annotations

from pathlib import Path


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _text_stream(text: str) -> bytes:
    lines = [f"({_escape(line)}) Tj T*" for line in text.split("\n")]
    return ("BT /F1 11 Tf 14 TL 56 780 Td\n" + "\n".join(lines) + "\nET").encode("latin-1")


def _graphics_stream() -> bytes:
    # A filled rectangle and no text operators: what a scanned page looks like to a text extractor.
    return b"0.5 g 56 400 480 360 re f"


def _image_stream() -> bytes:
    # A full-page inline image, 2x2 grey pixels: to PDF readers, the picture a scanner puts on a page.
    return b"q 539 0 0 786 28 28 cm BI /W 2 /H 2 /CS /G /BPC 8 ID \xc0\xe8\xe8\xc0 EI Q\n"


def make_pdf(pages: list[str | None], on_image: frozenset[int] = frozenset()) -> bytes:
    """A PDF with one page per entry: text lines, or None for a page without any text; the 1-based
    pages in ``on_image`` draw their text over a full-page image, as a stamped scan does."""
    objects: list[bytes] = [b"", b""]  # 1: catalog, 2: page tree (filled in below)
    font_id = 3
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    page_ids = []
    for number, text in enumerate(pages, 1):
        stream = _graphics_stream() if text is None else _text_stream(text)
        if number in on_image:
            stream = _image_stream() + stream
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_id = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (content_id, font_id)
        )
        page_ids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    kids = b" ".join(b"%d 0 R" % i for i in page_ids)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))
    return _assemble(objects)


def _assemble(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def write_pdf(path: Path, pages: list[str | None], on_image: frozenset[int] = frozenset()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_pdf(pages, on_image))
    return path
