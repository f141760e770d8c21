"""Progress reporting shared by every long operation: a tqdm bar plus an optional callback.

Widgets pass a callback to drive their own progress bar; the CLI and notebooks get ``tqdm.auto``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
    show: bool | None = None,
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; each call moves a tqdm bar and calls ``callback(done, total)``."""
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        desc=description,
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
