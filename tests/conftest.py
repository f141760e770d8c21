"""Test-wide settings (quiet progress bars, a headless matplotlib, reproducible property tests) and
fixtures that several test files share. TensorFlow's log lines are kept quiet by ``import tomoseg_nb``
(``tomoseg_nb._quiet``), as for users.

Hypothesis draws the same examples on every run by default, so a suite that passed here passes in
CI. To hunt for new failures, draw fresh ones: ``HYPOTHESIS_PROFILE=explore pytest ...`` (that is
how a damaged-MRC crash was found; a failure found so is pinned as a plain test).
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

import tomoseg_nb  # noqa: F401  (before TensorFlow loads below: its start-up lines stay quiet)

os.environ.setdefault("TOMOSEG_NB_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")


def _exact_float32_on_gpus() -> None:
    """Full float32 convolutions and products on a GPU, as on a CPU.

    GPUs default to TF32 arithmetic (10-bit mantissa, ~1e-3 relative error), which is fine for
    segmentation but would fail the tests that compare the FFT engine with Keras to 1e-4. Users
    keep the backend's default; only the tests ask for exact float32.
    """
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "torch":
        import torch

        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    elif backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
    else:
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)


_exact_float32_on_gpus()

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="module")
def ribosome_project_folder(tmp_path_factory) -> Path:
    """A small phantom and a saved project with ribosome tiles painted by the simulated annotator.

    Module-scoped: each widget test module gets its own copy to train in and write to.
    """
    from tomoseg_nb.evaluate import build_project
    from tomoseg_nb.synthetic import simulate_tomogram
    from tomoseg_nb.volume import open_volume, write_volume

    folder = tmp_path_factory.mktemp("ribosome_project")
    phantom = simulate_tomogram((16, 128, 128), seed=2)
    path = write_volume(folder / "tomo.mrc", phantom.tomogram, voxel_size=phantom.voxel_size)
    with open_volume(path) as tomogram:
        project, _ = build_project(
            folder / "project",
            tomogram,
            {"ribosome": phantom.label_ids["ribosome"]},
            phantom.labels,
            n_positive=3,
            n_negative=12,
            tile_size=32,
        )
        project.close()
    return folder / "project"


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder this process cannot write into, also as root (chmod when possible, else chattr +i)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "keep.txt").write_text("earlier result\n")
    folder.chmod(0o555)
    immutable = False
    probe = folder / ".probe"
    try:
        probe.touch()
    except PermissionError:
        pass
    else:  # root ignores permission bits: make the folder immutable instead
        probe.unlink()
        if shutil.which("chattr") is None:
            folder.chmod(0o755)
            pytest.skip("running as root without chattr: no way to make a read-only folder")
        result = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
        if result.returncode != 0:
            folder.chmod(0o755)
            pytest.skip(f"running as root and chattr +i failed: {result.stderr!r}")
        immutable = True
    try:
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)
