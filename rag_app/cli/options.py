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

from rag_app.errors import ConfigurationError
from rag_app.settings import Settings

# Exit codes shared by every command.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


SETTING_NAMES: tuple[str, ...] = tuple(Settings.model_fields)  # every setting is a flag of every command


def add_setting_options(
    parser: argparse.ArgumentParser, names: Sequence[str] = SETTING_NAMES, title: str = "settings"
) -> list[str]:
    """Add a ``--name`` flag for each setting (help shows its env variable and default) and return the
    names added; a flag the command already defines itself (``ask --strategy``) is kept as it is."""
    group = parser.add_argument_group(title, "each flag overrides its RAG_ environment variable and .env")
    added = []
    for name in names:
        field = Settings.model_fields[name]
        flag = "--" + name.replace("_", "-")
        if flag in parser._option_string_actions:  # the command's own, more specific option
            continue
        default = field.default_factory() if field.default_factory else field.default
        shown = json.dumps(default) if isinstance(default, dict) else default
        help_text = f"{field.description} [env RAG_{name.upper()}; default: {shown}]"
        if field.annotation is bool:
            group.add_argument(flag, dest=name, default=None, action="store_const", const=True, help=help_text)
        else:
            group.add_argument(
                flag, dest=name, default=None, type=_parser_for(field.annotation), metavar=name.upper(), help=help_text
            )
        added.append(name)
    return added


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


def fail(message: str, code: int = EXIT_FAILED) -> int:
    """Print an error for a person (no traceback) and return the exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code
