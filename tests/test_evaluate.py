"""The simulated annotator and the evaluate protocol, end to end on a small phantom."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tomoseg_nb.annotations import tile_bounds
from tomoseg_nb.cli import main
from tomoseg_nb.errors import BadInputError
from tomoseg_nb.evaluate import (
    THRESHOLD_SWEEP,
    TILE_THRESHOLDS,
    iou_by_threshold,
    score_map,
    simulate_annotation,
)
from tomoseg_nb.synthetic import simulate_tomogram, write_tomogram_phantom
from tomoseg_nb.thresholds import ThresholdCounts, best_f_threshold
from tomoseg_nb.training_config import TrainingConfig
from tomoseg_nb.volume import open_volume


@pytest.fixture(scope="module")
def labels():
    volume = np.zeros((6, 160, 160), np.uint8)
    volume[:, 40:44, :] = 1  # a membrane-like sheet
    volume[2:4, 100:110, 100:110] = 3  # one small particle
    return volume


def test_positive_tiles_show_the_feature_and_masks_are_the_truth(labels):
    tiles = simulate_annotation(labels, 1, n_positive=5, n_negative=8, tile_size=32, seed=3)
    positives = [t for t in tiles if t.positive]
    negatives = [t for t in tiles if not t.positive]
    assert len(positives) == 5 and len(negatives) == 8
    for tile in tiles:
        y0, y1, x0, x1 = tile_bounds(tile.y, tile.x, tile.size)
        assert 0 <= y0 and y1 <= 160 and 0 <= x0 and x1 <= 160
        truth = labels[tile.z, y0:y1, x0:x1] == 1
        if tile.positive:
            np.testing.assert_array_equal(tile.mask, truth)
            assert truth.mean() >= 0.03
        else:
            assert not truth.any()
    for a in positives:
        for b in positives:
            if a is not b and a.z == b.z:
                assert max(abs(a.y - b.y), abs(a.x - b.x)) >= 32, "positive tiles overlap"


def test_annotation_is_deterministic_by_seed(labels):
    first = simulate_annotation(labels, 1, n_positive=3, n_negative=4, tile_size=32, seed=7)
    again = simulate_annotation(labels, 1, n_positive=3, n_negative=4, tile_size=32, seed=7)
    assert [(t.z, t.y, t.x) for t in first] == [(t.z, t.y, t.x) for t in again]


def test_rare_or_absent_feature_gives_a_clear_error(labels):
    with pytest.raises(BadInputError, match="non-overlapping positive tiles"):
        simulate_annotation(labels, 3, n_positive=10, n_negative=4, tile_size=32)
    with pytest.raises(BadInputError, match="no positive tile"):
        simulate_annotation(labels, 2, n_positive=1, n_negative=1, tile_size=32)
    with pytest.raises(BadInputError, match="larger than the slices"):
        simulate_annotation(labels, 1, tile_size=256)


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    phantom = simulate_tomogram((24, 160, 160), seed=4)
    return write_tomogram_phantom(phantom, tmp_path_factory.mktemp("phantom"))


@pytest.mark.parametrize("method", ["cnn", "rf"])
def test_evaluate_cli_runs_the_protocol_and_keeps_outputs(phantom_files, tmp_path, method):
    report_path, keep = tmp_path / "scores.json", tmp_path / "keep"
    argv = [
        "evaluate",
        "--tomogram", str(phantom_files["tomogram"]),
        "--truth", str(phantom_files["labels"]),
        "--feature", "ribosome=3",
        "--n-pos", "4", "--n-neg", "12", "--tile-size", "32",
        "--method", method, "--arch", "tiny", "--epochs", "3", "--seed", "1",
        "--keep", str(keep), "--json", str(report_path),
    ]  # fmt: skip
    if method == "rf":  # the forest keeps a fixed threshold: the one given
        argv += ["--threshold", "0.4"]
    assert main(argv) == 0
    report = json.loads(report_path.read_text())
    scores = report["features"]["ribosome"]
    for key in (
        "iou",
        "dice",
        "precision",
        "recall",
        "train_seconds",
        "segment_seconds",
        "voxels_per_second",
    ):
        assert np.isfinite(scores[key])
    assert 0.0 <= scores["iou"] <= scores["dice"] <= 1.0
    assert (keep / "ribosome.mrc").exists()
    # The threshold diagnostics read the kept map again.
    assert set(scores["iou_by_threshold"]) == {f"{t:g}" for t in THRESHOLD_SWEEP}
    if method == "rf":
        assert scores["threshold"] == 0.4
        assert scores["iou_by_threshold"]["0.4"] == pytest.approx(scores["iou"])
    if method == "cnn":
        assert (keep / "ribosome.keras").exists() and (keep / "ribosome.json").exists()
        sidecar = json.loads((keep / "ribosome.json").read_text())
        truth = open_volume(phantom_files["labels"]).read() == 3
        # By default every tile is trained on: no held-out tiles, so no threshold of theirs.
        assert sidecar["training"]["validation_threshold"] is None
        assert scores["validation_threshold"] is None
        assert scores["iou_at_validation_threshold"] is None
        chosen = sidecar["training"]["tiles_threshold"]
        assert scores["tiles_threshold"] == chosen and 0.1 <= chosen <= 0.9
        expected = score_map(keep / "ribosome.mrc", truth, chosen)["iou"]
        assert scores["iou_at_tiles_threshold"] == pytest.approx(expected)
        # the network's own threshold, the score's, is the one that fits all painted tiles best
        assert scores["threshold"] == sidecar["training"]["tiles_threshold"]
        assert scores["iou"] == pytest.approx(scores["iou_at_tiles_threshold"])
        # The recorded counts reproduce both: the tiles' choice, and the map's IoU at it.
        tiles = ThresholdCounts.from_dict(scores["tiles_counts"])
        beta = sidecar["training"]["config"]["threshold_beta"]
        assert best_f_threshold(tiles, beta) == scores["threshold"]
        volume = ThresholdCounts.from_dict(scores["volume_counts"])
        at = volume.thresholds.index(scores["threshold"])
        assert volume.iou()[at] == pytest.approx(scores["iou"])
        assert volume.painted == truth.sum()
    else:
        assert all(scores[key] is None for key in TILE_THRESHOLDS)
        assert scores["tiles_counts"] is None
        assert ThresholdCounts.from_dict(scores["volume_counts"]).iou()[6] == pytest.approx(
            scores["iou_by_threshold"]["0.4"]
        )


def test_iou_by_threshold_on_a_hand_made_map(tmp_path):
    """A ramp of probabilities against a truth of the upper half: IoU is 1 exactly where the
    threshold splits the ramp at the truth's edge, and falls on both sides."""
    from tomoseg_nb.maps import encode_probabilities
    from tomoseg_nb.volume import write_volume

    probability = np.repeat(np.linspace(0.0, 1.0, 11)[None, None, :], 4, axis=1).astype(np.float32)
    truth = probability >= 0.5
    path = write_volume(tmp_path / "ramp.mrc", encode_probabilities(probability, "float32"))
    sweep = iou_by_threshold(path, truth, (0.3, 0.5, 0.7))
    assert sweep["0.5"] == 1.0
    assert sweep["0.3"] == pytest.approx(6 / 8) and sweep["0.7"] == pytest.approx(4 / 6)


def test_evaluate_refuses_truth_of_another_shape(phantom_files, tmp_path, capsys):
    from tomoseg_nb.volume import write_volume

    wrong = tmp_path / "wrong.mrc"
    write_volume(wrong, np.zeros((4, 16, 16), np.uint8))
    status = main(
        ["evaluate", "--tomogram", str(phantom_files["tomogram"]), "--truth", str(wrong),
         "--feature", "membrane=1", "--json", str(tmp_path / "s.json")]
    )  # fmt: skip
    assert status == 2
    assert "shape" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


def test_all_features_share_one_project_and_absent_ones_can_be_skipped(phantom_files, tmp_path):
    """The networks of one evaluation learn from each other's painted pixels, so the annotator
    works in one project; a feature it cannot find is an error, or skipped when asked."""
    from tomoseg_nb.annotations import Project
    from tomoseg_nb.errors import BadInputError
    from tomoseg_nb.evaluate import PROJECT_NAME, evaluate
    from tomoseg_nb.models import sidecar_path

    features = {"ribosome": 3, "membrane": 1, "microtubule": 2}  # this phantom has no membrane
    options = {"n_positive": 3, "n_negative": 6, "tile_size": 32}
    options["config"] = TrainingConfig(arch="tiny", epochs=1)
    with pytest.raises(BadInputError, match="label 1"):
        evaluate(phantom_files["tomogram"], phantom_files["labels"], features, **options)
    done = []
    report = evaluate(
        phantom_files["tomogram"],
        phantom_files["labels"],
        features,
        keep=tmp_path,
        skip_absent=True,
        on_feature_done=done.append,
        **options,
    )
    assert done == ["ribosome", "microtubule"] and set(report["features"]) == set(done)
    assert list(report["skipped"]) == ["membrane"] and "label 1" in report["skipped"]["membrane"]
    with Project.open(tmp_path / PROJECT_NAME, read_only=True) as project:
        assert list(project.features) == ["ribosome", "microtubule"]
    for name, others in (("ribosome", 3), ("microtubule", 3)):  # the other's 3 positive tiles
        training = json.loads(sidecar_path(tmp_path / f"{name}.keras").read_text())["training"]
        assert training["n_other_feature_tiles"] == others


ROUND_FEATURES = {"ribosome": 3, "microtubule": 2}
SMALL_PROTOCOL = {"n_positive": 3, "n_negative": 6, "tile_size": 32}
"""A few small tiles per feature: enough to train a tiny network and run rounds on the phantom."""


def test_correction_rounds_add_suggested_tiles_retrain_and_score_each_round(
    phantom_files, tmp_path, monkeypatch
):
    """Each round paints the suggested tiles from the truth into the same project, fine-tunes every
    network from its current weights on all the tiles so far, and reports that round's scores;
    the next round suggests at the thresholds of the networks the last one trained."""
    import tomoseg_nb.evaluate as evaluate_module
    from tomoseg_nb.annotations import Project, tile_bounds
    from tomoseg_nb.evaluate import PROJECT_NAME, evaluate
    from tomoseg_nb.models import sidecar_path
    from tomoseg_nb.volume import open_volume

    suggested_at = []
    real_round = evaluate_module.correction_round

    def recording_round(*args, **kwargs):
        suggested_at.append(dict(kwargs["thresholds"]))
        return real_round(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "correction_round", recording_round)

    report = evaluate(
        phantom_files["tomogram"],
        phantom_files["labels"],
        ROUND_FEATURES,
        keep=tmp_path,
        **SMALL_PROTOCOL,
        config=TrainingConfig(arch="tiny", epochs=2, engine="keras"),
        rounds=2,
        round_tiles=3,
        round_epochs=1,
    )
    assert report["rounds"] == 2 and report["round_selection"] == "suggested"
    features = report["features"]
    assert suggested_at == [
        {name: features[name]["threshold"] for name in ROUND_FEATURES},
        {name: features[name]["rounds"][0]["threshold"] for name in ROUND_FEATURES},
    ]
    labels = open_volume(phantom_files["labels"]).data[...]
    with Project.open(tmp_path / PROJECT_NAME, read_only=True) as project:
        for name, feature_id in ROUND_FEATURES.items():
            scores = report["features"][name]
            assert len(scores["iou_per_round"]) == 3 and scores["iou_per_round"][0] == scores["iou"]
            first = {(t.z, t.y, t.x) for t in project.tiles_of(name)[:9]}
            for number, entry in enumerate(scores["rounds"], start=1):
                assert entry["round"] == number and entry["selection"] == "suggested"
                assert scores["iou_per_round"][number] == entry["iou"]
                assert entry["n_positive"] + entry["n_negative"] == 9 + 3 * number  # retrained
                assert len(entry["tiles"]) == 3 and entry["round_seconds"] > 0
                assert [t[3] for t in entry["tiles"]] == sorted(
                    (t[3] for t in entry["tiles"]), reverse=True
                )
                for z, y, x, _, _, positive in entry["tiles"]:
                    assert (z, y, x) not in first
                    y0, y1, x0, x1 = tile_bounds(y, x, 32)
                    assert positive == bool((labels[z, y0:y1, x0:x1] == feature_id).any())
                    tile = project.tile_at(name, z, y, x)
                    assert tile is not None and tile.positive == positive
                    if positive:  # painted from the truth, as the first round paints
                        np.testing.assert_array_equal(
                            project.mask(tile.id), labels[z, y0:y1, x0:x1] == feature_id
                        )
            assert len(project.tiles_of(name)) == 9 + 2 * 3
            training = json.loads(sidecar_path(tmp_path / f"{name}.keras").read_text())["training"]
            # a round grows from the last network's weights unless that tiny 1-epoch training
            # collapsed and restarted from new ones (test_train covers both cases directly)
            assert training["fine_tuned"] == (training["restarts"] == 0)
            assert training["config"]["fine_tune_epochs"] == 1  # round_epochs
            # a fine-tune runs round_epochs; new weights after a collapse the config's 2
            assert training["epochs_run"] == (1 if training["fine_tuned"] else 2)
            assert training["n_positive"] + training["n_negative"] == 15


def test_random_rounds_are_the_control_and_bad_round_settings_are_refused(
    phantom_files, tmp_path, capsys
):
    from tomoseg_nb.evaluate import evaluate
    from tomoseg_nb.models import sidecar_path

    report_path = tmp_path / "scores.json"
    argv = [
        "evaluate",
        "--tomogram", str(phantom_files["tomogram"]),
        "--truth", str(phantom_files["labels"]),
        "--feature", "ribosome=3",
        "--n-pos", "3", "--n-neg", "6", "--tile-size", "32",
        "--arch", "tiny", "--epochs", "1", "--engine", "keras",
        "--rounds", "1", "--round-tiles", "2", "--round-selection", "random",
        "--retrain-from-scratch", "--keep", str(tmp_path / "keep"), "--json", str(report_path),
    ]  # fmt: skip
    assert main(argv) == 0
    assert "IoU per round" in capsys.readouterr().out
    report = json.loads(report_path.read_text())
    entry = report["features"]["ribosome"]["rounds"][0]
    assert entry["selection"] == "random" and {t[4] for t in entry["tiles"]} == {"random"}
    assert len(entry["tiles"]) == 2 and len(report["features"]["ribosome"]["iou_per_round"]) == 2
    sidecar = sidecar_path(tmp_path / "keep" / "ribosome.keras")
    assert json.loads(sidecar.read_text())["training"]["fine_tuned"] is False
    options = {"tile_size": 32, "config": TrainingConfig(arch="tiny", epochs=1)}
    for bad, message in (
        ({"rounds": -1}, "rounds"),
        ({"rounds": 1, "round_tiles": 0}, "round_tiles"),
        ({"rounds": 1, "round_selection": "best"}, "round selection"),
    ):
        with pytest.raises(BadInputError, match=message):
            evaluate(
                phantom_files["tomogram"],
                phantom_files["labels"],
                {"ribosome": 3},
                **options,
                **bad,
            )


def _one_ribosome_round(phantom_files, tmp_path, *, tiles: int, selection: str) -> dict:
    """The small protocol's first training and one round of ``tiles`` tiles for the ribosome."""
    from tomoseg_nb.evaluate import evaluate

    return evaluate(
        phantom_files["tomogram"],
        phantom_files["labels"],
        {"ribosome": 3},
        keep=tmp_path,
        **SMALL_PROTOCOL,
        config=TrainingConfig(arch="tiny", epochs=1, engine="keras"),
        rounds=1,
        round_tiles=tiles,
        round_selection=selection,
        round_epochs=1,
    )


def test_mixed_rounds_take_half_suggested_tiles_and_the_rest_random(phantom_files, tmp_path):
    """``mixed``: of 3 tiles, the 2 best suggestions and 1 random tile, which shares at most half
    of its pixels with any of them (as with every annotated tile)."""
    from tomoseg_nb.suggest import MAX_SHARED_FRACTION, MIN_Z_DISTANCE

    report = _one_ribosome_round(phantom_files, tmp_path, tiles=3, selection="mixed")
    assert report["round_selection"] == "mixed"
    tiles = report["features"]["ribosome"]["rounds"][0]["tiles"]
    assert [tile[4] == "random" for tile in tiles] == [False, False, True]
    (z, y, x), size = tiles[2][:3], SMALL_PROTOCOL["tile_size"]
    for other in tiles[:2]:
        shared = max(0, size - abs(other[1] - y)) * max(0, size - abs(other[2] - x))
        assert abs(other[0] - z) >= MIN_Z_DISTANCE or shared <= MAX_SHARED_FRACTION * size**2


def test_a_round_with_more_tiles_than_fit_says_so_and_records_what_it_added(
    phantom_files, tmp_path
):
    """A round that cannot place every tile asked for (the tomogram is full of annotated or
    already chosen tiles) warns and records how many it added, instead of quietly measuring a
    smaller round as if it were the asked one."""
    asked = 500  # far more 32 px tiles than a 24 x 160 x 160 tomogram holds apart
    with pytest.warns(UserWarning, match=rf"only \d+ of {asked} new tiles fit for 'ribosome'"):
        report = _one_ribosome_round(phantom_files, tmp_path, tiles=asked, selection="random")
    entry = report["features"]["ribosome"]["rounds"][0]
    assert 0 < entry["added"] == len(entry["tiles"]) < asked
    assert entry["added_positive"] == sum(1 for tile in entry["tiles"] if tile[-1])


def test_cli_z_context_reaches_the_config_and_the_forest_refuses_it(tmp_path, monkeypatch, capsys):
    import tomoseg_nb.evaluate as evaluate_module
    from tomoseg_nb.training_config import DEFAULT_Z_CONTEXT

    seen = {}

    def spy(*args, **kwargs):
        seen["config"] = kwargs["config"]
        return {"features": {}}

    argv = ["evaluate", "--tomogram", "t.mrc", "--truth", "l.mrc", "--feature", "membrane=1"]
    monkeypatch.setattr(evaluate_module, "evaluate", spy)
    assert main([*argv, "--z-context", "1", "--json", str(tmp_path / "a.json")]) == 0
    assert seen["config"].z_context == 1
    assert main([*argv, "--json", str(tmp_path / "b.json")]) == 0
    assert seen["config"].z_context == DEFAULT_Z_CONTEXT == 3  # the network's default
    assert main([*argv, "--method", "rf", "--json", str(tmp_path / "c.json")]) == 0
    assert seen["config"].z_context == 0  # the forest's default: single slices
    monkeypatch.undo()
    out = str(tmp_path / "rf.json")
    assert main([*argv, "--method", "rf", "--z-context", "1", "--json", out]) == 2
    assert "random-forest baseline classifies single slices" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main([*argv, "--z-context", "-2", "--json", out])
    assert refused.value.code == 2
    assert "--z-context: must be a whole number >= 0, got -2" in capsys.readouterr().err


def test_forest_refuses_z_context_tiles():
    from tomoseg_nb.pixel_classifier import train_pixel_classifier

    with pytest.raises(BadInputError, match="no z context"):
        train_pixel_classifier(
            np.zeros((2, 8, 8, 3)), np.ones((2, 8, 8), bool), np.array([True, False])
        )


def test_forest_refuses_a_recipe_of_several_channels_per_slice():
    from tomoseg_nb.evaluate import method_config
    from tomoseg_nb.preprocess import Recipe
    from tomoseg_nb.training_config import DEFAULT_TRAINING

    config = DEFAULT_TRAINING.replace(z_context=0, recipe=Recipe(extra_lowpass=(0.0,)))
    with pytest.raises(BadInputError, match=r"extra_lowpass.*one channel per slice"):
        method_config("rf", config)
    assert method_config("cnn", config) == config


def test_each_method_has_its_own_default_config():
    from tomoseg_nb.evaluate import method_config
    from tomoseg_nb.training_config import DEFAULT_TRAINING

    assert method_config("cnn") == DEFAULT_TRAINING and DEFAULT_TRAINING.z_context > 0
    assert method_config("rf") == DEFAULT_TRAINING.replace(z_context=0)  # the forest is 2D
    chosen = DEFAULT_TRAINING.replace(z_context=1, seed=3)
    assert method_config("cnn", chosen) is chosen
    with pytest.raises(BadInputError, match="random-forest baseline classifies single slices"):
        method_config("rf", chosen)
    with pytest.raises(BadInputError, match="unknown method 'svm'; choose one of cnn, rf"):
        method_config("svm")
