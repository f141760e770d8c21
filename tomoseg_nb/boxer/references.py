"""Reference boxes from coordinates: good particles, empty background, bad (contamination, aggregates).

A user boxes 10-15 examples of each kind on one or more micrographs; this module cuts them out of the
prepared (working-scale) micrographs, with a margin so that augmentation can rotate them without
empty corners, and checks there are enough of each kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BadInputError
from .preprocess import BoxerRecipe, prepare_micrograph

MIN_REFERENCES = 5
"""Fewest good and fewest background references a boxer can be trained from (as EMAN2 e2boxer)."""

KINDS = ("good", "background", "bad")


@dataclass
class References:
    """Reference boxes at the working scale, each with a rotation margin.

    Attributes
    ----------
    good, background, bad : numpy.ndarray
        float32 ``(N, c, c)`` boxes, ``c = context_size(working_box_px)``; the particle (or
        whatever was boxed) is at the centre. ``bad`` may have zero boxes.
    recipe : BoxerRecipe
        How the micrographs were prepared; ``recipe.working_box_px`` is the box the networks see.
    box_angstrom : float
        Box size in Angstrom (the physical scale every micrograph is brought to).
    pixel_size : float
        Angstrom per pixel of the training micrographs.
    """

    good: np.ndarray
    background: np.ndarray
    bad: np.ndarray
    recipe: BoxerRecipe
    box_angstrom: float
    pixel_size: float

    @property
    def working_box_px(self) -> int:
        return self.recipe.working_box_px

    def boxes(self, kind: str) -> np.ndarray:
        """The boxes of ``kind`` cropped to the working box (no margin)."""
        return crop_centre(getattr(self, kind), self.working_box_px)

    def counts(self) -> dict[str, int]:
        return {kind: len(getattr(self, kind)) for kind in KINDS}


def context_size(working_box_px: int) -> int:
    """Side of a box with room to rotate the working box by any angle (even, >= box * sqrt 2)."""
    side = int(np.ceil(working_box_px * np.sqrt(2.0))) + 2
    return side + side % 2


def crop_centre(boxes: np.ndarray, size: int) -> np.ndarray:
    """The centre ``size`` x ``size`` square of each box in ``(N, c, c)``."""
    start = (boxes.shape[-1] - size) // 2
    return boxes[..., start : start + size, start : start + size]


def extract_boxes(
    image: np.ndarray, coordinates_yx: np.ndarray, size_px: int, *, name: str = "micrograph"
) -> np.ndarray:
    """Cut ``size_px`` squares centred on ``coordinates_yx`` out of ``image``.

    Boxes that reach over the edge are filled by mirroring, so a particle near the edge still gives
    a reference; a box whose centre is off the image is refused (wrong coordinates, swapped x/y or
    another pixel size are the usual causes).

    Parameters
    ----------
    image : numpy.ndarray
        ``(y, x)`` image.
    coordinates_yx : numpy.ndarray
        ``(N, 2)`` y, x box centres in pixels of ``image``.
    size_px : int
        Box side in pixels.
    name : str
        Used in error messages.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, size_px, size_px)``.

    Examples
    --------
    >>> extract_boxes(np.arange(100.0).reshape(10, 10), np.array([[5, 5]]), 2)[0]
    array([[44., 45.],
           [54., 55.]], dtype=float32)
    """
    points = np.asarray(coordinates_yx, dtype=np.float64).reshape(-1, 2)
    check_box_centres(points, image.shape, name)
    half = size_px // 2
    padded = np.pad(np.asarray(image, dtype=np.float32), size_px, mode="reflect")
    corners = np.rint(points).astype(int) - half + size_px
    boxes = np.zeros((len(points), size_px, size_px), np.float32)
    for i, (y, x) in enumerate(corners):
        boxes[i] = padded[y : y + size_px, x : x + size_px]
    return boxes


def collect_references(
    micrographs: Sequence[np.ndarray],
    good: Sequence[np.ndarray],
    background: Sequence[np.ndarray],
    bad: Sequence[np.ndarray] | None = None,
    *,
    box_px: float,
    pixel_sizes: Sequence[float] | float = 1.0,
    recipe: BoxerRecipe | None = None,
    names: Sequence[str] | None = None,
) -> References:
    """Box the references out of several micrographs, each prepared at the common working scale.

    Parameters
    ----------
    micrographs : sequence of numpy.ndarray
        ``(y, x)`` micrographs.
    good, background, bad : sequence of numpy.ndarray
        Per micrograph, ``(N, 2)`` y, x centres (pixels of that micrograph) of good particles,
        empty background, and bad boxes (contamination, aggregates, carbon edges). ``bad`` is
        optional; without it the boxer has no classifier network.
    box_px : float
        Box side in pixels of the first micrograph (about 1.5 particle diameters).
    pixel_sizes : float or sequence of float
        Angstrom per pixel of each micrograph; micrographs of other pixel sizes are rescaled so
        that the box covers the same area of specimen.
    recipe : BoxerRecipe, optional
        Working size and filters.
    names : sequence of str, optional
        Micrograph names for error messages.

    Raises
    ------
    BadInputError
        Fewer than ``MIN_REFERENCES`` good or background boxes, lists of different lengths, or box
        centres off a micrograph.
    """
    recipe = recipe or BoxerRecipe()
    count = len(micrographs)
    sizes = (
        [float(pixel_sizes)] * count
        if isinstance(pixel_sizes, (int, float, np.number))
        else [float(p) for p in pixel_sizes]
    )
    names = list(names) if names is not None else [f"micrograph {i + 1}" for i in range(count)]
    bad = list(bad) if bad is not None else [np.zeros((0, 2))] * count
    if (
        not (len(good) == len(background) == len(bad) == len(sizes) == len(names) == count)
        or not count
    ):
        raise BadInputError(
            f"give one coordinate array per micrograph for good, background (and bad): got "
            f"{count} micrographs, {len(good)} good, {len(background)} background, {len(bad)} bad"
        )
    totals = {
        "good": sum(len(np.reshape(g, (-1, 2))) for g in good),
        "background": sum(len(np.reshape(b, (-1, 2))) for b in background),
    }
    for kind, total in totals.items():
        if total < MIN_REFERENCES:
            raise BadInputError(
                f"{total} {kind} reference(s) given; at least {MIN_REFERENCES} {kind} boxes are needed "
                f"(10-15 from several micrographs work best): box more {kind} examples"
            )
    box_angstrom = float(box_px) * sizes[0]
    context = context_size(recipe.working_box_px)
    boxes: dict[str, list[np.ndarray]] = {kind: [] for kind in KINDS}
    for image, name, size, *points in zip(
        micrographs, names, sizes, good, background, bad, strict=True
    ):
        prepared, frame = prepare_micrograph(image, box_angstrom / size, recipe, name=name)
        for kind, yx in zip(KINDS, points, strict=True):
            yx = np.asarray(yx, dtype=np.float64).reshape(-1, 2)
            check_box_centres(yx, np.shape(image), name, kind)
            # Centres on the last source rows may map just past the working image: clamp them.
            working = np.clip(frame.to_working(yx), 0, np.asarray(prepared.shape) - 1)
            boxes[kind].append(extract_boxes(prepared, working, context, name=name))
    return References(
        **{kind: np.concatenate(parts) for kind, parts in boxes.items()},
        recipe=recipe,
        box_angstrom=box_angstrom,
        pixel_size=sizes[0],
    )


def check_box_centres(
    coordinates_yx: np.ndarray, shape: tuple[int, ...], name: str, kind: str = ""
) -> None:
    """Refuse box centres off an image of ``shape``, naming a few of them (x, y in pixels).

    Raises
    ------
    BadInputError
        Some centre lies outside the image.
    """
    points = np.asarray(coordinates_yx, dtype=np.float64).reshape(-1, 2)
    outside = ~((points >= -0.5) & (points < np.asarray(shape[:2]) - 0.5)).all(axis=1)
    if outside.any():
        first = ", ".join(f"(x={p[1]:.0f}, y={p[0]:.0f})" for p in points[outside][:3])
        what = f"{kind} box" if kind else "box"
        raise BadInputError(
            f"{name}: {int(outside.sum())} {what} centre(s) off the {shape[1]} x {shape[0]} image, "
            f"e.g. {first}; check the coordinates belong to this micrograph, its pixel size, and "
            "that x and y are not swapped"
        )
