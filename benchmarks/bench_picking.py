"""Accuracy of picking, filament tracing and competitive merging against phantom ground truth.

Targets (issue 5): ribosome picking F1 >= 0.9 (match within half a particle diameter); filament
points on microtubules within 3 nm of the true axis for >= 90 % of points, covering >= 80 % of
the axis length; merged labels beat each map thresholded alone in per-class IoU where features
touch.

Two sources of probability maps:

- default: maps made from the phantom's ground truth the way a shallow 2D CNN output looks -
  blurred more along z (missing wedge), smooth noise, false responses on the unlabelled
  crowding particles and on other features' walls, touching features blurred into each other.
  Each measurement is reported with its baseline from the same run (EMAN2's peak mode; each map
  thresholded alone).
- ``--maps DIR --phantom DIR``: real CNN maps, ``DIR/<feature>.mrc`` (``evaluate --keep``) or
  ``DIR/<tomogram>__<feature>.mrc`` (``segment``), scored against a phantom folder written by
  ``tomoseg-nb simulate`` (``labels.mrc``, ``particles.csv``, ``filaments.json``).

Run from the repository root::

    .venv/bin/python benchmarks/bench_picking.py --seeds 1 2 3
    .venv/bin/python benchmarks/bench_picking.py --phantom PHANTOM --maps KEEP --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from tomoseg_nb.maps import decode_probabilities
from tomoseg_nb.merge import merge_competitive
from tomoseg_nb.metrics import iou
from tomoseg_nb.picking import pick_filaments, pick_particles, score_filaments, score_particles

RIBOSOME_DIAMETER_A = 250.0
FILAMENT_TOLERANCE_A = 30.0
TUBULIN_SPACING_A = 82.0
MERGED = ("membrane", "microtubule", "ribosome")
MICROTUBULE_RADIUS_A = 125.0


def maps_from_truth(
    labels: np.ndarray,
    label_ids: dict[str, int],
    distractors: np.ndarray,
    *,
    seed: int = 0,
    blur_px: tuple[float, float, float] = (2.5, 1.2, 1.2),
    noise: float = 0.08,
    microtubule_axes: list[np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """CNN-like probability maps of membrane, microtubule and ribosome from phantom labels.

    ``distractors`` are centres ``(N, 3)`` of unlabelled particles (the phantom's crowding
    complexes); the ribosome map answers each with a ball of their size at a random strength
    0.2-0.8, as a shallow network trained on ribosomes answers other large complexes.
    With ``microtubule_axes``, a "microtubule_wedge" map is added in which the tube walls facing
    z are missing, as the missing wedge can leave them.
    """
    rng = np.random.default_rng(seed)
    maps = {}
    truths = {name: labels == label_ids[name] for name in MERGED}
    if microtubule_axes:
        truths["microtubule_wedge"] = hide_walls_facing_z(truths["microtubule"], microtubule_axes)
    for name, mask in truths.items():
        truth = mask.astype(np.float32)
        response = ndimage.gaussian_filter(truth, blur_px)
        # A network tends to answer weakly on the other features' dense walls too.
        for other in MERGED:
            if other not in name:
                response += 0.25 * ndimage.gaussian_filter(
                    (labels == label_ids[other]).astype(np.float32), blur_px
                )
        if name == "ribosome" and len(distractors):
            response += _distractor_response(labels.shape, distractors, rng)
        smooth_noise = ndimage.gaussian_filter(
            rng.standard_normal(labels.shape).astype(np.float32), 1.5
        )
        response += noise * smooth_noise / smooth_noise.std()
        maps[name] = np.clip(response / 0.9, 0.0, 1.0)
    return maps


def _distractor_response(
    shape: tuple[int, ...], centres: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Balls of 10-16 nm diameter (the phantom's crowding complexes) answered at 0.2-0.8."""
    response = np.zeros(shape, np.float32)
    for centre, strength in zip(centres, rng.uniform(0.2, 0.8, len(centres)), strict=True):
        radius = rng.uniform(5.0, 8.0)
        low = np.maximum(np.floor(centre - radius).astype(int), 0)
        high = np.minimum(np.ceil(centre + radius).astype(int) + 1, shape)
        z, y, x = np.ogrid[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
        inside = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2
        box = response[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
        box[inside] = np.maximum(box[inside], strength)
    return ndimage.gaussian_filter(response, 1.2)


def bench_particles(
    probability: np.ndarray, centres: np.ndarray, voxel_size: float, threshold: float
) -> dict:
    """Ribosome picks in every mode against the true centres (match within half a diameter).

    Each mode runs with EMAN2's rules alone (``min_mass`` 20) and with a size rule a user would
    set from the particle's known size: at least a quarter of the volume of a ball of its diameter.
    """
    diameter_px = RIBOSOME_DIAMETER_A / voxel_size
    quarter_ball_a3 = 0.25 * 4 / 3 * np.pi * (RIBOSOME_DIAMETER_A / 2) ** 3
    results = {}
    for mode in ("peak", "centroid", "distance"):
        for rule, limits in (("", {}), ("+size", {"min_size_angstrom3": quarter_ball_a3})):
            start = time.perf_counter()
            picks = pick_particles(
                probability,
                threshold=threshold,
                min_distance_px=diameter_px / 2,
                mode=mode,
                voxel_size=voxel_size,
                **limits,
            )
            match = score_particles(picks, centres, diameter_px / 2)
            results[mode + rule] = {
                "precision": match.precision,
                "recall": match.recall,
                "f1": match.f1,
                "picks": len(picks),
                "truth": len(centres),
                "seconds": time.perf_counter() - start,
            }
    return results


def bench_filaments(
    probability: np.ndarray, axes: list[np.ndarray], voxel_size: float, threshold: float
) -> dict:
    """Microtubule points every 82 A against the true axes, as traced alone and told the radius."""
    results = {}
    for setting, options in (
        ("default", {}),
        ("radius125", {"radius_angstrom": MICROTUBULE_RADIUS_A}),
    ):
        picks = pick_filaments(
            probability,
            threshold=threshold,
            spacing_angstrom=TUBULIN_SPACING_A,
            voxel_size=voxel_size,
            **options,
        )
        score = score_filaments(
            picks,
            axes,
            max_distance_px=FILAMENT_TOLERANCE_A / voxel_size,
            spacing_px=TUBULIN_SPACING_A / voxel_size,
            shape=probability.shape,
        )
        results[setting] = {
            "points": score.n_points,
            "within_3nm": score.within,
            "coverage": score.coverage,
            "axis_length_nm": score.axis_length_px * voxel_size / 10,
            "median_distance_nm": score.median_distance_px * voxel_size / 10,
        }
    return results


def hide_walls_facing_z(
    mask: np.ndarray, axes: list[np.ndarray], half_angle_degrees: float = 30.0
) -> np.ndarray:
    """A tube mask without the wall whose normal is within ``half_angle_degrees`` of z.

    That is the part of a tube the missing wedge of a +-60 degree tilt series leaves blurred out,
    so a network trained on slices may not see it.
    """
    from scipy.spatial import cKDTree

    from tomoseg_nb.picking.scoring import densify

    if not axes or not mask.any():
        return mask
    samples = np.concatenate([densify(a) for a in axes])
    voxels = np.argwhere(mask)
    _, nearest = cKDTree(samples).query(voxels)
    radial = voxels - samples[nearest]
    facing_z = np.abs(radial[:, 0]) > np.cos(np.radians(half_angle_degrees)) * np.linalg.norm(
        radial, axis=1
    )
    kept = mask.copy()
    kept[tuple(voxels[facing_z].T)] = False
    return kept


def contact_zone(labels: np.ndarray, ids: list[int], reach_px: float = 3.0) -> np.ndarray:
    """Voxels within ``reach_px`` of two different features: where competition decides."""
    near = [ndimage.distance_transform_edt(labels != i) <= reach_px for i in ids]
    return np.sum(near, axis=0) >= 2


def bench_merge(
    maps: dict[str, np.ndarray], labels: np.ndarray, label_ids: dict[str, int], threshold: float
) -> dict:
    """Per-class IoU of the merged labels and of each map thresholded alone, overall and at contacts.

    ``contact_iou_bound`` is the most any vote between these maps could reach at contacts: it can
    only take a class's voxel away where another map also claims it, so at best it drops every
    contested false positive and keeps every true voxel. Uncontested false positives stay.
    """
    names = [n for n in MERGED if n in maps]
    merged = merge_competitive([maps[n] for n in names], threshold=threshold, names=names)
    zone = contact_zone(labels, [label_ids[n] for n in names])
    results = {"contact_voxels": int(zone.sum())}
    for k, name in enumerate(names, start=1):
        truth = labels == label_ids[name]
        alone = maps[name] > threshold
        contested = np.any([maps[o] > threshold for o in names if o != name], axis=0)
        best_merge = alone & ~(contested & ~truth)
        results[name] = {
            "iou_alone": iou(alone, truth),
            "iou_merged": iou(merged == k, truth),
            "contact_iou_alone": iou(alone[zone], truth[zone]),
            "contact_iou_merged": iou((merged == k)[zone], truth[zone]),
            "contact_iou_bound": iou(best_merge[zone], truth[zone]),
        }
    return results


def load_phantom_folder(folder: Path) -> tuple[np.ndarray, float, dict[str, int], dict, dict]:
    """Labels, voxel size, label ids, particle centres and filament axes (z, y, x) of a phantom folder."""
    from tomoseg_nb.volume import open_volume

    with open_volume(folder / "labels.mrc") as volume:
        labels, voxel_size = np.asarray(volume.data[...]), volume.voxel_size
    label_ids = json.loads((folder / "labels.json").read_text())
    particles: dict[str, list] = {}
    with open(folder / "particles.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            particles.setdefault(row["feature"], []).append([float(row[a]) for a in "zyx"])
    filaments = {
        name: [np.asarray(line, dtype=np.float64)[:, ::-1] for line in lines]
        for name, lines in json.loads((folder / "filaments.json").read_text()).items()
    }
    return (
        labels,
        voxel_size,
        label_ids,
        {k: np.asarray(v) for k, v in particles.items()},
        filaments,
    )


def load_maps(folder: Path) -> dict[str, np.ndarray]:
    """``<feature>.mrc`` or ``<tomogram>__<feature>.mrc`` maps in ``folder`` for the merged features."""
    from tomoseg_nb.volume import open_volume

    maps = {}
    for path in sorted(folder.glob("*.mrc")):
        name = path.stem.rsplit("__", 1)[-1]
        if name in MERGED:
            with open_volume(path) as volume:
                maps[name] = decode_probabilities(np.asarray(volume.data[...]))
    return maps


def run_one(maps, labels, voxel_size, label_ids, particles, filaments, threshold) -> dict:  # type: ignore[no-untyped-def]
    result: dict = {}
    if "ribosome" in maps and len(particles.get("ribosome", [])):
        result["ribosome"] = bench_particles(
            maps["ribosome"], particles["ribosome"], voxel_size, threshold
        )
    for name in ("microtubule", "microtubule_wedge"):
        if name in maps and filaments.get("microtubule"):
            result[name] = bench_filaments(
                maps[name], filaments["microtubule"], voxel_size, threshold
            )
    result["merge"] = bench_merge(maps, labels, label_ids, threshold)
    return result


def summarise(runs: list[dict]) -> dict:
    """Pooled figures over runs: F1 from summed counts, filament fractions weighted by size."""
    summary: dict = {}
    ribosome = [r["ribosome"] for r in runs if "ribosome" in r]
    if ribosome:
        summary["ribosome"] = {}
        for mode in ribosome[0]:
            tp = sum(r[mode]["recall"] * r[mode]["truth"] for r in ribosome)
            picks = sum(r[mode]["picks"] for r in ribosome)
            truth = sum(r[mode]["truth"] for r in ribosome)
            precision, recall = tp / max(picks, 1), tp / max(truth, 1)
            f1 = 2 * precision * recall / max(precision + recall, 1e-12)
            summary["ribosome"][mode] = {"precision": precision, "recall": recall, "f1": f1}
    for name in ("microtubule", "microtubule_wedge"):
        for setting in ("default", "radius125"):
            tubes = [r[name][setting] for r in runs if name in r]
            if not tubes:
                continue
            points = sum(t["points"] for t in tubes)
            length = sum(t["axis_length_nm"] for t in tubes)
            summary[f"{name} {setting}"] = {
                "within_3nm": sum(t["within_3nm"] * t["points"] for t in tubes) / max(points, 1),
                "coverage": sum(t["coverage"] * t["axis_length_nm"] for t in tubes)
                / max(length, 1e-12),
            }
    summary["merge"] = {
        name: {
            key: float(np.mean([r["merge"][name][key] for r in runs]))
            for key in runs[0]["merge"][name]
        }
        for name in MERGED
        if name in runs[0]["merge"]
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="phantom seeds")
    parser.add_argument(
        "--shape", type=int, nargs=3, default=[64, 256, 256], metavar=("Z", "Y", "X")
    )
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--phantom", type=Path, help="phantom folder (tomoseg-nb simulate --out)")
    parser.add_argument("--maps", type=Path, help="folder of CNN probability maps for --phantom")
    parser.add_argument("--json", type=Path, help="write all figures here")
    args = parser.parse_args(argv)

    runs = []
    if args.maps is not None:
        if args.phantom is None:
            parser.error("--maps needs --phantom")
        labels, voxel_size, label_ids, particles, filaments = load_phantom_folder(args.phantom)
        runs.append(
            run_one(
                load_maps(args.maps),
                labels,
                voxel_size,
                label_ids,
                particles,
                filaments,
                args.threshold,
            )
        )
    else:
        from tomoseg_nb.synthetic import simulate_tomogram

        for seed in args.seeds:
            phantom = simulate_tomogram(tuple(args.shape), seed=seed, snr=None)
            maps = maps_from_truth(
                phantom.labels,
                phantom.label_ids,
                phantom.particles.get("crowding", np.zeros((0, 3))),
                seed=seed,
                microtubule_axes=phantom.filaments.get("microtubule"),
            )
            runs.append(
                run_one(
                    maps,
                    phantom.labels,
                    phantom.voxel_size,
                    phantom.label_ids,
                    phantom.particles,
                    phantom.filaments,
                    args.threshold,
                )
            )
    summary = summarise(runs)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
