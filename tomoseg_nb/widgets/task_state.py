"""A library call running in a background thread: status, progress, cancel, result or error.

Segmenting, merging and training take minutes; run in a thread they leave the notebook usable.
Listeners registered with ``on_progress`` / ``on_finish`` are called *in that thread*; widgets
hand them on to the notebook's own thread (``monitor.notebook_scheduler``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import BadInputError, CancelledError

STATUSES = ("idle", "running", "done", "cancelled", "failed")

Task = TypeVar("Task", bound="BackgroundTask")
"""The task's own class: a ``TrainingRun``'s listeners receive the ``TrainingRun``."""


class BackgroundTask:
    """Run ``function(*args, **kwargs)`` in a thread, once at a time.

    Attributes
    ----------
    status : str
        ``"idle"``, ``"running"``, ``"done"``, ``"cancelled"`` or ``"failed"``.
    progress : (int, int)
        Units done and in total, as the function reported them.
    result
        What the function returned, once done.
    error : Exception or None
        Why it failed.
    """

    def __init__(self) -> None:
        self.status = "idle"
        self.progress = (0, 0)
        self.result: Any = None
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress_listeners: list[Callable[[Any], None]] = []
        self._finish_listeners: list[Callable[[Any], None]] = []

    @property
    def running(self) -> bool:
        return self.status == "running"

    def on_progress(self: Task, listener: Callable[[Task], None]) -> None:
        """``listener(task)`` after every progress report (background thread)."""
        self._progress_listeners.append(listener)

    def on_finish(self: Task, listener: Callable[[Task], None]) -> None:
        """``listener(task)`` when the call ends, whatever the outcome (background thread)."""
        self._finish_listeners.append(listener)

    def start(
        self,
        function: Callable[..., Any],
        *args: Any,
        progress_keyword: str | None = "progress",
        cancel_keyword: str | None = "cancel",
        name: str = "tomoseg_nb task",
        **kwargs: Any,
    ) -> None:
        """Call ``function`` in a new thread and return at once.

        The task's progress callback and cancel event are passed as ``progress_keyword`` and
        ``cancel_keyword`` (None: not passed, for functions without them).
        """
        if self.running:
            raise BadInputError("a task is already running; cancel it or wait for it")
        self.status, self.progress, self.result, self.error = "running", (0, 0), None, None
        self._cancel = threading.Event()
        if progress_keyword is not None:
            kwargs[progress_keyword] = self.report_progress
        if cancel_keyword is not None:
            kwargs[cancel_keyword] = self._cancel
        self._thread = threading.Thread(
            target=self._run, args=(function, args, kwargs), name=name, daemon=True
        )
        self._thread.start()

    def cancel(self) -> None:
        """Ask the call to stop at its next check (nothing half-written is kept)."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the call ends (scripts, tests); True if it ended within ``timeout``."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def report_progress(self, done: int, total: int) -> None:
        """The progress callback handed to the function."""
        self.progress = (done, total)
        for listener in self._progress_listeners:
            listener(self)

    def _run(self, function: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> None:
        try:
            self.result = function(*args, **kwargs)
            self.status = "done"
        except CancelledError:
            self.status = "cancelled"
        except Exception as error:  # shown by the widget; a thread must not lose it silently
            self.error = error
            self.status = "failed"
        finally:
            for listener in self._finish_listeners:
                listener(self)
