"""Template-matching baseline: normalised cross-correlation with the good references, all rotations.

What the CNN boxer has to beat: the classical reference-based picker. Each good reference, rotated in
plane in steps, and the rotational average of all of them, is correlated with the prepared micrograph
inside a circular mask; the score at each pixel is the best normalised cross-correlation (-1..1). It
picks what looks like the references on average, hence ice contamination and aggregates too.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .augment import rotate_crop


def circular_mask(size_px: int) -> np.ndarray:
    """Bool disc inscribed in a ``size_px`` square."""
    yy, xx = np.indices((size_px, size_px)) - (size_px - 1) / 2.0
    return yy**2 + xx**2 <= (size_px / 2.0) ** 2


def rotated_templates(
    references: np.ndarray, box_px: int, *, angle_step_deg: float = 30.0
) -> np.ndarray:
    """Each reference rotated by ``0, step, 2 step, ...`` degrees, plus the rotational average.

    Parameters
    ----------
    references : numpy.ndarray
        ``(N, c, c)`` good references with a rotation margin (``c >= box_px * sqrt 2``).
    box_px : int
        Side of the templates.
    angle_step_deg : float
        In-plane rotation step, degrees.

    Returns
    -------
    numpy.ndarray
        float32 ``(N * n_angles + 1, box_px, box_px)``.
    """
    angles = np.arange(0.0, 360.0, angle_step_deg)
    templates = [
        rotate_crop(reference, angle, box_px) for reference in references for angle in angles
    ]
    average = np.mean(templates, axis=0)
    yy, xx = np.indices(average.shape) - (box_px - 1) / 2.0
    radius = np.rint(np.sqrt(yy**2 + xx**2)).astype(int)
    profile = np.bincount(radius.ravel(), average.ravel()) / np.maximum(
        np.bincount(radius.ravel()), 1
    )
    templates.append(profile[radius])
    return np.asarray(templates, dtype=np.float32)


def template_score_map(
    prepared: np.ndarray, templates: np.ndarray, *, chunk: int = 16
) -> np.ndarray:
    """Best masked normalised cross-correlation of ``prepared`` with any of ``templates``.

    Parameters
    ----------
    prepared : numpy.ndarray
        ``(y, x)`` working-scale micrograph (``prepare_micrograph``).
    templates : numpy.ndarray
        ``(T, b, b)`` templates (``rotated_templates``).
    chunk : int
        Templates transformed at once (bounds memory).

    Returns
    -------
    numpy.ndarray
        float32 ``(y, x)`` NCC in [-1, 1]; the value at a pixel scores a template centred there.
    """
    image = np.asarray(prepared, dtype=np.float32)
    box = templates.shape[-1]
    mask = circular_mask(box).astype(np.float32)
    count = float(mask.sum())
    shape = tuple(n + box for n in image.shape)  # zero padding: no wrap-around between edges

    def correlate(spectrum: np.ndarray, kernels: np.ndarray) -> np.ndarray:
        # Correlation = convolution with the flipped kernel; roll so that index 0 is the centre.
        flipped = kernels[..., ::-1, ::-1]
        result = scipy.fft.irfft2(
            spectrum * scipy.fft.rfft2(flipped, s=shape, workers=-1), s=shape, workers=-1
        )
        # A template's centre is its pixel box // 2 (as ``extract_boxes`` cuts them).
        start = box - 1 - box // 2
        return result[..., start : start + image.shape[0], start : start + image.shape[1]]

    image_spectrum = scipy.fft.rfft2(image, s=shape, workers=-1)
    local_sum = correlate(image_spectrum, mask[None])[0]
    local_square = correlate(scipy.fft.rfft2(image**2, s=shape, workers=-1), mask[None])[0]
    local_norm = np.sqrt(np.clip(local_square - local_sum**2 / count, 1e-6, None))

    centred = templates - (templates * mask).sum(axis=(1, 2), keepdims=True) / count
    centred *= mask
    centred /= np.sqrt((centred**2).sum(axis=(1, 2), keepdims=True)) + 1e-12
    best = np.full(image.shape, -1.0, np.float32)
    for start in range(0, len(centred), chunk):
        scores = correlate(image_spectrum, centred[start : start + chunk]) / local_norm
        np.maximum(best, scores.max(axis=0), out=best)
    return best
