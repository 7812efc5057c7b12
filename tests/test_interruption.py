"""A run killed or interrupted mid-ingest leaves no duplicate or half-written file behind."""

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import DOCUGAMI, FINANCEBENCH, ROOT, call_cli, cli_env

from rag_app.service import RagService
from rag_app.settings import Settings

pytestmark = [pytest.mark.usefixtures("corpus"), pytest.mark.slow]
# A 28-page filing first, then three of 158-160 pages: the run is still busy well after the first one is
# stored, also when the test's reader sees the progress late on a loaded machine and when chunks of several
# files go into one embedding call (10-Qs of 50 pages were sometimes all stored before the signal came).
SOURCES = {
    "2023 Q2 AAPL.pdf": DOCUGAMI,
    "3M_2018_10K.pdf": FINANCEBENCH,
    "BLOCK_2020_10K.pdf": FINANCEBENCH,
    "CORNING_2022_10K.pdf": FINANCEBENCH,
}
FILES = list(SOURCES)
TWO_10QS = {"2023 Q2 AAPL.pdf": DOCUGAMI, "2023 Q3 AAPL.pdf": DOCUGAMI}


def make_folder(root, sources):
    docs = root / "docs"
    docs.mkdir()
    for name, source in sources.items():
        (docs / name).symlink_to(source / name)
    return docs


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path, SOURCES)


@pytest.fixture
def env(tmp_path, tiny_embedder):
    """What is tested is the store's consistency, not the vectors: a one-layer random embedder (a local
    sentence-transformers folder, loaded by path as a user's own model would be) leaves parsing as the
    work the signal interrupts, and keeps the suite quick."""
    return cli_env(tmp_path / "data", RAG_COLLECTION="kill", RAG_EMBEDDING_MODEL=str(tiny_embedder))


def assert_consistent(env, expected_names):
    """Every registered document has exactly its chunks; nothing else is stored."""
    settings = Settings(
        _env_file=None, data_dir=env["RAG_DATA_DIR"], collection="kill", embedding_model=env["RAG_EMBEDDING_MODEL"]
    )
    store = RagService(settings).store(with_model=True)
    docs = store.list_documents()
    assert sorted(d.name for d in docs) == sorted(expected_names)
    assert store.pending_writes() == []
    for doc in docs:
        assert store.count_chunks(doc.sha256) == doc.chunks > 0
    assert store.count_chunks() == sum(d.chunks for d in docs)


def start_ingest(folder, env):
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", str(folder)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_for(process, needle: str, timeout: float = 120) -> None:
    """Read stderr (progress bars) until ``needle`` shows up."""
    seen = bytearray()
    done = threading.Event()

    def reader():
        while not done.is_set() and (data := process.stderr.read1(4096)):
            seen.extend(data)
            if needle.encode() in seen:
                done.set()

    threading.Thread(target=reader, daemon=True).start()
    assert done.wait(timeout), f"never saw {needle!r}: {seen[-500:]!r}"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_run_then_rerun_stores_every_file_once(folder, env, sig):
    process = start_ingest(folder, env)
    wait_for(process, "1/4")  # one file committed, the next one on its way
    time.sleep(0.5)
    process.send_signal(sig)
    code = process.wait(timeout=60)
    if sig is signal.SIGINT:
        stderr = process.stderr.read()
        assert code == 130, stderr[-2000:]
        assert b"interrupted" in stderr
    rerun = call_cli("ingest", str(folder), "--json", env=env)
    assert rerun.returncode == 0, rerun.stderr
    statuses = {f["name"]: f["status"] for f in json.loads(rerun.stdout)["files"]}
    assert "unchanged" in statuses.values() and set(statuses) == set(FILES)
    assert "ingested" in statuses.values(), "the run was not interrupted: it had stored every file"
    assert_consistent(env, FILES)
    again = json.loads(call_cli("ingest", str(folder), "--json", env=env).stdout)
    assert again["totals"]["unchanged"] == 4


def test_process_killed_in_the_middle_of_writing_chunks(tmp_path, env):
    """Fault injection: the process dies after the first of several Chroma write batches."""
    folder = make_folder(tmp_path, TWO_10QS)
    script = textwrap.dedent(
        """
        import os, signal, sys
        import rag_app.storage.chunk_index as chunk_index
        import rag_app.storage.vectors as vectors
        vectors.MAX_WRITE_BATCH = 10
        original = chunk_index.ChunkIndex.add
        def add_half_then_die(self, chunks, vectors, metadata, terms=None):
            original(self, chunks[:10], vectors[:10], metadata)  # their terms counted from the texts
            os.kill(os.getpid(), signal.SIGKILL)
        chunk_index.ChunkIndex.add = add_half_then_die
        from rag_app.cli.ingest_command import main
        sys.exit(main(sys.argv[1:]))
        """
    )
    died = subprocess.run(
        [sys.executable, "-c", script, str(folder / "2023 Q2 AAPL.pdf")], cwd=ROOT, env=env, capture_output=True
    )
    assert died.returncode == -signal.SIGKILL
    rerun = call_cli("ingest", str(folder), "--json", env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert {f["status"] for f in json.loads(rerun.stdout)["files"]} == {"ingested"}
    assert_consistent(env, list(TWO_10QS))


def test_ctrl_c_swallowed_inside_a_library_still_stops_the_run():
    """Python drops a KeyboardInterrupt raised inside a finalizer or a library callback; the ingest CLI
    remembers the signal and stops at the next embedding batch or file instead of running on."""
    from rag_app.cli.ingest_command import StopWhenInterrupted

    guard = StopWhenInterrupted(None)
    guard.embedded(64)  # no Ctrl-C yet: the run goes on
    with pytest.raises(KeyboardInterrupt):
        guard.on_signal(signal.SIGINT, None)  # what Python calls on Ctrl-C
    # ... say that KeyboardInterrupt was swallowed where it landed: the next batch stops the run
    with pytest.raises(KeyboardInterrupt):
        guard.embedded(64)
