"""Phantom micrographs: particles where the truth says, contamination dense, files readable."""

import numpy as np
import pytest
from scipy import ndimage

from tomoseg_nb.coords import read_picks
from tomoseg_nb.errors import BadInputError, OutputExistsError
from tomoseg_nb.synthetic.micrograph import (
    particle_diameter_angstrom,
    phantom_references,
    simulate_micrograph,
    write_micrograph_phantom,
)
from tomoseg_nb.volume import open_volume


@pytest.fixture(scope="module")
def phantom():
    return simulate_micrograph(
        (512, 512),
        pixel_size=10.0,
        n_particles=20,
        n_aggregates=3,
        n_contamination=3,
        snr=1.0,
        seed=4,
    )


def test_shapes_and_counts(phantom):
    assert phantom.image.shape == (512, 512) and phantom.image.dtype == np.float32
    assert phantom.particles.shape[1] == 2 and 10 <= len(phantom.particles) <= 20
    assert len(phantom.aggregate_particles) >= 6  # 3 aggregates of 2-5 particles
    assert phantom.contamination.dtype == bool and phantom.contamination.any()
    assert phantom.carbon is None
    # The 70S ribosome is ~25-30 nm across.
    assert 25 <= phantom.particle_diameter_px <= 31


def test_same_seed_same_micrograph():
    a = simulate_micrograph((256, 256), pixel_size=10.0, n_particles=4, seed=1)
    b = simulate_micrograph((256, 256), pixel_size=10.0, n_particles=4, seed=1)
    c = simulate_micrograph((256, 256), pixel_size=10.0, n_particles=4, seed=2)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.particles, b.particles)
    assert not np.array_equal(a.image, c.image)


def test_particles_are_dark_where_the_truth_says(phantom):
    # Underfocus phase contrast: protein is darker than the ice around it at low resolution.
    smooth = ndimage.gaussian_filter(phantom.image, phantom.particle_diameter_px / 6)
    yx = np.rint(phantom.particles).astype(int)
    at_particles = smooth[yx[:, 0], yx[:, 1]]
    ring = phantom.particles + np.array([0.0, phantom.particle_diameter_px * 0.9])
    ring = np.clip(np.rint(ring).astype(int), 0, 511)
    beside = smooth[ring[:, 0], ring[:, 1]]
    assert np.mean(at_particles < beside) > 0.8


def test_isolated_particles_are_isolated(phantom):
    diameter = phantom.particle_diameter_px
    everything = np.concatenate([phantom.particles, phantom.aggregate_particles])
    for point in phantom.particles:
        distances = np.sqrt(((everything - point) ** 2).sum(axis=1))
        assert np.sort(distances)[1] > 1.3 * diameter
    clearance = ndimage.distance_transform_edt(~phantom.contamination)
    yx = np.rint(phantom.particles).astype(int)
    assert (clearance[yx[:, 0], yx[:, 1]] > diameter).all()


def test_aggregated_particles_touch(phantom):
    tree_distances = []
    for point in phantom.aggregate_particles:
        distances = np.sqrt(((phantom.aggregate_particles - point) ** 2).sum(axis=1))
        tree_distances.append(np.sort(distances)[1])
    assert max(tree_distances) < phantom.particle_diameter_px


def test_contamination_is_dense(phantom):
    inside = phantom.image[ndimage.binary_erosion(phantom.contamination, iterations=3)]
    assert inside.size and np.median(inside) < np.percentile(phantom.image, 5)


def test_carbon_edge():
    phantom = simulate_micrograph((384, 384), pixel_size=10.0, carbon_edge=True, seed=3)
    assert phantom.carbon is not None and 0.05 < phantom.carbon.mean() < 0.6
    yx = np.rint(phantom.particles).astype(int)
    assert not phantom.carbon[yx[:, 0], yx[:, 1]].any()
    assert phantom.image[phantom.carbon].mean() < phantom.image[~phantom.carbon].mean()


def test_diameter_of_a_sphere():
    grid = np.indices((21, 21, 21)) - 10
    ball = ((grid**2).sum(axis=0) <= 8**2).astype(np.float32)
    assert particle_diameter_angstrom(ball) == pytest.approx(170.0, abs=10.0)


def test_bad_parameters():
    with pytest.raises(BadInputError, match="too small"):
        simulate_micrograph((64, 64), pixel_size=5.0)
    with pytest.raises(BadInputError, match="unknown density"):
        simulate_micrograph((256, 256), density="nope")
    with pytest.raises(BadInputError, match="positive"):
        simulate_micrograph((256, 256), snr=0)


def test_phantom_references(phantom):
    refs = phantom_references(phantom, n_good=8, n_background=8, n_bad=8, seed=0)
    assert len(refs["good"]) == 8 and len(refs["background"]) == 8 and len(refs["bad"]) == 8
    diameter = phantom.particle_diameter_px
    everything = np.concatenate([phantom.particles, phantom.aggregate_particles])
    for point in refs["background"]:
        assert np.sqrt(((everything - point) ** 2).sum(axis=1)).min() > diameter
    assert all(any(np.allclose(g, p) for p in phantom.particles) for g in refs["good"])


def test_write_micrograph_phantom(phantom, tmp_path):
    paths = write_micrograph_phantom(phantom, tmp_path / "phantom")
    with open_volume(paths["micrograph"], ndim=2) as volume:
        assert volume.voxel_size == pytest.approx(10.0)
        assert np.allclose(volume.read(), phantom.image)
    picks = read_picks(paths["particles"])
    assert np.allclose(picks.coordinates, phantom.particles, atol=1e-4)
    assert picks.tomogram == "micrograph"
    assert len(read_picks(paths["aggregates"])) == len(phantom.aggregate_particles)
    with pytest.raises(OutputExistsError):
        write_micrograph_phantom(phantom, tmp_path / "phantom")
    write_micrograph_phantom(phantom, tmp_path / "phantom", overwrite=True)
