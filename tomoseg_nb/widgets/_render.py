"""Turn slices, probability maps and label maps into the small uint8 images a canvas is sent.

Pure numpy: what leaves the kernel is decided here, so the benchmark and the tests can measure it
without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage

from ..palette import PALETTE
from .view_state import Window

CONTRAST_SAMPLES = 1 << 16
"""Pixels sampled for automatic contrast: percentiles of a 2k x 2k slice in well under 1 ms."""


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    """``"#e6194b"`` -> ``(230, 25, 75)``."""
    text = colour.lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ValueError(f"colour {colour!r} is not a hex colour like '#e6194b'")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def palette_colour(index: int) -> str:
    """Colour of the ``index``-th feature or label (1-based for labels, cycling)."""
    return PALETTE[(index - 1) % len(PALETTE)]


def auto_contrast(
    image: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)
) -> tuple[float, float]:
    """Display limits at two percentiles of ``image``, from a regular subsample of its pixels.

    Cryo-ET slices have outliers (gold fiducials, hot pixels) that would squash min/max scaling.
    """
    flat = np.asarray(image).reshape(-1)
    step = max(1, flat.size // CONTRAST_SAMPLES)
    sample = flat[::step].astype(np.float32)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(sample, percentiles))
    if high <= low:
        high = low + 1.0
    return low, high


def to_uint8(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``[low, high]`` linearly to 0..255, clipping outside."""
    scale = 255.0 / max(high - low, np.finfo(np.float32).tiny)
    out = (np.asarray(image, dtype=np.float32) - np.float32(low)) * np.float32(scale)
    np.clip(out, 0.0, 255.0, out=out)
    return (out + 0.5).astype(np.uint8)


def bin_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor x factor`` blocks; a partial last block is the mean of what it holds.

    Summed as ``factor**2`` strided slices rather than a 4D reshape-mean: 6x faster on a 2k
    slice, which is most of a zoomed-out redraw.
    """
    image = np.asarray(image, dtype=np.float32)
    if factor == 1:
        return image
    columns = _block_sums(image, factor, axis=1)
    blocks = _block_sums(columns, factor, axis=0)
    counts = np.outer(_block_counts(image.shape[0], factor), _block_counts(image.shape[1], factor))
    return blocks / counts


def _block_sums(array: np.ndarray, factor: int, axis: int) -> np.ndarray:
    size = array.shape[axis]
    shape = list(array.shape)
    shape[axis] = -(-size // factor)
    out = np.zeros(shape, dtype=np.float32)
    for offset in range(min(factor, size)):
        part = array[offset::factor] if axis == 0 else array[:, offset::factor]
        if axis == 0:
            out[: part.shape[0]] += part
        else:
            out[:, : part.shape[1]] += part
    return out


def _block_counts(size: int, factor: int) -> np.ndarray:
    counts = np.full(-(-size // factor), factor, dtype=np.float32)
    if size % factor:
        counts[-1] = size % factor
    return counts


def bin_nearest(labels: np.ndarray, factor: int) -> np.ndarray:
    """Every ``factor``-th pixel (labels must not be averaged)."""
    return np.asarray(labels)[::factor, ::factor]


def crop(data: np.ndarray, window: Window) -> np.ndarray:
    """The rows and columns of a 2D array that ``window`` covers."""
    return np.asarray(data[window.y0 : window.y1, window.x0 : window.x1])


def slice_image(
    image: np.ndarray,
    window: Window,
    low: float,
    high: float,
    *,
    lowpass_px: float = 0.0,
) -> np.ndarray:
    """The uint8 greyscale block of a slice that ``window`` says to send.

    ``lowpass_px`` is a Gaussian sigma in slice pixels, applied after binning (as
    ``lowpass_px / binning``) so that it costs the same at every zoom.
    """
    block = bin_mean(crop(image, window), window.binning)
    sigma = lowpass_px / window.binning
    if sigma > 0.3:
        block = ndimage.gaussian_filter(block, sigma, mode="nearest")
    return to_uint8(block, low, high)


ALPHA_LEVELS = 16
"""Opacity steps of a probability overlay: more are not visible on screen, and fewer make the
PNG several times smaller and faster to encode."""


def probability_rgba(
    probability: np.ndarray, colour: str, opacity: float, threshold: float = 0.0
) -> np.ndarray:
    """RGBA overlay: the colour, with alpha ``opacity * p`` (in ``ALPHA_LEVELS`` steps) where
    ``p >= threshold``, else clear."""
    p = np.clip(np.asarray(probability, dtype=np.float32), 0.0, 1.0)
    steps = np.floor(p * np.float32(opacity * (ALPHA_LEVELS - 1)) + np.float32(0.5))
    alpha = steps * np.float32(255.0 / (ALPHA_LEVELS - 1))
    if threshold > 0:
        alpha[p < threshold] = 0
    out = np.empty((*p.shape, 4), dtype=np.uint8)
    out[..., :3] = hex_to_rgb(colour)
    out[..., 3] = (alpha + 0.5).astype(np.uint8)
    return out


def labels_rgba(labels: np.ndarray, colours: Mapping[int, str], opacity: float) -> np.ndarray:
    """RGBA overlay of an integer label image; label 0 and labels without a colour are clear."""
    labels = np.asarray(labels)
    table = np.zeros((max([0, *colours]) + 1, 4), dtype=np.uint8)
    for label, colour in colours.items():
        if label > 0:
            table[label, :3] = hex_to_rgb(colour)
            table[label, 3] = round(255 * opacity)
    index = np.where((labels >= 0) & (labels < len(table)), labels, 0).astype(np.intp)
    return table[index]


def mask_rgba(mask: np.ndarray, colour: str, opacity: float) -> np.ndarray:
    """RGBA overlay of a boolean mask in one colour."""
    return labels_rgba(np.asarray(mask, dtype=np.uint8), {1: colour}, opacity)


def overlay_image(
    data: np.ndarray,
    window: Window,
    *,
    kind: str,
    colour: str,
    opacity: float,
    threshold: float = 0.0,
    colours: Mapping[int, str] | None = None,
) -> np.ndarray:
    """The RGBA block of a probability (``kind="probability"``) or label map for ``window``."""
    if kind == "probability":
        block = bin_mean(crop(data, window), window.binning)
        return probability_rgba(block, colour, opacity, threshold)
    if kind == "labels":
        block = bin_nearest(crop(data, window), window.binning)
        return labels_rgba(block, colours or {}, opacity)
    raise ValueError(f"overlay kind {kind!r}: use 'probability' or 'labels'")
