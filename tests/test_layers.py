"""The layering the README describes, checked on the source: imports run one way down the
layers, and no two modules import each other (directly or round a longer circle)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "detectors", "reid", "storage", "evaluation", "cli")

# Lower number = lower layer. A module may import its own layer or any lower one. A module's
# layer is its folder's: nothing to keep in step by hand when a module is added.
LAYERS = {"core": 1, "models": 2, "storage": 3, "stages": 4, "evaluation": 5, "interfaces": 6}
FOLDERS = {
    "pipeline.core": "core",
    "detectors": "models",
    "reid": "models",
    "storage": "storage",
    "pipeline": "stages",
    "evaluation": "evaluation",
    "cli": "interfaces",
    "run_pipeline": "interfaces",
}


def layer_of(module: str) -> str:
    """The layer of the deepest folder in FOLDERS that holds the module."""
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        folder = ".".join(parts[:depth])
        if folder in FOLDERS:
            return FOLDERS[folder]
    raise KeyError(f"{module} is in no layer's folder; add its folder to FOLDERS")


def project_modules() -> dict[str, Path]:
    out = {"run_pipeline": ROOT / "run_pipeline.py"}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name in modules:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {m: imports_of(p, modules) - {m} for m, p in modules.items()}


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{m} ({layer_of(m)}) imports {dep} ({layer_of(dep)})"
        for m, deps in graph().items()
        for dep in sorted(deps)
        if LAYERS[layer_of(dep)] > LAYERS[layer_of(m)]
    ]
    assert upward == []


def test_no_import_circles() -> None:
    g = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for dep in sorted(g[m]):
            if state.get(dep) == 1:
                circles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    assert [" -> ".join(c) for c in circles] == []


def test_every_module_lives_in_a_layers_folder() -> None:
    # A new top-level folder must be given a layer; within one, the folder decides.
    for m in graph():
        assert layer_of(m) in LAYERS


def test_the_core_folder_is_exactly_the_core_layer() -> None:
    core = sorted(m for m in graph() if layer_of(m) == "core")
    assert "pipeline.core.config" in core and "pipeline.core.video" in core
    assert all(m.startswith("pipeline.core") for m in core)
    assert layer_of("pipeline.ingest") == "stages" and layer_of("pipeline") == "stages"


def test_interfaces_write_no_sql() -> None:
    """The CLI calls storage functions; only their exception types may come from SQLAlchemy."""
    offenders = []
    for m, path in project_modules().items():
        if layer_of(m) != "interfaces":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("sqlalchemy") and node.module != "sqlalchemy.exc":
                    offenders.append(f"{m}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                offenders += [f"{m}: import {a.name}" for a in node.names if a.name == "sqlalchemy"]
    assert offenders == []


def test_the_architecture_page_names_the_same_folders_and_layers() -> None:
    """docs/architecture.md's layer table is this file's FOLDERS, so the picture a newcomer
    reads cannot drift from the rule the build enforces."""
    rows = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`"):
            layer = cells[0].split()[-1]
            rows[cells[1].strip("`").replace("/", ".")] = layer
    assert rows == FOLDERS
