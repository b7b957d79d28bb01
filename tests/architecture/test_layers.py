"""The package's shape, checked on its source (docs/ARCHITECTURE.md): imports run one way,
no private name crosses a module, no import circle, no module much over 400 lines."""

from __future__ import annotations

import ast
import os

import pytest

import easyssl

PACKAGE_DIR = os.path.dirname(easyssl.__file__)

#: Layers from the top down; a module may import from its own layer or any layer below it.
LAYERS = [
    ("cli", "__main__"),  # `python -m easyssl` is the command line
    ("api", "__init__", "models", "embedding"),  # the API and the user-facing facades
    ("tools",),
    ("train",),
    ("inference",),
    ("config", "defaults"),
    ("methods",),
    ("nn", "loss", "transforms"),
    ("data",),
    ("runtime", "version"),
]
RANK = {name: depth for depth, names in enumerate(LAYERS) for name in names}

#: Lines a module may have; a module over it holds two jobs.
MAX_LINES = 420


def _modules() -> dict[str, str]:
    """Dotted module name -> file path, for every module of the package."""
    found = {}
    for root, _dirs, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, ".")
                found[rel.removesuffix(".__init__")] = path
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: str, module: str) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) for every easyssl import of a file, relative ones resolved."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("easyssl"):
                    found.append((alias.name, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            if target.startswith("easyssl"):
                found.append((target, [alias.name for alias in node.names], node.lineno))
    return found


MODULES = _modules()


def test_every_module_has_a_layer():
    assert {_layer(m) for m in MODULES} <= set(RANK), sorted({_layer(m) for m in MODULES} - set(RANK))


def test_imports_run_downward_only():
    upward = []
    for module, path in MODULES.items():
        for target, names, line in _imports(path, module):
            targets = [target] if target != "easyssl" else [f"easyssl.{n}" for n in names]
            for t in targets:
                if t == "easyssl" or (t.count(".") == 1 and t.split(".")[1] not in RANK and t not in MODULES):
                    continue  # a name re-exported by the package itself (facades only)
                if RANK[_layer(t)] < RANK[_layer(module)]:
                    upward.append(f"{os.path.relpath(path, PACKAGE_DIR)}:{line} imports {t}")
    assert not upward, "\n".join(upward)


def test_no_private_name_crosses_a_module():
    crossing = []
    for module, path in MODULES.items():
        for target, names, line in _imports(path, module):
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    crossing.append(f"{os.path.relpath(path, PACKAGE_DIR)}:{line} imports {name} from {target}")
    assert not crossing, "\n".join(crossing)


def test_no_import_circle_between_modules():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, names, _line in _imports(path, module):
            for t in [target] + [f"{target}.{n}" for n in names]:
                if t in MODULES and t != module and not t.startswith(module + "."):
                    graph[module].add(t)
    # Packages' __init__ files re-export their children: an edge child -> parent package is a re-export, not a circle.
    for module in graph:
        graph[module] = {t for t in graph[module] if not module.startswith(t + ".")}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend(trail[trail.index(nxt):] + [node, nxt] if nxt in trail else [node, nxt])
                return True
            if nxt not in state and visit(nxt, trail + [node]):
                return True
        state[node] = 2
        return False

    for module in sorted(graph):
        if module not in state and visit(module, []):
            break
    assert not cycle, " -> ".join(cycle)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module):
    lines = sum(1 for _ in open(MODULES[module], encoding="utf-8"))
    assert lines <= MAX_LINES, f"{module} has {lines} lines: split its jobs"
