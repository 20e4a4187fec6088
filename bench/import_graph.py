"""The project's import graph from an AST scan: package edges, and the cycles among modules.

Function-level and TYPE_CHECKING imports count too (a lazy import hides a cycle, it does not
remove it). `python bench/import_graph.py [--json]` prints the figures; tests/test_layers.py
asserts on them.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ingest", "kb", "bot")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str, known: set[str]) -> str | None:
    """The longest known module that `name` names (`kb.store.Entry` -> `kb.store`)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in the file)."""
    files = {module_name(p, root): p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        edges: set[str] = set()
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                names = [f"{base}.{a.name}" for a in node.names] + [base]
            for name in names:
                target = _resolve(name, known)
                if target and target != mod and not (mod.startswith(target + ".") and target in PACKAGES):
                    edges.add(target)
        graph[mod] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def package_edges(graph: dict[str, set[str]]) -> dict[str, int]:
    """'bot -> kb': how many module-to-module imports cross from one package to another."""
    counts: Counter[str] = Counter()
    for mod, targets in graph.items():
        for t in targets:
            a, b = mod.split(".")[0], t.split(".")[0]
            if a != b:
                counts[f"{a} -> {b}"] += 1
    return dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    graph = import_graph()
    found = cycles(graph)
    data = {"modules": len(graph), "package_edges": package_edges(graph), "cycles": found}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{len(graph)} modules")
    for edge, n in data["package_edges"].items():
        print(f"  {edge}: {n}")
    print(f"{len(found)} cycle(s)")
    for c in found:
        print("  {" + ", ".join(c) + "}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
