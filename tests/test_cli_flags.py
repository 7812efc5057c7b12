"""Every setting is a flag of every command (the flags are generated from Settings); each --help lists the ones the
command uses, grouped, and --help-all the rest."""

import argparse

import pytest
from conftest import ROOT

from rag_app.settings import Settings


def parsers() -> dict[str, argparse.ArgumentParser]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("app_main", ROOT / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    from rag_app.cli import build_parser as rag_parser
    from rag_app.cli.ingest_command import build_parser as ingest_parser

    commands = next(a for a in rag_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    return {"python app.py": app.build_parser(), "python -m ingest": ingest_parser(),
            "python -m rag_app search": commands["search"], "python -m rag_app ask": commands["ask"]}  # fmt: skip


@pytest.mark.parametrize("command", list(parsers()))
def test_every_setting_is_a_flag_of_every_command(command):
    flags = parsers()[command]._option_string_actions
    missing = [n for n in Settings.model_fields if "--" + n.replace("_", "-") not in flags]
    assert missing == [], f"{command} lacks {missing}"


def test_the_flags_reach_the_settings(clean_env):
    from rag_app.cli.options import settings_from_args

    parser = parsers()["python app.py"]
    args = parser.parse_args(["--chunk-size", "96", "--pdf-parser", "pypdf", "--retrieval", "dense",
                              "--context-neighbours", "2", "--embedding-precision", "fp32", "--share"])  # fmt: skip
    settings = settings_from_args(args)
    assert (settings.chunk_size, settings.pdf_parser, settings.retrieval) == (96, "pypdf", "dense")
    assert (settings.context_neighbours, settings.embedding_precision, settings.share) == (2, "fp32", True)


def help_text(command: str, flag: str = "--help") -> str:
    """What ``command --help`` prints, at the 80 columns of a terminal (or a pipe)."""
    import contextlib
    import io
    import os
    from unittest import mock

    out = io.StringIO()
    with (
        mock.patch.dict(os.environ, {"COLUMNS": "80"}),
        contextlib.redirect_stdout(out),
        contextlib.suppress(SystemExit),
    ):
        parsers()[command].parse_args([flag])
    return out.getvalue()


# Flags a command never uses, which its --help listed before (issue 28: --max-upload-mb on ingest, --embed-demo on ask).
NOT_USED = {
    "python -m ingest": ["--max-upload-mb", "--embed-demo", "--llm-model", "--port", "--reranker-model"],
    "python -m rag_app search": ["--embed-demo", "--llm-model", "--chunk-size", "--ocr", "--port"],
    "python -m rag_app ask": ["--embed-demo", "--max-upload-mb", "--chunk-size", "--ocr", "--port", "--share"],
}
USED = {
    "python -m ingest": ["--collection", "--data-dir", "--embedding-model", "--chunk-size", "--ocr", "--pdf-passwords"],
    "python -m rag_app search": ["--collection", "--embedding-model", "--retrieval", "--reranker-model"],
    "python -m rag_app ask": ["--collection", "--llm-model", "--llm-endpoint", "--retrieval", "--context-neighbours"],
    "python app.py": ["--port", "--auth", "--share", "--max-upload-mb", "--llm-model", "--ocr", "--collection"],
}


@pytest.mark.parametrize("command", list(USED))
def test_help_lists_the_flags_the_command_uses_grouped_and_fits(command):
    text = help_text(command)
    assert [flag for flag in USED[command] if flag not in text] == []
    assert [flag for flag in NOT_USED.get(command, []) if flag in text] == []
    headings = [line.rstrip(":") for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert {"documents"} <= set(headings) <= {"positional arguments", "options", "examples", "documents", "retrieval",
                                              "model", "server", "general"}  # fmt: skip
    assert "--help-all" in text
    assert len(text.splitlines()) <= (180 if command == "python app.py" else 130)  # 290-313 lines before


@pytest.mark.parametrize("command", list(USED))
def test_help_all_lists_every_setting_with_its_variable(command):
    text = help_text(command, "--help-all")
    missing = [n for n in Settings.model_fields if f"RAG_{n.upper()}" not in text.replace("\n", " ").replace("  ", "")]
    assert missing == []
    if command in NOT_USED:
        assert "settings this command does not use" in text
