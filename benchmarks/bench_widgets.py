"""Kernel-side cost of a slice redraw in the SliceViewer, against sending the full slice.

For 1k x 1k and 2k x 2k tomograms (memory-mapped MRC files, like real data) this measures, per
redraw at the default view size: the time the kernel spends (read the slice, bin, contrast,
PNG-encode, batch the canvas commands) and the bytes that leave the kernel. The baseline, measured
in the same run, is the naive viewer: contrast-scale the full-resolution slice and send it whole
with ``put_image_data``. Also timed: a redraw with a probability overlay, a zoomed-in redraw, and
one mouse-move event of a brush stroke in the mask painter.

Run: ``.venv/bin/python benchmarks/bench_widgets.py`` (about a minute). Target: under 50 ms per
slice redraw at the default view size.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOMOSEG_NB_PROGRESS", "0")

import numpy as np
from ipycanvas import Canvas, hold_canvas
from scipy import ndimage

from tomoseg_nb.volume import open_volume, write_volume
from tomoseg_nb.widgets._messages import record_canvas_traffic
from tomoseg_nb.widgets._render import auto_contrast, to_uint8
from tomoseg_nb.widgets.paint_state import PainterState
from tomoseg_nb.widgets.view_state import ZOOM_LEVELS
from tomoseg_nb.widgets.viewer import DEFAULT_VIEW_SHAPE, SliceViewer

SIZES = (1024, 2048)
SLICES = 6
REPEATS = 12
TARGET_MS = 50.0


def measure(action, repeats: int = REPEATS) -> tuple[float, float]:
    """Median milliseconds and bytes sent per call of ``action(i)``."""
    times, sizes = [], []
    for i in range(repeats):
        with record_canvas_traffic() as traffic:
            start = time.perf_counter()
            action(i)
            times.append(1000 * (time.perf_counter() - start))
        sizes.append(traffic.bytes)
    return statistics.median(times), statistics.median(sizes)


def naive_redraw(volume, canvas: Canvas, z: int) -> None:
    """Baseline: the whole slice at full resolution, contrast-scaled, in one message."""
    image = np.asarray(volume.data[z], dtype=np.float32)
    low, high = auto_contrast(image)
    with hold_canvas():
        canvas.clear()
        canvas.put_image_data(to_uint8(image, low, high), 0, 0)


def tomogram_file(folder: Path, size: int) -> Path:
    rng = np.random.default_rng(size)
    # Smooth structure plus noise: PNG compresses it about as well as a real tomogram slice.
    y, x = np.mgrid[:size, :size] / size
    structure = np.sin(12 * x) * np.cos(9 * y)
    data = np.stack(
        [structure + rng.normal(scale=1.0, size=(size, size)) for _ in range(SLICES)]
    ).astype(np.float32)
    return write_volume(folder / f"tomo_{size}.mrc", data, voxel_size=10.0)


def smooth_probability(shape: tuple[int, int, int]) -> np.ndarray:
    """Blobs with soft edges covering about a third of each slice, like a network's output."""
    rng = np.random.default_rng(1)
    coarse = ndimage.gaussian_filter(
        rng.normal(size=(shape[0], shape[1] // 16, shape[2] // 16)), 1.5
    )
    blobs = np.clip(3 * coarse, 0, 1).astype(np.float32)
    return blobs.repeat(16, axis=1).repeat(16, axis=2)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            with open_volume(tomogram_file(Path(tmp), size)) as volume:
                viewer = SliceViewer(volume)
                baseline_canvas = Canvas(width=size, height=size)
                fitted = measure(lambda i, v=viewer: v.set_z(i % SLICES))
                naive = measure(
                    lambda i, vol=volume, c=baseline_canvas: naive_redraw(vol, c, i % SLICES)
                )
                probability = smooth_probability(volume.shape)
                viewer.add_overlay("feature", probability)
                overlay = measure(lambda i, v=viewer: v.set_z(i % SLICES))
                viewer.remove_overlay("feature")
                viewer.state.zoom_by(ZOOM_LEVELS.index(4.0) - viewer.state.zoom_index)
                zoomed = measure(lambda i, v=viewer: v.set_z(i % SLICES))
                rows.append((size, fitted, naive, overlay, zoomed))

    painter = PainterState(np.zeros((64, 64), bool), brush_radius=4)
    painter.press(10, 10)
    stroke_ms, _ = measure(lambda i: painter.drag(10 + (i % 40), 10 + (i % 40) / 2), 200)

    height, width = DEFAULT_VIEW_SHAPE
    print(f"SliceViewer redraw, default view {width} x {height}, median of {REPEATS}")
    print(f"{'slice':>11} {'what':<28} {'ms':>8} {'kB sent':>9}")
    for size, fitted, naive, overlay, zoomed in rows:
        label = f"{size} x {size}"
        print(
            f"{label:>11} {'viewer, whole slice fitted':<28} {fitted[0]:8.1f} {fitted[1] / 1e3:9.1f}"
        )
        print(f"{'':>11} {'naive full-resolution send':<28} {naive[0]:8.1f} {naive[1] / 1e3:9.1f}")
        print(
            f"{'':>11} {'viewer + probability overlay':<28} {overlay[0]:8.1f} {overlay[1] / 1e3:9.1f}"
        )
        print(f"{'':>11} {'viewer zoomed in to 4x':<28} {zoomed[0]:8.1f} {zoomed[1] / 1e3:9.1f}")
        print(
            f"{'':>11} ratio naive / viewer: time {naive[0] / fitted[0]:.1f}x, "
            f"bytes {naive[1] / fitted[1]:.1f}x; target < {TARGET_MS:.0f} ms: "
            f"{'met' if fitted[0] < TARGET_MS else 'NOT met'}"
        )
    print(f"MaskPainter state, one mouse-move of a stroke (radius 4): {stroke_ms * 1000:.0f} us")


if __name__ == "__main__":
    main()
