"""Benchmark the 2D CNN boxer against template matching on phantom micrographs, and time it.

One command, prints every figure::

    .venv/bin/python benchmarks/bench_boxer.py            # full run (~5 min on 2 CPU cores)
    .venv/bin/python benchmarks/bench_boxer.py --quick    # smaller micrographs, fewer epochs

What it measures
----------------
1. Picking quality on held-out phantoms (other seeds, defoci and noise levels than the training
   ones, one with a carbon edge), all with ice contamination and touching aggregates. Truth = the
   isolated particles; a pick counts when within 0.3 particle diameters of one (one-to-one).
   - CNN boxer at its default thresholds (what a user gets without tuning), and at the best
     picker threshold of a sweep;
   - template matching (normalised cross-correlation with the same good references, 12 in-plane
     rotations each, same peak finding) at the best threshold of the same sweep: the baseline is
     given its oracle threshold, the CNN is not.
   - picks on contamination (centre within half a diameter of it) and on aggregates, with and
     without the classifier network's veto, for the default picker (bad references are negatives
     for it too) and for an EMAN2-style picker trained on background negatives only.
2. Speed: autopicking a 4096 x 4096 micrograph (median of 3), split into preprocessing, picker
   network, and peaks + classifier; training time of both networks at the defaults.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

os.environ.setdefault("TOMOSEG_NB_PROGRESS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _suite_runs import parse_literal_option

from tomoseg_nb.boxer.networks import PICKER_STRIDE
from tomoseg_nb.boxer.peaks import find_peaks
from tomoseg_nb.boxer.pick import autopick, classify_boxes, picker_map
from tomoseg_nb.boxer.preprocess import prepare_micrograph
from tomoseg_nb.boxer.references import collect_references
from tomoseg_nb.boxer.train import train_boxer
from tomoseg_nb.metrics import match_points
from tomoseg_nb.synthetic.micrograph import phantom_references, simulate_micrograph

PIXEL_SIZE = 5.0
MATCH_FRACTION = 0.3  # of the particle diameter
SWEEP = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)


def training_set(size: int, seed: int):
    options = dict(pixel_size=PIXEL_SIZE, n_contamination=8, n_aggregates=8, n_particles=40)
    conditions = [(1.2, 0.25), (2.0, 0.35), (2.8, 0.3)]
    return [
        simulate_micrograph((size, size), defocus_um=d, snr=s, seed=seed + i, **options)
        for i, (d, s) in enumerate(conditions)
    ]


def test_set(size: int, seed: int):
    options = dict(pixel_size=PIXEL_SIZE, n_contamination=10, n_aggregates=8, n_particles=40)
    conditions = [(1.0, 0.3, False), (1.8, 0.15, False), (2.5, 0.3, True), (3.2, 0.2, False)]
    return [
        simulate_micrograph(
            (size, size), defocus_um=d, snr=s, carbon_edge=c, seed=seed + 100 + i, **options
        )
        for i, (d, s, c) in enumerate(conditions)
    ]


def score(picks_per_micrograph, phantoms) -> dict:
    """Pooled precision / recall / F1, and picks on contamination and on aggregates."""
    tp = fp = fn = on_contamination = on_aggregates = 0
    for picks, phantom in zip(picks_per_micrograph, phantoms, strict=True):
        diameter = phantom.particle_diameter_px
        match = match_points(picks.coordinates, phantom.particles, MATCH_FRACTION * diameter)
        tp, fp, fn = (
            tp + match.true_positives,
            fp + match.false_positives,
            fn + match.false_negatives,
        )
        yx = np.clip(np.rint(picks.coordinates).astype(int), 0, np.asarray(phantom.image.shape) - 1)
        clearance = ndimage.distance_transform_edt(~phantom.contamination)
        on_contamination += int((clearance[yx[:, 0], yx[:, 1]] < 0.5 * diameter).sum())
        if len(phantom.aggregate_particles) and len(picks):
            distances = np.sqrt(
                ((picks.coordinates[:, None] - phantom.aggregate_particles[None]) ** 2).sum(axis=2)
            )
            on_aggregates += int((distances.min(axis=1) < 0.5 * diameter).sum())
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return dict(
        precision=precision,
        recall=recall,
        f1=f1,
        picks=tp + fp,
        on_contamination=on_contamination,
        on_aggregates=on_aggregates,
    )


def line(name: str, result: dict) -> str:
    return (
        f"  {name:<48} F1 {result['f1']:.3f}  P {result['precision']:.3f}  R {result['recall']:.3f}  "
        f"picks {result['picks']:4d}  on contamination {result['on_contamination']:3d}  "
        f"on aggregates {result['on_aggregates']:3d}"
    )


def sweep(model, phantoms, method: str) -> tuple[float, dict]:
    best = (None, {"f1": -1.0})
    for threshold in SWEEP:
        results = [autopick(model, p.image, threshold=threshold, method=method) for p in phantoms]
        scored = score([r.picks for r in results], phantoms)
        if scored["f1"] > best[1]["f1"]:
            best = (threshold, scored)
    return best


def timing(model, size: int, repeats: int = 3) -> dict:
    """Median seconds of autopick on a ``size`` x ``size`` phantom, and of its parts."""
    from tomoseg_nb.engine import choose_engine

    phantom = simulate_micrograph((size, size), pixel_size=PIXEL_SIZE, seed=7, n_contamination=60)
    image = phantom.image
    box_px = model.info.box_px
    recipe = model.info.boxer_recipe()
    parts = {
        "total": [],
        "prepare": [],
        "picker network": [],
        "peaks + classifier": [],
        "picker network, keras engine": [],
        "picker network, fft engine": [],
    }
    autopick(model, image)  # warm-up: graph tracing, FFT plans
    for _ in range(repeats):
        start = time.perf_counter()
        result = autopick(model, image)
        parts["total"].append(time.perf_counter() - start)
        start = time.perf_counter()
        prepared, _ = prepare_micrograph(image, box_px, recipe)
        middle = time.perf_counter()
        raw = picker_map(model.picker, prepared)
        after = time.perf_counter()
        peaks, _ = find_peaks(
            ndimage.gaussian_filter(np.clip(raw, 0, None), 1.0),
            threshold_sigma=model.info.threshold,
            min_distance_px=recipe.working_box_px / 2 / PICKER_STRIDE,
        )
        classify_boxes(
            model.classifier, prepared, peaks * PICKER_STRIDE + 0.5, recipe.working_box_px
        )
        end = time.perf_counter()
        parts["prepare"].append(middle - start)
        parts["picker network"].append(after - middle)
        parts["peaks + classifier"].append(end - after)
        for engine in ("keras", "fft"):
            picker_map(model.picker, prepared, engine=engine)  # warm
            start = time.perf_counter()
            picker_map(model.picker, prepared, engine=engine)
            parts[f"picker network, {engine} engine"].append(time.perf_counter() - start)
    figures = {name: statistics.median(values) for name, values in parts.items()}
    figures["best total"] = min(parts["total"])
    figures["engine"] = choose_engine([model.picker])
    figures["working image"] = prepared.shape
    figures["candidates"] = len(result.candidates)
    figures["picks"] = len(result.picks)
    return figures


# ---------------------------------------------------------------------------------------------
# Real micrographs (EMPIAR-10017, --real DIR)

REAL_DIAMETER_PX = 108.0
REAL_BOX_PX = round(1.5 * REAL_DIAMETER_PX)
REAL_MARGIN_PX = 131
"""The annotations have no centre within 131 px of an edge (the ~70 px stripe border of these
files and the annotators' margin), so picks and truth are both scored inside that margin."""
REAL_N_REFERENCES = 15
# Contamination a user would box as bad on each reference half, x, y in pixels of the whole
# micrograph, found by eye; the other micrographs have none there.
REAL_CONTAMINATION = {
    ("Falcon_2012_06_12-15_07_41_0", "left"): [
        (240, 1160),
        (280, 1230),
        (190, 1110),
        (300, 1160),
        (500, 3890),
        (520, 3950),
    ],
    ("Falcon_2012_06_12-15_14_01_0", "right"): [
        (3190, 1320),
        (3160, 1290),
        (3220, 1290),
        (3160, 1350),
        (3220, 1350),
    ],
}
SIDES = ("left", "right")
"""Which half the references come from; the picks are scored on the other half."""


@dataclass
class RealCase:
    name: str
    image: np.ndarray
    truth_yx: np.ndarray


@dataclass
class RealFold:
    """One micrograph split in two: references boxed on ``side``, picks scored on the other half."""

    case: RealCase
    side: str

    @property
    def half(self) -> int:
        return self.case.image.shape[1] // 2

    def reference_half(self) -> np.ndarray:
        image = self.case.image
        return image[:, : self.half] if self.side == "left" else image[:, self.half :]

    def pick_half(self) -> np.ndarray:
        image = self.case.image
        return image[:, self.half :] if self.side == "left" else image[:, : self.half]

    def reference_offset(self) -> float:
        """x of the reference half's first column in the whole micrograph."""
        return 0.0 if self.side == "left" else float(self.half)

    def pick_truth(self) -> np.ndarray:
        """Annotated centres on the pick half, in its own pixels."""
        truth = self.case.truth_yx
        on_right = truth[:, 1] >= self.half
        if self.side == "left":
            return truth[on_right] - [0, self.half]
        return truth[~on_right]


def real_cases(folder: str) -> list[RealCase]:
    from tomoseg_nb.boxer.files import read_micrograph

    cases = []
    for path in sorted(Path(folder).glob("*.jpg")):
        xy = np.loadtxt(path.with_suffix(".csv"), delimiter=",", skiprows=1, ndmin=2)
        image = read_micrograph(path).image
        cases.append(RealCase(path.stem, image, xy[:, ::-1].astype(np.float64)))
    if not cases:
        raise SystemExit(f"{folder}: no <name>.jpg + <name>.csv micrographs")
    return cases


def real_references(fold: RealFold, seed: int) -> dict[str, np.ndarray]:
    """What a user boxes on the reference half: 15 clear particles, 15 empty spots, the contamination.

    Good: annotated particles with no other annotated centre within a diameter (the clear ones a
    person boxes first), away from the borders and the cut. Background: spots at least a diameter
    from every annotated centre. Both drawn at random with ``seed``; y, x in the reference half's
    own pixels.
    """
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    case = fold.case
    offset = fold.reference_offset()
    width = fold.half
    low, high_y = REAL_MARGIN_PX, case.image.shape[0] - REAL_MARGIN_PX
    # x range of box centres on the reference half, in its own pixels: the micrograph's margin on
    # the outer side, half a box from the cut on the inner side.
    low_x, high_x = (low, width - REAL_BOX_PX / 2)
    if fold.side == "right":
        low_x, high_x = REAL_BOX_PX / 2, case.image.shape[1] - width - low
    truth = case.truth_yx - [0, offset]
    tree = cKDTree(truth)
    neighbour = tree.query(truth, k=2)[0][:, 1]
    inside = (
        (truth[:, 1] >= low_x)
        & (truth[:, 1] < high_x)
        & (truth[:, 0] >= low)
        & (truth[:, 0] < high_y)
    )
    clear = np.flatnonzero(inside & (neighbour > REAL_DIAMETER_PX))
    good = truth[rng.choice(clear, REAL_N_REFERENCES, replace=False)]
    background = []
    while len(background) < REAL_N_REFERENCES:
        spot = rng.uniform([low, low_x], [high_y, high_x])
        if tree.query(spot)[0] > REAL_DIAMETER_PX:
            background.append(spot)
    bad_xy = np.asarray(REAL_CONTAMINATION.get((case.name, fold.side), []), dtype=np.float64)
    bad = bad_xy.reshape(-1, 2)[:, ::-1] - [0, offset]
    return dict(good=good, background=np.asarray(background), bad=bad)


def real_score(picks_yx: np.ndarray, truth_yx: np.ndarray, shape) -> dict:
    """Precision / recall / F1 within half a diameter, both sets inside the annotated margin."""

    def inside(points):
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        upper = np.asarray(shape) - REAL_MARGIN_PX
        return points[((points >= REAL_MARGIN_PX) & (points <= upper)).all(1)]

    match = match_points(inside(picks_yx), inside(truth_yx), REAL_DIAMETER_PX / 2)
    return dict(
        precision=match.precision,
        recall=match.recall,
        f1=match.f1,
        picks=match.true_positives + match.false_positives,
        truth=match.true_positives + match.false_negatives,
    )


CONFIDENT_PICKS = 25
"""How many of a method's most confident picks ``confident_precision`` scores."""


def confident_precision(
    coordinates: np.ndarray, scores: np.ndarray, truth_yx: np.ndarray, shape, k: int
) -> float:
    """Precision of the ``k`` highest-scoring picks inside the annotated margin.

    A readout of the annotation rather than of the picker: a method's most confident picks are
    the clearest particles it sees, so when even they are often unannotated (and look like the
    annotated ones), the annotation leaves particles out and no picker ranking by appearance can
    reach a high precision against it on that micrograph.
    """
    coordinates = np.asarray(coordinates, dtype=np.float64).reshape(-1, 2)
    upper = np.asarray(shape) - REAL_MARGIN_PX
    inside = ((coordinates >= REAL_MARGIN_PX) & (coordinates <= upper)).all(1)
    order = np.argsort(-np.asarray(scores)[inside], kind="stable")[:k]
    return real_score(coordinates[inside][order], truth_yx, shape)["precision"]


def run_real(folder: str, seed: int, train_options: dict[str, Any], sides: Sequence[str]) -> None:
    cases = real_cases(folder)
    print(
        f"real micrographs: {len(cases)} from {folder}, particle diameter {REAL_DIAMETER_PX:g} px, "
        f"box {REAL_BOX_PX} px; references from one half ({', '.join(sides)}), picks on the other "
        f"half, a pick counts within {REAL_DIAMETER_PX / 2:g} px of an annotated centre "
        f"(one-to-one), scored >= {REAL_MARGIN_PX} px from the edges"
    )
    header = (
        f"  {'micrograph':<30} {'refs':>5} {'g/b/bad':>8} {'train s':>7} {'pick s':>6} "
        f"{'CNN F1':>6} {'P':>5} {'R':>5} {'picks':>5} {'truth':>5} {'thresh':>6} "
        f"{'CNN best':>8} {'TM F1':>6} {'TM best':>7} {'margin':>6} {'vs best':>7} "
        f"{'P@' + str(CONFIDENT_PICKS) + ' CNN':>9} {'TM':>5}"
    )
    print(header)
    rows = []
    if train_options:
        print(f"  train_boxer options: {train_options}")
    for side in sides:
        for index, case in enumerate(cases):
            fold = RealFold(case, side)
            rows.append(
                run_real_fold(fold, seed, seed + index + SIDES.index(side) * 1000, train_options)
            )
    f1 = np.array([r["cnn"]["f1"] for r in rows])
    margins = np.array([r["cnn"]["f1"] - r["tm"]["f1"] for r in rows])
    best_margins = np.array([r["cnn"]["f1"] - r["tm_best"]["f1"] for r in rows])
    worst = int(np.argmin(f1))
    print(
        f"  over {len(rows)} fold(s): CNN F1 mean {f1.mean():.3f}, worst {f1[worst]:.3f} "
        f"({rows[worst]['name']}, references {rows[worst]['side']}); template matching F1 mean "
        f"{np.mean([r['tm']['f1'] for r in rows]):.3f} at its default threshold, "
        f"{np.mean([r['tm_best']['f1'] for r in rows]):.3f} at its best; "
        f"CNN - template at its default: mean {margins.mean():+.3f}, worst {margins.min():+.3f}; "
        f"CNN - template at its best: mean {best_margins.mean():+.3f}, "
        f"worst {best_margins.min():+.3f}; training {max(r['train'] for r in rows):.0f} s at most"
    )
    print(
        f"  precision of the {CONFIDENT_PICKS} most confident picks (annotation completeness): "
        f"CNN mean {np.mean([r['cnn_confident'] for r in rows]):.2f}, worst "
        f"{min(r['cnn_confident'] for r in rows):.2f}; template matching mean "
        f"{np.mean([r['tm_confident'] for r in rows]):.2f}, worst "
        f"{min(r['tm_confident'] for r in rows):.2f}"
    )
    for side in sides:
        on_side = [r for r in rows if r["side"] == side]
        print(
            f"  references {side}: CNN F1 mean "
            f"{np.mean([r['cnn']['f1'] for r in on_side]):.3f}, worst "
            f"{min(r['cnn']['f1'] for r in on_side):.3f}"
        )
    print(
        f"  => targets: mean F1 >= 0.80 {'met' if f1.mean() >= 0.8 else 'MISSED'}; every "
        f"fold >= template (default threshold) + 0.10 "
        f"{'met' if margins.min() >= 0.1 else 'MISSED'}, >= template (best threshold) + 0.10 "
        f"{'met' if best_margins.min() >= 0.1 else 'MISSED'}"
    )


def run_real_fold(fold: RealFold, seed: int, reference_seed: int, train_options) -> dict:
    """Train on ``fold``'s reference half, pick its other half; one printed row, its figures."""
    refs = real_references(fold, reference_seed)
    references = collect_references(
        [fold.reference_half()],
        [refs["good"]],
        [refs["background"]],
        [refs["bad"]],
        box_px=REAL_BOX_PX,
    )
    start = time.perf_counter()
    model = train_boxer(references, seed=seed, **train_options)
    train_seconds = time.perf_counter() - start
    image, truth, name = fold.pick_half(), fold.pick_truth(), fold.case.name
    start = time.perf_counter()
    result = autopick(model, image, name=name)
    pick_seconds = time.perf_counter() - start
    cnn = real_score(result.picks.coordinates, truth, image.shape)
    template = autopick(model, image, method="template", name=name)
    tm_default = real_score(template.picks.coordinates, truth, image.shape)
    tm_best = max(
        (
            real_score(
                autopick(model, image, method="template", threshold=t).picks.coordinates,
                truth,
                image.shape,
            )
            for t in SWEEP
        ),
        key=lambda s: s["f1"],
    )
    # The CNN at its own best threshold (an oracle, as for template matching): how much of the
    # gap is the calibrated threshold and how much the score map itself.
    everything = autopick(model, image, name=name, score_threshold=0.0)
    kept = everything.candidates.coordinates[everything.kept]
    kept_scores = everything.candidates.scores[everything.kept]
    cnn_best = max(
        real_score(kept[kept_scores >= t], truth, image.shape)["f1"]
        for t in np.arange(0.05, 1.0, 0.025)
    )
    cnn_confident = confident_precision(kept, kept_scores, truth, image.shape, CONFIDENT_PICKS)
    every_template = autopick(model, image, method="template", threshold=SWEEP[0]).candidates
    tm_confident = confident_precision(
        every_template.coordinates, every_template.scores, truth, image.shape, CONFIDENT_PICKS
    )
    counts = references.counts()
    print(
        f"  {name:<30} {fold.side:>5} {counts['good']:>3}/{counts['background']}/"
        f"{counts['bad']:<2} {train_seconds:7.1f} {pick_seconds:6.1f} {cnn['f1']:6.3f} "
        f"{cnn['precision']:5.2f} {cnn['recall']:5.2f} {cnn['picks']:5d} {cnn['truth']:5d} "
        f"{result.score_threshold:6.2f} {cnn_best:8.3f} {tm_default['f1']:6.3f} "
        f"{tm_best['f1']:7.3f} {cnn['f1'] - tm_default['f1']:+6.3f} "
        f"{cnn['f1'] - tm_best['f1']:+7.3f} {cnn_confident:9.2f} {tm_confident:5.2f}",
        flush=True,
    )
    return dict(
        name=name,
        side=fold.side,
        cnn=cnn,
        tm=tm_default,
        tm_best=tm_best,
        train=train_seconds,
        cnn_confident=cnn_confident,
        tm_confident=tm_confident,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller micrographs, fewer epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--filters", type=int, nargs=2, default=None, help="picker channels")
    parser.add_argument("--kernel-px", type=int, default=None, help="picker kernel side")
    parser.add_argument(
        "--real",
        nargs="?",
        const="../shared/data/empiar10017",
        metavar="DIR",
        help="real micrographs instead: <name>.jpg + <name>.csv (x,y centres) in DIR "
        "(default ../shared/data/empiar10017)",
    )
    parser.add_argument(
        "--sides",
        choices=(*SIDES, "both"),
        default="both",
        help="with --real: which half of each micrograph the references come from (the picks are "
        "scored on the other); both measures every micrograph twice",
    )
    parser.add_argument("--epochs", type=int, default=None, help="override training epochs")
    parser.add_argument(
        "--train-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --real: any train_boxer keyword, e.g. samples_per_class=1000 (repeatable)",
    )
    args = parser.parse_args()
    if args.real:
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")
        options = dict(parse_literal_option("--train-option", t) for t in args.train_option)
        if args.epochs is not None:
            options["epochs"] = args.epochs
        if args.filters:
            options["filters"] = tuple(args.filters)
        if args.kernel_px:
            options["kernel_px"] = args.kernel_px
        run_real(args.real, args.seed, options, SIDES if args.sides == "both" else (args.sides,))
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
        return
    size = 768 if args.quick else 1024
    epochs = 8 if args.quick else 20

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")
    started = time.perf_counter()
    train = training_set(size, args.seed)
    held_out = test_set(size, args.seed)
    diameter = train[0].particle_diameter_px
    box_px = round(1.5 * diameter)
    print(
        f"phantoms: {len(train)} training + {len(held_out)} held-out {size}x{size} micrographs at "
        f"{PIXEL_SIZE} A/px, 70S ribosome ({diameter:.0f} px across), box {box_px} px; "
        f"{sum(len(p.particles) for p in held_out)} isolated particles to find, "
        f"{sum(len(p.aggregate_particles) for p in held_out)} aggregated ones to leave "
        f"({time.perf_counter() - started:.0f} s to simulate)"
    )
    refs = [
        phantom_references(p, n_good=5, n_background=5, n_bad=5, seed=i)
        for i, p in enumerate(train)
    ]
    references = collect_references(
        [p.image for p in train],
        *[[r[kind] for r in refs] for kind in ("good", "background", "bad")],
        box_px=box_px,
        pixel_sizes=PIXEL_SIZE,
    )
    start = time.perf_counter()
    architecture = {"filters": tuple(args.filters)} if args.filters else {}
    if args.kernel_px:
        architecture["kernel_px"] = args.kernel_px
    model = train_boxer(references, epochs=epochs, seed=args.seed, **architecture)
    train_seconds = time.perf_counter() - start
    print(
        f"training: {references.counts()} references, {epochs} epochs x 2 networks, "
        f"{train_seconds:.1f} s"
    )

    print(f"\npicking quality on held-out phantoms (match within {MATCH_FRACTION} diameters):")
    default = [autopick(model, p.image) for p in held_out]
    cnn = score([r.picks for r in default], held_out)
    without = score([r.candidates for r in default], held_out)
    print(
        line(
            f"CNN, default thresholds ({default[0].score_threshold:.2f} score, "
            f"{model.info.classifier_threshold:g})",
            cnn,
        )
    )
    print(line("CNN picker alone (classifier veto off)", without))
    eman2_style = train_boxer(
        references, epochs=epochs, seed=args.seed, picker_rejects_bad=False, **architecture
    )
    eman2 = [autopick(eman2_style, p.image) for p in held_out]
    eman2_without = score([r.candidates for r in eman2], held_out)
    eman2_with = score([r.picks for r in eman2], held_out)
    print(line("EMAN2-style picker (background negatives only)", eman2_without))
    print(line("EMAN2-style picker + classifier veto", eman2_with))
    cnn_threshold, cnn_best = sweep(model, held_out, "cnn")
    print(line(f"CNN, best picker threshold ({cnn_threshold:g})", cnn_best))
    template_threshold, template = sweep(model, held_out, "template")
    print(line(f"template matching, best threshold ({template_threshold:g})", template))
    margin = cnn["f1"] - template["f1"]
    print(
        f"  => CNN (defaults) F1 - template (oracle threshold) F1 = {margin:+.3f} "
        f"({'meets' if margin >= 0.1 else 'misses'} the >= 0.1 target)"
    )
    for label, before, after in (
        ("default picker", without, cnn),
        ("EMAN2-style picker", eman2_without, eman2_with),
    ):
        print(
            f"  => classifier veto, {label}: picks on contamination {before['on_contamination']} -> "
            f"{after['on_contamination']}, on aggregates {before['on_aggregates']} -> "
            f"{after['on_aggregates']}, recall {before['recall']:.3f} -> {after['recall']:.3f}"
        )

    big = 2048 if args.quick else 4096
    figures = timing(model, big)
    print(f"\nspeed: autopicking one {big}x{big} micrograph (median of 3, default thresholds)")
    print(
        f"  total                 {figures['total']:.2f} s, best {figures['best total']:.2f} s "
        "(target <= 2 s for 4096 x 4096)"
    )
    for part in ("prepare", "picker network", "peaks + classifier"):
        print(f"  {part:<21} {figures[part]:.2f} s")
    print(
        f"  picker network by engine: keras {figures['picker network, keras engine']:.2f} s, "
        f"fft {figures['picker network, fft engine']:.2f} s (auto chose {figures['engine']})"
    )
    print(
        f"  working image {figures['working image'][0]}x{figures['working image'][1]} px, "
        f"{figures['candidates']} candidates, {figures['picks']} picks"
    )
    print(f"  training time (defaults): {train_seconds:.1f} s")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
