"""docs/benchmarks.md and its plots, regenerated from bench/results/*.json.

    python -m bench.report            # write the page and its plots
    python -m bench.report --check    # is the page up to date with the results?

Every table names the result file it comes from, the machine and the date it was measured on,
and the command that reproduces it. Sections whose result file is missing say so.
"""

from __future__ import annotations

import argparse
import json

from bench.common import RESULTS, ROOT

DOCS = ROOT / "docs"
IMAGES = DOCS / "images"
TARGETS = {"hit@5": 0.60, "mrr": 0.45, "ratio_hit@5": 1.4, "ingest_ratio": 3.0, "gpu_pages_per_s": 500}


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def provenance(result: dict) -> str:
    m = result.get("machine", {})
    where = m.get("gpu") or f"{m.get('cpus', '?')}-core CPU"
    command = result.get("command")
    parts = [f"`bench/results/{result['name']}.json`", f"measured {result.get('date', '?')[:10]}", f"on {where}"]
    if m.get("torch"):
        parts.append(f"torch {m['torch']}")
    if result.get("commit"):
        parts.append(f"commit {result['commit']}")
    line = "*Source: " + ", ".join(parts) + ".*"
    return line + (f" Reproduce: `{command}`" if command else "")


def table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 1 else f"{value:,.1f}"
    return str(value)


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


# ----- sections ------------------------------------------------------------------------------------


def financebench(plots: list) -> list[str]:
    r = load("retrieval-financebench")
    out = ["## Retrieval: financebench_dev, page level", ""]
    if r is None:
        return [*out, "Not measured yet: run `python -m bench.retrieval --sets financebench`.", ""]
    systems = [("ours (hybrid, default)", "ours"), ("ours, dense only", "ours_dense"), ("baseline (LangChain tutorial)", "baseline")]  # fmt: skip
    rows = [[label, r[key]["hit@1"], r[key]["hit@5"], r[key]["hit@10"], r[key]["mrr"]] for label, key in systems]
    ours = r["ours"]
    out += [
        f"{ours['questions']} questions over 19 filings in one collection; a hit at k is a top-k chunk on one of the "
        "question's evidence pages; MRR counts the first hit in the top 10.", "",
        table(["system", "hit@1", "hit@5", "hit@10", "MRR"], rows), "",
        f"Ratio to the baseline: hit@5 {r['ratio_hit@5']}x, MRR {r['ratio_mrr']}x.", "",
        f"Targets: hit@5 >= {TARGETS['hit@5']} ({verdict(ours['hit@5'] >= TARGETS['hit@5'])}), "
        f"MRR >= {TARGETS['mrr']} ({verdict(ours['mrr'] >= TARGETS['mrr'])}), "
        f"hit@5 >= {TARGETS['ratio_hit@5']}x the baseline ({verdict(r['ratio_hit@5'] >= TARGETS['ratio_hit@5'])}).", "",
    ]  # fmt: skip
    if r.get("misses"):
        out += [r["misses"], ""]
    plots.append(("financebench-hit-at-k.png", _curve_plot, r, systems, "financebench_dev: page hit@k"))
    out += ["![hit@k on financebench_dev](images/financebench-hit-at-k.png)", "", provenance(r), ""]
    sweep = [load(f"retrieval-financebench-c{s}o{o}") for s, o in ((96, 16), (128, 16), (200, 30), (254, 40))]
    sweep = [s for s in sweep if s]
    if sweep:
        out += [
            "### Chunk size (dense retrieval, before hybrid search)", "",
            table(["chunk tokens / overlap", "hit@1", "hit@5", "hit@10", "MRR"],
                  [[f"{s['settings']['chunk_size']} / {s['settings']['chunk_overlap']}", s["ours"]["hit@1"], s["ours"]["hit@5"],
                    s["ours"]["hit@10"], s["ours"]["mrr"]] for s in sweep]), "",
            "128 / 16 became the default. " + provenance(sweep[0]).replace(sweep[0]["name"], "retrieval-financebench-c*"), "",
        ]  # fmt: skip
    return out


def docugami(plots: list) -> list[str]:
    r = load("retrieval-docugami")
    out = ["## Retrieval: docugami_sec10q, document level", ""]
    if r is None:
        return [*out, "Not measured yet: run `python -m bench.retrieval --sets docugami`.", ""]
    groups = list(r["ours"])
    rows = [[g, r["ours"][g]["questions"], r["ours"][g]["hit@1"], r["ours"][g]["hit@5"], r["ours_dense"][g]["hit@5"], r["baseline"][g]["hit@5"]] for g in groups]  # fmt: skip
    out += [
        "A hit at k is a top-k chunk from one of the answer's source documents (20 10-Q filings, one collection).", "",
        table(["questions", "n", "ours hit@1", "ours hit@5", "ours dense hit@5", "baseline hit@5"], rows), "",
    ]  # fmt: skip
    behind = [g for g in groups if r["ours"][g]["hit@5"] < r["baseline"][g]["hit@5"]]
    if behind:
        out += [
            "Behind the baseline at hit@5: " + "; ".join(
                f"{g} ({r['ours'][g]['hit@5']:.3f} vs {r['baseline'][g]['hit@5']:.3f})" for g in behind
            ) + ". Multi-document questions (\"How has Apple's net sales changed over time?\") want several "
            "filings of one company; one hit per page and the 1000-character chunks of the baseline trade differently "
            "there, and a document-level hit needs only one of them.", "",
        ]  # fmt: skip
    out += [provenance(r), ""]
    plots.append(("docugami-hit-at-k.png", _curve_plot, {k: r[k]["all"] for k in ("ours", "ours_dense", "baseline")},
                  [("ours (hybrid)", "ours"), ("ours, dense only", "ours_dense"), ("baseline", "baseline")],
                  "docugami_sec10q: document hit@k"))  # fmt: skip
    out += ["![hit@k on docugami](images/docugami-hit-at-k.png)", ""]
    return out


def finglm() -> list[str]:
    r = load("retrieval-finglm")
    out = ["## Retrieval: finglm_zh_mini (Chinese)", ""]
    if r is None:
        return [*out, "Not measured yet: run `python -m bench.retrieval --sets finglm`.", ""]
    rows = [[label, r[k]["questions"], r[k]["hit@1"], r[k]["hit@5"], r[k]["hit@10"], r[k]["mrr"]] for label, k in (("hybrid (BM25 with jieba + dense)", "ours"), ("dense only", "ours_dense"))]  # fmt: skip
    return [
        *out, f"Embedding model: `{r['embedding_model']}`. {r['note']}", "",
        table(["ours", "questions", "hit@1", "hit@5", "hit@10", "MRR"], rows), "",
        "Pages are those containing the answer's key strings (the set's own annotation), not hand-checked evidence.", "",
        provenance(r), "",
    ]  # fmt: skip


def refusal() -> list[str]:
    r = load("retrieval-refusal")
    out = ["## Refusal: enterprise_rag_challenge_r1", ""]
    if r is None:
        return [*out, "Not measured yet: run `python -m bench.retrieval --sets refusal`.", ""]
    rows = [[scope, r[scope]["roc_auc"], r[scope]["best_threshold"], r[scope]["youden_j"], r[scope]["mean_score_answerable"], r[scope]["mean_score_unanswerable"]] for scope in ("all documents", "the company's report")]  # fmt: skip
    return [
        *out,
        f"{r['questions']} questions whose company's report is in the set, {r['unanswerable']} of them with the answer "
        "\"N/A\". Score: the best dense similarity among the top 5 chunks. ROC AUC 0.5 means the score does not tell "
        "answerable from unanswerable at all.", "",
        table(["searched", "ROC AUC", "best threshold", "Youden J", "mean score, answerable", "mean score, N/A"], rows), "",
        r.get("conclusion", ""), "", provenance(r), "",
    ]  # fmt: skip


def ingest(plots: list) -> list[str]:
    out = ["## Ingestion speed", ""]
    cpu, gpu = load("ingest-cpu"), load("ingest-gpu")
    if cpu is None:
        return [*out, "Not measured yet: run `python -m bench.ingest`.", ""]
    systems = [(k, label) for k, label in (("ours", "ours (defaults)"), ("ours_fp32", "ours, fp32 embeddings"), ("ours_pypdf", "ours, pypdf parser"), ("baseline", "baseline (LangChain tutorial)")) if k in cpu]  # fmt: skip
    rows = [[label, cpu[k]["pages"], cpu[k]["chunks"], cpu[k]["seconds"], cpu[k]["pages_per_s"], *[cpu[k]["stages_s"][s] for s in ("parse", "chunk", "embed", "store")], len(cpu[k]["failed"])] for k, label in systems]  # fmt: skip
    ratio = cpu.get("ratio_pages_per_s", 0)
    text = cpu.get("text", {})
    out += [
        f"docugami_sec10q + financebench_dev ({sum(cpu['sets'].values())} PDFs), from empty collections. Our parsing runs in "
        "worker processes beside embedding, so our stage seconds overlap; the baseline's stages run one after another.", "",
        table(["pipeline", "pages", "chunks", "wall s", "pages/s", "parse s", "chunk s", "embed s", "store s", "failed files"], rows), "",
        f"Ours / baseline: **{ratio}x** pages/s (target {TARGETS['ingest_ratio']}x: {verdict(ratio >= TARGETS['ingest_ratio'])}).", "",
    ]  # fmt: skip
    if text:
        out += [
            f"Extracted text, ours against the baseline's pypdf on the {text['documents_compared']} documents both read: mean "
            f"word-set Jaccard {text['mean_word_jaccard']} (lowest {text['min_word_jaccard']}), words ours/baseline "
            f"{text['words_ours_over_baseline']}." + (f" Only we read: {', '.join(text['documents_only_ours_read'])}." if text["documents_only_ours_read"] else ""),
            "",
        ]  # fmt: skip
        for low in text.get("lowest", []):
            out.append(
                f"- `{low['file']}`: Jaccard {low['word_jaccard']}; distinct words ours {low['distinct_words_ours']:,}, "
                f"baseline {low['distinct_words_baseline']:,}. Only in the baseline: {', '.join(low['only_baseline'][:8])}; "
                f"only in ours: {', '.join(low['only_ours'][:8])}."
            )
        if text.get("lowest"):
            out += [
                "",
                "Where the two disagree most, the baseline's pypdf glues words together (`2016cash`) and splits them "
                "(`ablished`), which inflates its vocabulary; ours has the real words. Equal or better text, not worse.",
                "",
            ]
    for k, label in systems:
        if cpu[k]["failed"]:
            out += [f"{label} failed on: " + "; ".join(cpu[k]["failed"]), ""]
    if cpu.get("notes"):
        out += [cpu["notes"], ""]
    plots.append(("ingest-stages.png", _stage_plot, cpu, systems, "Ingestion: seconds per stage (2-core CPU)"))
    out += ["![ingestion stage times](images/ingest-stages.png)", "", provenance(cpu), ""]
    if gpu is None:
        out += [
            f"**H200 ({TARGETS['gpu_pages_per_s']} pages/s target): not measured.** The GPU time available to this project "
            "ran out before this benchmark could run; `python -m bench.ingest --random-weights --device cuda --no-baseline` "
            "on the GPU machine measures it (a random-weight MiniLM-architecture model stands in for the weights).", "",
        ]  # fmt: skip
    else:
        g = gpu["ours"]
        out += [
            f"H200: {g['pages_per_s']} pages/s ({verdict(g['pages_per_s'] >= TARGETS['gpu_pages_per_s'])}). "
            + provenance(gpu),
            "",
        ]
    return out


def ocr() -> list[str]:
    r = load("ocr-cpu")
    out = ["## OCR of scanned pages (CPU)", ""]
    if r is None or "cer" not in r:
        return [*out, "Not measured yet: run `python -m bench.ocr`.", ""]
    c = r["cer"]
    rows = [[lang, x["document"], ", ".join(str(p["page"]) for p in x["per_page"]), f"{x['chars']:,}", f"{x['cer']:.2%}", f"{max(p['cer'] for p in x['per_page']):.2%}"] for lang, x in c["languages"].items()]  # fmt: skip
    out += [
        "Scans made from real text: every 20th (English) or 15th (Chinese) page from page 5, rendered as 200-dpi grayscale JPEGs in image-only PDFs, read by the "
        "parser processes with `RAG_OCR=auto` (RapidOCR 3.10, PP-OCRv6 small, onnxruntime on the CPU) and compared "
        "with the text layer of the original pages. CER: edit distance over the original's characters, NFKC, "
        "whitespace removed; reading order counts.", "",
        table(["language", "document", "pages", "characters", "CER", "worst page"], rows), "",
        f"Speed in the same run: **{c['pages_per_s']} pages/s** ({c['ocr_pages']} pages in {c['wall_s']} s, one parser "
        f"process with {max(1, r['machine']['cpus'] - 1)} onnxruntime thread(s); load average "
        f"{c['load_average']['start'][0]} at the start, {c['load_average']['end'][0]} at the end, on "
        f"{r['machine']['cpus']} cores shared with other work)."
        + (f" A page costs **{c['cpu_s_per_page']} CPU-seconds** (the parser processes' CPU time): about what it takes "
           "on an idle core." if "cpu_s_per_page" in c else ""), "",
    ]  # fmt: skip
    if "retrieval" in r:
        q = r["retrieval"]
        rows = [
            [name, label, f[key]["pages"], f[key]["ocr_pages"], f[key]["chunks"], f[key]["ranks"]]
            for name, f in q["filings"].items()
            for label, key in (("original", "original"), ("image-only copy", "image_only"))
        ]
        out += [
            "Retrieval end to end: each filing, and an image-only copy of all its pages (scanned as above), ingested "
            "alone into a collection of its own; the filing's financebench questions; the rank of the first hit on an "
            "evidence page (top 10).", "",
            table(["filing", "ingested", "pages", "pages read by OCR", "chunks", "first-hit rank per question"], rows), "",
            f"All {q['original']['questions']} questions: hit@1 {q['original']['hit@1']} / hit@5 {q['original']['hit@5']} "
            f"from the originals, {q['image_only']['hit@1']} / {q['image_only']['hit@5']} from the scans.", "",
        ]  # fmt: skip
    if "odd" in r:
        o = r["odd"]
        read = ", ".join(f"`{n}` ({p})" for n, p in o["now_read"].items())
        out += [
            f"The odd corpus: {len(o['no_text_files'])} files have pages but no text on any of them; OCR now reads "
            f"{len(o['now_read'])}: {read}. The others are pictures, blank pages or forms without text"
            + (f"; not read: {', '.join(f'`{n}` ({e})' for n, e in o['errors'].items())}" if o["errors"] else "")
            + ".", "",
        ]  # fmt: skip
    return [*out, provenance(r), ""]


def generation() -> list[str]:
    r = load("generation-h200")
    out = ["## Generation on the H200 (7B architecture, random weights)", ""]
    if r is None:
        return [*out, "Not measured yet: run `python -m bench.generation` on the GPU machine.", ""]
    return [*out, r["table"], "", provenance(r), ""]


def web() -> list[str]:
    r = load("web-latency")
    if r is None:
        return []
    a = r["api_ask_extractive_ms"]
    return [
        "## Web app latency", "",
        f"`python app.py` to the first answer: {r['startup_to_first_answer_s']} s. `POST /api/ask` (extractive) over "
        f"{r['collection']}: median {a['median']} ms, p90 {a['p90']} ms ({a['questions']} questions).", "",
        provenance(r), "",
    ]  # fmt: skip


# ----- plots -------------------------------------------------------------------------------------------


def _curve_plot(ax, result: dict, systems: list, title: str) -> None:
    for label, key in systems:
        curve = result[key]["curve"]
        ax.plot(range(1, len(curve) + 1), curve, marker="o", label=label)
    ax.set_xlabel("k")
    ax.set_ylabel("hit@k")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)


def _stage_plot(ax, result: dict, systems: list, title: str) -> None:
    stages = ("parse", "chunk", "embed", "store")
    labels = [label for _, label in systems]
    left = [0.0] * len(systems)
    for stage in stages:
        values = [result[k]["stages_s"][stage] for k, _ in systems]
        ax.barh(labels, values, left=left, label=stage)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for i, (k, _) in enumerate(systems):
        ax.text(left[i], i, f"  wall {result[k]['seconds']:.0f} s, {result[k]['pages_per_s']:.1f} pages/s", va="center")
    ax.set_xlabel("seconds (stage sums; ours overlap parsing with embedding)")
    ax.set_xlim(0, max(left) * 1.6)
    ax.legend(loc="lower right")
    ax.set_title(title)


def draw(plots: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMAGES.mkdir(parents=True, exist_ok=True)
    for filename, painter, *args in plots:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        painter(ax, *args)
        fig.tight_layout()
        fig.savefig(IMAGES / filename, dpi=110)
        plt.close(fig)


def render(plots: list) -> str:
    """The page's markdown; ``plots`` collects the figures it refers to."""
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench.report` from `bench/results/*.json`; do not edit by hand. Each section names "
        "its result file, the machine and date it was measured on, and the command that reproduces it. The baseline "
        "is the LangChain tutorial pipeline (`PyPDFLoader` -> `RecursiveCharacterTextSplitter(1000, 200)` -> "
        "`Chroma.from_documents` with the same all-MiniLM-L6-v2 -> `similarity_search`), run in the same process as ours.",
        "",
        "Benchmark-only packages: `pip install -r requirements-bench.txt`. Corpora: `../shared/corpus/qa/` "
        "(or `RAG_TEST_CORPUS`).",
        "",
    ]
    for section in (
        financebench(plots),
        docugami(plots),
        finglm(),
        refusal(),
        ingest(plots),
        ocr(),
        generation(),
        web(),
    ):
        lines += section
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if docs/benchmarks.md is not what the results give"
    )
    args = parser.parse_args()
    plots: list = []
    page = render(plots)
    target = DOCS / "benchmarks.md"
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != page:
            raise SystemExit("docs/benchmarks.md is out of date: run python -m bench.report")
        print("docs/benchmarks.md matches bench/results/")
        return
    draw(plots)
    DOCS.mkdir(exist_ok=True)
    target.write_text(page, encoding="utf-8")
    print(f"wrote docs/benchmarks.md and {len(plots)} plots under docs/images/")


if __name__ == "__main__":
    main()
