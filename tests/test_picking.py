"""Particle and filament picking: EMAN2 rules, touching particles, filaments, frames, scores."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage
from scipy.spatial import cKDTree

from tomoseg_nb.coords import Picks, read_picks, rotation_matrices, write_picks
from tomoseg_nb.errors import BadInputError, EmptyResultWarning
from tomoseg_nb.picking import (
    SourceFrame,
    direction_from_euler,
    euler_from_direction,
    find_particle_candidates,
    pick_filaments,
    pick_particles,
    score_filaments,
    score_particles,
    trace_filaments,
)

RADIUS = 5.0  # particle radius, voxels


def _balls(shape: tuple[int, int, int], centres: np.ndarray, radius: float) -> np.ndarray:
    z, y, x = np.indices(shape, sparse=True)
    mask = np.zeros(shape, dtype=bool)
    for c in centres:
        mask |= (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= radius**2
    return mask


def _probability(mask: np.ndarray, seed: int, noise: float = 0.05) -> np.ndarray:
    """A CNN-like map of a mask: blurred (more along z), smooth noise, clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    blurred = ndimage.gaussian_filter(mask.astype(np.float32), (1.8, 1.0, 1.0))
    smooth = ndimage.gaussian_filter(rng.standard_normal(mask.shape).astype(np.float32), 1.0)
    return np.clip(blurred + noise * smooth / smooth.std(), 0, 1).astype(np.float32)


@pytest.fixture(scope="session")
def particles() -> dict:
    """Twelve isolated particles, two touching pairs, and a weak small distractor."""
    rng = np.random.default_rng(3)
    shape = (32, 96, 96)
    centres: list[np.ndarray] = []
    while len(centres) < 12:
        c = rng.uniform([RADIUS + 2] * 3, np.array(shape) - RADIUS - 2)
        if all(np.linalg.norm(c - d) > 4 * RADIUS for d in centres):
            centres.append(c)
    isolated = np.array(centres)
    pairs = np.array(
        [[16, 20, 80], [16, 20 + 2 * RADIUS - 1, 80], [16, 75, 15], [16, 75 + 2 * RADIUS - 1, 15]]
    )
    keep = [
        i for i, c in enumerate(isolated) if np.min(np.linalg.norm(pairs - c, axis=1)) > 4 * RADIUS
    ]
    isolated = isolated[keep]
    mask = _balls(shape, np.concatenate([isolated, pairs]), RADIUS)
    probability = _probability(mask, seed=1)
    distractor = _balls(shape, np.array([[8.0, 48.0, 48.0]]), 2.5)
    probability = np.maximum(
        probability, 0.6 * ndimage.gaussian_filter(distractor.astype(np.float32), 1.0)
    )
    return {"probability": probability, "isolated": isolated, "pairs": pairs, "shape": shape}


def test_peak_and_centroid_find_isolated_particles(particles: dict) -> None:
    truth = np.concatenate([particles["isolated"], particles["pairs"]])
    for mode in ("peak", "centroid"):
        picks = pick_particles(
            particles["probability"], threshold=0.5, min_distance_px=RADIUS, mode=mode
        )
        match = score_particles(picks, particles["isolated"], RADIUS)
        assert match.recall == 1.0, mode
        # Each touching pair is one blob: EMAN2's rule picks it once, between the two.
        assert len(picks) == len(particles["isolated"]) + 2
        assert score_particles(picks, truth, RADIUS).f1 >= 0.9


def test_distance_mode_splits_touching_particles(particles: dict) -> None:
    truth = np.concatenate([particles["isolated"], particles["pairs"]])
    picks = pick_particles(
        particles["probability"], threshold=0.5, min_distance_px=RADIUS, mode="distance"
    )
    match = score_particles(picks, truth, RADIUS)
    assert match.f1 == 1.0
    assert np.max(match.distances) < 1.5


def test_small_weak_blobs_fall_to_the_mass_rule(particles: dict) -> None:
    candidates = find_particle_candidates(
        particles["probability"], threshold=0.5, min_distance_px=RADIUS
    )
    assert "mass" in set(candidates.dropped)
    heavy = find_particle_candidates(
        particles["probability"], threshold=0.5, min_distance_px=RADIUS, min_mass=0
    )
    assert heavy.kept.sum() == candidates.kept.sum() + 1


def test_eman2_rules_on_a_hand_made_map() -> None:
    values = np.zeros((9, 30, 30), np.float32)
    values[4, 5:8, 5:8] = 0.5  # exactly at the threshold: kept (EMAN2 zeroes only values below)
    values[4, 6, 6] = 1.0
    values[4, 8, 8] = 0.9  # touches the first blob only diagonally: its own 6-connected component
    values[4, 10:13, 18:21] = 0.8
    values[4, 11, 19] = 0.95
    picks = pick_particles(values, threshold=0.5, min_distance_px=2.0, min_mass=0.5)
    assert picks.coordinates.tolist() == [[4, 11, 19], [4, 6, 6], [4, 8, 8]]  # heaviest first
    mass = np.array([8 * 0.8 + 0.95, 8 * 0.5 + 1.0, 0.9])
    np.testing.assert_allclose(picks.scores, mass / mass.max(), rtol=1e-6)
    # Mass must be strictly above min_mass; min_distance removes the lighter of two close blobs.
    assert len(pick_particles(values, threshold=0.5, min_distance_px=2.0, min_mass=0.9)) == 2
    closer = pick_particles(values, threshold=0.5, min_distance_px=3.0, min_mass=0.5)
    assert closer.coordinates.tolist() == [[4, 11, 19], [4, 6, 6]]
    # A scalar edge applies to y and x only (EMAN2); three numbers to z, y, x.
    rules = {"threshold": 0.5, "min_distance_px": 2, "min_mass": 0.5}
    assert len(pick_particles(values, edge_px=6.5, **rules)) == 2
    with pytest.warns(EmptyResultWarning, match="3 by edge"):
        assert len(pick_particles(values, edge_px=(5, 0, 0), **rules)) == 0


def test_a_saturated_plateau_is_picked_at_its_centre() -> None:
    values = np.zeros((12, 20, 20), np.float32)
    values[2:11, 4:15, 6:15] = 0.7
    values[4:9, 7:12, 8:13] = 1.0  # clipped network output: many voxels share the maximum
    picks = pick_particles(values, threshold=0.5, min_distance_px=3)
    np.testing.assert_allclose(picks.coordinates, [[6.0, 9.0, 10.0]])


def test_size_limits_in_voxels_and_cubic_angstrom_agree(particles: dict) -> None:
    args = {"threshold": 0.5, "min_distance_px": RADIUS, "voxel_size": 10.0}
    by_voxels = find_particle_candidates(
        particles["probability"], min_size_voxels=200, max_size_voxels=800, **args
    )
    by_volume = find_particle_candidates(
        particles["probability"], min_size_angstrom3=2e5, max_size_angstrom3=8e5, **args
    )
    np.testing.assert_array_equal(by_voxels.dropped, by_volume.dropped)
    assert "size" in set(by_voxels.dropped)
    assert (by_voxels.size_voxels[by_voxels.kept] >= 200).all()
    with pytest.raises(BadInputError, match="not both"):
        find_particle_candidates(
            particles["probability"], min_size_voxels=1, min_size_angstrom3=1, **args
        )


@settings(max_examples=40, deadline=None)
@given(
    values=arrays(np.float32, (6, 14, 14), elements=st.floats(0, 1, width=32)),
    threshold=st.floats(0.05, 0.95),
    distance=st.floats(0.0, 6.0),
    edge=st.floats(0.0, 4.0),
    mode=st.sampled_from(["peak", "centroid", "distance"]),
)
def test_picks_respect_distance_edges_and_threshold(
    values, threshold, distance, edge, mode
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptyResultWarning)
        picks = pick_particles(
            values,
            threshold=threshold,
            min_distance_px=distance,
            mode=mode,
            min_mass=0.0,
            edge_px=edge,
        )
    zyx = picks.coordinates
    if len(zyx) > 1:
        gaps = np.linalg.norm(zyx[:, None] - zyx[None], axis=-1)[np.triu_indices(len(zyx), 1)]
        assert gaps.min() >= distance - 1e-9
    assert ((zyx[:, 1:] >= edge) & (zyx[:, 1:] <= np.array([13, 13]) - edge)).all()
    if mode == "peak" and len(zyx):
        assert (values[tuple(np.round(zyx).astype(int).T)] >= threshold).all()
    assert ((picks.scores > 0) & (picks.scores <= 1)).all()


def test_binned_map_gives_hand_computed_relion5_coordinates(tmp_path) -> None:
    values = np.zeros((16, 32, 32), np.float32)
    values[3:6, 9:12, 19:22] = 0.8
    values[4, 10, 20] = 1.0  # map voxel z=4, y=10, x=20 at 40 A; the source is binned by 4
    picks = pick_particles(
        values,
        threshold=0.5,
        min_distance_px=2,
        voxel_size=40.0,
        binning=4,
        origin=(5.0, 6.0, 7.0),
        tomogram="TS_01",
    )
    assert picks.coordinates.tolist() == [[16.0, 40.0, 80.0]]
    assert (picks.voxel_size, picks.shape, picks.origin) == (10.0, (64, 128, 128), (5.0, 6.0, 7.0))
    path = write_picks(tmp_path / "picks.star", picks, format="relion5")
    import starfile

    row = starfile.read(path).iloc[0]
    # Centred Angstrom: (x - 128/2) * 10 = 160 = (20 - 32/2) * 40 on the binned map; same for y, z.
    assert (row["rlnCenteredCoordinateXAngst"], row["rlnCenteredCoordinateYAngst"]) == (
        160.0,
        -240.0,
    )
    assert row["rlnCenteredCoordinateZAngst"] == -160.0
    back = read_picks(path, voxel_size=10.0, shape=(64, 128, 128))
    np.testing.assert_allclose(back.coordinates, picks.coordinates)


def test_source_frame_keeps_centres_for_odd_source_shapes() -> None:
    frame = SourceFrame((10, 25, 25), voxel_size=20.0, binning=2, source_shape=(20, 51, 51))
    centre = frame.to_source(np.array([[5.0, 12.5, 12.5]]))
    np.testing.assert_allclose(centre, [[10.0, 25.5, 25.5]])
    with pytest.raises(BadInputError, match="binning"):
        SourceFrame((4, 4, 4), binning=0)


def test_euler_angles_follow_relion() -> None:
    angles = euler_from_direction(np.array([[0, 0, 1.0], [0, 1.0, 0], [1.0, 0, 0]]))
    np.testing.assert_allclose(angles, [[0, 0, 0], [0, 90, 90], [0, 90, 180]], atol=1e-9)
    # RELION's matrix (coords.rotation_matrices) carries the reference Z axis to the direction.
    directions = np.random.default_rng(0).normal(size=(50, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    matrices = rotation_matrices(euler_from_direction(directions))
    np.testing.assert_allclose(matrices[:, :, 2], directions, atol=1e-9)
    np.testing.assert_allclose(
        direction_from_euler(euler_from_direction(directions)), directions, atol=1e-9
    )


def _tube(
    shape, start, direction, length, outer, inner=0.0, keep=None
) -> tuple[np.ndarray, np.ndarray]:
    """A straight tube (hollow when ``inner`` > 0) and its axis polyline."""
    direction = np.asarray(direction, float) / np.linalg.norm(direction)
    start = np.asarray(start, float)
    points = np.indices(shape).reshape(3, -1).T.astype(float)
    along = (points - start) @ direction
    radial = points - start - np.outer(along, direction)
    r = np.linalg.norm(radial, axis=1)
    inside = (r <= outer) & (r >= inner) & (along >= 0) & (along <= length)
    if keep is not None:
        inside &= keep(radial)
    axis = start + np.outer(np.linspace(0, length, 200), direction)
    return inside.reshape(shape), axis


def test_hollow_tube_points_lie_on_the_axis_with_its_orientation() -> None:
    shape = (40, 64, 120)
    direction = np.array([0.15, 0.3, 1.0])
    mask, axis = _tube(shape, (15, 18, 8), direction, 100, outer=8.0, inner=5.0)
    picks = pick_filaments(
        _probability(mask, seed=2), threshold=0.5, spacing_angstrom=40.0, voxel_size=10.0
    )
    score = score_filaments(picks, [axis], max_distance_px=1.5, spacing_px=4.0, shape=shape)
    assert score.within == 1.0 and score.coverage >= 0.9
    steps = np.linalg.norm(np.diff(picks.coordinates, axis=0), axis=1)
    np.testing.assert_allclose(steps, 4.0, atol=0.3)
    tangent = direction[::-1] / np.linalg.norm(direction)  # x, y, z
    alignment = np.abs(direction_from_euler(picks.orientations) @ tangent)
    assert alignment.min() > 0.99


def test_crossing_filaments_stay_two_and_spurs_are_pruned() -> None:
    shape = (24, 80, 80)
    first, axis1 = _tube(shape, (12, 40, 4), (0, 0, 1), 72, outer=3.0)
    second, axis2 = _tube(shape, (12, 4, 40), (0, 1, 0), 72, outer=3.0)
    spur, _ = _tube(shape, (12, 20, 20), (0, 1, -1), 6, outer=1.5)
    mask = first | second | spur
    filaments = trace_filaments(mask.astype(np.float32), threshold=0.5)
    assert len(filaments) == 2
    for filament in filaments:
        spread = filament.axis - filament.axis.mean(axis=0)
        extent = np.ptp(filament.axis, axis=0)
        assert sorted(extent)[-1] > 60 and sorted(extent)[-2] < 3  # straight through the crossing
        assert np.linalg.norm(spread, axis=1).max() > 30
    picks = pick_filaments(mask.astype(np.float32), threshold=0.5, spacing_angstrom=5.0)
    assert (
        score_filaments(
            picks, [axis1, axis2], max_distance_px=1.5, spacing_px=5.0, shape=shape
        ).within
        == 1.0
    )


def test_tube_seen_only_from_the_side_needs_its_radius() -> None:
    # The missing wedge hides walls facing z: only the side walls are in the map.
    shape = (40, 56, 100)
    side = lambda radial: np.abs(radial[:, 0]) < 4.0  # noqa: E731
    mask, axis = _tube(shape, (20, 28, 5), (0, 0.1, 1), 90, outer=10.0, inner=7.0, keep=side)
    walls = mask.astype(np.float32)
    with pytest.warns(UserWarning, match="flat, not round"):
        alone = pick_filaments(walls, threshold=0.5, spacing_angstrom=5.0)
    assert score_filaments(alone, [axis], max_distance_px=2.0, spacing_px=5.0).within < 0.5
    picks = pick_filaments(walls, threshold=0.5, spacing_angstrom=5.0, radius_angstrom=10.0)
    score = score_filaments(picks, [axis], max_distance_px=2.0, spacing_px=5.0, shape=shape)
    assert score.within >= 0.9 and score.coverage >= 0.8


def test_a_lone_wall_beside_a_tube_is_not_traced_as_a_filament() -> None:
    # A network often marks one wall of a tube and nothing else there; that band is no filament,
    # though a small circle fits its cross-section. The full tube beside it sets the radius.
    shape = (40, 80, 120)
    tube, axis = _tube(shape, (20, 18, 6), (0, 0.05, 1), 105, outer=10.0, inner=6.0)
    band = lambda radial: (radial[:, 1] > 3.0) & (np.abs(radial[:, 0]) < 6.0)  # noqa: E731
    wall, _ = _tube(shape, (20, 56, 6), (0, -0.05, 1), 105, outer=10.0, inner=5.0, keep=band)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        picks = pick_filaments(
            _probability(tube | wall, seed=6), threshold=0.5, spacing_angstrom=4.0
        )
    score = score_filaments(picks, [axis], max_distance_px=1.5, spacing_px=4.0, shape=shape)
    assert score.within == 1.0 and score.coverage >= 0.8


def test_a_tube_seen_from_the_side_beside_a_full_tube_keeps_its_centred_axis() -> None:
    # Flat too, but its axis runs in the lumen between the two walls: a tube, not a wall.
    shape = (40, 80, 120)
    tube, axis = _tube(shape, (20, 18, 6), (0, 0.05, 1), 105, outer=10.0, inner=6.0)
    side = lambda radial: np.abs(radial[:, 0]) < 6.0  # noqa: E731
    walls, walls_axis = _tube(
        shape, (20, 56, 6), (0, -0.05, 1), 105, outer=10.0, inner=6.0, keep=side
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the flat-section hint: it is a side view
        filaments = trace_filaments(_probability(tube | walls, seed=6), threshold=0.5)
    distances = [
        [np.median(cKDTree(true_axis).query(f.axis)[0]) for f in filaments]
        for true_axis in (axis, walls_axis)
    ]
    assert min(distances[0]) < 1.0 and min(distances[1]) < 1.5


def test_tube_leaving_through_a_face_ends_there() -> None:
    shape = (30, 48, 80)
    mask, axis = _tube(shape, (14, 24, 4), (0.25, 0, 1), 120, outer=8.0, inner=5.0)
    picks = pick_filaments(
        _probability(mask, seed=4), threshold=0.5, spacing_angstrom=30.0, voxel_size=10.0
    )
    inside = axis[(axis[:, 0] <= shape[0] - 1)]
    score = score_filaments(picks, [inside], max_distance_px=2.0, spacing_px=3.0, shape=shape)
    assert score.within == 1.0 and score.coverage >= 0.8


def test_empty_maps_warn_and_return_no_picks() -> None:
    zeros = np.zeros((8, 16, 16), np.float32)
    with pytest.warns(EmptyResultWarning, match="empty"):
        assert len(pick_particles(zeros, threshold=0.5, min_distance_px=2)) == 0
    with pytest.warns(EmptyResultWarning, match="maximum is 0.4"):
        pick_particles(zeros + 0.4, threshold=0.5, min_distance_px=2)
    with pytest.warns(EmptyResultWarning, match="empty"):
        picks = pick_filaments(zeros, threshold=0.5, spacing_angstrom=10)
    assert picks.coordinates.shape == (0, 3) and picks.orientations.shape == (0, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "blob"}, "unknown picking mode"),
        ({"threshold": float("nan")}, "finite"),
        ({"min_distance_px": -1}, ">= 0"),
        ({"edge_px": (1, 2)}, "one per axis"),
    ],
)
def test_bad_particle_arguments(kwargs: dict, message: str) -> None:
    args = {"threshold": 0.5, "min_distance_px": 2.0, **kwargs}
    with pytest.raises(BadInputError, match=message):
        pick_particles(np.zeros((4, 8, 8)), **args)


def test_bad_maps_and_spacing() -> None:
    with pytest.raises(BadInputError, match="3D"):
        pick_particles(np.zeros((8, 8)), threshold=0.5, min_distance_px=1)
    bad = np.zeros((4, 8, 8))
    bad[0, 0, 0] = np.nan
    with pytest.raises(BadInputError, match="NaN"):
        pick_particles(bad, threshold=0.5, min_distance_px=1)
    with pytest.raises(BadInputError, match="spacing"):
        pick_filaments(np.zeros((4, 8, 8)), threshold=0.5, spacing_angstrom=0)


def test_uint8_maps_are_read_as_0_to_255() -> None:
    values = np.zeros((9, 20, 20), np.uint8)
    values[3:6, 8:11, 8:11] = 200
    assert len(pick_particles(values, threshold=0.7, min_distance_px=2, min_mass=1)) == 1
    with pytest.warns(EmptyResultWarning):
        assert len(pick_particles(values, threshold=0.8, min_distance_px=2, min_mass=1)) == 0


def test_score_filaments_measures_distance_and_coverage() -> None:
    axis = np.column_stack([np.full(50, 5.0), np.full(50, 5.0), np.linspace(0, 49, 50)])
    half = axis[::5][:5]
    score = score_filaments(half, [axis], max_distance_px=1.0, spacing_px=5.0)
    assert score.within == 1.0 and 0.45 < score.coverage < 0.6
    shifted = score_filaments(
        axis[::5] + np.array([0, 3, 0]), [axis], max_distance_px=1.0, spacing_px=5.0
    )
    assert shifted.within == 0.0 and shifted.median_distance_px == pytest.approx(3.0)


def test_pick_plots_draw_picks_and_histograms(particles: dict) -> None:
    from tomoseg_nb.plots.picks import plot_pick_histograms, plot_picks

    picks = pick_particles(particles["probability"], threshold=0.5, min_distance_px=RADIUS)
    figure = plot_picks(particles["probability"], picks, radius_px=RADIUS)
    drawn = sum(len(axes.patches) for axes in figure.axes)
    assert len(figure.axes) == 3 and drawn >= 3
    candidates = find_particle_candidates(
        particles["probability"], threshold=0.5, min_distance_px=RADIUS
    )
    figure = plot_pick_histograms(candidates.score, candidates.size_voxels, kept=candidates.kept)
    assert [axes.get_xlabel() for axes in figure.axes] == ["score", "size (voxels)"]
    empty = Picks(np.zeros((0, 3)), shape=particles["shape"])
    assert len(plot_picks(particles["probability"], empty).axes) == 3


def test_an_axis_that_runs_back_along_itself_is_cut_into_its_legs() -> None:
    # Centring can turn the two walls of a tube opened by a face into one axis that goes along the
    # tube and back: each leg must become its own piece so the overlap removal keeps one of them.
    from tomoseg_nb.picking.filaments import _split_at_reversals

    out = np.column_stack([np.zeros(41), np.zeros(41), np.arange(41.0)])
    turn = np.column_stack(
        [
            np.zeros(9),
            3 - 3 * np.cos(np.linspace(0, np.pi, 9)),
            40 + 3 * np.sin(np.linspace(0, np.pi, 9)),
        ]
    )
    back = np.column_stack([np.zeros(41), np.full(41, 6.0), np.arange(40.0, -1.0, -1.0)])
    pieces = _split_at_reversals(np.concatenate([out, turn[1:-1], back]), window_px=8.0)
    assert len(pieces) == 2
    for piece in pieces:
        assert np.ptp(piece[:, 2]) > 35 and np.ptp(piece[:, 1]) <= 3.5  # one straight leg each
    bend = np.linspace(0, np.pi / 2, 80)  # a quarter circle of radius 50: a filament's curve
    arc = np.column_stack([np.zeros(80), 50 * np.sin(bend), 50 - 50 * np.cos(bend)])
    assert len(_split_at_reversals(arc, window_px=8.0)) == 1


@pytest.mark.parametrize("vesicle_radius", [7.0, 9.0, 11.0, 13.0])
def test_a_vesicle_on_a_thin_filament_is_not_a_tube(vesicle_radius: float) -> None:
    # A thin filament (no circle fits it) runs through a small vesicle, which is round in every
    # cross-section: the vesicle fits circles along its diameter, but is no longer than a tube
    # of its size is wide, so it must not be picked as a piece of microtubule.
    shape = (40, 64, 120)
    mask, axis = _tube(shape, (20, 14, 6), (0, 0, 1), 108, outer=8.0, inner=5.0)
    rod, _ = _tube(shape, (20, 46, 6), (0, 0, 1), 108, outer=2.5)
    r = np.linalg.norm(np.indices(shape) - np.array([20, 46, 60])[:, None, None, None], axis=0)
    mask |= rod | ((r <= vesicle_radius) & (r >= vesicle_radius - 2.5))
    picks = pick_filaments(_probability(mask, seed=5), threshold=0.5, spacing_angstrom=4.0)
    score = score_filaments(picks, [axis], max_distance_px=2.0, spacing_px=4.0, shape=shape)
    assert score.within == 1.0 and score.coverage >= 0.9
