"""MaskPainter: mouse strokes through the canvas events land in the project's masks.npz."""

import numpy as np
import pytest

from tomoseg_nb.annotations import Project
from tomoseg_nb.volume import write_volume
from tomoseg_nb.widgets._messages import browser_event, record_canvas_traffic
from tomoseg_nb.widgets.painter import MaskPainter

MAGNIFICATION = 8  # 32 px tiles on a 256 px canvas


@pytest.fixture(scope="module")
def tomogram(tmp_path_factory):
    data = np.random.default_rng(5).normal(size=(6, 96, 96)).astype(np.float32)
    return data, write_volume(tmp_path_factory.mktemp("tomo") / "tomo.mrc", data, voxel_size=8.0)


@pytest.fixture
def project(tmp_path, tomogram):
    project = Project.create(tmp_path / "project", tomogram=tomogram[1])
    project.add_feature("membrane", tile_size=32)
    project.add_tile("membrane", 2, 40, 40)
    project.add_tile("membrane", 3, 50, 60, positive=False)
    project.add_tile("membrane", 4, 60, 50)
    yield project
    project.close()


def saved_mask(project, tile_id):
    with np.load(project.folder / "masks.npz", allow_pickle=False) as archive:
        return archive[tile_id].copy() if tile_id in archive.files else None


def canvas_point(row, column):
    """Canvas (x, y) of the centre of mask pixel (row, column)."""
    return {"x": (column + 0.5) * MAGNIFICATION, "y": (row + 0.5) * MAGNIFICATION}


def drag(painter, points):
    browser_event(painter.canvas, "mouse_down", **canvas_point(*points[0]))
    for point in points[1:]:
        browser_event(painter.canvas, "mouse_move", **canvas_point(*point))
    browser_event(painter.canvas, "mouse_up", **canvas_point(*points[-1]))


def test_shows_positive_tiles_magnified(project, tomogram):
    with record_canvas_traffic() as traffic:
        painter = MaskPainter(project, canvas_px=256)
    first = project.tiles[0]
    assert painter.tile == first and painter.magnification == MAGNIFICATION
    assert (painter.canvas.width, painter.canvas.height) == (256, 256)
    assert [8.0, 0, 0, 8.0, 0.0, 0.0] in traffic.named("setTransform")
    tile_image = traffic.decoded()[-1]
    assert tile_image.shape == (32, 32)
    # Same pixels as the tomogram block (contrast-stretched: order preserved).
    block = tomogram[0][2, 24:56, 24:56]
    assert np.corrcoef(tile_image.ravel(), block.ravel())[0, 1] > 0.95
    assert "tile 1 / 2" in painter.tile_label.value


def test_stroke_is_painted_exactly_and_saved_at_once(project):
    painter = MaskPainter(project, canvas_px=256, brush_radius=0.5)
    tile = painter.tile
    drag(painter, [(10, 4), (10, 9), (10, 17), (10, 24)])
    expected = np.zeros((32, 32), bool)
    expected[10, 4:25] = True
    np.testing.assert_array_equal(saved_mask(project, tile.id), expected)
    np.testing.assert_array_equal(project.mask(tile.id), expected)
    assert painter.status.value == "saved: 21 px painted"

    # Undo (key z) restores the empty mask on disk; redo (key y) brings the stroke back.
    browser_event(painter.canvas, "key_down", key="z")
    assert not saved_mask(project, tile.id).any()
    browser_event(painter.canvas, "key_down", key="y")
    np.testing.assert_array_equal(saved_mask(project, tile.id), expected)

    # Eraser across the middle of the stroke, with a wider brush.
    browser_event(painter.canvas, "key_down", key="e")
    painter.brush_slider.value = 1.5
    drag(painter, [(5, 12), (15, 12)])
    expected[10, 11:14] = False
    np.testing.assert_array_equal(saved_mask(project, tile.id), expected)


def test_stroke_leaving_the_canvas_ends_and_is_saved(project):
    painter = MaskPainter(project, canvas_px=256, brush_radius=0.5)
    browser_event(painter.canvas, "mouse_down", **canvas_point(3, 30))
    browser_event(painter.canvas, "mouse_move", **canvas_point(3, 31))
    browser_event(painter.canvas, "mouse_out", x=256.5, y=3.5 * MAGNIFICATION)
    saved = saved_mask(project, painter.tile.id)
    assert saved[3, 30:].all() and saved.sum() == 2
    assert not painter.state.stroking


def test_fill_clear_and_tile_navigation(project):
    painter = MaskPainter(project, canvas_px=256, brush_radius=0.5)
    first, second = project.tiles_of("membrane", positive=True)
    outline = [(4, 4), (4, 12), (12, 12), (12, 4), (4, 4)]
    drag(painter, outline)
    browser_event(painter.canvas, "key_down", key="f")
    drag(painter, [(8, 8)])
    saved = saved_mask(project, first.id)
    assert saved[4:13, 4:13].all() and saved.sum() == 81

    browser_event(painter.canvas, "key_down", key="n")
    assert painter.tile == second and "tile 2 / 2" in painter.tile_label.value
    assert painter.state.mode == "fill"
    browser_event(painter.canvas, "key_down", key="b")
    drag(painter, [(0, 0)])
    assert saved_mask(project, second.id).sum() == 1
    browser_event(painter.canvas, "key_down", key="n")  # wraps round
    assert painter.tile == first
    painter.clear_button.click()
    assert not saved_mask(project, first.id).any()
    painter.undo_button.click()
    assert saved_mask(project, first.id).sum() == 81


def test_brush_keys_and_missing_tiles(project, tomogram, tmp_path):
    painter = MaskPainter(project, canvas_px=256, brush_radius=2)
    browser_event(painter.canvas, "key_down", key="]")
    assert painter.state.brush_radius == 3 and painter.brush_slider.value == 3
    with record_canvas_traffic() as traffic:
        browser_event(painter.canvas, "mouse_move", x=100, y=100)
    assert traffic.named("strokeCircle") == [[100, 100, 3 * MAGNIFICATION]]
    painter.show(project.tiles_of("membrane", positive=False)[0].id)
    assert painter.tile is None and painter.state is None  # negative tiles are not painted
    drag(painter, [(1, 1)])  # ignored, no error
    with Project.create(tmp_path / "empty", tomogram=tomogram[1]) as empty:
        assert "no feature yet" in MaskPainter(empty).tile_label.value


def test_ctrl_z_and_z_undo_shift_z_redoes_as_in_the_tile_picker(project):
    painter = MaskPainter(project, canvas_px=256, brush_radius=0.5)
    tile = painter.tile
    drag(painter, [(2, 2), (2, 6)])
    drag(painter, [(8, 2), (8, 6)])
    browser_event(painter.canvas, "key_down", key="z", ctrl_key=True)
    assert saved_mask(project, tile.id)[8].sum() == 0 and saved_mask(project, tile.id).sum() == 5
    browser_event(painter.canvas, "key_down", key="z")
    assert not saved_mask(project, tile.id).any()
    browser_event(painter.canvas, "key_down", key="Z", shift_key=True)
    assert saved_mask(project, tile.id).sum() == 5
    browser_event(painter.canvas, "key_down", key="y", ctrl_key=True)
    assert saved_mask(project, tile.id).sum() == 10
    # Arrow keys no longer step tiles (up/down change slices in the viewer beside it).
    browser_event(painter.canvas, "key_down", key="ArrowDown")
    assert painter.tile == tile
    browser_event(painter.canvas, "key_down", key="p")  # previous, wrapping round
    assert painter.tile == project.tiles_of("membrane", positive=True)[1]


def test_context_shows_the_slice_around_the_tile_and_strokes_stay_on_the_tile(project, tomogram):
    painter = MaskPainter(project, canvas_px=256, brush_radius=0.5)
    tile = painter.tile  # 32 px at z 2, centred (40, 40): rows and columns 24-55
    with record_canvas_traffic() as traffic:
        browser_event(painter.canvas, "key_down", key="c")
    # 8 px of slice on each side: 48 px shown, at the largest magnification that fits 256 px.
    assert painter.context_checkbox.value and painter.margin == 8
    assert painter.magnification == 4 and (painter.canvas.width, painter.canvas.height) == (
        192,
        192,
    )
    shown = traffic.decoded()[0]
    assert shown.shape == (48, 48)
    block = tomogram[0][2, 16:64, 16:64]
    assert np.corrcoef(shown.ravel(), block.ravel())[0, 1] > 0.95
    assert traffic.named("strokeRect")[-1] == [32.0, 32.0, 128.0, 128.0]  # the tile's edge
    # Canvas (x, y) of mask pixel (row, column): ((column + 8 + 0.5) * 4, (row + 8 + 0.5) * 4).
    browser_event(painter.canvas, "mouse_down", x=(3 + 8.5) * 4, y=(5 + 8.5) * 4)
    browser_event(painter.canvas, "mouse_move", x=(-4 + 8.5) * 4, y=(5 + 8.5) * 4)  # into context
    browser_event(painter.canvas, "mouse_up", x=(-4 + 8.5) * 4, y=(5 + 8.5) * 4)
    expected = np.zeros((32, 32), bool)
    expected[5, 0:4] = True
    np.testing.assert_array_equal(saved_mask(project, tile.id), expected)


def test_zoom_keys_change_the_magnification_and_0_resets_it(project):
    painter = MaskPainter(project, canvas_px=256, brush_radius=0.5)
    browser_event(painter.canvas, "key_down", key="+")
    assert painter.magnification == 12 and painter.canvas.width == 32 * 12
    browser_event(painter.canvas, "key_down", key="-")
    browser_event(painter.canvas, "key_down", key="-")
    assert painter.magnification == 6 and painter.canvas.width == 32 * 6
    browser_event(painter.canvas, "mouse_down", x=6 * 3.5, y=6 * 1.5)  # mask pixel (1, 3)
    browser_event(painter.canvas, "mouse_up", x=6 * 3.5, y=6 * 1.5)
    assert np.argwhere(saved_mask(project, painter.tile.id)).tolist() == [[1, 3]]
    painter.zoom_in_button.click()
    browser_event(painter.canvas, "key_down", key="0")
    assert painter.magnification == MAGNIFICATION and painter.zoom_steps == 0


def test_painter_of_a_closed_project_refuses_strokes_with_a_visible_message(project):
    painter = MaskPainter(project, canvas_px=256, brush_radius=0.5)
    drag(painter, [(1, 1)])
    before = saved_mask(project, painter.tile.id).copy()
    project.close()
    drag(painter, [(4, 4), (4, 9)])
    assert "Not painted:" in painter.status.value and "project was closed" in painter.status.value
    assert not painter.state.mask[4].any()
    browser_event(painter.canvas, "key_down", key="z")
    painter.clear_button.click()
    np.testing.assert_array_equal(saved_mask(project, painter.tile.id), before)
    np.testing.assert_array_equal(painter.state.mask, before)


def test_question_mark_shows_the_painter_keys(project):
    painter = MaskPainter(project, canvas_px=256)
    browser_event(painter.canvas, "key_down", key="?", shift_key=True)
    assert painter.help.shown and "brush, eraser, fill" in painter.help.value
    assert "Ctrl+Z / z" in painter.help.value
    painter.help_button.click()
    assert not painter.help.shown
