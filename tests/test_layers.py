"""The package's imports point down: a module may import only modules of a lower layer (or of its
own layer, when the two do not import each other in a cycle). Imports inside functions count.

The layers, lowest first — a newcomer's map of the code:
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import punktraits

LAYERS = [
    ["version", "errors", "work"],  # nothing of ours (work: a thread's work counted)
    ["files", "webp", "answer"],  # atomic writes, JSON, weights, PNG helpers; a WebP's encoder;
    #   what an image's answer holds (plain data)
    ["data", "normalize", "models", "metrics"],  # the dataset; image -> punk; networks; scores
    ["locate"],  # where the punks are in a larger picture (squares to read)
    ["schema"],  # what each file of a run folder must hold
    ["sprites", "collection"],  # how a punk is drawn; the chain's formats, rarity, originals
    ["verify"],  # answers drawn back and compared with the image
    ["loop"],  # the generic training loop
    ["recipes.base"],  # what a recipe is
    ["recipes.ours", "recipes.paper"],  # one module per recipe
    ["recipes"],  # the registry
    ["run"],  # run folders: create (train), open, evaluate
    ["draw"],  # pictures of punks
    ["predict", "folder"],  # image -> Prediction; folders of files, in worker processes
    ["report", "server"],  # what people look at
    ["cli", "__main__", ""],  # the command line; "" is the package itself (lazy public API)
]
LAYER = {m: k for k, names in enumerate(LAYERS) for m in names}
ROOT = Path(punktraits.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Our modules that `path` imports anywhere in it (top level or inside functions)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.split(".")[0] == "punktraits":
                    base = node.module.split(".")[1:]
                else:
                    continue
            else:
                base = package[: len(package) - (node.level - 1)] + (
                    node.module.split(".") if node.module else []
                )
            stem = ".".join(base)
            for alias in node.names:  # `from . import data` names a module, `from .x import y` not
                sub = f"{stem}.{alias.name}" if stem else alias.name
                found.add(sub if sub in LAYER else stem)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "punktraits":
                    found.add(".".join(alias.name.split(".")[1:]))
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(ROOT.rglob("*.py"))}


def test_every_module_has_a_layer():
    missing = sorted(set(graph()) - set(LAYER))
    assert not missing, f"add these modules to LAYERS in tests/test_layers.py: {missing}"


def test_imports_only_point_down():
    up = [
        f"{m} (layer {LAYER[m]}) imports {d} (layer {LAYER[d]})"
        for m, deps in graph().items()
        for d in sorted(deps)
        if LAYER.get(d, -1) > LAYER[m]
    ]
    assert not up, "imports that point up:\n" + "\n".join(up)


def test_no_import_cycles():
    g = graph()
    cycles = []

    def visit(node: str, path: list[str]):
        for d in sorted(g.get(node, ())):
            if d in path:
                cycles.append(" -> ".join(path[path.index(d) :] + [d]))
            elif d not in done:
                visit(d, path + [d])
        done.add(node)

    done: set[str] = set()
    for m in sorted(g):
        visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))


def test_the_checker_sees_imports_inside_functions(tmp_path, monkeypatch):
    # The test above must be able to fail: a hidden upward import inside a function is found.
    pkg = tmp_path / "punktraits"
    pkg.mkdir()
    (pkg / "data.py").write_text("def f():\n    from .predict import Predictor\n")
    (pkg / "predict.py").write_text("from . import data\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", pkg)
    assert imports_of(pkg / "data.py") == {"predict"}
    assert imports_of(pkg / "predict.py") == {"data"}
    with pytest.raises(AssertionError, match="data \\(layer 2\\) imports predict"):
        test_imports_only_point_down()
    with pytest.raises(AssertionError, match="data -> predict -> data"):
        test_no_import_cycles()
