"""WorkflowApp: the tabs are wired to each other and to the library, end to end on a phantom."""

import numpy as np
import pytest

from tomoseg_nb.models import save_model
from tomoseg_nb.segment import FeatureNetwork, segment_array
from tomoseg_nb.train import train_feature
from tomoseg_nb.training_config import TrainingConfig
from tomoseg_nb.volume import open_volume
from tomoseg_nb.widgets._messages import browser_event
from tomoseg_nb.widgets.app import TABS, WorkflowApp
from tomoseg_nb.widgets.monitor import TrainingMonitor
from tomoseg_nb.widgets.painter import MaskPainter
from tomoseg_nb.widgets.prediction import PredictionPanel, SlabPrediction, slab_bounds
from tomoseg_nb.widgets.results import LabelViewer, PickViewer
from tomoseg_nb.widgets.tiles import TilePicker
from tomoseg_nb.widgets.viewer import SliceViewer


def run_now(function):
    function()


@pytest.fixture(scope="module")
def trained(ribosome_project_folder):
    """The phantom project with a tiny ribosome network already trained and saved."""
    model, info = train_feature(
        _open(ribosome_project_folder),
        "ribosome",
        TrainingConfig(arch="tiny", epochs=2, engine="keras", seed=0),
    )
    save_model(model, info, ribosome_project_folder / "models" / "ribosome.keras")
    return ribosome_project_folder


def _open(folder):
    from tomoseg_nb.annotations import Project

    return Project.open(folder, read_only=True)


def test_tabs_are_built_on_first_use(trained):
    app = WorkflowApp.from_folder(trained, schedule=run_now)
    assert app.tab.titles == TABS
    assert isinstance(app.page("Browse"), SliceViewer)
    assert app.tab.children[2].children == ()  # Train not built yet: Keras not needed to browse
    app.tab.selected_index = 2
    column, viewer = app.tab.children[2].children[0].children
    monitor, panel = column.children
    assert isinstance(monitor, TrainingMonitor) and monitor.viewer is viewer
    assert isinstance(panel, PredictionPanel) and panel.viewer is viewer
    app.project.close()


def test_annotate_tab_links_the_tile_picker_and_the_painter(trained):
    app = WorkflowApp.from_folder(trained, schedule=run_now)
    picker, painter = app.page("Annotate").children
    assert isinstance(picker, TilePicker) and isinstance(painter, MaskPainter)
    viewer = picker.viewer  # 128 px slices in a 512 px view: 4 canvas px per voxel
    browser_event(viewer.canvas, "key_down", key="a")
    browser_event(viewer.canvas, "mouse_down", x=4 * 60 + 2, y=4 * 70 + 2)
    browser_event(viewer.canvas, "mouse_up", x=4 * 60 + 2, y=4 * 70 + 2)
    added = app.project.tiles[-1]
    assert (added.z, added.y, added.x, added.positive) == (viewer.z, 70, 60, True)
    assert painter.tile == added  # the new positive tile opens in the painter
    painter.next_tile()
    assert painter.tile != added
    browser_event(viewer.canvas, "mouse_down", x=4 * 62, y=4 * 72)  # a click on it selects it
    browser_event(viewer.canvas, "mouse_up", x=4 * 62, y=4 * 72)
    assert painter.tile == added and app.project.tiles[-1] == added
    labels = dict((v, k) for k, v in picker.tile_list.options)
    assert labels[added.id].endswith("(to paint)")
    browser_event(painter.canvas, "mouse_down", x=100, y=100)
    browser_event(painter.canvas, "mouse_up", x=100, y=100)
    assert app.project.mask(added.id).any()
    labels = dict((v, k) for k, v in picker.tile_list.options)
    assert labels[added.id].endswith("(painted)")  # the list follows the painter
    app.project.close()


def test_apply_merge_and_pick_tabs_run_the_pipeline(trained):
    app = WorkflowApp.from_folder(trained, schedule=run_now)
    apply = app.page("Apply")
    assert apply.models.value == (str(trained / "models" / "ribosome.keras"),)
    apply.engine.value = "keras"
    apply.run_button.click()
    assert apply.task.wait(300) and apply.task.status == "done", apply.status.value
    (segmented,) = apply.task.result
    assert segmented == trained / "results" / "tomo__ribosome.mrc"
    (viewer,) = apply.result_box.children
    assert list(viewer.overlays) == ["ribosome"]

    merge = app.page("Merge")
    merge.refresh()
    merge.threshold.value = 0.3
    merge.run_button.click()
    assert merge.task.wait(300) and merge.task.status == "done", merge.status.value
    (labels,) = merge.result_box.children
    assert isinstance(labels, LabelViewer) and labels.names == {1: "ribosome"}

    pick = app.page("Pick")
    pick.refresh()
    assert pick.map.value == str(segmented)
    pick.threshold.value = 0.3
    pick.run_button.click()
    assert pick.task.wait(300), pick.status.value
    assert pick.task.status == "done", pick.status.value
    (picks_viewer,) = pick.result_box.children
    assert isinstance(picks_viewer, PickViewer)
    assert picks_viewer.export_path.value.endswith("tomo__ribosome.star")
    assert len(pick.task.result) > 0
    assert pick.status.value == f"{len(pick.task.result)} picks"
    app.project.close()


def painter_point(painter, row, column):
    """Canvas (x, y) of the centre of tile pixel (row, column) in the painter."""
    side = painter.magnification
    return {"x": (column + 0.5 + painter.margin) * side, "y": (row + 0.5 + painter.margin) * side}


def painter_drag(painter, start, end):
    browser_event(painter.canvas, "mouse_down", **painter_point(painter, *start))
    browser_event(painter.canvas, "mouse_move", **painter_point(painter, *end))
    browser_event(painter.canvas, "mouse_up", **painter_point(painter, *end))


def saved_mask(project, tile_id):
    with np.load(project.folder / "masks.npz", allow_pickle=False) as archive:
        return archive[tile_id].copy()


def test_a_suggestion_accepted_opens_in_the_painter_with_the_prediction_to_correct(trained):
    """Suggest, Accept +, then eraser and brush on the prefilled mask, undo back to it."""
    app = WorkflowApp.from_folder(trained, schedule=run_now)
    picker, painter = app.page("Annotate").children
    assert picker.suggest_button.disabled  # nothing trained in this app yet
    rng = np.random.default_rng(0)
    slab = rng.uniform(0.2, 0.8, size=(8, 128, 128)).astype(np.float32)  # unsure everywhere
    app._prediction_ready(SlabPrediction("ribosome", slab, 0.5, z_start=4))
    assert picker.predictions["ribosome"][1:] == (0.5, 4) and not picker.suggest_button.disabled
    picker.suggest_button.click()
    shown = picker.state.suggestion
    assert 4 <= shown.z < 12 and picker.viewer.z == shown.z
    before = len(app.project.tiles)
    picker.accept_positive_button.click()
    assert len(app.project.tiles) == before + 1
    tile = app.project.tiles[-1]
    assert (tile.z, tile.y, tile.x, tile.positive) == (shown.z, shown.y, shown.x, True)
    y0, y1, x0, x1 = tile.bounds
    predicted = slab[tile.z - 4, y0:y1, x0:x1] >= 0.5
    assert 0 < predicted.sum() < predicted.size
    # The painter opens the accepted tile, its mask the thresholded prediction (saved as such).
    assert painter.tile == tile
    np.testing.assert_array_equal(painter.state.mask, predicted)
    np.testing.assert_array_equal(saved_mask(app.project, tile.id), predicted)

    # Correct it: erase a band across the middle, brush a band near the top.
    browser_event(painter.canvas, "key_down", key="e")
    painter_drag(painter, (16, 3), (16, 28))
    erased = saved_mask(app.project, tile.id)
    assert not erased[15:18, 3:29].any()
    np.testing.assert_array_equal(erased[:10], predicted[:10])  # far from the stroke: untouched
    browser_event(painter.canvas, "key_down", key="b")
    painter_drag(painter, (4, 3), (4, 28))
    corrected = saved_mask(app.project, tile.id)
    assert corrected[3:6, 3:29].all() and not corrected[15:18, 3:29].any()
    np.testing.assert_array_equal(corrected[24:], predicted[24:])

    # Undo, stroke by stroke, back to the prediction; the tile list says it is painted.
    browser_event(painter.canvas, "key_down", key="z")
    np.testing.assert_array_equal(saved_mask(app.project, tile.id), erased)
    browser_event(painter.canvas, "key_down", key="z")
    np.testing.assert_array_equal(saved_mask(app.project, tile.id), predicted)
    labels = dict((v, k) for k, v in picker.tile_list.options)
    assert labels[tile.id].endswith("(painted)")

    # Undo in the picker takes the accepted tile away; the painter lets go of it.
    browser_event(picker.viewer.canvas, "key_down", key="z")
    assert tile not in app.project.tiles and len(app.project.tiles) == before
    assert painter.tile is None or painter.tile in app.project.tiles
    app.project.close()


def test_a_training_in_the_app_reaches_the_tile_picker_and_retrain_fine_tunes(trained):
    """Train tab -> slab prediction around the slice on show -> Annotate's Suggest tiles."""
    app = WorkflowApp.from_folder(trained, schedule=run_now)
    picker, _ = app.page("Annotate").children
    app.page("Train")
    monitor, panel = app.training_monitor, app.prediction_panel
    panel.slices.value = 8
    z = panel.viewer.z
    # The project has a saved ribosome network: Retrain offers to continue from it; start again.
    assert monitor.start_button.description == "Retrain" and monitor.start_from.value == "continue"
    monitor.start_from.value = "scratch"
    monitor.arch_dropdown.value = "tiny"
    monitor.epochs.value = 3
    monitor.start_button.click()
    assert monitor.run.wait(300) and monitor.run.status == "done", monitor.status.value
    assert monitor.run.info.training["fine_tuned"] is False
    assert panel.task.wait(300) and panel.task.status == "done", panel.status.value
    model, info = monitor.run.model, monitor.run.info
    prediction = app.predictions["ribosome"]
    start, stop = slab_bounds(16, z, 8)
    assert (prediction.z_start, prediction.z_stop) == (start, stop)
    assert prediction.threshold == info.threshold
    with open_volume(app.tomogram) as volume:  # the slab's slices of the whole tomogram's map
        (expected,) = segment_array(
            [FeatureNetwork(model, info)], volume.read(), voxel_size=volume.voxel_size
        )
    assert info.z_context > 0  # the slab's end slices see their real neighbours beyond it
    np.testing.assert_allclose(prediction.probability, expected[start:stop], atol=1e-4)
    probability, threshold, z_start = picker.predictions["ribosome"]
    assert probability is prediction.probability and (threshold, z_start) == (info.threshold, start)

    picker.suggest_button.click()
    shown = picker.state.suggestion
    assert shown is not None and start <= shown.z < stop
    positives = info.training["n_positive"]
    picker.accept_positive_button.click()
    tile = app.project.tiles[-1]
    y0, y1, x0, x1 = tile.bounds
    np.testing.assert_array_equal(
        app.project.mask(tile.id),
        prediction.probability[tile.z - start, y0:y1, x0:x1] >= info.threshold,
    )

    # Retrain: continue from the network just trained, on the grown set of tiles.
    monitor.start_from.value = "continue"
    if not app.project.mask(
        tile.id
    ).any():  # an empty prediction: paint a little, as a person would
        app.mask_painter.show(tile.id)
        painter_drag(app.mask_painter, (16, 10), (16, 20))
    handed = []
    train = monitor.run._train  # see what the run gives the training function

    def recording(*args, **options):
        handed.append(options.get("initial_model"))
        return train(*args, **options)

    monitor.run._train = recording
    monitor.start_button.click()
    assert "from its current network" in monitor.status.value
    assert handed == [model]  # the weights just trained, not the saved file's
    assert monitor.run.wait(300) and monitor.run.status == "done", monitor.status.value
    assert monitor.run.info.training["fine_tuned"] is True
    assert monitor.run.info.training["n_positive"] == positives + 1
    assert panel.task.wait(300) and app.predictions["ribosome"] is not prediction
    app.project.close()
