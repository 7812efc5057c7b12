"""Command-line flags built from the settings object, so --help matches the config."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from rag_app.errors import ConfigurationError, DocumentNotFoundError, RagError
from rag_app.settings import Settings

# Exit codes shared by every command.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


SETTING_NAMES: tuple[str, ...] = tuple(Settings.model_fields)  # every setting is a flag of every command

# What each setting is about, as --help groups them. A command shows the settings it uses; the others are
# still accepted (a script may pass them to every command) and listed by --help-all.
STORAGE = ("data_dir", "collection", "chroma_host", "chroma_port")
QUERY_EMBEDDING = (
    "embedding_model",
    "embedding_model_zh",
    "embedding_device",
    "embedding_precision",
    "embedding_backend",
)
READING = (
    "chroma_shards", "embedding_batch_size", "chunk_size", "chunk_overlap", "pdf_parser", "ocr", "parse_timeout_s",
    "parse_workers", "ingest_mode", "parse_memory_mb", "pdf_passwords",
)  # fmt: skip
RETRIEVAL = (
    "top_k", "retrieval", "context_neighbours", "retrieval_candidates", "retrieval_dense_candidates",
    "retrieval_exact_chunks", "retrieval_document_weight", "retrieval_within", "retrieval_section_weight", "retrieval_section_item_weight", "retrieval_section_sets", "retrieval_unnamed_weight", "retrieval_formal_pages_last", "reranker_model", "retrieval_rerank", "retrieval_rerank_depth",
)  # fmt: skip
MODEL = tuple(n for n in SETTING_NAMES if n.startswith("llm_")) + (
    "max_new_tokens", "temperature", "strategy", "gemlite_autotune",
)  # fmt: skip
SERVER = (
    "host", "port", "auth", "auth_file", "share", "allow_public_share", "max_upload_mb", "max_upload_total_mb",
    "max_question_chars", "max_request_kb", "embed_origins", "root_path", "forwarded_allow_ips", "allowed_hosts", "mcp",
    "embed_demo",
)  # fmt: skip
GENERAL = ("log_level",)
SETTING_GROUPS: dict[str, tuple[str, ...]] = {
    "documents": STORAGE + QUERY_EMBEDDING + READING,
    "retrieval": RETRIEVAL,
    "model": MODEL,
    "server": SERVER,
    "general": GENERAL,
}
GROUP_HELP = {
    "documents": "where documents are stored, and how they are read, chunked and embedded (each setting's flag "
    "overrides its RAG_ variable and .env)",
    "retrieval": "how passages are found for a question",
    "model": "the answer model and how it writes",
    "server": "the web page and the HTTP API",
}
# Levers for measuring and tuning, shown by --help-all only (in their group).
TUNING = (
    "chroma_shards", "embedding_batch_size", "embedding_backend", "chunk_overlap", "parse_timeout_s", "parse_workers", "ingest_mode",
    "parse_memory_mb", "retrieval_candidates", "retrieval_dense_candidates", "retrieval_exact_chunks", "retrieval_document_weight", "retrieval_within", "retrieval_section_weight",
    "retrieval_section_item_weight", "retrieval_section_sets", "retrieval_unnamed_weight", "retrieval_formal_pages_last", "retrieval_rerank", "retrieval_rerank_depth", "embedding_model_zh", "llm_engine", "llm_batch_slots", "llm_threads", "llm_script", "gemlite_autotune",
    "max_upload_total_mb", "max_request_kb",
)  # fmt: skip
HIDDEN_TITLE = "settings this command does not use (accepted, so one set of flags works with every command)"
USAGE = "%(prog)s [options]"  # the options are listed below: a usage line naming each one ran to 20 lines


def add_setting_options(
    parser: argparse.ArgumentParser, used: Sequence[str] = SETTING_NAMES, names: Sequence[str] = SETTING_NAMES
) -> list[str]:
    """Add a ``--name`` flag for each setting (help shows its env variable and default), grouped as
    SETTING_GROUPS; ``--help`` lists those in ``used`` but the TUNING ones, ``--help-all`` every one. Returns the names added; a
    flag the command already defines itself (``ask --strategy``) is kept as it is."""
    wanted = set(names)
    groups = {title: [n for n in group if n in wanted and n in used] for title, group in SETTING_GROUPS.items()}
    groups[HIDDEN_TITLE] = [n for n in SETTING_NAMES if n in wanted and n not in used]
    hidden: dict[argparse.Action, str] = {}
    added = []
    for title, group_names in groups.items():
        if not group_names:
            continue
        group = parser.add_argument_group(title, GROUP_HELP.get(title))
        for name in group_names:
            action = _add_setting(parser, group, name)
            if action is None:
                continue
            added.append(name)
            if title == HIDDEN_TITLE or name in TUNING:
                hidden[action], action.help = action.help, argparse.SUPPRESS
    parser.add_argument(
        "--help-all",
        action=_HelpAll,
        hidden=hidden,
        help="also show the tuning settings and those this command does not use, and exit",
    )
    return added


def _add_setting(parser: argparse.ArgumentParser, group, name: str) -> argparse.Action | None:
    field = Settings.model_fields[name]
    flag = "--" + name.replace("_", "-")
    if flag in parser._option_string_actions:  # the command's own, more specific option
        return None
    default = field.default_factory() if field.default_factory else field.default
    shown = json.dumps(default) if isinstance(default, dict) else "unset" if default is None else default
    help_text = f"{field.description} [env RAG_{name.upper()}; default: {shown}]"
    if field.annotation is bool:
        return group.add_argument(flag, dest=name, default=None, action="store_const", const=True, help=help_text)
    parse = _parser_for(field.annotation)
    return group.add_argument(flag, dest=name, default=None, type=parse, metavar=_metavar(parse), help=help_text)


class _HelpAll(argparse.Action):
    """``--help-all``: the help with the settings this command does not use shown as well."""

    def __init__(self, option_strings, dest, hidden: dict[argparse.Action, str], help: str | None = None) -> None:  # noqa: A002
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help)
        self.hidden = hidden

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        for action, text in self.hidden.items():
            action.help = text
        parser.print_help()
        parser.exit()


def _metavar(parse) -> str:
    """A short placeholder, so most flags keep their help on the same line."""
    return {int: "N", float: "X", Path: "PATH", json.loads: "JSON"}.get(parse, "TEXT")


def _parser_for(annotation):
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is dict:
        return json.loads
    return annotation if annotation in (int, float, Path) else str


def settings_from_args(args: argparse.Namespace, names: Sequence[str] = SETTING_NAMES) -> Settings:
    """Settings from env/.env with the flags the user gave on top."""
    overrides = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid settings: {problems}") from None


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.WARNING),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def error_message(exc: RagError) -> str:
    """The library's message with what the command line offers to fix it."""
    if isinstance(exc, DocumentNotFoundError):
        return f"{exc} (python -m ingest --list shows the stored names)"
    return str(exc)


def fail(message: str, code: int = EXIT_FAILED) -> int:
    """Print an error for a person (no traceback) and return the exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code
