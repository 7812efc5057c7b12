"""Every setting is a flag of every command, as the README says: the flags are generated from Settings."""

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
