"""The probability-map contract: names, encoding, and every reader agreeing on every stored type."""

from __future__ import annotations

import numpy as np
import pytest

from tomoseg_nb.cli import main
from tomoseg_nb.coords import read_picks
from tomoseg_nb.errors import BadInputError
from tomoseg_nb.evaluate import score_map
from tomoseg_nb.maps import (
    STORED_DTYPES,
    MapName,
    decode_probabilities,
    encode_probabilities,
    find_maps,
    map_path,
    validate_feature_name,
)
from tomoseg_nb.merge import merge_files
from tomoseg_nb.mesh import mesh_from_map
from tomoseg_nb.picking import pick_map_file
from tomoseg_nb.segment import write_probability_maps
from tomoseg_nb.volume import Volume, open_volume
from tomoseg_nb.widgets._source import SliceSource
from tomoseg_nb.widgets.steps import pick_map
from tomoseg_nb.widgets.viewer import Overlay

THRESHOLD = 0.5
VOXEL_SIZE = 20.0
ORIGIN = (40.0, -20.0, 60.0)


def test_names_round_trip_and_plain_files_name_only_their_feature(tmp_path) -> None:
    path = map_path(tmp_path, "TS_01", "ribosome")
    assert path == tmp_path / "TS_01__ribosome.mrc"
    assert MapName.parse(path) == MapName("TS_01", "ribosome")
    assert MapName.parse("maps/TS__01__membrane.mrc") == MapName("TS__01", "membrane")
    assert MapName.parse("ribosome.mrc") == MapName(None, "ribosome")
    assert MapName.parse("__ribosome.mrc") == MapName(None, "__ribosome")
    path.write_bytes(b"")
    (tmp_path / "labels.mrc").write_bytes(b"")
    assert find_maps(tmp_path) == [path]
    with pytest.raises(BadInputError, match="not allowed"):
        map_path(tmp_path, "TS_01", "../escape")


def test_feature_names_must_be_safe_file_names() -> None:
    assert validate_feature_name("outer_membrane-2") == "outer_membrane-2"
    for bad in ("", "..", "a/b", "-lead", "x" * 65, "sp ace"):
        with pytest.raises(BadInputError, match="not allowed"):
            validate_feature_name(bad)


@pytest.mark.parametrize("dtype", STORED_DTYPES)
def test_encoding_round_trips_within_one_step(dtype: str) -> None:
    probabilities = np.linspace(0, 1, 1001, dtype=np.float32)
    stored = encode_probabilities(probabilities, dtype)
    assert stored.dtype == np.dtype(dtype)
    np.testing.assert_allclose(decode_probabilities(stored), probabilities, atol=0.5 / 255 + 1e-6)


def test_every_integer_width_decodes_as_eight_bit_and_a_converted_slice_too() -> None:
    expected = np.array([0, 0.5, 1], np.float32)
    for dtype in (np.uint8, np.uint16, np.int16, np.int32):
        stored = np.array([0, 127.5, 255]).round().astype(dtype)
        np.testing.assert_allclose(decode_probabilities(stored), expected, atol=0.5 / 255)
        # a viewer reads slices as float32; the stored type still says how to decode them
        as_float = stored.astype(np.float32)
        np.testing.assert_allclose(
            decode_probabilities(as_float, stored.dtype), expected, atol=0.5 / 255
        )
    assert decode_probabilities(np.array([True, False])).tolist() == [1.0, 0.0]
    with pytest.raises(BadInputError, match="uint8"):
        encode_probabilities(np.zeros(3), "int8")


def _blobs() -> np.ndarray:
    """Two round particles with soft edges; no voxel within 2/255 of the threshold."""
    z, y, x = np.indices((12, 40, 40))
    probability = np.zeros(z.shape, np.float32)
    for cz, cy, cx in ((6, 12, 12), (6, 27, 29)):
        distance2 = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2
        probability = np.maximum(probability, np.exp(-distance2 / 18.0))
    near = np.abs(probability - THRESHOLD) < 2 / 255
    probability[near] = THRESHOLD + np.where(probability[near] >= THRESHOLD, 3, -3) / 255
    return probability


@pytest.fixture(scope="module")
def stored_maps(tmp_path_factory) -> tuple[np.ndarray, dict[str, object]]:
    """The same map written by segment's writer as float32, float16 and uint8."""
    folder = tmp_path_factory.mktemp("maps")
    probability = _blobs()
    # each voxel of this stand-in tomogram holds its z, so the writer's slabs say where they are
    z_index = np.broadcast_to(np.arange(probability.shape[0], dtype=np.float32)[:, None, None],
                              probability.shape)  # fmt: skip
    tomogram = Volume(z_index, voxel_size=VOXEL_SIZE, origin=ORIGIN)
    paths = {}
    for dtype in STORED_DTYPES:
        (folder / dtype).mkdir()
        (path,) = write_probability_maps(
            tomogram,
            [map_path(folder / dtype, "TS_03", "ribosome")],
            lambda slab: [probability[slab[:, 0, 0].astype(int)]],
            dtype=dtype,
        )
        paths[dtype] = path
    return probability, paths


def test_every_reader_sees_the_same_probabilities_whatever_the_stored_type(
    stored_maps, tmp_path
) -> None:
    probability, paths = stored_maps
    truth = probability >= THRESHOLD
    reference_picks = None
    for dtype, path in paths.items():
        with open_volume(path) as volume:
            np.testing.assert_allclose(
                decode_probabilities(volume.data[...]), probability, atol=0.5 / 255 + 1e-3
            )
        # viewer overlay
        overlay = Overlay("ribosome", SliceSource(path))
        np.testing.assert_allclose(overlay.slice_at(6), probability[6], atol=0.5 / 255 + 1e-3)
        # widget pick panel and library picking
        widget_picks = pick_map(path, threshold=THRESHOLD, min_distance_angstrom=80.0)
        library = pick_map_file(path, threshold=THRESHOLD, min_distance_px=4.0, min_mass=1.0)
        assert widget_picks.tomogram == library.picks.tomogram == "TS_03"
        assert widget_picks.feature == "ribosome"
        if reference_picks is None:
            reference_picks = library.picks.coordinates
            assert len(reference_picks) == 2
        np.testing.assert_array_equal(library.picks.coordinates, reference_picks)
        # merge
        merged = merge_files([path], tmp_path / f"{dtype}.mrc", threshold=THRESHOLD)
        with open_volume(merged.labels_path) as labels:
            np.testing.assert_array_equal(labels.read() == 1, truth)
        # evaluate
        assert score_map(path, truth, THRESHOLD)["iou"] == 1.0
        # mesh, from the stored array as the CLI passes it
        with open_volume(path) as volume:
            mesh = mesh_from_map(volume.data[...], threshold=THRESHOLD, voxel_size=VOXEL_SIZE)
        expected = mesh_from_map(probability, threshold=THRESHOLD, voxel_size=VOXEL_SIZE)
        assert mesh.volume_angstrom3 == pytest.approx(expected.volume_angstrom3, rel=0.02)
        # CLI pick: the tomogram's name comes from the map's name, the format from the suffix
        out = tmp_path / f"{dtype}.star"
        assert main(["pick", str(path), "--threshold", "0.5", "--min-distance", "4",
                     "--min-mass", "1", "--out", str(out)]) == 0  # fmt: skip
        picks = read_picks(out, shape=probability.shape, voxel_size=VOXEL_SIZE)
        assert picks.tomogram == "TS_03"
        np.testing.assert_allclose(picks.coordinates, reference_picks, atol=1e-3)
