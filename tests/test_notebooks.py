"""The tutorial notebooks: committed without outputs, and each runs end to end, headless, on tiny data.

Each notebook is executed with nbclient in a kernel of *this* Python (no kernelspec has to be
installed), in a fresh working folder, with tiny parameters injected after its ``parameters`` cell
(as papermill does): a small phantom, two epochs of the "tiny" network, a few tiles. People run a
notebook again in the same folder all the time, so each is run twice there (each reuses or replaces
its own outputs on purpose); the test then checks that the second run wrote what the notebook says
it writes and printed its scores, and that neither run showed a TensorFlow log line.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import numpy as np
import pytest
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from tomoseg_nb.synthetic import simulate_tomogram
from tomoseg_nb.volume import open_volume

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = (
    "00_quickstart",
    "01_browse_and_annotate",
    "02_train",
    "03_apply_and_merge",
    "04_pick_and_export",
    "05_particle_picking_2d",
    "06_many_tomograms_dask",
)
KERNEL_NAME = "tomoseg-nb-test"
CELL_TIMEOUT_S = 300
# TensorFlow's C++ log lines (absl's "I0000 00:00:..." and the notes around them) and its Python
# retracing warning: none may reach a notebook (tomoseg_nb._quiet, fixed-shape prediction).
TENSORFLOW_LOG_LINE = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|This TensorFlow binary|oneDNN custom "
    r"operations|cuda drivers|cuInit|triggered tf\.function retracing",
    re.MULTILINE,
)

# A phantom that holds a membrane, a microtubule and ribosomes in 24 x 160 x 160 voxels.
TINY_TOMOGRAM = {"SHAPE": (24, 160, 160), "SEED": 7}
TINY_TRAINING = {"ARCH": "tiny", "EPOCHS": 2, "N_POSITIVE": 4, "N_NEGATIVE": 12, "TILE_SIZE": 32}
PARAMETERS = {
    "00_quickstart": {**TINY_TOMOGRAM, **TINY_TRAINING, "HEADLESS": True},
    "01_browse_and_annotate": {
        **TINY_TOMOGRAM,
        "N_POSITIVE": 4,
        "N_NEGATIVE": 12,
        "TILE_SIZE": 32,
        "HEADLESS": True,
    },
    "02_train": {
        **TINY_TOMOGRAM,
        **TINY_TRAINING,
        "OVERFIT_EPOCHS": 12,
        "ROUND_TILES": 3,
        "ROUND_EPOCHS": 2,
    },
    "03_apply_and_merge": {**TINY_TOMOGRAM, **TINY_TRAINING},
    # picking needs a ribosome map that reaches the 0.5 threshold: more tiles and epochs
    "04_pick_and_export": {
        **TINY_TOMOGRAM,
        **TINY_TRAINING,
        "EPOCHS": 10,
        "N_POSITIVE": 8,
        "N_NEGATIVE": 24,
    },
    "05_particle_picking_2d": {
        "SHAPE": (512, 512),
        "N_PARTICLES": 10,
        "N_TRAINING": 1,
        "EPOCHS": 2,
        "SAMPLES_PER_CLASS": 64,
        "N_REFERENCES": 6,
        "HEADLESS": True,
    },
    "06_many_tomograms_dask": {
        **TINY_TOMOGRAM,
        **TINY_TRAINING,
        "N_TOMOGRAMS": 2,
        "CLUSTER": "local:2",
    },
}


class _ThisPython(KernelSpecManager):
    """Kernel specs that all start an IPython kernel in this interpreter (the project's venv)."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        env = {
            "TOMOSEG_NB_PROGRESS": "0",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",  # not the tests' Agg
        }
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="tomoseg_nb tests",
            language="python",
            env=env,
        )


def inject_parameters(notebook: nbformat.NotebookNode, parameters: dict) -> None:
    """Insert a cell assigning ``parameters`` after the cell tagged ``parameters`` (as papermill)."""
    index = next(
        i
        for i, cell in enumerate(notebook.cells)
        if "parameters" in cell.get("metadata", {}).get("tags", [])
    )
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(index + 1, cell)


def execute_notebook(name: str, parameters: dict, workdir: Path) -> nbformat.NotebookNode:
    """Run notebook ``name`` with ``parameters`` in ``workdir``; returns it with its outputs."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    inject_parameters(notebook, {**parameters, "WORKDIR": str(workdir)})
    manager = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=_ThisPython())
    client = NotebookClient(
        notebook,
        km=manager,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(workdir.parent)}},
    )
    # the kernel gets a user's environment: without the tests' TensorFlow log level
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP_")}
    client.execute(env=environment)
    return notebook


def execute_twice(
    name: str, workdir: Path, *, between: Callable[[], None] | None = None
) -> nbformat.NotebookNode:
    """Run notebook ``name`` twice in ``workdir`` (Run All, then Run All again); returns the second.

    ``between`` runs between the two (what other notebooks would have changed). Neither run may
    print a TensorFlow log line.
    """
    for run in ("first", "second"):
        if run == "second" and between is not None:
            between()
        notebook = execute_notebook(name, PARAMETERS[name], workdir)
        logged = TENSORFLOW_LOG_LINE.findall(printed(notebook, streams_only=True))
        assert not logged, f"{name}, {run} run: TensorFlow logged {logged}"
    return notebook


def printed(notebook: nbformat.NotebookNode, *, streams_only: bool = False) -> str:
    """Everything the notebook printed: stdout and stderr, and (unless ``streams_only``) the
    plain-text results."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output.get("text", ""))
            elif "data" in output and not streams_only:
                texts.append(output["data"].get("text/plain", ""))
    return "\n".join(texts)


def figures(notebook: nbformat.NotebookNode) -> int:
    """Number of images the notebook displayed."""
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def widgets(notebook: nbformat.NotebookNode) -> int:
    """Number of widget views the notebook displayed."""
    return sum(
        "application/vnd.jupyter.widget-view+json" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def assert_phantom_intact(folder: Path) -> None:
    """The phantom and its ground truth are where the notebooks put them, not overwritten."""
    phantom = simulate_tomogram(TINY_TOMOGRAM["SHAPE"], seed=TINY_TOMOGRAM["SEED"])
    with open_volume(folder / "phantom" / "labels.mrc") as labels:
        np.testing.assert_array_equal(labels.data, phantom.labels)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_has_no_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, name
    for cell in code:
        assert cell.outputs == [], f"{name}: a cell has outputs; strip them before committing"
        assert cell.execution_count is None, f"{name}: a cell has an execution count"
    assert "widgets" not in notebook.metadata, f"{name}: saved widget state; strip it"
    parameters = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1, f"{name}: exactly one cell must be tagged 'parameters'"
    assert code.index(parameters[0]) == 0, (
        f"{name}: the parameters cell must be the first code cell"
    )
    for parameter in PARAMETERS[name]:
        assert f"\n{parameter} = " in "\n" + parameters[0].source, f"{name}: no {parameter}"


@pytest.fixture
def workdir(tmp_path):
    return tmp_path / "work"


@pytest.mark.notebook
def test_00_quickstart(workdir):
    notebook = execute_twice("00_quickstart", workdir)
    folder = workdir / "phantom_24x160x160_seed7"
    for name in ("membrane", "microtubule", "ribosome"):
        assert (folder / "models" / f"{name}.keras").is_file()
        assert (folder / "models" / f"{name}.json").is_file()
        assert (folder / "maps" / f"tomogram__{name}.mrc").is_file()
    assert (folder / "labels.mrc").is_file() and (folder / "labels.json").is_file()
    star = (folder / "picks" / "ribosome.star").read_text()
    assert "rlnCenteredCoordinateXAngst" in star and "rlnTomoName" in star
    text = printed(notebook)
    assert "ribosome picks:" in text and "F1" in text
    assert figures(notebook) >= 5 and widgets(notebook) >= 4
    assert not (folder / "project" / ".lock").exists(), "the project was not closed"
    assert_phantom_intact(folder)


@pytest.mark.notebook
def test_01_browse_and_annotate(workdir):
    notebook = execute_twice("01_browse_and_annotate", workdir)
    project = workdir / "phantom_24x160x160_seed7" / "project"
    document = json.loads((project / "project.json").read_text())
    for name in ("membrane", "microtubule", "ribosome"):
        tiles = [t for t in document["tiles"] if t["feature"] == name]
        assert sum(t["positive"] for t in tiles) == 4 and len(tiles) == 16
    assert (project / "masks.npz").is_file() and not (project / ".lock").exists()
    assert "painted share of positive tiles" in printed(notebook)
    assert figures(notebook) >= 4 and widgets(notebook) >= 4


@pytest.mark.notebook
def test_02_train(workdir):
    notebook = execute_twice("02_train", workdir)
    models = workdir / "phantom_24x160x160_seed7" / "models"
    project = workdir / "phantom_24x160x160_seed7" / "project"
    sidecar = json.loads((models / "membrane.json").read_text())
    assert sidecar["feature"] == "membrane" and sidecar["arch"] == "tiny"
    assert len(sidecar["history"]["loss"]) == 2
    text = printed(notebook)
    assert "membrane: tiny network, 2 epochs" in text
    assert "under-fitted" in text and "over-fitted" in text and "well trained" in text
    # the correction round: suggestions, the simulated annotator's corrections, IoU before / after
    assert re.search(r"correction round: 3 tiles suggested in \S+ s, .* s in all", text)
    assert re.search(r"membrane IoU \d\.\d{3} before the round, \d\.\d{3} after", text)
    assert re.search(r"last training loss -?\d+\.\d{3} before the round, -?\d+\.\d{3} after", text)
    assert re.search(r"right on \d+% of the new positive tiles' pixels", text)
    round_tiles = [
        t
        for t in json.loads((project / "project.json").read_text())["tiles"]
        if t["feature"] == "membrane"
    ]
    assert len(round_tiles) == 16 + 2 * 3  # two runs, one round of 3 tiles each
    assert figures(notebook) >= 10 and widgets(notebook) >= 1


@pytest.mark.notebook
def test_03_apply_and_merge(workdir):
    notebook = execute_twice("03_apply_and_merge", workdir)
    folder = workdir / "phantom_24x160x160_seed7"
    for name in ("membrane", "microtubule", "ribosome"):
        assert (folder / "models" / f"{name}.keras").is_file()
        with open_volume(folder / "maps" / f"tomogram__{name}.mrc") as probability_map:
            assert probability_map.data.dtype == np.float16
    for labels in ("labels", "labels_eman2", "labels_membrane_wins"):
        assert (folder / f"{labels}.mrc").is_file() and (folder / f"{labels}.json").is_file()
    assert (folder / "meshes" / "membrane.glb").stat().st_size > 0
    assert_phantom_intact(folder)
    text = printed(notebook)
    assert "Mvoxel/s per feature" in text and "membrane IoU" in text
    assert figures(notebook) >= 5 and widgets(notebook) >= 2


@pytest.mark.notebook
def test_04_pick_and_export(workdir):
    notebook = execute_twice("04_pick_and_export", workdir)
    picks = workdir / "phantom_24x160x160_seed7" / "picks"
    exported = [
        "ribosome.star",
        "ribosome_relion4.star",
        "copick/ExperimentRuns/tomogram/Picks/tomoseg_nb_0_ribosome.json",
        "eman2/tomogram_info.json",
        "ribosome.txt",
        "ribosome.csv",
        "ribosome.ndjson",
    ]
    for name in exported:
        assert (picks / name).is_file(), name
    text = printed(notebook)
    difference = re.search(r"picks read back; largest difference (\S+) voxels", text)
    assert difference and float(difference.group(1)) < 1e-4, "exports do not round-trip"
    assert len((picks / "ribosome.csv").read_text().splitlines()) > 1, "no ribosome was picked"
    assert "microtubule points" in text and "true microtubule axes" in text
    assert figures(notebook) >= 2 and widgets(notebook) >= 1


@pytest.mark.notebook
def test_05_particle_picking_2d(workdir):
    notebook = execute_twice("05_particle_picking_2d", workdir)
    folder = workdir / "micrographs"
    boxes = json.loads((folder / "boxes" / "phantom_0.json").read_text())
    assert boxes  # the simulated annotator's clicks were saved by the box picker
    assert (folder / "ribosome.boxer" / "boxer.json").is_file()
    assert "rlnCoordinateX" in (folder / "picks" / "phantom_1.star").read_text()
    text = printed(notebook)
    assert "picker + classifier" in text and "template matching" in text
    assert figures(notebook) >= 4 and widgets(notebook) >= 2


@pytest.mark.notebook
@pytest.mark.slow
def test_06_many_tomograms_dask(workdir):
    def networks_saved_again() -> None:  # as running 00-03 again in the same WORKDIR does
        later = time.time_ns() + 10**9
        for model in (workdir / "phantom_24x160x160_seed7" / "models").glob("*.keras"):
            os.utime(model, ns=(later, later))

    notebook = execute_twice("06_many_tomograms_dask", workdir, between=networks_saved_again)
    maps = workdir / "many" / "maps"
    for tomogram in ("TS_01", "TS_02", "TS_03"):  # the third one arrives for the CLI
        assert (maps / f"{tomogram}.segment.json").is_file()
        for name in ("membrane", "microtubule", "ribosome"):
            assert (maps / f"{tomogram}__{name}.mrc").is_file()
    assert not list(maps.glob(".*partial*"))
    text = printed(notebook)
    assert "the same as the in-process map" in text and "DIFFERENT" not in text
    assert "second call: 0 units computed" in text and "exit status 0" in text
    assert figures(notebook) >= 1


def test_binder_requirements_match_the_package():
    """binder/requirements.txt = the package's dependencies, tensorflow-cpu for tensorflow, + Dask."""
    tomllib = pytest.importorskip("tomllib", reason="Python >= 3.11 reads pyproject.toml")
    from packaging.requirements import Requirement

    root = NOTEBOOKS.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for r in project["optional-dependencies"]["dask"]]
    expected = {
        ("tensorflow-cpu" if r.name == "tensorflow" else r.name, str(r.specifier))
        for r in wanted
        if r.name != "dask-jobqueue"  # batch systems: not on Binder
    }
    lines = (root / "binder" / "requirements.txt").read_text().splitlines()
    listed = {
        (r.name, str(r.specifier))
        for r in (Requirement(line) for line in lines if line.strip() and not line.startswith("#"))
    }
    assert listed == expected
    assert "--no-deps -e ." in (root / "binder" / "postBuild").read_text()
