"""GGUF files: which one ``RAG_LLM_MODEL`` points at, and what its header says.

A GGUF file is one self-contained model (weights, tokenizer, chat template, context length), the format
llama.cpp, Ollama and gpt4all users hold. The header is read here in plain Python, before llama.cpp loads
the file: the memory check needs its shapes, and a file llama.cpp refuses still gets a message that says
what it is.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rag_app.llm.backend import ModelUnavailableError

MAGIC = b"GGUF"
MODEL_HOWTO = (
    "RAG_LLM_MODEL takes a .gguf file, a folder holding one, a transformers model folder (config.json and "
    "weights) or a hub id"
)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_SPLIT_PART = re.compile(r"-(\d{5})-of-\d{5}\.gguf$", re.I)  # model-00001-of-00003.gguf: llama.cpp opens part 1


def is_gguf(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == MAGIC


def find_gguf(name: str | None) -> Path | None:
    """The GGUF file ``name`` points at: the file, or the one .gguf in a folder without a config.json.

    None when ``name`` is for transformers (a hub id, a folder with a config.json); raises when it is a
    file or folder no backend can load, or a .gguf path that does not exist.
    """
    if not name:
        return None
    path = Path(name).expanduser()
    if path.is_dir():
        return _gguf_in_folder(path)
    if path.is_file():
        if is_gguf(path):
            return path
        raise ModelUnavailableError(
            f"{path} is a file but not a GGUF model (it does not begin with 'GGUF'): {MODEL_HOWTO}"
        )
    if path.suffix.lower() == ".gguf":
        raise ModelUnavailableError(f"the GGUF model {path} does not exist: {MODEL_HOWTO}")
    return None


def _gguf_in_folder(folder: Path) -> Path | None:
    files = sorted(p for p in folder.glob("*.gguf") if not p.name.lower().startswith("mmproj"))
    if (folder / "config.json").is_file():
        return None  # a transformers model folder
    if not files:
        raise ModelUnavailableError(
            f"{folder} holds neither a GGUF file nor a transformers model (config.json): {MODEL_HOWTO}"
        )
    firsts = [p for p in files if (m := _SPLIT_PART.search(p.name)) is None or m.group(1) == "00001"]
    if len(firsts) == 1:
        return firsts[0]
    names = ", ".join(p.name for p in firsts[:5])
    raise ModelUnavailableError(
        f"{folder} holds {len(firsts)} GGUF models ({names}): set RAG_LLM_MODEL to the one to load"
    )


@dataclass(frozen=True)
class GgufHeader:
    """What the memory check and the model notes need from a GGUF header."""

    architecture: str
    name: str
    context_length: int  # the context the model was trained with
    layers: int
    kv_heads: int
    key_length: int
    value_length: int
    chat_template: str | None

    @property
    def kv_bytes_per_token(self) -> int:
        """KV cache bytes of one token in llama.cpp's default float16 cache."""
        return 2 * self.layers * self.kv_heads * (self.key_length + self.value_length)


def read_header(path: Path) -> GgufHeader:
    """The model's shapes, context length and chat template from a GGUF file's key/value header."""
    try:
        meta = read_metadata(path)
        arch = meta["general.architecture"]
        heads = int(meta[f"{arch}.attention.head_count"])
        head_dim = int(meta[f"{arch}.embedding_length"]) // max(heads, 1)
        return GgufHeader(
            architecture=arch,
            name=str(meta.get("general.name") or path.stem),
            context_length=int(meta.get(f"{arch}.context_length", 2048)),
            layers=int(meta[f"{arch}.block_count"]),
            kv_heads=int(meta.get(f"{arch}.attention.head_count_kv", heads)),
            key_length=int(meta.get(f"{arch}.attention.key_length", head_dim)),
            value_length=int(meta.get(f"{arch}.attention.value_length", head_dim)),
            chat_template=meta.get("tokenizer.chat_template"),
        )
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise ModelUnavailableError(f"cannot read the GGUF header of {path}: {exc!r} (is the file complete?)") from exc


def read_metadata(path: Path, longest_array: int = 64) -> dict:
    """The key/value header of a GGUF v2/v3 file; arrays longer than ``longest_array`` (the vocabulary)
    are replaced by their length."""
    with open(path, "rb") as handle:
        if handle.read(4) != MAGIC:
            raise ValueError(f"{path} is not a GGUF file")
        version = _unpack(handle, "<I")
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old (llama.cpp reads 2 and 3)")
        _unpack(handle, "<Q")  # tensor count
        meta: dict = {"GGUF.version": version}
        for _ in range(_unpack(handle, "<Q")):
            key = _string(handle)
            meta[key] = _value(handle, _unpack(handle, "<I"), longest_array)
        return meta


def _unpack(handle: BinaryIO, fmt: str):
    return struct.unpack(fmt, handle.read(struct.calcsize(fmt)))[0]


def _string(handle: BinaryIO) -> str:
    return handle.read(_unpack(handle, "<Q")).decode("utf-8", errors="replace")


def _value(handle: BinaryIO, kind: int, longest_array: int):
    if kind == _STRING:
        return _string(handle)
    if kind != _ARRAY:
        return _unpack(handle, _SCALARS[kind])
    item_kind, count = _unpack(handle, "<I"), _unpack(handle, "<Q")
    if count <= longest_array:
        return [_value(handle, item_kind, longest_array) for _ in range(count)]
    if item_kind == _STRING:
        for _ in range(count):
            handle.seek(_unpack(handle, "<Q"), 1)
    else:
        handle.seek(struct.calcsize(_SCALARS[item_kind]) * count, 1)
    return count
