"""Wall time of distributed segmentation on 1 vs 2 local Dask workers, and the per-unit overhead.

Four small tomograms, two networks with fixed random weights (the arithmetic is the same as trained
ones), the same work measured four ways in one run:

- ``in-process``: ``segment.segment_volume`` per tomogram, the baseline;
- ``units here``: ``distributed.segment_volumes`` without a cluster (units one after another in this
  process: manifest bookkeeping and unit splitting, no Dask);
- ``local:1`` and ``local:2``: a ``LocalCluster`` of 1 or 2 worker processes, each warmed up first
  (Keras imported, networks loaded) so the timing is the steady state a long run sees.

Per-unit overhead = (wall time on 1 worker - sum of the units' own compute seconds) / units: what
scheduling, result transfer and the client's manifest updates add to each unit.

Run from the repository root::

    .venv/bin/python benchmarks/bench_dask.py
    .venv/bin/python benchmarks/bench_dask.py --shape 32 128 128 --arch eman2 --unit-slices 8
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TOMOSEG_NB_PROGRESS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_inputs(
    folder: Path, shape: tuple[int, int, int], arch: str, count: int, slab: int
) -> dict:
    from tomoseg_nb.models import ModelInfo, build_model, save_model
    from tomoseg_nb.preprocess import Recipe
    from tomoseg_nb.volume import write_volume

    rng = np.random.default_rng(0)
    tomograms = []
    for index in range(count):
        path = folder / f"TS_{index:02d}.mrc"
        write_volume(path, rng.normal(size=shape).astype(np.float32), voxel_size=10.0)
        tomograms.append(path)
    warmup = folder / "warmup" / "WARM.mrc"
    # One slab deep: the warm-up traces the networks for the slab shape the timed runs use.
    write_volume(warmup, rng.normal(size=(slab, *shape[1:])).astype(np.float32), voxel_size=10.0)
    models = []
    for seed, feature in enumerate(("membrane", "ribosome")):
        info = ModelInfo(feature=feature, arch=arch, voxel_size=10.0, recipe=Recipe().to_dict())
        models.append(save_model(build_model(arch, seed=seed), info, folder / f"{feature}.keras"))
    return {"tomograms": tomograms, "models": models, "warmup": warmup}


def warm_up(models: list[Path], tomogram: Path, folder: Path, slab: int) -> None:
    """In a worker: import Keras, load the networks into the worker's cache and trace them once."""
    from tomoseg_nb.distributed import segment_volumes

    segment_volumes(models, [tomogram], folder / f"warm-{os.getpid()}", slab_size=slab)


def unit_seconds(manifests: list[Path]) -> float:
    from tomoseg_nb.distributed import Manifest

    return sum(u["seconds"] for m in manifests for u in Manifest.load(m).units.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(24, 96, 96), metavar=("Z", "Y", "X"))
    parser.add_argument("--tomograms", type=int, default=4)
    parser.add_argument("--arch", default="fast", help="network architecture (default: fast)")
    parser.add_argument("--slab", type=int, default=4, help="slices per slab")
    parser.add_argument("--unit-slices", type=int, default=8, help="slices per work unit")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per setting; the fastest counts"
    )
    args = parser.parse_args(argv)

    from tomoseg_nb.distributed import open_cluster, segment_volumes
    from tomoseg_nb.segment import FeatureNetwork, segment_volume

    folder = Path(tempfile.mkdtemp(prefix="bench_dask_"))
    try:
        inputs = make_inputs(folder, tuple(args.shape), args.arch, args.tomograms, args.slab)
        runs = iter(range(10**6))

        def fastest(**options):
            results = [
                segment_volumes(
                    inputs["models"],
                    inputs["tomograms"],
                    folder / f"run-{next(runs)}",
                    slab_size=args.slab,
                    unit_slices=args.unit_slices,
                    **options,
                )
                for _ in range(args.repeat)
            ]
            return min(results, key=lambda r: r.seconds)

        warm_up(inputs["models"], inputs["warmup"], folder, args.slab)
        networks = [
            FeatureNetwork.load(path) for path in inputs["models"]
        ]  # loaded once, as units do
        walls = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            for tomogram in inputs["tomograms"]:
                segment_volume(
                    networks, tomogram, folder / f"run-{next(runs)}", slab_size=args.slab
                )
            walls.append(time.perf_counter() - start)
        here = fastest()
        rows = {"in-process": (min(walls), None), "units here": (here.seconds, here)}
        for workers in (1, 2):
            with open_cluster(f"local:{workers}") as client:
                client.run(warm_up, inputs["models"], inputs["warmup"], folder, args.slab)
                result = fastest(client=client)
                rows[f"local:{workers}"] = (result.seconds, result)

        baseline = rows["in-process"][0]
        units = rows["local:1"][1].units_total
        print(
            f"{args.tomograms} tomograms {tuple(args.shape)}, 2 '{args.arch}' networks, "
            f"{units} units of {args.unit_slices} slices, {os.cpu_count()} cores, "
            f"fastest of {args.repeat}"
        )
        print(f"{'run':<12}{'wall s':>9}{'vs in-process':>15}{'unit compute s':>16}")
        for name, (seconds, result) in rows.items():
            compute = f"{unit_seconds(result.manifests):16.2f}" if result else f"{'':>16}"
            print(f"{name:<12}{seconds:9.2f}{baseline / seconds:14.2f}x{compute}")
        one, two = rows["local:1"], rows["local:2"]
        print(f"speed-up 2 vs 1 worker: {one[0] / two[0]:.2f}x")
        overhead = (one[0] - unit_seconds(one[1].manifests)) / units
        print(
            f"per-unit overhead on 1 worker: {overhead * 1000:.0f} ms (wall - unit compute) / units"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
