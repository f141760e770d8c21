"""Choosing tiles: a click on a slice adds a tile of the current feature, or removes the one there.

The protocol asks for about 10 tiles that contain the feature (positive, to be painted) and about
100 that do not (negative). Every change goes straight into the annotation ``Project``, which saves
it; removals can be undone (with the painted mask), so a stray click costs nothing.
"""

from __future__ import annotations

import numpy as np

from ..annotations import Project, Tile
from ..errors import BadInputError

TARGET_POSITIVE = 10
TARGET_NEGATIVE = 100
HISTORY = 50


def persist(project: Project) -> None:
    """Save now unless the project saves every change by itself."""
    if not project.autosave:
        project.save()


class TileState:
    """Tile choice on one project: current feature, positive or negative mode, undo.

    Parameters
    ----------
    project : Project
        Where tiles are added (and saved).
    feature : str, optional
        Current feature; default the first one of the project.
    positive : bool
        Whether clicks place positive (contains the feature) or negative tiles.

    Examples
    --------
    >>> state = TileState(project, "membrane")  # doctest: +SKIP
    >>> state.click(20, 100, 100)  # doctest: +SKIP
    ('added', Tile(id='1f0c9a2b', feature='membrane', z=20, y=100, x=100, size=64, positive=True))
    """

    def __init__(self, project: Project, feature: str | None = None, *, positive: bool = True):
        self.project = project
        self.feature = feature if feature is not None else next(iter(project.features), None)
        self.positive = positive
        self.selected: str | None = None
        self._history: list[tuple[str, Tile, np.ndarray | None]] = []

    @property
    def feature(self) -> str | None:
        """Name of the current feature (None while the project has none)."""
        return self._feature

    @feature.setter
    def feature(self, name: str | None) -> None:
        if name is not None and name not in self.project.features:
            known = ", ".join(self.project.features) or "none yet"
            raise BadInputError(f"no feature '{name}' in the project (features: {known})")
        self._feature = name

    def _require_feature(self) -> str:
        if self.feature is None:
            raise BadInputError("the project has no feature yet; add one (e.g. 'membrane') first")
        return self.feature

    def click(self, z: int, y: int, x: int) -> tuple[str, Tile]:
        """Remove the current feature's tile covering voxel ``(z, y, x)``, or add one there.

        A new tile is centred on the click, moved inwards just enough to lie inside the slice.
        Returns ``("added" | "removed", tile)``.
        """
        feature = self._require_feature()
        existing = self.project.tile_at(feature, z, y, x)
        if existing is not None:
            self.remove(existing.id)
            return "removed", existing
        size = self.project.features[feature].tile_size
        y, x = self._inside(y, x, size)
        tile = self.project.add_tile(feature, z, y, x, positive=self.positive)
        persist(self.project)
        self._remember("added", tile, None)
        if tile.positive:
            self.selected = tile.id
        return "added", tile

    def remove(self, tile_id: str) -> Tile:
        """Remove a tile (and its mask); ``undo`` brings both back."""
        tile = next(t for t in self.project.tiles if t.id == tile_id)
        mask = self.project.mask(tile_id) if tile.positive else None
        self.project.remove_tile(tile_id)
        persist(self.project)
        self._remember("removed", tile, mask)
        if self.selected == tile_id:
            self.selected = None
        return tile

    def undo(self) -> tuple[str, Tile] | None:
        """Reverse the last add or remove; returns what was done, or None when nothing is left."""
        if not self._history:
            return None
        action, old, mask = self._history.pop()
        if action == "added":
            if any(t.id == old.id for t in self.project.tiles):
                self.project.remove_tile(old.id)
                persist(self.project)
            if self.selected == old.id:
                self.selected = None
            return "removed", old
        tile = self.project.add_tile(old.feature, old.z, old.y, old.x, positive=old.positive)
        if mask is not None and mask.any():
            self.project.set_mask(tile.id, mask)
        persist(self.project)
        return "added", tile

    def _remember(self, action: str, tile: Tile, mask: np.ndarray | None) -> None:
        self._history.append((action, tile, mask))
        del self._history[:-HISTORY]

    def _inside(self, y: int, x: int, size: int) -> tuple[int, int]:
        shape = self.project.tomogram_shape
        if shape is None:
            return int(y), int(x)
        low = size // 2
        y = min(max(int(y), low), shape[1] - (size - low))
        x = min(max(int(x), low), shape[2] - (size - low))
        return y, x

    def counts(self, feature: str | None = None) -> tuple[int, int]:
        """``(positive, negative)`` tile counts of a feature (default the current one)."""
        name = feature or self.feature
        if name is None:
            return 0, 0
        return (
            len(self.project.tiles_of(name, positive=True)),
            len(self.project.tiles_of(name, positive=False)),
        )

    def counts_text(self) -> str:
        """``"membrane: 3 / ~10 positive, 12 / ~100 negative"`` (the protocol's targets)."""
        if self.feature is None:
            return "no feature yet"
        positive, negative = self.counts()
        return (
            f"{self.feature}: {positive} / ~{TARGET_POSITIVE} positive, "
            f"{negative} / ~{TARGET_NEGATIVE} negative"
        )

    def tiles_on_slice(self, z: int) -> list[Tile]:
        """All tiles (every feature) on slice ``z``, in the order added."""
        return [tile for tile in self.project.tiles if tile.z == z]

    def tiles(self) -> list[Tile]:
        """Tiles of the current feature, positives first, each group in the order added."""
        if self.feature is None:
            return []
        return self.project.tiles_of(self.feature, True) + self.project.tiles_of(
            self.feature, False
        )
