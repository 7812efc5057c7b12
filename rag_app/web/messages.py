"""What the page says, in both of its languages. The page is bilingual (its labels read "English / 中文"),
so every message it shows is too: toasts, notes, the progress of an upload, the summary's notices. No
Chinese message embeds an English reason: where the library's reason is English, the Chinese half says
what happened and points at it."""

from __future__ import annotations

from rag_app.ingestion.progress import ProgressSnapshot


def both(en: str, zh: str) -> str:
    return f"{en} / {zh}"


TYPE_A_QUESTION = both("Type a question first", "请输入问题")
CHOOSE_FILES = both("Choose PDF, .txt or .md files to upload first", "请先选择要上传的 PDF、.txt 或 .md 文件")
BAD_COLLECTION = both(
    "Collection names use letters, digits, '_' and '-' (up to 63 characters)",
    "文档集名称只能使用字母、数字、“_”和“-”（最多 63 个字符）",
)
CHOOSE_TO_SUMMARIZE = both("Tick at least one document above", "请先在上方勾选至少一个文档")
NO_DOCUMENTS_TO_SUMMARIZE = both("No documents yet: upload some on the Documents tab", "还没有文档：请先在“文档”页上传")
EMPTY_LIBRARY = (
    "### No documents yet / 还没有文档\n"
    "Upload PDFs (or .txt and .md files) first, then ask about them here.\n\n"
    "请先上传 PDF（或 .txt、.md 文件），再在这里提问。"
)
NO_SOURCES = both("No sources yet. Ask a question about your documents.", "还没有来源。请就文档提问。")
VIEWER_HINT = both(
    "Open a source to see its page here, the passage highlighted.", "点开来源即可在此查看该页，引文已高亮。"
)
ERROR_ZH = "出错了：原因见上方英文说明。"


def failed_files(failed: int, total: int) -> str:
    return both(
        f"{failed} of {total} files could not be ingested: see the report",
        f"{total} 个文件中有 {failed} 个未能导入：见导入结果",
    )


def deleted(name: str) -> str:
    return both(f"Deleted {name}", f"已删除 {name}")


def not_deleted(reason: str) -> str:
    return both(reason, "删除失败：原因见英文说明")


def error(reason: str) -> str:
    """A failed request in the chat: the library's reason, then the Chinese line."""
    return f"⚠ {reason}\n⚠ {ERROR_ZH}"


def summary_note(pages: int, parts: int, rounds: int, model: str, seconds: float | None) -> str:
    timing = f" · {seconds:.1f} s" if seconds else ""
    return (
        f"summary of {pages} pages · {parts} parts · {rounds} combining rounds · model {model}{timing}\n\n"
        f"{pages} 页的摘要 · {parts} 个部分 · {rounds} 轮合并 · 模型 {model}"
    )


def page_guide_note(quoted: int, pages: int) -> str:
    return (
        f"**No summary: no answer model is loaded.** Below: the heading and first sentence of {quoted} of {pages} "
        f"pages, quoted.\n\n**未生成摘要：没有加载问答模型。** 下面引用 {pages} 页中 {quoted} 页的标题和第一句。"
    )


def summarize_request(names: list[str]) -> str:
    return f"Summarize / 总结: {', '.join(names)}"


# ----- upload progress ------------------------------------------------------------------------------

STAGES = {
    "starting": ("Starting: checking the files", "准备中：正在检查文件"),
    "reading": ("Reading {subject}: page {done} of {of}", "正在读取 {subject}：第 {done}/{of} 页"),
    "ocr": (
        "Reading {subject} by OCR: page {current} of {of}{taking}",
        "正在识别（OCR）{subject}：第 {current}/{of} 页{taking_zh}",
    ),
    "chunking": ("Splitting {subject} into passages: {done}%", "正在切分 {subject}：{done}%"),
    "embedding": (
        "Embedding {subject}{more}: {done} of {of} passages",
        "正在向量化 {subject}{more_zh}：第 {done}/{of} 段",
    ),
    "storing": ("Storing {subject}{more} ({of} passages)", "正在保存 {subject}{more_zh}（{of} 段）"),
    "done": ("Finishing", "即将完成"),
}


def progress_lines(p: ProgressSnapshot) -> tuple[str, str]:
    """What an upload is doing now, in English and in Chinese: the stage, the share done, the files done and,
    once it can be estimated, the time left."""
    en, zh = STAGES[p.stage]
    values = {
        "subject": p.subject, "done": f"{p.done:,}", "of": f"{p.of:,}",
        "more": f" and {p.more} more file{'s' * (p.more > 1)}" if p.more else "",
        "more_zh": f" 等 {p.more + 1} 个文件" if p.more else "",
        # OCR reads a page in seconds (7 CPU-seconds, more on a busy machine): how long this one has taken so far
        "current": min(p.done + 1, p.of), "taking": f" ({p.step_seconds:.0f} s on it)" if p.step_seconds >= 3 else "",
        "taking_zh": f"（已用 {p.step_seconds:.0f} 秒）" if p.step_seconds >= 3 else "",
    }  # fmt: skip
    en, zh = en.format(**values), zh.format(**values)
    share = f"{p.fraction:.0%} · " if p.fraction is not None else ""
    files = (f"{p.files_done} of {p.files_total} files done", f"已完成 {p.files_done}/{p.files_total} 个文件")
    left = time_left(p.seconds_left)
    return (
        f"{share}{files[0]} · {en}" + (f" · {left[0]}" if left else ""),
        f"{share}{files[1]} · {zh}" + (f" · {left[1]}" if left else ""),
    )


def time_left(seconds: float | None) -> tuple[str, str] | None:
    """ "about 40 s left" (to 5 s) under two minutes, "about 3 min left" above."""
    if seconds is None:
        return None
    if seconds < 120:
        rounded = max(5, int(5 * round(seconds / 5)))
        return f"about {rounded} s left", f"约剩 {rounded} 秒"
    minutes = round(seconds / 60)
    return f"about {minutes} min left", f"约剩 {minutes} 分钟"
