"""HTML and table rows for the web page: the sources panel, the status line, ingest reports."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from rag_app.answering.events import Answer, Source, StatusEvent
from rag_app.health import Health, ModelState
from rag_app.ingestion.progress import ProgressSnapshot
from rag_app.records import DocumentInfo, IngestReport
from rag_app.text.highlight import matching_spans
from rag_app.web import markup, messages
from rag_app.web.viewer import viewer_link

REPORT_HEADERS = ["file", "status", "pages", "chunks", "pages without text", "seconds", "reason / note"]
DOCUMENT_HEADERS = ["name", "pages", "chunks", "read by", "sha256", "ingested at"]
VIEWER_FRAME = "rag-pdf"


NO_DOCUMENTS = {
    "en": "No documents yet: add PDFs on the Documents tab.",
    "zh": "还没有文档：请先在“文档 / Documents”页添加 PDF。",
}


def no_documents_text(question: str) -> str:
    """What the chat says to a question asked before any document was added, in the question's language."""
    from rag_app.prompts import detect_language

    return NO_DOCUMENTS[detect_language(question)]


def highlighted(text: str, question: str) -> str:
    """The chunk text, escaped, with the parts that match the question in <mark>."""
    out, last = [], 0
    for start, end in matching_spans(question, text):
        out.append(html.escape(text[last:start]))
        out.append(f'<mark class="rag-hit">{html.escape(text[start:end])}</mark>')
        last = end
    out.append(html.escape(text[last:]))
    return "".join(out)


def document_link(name: str, page: int, base: str = "") -> str:
    """Link to the stored file at a page (PDF viewers honour #page=N). ``base`` is the app's URL as the
    browser reaches it, so the link also works from a page that embeds the app as a web component."""
    return f"{base}api/documents/{quote(name)}/file#page={page}"


def page_text(page: int, label: str | None = None) -> str:
    """ "p. 10", or "p. 10 (printed 7)" where the PDF labels its pages."""
    return f"p. {page}" + (f" (printed {label})" if label and label != str(page) else "")


def source_card(
    source: Source, question: str, base: str = "", label: str | None = None, quote: str = "",
    collection: str | None = None,
) -> str:  # fmt: skip
    """One source: [n], file and page opening the viewer beside it (the cited passage highlighted), and its text."""
    hit = source.hit
    kind = "cited" if source.cited else "retrieved"
    tag = "cited" if source.cited else "retrieved, not cited"
    link = viewer_link(hit.file, hit.page, quote or hit.text, base, label, collection)
    head = (
        f'<span class="rag-n">[{source.n}]</span> '
        f'<a class="rag-open" href="{html.escape(link)}" target="{VIEWER_FRAME}">'
        f"{html.escape(hit.file)}, {page_text(hit.page, label)}</a>"
        f'<span class="rag-tag {kind}">{tag}</span>'
        f' <a class="rag-file" href="{html.escape(document_link(hit.file, hit.page, base))}" target="_blank" '
        f'rel="noopener" title="open the file in a new tab">↗</a>'
    )
    return (
        f'<div class="rag-source {kind}" id="rag-source-{source.n}" data-n="{source.n}" '
        f'data-file="{html.escape(hit.file)}" data-page="{hit.page}">'
        f'<div class="rag-source-head">{head}</div>'
        f'<div class="rag-source-text">{highlighted(hit.text, question)}</div></div>'
    )


def quoted_passages(answer: Answer | None) -> dict[int, str]:
    """Source number -> the first passage the answer quotes from it (what the viewer highlights)."""
    quotes: dict[int, str] = {}
    for text, n in re.findall(r"“([^”]+)”\s*\[(\d+)\]", answer.answer if answer else ""):
        quotes.setdefault(int(n), text)
    return quotes


def sources_html(
    sources: list[Source], question: str, answer: Answer | None = None, base: str = "",
    labels: dict[int, str] | None = None, collection: str | None = None,
) -> str:  # fmt: skip
    """The sources panel: cited sources first, then those retrieved but not cited."""
    if not sources:
        return f'<div class="rag-sources"><em>{html.escape(messages.NO_SOURCES)}</em></div>'
    ordered = sorted(sources, key=lambda s: (not s.cited, s.n)) if answer else sources
    notes = []
    if answer and answer.invalid_citations:
        notes.append(f"Removed citations of sources that were not given: {', '.join(answer.invalid_citations)}.")
    if answer and answer.unverified_quotes:
        notes.append("Quotes not found in the cited sources: " + "; ".join(answer.unverified_quotes))
    note_html = "".join(f'<div class="rag-note">{html.escape(n)}</div>' for n in notes)
    labels, quotes = labels or {}, quoted_passages(answer)
    cards = "".join(source_card(s, question, base, labels.get(s.n), quotes.get(s.n, ""), collection) for s in ordered)
    return f'<div class="rag-sources">{note_html}{cards}</div>'


def viewer_frame_html(generation: int = 0) -> str:
    """Where an opened source shows: PDF.js in an iframe the source links target. A new ``generation`` is a
    new, empty iframe (a new chat clears the page the last one opened): its ``src`` changes, so the page's
    update navigates even an iframe it keeps."""
    src = f' src="about:blank#{generation}"' if generation else ""
    return (
        f'<div class="rag-viewer-hint" data-generation="{generation}">{html.escape(messages.VIEWER_HINT)}</div>'
        f'<iframe name="{VIEWER_FRAME}" id="{VIEWER_FRAME}" class="rag-viewer" title="source viewer"{src}></iframe>'
    )


def progress_html(snapshot: ProgressSnapshot | None) -> str:
    """An upload's progress: a bar and what it is doing, in both languages (empty when none runs)."""
    if snapshot is None:
        return ""
    en, zh = messages.progress_lines(snapshot)
    width = f"{100 * snapshot.fraction:.1f}%" if snapshot.fraction is not None else "0%"
    return (
        f'<div class="rag-progress" role="status" data-stage="{snapshot.stage}" data-files-done="{snapshot.files_done}">'
        f'<div class="rag-progress-bar"><div style="width: {width}"></div></div>'
        f'<div class="rag-progress-line">{html.escape(en)}</div>'
        f'<div class="rag-progress-line zh">{html.escape(zh)}</div></div>'
    )


def link_citations(answer_html: str) -> str:
    """[n] in an answer (already safe HTML) as a link that brings source n into view and opens it in the viewer."""
    return re.sub(r"\[(\d+)\]", r'<a class="rag-cite" href="#rag-source-\1">[\1]</a>', answer_html)


def status_markdown(health: Health) -> str:
    """The status line: model, quantization, device, engine, embedding, collection; a banner when extractive."""
    model = health.model
    if not health.model_state.settled:
        model_text = "⏳ loading the answer model… / 正在加载问答模型…"
    elif model:
        model_text = f"**{model['name']}** · {model['quantization']} · {model['device']}" + (
            f" · {model['engine']} engine" if model.get("engine") else ""
        )
    else:
        model_text = "**no answer model / 无问答模型** (extractive / 抽取模式)"
    check = (model or {}).get("fast_path_check") or {}
    if check.get("verdict") == "disagreed":
        model_text += (
            " · ⚠ the fast path failed its self-check and decodes eagerly (slower): "
            f"{html.escape(check.get('reason', ''))}"
        )
    chinese = f", Chinese: {health.embedding.chinese}" if health.embedding.chinese else ""
    line = (
        f"Model / 模型: {model_text} &nbsp;|&nbsp; Embeddings / 向量模型: {health.embedding.model} "
        f"({health.embedding.device}){chinese} &nbsp;|&nbsp; Collection / 文档集: **{health.collection}** "
        f"({health.documents} documents / 个文档)"
    )
    banner = model_banner(health)
    problems = [f"⚠ **Store degraded:** {html.escape(problem)}" for problem in health.problems]
    return "\n\n".join([line, *problems, *([banner] if banner else [])])


def model_banner(health: Health) -> str:
    """Plain words about the answer mode: what it is, what it means for answers, the one setting that changes
    it. The raw reason (an exception's text) waits behind a "details" fold; the log has it too."""
    if health.model_state is ModelState.EXTRACTIVE:
        reason = health.no_model_reason or "no model is configured"
        chosen = "RAG_LLM_BACKEND=extractive" in reason or "extractive was requested" in reason
        why = "You chose it (RAG_LLM_BACKEND=extractive)." if chosen else "No answer model could be loaded."
        why_zh = "这是您的设置（RAG_LLM_BACKEND=extractive）。" if chosen else "没有能加载的问答模型。"
        text = (
            f"<b>Extractive mode.</b> {why} Answers quote the sentences of your documents that best match the "
            "question, each with its source; nothing is written or summarised. For written answers, set "
            "<code>RAG_LLM_MODEL</code> to a local model folder and restart.<br>"
            f"<b>抽取模式。</b>{why_zh}回答引用文档中与问题最匹配的句子并注明来源，不生成、不总结文字。"
            "如需生成回答，请把 <code>RAG_LLM_MODEL</code> 设为本地模型目录并重启。"
        )
    elif health.model_state is ModelState.FAILED:
        reason = health.no_model_reason or "unknown error"
        text = (
            "<b>The answer model could not be loaded</b>, so questions cannot be answered. Check "
            "<code>RAG_LLM_MODEL</code> (or <code>RAG_LLM_ENDPOINT</code>) and restart.<br>"
            "<b>问答模型无法加载</b>，因此无法回答问题。请检查 <code>RAG_LLM_MODEL</code>"
            "（或 <code>RAG_LLM_ENDPOINT</code>）并重启。"
        )
    else:
        return ""
    details = f"<details><summary>details / 详情</summary><code>{html.escape(reason)}</code></details>"
    return f'<div class="rag-banner">⚠ {text}{details}</div>'


def report_rows(report: IngestReport) -> list[list]:
    return [
        [f.name, f.status.value, f.pages, f.chunks, len(f.empty_pages), round(f.seconds, 1), f.reason or f.note or ""]
        for f in report.files
    ]


def document_rows(documents: list[DocumentInfo]) -> list[list]:
    return [[d.name, d.pages, d.chunks, read_by(d), d.sha256[:12], d.ingested_at] for d in documents]


def read_by(document: DocumentInfo) -> str:
    """The embedding model that read a document: the Chinese one (RAG_EMBEDDING_MODEL_ZH) or the main one."""
    return document.reader or document.embedding.split("|")[0].rstrip("/").split("/")[-1]


def answer_html(answer) -> str:
    """An extractive answer is document text: shown as text. A model's answer keeps its (safe) markdown."""
    return markup.text_html(answer.answer) if answer.strategy == "extractive" else markup.model_html(answer.answer)


def status_note(event: StatusEvent) -> str:
    """A status event in the note under the chat: English, and Chinese where the event has it."""
    return f"… {event.message}" + (f" / {event.zh}" if event.zh else "")


def answer_note(answer) -> str:
    """The note under a finished answer: strategy, model, time, and warnings the banner does not give."""
    parts = [f"strategy **{answer.strategy}** ({answer.strategy_reason})", f"model {answer.model}"]
    if answer.timings.get("total_ms"):
        parts.append(f"{answer.timings['total_ms'] / 1000:.1f} s")
    note = " · ".join(parts)
    warnings = [w for w in answer.warnings if not w.startswith("extractive mode")]  # the banner says it
    if warnings:
        note += "\n\n" + "\n".join(f"⚠ {w}" for w in warnings)
    return note


def summary_note(summary) -> str:
    """The note under a finished summary, in both languages."""
    s = summary.stats
    seconds = summary.timings.get("total_ms", 0) / 1000
    note = messages.summary_note(s.pages, s.parts, s.rounds, summary.model, seconds)
    return note + "".join(f"\n\n⚠ {w}" for w in summary.warnings if not w.startswith("no summary"))
