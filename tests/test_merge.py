"""Competitive merging: EMAN2's vote, per-feature thresholds, Ais interactions, streamed files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from tomoseg_nb.errors import BadInputError, EmptyResultWarning, OutputExistsError
from tomoseg_nb.merge import (
    apply_context,
    compete,
    label_names_path,
    merge_competitive,
    merge_files,
    read_label_names,
)
from tomoseg_nb.metrics import iou
from tomoseg_nb.volume import open_volume, write_volume


@settings(max_examples=60, deadline=None)
@given(
    maps=st.integers(1, 4).flatmap(
        lambda n: st.lists(
            arrays(np.float32, (3, 4, 5), elements=st.floats(0, 1, width=32)),
            min_size=n,
            max_size=n,
        )
    ),
    data=st.data(),
)
def test_labels_are_the_argmax_above_threshold_or_zero(maps, data) -> None:
    thresholds = data.draw(st.lists(st.floats(0, 1), min_size=len(maps), max_size=len(maps)))
    labels = merge_competitive(maps, threshold=thresholds)
    stack = np.stack(maps)
    candidate = stack > np.asarray(thresholds, np.float32)[:, None, None, None]
    assert ((labels == 0) == ~candidate.any(axis=0)).all()
    chosen = labels > 0
    k = labels[chosen].astype(int) - 1
    winners = stack[:, chosen][k, np.arange(k.size)]
    assert candidate[:, chosen][k, np.arange(k.size)].all()
    best = np.where(candidate, stack, -np.inf).max(axis=0)[chosen]
    np.testing.assert_array_equal(winners, best)


def test_one_threshold_is_eman2s_nothing_level() -> None:
    maps = [np.array([[0.9, 0.6, 0.1, 0.8]]), np.array([[0.85, 0.95, 0.2, 0.8]])]
    labels = merge_competitive(maps, threshold=0.8)
    # Ties go to "nothing" first (0.8 is not above 0.8), then to the earlier map.
    np.testing.assert_array_equal(labels, [[1, 2, 0, 0]])
    eman2 = np.argmax(np.stack([np.full((1, 4), 0.8), *maps]), axis=0)
    np.testing.assert_array_equal(labels, eman2)
    np.testing.assert_array_equal(merge_competitive(maps, threshold=[0.95, 0.5]), [[2, 2, 0, 2]])


def test_competition_gives_way_to_a_stronger_emitter_even_below_its_threshold() -> None:
    membrane = np.array([0.9, 0.9, 0.9])
    ribosome = np.array([0.95, 0.7, 0.2])
    plain = merge_competitive([membrane, ribosome], threshold=0.8, names=["membrane", "ribosome"])
    np.testing.assert_array_equal(plain, [2, 1, 1])
    absorbed = merge_competitive(
        [ribosome, membrane],
        threshold=[0.8, 0.5],
        names=["ribosome", "membrane"],
        emit=["ribosome"],
        absorb=["membrane"],
    )
    np.testing.assert_array_equal(absorbed, [1, 2, 2])
    np.testing.assert_array_equal(
        merge_competitive([ribosome, membrane], threshold=[0.96, 0.5], emit=[0], absorb=[1]),
        [0, 2, 2],
    )
    out = compete([ribosome, membrane], emit=[0], absorb=[1])
    np.testing.assert_allclose(out[1], [0.0, 0.9, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(out[0], ribosome.astype(np.float32))


def test_colocalize_and_avoid_use_a_radius_in_angstrom() -> None:
    shape = (1, 1, 40)
    partner = np.zeros(shape, np.float32)
    partner[0, 0, 10] = 1.0
    target = np.ones(shape, np.float32)
    near = apply_context([target, partner], [0.5, 0.5], colocalize=[(0, 1, 50.0)], voxel_size=10.0)[
        0
    ]
    # Within 50 A of voxel 10 at 10 A/voxel: voxels 5..15.
    np.testing.assert_array_equal(np.flatnonzero(near[0, 0]), np.arange(5, 16))
    far = apply_context([target, partner], [0.5, 0.5], avoid=[(0, 1, 50.0)], voxel_size=10.0)[0]
    np.testing.assert_array_equal(far[0, 0] > 0, ~(near[0, 0] > 0))
    labels = merge_competitive(
        [target, partner],
        threshold=0.5,
        names=["ribosome", "membrane"],
        avoid=[("ribosome", "membrane", 50.0)],
        voxel_size=10.0,
    )
    assert set(np.unique(labels[0, 0, 5:16])) == {0, 2} and (labels[0, 0, 16:] == 1).all()


def _touching_phantom() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A membrane sheet with ribosomes sitting on it and a microtubule beside one of them."""
    shape = (24, 64, 64)
    z, y, x = np.indices(shape)
    labels = np.zeros(shape, np.uint8)
    labels[(np.abs(z - 8) <= 1)] = 1
    for cy, cx in ((16, 16), (16, 40), (44, 28)):
        labels[(z - 14) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= 25] = 3
    r = np.hypot(z - 15, y - 30)
    labels[(r >= 2.5) & (r <= 4.5) & (labels == 0)] = 2
    rng = np.random.default_rng(0)
    maps = {}
    for name, value in (("membrane", 1), ("microtubule", 2), ("ribosome", 3)):
        blurred = (
            ndimage.gaussian_filter((labels == value).astype(np.float32), (1.6, 1.0, 1.0)) * 1.3
        )
        noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.0)
        maps[name] = np.clip(blurred + 0.05 * noise / noise.std(), 0, 1)
    return labels, maps


def test_merging_beats_thresholding_each_map_where_features_touch() -> None:
    labels, maps = _touching_phantom()
    names = list(maps)
    merged = merge_competitive([maps[n] for n in names], threshold=0.3, names=names)
    near = [ndimage.distance_transform_edt(labels != v) <= 3 for v in (1, 2, 3)]
    contact = np.sum(near, axis=0) >= 2
    for k, (name, value) in enumerate(zip(names, (1, 2, 3), strict=True), start=1):
        truth = labels == value
        alone = iou((maps[name] > 0.3)[contact], truth[contact])
        assert iou((merged == k)[contact], truth[contact]) > alone, name
        assert iou(merged == k, truth) >= iou(maps[name] > 0.3, truth), name


def test_merge_files_streams_slabs_and_equals_the_in_memory_merge(tmp_path) -> None:
    labels, maps = _touching_phantom()
    paths = []
    for name, probability in maps.items():
        dtype_map = (
            (probability * 255).round().astype(np.uint8) if name == "ribosome" else probability
        )
        paths.append(
            write_volume(
                tmp_path / f"TS_01__{name}.mrc", dtype_map, voxel_size=10.0, origin=(1.0, 2.0, 3.0)
            )
        )
    rules = {
        "threshold": [0.5, 0.4, 0.5],
        "colocalize": [("ribosome", "membrane", 80.0)],
        "absorb": ["membrane"],
        "emit": ["ribosome"],
    }
    progress = []
    result = merge_files(
        paths,
        tmp_path / "labels.mrc",
        slab_size=3,
        progress=lambda d, t: progress.append((d, t)),
        **rules,
    )
    in_memory = merge_competitive(
        [maps["membrane"], maps["microtubule"], (maps["ribosome"] * 255).round().astype(np.uint8)],
        names=["membrane", "microtubule", "ribosome"],
        voxel_size=10.0,
        **rules,
    )
    with open_volume(result.labels_path) as volume:
        np.testing.assert_array_equal(volume.read(), in_memory)
        assert volume.voxel_size == pytest.approx(10.0) and volume.origin == (1.0, 2.0, 3.0)
    assert progress[-1] == (24, 24)
    assert read_label_names(result.names_path) == {
        0: "background",
        1: "membrane",
        2: "microtubule",
        3: "ribosome",
    }
    document = json.loads(result.names_path.read_text())
    assert document["thresholds"] == {"membrane": 0.5, "microtubule": 0.4, "ribosome": 0.5}
    assert sum(document["voxel_counts"].values()) == labels.size
    assert result.names_path == label_names_path(tmp_path / "labels.mrc")
    with pytest.raises(OutputExistsError):
        merge_files(paths, tmp_path / "labels.mrc")


def test_a_threshold_that_leaves_nothing_writes_an_empty_valid_volume(tmp_path) -> None:
    path = write_volume(tmp_path / "a.mrc", np.full((4, 8, 8), 0.3, np.float32), voxel_size=5.0)
    with pytest.warns(EmptyResultWarning, match="Lower the threshold"):
        result = merge_files([path], tmp_path / "out.mrc", threshold=0.9)
    with open_volume(result.labels_path) as volume:
        assert volume.shape == (4, 8, 8) and not volume.read().any()
    assert result.voxel_counts == {"background": 256, "a": 0}


def test_maps_of_different_shapes_or_voxel_sizes_are_refused(tmp_path) -> None:
    a = write_volume(tmp_path / "a.mrc", np.zeros((4, 8, 8), np.float32), voxel_size=10.0)
    b = write_volume(tmp_path / "b.mrc", np.zeros((4, 8, 9), np.float32), voxel_size=10.0)
    c = write_volume(tmp_path / "c.mrc", np.zeros((4, 8, 8), np.float32), voxel_size=20.0)
    with pytest.raises(BadInputError, match="shape"):
        merge_files([a, b], tmp_path / "x.mrc")
    with pytest.raises(BadInputError, match="voxel size"):
        merge_files([a, c], tmp_path / "x.mrc")
    assert not (tmp_path / "x.mrc").exists() and not (tmp_path / "x.json").exists()
    with pytest.raises(BadInputError, match="shape"):
        merge_competitive([np.zeros((2, 2)), np.zeros((2, 3))])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": [0.5]}, "thresholds given for 2 maps"),
        ({"names": ["a", "a"]}, "unique"),
        ({"names": ["a", "b"], "emit": ["c"]}, "unknown feature 'c'"),
        ({"colocalize": [(0, 0, 10.0)]}, "must differ"),
        ({"threshold": float("nan")}, "finite"),
    ],
)
def test_bad_merge_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        merge_competitive([np.zeros(3), np.zeros(3)], **kwargs)


def test_a_label_name_file_that_is_not_a_name_map_is_refused(tmp_path) -> None:
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(BadInputError, match="labels"):
        read_label_names(tmp_path / "bad.json")


def test_label_overlay_has_a_legend_entry_per_feature() -> None:
    from tomoseg_nb.plots.picks import plot_label_overlay

    labels, maps = _touching_phantom()
    figure = plot_label_overlay(
        maps["membrane"][14], labels[14], {0: "background", 1: "membrane", 3: "ribosome"}
    )
    texts = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert (
        len(texts) == 2 and texts[0].startswith("1 membrane") and texts[1].startswith("3 ribosome")
    )
