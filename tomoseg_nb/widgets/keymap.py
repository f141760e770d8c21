"""One mouse and keyboard table for every canvas widget, and the ``?`` help overlay built from it.

Widgets shown side by side (the tile picker next to the mask painter) must not give a key two
meanings, so the bindings live here, once: the widgets dispatch through these rows (``dispatch``
with row ids, or the chord sets made from the rows), the help overlay lists them, and
``docs/interaction.md`` is checked against them by a test.

Browser key events arrive as ``KeyboardEvent.key`` plus modifier flags; ``chord`` turns them into
one name (``"z"``, ``"Z"``, ``"Ctrl+z"``, ``"Ctrl+Shift+z"``) so Ctrl+Z on Linux and Cmd+Z on a Mac
are the same chord.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import ipywidgets as widgets

SCOPES = (
    "every canvas",
    "slice viewer",
    "tile picker",
    "mask painter",
    "pick viewer",
    "box picker",
)
"""Where a binding applies. The tile picker, the pick viewer and the box picker are slice viewers
too, so they have both tables."""


@dataclass(frozen=True)
class Binding:
    """One row of the interaction table."""

    id: str
    scope: str
    inputs: tuple[str, ...]
    action: str

    @property
    def keys_text(self) -> str:
        """The inputs as the table shows them: ``Ctrl+Z / z``."""
        return " / ".join(self.inputs)


KEYMAP: tuple[Binding, ...] = (
    Binding("help", "every canvas", ("?",), "show or hide this help"),
    Binding("undo", "every canvas", ("Ctrl+Z", "z"), "undo the last edit"),
    Binding("redo", "every canvas", ("Ctrl+Shift+Z", "Ctrl+Y", "Shift+Z", "y"), "redo"),
    Binding("focus", "slice viewer", ("first click",), "gives the canvas the keys; edits nothing"),
    Binding("pan", "slice viewer", ("drag",), "pan"),
    Binding("zoom-wheel", "slice viewer", ("wheel",), "zoom at the pointer, one level per notch"),
    Binding("zoom-keys", "slice viewer", ("+", "-"), "zoom in, out"),
    Binding("fit", "slice viewer", ("0", "Home"), "fit the whole slice"),
    Binding(
        "slice",
        "slice viewer",
        ("Up", "Down", "PageUp", "PageDown", "w", "s"),
        "next, previous slice",
    ),
    Binding("side-click", "slice viewer", ("click XZ / YZ",), "go to the slice clicked"),
    Binding("select", "tile picker", ("click a tile",), "select it (the painter shows it)"),
    Binding(
        "deselect", "tile picker", ("click empty", "Esc"), "clear the selection, back to select"
    ),
    Binding("add-positive", "tile picker", ("a",), "add mode: a click places a positive tile"),
    Binding("add-negative", "tile picker", ("x",), "add mode: a click places a negative tile"),
    Binding("delete", "tile picker", ("Delete", "Backspace"), "remove the selected tile"),
    Binding("tile-step", "tile picker", ("n", "p"), "select the next, previous tile"),
    Binding("paint", "mask painter", ("drag",), "paint, erase or fill by the tool"),
    Binding("tools", "mask painter", ("b", "e", "f"), "brush, eraser, fill"),
    Binding("brush-size", "mask painter", ("[", "]"), "smaller, larger brush"),
    Binding("painter-zoom", "mask painter", ("+", "-", "0"), "magnify, shrink, default"),
    Binding("context", "mask painter", ("c",), "show or hide the slice around the tile"),
    Binding("painter-step", "mask painter", ("n", "p"), "next, previous positive tile"),
    Binding("pick-select", "pick viewer", ("click a pick",), "select it"),
    Binding(
        "pick-reject",
        "pick viewer",
        ("Delete", "Backspace"),
        "reject the selected pick, or keep it",
    ),
    Binding("box-select", "box picker", ("click a box",), "select it"),
    Binding(
        "box-deselect", "box picker", ("click empty", "Esc"), "clear the selection, back to select"
    ),
    Binding(
        "box-add-good", "box picker", ("a", "g", "1"), "add mode: a click boxes a good particle"
    ),
    Binding(
        "box-add-background", "box picker", ("b", "2"), "add mode: a click boxes empty background"
    ),
    Binding(
        "box-add-bad",
        "box picker",
        ("x", "3"),
        "add mode: a click boxes something bad (contamination, aggregate)",
    ),
    Binding("box-delete", "box picker", ("Delete", "Backspace"), "remove the selected box"),
)
"""Every binding, in the order the docs and the help overlay list them."""

_KEY_NAMES = {"ArrowUp": "Up", "ArrowDown": "Down", "Escape": "Esc"}
_BROWSER_KEYS = {name: key for key, name in _KEY_NAMES.items()}
_MOUSE_WORDS = {"click", "drag", "wheel"}


def chord(key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> str:
    """One name for a browser key event: the key itself, or ``Ctrl+[Shift+]key`` for a shortcut.

    Cmd (meta) counts as Ctrl, and the key of a shortcut is lower case whatever Shift did to it.
    """
    if ctrl or meta:
        return "Ctrl+" + ("Shift+" if shift else "") + key.lower()
    return key


def _label_chord(label: str) -> str:
    """The ``chord`` a browser key event for the table label ``label`` gets (``"Shift+Z"``:
    ``"Z"``, ``"Esc"``: ``"Escape"``)."""
    ctrl = label.startswith("Ctrl+") and len(label) > 5
    rest = label[5:] if ctrl else label
    shift = rest.startswith("Shift+") and len(rest) > 6
    key = rest[6:] if shift else rest
    key = _BROWSER_KEYS.get(key, key)
    if ctrl:
        return chord(key, shift=shift, ctrl=True)
    return key.upper() if shift else key


_CHORDS = {
    binding.id: frozenset(
        _label_chord(label)
        for label in binding.inputs
        if _MOUSE_WORDS.isdisjoint(label.split())  # "click a tile", "drag": not keys
    )
    for binding in KEYMAP
}


def key_chords(binding_id: str) -> frozenset[str]:
    """The ``chord`` names of a row's keys (its mouse inputs left out).

    >>> sorted(key_chords("redo"))
    ['Ctrl+Shift+z', 'Ctrl+y', 'Z', 'y']
    """
    return _CHORDS[binding_id]


def dispatch(key: str, actions: Mapping[str, Callable[[], object]]) -> bool:
    """Run the action of the row (by id) whose keys include the chord ``key``; True if one did.

    A widget names its rows rather than letters, so its keys are the table's and nowhere else.
    """
    for binding_id, action in actions.items():
        if key in key_chords(binding_id):
            action()
            return True
    return False


UNDO_CHORDS = key_chords("undo")
REDO_CHORDS = key_chords("redo")
DELETE_CHORDS = key_chords("delete")
HELP_CHORD = "?"


def bindings(*scopes: str) -> list[Binding]:
    """The rows of ``scopes`` (plus those of every canvas), in table order."""
    wanted = {"every canvas", *scopes}
    return [binding for binding in KEYMAP if binding.scope in wanted]


def markdown_table(scope: str) -> str:
    """The rows of one scope as the Markdown table ``docs/interaction.md`` holds."""
    lines = ["| input | what it does |", "|---|---|"]
    for binding in KEYMAP:
        if binding.scope == scope:
            keys = " / ".join(f"`{key}`" for key in binding.inputs)
            lines.append(f"| {keys} | {binding.action} |")
    return "\n".join(lines)


class HelpOverlay(widgets.HTML):
    """The key table of a widget, shown over it by ``?`` (hidden until asked for)."""

    def __init__(self, *scopes: str):
        rows = "".join(
            f"<tr><td><b>{html.escape(b.keys_text)}</b></td><td>{html.escape(b.action)}</td></tr>"
            for b in bindings(*scopes)
        )
        super().__init__(
            '<div style="background:#fffbe6;border:1px solid #c9b458;padding:4px 8px">'
            "<b>Keys</b> (click the canvas first; that click edits nothing; ? hides)"
            f'<table style="font-size:90%">{rows}</table></div>',
            layout=widgets.Layout(display="none"),
        )

    @property
    def shown(self) -> bool:
        """Whether the table is visible."""
        return self.layout.display != "none"

    def toggle(self) -> None:
        """Show the table, or hide it when shown."""
        self.layout.display = "none" if self.shown else "block"
