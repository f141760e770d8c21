"""A widget state's mode: one of a fixed set of names, a misspelt one refused when it is set."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import BadInputError


class Choice:
    """Descriptor for an attribute that holds one of ``choices`` (kept in ``_<name>``).

    The painter, the tile picker and the box picker each have a mode a key or a button sets; a
    wrong value must fail where it is set, with the choices in the message, not later in a click.
    """

    def __init__(self, choices: Sequence[str], what: str) -> None:
        self.choices = tuple(choices)
        self.what = what

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = f"_{name}"

    def __get__(self, instance: object, owner: type | None = None) -> str:
        if instance is None:
            return self  # type: ignore[return-value]  # the descriptor itself, for help()
        return getattr(instance, self.attribute)

    def __set__(self, instance: object, value: str) -> None:
        if value not in self.choices:
            raise BadInputError(f"{self.what} {value!r}: use one of {', '.join(self.choices)}")
        setattr(instance, self.attribute, value)
