"""Figures of picks and merged labels: picks over slices, score/size histograms, label overlays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch

from ..coords import Picks
from ..picking.frame import direction_from_euler
from ..picking.scoring import score_particles
from .segmentation import DEFAULT_COLOURS, contrast_limits


def plot_picks(
    tomogram: np.ndarray,
    picks: Picks,
    *,
    slices: Sequence[int] | None = None,
    radius_px: float = 10.0,
    colour: str = "#ffe119",
    title: str = "",
) -> Figure:
    """Slices of a tomogram with the picks that cut them drawn as circles.

    A pick is drawn on every slice its sphere of ``radius_px`` crosses, with the radius of that
    cross-section, so one can see at a glance whether picks sit on the particles. Filament picks
    (with orientations) also get a line along their axis's projection.

    Parameters
    ----------
    tomogram : array-like
        ``(z, y, x)`` volume to show: the source tomogram, or a binned copy (picks are scaled by
        the ratio of shapes when ``picks.shape`` is known).
    picks : Picks
        3D picks in source voxels.
    slices : sequence of int, optional
        z indices (of ``tomogram``) to show; default the three slices crossed by the most picks.
    radius_px : float
        Sphere radius drawn, in voxels of ``tomogram``.
    """
    shape = np.shape(tomogram)
    zyx = picks.coordinates.reshape(-1, 3)
    if picks.shape is not None:  # grids share their centre (see tomoseg_nb.picking.frame)
        zyx = (zyx - np.asarray(picks.shape) / 2) * (
            np.asarray(shape) / np.asarray(picks.shape)
        ) + np.asarray(shape) / 2
    if slices is None:
        slices = _busiest_slices(zyx[:, 0], shape[0], radius_px)
    figure = Figure(figsize=(4.2 * len(slices), 4.6), layout="constrained")
    panels = figure.subplots(1, len(slices), squeeze=False)[0]
    directions = None if picks.orientations is None else direction_from_euler(picks.orientations)
    for axes, z in zip(panels, slices, strict=True):
        image = np.asarray(tomogram[int(z)], dtype=np.float32)
        low, high = contrast_limits(image)
        axes.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        depth = np.abs(zyx[:, 0] - z)
        for i in np.flatnonzero(depth < radius_px):
            r = float(np.sqrt(radius_px**2 - depth[i] ** 2))
            axes.add_patch(Circle((zyx[i, 2], zyx[i, 1]), r, fill=False, color=colour, lw=1.2))
            if directions is not None:
                dx, dy = directions[i, 0] * r, directions[i, 1] * r
                axes.plot(
                    [zyx[i, 2] - dx, zyx[i, 2] + dx],
                    [zyx[i, 1] - dy, zyx[i, 1] + dy],
                    color=colour,
                    lw=1,
                )
        axes.set_xlim(-0.5, shape[2] - 0.5)
        axes.set_ylim(shape[1] - 0.5, -0.5)
        axes.set_title(f"z = {int(z)}: {int(np.count_nonzero(depth < radius_px))} picks")
        axes.set_axis_off()
    figure.suptitle(
        title or f"{len(picks)} picks" + (f" of {picks.feature}" if picks.feature else "")
    )
    return figure


MATCH_STYLES = {  # kind -> (colour, line style); colour-blind-safe pair plus a neutral orange
    "found": ("#1ec31e", "-"),
    "missed": ("#ff3030", "--"),
    "false": ("#ffa500", ":"),
}


def plot_pick_matches(
    tomogram: np.ndarray,
    picks: Picks | np.ndarray,
    truth: np.ndarray,
    *,
    radius_px: float,
    max_distance_px: float | None = None,
    slices: Sequence[int] | None = None,
    title: str = "",
) -> Figure:
    """Picks scored against true particle centres, on the slices that hold the most particles.

    A pick matched one to one to a true centre within ``max_distance_px`` (default the radius)
    is *found*, a true particle no pick matched is *missed*, a pick matched to nothing is
    *false*; each gets its own colour and line style, explained in a legend with the counts. Every
    mark is a circle of the particle's radius, drawn on the shown slices within half a radius of
    its centre, so all circles mean the same size.

    Parameters
    ----------
    tomogram : array-like
        ``(z, y, x)`` volume the coordinates refer to.
    picks : Picks or ndarray
        Picked centres, ``(N, 3)`` voxels ``(z, y, x)``.
    truth : ndarray
        ``(M, 3)`` true centres in the same voxels.
    radius_px : float
        Particle radius, voxels.
    slices : sequence of int, optional
        z indices to show; default the three slices near most centres (true and false picks).
    """
    shape = np.shape(tomogram)
    picked = picks.coordinates if isinstance(picks, Picks) else np.asarray(picks, np.float64)
    picked = picked.reshape(-1, 3)
    truth = np.asarray(truth, np.float64).reshape(-1, 3)
    match = score_particles(
        picked, truth, radius_px if max_distance_px is None else max_distance_px
    )
    found_picks = match.pairs[:, 0] if len(match.pairs) else np.zeros(0, int)
    found_truths = match.pairs[:, 1] if len(match.pairs) else np.zeros(0, int)
    marks = {
        "found": picked[found_picks],
        "missed": np.delete(truth, found_truths, axis=0),
        "false": np.delete(picked, found_picks, axis=0),
    }
    near = radius_px / 2
    if slices is None:
        centres = np.concatenate([truth[:, 0], marks["false"][:, 0]])
        slices = _busiest_slices(centres, shape[0], near)
    figure = Figure(figsize=(4.2 * len(slices), 5.0), layout="constrained")
    panels = figure.subplots(1, len(slices), squeeze=False)[0]
    for axes, z in zip(panels, slices, strict=True):
        image = np.asarray(tomogram[int(z)], dtype=np.float32)
        low, high = contrast_limits(image)
        axes.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        counts = []
        for kind, points in marks.items():
            colour, style = MATCH_STYLES[kind]
            shown = points[np.abs(points[:, 0] - z) <= near]
            for _, y, x in shown:
                axes.add_patch(
                    Circle((x, y), radius_px, fill=False, color=colour, ls=style, lw=1.5)
                )
            counts.append(f"{len(shown)} {kind}")
        axes.set_xlim(-0.5, shape[2] - 0.5)
        axes.set_ylim(shape[1] - 0.5, -0.5)
        axes.set_title(f"z = {int(z)}: " + ", ".join(counts), fontsize="medium")
        axes.set_axis_off()
    handles = [
        Line2D([], [], color=colour, ls=style, lw=1.5, label=f"{kind} ({len(marks[kind])} in all)")
        for kind, (colour, style) in MATCH_STYLES.items()
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small")
    figure.suptitle(
        title
        or f"{len(picked)} picks for {len(truth)} particles: precision {match.precision:.2f}, "
        f"recall {match.recall:.2f} (circles: particle size, centre within {near:.1f} slices)"
    )
    return figure


def _busiest_slices(z: np.ndarray, depth: int, radius_px: float, count: int = 3) -> list[int]:
    """The ``count`` slices crossed by most picks, at least a diameter apart, in z order."""
    if len(z) == 0:
        return sorted({depth // 4, depth // 2, (3 * depth) // 4})
    crossings = np.array([np.count_nonzero(np.abs(z - s) < radius_px) for s in range(depth)])
    chosen: list[int] = []
    for s in np.argsort(-crossings, kind="stable"):
        if all(abs(int(s) - c) >= 2 * radius_px for c in chosen):
            chosen.append(int(s))
        if len(chosen) == count:
            break
    return sorted(chosen)


def plot_pick_histograms(
    scores: np.ndarray,
    sizes_voxels: np.ndarray | None = None,
    *,
    kept: np.ndarray | None = None,
    bins: int = 30,
) -> Figure:
    """Histograms of pick scores (and blob sizes), kept and dropped candidates stacked.

    Where ``min_mass`` and size limits should go shows as a gap between noise and particles. With
    `tomoseg_nb.picking.find_particle_candidates`: ``plot_pick_histograms(c.mass / c.mass.max(),
    c.size_voxels, kept=c.kept)``.

    Parameters
    ----------
    scores : ndarray
        ``(N,)`` score of each pick or candidate.
    sizes_voxels : ndarray, optional
        ``(N,)`` size of each in voxels.
    kept : ndarray of bool, optional
        ``(N,)`` which became picks; all when None.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    kept = (
        np.ones(len(scores), dtype=bool) if kept is None else np.asarray(kept, dtype=bool).ravel()
    )
    columns = [("score", scores)]
    if sizes_voxels is not None:
        columns.append(("size (voxels)", np.asarray(sizes_voxels, dtype=np.float64).ravel()))
    figure = Figure(figsize=(4.2 * len(columns), 3.4), layout="constrained")
    panels = figure.subplots(1, len(columns), squeeze=False)[0]
    for axes, (label, values) in zip(panels, columns, strict=True):
        edges = np.histogram_bin_edges(values if len(values) else [0.0, 1.0], bins=bins)
        axes.hist(
            [values[kept], values[~kept]],
            bins=edges,
            stacked=True,
            color=["#4363d8", "#bbbbbb"],
            label=[f"picked ({int(kept.sum())})", f"dropped ({int((~kept).sum())})"],
        )
        axes.set_xlabel(label)
        axes.set_ylabel("count")
    panels[0].legend(fontsize="small")
    return figure


def plot_label_overlay(
    image: np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str] | Sequence[str],
    *,
    colours: Sequence[str] = DEFAULT_COLOURS,
    alpha: float = 0.5,
    title: str = "",
) -> Figure:
    """A slice in grey with merged labels tinted, one colour per feature, and a legend.

    Parameters
    ----------
    image : ndarray
        ``(y, x)`` slice of the tomogram.
    labels : ndarray
        ``(y, x)`` integer labels of the same slice (0 = background, not drawn).
    names : mapping or sequence
        Label value -> feature name (as `tomoseg_nb.merge.read_label_names` returns), or names of
        labels 1, 2, ... in order.
    """
    if not isinstance(names, Mapping):
        names = {k: n for k, n in enumerate(names, start=1)}
    labels = np.asarray(labels)
    figure = Figure(figsize=(6.5, 5.5), layout="constrained")
    axes = figure.subplots()
    low, high = contrast_limits(np.asarray(image, dtype=np.float32))
    axes.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    overlay = np.zeros((*labels.shape, 4), np.float32)
    handles = []
    features = [(value, name) for value, name in sorted(names.items()) if value != 0]
    for (value, name), colour in zip(
        features, list(colours) * (len(features) // len(colours) + 1), strict=False
    ):
        shown = labels == value
        overlay[shown, :3] = to_rgb(colour)
        overlay[shown, 3] = alpha
        share = 100.0 * np.count_nonzero(shown) / max(labels.size, 1)
        handles.append(Patch(color=colour, label=f"{value} {name} ({share:.1f}%)"))
    axes.imshow(overlay, interpolation="nearest")
    if handles:
        axes.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.8)
    axes.set_axis_off()
    axes.set_title(title or "merged labels")
    return figure
