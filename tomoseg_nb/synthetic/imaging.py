"""Image formation for phantoms: CTF band limit, missing wedge and reconstruction-like noise.

A phantom density (protein = 1 above vitreous ice) becomes a tomogram by the linear
weak-phase model used throughout cryo-ET simulation: its 3D Fourier transform is multiplied by the
contrast transfer function of ``|k|`` times a B-factor envelope (the CTF of the tilt whose central
section holds ``k``), then by the missing-wedge mask of a single-axis tilt series and the fall-off
of the weighted back-projection radial filter. Noise is shaped
like weighted back-projection (WBP) noise: white in each tilt image, hence zero in the missing wedge
and with power growing with the distance from the tilt axis.

Axis conventions: arrays are ``(z, y, x)``; the beam is along z at zero tilt; the tilt axis is y,
so the missing wedge is the set of frequencies with ``|k_z| > tan(tilt_range) |k_x|``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import fft

from ..errors import BadInputError


@dataclass(frozen=True)
class ImagingConditions:
    """Microscope and reconstruction settings that shape a phantom tomogram.

    Attributes
    ----------
    voltage_kv : float
        Acceleration voltage, kV (sets the electron wavelength).
    spherical_aberration_mm : float
        Cs, mm.
    defocus_um : float
        Underfocus, micrometres (positive = underfocus, the usual cryo-ET setting of 3-6 um).
    amplitude_contrast : float
        Fraction of amplitude contrast (0.07 for vitreous ice).
    bfactor_angstrom2 : float
        Envelope ``exp(-B |k|^2 / 4)``: partial coherence, drift, alignment and interpolation blur.
    phase_flipped : bool
        True: the tomogram was CTF-corrected by phase flipping (``|CTF|``, as IMOD ctfphaseflip or
        Warp do); False: the raw CTF with its contrast reversals beyond the first zero.
    tilt_range_deg : float
        Tilt series from ``-tilt_range_deg`` to ``+tilt_range_deg`` around the y axis.
    radial_cutoff, radial_falloff : float
        Weighted back-projection radial filter, cycles/voxel, as IMOD ``tilt`` RADIAL (defaults
        0.35 and 0.035): ramp up to the cutoff, Gaussian fall-off beyond, applied across the tilt
        axis (to ``|(k_z, k_x)|``) to signal and noise alike.
    noise_spectrum : {"wbp", "white"}
        "wbp": noise as weighted back-projection leaves it (missing wedge empty, power proportional
        to the distance from the tilt axis, rolled off towards Nyquist); "white": i.i.d. voxels.
    """

    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    defocus_um: float = 4.0
    amplitude_contrast: float = 0.07
    bfactor_angstrom2: float = 1500.0
    phase_flipped: bool = True
    tilt_range_deg: float = 60.0
    radial_cutoff: float = 0.35
    radial_falloff: float = 0.035
    noise_spectrum: Literal["wbp", "white"] = "wbp"

    def __post_init__(self) -> None:
        if not 0 < self.tilt_range_deg <= 90:
            raise BadInputError(f"tilt_range_deg={self.tilt_range_deg}: use a value in (0, 90]")
        if not 0 <= self.amplitude_contrast < 1:
            raise BadInputError(
                f"amplitude_contrast={self.amplitude_contrast}: use a value in [0, 1)"
            )
        if self.noise_spectrum not in ("wbp", "white"):
            raise BadInputError(f"noise_spectrum={self.noise_spectrum!r}: use 'wbp' or 'white'")


def electron_wavelength_angstrom(voltage_kv: float) -> float:
    """Relativistic electron wavelength in Angstrom (0.0197 A at 300 kV)."""
    volts = voltage_kv * 1e3
    return 12.2643 / np.sqrt(volts * (1.0 + 0.97848e-6 * volts))


def ctf(
    frequency: np.ndarray,
    *,
    defocus_um: float = 4.0,
    voltage_kv: float = 300.0,
    spherical_aberration_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
) -> np.ndarray:
    """Contrast transfer function at spatial frequencies ``frequency`` (1/A), any shape.

    Signed so that it is positive at low frequency in underfocus: multiplying a density by it and
    negating gives the familiar image where protein is dark.
    """
    wavelength = electron_wavelength_angstrom(voltage_kv)
    k2 = np.square(frequency, dtype=np.float64)
    chi = (
        np.pi * wavelength * defocus_um * 1e4 * k2
        - 0.5 * np.pi * spherical_aberration_mm * 1e7 * (wavelength**3) * np.square(k2)
    )
    phase = np.sqrt(1.0 - amplitude_contrast**2)
    return (phase * np.sin(chi) + amplitude_contrast * np.cos(chi)).astype(np.float32)


def transfer_function(frequency: np.ndarray, conditions: ImagingConditions) -> np.ndarray:
    """CTF (phase flipped if so set) times the B-factor envelope, at ``frequency`` (1/A)."""
    value = ctf(
        frequency,
        defocus_um=conditions.defocus_um,
        voltage_kv=conditions.voltage_kv,
        spherical_aberration_mm=conditions.spherical_aberration_mm,
        amplitude_contrast=conditions.amplitude_contrast,
    )
    if conditions.phase_flipped:
        value = np.abs(value)
    envelope = np.exp(-conditions.bfactor_angstrom2 * np.square(frequency, dtype=np.float32) / 4.0)
    return (value * envelope).astype(np.float32)


def rfft_frequencies(
    shape: tuple[int, int, int], voxel_size: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcastable ``(k_z, k_y, k_x)`` in 1/A for the layout of ``scipy.fft.rfftn(shape)``."""
    kz = fft.fftfreq(shape[0], d=voxel_size).astype(np.float32)[:, None, None]
    ky = fft.fftfreq(shape[1], d=voxel_size).astype(np.float32)[None, :, None]
    kx = fft.rfftfreq(shape[2], d=voxel_size).astype(np.float32)[None, None, :]
    return kz, ky, kx


def measured_region(kz: np.ndarray, kx: np.ndarray, tilt_range_deg: float) -> np.ndarray:
    """True where a tilt series of +-``tilt_range_deg`` around y samples Fourier space.

    A tilt by angle a samples the central plane normal to the beam direction ``(cos a, sin a)`` in
    (z, x); together they cover ``|k_z| <= tan(tilt_range) |k_x|``, which leaves the missing wedge
    around the k_z axis. The ``k_z = 0`` plane (and so the origin) is always measured.
    """
    if tilt_range_deg >= 90:
        return np.ones(np.broadcast_shapes(kz.shape, kx.shape), dtype=bool)
    return np.abs(kz) <= np.tan(np.radians(tilt_range_deg)) * np.abs(kx)


def radial_filter(
    kz: np.ndarray, kx: np.ndarray, voxel_size: float, conditions: ImagingConditions
) -> np.ndarray:
    """The WBP radial filter's fall-off (without its ramp) across the tilt axis, float32."""
    across = np.sqrt(kz * kz + kx * kx) * voxel_size  # cycles per voxel
    beyond = np.maximum(across - conditions.radial_cutoff, 0)
    falloff = max(conditions.radial_falloff, 1e-6)
    return np.exp(-0.5 * np.square(beyond / falloff)).astype(np.float32)


def image_density(
    density: np.ndarray,
    voxel_size: float,
    conditions: ImagingConditions,
    *,
    contrast: Literal["dark", "bright"] = "dark",
    pad_voxels: int = 32,
) -> np.ndarray:
    """Noise-free tomogram of ``density``: CTF band limit and missing wedge, mean 0 and std 1.

    The volume is padded with its mean before the Fourier filtering (a quarter of its thickness
    above and below, up to ``pad_voxels`` on the other sides) so that CTF ringing and missing-wedge
    streaks do not wrap around the edges; the missing wedge of the cropped result is then exactly
    empty.

    Parameters
    ----------
    density : numpy.ndarray
        ``(z, y, x)`` density, protein about 1 above vitreous ice.
    voxel_size : float
        Angstrom per voxel.
    conditions : ImagingConditions
        Microscope and tilt-series settings.
    contrast : {"dark", "bright"}
        "dark": density appears dark (negative), as in reconstructed cryo-ET tomograms viewed with
        IMOD; "bright": inverted.

    Returns
    -------
    numpy.ndarray
        float32, same shape, standardised to mean 0 and standard deviation 1.
    """
    if contrast not in ("dark", "bright"):
        raise BadInputError(f"contrast={contrast!r}: use 'dark' or 'bright'")
    shape = density.shape
    pads = [max(4, int(np.ceil(n / 4))) for n in shape]
    pads[1:] = [min(pad, pad_voxels) for pad in pads[1:]]
    padded_shape = tuple(
        fft.next_fast_len(n + 2 * p, real=axis == 2)
        for axis, (n, p) in enumerate(zip(shape, pads, strict=True))
    )
    padded = np.full(padded_shape, float(density.mean()), dtype=np.float32)
    starts = [(total - n) // 2 for total, n in zip(padded_shape, shape, strict=True)]
    inner = tuple(slice(s, s + n) for s, n in zip(starts, shape, strict=True))
    padded[inner] = density
    spectrum = fft.rfftn(padded, workers=_workers())
    del padded
    kz, ky, kx = rfft_frequencies(padded_shape, voxel_size)
    frequency = np.sqrt(kz * kz + ky * ky + kx * kx)
    # The transfer depends on |k| only: tabulate it finely and look it up (sin/cos per voxel of a
    # 3D spectrum would be the slowest step).
    samples = 1 << 16
    step = float(frequency.max()) / (samples - 1) or 1.0
    table = transfer_function(np.arange(samples, dtype=np.float32) * step, conditions)
    filter_ = table[np.rint(frequency / step).astype(np.int32)]
    del frequency
    filter_ *= measured_region(kz, kx, conditions.tilt_range_deg)
    filter_ *= radial_filter(kz, kx, voxel_size, conditions)
    spectrum *= filter_ if contrast == "bright" else -filter_
    del filter_
    image = np.ascontiguousarray(fft.irfftn(spectrum, s=padded_shape, workers=_workers())[inner])
    del spectrum
    # Cropping leaks a little power back into the wedge; a second mask keeps it exactly empty.
    spectrum = fft.rfftn(image, workers=_workers())
    kz, _, kx = rfft_frequencies(shape, voxel_size)
    spectrum *= measured_region(kz, kx, conditions.tilt_range_deg)
    image = fft.irfftn(spectrum, s=shape, workers=_workers())
    image = image - image.mean()
    std = float(image.std())
    return (image / std if std > 0 else image).astype(np.float32)


def reconstruction_noise(
    shape: tuple[int, int, int],
    voxel_size: float,
    conditions: ImagingConditions,
    rng: np.random.Generator,
) -> np.ndarray:
    """Zero-mean noise with unit variance, coloured as ``conditions.noise_spectrum`` says."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    if conditions.noise_spectrum == "wbp":
        spectrum = fft.rfftn(noise, workers=_workers())
        kz, ky, kx = rfft_frequencies(shape, voxel_size)
        nyquist = 0.5 / voxel_size
        # Amplitude ~ sqrt(distance from the tilt axis): the ramp filter of WBP applied to white
        # tilt-image noise; a smooth roll-off near Nyquist mimics binning and interpolation.
        off_axis = np.sqrt(kz * kz + kx * kx) / nyquist
        rolloff = np.exp(-0.5 * np.square((kz * kz + ky * ky + kx * kx) / (0.8 * nyquist) ** 2))
        shaping = np.sqrt(off_axis) * rolloff * measured_region(kz, kx, conditions.tilt_range_deg)
        shaping *= radial_filter(kz, kx, voxel_size, conditions)
        spectrum *= shaping.astype(np.float32)
        noise = fft.irfftn(spectrum, s=shape, workers=_workers()).astype(np.float32)
    noise -= noise.mean()
    return noise / np.float32(noise.std())


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))
