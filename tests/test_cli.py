"""The CLIs as a user runs them: exit codes, tables, JSON, list/delete/reset, search."""

import json

import pytest
from conftest import DOCUGAMI, ODD, call_cli, cli_env, run_cli
from pdfgen import write_pdf

from rag_app.settings import Settings

pytestmark = pytest.mark.usefixtures("corpus")


@pytest.fixture
def env(tmp_path):
    return cli_env(tmp_path / "data", RAG_COLLECTION="cli")


def make_docs(folder):
    folder.mkdir()
    (folder / "2023 Q2 AAPL.pdf").symlink_to(DOCUGAMI / "2023 Q2 AAPL.pdf")
    write_pdf(folder / "report 2023.pdf", ["Revenue for 2022 was 42 million dollars.", None])
    return folder


@pytest.fixture
def docs(tmp_path):
    return make_docs(tmp_path / "docs")


@pytest.fixture(scope="module")
def searchable(tmp_path_factory):
    """The two documents ingested once through the CLI, for the tests that only search them."""
    root = tmp_path_factory.mktemp("cli-search")
    env = cli_env(root / "data", RAG_COLLECTION="cli")
    assert call_cli("ingest", str(make_docs(root / "docs")), "--json", env=env).returncode == 0
    return env


@pytest.mark.slow  # a CLI process loading the embedding model
def test_ingest_prints_a_table_then_reruns_as_unchanged_json(env, docs):
    first = run_cli("ingest", str(docs), env=env)  # a process of its own, as a user runs it
    assert first.returncode == 0, first.stderr
    assert "2023 Q2 AAPL.pdf" in first.stdout and "ingested" in first.stdout
    assert "1 of 2 pages have no text layer: scanned? OCR is off" in first.stdout
    assert "2 files: 2 ingested" in first.stdout
    assert "Traceback" not in first.stderr
    second = call_cli("ingest", str(docs), "--json", env=env)
    report = json.loads(second.stdout)
    assert second.returncode == 0 and second.stderr.count("\r") == 0  # no progress bar with --json
    assert report["totals"] == {"ingested": 0, "unchanged": 2, "replaced": 0, "failed": 0}
    assert report["timings"]["embed"] == 0
    aapl = next(f for f in report["files"] if f["name"] == "2023 Q2 AAPL.pdf")
    assert aapl["pages"] == 28 and aapl["chunks"] > 28 and len(aapl["sha256"]) == 64


@pytest.mark.slow  # ingests a 10-Q
def test_exit_code_1_when_some_files_fail_and_others_are_stored(env, docs):
    # damaged beyond what PDFium and pypdf can recover (xref-range.pdf, used before, PDFium now reads)
    (docs / "broken.pdf").write_bytes((ODD / "pdfjs" / "REDHAT-1531897-0.pdf").read_bytes())
    result = call_cli("ingest", str(docs), "--json", env=env)
    assert result.returncode == 1
    files = {f["name"]: f for f in json.loads(result.stdout)["files"]}
    assert files["broken.pdf"]["status"] == "failed"
    assert files["broken.pdf"]["reason"] == "damaged: no usable cross-reference table"
    assert files["report 2023.pdf"]["status"] == "ingested"
    listed = json.loads(call_cli("ingest", "--list", "--json", env=env).stdout)
    assert sorted(d["name"] for d in listed) == ["2023 Q2 AAPL.pdf", "report 2023.pdf"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give files or folders to ingest"),
        (
            ["--chunk-size", "100", "--chunk-overlap", "100", "x.pdf"],
            "chunk_overlap (100) must be smaller than chunk_size (100)",
        ),
        (["--collection", "no spaces allowed", "x.pdf"], "invalid collection name"),
        (["--list", "x.pdf"], "paths cannot be combined"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_usage_errors_exit_2_with_a_reason(env, args, message):
    result = call_cli("ingest", *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_help_explains_every_flag_and_its_environment_variable(env):
    text = call_cli("ingest", "--help", env=env).stdout
    for flag in ["--list", "--delete", "--reset", "--yes", "--json", "--password", "--chunk-size", "--help-all"]:
        assert flag in text
    for name in ["collection", "data_dir", "embedding_model", "chroma_host", "pdf_passwords"]:
        assert f"RAG_{name.upper()}" in text
        assert Settings.model_fields[name].description.split()[0] in text
    assert "exit codes" in text
    tuning = call_cli("ingest", "--help-all", env=env).stdout  # the tuning settings too
    assert "--parse-timeout-s" in tuning and "RAG_CHUNK_OVERLAP" in tuning and "--parse-timeout-s" not in text


@pytest.mark.slow  # ingests a 10-Q
def test_list_delete_and_reset(env, docs):
    assert call_cli("ingest", str(docs), "--json", env=env).returncode == 0
    listing = call_cli("ingest", "--list", env=env)
    assert "report 2023.pdf" in listing.stdout and "2 documents" in listing.stdout
    deleted = call_cli("ingest", "--delete", "report 2023.pdf", env=env)
    assert deleted.returncode == 0 and "deleted 'report 2023.pdf'" in deleted.stdout
    missing = call_cli("ingest", "--delete", "report 2023.pdf", env=env)
    assert missing.returncode == 1 and "no document named 'report 2023.pdf'" in missing.stderr
    refused = call_cli("ingest", "--reset", env=env, stdin="")
    assert refused.returncode == 2 and "nothing was deleted" in refused.stderr
    assert len(json.loads(call_cli("ingest", "--list", "--json", env=env).stdout)) == 1
    reset = call_cli("ingest", "--reset", "--yes", env=env)
    assert reset.returncode == 0 and "(1 documents deleted)" in reset.stdout
    assert json.loads(call_cli("ingest", "--list", "--json", env=env).stdout) == []


@pytest.mark.slow  # ingests a 10-Q
def test_search_text_json_and_stdin(searchable):
    env = searchable
    text = call_cli("rag_app", "search", "what was the 2022 revenue?", "--k", "2", env=env)
    assert text.returncode == 0 and "[1] report 2023.pdf, p. 1" in text.stdout
    # hits come in the fused ranking's order; their cosine similarities need not follow it, so none is shown
    assert "score" not in text.stdout
    one = json.loads(call_cli("rag_app", "search", "State Aid Decision Ireland", "--json", "--k", "3", env=env).stdout)
    assert (one["hits"][0]["file"], one["hits"][0]["page"]) == ("2023 Q2 AAPL.pdf", 14)
    assert set(one["hits"][0]) >= {"file", "page", "score", "text", "offset"}
    lines = call_cli("rag_app", "search", "--k", "1", env=env, stdin="revenue 2022\n\n   \ncommercial paper\n")
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [r["query"] for r in rows] == ["revenue 2022", "commercial paper"]
    assert all(len(r["hits"]) == 1 for r in rows)


@pytest.mark.slow  # ingests a 10-Q
def test_search_errors_are_clear(env, searchable):
    unknown = call_cli("rag_app", "search", "anything", "--collection", "nothing-here", env=env)  # nothing stored
    assert unknown.returncode == 1 and "no collection named 'nothing-here'" in unknown.stderr
    env = searchable
    bad_k = call_cli("rag_app", "search", "anything", "--k", "0", env=env)
    assert bad_k.returncode == 2 and "k must be between 1 and 200" in bad_k.stderr
    empty = call_cli("rag_app", "search", "   ", env=env)
    assert empty.returncode == 2 and "the question is empty" in empty.stderr
    unknown_file = call_cli("rag_app", "search", "revenue", "--files", "nothing.pdf", env=env)
    assert unknown_file.returncode == 1 and "python -m ingest --list shows the stored names" in unknown_file.stderr
