"""Retrieval quality, ours against the LangChain tutorial pipeline, in the same run.

* financebench_dev, page level: a question is a hit at k when a top-k chunk lies on one
  of its evidence pages; hit@1/5/10 and MRR (first hit within the top 10).
* docugami_sec10q, document level: hit@k when a top-k chunk comes from one of the answer's
  source documents; by question type and by chunk type (text, table).
* finglm_zh_mini, page level, Chinese: what the default English embedder does (it is not
  meant for Chinese; configure a multilingual model by name for Chinese documents).
* enterprise_rag_challenge_r1, refusal: does the best retrieval score separate answerable
  questions from those whose answer is "N/A"? ROC AUC and the threshold that separates best.

    python -m bench.retrieval                        # every set
    python -m bench.retrieval --sets financebench,docugami
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import CORPUS, ROOT, write_result
from rag_app.service import RagService
from rag_app.settings import Settings

QA = CORPUS / "qa"
DATA = ROOT / "bench" / ".data"
K_MAX = 10
COMMAND = "python -m bench.retrieval --sets {}"
SEPARATES_AUC = 0.8


# ----- metrics -------------------------------------------------------------------------------


def first_hit_rank(retrieved: list, relevant) -> int | None:
    """1-based rank of the first retrieved item that ``relevant`` accepts, or None."""
    for rank, item in enumerate(retrieved, 1):
        if relevant(item):
            return rank
    return None


def hit_metrics(ranks: list[int | None], ks=(1, 3, 5, 10)) -> dict:
    n = len(ranks) or 1
    metrics = {f"hit@{k}": round(sum(1 for r in ranks if r and r <= k) / n, 3) for k in ks}
    metrics["mrr"] = round(sum(1 / r for r in ranks if r) / n, 3)
    metrics["questions"] = len(ranks)
    metrics["curve"] = [round(sum(1 for r in ranks if r and r <= k) / n, 3) for k in range(1, K_MAX + 1)]
    return metrics


def roc_auc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def best_threshold(positives: list[float], negatives: list[float]) -> tuple[float, float]:
    """(threshold, Youden's J): the cut that best separates positives (above) from negatives."""
    best = (0.0, -1.0)
    for t in sorted(set(positives + negatives)):
        tpr = sum(p >= t for p in positives) / len(positives)
        fpr = sum(n >= t for n in negatives) / len(negatives)
        if tpr - fpr > best[1]:
            best = (t, tpr - fpr)
    return round(best[0], 4), round(best[1], 3)


# ----- systems under test --------------------------------------------------------------------


@dataclass
class Ours:
    service: RagService

    def search(self, question: str, k: int, mode: str = "hybrid", files=None):
        self.service.settings.retrieval = mode
        return self.service.search(question, k, files).hits


def ours_for(collection: str, sources: list[Path]) -> tuple[Ours, dict]:
    service = RagService(Settings(_env_file=None, data_dir=DATA, collection=collection))
    started = time.perf_counter()
    report = service.ingest(sources)
    failed = [f"{f.name}: {f.reason}" for f in report.files if f.status.value == "failed"]
    return Ours(service), {"seconds": round(time.perf_counter() - started, 1), "failed": failed}


def baseline_for(name: str, pdfs: list[Path]):
    from bench.baseline import TutorialPipeline
    from rag_app.embeddings import resolve_embedding_model

    pipeline = TutorialPipeline(
        DATA / "baseline" / name, resolve_embedding_model("sentence-transformers/all-MiniLM-L6-v2")
    )
    if not pipeline.open():
        run = pipeline.ingest(pdfs)
        logging.info("baseline %s: %d pages, %d chunks, failed %s", name, run.pages, run.chunks, run.failed)
    return pipeline


def pages_of(hits) -> list[tuple[str, int]]:
    return [(h.file, h.page) for h in hits]


# ----- the sets ------------------------------------------------------------------------------------


def financebench() -> dict:
    folder = QA / "financebench_dev"
    rows = [json.loads(line) for line in (folder / "qa.jsonl").open(encoding="utf-8")]
    pdfs = sorted((folder / "pdfs").glob("*.pdf"))
    ours, ingest = ours_for("financebench", [folder / "pdfs"])
    baseline = baseline_for("financebench", pdfs)
    evidence = [{(f"{e['doc_name']}.pdf", int(e["page_number1"])) for e in r["evidence"]} for r in rows]
    systems = {
        "ours": lambda q: pages_of(ours.search(q, K_MAX)),
        "ours_dense": lambda q: pages_of(ours.search(q, K_MAX, "dense")),
        "baseline": lambda q: baseline.search(q, K_MAX),
    }
    result = {name: hit_metrics([first_hit_rank(run(r["question"]), ev.__contains__) for r, ev in zip(rows, evidence, strict=True)]) for name, run in systems.items()}  # fmt: skip
    result["ratio_hit@5"] = round(result["ours"]["hit@5"] / max(result["baseline"]["hit@5"], 1e-9), 2)
    result["ratio_mrr"] = round(result["ours"]["mrr"] / max(result["baseline"]["mrr"], 1e-9), 2)
    return {"level": "page", "ingest": ingest, **result}


def docugami() -> dict:
    folder = QA / "docugami_sec10q" / "data" / "v1"
    with (folder / "qna_data.csv").open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    pdfs = sorted((folder / "docs").glob("*.pdf"))
    ours, ingest = ours_for("docugami", [folder / "docs"])
    baseline = baseline_for("docugami", pdfs)
    systems = {
        "ours": lambda q: [h.file for h in ours.search(q, K_MAX)],
        "ours_dense": lambda q: [h.file for h in ours.search(q, K_MAX, "dense")],
        "baseline": lambda q: [f for f, _ in baseline.search(q, K_MAX)],
    }
    result = {"level": "document", "ingest": ingest}
    for name, run in systems.items():
        ranks = []
        for row in rows:
            patterns = [p.strip() for p in row["Source Docs"].split(",")]
            ranks.append(
                first_hit_rank(run(row["Question"]), lambda f, ps=patterns: any(fnmatch.fnmatch(f, p) for p in ps))
            )
        result[name] = _by_group(rows, ranks)
    return result


def _by_group(rows: list[dict], ranks: list) -> dict:
    groups = {"all": list(range(len(rows)))}
    for key, label in (("Question Type", "type"), ("Source Chunk Type", "chunk")):
        for i, row in enumerate(rows):
            groups.setdefault(f"{label}: {row[key]}", []).append(i)
    return {group: hit_metrics([ranks[i] for i in members]) for group, members in groups.items()}


def finglm() -> dict:
    folder = QA / "finglm_zh_mini"
    rows = [json.loads(line) for line in (folder / "qa_subset_with_available_pdfs.jsonl").open(encoding="utf-8")]
    pdfs = sorted(p for p in (folder / "pdfs").iterdir() if p.is_file())
    ours, ingest = ours_for("finglm", pdfs)
    ranks = {"ours": [], "ours_dense": []}
    for row in rows:
        pages = row["pages_containing_key_strings_1based"]
        wanted = {(Path(row["pdf_file"]).name, p) for p in (json.loads(pages) if isinstance(pages, str) else pages)}
        for name, mode in (("ours", "hybrid"), ("ours_dense", "dense")):
            ranks[name].append(first_hit_rank(pages_of(ours.search(row["question"], K_MAX, mode)), wanted.__contains__))
    return {
        "level": "page (key-string pages, not gold annotations)",
        "embedding_model": ours.service.settings.embedding_model,
        "note": "all-MiniLM-L6-v2 is an English model: these figures show what it does on Chinese, not a "
        "recommendation. For Chinese documents set RAG_EMBEDDING_MODEL to a multilingual model by name "
        "(for example BAAI/bge-m3 or intfloat/multilingual-e5-small); none is available offline here.",
        "ingest": ingest,
        **{name: hit_metrics(r) for name, r in ranks.items()},
    }


def refusal() -> dict:
    folder = QA / "enterprise_rag_challenge_r1" / "round1"
    answers = json.loads((folder / "answers.json").read_text(encoding="utf-8"))
    names = {row["sha1"]: row["name"] for row in csv.DictReader((folder / "dataset.csv").open(encoding="utf-8"))}
    present = {sha: name for sha, name in names.items() if (folder / "pdfs" / f"{sha}.pdf").exists()}
    ours, ingest = ours_for("erc", [folder / "pdfs"])
    scores = {"all documents": ([], []), "the company's report": ([], [])}
    used = []
    for row in answers:
        company = _company(row["question"], present)
        if company is None:
            continue
        unanswerable = row["answer"] == ["N/A"] or row["answer"] == "N/A"
        for scope, files in (("all documents", None), ("the company's report", [f"{company}.pdf"])):
            top = max((h.score for h in ours.search(row["question"], 5, "dense", files)), default=0.0)
            scores[scope][1 if unanswerable else 0].append(top)
        used.append({"question": row["question"], "unanswerable": unanswerable})
    result = {"questions": len(used), "unanswerable": sum(u["unanswerable"] for u in used), "ingest": ingest}
    for scope, (pos, neg) in scores.items():
        threshold, j = best_threshold(pos, neg)
        result[scope] = {
            "roc_auc": round(roc_auc(pos, neg), 3), "best_threshold": threshold, "youden_j": j,
            "mean_score_answerable": round(sum(pos) / max(len(pos), 1), 3),
            "mean_score_unanswerable": round(sum(neg) / max(len(neg), 1), 3),
        }  # fmt: skip
    auc = result["the company's report"]["roc_auc"]
    result["separates"] = auc >= SEPARATES_AUC
    result["conclusion"] = (
        f"ROC AUC {auc} on {len(used)} questions: the best retrieval score "
        + ("separates" if result["separates"] else "does not separate")
        + f" answerable from unanswerable questions well enough (the bar here: AUC >= {SEPARATES_AUC}). "
        + ("A threshold is worth exposing." if result["separates"] else
           "A score threshold would refuse answerable questions about as often as it catches unanswerable ones, "
           "so rag_app does not refuse on it; the prompts tell the model to say when the sources do not answer.")
    )  # fmt: skip
    return result


def _company(question: str, present: dict[str, str]) -> str | None:
    """The sha1 of the single available report whose company the question names in quotes."""
    quoted = re.findall(r'"([^"]+)"', question)
    matches = [
        sha for sha, name in present.items() for q in quoted if q.lower() in name.lower() or name.lower() in q.lower()
    ]
    return matches[0] if len(set(matches)) == 1 else None


SETS = {"financebench": financebench, "docugami": docugami, "finglm": finglm, "refusal": refusal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in args.sets.split(","):
        started = time.perf_counter()
        result = SETS[name]()
        result["command"] = COMMAND.format(name)
        result["seconds"] = round(time.perf_counter() - started, 1)
        path = write_result(f"retrieval-{name}", result)
        print(f"{name}: {json.dumps({k: v for k, v in result.items() if k != 'ingest'})[:1500]}")
        print(f"wrote {Path(path).relative_to(ROOT)}", flush=True)


if __name__ == "__main__":
    main()
