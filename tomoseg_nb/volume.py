"""Tomograms and micrographs on disk: open lazily, read slices on demand, write atomically.

MRC-family files (``.mrc .rec .map .mrcs .st .ali``) are memory-mapped, so a 2k x 2k x 512 float32
tomogram opens instantly and only the slices asked for are read. TIFF stacks are memory-mapped when
stored uncompressed and read page by page otherwise; OME-Zarr is read chunk by chunk. The voxel size
(Angstrom) and the MRC origin travel with the data and are written back on output.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import numpy.typing as npt

from .atomic import atomic_output
from .errors import BadInputError, MissingInputError, first_line

MRC_SUFFIXES = (".mrc", ".rec", ".map", ".mrcs", ".st", ".ali")
TIFF_SUFFIXES = (".tif", ".tiff")
ZARR_SUFFIXES = (".zarr",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

Origin = tuple[float, float, float]


@dataclass
class Volume:
    """A tomogram (``(z, y, x)``) or image (``(y, x)``) with its physical frame.

    ``data`` may be a memory map or a lazily read array: index it (``volume.slice(z)``,
    ``volume.slab(z0, z1)``) rather than converting it whole.

    Attributes
    ----------
    data : array-like
        Voxels, indexable like a numpy array.
    voxel_size : float
        Angstrom per voxel (isotropic). 1.0 when the file does not say.
    origin : tuple of float
        MRC header origin ``(x, y, z)`` in Angstrom; copied to every output derived from this volume.
    path : Path or None
        Where the data came from.
    """

    data: Any
    voxel_size: float = 1.0
    origin: Origin = (0.0, 0.0, 0.0)
    path: Path | None = None
    _closer: Any = field(default=None, repr=False, compare=False)
    _layout: MrcLayout | None = field(default=None, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.data.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def name(self) -> str:
        """File stem used to name outputs (``TS_01.mrc`` -> ``TS_01``)."""
        return self.path.stem if self.path is not None else "volume"

    def slice(self, z: int) -> np.ndarray:
        """One z slice as a float32 copy; checks it for NaN/Inf."""
        if self.ndim != 3:
            raise BadInputError(f"{self._label()}: is 2D; slices need a 3D volume")
        if not -self.shape[0] <= z < self.shape[0]:
            raise IndexError(f"slice {z} is outside 0..{self.shape[0] - 1}")
        return self._checked(np.asarray(self.data[z], dtype=np.float32), f"slice {z}")

    def slab(self, start: int, stop: int) -> np.ndarray:
        """Slices ``start:stop`` as a float32 ``(n, y, x)`` copy; checks them for NaN/Inf."""
        if self.ndim != 3:
            raise BadInputError(f"{self._label()}: is 2D; slabs need a 3D volume")
        start, stop = max(0, start), min(self.shape[0], stop)
        if self._layout is not None and self._layout.shape == self.shape:
            raw = self._layout.read(start, stop)
        else:
            raw = self.data[start:stop]
        return self._checked(np.asarray(raw, dtype=np.float32), f"slices {start}-{stop - 1}")

    def read(self) -> np.ndarray:
        """The whole volume as float32 in memory (for small data; prefer ``slab`` for tomograms)."""
        return self._checked(np.asarray(self.data[...], dtype=np.float32), "data")

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> Volume:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _label(self) -> str:
        return str(self.path) if self.path is not None else "volume"

    def _checked(self, array: np.ndarray, where: str) -> np.ndarray:
        if not np.isfinite(array).all():
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            raise BadInputError(
                f"{self._label()}: {bad} NaN/Inf voxels in {where}; replace them (e.g. with the mean) "
                "before segmenting"
            )
        return array


def _missing(path: Path) -> MissingInputError:
    return MissingInputError(f"{path}: no such file or folder")


def open_volume(
    path: str | os.PathLike,
    *,
    ndim: int | None = 3,
    voxel_size: float | None = None,
) -> Volume:
    """Open a tomogram or image lazily.

    Parameters
    ----------
    path : path-like
        MRC/REC/MAP/MRCS, TIFF, OME-Zarr folder, or (2D only) PNG/JPEG.
    ndim : {3, 2, None}
        Dimensionality required: 3 for a tomogram, 2 for a micrograph (a one-frame stack is
        squeezed), None to accept either.
    voxel_size : float, optional
        Angstrom per voxel, overriding the file's own value.

    Raises
    ------
    MissingInputError
        The path does not exist.
    BadInputError
        The file is truncated, corrupt, of an unknown type, of the wrong dimensionality,
        or has NaN/Inf in the slices sampled at opening.
    """
    path = Path(path)
    if not path.exists():
        raise _missing(path)
    suffix = path.suffix.lower()
    if suffix in MRC_SUFFIXES:
        volume = _open_mrc(path)
    elif suffix in TIFF_SUFFIXES:
        volume = _open_tiff(path)
    elif suffix in ZARR_SUFFIXES or (path.is_dir() and (path / ".zattrs").exists()):
        volume = _open_ome_zarr(path)
    elif suffix in IMAGE_SUFFIXES:
        volume = _open_image(path)
    else:
        raise BadInputError(
            f"{path}: unknown volume format '{suffix}'; use MRC (.mrc/.rec/.map/.mrcs), TIFF or OME-Zarr"
        )
    if voxel_size is not None:
        if not voxel_size > 0:
            raise BadInputError(f"voxel size must be positive, got {voxel_size}")
        volume.voxel_size = float(voxel_size)
    try:
        _check_dimensionality(volume, ndim)
        _sample_finite(volume)
    except BadInputError:
        volume.close()
        raise
    return volume


def _check_dimensionality(volume: Volume, ndim: int | None) -> None:
    if ndim == 2 and volume.ndim == 3 and volume.shape[0] == 1:
        volume.data = volume.data[0]
    if volume.ndim not in (2, 3):
        raise BadInputError(
            f"{volume.path}: has {volume.ndim} dimensions; expected a 2D image or 3D volume"
        )
    if ndim is not None and volume.ndim != ndim:
        wanted = "a 3D tomogram" if ndim == 3 else "a 2D micrograph"
        raise BadInputError(
            f"{volume.path}: is {volume.ndim}D with shape {volume.shape}; {wanted} is needed"
        )
    if min(volume.shape) < 1:
        raise BadInputError(f"{volume.path}: is empty (shape {volume.shape})")


def _sample_finite(volume: Volume) -> None:
    """Check a few slices for NaN/Inf at opening, cheaply; every later read checks its own slices."""
    if volume.ndim == 2:
        volume.read()
        return
    nz = volume.shape[0]
    for z in sorted({0, nz // 2, nz - 1}):
        volume.slice(z)


def _open_mrc(path: Path) -> Volume:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            mrc = mrcfile.mmap(path, mode="r", permissive=False)
    except OverflowError as error:  # negative sizes, or more than can be mapped
        raise BadInputError(
            f"{path}: not a readable MRC file (its header gives impossible sizes: damaged?)"
        ) from error
    except (ValueError, RuntimeWarning, OSError, EOFError) as error:
        raise BadInputError(f"{path}: not a readable MRC file ({first_line(error)})") from error
    if mrc.data is None:
        mrc.close()
        raise BadInputError(f"{path}: MRC header has no data block (truncated file?)")
    size = float(mrc.voxel_size.x)
    header_origin = mrc.header.origin
    origin = (float(header_origin["x"]), float(header_origin["y"]), float(header_origin["z"]))
    return Volume(
        mrc.data,
        voxel_size=size if size > 0 else 1.0,
        origin=origin,
        path=path,
        _closer=mrc.close,
        _layout=MrcLayout.of(path, mrc),
    )


@contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Mute a library's log records (tifffile logs every damaged tag); our error says it once."""
    logger = logging.getLogger(name)
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


def _open_tiff(path: Path) -> Volume:
    import tifffile

    data: np.ndarray
    try:
        with _quiet_logger("tifffile"):
            try:
                data = tifffile.memmap(path, mode="r")
            except ValueError:  # compressed or non-contiguous: read the pages
                data = tifffile.imread(path)
            voxel_size, origin = _tiff_frame(path)
    # tifffile raises many types (IndexError, KeyError...) for corrupt files
    except Exception as error:
        raise BadInputError(f"{path}: not a readable TIFF file ({first_line(error)})") from error
    return Volume(
        np.asarray(data) if not isinstance(data, np.memmap) else data,
        voxel_size=voxel_size,
        origin=origin,
        path=path,
    )


def _tiff_frame(path: Path) -> tuple[float, Origin]:
    """Voxel size and origin from ImageJ (or tifffile JSON) metadata, if present.

    The voxel size is the x resolution in the metadata's unit (Angstrom or nm). ImageJ stores the
    origin as ``xorigin``/``yorigin``/``zorigin`` in pixels, with physical ``x = (i - xorigin) *
    pixel width``, so the MRC origin in Angstrom is ``-xorigin * voxel_size``.
    """
    import tifffile

    with tifffile.TiffFile(path) as tif:
        meta = tif.imagej_metadata or (tif.shaped_metadata or [{}])[0] or {}
        unit = str(meta.get("unit", "")).lower()
        tag = tif.pages[0].tags.get("XResolution")
    scale = {"angstrom": 1.0, "a": 1.0, "\u00c5": 1.0, "nm": 10.0, "nanometer": 10.0}.get(unit, 0.0)
    if tag is None or not scale or tag.value[0] == 0:
        return 1.0, (0.0, 0.0, 0.0)
    numerator, denominator = tag.value
    voxel_size = float(denominator / numerator * scale)
    x, y, z = (-float(meta.get(f"{axis}origin", 0.0)) * voxel_size for axis in "xyz")
    return voxel_size, (x, y, z)


def _open_ome_zarr(path: Path) -> Volume:
    try:
        import zarr
    except ImportError as error:
        raise BadInputError(
            f"{path}: reading OME-Zarr needs zarr; pip install 'tomoseg_nb[zarr]'"
        ) from error
    try:
        group = zarr.open_group(str(path), mode="r")
        # JSON from the store: its shape is checked as it is read, and any mismatch (a missing key,
        # a string where a list should be...) raises inside this ``try`` and is reported below
        attributes: dict[str, Any] = dict(group.attrs)
        multiscales = attributes.get("multiscales") or attributes.get("ome", {}).get("multiscales")
        if not multiscales:
            raise BadInputError(f"{path}: zarr group without OME 'multiscales' metadata")
        dataset = multiscales[0]["datasets"][0]
        array = group[dataset["path"]]
        scale = next(
            (
                t["scale"]
                for t in dataset.get("coordinateTransformations", [])
                if t.get("type") == "scale"
            ),
            None,
        )
        translation = next(
            (
                t["translation"]
                for t in dataset.get("coordinateTransformations", [])
                if t.get("type") == "translation"
            ),
            None,
        )
        unit = next(
            (a.get("unit", "") for a in multiscales[0].get("axes", [])[-1:] if isinstance(a, dict)),
            "",
        )
        to_angstrom = {"nanometer": 10.0, "angstrom": 1.0, "micrometer": 1e4}.get(str(unit), 1.0)
        voxel_size = float(scale[-1]) * to_angstrom if scale else 1.0
        # NGFF translation is in physical units, axes (z,) y, x; the MRC origin is x, y, z
        xyz = [float(v) * to_angstrom for v in translation[::-1]] if translation else []
        x, y, z = [*xyz, 0.0, 0.0, 0.0][:3]
    except BadInputError:
        raise
    except Exception as error:  # zarr raises many types for corrupt stores
        raise BadInputError(
            f"{path}: not a readable OME-Zarr store ({first_line(error)})"
        ) from error
    return Volume(array, voxel_size=voxel_size, origin=(x, y, z), path=path)


def _open_image(path: Path) -> Volume:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode in ("RGB", "RGBA", "P", "LA"):
                image = image.convert("L")
            data = np.asarray(image)
    except (UnidentifiedImageError, OSError) as error:
        raise BadInputError(f"{path}: not a readable image ({first_line(error)})") from error
    return Volume(data, voxel_size=1.0, path=path)


def _mrc_dtype(dtype: np.dtype) -> np.dtype:
    """The nearest dtype MRC can store (modes 0, 1, 2, 6, 12)."""
    dtype = np.dtype(dtype)
    allowed = (np.int8, np.int16, np.float32, np.uint16, np.float16, np.uint8)
    if any(dtype == np.dtype(kind) for kind in allowed):
        return dtype
    return np.dtype(np.float32)


def write_volume(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    voxel_size: float = 1.0,
    origin: Origin = (0.0, 0.0, 0.0),
    overwrite: bool = False,
) -> Path:
    """Write ``data`` atomically as MRC, TIFF or OME-Zarr (chosen by suffix), keeping the frame.

    Nothing is left at ``path`` if writing fails part way.
    """
    path = Path(path)
    data = np.asarray(data)
    suffix = path.suffix.lower()
    if suffix not in MRC_SUFFIXES + TIFF_SUFFIXES + ZARR_SUFFIXES:
        raise BadInputError(f"{path}: cannot write '{suffix}'; use .mrc, .tif or .zarr")
    with atomic_output(path, overwrite=overwrite) as tmp:
        if suffix in MRC_SUFFIXES:
            with mrcfile.new(tmp, overwrite=True) as mrc:
                mrc.set_data(data.astype(_mrc_dtype(data.dtype), copy=False))
                _set_frame(mrc, voxel_size, origin)
                if suffix == ".mrcs":
                    mrc.set_image_stack()
        elif suffix in TIFF_SUFFIXES:
            _write_tiff(tmp, data, voxel_size, origin)
        else:
            write_ome_zarr(tmp, data, voxel_size=voxel_size, origin=origin)
    return path


def _set_frame(mrc: mrcfile.mrcfile.MrcFile, voxel_size: float, origin: Origin) -> None:
    mrc.voxel_size = float(voxel_size)
    mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = (float(v) for v in origin)


def _write_tiff(path: Path, data: np.ndarray, voxel_size: float, origin: Origin) -> None:
    """ImageJ-style TIFF: z slices (not channels), pixel size in nm, origin in pixels (see _tiff_frame)."""
    import tifffile

    pixels_per_nm = 10.0 / voxel_size
    metadata: dict[str, Any] = {"axes": "ZYX"[-data.ndim :], "unit": "nm"}
    if data.ndim == 3:
        metadata["spacing"] = voxel_size / 10.0
    for axis, value in zip("xyz", origin, strict=True):
        if value:
            metadata[f"{axis}origin"] = -float(value) / voxel_size
    tifffile.imwrite(
        path,
        data,
        imagej=data.dtype in (np.uint8, np.uint16, np.float32),
        resolution=(pixels_per_nm, pixels_per_nm),
        metadata=metadata,
    )


def write_ome_zarr(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    voxel_size: float,
    origin: Origin = (0.0, 0.0, 0.0),
    chunks: int = 64,
) -> None:
    """Write a single-scale OME-Zarr (NGFF 0.4, zarr format 2) with scale and origin in Angstrom.

    The MRC origin ``(x, y, z)`` becomes an NGFF ``translation`` (axes ``z, y, x``).
    """
    import zarr

    axes = [{"name": n, "type": "space", "unit": "angstrom"} for n in "zyx"[-data.ndim :]]
    translation = [float(v) for v in origin[: data.ndim][::-1]]
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array("0", data=data, chunks=(chunks,) * data.ndim)
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": axes,
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [
                        {"type": "scale", "scale": [voxel_size] * data.ndim},
                        {"type": "translation", "translation": translation},
                    ],
                }
            ],
        }
    ]


@dataclass(frozen=True)
class MrcLayout:
    """Where an MRC file's voxels are: slabs are read and written with positional file I/O.

    Streaming a tomogram through a memory map leaves every page it touched counted in the process's
    resident memory until the mapping closes; plain reads and writes of whole z slices (contiguous
    in MRC) keep memory flat however large the file is.
    """

    path: Path
    offset: int
    dtype: np.dtype
    shape: tuple[int, int, int]

    @classmethod
    def of(cls, path: Path, mrc: mrcfile.mrcfile.MrcFile) -> MrcLayout | None:
        if mrc.data is None or mrc.data.ndim != 3:
            return None
        offset = int(mrc.header.nbytes + mrc.header.nsymbt)
        nz, ny, nx = (int(n) for n in mrc.data.shape)
        return cls(Path(path), offset, mrc.data.dtype, (nz, ny, nx))

    @property
    def slice_bytes(self) -> int:
        return self.shape[1] * self.shape[2] * self.dtype.itemsize

    def read(self, start: int, stop: int) -> np.ndarray:
        """Slices ``start:stop`` as stored (native byte order not guaranteed)."""
        with open(self.path, "rb") as handle:
            handle.seek(self.offset + start * self.slice_bytes)
            data = np.fromfile(
                handle,
                dtype=self.dtype,
                count=(stop - start) * self.slice_bytes // self.dtype.itemsize,
            )
        return data.reshape(stop - start, *self.shape[1:])


class SlabWriter:
    """Write whole z slices into an existing MRC file: ``writer[z0:z1] = slab``.

    Positional writes of exactly those slices' bytes: memory stays flat, and workers writing
    different slabs of one file never touch each other's bytes (a memory map writes back whole
    pages, which on NFS can clobber a neighbour's slices).
    """

    def __init__(self, layout: MrcLayout) -> None:
        self.layout = layout
        self._handle = open(layout.path, "r+b")

    @classmethod
    def open(cls, path: str | os.PathLike) -> SlabWriter:
        with mrcfile.mmap(path, mode="r") as mrc:
            layout = MrcLayout.of(Path(path), mrc)
        if layout is None:
            raise BadInputError(f"{path}: not a 3D MRC volume to write slices into")
        return cls(layout)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.layout.shape

    @property
    def dtype(self) -> np.dtype:
        return self.layout.dtype

    def __setitem__(self, index: int | slice, values: np.ndarray) -> None:
        start, stop, step = (
            (index, index + 1, 1) if isinstance(index, int) else index.indices(self.shape[0])
        )
        if step != 1 or not 0 <= start < stop <= self.shape[0]:
            raise IndexError(f"slices {index} are not a contiguous range of 0..{self.shape[0] - 1}")
        data = np.broadcast_to(np.asarray(values), (stop - start, *self.shape[1:]))
        self._handle.seek(self.layout.offset + start * self.layout.slice_bytes)
        self._handle.write(np.ascontiguousarray(data, dtype=self.dtype).tobytes())

    def flush(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


@contextmanager
def create_volume(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    dtype: npt.DTypeLike = np.float32,
    *,
    voxel_size: float = 1.0,
    origin: Origin = (0.0, 0.0, 0.0),
    overwrite: bool = False,
) -> Iterator[SlabWriter]:
    """Yield a ``SlabWriter`` to fill a new MRC slab by slab; it appears at ``path`` only on success.

    This is how whole-tomogram outputs are streamed without holding them in memory: the file is
    allocated (sparse) with its header, voxel size and origin, then written slice range by range.
    """
    path = Path(path)
    if path.suffix.lower() not in MRC_SUFFIXES:
        raise BadInputError(f"{path}: streamed outputs are written as MRC; use a .mrc suffix")
    if len(shape) != 3:
        raise BadInputError(f"{path}: streamed outputs are 3D volumes, got shape {tuple(shape)}")
    mode = _mrc_mode(np.dtype(dtype))
    with atomic_output(path, overwrite=overwrite) as tmp:
        with mrcfile.new_mmap(tmp, shape=tuple(shape), mrc_mode=mode, overwrite=True) as mrc:
            _set_frame(mrc, voxel_size, origin)
            layout = MrcLayout.of(tmp, mrc)
        assert layout is not None, "a new 3D MRC always has a 3D data block"
        writer = SlabWriter(layout)
        try:
            yield writer
            writer.flush()
        finally:
            writer.close()
        with mrcfile.mmap(tmp, mode="r+") as mrc:
            finish_mrc_header(mrc)


HEADER_STATS_MAX_VOXELS = 64 * 1024**2


def finish_mrc_header(mrc: mrcfile.mrcfile.MrcFile) -> None:
    """Set min/max/mean/rms of a streamed output, or mark them unset when that would page in too much."""
    if mrc.data.size <= HEADER_STATS_MAX_VOXELS:
        mrc.update_header_stats()
    else:
        mrc.reset_header_stats()


def _mrc_mode(dtype: np.dtype) -> int:
    # uint8 maps to mode 6 (uint16): mode 0 is signed in MRC2014 and would wrap values above 127.
    modes = {
        np.dtype(np.float32): 2,
        np.dtype(np.float16): 12,
        np.dtype(np.uint8): 6,
        np.dtype(np.int16): 1,
    }
    if dtype not in modes:
        raise BadInputError(
            f"cannot stream dtype {dtype} to MRC; use float32, float16, uint8 or int16"
        )
    return modes[dtype]
