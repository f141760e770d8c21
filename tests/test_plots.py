"""Report figures on hand-made arrays: what each mark and title says is checked, not the pixels."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.patches import Circle

from tomoseg_nb.errors import BadInputError
from tomoseg_nb.plots.picks import MATCH_STYLES, plot_pick_matches
from tomoseg_nb.plots.segmentation import DEFAULT_COLOURS, plot_slice_overlay
from tomoseg_nb.plots.training import plot_losses

RADIUS = 4.0


def _circles_by_kind(axes) -> dict[str, list[tuple[float, float]]]:
    """Centres (x, y) of the circles on ``axes``, by the kind their colour and style mean."""
    kinds: dict[str, list[tuple[float, float]]] = {kind: [] for kind in MATCH_STYLES}
    for patch in axes.patches:
        assert isinstance(patch, Circle) and patch.radius == RADIUS
        colour = "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in patch.get_edgecolor()[:3]))
        kind = next(k for k, (c, _) in MATCH_STYLES.items() if c == colour)
        kinds[kind].append(tuple(patch.center))
    return kinds


def test_pick_matches_mark_found_missed_and_false_on_the_busiest_slices():
    tomogram = np.random.default_rng(0).normal(size=(30, 40, 40)).astype(np.float32)
    truth = np.array([[10, 10, 10], [10, 30, 30], [11, 20, 20], [25, 10, 30]], float)
    picks = np.array([[10, 11, 10], [10, 30, 29], [20, 5, 5]], float)  # 2 found, 1 false
    figure = plot_pick_matches(tomogram, picks, truth, radius_px=RADIUS)
    panels = [axes for axes in figure.axes if axes.get_title()]
    titles = [axes.get_title() for axes in panels]
    assert titles[0] == "z = 10: 2 found, 1 missed, 0 false"  # the slice holding most particles
    first = _circles_by_kind(panels[0])
    assert sorted(first["found"]) == [(10.0, 11.0), (29.0, 30.0)]  # drawn at the picks
    assert first["missed"] == [(20.0, 20.0)]  # drawn at the true centre
    assert any(title.endswith("0 found, 0 missed, 1 false") for title in titles)
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ["found (2 in all)", "missed (2 in all)", "false (1 in all)"]
    assert "3 picks for 4 particles: precision 0.67, recall 0.50" in figure._suptitle.get_text()


def test_loss_curves_get_one_panel_per_feature():
    histories = {
        "membrane": {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.6, 0.9]},
        "ribosome": {"loss": [0.8, 0.4]},
    }
    figure = plot_losses(histories)
    assert [axes.get_title() for axes in figure.axes] == ["membrane", "ribosome"]
    membrane = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert membrane == ["training", "validation (held-out tiles)", "best epoch (2)"]
    assert len(figure.axes[1].lines) == 1  # no validation curve without held-out tiles
    with pytest.raises(BadInputError):
        plot_losses({})


def test_a_ground_truth_overlay_is_not_titled_as_a_probability():
    image = np.zeros((8, 8), np.float32)
    truth = {"membrane": np.eye(8, dtype=bool)}
    named = plot_slice_overlay(image, truth, overlay_title="ground truth")
    assert named.axes[1].get_title() == "ground truth"
    default = plot_slice_overlay(image, {"membrane": np.full((8, 8), 0.7)}, threshold=0.4)
    assert default.axes[1].get_title() == "probability >= 0.4"


def test_each_feature_can_be_shown_at_its_own_threshold():
    # Networks store their own thresholds; a figure at one shared 0.5 would not show what was scored.
    image = np.zeros((8, 8), np.float32)
    maps = {"membrane": np.full((8, 8), 0.3), "ribosome": np.full((8, 8), 0.3)}
    figure = plot_slice_overlay(image, maps, threshold={"membrane": 0.2, "ribosome": 0.5})
    axes = figure.axes[1]
    assert axes.get_title() == "probability >= each feature's threshold"
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels == ["membrane (>= 0.2)", "ribosome (>= 0.5)"]
    tinted = axes.images[-1].get_array()[..., :3]  # only membrane passes: every pixel its colour
    np.testing.assert_allclose(tinted[0, 0], to_rgb(DEFAULT_COLOURS[0]))
    with pytest.raises(BadInputError, match="no threshold given for ribosome"):
        plot_slice_overlay(image, maps, threshold={"membrane": 0.2})
