"""``tomoseg-nb demo``: the whole pipeline on a small phantom writes every promised output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tomoseg_nb.cli import main
from tomoseg_nb.coords import read_picks
from tomoseg_nb.demo import run_demo
from tomoseg_nb.errors import BadInputError, OutputExistsError
from tomoseg_nb.training_config import TrainingConfig


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    report = run_demo(
        out,
        shape=(24, 160, 160),
        config=TrainingConfig(arch="tiny", epochs=3, seed=4),
        n_positive=4,
        n_negative=12,
        tile_size=32,
    )
    return out, report


def test_demo_writes_report_models_maps_labels_and_picks(demo_folder):
    out, report = demo_folder
    assert (
        json.loads((out / "report.json").read_text())["features"].keys()
        == report["features"].keys()
    )
    assert "ribosome" in report["features"], report["skipped"]
    assert set(report["features"]) | set(report["skipped"]) == {
        "membrane",
        "microtubule",
        "ribosome",
    }
    markdown = (out / "report.md").read_text()
    for name in report["features"]:
        assert (out / "models" / f"{name}.keras").exists() and (
            out / "models" / f"{name}.mrc"
        ).exists()
        assert f"| {name} |" in markdown
    for figure in report["figures"].values():
        assert (out / "figures" / figure).stat().st_size > 1000
    assert (out / "merged_labels.mrc").exists() and (out / "merged_labels.json").exists()
    picks = read_picks(
        out / "ribosome_picks.star",
        format="relion5",
        voxel_size=report["voxel_size"],
        shape=tuple(report["shape"]),
    )
    assert len(picks) == report["ribosome_picking"]["picks"]
    scores = report["ribosome_picking"]
    assert 0.0 <= scores["precision"] <= 1.0 and 0.0 <= scores["recall"] <= 1.0
    assert all(np.isfinite(v) for v in report["merged"].values())


def test_the_report_states_its_settings_loss_curves_and_baseline(demo_folder):
    out, report = demo_folder
    saved = json.loads((out / "report.json").read_text())
    assert saved["arch"] == "tiny"
    assert saved["settings"] == {
        "network": "tiny",
        "epochs": 3,
        "positive_tiles": 4,
        "negative_tiles": 12,
        "tile_size_px": 32,
        "thresholds": {name: row["threshold"] for name, row in report["features"].items()},
        "seed": 4,
        "engine": "auto",
    }
    markdown = (out / "report.md").read_text()
    assert "| tiny | 3 | 4 positive + 12 negative, 32 px |" in markdown
    for name, row in report["features"].items():
        history = saved["loss"][name]
        # every painted tile trains (the default), so there is no validation loss to report
        assert len(history["loss"]) == 3 and "val_loss" not in history
        assert (
            f"- {name}: 3 epochs, final training loss {history['loss'][-1]:.3f}; no held-out "
            "tiles, so no validation loss" in markdown
        )
        baseline = saved["baseline"][name]  # the random forest on the same tiles
        assert 0.0 <= baseline["iou"] <= 1.0
        assert baseline["n_positive"] == row["n_positive"] == 4
        assert baseline["n_negative"] == row["n_negative"] == 12
        assert f"| {name} | {row['iou']:.3f} | {baseline['iou']:.3f} |" in markdown
    assert "| feature | IoU | RF IoU |" in markdown
    assert (out / "figures" / report["figures"]["loss"]).stat().st_size > 1000
    assert "found, missed and false" in markdown


def test_the_command_prints_each_network_beside_its_baseline(demo_folder, monkeypatch, capsys):
    out, report = demo_folder
    monkeypatch.setattr("tomoseg_nb.demo.run_demo", lambda *args, **kwargs: report)
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name, row in report["features"].items():
        forest = report["baseline"][name]["iou"]
        assert f"{name:<12} IoU {row['iou']:.3f} (random forest {forest:.3f})" in printed


def test_demo_refuses_to_overwrite_a_report(demo_folder, capsys):
    out, _ = demo_folder
    with pytest.raises(OutputExistsError):
        run_demo(out, shape=(24, 160, 160))
    assert main(["demo", "--out", str(out), "--shape", "24", "160", "160"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_a_phantom_too_small_for_the_protocol_says_why_for_each_feature(tmp_path):
    """The protocol's 10 + 100 tiles of 64 px do not fit a tiny phantom: the error names each
    feature's reason (a ribosome may well be there, just too few tiles of it), not only "none"."""
    with pytest.raises(BadInputError) as caught:
        run_demo(tmp_path / "demo", shape=(24, 128, 128))
    message = str(caught.value)
    assert "use a larger --shape" in message
    for name in ("membrane", "microtubule", "ribosome"):
        assert f"{name}: " in message


def test_the_loss_line_reports_a_held_out_loss_that_rose():
    # run_demo takes any TrainingConfig; with tiles held out its report reads their loss curve
    from tomoseg_nb.demo import LOSS_RISE, _loss_summary

    settled = _loss_summary({"loss": [-1.0, -2.0, -3.0], "val_loss": [-0.5, -1.5, -1.48]})
    assert settled == (
        "3 epochs, final training loss -3.000; validation loss best -1.500 at epoch 2"
    )
    rose = _loss_summary(
        {"loss": [-1.0, -2.0, -3.0], "val_loss": [-0.5, -1.5, -1.5 + 2 * LOSS_RISE]}
    )
    assert rose.endswith(
        "then rose to -1.400 by epoch 3: the network began to memorise its tiles (fewer epochs, "
        "or more tiles)"
    )
