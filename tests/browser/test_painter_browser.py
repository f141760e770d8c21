"""Real browser: JupyterLab in Debian's chromium, a brush stroke with the mouse, the mask on disk.

Starts JupyterLab on loopback (free port, random token, a temporary root holding
``paint_a_tile.ipynb``), runs the notebook through the JupyterLab UI, drags across the mask
painter's canvas and checks that ``project/masks.npz`` changed exactly along the stroke. A
screenshot goes to ``test-artifacts/``. Needs ``apt-get install -y chromium`` (no browser download
is possible here); without it the test fails saying so.
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


def stroke_mask(root: Path) -> tuple[str, np.ndarray] | None:
    """The tile id and saved mask of the notebook's tile, or None before the first save."""
    project = root / "project"
    try:
        tiles = json.loads((project / "project.json").read_text())["tiles"]
        with np.load(project / "masks.npz", allow_pickle=False) as archive:
            if tiles[0]["id"] in archive.files:
                return tiles[0]["id"], archive[tiles[0]["id"]].copy()
    except (OSError, ValueError, KeyError, IndexError):
        return None
    return None


def test_brush_stroke_in_jupyterlab_is_saved_to_the_project(chromium, jupyterlab):
    from playwright.sync_api import sync_playwright

    url, token, root = jupyterlab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(STARTUP_S * 1000)
        try:
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
            canvas = page.locator(".jp-OutputArea-output canvas").last
            canvas.wait_for(state="visible")
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()
            assert box is not None and box["width"] == pytest.approx(256, abs=1)
            time.sleep(1.0)  # let the first tile image arrive before painting over it

            def at(row: float, column: float) -> tuple[float, float]:
                return (
                    box["x"] + (column + 0.5) * MAGNIFICATION,
                    box["y"] + (row + 0.5) * MAGNIFICATION,
                )

            page.mouse.move(*at(STROKE_ROW, STROKE_COLUMNS[0]))
            page.mouse.down()
            page.mouse.move(*at(STROKE_ROW, STROKE_COLUMNS[1]), steps=25)
            page.mouse.up()

            deadline = time.monotonic() + SAVE_WAIT_S
            saved = stroke_mask(root)
            while (saved is None or not saved[1].any()) and time.monotonic() < deadline:
                time.sleep(0.5)
                saved = stroke_mask(root)
            page.get_by_text("saved:").first.wait_for(timeout=SAVE_WAIT_S * 1000)
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser_mask_painter.png"), full_page=True)
            browser.close()

    assert saved is not None, "the stroke was never saved to project/masks.npz"
    _, mask = saved
    c0, c1 = STROKE_COLUMNS
    # Where the stroke went: the brush's 3-pixel band along the row is painted...
    assert mask[STROKE_ROW - 1 : STROKE_ROW + 2, c0 : c1 + 1].all()
    # ...and nothing farther from the path than the brush radius (plus a pixel of mouse rounding).
    reach = int(BRUSH_RADIUS) + 1
    outside = np.ones_like(mask)
    outside[STROKE_ROW - reach : STROKE_ROW + reach + 1, c0 - reach : c1 + reach + 1] = False
    assert not mask[outside].any()
