"""Real browser: JupyterLab in Debian's chromium; select a tile, side views, paint, undo, delete;
and one correction-round suggestion: Suggest tiles, Accept +, the tile added with its mask.

Starts JupyterLab on loopback (free port, random token, a temporary root holding
``paint_a_tile.ipynb``) and runs the notebook through the JupyterLab UI. Then, with the mouse and
keys: clicks the second tile on the tile picker's slice (which selects it; the painter follows),
hovers the slice and reads back the exact pixels of the XZ and YZ side views, drags across the
mask painter's canvas and checks that ``project/masks.npz`` changed exactly along the stroke,
presses ``z`` (the undo key of every canvas widget) and checks the mask is empty on disk again,
and finally selects the tile again, removes it with Delete and brings it back with Ctrl+Z. The
second test clicks *Suggest tiles* and *Accept +* and checks the tile that lands in
``project/project.json`` (where the notebook's made-up prediction is unsure) and its mask (the
thresholded prediction) in ``masks.npz``, and that the tile list and the painter show it.
Screenshots go to ``test-artifacts/``. Needs ``apt-get install -y chromium`` (no browser
download is possible here); without it the test fails saying so.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
NOTEBOOK = Path(__file__).with_name("paint_a_tile.ipynb")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
MAGNIFICATION = 8  # the notebook paints 32 px tiles on a 256 px canvas
SLICE_SCALE = 2  # and shows 96 px slices of 8 slices in a 192 px view
SECOND_TILE = (64, 64)  # centre (y, x) of the tile the test selects
CURSOR = (30, 40)  # voxel (y, x) the test hovers: the side views cut through it
# Where the sections land in the 160 px deep side views (current slice 4 in the middle, at 80 px):
# XZ is canvas rows 71-86 and every column, YZ every row and columns 71-86 (x, y, width, height).
XZ_BLOCK, YZ_BLOCK = (0, 71, 192, 16), (71, 0, 16, 192)
STROKE_ROW, STROKE_COLUMNS = 16, (4, 28)
BRUSH_RADIUS = 1.5
STARTUP_S = 180
SAVE_WAIT_S = 60
LAB_SETTINGS = {
    # Start the notebook's kernel without asking, and no news pop-up over the page.
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on loopback serving a temporary root with the helper notebook."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port, token = free_port(), secrets.token_hex(16)
    home = tmp_path / "jupyter"
    for plugin, settings in LAB_SETTINGS.items():
        path = home / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
        "TOMOSEG_NB_PROGRESS": "0",
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.allow_root=True",  # CI containers run as root
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = open(tmp_path / "jupyterlab.log", "wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start within {STARTUP_S} s")
                time.sleep(0.5)
        yield url, token, root
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def chromium() -> Path:
    """Debian's chromium; checked first so a missing browser fails at once, saying what to do."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the browser test needs Debian's chromium; install it with "
            "`apt-get install -y chromium` (Playwright's own browser download is not used)"
        )
    return CHROMIUM


def saved_mask(root: Path, index: int) -> tuple[str, np.ndarray | None] | None:
    """The id and saved mask (None while unpainted) of the notebook's tile ``index``, or None
    before the project exists."""
    project = root / "project"
    try:
        tile_id = json.loads((project / "project.json").read_text())["tiles"][index]["id"]
        if not (project / "masks.npz").exists():
            return tile_id, None
        with np.load(project / "masks.npz", allow_pickle=False) as archive:
            return tile_id, archive[tile_id].copy() if tile_id in archive.files else None
    except (OSError, ValueError, KeyError, IndexError):
        return None


def wait_for(condition, what: str, timeout_s: float = SAVE_WAIT_S):
    """Poll ``condition()`` until it returns something true; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"{what} within {timeout_s} s")


RED_AND_ALPHA = """(canvas, [x, y, width, height]) => {
    const data = canvas.getContext("2d").getImageData(x, y, width, height).data;
    const red = [], alpha = [];
    for (let i = 0; i < data.length; i += 4) { red.push(data[i]); alpha.push(data[i + 3]); }
    return [red, alpha];
}"""


def expected_sections(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The XZ and YZ sections through ``CURSOR`` as the viewer draws them, 2 canvas px a voxel."""
    from tomoseg_nb.volume import open_volume
    from tomoseg_nb.widgets._render import auto_contrast, to_uint8

    with open_volume(root / "phantom.mrc") as volume:
        data = np.asarray(volume.data, dtype=np.float32)
    low, high = auto_contrast(data[4])
    y, x = CURSOR
    xz, yz = to_uint8(data[:, y, :], low, high), to_uint8(data[:, :, x].T, low, high)
    return tuple(np.repeat(np.repeat(a, SLICE_SCALE, 0), SLICE_SCALE, 1) for a in (xz, yz))


def read_block(canvas, block) -> tuple[np.ndarray, np.ndarray]:
    """Red channel and alpha of a canvas rectangle, as ``(height, width)`` arrays."""
    red, alpha = canvas.evaluate(RED_AND_ALPHA, list(block))
    shape = (block[3], block[2])
    return np.reshape(red, shape), np.reshape(alpha, shape)


def run_notebook(page, url: str, token: str) -> None:
    """Open the helper notebook in JupyterLab, Run All, and wait until its widgets are drawn."""
    page.set_default_timeout(STARTUP_S * 1000)
    page.goto(f"{url}/lab/tree/{NOTEBOOK.name}?token={token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    choose_kernel = page.locator(".jp-Dialog .jp-mod-accept")
    kernel_idle = page.get_by_text("| Idle")
    # Should JupyterLab still ask which kernel to start, take the default.
    kernel_idle.or_(choose_kernel).first.wait_for()
    if choose_kernel.is_visible():
        choose_kernel.click()
    kernel_idle.first.wait_for()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator("[data-command='runmenu:run-all']").click()
    page.locator("canvas.tomoseg-slice").wait_for(state="visible")
    page.get_by_text("tile 1 / 2").first.wait_for()
    time.sleep(1.0)  # let the first images arrive before clicking over them


def test_select_paint_undo_and_side_views_in_jupyterlab(chromium, jupyterlab):
    from playwright.sync_api import sync_playwright

    url, token, root = jupyterlab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        try:
            run_notebook(page, url, token)
            slice_canvas = page.locator("canvas.tomoseg-slice")

            # Select the second tile by clicking it on the slice: the painter follows.
            slice_canvas.scroll_into_view_if_needed()
            box = slice_canvas.bounding_box()
            assert box is not None and box["width"] == pytest.approx(192, abs=1)
            y, x = SECOND_TILE
            page.mouse.click(box["x"] + (x + 0.5) * SLICE_SCALE, box["y"] + (y + 0.5) * SLICE_SCALE)
            page.get_by_text("tile 2 / 2").first.wait_for()
            assert json.loads((root / "project" / "project.json").read_text())["tiles"][1:] != []
            assert len(json.loads((root / "project" / "project.json").read_text())["tiles"]) == 2

            # Hover the slice: the side views cut through the pointer.
            time.sleep(0.3)  # side views follow the pointer at most 10 times a second
            y, x = CURSOR
            page.mouse.move(box["x"] + (x + 0.5) * SLICE_SCALE, box["y"] + (y + 0.5) * SLICE_SCALE)
            # They show exactly the sections through the pointer where the cursor lines (the
            # current slice and the other view's cut, anti-aliased over two pixels) leave them.
            expected_xz, expected_yz = expected_sections(root)
            keep_xz = np.ones(expected_xz.shape, bool)
            keep_xz[80 - 71 - 2 : 80 - 71 + 2] = False  # slice 4 at canvas row 80
            keep_xz[:, 81 - 2 : 81 + 2] = False  # x 40 at canvas column 81
            keep_yz = np.ones(expected_yz.shape, bool)
            keep_yz[:, 80 - 71 - 2 : 80 - 71 + 2] = False
            keep_yz[61 - 2 : 61 + 2] = False  # y 30 at canvas row 61
            for plane, block, expected, keep in (
                ("xz", XZ_BLOCK, expected_xz, keep_xz),
                ("yz", YZ_BLOCK, expected_yz, keep_yz),
            ):
                side_view = page.locator(f"canvas.tomoseg-{plane}")
                wait_for(
                    lambda v=side_view, b=block, k=keep, e=expected: np.array_equal(
                        read_block(v, b)[0][k], e[k]
                    ),
                    f"the {plane.upper()} side view did not show the section through {CURSOR}",
                )

            # Paint the selected tile with the mouse.
            canvas = page.locator("canvas.tomoseg-painter")
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()
            assert box is not None and box["width"] == pytest.approx(256, abs=1)

            def at(row: float, column: float) -> tuple[float, float]:
                return (
                    box["x"] + (column + 0.5) * MAGNIFICATION,
                    box["y"] + (row + 0.5) * MAGNIFICATION,
                )

            page.mouse.move(*at(STROKE_ROW, STROKE_COLUMNS[0]))
            page.mouse.down()
            page.mouse.move(*at(STROKE_ROW, STROKE_COLUMNS[1]), steps=25)
            page.mouse.up()
            painted = wait_for(
                lambda: (
                    (saved := saved_mask(root, 1)) is not None
                    and saved[1] is not None
                    and saved[1].any()
                    and saved
                ),
                "the stroke was not saved to the selected tile in project/masks.npz",
            )
            first = saved_mask(root, 0)
            # The shared undo key, pressed on the painter (the stroke gave it the focus).
            page.keyboard.press("z")
            wait_for(
                lambda: (saved := saved_mask(root, 1)) is not None and not saved[1].any(),
                "z did not undo the stroke on disk",
            )

            # Back on the slice: the click selects the tile again (and gives the canvas the
            # keys), Delete removes it, Ctrl+Z brings it back - the same undo key as the painter.
            def tile_count() -> int:
                return len(json.loads((root / "project" / "project.json").read_text())["tiles"])

            slice_canvas.scroll_into_view_if_needed()
            box = slice_canvas.bounding_box()
            y, x = SECOND_TILE
            page.mouse.click(box["x"] + (x + 0.5) * SLICE_SCALE, box["y"] + (y + 0.5) * SLICE_SCALE)
            page.keyboard.press("Delete")
            wait_for(lambda: tile_count() == 1, "Delete did not remove the selected tile")
            page.keyboard.press("Control+z")
            wait_for(lambda: tile_count() == 2, "Ctrl+Z did not bring the tile back")
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser_mask_painter.png"), full_page=True)
            browser.close()

    assert first is not None and first[1] is None  # the first tile was never painted
    _, mask = painted
    c0, c1 = STROKE_COLUMNS
    # Where the stroke went: the brush's 3-pixel band along the row is painted...
    assert mask[STROKE_ROW - 1 : STROKE_ROW + 2, c0 : c1 + 1].all()
    # ...and nothing farther from the path than the brush radius (plus a pixel of mouse rounding).
    reach = int(BRUSH_RADIUS) + 1
    outside = np.ones_like(mask)
    outside[STROKE_ROW - reach : STROKE_ROW + reach + 1, c0 - reach : c1 + reach + 1] = False
    assert not mask[outside].any()


def test_suggestion_walk_in_jupyterlab(chromium, jupyterlab):
    """Suggest tiles, Accept +: the suggested tile is added, its mask the thresholded prediction."""
    from playwright.sync_api import sync_playwright

    url, token, root = jupyterlab
    ARTIFACTS.mkdir(exist_ok=True)

    def tiles() -> list[dict]:
        try:
            return json.loads((root / "project" / "project.json").read_text())["tiles"]
        except (OSError, ValueError, KeyError):
            return []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        try:
            run_notebook(page, url, token)
            assert len(tiles()) == 2
            page.get_by_role("button", name="Suggest tiles").click()
            page.get_by_text("suggestion 1 / ").first.wait_for()
            page.get_by_role("button", name="Accept +").click()
            added = wait_for(
                lambda: len(found := tiles()) == 3 and found[2],
                "Accept + did not add the suggested tile to project/project.json",
            )
            label = f"+ membrane z {added['z']}, y {added['y']}, x {added['x']} (painted)"
            page.get_by_text(label).first.wait_for()  # in the tile list, its mask already there
            page.get_by_text("tile 3 / 3").first.wait_for()  # and open in the painter
            saved = wait_for(
                lambda: (
                    (found := saved_mask(root, 2)) is not None and found[1] is not None and found
                ),
                "the accepted tile's mask was not saved in project/masks.npz",
            )
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser_suggestion.png"), full_page=True)
            browser.close()

    prediction = np.load(root / "prediction.npy")
    assert added["positive"] and added["z"] == 4
    # the suggestion covers the one unsure place, away from the two tiles already there
    assert added["y"] - 16 <= 24 and 40 <= added["y"] + 16
    assert added["x"] - 16 <= 56 and 72 <= added["x"] + 16
    y0, x0 = added["y"] - 16, added["x"] - 16
    expected = prediction[4, y0 : y0 + 32, x0 : x0 + 32] >= 0.5
    assert saved[0] == added["id"] and expected.sum() == 16 * 16
    np.testing.assert_array_equal(saved[1], expected)
