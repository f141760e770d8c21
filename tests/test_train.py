"""Training: a tiny network learns phantom membranes; splits, cancel, progress, errors, CLI, plots."""

import logging
import threading
import warnings
from dataclasses import replace

import keras
import numpy as np
import pytest
from matplotlib.figure import Figure

from tomoseg_nb import training_config
from tomoseg_nb.annotations import Project
from tomoseg_nb.cli import main
from tomoseg_nb.engine import choose_engine
from tomoseg_nb.errors import BadInputError, CancelledError, TrainingCollapsedWarning
from tomoseg_nb.models import build_model, load_model, output_stride
from tomoseg_nb.plots.training import (
    plot_loss,
    plot_probability_histogram,
    plot_tile_gallery,
    plot_tile_thresholds,
)
from tomoseg_nb.preprocess import (
    Recipe,
    preprocess_slab,
    preprocess_slice,
    stack_z_context,
    z_window,
)
from tomoseg_nb.synthetic import simulate_tomogram
from tomoseg_nb.thresholds import ThresholdCounts
from tomoseg_nb.train import (
    best_threshold,
    chosen_threshold,
    predict_tiles,
    resolve_engine,
    split_tiles,
    train_feature,
    train_on_tiles,
)
from tomoseg_nb.training_config import DEFAULT_TRAINING, TrainingConfig
from tomoseg_nb.volume import write_volume

TINY = TrainingConfig(arch="tiny", z_context=0)
"""The mechanics tests cut single-slice tiles by hand (``_small_tiles``, ``_disk_tiles``)."""

SHAPE = (24, 192, 192)
TILE = 32
MEMBRANE = 1
TRAIN_SLICES = 16  # tiles come from these; slices 18.. are never annotated and are scored whole


def _lines_and_discs(seed=0):
    """A quick scene for the mechanics tests: bright discs (the feature) and lines in noise."""
    rng = np.random.default_rng(seed)
    shape = (4, 128, 128)
    yy, xx = np.mgrid[: shape[1], : shape[2]]
    truth = np.zeros(shape, bool)
    density = np.zeros(shape, np.float32)
    for z in range(shape[0]):
        for _ in range(7):
            cy, cx = rng.uniform(8, shape[1] - 8, 2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(4, 6) ** 2
            truth[z] |= disc
            density[z] += disc
        for _ in range(3):
            angle, offset = rng.uniform(0, np.pi), rng.uniform(-40, 40)
            distance = np.abs((yy - 64) * np.cos(angle) - (xx - 64) * np.sin(angle) - offset)
            density[z] += (distance < 1.0) & ~truth[z]
    noisy = density + rng.normal(0, 0.6, shape).astype(np.float32)
    return noisy.astype(np.float32), truth


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A phantom tomogram with membranes, and a project with 10 positive + 30 negative tiles."""
    folder = tmp_path_factory.mktemp("train")
    phantom = simulate_tomogram(SHAPE, seed=1)
    truth = phantom.labels == MEMBRANE
    path = write_volume(folder / "tomo.mrc", phantom.tomogram, voxel_size=phantom.voxel_size)
    project = Project.create(folder / "project", tomogram=path)
    project.autosave = False
    project.add_feature("membrane", tile_size=TILE)
    n_pos = n_neg = 0
    rng = np.random.default_rng(1)
    half = TILE // 2
    while n_pos < 10 or n_neg < 30:
        z = int(rng.integers(TRAIN_SLICES))
        y, x = (int(v) for v in rng.integers(half, SHAPE[1] - half, size=2))
        mask = truth[z, y - half : y + half, x - half : x + half]
        if project.tile_at("membrane", z, y, x) is not None:
            continue
        if mask.mean() > 0.05 and n_pos < 10:
            project.set_mask(project.add_tile("membrane", z, y, x).id, mask)
            n_pos += 1
        elif not mask.any() and n_neg < 30:
            project.add_tile("membrane", z, y, x, positive=False)
            n_neg += 1
    project.save()
    project.close()
    return folder, path, phantom.tomogram, truth


@pytest.fixture(scope="module")
def trained(scene):
    folder = scene[0]
    project = Project.open(folder / "project", read_only=True)
    calls = []
    model, info = train_feature(
        project,
        "membrane",
        # a fifth of the tiles held out (not the default) so the validation record can be checked
        TrainingConfig(arch="tiny", epochs=15, copies=4, seed=0, validation_fraction=0.2),
        progress=lambda done, total: calls.append((done, total)),
    )
    return model, info, calls


def _iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


def test_network_learns_the_feature_on_unseen_slices(scene, trained):
    _, _, data, truth = scene
    model, info, _ = trained
    unseen = slice(TRAIN_SLICES + 2, SHAPE[0])
    k = info.z_context  # the default network sees each slice with its neighbours
    window = z_window(unseen.start, unseen.stop, k, SHAPE[0])
    probability = predict_tiles(model, stack_z_context(preprocess_slab(data[window]), k))
    upsampled = np.kron(probability, np.ones((1, 2, 2))) >= info.threshold
    chance = truth[unseen].mean()  # IoU of calling every voxel membrane
    iou = _iou(upsampled, truth[unseen])
    print(f"membrane IoU on unseen slices: {iou:.2f} (chance {chance:.2f})")
    assert iou > max(0.5, 4 * chance)


def test_training_record(trained):
    _, info, calls = trained
    history = info.history
    assert set(history) == {"loss", "val_loss"}
    assert len(history["loss"]) == len(history["val_loss"]) == info.training["epochs_run"]
    assert history["loss"][-1] < history["loss"][0]
    assert min(history["val_loss"]) < history["val_loss"][0]
    assert info.training["n_positive"] == 10 and info.training["n_negative"] == 30
    recorded = TrainingConfig.from_dict(info.training["config"])
    assert recorded == TrainingConfig(
        arch="tiny", epochs=15, copies=4, seed=0, validation_fraction=0.2
    )
    assert len(info.training["validation_tiles"]) == 2 + 6  # 20 % of each class
    assert info.voxel_size == 10.0 and info.arch == "tiny" and info.tile_size == TILE
    assert 0.1 <= info.training["validation_threshold"] <= 0.9
    # the default threshold is the painted tiles' best, and the sidecar says where it came from
    assert info.threshold == info.training["tiles_threshold"]
    assert info.training["config"]["threshold_from"] == "painted-tiles"
    assert calls and calls[-1][0] == len(calls) and calls[0][1] >= calls[-1][0]


def test_held_out_tiles_are_predicted_well(scene, trained):
    folder, _, _, _ = scene
    model, info, _ = trained
    from tomoseg_nb.dataset import collect_tiles, shrink_labels

    project = Project.open(folder / "project", read_only=True)
    tiles = collect_tiles(project, "membrane", z_context=info.z_context)
    held = np.array([t.id in info.training["validation_tiles"] for t in tiles.tiles])
    predicted = predict_tiles(model, tiles.images[held]) >= info.threshold
    truth = shrink_labels(tiles.masks[held], 2) >= 0.5
    assert _iou(predicted, truth) > 0.5
    gallery = plot_tile_gallery(
        tiles.images, tiles.masks, predict_tiles(model, tiles.images), held_out=held, threshold=0.5
    )
    assert isinstance(gallery, Figure) and len(gallery.axes) == 3 * 8
    assert tiles.images.ndim == 4  # z context tiles: the gallery draws each tile's own slice
    np.testing.assert_array_equal(
        gallery.axes[0].images[0].get_array(), tiles.images[0, ..., info.z_context]
    )


def test_split_is_stratified_and_disjoint():
    positive = np.array([True] * 10 + [False] * 100)
    train, held = split_tiles(positive, 0.2, np.random.default_rng(0))
    assert positive[held].sum() == 2 and (~positive[held]).sum() == 20
    assert not set(train) & set(held) and len(train) + len(held) == 110
    few = np.array([True, True, False])
    train, held = split_tiles(few, 0.2, np.random.default_rng(0))
    assert few[held].tolist() == [True] and few[train].tolist() == [True, False]
    with pytest.raises(BadInputError, match="at least 2"):
        split_tiles(np.array([True, False, False]), 0.2, np.random.default_rng(0))
    train, held = split_tiles(np.array([True, False]), 0.0, np.random.default_rng(0))
    assert held.size == 0


def _small_tiles():
    data, truth = _lines_and_discs(seed=2)
    images, masks, positive = [], [], []
    for z in range(4):
        image = preprocess_slice(data[z])
        for y in range(16, 128, 32):
            for x in range(16, 128, 32):
                mask = truth[z, y - 16 : y + 16, x - 16 : x + 16]
                if mask.any() and not mask.mean() > 0.03:
                    continue
                images.append(image[y - 16 : y + 16, x - 16 : x + 16])
                masks.append(mask)
                positive.append(mask.any())
    return np.array(images), np.array(masks), np.array(positive)


def test_same_seed_same_network():
    images, masks, positive = _small_tiles()
    config = TINY.replace(epochs=2, copies=2, seed=4, engine="keras", validation_fraction=0.2)
    first = train_on_tiles(images, masks, positive, config)
    again = train_on_tiles(images, masks, positive, config)
    np.testing.assert_allclose(first.history["loss"], again.history["loss"], rtol=1e-4)
    for a, b in zip(first.model.get_weights(), again.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_array_equal(first.validation_indices, again.validation_indices)


def test_fine_tuning_starts_from_the_given_weights_and_leaves_them_alone(monkeypatch):
    """A correction round continues from the current network: with a vanishing learning rate the
    result is that network's weights, not the seed's fresh ones, and the given model is a copy."""
    from tomoseg_nb import train

    monkeypatch.setattr(train, "MAX_RESTARTS", 0)  # a restart would replace the weights anyway
    images, masks, positive = _small_tiles()
    config = TINY.replace(epochs=1, fine_tune_epochs=1, copies=2, seed=4, engine="keras")
    current = build_model("tiny", seed=99)
    before = [w.copy() for w in current.get_weights()]
    still = config.replace(learning_rate=1e-12)
    result = train_on_tiles(images, masks, positive, still, initial_model=current)
    fresh = build_model("tiny", seed=4).get_weights()
    for tuned, start, new in zip(result.model.get_weights(), before, fresh, strict=True):
        np.testing.assert_allclose(tuned, start, atol=1e-6)
        if tuned.ndim > 1:  # kernels (biases start at zero in both)
            assert not np.allclose(tuned, new, atol=1e-3)
    assert result.model is not current
    trained = train_on_tiles(images, masks, positive, config, initial_model=current)
    for given, start in zip(current.get_weights(), before, strict=True):
        np.testing.assert_array_equal(given, start)  # training moved the copy, not the original
    assert any(
        not np.allclose(a, b) for a, b in zip(trained.model.get_weights(), before, strict=True)
    )
    with pytest.raises(BadInputError, match="not a 'tiny' network"):
        train_on_tiles(images, masks, positive, config, initial_model=build_model("fast", seed=0))


def test_augmentation_and_threshold_settings_reach_the_training(monkeypatch):
    """The EMAN2 recipe's random rotations are what the network is fitted on, known negatives
    included, and its threshold is the one the trained network carries."""
    import tomoseg_nb.train as train_module

    seen = []
    for name in ("build_training_set", "build_known_negative_set"):
        original = getattr(train_module, name)

        def spy(*args, _original=original, **kwargs):
            seen.append(kwargs.get("augmentation"))
            return _original(*args, **kwargs)

        monkeypatch.setattr(train_module, name, spy)
    images, masks, positive = _small_tiles()
    config = TINY.replace(
        epochs=1,
        copies=2,
        seed=4,
        augmentation="random-rotations",
        threshold_from="fixed",
        threshold=0.8,
        validation_fraction=0,
    )
    result = train_on_tiles(
        images, masks, positive, config, known_negatives=(images[:2], masks[:2] | True)
    )
    assert seen == ["random-rotations", "random-rotations"]
    assert result.threshold == 0.8 and result.tiles_threshold is not None


def test_the_stored_threshold_is_the_painted_tiles_best_or_the_fixed_one():
    """By default the network carries the threshold that fits its painted tiles best; "fixed"
    (EMAN2's recipe) and tiles without a painted pixel fall back to ``config.threshold``."""
    chosen = TrainingConfig(threshold=0.6)
    assert chosen_threshold(chosen, 0.35) == 0.35
    assert chosen_threshold(chosen, None) == 0.6
    assert chosen_threshold(chosen.replace(threshold_from="fixed"), 0.35) == 0.6


def test_fft_engine_trains_the_same_network():
    """The spectral twin computes the same convolutions: the same run gives the same losses."""
    images, masks, positive = _small_tiles()
    config = TINY.replace(epochs=2, copies=2, seed=4)
    direct = train_on_tiles(images, masks, positive, config.replace(engine="keras"))
    spectral = train_on_tiles(images, masks, positive, config.replace(engine="fft"))
    assert spectral.engine == "fft" and direct.engine == "keras"
    np.testing.assert_allclose(spectral.history["loss"], direct.history["loss"], rtol=1e-3)
    assert [type(layer).__name__ for layer in spectral.model.layers[1:]] == [
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "Conv2D",
    ]
    for a, b in zip(spectral.model.get_weights(), direct.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)


def test_auto_engine_follows_choose_engine():
    for arch in ("eman2", "tiny"):
        model = build_model(arch)
        assert resolve_engine("auto", model) == choose_engine([model], purpose="train")
    assert resolve_engine("keras", model) == "keras"


def test_cancel_stops_after_the_current_batch():
    images, masks, positive = _small_tiles()
    cancel = threading.Event()
    seen = []

    def stop_after_three(done, total):
        seen.append(done)
        if done == 3:
            cancel.set()

    with pytest.raises(CancelledError, match="cancelled"):
        train_on_tiles(
            images,
            masks,
            positive,
            TINY.replace(epochs=5),
            cancel=cancel,
            progress=stop_after_three,
        )
    assert seen[-1] == 3


def test_early_stopping_restores_the_best_epoch():
    images, masks, positive = _small_tiles()
    record = []

    class Recorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            record.append([w.copy() for w in self.model.get_weights()])

    # a learning rate this large makes the validation loss stop improving almost at once
    result = train_on_tiles(
        images,
        masks,
        positive,
        TINY.replace(epochs=12, copies=2, patience=1, learning_rate=0.5, validation_fraction=0.2),
        callbacks=[Recorder()],
    )
    assert result.stopped_early and len(result.history["loss"]) < 12
    best = int(np.argmin(result.history["val_loss"]))
    for a, b in zip(result.model.get_weights(), record[best], strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_training_input():
    images, masks, positive = _small_tiles()
    with pytest.raises(BadInputError, match="no positive tile"):
        train_on_tiles(images[~positive], masks[~positive], positive[~positive], TINY)
    emptied = masks.copy()
    emptied[np.flatnonzero(positive)[0]] = False
    with pytest.raises(BadInputError, match="empty mask"):
        train_on_tiles(images, emptied, positive, TINY)
    one = np.flatnonzero(positive)[:1].tolist() + np.flatnonzero(~positive).tolist()
    with pytest.raises(BadInputError, match="at least 2"):  # only when tiles are held out
        train_on_tiles(
            images[one], masks[one], positive[one], TINY.replace(validation_fraction=0.2)
        )
    # by default every tile trains, so a single positive tile is enough to start
    single = train_on_tiles(
        images[one], masks[one], positive[one], TINY.replace(epochs=1, copies=1)
    )
    assert single.validation_indices is not None and single.validation_indices.size == 0
    with pytest.raises(BadInputError, match="unknown engine"):
        train_on_tiles(images, masks, positive, TINY.replace(engine="gpu"))
    with pytest.raises(BadInputError, match="stride"):
        train_on_tiles(images[:, :31, :31], masks[:, :31, :31], positive, TINY)


def test_cli_trains_and_refuses_to_overwrite(scene, tmp_path, capsys):
    folder, _, _, _ = scene
    out = tmp_path / "disc.keras"
    argv = ["train", "--project", str(folder / "project"), "--feature", "membrane"]
    argv += ["--out", str(out)]
    argv += ["--arch", "tiny", "--epochs", "2", "--engine", "keras"]
    assert main(argv) == 0
    assert "membrane" in capsys.readouterr().out
    model, info = load_model(out)
    assert (
        info.feature == "membrane" and output_stride(model) == 2 and len(info.history["loss"]) == 2
    )
    assert main(argv) == 2
    assert "exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--feature", "nothing"]) == 2
    assert "no feature 'nothing'" in capsys.readouterr().err


def test_cli_takes_its_recipe_from_the_default_training(scene, tmp_path, monkeypatch):
    # One home for the settings: `train --binning` changes only the binning of the default recipe.
    folder, _, _, _ = scene
    changed = DEFAULT_TRAINING.replace(recipe=replace(DEFAULT_TRAINING.recipe, lowpass=0.1))
    monkeypatch.setattr(training_config, "DEFAULT_TRAINING", changed)
    out = tmp_path / "binned.keras"
    argv = ["train", "--project", str(folder / "project"), "--feature", "membrane"]
    argv += ["--out", str(out), "--arch", "tiny", "--epochs", "1", "--binning", "2"]
    assert main(argv) == 0
    _, info = load_model(out)
    assert info.recipe == replace(changed.recipe, binning=2).to_dict()


def test_training_plots(trained, scene):
    _, info, _ = trained
    figure = plot_loss(info.history)
    axes = figure.axes[0]
    np.testing.assert_allclose(axes.lines[0].get_ydata(), info.history["loss"])
    np.testing.assert_allclose(axes.lines[1].get_ydata(), info.history["val_loss"])
    _, _, _, truth = scene
    rng = np.random.default_rng(0)
    probabilities = np.where(truth[0], rng.uniform(0.6, 1, truth[0].shape), 0.1)
    histogram = plot_probability_histogram(probabilities, truth=truth[0], threshold=0.5)
    counts = [patch.get_height() for patch in histogram.axes[0].patches]
    assert sum(counts) == truth[0].size
    with pytest.raises(BadInputError, match="voxels"):
        plot_probability_histogram(probabilities, truth=truth[0][:10])
    # How the stored threshold was chosen: the tiles' F-beta peaks at it.
    tiles = ThresholdCounts.from_dict(info.training["tiles_counts"])
    beta = info.training["config"]["threshold_beta"]
    figure = plot_tile_thresholds(tiles, beta=beta, chosen=info.threshold, volume=tiles)
    lines = {line.get_label(): line for line in figure.axes[0].lines}
    f_line = lines[f"tiles: F{beta:g}"]
    best = f_line.get_xdata()[int(np.argmax(f_line.get_ydata()))]
    assert best == info.threshold == lines[f"chosen {info.threshold:g}"].get_xdata()[0]
    np.testing.assert_allclose(lines["tomogram: IoU (truth)"].get_ydata(), tiles.iou())
    other_ladder = ThresholdCounts.from_maps(probabilities, truth[0], thresholds=(0.5,))
    with pytest.raises(BadInputError, match="different thresholds"):
        plot_tile_thresholds(tiles, beta=beta, volume=other_ladder)


def test_training_runs_every_epoch_unless_patience_is_asked(scene, tmp_path, capsys, monkeypatch):
    # The protocol's ~2 held-out positive tiles make the validation loss too noisy to stop on:
    # the default is EMAN2's fixed number of epochs; --patience turns early stopping on.
    folder, _, _, _ = scene
    argv = ["train", "--project", str(folder / "project"), "--feature", "membrane"]
    argv += ["--arch", "tiny", "--epochs", "3", "--engine", "keras"]
    assert main([*argv, "--out", str(tmp_path / "all.keras")]) == 0
    _, info = load_model(tmp_path / "all.keras")
    assert len(info.history["loss"]) == 3 and info.training["stopped_early"] is False
    # every tile trains by default (as EMAN2): no tile held out, so no validation loss
    assert info.training["validation_tiles"] == [] and "val_loss" not in info.history

    import tomoseg_nb.train as train_module

    seen = {}
    real = train_module.train_feature

    def spy(project, feature, config, **kwargs):
        seen["config"] = config
        return real(project, feature, config, **kwargs)

    monkeypatch.setattr(train_module, "train_feature", spy)
    assert main([*argv, "--patience", "2", "--out", str(tmp_path / "early.keras")]) == 0
    assert seen["config"].patience == 2
    with pytest.raises(SystemExit) as refused:
        main([*argv, "--patience", "0", "--out", str(tmp_path / "zero.keras")])
    assert refused.value.code == 2 and "--patience" in capsys.readouterr().err

    held_out = tmp_path / "held.keras"
    assert main([*argv, "--validation-fraction", "0.2", "--out", str(held_out)]) == 0
    assert seen["config"].validation_fraction == 0.2
    _, info = load_model(held_out)
    assert len(info.training["validation_tiles"]) > 0 and len(info.history["val_loss"]) == 3
    capsys.readouterr()
    assert (
        main([*argv, "--validation-fraction", "1", "--out", str(tmp_path / "all_out.keras")]) == 2
    )
    assert "validation_fraction must be in [0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "all_out.keras").exists()


def _disks_and_lines(rng: np.random.Generator, kind: str, count: int, size: int = 32):
    """Noisy tiles with two bright disks (the feature) or two bright lines (a look-alike)."""
    yy, xx = np.mgrid[:size, :size]
    masks = np.zeros((count, size, size), bool)
    for mask in masks:
        for _ in range(2):
            cy, cx = rng.uniform(6, size - 6, 2)
            if kind == "disks":
                mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= 16
            elif kind == "lines":
                angle = rng.uniform(0, np.pi)
                mask |= np.abs((yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle)) <= 1.5
    images = (masks * 1.5 + rng.normal(size=masks.shape)).astype(np.float32)
    return images, masks


def _disk_tiles(seed: int, n_disks: int, n_empty: int):
    """Positive tiles of painted disks, then empty negative tiles: images, masks, positive."""
    rng = np.random.default_rng(seed)
    disks, disk_masks = _disks_and_lines(rng, "disks", n_disks)
    empty, empty_masks = _disks_and_lines(rng, "none", n_empty)
    images, masks = np.concatenate([disks, empty]), np.concatenate([disk_masks, empty_masks])
    return images, masks, np.arange(len(images)) < n_disks


def test_other_features_painted_pixels_teach_the_network_to_say_no():
    """Lines never show on the disk tiles or the random negatives, so a disk network fires on
    them too; the same run with painted lines as known negatives fires far less there and still
    finds the disks."""
    rng = np.random.default_rng(0)
    disks, disk_masks = _disks_and_lines(rng, "disks", 8)
    empty, empty_masks = _disks_and_lines(rng, "none", 16)
    painted_lines = _disks_and_lines(rng, "lines", 8)
    test_lines, line_truth = _disks_and_lines(rng, "lines", 20)
    test_disks, disk_truth = _disks_and_lines(rng, "disks", 20)
    images = np.concatenate([disks, empty])
    masks = np.concatenate([disk_masks, empty_masks])
    positive = np.arange(len(images)) < len(disks)

    def mean_response(result, tiles, truth):
        return np.kron(predict_tiles(result.model, tiles), np.ones((1, 2, 2)))[truth].mean()

    config = TINY.replace(epochs=15, copies=4, seed=0, validation_fraction=0)
    plain = train_on_tiles(images, masks, positive, config)
    taught = train_on_tiles(images, masks, positive, config, known_negatives=painted_lines)
    on_lines = mean_response(plain, test_lines, line_truth)
    print(
        f"mean probability on lines: {on_lines:.2f} -> {mean_response(taught, test_lines, line_truth):.2f}"
    )
    assert on_lines > 0.3
    assert mean_response(taught, test_lines, line_truth) < 0.5 * on_lines
    assert mean_response(taught, test_disks, disk_truth) > 0.5


def test_a_dead_network_is_trained_again_from_new_weights(monkeypatch):
    """A network whose last layer died (all-zero weights, frozen, negative bias) answers "no"
    everywhere. Training starts again from new weights; if every start collapses, it says so."""
    import tomoseg_nb.train as train_module

    built = []

    def dying_network(first_dead: int):
        def build(arch, seed=None, channels=1):
            model = build_model(arch, seed=seed, channels=channels)
            built.append(seed)
            if len(built) <= first_dead:
                last = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
                kernel, bias = last[-1].get_weights()
                last[-1].set_weights([np.zeros_like(kernel), np.full_like(bias, -1.0)])
                last[-1].trainable = False
            return model

        return build

    images, masks, positive = _disk_tiles(seed=1, n_disks=6, n_empty=8)
    config = TINY.replace(epochs=10, copies=2, seed=0, validation_fraction=0)

    monkeypatch.setattr(train_module, "build_model", dying_network(first_dead=1))
    with pytest.warns(
        TrainingCollapsedWarning, match=r"restarting from new random weights \(1 of 2\)"
    ):
        revived = train_on_tiles(images, masks, positive, config)
    assert revived.restarts == 1 and revived.painted_recall > 0.3
    assert built == [0, 1000]

    built.clear()
    monkeypatch.setattr(train_module, "build_model", dying_network(first_dead=99))
    with pytest.warns(TrainingCollapsedWarning) as caught:
        dead = train_on_tiles(images, masks, positive, config.replace(epochs=2))
    messages = [str(w.message) for w in caught]
    assert sum("restarting" in m for m in messages) == train_module.MAX_RESTARTS
    assert any(f"after {train_module.MAX_RESTARTS} restarts" in m for m in messages)
    assert dead.restarts == train_module.MAX_RESTARTS and dead.painted_recall == 0.0


def test_predicting_with_many_networks_does_not_retrace():
    """One network per feature, each asked for tiles of a few sizes (its painted tiles, its
    held-out tiles): ``model.predict`` would compile a function each time, and TensorFlow logs a
    retracing warning into the notebook after a few networks."""
    logged = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    handler = Collect()
    logging.getLogger("tensorflow").addHandler(handler)
    tiles = np.random.default_rng(0).normal(size=(40, 32, 32)).astype(np.float32)
    try:
        for seed in range(4):
            model = build_model("tiny", seed=seed)
            for count in (3, 5, 40):
                predicted = predict_tiles(model, tiles[:count], batch_size=16)
                assert predicted.shape == (count, 16, 16)
    finally:
        logging.getLogger("tensorflow").removeHandler(handler)
    assert not [message for message in logged if "retracing" in message]


@pytest.mark.parametrize("extra_lowpass", [(), (0.0,)])
def test_z_context_network_trains_and_segments_unseen_slices(scene, tmp_path, extra_lowpass):
    """z context 1: tiles of 3 slices (each one or two filterings), a 3- or 6-channel network,
    both in the sidecar, and ``segment`` (not told) feeding each slice with its neighbours; it
    finds the membranes."""
    from tomoseg_nb.models import save_model
    from tomoseg_nb.segment import segment_volume
    from tomoseg_nb.volume import open_volume

    folder, path, _, truth = scene
    project = Project.open(folder / "project", read_only=True)
    recipe = Recipe(extra_lowpass=extra_lowpass)
    config = TrainingConfig(arch="tiny", epochs=15, copies=4, seed=0, z_context=1, recipe=recipe)
    model, info = train_feature(project, "membrane", config)
    assert model.input_shape[-1] == config.input_channels and info.z_context == 1
    assert info.training["config"]["z_context"] == 1 and Recipe.from_dict(info.recipe) == recipe
    saved = save_model(model, info, tmp_path / "membrane.keras")
    (map_path,) = segment_volume([saved], path, tmp_path / "maps", engine="keras")
    with open_volume(map_path) as volume:
        probability = volume.read()
    assert probability.shape == SHAPE and np.isfinite(probability).all()
    unseen = slice(TRAIN_SLICES + 2, SHAPE[0])
    chance = truth[unseen].mean()
    iou = _iou(probability[unseen] >= info.threshold, truth[unseen])
    print(
        f"z context 1, extra lowpass {extra_lowpass}: membrane IoU on unseen slices {iou:.2f} (chance {chance:.2f})"
    )
    assert iou > max(0.5, 4 * chance)


def test_z_context_tiles_need_a_network_of_as_many_channels():
    images, masks, positive = _small_tiles()
    stacked = np.stack([images] * 3, axis=-1)
    with pytest.raises(BadInputError, match=r"3 channel.*z context 0 with 1 .* needs 1"):
        train_on_tiles(stacked, masks, positive, TINY.replace(epochs=1))
    with pytest.raises(BadInputError, match=r"1 channel.*z context 1 with 1 .* needs 3"):
        train_on_tiles(images, masks, positive, TINY.replace(epochs=1, z_context=1))
    two_filters = TINY.replace(epochs=1, z_context=1, recipe=Recipe(extra_lowpass=(0.0,)))
    with pytest.raises(BadInputError, match=r"3 channel.*z context 1 with 2 .* needs 6"):
        train_on_tiles(stacked, masks, positive, two_filters)
    result = train_on_tiles(
        stacked, masks, positive, TINY.replace(epochs=1, z_context=1, validation_fraction=0)
    )
    assert result.model.input_shape[-1] == 3


def test_cli_z_context_is_saved_and_segment_reads_it(scene, tmp_path, capsys):
    folder, path, _, _ = scene
    out = tmp_path / "z.keras"
    argv = ["train", "--project", str(folder / "project"), "--feature", "membrane"]
    argv += ["--arch", "tiny", "--epochs", "1", "--engine", "keras"]
    assert main([*argv, "--z-context", "1", "--out", str(out)]) == 0
    assert "z context 1" in capsys.readouterr().out
    _, info = load_model(out)
    assert info.z_context == 1
    assert main(["segment", "--model", str(out), str(path), "--out", str(tmp_path / "maps")]) == 0
    assert (tmp_path / "maps").is_dir() and len(list((tmp_path / "maps").glob("*.mrc"))) == 1
    with pytest.raises(SystemExit) as refused:
        main([*argv, "--z-context", "-1", "--out", str(tmp_path / "neg.keras")])
    error = capsys.readouterr().err
    assert refused.value.code == 2
    assert "--z-context: must be a whole number >= 0, got -1" in error


def test_cli_threshold_beta_chooses_on_the_tiles_and_is_recorded(scene, tmp_path, capsys):
    """``--threshold-beta 1`` stores the painted tiles' IoU-best threshold; a bad beta is refused
    before any training, with what to give instead."""
    folder, _, _, _ = scene
    out = tmp_path / "beta.keras"
    argv = ["train", "--project", str(folder / "project"), "--feature", "membrane"]
    argv += ["--arch", "tiny", "--epochs", "2", "--engine", "keras", "--seed", "3"]
    assert main([*argv, "--threshold-beta", "1", "--out", str(out)]) == 0
    _, info = load_model(out)
    assert info.training["config"]["threshold_beta"] == 1.0
    tiles = ThresholdCounts.from_dict(info.training["tiles_counts"])
    assert info.threshold == tiles.thresholds[int(np.argmax(tiles.iou()))]
    assert main([*argv, "--threshold-beta", "0", "--out", str(tmp_path / "zero.keras")]) == 2
    assert "threshold_beta must be a positive number" in capsys.readouterr().err
    assert not (tmp_path / "zero.keras").exists()


def test_a_fine_tuning_runs_its_own_epochs_and_a_collapsed_one_restarts_not_fine_tuned(monkeypatch):
    """A correction round fine-tunes the last network; if that training collapses, it restarts
    from new random weights, and the result (and so the sidecar) must not claim it was fine-tuned."""

    images, masks, positive = _disk_tiles(seed=2, n_disks=6, n_empty=6)
    # at tiny's own 3e-3 two epochs of fine-tuning this toy keep 14 % of the 99 % of painted
    # pixels it found (a fresh optimiser's first steps are large), which counts as a collapse
    # (the next test); at 1e-3 they keep 82 %
    config = TINY.replace(
        epochs=3, fine_tune_epochs=2, copies=2, seed=0, validation_fraction=0, learning_rate=1e-3
    )
    first = train_on_tiles(images, masks, positive, config)
    assert not first.fine_tuned and len(first.history["loss"]) == 3
    # no tile held out: no validation threshold, but every tile still chooses one
    from tomoseg_nb.dataset import shrink_labels

    every_tile = best_threshold(
        predict_tiles(first.model, images), shrink_labels(masks, 2), config.threshold_beta
    )
    assert first.validation_threshold is None and first.tiles_threshold == every_tile

    tuned = train_on_tiles(images, masks, positive, config, initial_model=first.model)
    assert tuned.fine_tuned and tuned.restarts == 0
    assert len(tuned.history["loss"]) == 2  # a fine-tune's epochs

    _collapse_the_fine_tune(monkeypatch)
    with pytest.warns(TrainingCollapsedWarning, match="restarting from new random weights"):
        restarted = train_on_tiles(images, masks, positive, config, initial_model=first.model)
    assert restarted.restarts == 1 and not restarted.fine_tuned
    assert len(restarted.history["loss"]) == 3  # new weights get a whole training's epochs


def _collapse_the_fine_tune(monkeypatch) -> None:
    """Make the next fine-tune look collapsed: its network finds none of the painted pixels."""
    import tomoseg_nb.train as train_module

    real_recall = train_module._painted_recall
    calls = []

    def fine_tune_collapsed(*args, **kwargs):  # 1st call: the start, 2nd: after fine-tuning
        calls.append(1)
        return 0.0 if len(calls) == 2 else real_recall(*args, **kwargs)

    monkeypatch.setattr(train_module, "_painted_recall", fine_tune_collapsed)


@pytest.mark.parametrize(("kept", "restarts"), [(0.4, 1), (0.6, 0)])
def test_a_fine_tuning_that_loses_most_of_what_its_network_found_restarts(
    monkeypatch, kept, restarts
):
    """Fine-tuning once took a ribosome network from 66 % of its painted pixels to 0.7 % (IoU
    0.62 -> 0): not "none at all", yet wrecked. Keeping under half of the start's painted recall
    counts as a collapse; keeping more is an ordinary fine-tune."""
    import tomoseg_nb.train as train_module

    images, masks, positive = _disk_tiles(seed=2, n_disks=6, n_empty=6)
    config = TINY.replace(epochs=3, fine_tune_epochs=2, copies=2, seed=0, validation_fraction=0)
    first = train_on_tiles(images, masks, positive, config)
    real_recall = train_module._painted_recall
    recalls = []

    def fine_tune_keeps(*args, **kwargs):
        recall = real_recall(*args, **kwargs)
        if len(recalls) == 1:  # right after the fine-tune: keep `kept` of the start's recall
            recall = kept * recalls[0]
        recalls.append(recall)
        return recall

    monkeypatch.setattr(train_module, "_painted_recall", fine_tune_keeps)
    assert train_module.FINE_TUNE_KEPT_FRACTION == 0.5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuned = train_on_tiles(images, masks, positive, config, initial_model=first.model)
    lost = [w for w in caught if "lost what it found in fine-tuning" in str(w.message)]
    assert recalls[0] > 0.3 and tuned.restarts == restarts and len(lost) == restarts
    assert tuned.fine_tuned == (restarts == 0)
    if restarts:
        assert f"{recalls[0]:.1%} of the pixels painted" in str(lost[0].message)
        assert len(tuned.history["loss"]) == 3  # new weights: a whole training's epochs


def test_cli_threshold_fixes_the_networks_threshold(scene, tmp_path, capsys):
    """``train --threshold`` stores that threshold instead of the painted tiles' choice, and a
    value that is not a probability is refused before any training."""
    folder, _, _, _ = scene
    out = tmp_path / "fixed.keras"
    argv = ["train", "--project", str(folder / "project"), "--feature", "membrane"]
    argv += ["--arch", "tiny", "--epochs", "1", "--engine", "keras", "--z-context", "0"]
    assert main([*argv, "--threshold", "0.7", "--out", str(out)]) == 0
    assert "threshold 0.7" in capsys.readouterr().out
    _, info = load_model(out)
    assert info.threshold == 0.7 and info.training["config"]["threshold_from"] == "fixed"
    assert main([*argv, "--threshold", "1.5", "--out", str(tmp_path / "bad.keras")]) != 0
    assert "threshold must be a probability in (0, 1), got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "bad.keras").exists()


def test_a_fine_tune_learns_at_the_scaled_rate_and_a_restart_at_the_full_one(monkeypatch):
    """On the toy where two epochs at tiny's own 3e-3 keep 14 % of what the network found (a
    wreck, see above), a third of the rate fine-tunes it without a restart; when a fine-tune
    collapses anyway, its new weights train at the full rate."""
    import tomoseg_nb.train as train_module

    images, masks, positive = _disk_tiles(seed=2, n_disks=6, n_empty=6)
    config = TINY.replace(
        epochs=3, fine_tune_epochs=2, copies=2, seed=0, validation_fraction=0,
        fine_tune_learning_rate_scale=1 / 3,
    )  # fmt: skip
    first = train_on_tiles(images, masks, positive, config)
    real_fit, rates = train_module._fit, []

    def recording_fit(*args, **kwargs):
        rates.append(kwargs["learning_rate"])
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train_module, "_fit", recording_fit)
    tuned = train_on_tiles(images, masks, positive, config, initial_model=first.model)
    assert rates == [pytest.approx(1e-3)]
    assert tuned.fine_tuned and tuned.restarts == 0
    assert tuned.painted_recall >= train_module.FINE_TUNE_KEPT_FRACTION * first.painted_recall

    _collapse_the_fine_tune(monkeypatch)
    rates.clear()
    with pytest.warns(TrainingCollapsedWarning, match="restarting from new random weights"):
        train_on_tiles(images, masks, positive, config, initial_model=first.model)
    assert rates == [pytest.approx(1e-3), pytest.approx(3e-3)]
