"""Training time of the default network as its input grows: one vs more channels per slice.

``Recipe.extra_lowpass`` gives each slice more input channels (the slice under another lowpass),
so with z context 3 the default network takes 14 channels instead of 7. Only its first layer
sees them, so training should cost little more; this measures how much, on the protocol's
tile count (10 positive + 100 negative 64 px tiles, EMAN2's class balance of copies), with
random tiles (time does not depend on what they hold). Baseline (the default recipe) and
candidate are timed alternately, ``--repeats`` times each, and the ratio of their medians is
printed, so a machine shared with other work slows both alike.

Run::

    .venv/bin/python benchmarks/bench_input_channels.py                 # about 4 minutes on 2 cores
    .venv/bin/python benchmarks/bench_input_channels.py --extra-lowpass 0 0.4 --epochs 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import numpy as np

from tomoseg_nb.preprocess import Recipe
from tomoseg_nb.train import train_on_tiles
from tomoseg_nb.training_config import DEFAULT_TRAINING, TrainingConfig

TILES = (10, 100)  # positive, negative: the annotator's protocol
SIZE = 64


def train_seconds(config: TrainingConfig, seed: int) -> float:
    """Seconds of one ``train_on_tiles`` call on random protocol-sized tiles for ``config``."""
    rng = np.random.default_rng(seed)
    positive = np.arange(sum(TILES)) < TILES[0]
    shape = (len(positive), SIZE, SIZE, config.input_channels)
    images = (rng.normal(size=shape) / 3).astype(np.float32)
    masks = np.zeros((len(positive), SIZE, SIZE), bool)
    masks[positive, 24:40, 24:40] = True
    start = time.perf_counter()
    train_on_tiles(images, masks, positive, config)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per training (default 3)")
    parser.add_argument("--repeats", type=int, default=2, help="trainings of each (default 2)")
    parser.add_argument(
        "--extra-lowpass",
        type=float,
        nargs="+",
        default=[0.0],
        help="the candidate's Recipe.extra_lowpass (default: 0, the unfiltered slice)",
    )
    args = parser.parse_args(argv)
    baseline = DEFAULT_TRAINING.replace(epochs=args.epochs)
    recipe = Recipe(extra_lowpass=tuple(args.extra_lowpass))
    candidate = baseline.replace(recipe=recipe)
    seconds: dict[str, list[float]] = {"baseline": [], "candidate": []}
    for repeat in range(args.repeats):
        for name, config in (("baseline", baseline), ("candidate", candidate)):
            seconds[name].append(train_seconds(config, seed=repeat))
            print(f"{name:9s} {config.input_channels:3d} channels {seconds[name][-1]:7.1f} s")
    base, cand = (statistics.median(seconds[n]) for n in ("baseline", "candidate"))
    print(
        f"\n{args.epochs} epochs, median of {args.repeats}: {baseline.input_channels} channels "
        f"{base:.1f} s, {candidate.input_channels} channels (extra lowpass "
        f"{recipe.extra_lowpass}) {cand:.1f} s; ratio {cand / base:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
