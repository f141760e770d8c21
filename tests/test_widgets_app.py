"""WorkflowApp: the tabs are wired to each other and to the library, end to end on a phantom."""

import pytest

from tomoseg_nb.models import save_model
from tomoseg_nb.train import train_feature
from tomoseg_nb.training_config import TrainingConfig
from tomoseg_nb.widgets._messages import browser_event
from tomoseg_nb.widgets.app import TABS, WorkflowApp
from tomoseg_nb.widgets.monitor import TrainingMonitor
from tomoseg_nb.widgets.painter import MaskPainter
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
    monitor, viewer = app.tab.children[2].children[0].children
    assert isinstance(monitor, TrainingMonitor) and monitor.viewer is viewer
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
