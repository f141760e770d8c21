"""The whole workflow on the built-in phantom, headless: what ``tomoseg-nb demo`` runs.

Simulate a cellular tomogram, let the simulated annotator pick and paint tiles for membrane,
microtubule and ribosome, train one network per feature, segment the whole tomogram, merge the
maps competitively, pick ribosomes, export them for RELION 5, and score every step against the
phantom's ground truth in a Markdown report with figures.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .annotations import Project
from .atomic import atomic_output, check_output_path, write_json_atomic, write_text_atomic
from .coords import write_picks
from .errors import BadInputError
from .evaluate import PROJECT_NAME, evaluate, evaluate_feature
from .merge import merge_files
from .metrics import iou
from .model_files import sidecar_path
from .picking import locate_map, pick_map_file, score_particles
from .plots.picks import plot_label_overlay, plot_pick_matches
from .plots.segmentation import plot_evaluation, plot_slice_overlay
from .plots.training import plot_losses
from .progress import ProgressCallback
from .synthetic import simulate_tomogram, write_tomogram_phantom
from .training_config import DEFAULT_TRAINING, TrainingConfig
from .volume import open_volume

FEATURES = {"membrane": 1, "microtubule": 2, "ribosome": 3}
RIBOSOME_DIAMETER_ANGSTROM = 250.0  # E. coli 70S, about 25 nm across
DEFAULT_SHAPE = (48, 256, 256)
LOSS_RISE = 0.05  # log(MSE): a rise of the held-out loss above its best that the report points out


def _save_figure(figure, path: Path) -> str:
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=90, format="png")
    return path.name


def run_demo(
    out: str | os.PathLike,
    *,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    config: TrainingConfig = DEFAULT_TRAINING,
    n_positive: int = 10,
    n_negative: int = 100,
    tile_size: int = 64,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict:
    """Run the demo into folder ``out``; returns the report as a dict (also ``out/report.json``).

    ``out`` gets ``phantom/`` (tomogram and truth), ``models/`` (one ``.keras`` network, sidecar
    and probability map per feature, and the annotation project), ``merged_labels.mrc`` (+ name map),
    ``ribosome_picks.star`` (RELION 5), ``figures/`` and ``report.md``. ``config.seed`` also
    seeds the phantom and the simulated annotator. The report states its settings, shows each
    network's loss curves, and scores a random-forest pixel classifier trained on the very same
    tiles next to each network, so a reader can judge the numbers.
    """
    out = Path(out)
    check_output_path(out / "report.md", overwrite)
    stages = 2 + len(FEATURES) + 4
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, stages)

    started = time.perf_counter()
    seed = config.seed
    phantom = simulate_tomogram(shape, seed=seed)
    files = write_tomogram_phantom(phantom, out / "phantom", overwrite=overwrite)
    step()
    models_dir = out / "models"
    report = evaluate(
        files["tomogram"],
        phantom.labels,
        FEATURES,
        keep=models_dir,
        overwrite=overwrite,
        config=config,
        n_positive=n_positive,
        n_negative=n_negative,
        tile_size=tile_size,
        skip_absent=True,  # a small phantom may lack a feature; say so and go on
        on_feature_done=lambda name: step(),
    )
    scores, skipped = report["features"], report["skipped"]
    for _ in skipped:
        step()
    if not scores:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
        raise BadInputError(
            f"no feature of the phantom could be annotated ({reasons}); use a larger --shape"
        )
    baseline = _random_forest_baseline(
        files["tomogram"], phantom.labels, models_dir, scores, config
    )
    step()
    histories = {
        name: json.loads(sidecar_path(models_dir / f"{name}.keras").read_text())["history"]
        for name in scores
    }
    merged = _merge(models_dir, scores, phantom.labels, out / "merged_labels.mrc", overwrite)
    step()
    picking, picks = _pick_ribosomes(phantom, models_dir, scores, out, overwrite)
    step()
    figures = _figures(
        phantom, models_dir, merged["labels"], picks, scores, histories, out / "figures"
    )
    step()
    report = {
        "shape": list(shape),
        "seed": seed,
        "arch": config.arch,
        "settings": {
            "network": config.arch,
            "epochs": config.epochs,
            "positive_tiles": n_positive,
            "negative_tiles": n_negative,
            "tile_size_px": tile_size,
            "thresholds": {name: row["threshold"] for name, row in scores.items()},
            "seed": seed,
            "engine": config.engine,
        },
        "training": config.to_dict(),
        "loss": histories,
        "baseline": baseline,
        "voxel_size": phantom.voxel_size,
        "features": scores,
        "skipped": skipped,
        "merged": merged["iou"],
        "ribosome_picking": picking,
        "figures": figures,
        "seconds": time.perf_counter() - started,
    }
    write_json_atomic(out / "report.json", report, overwrite=True)
    write_text_atomic(out / "report.md", _markdown(report), overwrite=True)
    step()
    return report


def _random_forest_baseline(
    tomogram: Path, truth: np.ndarray, models_dir: Path, scores: dict, config: TrainingConfig
) -> dict[str, dict[str, float]]:
    """Scores of the random-forest pixel classifier trained on each network's very tiles.

    The baseline the evaluation promises: if a network does not beat it, more epochs or tiles are
    needed, not a bigger network. Its maps go to a temporary folder; only the scores are kept.
    """
    results = {}
    with (
        Project.open(models_dir / PROJECT_NAME, read_only=True) as project,
        open_volume(tomogram, ndim=3) as volume,
        tempfile.TemporaryDirectory(prefix="tomoseg-demo-rf-") as scratch,
    ):
        for name in scores:
            results[name] = evaluate_feature(
                project,
                volume,
                truth,
                name,
                FEATURES[name],
                scratch,
                method="rf",
                config=config.replace(z_context=0),  # the forest classifies single slices
            )
    return results


def _merge(models_dir: Path, scores: dict, truth: np.ndarray, path: Path, overwrite: bool) -> dict:
    """Competitive merge at each network's calibrated threshold, and per-class IoU of the result."""
    names = list(scores)
    maps = [models_dir / f"{name}.mrc" for name in names]
    thresholds = [scores[name]["threshold"] for name in names]
    merge_files(maps, path, threshold=thresholds, names=names, overwrite=overwrite)
    with open_volume(path) as volume:
        labels = volume.read().astype(np.int64)
    scores_iou = {
        name: float(iou(labels == index, truth == FEATURES[name]))
        for index, name in enumerate(names, start=1)
    }
    return {"labels": labels, "iou": scores_iou}


def _pick_ribosomes(phantom, models_dir: Path, scores: dict, out: Path, overwrite: bool):
    """Ribosome picks from their map, written for RELION 5 and matched to the true centres."""
    if "ribosome" not in scores:
        return None, None
    diameter_px = RIBOSOME_DIAMETER_ANGSTROM / phantom.voxel_size
    located = locate_map(models_dir / "ribosome.mrc", tomogram_name="phantom")
    picks = pick_map_file(
        located,
        threshold=scores["ribosome"]["threshold"],
        mode="distance",
        diameter_angstrom=RIBOSOME_DIAMETER_ANGSTROM,
    ).picks
    write_picks(out / "ribosome_picks.star", picks, format="relion5", overwrite=overwrite)
    match = score_particles(picks, phantom.particles["ribosome"], diameter_px / 2)
    summary = {
        "picks": len(picks),
        "true_particles": len(phantom.particles["ribosome"]),
        "precision": match.precision,
        "recall": match.recall,
        "f1": match.f1,
        "match_distance_px": diameter_px / 2,
    }
    return summary, picks


def _figures(
    phantom,
    models_dir: Path,
    merged: np.ndarray,
    picks,
    scores: dict,
    histories: dict,
    folder: Path,
) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    z = phantom.tomogram.shape[0] // 2
    maps = {}
    for name in scores:
        with open_volume(models_dir / f"{name}.mrc") as volume:
            maps[name] = volume.slice(z)
    overlay = plot_slice_overlay(
        phantom.tomogram[z],
        maps,
        threshold={name: row["threshold"] for name, row in scores.items()},
        title=f"phantom, slice {z}",
    )
    figures = {
        "segmentation": _save_figure(overlay, folder / "segmentation.png"),
        "scores": _save_figure(plot_evaluation({"features": scores}), folder / "scores.png"),
        "loss": _save_figure(plot_losses(histories), folder / "loss.png"),
        "merged": _save_figure(
            plot_label_overlay(
                phantom.tomogram[z], merged[z], list(FEATURES), title="merged labels"
            ),
            folder / "merged.png",
        ),
    }
    if picks is not None:
        radius_px = RIBOSOME_DIAMETER_ANGSTROM / phantom.voxel_size / 2
        figure = plot_pick_matches(
            phantom.tomogram, picks, phantom.particles["ribosome"], radius_px=radius_px
        )
        figures["picks"] = _save_figure(figure, folder / "picks.png")
    return figures


def _markdown(report: dict) -> str:
    settings = report["settings"]
    thresholds = ", ".join(f"{name} {value:g}" for name, value in settings["thresholds"].items())
    lines = [
        "# tomoseg_nb demo report",
        "",
        f"Phantom {' x '.join(map(str, report['shape']))} voxels at {report['voxel_size']:g} A; "
        f"{report['seconds']:.0f} s in all.",
        "",
        "## Settings",
        "",
        "| network | epochs | tiles per feature | threshold | seed | engine |",
        "|---|---|---|---|---|---|",
        f"| {settings['network']} | {settings['epochs']} | {settings['positive_tiles']} positive + "
        f"{settings['negative_tiles']} negative, {settings['tile_size_px']} px | {thresholds} | "
        f"{settings['seed']} | {settings['engine']} |",
        "",
        "## Segmentation",
        "",
        "Voxel scores against the truth. *RF IoU*: a random-forest pixel classifier trained on the "
        "same tiles (the baseline a network should beat).",
        "",
        "| feature | IoU | RF IoU | Dice | precision | recall | threshold | train s | Mvoxel/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in report["features"].items():
        lines.append(
            f"| {name} | {row['iou']:.3f} | {report['baseline'][name]['iou']:.3f} | "
            f"{row['dice']:.3f} | {row['precision']:.3f} | {row['recall']:.3f} | "
            f"{row['threshold']:.2f} | {row['train_seconds']:.0f} | "
            f"{row['voxels_per_second'] / 1e6:.2f} |"
        )
    lines += [
        f"| {name} | skipped: {reason} | | | | | | | |"
        for name, reason in report["skipped"].items()
    ]
    lines += ["", "## Training (loss curves: `figures/loss.png`)", ""]
    lines += [f"- {name}: {_loss_summary(history)}" for name, history in report["loss"].items()]
    lines += ["", "## Competitive merge (per-class IoU of the merged labels)", ""]
    lines += [f"- {name}: {value:.3f}" for name, value in report["merged"].items()]
    picking = report["ribosome_picking"]
    lines += ["", "## Ribosome picking (exported as RELION 5 STAR: `ribosome_picks.star`)", ""]
    if picking is None:
        lines.append("No ribosome network, so no picks.")
    else:
        lines.append(
            f"{picking['picks']} picks for {picking['true_particles']} ribosomes: precision "
            f"{picking['precision']:.3f}, recall {picking['recall']:.3f}, F1 {picking['f1']:.3f} "
            f"(match within {picking['match_distance_px']:.1f} voxels). `figures/picks.png` marks "
            "found, missed and false picks on the slices holding the most ribosomes."
        )
    lines += ["", "## Figures", ""]
    lines += [f"![{name}](figures/{file})" for name, file in report["figures"].items()]
    return "\n".join(lines) + "\n"


def _loss_summary(history: dict) -> str:
    """One line on a loss curve; says so when the held-out loss rose after its best epoch."""
    training = history.get("loss", [])
    text = f"{len(training)} epochs, final training loss {training[-1]:.3f}" if training else ""
    validation = history.get("val_loss", [])
    if not validation:
        return text + "; no held-out tiles, so no validation loss"
    best = int(np.argmin(validation))
    text += f"; validation loss best {validation[best]:.3f} at epoch {best + 1}"
    if validation[-1] > validation[best] + LOSS_RISE:
        text += (
            f", then rose to {validation[-1]:.3f} by epoch {len(validation)}: the network began "
            "to memorise its tiles (fewer epochs, or more tiles)"
        )
    return text
