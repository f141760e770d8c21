"""Phantom tomograms: ground truth agrees with what was placed, imaging does what it says."""

import csv
import itertools
import json

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from tomoseg_nb.errors import BadInputError, OutputExistsError
from tomoseg_nb.synthetic import densities
from tomoseg_nb.synthetic.imaging import ImagingConditions, ctf, measured_region, rfft_frequencies
from tomoseg_nb.synthetic.tomogram import (
    LABEL_IDS,
    CellContent,
    TomogramPhantom,
    simulate_tomogram,
    write_tomogram_phantom,
)
from tomoseg_nb.volume import open_volume

SHAPE = (32, 160, 160)
SEED = 2
SNR = 0.5
# Denser than a cell so that a small volume holds every feature a few times.
RICH = CellContent(
    vesicles_per_um3=4000,
    vesicle_radius_nm=(15.0, 45.0),
    microtubule_um_per_um3=250,
    actin_um_per_um3=800,
    ribosomes_per_um3=40000,
    crowders_per_um3=20000,
    fiducials_per_um2=150,
    ice_blobs_per_um2=40,
)
MT_OUTER_NM, MT_INNER_NM, ACTIN_RADIUS_NM = 12.5, 8.0, 3.5


@pytest.fixture(scope="session")
def phantom() -> TomogramPhantom:
    return simulate_tomogram(SHAPE, seed=SEED, snr=SNR, content=RICH)


@pytest.fixture(scope="session")
def clean() -> TomogramPhantom:
    return simulate_tomogram(SHAPE, seed=SEED, snr=None, content=RICH)


def _axis_distance_nm(phantom: TomogramPhantom, feature: str, points: np.ndarray) -> np.ndarray:
    """Distance (nm) from ``points`` (voxels) to the nearest axis polyline of ``feature``."""
    samples = []
    for line in phantom.filaments[feature]:
        for a, b in itertools.pairwise(line):
            n = int(np.ceil(np.linalg.norm(b - a) / 0.25)) + 1
            samples.append(a + (b - a) * np.linspace(0, 1, n)[:, None])
    distance, _ = cKDTree(np.concatenate(samples)).query(points)
    return distance * phantom.voxel_size / 10.0


def _away_from_faces(points: np.ndarray, margin: float, shape=SHAPE) -> np.ndarray:
    # Near a face the true axis may continue outside the volume, beyond the clipped polyline.
    return np.all((points >= margin) & (points <= np.array(shape) - 1 - margin), axis=1)


def test_phantom_has_every_feature_with_documented_types(phantom):
    assert phantom.tomogram.shape == SHAPE and phantom.tomogram.dtype == np.float32
    assert phantom.labels.shape == SHAPE and phantom.labels.dtype == np.uint8
    assert (
        phantom.label_ids
        == LABEL_IDS
        == {
            "membrane": 1,
            "microtubule": 2,
            "ribosome": 3,
            "actin": 4,
            "fiducial": 5,
            "ice": 6,
        }
    )
    assert phantom.voxel_size == 10.0
    assert set(np.unique(phantom.labels)) == set(range(7))
    assert len(phantom.particles["ribosome"]) >= 8
    assert len(phantom.particles["fiducial"]) >= 2
    assert len(phantom.particles["crowding"]) >= 3
    assert len(phantom.filaments["microtubule"]) >= 1 and len(phantom.filaments["actin"]) >= 2
    for points in phantom.particles.values():
        assert points.ndim == 2 and points.shape[1] == 3
        assert np.all(points >= 0) and np.all(points <= np.array(SHAPE) - 1)


def test_each_ribosome_centre_lies_in_its_own_ribosome_component(phantom):
    components, count = ndimage.label(phantom.labels == LABEL_IDS["ribosome"], np.ones((3, 3, 3)))
    centres = np.round(phantom.particles["ribosome"]).astype(int)
    ids = components[tuple(centres.T)]
    assert np.all(ids > 0)
    assert len(set(ids.tolist())) == len(ids)  # particles are kept apart: one component each
    # Any other component is a part of a ribosome cut by the volume faces.
    for index in set(range(1, count + 1)) - set(ids.tolist()):
        where = np.argwhere(components == index)
        assert np.any(where == 0) or np.any(where == np.array(SHAPE) - 1)


def _complete_particle_sizes(labels, centres, label_id):
    """Voxel counts and bounding boxes of the labelled particles not cut by the volume faces."""
    components, _ = ndimage.label(labels == label_id, np.ones((3, 3, 3)))
    found = []
    for centre in centres:
        where = np.argwhere(components == components[tuple(np.round(centre).astype(int))])
        if np.all(where > 0) and np.all(where < np.array(labels.shape) - 1):
            found.append((len(where), np.ptp(where, axis=0) + 1))
    return found


def test_ribosome_labels_are_the_map_envelope_not_spheres(phantom):
    template = densities.load_density("4v4r")
    envelope_voxels = int((template > densities.ENVELOPE_LEVEL).sum())
    complete = _complete_particle_sizes(
        phantom.labels, phantom.particles["ribosome"], LABEL_IDS["ribosome"]
    )
    assert len(complete) >= 1
    for volume, extent in complete:
        assert volume == pytest.approx(envelope_voxels, rel=0.1)
        # a sphere fills its bounding box to pi/6 = 52 %; the two-subunit 70S fills less
        assert volume / np.prod(extent) < 0.5


def test_some_ribosomes_touch_membranes(phantom):
    ribosomes = phantom.labels == LABEL_IDS["ribosome"]
    grown = ndimage.binary_dilation(ribosomes, np.ones((3, 3, 3)), iterations=2)
    assert np.any(grown & (phantom.labels == LABEL_IDS["membrane"]))


def test_fiducial_centres_are_labelled_gold(phantom):
    centres = np.round(phantom.particles["fiducial"]).astype(int)
    assert np.all(phantom.labels[tuple(centres.T)] == LABEL_IDS["fiducial"])


def test_microtubule_wall_surrounds_its_axis_and_lumen_is_empty(phantom):
    wall = np.argwhere(phantom.labels == LABEL_IDS["microtubule"])
    inner = wall[_away_from_faces(wall, 14)]
    distance = _axis_distance_nm(phantom, "microtubule", inner)
    tolerance = 0.05
    assert distance.max() <= MT_OUTER_NM + tolerance
    assert distance.min() >= MT_INNER_NM - tolerance
    every = np.argwhere(np.ones(SHAPE, dtype=bool))
    every = every[_away_from_faces(every, 14)]
    distance = _axis_distance_nm(phantom, "microtubule", every)
    labels = phantom.labels[tuple(every.T)]
    lumen = labels[distance < MT_INNER_NM - 1.0]
    assert lumen.size > 0
    assert set(np.unique(lumen)) <= {0, LABEL_IDS["ice"]}  # only ice is ever painted over it
    in_wall = labels[(distance > MT_INNER_NM + 1) & (distance < MT_OUTER_NM - 1)]
    assert np.mean(in_wall[in_wall != LABEL_IDS["ice"]] == LABEL_IDS["microtubule"]) > 0.99


def test_actin_voxels_lie_within_filament_radius(phantom):
    actin = np.argwhere(phantom.labels == LABEL_IDS["actin"])
    inner = actin[_away_from_faces(actin, 5)]
    assert len(inner) > 100
    assert _axis_distance_nm(phantom, "actin", inner).max() <= ACTIN_RADIUS_NM + 0.05


def test_membranes_are_thin_sheets(phantom):
    membrane = phantom.labels == LABEL_IDS["membrane"]
    # 5 nm thick sheets at 1 nm/voxel: no voxel is more than 3 voxels from non-membrane
    depth = ndimage.distance_transform_edt(np.pad(membrane, 1))
    assert depth.max() <= 3.0


def test_vesicles_are_closed_shells_with_clean_lumens():
    only_vesicles = CellContent(
        vesicles_per_um3=4000,
        vesicle_radius_nm=(15.0, 30.0),
        organelles_per_um2=0,
        microtubule_um_per_um3=0,
        actin_um_per_um3=0,
        ribosomes_per_um3=20000,
        crowders_per_um3=0,
        fiducials_per_um2=0,
        ice_blobs_per_um2=0,
    )
    shape = (32, 160, 160)
    phantom = simulate_tomogram(shape, seed=0, snr=None, content=only_vesicles)
    components, count = ndimage.label(phantom.labels == LABEL_IDS["membrane"], np.ones((3, 3, 3)))
    closed = 0
    for index in range(1, count + 1):
        shell = components == index
        where = np.argwhere(shell)
        if np.any(where[:, 1:] == 0) or np.any(where[:, 1:] == np.array(shape[1:]) - 1):
            continue  # cut by a side face: open
        # close the cuts by the slab surfaces with lids, then the lumen is a hole
        lidded = np.pad(shell, ((1, 1), (0, 0), (0, 0)), constant_values=True)
        lumen = ndimage.binary_fill_holes(lidded)[1:-1] & ~shell
        assert lumen.sum() > 0.3 * shell.sum()
        assert not np.any(phantom.labels[lumen])  # ribosomes stay in the cytosol
        closed += 1
    assert closed >= 1


def test_same_seed_same_phantom_other_seed_differs(phantom):
    again = simulate_tomogram(SHAPE, seed=SEED, snr=SNR, content=RICH)
    np.testing.assert_array_equal(again.tomogram, phantom.tomogram)
    np.testing.assert_array_equal(again.labels, phantom.labels)
    np.testing.assert_array_equal(again.particles["ribosome"], phantom.particles["ribosome"])
    other = simulate_tomogram(SHAPE, seed=SEED + 1, snr=SNR, content=RICH)
    assert not np.array_equal(other.labels, phantom.labels)


def test_snr_is_signal_variance_over_noise_variance(phantom, clean):
    np.testing.assert_array_equal(clean.labels, phantom.labels)  # same content, noise apart
    assert clean.tomogram.std() == pytest.approx(1.0, rel=1e-4)
    noise = phantom.tomogram - clean.tomogram
    assert abs(noise.mean()) < 1e-3
    assert clean.tomogram.var() / noise.var() == pytest.approx(SNR, rel=1e-3)


def test_missing_wedge_is_empty_in_fourier_space(phantom, clean):
    kz, _, kx = rfft_frequencies(SHAPE, 1.0)
    measured = np.broadcast_to(measured_region(kz, kx, 60.0), (SHAPE[0], SHAPE[1], kx.shape[2]))
    assert 0.2 < np.mean(~measured) < 0.6  # the wedge is a real part of the spectrum
    for volume in (clean.tomogram, phantom.tomogram):
        power = np.abs(np.fft.rfftn(volume)) ** 2
        assert power[~measured].sum() < 1e-9 * power[measured].sum()
    # and nothing else is removed: the spectrum just outside the wedge carries power
    angle = np.degrees(np.arctan2(np.abs(kz), np.abs(kx)))
    near_edge = np.broadcast_to((angle > 50) & (angle < 59), measured.shape)
    power = np.abs(np.fft.rfftn(clean.tomogram)) ** 2
    assert power[near_edge].mean() > 0.1 * power[measured].mean()


def test_tilt_range_sets_the_wedge():
    kz, _, kx = rfft_frequencies((16, 16, 16), 1.0)
    assert np.mean(~measured_region(kz, kx, 45.0)) > np.mean(~measured_region(kz, kx, 60.0))
    assert measured_region(kz, kx, 90.0).all()
    # the kz = 0 plane (and the origin) is always measured; the kz axis never is
    assert (
        measured_region(kz, kx, 60.0)[0].all() and not measured_region(kz, kx, 60.0)[1:, :, 0].any()
    )


def test_bright_contrast_inverts_the_dark_one(clean):
    bright = simulate_tomogram(SHAPE, seed=SEED, snr=None, content=RICH, contrast="bright")
    np.testing.assert_allclose(bright.tomogram, -clean.tomogram, atol=1e-5)


def test_protein_is_dark_by_default(clean):
    ribosomes = clean.labels == LABEL_IDS["ribosome"]
    smoothed = ndimage.gaussian_filter(clean.tomogram, 2.0)
    assert smoothed[ribosomes].mean() < smoothed[clean.labels == 0].mean()


def test_ctf_is_positive_at_low_frequency_and_has_its_first_zero_where_expected():
    frequency = np.linspace(0, 1 / 20, 2000)
    values = ctf(frequency, defocus_um=4.0, amplitude_contrast=0.0)
    assert values[1] > 0
    first_zero = frequency[np.argmax(values[1:] < 0) + 1]
    # without amplitude contrast the first zero is at k = 1 / sqrt(lambda * defocus) ~ 1 / 28 A
    assert first_zero == pytest.approx(1 / np.sqrt(0.019687 * 4e4), rel=0.02)


def test_phase_flipping_changes_the_image():
    small = (16, 64, 64)
    flipped = simulate_tomogram(small, seed=1, snr=None)
    raw = simulate_tomogram(small, seed=1, snr=None, imaging=ImagingConditions(phase_flipped=False))
    np.testing.assert_array_equal(flipped.labels, raw.labels)
    assert not np.allclose(flipped.tomogram, raw.tomogram, atol=1e-3)


def test_counts_scale_with_the_volume():
    small = simulate_tomogram((32, 128, 128), seed=4, snr=None)
    large = simulate_tomogram((32, 256, 256), seed=4, snr=None)
    assert len(large.particles["ribosome"]) > 2 * len(small.particles["ribosome"]) > 0


def test_other_voxel_sizes_keep_physical_sizes():
    shape = (24, 96, 96)
    coarse = simulate_tomogram(shape, voxel_size=20.0, seed=3, snr=1.0, content=RICH)
    assert coarse.voxel_size == 20.0
    assert coarse.labels.shape == shape
    template = densities.resample_density(densities.load_density("4v4r"), 20.0)
    envelope_voxels = int((template > densities.ENVELOPE_LEVEL).sum())
    complete = _complete_particle_sizes(
        coarse.labels, coarse.particles["ribosome"], LABEL_IDS["ribosome"]
    )
    assert complete
    for volume, _ in complete:
        assert volume == pytest.approx(envelope_voxels, rel=0.15)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": (16, 64)},
        {"shape": (4, 64, 64)},
        {"snr": 0.0},
        {"snr": -1.0},
        {"voxel_size": 0.0},
        {"contrast": "grey"},
    ],
)
def test_bad_arguments_are_refused(kwargs):
    arguments = {"shape": (16, 64, 64)} | kwargs
    with pytest.raises(BadInputError):
        simulate_tomogram(**arguments)


def test_densities_are_normalised_maps():
    assert {"4v4r", "3j9i", "1bxn", "membrane_4pe5"} <= set(densities.DENSITY_NAMES)
    assert densities.DENSITY_VOXEL_SIZE == 10.0
    for name in densities.DENSITY_NAMES:
        density = densities.load_density(name)
        assert density.dtype == np.float32 and density.ndim == 3
        assert density.min() >= 0
        envelope = density > 0.1 * density.max()
        assert density[envelope].mean() == pytest.approx(1.0, rel=0.05)
    ribosome = densities.load_density("4v4r")
    half = densities.resample_density(ribosome, 20.0)
    assert half.shape == tuple(round(n / 2) for n in ribosome.shape)
    # density units are kept: the same envelope level gives about the same volume in A^3
    volume = (ribosome > densities.ENVELOPE_LEVEL).sum() * 1000.0
    assert (half > densities.ENVELOPE_LEVEL).sum() * 8000.0 == pytest.approx(volume, rel=0.1)
    with pytest.raises(BadInputError):
        densities.load_density("no-such-map")
    with pytest.raises(BadInputError):
        densities.resample_density(ribosome, -1.0)


def test_written_files_round_trip_and_refuse_overwrite(phantom, tmp_path):
    paths = write_tomogram_phantom(phantom, tmp_path / "phantom")
    assert {p.name for p in paths.values()} == {
        "tomogram.mrc",
        "labels.mrc",
        "labels.json",
        "particles.csv",
        "filaments.json",
    }
    with open_volume(paths["tomogram"]) as volume:
        assert volume.shape == SHAPE and volume.voxel_size == pytest.approx(10.0)
        np.testing.assert_array_equal(volume.read(), phantom.tomogram)
    with open_volume(paths["labels"]) as volume:
        labels = np.asarray(volume.data)
        assert volume.voxel_size == pytest.approx(10.0)
        assert np.issubdtype(labels.dtype, np.unsignedinteger)
        np.testing.assert_array_equal(labels, phantom.labels)
    assert json.loads(paths["label_ids"].read_text()) == LABEL_IDS
    with open(paths["particles"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["feature", "x", "y", "z"]
    ribosomes = [r for r in rows if r["feature"] == "ribosome"]
    assert len(ribosomes) == len(phantom.particles["ribosome"])
    first = phantom.particles["ribosome"][0]
    assert [float(ribosomes[0][k]) for k in "zyx"] == pytest.approx(first, abs=0.01)
    filaments = json.loads(paths["filaments"].read_text())
    assert len(filaments["microtubule"]) == len(phantom.filaments["microtubule"])
    x, y, z = filaments["microtubule"][0][0]
    assert [z, y, x] == pytest.approx(phantom.filaments["microtubule"][0][0], abs=0.01)

    before = paths["tomogram"].stat().st_mtime_ns
    with pytest.raises(OutputExistsError):
        write_tomogram_phantom(phantom, tmp_path / "phantom")
    assert paths["tomogram"].stat().st_mtime_ns == before
    write_tomogram_phantom(phantom, tmp_path / "phantom", overwrite=True)
    assert not list((tmp_path / "phantom").glob(".*partial*"))


def test_missing_map_falls_back_to_a_blob_of_the_molecule_size(monkeypatch, tmp_path):
    monkeypatch.setattr(densities, "_FOLDER", tmp_path)
    blob = densities.load_density("4v4r")
    assert blob.dtype == np.float32 and blob.ndim == 3
    envelope = blob > densities.ENVELOPE_LEVEL
    diameter_nm = 2 * (3 * envelope.sum() / (4 * np.pi)) ** (1 / 3)  # voxels of 1 nm
    assert diameter_nm == pytest.approx(25.0, rel=0.15)
    assert blob[envelope].mean() == pytest.approx(1.0, rel=0.3)
