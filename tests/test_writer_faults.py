"""Faults the storage must survive: the store's writer process, or one shard's writer process, killed at each
step of a write, on 1 and 2 shards, and the writer killed while it waits for work. The run stops within seconds
and says which process died, of what signal, and which files it had in hand; nothing it wrote is left where a
search could find it, in any shard or in the chunk table; no process of it stays; a rerun stores every file.

The real CLI, real PDFs, real Chroma, a real one-layer embedder. The processes killed are real children: the
ingest's writer processes, which ``tests/faults/sitecustomize.py`` kills at a step (they cannot be patched from
here). The ingest itself runs in this process where it only has to notice (``call_cli``: the same main, exit code
and output, without importing torch again) and in a process of its own where it is signalled while it waits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from conftest import DOCUGAMI, ROOT, call_cli, cli_env
from pdfgen import write_pdf
from test_interruption import make_folder, wait_for
from test_shards import orphans_of

from rag_app.service import RagService
from rag_app.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("corpus")]
FAULTS = ROOT / "tests" / "faults"
WRITER_STEPS = ["after-marker", "mid-add", "before-commit", "after-commit"]
SHARD_STEPS = ["add", "flush"]
CHILDREN = ("rag_app.storage.writer_process", "rag_app.storage.shard_process")
NAMES = ["alpha.pdf", "beta.pdf", "gamma.pdf"]


def papers(root) -> list[str]:
    """Three small filings, each a few pages of its own words."""
    for n, name in enumerate(NAMES):
        pages = [
            "\n".join(
                f"{name} page {p} line {i}: revenue of segment {n}{p}{i} was {n * 7 + p * 3 + i} million."
                for i in range(30)
            )  # fmt: skip
            for p in range(1, 4)
        ]
        write_pdf(root / "papers" / name, pages)
    return NAMES


def env_for(tmp_path, embedder, shards: int, fault: str | None = None) -> dict[str, str]:
    env = cli_env(tmp_path / "data", RAG_COLLECTION="faults", RAG_EMBEDDING_MODEL=str(embedder),
                  RAG_INGEST_MODE="pipelined", RAG_CHROMA_SHARDS=str(shards))  # fmt: skip
    env["FAULT_ONCE"] = str(tmp_path / "fault-once")  # also tells this test's processes from others'
    if fault:
        env.update(FAULT=fault, PYTHONPATH=os.pathsep.join([str(FAULTS), env.get("PYTHONPATH", "")]))
    return env


def children_left(env) -> list[str]:
    """Writer processes of this test still running."""
    left = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(c in " ".join(process.info["cmdline"] or []) for c in CHILDREN):
                if process.environ().get("FAULT_ONCE") == env["FAULT_ONCE"]:
                    left.append(" ".join(process.info["cmdline"]))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return left


def no_children_after(env, seconds: float) -> list[str]:
    """The writer processes of this test still running once they have had ``seconds`` to stop."""
    deadline = time.monotonic() + seconds
    while (left := children_left(env)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left


def assert_nothing_half_written(env, names: list[str] | None = None) -> None:
    """Every registered document has all its vectors and texts; nothing else is held, in any shard or in the
    chunk table; no marker is left."""
    settings = Settings(_env_file=None, data_dir=env["RAG_DATA_DIR"], collection="faults",
                        embedding_model=env["RAG_EMBEDDING_MODEL"])  # fmt: skip
    store = RagService(settings).store(with_model=True)
    docs = store.list_documents()
    if names is not None:
        assert sorted(d.name for d in docs) == sorted(names)
    assert store.pending_writes() == []
    for doc in docs:
        assert store.count_chunks(doc.sha256) == doc.chunks > 0 and store.index().table.has(doc.sha256)
    shards = store.index().shards
    assert orphans_of(store) == {"shards": [[]] * shards, "table": []}


def rerun_stores_every_file(env, folder, names) -> dict[str, str]:
    rerun = call_cli("ingest", str(folder), "--json", env={k: v for k, v in env.items() if k != "FAULT"})
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    statuses = {f["name"]: f["status"] for f in json.loads(rerun.stdout)["files"]}
    assert set(statuses) == set(names) and set(statuses.values()) <= {"ingested", "unchanged"}
    assert_nothing_half_written(env, names)
    return statuses


# Each step of a write once, on one shard and on two in turn, and a shard's writer at each of its steps: the
# suite's share of the matrix that bench/faults.py runs whole (every step on 1 and 2 shards, results in
# bench/results/faults.json); each case is two ingests (6 to 14 s on 2 cores at load 3).
CASES = [("writer", step, 1 + i % 2) for i, step in enumerate(WRITER_STEPS)]
CASES += [("shard", step, 2) for step in SHARD_STEPS]


@pytest.mark.parametrize(("role", "step", "shards"), CASES)
def test_a_writer_killed_at_each_step_leaves_nothing_half_written_and_a_rerun_completes(
    tmp_path, tiny_embedder, role, step, shards
):
    names = papers(tmp_path)
    env = env_for(tmp_path, tiny_embedder, shards, f"{role}:{step}")
    died = call_cli("ingest", str(tmp_path / "papers"), "--json", env=env)  # its children inherit FAULT
    assert (tmp_path / "fault-once").exists(), f"the fault was never reached: {died.stderr[-2000:]}"
    what = "the store's writer process" if role == "writer" else "the writer process of the Chroma shard"
    assert died.returncode == 1, died.stderr[-3000:]
    assert f"{what}" in died.stderr and "stopped (killed by SIGKILL) while storing" in died.stderr, died.stderr[-3000:]
    assert any(name in died.stderr for name in names), "the files in hand are named"
    assert "Traceback" not in died.stderr
    assert no_children_after(env, 5.0) == []
    assert_nothing_half_written(env)  # the failed run cleaned up what the dead writer left
    statuses = rerun_stores_every_file(env, tmp_path / "papers", names)
    assert "ingested" in statuses.values() or step == "after-commit"


@pytest.mark.parametrize("shards", [2])
def test_a_writer_process_killed_while_it_waits_is_noticed_within_seconds(tmp_path, tiny_embedder, shards):
    """kill -9 of the store's writer process between two writes: the ingest stops at the next parsed file
    (it went on parsing and embedding for 22-27 s, then said "exit code None"), naming the signal and the files
    it had for the writer, and a rerun stores them."""
    sources = {name: DOCUGAMI for name in ["2022 Q3 AAPL.pdf", "2023 Q1 AAPL.pdf", "2023 Q2 AAPL.pdf",
                                           "2023 Q3 AAPL.pdf", "2023 Q1 INTC.pdf", "2022 Q3 INTC.pdf"]}  # fmt: skip
    folder = make_folder(tmp_path, sources)
    env = env_for(tmp_path, tiny_embedder, shards)
    ingest = subprocess.Popen([sys.executable, "-m", "ingest", str(folder)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    wait_for(ingest, f"1/{len(sources)}", timeout=300)  # one file stored: the writer waits for the next
    writer = next(c for c in psutil.Process(ingest.pid).children() if CHILDREN[0] in " ".join(c.cmdline()))
    writer.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code = ingest.wait(timeout=120)
    noticed = time.monotonic() - killed
    stderr = ingest.stderr.read().decode(errors="replace")
    assert code == 1, stderr[-3000:]
    assert "the store's writer process stopped (killed by SIGKILL) while storing" in stderr, stderr[-3000:]
    assert noticed < 20, f"the run went on for {noticed:.0f} s after its writer died"
    assert no_children_after(env, 5.0) == []
    assert_nothing_half_written(env)
    rerun_stores_every_file(env, folder, list(sources))
