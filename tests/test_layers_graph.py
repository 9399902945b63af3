"""The package's shape, checked: no import circle between files, and no import from a lower
layer to a higher one (module-level and function-level imports alike). The checker is
tested on a constructed package with a circle and an upward import, so it can fail."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import twinbench

# Bottom to top. A module may import modules of its own layer or lower ones. The most
# specific prefix decides a module's layer.
LAYERS: list[tuple[str, ...]] = [
    # contracts and leaves: types, errors, measurement maths, data, models, stacks, history
    ("twinbench.version", "twinbench.errors", "twinbench.hooks", "twinbench.results",
     "twinbench.recipe",
     "twinbench.suite", "twinbench.config", "twinbench.measure", "twinbench.data",
     "twinbench.variants", "twinbench.models", "twinbench.stacks", "twinbench.store.db",
     "twinbench.store"),
    ("twinbench.process",),  # one core for every spawned measurement
    # what runs inside a measurement process
    ("twinbench.cell", "twinbench.parity", "twinbench.export", "twinbench.pipelines",
     "twinbench.byo"),  # a user's model: read, converted and rebuilt in its processes
    ("twinbench.plan", "twinbench.sweep", "twinbench.runfolder", "twinbench.environment", "twinbench.estimate",
     "twinbench.byo.plan", "twinbench.byo.live"),
    # the drivers
    ("twinbench.runner", "twinbench.api", "twinbench.api_export", "twinbench.export.spawn",
     "twinbench.pipelines.api", "twinbench.store.importer"),
    ("twinbench.analysis",),  # statistics and verdicts
    ("twinbench.report",),  # rendering only
    ("twinbench.cli", "twinbench"),  # the command; the package top offers twinbench.run
]


def modules(root: Path, package: str) -> dict[str, Path]:
    out = {}
    for p in root.rglob("*.py"):
        name = ".".join((package, *p.relative_to(root).with_suffix("").parts))
        out[name.removesuffix(".__init__")] = p
    return out


def imports(mods: dict[str, Path], package: str) -> dict[str, set[str]]:
    """module -> the package's modules it imports (a name imported from a package is its
    module when one exists, else the package)."""
    def owner(name: str) -> str:
        while name not in mods and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                    node.module.split(".")[0] == package:
                found |= {owner(f"{node.module}.{a.name}") for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {owner(a.name) for a in node.names if a.name.split(".")[0] == package}
        edges[name] = found - {name}
    return edges


def layer(name: str, layers: list[tuple[str, ...]]) -> int:
    """The layer of the most specific prefix that names `name`; the package itself (a
    prefix without a dot) names only its own top module, so a new module must be placed."""
    best = max(((len(p), i) for i, ps in enumerate(layers) for p in ps
                if name == p or ("." in p and name.startswith(p + "."))), default=None)
    if best is None:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS")
    return best[1]


def violations(edges: dict[str, set[str]], layers: list[tuple[str, ...]]) -> list[str]:
    return sorted(f"{a} (layer {layer(a, layers)}) imports {b} (layer {layer(b, layers)})"
                  for a, bs in edges.items() for b in bs if layer(b, layers) > layer(a, layers))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in edges:
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    root = Path(twinbench.__file__).parent
    return imports(modules(root, "twinbench"), "twinbench")


def test_no_import_circle_between_files(edges):
    assert cycles(edges) == []


def test_no_import_from_a_lower_layer_to_a_higher_one(edges):
    assert violations(edges, LAYERS) == []


def test_the_checks_fail_on_a_circle_and_an_upward_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("from pkg.low import b\n")
    (pkg / "low" / "b.py").write_text("def f():\n    from pkg.low.a import x\n")  # a circle
    (pkg / "high.py").write_text("from pkg.low import a\n")
    (pkg / "low" / "c.py").write_text("def g():\n    import pkg.high\n")  # upward
    e = imports(modules(pkg, "pkg"), "pkg")
    assert cycles(e) == [["pkg.low.a", "pkg.low.b"]]
    contract = [("pkg.low",), ("pkg.high", "pkg")]
    with pytest.raises(AssertionError, match="pkg.new is in no layer"):
        layer("pkg.new", contract)
    assert violations(e, contract) == ["pkg.low.c (layer 0) imports pkg.high (layer 1)"]
