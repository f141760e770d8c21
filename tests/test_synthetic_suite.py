"""The phantom suite: every spec builds, parameters really vary, the two halves never meet."""

import itertools
import json
from dataclasses import replace

import numpy as np
import pytest

from tomoseg_nb.errors import BadInputError
from tomoseg_nb.synthetic.suite import (
    DEVELOPMENT,
    HALVES,
    HELD_BACK,
    WRITERS,
    PhantomSpec,
    draw_spec,
)
from tomoseg_nb.synthetic.tomogram import CellContent, simulate_tomogram

SMALL = (16, 64, 64)


@pytest.mark.parametrize("spec", HALVES["all"], ids=lambda spec: spec.name)
def test_each_spec_builds_in_its_writers_dtype_and_levels(spec: PhantomSpec):
    phantom = spec.build(SMALL)
    dtype, _, _ = WRITERS[spec.writer]
    assert phantom.tomogram.shape == phantom.labels.shape == SMALL
    assert phantom.tomogram.dtype == np.dtype(dtype)
    assert phantom.voxel_size == spec.voxel_size
    values = phantom.tomogram.astype(np.float64)
    # Integer writers round and clip the tails, so mean and spread may move a little.
    assert abs(values.mean() - spec.grey_mean) < 0.05 * spec.grey_std + 0.5
    assert abs(values.std() - spec.grey_std) < 0.05 * spec.grey_std + 0.5


def test_at_least_eight_phantoms_with_unique_names_in_two_disjoint_halves():
    assert len(DEVELOPMENT) >= 4 and len(HELD_BACK) >= 4
    assert len(DEVELOPMENT) + len(HELD_BACK) >= 8
    assert not {s.seed for s in DEVELOPMENT} & {s.seed for s in HELD_BACK}
    assert not {s.name for s in DEVELOPMENT} & {s.name for s in HELD_BACK}
    assert len({s.name for s in HALVES["all"]}) == len(HALVES["all"])
    assert HALVES["all"] == DEVELOPMENT + HELD_BACK


@pytest.mark.parametrize("half", [DEVELOPMENT, HELD_BACK], ids=["development", "held-back"])
def test_parameters_span_the_ranges_users_have_in_each_half(half):
    voxel_sizes = [s.voxel_size for s in half]
    snrs = [s.snr for s in half]
    wedges = [s.tilt_range_deg for s in half]
    assert all(7.0 <= v <= 20.0 for v in voxel_sizes) and max(voxel_sizes) - min(voxel_sizes) > 4
    assert all(0.05 <= v <= 0.5 for v in snrs) and max(snrs) / min(snrs) > 2
    assert 90.0 in wedges and min(wedges) <= 55 and any(64 < w < 90 for w in wedges)
    assert {s.polarity for s in half} == {"dark", "bright"}
    assert {s.microtubules for s in half} == {"in-plane", "oblique", "steep"}
    assert len({s.writer for s in half}) >= 3
    for field in ("thickness_nm", "defocus_um", "grey_std"):
        assert len({getattr(s, field) for s in half}) == len(half), field
    for field in ("ribosomes_per_um3", "microtubule_um_per_um3", "membrane_contrast"):
        assert len({getattr(s.content, field) for s in half}) == len(half), field


def test_name_is_made_from_seed_and_parameters():
    spec = DEVELOPMENT[0]
    assert spec.name.startswith(f"s{spec.seed}-{spec.voxel_size:.1f}A-snr{spec.snr:.2f}-")
    assert spec.writer in spec.name and spec.polarity in spec.name
    assert draw_spec(spec.seed, wedge="none", writer=spec.writer, polarity=spec.polarity) != (
        draw_spec(spec.seed, wedge="steep", writer=spec.writer, polarity=spec.polarity)
    )
    assert json.loads(json.dumps(spec.to_dict()))["name"] == spec.name


def test_same_seed_same_spec_and_phantom():
    assert draw_spec(7) == draw_spec(7) != draw_spec(8)
    a, b = draw_spec(7).build(SMALL), draw_spec(7).build(SMALL)
    assert np.array_equal(a.tomogram, b.tomogram) and np.array_equal(a.labels, b.labels)


def test_unknown_scenario_is_refused():
    with pytest.raises(BadInputError, match="writers"):
        draw_spec(1, writer="eman2")


def test_z_follows_the_slab_thickness_up_to_the_shape():
    spec = DEVELOPMENT[0]
    slices = round(spec.thickness_nm * 10 / spec.voxel_size)
    assert spec.shape((1000, 64, 64)) == (max(32, slices), 64, 64)
    assert spec.shape((20, 64, 64)) == (20, 64, 64)


def test_integer_writers_clip_to_their_range():
    spec = draw_spec(3, writer="imod-bytes")
    # One far outlier each way: the rest sits at the mean, the outliers clip at 0 and 255.
    tomogram = np.zeros(1000, dtype=np.float32)
    tomogram[0], tomogram[1] = -1.0, 1.0
    written = spec.written(tomogram)
    assert written.dtype == np.uint8
    assert (written[0], written[1]) == (0, 255)
    assert set(written[2:].tolist()) == {round(spec.grey_mean)}


# ----------------------------------------------------------------- the knobs the suite added

RICH_MT = CellContent(
    vesicles_per_um3=0,
    organelles_per_um2=0,
    microtubule_um_per_um3=400,
    actin_um_per_um3=0,
    ribosomes_per_um3=0,
    crowders_per_um3=0,
    fiducials_per_um2=0,
    ice_blobs_per_um2=0,
)


def _axis_elevations_deg(phantom) -> np.ndarray:
    angles = []
    for line in phantom.filaments["microtubule"]:
        for a, b in itertools.pairwise(line):
            d = b - a
            angles.append(np.degrees(np.arcsin(abs(d[0]) / np.linalg.norm(d))))
    return np.array(angles)


def test_microtubule_elevation_tilts_the_axes_out_of_the_slab():
    flat = simulate_tomogram((48, 96, 96), seed=4, snr=None, content=RICH_MT)
    steep = simulate_tomogram(
        (48, 96, 96),
        seed=4,
        snr=None,
        content=replace(RICH_MT, microtubule_elevation_deg=(60.0, 3.0)),
    )
    assert np.median(_axis_elevations_deg(flat)) < 15
    assert np.median(_axis_elevations_deg(steep)) > 45


def test_wall_and_membrane_contrast_scale_the_density():
    base = replace(RICH_MT, vesicles_per_um3=3000)
    options = {"seed": 5, "snr": None}
    plain = simulate_tomogram((24, 96, 96), **options, content=base)
    faint = simulate_tomogram(
        (24, 96, 96),
        **options,
        content=replace(base, microtubule_contrast=0.5, membrane_contrast=0.5),
    )
    assert np.array_equal(plain.labels, faint.labels)
    for label in (1, 2):
        inside = plain.labels == label
        assert inside.any()
        # The tomogram is standardised and dark: the features are less negative when fainter.
        assert faint.tomogram[inside].mean() > 0.8 * plain.tomogram[inside].mean()
        assert faint.tomogram[inside].mean() < 0.0


def test_fourteen_protofilaments_change_the_wall_texture_not_the_labels():
    content = replace(RICH_MT, microtubule_protofilaments=14)
    thirteen = simulate_tomogram((24, 96, 96), seed=6, snr=None, content=RICH_MT)
    fourteen = simulate_tomogram((24, 96, 96), seed=6, snr=None, content=content)
    assert (thirteen.labels == 2).any()
    assert np.array_equal(thirteen.labels, fourteen.labels)
    assert not np.allclose(thirteen.tomogram, fourteen.tomogram)
