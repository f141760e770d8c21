"""Slice preprocessing before a network sees the data: EMAN2 tomoseg's filters as one named recipe.

Every z slice is treated on its own, in this order (EMAN2 ``e2tomoseg_preproc`` defaults):

1. bin by an integer factor in y and x (average pooling; trailing rows/columns that do not fill a
   bin are dropped), for tomograms too large to segment at full sampling;
2. Gaussian lowpass ``exp(-(f / lowpass)^2)``, ``f`` in cycles per pixel (Nyquist = 0.5). This is
   EMAN2's ``filter.lowpass.gauss:cutoff_abs=0.25`` as its current code applies it: ``cutoff_abs``
   is an absolute frequency on the 0-0.5 scale and becomes the Gaussian sigma after a 1/sqrt(2)
   correction (so the gain is 1/e at ``cutoff_abs``); 0.25 is half of Nyquist, a 4-pixel period;
3. Gaussian highpass ``1 - exp(-(f / c)^2)`` with ``c = highpass_px / (2 nx)`` cycles per pixel:
   EMAN2's ``filter.highpass.gauss:cutoff_pixels=5`` converts Fourier pixels of the image's x size
   to ``0.5 * cutoff_pixels / nx`` before the same 1/sqrt(2) correction. It therefore depends on
   the slice width, which is why training tiles are cut from whole preprocessed slices rather than
   filtered on their own (and why binning, which changes ``nx``, is part of the recipe);
4. normalise to mean 0, standard deviation 1;
5. clamp at +-``clamp_sigma`` (3 sigma);
6. multiply by ``scale`` (1/3), so the network input lies in about [-1, 1].

``extra_lowpass`` adds input channels: each of its cutoffs makes one more copy of the slice with
that lowpass instead of ``lowpass`` (0: none) and every other step the same, so a network can
take the filtering its feature needs. One lowpass cannot serve every feature: on coarse data a
2-3 px membrane bilayer is blurred away by the lowpass that keeps ribosomes on the noisiest data
(measured in ``benchmarks/README.md``). A slice then becomes ``(y, x, 1 + len(extra_lowpass))``,
the recipe's own lowpass first.

The filters are applied by FFT, periodic at the slice edges, as EMAN2 does. A recipe is recorded in
each model's sidecar, and applying a model re-creates exactly the preprocessing it was trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage

from .errors import BadInputError


@dataclass(frozen=True)
class Recipe:
    """How raw slices become network input (EMAN2 tomoseg defaults); see the module docstring.

    Attributes
    ----------
    name : str
        A label for people; ``"eman2"`` for the defaults.
    lowpass : float
        Gaussian lowpass cutoff (gain 1/e) in cycles/pixel (Nyquist = 0.5); 0 disables it.
    highpass_px : float
        Gaussian highpass cutoff in EMAN2's Fourier pixels of the (binned) slice width (gain 1/e
        at ``highpass_px / (2 nx)`` cycles/pixel); 0 disables it.
    clamp_sigma : float
        Values beyond +-this many standard deviations are clamped; 0 disables clamping.
    scale : float
        Final multiplier.
    binning : int
        Average-pooling factor in y and x applied first.
    extra_lowpass : tuple of float
        Lowpass cutoffs of further input channels per slice (0: unfiltered); empty for one channel.
    """

    name: str = "eman2"
    lowpass: float = 0.25
    highpass_px: float = 5.0
    clamp_sigma: float = 3.0
    scale: float = 1 / 3
    binning: int = 1
    extra_lowpass: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.extra_lowpass, (list, tuple)):  # JSON gives a list
            object.__setattr__(self, "extra_lowpass", tuple(self.extra_lowpass))
        else:
            raise BadInputError(
                f"extra_lowpass must be a tuple of cutoffs, got {self.extra_lowpass!r}"
            )
        for cutoff in (self.lowpass, *self.extra_lowpass):
            if not isinstance(cutoff, (int, float, np.floating)) or not 0 <= cutoff <= 0.5:
                raise BadInputError(f"a lowpass must be in [0, 0.5] cycles/pixel, got {cutoff!r}")
        if not isinstance(self.binning, (int, np.integer)) or self.binning < 1:
            raise BadInputError(f"binning must be a positive integer, got {self.binning!r}")
        if self.highpass_px < 0 or self.clamp_sigma < 0 or not self.scale > 0:
            raise BadInputError(
                "highpass_px and clamp_sigma must be >= 0 and scale > 0, got "
                f"{self.highpass_px}, {self.clamp_sigma}, {self.scale}"
            )

    @property
    def channels_per_slice(self) -> int:
        """Input channels one slice becomes: the recipe's lowpass and each ``extra_lowpass``."""
        return 1 + len(self.extra_lowpass)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (stored in model sidecars)."""
        values = asdict(self)
        values["extra_lowpass"] = list(self.extra_lowpass)
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Recipe from ``to_dict`` output; unknown keys are refused so a typo is not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise BadInputError(
                f"unknown preprocessing settings {sorted(unknown)}; known: {sorted(known)}"
            )
        values = dict(data)
        if "binning" in values:
            values["binning"] = int(values["binning"])
        return cls(**values)


DEFAULT_RECIPE = Recipe()
"""The EMAN2 tomoseg defaults."""


def bin_slices(array: np.ndarray, factor: int) -> np.ndarray:
    """Average-pool the last two axes by ``factor`` (trailing rows/columns that do not fill a bin are dropped).

    >>> bin_slices(np.arange(16.0).reshape(4, 4), 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    array = np.asarray(array)
    if factor == 1:
        return array
    ny, nx = array.shape[-2] // factor, array.shape[-1] // factor
    if ny == 0 or nx == 0:
        raise BadInputError(f"cannot bin a {array.shape[-2:]} image by {factor}")
    cropped = array[..., : ny * factor, : nx * factor]
    blocks = cropped.reshape(*array.shape[:-2], ny, factor, nx, factor)
    return blocks.mean(axis=(-3, -1), dtype=np.float64).astype(np.result_type(array, np.float32))


def upsample_to(maps: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Upsample ``(n, y, x)`` maps by ``factor`` treating pixels as areas, cropped to ``shape``.

    Binning drops the last rows when a size is not a multiple of the factor; those are filled from
    the nearest computed row.
    """
    if factor > 1:
        maps = scipy.ndimage.zoom(
            maps, (1, factor, factor), order=1, mode="nearest", grid_mode=True
        )
    missing = [(0, 0), (0, max(0, shape[0] - maps.shape[1])), (0, max(0, shape[1] - maps.shape[2]))]
    if any(after for _, after in missing):
        maps = np.pad(maps, missing, mode="edge")
    return maps[:, : shape[0], : shape[1]]


@lru_cache(maxsize=16)
def _fourier_gain(shape: tuple[int, int], lowpass: float, highpass_px: float) -> np.ndarray:
    """Combined lowpass x highpass gain on the ``rfft2`` grid of a ``shape`` image."""
    ny, nx = shape
    fy = scipy.fft.fftfreq(ny)[:, None]
    fx = scipy.fft.rfftfreq(nx)[None, :]
    f2 = fy**2 + fx**2
    gain = np.ones_like(f2)
    if lowpass > 0:
        gain *= np.exp(-f2 / lowpass**2)
    if highpass_px > 0:
        cutoff = 0.5 * highpass_px / nx
        gain *= 1 - np.exp(-f2 / cutoff**2)
    return gain.astype(np.float32)


def preprocess_slab(slab: np.ndarray, recipe: Recipe = DEFAULT_RECIPE) -> np.ndarray:
    """Preprocess each z slice of a ``(n, y, x)`` slab independently (see the module docstring).

    Returns float32 ``(n, y // binning, x // binning)``, or ``(n, y // binning, x // binning, c)``
    for a recipe with ``extra_lowpass`` (``c = recipe.channels_per_slice``, the recipe's own lowpass
    first). The result for a slice does not depend on the other slices of the slab, so slabs of
    any size give identical output.

    Raises
    ------
    BadInputError
        The slab is not 3D or contains NaN/Inf.
    """
    slab = np.asarray(slab, dtype=np.float32)
    if slab.ndim != 3:
        raise BadInputError(f"a slab must be (n, y, x), got shape {slab.shape}")
    if not np.isfinite(slab).all():
        raise BadInputError("the slices contain NaN/Inf values; replace them (e.g. with the mean)")
    slab = bin_slices(slab, recipe.binning).astype(np.float32, copy=False)
    lowpasses = (recipe.lowpass, *recipe.extra_lowpass)
    filtering = recipe.highpass_px > 0 or any(lowpass > 0 for lowpass in lowpasses)
    spectrum = scipy.fft.rfft2(slab, axes=(-2, -1)) if filtering and slab.size else None
    channels = [_filtered(slab, spectrum, lowpass, recipe) for lowpass in lowpasses]
    return channels[0] if len(channels) == 1 else np.stack(channels, axis=-1)


def _filtered(
    slab: np.ndarray, spectrum: np.ndarray | None, lowpass: float, recipe: Recipe
) -> np.ndarray:
    """Steps 2-6 of the module docstring on binned slices, with this ``lowpass``."""
    if spectrum is not None and (lowpass > 0 or recipe.highpass_px > 0):
        gain = _fourier_gain(slab.shape[-2:], lowpass, recipe.highpass_px)
        slab = scipy.fft.irfft2(spectrum * gain, s=slab.shape[-2:], axes=(-2, -1))
        slab = slab.astype(np.float32)
    mean = slab.mean(axis=(-2, -1), keepdims=True, dtype=np.float64)
    std = slab.std(axis=(-2, -1), keepdims=True, dtype=np.float64)
    std[std == 0] = 1.0  # a flat slice becomes all zeros rather than NaN
    slab = ((slab - mean) / std).astype(np.float32)
    if recipe.clamp_sigma > 0:
        np.clip(slab, -recipe.clamp_sigma, recipe.clamp_sigma, out=slab)
    slab *= np.float32(recipe.scale)
    return slab


def preprocess_slice(image: np.ndarray, recipe: Recipe = DEFAULT_RECIPE) -> np.ndarray:
    """Preprocess one ``(y, x)`` slice; float32, shape divided by ``recipe.binning`` (and a last
    axis of ``recipe.channels_per_slice`` with ``extra_lowpass``).

    >>> out = preprocess_slice(np.random.default_rng(0).normal(size=(64, 64)))
    >>> out.dtype, out.shape, bool(abs(out).max() <= 1.0)
    (dtype('float32'), (64, 64), True)
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise BadInputError(f"a slice must be 2D (y, x), got shape {image.shape}")
    return preprocess_slab(image[None], recipe)[0]


def context_indices(z: int, z_context: int, depth: int) -> np.ndarray:
    """Slices ``z - z_context .. z + z_context`` of a tomogram of ``depth`` slices, mirrored.

    The network input of slice ``z`` with z context ("2.5D", ``TrainingConfig.z_context``) is
    these slices as channels. Beyond an end the slices are reflected without repeating the end one
    (``-1 -> 1``, ``depth -> depth - 2``, numpy's "reflect"), rather than clamped: a mirrored
    neighbour at distance ``d`` is still a distinct slice at distance ``d``, with its own noise,
    as every input inside the tomogram has; clamping would feed identical copies of the end slice,
    an input the network never saw in training. A one-slice tomogram repeats its only slice.

    >>> context_indices(0, 2, 10).tolist(), context_indices(9, 1, 10).tolist()
    ([2, 1, 0, 1, 2], [8, 9, 8])
    """
    return z_window(z, z + 1, z_context, depth)


def z_window(start: int, stop: int, z_context: int, depth: int) -> np.ndarray:
    """Slices ``start - z_context .. stop - 1 + z_context``, mirrored as ``context_indices`` says.

    What a slab ``[start, stop)`` of a z-context network's input is made from: read these, then
    ``stack_z_context`` them.

    >>> z_window(0, 3, 1, 10).tolist()
    [1, 0, 1, 2, 3]
    """
    if depth < 1:
        raise BadInputError(f"a tomogram needs at least one slice, got depth {depth}")
    if isinstance(z_context, bool) or not isinstance(z_context, (int, np.integer)) or z_context < 0:
        raise BadInputError(f"z context must be a whole number >= 0, got {z_context!r}")
    offsets = np.arange(start - z_context, stop + z_context)
    if depth == 1:
        return np.zeros_like(offsets)
    period = 2 * (depth - 1)
    folded = np.abs(offsets) % period
    return np.where(folded >= depth, period - folded, folded)


def stack_z_context(slab: np.ndarray, z_context: int) -> np.ndarray:
    """``(n + 2k, y, x[, c])`` consecutive slices -> ``(n, y, x, (2k + 1) c)``: slices with their
    neighbours.

    Channel ``j c + i`` of output slice ``s`` is channel ``i`` of input slice ``s + j``, so the
    slices run from ``z - k`` to ``z + k`` and the slice itself is the middle group of ``c``
    (``c`` = 1 for ``(n + 2k, y, x)`` input). ``z_context == 0`` gives ``(n, y, x, c)``.
    """
    slab = np.asarray(slab, dtype=np.float32)
    width = 2 * z_context + 1
    if slab.ndim not in (3, 4) or slab.shape[0] < width:
        raise BadInputError(
            f"z context {z_context} needs a (n + {2 * z_context}, y, x) stack (or (.., c) with "
            f"channels) of at least {width} slices, got shape {slab.shape}"
        )
    if slab.ndim == 3:
        slab = slab[..., None]
    windows = np.lib.stride_tricks.sliding_window_view(slab, width, axis=0)  # (n, y, x, c, w)
    windows = np.moveaxis(windows, -1, -2)  # slice-major: (n, y, x, w, c)
    return np.ascontiguousarray(windows).reshape(*windows.shape[:3], -1)
