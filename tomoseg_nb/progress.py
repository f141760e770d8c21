"""Progress reporting shared by every long operation: a tqdm bar plus an optional callback.

Widgets pass a callback to drive their own progress bar; the CLI and notebooks get ``tqdm.auto``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{unit} [{elapsed}, {remaining} left]"
)
"""tqdm's layout with the count, total and time left always shown, whatever the width."""

ProgressCallback = Callable[[int, int], None]
"""Called as ``callback(done, total)`` after each unit of work."""


def bars_enabled() -> bool:
    """False when ``TOMOSEG_NB_PROGRESS=0`` (quiet logs in CI and batch jobs)."""
    return os.environ.get("TOMOSEG_NB_PROGRESS", "1") != "0"


@contextmanager
def progress_bar(
    total: int,
    description: str,
    callback: ProgressCallback | None = None,
    *,
    unit: str = "it",
    show: bool | None = None,
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; each call moves a tqdm bar and calls ``callback(done, total)``.

    ``description`` names the work and what it works on ("training membrane (fast)"); the bar
    adds the count of ``unit`` done, the total, and the time left.
    """
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        desc=description,
        unit=f" {unit}",
        bar_format=BAR_FORMAT,
        disable=not (bars_enabled() if show is None else show),
        leave=False,
    )
    done = 0

    def advance(n: int = 1) -> None:
        nonlocal done
        done += n
        bar.update(n)
        if callback is not None:
            callback(done, total)

    try:
        yield advance
    finally:
        bar.close()
