"""Turn a dozen reference boxes per class into hundreds of training samples.

Particles lie in every in-plane orientation and are never boxed exactly at their centre, so each
sample is a reference rotated by a random angle, maybe mirrored, shifted by a few pixels and with its
contrast and noise level jittered. Shifts are returned so that the picker's target moves with the
particle and the network learns where the centre is, not only that a particle is near.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def augment_boxes(
    boxes: np.ndarray,
    n_samples: int,
    box_px: int,
    *,
    max_shift_px: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Random rotated, mirrored, shifted and contrast-jittered ``box_px`` crops of ``boxes``.

    Parameters
    ----------
    boxes : numpy.ndarray
        ``(N, c, c)`` references with a margin (``c >= box_px * sqrt 2``) so rotations have no
        empty corners.
    n_samples : int
        Number of samples to make; every reference is used about equally often.
    box_px : int
        Side of the samples.
    max_shift_px : float
        Largest shift of the content along each axis, pixels.
    rng : numpy.random.Generator, optional
        Source of randomness (seeded by the caller for reproducible training).

    Returns
    -------
    samples : numpy.ndarray
        float32 ``(n_samples, box_px, box_px)``.
    shifts : numpy.ndarray
        ``(n_samples, 2)`` y, x position of the reference centre relative to the sample centre.

    Examples
    --------
    >>> boxes = np.random.default_rng(0).normal(size=(5, 48, 48)).astype(np.float32)
    >>> samples, shifts = augment_boxes(boxes, 20, 32, max_shift_px=2)
    >>> samples.shape, bool(np.abs(shifts).max() <= 2)
    ((20, 32, 32), True)
    """
    rng = rng or np.random.default_rng()
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.shape[-1] < box_px:
        raise ValueError(f"boxes of {boxes.shape[-1]} px cannot give {box_px} px samples")
    order = np.concatenate(
        [rng.permutation(len(boxes)) for _ in range(-(-n_samples // len(boxes)))]
    )
    samples = np.empty((n_samples, box_px, box_px), np.float32)
    shifts = rng.uniform(-max_shift_px, max_shift_px, (n_samples, 2))
    for i, index in enumerate(order[:n_samples]):
        angle = rng.uniform(0, 360.0)
        mirror = rng.random() < 0.5
        sample = rotate_crop(boxes[index], angle, box_px, mirror=mirror, shift_yx=shifts[i])
        contrast = np.exp(rng.uniform(-0.25, 0.25))
        noise = rng.uniform(0.0, 0.3) * rng.standard_normal((box_px, box_px))
        samples[i] = contrast * sample + noise
    return samples, shifts


def rotate_crop(
    box: np.ndarray,
    angle_deg: float,
    size_px: int,
    *,
    mirror: bool = False,
    shift_yx: np.ndarray | tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """The centre ``size_px`` square of ``box`` rotated in plane (and mirrored, and shifted).

    Rotation is about the box centre, pixel ``box.shape[-1] // 2`` (where ``extract_boxes`` puts
    the particle); the content appears at ``size_px // 2 + shift_yx`` in the output.
    """
    angle = np.deg2rad(angle_deg)
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.array([[cos, -sin], [sin, cos]]) @ np.diag([1.0, -1.0 if mirror else 1.0])
    source_centre = float(box.shape[-1] // 2)
    out_centre = float(size_px // 2) + np.asarray(shift_yx, dtype=np.float64)
    # Output pixel o shows source point matrix @ (o - out_centre) + source_centre.
    return ndimage.affine_transform(
        box,
        matrix,
        offset=source_centre - matrix @ out_centre,
        output_shape=(size_px, size_px),
        order=1,
        mode="reflect",
    )
