"""Annotated tiles to training arrays: cut from preprocessed slices, augmented, balanced, shrunk labels.

Tiles are cut from whole preprocessed slices, so a network sees training input prepared exactly as
the slices it will later segment. ``build_training_set`` then follows EMAN2 tomoseg's recipe:
every negative tile gets ``copies`` (10) transformed copies and every positive tile
``copies * n_negative / n_positive`` copies, so both classes weigh the same; labels are the painted
masks mean-shrunk by the network's output stride (0 / 0.25 / 0.5 / 0.75 / 1 at stride 2).

Augmentation applies the same geometric transform to image and mask, in one of two ways
(``AUGMENTATIONS``). "symmetries" (the default): the 8 symmetries of the square (rotations by 90
degrees and flips, exact), then, for copies beyond the first 8, an extra random rotation by
-45..45 degrees (bilinear for the image, nearest neighbour for the mask, both filling the corners
by reflection so image and labels stay consistent there). "random-rotations" (EMAN2 tomoseg's):
every copy is the tile rotated by a uniform random angle in [0, 360) degrees, image and mask both
bilinear, the corners that the rotation brings in filled with 0 (the normalised image's mean, and
"not the feature") - no flips, and the first copy is not the tile as it is.

With z context (``TrainingConfig.z_context = k``, "2.5D") a tile's image is the stack of slices
``z - k .. z + k`` (mirrored at the tomogram's ends, ``preprocess.context_indices``), each
preprocessed whole as a slice on its own, cut at the same place and kept as ``2 k + 1`` channels
(channels last, ``preprocess.stack_z_context``'s order); the mask stays the painted slice's. A
recipe with ``extra_lowpass`` makes each slice ``recipe.channels_per_slice`` channels. Every
in-plane transform above is applied to all channels alike.

Pixels painted for *other* features are known not to be this one (a voxel holds one feature):
``collect_known_negatives`` cuts them and ``build_known_negative_set`` labels them 0 and every
other pixel of those tiles ``models.IGNORE``, which the loss leaves out.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .annotations import Project, Tile, tile_bounds
from .errors import BadInputError, MissingInputError
from .preprocess import (
    DEFAULT_RECIPE,
    Recipe,
    bin_slices,
    context_indices,
    preprocess_slice,
    stack_z_context,
)
from .training_config import AUGMENTATIONS
from .volume import Volume, open_volume

DIHEDRAL = 8


@dataclass
class TileSet:
    """Training tiles of one feature, in network input pixels (binned if the recipe bins).

    Attributes
    ----------
    images : ndarray
        ``(N, s, s)`` float32 preprocessed image tiles; ``(N, s, s, 2k + 1)`` with z context ``k``
        (slices ``z - k .. z + k``, the tile's own slice in the middle channel).
    masks : ndarray
        ``(N, s, s)`` bool painted masks (all False for negative tiles).
    positive : ndarray
        ``(N,)`` bool, True for tiles that contain the feature.
    tiles : list of Tile
        The annotation tiles, in the same order.
    """

    images: np.ndarray
    masks: np.ndarray
    positive: np.ndarray
    tiles: list[Tile]

    def __len__(self) -> int:
        return len(self.tiles)


def extract_tile(preprocessed_slice: np.ndarray, y: int, x: int, size: int) -> np.ndarray:
    """The ``(size, size)`` tile centred at ``(y, x)`` (pixels of ``preprocessed_slice``), a copy.

    A ``(y, x, c)`` stack of slices gives the ``(size, size, c)`` tile of every channel.

    Raises
    ------
    BadInputError
        The tile does not lie fully inside the slice.
    """
    y0, y1, x0, x1 = tile_bounds(y, x, size)
    ny, nx = preprocessed_slice.shape[:2]
    if y0 < 0 or x0 < 0 or y1 > ny or x1 > nx:
        raise BadInputError(
            f"a {size} px tile centred at y={y}, x={x} reaches outside the {ny}x{nx} slice"
        )
    return np.array(preprocessed_slice[y0:y1, x0:x1], dtype=np.float32)


def _binned_tile(
    image: np.ndarray, mask: np.ndarray, tile: Tile, binning: int
) -> tuple[np.ndarray, np.ndarray]:
    """Image and mask of ``tile`` on a slice binned by ``binning``, aligned pixel for pixel.

    The binned tile starts at the bin holding the tile's first voxel; the mask is shifted by the
    remainder before it is pooled, so painted voxels land in the bins that hold them.
    """
    size = tile.size // binning
    y0, _, x0, _ = tile_bounds(tile.y, tile.x, tile.size)
    by, bx = y0 // binning, x0 // binning
    dy, dx = y0 - by * binning, x0 - bx * binning
    shifted = np.zeros_like(mask)
    shifted[dy:, dx:] = mask[: mask.shape[0] - dy, : mask.shape[1] - dx]
    pooled = bin_slices(shifted.astype(np.float32), binning) >= 0.5
    crop = extract_tile(image, by + size // 2, bx + size // 2, size)
    return crop, pooled[:size, :size]


def collect_tiles(
    project: Project,
    feature: str,
    volume: Volume | str | os.PathLike | None = None,
    recipe: Recipe = DEFAULT_RECIPE,
    *,
    z_context: int = 0,
) -> TileSet:
    """Cut every annotated tile of ``feature`` from its preprocessed slice.

    Each slice holding tiles (or, with ``z_context``, neighbouring them) is read once and
    preprocessed whole with ``recipe``.

    Parameters
    ----------
    project : Project
        The annotation project.
    feature : str
        Feature name.
    volume : Volume or path, optional
        The tomogram; the project's own tomogram when omitted.
    recipe : Recipe
        Preprocessing (and binning) to apply.
    z_context : int
        Neighbouring slices on each side as extra channels (see the module docstring); 0 cuts
        plain ``(N, s, s)`` tiles.

    Raises
    ------
    BadInputError
        No positive tile, a positive tile with an empty mask, a tile size that the binning does not
        divide, or a tomogram whose shape differs from the one annotated.
    """
    if feature not in project.features:
        raise BadInputError(
            f"no feature '{feature}' in {project.folder} (features: "
            f"{', '.join(project.features) or 'none'})"
        )
    tiles = project.tiles_of(feature)
    if not any(tile.positive for tile in tiles):
        raise BadInputError(
            f"feature '{feature}' has no positive tile in {project.folder}; add ~10 tiles that "
            "contain it and paint it on them"
        )
    for tile in tiles:
        if tile.positive and not project.mask(tile.id).any():
            raise BadInputError(
                f"positive tile {tile.id} of '{feature}' (z={tile.z}, y={tile.y}, x={tile.x}) has "
                "an empty mask; paint the feature on it, or remove the tile"
            )
        if tile.size % recipe.binning:
            raise BadInputError(
                f"tile size {tile.size} px is not divisible by the binning {recipe.binning}"
            )
    images, masks = _cut_tiles(
        project, [(tile, project.mask(tile.id)) for tile in tiles], volume, recipe, z_context
    )
    return TileSet(
        images=images,
        masks=masks,
        positive=np.array([tile.positive for tile in tiles], dtype=bool),
        tiles=tiles,
    )


def collect_known_negatives(
    project: Project,
    feature: str,
    volume: Volume | str | os.PathLike | None = None,
    recipe: Recipe = DEFAULT_RECIPE,
    *,
    z_context: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Tiles whose painted pixels are known *not* to be ``feature``: other features' positive tiles.

    A voxel holds one feature, so the membrane painted on a membrane tile is a place where a
    microtubule network must answer "no" - exactly the confusion that competitive merging cannot
    undo later. Each positive tile of another feature is re-cut at ``feature``'s tile size around
    the same centre (moved inwards at the slice border); its mask keeps the other feature's
    painted pixels and nothing else (``dataset.build_known_negative_set`` ignores the rest).

    Returns
    -------
    images, masks : ndarray
        ``(K, s, s)`` preprocessed tiles (``(K, s, s, 2k + 1)`` with ``z_context`` k, as
        ``collect_tiles``) and ``(K, s, s)`` bool masks (``K`` may be 0), in network input pixels.
    """
    size = project.features[feature].tile_size
    shape = project.tomogram_shape or _volume_shape(project, volume)
    frames = []
    for other in project.features:
        if other == feature:
            continue
        for tile in project.tiles_of(other, positive=True):
            painted = project.mask(tile.id)
            if painted.any():
                frames.append(_reframe(tile, painted, size, shape))
    if not frames:
        empty = (0, size // recipe.binning, size // recipe.binning)
        per_slice = recipe.channels_per_slice
        channels = ((2 * z_context + 1) * per_slice,) if z_context or per_slice > 1 else ()
        return np.zeros(empty + channels, np.float32), np.zeros(empty, bool)
    return _cut_tiles(project, frames, volume, recipe, z_context)


def _volume_shape(project: Project, volume: Volume | str | os.PathLike | None) -> tuple[int, ...]:
    """Shape of the tomogram the tiles are cut from (``volume``, else the project's own)."""
    if isinstance(volume, Volume):
        return tuple(volume.shape)
    source = volume if volume is not None else project.tomogram
    if source is None:
        raise MissingInputError(
            f"{project.folder}: the project names no tomogram; pass the volume to use"
        )
    with open_volume(source, ndim=3) as opened:
        return tuple(opened.shape)


def _reframe(
    tile: Tile, mask: np.ndarray, size: int, shape: tuple[int, ...]
) -> tuple[Tile, np.ndarray]:
    """``tile`` re-cut at ``size`` around its centre (kept inside the slice), with its mask moved along."""
    y = min(max(tile.y, size // 2), shape[1] - (size - size // 2))
    x = min(max(tile.x, size // 2), shape[2] - (size - size // 2))
    frame = Tile(tile.id, tile.feature, tile.z, y, x, size, False)
    oy0, oy1, ox0, ox1 = tile.bounds
    ny0, ny1, nx0, nx1 = frame.bounds
    y0, y1, x0, x1 = max(oy0, ny0), min(oy1, ny1), max(ox0, nx0), min(ox1, nx1)
    moved = np.zeros((size, size), dtype=bool)
    if y0 < y1 and x0 < x1:
        moved[y0 - ny0 : y1 - ny0, x0 - nx0 : x1 - nx0] = mask[
            y0 - oy0 : y1 - oy0, x0 - ox0 : x1 - ox0
        ]
    return frame, moved


def _cut_tiles(
    project: Project,
    frames: list[tuple[Tile, np.ndarray]],
    volume: Volume | str | os.PathLike | None,
    recipe: Recipe,
    z_context: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Images and masks of ``(tile, mask)`` frames, each slice read and preprocessed once.

    With ``z_context`` each image is ``(s, s, (2k + 1) c)``: the tile cut from every slice of
    ``preprocess.context_indices``, each slice preprocessed on its own into ``c =
    recipe.channels_per_slice`` channels, stacked as ``segment`` stacks them.
    """
    if isinstance(z_context, bool) or not isinstance(z_context, int) or z_context < 0:
        raise BadInputError(f"z context must be a whole number >= 0, got {z_context!r}")
    owned = not isinstance(volume, Volume)
    if volume is None:
        if project.tomogram is None:
            raise MissingInputError(
                f"{project.folder}: the project names no tomogram; pass the volume to use"
            )
        volume = project.tomogram
    if not isinstance(volume, Volume):
        volume = open_volume(volume, ndim=3)
    try:
        if project.tomogram_shape is not None and tuple(volume.shape) != project.tomogram_shape:
            raise BadInputError(
                f"{volume.path}: shape {volume.shape} differs from the annotated tomogram "
                f"{project.tomogram_shape}; use the tomogram the tiles were drawn on"
            )
        by_slice: dict[int, list[int]] = defaultdict(list)
        for index, (tile, _) in enumerate(frames):
            by_slice[tile.z].append(index)
        images: dict[int, np.ndarray] = {}
        masks: dict[int, np.ndarray] = {}
        prepared: dict[int, np.ndarray] = {}  # preprocessed slices still needed, by z
        depth = volume.shape[0]
        for z, indices in sorted(by_slice.items()):
            wanted = [int(i) for i in context_indices(z, z_context, depth)]
            for needed in wanted:
                if needed not in prepared:
                    prepared[needed] = preprocess_slice(volume.slice(needed), recipe)
            image = prepared[z]  # (y, x), or (y, x, c) with extra lowpass channels
            if z_context:
                neighbours = np.stack([prepared[needed] for needed in wanted])
                image = stack_z_context(neighbours, z_context)[0]
            for index in indices:
                tile, mask = frames[index]
                images[index], masks[index] = _binned_tile(image, mask, tile, recipe.binning)
            low = z - z_context  # slices are visited in order: those below are done with
            for old in [key for key in prepared if key < low and key not in wanted]:
                del prepared[old]
    finally:
        if owned:
            volume.close()
    order = range(len(frames))  # every frame is in by_slice, so each index was filled
    return np.stack([images[i] for i in order]), np.stack([masks[i] for i in order])


def check_tiles(
    images: np.ndarray, masks: np.ndarray, positive: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and convert training tiles: ``(N, s, s)`` images/masks, ``(N,)`` positive flags.

    Images with z context are ``(N, s, s, c)`` (channels last); their masks stay ``(N, s, s)``.

    Raises
    ------
    BadInputError
        Mismatched shapes, NaN/Inf, no positive tile, an empty mask on a positive tile, or painted
        pixels on a negative tile.
    """
    images = np.asarray(images, dtype=np.float32)
    masks = np.asarray(masks).astype(bool)
    positive = np.asarray(positive).astype(bool)
    if images.ndim not in (3, 4) or images.shape[1] != images.shape[2]:
        raise BadInputError(
            f"tiles must be (N, s, s) square images, or (N, s, s, c) with z context, got shape "
            f"{images.shape}"
        )
    if masks.shape != images.shape[:3] or positive.shape != images.shape[:1]:
        raise BadInputError(
            f"masks {masks.shape} and positive flags {positive.shape} do not match the "
            f"{images.shape} tiles"
        )
    if not np.isfinite(images).all():
        raise BadInputError("the tiles contain NaN/Inf values")
    if not positive.any():
        raise BadInputError(
            "no positive tile: the network needs tiles that contain the feature, with it painted"
        )
    painted = masks.reshape(len(masks), -1).any(axis=1)
    empty = np.flatnonzero(positive & ~painted)
    if empty.size:
        raise BadInputError(
            f"positive tiles {empty.tolist()} have an empty mask; paint the feature on them"
        )
    stray = np.flatnonzero(~positive & painted)
    if stray.size:
        raise BadInputError(
            f"negative tiles {stray.tolist()} have painted pixels; mark them positive or clear them"
        )
    return images, masks, positive


def copies_per_tile(positive: np.ndarray, copies: int = 10) -> np.ndarray:
    """EMAN2's class balance: ``copies`` per negative, ``copies * n_neg / n_pos`` per positive.

    With no negative tile, positives get ``copies`` each.
    """
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    per_positive = max(1, round(copies * n_neg / n_pos)) if n_pos and n_neg else copies
    return np.where(positive, per_positive, copies)


def dihedral(image: np.ndarray, index: int) -> np.ndarray:
    """The ``index``-th (0..7) symmetry of the square: ``index % 4`` quarter turns, then a flip if >= 4.

    ``image`` is ``(y, x)`` or ``(y, x, c)``: the transform acts on y and x, the same for every
    channel (the z-context slices of a tile turn together).
    """
    out = np.rot90(image, index % 4, axes=(0, 1))
    return np.flip(out, axis=1) if index >= 4 else out


def shrink_labels(masks: np.ndarray, stride: int) -> np.ndarray:
    """Mean-shrink ``(..., s, s)`` masks by ``stride`` to the network's output resolution."""
    masks = np.asarray(masks, dtype=np.float32)
    if stride == 1:
        return masks
    return bin_slices(masks, stride).astype(np.float32)


def build_training_set(
    images: np.ndarray,
    masks: np.ndarray,
    positive: np.ndarray,
    *,
    output_stride: int = 2,
    copies: int = 10,
    rotate: bool = True,
    augmentation: str = "symmetries",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Augmented, class-balanced training arrays from tiles (see the module docstring).

    Parameters
    ----------
    images, masks, positive
        ``(N, s, s)`` (or ``(N, s, s, c)`` with z context) preprocessed tiles, their ``(N, s, s)``
        painted masks and ``(N,)`` positive flags.
    output_stride : int
        The network's output stride; labels are mean-shrunk by it (``s`` must be divisible by it).
    copies : int
        Transformed copies per negative tile (EMAN2: 10).
    rotate : bool
        Rotate copies by random angles as ``augmentation`` says (off: the exact symmetries only,
        whatever ``augmentation``).
    augmentation : {"symmetries", "random-rotations"}
        ``AUGMENTATIONS``: this project's or EMAN2's way of making copies.
    seed : int
        Seed of the random angles; the same seed gives the same arrays.

    Returns
    -------
    x : ndarray
        ``(M, s, s, c)`` float32 network input (``c = 1`` for ``(N, s, s)`` tiles).
    y : ndarray
        ``(M, s / stride, s / stride, 1)`` float32 labels in [0, 1].
    """
    images, masks, positive = check_tiles(images, masks, positive)
    _check_stride(images.shape[1], output_stride)
    if copies < 1:
        raise BadInputError(f"copies must be at least 1, got {copies}")
    counts = copies_per_tile(positive, copies)
    x, y = augment(
        images,
        masks.astype(np.float32),
        counts,
        rotate=rotate,
        augmentation=augmentation,
        seed=seed,
    )
    return _with_channels(x), shrink_labels(y, output_stride)[..., None]


def _with_channels(x: np.ndarray) -> np.ndarray:
    """Network input ``(M, s, s, c)``: plain ``(M, s, s)`` tiles get their one channel."""
    return x[..., None] if x.ndim == 3 else x


def _check_stride(size: int, output_stride: int) -> None:
    if size % output_stride:
        raise BadInputError(
            f"tile size {size} px is not divisible by the network's output stride {output_stride}"
        )


def augment(
    images: np.ndarray,
    masks: np.ndarray,
    counts: np.ndarray,
    *,
    rotate: bool,
    seed: int,
    augmentation: str = "symmetries",
) -> tuple[np.ndarray, np.ndarray]:
    """``counts[i]`` transformed copies of each image and its mask (the same transform for both).

    "symmetries": copies cycle through the 8 symmetries of the square; those beyond the 8th also
    get a random rotation by -45..45 degrees when ``rotate``. "random-rotations" with ``rotate``:
    every copy is rotated by a uniform random angle, corners filled with 0. Angles are seeded by
    ``seed``. ``(N, s, s, c)`` images (z context) get the same in-plane transform on every channel.
    """
    if augmentation not in AUGMENTATIONS:
        raise BadInputError(
            f"unknown augmentation {augmentation!r}; choose one of {', '.join(AUGMENTATIONS)}"
        )
    if rotate and augmentation == "random-rotations":
        return _randomly_rotated(images, masks, counts, np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    total = int(np.sum(counts))
    x = np.empty((total, *images.shape[1:]), dtype=np.float32)
    y = np.empty((total, *masks.shape[1:]), dtype=np.float32)
    row = 0
    for image, mask, count in zip(images, masks, counts, strict=True):
        for k in range(count):
            image_k, mask_k = dihedral(image, k % DIHEDRAL), dihedral(mask, k % DIHEDRAL)
            if rotate and k >= DIHEDRAL:
                angle = rng.uniform(-45.0, 45.0)
                image_k = ndimage.rotate(image_k, angle, reshape=False, order=1, mode="reflect")
                mask_k = ndimage.rotate(mask_k, angle, reshape=False, order=0, mode="reflect")
            x[row], y[row] = image_k, mask_k
            row += 1
    return x, y


def _randomly_rotated(
    images: np.ndarray, masks: np.ndarray, counts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """EMAN2's copies: each a rotation by a uniform random angle, bilinear, zero-filled corners."""
    total = int(np.sum(counts))
    x = np.empty((total, *images.shape[1:]), dtype=np.float32)
    y = np.empty((total, *masks.shape[1:]), dtype=np.float32)
    row = 0
    for image, mask, count in zip(images, masks, counts, strict=True):
        for angle in rng.uniform(0.0, 360.0, size=int(count)):
            x[row] = ndimage.rotate(image, angle, reshape=False, order=1, mode="constant")
            y[row] = ndimage.rotate(mask, angle, reshape=False, order=1, mode="constant")
            row += 1
    return x, y


def build_known_negative_set(
    images: np.ndarray,
    masks: np.ndarray,
    *,
    output_stride: int = 2,
    copies: int = 10,
    rotate: bool = True,
    augmentation: str = "symmetries",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Training arrays that teach a network only where it must say "no".

    ``masks`` mark pixels known *not* to be the feature - in practice the pixels painted for
    another feature, since a voxel holds one feature. Those pixels get label 0 and every other
    pixel of the tile ``IGNORE``, so an unpainted pixel, which may well hold the feature, teaches
    nothing. At the network's output stride a pixel counts as known when at least half of the
    input pixels it covers are. Each tile gets ``copies`` augmented copies, as a negative tile does
    (``rotate`` and ``augmentation`` as in ``build_training_set``).

    Returns
    -------
    x : ndarray
        ``(M, s, s, c)`` float32 network input (``c`` > 1 for z-context tiles ``(N, s, s, c)``).
    y : ndarray
        ``(M, s / stride, s / stride, 1)`` float32 labels, 0 or ``models.IGNORE``.
    """
    from .models import IGNORE

    images = np.asarray(images, dtype=np.float32)
    masks = np.asarray(masks).astype(bool)
    if images.ndim not in (3, 4) or masks.ndim != 3 or masks.shape != images.shape[:3]:
        raise BadInputError(
            f"known-negative tiles must be (N, s, s) images with masks of the same shape (images "
            f"(N, s, s, c) with z context), got {images.shape} and {masks.shape}"
        )
    _check_stride(images.shape[1], output_stride)
    counts = np.full(len(images), copies)
    x, y = augment(
        images,
        masks.astype(np.float32),
        counts,
        rotate=rotate,
        augmentation=augmentation,
        seed=seed,
    )
    known = shrink_labels(y, output_stride) >= 0.5
    labels = np.where(known, np.float32(0.0), np.float32(IGNORE))
    return _with_channels(x), labels[..., None]
