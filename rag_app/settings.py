"""One validated settings object for the whole app.

Values come from (highest first): CLI flags, environment variables with the
``RAG_`` prefix, a ``.env`` file in the working directory, then the defaults
below. Every field carries a description: the CLIs build ``--help`` from it.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
COLLECTION_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}"


class Settings(BaseSettings):
    """Configuration of rag_app; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore", validate_assignment=True)

    data_dir: Path = Field(
        Path("data"),
        description="Directory for the embedded Chroma database and uploaded files.",
    )
    collection: str = Field(
        "documents",
        description="Name of the document collection to ingest into and search (letters, digits, '_' and '-').",
    )
    chroma_host: str | None = Field(
        None,
        description="Host of a Chroma server (`chroma run`); when unset, an embedded "
        "database under the data directory is used.",
    )
    chroma_port: int = Field(8000, description="Port of the Chroma server.")
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="sentence-transformers model: hub id or local path. The default "
        "is English-only; for Chinese use a multilingual model such as "
        "BAAI/bge-m3 or intfloat/multilingual-e5-small.",
    )
    embedding_device: str = Field("auto", description="Device for embeddings: auto (CUDA when present), cpu or cuda.")
    embedding_batch_size: int = Field(64, ge=1, description="Chunks per embedding batch.")
    chunk_size: int = Field(
        200,
        ge=16,
        description="Chunk size in tokens of the embedding model's tokenizer "
        "(capped at the model's maximum sequence length).",
    )
    chunk_overlap: int = Field(30, ge=0, description="Tokens shared by neighbouring chunks of one page.")
    parse_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Seconds a PDF may spend opening or on any one page before it "
        "is stopped and reported as timed out.",
    )
    parse_workers: int = Field(
        0,
        ge=0,
        description="Parser processes running beside embedding (0: one less than the CPU count, at least one).",
    )
    parse_memory_mb: int = Field(
        4096,
        ge=256,
        description="Memory limit of one parser process in MiB; a PDF that needs "
        "more is reported as failed instead of exhausting the machine.",
    )
    pdf_passwords: dict[str, str] = Field(
        default_factory=dict,
        description='Per-file PDF passwords as JSON, e.g. {"report.pdf": "secret"} (matched by file name or path).',
    )
    log_level: str = Field("WARNING", description="Logging level: DEBUG, INFO, WARNING.")

    @field_validator("collection")
    @classmethod
    def _check_collection(cls, value: str) -> str:
        if not re.fullmatch(COLLECTION_NAME_PATTERN, value):
            raise ValueError(
                f"invalid collection name {value!r}: use 1-63 letters, digits, '_' or "
                "'-', starting with a letter or digit"
            )
        return value

    @field_validator("chunk_overlap")
    @classmethod
    def _check_overlap(cls, value: int, info) -> int:
        size = info.data.get("chunk_size")
        if size is not None and value >= size:
            raise ValueError(f"chunk_overlap ({value}) must be smaller than chunk_size ({size})")
        return value

    @property
    def chroma_dir(self) -> Path:
        """Where the embedded Chroma database lives."""
        return self.data_dir / "chroma"


def settings_table_markdown() -> str:
    """The README's configuration table, generated so it never drifts from the code."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default
        shown = "{}" if default == {} else ("(unset)" if default is None else str(default))
        rows.append(f"| `RAG_{name.upper()}` | `{shown}` | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m rag_app.settings prints the table for the README
    print(settings_table_markdown())
