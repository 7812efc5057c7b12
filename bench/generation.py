"""Local generation on a GPU: speed beside correctness for every path and batch size, in one run.

The model is Qwen2.5-7B's shape trained until peaked on the project's own text (bench/train_peaked.py),
so that top-1 agreement means something. Paths:
  fast_int4      rag_app's engine (int4 gemlite, static cache, CUDA graphs, continuous batching)
  bf16_static    transformers generate, bf16, static cache (compiled by generate)
  torchao_int4   the same with torchao int4 weight-only (group 128, tile_packed_to_4d)
  bnb_nf4        transformers generate with bitsandbytes nf4, as rag_app loads it
  hf_cb_bf16     transformers' continuous batching (generate_batch), bf16: the 8 chats only
Cases: first token of a 4,096-token prompt; one stream (1,024-token prompt, 256 new tokens); 8 chats
(8 prompts of 300 tokens, 128 new each, started together); the map step (8 prompts, 64 new) against one
such call. Every generated token is scored against a float32 reference holding the same weights,
dequantized (bench/generation_paths.score); a speed is printed only beside an agreement >= 0.99.

Each path runs in its own process: all load and compile at the same time (compiles are CPU-bound),
then each is timed and scored alone, in turn. Writes bench/results/generation-<gpu>.json and .png.

    python -m bench.generation --model-dir /tmp/peaked-7b        # trains the model first if missing
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

from bench.common import RESULTS, write_result

ORDER = ["fast_int4", "bf16_static", "torchao_int4", "bnb_nf4", "hf_cb_bf16"]
MIN_AGREEMENT = 0.99
NEW_B1, NEW_CHATS, NEW_MAP = 256, 128, 64
GIB = 1024**3


# ----- one path, in its own process ------------------------------------------------------------


def prompts_from(model_dir: Path) -> dict[str, list[list[int]]]:
    """Slices of the text the model was trained on, at spread offsets (it continues them with confidence)."""
    ids = training_ids(model_dir)

    def take(length: int, i: int) -> list[int]:
        start = (i * 7919 + 101) % (len(ids) - length - 1)
        return ids[start : start + length]

    return {
        "4k": [take(min(4096, len(ids) - 2), 0)],
        "b1": [take(1024, 1)],
        "chats": [take(300, 10 + i) for i in range(8)],
        "map": [take(300, 20 + i) for i in range(8)],
    }


def training_ids(model_dir: Path) -> list[int]:
    """The text the model was trained on (its saved copy), tokenized as it was trained (train_peaked.load_tokenizer);
    refuses a model whose training.json counts another number of tokens (a tokenizer that changed since)."""
    from bench.train_peaked import load_tokenizer, token_stream, training_text

    ids = token_stream(load_tokenizer(model_dir), training_text(model_dir)).tolist()
    info = model_dir / "training.json"
    trained = json.loads(info.read_text()).get("corpus_tokens") if info.exists() else None
    if trained is not None and trained != len(ids):
        raise RuntimeError(f"the bench tokenizes the training text into {len(ids)} tokens, training saw {trained}")
    return ids


def make_path(name: str, model_dir: Path, device: str):
    from bench import generation_paths as gp

    if name == "fast_int4":
        if not device.startswith("cuda"):  # a CPU dry run: the engine runs eagerly, unquantized
            import rag_app.fastgen

            rag_app.fastgen.fast_path_blocker = lambda device, quantization: None
        return gp.FastPath(model_dir, device, context=8192)
    if name == "hf_cb_bf16":
        return gp.ContinuousBatchingPath("bf16_static", model_dir, device)
    return gp.HFPath(name, model_dir, device)


def warmup_shapes(name: str) -> list[tuple[int, int, int]]:
    """(rows, prompt length, new tokens), the longest cache first for each batch size."""
    if name == "bnb_nf4":
        return [(1, 64, 4), (8, 64, 4)]
    return [(1, 4096, 2), (1, 1024, 8), (8, 300, NEW_CHATS)]


def run_worker(
    name: str, model_dir: Path, run_dir: Path, device: str, turn_wait_s: float, attention: str | None = None
) -> None:
    result: dict = {"path": name}
    if attention:  # the fast path's decode-step attention (rag_app.fastgen.model.DECODE_ATTENTION)
        import rag_app.fastgen.model

        rag_app.fastgen.model.DECODE_ATTENTION = result["decode_attention"] = attention
    try:
        before = torch.cuda.memory_allocated() if device.startswith("cuda") else 0
        path = make_path(name, model_dir, device)
        resident = (torch.cuda.memory_allocated() - before) / GIB if device.startswith("cuda") else 0.0
        path.warmup(warmup_shapes(name))
        result.update(path.describe())
        kv = result.get("kv_cache_gib", 0.0)
        result["memory_gib"] = {"weights": round(resident - kv, 2), "kv_cache": kv}
    except Exception as exc:  # noqa: BLE001 - a path that cannot run here is reported, the others go on
        result["error"] = f"load: {type(exc).__name__}: {exc}"[:500]
        result["traceback"] = traceback.format_exc()[-2000:]
        _write(run_dir / f"{name}.json", result)
        return
    _write(run_dir / f"{name}.ready", {"ready_at": time.time()})
    deadline = time.time() + turn_wait_s
    while not (run_dir / f"{name}.go").exists():
        if time.time() > deadline:
            result["error"] = "never got a turn (the run's time was up)"
            _write(run_dir / f"{name}.json", result)
            return
        time.sleep(0.2)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    runs = measure(path, prompts_from(model_dir), device, result)
    result.update(path.describe())
    if device.startswith("cuda"):
        result["memory_gib"]["peak_while_timed"] = round(torch.cuda.max_memory_allocated() / GIB, 2)
    if hasattr(path, "release"):
        path.release()
    try:
        started = time.perf_counter()
        from bench.generation_paths import reference_model, score

        reference = reference_model(model_dir, path.dequantized(), path, device)
        result["reference_health"] = health_of(reference, prompts_from(model_dir), device)
        if result["reference_health"]["degenerate"]:  # agreement with it would prove nothing: none is reported
            result["correctness"] = {"refused": "degenerate reference: " + result["reference_health"]["reason"]}
        else:
            result["correctness"] = {case: score(reference, pairs, device) for case, pairs in runs.items()}
        result["correctness"]["reference"] = f"float32 transformers, weights {path.dequantized()} dequantized"
        result["score_s"] = round(time.perf_counter() - started, 1)
    except Exception as exc:  # noqa: BLE001
        result["error"] = f"score: {type(exc).__name__}: {exc}"[:500]
        result["traceback"] = traceback.format_exc()[-2000:]
    path.close()
    _write(run_dir / f"{name}.json", result)


def health_of(reference, prompts: dict, device: str) -> dict:
    """bench/agreement.reference_health on the one-stream prompt and two map prompts (the trained text)."""
    from bench.agreement import reference_health

    return reference_health(reference, [prompts["b1"][0][:512], *prompts["map"][:2]], device).to_dict()


def measure(path, prompts: dict, device: str, result: dict) -> dict[str, list]:
    """Time each case the path supports; returns (prompt, generated) pairs per case for scoring."""
    runs: dict[str, list] = {}

    def case(label: str, fn) -> None:
        try:
            fn()
        except NotImplementedError:
            pass
        except Exception as exc:  # noqa: BLE001
            result.setdefault("case_errors", {})[label] = f"{type(exc).__name__}: {exc}"[:300]

    def first_token() -> None:
        path.stream(prompts["4k"][0], 2)
        result["first_token_ms_4k"] = round(1000 * sorted(path.stream(prompts["4k"][0], 2)[1] for _ in range(3))[1], 1)

    def one_stream() -> None:
        tokens, first, rate = path.stream(prompts["b1"][0], NEW_B1)
        result["b1"] = {"first_token_ms_1k": round(first * 1000, 1), "decode_tok_s": round(rate, 1)}
        runs["b1"] = [(prompts["b1"][0], tokens)]

    def chats() -> None:
        sync(device)
        started = time.perf_counter()
        tokens, rates = path.chats(prompts["chats"], NEW_CHATS)
        seconds = time.perf_counter() - started
        result["chats8"] = {
            "seconds": round(seconds, 2), "aggregate_tok_s": round(sum(map(len, tokens)) / seconds, 1),
            "slowest_chat_tok_s": round(min(rates), 1), "fastest_chat_tok_s": round(max(rates), 1),
        }  # fmt: skip
        runs["chats8"] = list(zip(prompts["chats"], tokens, strict=True))

    def map_step() -> None:
        one = _timed(lambda: path.batch(prompts["map"][:1], NEW_MAP), device)[1]
        tokens, eight = _timed(lambda: path.batch(prompts["map"], NEW_MAP), device)
        result["map8"] = {
            "one_call_s": round(one, 3),
            "k8_s": round(eight, 3),
            "ratio_to_one_call": round(eight / one, 2),
        }
        runs["map8"] = list(zip(prompts["map"], tokens, strict=True))

    for label, fn in (("first_token", first_token), ("b1", one_stream), ("chats8", chats), ("map8", map_step)):
        case(label, fn)
    if hasattr(path, "engine"):
        case("profile", lambda: result.update(decode_profile=profile_decode(path, prompts, device)))
        case("profile8", lambda: result.update(decode_profile_8_chats=profile_decode(path, prompts, device, 8)))
    return runs


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str):
    sync(device)
    started = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - started


def profile_decode(path, prompts: dict, device: str, chats: int = 1) -> list[dict]:
    """Where decode time goes on the GPU: the top kernels over 64 steps of one stream, or of 8 chats."""
    if not device.startswith("cuda"):
        return []
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        if chats == 1:
            path.stream(prompts["b1"][0][:256], 64)
        else:
            path.chats([p[:256] for p in prompts["chats"][:chats]], 64)
    events = prof.key_averages()
    total = sum(e.device_time_total for e in events) or 1
    top = sorted(events, key=lambda e: e.device_time_total, reverse=True)[:8]
    return [{"kernel": e.key[:80], "share": round(e.device_time_total / total, 3), "calls": e.count} for e in top]


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


# ----- the run: train, load all, time each in turn ----------------------------------------------


def orchestrate(args) -> dict:
    run_dir = Path(args.run_dir or (Path(os.environ.get("TMPDIR", "/tmp")) / f"gen-bench-{os.getpid()}"))
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    training = ensure_model(args)
    names = [n for n in ORDER if n in args.paths.split(",")]
    env = {**os.environ, "TORCHINDUCTOR_COMPILE_THREADS": "4"}
    workers = {
        n: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.generation",
                "--worker",
                n,
                "--model-dir",
                str(args.model_dir),
                "--run-dir",
                str(run_dir),
                "--device",
                args.device,
                "--turn-wait-s",
                str(args.deadline_s),
                *(["--decode-attention", args.decode_attention] if args.decode_attention else []),
            ],
            env=env,
        )  # fmt: skip
        for n in names
    }
    ready_by = time.time() + args.ready_timeout_s
    while time.time() < ready_by and not all(_settled(run_dir, n, workers[n]) for n in names):
        time.sleep(0.5)  # time nothing while another path still compiles (the CPU is shared)
    results, pending = {}, list(names)
    while pending and time.time() < started + args.deadline_s:
        ready = [n for n in pending if _settled(run_dir, n, workers[n])]
        if not ready:
            time.sleep(0.5)
            continue
        name = ready[0]
        remaining = started + args.deadline_s - time.time()
        results[name] = take_turn(name, run_dir, workers[name], min(args.turn_timeout_s, remaining))
        pending.remove(name)
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "traceback"}), flush=True)
    for name in pending:
        results[name] = {"path": name, "error": "not loaded and compiled within the run's time"}
    for process in workers.values():
        if process.poll() is None:
            process.kill()
    return {"training": training, "paths": results}


def _settled(run_dir: Path, name: str, process) -> bool:
    return (run_dir / f"{name}.ready").exists() or (run_dir / f"{name}.json").exists() or process.poll() is not None


def take_turn(name: str, run_dir: Path, process, timeout_s: float) -> dict:
    done = run_dir / f"{name}.json"
    if not done.exists() and process.poll() is None:
        if not (run_dir / f"{name}.ready").exists():
            return {"path": name, "error": "not loaded and compiled within the time given"}
        (run_dir / f"{name}.go").write_text("")
        deadline = time.time() + max(timeout_s, 0)
        while not done.exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        if not done.exists() and process.poll() is None:
            time.sleep(1)  # its JSON may be landing
    if done.exists():
        result = json.loads(done.read_text())
    else:
        result = {"path": name, "error": f"no result (exit code {process.poll()}, timed out or crashed)"}
    if process.poll() is None:
        process.kill()
    process.wait()
    return result


def ensure_model(args) -> dict:
    info = args.model_dir / "training.json"
    if not (args.model_dir / "config.json").exists():
        shape = "qwen2.5-7b" if args.device.startswith("cuda") else "tiny"
        command = [sys.executable, "-m", "bench.train_peaked", str(args.model_dir), "--steps", str(args.train_steps),
                   "--shape", shape, "--device", args.device]  # fmt: skip
        subprocess.run(command, check=True)
    return json.loads(info.read_text()) if info.exists() else {}


# ----- the report ----------------------------------------------------------------------------------


def agreement(r: dict, case: str) -> float | None:
    """The figure the bar applies to: agreement outside ties (bench/agreement.py), or plain agreement in a
    result written before ties were counted. None when not scored or refused (a degenerate reference)."""
    scored = r.get("correctness", {}).get(case, {})
    return scored.get("agreement_outside_ties", scored.get("agreement"))


def shown(value, r: dict, case: str) -> str:
    """A speed figure only beside an agreement of at least MIN_AGREEMENT (outside ties) from the same run."""
    a = agreement(r, case)
    if value is None:
        return "-"
    if "refused" in r.get("correctness", {}):
        return f"withheld ({value}, degenerate reference: no agreement)"
    if a is None:
        return f"withheld ({value}, not scored)"
    if a < MIN_AGREEMENT:
        return f"withheld (agreement {a:.3f})"
    plain = r["correctness"][case].get("agreement", a)
    return f"{value} [agree {a:.3f}" + (f", {plain:.3f} with ties]" if plain != a else "]")


def rates(r: dict, case: str, key: str) -> float | None:
    a = agreement(r, case)
    value = r.get(case, {}).get(key)
    return value if (a is not None and a >= MIN_AGREEMENT) else None


def comparison(results: dict) -> dict:
    """The engine against the best library path at equal correctness (issue 11's 1.5x rule) and bnb."""
    fast = results.get("fast_int4", {})
    library = {n: r for n, r in results.items() if n not in ("fast_int4", "bnb_nf4")}
    best_b1 = max((v for r in library.values() if (v := rates(r, "b1", "decode_tok_s"))), default=None)
    best_chats = max((v for r in library.values() if (v := rates(r, "chats8", "aggregate_tok_s"))), default=None)
    fast_b1, fast_chats = rates(fast, "b1", "decode_tok_s"), rates(fast, "chats8", "aggregate_tok_s")
    bnb_b1 = rates(results.get("bnb_nf4", {}), "b1", "decode_tok_s")
    out = {
        "best_library_b1_tok_s": best_b1, "best_library_chats8_tok_s": best_chats,
        "fast_vs_best_library_b1": round(fast_b1 / best_b1, 2) if fast_b1 and best_b1 else None,
        "fast_vs_best_library_chats8": round(fast_chats / best_chats, 2) if fast_chats and best_chats else None,
        "fast_vs_bnb_b1": round(fast_b1 / bnb_b1, 2) if fast_b1 and bnb_b1 else None,
    }  # fmt: skip
    out["fast_stays_default"] = bool(
        out["fast_vs_best_library_b1"] and out["fast_vs_best_library_b1"] >= 1.5
        and out["fast_vs_best_library_chats8"] and out["fast_vs_best_library_chats8"] >= 1.5
    )  # fmt: skip
    return out


def table(results: dict) -> str:
    head = ("| path | weights GiB | load s | compile s | first token 4k ms | decode b1 tok/s | 8 chats agg tok/s "
            "(slowest) | map k=8 / one call | max log-prob gap (b1, chats, map) |")  # fmt: skip
    rows = [head, "|" + "---|" * 9]
    for name, r in results.items():
        if "error" in r and "correctness" not in r:
            rows.append(f"| {name} | error: {r['error'][:120]} |" + " |" * 7)
            continue
        chats = r.get("chats8", {})
        chats_value = f"{chats['aggregate_tok_s']} ({chats['slowest_chat_tok_s']})" if chats else None
        gaps = ", ".join(
            str(r.get("correctness", {}).get(c, {}).get("max_logprob_gap", "-")) for c in ("b1", "chats8", "map8")
        )
        rows.append(
            f"| {name} | {r.get('memory_gib', {}).get('weights', '-')} | {r.get('load_s', '-')} | {r.get('compile_s', '-')} | "
            f"{shown(r.get('first_token_ms_4k'), r, 'b1')} | {shown(r.get('b1', {}).get('decode_tok_s'), r, 'b1')} | "
            f"{shown(chats_value, r, 'chats8')} | {shown(r.get('map8', {}).get('ratio_to_one_call'), r, 'map8')} | {gaps} |"
        )
    return "\n".join(rows)


def plot(results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    series = [
        ("decode tok/s, one stream", [rates(results[n], "b1", "decode_tok_s") or 0 for n in names]),
        ("aggregate tok/s, 8 chats", [rates(results[n], "chats8", "aggregate_tok_s") or 0 for n in names]),
        ("first token ms, 4k prompt", [results[n].get("first_token_ms_4k") or 0 for n in names]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (label, values) in zip(axes, series, strict=True):
        ax.bar(names, values)
        ax.set_title(label)
        ax.tick_params(axis="x", rotation=30)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:g}", ha="center", va="bottom")
    fig.suptitle(title + " (0: not shown, agreement < 0.99 or not run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/qwen25-7b-peaked"))
    parser.add_argument("--paths", default=",".join(ORDER), help="comma-separated, of " + ", ".join(ORDER))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--ready-timeout-s", type=float, default=240, help="loading and compiling, all paths at once")
    parser.add_argument("--turn-timeout-s", type=float, default=120, help="timing and scoring one path")
    parser.add_argument("--deadline-s", type=float, default=520, help="the whole run, training included")
    parser.add_argument("--name", default="", help="result name (default: generation-<gpu>)")
    parser.add_argument(
        "--decode-attention", choices=["math", "sdpa"], help="the fast path's decode-step attention (default: math)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    parser.add_argument("--turn-wait-s", type=float, default=600, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(
            args.worker, args.model_dir, Path(args.run_dir), args.device, args.turn_wait_s, args.decode_attention
        )
        return
    data = orchestrate(args)
    results = data["paths"]
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    report = table(results)
    print(report)
    data.update(gpu=gpu, comparison=comparison(results), table=report, min_agreement=MIN_AGREEMENT)
    print(json.dumps(data["comparison"]))
    name = args.name or ("generation-h200" if "H200" in gpu else f"generation-{gpu.split()[-1].lower()}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    png = RESULTS / f"{name}.png"
    try:
        plot(results, png, f"Qwen2.5-7B shape, trained until peaked, {gpu}")
    except Exception as exc:  # noqa: BLE001 - the figures matter more than the picture
        print("plot failed:", exc)
    path = write_result(name, data)
    out = os.environ.get("OUT")
    if out:
        for f in (path, png):
            if f.exists():
                Path(out, f.name).write_bytes(f.read_bytes())


if __name__ == "__main__":
    main()
