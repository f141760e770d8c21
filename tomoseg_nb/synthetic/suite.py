"""A named suite of varied phantoms: accuracy measured over the spread of tomograms users have.

One phantom made with the simulator's defaults says little about a user's tomogram, which is
always data the project has never seen. Each ``PhantomSpec`` here draws the simulator's knobs from
its seed over realistic ranges: voxel size 7-20 A, SNR 0.05-0.5, defocus 2-6 um with or without
phase flipping, slab thickness 100-300 nm, membrane, microtubule, ribosome and crowding amounts,
membrane and microtubule wall contrast, 13 or 14 protofilaments, ice and gold. Six scenarios fix
what random draws could miss: no missing wedge, a steep one (+-45-55 degrees), a typical one
(+-56-64) and a wide one (+-65-70); microtubules in the slab plane, oblique (about 35 degrees) or
steep (about 60 degrees, nearly along z); dark or inverted (bright) density; and the grey levels
and file type a reconstruction program leaves (``WRITERS``). A spec's name is made from its seed
and parameters, so a result can be traced to the exact phantom.

The suite has two halves with the same six scenarios and different seeds. ``DEVELOPMENT`` is for
choosing defaults (architecture, recipe, threshold). ``HELD_BACK`` must never be used to choose
or tune anything: it is only measured to report how the chosen defaults do on tomograms that
played no part in choosing them. Looking at held-back results while choosing spends it.

>>> spec = DEVELOPMENT[0]
>>> phantom = spec.build((32, 96, 96))
>>> phantom.tomogram.shape, spec.name.startswith(f"s{spec.seed}-")
((32, 96, 96), True)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import BadInputError
from ..progress import ProgressCallback
from .imaging import ImagingConditions
from .tomogram import CellContent, TomogramPhantom, simulate_tomogram

DEFAULT_SHAPE = (64, 320, 320)
"""Largest phantom shape ``PhantomSpec.build`` makes by default (z shrinks for thin slabs)."""

WRITERS: dict[str, tuple[str, tuple[float, float], tuple[float, float]]] = {
    "float": ("float32", (0.0, 0.0), (1.0, 1.0)),
    "imod": ("int16", (-200.0, 600.0), (30.0, 300.0)),
    "imod-bytes": ("uint8", (110.0, 150.0), (25.0, 45.0)),
    "aretomo": ("float32", (-50.0, 50.0), (0.05, 20.0)),
}
"""Grey levels as reconstructions are written: writer -> (dtype, mean range, std range).

"float": the simulator's own float32, mean 0 and standard deviation 1. "imod": 16-bit integers
with an offset and scale, as IMOD's ``tilt -SCALE`` leaves them. "imod-bytes": bytes 0-255, as
IMOD's byte scaling (``newstack``/``trimvol`` mode 0) leaves them, the tails clipped at 0 and 255.
"aretomo": float32 with an arbitrary offset and scale (AreTomo, Warp). The ranges are plausible
spans, not measured from any one program's output; per-slice normalisation should make them
irrelevant, and the suite checks that it does."""

Wedge = Literal["none", "steep", "typical", "wide"]
Orientation = Literal["in-plane", "oblique", "steep"]

_WEDGE_DEG: dict[str, tuple[float, float]] = {
    "none": (90.0, 90.0),
    "steep": (45.0, 55.0),
    "typical": (56.0, 64.0),
    "wide": (65.0, 70.0),
}
_ELEVATION_DEG: dict[str, tuple[float, float]] = {
    "in-plane": (0.0, 6.0),
    "oblique": (35.0, 8.0),
    "steep": (60.0, 6.0),
}
_SCENARIOS: tuple[tuple[Wedge, Orientation, Literal["dark", "bright"], str], ...] = (
    ("none", "in-plane", "dark", "imod"),
    ("steep", "oblique", "bright", "aretomo"),
    ("typical", "steep", "dark", "aretomo"),
    ("typical", "in-plane", "bright", "imod-bytes"),
    ("wide", "oblique", "dark", "float"),
    ("steep", "in-plane", "dark", "imod"),
)
"""(missing wedge, microtubule orientation, density polarity, writer), one phantom each per half."""


@dataclass(frozen=True)
class PhantomSpec:
    """Every parameter of one suite phantom; ``build`` makes it, ``name`` identifies it.

    Attributes
    ----------
    seed : int
        Seeds the parameter draw and the simulation.
    voxel_size : float
        Angstrom per voxel.
    snr : float
        Signal-to-noise ratio of the tomogram (``simulate_tomogram``).
    tilt_range_deg : float
        Tilt range +-; 90 means no missing wedge.
    thickness_nm : float
        Slab thickness; the phantom has this many slices or the shape's z, whichever is fewer.
    defocus_um, bfactor_angstrom2 : float
        Underfocus and envelope B-factor (``ImagingConditions``).
    phase_flipped : bool
        CTF corrected by phase flipping, or left with its contrast reversals.
    polarity : {"dark", "bright"}
        Density dark, as reconstructed, or inverted.
    writer : str
        Grey levels and dtype (``WRITERS``); ``grey_mean`` and ``grey_std`` are the drawn levels.
    microtubules : {"in-plane", "oblique", "steep"}
        Orientation of the microtubule axes relative to the slab.
    content : CellContent
        What the cell holds.
    """

    seed: int
    voxel_size: float
    snr: float
    tilt_range_deg: float
    thickness_nm: float
    defocus_um: float
    bfactor_angstrom2: float
    phase_flipped: bool
    polarity: Literal["dark", "bright"]
    writer: str
    grey_mean: float
    grey_std: float
    microtubules: Orientation
    content: CellContent

    @property
    def name(self) -> str:
        """Seed and parameters, e.g. ``s1101-14.2A-snr0.15-w60-180nm-df4.1f-dark-imod-mtin-plane``."""
        wedge = "nowedge" if self.tilt_range_deg >= 90 else f"w{self.tilt_range_deg:.0f}"
        flip = "f" if self.phase_flipped else "u"
        return (
            f"s{self.seed}-{self.voxel_size:.1f}A-snr{self.snr:.2f}-{wedge}-"
            f"{self.thickness_nm:.0f}nm-df{self.defocus_um:.1f}{flip}-{self.polarity}-"
            f"{self.writer}-mt{self.microtubules}"
        )

    @property
    def imaging(self) -> ImagingConditions:
        return ImagingConditions(
            defocus_um=self.defocus_um,
            bfactor_angstrom2=self.bfactor_angstrom2,
            phase_flipped=self.phase_flipped,
            tilt_range_deg=self.tilt_range_deg,
        )

    def shape(self, max_shape: tuple[int, int, int] = DEFAULT_SHAPE) -> tuple[int, int, int]:
        """``max_shape`` with z cut to the slab thickness (at least 32 slices, for tile choice)."""
        z, y, x = (int(n) for n in max_shape)
        slices = round(self.thickness_nm * 10.0 / self.voxel_size)
        return min(z, max(32, slices)), y, x

    def build(
        self,
        max_shape: tuple[int, int, int] = DEFAULT_SHAPE,
        *,
        progress: ProgressCallback | None = None,
    ) -> TomogramPhantom:
        """Simulate the phantom; its tomogram has the writer's dtype and grey levels."""
        phantom = simulate_tomogram(
            self.shape(max_shape),
            voxel_size=self.voxel_size,
            seed=self.seed,
            snr=self.snr,
            contrast=self.polarity,
            content=self.content,
            imaging=self.imaging,
            progress=progress,
        )
        return dataclasses.replace(phantom, tomogram=self.written(phantom.tomogram))

    def written(self, tomogram: np.ndarray) -> np.ndarray:
        """``tomogram`` rescaled to mean ``grey_mean`` and std ``grey_std``, in the writer's dtype.

        Reconstruction programs scale the whole volume, noise included, to their output range.
        """
        dtype = np.dtype(WRITERS[self.writer][0])
        tomogram = np.asarray(tomogram, dtype=np.float32)
        spread = float(tomogram.std()) or 1.0
        gain = np.float32(self.grey_std / spread)
        scaled = np.float32(self.grey_mean) + gain * (tomogram - np.float32(tomogram.mean()))
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            scaled = np.clip(np.rint(scaled), info.min, info.max)
        return scaled.astype(dtype)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the name and every parameter, the content as its own dict."""
        values = dataclasses.asdict(self)
        return {"name": self.name, **values}


def draw_spec(
    seed: int,
    *,
    wedge: Wedge = "typical",
    microtubules: Orientation = "in-plane",
    polarity: Literal["dark", "bright"] = "dark",
    writer: str = "float",
) -> PhantomSpec:
    """A spec with its continuous parameters drawn from ``seed`` (the same seed, the same spec).

    Rates are those of a crowded eukaryotic cytoplasm, with microtubules and vesicles plentiful
    enough that a 64 x 320 x 320 slab holds ten tiles of each feature, as a person would choose
    a tomogram that shows what they want to segment.
    """
    if wedge not in _WEDGE_DEG or microtubules not in _ELEVATION_DEG or writer not in WRITERS:
        raise BadInputError(
            f"unknown scenario ({wedge!r}, {microtubules!r}, {writer!r}); wedges "
            f"{sorted(_WEDGE_DEG)}, orientations {sorted(_ELEVATION_DEG)}, writers {sorted(WRITERS)}"
        )
    rng = np.random.default_rng(seed)

    def log_uniform(low: float, high: float) -> float:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    def uniform(low: float, high: float) -> float:
        return float(rng.uniform(low, high))

    _dtype, mean_range, std_range = WRITERS[writer]
    voxel_size = round(log_uniform(7.0, 20.0), 1)
    content = CellContent(
        vesicles_per_um3=log_uniform(400.0, 2000.0),
        vesicle_radius_nm=(uniform(15.0, 25.0), uniform(50.0, 110.0)),
        organelles_per_um2=uniform(0.5, 3.0),
        decorated_fraction=uniform(0.2, 0.8),
        microtubule_um_per_um3=log_uniform(150.0, 400.0),
        microtubule_elevation_deg=_ELEVATION_DEG[microtubules],
        microtubule_protofilaments=14 if rng.random() < 0.25 else 13,
        microtubule_contrast=uniform(0.7, 1.2),
        membrane_contrast=uniform(0.7, 1.2),
        actin_um_per_um3=log_uniform(50.0, 400.0),
        ribosomes_per_um3=log_uniform(3000.0, 12000.0),
        membrane_bound_fraction=uniform(0.0, 0.5),
        crowders_per_um3=log_uniform(8000.0, 40000.0),
        fiducials_per_um2=uniform(0.0, 40.0),
        ice_blobs_per_um2=uniform(0.0, 6.0),
    )
    return PhantomSpec(
        seed=seed,
        voxel_size=voxel_size,
        snr=round(log_uniform(0.05, 0.5), 3),
        tilt_range_deg=round(uniform(*_WEDGE_DEG[wedge]), 0),
        thickness_nm=round(uniform(100.0, 300.0), 0),
        defocus_um=round(uniform(2.0, 6.0), 1),
        bfactor_angstrom2=round(uniform(800.0, 2500.0), 0),
        phase_flipped=bool(rng.random() < 0.6),
        polarity=polarity,
        writer=writer,
        grey_mean=round(uniform(*mean_range), 2),
        grey_std=round(uniform(*std_range), 3),
        microtubules=microtubules,
        content=content,
    )


def _half(first_seed: int) -> tuple[PhantomSpec, ...]:
    return tuple(
        draw_spec(first_seed + index, wedge=wedge, microtubules=mt, polarity=polarity, writer=w)
        for index, (wedge, mt, polarity, w) in enumerate(_SCENARIOS)
    )


DEVELOPMENT: tuple[PhantomSpec, ...] = _half(1101)
"""Phantoms on which defaults may be chosen and compared."""

HELD_BACK: tuple[PhantomSpec, ...] = _half(2101)
"""Phantoms never used to choose anything: only to report how the chosen defaults generalise."""

HALVES: dict[str, tuple[PhantomSpec, ...]] = {
    "development": DEVELOPMENT,
    "held-back": HELD_BACK,
    "all": DEVELOPMENT + HELD_BACK,
}
