"""Tiles to training arrays: cutting from preprocessed slices, binning, augmentation, balance."""

import numpy as np
import pytest

from tomoseg_nb.annotations import Project
from tomoseg_nb.dataset import (
    build_known_negative_set,
    build_training_set,
    check_tiles,
    collect_known_negatives,
    collect_tiles,
    copies_per_tile,
    dihedral,
    extract_tile,
    shrink_labels,
)
from tomoseg_nb.errors import BadInputError
from tomoseg_nb.models import IGNORE
from tomoseg_nb.preprocess import Recipe, bin_slices, preprocess_slice
from tomoseg_nb.volume import open_volume, write_volume

SHAPE = (4, 80, 96)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A noisy tomogram with a bright square per slice, and its truth mask."""
    rng = np.random.default_rng(0)
    truth = np.zeros(SHAPE, bool)
    truth[:, 25:47, 31:60] = True
    data = (truth * 2.0 + rng.normal(size=SHAPE)).astype(np.float32)
    path = write_volume(tmp_path_factory.mktemp("data") / "tomo.mrc", data, voxel_size=10)
    return path, truth


@pytest.fixture
def project(tmp_path, scene):
    path, truth = scene
    project = Project.create(tmp_path / "p", tomogram=path)
    project.add_feature("square", tile_size=16)
    for z, y, x in [(1, 33, 41), (2, 40, 55)]:
        tile = project.add_tile("square", z, y, x)
        y0, x0 = y - 8, x - 8
        project.set_mask(tile.id, truth[z, y0 : y0 + 16, x0 : x0 + 16])
    project.add_tile("square", 0, 10, 10, positive=False)
    project.add_tile("square", 3, 70, 85, positive=False)
    yield project
    project.close()


def test_extract_tile():
    image = np.arange(100.0).reshape(10, 10)
    np.testing.assert_array_equal(extract_tile(image, 5, 4, 4), image[3:7, 2:6])
    with pytest.raises(BadInputError, match="outside"):
        extract_tile(image, 1, 5, 4)


def test_collect_tiles_cuts_from_whole_preprocessed_slices(project, scene):
    path, truth = scene
    tiles = collect_tiles(project, "square")
    assert tiles.images.shape == (4, 16, 16) and tiles.images.dtype == np.float32
    assert tiles.positive.tolist() == [True, True, False, False]
    with open_volume(path) as volume:
        for image, mask, tile in zip(tiles.images, tiles.masks, tiles.tiles, strict=True):
            whole = preprocess_slice(volume.slice(tile.z))
            np.testing.assert_array_equal(image, extract_tile(whole, tile.y, tile.x, 16))
            y0, x0 = tile.y - 8, tile.x - 8
            expected = truth[tile.z, y0 : y0 + 16, x0 : x0 + 16] if tile.positive else False
            np.testing.assert_array_equal(mask, expected)


def test_binned_tiles_stay_aligned_with_their_masks(project, scene):
    """Tile origins at odd voxels: masks are shifted to the bins before pooling."""
    path, truth = scene
    tiles = collect_tiles(project, "square", path, Recipe(binning=2))
    assert tiles.images.shape == (4, 8, 8)
    binned_truth = bin_slices(truth.astype(np.float32), 2) >= 0.5
    with open_volume(path) as volume:
        for image, mask, tile in zip(tiles.images, tiles.masks, tiles.tiles, strict=True):
            whole = preprocess_slice(volume.slice(tile.z), Recipe(binning=2))
            by, bx = (tile.y - 8) // 2, (tile.x - 8) // 2
            np.testing.assert_array_equal(image, whole[by : by + 8, bx : bx + 8])
            if tile.positive:
                expected = binned_truth[tile.z, by : by + 8, bx : bx + 8]
                # the first row/column pools a voxel outside the painted tile when the origin is odd
                skip_y, skip_x = (tile.y - 8) % 2, (tile.x - 8) % 2
                np.testing.assert_array_equal(mask[skip_y:, skip_x:], expected[skip_y:, skip_x:])


def test_collect_tiles_refuses_bad_annotations(project, scene, tmp_path):
    with pytest.raises(BadInputError, match="no feature"):
        collect_tiles(project, "ribosome")
    project.add_feature("empty", tile_size=16)
    project.add_tile("empty", 0, 20, 20, positive=False)
    with pytest.raises(BadInputError, match="no positive tile"):
        collect_tiles(project, "empty")
    unpainted = project.add_tile("empty", 0, 40, 40)
    with pytest.raises(BadInputError, match=f"{unpainted.id}.*empty mask"):
        collect_tiles(project, "empty")
    other = write_volume(tmp_path / "other.mrc", np.zeros((4, 80, 80), np.float32))
    with pytest.raises(BadInputError, match="differs from the annotated"):
        collect_tiles(project, "square", other)
    with pytest.raises(BadInputError, match="not divisible by the binning"):
        collect_tiles(project, "square", None, Recipe(binning=3))


def test_check_tiles():
    images = np.zeros((3, 8, 8))
    masks = np.zeros((3, 8, 8), bool)
    masks[0, 2:4] = True
    check_tiles(images, masks, [True, False, False])
    with pytest.raises(BadInputError, match="no positive tile"):
        check_tiles(images, np.zeros_like(masks), [False] * 3)
    with pytest.raises(BadInputError, match=r"\[1\] have an empty mask"):
        check_tiles(images, masks, [True, True, False])
    stray = masks.copy()
    stray[1, 0, 0] = True
    with pytest.raises(BadInputError, match=r"negative tiles \[1\] have painted pixels"):
        check_tiles(images, stray, [True, False, False])
    with pytest.raises(BadInputError, match="do not match"):
        check_tiles(images, masks[:2], [True, False])


def test_copies_balance_classes_like_eman2():
    positive = np.array([True] * 10 + [False] * 100)
    counts = copies_per_tile(positive)
    assert set(counts[positive]) == {100} and set(counts[~positive]) == {10}
    assert counts[positive].sum() == counts[~positive].sum()
    assert copies_per_tile(np.array([True, True]), 10).tolist() == [10, 10]


def test_dihedral_gives_the_eight_symmetries():
    image = np.arange(9).reshape(3, 3)
    variants = {dihedral(image, k).tobytes() for k in range(8)}
    assert len(variants) == 8


def test_shrink_labels_is_a_block_mean():
    mask = np.zeros((4, 4))
    mask[0, 0] = mask[0, 1] = mask[1, 0] = 1
    mask[2:, 2:] = 1
    np.testing.assert_array_equal(shrink_labels(mask, 2), [[0.75, 0], [0, 1]])


def _toy_tiles(n_pos=3, n_neg=6, size=16, seed=0):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_pos + n_neg, size, size), bool)
    for i in range(n_pos):
        y, x = rng.integers(2, size - 6, 2)
        masks[i, y : y + 5, x : x + 3] = True  # asymmetric, so orientation matters
    positive = np.arange(n_pos + n_neg) < n_pos
    return masks.astype(np.float32), masks, positive


def test_training_set_shapes_balance_and_labels():
    images, masks, positive = _toy_tiles()
    x, y = build_training_set(images, masks, positive, output_stride=2, copies=10, seed=0)
    per_positive = round(10 * 6 / 3)
    assert x.shape == (3 * per_positive + 6 * 10, 16, 16, 1) and x.dtype == np.float32
    assert y.shape == (len(x), 8, 8, 1) and y.dtype == np.float32
    assert set(np.unique(y)) <= {0, 0.25, 0.5, 0.75, 1}
    assert not y[3 * per_positive :].any()  # negatives: all-zero labels
    with pytest.raises(BadInputError, match="not divisible by the network's output stride"):
        build_training_set(images[:, :15, :15], masks[:, :15, :15], positive, output_stride=2)


def test_augmentation_moves_image_and_mask_together():
    """Image == mask going in, so every copy's image must still match its label."""
    images, masks, positive = _toy_tiles()
    x, y = build_training_set(images, masks, positive, output_stride=1, copies=10, seed=3)
    x, y = x[..., 0], y[..., 0]
    exact = np.arange(len(x)) % 20 < 8  # positives get 20 copies; the first 8 are symmetries
    exact[3 * 20 :] = False
    np.testing.assert_array_equal(x[exact], y[exact])
    rotated = np.arange(3 * 20)[np.arange(3 * 20) % 20 >= 8]
    agreement = ((x[rotated] >= 0.5) == (y[rotated] >= 0.5)).mean()
    assert agreement > 0.97
    assert not np.array_equal(x[rotated[0]], x[0])  # rotation did change the tile


def test_training_set_is_reproducible():
    images, masks, positive = _toy_tiles()
    first = build_training_set(images, masks, positive, seed=5)
    again = build_training_set(images, masks, positive, seed=5)
    other = build_training_set(images, masks, positive, seed=6)
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], other[0])
    plain = build_training_set(images, masks, positive, seed=5, rotate=False, copies=1)
    assert len(plain[0]) == 3 * 2 + 6


def test_other_features_painted_pixels_are_known_negatives(project, scene):
    """Another feature's positive tiles are re-cut at this feature's size around the same centre
    (moved inwards at the border), with only that feature's painted pixels in the mask."""
    path, _ = scene
    project.add_feature("edge", tile_size=8)
    inside = project.add_tile("edge", 1, 30, 40)
    inside_mask = np.zeros((8, 8), bool)
    inside_mask[2:5, 3:7] = True
    project.set_mask(inside.id, inside_mask)
    border = project.add_tile("edge", 2, 4, 90)  # a 16 px tile here would leave the slice
    project.set_mask(border.id, np.ones((8, 8), bool))
    project.add_tile("edge", 3, 40, 40, positive=False)  # negative tiles paint nothing: skipped
    images, masks = collect_known_negatives(project, "square")
    assert images.shape == masks.shape == (2, 16, 16)
    with open_volume(path) as volume:
        whole = preprocess_slice(volume.slice(1))
        np.testing.assert_array_equal(images[0], extract_tile(whole, 30, 40, 16))
        np.testing.assert_array_equal(
            images[1], extract_tile(preprocess_slice(volume.slice(2)), 8, 88, 16)
        )
    expected = np.zeros((16, 16), bool)
    expected[4 + 2 : 4 + 5, 4 + 3 : 4 + 7] = True  # the 8 px tile sits 4 px in from the 16 px one
    np.testing.assert_array_equal(masks[0], expected)
    expected = np.zeros((16, 16), bool)
    expected[0:8, 6:14] = True  # y 0..8 and x 86..94 of the slice, in the tile from (0, 80)
    np.testing.assert_array_equal(masks[1], expected)
    # The squares, re-cut at 8 px around their centres, lie inside the painted square.
    edge_images, edge_masks = collect_known_negatives(project, "edge")
    assert edge_images.shape == (2, 8, 8) and edge_masks.all()


def test_known_negative_labels_teach_only_the_painted_pixels():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(3, 8, 8)).astype(np.float32)
    masks = np.zeros((3, 8, 8), bool)
    masks[:, :4, :] = True  # top half painted as another feature
    masks[:, 4, :] = True  # half of each 2x2 block of block row 2: known
    masks[:, 6, ::2] = True  # a quarter of each block of block row 3: still unknown
    x, y = build_known_negative_set(images, masks, output_stride=2, copies=2, rotate=False)
    assert x.shape == (6, 8, 8, 1) and y.shape == (6, 4, 4, 1)
    assert set(np.unique(y)) == {0.0, IGNORE}
    # copy 0 is the tile as it is
    np.testing.assert_array_equal(
        y[0, :, :, 0] == 0.0, np.repeat([[True], [True], [True], [False]], 4, axis=1)
    )
    # copy 1 is a quarter turn: images and labels turn together
    np.testing.assert_array_equal(x[1, :, :, 0], np.rot90(images[0]))
    np.testing.assert_array_equal(y[1, :, :, 0], np.rot90(y[0, :, :, 0]))
    with pytest.raises(BadInputError, match="same shape"):
        build_known_negative_set(images, masks[:, :4])


def test_random_rotations_turn_image_and_mask_together_by_any_angle():
    """EMAN2's augmentation: every copy is a rotation by a uniform random angle (no identity copy,
    no flips), the same for image and mask, the corners it brings in filled with 0."""
    images, masks, positive = _toy_tiles(n_pos=2, n_neg=4, size=32)
    images = images + 1.0  # an image of ones and twos: zero only where the rotation filled it
    x, y = build_training_set(
        images, masks, positive, output_stride=1, copies=6, augmentation="random-rotations", seed=3
    )
    per_positive = round(6 * 4 / 2)
    assert len(x) == 2 * per_positive + 4 * 6
    # The image is mask + 1 everywhere inside the tile: the same rotation keeps that relation.
    inside = x[..., 0] > 0.999
    np.testing.assert_allclose(x[..., 0][inside], y[..., 0][inside] + 1.0, atol=1e-5)
    assert (x[:, 0, 0, 0] < 0.5).mean() > 0.5  # corners came in empty for most angles
    assert not np.array_equal(x[0, ..., 0], images[0])  # no copy is the tile as it is
    # Angles are not limited to the square's symmetries or to +-45 degrees: the painted area
    # turns to many different orientations (distinct masks among one tile's copies).
    turned = {tuple(np.round(y[k, ..., 0], 3).ravel()) for k in range(per_positive)}
    assert len(turned) == per_positive
    again = build_training_set(
        images, masks, positive, output_stride=1, copies=6, augmentation="random-rotations", seed=3
    )
    np.testing.assert_array_equal(x, again[0])


def test_random_rotations_without_rotate_are_the_exact_symmetries():
    images, masks, positive = _toy_tiles()
    plain = build_training_set(images, masks, positive, copies=1, rotate=False)
    eman2 = build_training_set(
        images, masks, positive, copies=1, rotate=False, augmentation="random-rotations"
    )
    np.testing.assert_array_equal(plain[0], eman2[0])
    np.testing.assert_array_equal(plain[1], eman2[1])


def test_unknown_augmentation_is_refused():
    images, masks, positive = _toy_tiles()
    with pytest.raises(BadInputError, match="unknown augmentation 'flips'"):
        build_training_set(images, masks, positive, augmentation="flips")


def _constant_slices_project(tmp_path, depth=6):
    """Slice z of the tomogram is the constant 10 z; positive tiles at both ends and inside."""
    data = np.repeat(10.0 * np.arange(depth, dtype=np.float32), 24 * 24).reshape(depth, 24, 24)
    path = write_volume(tmp_path / "constant.mrc", data, voxel_size=10)
    project = Project.create(tmp_path / "z", tomogram=path)
    project.add_feature("f", tile_size=8)
    mask = np.zeros((8, 8), bool)
    mask[2:5, 3:6] = True
    for z in (0, 2, depth - 1):
        project.set_mask(project.add_tile("f", z, 12, 12).id, mask)
    project.add_tile("f", 1, 6, 6, positive=False)
    return project


def test_z_context_tiles_hold_the_neighbouring_slices(tmp_path, monkeypatch):
    """Each channel of a z-context tile is the right neighbour, mirrored at the tomogram's ends.

    A constant slice normalises to zero, so the slices' identities are read with preprocessing
    switched off here; the next test checks the channels against the real preprocessing.
    """
    import tomoseg_nb.dataset as dataset

    monkeypatch.setattr(dataset, "preprocess_slice", lambda image, recipe: image.astype("f4"))
    project = _constant_slices_project(tmp_path, depth=6)
    plain = collect_tiles(project, "f")
    assert plain.images.shape == (4, 8, 8)
    tiles = collect_tiles(project, "f", z_context=2)
    assert tiles.images.shape == (4, 8, 8, 5) and tiles.masks.shape == (4, 8, 8)
    channels = {tile.z: tiles.images[i, 0, 0, :] / 10 for i, tile in enumerate(tiles.tiles)}
    assert channels[2].tolist() == [0, 1, 2, 3, 4]
    assert channels[0].tolist() == [2, 1, 0, 1, 2]  # mirrored below slice 0
    assert channels[5].tolist() == [3, 4, 5, 4, 3]  # mirrored above the last slice
    assert channels[1].tolist() == [1, 0, 1, 2, 3]
    for i in range(4):  # each channel is constant over the tile, the middle one the tile's slice
        assert (tiles.images[i] == tiles.images[i, :1, :1]).all()
        np.testing.assert_array_equal(tiles.images[i, ..., 2], plain.images[i])
    np.testing.assert_array_equal(tiles.masks, plain.masks)


def test_z_context_channels_are_the_preprocessed_neighbours(project, scene):
    path, _ = scene
    recipe = Recipe()
    tiles = collect_tiles(project, "square", recipe=recipe, z_context=1)
    assert tiles.images.shape == (4, 16, 16, 3)
    with open_volume(path) as volume:
        prepared = [preprocess_slice(volume.slice(z), recipe) for z in range(SHAPE[0])]
    for image, tile in zip(tiles.images, tiles.tiles, strict=True):
        neighbours = {0: [1, 0, 1], 3: [2, 3, 2]}.get(tile.z, [tile.z - 1, tile.z, tile.z + 1])
        for channel, z in enumerate(neighbours):
            expected = extract_tile(prepared[z], tile.y, tile.x, 16)
            np.testing.assert_array_equal(image[..., channel], expected)
    known, masks = collect_known_negatives(project, "square", z_context=1)
    assert known.shape == (0, 16, 16, 3) and masks.shape == (0, 16, 16)


def test_extra_lowpass_tiles_stack_each_slices_channels_together(project, scene):
    """With z context 1 and one extra lowpass, a tile is 6 channels: per neighbouring slice its
    two filterings, in ``stack_z_context``'s order, as ``segment`` feeds the network."""
    path, _ = scene
    recipe = Recipe(extra_lowpass=(0.0,))
    tiles = collect_tiles(project, "square", recipe=recipe, z_context=1)
    assert tiles.images.shape == (4, 16, 16, 6)
    single = collect_tiles(project, "square", recipe=recipe)
    assert single.images.shape == (4, 16, 16, 2)
    with open_volume(path) as volume:
        prepared = [preprocess_slice(volume.slice(z), recipe) for z in range(SHAPE[0])]
    for image, flat, tile in zip(tiles.images, single.images, tiles.tiles, strict=True):
        neighbours = {0: [1, 0, 1], 3: [2, 3, 2]}.get(tile.z, [tile.z - 1, tile.z, tile.z + 1])
        for j, z in enumerate(neighbours):
            for i in range(2):
                expected = extract_tile(prepared[z][..., i], tile.y, tile.x, 16)
                np.testing.assert_array_equal(image[..., 2 * j + i], expected)
        np.testing.assert_array_equal(flat, image[..., 2:4])
    known, masks = collect_known_negatives(project, "square", recipe=recipe, z_context=1)
    assert known.shape == (0, 16, 16, 6) and masks.shape == (0, 16, 16)


@pytest.mark.parametrize("augmentation", ["symmetries", "random-rotations"])
def test_augmentation_turns_every_z_channel_alike(augmentation):
    """Channels 2 and 3 are 2x and -1x channel 1: any in-plane transform applied to all channels
    alike keeps that (rotation is linear in the image), and channel 1 moves with the mask."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2, 16, 16)).astype(np.float32)
    images = np.stack([base, 2 * base, -base], axis=-1)
    masks = np.zeros((2, 16, 16), bool)
    masks[0, 3:9, 5:7] = True
    x, y = build_training_set(
        images, masks, np.array([True, False]), copies=12, augmentation=augmentation, seed=1
    )
    plain_x, plain_y = build_training_set(
        base, masks, np.array([True, False]), copies=12, augmentation=augmentation, seed=1
    )
    assert x.shape == (len(plain_x), 16, 16, 3) and y.shape == plain_y.shape
    np.testing.assert_allclose(x[..., 1], 2 * x[..., 0], atol=1e-5)
    np.testing.assert_allclose(x[..., 2], -x[..., 0], atol=1e-5)
    np.testing.assert_allclose(x[..., :1], plain_x, atol=1e-6)  # same transforms as 2D tiles
    np.testing.assert_array_equal(y, plain_y)
    for k in range(8):
        np.testing.assert_array_equal(
            dihedral(images[0], k)[..., 1], dihedral(images[0, ..., 1], k)
        )
