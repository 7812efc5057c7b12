"""Build a FastTransformer from a transformers checkpoint (safetensors), quantizing as it loads.

Weights are read one tensor at a time and quantized on the target device, so
the full-precision model never has to fit in memory. A LoRA adapter is merged
into the weights before quantization.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from rag_app.fastgen.model import MLP, ArchSpec, Attention, Block, FastTransformer, RMSNorm, UnsupportedModelError
from rag_app.fastgen.quant import make_head, make_int4_linear

log = logging.getLogger(__name__)


def resolve_model_dir(name: str) -> Path:
    """A local directory for a hub id (downloaded or cached) or a path."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]
    return Path(snapshot_download(name, allow_patterns=patterns))


class CheckpointReader:
    """Tensors of a safetensors checkpoint by name, with an optional LoRA adapter merged in."""

    def __init__(self, directory: Path, adapter: Path | None = None) -> None:
        from safetensors import safe_open

        files = sorted(directory.glob("*.safetensors"))
        if not files:
            raise UnsupportedModelError(f"no .safetensors weights in {directory}")
        self._handles = [safe_open(str(f), framework="pt") for f in files]
        self._where = {key: h for h in self._handles for key in h.keys()}
        self._lora = _read_lora(adapter) if adapter else {}

    def has(self, key: str) -> bool:
        return key in self._where

    def get(self, key: str, device, dtype: torch.dtype) -> torch.Tensor:
        tensor = self._where[key].get_tensor(key).to(device=device)
        delta = self._lora.get(key)
        if delta is not None:
            tensor = tensor.float() + delta(device)
        return tensor.to(dtype)


def _read_lora(adapter: Path):
    """Weight deltas (B @ A * scaling) of a PEFT LoRA adapter, keyed by base weight name."""
    from safetensors.torch import load_file

    config = json.loads((adapter / "adapter_config.json").read_text())
    if config.get("peft_type", "LORA") != "LORA" or config.get("use_dora"):
        raise UnsupportedModelError(f"adapter type {config.get('peft_type')} (the fast path merges LoRA only)")
    rank, alpha = config["r"], config.get("lora_alpha", config["r"])
    scaling = alpha / (rank**0.5 if config.get("use_rslora") else rank)
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    deltas = {}
    for key, a in weights.items():
        if ".lora_A." not in key:
            continue
        b = weights[key.replace(".lora_A.", ".lora_B.")]
        base = (
            key.split("base_model.model.", 1)[-1]
            .replace(".lora_A.weight", ".weight")
            .replace(".lora_A.default.weight", ".weight")
        )
        deltas[base] = lambda device, a=a, b=b: (b.to(device).float() @ a.to(device).float()) * scaling
    return deltas


def build_fast_transformer(
    directory: Path, config, quantization: str, device: str, adapter: Path | None = None, use_gemlite: bool = True
) -> FastTransformer:
    """The model with int4 (``quantization="4bit"``) or bf16/fp32 (``"none"``) linear layers."""
    spec = ArchSpec.from_hf(config)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    reader = CheckpointReader(directory, adapter)

    def linear(names: list[str], biases: bool) -> nn.Module:
        weight = torch.cat([reader.get(f"{n}.weight", device, torch.float32) for n in names])
        bias = torch.cat([reader.get(f"{n}.bias", device, torch.float32) for n in names]) if biases else None
        if quantization == "4bit":
            return make_int4_linear(weight, bias, dtype, use_gemlite and device.startswith("cuda"))
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=biases, device=device, dtype=dtype)
        layer.weight.data.copy_(weight)
        if biases:
            layer.bias.data.copy_(bias)
        return layer.requires_grad_(False)

    blocks = []
    for i in range(spec.layers):
        p = f"model.layers.{i}"
        attn = Attention(
            spec,
            linear([f"{p}.self_attn.{x}_proj" for x in "qkv"], spec.qkv_bias),
            linear([f"{p}.self_attn.o_proj"], False),
        )
        mlp = MLP(linear([f"{p}.mlp.gate_proj", f"{p}.mlp.up_proj"], False), linear([f"{p}.mlp.down_proj"], False))
        block = Block(spec, attn, mlp).to(device)
        block.input_norm.weight.data.copy_(reader.get(f"{p}.input_layernorm.weight", device, torch.float32))
        block.post_norm.weight.data.copy_(reader.get(f"{p}.post_attention_layernorm.weight", device, torch.float32))
        block.input_norm.to(dtype), block.post_norm.to(dtype)
        blocks.append(block)
    embed = nn.Embedding.from_pretrained(reader.get("model.embed_tokens.weight", device, dtype), freeze=True)
    norm = RMSNorm(spec.hidden, spec.rms_eps).to(device)
    norm.weight.data.copy_(reader.get("model.norm.weight", device, torch.float32))
    norm.to(dtype)
    head = nn.Linear(spec.hidden, spec.vocab_size, bias=False, device=device, dtype=dtype).requires_grad_(False)
    tied = spec.tie_embeddings or not reader.has("lm_head.weight")
    head_weight = embed.weight if tied else reader.get("lm_head.weight", device, dtype)
    head = _output_head(head_weight, quantization == "4bit" and use_gemlite and device.startswith("cuda"), dtype)
    model = FastTransformer(spec, embed, blocks, norm, head).to(device)
    return model.eval()


def _output_head(weight: torch.Tensor, compressed: bool, dtype: torch.dtype) -> nn.Module:
    """The output projection: compressed (quant.HEAD_FORMAT) on the GPU fast path, else full precision."""
    if compressed:
        try:
            return make_head(weight, dtype)
        except Exception as exc:  # noqa: BLE001 - a kernel that cannot build here costs speed, not correctness
            log.warning("keeping the output head in %s: %s", dtype, exc)
    head = nn.Linear(weight.shape[1], weight.shape[0], bias=False, device=weight.device, dtype=dtype)
    head.weight = nn.Parameter(weight, requires_grad=False)
    return head.requires_grad_(False)
