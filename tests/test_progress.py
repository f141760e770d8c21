"""Progress bars say what runs on what, how many units of how many are done, and the time left."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

import tomoseg_nb.segment as segment_module
import tomoseg_nb.train as train_module
from tomoseg_nb.models import ModelInfo
from tomoseg_nb.progress import BAR_FORMAT, progress_bar
from tomoseg_nb.training_config import TrainingConfig
from tomoseg_nb.volume import write_volume


def test_the_bar_shows_the_work_the_count_and_the_time_left(capsys):
    calls = []
    with progress_bar(
        3, "training membrane (fast)", lambda *done: calls.append(done), unit="batch", show=True
    ) as advance:
        for _ in range(3):
            advance(1)
    first = capsys.readouterr().err.replace("\r", "\n").splitlines()[1]
    assert first == "training membrane (fast):   0%|          | 0/3 batch [00:00, ? left]"
    assert calls == [(1, 3), (2, 3), (3, 3)]
    # a third done after 20 s: 40 s left
    halfway = tqdm.format_meter(
        1, 3, 20, ncols=80, prefix="training membrane (fast)", unit=" batch", bar_format=BAR_FORMAT
    )
    assert halfway.startswith("training membrane (fast):  33%|")
    assert halfway.endswith("| 1/3 batch [00:20, 00:40 left]")


def _recorded_bars(monkeypatch, module) -> list[tuple[str, str]]:
    """(description, unit) of every bar ``module`` opens."""
    opened = []

    def recording(total, description, callback=None, *, unit="it", show=None):
        opened.append((description, unit))
        return progress_bar(total, description, callback, unit=unit, show=False)

    monkeypatch.setattr(module, "progress_bar", recording)
    return opened


def test_training_and_segmenting_bars_name_the_feature(monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(12, 16, 16)).astype(np.float32)
    masks = np.zeros_like(images)
    masks[:4, 4:12, 4:12] = 1.0
    images[:4] += 2.0 * masks[:4]
    positive = np.arange(12) < 4
    config = TrainingConfig(
        arch="tiny", epochs=1, copies=1, seed=0, validation_fraction=0, z_context=0
    )  # single-slice tiles made by hand
    trained = _recorded_bars(monkeypatch, train_module)
    result = train_module.train_on_tiles(images, masks, positive, config, feature="membrane")
    assert trained[0] == ("training membrane (tiny)", "batch")

    info = ModelInfo(
        feature="membrane", arch="tiny", voxel_size=10.0, recipe={}, threshold=result.threshold
    )
    slices = rng.normal(size=(4, 32, 32)).astype(np.float32)
    tomogram = write_volume(tmp_path / "TS_01.mrc", slices, voxel_size=10.0)
    segmented = _recorded_bars(monkeypatch, segment_module)
    segment_module.segment_volume(
        [segment_module.FeatureNetwork(result.model, info)], tomogram, tmp_path / "maps"
    )
    assert segmented == [("segmenting TS_01 (membrane)", "slice")]
