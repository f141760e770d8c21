"""Properties that must hold for any input (hypothesis): coordinate frames, merge and pick rules.

Extends what the module tests already prove for all inputs: 3D file round trips, binning and the
centred frame in tests/test_coords.py; argmax-above-threshold merging in tests/test_merge.py;
distance, edge and threshold rules of picking in tests/test_picking.py.
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tomoseg_nb.annotations import tile_bounds
from tomoseg_nb.boxer.preprocess import WorkingFrame
from tomoseg_nb.coords import Picks, read_picks, write_picks
from tomoseg_nb.errors import EmptyResultWarning
from tomoseg_nb.merge import merge_competitive
from tomoseg_nb.picking import SourceFrame, pick_particles
from tomoseg_nb.picking.frame import direction_from_euler, euler_from_direction

PROPERTY = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
sizes = st.integers(8, 400)
voxel_sizes = st.floats(0.5, 40, allow_nan=False)

# ------------------------------------------------------------------------ coordinate frames


@PROPERTY
@given(
    map_shape=st.tuples(sizes, sizes, sizes),
    binning=st.sampled_from([1.0, 2.0, 3.0, 4.0, 8.0]),
    voxel_size=voxel_sizes,
    fractions=arrays(np.float64, (5, 3), elements=st.floats(0, 1)),
)
def test_relion5_positions_do_not_depend_on_the_grid_picked_on(
    map_shape, binning, voxel_size, fractions
):
    """A pick on a binned map lands where the same point is on the unbinned tomogram."""
    coordinates = fractions * (np.asarray(map_shape) - 1)
    frame = SourceFrame(map_shape, voxel_size=voxel_size, binning=binning)
    picks = frame.picks(coordinates, np.ones(len(coordinates)))
    physical = (coordinates - np.asarray(map_shape) / 2) * voxel_size
    np.testing.assert_allclose(picks.centred_angstrom_xyz(), physical[:, ::-1], atol=1e-6)
    assert np.isclose(picks.voxel_size * binning, voxel_size)
    # SourceFrame and Picks.rescaled are one convention
    rescaled = Picks(coordinates, voxel_size=voxel_size, shape=map_shape).rescaled(binning)
    np.testing.assert_allclose(rescaled.coordinates, picks.coordinates, atol=1e-9)


@PROPERTY
@given(
    shape=st.tuples(sizes, sizes, sizes),
    voxel_size=voxel_sizes,
    other_voxel_size=voxel_sizes,
    fractions=arrays(np.float64, (4, 3), elements=st.floats(0, 1)),
)
def test_a_relion5_file_read_at_another_sampling_keeps_physical_positions(
    tmp_path_factory, shape, voxel_size, other_voxel_size, fractions
):
    """RELION 5 files hold Angstrom from the centre: read them at any voxel size and shape."""
    coordinates = fractions * (np.asarray(shape) - 1)
    picks = Picks(coordinates, voxel_size=voxel_size, shape=shape, tomogram="TS_01")
    path = write_picks(tmp_path_factory.mktemp("r5") / "p.star", picks, "relion5")
    factor = voxel_size / other_voxel_size
    other_shape = tuple(max(1, round(n * factor)) for n in shape)
    back = read_picks(path, "relion5", voxel_size=other_voxel_size, shape=other_shape)
    np.testing.assert_allclose(
        (back.coordinates - np.asarray(other_shape) / 2) * other_voxel_size,
        (coordinates - np.asarray(shape) / 2) * voxel_size,
        atol=1e-5,
    )


FORMATS_2D = {"star2d": ("p.star", {}, 2e-5), "csv": ("p.csv", {}, 2e-5)}
FORMATS_2D["box"] = ("p.box", {"box_size_px": 24}, 0.5)  # whole-pixel lower corners


@PROPERTY
@given(
    coordinates=arrays(
        np.float64, st.tuples(st.integers(0, 8), st.just(2)), elements=st.floats(0, 4000)
    ),
    fmt=st.sampled_from(sorted(FORMATS_2D)),
)
def test_micrograph_picks_round_trip_through_every_2d_format(tmp_path_factory, coordinates, fmt):
    name, options, tolerance = FORMATS_2D[fmt]
    picks = Picks(coordinates, tomogram="mic_001")
    path = write_picks(tmp_path_factory.mktemp("rt2") / name, picks, fmt, **options)
    back = read_picks(path, fmt)
    np.testing.assert_allclose(back.coordinates, coordinates, atol=tolerance, rtol=0)


@PROPERTY
@given(direction=arrays(np.float64, (6, 3), elements=st.floats(-1, 1)))
def test_filament_orientations_invert(direction):
    length = np.linalg.norm(direction, axis=1)
    assume((length > 1e-3).all())
    unit = direction / length[:, None]
    np.testing.assert_allclose(
        direction_from_euler(euler_from_direction(direction)), unit, atol=1e-9
    )


@PROPERTY
@given(
    step=st.tuples(st.floats(0.1, 20), st.floats(0.1, 20)),
    offset=st.tuples(st.floats(-5, 5), st.floats(-5, 5)),
    points=arrays(np.float64, (5, 2), elements=st.floats(-100, 5000)),
)
def test_boxer_working_frame_inverts(step, offset, points):
    frame = WorkingFrame(step=step, offset=offset, source_shape=(4096, 4096))
    np.testing.assert_allclose(frame.to_source(frame.to_working(points)), points, atol=1e-8)
    np.testing.assert_allclose(frame.to_working(frame.to_source(points)), points, atol=1e-6)


@PROPERTY
@given(y=st.integers(-500, 500), x=st.integers(-500, 500), size=st.integers(1, 256))
def test_a_tile_is_size_pixels_with_its_centre_at_size_over_two(y, x, size):
    y0, y1, x0, x1 = tile_bounds(y, x, size)
    assert (y1 - y0, x1 - x0) == (size, size)
    assert (y - y0, x - x0) == (size // 2, size // 2)


# ------------------------------------------------------------------------------ merge rules

probability_maps = st.integers(2, 4).flatmap(
    lambda n: st.lists(
        arrays(np.float32, (3, 5, 5), elements=st.floats(0, 1, width=32)), min_size=n, max_size=n
    )
)


@PROPERTY
@given(maps=probability_maps, data=st.data())
def test_raising_a_threshold_only_shrinks_that_feature(maps, data):
    thresholds = data.draw(st.lists(st.floats(0, 1), min_size=len(maps), max_size=len(maps)))
    k = data.draw(st.integers(0, len(maps) - 1))
    raised = list(thresholds)
    raised[k] = data.draw(st.floats(thresholds[k], 1))
    before = merge_competitive(maps, threshold=thresholds)
    after = merge_competitive(maps, threshold=raised)
    assert not ((after == k + 1) & (before != k + 1)).any()
    # voxels no feature claims stay unclaimed
    assert not ((before == 0) & (after != 0)).any()


@PROPERTY
@given(maps=probability_maps, data=st.data())
def test_the_order_of_the_maps_only_renames_the_labels(maps, data):
    """Where the winner is unique, listing the maps in another order gives the same feature."""
    thresholds = data.draw(st.lists(st.floats(0, 1), min_size=len(maps), max_size=len(maps)))
    order = data.draw(st.permutations(range(len(maps))))
    labels = merge_competitive(maps, threshold=thresholds)
    shuffled = merge_competitive([maps[i] for i in order], threshold=[thresholds[i] for i in order])
    renamed = np.concatenate([[0], np.asarray(order) + 1])[shuffled]
    stack = np.stack(maps)
    candidates = np.where(
        stack > np.asarray(thresholds, np.float32)[:, None, None, None], stack, -1
    )
    best = candidates.max(axis=0)
    unique = (candidates == best).sum(axis=0) == 1
    np.testing.assert_array_equal(renamed[unique], labels[unique])


# ------------------------------------------------------------------------------- pick rules


@PROPERTY
@given(
    blobs=arrays(np.float32, (4, 9, 9), elements=st.floats(0, 1, width=32)),
    first=st.tuples(st.integers(2, 6), st.integers(2, 12), st.integers(2, 12)),
    second=st.tuples(st.integers(2, 6), st.integers(2, 12), st.integers(2, 12)),
    threshold=st.floats(0.1, 0.9),
    distance=st.floats(0, 4),
    mode=st.sampled_from(["peak", "centroid", "distance"]),
)
def test_moving_the_content_moves_the_picks(blobs, first, second, threshold, distance, mode):
    """Picking does not depend on where in the tomogram the particles are (away from edges)."""

    def placed(at):
        volume = np.zeros((12, 24, 24), np.float32)
        z, y, x = at
        volume[z : z + 4, y : y + 9, x : x + 9] = blobs
        return volume

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptyResultWarning)
        picks = [
            pick_particles(
                placed(at),
                threshold=threshold,
                min_distance_px=distance,
                mode=mode,
                min_mass=0.0,
            )
            for at in (first, second)
        ]
    a = picks[0].coordinates - np.asarray(first)
    b = picks[1].coordinates - np.asarray(second)
    np.testing.assert_allclose(a[np.lexsort(a.T)], b[np.lexsort(b.T)], atol=1e-6)
    np.testing.assert_allclose(np.sort(picks[0].scores), np.sort(picks[1].scores), atol=1e-6)
