"""Ingest progress within a file: pages read, passages embedded, the share done and the time left, as the page
and the CLI show them while an upload runs."""

from conftest import DOCUGAMI, call_cli, cli_env

from rag_app.ingestion.progress import EmbeddingBatch, ProgressMeter
from rag_app.records import FileReport, FileStatus
from rag_app.web.messages import progress_lines


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_meter_moves_within_a_file_and_estimates_the_time_left_once_it_can():
    clock = Clock()
    meter = ProgressMeter(clock=clock)
    meter.start(3)
    meter.sized({"big.pdf": 3_000_000, "small.pdf": 200_000})  # and one file already stored, of unknown size
    shares = []
    for page in (50, 150, 300):
        clock.now += 1
        meter.page_read("big.pdf", page, 300)
        shares.append(meter.snapshot().fraction)
    assert shares == sorted(shares) and shares[0] > 0  # it moves before any file is done
    # the small file not opened yet counts its bytes at the big one's pages per byte; the third as the average
    assert meter.snapshot().pages_total == 300 + 20 + 300
    meter.ocr_page("big.pdf", 0, 2)
    clock.now += 4
    assert progress_lines(meter.snapshot())[0].endswith("Reading big.pdf by OCR: page 1 of 2 (4 s on it)")
    meter.chunking("big.pdf", 40, 100)
    assert progress_lines(meter.snapshot())[0].endswith("Splitting big.pdf into passages: 40%")
    batch = EmbeddingBatch((("big.pdf", 300, 2000),))
    meter.embedding(batch)
    assert meter.snapshot().seconds_left is None  # nothing embedded yet: no estimate
    for _ in range(10):
        clock.now += 1
        meter.embedded(100)
    snapshot = meter.snapshot()
    assert snapshot.stage == "embedding" and (snapshot.done, snapshot.of) == (1000, 2000)
    assert snapshot.seconds_left is not None and 20 <= snapshot.seconds_left <= 40  # 1000 left, 100 a second
    clock.now += 2
    assert meter.snapshot().seconds_left < snapshot.seconds_left  # counted down between reports
    en, zh = progress_lines(meter.snapshot())
    assert "Embedding big.pdf: 1,000 of 2,000 passages" in en and "0 of 3 files done" in en and "s left" in en
    assert "正在向量化 big.pdf：第 1,000/2,000 段" in zh and "约剩" in zh
    meter.storing(batch)
    meter.file_done(FileReport("big.pdf", "big.pdf", FileStatus.INGESTED, 300, 2000))
    meter.file_done(FileReport("small.pdf", "small.pdf", FileStatus.INGESTED, 20, 50))
    meter.file_done(FileReport("stored.pdf", "stored.pdf", FileStatus.UNCHANGED, 12, 30))
    assert meter.snapshot().stage == "done" and meter.snapshot().fraction == 1.0


def test_the_ingest_cli_draws_the_pages_read_of_the_file_being_parsed(tmp_path):
    env = cli_env(tmp_path / "data", RAG_COLLECTION="bars")
    result = call_cli("ingest", str(DOCUGAMI / "2023 Q2 AAPL.pdf"), env=env)
    assert result.returncode == 0, result.stderr
    assert "reading 2023 Q2 AAPL.pdf" in result.stderr and "page/s" in result.stderr
