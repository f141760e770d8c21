"""Killed kernels and competing notebooks: a project reopens with its last complete state, one writer at a time.

Each scenario runs the writer in a real child process and kills it with SIGKILL (no cleanup runs,
as when a notebook kernel dies or is killed by the out-of-memory killer). A worker killed in the
middle of a Dask run is in tests/test_distributed.py
(``test_lost_worker_units_are_rescheduled_with_identical_output``).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tomoseg_nb.annotations import LOCK_FILE, MASKS_FILE, PROJECT_FILE, Project
from tomoseg_nb.errors import ProjectLockedError

TILE = 16


def stroke_mask(stroke: int) -> np.ndarray:
    """The mask after ``stroke`` brush strokes: strokes paint pixels in order, one each."""
    mask = np.zeros(TILE * TILE, bool)
    mask[:stroke] = True
    return mask.reshape(TILE, TILE)


@pytest.fixture
def project(tmp_path) -> Path:
    with Project.create(tmp_path / "project", tomogram_shape=(4, 64, 64), voxel_size=10.0) as p:
        p.add_feature("membrane", tile_size=TILE)
        p.add_tile("membrane", 1, 30, 30)
    return tmp_path / "project"


PAINTER = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from tomoseg_nb.annotations import Project

    folder, hang_at, hang_on = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    replace, stroke = os.replace, 0

    def slow_replace(source, target):
        if stroke == hang_at and os.path.basename(target) == hang_on:
            print("hanging", flush=True)  # the new file is complete, not yet in place
            time.sleep(600)
        replace(source, target)

    os.replace = slow_replace
    project = Project.open(folder)  # autosave: every stroke is saved at once
    tile = project.tiles[0].id
    for stroke in range(1, 257):
        mask = np.zeros(256, bool)
        mask[:stroke] = True
        project.set_mask(tile, mask.reshape(16, 16))
        if stroke == 3 and len(project.tiles) == 1:  # adding a tile rewrites project.json
            project.add_tile("membrane", 2, 40, 40, positive=False)
        print("saved", stroke, flush=True)
    """
)


def _painter(folder: Path, hang_at: int = 0, hang_on: str = "") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PAINTER, str(folder), str(hang_at), hang_on],
        stdout=subprocess.PIPE,
        text=True,
    )


def _kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()


def _saved_strokes(child: subprocess.Popen, until: str) -> list[int]:
    strokes = []
    for line in child.stdout:
        if line.startswith("saved"):
            strokes.append(int(line.split()[1]))
        if line.startswith(until):
            return strokes
    raise AssertionError(f"the painter ended before {until!r}")


@pytest.mark.parametrize("hang_on", [MASKS_FILE, PROJECT_FILE])
def test_a_kernel_killed_while_saving_leaves_the_last_complete_state(project, hang_on):
    # Killed at stroke 3, with its file written but not yet renamed into place.
    child = _painter(project, hang_at=3, hang_on=hang_on)
    assert _saved_strokes(child, "hanging") == [1, 2]
    _kill(child)
    with Project.open(project) as reopened:  # the dead kernel's lock is taken over
        tile = reopened.tiles[0]
        expected = 3 if hang_on == PROJECT_FILE else 2  # stroke 3's mask was saved before the hang
        np.testing.assert_array_equal(reopened.mask(tile.id), stroke_mask(expected))
        assert len(reopened.tiles) == 1  # the tile being added was not saved
        reopened.set_mask(tile.id, stroke_mask(10))  # and the project is writable again
    with Project.open(project, read_only=True) as again:
        np.testing.assert_array_equal(again.mask(again.tiles[0].id), stroke_mask(10))


def test_a_kernel_killed_at_any_moment_reopens_with_a_whole_stroke(project):
    """No hook: killed wherever it happens to be, again and again; every reopening is consistent."""
    for stop_after in (5, 40, 120):
        child = _painter(project)
        strokes = []
        for line in child.stdout:
            strokes.append(int(line.split()[1]))
            if strokes[-1] >= stop_after:
                break
        _kill(child)  # the child went on painting meanwhile: it dies mid-save or between saves
        with Project.open(project) as reopened:
            tile = reopened.tiles[0]
            mask = reopened.mask(tile.id)
            painted = int(mask.sum())
            assert painted >= strokes[-1]
            np.testing.assert_array_equal(mask, stroke_mask(painted))  # a whole stroke, no mix
            assert len(reopened.tiles) == 2  # the tile added at stroke 3 is there
    leftovers = [p.name for p in project.iterdir() if ".partial-" in p.name]
    # A SIGKILL can leave the hidden temporary of the save it interrupted: never read, never in
    # the way (each process writes its own), safe to delete.
    assert all(name.startswith(".") for name in leftovers)


TRAINER = textwrap.dedent(
    """
    import sys, time
    import keras
    from tomoseg_nb.annotations import Project
    from tomoseg_nb.models import save_model
    from tomoseg_nb.train import train_feature
    from tomoseg_nb.training_config import TrainingConfig

    class Report(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            print("batch", batch, flush=True)
            time.sleep(0.2)

    project = Project.open(sys.argv[1])  # open for writing, as in a notebook with the painter
    config = TrainingConfig(arch="tiny", epochs=50)
    model, info = train_feature(project, "ribosome", config, callbacks=[Report()])
    save_model(model, info, sys.argv[2])
    """
)


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha1(p.read_bytes()).hexdigest()
        for p in folder.iterdir()
        if p.is_file() and p.name != LOCK_FILE
    }


def test_a_kernel_killed_mid_training_leaves_the_annotations_and_no_model(tmp_path):
    from tomoseg_nb.evaluate import annotate_from_truth
    from tomoseg_nb.synthetic import simulate_tomogram, write_tomogram_phantom

    phantom = simulate_tomogram((16, 128, 128), seed=0)
    files = write_tomogram_phantom(phantom, tmp_path / "phantom")
    folder = tmp_path / "project"
    with Project.create(folder, tomogram=files["tomogram"]) as project:
        annotate_from_truth(project, "ribosome", phantom.labels, 3, n_positive=3, n_negative=6)
    before = _digest(folder)
    out = tmp_path / "models"
    child = subprocess.Popen(
        [sys.executable, "-c", TRAINER, str(folder), str(out / "ribosome.keras")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TOMOSEG_NB_PROGRESS": "0"},
    )
    assert child.stdout.readline().startswith("batch")  # training is under way
    _kill(child)
    assert _digest(folder) == before  # annotations untouched, byte for byte
    with Project.open(folder) as reopened:  # and writable: the dead kernel's lock is taken over
        assert len(reopened.tiles_of("ribosome", positive=True)) == 3
    assert not out.exists() or not list(out.iterdir())  # no model, no half model


RACER = textwrap.dedent(
    """
    import sys, time
    from tomoseg_nb.annotations import Project
    from tomoseg_nb.errors import ProjectLockedError

    print("ready", flush=True)
    sys.stdin.readline()  # every racer starts at once
    try:
        project = Project.open(sys.argv[1])
    except ProjectLockedError as error:
        print("locked", error, flush=True)
        sys.exit(0)
    print("owner", flush=True)
    time.sleep(600)
    """
)


def test_two_notebooks_opening_one_project_at_once_get_one_writer(project):
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(project)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for racer in racers:
            assert racer.stdout.readline().strip() == "ready"
        for racer in racers:
            racer.stdin.write("go\n")
            racer.stdin.flush()
        answers = {racer.pid: racer.stdout.readline().strip() for racer in racers}
        owners = [pid for pid, answer in answers.items() if answer == "owner"]
        assert len(owners) == 1, answers
        for pid, answer in answers.items():
            if pid != owners[0]:  # a clear message: who holds it, and what to do
                assert answer.startswith("locked") and f"process {owners[0]}" in answer
                assert "read_only=True" in answer
        with pytest.raises(ProjectLockedError, match=f"process {owners[0]}"):
            Project.open(project)
        Project.open(project, read_only=True).close()  # readers are always welcome
        owner = next(racer for racer in racers if racer.pid == owners[0])
        _kill(owner)
        with Project.open(project) as taken_over:  # the lock of the dead owner is taken over
            taken_over.add_tile("membrane", 2, 40, 40)
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
            racer.wait()
            for stream in (racer.stdin, racer.stdout):
                if not stream.closed:
                    stream.close()
