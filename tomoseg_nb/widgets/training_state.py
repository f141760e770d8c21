"""A training run in a background thread: status, loss per epoch, progress, cancel, result.

The kernel stays free while a network trains (you can keep painting), so this object is shared
between the training thread, which calls ``train.train_feature`` with a Keras callback, and the
widgets, which read it. Listeners registered with ``on_epoch``/``on_progress``/``on_finish`` are
called *in the training thread*; the monitor hands them on to the notebook's own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..errors import BadInputError, CancelledError

STATUSES = ("idle", "running", "done", "cancelled", "failed")

EpochListener = Callable[["TrainingRun", Any], None]
Listener = Callable[["TrainingRun"], None]


def _train_feature(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    from ..train import train_feature

    return train_feature(*args, **kwargs)


class TrainingRun:
    """One feature's training, started with ``start`` and stopped with ``cancel``.

    Parameters
    ----------
    train : callable, optional
        ``train(project, feature, *, epochs, callbacks, cancel, progress, **options) ->
        (model, info)``; default ``tomoseg_nb.train.train_feature``.

    Attributes
    ----------
    status : str
        ``"idle"``, ``"running"``, ``"done"``, ``"cancelled"`` or ``"failed"``.
    history : dict
        ``loss`` (and ``val_loss``) of every finished epoch.
    batches : (int, int)
        Batches done and in total, from the progress callback.
    model, info
        The trained network and its ``ModelInfo`` once ``status == "done"``.
    error : Exception or None
        Why it failed.
    """

    def __init__(self, train: Callable[..., tuple[Any, Any]] | None = None):
        self._train = train or _train_feature
        self.status = "idle"
        self.feature: str | None = None
        self.epochs = 0
        self.history: dict[str, list[float]] = {}
        self.batches = (0, 0)
        self.model: Any = None
        self.info: Any = None
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._epoch_listeners: list[EpochListener] = []
        self._progress_listeners: list[Listener] = []
        self._finish_listeners: list[Listener] = []

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def epochs_done(self) -> int:
        return len(self.history.get("loss", []))

    def on_epoch(self, listener: EpochListener) -> None:
        """``listener(run, model)`` after every epoch (training thread; the model mid-training)."""
        self._epoch_listeners.append(listener)

    def on_progress(self, listener: Listener) -> None:
        """``listener(run)`` after every batch (training thread)."""
        self._progress_listeners.append(listener)

    def on_finish(self, listener: Listener) -> None:
        """``listener(run)`` when the run ends, whatever the outcome (training thread)."""
        self._finish_listeners.append(listener)

    def start(self, project: Any, feature: str, *, epochs: int = 20, **options: Any) -> None:
        """Train ``feature`` of ``project`` in a background thread; returns at once.

        ``options`` go to the training function (``arch``, ``seed``, ``engine``, ``volume``...).
        """
        if self.running:
            raise BadInputError("a training run is already going; cancel it or wait for it")
        self.status, self.feature, self.epochs = "running", feature, int(epochs)
        self.history, self.batches = {}, (0, 0)
        self.model = self.info = self.error = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(
            target=self._run,
            args=(project, feature, options),
            name=f"tomoseg_nb training {feature}",
            daemon=True,
        )
        self._thread.start()

    def cancel(self) -> None:
        """Ask the run to stop after the current batch (no model is kept)."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (tests, scripts); True if it ended within ``timeout``."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self, project: Any, feature: str, options: dict[str, Any]) -> None:
        try:
            self.model, self.info = self._train(
                project,
                feature,
                epochs=self.epochs,
                callbacks=[*options.pop("callbacks", ()), _epoch_callback(self)],
                cancel=self._cancel,
                progress=self._progress,
                **options,
            )
            self.status = "done"
        except CancelledError:
            self.status = "cancelled"
        except Exception as error:  # shown in the monitor; the kernel must not lose it silently
            self.error = error
            self.status = "failed"
        finally:
            for listener in self._finish_listeners:
                listener(self)

    def _progress(self, done: int, total: int) -> None:
        self.batches = (done, total)
        for listener in self._progress_listeners:
            listener(self)

    def epoch_ended(self, logs: dict[str, float], model: Any) -> None:
        """Record one epoch's losses and tell the listeners (called by the Keras callback)."""
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        for listener in self._epoch_listeners:
            listener(self, model)


def _epoch_callback(run: TrainingRun) -> Any:
    import keras

    class EpochEnded(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            run.epoch_ended(dict(logs or {}), self.model)

    return EpochEnded()
