"""The package surface: every public name resolves, importing stays light, the CLI lists its commands."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tomoseg_nb
import tomoseg_nb.boxer
import tomoseg_nb.plots
import tomoseg_nb.synthetic
import tomoseg_nb.widgets
from tomoseg_nb.cli import build_parser

PACKAGES = [
    tomoseg_nb,
    tomoseg_nb.plots,
    tomoseg_nb.synthetic,
    tomoseg_nb.boxer,
    tomoseg_nb.widgets,
]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_public_name_resolves(package):
    assert package.__all__, "no public names"
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute"):
        package.not_a_name  # noqa: B018


def test_z_context_helpers_are_public_beside_the_other_preprocessing():
    from tomoseg_nb import preprocess

    for name in ("preprocess_slab", "context_indices", "z_window", "stack_z_context"):
        assert name in tomoseg_nb.__all__ and getattr(tomoseg_nb, name) is getattr(preprocess, name)


def test_import_does_not_start_keras():
    code = "import sys, tomoseg_nb, tomoseg_nb.cli; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.split() == ["False", "False"]


def test_cli_has_the_architecture_contract_commands():
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # argparse keeps them here
    expected = {"lab", "demo", "simulate", "train", "segment", "merge", "pick", "evaluate", "boxer"}
    assert expected <= commands


def test_lab_opens_jupyterlab_on_the_tutorials(monkeypatch, tmp_path, capsys):
    import os

    from tomoseg_nb.cli import main
    from tomoseg_nb.cli.lab import NOTEBOOKS

    started = {}
    monkeypatch.setattr(os, "execv", lambda program, command: started.update(command=command))
    assert main(["lab", "--no-browser", "--", "--allow-root"]) == 0
    command = started["command"]
    assert command[1:4] == ["-m", "jupyter", "lab"]
    assert f"--notebook-dir={NOTEBOOKS}" in command and "00_quickstart.ipynb" in os.listdir(
        NOTEBOOKS
    )
    assert command[-2:] == ["--no-browser", "--allow-root"]
    assert main(["lab", "--folder", str(tmp_path / "missing")]) == 2
    assert "no notebook folder" in capsys.readouterr().err
