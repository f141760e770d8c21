"""TrainingRun / TrainingMonitor: background thread, per-epoch updates, cancel, a real tiny run."""

import json
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from tomoseg_nb.errors import CancelledError
from tomoseg_nb.training_config import DEFAULT_TRAINING, TrainingConfig
from tomoseg_nb.widgets.monitor import TrainingMonitor
from tomoseg_nb.widgets.training_state import TrainingRun
from tomoseg_nb.widgets.viewer import SliceViewer


@pytest.fixture(scope="module")
def phantom_project(ribosome_project_folder):
    """The phantom project with ribosome tiles, open for the training runs."""
    from tomoseg_nb.annotations import Project

    project = Project.open(ribosome_project_folder)
    yield project
    project.close()


def fake_training(epochs_ran, release=None):
    """A stand-in for train_feature that drives the Keras callbacks like model.fit does."""

    def train(project, feature, config, *, callbacks, cancel, progress, **options):
        import keras

        epochs = config.epochs_for(fine_tuning=options.get("initial_model") is not None)
        model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(1, 3)])
        for callback in callbacks:
            callback.set_model(model)
        for epoch in range(epochs):
            if release is not None:
                release.wait(5)
            if cancel.is_set():
                raise CancelledError("cancelled")
            progress(epoch + 1, epochs)
            for callback in callbacks:
                callback.on_epoch_end(epoch, {"loss": -1.0 - epoch, "val_loss": -0.5 - epoch})
            epochs_ran.append(epoch)
        return model, type("Info", (), {"threshold": 0.4})()

    return train


def test_run_records_each_epoch_and_finishes_in_its_thread(phantom_project):
    ran = []
    run = TrainingRun(fake_training(ran))
    seen = []
    run.on_epoch(lambda r, model: seen.append((threading.current_thread().name, r.epochs_done)))
    run.start_training(phantom_project, "ribosome", TrainingConfig(epochs=3))
    assert run.wait(30)
    assert run.status == "done" and ran == [0, 1, 2]
    assert run.history == {"loss": [-1.0, -2.0, -3.0], "val_loss": [-0.5, -1.5, -2.5]}
    assert run.batches == (3, 3)
    assert seen == [("tomoseg_nb training ribosome", n) for n in (1, 2, 3)]


def test_a_restarted_fit_shows_its_own_epochs_and_losses(phantom_project):
    """A fine-tune of 2 epochs that collapses restarts from new weights for 4: the run then says
    "epoch n / 4" and plots only the new fit's losses, as model.fit's callbacks tell it."""
    import keras

    seen = []

    def collapsing_fine_tune(project, feature, config, *, callbacks, cancel, progress, **options):
        model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(1, 3)])
        for epochs in (config.fine_tune_epochs, config.epochs):  # the fine-tune, then the restart
            for callback in callbacks:
                callback.set_model(model)
                callback.set_params({"epochs": epochs, "steps": 1, "verbose": 0})
                callback.on_train_begin()
            for epoch in range(epochs):
                for callback in callbacks:
                    callback.on_epoch_end(epoch, {"loss": 10.0 * epochs + epoch})
        return model, SimpleNamespace(threshold=0.4)

    run = TrainingRun(collapsing_fine_tune)
    run.on_epoch(lambda r, model: seen.append((r.epochs_done, r.epochs)))
    config = TrainingConfig(epochs=4, fine_tune_epochs=2)
    run.start_training(phantom_project, "ribosome", config, initial_model=object())
    assert run.wait(30) and run.status == "done"
    assert seen == [(1, 2), (2, 2), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert run.history == {"loss": [40.0, 41.0, 42.0, 43.0]}


def test_cancel_stops_the_run_and_keeps_no_model(phantom_project):
    release = threading.Event()
    ran = []
    run = TrainingRun(fake_training(ran, release))
    monitor = TrainingMonitor(phantom_project, run=run)
    monitor.epochs.value = 50
    monitor.start()
    assert run.running and monitor.cancel_button.disabled is False
    monitor.start()  # a second start while running is refused, not queued
    assert "already" in monitor.status.value
    monitor.cancel_button.click()
    release.set()
    assert run.wait(30)
    assert run.status == "cancelled" and run.model is None and len(ran) < 50
    assert monitor.status.value == "cancelled: no network was kept"
    assert monitor.start_button.disabled is False and monitor.save_button.disabled is True


def test_failure_is_shown_not_lost(phantom_project):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory on the GPU")

    monitor = TrainingMonitor(phantom_project, run=TrainingRun(broken))
    monitor.start()
    assert monitor.run.wait(30)
    assert "Training failed" in monitor.status.value and "out of memory" in monitor.status.value
    # No epoch, no plot: the empty image stays hidden (a browser would draw a broken-image icon).
    assert monitor.loss_plot.layout.display == "none" and monitor.loss_plot.value == b""
    assert monitor.threshold_plot.layout.display == "none"


def test_real_training_updates_loss_preview_and_saves(phantom_project, tmp_path):
    viewer = SliceViewer(phantom_project.tomogram, view_shape=(128, 128))
    monitor = TrainingMonitor(
        phantom_project, viewer=viewer, models_dir=tmp_path, config=TrainingConfig(engine="keras")
    )
    monitor.arch_dropdown.value = "tiny"
    monitor.epochs.value = 2
    monitor.start_button.click()
    assert monitor.run.wait(300), "training did not finish"
    assert monitor.run.status == "done", monitor.status.value
    assert len(monitor.run.history["loss"]) == 2
    assert bytes(monitor.loss_plot.value).startswith(b"\x89PNG")
    assert monitor.loss_plot.layout.display == "block"
    # once done: how the threshold was chosen on the painted tiles
    assert bytes(monitor.threshold_plot.value).startswith(b"\x89PNG")
    assert monitor.threshold_plot.layout.display == "block"
    assert monitor.progress.value == monitor.progress.max > 1
    preview = viewer.overlays["preview ribosome"]
    assert preview.z == viewer.z and preview.source.is_2d
    values = preview.source.slice(0)
    assert values.shape == (128, 128) and 0 <= values.min() and values.max() <= 1
    assert not monitor.save_button.disabled
    monitor.save_button.click()
    assert (tmp_path / "ribosome.keras").exists() and (tmp_path / "ribosome.json").exists()
    # the sidecar records the whole config: the widgets' network and epochs over the given one
    recorded = json.loads((tmp_path / "ribosome.json").read_text())["training"]["config"]
    assert TrainingConfig.from_dict(recorded) == TrainingConfig(
        arch="tiny", epochs=2, engine="keras"
    )
    assert monitor.status.value == f"saved {tmp_path / 'ribosome.keras'}"
    monitor.save_button.click()  # exists: refused unless "overwrite" is ticked
    assert "Not saved" in monitor.status.value


def test_retrain_continues_from_the_current_network_or_starts_again(phantom_project):
    """Once a feature has a network, Train becomes Retrain: fine-tune it or start from scratch."""
    calls = []
    fake = fake_training([])

    configs = []

    def train(project, feature, config, **options):
        calls.append((feature, config.arch, options.get("initial_model")))
        configs.append(config)
        model, _ = fake(project, feature, config, **options)
        fine_tuned = options.get("initial_model") is not None
        return model, SimpleNamespace(
            threshold=0.4, arch=config.arch, training={"fine_tuned": fine_tuned}
        )

    monitor = TrainingMonitor(phantom_project, run=TrainingRun(train), feature="ribosome")
    trained = []
    monitor.on_trained(lambda model, info: trained.append((model, info)))
    assert monitor.start_button.description == "Train"
    assert monitor.start_from.layout.display == "none"  # nothing to continue from yet
    monitor.arch_dropdown.value = "tiny"
    monitor.epochs.value = 1
    monitor.start_button.click()
    assert monitor.run.wait(30) and monitor.run.status == "done"
    first = monitor.run.model
    assert calls[-1] == ("ribosome", "tiny", None)  # a new network
    assert trained == [(first, monitor.run.info)] and monitor.networks["ribosome"][0] is first
    assert monitor.start_button.description == "Retrain"
    assert monitor.start_from.layout.display != "none" and monitor.start_from.value == "continue"
    assert monitor.epochs.value == DEFAULT_TRAINING.fine_tune_epochs  # a fine-tune's epochs

    monitor.arch_dropdown.value = "fast"  # fine-tuning keeps the current network's architecture
    monitor.epochs.value = 2
    monitor.start_button.click()
    assert monitor.run.wait(30) and monitor.run.status == "done"
    assert calls[-1] == ("ribosome", "tiny", first)  # continued from the current weights
    assert configs[-1].fine_tune_epochs == 2 and monitor.run.epochs_done == 2
    assert "fine-tuned" in monitor.status.value and monitor.arch_dropdown.value == "tiny"
    assert monitor.epochs.value == 2  # the person's number stays while the choice does
    second = monitor.run.model
    assert second is not first and monitor.networks["ribosome"][0] is second

    monitor.start_from.value = "scratch"
    assert monitor.epochs.value == DEFAULT_TRAINING.epochs  # a new network's epochs
    monitor.epochs.value = 3
    monitor.start_button.click()
    assert monitor.run.wait(30) and monitor.run.status == "done"
    assert calls[-1] == ("ribosome", "tiny", None)  # started again
    assert configs[-1].epochs == 3 and monitor.run.epochs_done == 3
    assert len(trained) == 3


def test_retrain_offers_the_saved_network_of_the_feature(phantom_project, tmp_path):
    """A network saved as <models>/<feature>.keras (an earlier session) can be fine-tuned."""
    from tomoseg_nb.models import ModelInfo, build_model, save_model
    from tomoseg_nb.preprocess import Recipe

    calls = []
    fake = fake_training([])

    def train(project, feature, config, **options):
        calls.append((config.arch, options.get("initial_model")))
        model, _ = fake(project, feature, config, **options)
        return model, SimpleNamespace(threshold=0.4, arch=config.arch, training={})

    saved = build_model("tiny", seed=3)
    info = ModelInfo(
        feature="ribosome", arch="tiny", voxel_size=10.0, recipe=Recipe().to_dict(), threshold=0.5
    )
    save_model(saved, info, tmp_path / "ribosome.keras")
    monitor = TrainingMonitor(
        phantom_project, run=TrainingRun(train), feature="ribosome", models_dir=tmp_path
    )
    assert monitor.start_button.description == "Retrain" and monitor.has_network("ribosome")
    monitor.arch_dropdown.value = "fast"
    monitor.start_button.click()
    assert "from the saved ribosome.keras" in monitor.status.value
    assert monitor.run.wait(30) and monitor.run.status == "done"
    arch, initial = calls[-1]
    assert arch == "tiny" and initial is not None and initial is not saved  # loaded from the file
    for loaded, original in zip(initial.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, original)

    (tmp_path / "ribosome.keras").rename(tmp_path / "ribosome.keras.bak")
    (tmp_path / "ribosome.json").write_text("{}")  # a sidecar without its network
    other = TrainingMonitor(phantom_project, run=TrainingRun(train), models_dir=tmp_path)
    assert other.start_button.description == "Train"  # nothing saved for this feature


def test_preview_of_a_z_context_network_sees_the_neighbouring_slices(phantom_project, tmp_path):
    viewer = SliceViewer(phantom_project.tomogram, view_shape=(128, 128))
    config = TrainingConfig(engine="keras", arch="tiny", epochs=1, z_context=1)
    monitor = TrainingMonitor(phantom_project, viewer=viewer, models_dir=tmp_path, config=config)
    monitor.arch_dropdown.value, monitor.epochs.value = "tiny", 1
    viewer.go_to(0, 64, 64)  # the first slice: its missing neighbour is mirrored
    monitor.start()
    assert monitor.run.wait(300) and monitor.run.status == "done", monitor.status.value
    assert monitor.run.info.z_context == 1
    preview = viewer.overlays["preview ribosome"]  # drawn: no "no preview" on the way
    assert preview.z == 0 and preview.source.slice(0).shape == (128, 128)
