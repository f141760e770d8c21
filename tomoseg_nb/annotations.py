"""Annotation projects: features, tiles and painted masks, saved as a small versioned folder.

A project folder holds two files, both rewritten atomically (never half-written):

``project.json``
    ``{"format": "tomoseg_nb.project", "version": 1, "tomogram": ..., "tomogram_shape": [z, y, x],
    "voxel_size": A, "features": [{"name", "colour", "tile_size"}], "tiles": [{"id", "feature",
    "z", "y", "x", "size", "positive"}]}``. ``tomogram`` is relative to the folder when the file
    can be reached that way (so a project moved together with its data keeps working), and
    ``tomogram_absolute`` is kept as a fallback. Tile centres are voxel indices of the source
    tomogram; a tile covers rows ``y - size // 2`` to ``y - size // 2 + size - 1`` (the same for x).
``masks.npz``
    One ``(size, size)`` bool array per painted positive tile, keyed by tile id (plain ``np.savez``,
    no pickle). An unpainted positive tile has no entry and reads as all False.

A lock file ``.lock`` (JSON: pid, host, token) makes a second writing process fail with
``ProjectLockedError``; a lock left by a dead process on this host is taken over. Opening the same
project again in the same process (re-running a notebook cell) hands the lock to the new object and
the old one refuses to save. ``read_only=True`` opens without the lock (training, inspection).

With ``autosave`` on (the default) every mutation saves at once, cheaply enough for one save per
brush stroke: only the file that changed is rewritten.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_output, write_json_atomic
from .errors import BadInputError, MissingInputError, OutputExistsError, ProjectLockedError
from .maps import validate_feature_name
from .palette import PALETTE
from .volume import Volume, open_volume

FORMAT = "tomoseg_nb.project"
VERSION = 1
PROJECT_FILE = "project.json"
MASKS_FILE = "masks.npz"
LOCK_FILE = ".lock"
_TILE_ID = re.compile(r"^[0-9a-f]{8}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass
class Feature:
    """A feature of interest (membrane, ribosome...), annotated with tiles of ``tile_size`` px."""

    name: str
    colour: str = "#e6194b"
    tile_size: int = 64


@dataclass
class Tile:
    """A square tile on one slice: positive tiles contain the feature (and get a mask), negative not."""

    id: str
    feature: str
    z: int
    y: int
    x: int
    size: int
    positive: bool

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """``(y0, y1, x0, x1)``: the half-open pixel box the tile covers on slice ``z``."""
        return tile_bounds(self.y, self.x, self.size)


def tile_bounds(y: int, x: int, size: int) -> tuple[int, int, int, int]:
    """Half-open box ``(y0, y1, x0, x1)`` of a ``size`` tile centred at voxel ``(y, x)``.

    The one tile convention of the package (annotation, training and evaluation all use it): the
    centre pixel is ``size // 2`` from the top-left corner.
    """
    y0, x0 = int(y) - size // 2, int(x) - size // 2
    return y0, y0 + size, x0, x0 + size


class Project:
    """A project folder: project.json (versioned, documented) + masks.npz (one mask per positive tile).

    Create with ``Project.create(folder, tomogram=path)``, reopen with ``Project.open(folder)``.
    Use as a context manager (or call ``close()``) to release the write lock.

    Attributes
    ----------
    folder : Path
        The project folder.
    tomogram : str or None
        Path of the tomogram (absolute, resolved from what the project file stores).
    tomogram_shape : tuple of int or None
        ``(z, y, x)`` of the tomogram; tiles must lie fully inside it in y and x.
    voxel_size : float
        Angstrom per voxel of the tomogram.
    features : dict of str to Feature
    tiles : list of Tile
    autosave : bool
        True: every mutation saves immediately (atomically).
    read_only : bool
        Opened without the write lock; mutations are refused.
    """

    def __init__(
        self,
        folder: Path,
        *,
        tomogram: str | None,
        tomogram_shape: tuple[int, int, int] | None,
        voxel_size: float,
        features: dict[str, Feature],
        tiles: list[Tile],
        masks: dict[str, np.ndarray],
        autosave: bool,
        read_only: bool,
    ) -> None:
        self.folder = folder
        self.tomogram = tomogram
        self.tomogram_shape = tomogram_shape
        self.voxel_size = voxel_size
        self.features = features
        self.tiles = tiles
        self.autosave = autosave
        self.read_only = read_only
        self._masks = masks
        self._json_dirty = False
        self._masks_dirty = False
        self._lock: _Lock | None = None
        self._closed = False

    # ------------------------------------------------------------------ opening and closing
    @classmethod
    def create(
        cls,
        folder: str | os.PathLike,
        *,
        tomogram: str | os.PathLike | Volume | None = None,
        voxel_size: float | None = None,
        tomogram_shape: tuple[int, int, int] | None = None,
        overwrite: bool = False,
        autosave: bool = True,
    ) -> Project:
        """Start a new project in ``folder`` (created if missing) for ``tomogram``.

        ``tomogram`` is a path (opened memory-mapped, cheaply) or an open ``Volume``; its shape and
        voxel size are recorded so tiles can be checked against it. Without a tomogram, pass
        ``tomogram_shape`` (and ``voxel_size``).

        Raises
        ------
        OutputExistsError
            ``folder`` already holds a project and ``overwrite`` is False.
        """
        folder = Path(folder)
        if (folder / PROJECT_FILE).exists() and not overwrite:
            raise OutputExistsError(
                f"{folder}: already holds an annotation project; open it with Project.open, "
                "or pass overwrite=True to start again"
            )
        tomogram_path: str | None = None
        size = 1.0
        if isinstance(tomogram, Volume):
            tomogram_shape, size = tomogram.shape, tomogram.voxel_size  # type: ignore[assignment]
            tomogram_path = str(tomogram.path.resolve()) if tomogram.path is not None else None
        elif tomogram is not None:
            with open_volume(tomogram, ndim=3) as volume:
                tomogram_shape, size = volume.shape, volume.voxel_size  # type: ignore[assignment]
            tomogram_path = str(Path(tomogram).resolve())
        if tomogram_shape is not None:
            tomogram_shape = _checked_shape(tomogram_shape, folder)
        if voxel_size is not None:
            if not voxel_size > 0:
                raise BadInputError(f"voxel size must be positive (Angstrom), got {voxel_size}")
            size = float(voxel_size)
        folder.mkdir(parents=True, exist_ok=True)
        project = cls(
            folder,
            tomogram=tomogram_path,
            tomogram_shape=tomogram_shape,
            voxel_size=size,
            features={},
            tiles=[],
            masks={},
            autosave=autosave,
            read_only=False,
        )
        project._lock = _Lock.acquire(folder)
        (folder / MASKS_FILE).unlink(missing_ok=True)
        project._json_dirty = project._masks_dirty = True
        project.save()
        return project

    @classmethod
    def open(
        cls, folder: str | os.PathLike, *, read_only: bool = False, autosave: bool = True
    ) -> Project:
        """Open an existing project; takes the write lock unless ``read_only``.

        Raises
        ------
        MissingInputError
            No project in ``folder``.
        BadInputError
            The project file is corrupt, foreign (not a tomoseg_nb project) or of another version.
        ProjectLockedError
            Another live process has the project open for writing.
        """
        folder = Path(folder)
        path = folder / PROJECT_FILE
        if not path.is_file():
            raise MissingInputError(
                f"{folder}: no annotation project here ({PROJECT_FILE} missing); "
                "create one with Project.create"
            )
        state = _read_project_file(path)
        masks = _read_masks(folder / MASKS_FILE, state["tiles"])
        project = cls(folder, masks=masks, autosave=autosave, read_only=read_only, **state)
        if not read_only:
            project._lock = _Lock.acquire(folder)
        return project

    def close(self) -> None:
        """Save pending changes and release the write lock; later edits are refused."""
        try:
            if self._lock is not None and self._lock.held() and not self._closed:
                self.save()
        finally:  # a failed save (full disk) must not leave the lock to block other processes
            self._closed = True
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    @property
    def closed(self) -> bool:
        """True after ``close()``: edits are refused (widgets still showing it say so)."""
        return self._closed

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{name}: {len(self.tiles_of(name, True))}+/{len(self.tiles_of(name, False))}-"
            for name in self.features
        )
        return f"Project({str(self.folder)!r}, tiles {{{counts}}})"

    # ------------------------------------------------------------------ features
    def add_feature(self, name: str, *, colour: str | None = None, tile_size: int = 64) -> Feature:
        """Add a feature of interest; its tiles will be ``tile_size`` px square."""
        self._check_writable()
        validate_feature_name(name)
        if name in self.features:
            raise BadInputError(f"feature '{name}' already exists in {self.folder}")
        if not isinstance(tile_size, (int, np.integer)) or not 8 <= tile_size <= 1024:
            raise BadInputError(f"tile size must be an integer from 8 to 1024 px, got {tile_size}")
        if self.tomogram_shape is not None and tile_size > min(self.tomogram_shape[1:]):
            raise BadInputError(
                f"tile size {tile_size} px is larger than the slices {self.tomogram_shape[1:]}; "
                "use smaller tiles"
            )
        if colour is None:
            colour = PALETTE[len(self.features) % len(PALETTE)]
        if not _COLOUR.match(colour):
            raise BadInputError(f"colour {colour!r} is not a hex colour like '#e6194b'")
        feature = Feature(name, colour, int(tile_size))
        self.features[name] = feature
        self._changed(json=True)
        return feature

    def remove_feature(self, name: str) -> None:
        """Remove a feature with all its tiles and masks."""
        self._check_writable()
        self._feature(name)
        for tile in self.tiles_of(name):
            self._masks.pop(tile.id, None)
        self.tiles = [tile for tile in self.tiles if tile.feature != name]
        del self.features[name]
        self._changed(json=True, masks=True)

    # ------------------------------------------------------------------ tiles
    def add_tile(self, feature: str, z: int, y: int, x: int, *, positive: bool = True) -> Tile:
        """Add a tile of ``feature`` centred at voxel ``(z, y, x)``; refuses tiles off the volume."""
        self._check_writable()
        size = self._feature(feature).tile_size
        z, y, x = (_integer(value, axis) for value, axis in ((z, "z"), (y, "y"), (x, "x")))
        self._check_inside(z, y, x, size)
        if any((t.feature, t.z, t.y, t.x) == (feature, z, y, x) for t in self.tiles):
            raise BadInputError(
                f"feature '{feature}' already has a tile at z={z}, y={y}, x={x}; "
                "use tile_at to find it"
            )
        used = {tile.id for tile in self.tiles}
        tile_id = secrets.token_hex(4)
        while tile_id in used:
            tile_id = secrets.token_hex(4)
        tile = Tile(tile_id, feature, z, y, x, size, bool(positive))
        self.tiles.append(tile)
        self._changed(json=True)
        return tile

    def remove_tile(self, tile_id: str) -> None:
        """Remove a tile and its mask."""
        self._check_writable()
        tile = self._tile(tile_id)
        self.tiles.remove(tile)
        had_mask = self._masks.pop(tile_id, None) is not None
        self._changed(json=True, masks=had_mask)

    def tile_at(self, feature: str, z: int, y: int, x: int) -> Tile | None:
        """The tile of ``feature`` on slice ``z`` covering voxel ``(y, x)`` (the latest added)."""
        for tile in reversed(self.tiles):
            if tile.feature == feature and tile.z == z:
                y0, y1, x0, x1 = tile.bounds
                if y0 <= y < y1 and x0 <= x < x1:
                    return tile
        return None

    def tiles_of(self, feature: str, positive: bool | None = None) -> list[Tile]:
        """Tiles of ``feature`` in the order added; only positives or negatives when asked."""
        return [
            tile
            for tile in self.tiles
            if tile.feature == feature and (positive is None or tile.positive == positive)
        ]

    # ------------------------------------------------------------------ masks
    def mask(self, tile_id: str) -> np.ndarray:
        """The painted ``(size, size)`` bool mask of a tile, as a copy; all False when unpainted."""
        tile = self._tile(tile_id)
        stored = self._masks.get(tile_id)
        if stored is None:
            return np.zeros((tile.size, tile.size), dtype=bool)
        return stored.copy()

    def set_mask(self, tile_id: str, mask: np.ndarray) -> None:
        """Store the painted mask of a positive tile (any array of 0/1 or bool, ``(size, size)``)."""
        self._check_writable()
        tile = self._tile(tile_id)
        if not tile.positive:
            raise BadInputError(
                f"tile {tile_id} is a negative tile of '{tile.feature}'; only positive tiles get "
                "a mask (the feature is absent from negative tiles by definition)"
            )
        mask = np.asarray(mask)
        if mask.shape != (tile.size, tile.size):
            raise BadInputError(
                f"mask of tile {tile_id} must be {tile.size}x{tile.size}, got shape {mask.shape}"
            )
        self._masks[tile_id] = mask.astype(bool, copy=True)
        self._changed(masks=True)

    # ------------------------------------------------------------------ saving
    def save(self) -> None:
        """Write what changed since the last save, atomically (masks first, then the tile list)."""
        self._check_writable()
        if self._lock is not None and not self._lock.held():
            raise ProjectLockedError(
                f"{self.folder}: this project object lost its write lock (the project was opened "
                "again, here or elsewhere); use the newer project object"
            )
        if self._masks_dirty:
            with atomic_output(self.folder / MASKS_FILE) as tmp, open(tmp, "wb") as handle:
                np.savez(handle, **self._masks)  # type: ignore[arg-type]  # keys are tile ids (8 hex digits), never savez's own keywords
                handle.flush()
                os.fsync(handle.fileno())
            self._masks_dirty = False
        if self._json_dirty:
            write_json_atomic(self.folder / PROJECT_FILE, self._to_json())
            self._json_dirty = False

    # ------------------------------------------------------------------ internals
    def _to_json(self) -> dict[str, Any]:
        relative = absolute = None
        if self.tomogram is not None:
            absolute = str(Path(self.tomogram).resolve())
            relative = os.path.relpath(absolute, self.folder.resolve())
        return {
            "format": FORMAT,
            "version": VERSION,
            "about": "tomoseg_nb annotation project; tile centres are voxel indices (z, y, x) "
            "of the tomogram; masks.npz holds one bool (size, size) mask per painted positive tile",
            "tomogram": relative,
            "tomogram_absolute": absolute,
            "tomogram_shape": list(self.tomogram_shape) if self.tomogram_shape else None,
            "voxel_size": self.voxel_size,
            "features": [asdict(feature) for feature in self.features.values()],
            "tiles": [asdict(tile) for tile in self.tiles],
        }

    def _changed(self, *, json: bool = False, masks: bool = False) -> None:
        self._json_dirty |= json
        self._masks_dirty |= masks
        if self.autosave:
            self.save()

    def _check_writable(self) -> None:
        if self._closed:  # it no longer holds the lock: a write could clobber another process's
            raise BadInputError(
                f"{self.folder}: the project was closed; open it again with "
                "Project.open(folder) to edit"
            )
        if self.read_only:
            raise BadInputError(
                f"{self.folder}: project was opened read-only; open it with read_only=False to edit"
            )

    def _feature(self, name: str) -> Feature:
        if name not in self.features:
            known = ", ".join(self.features) or "none yet"
            raise BadInputError(
                f"no feature '{name}' in {self.folder} (features: {known}); add it with add_feature"
            )
        return self.features[name]

    def _tile(self, tile_id: str) -> Tile:
        for tile in self.tiles:
            if tile.id == tile_id:
                return tile
        raise BadInputError(f"no tile with id {tile_id!r} in {self.folder}")

    def _check_inside(self, z: int, y: int, x: int, size: int) -> None:
        y0, y1, x0, x1 = tile_bounds(y, x, size)
        shape = self.tomogram_shape
        nz, ny, nx = shape if shape is not None else (None, None, None)
        if z < 0 or (nz is not None and z >= nz):
            raise BadInputError(f"slice z={z} is outside the tomogram (0..{(nz or 1) - 1})")
        outside = y0 < 0 or x0 < 0 or (ny is not None and y1 > ny) or (nx is not None and x1 > nx)
        if outside:
            limits = f"{size // 2}..{ny - (size - size // 2)}" if ny is not None else ""
            raise BadInputError(
                f"a {size} px tile centred at y={y}, x={x} reaches outside the tomogram "
                f"(slices {ny}x{nx}); move the centre at least {size // 2} px from the edges"
                + (f" (y in {limits})" if limits else "")
            )


def _integer(value: Any, axis: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not float(value).is_integer():
        raise BadInputError(f"tile centre {axis}={value!r} must be a whole voxel index")
    return int(value)


def _checked_shape(shape: Any, where: Path) -> tuple[int, int, int]:
    try:
        values = tuple(int(n) for n in shape)
    except (TypeError, ValueError) as error:
        raise BadInputError(f"{where}: tomogram shape {shape!r} is not three integers") from error
    if len(values) != 3 or min(values) < 1:
        raise BadInputError(f"{where}: tomogram shape {shape!r} must be three positive integers")
    return values


def _read_project_file(path: Path) -> dict[str, Any]:
    """Parse and validate project.json; every problem becomes a BadInputError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise BadInputError(f"{path}: not readable JSON ({error}); the file is corrupt") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInputError(
            f'{path}: not a tomoseg_nb annotation project (no "format": "{FORMAT}"); '
            "point to a folder made by Project.create"
        )
    version = data.get("version")
    if version != VERSION:
        newer = isinstance(version, int) and version > VERSION
        advice = "upgrade tomoseg_nb to read it" if newer else "re-create the project"
        raise BadInputError(
            f"{path}: project format version {version!r}, this tomoseg_nb reads version "
            f"{VERSION}; {advice}"
        )
    try:
        features = {}
        for item in data["features"]:
            feature = Feature(
                validate_feature_name(item["name"]), str(item["colour"]), int(item["tile_size"])
            )
            features[feature.name] = feature
        tiles = []
        for item in data["tiles"]:
            tile = Tile(
                str(item["id"]),
                str(item["feature"]),
                int(item["z"]),
                int(item["y"]),
                int(item["x"]),
                int(item["size"]),
                bool(item["positive"]),
            )
            if not _TILE_ID.match(tile.id) or tile.feature not in features:
                raise ValueError(f"tile {item!r} has a bad id or an unknown feature")
            tiles.append(tile)
        shape = data.get("tomogram_shape")
        state = {
            "tomogram": _resolve_tomogram(path.parent, data),
            "tomogram_shape": _checked_shape(shape, path) if shape is not None else None,
            "voxel_size": float(data["voxel_size"]),
            "features": features,
            "tiles": tiles,
        }
    except BadInputError as error:
        raise BadInputError(f"{path}: {error}") from error
    except (KeyError, TypeError, ValueError) as error:
        raise BadInputError(
            f"{path}: malformed project file ({error!r}); the file is corrupt"
        ) from error
    return state


def _resolve_tomogram(folder: Path, data: dict[str, Any]) -> str | None:
    relative, absolute = data.get("tomogram"), data.get("tomogram_absolute")
    if relative is None and absolute is None:
        return None
    if relative is None:
        return str(absolute)
    if absolute is None or (folder / relative).exists():
        return str((folder / relative).resolve())
    return str(absolute)


def _read_masks(path: Path, tiles: list[Tile]) -> dict[str, np.ndarray]:
    """Masks of the listed positive tiles; entries of tiles no longer listed are dropped."""
    if not path.exists():
        return {}
    sizes = {tile.id: tile.size for tile in tiles if tile.positive}
    masks = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                if key not in sizes:
                    continue
                mask = archive[key]
                if mask.shape != (sizes[key], sizes[key]) or mask.dtype != bool:
                    raise ValueError(f"mask {key} has shape {mask.shape} and type {mask.dtype}")
                masks[key] = mask
    # zipfile and numpy's header parser raise many types for damaged archives (BadZipFile,
    # EOFError, NotImplementedError, SyntaxError...)
    except Exception as error:
        raise BadInputError(
            f"{path}: masks file is corrupt or foreign ({error}); restore it from a backup or "
            "delete it to start painting afresh"
        ) from error
    return masks


class _Lock:
    """The write lock of a project folder: a JSON file with pid, host and a random token."""

    def __init__(self, path: Path, token: str) -> None:
        self.path = path
        self.token = token
        self._finalizer = weakref.finalize(self, _release, path, token)

    @classmethod
    def acquire(cls, folder: Path) -> _Lock:
        path = folder / LOCK_FILE
        token = secrets.token_hex(8)
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "token": token})
        # Written aside, then hard-linked into place: the lock appears complete or not at all.
        draft = folder / f".lock.{token}"
        draft.write_text(record, encoding="utf-8")
        try:
            return cls._link(path, draft, token)
        finally:
            draft.unlink(missing_ok=True)

    @classmethod
    def _link(cls, path: Path, draft: Path, token: str) -> _Lock:
        folder = path.parent
        for _ in range(3):
            try:
                os.link(draft, path)
            except FileExistsError:
                holder = _read_lock(path)
                if holder is not None and _holder_alive(holder):
                    raise ProjectLockedError(
                        f"{folder}: the project is open for writing by process {holder['pid']} on "
                        f"{holder['host']}; close it there (project.close()), open it here with "
                        f"read_only=True, or delete {path} if that process is gone"
                    ) from None
                path.unlink(missing_ok=True)  # stale, our own, or unreadable: take it over
                continue
            return cls(path, token)
        raise ProjectLockedError(f"{folder}: could not take the lock {path}; try again")

    def held(self) -> bool:
        holder = _read_lock(self.path)
        return holder is not None and holder.get("token") == self.token

    def release(self) -> None:
        self._finalizer()


def _release(path: Path, token: str) -> None:
    holder = _read_lock(path)
    if holder is not None and holder.get("token") == token:
        path.unlink(missing_ok=True)


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        valid = isinstance(holder, dict) and isinstance(holder.get("pid"), int)
        return holder if valid else None
    except (OSError, ValueError, RecursionError):
        return None


def _holder_alive(holder: dict[str, Any]) -> bool:
    """True when the lock belongs to another live process (or one we cannot check)."""
    if holder.get("host") != socket.gethostname():
        return True  # cannot see processes on other machines: assume alive
    pid = int(holder["pid"])
    if pid == os.getpid():
        return False  # reopened in this process: the newer object takes over
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
