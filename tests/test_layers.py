"""The import graph of ``ocrpipe`` keeps its layers: every module is parsed with ``ast`` (function-level imports
included), each import is mapped to the subpackage it lands in, and the graph of subpackages must have no
cycle and obey the layer rules of DESIGN.md and the README's architecture section."""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

import ocrpipe

ROOT = Path(ocrpipe.__file__).resolve().parent
SUBPACKAGES = ("server.storage", "server.http", "server.grpc", "server.security", "server.scheduling", "engine",
               "templates", "evaluation", "training", "synth", "export", "client", "protocol")
COMPOSITION = frozenset({"ocrpipe.server", "ocrpipe.server.__main__", "ocrpipe.server.app", "ocrpipe.server.cli"})
"""The service's composition root (node ``server.app``): it wires storage, scheduling, security and both
transports together. The other modules directly in ``server/`` (errors, intake, settings, metrics, logging)
are the base every server layer uses (node ``server``)."""
TRANSPORTS = ("server.http", "server.grpc")


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ("ocrpipe", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def node(module: str) -> str:
    """The layer a module belongs to: a subpackage, ``server`` (base), ``server.app`` or a top-level module."""
    if module in COMPOSITION:
        return "server.app"
    rel = module.removeprefix("ocrpipe").lstrip(".")
    for sub in SUBPACKAGES:
        if rel == sub or rel.startswith(sub + "."):
            return sub
    if rel.startswith("server."):
        return "server"
    return rel.split(".", 1)[0] or "ocrpipe"


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The ``ocrpipe`` modules ``module`` imports anywhere in its body (``from x import y`` is ``x.y`` when
    that is a module)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for stmt in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(stmt, ast.Import):
            found.update(a.name for a in stmt.names)
        elif isinstance(stmt, ast.ImportFrom):
            base = stmt.module or ""
            if stmt.level:
                anchor = package.split(".")[: len(package.split(".")) - stmt.level + 1]
                base = ".".join([*anchor, *([stmt.module] if stmt.module else [])])
            for alias in stmt.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m == "ocrpipe" or m.startswith("ocrpipe.")}


@cache
def module_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


@cache
def layer_graph() -> dict[str, dict[str, list[str]]]:
    """layer -> imported layer -> the modules that make the edge."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for module, targets in module_graph().items():
        for target in targets:
            a, b = node(module), node(target)
            if a != b:
                out[a][b].append(f"{module} -> {target}")
    return out


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Strongly connected components with more than one layer (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def edges_into(graph: dict[str, dict[str, list[str]]], source: str, targets: tuple[str, ...]) -> list[str]:
    return [e for t, es in graph.get(source, {}).items() if t.startswith(targets) for e in es]


def test_the_graph_sees_lazy_imports() -> None:
    # server/__init__.py imports server.app inside create_app: the parser must find it
    assert "ocrpipe.server.app" in module_graph()["ocrpipe.server"]
    assert node("ocrpipe.server.http.jobs") == "server.http" and node("ocrpipe.server.errors") == "server"
    assert node("ocrpipe.server.app") == "server.app" and node("ocrpipe.cli") == "cli"


def test_no_cycles_between_layers() -> None:
    graph = layer_graph()
    found = cycles(graph)
    detail = {tuple(c): [e for a in c for b in c for e in graph[a].get(b, [])] for c in found}
    assert not found, detail


def test_engine_imports_no_templates_server_or_evaluation() -> None:
    assert not edges_into(layer_graph(), "engine", ("templates", "server", "evaluation"))


def test_templates_import_no_server() -> None:
    assert not edges_into(layer_graph(), "templates", ("server",))


def test_storage_imports_no_transport_security_or_scheduling() -> None:
    assert not edges_into(layer_graph(), "server.storage",
                          ("server.http", "server.grpc", "server.security", "server.scheduling", "server.app"))


def test_server_base_imports_only_storage() -> None:
    bad = edges_into(layer_graph(), "server", ("server.",))
    assert [e for e in bad if not e.split(" -> ")[1].startswith("ocrpipe.server.storage")] == []


def test_transports_are_independent_and_only_the_app_joins_them() -> None:
    graph = layer_graph()
    assert not edges_into(graph, "server.http", ("server.grpc",))
    assert not edges_into(graph, "server.grpc", ("server.http",))
    both = [m for m, targets in module_graph().items()
            if all(any(node(t) == tr for t in targets) for tr in TRANSPORTS)]
    assert both == ["ocrpipe.server.app"] or both == [], both


def test_client_and_protocol_import_no_server() -> None:
    graph = layer_graph()
    assert not edges_into(graph, "client", ("server",))
    assert not edges_into(graph, "protocol", ("server", "client"))


def test_only_the_cli_and_the_cluster_import_bulk_and_only_the_cli_imports_the_cluster() -> None:
    graph = layer_graph()
    assert {a for a, targets in graph.items() if "cluster" in targets} <= {"cli"}
    assert {a for a, targets in graph.items() if "bulk" in targets} <= {"cli", "cluster"}


def test_ray_is_imported_only_by_the_cluster_modules_that_need_it() -> None:
    allowed = {"ocrpipe.cluster.serve", "ocrpipe.cluster.data", "ocrpipe.cluster.cli"}  # cli: only to check
    importers = set()
    for module, path in modules().items():
        for stmt in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in stmt.names] if isinstance(stmt, ast.Import) else
                     [stmt.module or ""] if isinstance(stmt, ast.ImportFrom) and not stmt.level else [])
            if any(n == "ray" or n.startswith("ray.") for n in names):
                importers.add(module)
    assert importers <= allowed, importers - allowed
