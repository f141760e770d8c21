"""Phantom cryo-EM micrographs with ground truth: particles, touching aggregates, ice contamination.

Each particle is the projection of a real density map (``densities.load_density``) in its own random
orientation, so no two look alike, as in a real micrograph. The image is formed the way a microscope
forms it, coarsely: projected potential -> weak-phase contrast through a contrast transfer function
(defocus, amplitude contrast, envelope) -> absorption by thick ice -> Gaussian noise at a chosen
signal-to-noise ratio. What makes picking hard is reproduced on purpose: touching aggregates (which a
picker should not pick), dense irregular ice contamination of many sizes with Fresnel fringes, an
uneven ice thickness and, optionally, the edge of the carbon support film.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from ..atomic import check_output_path, write_json_atomic
from ..coords import Picks, write_picks
from ..errors import BadInputError
from ..volume import write_volume
from .densities import DENSITY_NAMES, DENSITY_VOXEL_SIZE, ENVELOPE_LEVEL, load_density

WAVELENGTH_300KV = 0.01969
"""Electron wavelength at 300 kV, Angstrom."""

PHASE_PER_PROTEIN_ANGSTROM = 9e-4
"""Phase shift (rad) per Angstrom of protein against vitreous ice (about 1.2 V x 7.3e-4 rad/(V A))."""

ICE_CONTRAST = 2.3
"""Contamination ice against vacuum, in units of the protein-against-ice contrast (~3.5 V / 1.5 V)."""

CARBON_CONTRAST = 2.7
"""Amorphous carbon film against vacuum, in the same units."""

ABSORPTION_LENGTH = 3500.0
"""Ice thickness (A) that scatters a fraction 1 - 1/e of the beam outside the objective aperture."""

CARBON_ABSORPTION_LENGTH = 1500.0
"""The same for amorphous carbon, denser than ice."""


@dataclass
class MicrographPhantom:
    """A simulated micrograph and what is in it.

    Attributes
    ----------
    image : numpy.ndarray
        float32 ``(y, x)`` intensities (mean about 1 over clean ice), noisy.
    particles : numpy.ndarray
        ``(N, 2)`` y, x centres (pixels) of isolated particles: the ones a picker should pick.
    aggregate_particles : numpy.ndarray
        ``(M, 2)`` y, x centres of particles inside touching aggregates: a picker should leave them.
    contamination : numpy.ndarray
        bool ``(y, x)`` mask of ice contamination.
    pixel_size : float
        Angstrom per pixel.
    particle_diameter_px : float
        Diameter of the particle (molecular envelope), pixels.
    carbon : numpy.ndarray or None
        bool ``(y, x)`` mask of the carbon support film; None without a carbon edge.
    density : str
        Name of the density map the particles are projections of.
    defocus_um : float
        Defocus of the contrast transfer function, micrometres (positive = underfocus).
    snr : float
        Signal-to-noise ratio (variance of the particle signal inside the particles over the noise
        variance) per pixel.
    """

    image: np.ndarray
    particles: np.ndarray
    aggregate_particles: np.ndarray
    contamination: np.ndarray
    pixel_size: float
    particle_diameter_px: float
    carbon: np.ndarray | None = None
    density: str = "4v4r"
    defocus_um: float = 2.0
    snr: float = 0.3


def particle_diameter_angstrom(density: np.ndarray) -> float:
    """Largest extent (A) of a density map's envelope: the diameter a user sizes a box by.

    The maximum distance between two envelope voxels (Feret diameter), plus one voxel.
    """
    from scipy.spatial import ConvexHull
    from scipy.spatial.distance import pdist

    inside = np.argwhere(density > ENVELOPE_LEVEL).astype(np.float64)
    hull = inside[ConvexHull(inside).vertices]
    return float((pdist(hull).max() + 1.0) * DENSITY_VOXEL_SIZE)


def _projection(
    density: np.ndarray, rotation: Rotation, pixel_size: float, offset_yx: np.ndarray
) -> np.ndarray:
    """Projected density (protein-A units) of ``density`` rotated, at ``pixel_size``.

    The centre of mass lands on the centre pixel of the returned square, shifted by ``offset_yx``
    (sub-pixel placement).
    """
    centre = np.asarray(ndimage.center_of_mass(np.clip(density, 0, None)))
    inside = np.argwhere(density > 0.02 * density.max())
    radius = np.sqrt(((inside - centre) ** 2).sum(axis=1)).max() + 2
    size = 2 * int(np.ceil(radius)) + 1
    out_centre = np.full(3, (size - 1) / 2.0)
    matrix = rotation.as_matrix().T
    rotated = ndimage.affine_transform(
        density, matrix, offset=centre - matrix @ out_centre, output_shape=(size,) * 3, order=1
    )
    projection = rotated.sum(axis=0) * DENSITY_VOXEL_SIZE
    factor = DENSITY_VOXEL_SIZE / pixel_size
    if factor < 1:
        projection = ndimage.gaussian_filter(projection, 0.5 * (1.0 / factor - 1.0) + 0.25)
    out = 2 * int(np.ceil(radius * factor)) + 3
    source_centre = (size - 1) / 2.0
    target_centre = (out - 1) / 2.0 + np.asarray(offset_yx, dtype=float)
    return ndimage.affine_transform(
        projection,
        np.eye(2) / factor,
        offset=source_centre - target_centre / factor,
        output_shape=(out, out),
        order=1,
    )


def _add_patch(canvas: np.ndarray, patch: np.ndarray, centre_yx: np.ndarray) -> None:
    """Add ``patch`` to ``canvas`` with the patch centre at the integer part of ``centre_yx``."""
    half = patch.shape[0] // 2
    cy, cx = (int(np.floor(v)) for v in centre_yx)
    y0, x0 = cy - half, cx - half
    ys = slice(max(0, y0), min(canvas.shape[0], y0 + patch.shape[0]))
    xs = slice(max(0, x0), min(canvas.shape[1], x0 + patch.shape[1]))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return
    canvas[ys, xs] += patch[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Gaussian random field with correlation length ``sigma_px``, unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return field / max(float(field.std()), 1e-12)


def _contamination_blob(rng: np.random.Generator, radius_px: float) -> np.ndarray:
    """Thickness profile (A) of one irregular, dense ice contamination blob."""
    size = 2 * int(np.ceil(2.0 * radius_px)) + 9
    yy, xx = np.indices((size, size)) - (size - 1) / 2.0
    # Irregular outline: a disc whose boundary is pushed in and out by a smooth random field.
    level = (
        1.0
        - (yy**2 + xx**2) / radius_px**2
        + 0.6 * _smooth_noise(rng, (size, size), max(radius_px / 3.0, 1.5))
    )
    mask = level > 0
    labels, _ = ndimage.label(mask)
    centre_label = labels[size // 2, size // 2]
    mask = labels == centre_label if centre_label else labels == 1
    depth = ndimage.distance_transform_edt(mask)
    thickness = float(rng.uniform(500.0, 2000.0))
    profile = np.sqrt(np.clip(depth / max(radius_px, 1.0), 0, 1)) * thickness
    return ndimage.gaussian_filter(profile, 0.7)


def _ctf(
    shape: tuple[int, int], pixel_size: float, defocus_um: float, amplitude_contrast: float = 0.07
) -> np.ndarray:
    """Contrast transfer function on the ``rfft2`` grid (300 kV, Cs 2.7 mm, B 150 A^2)."""
    ky = np.fft.fftfreq(shape[0], d=pixel_size)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=pixel_size)[None, :]
    k2 = ky**2 + kx**2
    wavelength, cs = WAVELENGTH_300KV, 2.7e7
    chi = np.pi * wavelength * defocus_um * 1e4 * k2 - 0.5 * np.pi * cs * wavelength**3 * k2**2
    phase_part = np.sqrt(1.0 - amplitude_contrast**2) * np.sin(chi)
    return -(phase_part + amplitude_contrast * np.cos(chi)) * np.exp(-150.0 * k2 / 4.0)


def _contrast(phase: np.ndarray, ctf: np.ndarray) -> np.ndarray:
    return np.fft.irfft2(np.fft.rfft2(phase) * ctf, s=phase.shape)


class _Layout:
    """Keeps the placed particle discs so that new ones respect minimum distances."""

    def __init__(self) -> None:
        self.centres: list[np.ndarray] = []

    def distance(self, point: np.ndarray) -> float:
        if not self.centres:
            return np.inf
        return float(np.sqrt(((np.asarray(self.centres) - point) ** 2).sum(axis=1)).min())


def simulate_micrograph(
    shape: tuple[int, int] = (1024, 1024),
    *,
    pixel_size: float = 5.0,
    density: str = "4v4r",
    n_particles: int | None = None,
    n_aggregates: int | None = None,
    n_contamination: int | None = None,
    carbon_edge: bool = False,
    defocus_um: float = 2.0,
    snr: float = 0.3,
    seed: int = 0,
) -> MicrographPhantom:
    """Simulate a micrograph with isolated particles, touching aggregates and ice contamination.

    Particles are projections of a real density map in uniformly random 3D orientations; the
    coordinates of isolated particles (to pick) and of aggregated ones (to leave) are returned
    separately, so a picker can be scored on what a careful person would pick.

    Parameters
    ----------
    shape : tuple of int
        ``(y, x)`` size in pixels; at least 4 particle diameters each way.
    pixel_size : float
        Angstrom per pixel.
    density : str
        Name of the particle's density map (``DENSITY_NAMES``).
    n_particles, n_aggregates, n_contamination : int, optional
        Number of isolated particles, of aggregates (2-5 touching particles each) and of ice
        contamination blobs (0.5-3 particle diameters across). By default they scale with the
        area: about 6 %, 1 % and 0.4 % of the number of particle-sized squares that fit. Fewer
        isolated particles are placed when the image has no room left.
    carbon_edge : bool
        Add the edge of a carbon support film across one side; no particles sit on the carbon.
    defocus_um : float
        Underfocus, micrometres (typical 0.8-3).
    snr : float
        Per-pixel signal-to-noise ratio of the particles (variance ratio), e.g. 0.05-1.
    seed : int
        Random seed; the same seed gives the same micrograph.

    Returns
    -------
    MicrographPhantom

    Examples
    --------
    >>> phantom = simulate_micrograph((512, 512), n_particles=10, seed=1)
    >>> phantom.image.shape, phantom.particles.shape[1]
    ((512, 512), 2)
    """
    if density not in DENSITY_NAMES:
        raise BadInputError(
            f"unknown density {density!r}; choose one of {', '.join(DENSITY_NAMES)}"
        )
    if not (pixel_size > 0 and snr > 0 and defocus_um > 0):
        raise BadInputError(
            f"pixel_size ({pixel_size}), snr ({snr}) and defocus_um ({defocus_um}) must be positive"
        )
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    volume = load_density(density)
    diameter = particle_diameter_angstrom(volume) / pixel_size
    if min(shape) < 4 * diameter:
        raise BadInputError(
            f"shape {shape} is too small for particles {diameter:.0f} px across at {pixel_size} A/px; "
            f"use at least {int(np.ceil(4 * diameter))} px each way or a larger pixel size"
        )
    slots = shape[0] * shape[1] / diameter**2
    n_particles = round(0.06 * slots) if n_particles is None else int(n_particles)
    n_aggregates = round(0.01 * slots) if n_aggregates is None else int(n_aggregates)
    n_contamination = (
        max(1, round(0.004 * slots)) if n_contamination is None else int(n_contamination)
    )

    # Support film and contamination first: particles keep clear of both.
    carbon = _carbon_mask(rng, shape) if carbon_edge else None
    ice = np.zeros(shape, np.float64)
    for _ in range(n_contamination):
        radius = diameter * float(np.exp(rng.uniform(np.log(0.25), np.log(1.5))))
        _add_patch(ice, _contamination_blob(rng, radius), rng.uniform(0, shape))
    contamination = ice > 1.0
    blocked = contamination if carbon is None else contamination | carbon
    clearance = ndimage.distance_transform_edt(~blocked)

    layout = _Layout()
    margin = 0.75 * diameter  # a box 1.5 diameters wide fits inside the image

    def free(point: np.ndarray, gap: float) -> bool:
        inside = margin <= point[0] < shape[0] - margin and margin <= point[1] < shape[1] - margin
        return (
            inside
            and clearance[int(point[0]), int(point[1])] > diameter
            and layout.distance(point) > gap
        )

    aggregates: list[np.ndarray] = []
    for _ in range(n_aggregates):
        for _attempt in range(50):
            members = _aggregate(rng, diameter, int(rng.integers(2, 6)))
            members = members + rng.uniform(margin, np.asarray(shape) - margin)
            if all(free(m, 1.6 * diameter) for m in members):
                layout.centres.extend(members)
                aggregates.extend(members)
                break
    isolated: list[np.ndarray] = []
    for _ in range(n_particles):
        for _attempt in range(100):
            point = rng.uniform(0, shape)
            if free(point, 1.4 * diameter):
                layout.centres.append(point)
                isolated.append(point)
                break

    potential = np.zeros(shape, np.float64)
    for centre in [*isolated, *aggregates]:
        rotation = Rotation.random(random_state=rng)
        patch = _projection(volume, rotation, pixel_size, centre - np.floor(centre))
        _add_patch(potential, patch, centre)

    ctf = _ctf(shape, pixel_size, defocus_um)
    particle_signal = _contrast(PHASE_PER_PROTEIN_ANGSTROM * potential, ctf)
    film = 0.0 if carbon is None else _carbon_film(rng, carbon)
    background_phase = ICE_CONTRAST * ice + CARBON_CONTRAST * film
    thickness = 0.02 * ABSORPTION_LENGTH * _smooth_noise(rng, shape, max(shape) / 6.0)
    transmission = np.exp(-(ice + thickness) / ABSORPTION_LENGTH - film / CARBON_ABSORPTION_LENGTH)
    image = transmission * (
        1.0 + particle_signal + _contrast(PHASE_PER_PROTEIN_ANGSTROM * background_phase, ctf)
    )
    inside = potential > 0.1 * potential.max() if potential.any() else np.ones(shape, bool)
    noise_sigma = np.sqrt(np.mean(particle_signal[inside] ** 2) / snr)
    image = image + rng.normal(0.0, noise_sigma, shape)

    def as_array(points: list[np.ndarray]) -> np.ndarray:
        return np.asarray(points, dtype=np.float64).reshape(-1, 2)

    return MicrographPhantom(
        image=image.astype(np.float32),
        particles=as_array(isolated),
        aggregate_particles=as_array(aggregates),
        contamination=contamination,
        pixel_size=float(pixel_size),
        particle_diameter_px=float(diameter),
        carbon=carbon,
        density=density,
        defocus_um=float(defocus_um),
        snr=float(snr),
    )


def _aggregate(rng: np.random.Generator, diameter: float, count: int) -> np.ndarray:
    """Centres (relative to the first) of ``count`` particles touching one another."""
    members = [np.zeros(2)]
    while len(members) < count:
        anchor = members[int(rng.integers(len(members)))]
        angle = rng.uniform(0, 2 * np.pi)
        candidate = anchor + diameter * rng.uniform(0.7, 0.9) * np.array(
            [np.sin(angle), np.cos(angle)]
        )
        others = np.asarray(members)
        if np.sqrt(((others - candidate) ** 2).sum(axis=1)).min() > 0.65 * diameter:
            members.append(candidate)
    return np.asarray(members)


def _carbon_mask(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A gently curved film edge covering 15-35 % of the image from one side."""
    yy, xx = np.indices(shape, dtype=np.float64)
    angle = rng.uniform(0, 2 * np.pi)
    along = (yy - shape[0] / 2) * np.sin(angle) + (xx - shape[1] / 2) * np.cos(angle)
    across = -(yy - shape[0] / 2) * np.cos(angle) + (xx - shape[1] / 2) * np.sin(angle)
    extent = np.abs(along).max()
    curvature = rng.uniform(-0.3, 0.3) / max(shape)
    return along + curvature * across**2 > extent * (1 - 2 * rng.uniform(0.15, 0.35))


def _carbon_film(rng: np.random.Generator, carbon: np.ndarray) -> np.ndarray:
    """Carbon thickness (A): a ~15 nm film with a fine granular texture."""
    texture = 1.0 + 0.1 * _smooth_noise(rng, carbon.shape, 1.5)
    film = ndimage.gaussian_filter(carbon.astype(np.float64), 1.0)
    return 150.0 * film * texture


def write_micrograph_phantom(
    phantom: MicrographPhantom, folder: str | os.PathLike, *, overwrite: bool = False
) -> dict[str, Path]:
    """Write a phantom as files a user (or ``tomoseg-nb boxer``) can open.

    Files: ``micrograph.mrc`` (float32, pixel size in the header), ``particles.star`` and
    ``aggregates.star`` (RELION ``rlnCoordinateX/Y`` in pixels, micrograph name ``micrograph``),
    ``contamination.mrc`` (uint8 mask) and ``phantom.json`` (parameters and counts).

    Returns
    -------
    dict
        ``{"micrograph", "particles", "aggregates", "contamination", "metadata"}`` -> path.
    """
    folder = Path(folder)
    paths = {
        "micrograph": folder / "micrograph.mrc",
        "particles": folder / "particles.star",
        "aggregates": folder / "aggregates.star",
        "contamination": folder / "contamination.mrc",
        "metadata": folder / "phantom.json",
    }
    for path in paths.values():
        check_output_path(path, overwrite)  # refuse before writing anything
    folder.mkdir(parents=True, exist_ok=True)
    size = phantom.pixel_size
    write_volume(paths["micrograph"], phantom.image, voxel_size=size, overwrite=overwrite)
    contamination = phantom.contamination.astype(np.uint8)
    write_volume(paths["contamination"], contamination, voxel_size=size, overwrite=overwrite)
    for key, points in (
        ("particles", phantom.particles),
        ("aggregates", phantom.aggregate_particles),
    ):
        picks = Picks(
            coordinates=points,
            voxel_size=phantom.pixel_size,
            shape=phantom.image.shape,
            tomogram="micrograph",
            feature=phantom.density,
        )
        write_picks(paths[key], picks, format="star2d", overwrite=overwrite)
    write_json_atomic(
        paths["metadata"],
        {
            "pixel_size": phantom.pixel_size,
            "shape": list(phantom.image.shape),
            "density": phantom.density,
            "particle_diameter_px": phantom.particle_diameter_px,
            "defocus_um": phantom.defocus_um,
            "snr": phantom.snr,
            "n_particles": len(phantom.particles),
            "n_aggregate_particles": len(phantom.aggregate_particles),
            "contamination_fraction": float(phantom.contamination.mean()),
            "carbon_fraction": 0.0 if phantom.carbon is None else float(phantom.carbon.mean()),
        },
        overwrite=overwrite,
    )
    return paths


def phantom_references(
    phantom: MicrographPhantom,
    *,
    n_good: int = 15,
    n_background: int = 15,
    n_bad: int = 15,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Box references on a phantom the way the protocol asks a person to (a simulated annotator).

    Good: randomly chosen isolated particles. Background: empty ice at least a particle diameter
    from any particle, contamination or carbon. Bad: half on ice contamination (inside or on the
    rim), half on aggregated particles, plus carbon when the phantom has some.

    Returns
    -------
    dict
        ``{"good", "background", "bad"}`` -> ``(N, 2)`` y, x pixel coordinates (fewer than asked
        when the phantom has fewer of a kind).
    """
    rng = np.random.default_rng(seed)
    diameter = phantom.particle_diameter_px
    shape = np.asarray(phantom.image.shape)
    margin = 0.75 * diameter

    def choose(points: np.ndarray, count: int) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return points[rng.permutation(len(points))[:count]]

    everything = np.concatenate([phantom.particles, phantom.aggregate_particles])
    blocked = (
        phantom.contamination if phantom.carbon is None else phantom.contamination | phantom.carbon
    )
    clearance = ndimage.distance_transform_edt(~blocked)
    empty = []
    for _ in range(200 * max(n_background, 1)):
        point = rng.uniform(margin, shape - margin)
        far = (
            len(everything) == 0
            or np.sqrt(((everything - point) ** 2).sum(axis=1)).min() > diameter
        )
        if far and clearance[int(point[0]), int(point[1])] > margin:
            empty.append(point)
            if len(empty) == n_background:
                break
    within = (phantom.image.shape[0] - margin, phantom.image.shape[1] - margin)

    def inside(points: np.ndarray) -> np.ndarray:
        keep = (
            (points >= margin).all(axis=1) & (points[:, 0] < within[0]) & (points[:, 1] < within[1])
        )
        return points[keep]

    rim = phantom.contamination & ~ndimage.binary_erosion(phantom.contamination, iterations=2)
    on_ice = inside(
        np.concatenate([np.argwhere(phantom.contamination), np.argwhere(rim)]).astype(float)
    )
    bad_sources = [on_ice, inside(phantom.aggregate_particles)]
    if phantom.carbon is not None:
        bad_sources.append(inside(np.argwhere(phantom.carbon).astype(float)))
    share = [
        n_bad // len(bad_sources) + (i < n_bad % len(bad_sources)) for i in range(len(bad_sources))
    ]
    bad = np.concatenate([choose(points, k) for points, k in zip(bad_sources, share, strict=True)])
    return {
        "good": choose(phantom.particles, n_good),
        "background": np.asarray(empty, dtype=np.float64).reshape(-1, 2),
        "bad": bad,
    }
