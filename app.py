"""`python app.py`: the web page and the HTTP API on the embedded defaults (http://127.0.0.1:7860)."""

from __future__ import annotations

import argparse
import sys

from rag_app.cli.options import EXIT_USAGE, USAGE, add_setting_options, configure_logging, fail, settings_from_args
from rag_app.errors import ConfigurationError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python app.py",
        usage=USAGE,
        description="Serve rag_app: a chat page over your PDFs with cited sources (/), and an HTTP API (/api). "
        "Binds to 127.0.0.1 by default; --share publishes a public link and needs --auth.",
        epilog="examples:\n  python app.py\n  python app.py --port 8080 --collection papers\n"
        "  python app.py --share --auth alice:correct-horse\n  RAG_LLM_MODEL=Qwen/Qwen2.5-7B-Instruct python app.py\n"
        "  python app.py --embed-origins https://intranet.example.com --root-path /docs-qa --mcp",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_setting_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
        configure_logging(settings.log_level)
        from rag_app.web.server import Console, serve

        serve(settings, Console(say=lambda text: print(text, flush=True), warn=_warn))
    except ConfigurationError as exc:
        return fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return 0
    return 0


def _warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
