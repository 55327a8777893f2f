"""The package's layout rules, checked on the source: no import cycles, checkpoint/ independent of modeling/,
imports at the top (only optional dependencies inside functions), printing only in the CLI, and one table of
architectures that the model classes follow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import paddlefunnel
from paddlefunnel.modeling import MODEL_CLASSES
from paddlefunnel.registry import ARCHITECTURES

PACKAGE_DIR = Path(paddlefunnel.__file__).parent
# Optional dependencies (extras) may be imported inside the function that needs them, and so may scipy and
# scikit-learn, which metrics/glue.py imports on first use (1.0 s of import time, measured there).
OPTIONAL_IMPORTS = {"torch", "transformers", "onnx", "onnxruntime", "paddle2onnx", "visualdl", "scipy", "sklearn", "seqeval"}
# runtime.py must set the CPU math environment before Paddle loads, so it imports paddle only when called.
LATE_PADDLE_MODULES = {"paddlefunnel.runtime"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


SOURCES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported_modules(path: Path, top_level_only: bool) -> set[str]:
    """paddlefunnel modules that `path` imports (explicit edges only: `from .x import y` -> x, or x.y if it
    is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("paddlefunnel"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_of(path).split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("paddlefunnel"):
                continue
            submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in SOURCES]
            found.update(submodules or [target])
    return found


def test_sources_found():
    assert {"paddlefunnel.registry", "paddlefunnel.errors", "paddlefunnel.checkpoint", "paddlefunnel.cli"} <= set(SOURCES)


def with_packages(modules: set[str]) -> set[str]:
    """Importing `a.b.c` runs the `__init__` of package `a.b` first: count those edges too (all but the root
    package's, whose `__init__` imports the public API and so everything)."""
    found = set(modules)
    for module in modules:
        parts = module.split(".")
        found.update(".".join(parts[:i]) for i in range(2, len(parts)))
    return found


def test_no_import_cycles():
    graph = {name: {m for m in with_packages(imported_modules(path, top_level_only=False))
                    if m in SOURCES and m != name and not name.startswith(m + ".")}
             for name, path in SOURCES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [name, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_checkpoint_never_imports_modeling():
    for name, path in SOURCES.items():
        if name.startswith("paddlefunnel.checkpoint"):
            bad = {m for m in imported_modules(path, top_level_only=False) if m.startswith("paddlefunnel.modeling")}
            assert not bad, f"{path} imports {bad}: model classes must pass themselves in"


def test_imports_inside_functions_are_optional_dependencies_only():
    offenders = []
    for name, path in SOURCES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    roots = {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom):
                    roots = {"." if node.level else (node.module or "").split(".")[0]}
                else:
                    continue
                allowed = OPTIONAL_IMPORTS | ({"paddle"} if name in LATE_PADDLE_MODULES else set())
                if not roots <= allowed:
                    offenders.append(f"{path.relative_to(PACKAGE_DIR)}:{node.lineno} ({', '.join(sorted(roots))})")
    assert not offenders, "imports inside functions: " + "; ".join(offenders)


def test_only_the_cli_prints():
    offenders = []
    for name, path in SOURCES.items():
        if name.startswith("paddlefunnel.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.relative_to(PACKAGE_DIR)}:{node.lineno}")
    assert not offenders, "print() outside cli/: " + ", ".join(offenders)


def test_model_classes_follow_the_registry():
    assert list(MODEL_CLASSES) == list(ARCHITECTURES)
    for name, cls in MODEL_CLASSES.items():
        assert cls.__name__ == name
