"""Reference boxes on a micrograph: box a particle, background or contamination, deliberately.

The 2D picker learns from three reference sets: good isolated particles, empty background, and
"bad" boxes on anything that is not a particle (ice contamination, aggregates). As in every canvas
widget (``keymap``), a click on a box selects it and a click never removes one: in an add mode
(one per class) a click on empty image places a box of that class centred on the click, in select
mode it clears the selection, and removing is a separate action on the selected box. Adds and
removals can be undone and redone. Positions are pixel ``(y, x)`` of the micrograph. With a
``path`` every change (undo and redo too) is saved at once (atomically) as a small JSON file, so a
closed notebook loses nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_json_atomic
from ..errors import BadInputError
from ._choice import Choice

BOX_CLASSES = ("good", "background", "bad")
"""Same names as ``boxer.references.KINDS``: bad = contamination, aggregates, carbon edges."""
MODES = ("select", *BOX_CLASSES)
"""What a click on empty image does: nothing (clear the selection), or place a box of a class."""
BOXES_FORMAT = "tomoseg_nb.boxes"
BOXES_VERSION = 1


def references_needed(counts: dict[str, int], minimum: int = 5) -> str:
    """What to box next before the boxer can train, or "" when there are enough references.

    Examples
    --------
    >>> references_needed({"good": 0, "background": 7, "bad": 0})
    'Box at least 5 more good particle(s) (10-15 of each work best), then run the cells below again.'
    >>> references_needed({"good": 12, "background": 9})
    ''
    """
    short = {
        kind: minimum - counts.get(kind, 0)
        for kind in ("good", "background")
        if counts.get(kind, 0) < minimum
    }
    if not short:
        return ""
    wanted = " and ".join(
        f"{n} more good particle(s)" if kind == "good" else f"{n} more background box(es)"
        for kind, n in short.items()
    )
    return f"Box at least {wanted} (10-15 of each work best), then run the cells below again."


@dataclass(frozen=True)
class Box:
    """One reference box: centre pixel and class."""

    y: int
    x: int
    label: str


class BoxState:
    """The reference boxes of one micrograph: mode, selection, undo and redo.

    Parameters
    ----------
    image_shape : (int, int)
        ``(height, width)`` of the micrograph.
    box_size_px : int
        Box edge in pixels (about the particle diameter plus a margin).
    path : path, optional
        JSON file saved after every change (loaded first when it exists).
    micrograph : str
        Name recorded in the file.
    mode : {"select", "good", "background", "bad"}
        What a click on empty image does (a click on a box always selects it).

    Examples
    --------
    >>> state = BoxState((512, 512), box_size_px=32, mode="good")
    >>> state.click(100, 100)
    ('added', Box(y=100, x=100, label='good'))
    >>> state.mode = "background"; state.click(300, 40)
    ('added', Box(y=300, x=40, label='background'))
    >>> state.click(110, 95)  # inside the first box: selects it
    ('selected', Box(y=100, x=100, label='good'))
    >>> state.delete_selected()
    Box(y=100, x=100, label='good')
    >>> state.undo()
    ('added', Box(y=100, x=100, label='good'))
    """

    mode = Choice(MODES, "box mode")

    def __init__(
        self,
        image_shape: tuple[int, int],
        box_size_px: int,
        *,
        path: str | os.PathLike | None = None,
        micrograph: str = "",
        mode: str = "select",
    ):
        if box_size_px < 2:
            raise BadInputError(f"box size {box_size_px} px is too small; use at least 2 pixels")
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.box_size_px = int(box_size_px)
        self.micrograph = micrograph
        self.path = None if path is None else Path(path)
        self.boxes: list[Box] = []
        self.mode = mode
        self.selected: Box | None = None
        # ("added" | "removed", box, its index in ``boxes``); the same Box objects come back.
        self._undo: list[tuple[str, Box, int]] = []
        self._redo: list[tuple[str, Box, int]] = []
        if self.path is not None and self.path.exists():
            self._load(self.path)

    def box_at(self, y: float, x: float) -> Box | None:
        """The box covering pixel ``(y, x)`` (the most recent one when boxes overlap)."""
        half = self.box_size_px / 2
        for box in reversed(self.boxes):
            if abs(y - box.y) <= half and abs(x - box.x) <= half:
                return box
        return None

    def click(self, y: float, x: float) -> tuple[str, Box | None] | None:
        """Select the box covering ``(y, x)``, or act on empty image as the mode says.

        Returns ``("selected", box)``; on empty image ``("cleared", None)`` in select mode and
        ``("added", box)`` (a box of the mode's class centred there, selected) in an add mode,
        or None for an add-mode click off the image.
        """
        existing = self.box_at(y, x)
        if existing is not None:
            self.selected = existing
            return "selected", existing
        if self.mode == "select":
            self.selected = None
            return "cleared", None
        row, column = round(y), round(x)
        if not (0 <= row < self.image_shape[0] and 0 <= column < self.image_shape[1]):
            return None
        box = Box(row, column, self.mode)
        self._insert(box, len(self.boxes))
        self._remember(("added", box, len(self.boxes) - 1))
        return "added", box

    def delete_selected(self) -> Box | None:
        """Remove the selected box (Delete key); None when nothing is selected."""
        box = self.selected
        if box is None:
            return None
        self._remember(("removed", box, self._take(box)))
        return box

    def undo(self) -> tuple[str, Box] | None:
        """Reverse the last add or removal: ``("added" | "removed", box)`` says what undo did,
        None when there is nothing to undo."""
        return self._replay(self._undo, self._redo, undo=True)

    def redo(self) -> tuple[str, Box] | None:
        """Do again what the last undo reversed; None when there is nothing to redo."""
        return self._replay(self._redo, self._undo, undo=False)

    def _replay(
        self, source: list[tuple[str, Box, int]], target: list[tuple[str, Box, int]], *, undo: bool
    ) -> tuple[str, Box] | None:
        if not source:
            return None
        action, box, index = source.pop()
        target.append((action, box, index))
        if (action == "added") == undo:
            self._take(box)
            return "removed", box
        self._insert(box, index)  # where it was: the placing order is the boxes' order
        return "added", box

    def _insert(self, box: Box, index: int) -> None:
        self.boxes.insert(min(index, len(self.boxes)), box)
        self.selected = box
        self._changed()

    def _take(self, box: Box) -> int:
        """Remove ``box`` (this very object: equal boxes may be placed twice); its index."""
        index = next(i for i, b in enumerate(self.boxes) if b is box)
        del self.boxes[index]
        if self.selected is box:
            self.selected = None
        self._changed()
        return index

    def _remember(self, entry: tuple[str, Box, int]) -> None:
        self._undo.append(entry)
        self._redo.clear()

    def coordinates(self, label: str) -> np.ndarray:
        """``(N, 2)`` centres ``(y, x)`` of the boxes of one class, in placing order."""
        rows = [(b.y, b.x) for b in self.boxes if b.label == label]
        return np.array(rows, dtype=np.int64).reshape(-1, 2)

    def counts(self) -> dict[str, int]:
        """Boxes per class."""
        return {label: sum(b.label == label for b in self.boxes) for label in BOX_CLASSES}

    def to_dict(self) -> dict:
        """The JSON document saved to ``path``."""
        return {
            "format": BOXES_FORMAT,
            "version": BOXES_VERSION,
            "micrograph": self.micrograph,
            "image_shape": list(self.image_shape),
            "box_size_px": self.box_size_px,
            "boxes": [asdict(b) for b in self.boxes],
        }

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the boxes (atomically) to ``path`` or the state's own path."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise BadInputError("no file to save the boxes to; pass path=... (a .json file)")
        return write_json_atomic(target, self.to_dict())

    def _changed(self) -> None:
        if self.path is not None:
            self.save()

    def _load(self, path: Path) -> None:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("format") != BOXES_FORMAT:
                raise BadInputError(
                    f"{path}: is not a tomoseg_nb boxes file; choose another file name"
                )
            if document.get("version", 0) > BOXES_VERSION:
                raise BadInputError(
                    f"{path}: boxes file version {document['version']} is newer than this "
                    "tomoseg_nb understands; upgrade tomoseg_nb"
                )
            boxes = [Box(int(b["y"]), int(b["x"]), str(b["label"])) for b in document["boxes"]]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            if isinstance(error, BadInputError):
                raise
            raise BadInputError(
                f"{path}: unreadable boxes file ({error}); move it away to start afresh"
            ) from error
        unknown = {b.label for b in boxes} - set(BOX_CLASSES)
        if unknown:
            raise BadInputError(f"{path}: unknown box classes {sorted(unknown)}")
        self.boxes = boxes
        self.box_size_px = int(document.get("box_size_px", self.box_size_px))
