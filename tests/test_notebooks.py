"""The tutorial notebooks: committed without outputs, and each runs end to end, headless, on tiny data.

Each notebook is executed with nbclient in a kernel of *this* Python (no kernelspec has to be
installed), in a fresh working folder, with tiny parameters injected after its ``parameters`` cell
(as papermill does): a small phantom, two epochs of the "tiny" network, a few tiles. The test then
checks that the notebook wrote what it says it writes and printed its scores.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

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

# A phantom that holds a membrane, a microtubule and ribosomes in 24 x 160 x 160 voxels.
TINY_TOMOGRAM = {"SHAPE": (24, 160, 160), "SEED": 7, "HEADLESS": True}
TINY_TRAINING = {"ARCH": "tiny", "EPOCHS": 2, "N_POSITIVE": 4, "N_NEGATIVE": 12, "TILE_SIZE": 32}
PARAMETERS = {
    "00_quickstart": {**TINY_TOMOGRAM, **TINY_TRAINING},
    "01_browse_and_annotate": {**TINY_TOMOGRAM, "N_POSITIVE": 4, "N_NEGATIVE": 12, "TILE_SIZE": 32},
    "02_train": {
        **TINY_TOMOGRAM,
        **TINY_TRAINING,
        "OVERFIT_EPOCHS": 12,
    },
    "03_apply_and_merge": {**TINY_TOMOGRAM, **TINY_TRAINING},
    "04_pick_and_export": {**TINY_TOMOGRAM, **TINY_TRAINING},
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
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "PYTHONWARNINGS": "ignore::DeprecationWarning",
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
    client.execute()
    return notebook


def printed(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook printed (stream outputs and plain-text results)."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output.get("text", ""))
            elif "data" in output:
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
    assert code.index(parameters[0]) == 0, f"{name}: the parameters cell must be the first code cell"
    for parameter in PARAMETERS[name]:
        assert f"\n{parameter} = " in "\n" + parameters[0].source, f"{name}: no {parameter}"


@pytest.fixture
def workdir(tmp_path):
    return tmp_path / "work"


@pytest.mark.notebook
def test_00_quickstart(workdir):
    notebook = execute_notebook("00_quickstart", PARAMETERS["00_quickstart"], workdir)
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
