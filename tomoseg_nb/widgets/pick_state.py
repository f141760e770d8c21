"""Reviewing picks: a score threshold, and rejecting single picks (or keeping them again).

Works for tomograms ``(z, y, x)`` and micrographs ``(y, x)`` alike. As in every canvas widget
(``keymap``), a click only selects - the nearest shown pick within ``radius_px`` (in voxels of
the source) - and a deliberate action changes it: ``toggle_selected`` rejects the selected pick
(Delete), or keeps a rejected one again. Every change can be undone and redone.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadInputError


class PickReview:
    """Which picks are shown (score >= threshold) and which the user kept.

    Parameters
    ----------
    coordinates : array (N, d)
        Pick centres ``(z, y, x)`` or ``(y, x)`` in voxels.
    scores : array (N,), optional
        Higher is better; default all ones.
    radius_px : float
        Particle radius in voxels: drawing size and how close a click must be.
    threshold : float
        Picks scoring below it are hidden (and not exported).

    Examples
    --------
    >>> review = PickReview(np.array([[10, 10], [40, 40]]), np.array([0.9, 0.3]), radius_px=5)
    >>> review.shown().tolist()
    [True, True]
    >>> review.threshold = 0.5; review.shown().tolist()
    [True, False]
    >>> review.click(12, 9)  # selects pick 0
    0
    >>> review.toggle_selected(); review.kept().tolist()
    0
    [False, False]
    >>> review.undo(); review.kept().tolist()
    0
    [True, False]
    """

    def __init__(
        self,
        coordinates: np.ndarray,
        scores: np.ndarray | None = None,
        *,
        radius_px: float,
        threshold: float = 0.0,
    ):
        coordinates = np.asarray(coordinates, dtype=np.float64)
        if coordinates.ndim != 2 or coordinates.shape[1] not in (2, 3):
            raise BadInputError(
                f"pick coordinates have shape {coordinates.shape}; expected (N, 3) z, y, x or "
                "(N, 2) y, x"
            )
        n = len(coordinates)
        scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64)
        if scores.shape != (n,):
            raise BadInputError(f"{n} picks but {scores.shape} scores; give one score per pick")
        if not radius_px > 0:
            raise BadInputError(f"radius {radius_px} px must be positive")
        self.coordinates = coordinates
        self.scores = scores
        self.radius_px = float(radius_px)
        self.threshold = float(threshold)
        self.accepted = np.ones(n, dtype=bool)
        self.selected: int | None = None
        self._undo: list[int] = []
        self._redo: list[int] = []

    def shown(self) -> np.ndarray:
        """Boolean (N,): scoring at least the threshold."""
        return self.scores >= self.threshold

    def kept(self) -> np.ndarray:
        """Boolean (N,): shown and not rejected: what gets exported."""
        return self.shown() & self.accepted

    def click(self, *position: float) -> int | None:
        """Select the nearest shown pick within the radius of ``position``; its index, or None
        (and nothing selected) when no pick is that close."""
        if len(position) != self.coordinates.shape[1]:
            raise BadInputError(
                f"click has {len(position)} coordinates but picks have {self.coordinates.shape[1]}"
            )
        self.selected = None
        candidates = np.flatnonzero(self.shown())
        if candidates.size == 0:
            return None
        distances = np.linalg.norm(self.coordinates[candidates] - np.asarray(position), axis=1)
        nearest = int(np.argmin(distances))
        if distances[nearest] <= self.radius_px:
            self.selected = int(candidates[nearest])
        return self.selected

    def toggle_selected(self) -> int | None:
        """Reject the selected pick, or keep it again if it was rejected; its index, or None."""
        if self.selected is None:
            return None
        self._flip(self.selected)
        self._undo.append(self.selected)
        self._redo.clear()
        return self.selected

    def undo(self) -> int | None:
        """Reverse the last reject or keep; the pick's index, or None when nothing is left."""
        return self._replay(self._undo, self._redo)

    def redo(self) -> int | None:
        """Do again what the last undo reversed; the pick's index, or None."""
        return self._replay(self._redo, self._undo)

    def _replay(self, source: list[int], target: list[int]) -> int | None:
        if not source:
            return None
        index = source.pop()
        self._flip(index)
        target.append(index)
        self.selected = index
        return index

    def _flip(self, index: int) -> None:
        self.accepted[index] = not self.accepted[index]

    def on_slice(self, z: int) -> tuple[np.ndarray, np.ndarray]:
        """Shown picks cutting slice ``z`` and their radius there (spheres cut by the slice).

        Returns indices and radii in voxels; for 2D picks every shown pick, at full radius.
        """
        shown = np.flatnonzero(self.shown())
        if self.coordinates.shape[1] == 2:
            return shown, np.full(shown.size, self.radius_px)
        dz = self.coordinates[shown, 0] - z
        inside = np.abs(dz) < self.radius_px
        radii = np.sqrt(self.radius_px**2 - dz[inside] ** 2)
        return shown[inside], radii
