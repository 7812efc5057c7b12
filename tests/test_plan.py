"""An ingest's layout is decided once, by IngestPlan.build, from the settings, the machine and the files."""

from __future__ import annotations

import pytest

from rag_app.ingestion.plan import IngestPlan, vector_shards
from rag_app.settings import Settings


def plan(files: int, device: str = "cpu", cpus: int = 2, **settings) -> IngestPlan:
    return IngestPlan.build(Settings(_env_file=None, **settings), device, files, cpus)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_auto_runs_simply_on_every_device_and_file_count(device):
    # measured: the writer process did not pay on a 2-core CPU nor on the 16-core H200 machine
    for files in (1, 8, 500):
        auto = plan(files, device=device, cpus=16)
        assert (auto.mode, auto.writer_process, auto.early_start, auto.warm_up) == ("simple", False, False, False)
    assert plan(500, device="cuda", cpus=16, ingest_mode="pipelined").warm_up


def test_pipelined_means_a_writer_process_started_early():
    piped = plan(3, ingest_mode="pipelined")
    assert (piped.writer_process, piped.early_start) == (True, True)


@pytest.mark.parametrize("mode", ["simple", "pipelined"])
def test_the_mode_setting_wins_over_the_file_count(mode):
    assert plan(1, ingest_mode=mode).mode == plan(500, ingest_mode=mode).mode == mode


def test_parser_processes_take_the_cores_but_one_and_share_the_rest_for_ocr():
    assert (plan(10, cpus=16).parse_workers, plan(10, cpus=16).ocr_threads) == (15, 1)
    assert (plan(10, cpus=2).parse_workers, plan(10, cpus=2).ocr_threads) == (1, 1)
    two = plan(10, cpus=16, parse_workers=2)
    assert (two.parse_workers, two.ocr_threads) == (2, 7)


def test_shards_one_per_4_cores_on_a_gpu_at_most_4_and_one_elsewhere():
    settings = Settings(_env_file=None)
    assert (vector_shards(settings, "cuda", 16), vector_shards(settings, "cpu", 16)) == (4, 1)
    assert (vector_shards(settings, "cuda", 8), vector_shards(settings, "cuda", 64)) == (2, 4)
    assert vector_shards(Settings(_env_file=None, chroma_shards=3), "cpu", 2) == 3  # the setting wins
    assert vector_shards(Settings(_env_file=None, chroma_host="127.0.0.1", chroma_shards=3), "cuda", 16) == 1


def test_the_embedder_warms_up_only_for_a_pipelined_run_on_a_gpu():
    piped = {"ingest_mode": "pipelined"}
    assert plan(20, "cuda", 16, **piped).warm_up and not plan(20, "cpu", 16, **piped).warm_up
    assert not plan(20, "cuda", 16).warm_up  # auto runs simple


def test_the_plan_an_ingest_ran_with_is_in_its_report(service, tmp_path):
    from pdfgen import write_pdf

    write_pdf(tmp_path / "a.pdf", ["Alpha revenue was 10 million dollars."])
    report = service.ingest([tmp_path / "a.pdf"])
    assert report.plan == service.plan(1).to_dict() and report.to_dict()["plan"]["mode"] == "simple"
