"""The Gradio page (the only module that imports gradio): documents, chat with streaming
answers, the sources and the PDF viewer beside it, and a status line. Handlers only call RagService.
Every message the page shows is in both of its languages (:mod:`rag_app.web.messages`)."""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path

import gradio as gr

from rag_app.answering.events import DoneEvent, SourcesEvent, StatusEvent, TokenEvent
from rag_app.errors import RagError
from rag_app.requests import AskRequest, SummaryRequest
from rag_app.service import RagService
from rag_app.settings import STRATEGY_NAMES, Settings, collection_name_problem
from rag_app.summaries.page_guide import guide_text
from rag_app.summaries.summarizer import NEEDS_MODEL, NO_GUIDE
from rag_app.web import markup, messages, render
from rag_app.web.ingest_stream import ingest_updates
from rag_app.web.page_assets import CSS, PAGE_JS
from rag_app.web.redact import public_answer, public_record

log = logging.getLogger(__name__)
STATUS_REFRESH_S = 3.0
STATUS_GROUP = "status"  # the queue group of the events that write the status line from the session

# What --mcp offers an agent: the Gradio API endpoints of answer_question and list_documents.
MCP_ENDPOINTS = {"/answer_question", "/list_documents"}


def keeping_upload_names(files: gr.File) -> gr.File:
    """``files``, handing its handler each file's path with the name it was uploaded under (``orig_name``):
    Gradio's cached copy drops characters such as ``:``, ``?`` and ``$`` from the name, and the stored document
    keeps what the file system allows. (On the instance: a subclass of gr.File makes Gradio write a .pyi file
    beside this module.)"""
    process = files._process_single_file

    def with_name(data):
        path = process(data)
        path.orig_name = data.orig_name or Path(str(path)).name
        return path

    files._process_single_file = with_name
    return files


def upload_name(path) -> str:
    return getattr(path, "orig_name", None) or Path(str(path)).name


def new_session(settings: Settings) -> dict:
    """Per-browser-session state: the chosen collection and this conversation's turns."""
    return {"collection": settings.collection, "turns": []}


class ChatPage:
    """Builds the page and holds its handlers; every handler gets the session's own state."""

    def __init__(self, service: RagService, links=None) -> None:
        self.service = service
        self.settings = service.settings
        self.links = links  # PublicLinks: where browsers reach the app (for the embed snippets)

    # ----- tools for agents (MCP) and API clients ---------------------------------------------

    def answer_question(self, question: str, k: int = 4, strategy: str = "auto") -> str:
        """Answer a question from the documents in this app, citing file and page.

        Args:
            question: The question, in English or Chinese.
            k: How many passages to retrieve (1-20).
            strategy: auto, stuff, map_reduce, refine, map_rerank or extractive.

        Returns:
            JSON: the answer text with [n] citations, and the numbered sources (file, page, text, score, cited).
        """
        request = AskRequest.of(self.settings, question=question, strategy=strategy, k=int(k))
        data = public_answer(self.service.answer(request).to_dict())
        keep = ("answer", "sources", "strategy", "model", "cited", "warnings")
        return json.dumps({key: data[key] for key in keep}, ensure_ascii=False)

    def list_documents(self) -> str:
        """List the documents stored in this app.

        Returns:
            JSON list: name, pages, chunks, sha256 and ingestion time of each document.
        """
        return json.dumps([public_record(d.to_dict()) for d in self.service.list_documents()], ensure_ascii=False)

    # ----- chat -----------------------------------------------------------------------------

    def ask(
        self, question: str, chat: list, strategy: str, k: float, files: list | None, session: dict,
        request: gr.Request | None = None,
    ):  # fmt: skip
        """Stream the answer into the chat and the sources beside it."""
        base = self.app_url(request)
        question = (question or "").strip()
        if not question:
            gr.Warning(messages.TYPE_A_QUESTION)
            yield gr.update(), chat, gr.update(), "", session
            return
        chat = [*chat, {"role": "user", "content": markup.text_html(question)}, {"role": "assistant", "content": ""}]
        if not self.has_documents(session["collection"]):
            chat[-1]["content"] = markup.text_html(render.no_documents_text(question))
            yield "", chat, render.sources_html([], question), "", session
            return
        panel, note, text = render.sources_html([], question), "", ""
        try:
            request = AskRequest.of(
                self.settings, question=question, strategy=strategy, k=int(k), files=files or None,
                history=list(session["turns"]),
            )  # fmt: skip
            for event in self.service.ask(request, session["collection"]):
                if isinstance(event, TokenEvent):
                    text += event.text
                    chat[-1]["content"] = markup.model_html(text)
                elif isinstance(event, SourcesEvent):
                    panel = render.sources_html(event.sources, question, base=base)
                elif isinstance(event, StatusEvent):
                    note = render.status_note(event)
                elif isinstance(event, DoneEvent):
                    answer = event.answer
                    chat[-1]["content"] = render.link_citations(render.answer_html(answer))
                    panel = render.sources_html(
                        answer.sources, question, answer, base, self.page_labels(answer.sources, session["collection"]),
                        session["collection"],
                    )  # fmt: skip
                    note = render.answer_note(answer)
                    session = {**session, "turns": [*session["turns"], [question, answer.answer]]}
                yield "", chat, panel, note, session
        except RagError as exc:
            chat[-1]["content"] = markup.text_html(messages.error(str(exc)))
            yield "", chat, panel, "", session

    def choose_summary(self, files: list | None, session: dict):
        """Summarize opens its own list of the stored documents, the ones to summarize ticked: those chosen in
        the chat's document filter, or the only one."""
        stored = self.document_names(session["collection"])
        chosen = [f for f in files or [] if f in stored] or (stored if len(stored) == 1 else [])
        hint = "" if stored else messages.NO_DOCUMENTS_TO_SUMMARIZE
        return gr.update(visible=True), gr.update(choices=stored, value=chosen), hint

    def summarize(self, chat: list, names: list | None, session: dict, request: gr.Request | None = None):
        """Stream a summary of every page of the ticked documents into the chat; without a model, say there is
        none and quote each page's heading and first sentence."""
        names = list(names or [])
        if not names:  # said where the choice is made, not in a toast that vanishes
            yield chat, gr.update(), gr.update(), session, gr.update(visible=True), messages.CHOOSE_TO_SUMMARIZE
            return
        base, name = self.app_url(request), session["collection"]
        chat = [*chat, {"role": "user", "content": markup.text_html(messages.summarize_request(names))}]
        chat.append({"role": "assistant", "content": ""})
        panel, note, text = render.sources_html([], ""), "", ""
        try:
            for event in self.service.summarize(SummaryRequest.of(self.settings, files=names), name):
                if isinstance(event, TokenEvent):
                    text += event.text
                    chat[-1]["content"] = markup.model_html(text)
                elif isinstance(event, StatusEvent):
                    note = render.status_note(event)
                elif event.kind == "done":
                    chat[-1]["content"], panel, note = self._finished_summary(event.summary, names, base)
                yield chat, panel, note, session, gr.update(visible=False), ""
        except RagError as exc:
            chat[-1]["content"] = markup.text_html(messages.error(str(exc)))
            yield chat, panel, "", session, gr.update(visible=False), ""

    def _finished_summary(self, summary, names: list[str], base: str) -> tuple[str, str, str]:
        """(chat message, sources panel, note) of a finished summary; without a model the notice in both
        languages, then the page guide as text (it quotes the documents)."""
        if summary.mode == "page_guide":
            quoted = len({(e.file, e.page) for e in summary.page_guide})
            listing = guide_text(summary.page_guide, len(summary.files) > 1, summary.language)
            listing = listing or f"{NO_GUIDE['en']}\n{NO_GUIDE['zh']}"  # tables and covers only
            message = markup.text_html(f"{NEEDS_MODEL['en']}\n{NEEDS_MODEL['zh']}\n\n{listing}")
            return message, render.sources_html([], ""), messages.page_guide_note(quoted, summary.stats.pages)
        answer = summary.as_answer(messages.summarize_request(names))
        panel = render.sources_html(answer.sources, "", answer, base=base)
        return markup.model_html(answer.answer), panel, render.summary_note(summary)

    def page_labels(self, sources, collection: str) -> dict[int, str]:
        """Source number -> the page label printed in its PDF, where the PDF defines labels."""
        from rag_app.ingestion.page_labels import page_label

        labels = {}
        for source in sources:
            try:
                label = page_label(self.service.document_file(source.hit.file, collection), source.hit.page)
            except RagError:
                continue
            if label:
                labels[source.n] = label
        return labels

    def document_names(self, collection: str) -> list[str]:
        return (
            [d.name for d in self.service.list_documents(collection)]
            if collection in self.service.collections()
            else []
        )

    def has_documents(self, collection: str) -> bool:
        """Whether the collection holds any document yet (asking before the first upload gets a plain answer)."""
        return bool(self.document_names(collection))

    def app_url(self, request: gr.Request | None) -> str:
        """The app's base URL as this browser reaches it (through a proxy, from an embedding page)."""
        if request is None:
            return ""
        headers = request.headers
        host = headers.get("x-forwarded-host") or headers.get("host")
        scheme = headers.get("x-forwarded-proto") or request.request.url.scheme
        return f"{scheme}://{host}{self.settings.root_path or ''}/" if host else ""

    def clear(self, session: dict):
        """A new chat: no messages, no sources, an empty viewer, the summary's list closed."""
        cleared = session.get("cleared", 0) + 1
        session = {**session, "turns": [], "cleared": cleared}
        return [], render.sources_html([], ""), "", session, render.viewer_frame_html(cleared), gr.update(visible=False)

    # ----- documents ------------------------------------------------------------------------

    def ingest(self, files: list | None, session: dict):
        """Ingest dropped files, showing what is being read and embedded as it happens, then the report."""
        done = (*self._document_views(session), None, self.status(session))
        if not files:
            gr.Warning(messages.CHOOSE_FILES)
            yield "", [], *done
            return
        skip = (gr.skip(),) * (len(done) + 1)
        with contextlib.ExitStack() as opened:  # copied from Gradio's files piece by piece, not read whole
            uploads = [(upload_name(f), opened.enter_context(Path(f).open("rb"))) for f in files]
            for display, update in ingest_updates(self.service, uploads, session["collection"], render.progress_html):
                if update.progress is not None:
                    yield display, *skip
                    continue
                if isinstance(update.error, RagError):
                    gr.Warning(messages.error(str(update.error)))
                    yield "", [], *self._document_views(session), None, self.status(session)
                    return
                if update.error is not None:
                    raise update.error
                report = update.report
                failed = [f for f in report.files if f.status.value == "failed"]
                if failed:
                    gr.Warning(messages.failed_files(len(failed), len(report.files)))
                if report.embedder.get("note"):  # a faster embedder was not used here: say why
                    gr.Info(report.embedder["note"])
                yield "", render.report_rows(report), *self._document_views(session), None, self.status(session)

    def delete(self, name: str | None, session: dict):
        if name:
            try:
                deleted = self.service.delete_document(name, session["collection"])
                gr.Info(messages.deleted(deleted.name))
            except RagError as exc:
                gr.Warning(messages.not_deleted(str(exc)))
        return (*self._document_views(session), self.status(session))

    def choose_collection(self, name: str, session: dict):
        name = (name or "").strip()
        if collection_name_problem(name):
            gr.Warning(messages.BAD_COLLECTION)
            name = session["collection"]
        session = {**session, "collection": name, "turns": []}
        return (session, *self._document_views(session), self.status(session), [], render.sources_html([], ""))

    def _document_views(self, session: dict):
        """Everything that shows the collection's documents; the pointer to the upload while it has none."""
        name = session["collection"]
        docs = self.service.list_documents(name) if name in self.service.collections() else []
        names = [d.name for d in docs]
        collections = sorted({*self.service.collections(), name})
        return (
            render.document_rows(docs),
            gr.update(choices=names, value=None),
            gr.update(choices=names, value=[]),
            gr.update(choices=collections, value=name),
            gr.update(visible=not docs),
        )

    # ----- status -------------------------------------------------------------------------------

    def status(self, session: dict) -> str:
        return render.status_markdown(self.service.health(session["collection"]))

    def tick(self, session: dict):
        return self.status(session), gr.Timer(active=not self.service.model_state.settled)

    def load(self, session: dict):
        return (self.status(session), *self._document_views(session))

    # ----- layout -------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        with gr.Blocks(title="rag_app — ask your PDFs", fill_width=True) as demo:
            session = gr.State(new_session(self.settings))
            gr.Markdown("## rag_app · ask your documents / 文档问答")
            status = gr.Markdown(elem_id="rag-status")
            timer = gr.Timer(STATUS_REFRESH_S)
            with gr.Tabs(elem_id="rag-tabs") as tabs:
                with gr.Tab("Chat / 问答", id="chat"):
                    chat_ui = self._chat_tab(session)
                with gr.Tab("Documents / 文档", id="documents"):
                    docs_ui = self._documents_tab(session)
                with gr.Tab("Share / embed / 分享", id="share"):
                    embed_ui = gr.Markdown(self.embed_markdown(), elem_id="rag-embed")
            chat_ui["go_upload"].click(lambda: gr.Tabs(selected="documents"), None, tabs, api_visibility="private")
            self._wire(demo, session, status, timer, chat_ui, docs_ui)
            demo.load(self.embed_markdown, None, embed_ui, api_visibility="private")
            # Not queued: MCP calls them in-process, so the caller's own credentials are what count
            # (a queued tool would make Gradio call back into the app without them).
            gr.api(self.answer_question, api_name="answer_question", queue=False)
            gr.api(self.list_documents, api_name="list_documents", queue=False)
        return demo

    def embed_markdown(self) -> str:
        """Copy-paste snippets that embed this app, filled in with its real URL."""
        from rag_app.web.embed import snippets

        if self.links is None:
            return ""
        url = self.links.best
        parts = snippets(url)
        origins = ", ".join(self.settings.origins) or "none (same origin only; set --embed-origins)"
        return (
            f"**This app:** {url}\n\n**As a web component** (Gradio's JS bundle, served by this app):\n"
            f"```html\n{parts['web_component']}\n```\n**In an iframe:**\n```html\n{parts['iframe']}\n```\n"
            f"Sites allowed to embed it: {origins}."
            + ("\n\nA share link expires after up to 1 week." if self.links.share else "")
        )

    def _chat_tab(self, session) -> dict:
        with gr.Column(visible=False, elem_id="rag-empty") as empty:  # while the collection has no documents
            gr.Markdown(messages.EMPTY_LIBRARY)
            go_upload = gr.Button("Upload documents / 上传文档", variant="primary", elem_id="rag-go-upload", size="sm")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=400):  # the viewer gets two thirds: a page at 100% on 1400 px
                # messages arrive as safe HTML (rag_app.web.markup): the chat must not render markdown on top
                chatbot = gr.Chatbot(label="Answer / 回答", height=520, elem_id="rag-chat", render_markdown=False)
                question = gr.Textbox(
                    placeholder="Ask about your documents… 可以用中文提问", show_label=False, elem_id="rag-question",
                    max_length=self.settings.max_question_chars,
                )  # fmt: skip
                with gr.Row():  # two buttons a row in the narrow chat column: labels stay on one line
                    ask = gr.Button("Ask / 提问", variant="primary", elem_id="rag-ask", min_width=170)
                    summarize = gr.Button("Summarize / 总结", elem_id="rag-summarize", min_width=170)
                    stop = gr.Button("Stop / 停止", elem_id="rag-stop", min_width=170)
                    clear = gr.Button("New chat / 新对话", elem_id="rag-clear", min_width=170)
                with gr.Group(visible=False, elem_id="rag-summary-picker") as picker:
                    to_summarize = gr.CheckboxGroup(
                        [], label="Documents to summarize / 要总结的文档", elem_id="rag-summary-files"
                    )
                    hint = gr.Markdown(elem_id="rag-summary-hint")
                    with gr.Row():
                        go = gr.Button("Summarize these / 总结所选文档", variant="primary", elem_id="rag-summary-go")
                        cancel = gr.Button("Cancel / 取消", elem_id="rag-summary-cancel")
                note = gr.Markdown(elem_id="rag-note")
                with gr.Accordion("Options / 选项", open=False):
                    strategy = gr.Dropdown(list(STRATEGY_NAMES), value=self.settings.strategy, label="Strategy / 策略")
                    k = gr.Slider(
                        1, 20, value=self.settings.top_k, step=1, label="Sources to retrieve (k) / 检索来源数"
                    )
                    files = gr.Dropdown([], multiselect=True, label="Search only these documents / 只检索这些文档")
                gr.Markdown("### Sources / 来源")
                sources = gr.HTML(render.sources_html([], ""), elem_id="rag-sources")
            with gr.Column(scale=2, min_width=400, elem_id="rag-viewer-column"):
                viewer = gr.HTML(render.viewer_frame_html(), elem_id="rag-viewer")
        return {"chatbot": chatbot, "question": question, "ask": ask, "stop": stop, "clear": clear, "summarize": summarize,
                "note": note, "strategy": strategy, "k": k, "files": files, "sources": sources, "viewer": viewer,
                "empty": empty, "go_upload": go_upload, "picker": picker, "to_summarize": to_summarize, "hint": hint,
                "go": go, "cancel": cancel}  # fmt: skip

    def _documents_tab(self, session) -> dict:
        progress = gr.HTML("", elem_id="rag-progress")  # above the file list, however long it grows
        collection = gr.Dropdown(
            [self.settings.collection], value=self.settings.collection, allow_custom_value=True,
            label="Collection (choose or type a new name) / 文档集（选择或输入新名称）", elem_id="rag-collection",
        )  # fmt: skip
        uploads = keeping_upload_names(gr.File(
            file_count="multiple", file_types=[".pdf", ".txt", ".md"], elem_id="rag-upload", height=220,
            label="Drop PDF, .txt or .md files: they are added at once / 拖入文件即导入",
        ))  # fmt: skip
        report = gr.Dataframe(
            headers=render.REPORT_HEADERS, label="Ingest report / 导入结果", interactive=False, elem_id="rag-report",
            wrap=True, column_widths=["22%", "9%", "7%", "7%", "9%", "8%", "38%"],
        )  # fmt: skip
        documents = gr.Dataframe(
            headers=render.DOCUMENT_HEADERS, label="Documents / 文档", interactive=False, elem_id="rag-documents",
            wrap=True,
        )  # fmt: skip
        with gr.Row():
            to_delete = gr.Dropdown([], label="Document to delete / 删除文档", elem_id="rag-to-delete")
            delete = gr.Button("Delete / 删除", variant="stop", elem_id="rag-delete")
        return {"collection": collection, "uploads": uploads, "report": report, "progress": progress,
                "documents": documents, "to_delete": to_delete, "delete": delete}  # fmt: skip

    def _wire(self, demo, session, status, timer, chat: dict, docs: dict) -> None:
        gpu = "gpu" if self.service.embeddings.device.startswith("cuda") else None
        concurrency = self.settings.llm_batch_slots if _cuda() else 1
        views = [docs["documents"], docs["to_delete"], chat["files"], docs["collection"], chat["empty"]]
        ask_inputs = [chat["question"], chat["chatbot"], chat["strategy"], chat["k"], chat["files"], session]
        ask_outputs = [chat["question"], chat["chatbot"], chat["sources"], chat["note"], session]
        asking = gr.on(
            [chat["ask"].click, chat["question"].submit], self.ask, ask_inputs, ask_outputs,
            api_name="ask", concurrency_limit=concurrency, concurrency_id="gpu",
        )  # fmt: skip
        chat["summarize"].click(
            self.choose_summary, [chat["files"], session], [chat["picker"], chat["to_summarize"], chat["hint"]],
            api_visibility="private",
        )  # fmt: skip
        summarizing = chat["go"].click(
            self.summarize, [chat["chatbot"], chat["to_summarize"], session],
            [chat["chatbot"], chat["sources"], chat["note"], session, chat["picker"], chat["hint"]],
            api_name="summarize", concurrency_limit=concurrency, concurrency_id="gpu",
        )  # fmt: skip
        chat["cancel"].click(lambda: gr.update(visible=False), None, chat["picker"], api_visibility="private")
        chat["stop"].click(None, cancels=[asking, summarizing], api_visibility="private")
        chat["clear"].click(
            self.clear, [session], [chat["chatbot"], chat["sources"], chat["note"], session, chat["viewer"], chat["picker"]],
            api_visibility="private",
        )  # fmt: skip
        # Dropping files starts ingesting them; their progress shows above the file list, nowhere else.
        docs["uploads"].upload(
            self.ingest, [docs["uploads"], session], [docs["progress"], docs["report"], *views, docs["uploads"], status],
            concurrency_id=gpu, concurrency_limit=1 if gpu else None, show_progress="hidden", api_name="ingest",
        )  # fmt: skip
        docs["delete"].click(self.delete, [docs["to_delete"], session], [*views, status])
        # The status line names the session's collection. A refresh that read the session before a switch and
        # wrote after it would put the old name back for good (the timer stops once the model has settled), so
        # the switch and the refresh never overlap: each reads the session the other left.
        docs["collection"].change(
            self.choose_collection, [docs["collection"], session],
            [session, *views, status, chat["chatbot"], chat["sources"]],
            concurrency_id=STATUS_GROUP, concurrency_limit=1,
        )  # fmt: skip
        demo.load(self.load, [session], [status, *views], api_visibility="private")
        timer.tick(
            self.tick, [session], [status, timer], api_visibility="private",
            concurrency_id=STATUS_GROUP, concurrency_limit=1,
        )  # fmt: skip


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def mount_ui(app, service: RagService, links=None):
    """Mount the page at / of the FastAPI app that also serves /api."""
    demo = ChatPage(service, links).build()
    demo.queue(default_concurrency_limit=4)
    settings = service.settings
    with warnings.catch_warnings():
        # Gradio warns that the page's own events take gr.State; they are not MCP tools here.
        warnings.filterwarnings("ignore", message=".*MCP server includes a tool that has a gr.State input.*")
        app = gr.mount_gradio_app(
            app, demo, path="/", css=CSS, max_file_size=f"{settings.max_upload_mb}mb",
            root_path=settings.root_path, footer_links=["api"], mcp_server=settings.mcp, head=PAGE_JS,
        )  # fmt: skip
    if demo.mcp_server_obj is not None:
        only_mcp_tools(demo.mcp_server_obj, MCP_ENDPOINTS)
    return app


def only_mcp_tools(server, endpoints: set[str]) -> None:
    """Expose only ``endpoints`` as MCP tools. The page's own events (ask, ingest, delete...) stay in
    the documented Gradio API for gradio_client, but an agent gets question answering and the
    document list, nothing that uploads or deletes; unlisted tools are also refused when called."""
    server.tool_to_endpoint = {tool: ep for tool, ep in server.tool_to_endpoint.items() if ep in endpoints}


def add_web_component_script(app) -> None:
    """Serve Gradio's web-component loader at /gradio.js, so <gradio-app> works offline and matches
    this app's Gradio version (its modules load from this app's /assets)."""
    from fastapi.responses import FileResponse

    script = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"

    @app.get("/gradio.js", include_in_schema=False)
    def gradio_js():
        return FileResponse(script, media_type="application/javascript")


def open_share_link(host: str, port: int) -> str:
    """A public https://*.gradio.live link to the local server (Gradio's share tunnel)."""
    import secrets

    from gradio import networking

    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return networking.setup_tunnel(local, port, secrets.token_urlsafe(32), None, None)
