"""The rooms and their doors: which top-level package may import which (docs/architecture.md).

Every import statement counts, also one inside a function: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

MAY_IMPORT: dict[str, set[str]] = {
    "schemas": set(),
    "online_models": {"schemas"},
    "ranking": {"schemas", "online_models"},
    "flows": {"schemas", "online_models", "ranking"},
    "serving": {"schemas", "online_models", "ranking"},
    "encore": {"schemas", "online_models", "ranking", "flows", "serving"},
    "benchmarks": {"schemas", "online_models", "ranking", "flows", "serving", "encore"},
}
OURS = set(MAY_IMPORT)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module of ours that `path` imports (absolute names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{alias.name}" for alias in node.names)
    return {name for name in out if name.split(".")[0] in OURS}


def our_modules() -> dict[str, set[str]]:
    modules = {}
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[module_name(path)] = imports_of(path)
    known = set(modules)
    # `from a.b import c` names a module when a.b.c exists, else a symbol of a.b.
    return {m: {i for i in imported if i in known and i != m} for m, imported in modules.items()}


GRAPH = our_modules()


@pytest.mark.parametrize("package", sorted(OURS))
def test_a_package_imports_only_what_its_room_may(package: str) -> None:
    allowed = MAY_IMPORT[package] | {package}
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items() if module.split(".")[0] == package
        for target in targets if target.split(".")[0] not in allowed
    )
    assert not wrong, "\n".join(wrong)


def test_no_cycles_between_top_level_packages() -> None:
    edges = {(m.split(".")[0], t.split(".")[0]) for m, ts in GRAPH.items() for t in ts}
    edges = {(a, b) for a, b in edges if a != b}
    assert not [(a, b) for a, b in edges if (b, a) in edges]
    assert find_cycle({a: {b for x, b in edges if x == a} for a in OURS}) is None


def test_no_import_cycles_between_modules() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from serving.app import create_app\n", encoding="utf-8")
    assert "serving.app" in {i for i in _raw_imports(source)}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    # The graph holds the real edges, lazy imports included.
    assert "ranking.scoring" in GRAPH["ranking.pipeline"]
    assert "encore.stack" in GRAPH["encore.cli"] and "encore.cli" not in GRAPH["encore.stack"]


def _raw_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph as a path that ends where it starts, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
