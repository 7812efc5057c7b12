"""The house: packages by concern, layered, without import cycles (every import counts, lazy ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rag_app"
# Lowest first: a module may import its own layer or the ones below, never one above.
LAYERS = [
    ["rag_app.errors", "rag_app.settings"],
    ["rag_app.text", "rag_app.records", "rag_app.processes", "rag_app.prompts", "rag_app.requests", "rag_app.health"],
    ["rag_app.embedding", "rag_app.storage", "rag_app.fastgen", "rag_app.llm"],
    ["rag_app.ingestion", "rag_app.retrieval"],
    ["rag_app.answering", "rag_app.summaries"],
    ["rag_app.service"],
    ["rag_app.cli", "rag_app.web", "rag_app.__main__", "rag_app.__init__"],
]
MAX_MODULES_SIDE_BY_SIDE = 15


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every rag_app module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rag_app")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rag_app"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # "from rag_app.web import markup"
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def layer_of(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        if any(module == unit or module.startswith(unit + ".") for unit in layer):
            return i
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__}")


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_there_is_no_import_cycle():
    edges, state, cycles = graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_no_folder_holds_more_than_fifteen_modules_side_by_side():
    crowded = {
        str(folder.relative_to(ROOT)): count
        for folder in [PACKAGE, *(p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__")]
        if (count := len([p for p in folder.glob("*.py") if p.name != "__init__.py"])) > MAX_MODULES_SIDE_BY_SIDE
    }
    assert crowded == {}
