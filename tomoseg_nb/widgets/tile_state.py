"""Choosing tiles: a click selects a tile; in an add mode a click on empty slice places one.

The protocol asks for about 10 tiles that contain the feature (positive, to be painted) and about
100 that do not (negative). A click never deletes (that used to cost painted masks): removing is
a separate, deliberate action on the selected tile. Every change goes straight into the
annotation ``Project``, which saves it; adds and removals can be undone and redone (with the
painted mask), so a stray action costs nothing. A closed project refuses every edit.

After a training, ``suggest`` asks ``suggest.suggest_tiles`` where the current feature's
probability map is least sure (or where two features' maps both claim voxels); the person steps
through the suggestions and accepts each as a positive or a negative tile. A positive one can
start its mask from the prediction (thresholded), so correcting it with the painter takes seconds.
Undoing an accept puts the suggestion back where it was in the list; redoing takes it out again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from ..annotations import Project, Tile
from ..errors import BadInputError
from ..suggest import Suggestion, suggest_tiles
from ._choice import Choice

TARGET_POSITIVE = 10
TARGET_NEGATIVE = 100
HISTORY = 50
MODES = ("select", "positive", "negative")
"""What a click on empty slice does: nothing, or place a positive or a negative tile."""

Accepted = tuple[int, int, Suggestion]
"""An accepted suggestion as history keeps it: the suggestion round, its index in the list, it."""
Entry = tuple[str, Tile, np.ndarray | None, Accepted | None]
"""One undo step: ``"added"`` or ``"removed"``, the tile, its mask, the suggestion it came from."""


def persist(project: Project) -> None:
    """Save now unless the project saves every change by itself."""
    if not project.autosave:
        project.save()


def check_open(project: Project) -> None:
    """Refuse to edit a closed project (its lock is gone; a write would bypass it)."""
    if project.closed:
        raise BadInputError(
            f"{project.folder}: the project was closed; open it again with "
            "Project.open(folder) and make new widgets to keep editing"
        )


class TileState:
    """Tile choice on one project: current feature, mode, selection, undo and redo.

    Parameters
    ----------
    project : Project
        Where tiles are added (and saved).
    feature : str, optional
        Current feature; default the first one of the project.
    mode : {"select", "positive", "negative"}
        What a click on empty slice does (a click on a tile always selects it).

    Examples
    --------
    >>> state = TileState(project, "membrane", mode="positive")  # doctest: +SKIP
    >>> state.click(20, 100, 100)  # doctest: +SKIP
    ('added', Tile(id='1f0c9a2b', feature='membrane', z=20, y=100, x=100, size=64, positive=True))
    >>> state.click(20, 90, 110)  # inside that tile: selects it  # doctest: +SKIP
    ('selected', Tile(id='1f0c9a2b', feature='membrane', z=20, y=100, x=100, size=64, positive=True))
    """

    mode = Choice(MODES, "tile mode")

    def __init__(self, project: Project, feature: str | None = None, *, mode: str = "select"):
        self.project = project
        self.suggestions: list[Suggestion] = []
        self.suggestion_index = 0
        self._suggestion_round = 0  # a new list (suggest, other feature): old ones stay out of it
        self._prediction: tuple[np.ndarray, float, int] | None = None
        self._feature: str | None = None
        self.feature = feature if feature is not None else next(iter(project.features), None)
        self.mode = mode
        self.selected: str | None = None
        self._undo: list[Entry] = []
        self._redo: list[Entry] = []

    @property
    def feature(self) -> str | None:
        """Name of the current feature (None while the project has none)."""
        return self._feature

    @feature.setter
    def feature(self, name: str | None) -> None:
        if name is not None and name not in self.project.features:
            known = ", ".join(self.project.features) or "none yet"
            raise BadInputError(f"no feature '{name}' in the project (features: {known})")
        if name != self._feature:  # suggestions are the old feature's
            self.suggestions = []
            self.suggestion_index = 0
            self._suggestion_round += 1
        self._feature = name

    def _require_feature(self) -> str:
        if self.feature is None:
            raise BadInputError("the project has no feature yet; add one (e.g. 'membrane') first")
        return self.feature

    def click(self, z: int, y: int, x: int) -> tuple[str, Tile | None]:
        """Select the current feature's tile covering voxel ``(z, y, x)``, or act on empty slice.

        On empty slice, select mode clears the selection and an add mode places a tile centred
        on the click, moved inwards just enough to lie inside the slice. Returns
        ``("selected", tile)``, ``("cleared", None)`` or ``("added", tile)``.
        """
        feature = self._require_feature()
        existing = self.project.tile_at(feature, z, y, x)
        if existing is not None:
            self.selected = existing.id
            return "selected", existing
        if self.mode == "select":
            self.selected = None
            return "cleared", None
        return "added", self._add(feature, z, y, x, self.mode == "positive")

    def _add(
        self,
        feature: str,
        z: int,
        y: int,
        x: int,
        positive: bool,
        mask: np.ndarray | None = None,
        accepted: Accepted | None = None,
    ) -> Tile:
        check_open(self.project)
        size = self.project.features[feature].tile_size
        y, x = self._inside(y, x, size)
        tile = self.project.add_tile(feature, z, y, x, positive=positive)
        if mask is not None:
            self.project.set_mask(tile.id, mask)
        persist(self.project)
        self._remember(("added", tile, None, accepted))
        self.selected = tile.id
        return tile

    def suggest(
        self,
        probability: np.ndarray,
        *,
        threshold: float = 0.5,
        k: int = 5,
        others: Mapping[str, np.ndarray] | None = None,
        other_thresholds: Mapping[str, float] | None = None,
        z_start: int = 0,
    ) -> list[Suggestion]:
        """Tiles to annotate next for the current feature, from its ``(z, y, x)`` probability map.

        ``suggest.suggest_tiles`` ranks them (the feature's annotated tiles excluded; ``others``
        are the other features' maps for its disagreement term). A map of a slab of slices
        starts at slice ``z_start`` of the tomogram (``others`` cover the same slab); the
        suggestions are in tomogram slices. The map is kept so that ``accept_suggestion`` can
        start a positive tile's mask from it.
        """
        feature = self._require_feature()
        probability = np.asarray(probability)
        found = suggest_tiles(
            probability,
            k=k,
            tile_size=self.project.features[feature].tile_size,
            threshold=threshold,
            others=others,
            other_thresholds=other_thresholds,
            exclude=[(t.z - z_start, t.y, t.x) for t in self.project.tiles_of(feature)],
        )
        self.suggestions = [replace(s, z=s.z + z_start) for s in found]
        self.suggestion_index = 0
        self._suggestion_round += 1
        self._prediction = (probability, threshold, z_start)
        return self.suggestions

    @property
    def suggestion(self) -> Suggestion | None:
        """The suggestion being looked at (None when there is none left)."""
        if not self.suggestions:
            return None
        return self.suggestions[self.suggestion_index % len(self.suggestions)]

    def next_suggestion(self, steps: int = 1) -> Suggestion | None:
        """Move ``steps`` through the suggestions (wrapping round); the one now looked at."""
        if self.suggestions:
            self.suggestion_index = (self.suggestion_index + steps) % len(self.suggestions)
        return self.suggestion

    def accept_suggestion(self, positive: bool, *, from_prediction: bool = True) -> Tile | None:
        """Add the current suggestion as a tile of the current feature; undo takes it away again.

        A positive tile's mask starts as the prediction (``probability >= threshold``) when
        ``from_prediction``, for the painter to correct; else it is left to paint. The accepted
        suggestion leaves the list (``undo`` puts it back). None when there is no suggestion.
        """
        suggestion, feature = self.suggestion, self._require_feature()
        if suggestion is None:
            return None
        mask = None
        if positive and from_prediction and self._prediction is not None:
            probability, threshold, z_start = self._prediction
            size = self.project.features[feature].tile_size
            y0, x0 = suggestion.y - size // 2, suggestion.x - size // 2
            box = probability[suggestion.z - z_start, y0 : y0 + size, x0 : x0 + size] >= threshold
            mask = box if box.any() else None
        index = self.suggestion_index % len(self.suggestions)
        accepted = (self._suggestion_round, index, suggestion)
        tile = self._add(
            feature, suggestion.z, suggestion.y, suggestion.x, positive, mask, accepted
        )
        self._take_suggestion(index)
        return tile

    def _take_suggestion(self, index: int) -> None:
        del self.suggestions[index]
        if self.suggestions:
            self.suggestion_index %= len(self.suggestions)

    def _restore_suggestion(self, accepted: Accepted | None, *, undo: bool) -> None:
        """Put an accepted suggestion back where it was (undo), or take it out again (redo).

        Only into the list it came from: after a new ``suggest`` or a change of feature the
        list is another one, and the tile's undo leaves it alone.
        """
        if accepted is None or accepted[0] != self._suggestion_round:
            return
        _, index, suggestion = accepted
        if undo:
            index = min(index, len(self.suggestions))
            self.suggestions.insert(index, suggestion)
            self.suggestion_index = index  # looked at again, as before it was accepted
        elif suggestion in self.suggestions:
            self._take_suggestion(self.suggestions.index(suggestion))

    def remove(self, tile_id: str) -> Tile:
        """Remove a tile (and its mask); ``undo`` brings both back."""
        check_open(self.project)
        tile = next(t for t in self.project.tiles if t.id == tile_id)
        mask = self._take(tile)
        self._remember(("removed", tile, mask, None))
        return tile

    def delete_selected(self) -> Tile | None:
        """Remove the selected tile (Delete key); None when nothing is selected."""
        if self.selected is None:
            return None
        return self.remove(self.selected)

    def undo(self) -> tuple[str, Tile] | None:
        """Reverse the last add or remove; returns what was done, or None when nothing is left."""
        return self._replay(self._undo, self._redo, undo=True)

    def redo(self) -> tuple[str, Tile] | None:
        """Do again what the last undo reversed; None when there is nothing to redo."""
        return self._replay(self._redo, self._undo, undo=False)

    def _replay(self, source: list, target: list, *, undo: bool) -> tuple[str, Tile] | None:
        if not source:
            return None
        check_open(self.project)
        action, tile, mask, accepted = source.pop()
        if action == "added":
            self._restore_suggestion(accepted, undo=undo)
        if (action == "added") == undo:  # take the tile away again, keeping what was painted
            mask = self._take(tile)
            target.append((action, tile, mask, accepted))
            return "removed", tile
        restored = self.project.add_tile(
            tile.feature, tile.z, tile.y, tile.x, positive=tile.positive
        )
        if mask is not None and mask.any():
            self.project.set_mask(restored.id, mask)
        persist(self.project)
        # The project gives the tile a new id; older history entries must find it under that.
        for stack in (self._undo, self._redo):
            stack[:] = [(a, restored if t.id == tile.id else t, m, s) for a, t, m, s in stack]
        target.append((action, restored, None, accepted))
        return "added", restored

    def _take(self, tile: Tile) -> np.ndarray | None:
        """Remove ``tile`` from the project; its mask (None for negatives) for a later restore."""
        mask = self.project.mask(tile.id) if tile.positive else None
        self.project.remove_tile(tile.id)
        persist(self.project)
        if self.selected == tile.id:
            self.selected = None
        return mask

    def _remember(self, entry: Entry) -> None:
        self._undo.append(entry)
        del self._undo[:-HISTORY]
        self._redo.clear()

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

    def step(self, steps: int) -> Tile | None:
        """Select the tile ``steps`` after the selected one in ``tiles()`` order (wrapping round)."""
        tiles = self.tiles()
        if not tiles:
            return None
        ids = [tile.id for tile in tiles]
        index = ids.index(self.selected) if self.selected in ids else (-1 if steps > 0 else 0)
        tile = tiles[(index + steps) % len(tiles)]
        self.selected = tile.id
        return tile
