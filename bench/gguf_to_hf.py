"""A GGUF model as a transformers model folder, so that the GPU paths (the fast engine, torchao, bitsandbytes,
bf16) can load the same real weights that llama.cpp runs on the CPU.

transformers dequantizes the file (the ``gguf`` package reads its blocks) to float32 and converts its tokenizer
and chat template; the folder keeps float32 so that every path quantizes from the file's own values.

    python -m bench.gguf_to_hf SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smollm2-hf
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def convert(gguf: Path, directory: Path) -> dict:
    """Write ``directory`` (config.json, model.safetensors, tokenizer files) from ``gguf``; returns a summary."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    with _read_once():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    directory.mkdir(parents=True, exist_ok=True)
    model.hf_quantizer = None  # the weights are plain float32 tensors now: save them as such
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    config = model.config
    summary = {
        "source": gguf.name, "model_type": config.model_type, "parameters": sum(p.numel() for p in model.parameters()),
        "tie_word_embeddings": bool(getattr(config, "tie_word_embeddings", False)),
        "eos_token": tokenizer.eos_token, "eos_token_id": tokenizer.eos_token_id, "pad_token": tokenizer.pad_token,
        "bos_token": tokenizer.bos_token, "has_chat_template": bool(tokenizer.chat_template),
        "generation_eos": model.generation_config.eos_token_id, "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    (directory / "converted_from.json").write_text(json.dumps(summary, indent=2))
    return summary


@contextmanager
def _read_once() -> Iterator[None]:
    """transformers parses a GGUF's header three times (tokenizer, config, weights; SmolLM2's 49,152-token
    vocabulary is most of it) and builds gguf's tensor-name map once per tensor (397 times): most of a 33 s
    conversion on 2 cores. Within a conversion each is made once (14 s): the reader only reads (a memory map), and
    the map depends on its arguments only."""
    import gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict = {}

    def read(path, *args, **kwargs):
        key = (str(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = reader(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = read, functools.lru_cache(maxsize=None)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gguf", type=Path)
    parser.add_argument("directory", type=Path)
    args = parser.parse_args()
    print(json.dumps(convert(args.gguf, args.directory)), flush=True)


if __name__ == "__main__":
    main()
