"""`python -m rag_app`: ask and search from the terminal or a script (:mod:`rag_app.cli.ask_command`).

This package imports no command: `python -m ingest` (:mod:`rag_app.cli.ingest_command`) then starts without
loading the answering stack (langchain's chat models and tracers: about a second of a new process)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from rag_app.cli.ask_command import main as run

    return run(argv)


def build_parser():
    from rag_app.cli.ask_command import build_parser as build

    return build()
