"""The package's layers (ARCHITECTURE.md): every import, at module level or inside a function,
points to the same layer or a lower one, and light modules do not pull in Keras."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tomoseg_nb

PACKAGE = Path(tomoseg_nb.__file__).parent

LAYERS: dict[str, int] = {
    # 0 foundation: no science, imported by everyone (metrics and thresholds are plain numpy
    #   scoring that training, picking, the evaluation and the plots all need, so they sit
    #   here, not with evaluate)
    "": 0,
    "_lazy": 0,
    "_quiet": 0,
    "errors": 0,
    "atomic": 0,
    "progress": 0,
    "palette": 0,
    "metrics": 0,
    "thresholds": 0,
    # 1 data: files and formats, phantoms
    "volume": 1,
    "maps": 1,
    "coords": 1,
    "synthetic": 1,
    # 2 annotations
    "annotations": 2,
    # 3 learning
    "preprocess": 3,
    "training_config": 3,
    "model_files": 3,
    "models": 3,
    "dataset": 3,
    "engine": 3,
    "train": 3,
    "pixel_classifier": 3,
    # 4 volume operations
    "segment": 4,
    "merge": 4,
    "picking": 4,
    "mesh": 4,
    "boxer": 4,
    # 5 evaluation
    "evaluate": 5,
    "suggest": 5,
    # 6 scale-out
    "distributed": 6,
    # 7 interfaces
    "plots": 7,
    "demo": 7,
    "widgets": 7,
    "cli": 7,
    "__main__": 7,
}


def _top_module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return "" if parts == ("__init__",) else parts[0]


def _imported_top_modules(path: Path) -> set[str]:
    """First-level package modules that ``path`` imports anywhere in its code."""
    return _imports(path.read_text(), list(path.relative_to(PACKAGE).parent.parts))


def _imports(source: str, package: list[str]) -> set[str]:
    """First-level modules imported by ``source``, a module in subpackage ``package``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = base + (node.module.split(".") if node.module else [])
            names = [target] if node.module else [[*target, alias.name] for alias in node.names]
            found.update(parts[0] if parts else "" for parts in names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tomoseg_nb"):
            found.add((node.module or "").split(".")[1] if "." in (node.module or "") else "")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tomoseg_nb."):
                    found.add(alias.name.split(".")[1])
    # "from . import __version__" in a top-level module names the package itself
    return {"" if name == "__version__" else name for name in found}


def test_every_module_has_a_layer() -> None:
    modules = {_top_module(path) for path in PACKAGE.rglob("*.py")}
    assert modules - set(LAYERS) == set(), "add new modules to LAYERS (and ARCHITECTURE terms)"


def test_imports_only_point_down() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _top_module(path)
        for target in _imported_top_modules(path) - {me}:
            if LAYERS[target] > LAYERS[me]:
                upward.append(f"{path.relative_to(PACKAGE)} ({me or 'tomoseg_nb'}, layer "
                              f"{LAYERS[me]}) imports {target} (layer {LAYERS[target]})")  # fmt: skip
    assert upward == []


FALSE_TIES = {
    # a saved network is read and written without any annotation project
    ("models", "annotations"),
    # picking works on any probability map; the map format lives in ``maps``, not ``merge``
    ("picking", "merge"),
    # the random-forest baseline is a pixel classifier, not an application of networks
    ("pixel_classifier", "segment"),
}


def test_no_false_ties_between_modules_of_neighbouring_jobs() -> None:
    found = {
        (_top_module(path), target)
        for path in PACKAGE.rglob("*.py")
        for target in _imported_top_modules(path)
    }
    assert found & FALSE_TIES == set()


def test_the_layer_rule_sees_imports_inside_functions() -> None:
    """The check above would miss the ties it is for if it read only module-level imports."""
    source = (
        "import numpy\n\ndef f():\n    from ..merge import merge_files\n    from . import frame\n"
    )
    assert _imports(source, ["picking"]) == {"merge", "picking"}


def test_data_annotation_and_map_modules_do_not_load_keras() -> None:
    """What the CLI, the widgets' file handling and a Dask client need starts in a fraction of a
    second, and on machines where the network stack is broken it still works."""
    light = [
        "tomoseg_nb.maps",
        "tomoseg_nb.volume",
        "tomoseg_nb.coords",
        "tomoseg_nb.annotations",
        "tomoseg_nb.training_config",
        "tomoseg_nb.thresholds",
        "tomoseg_nb.segment",
        "tomoseg_nb.merge",
        "tomoseg_nb.picking",
        "tomoseg_nb.evaluate",
        "tomoseg_nb.widgets",
    ]
    code = (
        f"import sys\nfor name in {light!r}:\n    __import__(name)\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'torch', 'jax') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
