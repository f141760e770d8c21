"""Tile suggestions: the unsure place first, never an annotated tile, the edge or a repeat."""

from __future__ import annotations

import numpy as np
import pytest

from tomoseg_nb.annotations import tile_bounds
from tomoseg_nb.errors import BadInputError
from tomoseg_nb.suggest import disagreement, random_tiles, suggest_tiles, uncertainty

SHAPE = (20, 160, 160)
TILE = 32


def _confident_map() -> np.ndarray:
    """A network sure everywhere: a feature at 0.95 in a band, 0.02 elsewhere."""
    probability = np.full(SHAPE, 0.02, np.float32)
    probability[:, 40:50, :] = 0.95
    return probability


def _shares(a: tuple[int, int, int], b: tuple[int, int, int], fraction: float) -> bool:
    """Within 8 slices and sharing more than ``fraction`` of a tile's pixels."""
    shared = max(TILE - abs(a[1] - b[1]), 0) * max(TILE - abs(a[2] - b[2]), 0)
    return abs(a[0] - b[0]) < 8 and shared > fraction * TILE**2


def _covers(suggestion, z, y, x) -> bool:
    y0, y1, x0, x1 = tile_bounds(suggestion.y, suggestion.x, TILE)
    return suggestion.z == z and y0 <= y < y1 and x0 <= x < x1


def test_the_uncertain_region_is_suggested_first():
    probability = _confident_map()
    probability[13, 100:120, 90:110] = 0.5  # unsure here only
    probability[5, 110:116, 30:36] = 0.4  # a smaller unsure patch: second
    suggestions = suggest_tiles(probability, k=3, tile_size=TILE)
    assert _covers(suggestions[0], 13, 110, 100)
    assert _covers(suggestions[1], 5, 113, 33)
    assert suggestions[0].score > suggestions[1].score > suggestions[2].score
    assert suggestions[0].reason == "uncertain"
    # the 400 unsure pixels count 1 each, the 624 others at 0.02 count 0.04 (0.02 / 0.5)
    assert suggestions[0].score == pytest.approx((400 + 624 * 0.04) / TILE**2, rel=1e-4)


def test_two_features_claiming_the_same_voxels_are_suggested_and_named():
    mine, theirs = _confident_map(), np.zeros(SHAPE, np.float32)
    theirs[9, 40:50, 100:130] = 0.9  # the ribosome network also claims part of the band
    theirs[3, 120:125, 120:125] = 0.9  # claimed by the other network only: no disagreement
    best = suggest_tiles(mine, k=1, tile_size=TILE, others={"ribosome": theirs})[0]
    assert _covers(best, 9, 45, 115) and best.reason == "also claimed by ribosome"
    stricter = suggest_tiles(
        mine, k=1, tile_size=TILE, others={"ribosome": theirs}, other_thresholds={"ribosome": 0.95}
    )[0]
    assert stricter.reason == "uncertain"  # 0.9 is below the ribosome's own threshold


def test_annotated_tiles_and_the_edge_are_never_suggested():
    probability = _confident_map()
    probability[13, 100:120, 90:110] = 0.5
    probability[:, :, :12] = 0.5  # an unsure strip along the slice edge: padded guesswork
    exclude = [(14, 110, 100)]  # the unsure place is already annotated, one slice away
    suggestions = suggest_tiles(probability, k=40, tile_size=TILE, exclude=exclude, margin_px=16)
    assert suggestions, "the rest of the tomogram still has places"
    for s in suggestions:
        y0, y1, x0, x1 = tile_bounds(s.y, s.x, TILE)
        assert y0 >= 16 and x0 >= 16 and y1 <= SHAPE[1] - 16 and x1 <= SHAPE[2] - 16
        assert not _shares((s.z, s.y, s.x), exclude[0], 0.5)


def test_suggestions_spread_instead_of_stacking_on_one_place():
    probability = _confident_map()
    probability[:, 100:120, 90:110] = 0.5  # the same unsure place on every slice
    suggestions = suggest_tiles(probability, k=6, tile_size=TILE, min_z_distance=8)
    places = [(s.z, s.y, s.x) for s in suggestions]
    assert not any(_shares(a, b, 0.0) for i, a in enumerate(places) for b in places[i + 1 :])
    # the three best cover the whole unsure place, on slices 8 or more apart (0-7, 8-15, 16-19)
    best = suggestions[:3]
    assert all(_covers(s, s.z, 100, 90) and _covers(s, s.z, 119, 109) for s in best)
    assert min(abs(a.z - b.z) for i, a in enumerate(best) for b in best[i + 1 :]) >= 8


def test_a_tile_sharing_half_its_pixels_or_less_with_an_annotated_one_is_new_ground():
    probability = np.full(SHAPE, 0.02, np.float32)
    probability[10, 64:96, 64:128] = 0.5  # unsure over two tiles side by side
    # annotated at x 80: the tile at x 96 shares exactly half of it, and is the best place left
    best = suggest_tiles(probability, k=1, tile_size=TILE, exclude=[(10, 80, 80)])[0]
    assert (best.z, best.y, best.x) == (10, 80, 96)
    # annotated at x 81: x 96 would share 17 of 32 columns; the next candidate, x 104, is chosen
    best = suggest_tiles(probability, k=1, tile_size=TILE, exclude=[(10, 80, 81)])[0]
    assert (best.z, best.y, best.x) == (10, 80, 104)


def test_the_protocols_tiles_leave_room_for_a_round_on_a_small_tomogram():
    """110 annotated tiles of 64 px in a 48 x 256 x 256 tomogram (the benchmark's phantoms) used
    to block every candidate when any overlap counted: correction rounds added nothing."""
    rng = np.random.default_rng(0)
    exclude = list(
        zip(
            rng.integers(0, 48, 110).tolist(),
            rng.integers(32, 224, 110).tolist(),
            rng.integers(32, 224, 110).tolist(),
            strict=True,
        )
    )
    probability = rng.random((48, 256, 256), dtype=np.float32)
    assert len(suggest_tiles(probability, k=5, tile_size=64, exclude=exclude)) == 5
    assert len(random_tiles((48, 256, 256), k=5, tile_size=64, exclude=exclude)) == 5


def test_random_control_follows_the_same_rules_and_its_seed():
    exclude = [(10, 80, 80)]
    first = random_tiles(SHAPE, k=12, tile_size=TILE, exclude=exclude, seed=3)
    assert first == random_tiles(SHAPE, k=12, tile_size=TILE, exclude=exclude, seed=3)
    assert first != random_tiles(SHAPE, k=12, tile_size=TILE, exclude=exclude, seed=4)
    for s in first:
        assert not _shares((s.z, s.y, s.x), exclude[0], 0.5)
        y0, _, _, x1 = tile_bounds(s.y, s.x, TILE)
        assert y0 >= 16 and x1 <= SHAPE[2] - 16


def test_scores_and_bad_input():
    np.testing.assert_allclose(
        uncertainty(np.array([0.0, 0.4, 0.8, 1.0]), 0.8), [0, 0.5, 1, 0], atol=1e-6
    )
    claims = disagreement(np.array([0.6, 0.6]), {"a": np.array([0.1, 0.7])})
    np.testing.assert_array_equal(claims, [0, 1])
    assert len(suggest_tiles(_confident_map(), k=500, tile_size=TILE)) < 500  # no more fit
    with pytest.raises(BadInputError, match="does not fit"):
        suggest_tiles(np.zeros((2, 40, 40)), tile_size=32)
    with pytest.raises(BadInputError, match="threshold"):
        suggest_tiles(_confident_map(), threshold=1.0)
    with pytest.raises(BadInputError, match="shape"):
        suggest_tiles(_confident_map(), others={"x": np.zeros((2, 2, 2))})
    with pytest.raises(BadInputError, match="\\(z, y, x\\)"):
        suggest_tiles(np.zeros((40, 40)))


def test_a_higher_power_ranks_a_thin_unsure_line_above_faint_haze():
    """A membrane's unsure pixels are a few per cent of a tile: the plain mean prefers haze."""
    probability = np.zeros(SHAPE, np.float32)
    probability[4, 30:130, 30:130] = 0.15  # haze: uncertainty 0.3 on every pixel
    probability[14, 60:100, 80] = 0.5  # a thin line: uncertainty 1 on 40 pixels
    plain = suggest_tiles(probability, k=1, tile_size=TILE)[0]
    assert plain.z == 4 and plain.score == pytest.approx(0.3, rel=1e-4)
    line = suggest_tiles(probability, k=1, tile_size=TILE, power=4)[0]
    assert _covers(line, 14, 80, 80)
    # a tile holding 32 of the line's pixels: (32 / 1024) ** (1 / 4)
    assert line.score == pytest.approx((32 / TILE**2) ** 0.25, rel=1e-4)


@pytest.mark.parametrize("power", [0.5, float("nan")])
def test_a_power_below_one_is_refused(power):
    with pytest.raises(BadInputError, match="power"):
        suggest_tiles(_confident_map(), tile_size=TILE, power=power)
