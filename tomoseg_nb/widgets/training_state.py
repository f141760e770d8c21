"""A training run in a background thread: a ``BackgroundTask`` that also records every epoch.

The Keras callback it adds to ``train.train_feature`` starts ``history`` afresh at every fit (a
collapsed training restarts), appends each epoch's losses to it and calls the ``on_epoch``
listeners (in the training thread) with the network as it is then, so the monitor can plot the
loss and preview the half-trained network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..training_config import DEFAULT_TRAINING, TrainingConfig
from .task_state import BackgroundTask

EpochListener = Callable[["TrainingRun", Any], None]


def _train_feature(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    from ..train import train_feature

    return train_feature(*args, **kwargs)


class TrainingRun(BackgroundTask):
    """One feature's training, started with ``start`` and stopped with ``cancel``.

    Parameters
    ----------
    train : callable, optional
        ``train(project, feature, config, *, callbacks, cancel, progress, **options) ->
        (model, info)``; default ``tomoseg_nb.train.train_feature``.

    Attributes
    ----------
    history : dict
        ``loss`` (and ``val_loss``) of every finished epoch.
    model, info
        The trained network and its ``ModelInfo`` once ``status == "done"``.
    """

    def __init__(self, train: Callable[..., tuple[Any, Any]] | None = None):
        super().__init__()
        self._train = train or _train_feature
        self.feature: str | None = None
        self.epochs = 0
        self.history: dict[str, list[float]] = {}
        self._epoch_listeners: list[EpochListener] = []

    @property
    def model(self) -> Any:
        return self.result[0] if self.status == "done" else None

    @property
    def info(self) -> Any:
        return self.result[1] if self.status == "done" else None

    @property
    def batches(self) -> tuple[int, int]:
        """Batches done and in total."""
        return self.progress

    @property
    def epochs_done(self) -> int:
        return len(self.history.get("loss", []))

    def on_epoch(self, listener: EpochListener) -> None:
        """``listener(run, model)`` after every epoch (training thread; the model mid-training)."""
        self._epoch_listeners.append(listener)

    def start_training(
        self,
        project: Any,
        feature: str,
        config: TrainingConfig = DEFAULT_TRAINING,
        *,
        callbacks: Sequence[Any] = (),
        **options: Any,
    ) -> None:
        """Train ``feature`` of ``project`` with ``config`` in a background thread; returns at once.

        ``options`` go to the training function too (``volume``).
        """
        if not self.running:
            epochs = config.epochs_for(fine_tuning=options.get("initial_model") is not None)
            self.feature, self.epochs, self.history = feature, epochs, {}
        super().start(
            self._train,
            project,
            feature,
            config,
            callbacks=[*callbacks, _epoch_callback(self)],
            name=f"tomoseg_nb training {feature}",
            **options,
        )

    def fit_began(self, epochs: int | None) -> None:
        """A fit began: its epochs and losses are the ones shown. A training that collapsed starts
        again from new weights, for the full epochs even where a fine-tune had fewer, and the
        curve of the abandoned fit would only mislead."""
        if epochs:
            self.epochs = int(epochs)
        self.history = {}

    def epoch_ended(self, logs: dict[str, float], model: Any) -> None:
        """Record one epoch's losses and tell the listeners (called by the Keras callback)."""
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        for listener in self._epoch_listeners:
            listener(self, model)


def _epoch_callback(run: TrainingRun) -> Any:
    import keras

    class EpochEnded(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            run.fit_began(self.params.get("epochs"))

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            run.epoch_ended(dict(logs or {}), self.model)

    return EpochEnded()
